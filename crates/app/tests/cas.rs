//! The CAS server's use cases on both backends: the registry of services, a
//! person's sign-in and first-sign-in change, tickets and their validation
//! (single use, bound to their service, short-lived), the logout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../store/tests/common/mod.rs"]
mod common;

use app::accounts::{PasswordChangeError, SignInFailure};
use app::cas::{self, CasSettings, ServiceError, TicketRefusal, Validation};
use app::{Actor, Error};
use chrono::Duration;
use common::*;
use domain::cas::{AttributeValue, FailureCode};
use domain::vocabulary::Channel;
use store::accounts::Accounts;
use store::admin::{self, AdminDirectory};
use store::cas::CasStore;
use store::web::{Admin, WebDirectory};
use store::{Directory, UserQuery};

conformance!(
    a_teacher_signs_in_changes_the_password_and_each_service_gets_its_own_ticket,
    a_ticket_is_spent_by_its_first_validation_even_when_two_race,
    a_portal_gets_proxy_tickets_for_the_services_it_calls,
    a_forgotten_password_is_replaced_through_a_single_use_link,
    only_a_system_admin_registers_services_and_bad_ones_are_explained,
);

trait Full: Directory + Accounts + AdminDirectory + WebDirectory + CasStore {}
impl<T: Directory + Accounts + AdminDirectory + WebDirectory + CasStore> Full for T {}

fn operator() -> Actor {
    Actor::operator("cli:test".into())
}

fn rng(seed: u64) -> rand::rngs::StdRng {
    <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed)
}

/// Delivers no proxy-granting ticket (the services here ask for none).
struct NoCallback;

impl cas::ProxyCallback for NoCallback {
    async fn deliver(&self, _url: &str, _iou: &str, _pgt: &str) -> bool {
        false
    }
}

/// A proxy's callback that answers 200 and keeps what it received.
#[derive(Default)]
struct Callback(std::sync::Mutex<Vec<(String, String, String)>>);

impl cas::ProxyCallback for Callback {
    async fn deliver(&self, url: &str, iou: &str, pgt: &str) -> bool {
        self.0.lock().unwrap().push((url.into(), iou.into(), pgt.into()));
        true
    }
}

/// A validation at `serviceValidate` (no proxy ticket, no callback).
async fn check(
    d: &impl Full,
    ticket: Option<&str>,
    service: Option<&str>,
    renew: bool,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Result<domain::cas::Success, domain::cas::Failure>, store::StoreError> {
    let validation = Validation {
        renew,
        ..Validation::default()
    };
    cas::validate(
        d,
        ticket,
        service,
        validation,
        &NoCallback,
        &CasSettings::default(),
        &mut rng(9),
        at,
    )
    .await
}

fn ip() -> std::net::IpAddr {
    "192.0.2.10".parse().unwrap()
}

const VS: &str = "https://vie-scolaire.test/";
const BOOKS: &str = "https://manuels.test/";

/// One teacher of UAI imported with an imposed password, and two services:
/// the vie scolaire open to UAI, the textbooks to OTHER_UAI only.
async fn setting(d: &impl Full) -> i64 {
    with_establishments(d, &[UAI, OTHER_UAI]).await;
    let file = csv(&[
        TEACHER_HEADER,
        "Madame;LAVOISIER;Nicole;Physique-Chimie;;nlavoisier;Chimie-2026!",
    ]);
    import(d, &file, &teachers(UAI)).await;
    let at = now();
    cas::add_service(
        d,
        &operator(),
        "vie-scolaire",
        VS,
        &[UAI.to_string()],
        "login,lastName,ENTPersonProfils,ENTPersonStructRattach,lvsProfile,schools",
        false,
        at,
    )
    .await
    .unwrap();
    cas::add_service(
        d,
        &operator(),
        "manuels",
        BOOKS,
        &[OTHER_UAI.to_string()],
        "",
        false,
        at,
    )
    .await
    .unwrap();
    let found = d
        .search_users(&UserQuery {
            last_name: Some("lavoisier".into()),
            limit: 5,
            ..UserQuery::default()
        })
        .await
        .unwrap();
    d.account_id_by_key(&found[0].sync_key).await.unwrap().expect("by key")
}

async fn a_teacher_signs_in_changes_the_password_and_each_service_gets_its_own_ticket(d: &impl Full) {
    let id = setting(d).await;
    let settings = CasSettings::default();
    let at = |seconds: i64| now() + Duration::seconds(seconds);
    let mut r = rng(3);

    let wrong = cas::sign_in(d, "nlavoisier", "pas le bon", ip(), &settings, &mut r, at(1))
        .await
        .unwrap();
    assert_eq!(wrong, Err(SignInFailure::BadCredentials));
    let signed = cas::sign_in(d, "NLavoisier", "Chimie-2026!", ip(), &settings, &mut r, at(2))
        .await
        .unwrap()
        .unwrap();
    assert!(signed.password_change_pending, "an imported password is distributed");
    assert!(signed.token.starts_with("TGC-"));
    let token = signed.token;
    assert_eq!(
        cas::grant_ticket(d, &token, VS, true, &settings, &mut r, at(3))
            .await
            .unwrap(),
        Err(TicketRefusal::PasswordChangePending)
    );

    let change = |new: &'static str, confirm: &'static str, seconds: i64| {
        let token = token.clone();
        async move {
            cas::change_distributed_password(d, &token, new, confirm, ip(), &settings, &mut rng(4), at(seconds)).await
        }
    };
    let same = change("Chimie-2026!", "Chimie-2026!", 4).await;
    assert!(
        matches!(&same, Err(PasswordChangeError::Policy(m)) if m.contains("différent")),
        "{same:?}"
    );
    let mismatch = change("des pommes et des poires", "des pommes et des prunes", 5).await;
    assert!(
        matches!(&mismatch, Err(PasswordChangeError::Policy(m)) if m.contains("diffèrent")),
        "{mismatch:?}"
    );
    change("des pommes et des poires", "des pommes et des poires", 6)
        .await
        .unwrap();
    let stored = d.sign_in_account("nlavoisier").await.unwrap().unwrap();
    assert!(!stored.must_change_password);
    assert!(
        stored.password_hash.starts_with("$argon2id$v=19$m=19456,t=2"),
        "{}",
        stored.password_hash
    );
    let audit = admin::audit_log(d, 5).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "password_change" && e.actor == "nlavoisier"));
    assert!(
        matches!(
            change("encore une autre phrase", "encore une autre phrase", 7).await,
            Err(PasswordChangeError::Changed)
        ),
        "the change is done once"
    );

    // The vie scolaire: a ticket, validated once, with the attributes it was granted.
    let service = "https://vie-scolaire.test/connexion?retour=accueil";
    let ticket = cas::grant_ticket(d, &token, service, true, &settings, &mut r, at(8))
        .await
        .unwrap()
        .unwrap();
    assert!(ticket.starts_with("ST-"));
    let success = check(d, Some(&ticket), Some(service), true, at(9))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(success.user, "nlavoisier");
    assert!(success.from_new_login);
    let attribute = |name: &str| {
        success
            .attributes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        attribute("ENTPersonProfils"),
        vec![AttributeValue::Text("National_ENS".into())]
    );
    assert_eq!(
        attribute("ENTPersonStructRattach"),
        vec![AttributeValue::Text(UAI.into())]
    );
    assert_eq!(attribute("lvsProfile"), vec![AttributeValue::Text("Professeur".into())]);
    assert!(matches!(&attribute("schools")[..], [AttributeValue::School(s)] if s.uai.as_str() == UAI));
    assert!(attribute("email").is_empty(), "not granted");
    let replay = check(d, Some(&ticket), Some(service), false, at(9)).await.unwrap();
    assert_eq!(replay.unwrap_err().code, FailureCode::InvalidTicket);

    // Without a password typed again: renew=true refuses the SSO ticket.
    let sso = cas::grant_ticket(d, &token, service, false, &settings, &mut r, at(10))
        .await
        .unwrap()
        .unwrap();
    let renew = check(d, Some(&sso), Some(service), true, at(10)).await.unwrap();
    assert_eq!(renew.unwrap_err().code, FailureCode::InvalidTicketSpec);

    // Another service's URL, an expired ticket, a missing parameter, a made-up ticket.
    let other = cas::grant_ticket(d, &token, service, false, &settings, &mut r, at(11))
        .await
        .unwrap()
        .unwrap();
    let elsewhere = check(d, Some(&other), Some("https://pirate.test/"), false, at(11))
        .await
        .unwrap();
    assert_eq!(elsewhere.unwrap_err().code, FailureCode::InvalidService);
    let late = cas::grant_ticket(d, &token, service, false, &settings, &mut r, at(12))
        .await
        .unwrap()
        .unwrap();
    let expired = check(d, Some(&late), Some(service), false, at(12 + settings.ticket_seconds))
        .await
        .unwrap();
    assert_eq!(expired.unwrap_err().code, FailureCode::InvalidTicket);
    let missing = check(d, None, Some(service), false, at(13)).await.unwrap();
    assert_eq!(missing.unwrap_err().code, FailureCode::InvalidRequest);
    let made_up = check(d, Some("ST-0000"), Some(service), false, at(13)).await.unwrap();
    assert_eq!(made_up.unwrap_err().code, FailureCode::InvalidTicket);

    // The textbooks are open to another establishment only; an unknown URL is refused.
    assert_eq!(
        cas::grant_ticket(d, &token, BOOKS, false, &settings, &mut r, at(14))
            .await
            .unwrap(),
        Err(TicketRefusal::NotYourEstablishment("manuels".into()))
    );
    assert_eq!(
        cas::grant_ticket(
            d,
            &token,
            "https://vie-scolaire.test.pirate.net/",
            false,
            &settings,
            &mut r,
            at(14)
        )
        .await
        .unwrap(),
        Err(TicketRefusal::UnknownService)
    );

    // A deactivated account's ticket is refused at validation.
    let before = cas::grant_ticket(d, &token, service, false, &settings, &mut r, at(15))
        .await
        .unwrap()
        .unwrap();
    let detail = d.account(id).await.unwrap().unwrap();
    app::accounts::set_active(d, &detail, None, false, &operator(), at(15))
        .await
        .unwrap();
    let closed = check(d, Some(&before), Some(service), false, at(16)).await.unwrap();
    assert_eq!(closed.unwrap_err().code, FailureCode::InvalidTicket);
    assert_eq!(
        cas::grant_ticket(d, &token, service, false, &settings, &mut r, at(16))
            .await
            .unwrap(),
        Err(TicketRefusal::AccountClosed)
    );

    // Logout names the ticket the vie scolaire validated, and ends the session.
    let validated = cas::logout(d, &token).await.unwrap();
    assert_eq!(validated.len(), 1, "{validated:?}");
    assert_eq!(validated[0].ticket, ticket);
    assert_eq!(validated[0].service, service);
    assert_eq!(
        cas::grant_ticket(d, &token, service, false, &settings, &mut r, at(17))
            .await
            .unwrap(),
        Err(TicketRefusal::NoSession)
    );
}

async fn a_ticket_is_spent_by_its_first_validation_even_when_two_race(d: &impl Full) {
    setting(d).await;
    let settings = CasSettings::default();
    let mut r = rng(5);
    let at = now();
    let token = cas::sign_in(d, "nlavoisier", "Chimie-2026!", ip(), &settings, &mut r, at)
        .await
        .unwrap()
        .unwrap()
        .token;
    cas::change_distributed_password(
        d,
        &token,
        "des pommes et des poires",
        "des pommes et des poires",
        ip(),
        &settings,
        &mut r,
        at,
    )
    .await
    .unwrap();
    for round in 0..5 {
        let ticket = cas::grant_ticket(d, &token, VS, false, &settings, &mut r, at)
            .await
            .unwrap()
            .unwrap();
        let (a, b) = tokio::join!(
            check(d, Some(&ticket), Some(VS), false, at),
            check(d, Some(&ticket), Some(VS), false, at)
        );
        let won = [a.unwrap(), b.unwrap()].iter().filter(|v| v.is_ok()).count();
        assert_eq!(won, 1, "round {round}: one validation only");
    }

    // The session ends after its idle lifetime without use.
    let idle = at + Duration::minutes(settings.idle_minutes + 1);
    assert_eq!(
        cas::grant_ticket(d, &token, VS, false, &settings, &mut r, idle)
            .await
            .unwrap(),
        Err(TicketRefusal::NoSession)
    );
    assert_eq!(
        d.purge_sso_sessions(idle, idle - Duration::minutes(settings.idle_minutes))
            .await
            .unwrap(),
        1
    );
}

async fn only_a_system_admin_registers_services_and_bad_ones_are_explained(d: &impl Full) {
    with_establishments(d, &[UAI]).await;
    let at = now();
    let school_admin = Actor::new(
        Admin {
            id: 3,
            login: "admin-a".into(),
            system: false,
            establishments: vec![uai(UAI)],
            email: None,
        },
        Channel::Web,
    );
    let refused = cas::add_service(d, &school_admin, "vs", VS, &[], "", false, at).await;
    assert!(
        matches!(refused, Err(ServiceError::Refused(Error::SystemOnly(_)))),
        "{refused:?}"
    );
    let explain = |r: Result<store::cas::CasService, ServiceError>| match r {
        Err(ServiceError::Invalid(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(
        explain(cas::add_service(d, &operator(), "vs", "vie-scolaire.test", &[], "", false, at).await)
            .contains("https://")
    );
    assert!(
        explain(cas::add_service(d, &operator(), "vs", VS, &["0000000A".into()], "", false, at).await)
            .contains("0000000A")
    );
    assert!(
        explain(cas::add_service(d, &operator(), "vs", VS, &[], "login,motDePasse", false, at).await)
            .contains("motDePasse")
    );
    assert!(explain(cas::add_service(d, &operator(), "  ", VS, &[], "", false, at).await).contains("nom"));
    assert!(d.cas_services().await.unwrap().is_empty(), "nothing half-written");

    let added = cas::add_service(
        d,
        &operator(),
        "vs",
        "HTTPS://Vie-Scolaire.test/",
        &[UAI.into()],
        "",
        true,
        at,
    )
    .await
    .unwrap();
    assert_eq!(added.url_prefix, VS);
    assert_eq!(
        domain::cas::attribute_list(&added.attributes),
        app::cas::DEFAULT_ATTRIBUTES
    );
    let twice = cas::add_service(d, &operator(), "vs", BOOKS, &[], "", false, at).await;
    assert!(
        matches!(&twice, Err(ServiceError::Invalid(m)) if m.contains("« vs »")),
        "{twice:?}"
    );
    assert_eq!(cas::services(d).await.unwrap(), vec![added]);
    let audit = admin::audit_log(d, 5).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "cas_service_add" && e.target == "vs"));

    assert!(matches!(
        cas::remove_service(d, &school_admin, "vs", at).await,
        Err(ServiceError::Refused(Error::SystemOnly(_)))
    ));
    cas::remove_service(d, &operator(), "vs", at).await.unwrap();
    assert!(matches!(
        cas::remove_service(d, &operator(), "vs", at).await,
        Err(ServiceError::Unknown(_))
    ));
    assert!(cas::services(d).await.unwrap().is_empty());
}

const PORTAL: &str = "https://portail.test/";

async fn a_portal_gets_proxy_tickets_for_the_services_it_calls(d: &impl Full) {
    setting(d).await;
    cas::add_service(d, &operator(), "portail", PORTAL, &[], "login", true, now())
        .await
        .unwrap();
    let settings = CasSettings::default();
    let mut r = rng(11);
    let at = now();
    let token = cas::sign_in(d, "nlavoisier", "Chimie-2026!", ip(), &settings, &mut r, at)
        .await
        .unwrap()
        .unwrap()
        .token;
    cas::change_distributed_password(
        d,
        &token,
        "des pommes et des poires",
        "des pommes et des poires",
        ip(),
        &settings,
        &mut r,
        at,
    )
    .await
    .unwrap();
    let portal_ticket = |r: &mut rand::rngs::StdRng| {
        let token = token.clone();
        let mut r = rng(r.next_u64());
        async move {
            cas::grant_ticket(d, &token, PORTAL, false, &settings, &mut r, at)
                .await
                .unwrap()
                .unwrap()
        }
    };
    use rand::RngCore;
    let with_callback = |url: &'static str| Validation {
        proxy_callback: Some(url),
        ..Validation::default()
    };

    // The portal validates with a callback: the PGT goes to it, the answer names its IOU.
    let callback = Callback::default();
    let ticket = portal_ticket(&mut r).await;
    let success = cas::validate(
        d,
        Some(&ticket),
        Some(PORTAL),
        with_callback("https://portail.test/rappel"),
        &callback,
        &settings,
        &mut r,
        at,
    )
    .await
    .unwrap()
    .unwrap();
    let received = callback.0.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let (url, iou, pgt) = received[0].clone();
    assert_eq!(url, "https://portail.test/rappel");
    assert!(iou.starts_with("PGTIOU-") && pgt.starts_with("PGT-"), "{iou} {pgt}");
    assert_eq!(success.proxy_granting_ticket.as_deref(), Some(iou.as_str()));

    // A proxy ticket for the vie scolaire, validated there through proxyValidate only.
    let pt = cas::proxy_ticket(d, Some(&pgt), Some(VS), &settings, &mut r, at)
        .await
        .unwrap()
        .unwrap();
    assert!(pt.starts_with("PT-"));
    let at_service_validate = check(d, Some(&pt), Some(VS), false, at).await.unwrap();
    assert_eq!(at_service_validate.unwrap_err().code, FailureCode::InvalidTicketSpec);
    let pt = cas::proxy_ticket(d, Some(&pgt), Some(VS), &settings, &mut r, at)
        .await
        .unwrap()
        .unwrap();
    let proxy_validate = Validation {
        accept_proxy_tickets: true,
        ..Validation::default()
    };
    let proxied = cas::validate(
        d,
        Some(&pt),
        Some(VS),
        proxy_validate,
        &NoCallback,
        &settings,
        &mut r,
        at,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(proxied.user, "nlavoisier");
    assert_eq!(proxied.proxies, vec!["https://portail.test/rappel".to_string()]);
    assert!(!proxied.from_new_login);

    // Refusals: unknown PGT, unregistered target, a target closed to the person.
    let code = |r: Result<String, domain::cas::Failure>| r.unwrap_err().code;
    assert_eq!(
        code(
            cas::proxy_ticket(d, Some("PGT-0"), Some(VS), &settings, &mut r, at)
                .await
                .unwrap()
        ),
        FailureCode::InvalidTicket
    );
    assert_eq!(
        code(
            cas::proxy_ticket(d, Some(&pgt), Some("https://pirate.test/"), &settings, &mut r, at)
                .await
                .unwrap()
        ),
        FailureCode::UnauthorizedService
    );
    assert_eq!(
        code(
            cas::proxy_ticket(d, Some(&pgt), Some(BOOKS), &settings, &mut r, at)
                .await
                .unwrap()
        ),
        FailureCode::UnauthorizedService
    );
    assert_eq!(
        code(
            cas::proxy_ticket(d, None, Some(VS), &settings, &mut r, at)
                .await
                .unwrap()
        ),
        FailureCode::InvalidRequest
    );

    // Callbacks: a service without the proxy right, plain HTTP, another service's address.
    for (service, url, expected) in [
        (
            VS,
            "https://vie-scolaire.test/rappel",
            FailureCode::UnauthorizedServiceProxy,
        ),
        (PORTAL, "http://portail.test/rappel", FailureCode::InvalidProxyCallback),
        (PORTAL, "https://pirate.test/rappel", FailureCode::InvalidProxyCallback),
    ] {
        let ticket = cas::grant_ticket(d, &token, service, false, &settings, &mut r, at)
            .await
            .unwrap()
            .unwrap();
        let refused = cas::validate(
            d,
            Some(&ticket),
            Some(service),
            with_callback(url),
            &callback,
            &settings,
            &mut r,
            at,
        )
        .await
        .unwrap();
        assert_eq!(refused.unwrap_err().code, expected, "{service} {url}");
    }
    // A callback that does not answer 200: validated, without a PGT.
    let ticket = portal_ticket(&mut r).await;
    let without = cas::validate(
        d,
        Some(&ticket),
        Some(PORTAL),
        with_callback("https://portail.test/rappel"),
        &NoCallback,
        &settings,
        &mut r,
        at,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(without.proxy_granting_ticket, None);

    // The PGT ends with the session.
    cas::logout(d, &token).await.unwrap();
    assert_eq!(
        code(
            cas::proxy_ticket(d, Some(&pgt), Some(VS), &settings, &mut r, at)
                .await
                .unwrap()
        ),
        FailureCode::InvalidTicket
    );
}

async fn a_forgotten_password_is_replaced_through_a_single_use_link(d: &impl Full) {
    let id = setting(d).await;
    let settings = CasSettings::default();
    let mut r = rng(21);
    let at = |minutes: i64| now() + Duration::minutes(minutes);

    // No address yet: nothing to send, and nothing says so.
    assert_eq!(
        cas::request_password_reset(d, "nlavoisier", &mut r, at(0))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        cas::request_password_reset(d, "personne", &mut r, at(0)).await.unwrap(),
        None
    );
    let detail = d.account(id).await.unwrap().unwrap();
    let change = domain::account::AccountChange {
        email: Some("nicole.lavoisier@college.test".into()),
        ..Default::default()
    };
    app::accounts::save_account(d, &detail, None, &change, &operator(), at(0))
        .await
        .unwrap();

    let link = cas::request_password_reset(d, " NLavoisier ", &mut r, at(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.email, "nicole.lavoisier@college.test");
    assert!(link.token.starts_with("RST-"));
    let audit = admin::audit_log(d, 3).await.unwrap();
    let sent = audit
        .iter()
        .find(|e| e.action == "password_reset_link")
        .expect("audited");
    assert_eq!(sent.actor, "nlavoisier");
    assert!(!sent.details.to_string().contains("RST-"), "never the link");
    // Expired after its minutes, unknown when made up.
    let late = cas::request_password_reset(d, "nlavoisier", &mut r, at(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cas::open_password_reset(d, &late.token, &settings, &mut r, at(2 + cas::RESET_LINK_MINUTES))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        cas::open_password_reset(d, "RST-0", &settings, &mut r, at(3))
            .await
            .unwrap(),
        None
    );
    // Three links an hour at most.
    assert!(cas::request_password_reset(d, "nlavoisier", &mut r, at(3))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        cas::request_password_reset(d, "nlavoisier", &mut r, at(4))
            .await
            .unwrap(),
        None
    );
    assert!(cas::request_password_reset(d, "nlavoisier", &mut r, at(62))
        .await
        .unwrap()
        .is_some());

    // The link opens a session that leads only to the change, once.
    let token = cas::open_password_reset(d, &link.token, &settings, &mut r, at(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cas::open_password_reset(d, &link.token, &settings, &mut r, at(5))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        cas::grant_ticket(d, &token, VS, false, &settings, &mut r, at(5))
            .await
            .unwrap(),
        Err(TicketRefusal::PasswordChangePending)
    );
    cas::change_distributed_password(
        d,
        &token,
        "une toute nouvelle phrase",
        "une toute nouvelle phrase",
        ip(),
        &settings,
        &mut r,
        at(6),
    )
    .await
    .unwrap();
    assert!(cas::grant_ticket(d, &token, VS, false, &settings, &mut r, at(6))
        .await
        .unwrap()
        .is_ok());
    let signed = cas::sign_in(
        d,
        "nlavoisier",
        "une toute nouvelle phrase",
        ip(),
        &settings,
        &mut r,
        at(7),
    )
    .await
    .unwrap();
    assert!(matches!(signed, Ok(s) if !s.password_change_pending));

    // A deactivated account gets no link.
    let detail = d.account(id).await.unwrap().unwrap();
    app::accounts::set_active(d, &detail, None, false, &operator(), at(63))
        .await
        .unwrap();
    assert_eq!(
        cas::request_password_reset(d, "nlavoisier", &mut r, at(130))
            .await
            .unwrap(),
        None
    );
}
