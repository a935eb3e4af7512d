//! The account page's reads and saves, and the sign-in check, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../store/tests/common/mod.rs"]
mod common;

use app::accounts::{self, AccountError, SignInFailure};
use app::Actor;
use chrono::Duration;
use common::*;
use domain::account::{AccountChange, SignInRefusal};
use domain::pipeline::Status;
use domain::vocabulary::Channel;
use domain::Profile;
use store::accounts::Accounts;
use store::admin::{self, AdminDirectory};
use store::history::{History, Viewer};
use store::web::{Admin, WebDirectory};
use store::{Directory, UserQuery};

conformance!(
    a_shared_account_is_attached_only_when_confirmed_and_left_to_its_schools,
    account_page_reads_and_saves_settings_with_audit,
    sign_in_checks_password_expiry_and_networks,
    an_admin_deactivates_and_reactivates_an_account_by_hand,
    an_admin_resets_a_password_to_be_changed_at_the_next_sign_in,
    a_person_changes_a_distributed_password_and_weak_hashes_are_upgraded,
    sign_ins_are_throttled_per_login_and_per_address,
);

trait Full: Directory + Accounts + AdminDirectory + History + WebDirectory {}
impl<T: Directory + Accounts + AdminDirectory + History + WebDirectory> Full for T {}

const OTHER: &str = "0010001W";

/// The admin acting from the web pages.
fn act(admin: Admin) -> Actor {
    Actor::new(admin, Channel::Web)
}

fn admin_of(uais: &[&str]) -> Admin {
    Admin {
        id: 7,
        login: "admin-a".into(),
        system: false,
        establishments: uais.iter().map(|u| uai(u)).collect(),
        email: None,
    }
}

/// Imports one teacher with an imposed password; returns their account id.
async fn teacher(d: &impl Full) -> i64 {
    with_establishments(d, &[UAI, OTHER]).await;
    let file = csv(&[
        TEACHER_HEADER,
        "Madame;LAVOISIER;Nicole;Physique-Chimie;;nlavoisier;Chimie-2026!",
    ]);
    import(d, &file, &teachers(UAI)).await;
    let found = d
        .search_users(&UserQuery {
            last_name: Some("lavoisier".into()),
            limit: 5,
            ..UserQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    d.account_id_by_key(&found[0].sync_key).await.unwrap().expect("by key")
}

async fn current(d: &impl Full, id: i64) -> store::accounts::AccountDetail {
    d.account(id).await.unwrap().expect("account")
}

/// Issue "One school's admin cannot take another school's accounts": the
/// admin of OTHER imports a file naming UAI's teacher.
async fn a_shared_account_is_attached_only_when_confirmed_and_left_to_its_schools(d: &impl Full) {
    let id = teacher(d).await;
    let owner_id = d
        .create_admin("admin-b", "x", false, &[uai(UAI)], chrono::Utc::now())
        .await
        .unwrap();
    let importer_id = d
        .create_admin("admin-a", "x", false, &[uai(OTHER)], chrono::Utc::now())
        .await
        .unwrap();
    let key = current(d, id).await.user.sync_key;
    let file = csv(&[
        TEACHER_HEADER,
        // Same person (same key), another phone and an imposed password: neither may change.
        "Madame;LAVOISIER;Nicole;Physique-Chimie;06 99 99 99 99;;",
        "Monsieur;HUGO;Victor;Français;;;",
    ]);
    let mut request = teachers(OTHER);
    request.scope = domain::plan::AdminScope::Establishments([uai(OTHER)].into_iter().collect());
    request.actor = "admin-a".into();

    // Not confirmed: the line is a conflict naming the other school, nothing else.
    let refused = import(d, &file, &request).await;
    assert_eq!(refused.report.status, Status::Rejected);
    let conflict = &refused.plan.conflicts[0];
    assert_eq!((conflict.line, conflict.code), (2, "existing_elsewhere"));
    assert!(
        conflict.message.contains("Collège test 0 (0750654D)"),
        "{}",
        conflict.message
    );
    assert!(!conflict.message.contains("nlavoisier"), "{}", conflict.message);

    // Confirmed: attached, identity untouched, no login handed out anywhere.
    request.attach_existing = true;
    let preview = {
        let mut r = request.clone();
        r.dry_run = true;
        import(d, &file, &r).await
    };
    let plan_json = serde_json::to_string(&preview.plan.updates).unwrap();
    assert!(!plan_json.contains("nlavoisier"), "{plan_json}");
    assert!(plan_json.contains("0750654D"), "{plan_json}");
    let done = import(d, &file, &request).await;
    assert_eq!(done.report.status, Status::Imported);
    assert_eq!(
        (done.report.created, done.report.updated, done.report.attached),
        (1, 1, 1)
    );
    assert!(done.plan.notices.iter().any(|n| n.code == "shared_identity_kept"));
    let rows = result_rows(&done);
    let lavoisier = rows
        .iter()
        .find(|r| r[0] == key)
        .expect("the attached line is in the result file");
    let (login_col, password_col) = (rows[0].len() - 2, rows[0].len() - 1);
    assert_eq!(
        (lavoisier[login_col].as_str(), lavoisier[password_col].as_str()),
        ("", "")
    );
    let text = String::from_utf8_lossy(done.result_file.as_ref().unwrap()).into_owned();
    assert!(!text.contains("nlavoisier") && !text.contains("Chimie-2026!"), "{text}");
    let after = current(d, id).await;
    assert_eq!(
        after.user.mobile, None,
        "the importer cannot change a shared account's identity"
    );
    let mut active: Vec<_> = after
        .memberships
        .iter()
        .filter(|m| m.active)
        .map(|m| m.uai.as_str())
        .collect();
    active.sort_unstable();
    assert_eq!(active, [OTHER, UAI]);

    // The owner's admins find it in their history; the importer's do not; the audit says who.
    let import_id = done.import_id.unwrap();
    let seen = d
        .attachments_seen_by(&Viewer::Admin { id: owner_id }, 10)
        .await
        .unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].attached_uai.as_str(), seen[0].other_uai.as_str()),
        (OTHER, UAI)
    );
    assert!(
        app::labels::attachment(&seen[0])
            .starts_with("Nicole LAVOISIER a été rattaché(e) à Collège test 1 (0010001W) par admin-a le "),
        "{}",
        app::labels::attachment(&seen[0])
    );
    assert!(d
        .attachments_seen_by(&Viewer::Admin { id: importer_id }, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(d.attachments_of_import(import_id).await.unwrap(), seen);
    let audit = admin::audit_log(d, 10).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "account_attach" && e.actor == "admin-a" && e.target == key),
        "{audit:?}"
    );

    // Shared: neither school's admin changes identity or settings; the system admin does.
    let admin_a = act(Admin {
        id: importer_id,
        ..admin_of(&[OTHER])
    });
    let admin_b = act(Admin {
        id: owner_id,
        login: "admin-b".into(),
        ..admin_of(&[UAI])
    });
    let change = AccountChange {
        last_day: Some("30/06/2027".into()),
        ..AccountChange::default()
    };
    for admin in [&admin_a, &admin_b] {
        assert_eq!(
            admin.rights_over(&after),
            domain::account::AccountRights::OwnMembershipsOnly
        );
        let refused = accounts::save_account(d, &after, None, &change, admin, now()).await;
        assert!(
            matches!(&refused, Err(AccountError::Shared(others)) if others.contains("(0")),
            "{refused:?}"
        );
    }
    let system = act(Admin {
        system: true,
        ..admin_of(&[])
    });
    assert_eq!(system.rights_over(&after), domain::account::AccountRights::Full);

    // The importer may end their own membership, and nothing of the other's.
    let refused = accounts::leave_establishment(d, &after, None, &uai(UAI), &admin_a, now()).await;
    assert!(matches!(refused, Err(AccountError::Shared(_))), "{refused:?}");
    accounts::leave_establishment(d, &after, None, &uai(OTHER), &admin_a, now() + Duration::minutes(1))
        .await
        .unwrap();
    let left = current(d, id).await;
    assert!(left.user.active, "still active in its own school");
    assert_eq!(
        left.memberships
            .iter()
            .filter(|m| m.active)
            .map(|m| m.uai.as_str())
            .collect::<Vec<_>>(),
        [UAI]
    );
    assert!(left.groups.iter().all(|g| g.uai.as_str() == UAI), "{:?}", left.groups);
    assert_eq!(admin_b.rights_over(&left), domain::account::AccountRights::Full);
    let again =
        accounts::leave_establishment(d, &left, None, &uai(OTHER), &admin_a, now() + Duration::minutes(2)).await;
    assert!(matches!(again, Err(AccountError::NotMember(_))), "{again:?}");
    let audit = admin::audit_log(d, 10).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "membership_end" && e.actor == "admin-a" && e.target == key));
}

async fn account_page_reads_and_saves_settings_with_audit(d: &impl Full) {
    let id = teacher(d).await;
    let detail = d.account(id).await.unwrap().unwrap();
    assert_eq!(detail.profile, Profile::Enseignant);
    assert_eq!(detail.user.login, "nlavoisier");
    assert_eq!(detail.memberships.len(), 1);
    assert_eq!(detail.memberships[0].uai, uai(UAI));
    assert!(detail.memberships[0].active);
    assert_eq!(
        detail.groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["Physique-Chimie"]
    );
    assert_eq!(detail.state.settings.last_day, None);
    assert!(detail.state.settings.networks.is_empty());
    assert_eq!(detail.last_login_at, None);

    // The other establishment's admin does not see it, and cannot change it.
    let stranger = act(admin_of(&[OTHER]));
    assert!(!stranger.manages(&detail));
    let change = AccountChange {
        last_day: Some("30/06/2027".into()),
        networks: Some("10.1.2.3/8\n192.168.1.10".into()),
        last_name: Some("Lavoisier-Roux".into()),
        ..AccountChange::default()
    };
    let later = now() + Duration::hours(1);
    let refused = accounts::save_account(
        d,
        &current(d, id).await,
        Some(detail.updated_at),
        &change,
        &stranger,
        later,
    )
    .await;
    assert!(matches!(refused, Err(AccountError::NotFound)), "{refused:?}");

    let admin = act(admin_of(&[UAI]));
    let saved = accounts::save_account(
        d,
        &current(d, id).await,
        Some(detail.updated_at),
        &change,
        &admin,
        later,
    )
    .await
    .unwrap();
    let fields: Vec<_> = saved.changes.iter().map(|c| c.field).collect();
    assert_eq!(fields, ["expiration", "plages IP", "nom"]);
    let after = d.account(id).await.unwrap().unwrap();
    assert_eq!(after.state.settings.networks.to_string(), "10.0.0.0/8,192.168.1.10/32");
    assert_eq!(
        after.state.settings.last_day,
        chrono::NaiveDate::from_ymd_opt(2027, 6, 30)
    );
    assert_eq!(after.user.last_name, "Lavoisier-Roux");
    assert_eq!(after.user.sync_key, detail.user.sync_key, "a rename keeps the sync key");
    // The search index follows the new name.
    let found = d
        .search_users(&UserQuery {
            last_name: Some("lavoisier-r".into()),
            limit: 5,
            ..UserQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);

    let log = admin::audit_log(d, 10).await.unwrap();
    let entry = log.iter().find(|e| e.action == "account_update").expect("audited");
    assert_eq!(entry.actor, "admin-a");
    assert_eq!(entry.target, detail.user.sync_key);
    assert_eq!(entry.details["changes"][2]["before"], "LAVOISIER");
    assert_eq!(entry.details["changes"][2]["after"], "Lavoisier-Roux");

    // A page built before that save is stale: nothing is written.
    let again = AccountChange {
        networks: Some(String::new()),
        ..AccountChange::default()
    };
    let stale = accounts::save_account(d, &current(d, id).await, Some(detail.updated_at), &again, &admin, later).await;
    assert!(matches!(stale, Err(AccountError::Stale)), "{stale:?}");
    assert!(!d.account(id).await.unwrap().unwrap().state.settings.networks.is_empty());
    let audits = admin::audit_log(d, 10).await.unwrap();
    assert_eq!(audits.iter().filter(|e| e.action == "account_update").count(), 1);

    // Protected: the identity is read-only, and the next CSV import refuses the line.
    let protect = AccountChange {
        protected: Some(true),
        ..AccountChange::default()
    };
    accounts::save_account(d, &current(d, id).await, None, &protect, &admin, later)
        .await
        .unwrap();
    let rename = AccountChange {
        first_name: Some("Nicolette".into()),
        ..AccountChange::default()
    };
    match accounts::save_account(d, &current(d, id).await, None, &rename, &admin, later).await {
        Err(AccountError::Invalid(e)) => assert_eq!((e[0].0, e[0].1.code), ("protected", "protected_identity")),
        other => panic!("{other:?}"),
    }
    let file = csv(&[TEACHER_HEADER, "Madame;LAVOISIER;Nicole;Chimie;;;"]);
    let codes = codes(&import(d, &file, &teachers(UAI)).await);
    assert_eq!(codes, [(2, "key_protected".to_string())]);
    assert_eq!(d.account(id).await.unwrap().unwrap().user.first_name, "Nicole");

    // A bad range is explained, and nothing changes.
    let bad = AccountChange {
        networks: Some("10.0.0.0/33".into()),
        ..AccountChange::default()
    };
    match accounts::save_account(d, &current(d, id).await, None, &bad, &admin, later).await {
        Err(AccountError::Invalid(e)) => assert!(e[0].1.message.contains("10.0.0.0/33"), "{e:?}"),
        other => panic!("{other:?}"),
    }
}

async fn sign_in_checks_password_expiry_and_networks(d: &impl Full) {
    let id = teacher(d).await;
    let admin = act(admin_of(&[UAI]));
    let change = AccountChange {
        last_day: Some("30/06/2027".into()),
        networks: Some("10.0.0.0/8".into()),
        ..AccountChange::default()
    };
    accounts::save_account(d, &current(d, id).await, None, &change, &admin, now())
        .await
        .unwrap();
    let inside = "10.20.30.40".parse().unwrap();
    let outside = "203.0.113.9".parse().unwrap();
    let at = now() + Duration::days(1);

    assert_eq!(
        accounts::sign_in(d, "NLavoisier", "Chimie-2026!", inside, at)
            .await
            .unwrap(),
        Ok(id)
    );
    assert_eq!(d.account(id).await.unwrap().unwrap().last_login_at, Some(at));
    assert_eq!(
        accounts::sign_in(d, "nlavoisier", "wrong", inside, at).await.unwrap(),
        Err(SignInFailure::BadCredentials)
    );
    assert_eq!(
        accounts::sign_in(d, "nobody", "Chimie-2026!", inside, at)
            .await
            .unwrap(),
        Err(SignInFailure::BadCredentials)
    );
    assert_eq!(
        accounts::sign_in(d, "nlavoisier", "Chimie-2026!", outside, at)
            .await
            .unwrap(),
        Err(SignInFailure::Refused(SignInRefusal::Network(outside)))
    );
    let july = chrono::NaiveDate::from_ymd_opt(2027, 7, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    assert_eq!(
        accounts::sign_in(d, "nlavoisier", "Chimie-2026!", inside, july)
            .await
            .unwrap(),
        Err(SignInFailure::Refused(SignInRefusal::Expired(
            chrono::NaiveDate::from_ymd_opt(2027, 6, 30).unwrap()
        )))
    );
    assert_eq!(
        d.account(id).await.unwrap().unwrap().last_login_at,
        Some(at),
        "a refused sign-in is not recorded"
    );
}

/// Expiry instants stored by the former rule (midnight UTC after the last
/// day), around both daylight-saving Sundays of 2027 (28 March, 31 October).
fn former_expiry_instants() -> Vec<chrono::DateTime<chrono::Utc>> {
    [
        "2027-02-01",
        "2027-03-28",
        "2027-03-29",
        "2027-07-01",
        "2027-10-31",
        "2027-11-01",
    ]
    .iter()
    .map(|d| format!("{d}T00:00:00Z").parse().unwrap())
    .collect()
}

/// After migration 0011 the account keeps its last day, and stops at
/// midnight in Paris after it.
async fn assert_paris_expiry(d: &impl Full, id: i64, former: chrono::DateTime<chrono::Utc>) {
    let last_day = former.date_naive().pred_opt().unwrap();
    let detail = current(d, id).await;
    assert_eq!(detail.state.settings.last_day, Some(last_day), "{former}");
    let stop = domain::account::expires_at(last_day);
    assert_eq!(
        domain::time::minute(stop),
        format!("{} 00:00", former.format("%d/%m/%Y"))
    );
    let ip = "127.0.0.1".parse().unwrap();
    let at = |t| accounts::sign_in(d, "nlavoisier", "Chimie-2026!", ip, t);
    assert_eq!(at(stop - Duration::seconds(1)).await.unwrap(), Ok(id), "{former}");
    assert_eq!(
        at(stop).await.unwrap(),
        Err(SignInFailure::Refused(SignInRefusal::Expired(last_day))),
        "{former}"
    );
}

/// Stores each former instant, runs migration 0011 again, and checks the
/// account's last day and the instant it stops, on one backend.
macro_rules! former_expiry_instants_become_paris_days {
    ($name:ident, $db:expr, $store:literal, $read:literal, $migration:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(db) = $db else { return };
            let id = teacher(&db.directory).await;
            for former in former_expiry_instants() {
                let pool = db.directory.pool();
                sqlx::query($store)
                    .bind(former)
                    .bind(id)
                    .execute(pool)
                    .await
                    .unwrap();
                sqlx::raw_sql(include_str!($migration))
                    .execute(pool)
                    .await
                    .unwrap();
                let stored: chrono::DateTime<chrono::Utc> =
                    sqlx::query_scalar($read).bind(id).fetch_one(pool).await.unwrap();
                assert_eq!(
                    stored,
                    domain::account::expires_at(former.date_naive().pred_opt().unwrap())
                );
                assert_paris_expiry(&db.directory, id, former).await;
            }
            db.finish().await;
        }
    };
}

former_expiry_instants_become_paris_days!(
    former_expiry_instants_become_paris_days_on_sqlite,
    Some(sqlite().await),
    "UPDATE users SET expires_at = ? WHERE id = ?",
    "SELECT expires_at FROM users WHERE id = ?",
    "../../store/migrations/sqlite/0011_paris_expiry_days.sql"
);

former_expiry_instants_become_paris_days!(
    former_expiry_instants_become_paris_days_on_postgres,
    postgres().await,
    "UPDATE users SET expires_at = $1 WHERE id = $2",
    "SELECT expires_at FROM users WHERE id = $1",
    "../../store/migrations/postgres/0011_paris_expiry_days.sql"
);

/// Issue 15, item 10: the user page's "Désactiver" / "Réactiver".
async fn an_admin_deactivates_and_reactivates_an_account_by_hand(d: &impl Full) {
    let id = teacher(d).await;
    let admin = act(admin_of(&[UAI]));
    let ip = "127.0.0.1".parse().unwrap();
    let later = |minutes| now() + Duration::minutes(minutes);
    let other = act(admin_of(&[OTHER]));
    let refused = accounts::set_active(d, &current(d, id).await, None, false, &other, later(1)).await;
    assert!(matches!(refused, Err(AccountError::NotFound)), "{refused:?}");
    let page = current(d, id).await;
    accounts::set_active(d, &page, None, false, &admin, later(1))
        .await
        .unwrap();
    let off = current(d, id).await;
    assert_eq!(off.deactivated_at, Some(later(1)));
    assert!(!off.user.active);
    assert!(
        off.memberships.iter().all(|m| m.active),
        "memberships kept for a reactivation"
    );
    assert_eq!(
        accounts::sign_in(d, "nlavoisier", "Chimie-2026!", ip, later(2))
            .await
            .unwrap(),
        Err(SignInFailure::Refused(SignInRefusal::Deactivated))
    );
    let twice = accounts::set_active(d, &off, None, false, &admin, later(2)).await;
    assert!(matches!(twice, Err(AccountError::AlreadyThere(false))), "{twice:?}");
    // A page built before the deactivation cannot reactivate over it.
    let stale = accounts::set_active(d, &off, Some(page.updated_at), true, &admin, later(2)).await;
    assert!(matches!(stale, Err(AccountError::Stale)), "{stale:?}");
    accounts::set_active(d, &off, None, true, &admin, later(3))
        .await
        .unwrap();
    assert_eq!(
        accounts::sign_in(d, "nlavoisier", "Chimie-2026!", ip, later(4))
            .await
            .unwrap(),
        Ok(id)
    );

    // Left by its last establishment (deactivated with its membership), a
    // reactivation brings the admin's establishment back.
    let on = current(d, id).await;
    accounts::leave_establishment(d, &on, None, &uai(UAI), &admin, later(5))
        .await
        .unwrap();
    let gone = current(d, id).await;
    assert!(!gone.user.active && gone.memberships.iter().all(|m| !m.active));
    accounts::set_active(d, &gone, None, true, &admin, later(6))
        .await
        .unwrap();
    let back = current(d, id).await;
    assert!(back.user.active);
    assert_eq!(
        back.memberships
            .iter()
            .filter(|m| m.active)
            .map(|m| m.uai.as_str())
            .collect::<Vec<_>>(),
        [UAI]
    );
    let log = admin::audit_log(d, 10).await.unwrap();
    let actions: Vec<&str> = log
        .iter()
        .filter(|e| e.target == on.user.sync_key && e.action.starts_with("account_"))
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        actions,
        ["account_reactivate", "account_reactivate", "account_deactivate"],
        "newest first"
    );
}

/// Issue 14, item 7: a new generated password, shown once, that replaces the
/// former at once and must be changed at the next sign-in; audited without it.
async fn an_admin_resets_a_password_to_be_changed_at_the_next_sign_in(d: &impl Full) {
    let id = teacher(d).await;
    let ip = "127.0.0.1".parse().unwrap();
    let later = |minutes| now() + Duration::minutes(minutes);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(14);
    let other = act(admin_of(&[OTHER]));
    let refused = accounts::reset_password(d, &current(d, id).await, None, &other, &mut rng, later(1)).await;
    assert!(matches!(refused, Err(AccountError::NotFound)), "{refused:?}");

    let admin = act(admin_of(&[UAI]));
    let page = current(d, id).await;
    let before = d
        .sign_in_account("nlavoisier")
        .await
        .unwrap()
        .expect("account")
        .password_hash;
    let reset = accounts::reset_password(d, &page, None, &admin, &mut rng, later(1))
        .await
        .unwrap();
    assert_eq!(reset.login, "nlavoisier");
    assert_eq!(reset.password.chars().count(), 12);
    assert_eq!(
        accounts::sign_in(d, "nlavoisier", "Chimie-2026!", ip, later(2))
            .await
            .unwrap(),
        Err(SignInFailure::BadCredentials),
        "the former password no longer works"
    );
    assert_eq!(
        accounts::sign_in(d, "nlavoisier", &reset.password, ip, later(2))
            .await
            .unwrap(),
        Ok(id)
    );
    let stored = d.sign_in_account("nlavoisier").await.unwrap().expect("account");
    assert!(stored.must_change_password, "to be changed at the next sign-in");
    assert_ne!(stored.password_hash, before);
    assert!(
        stored.password_hash.starts_with("$argon2id$v=19$m=1024,t=1"),
        "a generated password's hash: {}",
        stored.password_hash
    );
    let audit = admin::audit_log(d, 5).await.unwrap();
    let row = audit.iter().find(|e| e.action == "password_reset").expect("audited");
    assert!(!row.details.to_string().contains(&reset.password), "never the password");
    // A page read before the reset cannot reset over it.
    let stale = accounts::reset_password(d, &page, Some(page.updated_at), &admin, &mut rng, later(3)).await;
    assert!(matches!(stale, Err(AccountError::Stale)), "{stale:?}");
    // A deactivated account first gets reactivated.
    let fresh = current(d, id).await;
    accounts::set_active(d, &fresh, None, false, &admin, later(4))
        .await
        .unwrap();
    let off = accounts::reset_password(d, &current(d, id).await, None, &admin, &mut rng, later(5)).await;
    assert!(matches!(off, Err(AccountError::Deactivated)), "{off:?}");
}

/// Issue 14, item 1: the first-sign-in change of a distributed password
/// (policy, full Argon2id cost, audited) and the upgrade of a weaker hash of a
/// chosen password at a successful sign-in.
async fn a_person_changes_a_distributed_password_and_weak_hashes_are_upgraded(d: &impl Full) {
    use app::accounts::PasswordChangeError;
    let id = teacher(d).await;
    let ip = "127.0.0.1".parse().unwrap();
    let later = |minutes| now() + Duration::minutes(minutes);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    let admin = act(admin_of(&[UAI]));
    let reset = accounts::reset_password(d, &current(d, id).await, None, &admin, &mut rng, later(1))
        .await
        .unwrap();
    let change = |current: String, new: &'static str, confirm: &'static str| {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(2);
        async move { accounts::change_password(d, "NLavoisier", &current, new, confirm, ip, &mut rng, later(2)).await }
    };
    let wrong = change(
        "pas le bon".into(),
        "des pommes et des poires",
        "des pommes et des poires",
    )
    .await;
    assert!(
        matches!(wrong, Err(PasswordChangeError::SignIn(SignInFailure::BadCredentials))),
        "{wrong:?}"
    );
    let short = change(reset.password.clone(), "court", "court").await;
    assert!(
        matches!(&short, Err(PasswordChangeError::Policy(m)) if m.contains("au moins 12")),
        "{short:?}"
    );
    change(
        reset.password.clone(),
        "des pommes et des poires",
        "des pommes et des poires",
    )
    .await
    .unwrap();
    let stored = d.sign_in_account("nlavoisier").await.unwrap().unwrap();
    assert!(!stored.must_change_password);
    assert!(
        stored.password_hash.starts_with("$argon2id$v=19$m=19456,t=2"),
        "{}",
        stored.password_hash
    );
    assert_eq!(
        accounts::sign_in(d, "nlavoisier", &reset.password, ip, later(3))
            .await
            .unwrap(),
        Err(SignInFailure::BadCredentials)
    );
    assert_eq!(
        accounts::sign_in(d, "nlavoisier", "des pommes et des poires", ip, later(3))
            .await
            .unwrap(),
        Ok(id)
    );
    let audit = admin::audit_log(d, 5).await.unwrap();
    let row = audit.iter().find(|e| e.action == "password_change").expect("audited");
    assert_eq!(row.actor, "nlavoisier");
    assert!(!row.details.to_string().contains("pommes"), "never the password");

    // A chosen password stored under weaker parameters (an older setting) is
    // rehashed at the next successful sign-in, not on a wrong password.
    let weak = domain::password::hash(
        "des pommes et des poires",
        domain::password::SecretOrigin::Generated,
        &domain::password::salt(&mut rng),
    )
    .unwrap();
    assert!(d
        .replace_password_hash(id, &stored.password_hash, &weak, false, None)
        .await
        .unwrap());
    assert!(!accounts::upgrade_hash(d, "nlavoisier", "mauvais", &mut rng)
        .await
        .unwrap());
    assert!(
        accounts::upgrade_hash(d, "nlavoisier", "des pommes et des poires", &mut rng)
            .await
            .unwrap()
    );
    let upgraded = d.sign_in_account("nlavoisier").await.unwrap().unwrap().password_hash;
    assert!(upgraded.starts_with("$argon2id$v=19$m=19456,t=2"), "{upgraded}");
    assert!(
        !accounts::upgrade_hash(d, "nlavoisier", "des pommes et des poires", &mut rng)
            .await
            .unwrap(),
        "once is enough"
    );
}

/// Issue 14, item 1: throttling per login and per address, in the database
/// (shared by every server), for unknown logins too.
async fn sign_ins_are_throttled_per_login_and_per_address(d: &impl Full) {
    use accounts::{throttled_sign_in, Throttle};
    let id = teacher(d).await;
    let throttle = Throttle {
        window_minutes: 15,
        per_login: 3,
        per_address: 5,
    };
    let home: std::net::IpAddr = "192.0.2.10".parse().unwrap();
    let school: std::net::IpAddr = "198.51.100.7".parse().unwrap();
    let at = |minutes| now() + Duration::minutes(minutes);
    for minute in 0..3 {
        let failed = throttled_sign_in(d, "nlavoisier", "mauvais", home, throttle, at(minute))
            .await
            .unwrap();
        assert_eq!(failed, Err(SignInFailure::BadCredentials));
    }
    assert_eq!(
        throttled_sign_in(d, "nlavoisier", "Chimie-2026!", school, throttle, at(4))
            .await
            .unwrap(),
        Err(SignInFailure::Throttled(15)),
        "the login is held, from any address, even with the right password"
    );
    assert_eq!(
        throttled_sign_in(d, "NLavoisier", "Chimie-2026!", school, throttle, at(16))
            .await
            .unwrap(),
        Ok(id),
        "free again once the window has passed"
    );
    // Guessing many logins from one address: the address is held, for an
    // unknown login as for a real one.
    for (n, minute) in (20..25).enumerate() {
        let login = format!("inconnu{n}");
        let failed = throttled_sign_in(d, &login, "x", home, throttle, at(minute))
            .await
            .unwrap();
        assert_eq!(failed, Err(SignInFailure::BadCredentials));
    }
    assert_eq!(
        throttled_sign_in(d, "nlavoisier", "Chimie-2026!", home, throttle, at(26))
            .await
            .unwrap(),
        Err(SignInFailure::Throttled(15))
    );
    assert_eq!(
        throttled_sign_in(d, "nlavoisier", "Chimie-2026!", school, throttle, at(26))
            .await
            .unwrap(),
        Ok(id),
        "another address is not held"
    );
}
