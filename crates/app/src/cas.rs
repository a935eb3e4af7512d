//! The CAS server's use cases (issue 14): the registry of services a system
//! admin keeps, the sign-in of a person that opens a single sign-on session,
//! the first-sign-in change of a distributed password, the service tickets
//! and their validation, the logout. The protocol's pure parts are in
//! [`domain::cas`], the tables in [`store::cas`]; the web door only reads
//! parameters and cookies and renders.

use crate::accounts::{PasswordChangeError, SignInFailure, Throttle};
use crate::{Actor, Error, Result};
use chrono::{DateTime, Duration, Utc};
use domain::cas::TicketKind;
use domain::cas::{self as protocol, Attribute, CasPerson, Failure, FailureCode, School, Success};
use domain::password::token_hash;
use domain::person::GroupKind;
use domain::{Profile, Uai};
use std::net::IpAddr;
use store::accounts::{AccountDetail, Accounts};
use store::admin::{AdminDirectory, NewAudit};
use store::cas::{CasService, CasStore, NewTicket, SsoSession, ValidatedTicket};
use store::web::WebDirectory;
use store::{Directory, StoreError};

/// Lifetimes of the server's tickets and sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CasSettings {
    /// A service ticket's lifetime (the specification recommends 10 s at most
    /// between issue and validation).
    pub ticket_seconds: i64,
    /// A single sign-on session ends after this long without use…
    pub idle_minutes: i64,
    /// …and in any case after this long (a school day).
    pub lifetime_hours: i64,
    pub throttle: Throttle,
}

impl Default for CasSettings {
    fn default() -> CasSettings {
        CasSettings {
            ticket_seconds: 10,
            idle_minutes: 120,
            lifetime_hours: 10,
            throttle: Throttle::default(),
        }
    }
}

impl CasSettings {
    fn idle_since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - Duration::minutes(self.idle_minutes)
    }
}

/// What a service gets when the system admin registers it with no list.
pub const DEFAULT_ATTRIBUTES: &str = "login,lastName,firstName,displayName,profile,schools";

/// Why a service was not registered or removed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(String),
    #[error("aucun service ne s'appelle « {0} » : `annuaire services list` donne leurs noms")]
    Unknown(String),
    #[error(transparent)]
    Refused(#[from] Error),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> ServiceError {
        ServiceError::Refused(Error::Store(e))
    }
}

/// Registers a service (system admins only), audited `cas_service_add`.
/// `attributes` empty: [`DEFAULT_ATTRIBUTES`].
#[allow(clippy::too_many_arguments)]
pub async fn add_service<D: CasStore + Directory>(
    d: &D,
    actor: &Actor,
    name: &str,
    url_prefix: &str,
    establishments: &[String],
    attributes: &str,
    proxy: bool,
    now: DateTime<Utc>,
) -> Result<CasService, ServiceError> {
    actor.require_system("enregistrer un service CAS")?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return Err(ServiceError::Invalid(
            "nom de service vide ou trop long : donnez-lui un nom court (60 caractères au plus), par exemple « vie-scolaire »".into(),
        ));
    }
    let url_prefix = protocol::check_url_prefix(url_prefix).map_err(ServiceError::Invalid)?;
    let known = d.list_establishments().await?;
    let mut uais = Vec::new();
    for raw in establishments {
        let uai = Uai::parse(raw).map_err(|e| ServiceError::Invalid(format!("établissement « {raw} » : {e}")))?;
        if !known.iter().any(|e| e.uai == uai) {
            return Err(ServiceError::Invalid(format!(
                "établissement {uai} inconnu de l'annuaire : ajoutez-le d'abord (annuaire establishments add)"
            )));
        }
        if !uais.contains(&uai) {
            uais.push(uai);
        }
    }
    let attributes = if attributes.trim().is_empty() {
        DEFAULT_ATTRIBUTES
    } else {
        attributes
    };
    let attributes = protocol::parse_attributes(attributes).map_err(ServiceError::Invalid)?;
    let service = CasService {
        name: name.to_string(),
        url_prefix,
        establishments: uais,
        attributes,
        proxy,
    };
    let audit = NewAudit {
        at: now,
        actor: actor.name().to_string(),
        action: "cas_service_add".into(),
        target: service.name.clone(),
        details: serde_json::json!({
            "url_prefix": service.url_prefix,
            "establishments": service.establishments.iter().map(Uai::as_str).collect::<Vec<_>>(),
            "attributes": protocol::attribute_list(&service.attributes),
            "proxy": service.proxy,
        }),
    };
    d.add_cas_service(&service, &audit, now).await.map_err(|e| match e {
        StoreError::Conflict(taken) => ServiceError::Invalid(taken),
        other => other.into(),
    })?;
    Ok(service)
}

/// Removes a service (system admins only), audited `cas_service_remove`.
/// Tickets already issued to it can no longer be validated.
pub async fn remove_service<D: CasStore>(
    d: &D,
    actor: &Actor,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    actor.require_system("retirer un service CAS")?;
    let audit = NewAudit {
        at: now,
        actor: actor.name().to_string(),
        action: "cas_service_remove".into(),
        target: name.trim().to_string(),
        details: serde_json::json!({}),
    };
    if d.remove_cas_service(name.trim(), &audit).await? {
        Ok(())
    } else {
        Err(ServiceError::Unknown(name.trim().to_string()))
    }
}

/// The registered services, by name (any admin may read the list).
pub async fn services<D: CasStore>(d: &D) -> Result<Vec<CasService>> {
    Ok(d.cas_services().await?)
}

/// The registered service a URL belongs to: the longest prefix that covers it.
pub fn service_for<'a>(services: &'a [CasService], url: &str) -> Option<&'a CasService> {
    services
        .iter()
        .filter(|s| protocol::service_matches(&s.url_prefix, url))
        .max_by_key(|s| s.url_prefix.len())
}

/// A sign-in that opened a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The single sign-on cookie's value.
    pub token: String,
    /// The password was distributed: no ticket before the change.
    pub password_change_pending: bool,
}

/// A person signs in with their login and password (throttled, refused
/// for a deactivated or expired account or an address out of its ranges):
/// opens a single sign-on session. A password the person chose but stored
/// under weaker parameters is re-hashed at today's cost.
#[allow(clippy::too_many_arguments)]
pub async fn sign_in<D, R>(
    d: &D,
    login: &str,
    password: &str,
    from: IpAddr,
    settings: &CasSettings,
    rng: &mut R,
    now: DateTime<Utc>,
) -> Result<Result<SignedIn, SignInFailure>, StoreError>
where
    D: CasStore + Accounts + WebDirectory,
    R: rand::RngCore + rand::CryptoRng,
{
    let account = match crate::accounts::throttled_account(d, login, password, from, settings.throttle, now).await? {
        Ok(account) => account,
        Err(failure) => return Ok(Err(failure)),
    };
    let (user_id, pending) = (account.id, account.must_change_password);
    crate::accounts::upgrade_verified(d, &account, password, rng).await?;
    let token = protocol::new_ticket(protocol::GRANTING_TICKET, rng);
    d.open_sso_session(
        &token_hash(&token),
        user_id,
        now,
        now + Duration::hours(settings.lifetime_hours),
        pending,
    )
    .await?;
    Ok(Ok(SignedIn {
        token,
        password_change_pending: pending,
    }))
}

/// The session behind a cookie, if still alive (its use is recorded).
pub async fn session<D: CasStore>(
    d: &D,
    token: &str,
    settings: &CasSettings,
    now: DateTime<Utc>,
) -> Result<Option<SsoSession>, StoreError> {
    d.sso_session(&token_hash(token), now, settings.idle_since(now)).await
}

/// Why no ticket was given to a service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketRefusal {
    #[error("votre session a expiré : reconnectez-vous")]
    NoSession,
    #[error("changez d'abord le mot de passe qui vous a été remis")]
    PasswordChangePending,
    #[error("ce service n'est pas enregistré dans l'ENT : l'administrateur de l'ENT doit l'ajouter avant que vous puissiez vous y connecter")]
    UnknownService,
    #[error("le service « {0} » n'est pas ouvert aux personnes de votre établissement")]
    NotYourEstablishment(String),
    #[error("votre compte ne peut plus se connecter : adressez-vous à l'administrateur de votre établissement")]
    AccountClosed,
}

/// A service ticket for `service`, from the session behind `token`.
/// `from_new_login`: the person typed their password for this very request.
pub async fn grant_ticket<D, R>(
    d: &D,
    token: &str,
    service: &str,
    from_new_login: bool,
    settings: &CasSettings,
    rng: &mut R,
    now: DateTime<Utc>,
) -> Result<Result<String, TicketRefusal>, StoreError>
where
    D: CasStore + Accounts,
    R: rand::RngCore + rand::CryptoRng,
{
    let Some(session) = session(d, token, settings, now).await? else {
        return Ok(Err(TicketRefusal::NoSession));
    };
    if session.password_change_pending {
        return Ok(Err(TicketRefusal::PasswordChangePending));
    }
    let services = d.cas_services().await?;
    let Some(registered) = service_for(&services, service) else {
        return Ok(Err(TicketRefusal::UnknownService));
    };
    if let Err(refusal) = may_use(d, session.user_id, registered).await? {
        return Ok(Err(refusal));
    }
    let ticket = protocol::new_ticket(protocol::SERVICE_TICKET, rng);
    d.issue_ticket(&NewTicket {
        ticket_hash: &token_hash(&ticket),
        kind: TicketKind::Service,
        session_hash: &token_hash(token),
        service,
        from_new_login,
        proxies: &[],
        now,
        expires_at: now + Duration::seconds(settings.ticket_seconds),
    })
    .await?;
    Ok(Ok(ticket))
}

/// The account may still sign in, and belongs to one of the service's
/// establishments when it is restricted to some.
async fn may_use<D: Accounts>(
    d: &D,
    user_id: i64,
    registered: &CasService,
) -> Result<Result<(), TicketRefusal>, StoreError> {
    let Some(account) = d.account(user_id).await?.filter(|a| a.deactivated_at.is_none()) else {
        return Ok(Err(TicketRefusal::AccountClosed));
    };
    if !registered.establishments.is_empty()
        && !account
            .memberships
            .iter()
            .any(|m| m.active && registered.establishments.contains(&m.uai))
    {
        return Ok(Err(TicketRefusal::NotYourEstablishment(registered.name.clone())));
    }
    Ok(Ok(()))
}

/// The first-sign-in change: the session was opened with a distributed
/// password, the person chooses theirs ([`domain::password::check_chosen`],
/// not the one handed out), stored at the full Argon2id cost and audited
/// `password_change`; the session may then give tickets.
#[allow(clippy::too_many_arguments)]
pub async fn change_distributed_password<D, R>(
    d: &D,
    token: &str,
    new: &str,
    confirm: &str,
    from: IpAddr,
    settings: &CasSettings,
    rng: &mut R,
    now: DateTime<Utc>,
) -> Result<(), PasswordChangeError>
where
    D: CasStore + Accounts,
    R: rand::RngCore + rand::CryptoRng,
{
    let session = session(d, token, settings, now)
        .await?
        .filter(|s| s.password_change_pending)
        .ok_or(PasswordChangeError::Changed)?;
    let login = d
        .account(session.user_id)
        .await?
        .map(|a| a.user.login)
        .ok_or(PasswordChangeError::Changed)?;
    let account = d
        .sign_in_account(&login.to_lowercase())
        .await?
        .ok_or(PasswordChangeError::Changed)?;
    if let Err(refusal) = domain::account::check_sign_in(account.active, &account.settings, now, from) {
        return Err(PasswordChangeError::SignIn(SignInFailure::Refused(refusal)));
    }
    domain::password::check_chosen(new, confirm, &login, "").map_err(PasswordChangeError::Policy)?;
    if domain::password::verify(new, &account.password_hash) {
        return Err(PasswordChangeError::Policy(
            "choisissez un mot de passe différent de celui qui vous a été remis".into(),
        ));
    }
    let salt = domain::password::salt(rng);
    let hash = domain::password::hash(new, domain::password::SecretOrigin::Chosen, &salt)
        .map_err(|e| PasswordChangeError::Hash(e.to_string()))?;
    let login = login.to_lowercase();
    let audit = NewAudit {
        at: now,
        actor: login.clone(),
        action: "password_change".into(),
        target: login.clone(),
        details: serde_json::json!({ "login": login, "was_distributed": true }),
    };
    if !d
        .replace_password_hash(account.id, &account.password_hash, &hash, false, Some(&audit))
        .await?
    {
        return Err(PasswordChangeError::Changed);
    }
    d.finish_password_change(&token_hash(token)).await?;
    Ok(())
}

/// Which validation a service asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Validation<'a> {
    /// The service asked for a ticket from a typed password (`renew=true`).
    pub renew: bool,
    /// `proxyValidate`: proxy tickets are accepted too.
    pub accept_proxy_tickets: bool,
    /// `pgtUrl`: where to send a proxy-granting ticket.
    pub proxy_callback: Option<&'a str>,
}

/// Delivers a proxy-granting ticket to a service's callback (§2.5.4): an
/// HTTPS GET with `pgtIou` and `pgtId`; true when it answered 200.
pub trait ProxyCallback: Send + Sync {
    fn deliver(&self, url: &str, iou: &str, pgt: &str) -> impl std::future::Future<Output = bool> + Send;
}

/// Validates a service ticket (`/validate`, `serviceValidate`,
/// `p3/serviceValidate`) or, at `proxyValidate`, a proxy ticket too: spent
/// by this first attempt whatever its outcome; refused when expired, issued
/// for another service, or when the account was closed meanwhile. On
/// success, the attributes the service was granted, the proxies a proxy
/// ticket went through, and with `pgtUrl` a proxy-granting ticket delivered
/// to the callback (its IOU in the answer).
#[allow(clippy::too_many_arguments)]
pub async fn validate<D, C, R>(
    d: &D,
    ticket: Option<&str>,
    service: Option<&str>,
    validation: Validation<'_>,
    callback: &C,
    settings: &CasSettings,
    rng: &mut R,
    now: DateTime<Utc>,
) -> Result<Result<Success, Failure>, StoreError>
where
    D: CasStore + Accounts + AdminDirectory,
    C: ProxyCallback,
    R: rand::RngCore + rand::CryptoRng,
{
    let (Some(ticket), Some(service)) = (ticket.filter(|t| !t.is_empty()), service.filter(|s| !s.is_empty())) else {
        return Ok(Err(Failure::new(
            FailureCode::InvalidRequest,
            "les paramètres ticket et service sont obligatoires",
        )));
    };
    let unknown = || Failure::new(FailureCode::InvalidTicket, format!("ticket {ticket} non reconnu"));
    if !ticket.starts_with(protocol::SERVICE_TICKET) && !ticket.starts_with(protocol::PROXY_TICKET) {
        return Ok(Err(unknown()));
    }
    let hash = token_hash(ticket);
    let Some(issued) = d.consume_ticket(&hash, ticket, now).await? else {
        return Ok(Err(unknown()));
    };
    let outcome = check_issued(d, ticket, service, issued, validation, callback, settings, rng, now).await?;
    if outcome.is_err() {
        // Spent but refused: the single logout will not name it.
        d.forget_presented_ticket(&hash).await?;
    }
    Ok(outcome)
}

/// The rules a spent ticket must pass, and the answer when it does.
#[allow(clippy::too_many_arguments)]
async fn check_issued<D, C, R>(
    d: &D,
    ticket: &str,
    service: &str,
    issued: store::cas::IssuedTicket,
    validation: Validation<'_>,
    callback: &C,
    settings: &CasSettings,
    rng: &mut R,
    now: DateTime<Utc>,
) -> Result<Result<Success, Failure>, StoreError>
where
    D: CasStore + Accounts + AdminDirectory,
    C: ProxyCallback,
    R: rand::RngCore + rand::CryptoRng,
{
    if issued.kind == TicketKind::Proxy && !validation.accept_proxy_tickets {
        return Ok(Err(Failure::new(
            FailureCode::InvalidTicketSpec,
            format!("{ticket} est un ticket de proxy : validez-le par proxyValidate"),
        )));
    }
    if issued.expires_at <= now {
        return Ok(Err(Failure::new(
            FailureCode::InvalidTicket,
            format!("ticket {ticket} expiré"),
        )));
    }
    if !same_service(&issued.service, service) {
        return Ok(Err(Failure::new(
            FailureCode::InvalidService,
            format!("le ticket {ticket} n'a pas été émis pour ce service"),
        )));
    }
    if validation.renew && !issued.from_new_login {
        return Ok(Err(Failure::new(
            FailureCode::InvalidTicketSpec,
            "renew=true : ce ticket vient de la session unique, pas d'une saisie du mot de passe",
        )));
    }
    let services = d.cas_services().await?;
    let Some(registered) = service_for(&services, service) else {
        return Ok(Err(Failure::new(
            FailureCode::InvalidService,
            "ce service n'est plus enregistré dans l'ENT",
        )));
    };
    let Some(account) = d.account(issued.user_id).await?.filter(|a| a.deactivated_at.is_none()) else {
        return Ok(Err(Failure::new(
            FailureCode::InvalidTicket,
            format!("ticket {ticket} : le compte ne peut plus se connecter"),
        )));
    };
    let proxy_granting_ticket = match validation.proxy_callback.filter(|u| !u.is_empty()) {
        None => None,
        Some(url) => {
            if !registered.proxy {
                return Ok(Err(Failure::new(
                    FailureCode::UnauthorizedServiceProxy,
                    format!(
                        "le service « {} » n'est pas autorisé à demander des tickets de proxy",
                        registered.name
                    ),
                )));
            }
            if let Err(why) = protocol::check_proxy_callback(url) {
                return Ok(Err(Failure::new(FailureCode::InvalidProxyCallback, why)));
            }
            if service_for(&services, url).map(|s| &s.name) != Some(&registered.name) {
                return Ok(Err(Failure::new(
                    FailureCode::InvalidProxyCallback,
                    format!(
                        "l'adresse de rappel {url} n'appartient pas au service « {} »",
                        registered.name
                    ),
                )));
            }
            let pgt = protocol::new_ticket(protocol::PROXY_GRANTING_TICKET, rng);
            let iou = protocol::new_ticket(protocol::PROXY_GRANTING_IOU, rng);
            if callback.deliver(url, &iou, &pgt).await {
                let mut chain = vec![url.to_string()];
                chain.extend(issued.proxies.iter().cloned());
                d.issue_ticket(&NewTicket {
                    ticket_hash: &token_hash(&pgt),
                    kind: TicketKind::ProxyGranting,
                    session_hash: &issued.session_hash,
                    service: url,
                    from_new_login: false,
                    proxies: &chain,
                    now,
                    expires_at: now + Duration::hours(settings.lifetime_hours),
                })
                .await?;
                Some(iou)
            } else {
                None
            }
        }
    };
    let person = cas_person(d, &account, &registered.attributes).await?;
    Ok(Ok(Success {
        user: account.user.login.clone(),
        attributes: protocol::attribute_values(&person, &registered.attributes),
        authentication_date: issued.authenticated_at,
        from_new_login: issued.from_new_login,
        proxy_granting_ticket,
        proxies: issued.proxies,
    }))
}

/// A proxy ticket for `target`, from a proxy-granting ticket (`/proxy`,
/// §2.7): the target must be registered and open to the person.
pub async fn proxy_ticket<D, R>(
    d: &D,
    pgt: Option<&str>,
    target: Option<&str>,
    settings: &CasSettings,
    rng: &mut R,
    now: DateTime<Utc>,
) -> Result<Result<String, Failure>, StoreError>
where
    D: CasStore + Accounts,
    R: rand::RngCore + rand::CryptoRng,
{
    let (Some(pgt), Some(target)) = (pgt.filter(|t| !t.is_empty()), target.filter(|s| !s.is_empty())) else {
        return Ok(Err(Failure::new(
            FailureCode::InvalidRequest,
            "les paramètres pgt et targetService sont obligatoires",
        )));
    };
    let granting = match pgt.starts_with(protocol::PROXY_GRANTING_TICKET) {
        true => d.proxy_granting_ticket(&token_hash(pgt), now).await?,
        false => None,
    };
    let Some(granting) = granting else {
        return Ok(Err(Failure::new(
            FailureCode::InvalidTicket,
            format!("ticket {pgt} non reconnu ou expiré"),
        )));
    };
    let services = d.cas_services().await?;
    let Some(registered) = service_for(&services, target) else {
        return Ok(Err(Failure::new(
            FailureCode::UnauthorizedService,
            format!("le service {target} n'est pas enregistré dans l'ENT"),
        )));
    };
    if let Err(refusal) = may_use(d, granting.user_id, registered).await? {
        return Ok(Err(Failure::new(FailureCode::UnauthorizedService, refusal.to_string())));
    }
    let ticket = protocol::new_ticket(protocol::PROXY_TICKET, rng);
    d.issue_ticket(&NewTicket {
        ticket_hash: &token_hash(&ticket),
        kind: TicketKind::Proxy,
        session_hash: &granting.session_hash,
        service: target,
        from_new_login: false,
        proxies: &granting.proxies,
        now,
        expires_at: now + Duration::seconds(settings.ticket_seconds),
    })
    .await?;
    Ok(Ok(ticket))
}

/// Two spellings of one service URL (scheme and host case) are the same.
fn same_service(issued: &str, asked: &str) -> bool {
    match (protocol::check_url_prefix(issued), protocol::check_url_prefix(asked)) {
        (Ok(a), Ok(b)) => a == b,
        _ => issued == asked,
    }
}

/// What a service may learn of an account.
/// The establishments' types and the LVS table are read only when the
/// service receives `schools` or `lvsProfile`.
async fn cas_person<D: CasStore + AdminDirectory>(
    d: &D,
    account: &AccountDetail,
    wanted: &[Attribute],
) -> Result<CasPerson, StoreError> {
    let active: Vec<Uai> = account
        .memberships
        .iter()
        .filter(|m| m.active)
        .map(|m| m.uai.clone())
        .collect();
    let kinds = match wanted.contains(&Attribute::Schools) {
        true => d.structure_types(&active).await?,
        false => Vec::new(),
    };
    let schools = account
        .memberships
        .iter()
        .filter(|m| m.active)
        .map(|m| School {
            uai: m.uai.clone(),
            name: m.establishment.clone(),
            kind: kinds
                .iter()
                .find(|(uai, _)| uai == m.uai.as_str())
                .and_then(|(_, kind)| kind.clone()),
        })
        .collect();
    let lvs_profile = match wanted.contains(&Attribute::LvsProfile) {
        true => {
            let overrides = store::admin::lvs_overrides(d).await?;
            domain::lvs::function_and_profile(account.profile, account.user.function_code.as_deref(), &overrides)
                .map(|(_, profile)| profile)
        }
        false => None,
    };
    let classes = account
        .groups
        .iter()
        .filter(|g| g.kind == GroupKind::Class)
        .map(|g| (g.uai.clone(), g.name.clone()))
        .collect();
    let function_code = match account.profile {
        Profile::Enseignant => Some("ENS".to_string()),
        _ => account.user.function_code.clone(),
    };
    Ok(CasPerson {
        login: account.user.login.clone(),
        sync_key: account.user.sync_key.clone(),
        last_name: account.user.last_name.clone(),
        first_name: account.user.first_name.clone(),
        birth_date: account.user.birth_date,
        email: account.user.email.clone(),
        profile: account.profile,
        schools,
        function_code,
        classes,
        lvs_profile,
    })
}

/// How long a "mot de passe oublié" link stays valid.
pub const RESET_LINK_MINUTES: i64 = 30;
/// Links sent to one account per hour at most (a mailbox is not to be flooded).
const RESET_LINKS_PER_HOUR: i64 = 3;

/// A link to mail for a forgotten password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetLink {
    pub email: String,
    /// The link's secret (`RST-` and 256 random bits), kept hashed.
    pub token: String,
}

/// "Mot de passe oublié": a single-use link for the account of `login`, to
/// mail to its address. `None` (and the person is told the same thing) when
/// the login is unknown, the account cannot sign in, has no address, or was
/// sent three links in the last hour: the answer reveals nothing. Audited
/// `password_reset_link` when sent.
pub async fn request_password_reset<D, R>(
    d: &D,
    login: &str,
    rng: &mut R,
    now: DateTime<Utc>,
) -> Result<Option<ResetLink>, StoreError>
where
    D: CasStore + Accounts,
    R: rand::RngCore + rand::CryptoRng,
{
    let login = login.trim().to_lowercase();
    let Some(account) = d.sign_in_account(&login).await? else {
        return Ok(None);
    };
    if !account.active
        || account
            .settings
            .last_day
            .is_some_and(|last| last < domain::time::day(now))
    {
        return Ok(None);
    }
    let Some(email) = d.account(account.id).await?.and_then(|a| a.user.email) else {
        return Ok(None);
    };
    if d.password_resets_since(account.id, now - Duration::hours(1)).await? >= RESET_LINKS_PER_HOUR {
        return Ok(None);
    }
    let token = protocol::new_ticket("RST-", rng);
    let audit = NewAudit {
        at: now,
        actor: login.clone(),
        action: "password_reset_link".into(),
        target: login.clone(),
        details: serde_json::json!({ "login": login, "minutes": RESET_LINK_MINUTES }),
    };
    d.create_password_reset(
        &token_hash(&token),
        account.id,
        now + Duration::minutes(RESET_LINK_MINUTES),
        &audit,
    )
    .await?;
    Ok(Some(ResetLink { email, token }))
}

/// Follows a "mot de passe oublié" link (once, before it expires): opens a
/// session that, as after a distributed password, gives no ticket before
/// the person chooses a new password ([`change_distributed_password`]).
/// The single sign-on token, or `None` for a used, expired or unknown link.
pub async fn open_password_reset<D, R>(
    d: &D,
    link_token: &str,
    settings: &CasSettings,
    rng: &mut R,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError>
where
    D: CasStore,
    R: rand::RngCore + rand::CryptoRng,
{
    let Some(user_id) = d.use_password_reset(&token_hash(link_token), now).await? else {
        return Ok(None);
    };
    let token = protocol::new_ticket(protocol::GRANTING_TICKET, rng);
    d.open_sso_session(
        &token_hash(&token),
        user_id,
        now,
        now + Duration::hours(settings.lifetime_hours),
        true,
    )
    .await?;
    Ok(Some(token))
}

/// Ends the session behind the cookie; the services that validated a ticket
/// in it, for the single logout.
pub async fn logout<D: CasStore>(d: &D, token: &str) -> Result<Vec<ValidatedTicket>, StoreError> {
    d.close_sso_session(&token_hash(token)).await
}
