//! The account page's reads and saves, and the sign-in check, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Duration;
use common::*;
use domain::account::{AccountChange, SignInRefusal};
use domain::Profile;
use store::accounts::{self, AccountError, Accounts, SignInFailure};
use store::admin::{self, AdminDirectory};
use store::web::Admin;
use store::{Directory, UserQuery};

conformance!(
    account_page_reads_and_saves_settings_with_audit,
    sign_in_checks_password_expiry_and_networks,
);

trait Full: Directory + Accounts + AdminDirectory {}
impl<T: Directory + Accounts + AdminDirectory> Full for T {}

const OTHER: &str = "0010001W";

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
    let stranger = admin_of(&[OTHER]);
    assert!(!detail.managed_by(&stranger));
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

    let admin = admin_of(&[UAI]);
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
        Err(AccountError::Invalid(e)) => assert_eq!(e.code, "protected_identity"),
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
        Err(AccountError::Invalid(e)) => assert!(e.message.contains("10.0.0.0/33"), "{}", e.message),
        other => panic!("{other:?}"),
    }
}

async fn sign_in_checks_password_expiry_and_networks(d: &impl Full) {
    let id = teacher(d).await;
    let admin = admin_of(&[UAI]);
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
