//! The use cases' scope rules: what an actor may restore, export and
//! administer, on both backends (the account page's acts are in
//! `accounts.rs`, the duplicates' in the web and API tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../store/tests/common/mod.rs"]
mod common;

use app::{accounts, admins, establishments, imports, lvs, Actor, Backend, Error};
use chrono::Duration;
use common::*;
use domain::vocabulary::Channel;
use domain::Profile;
use rand::SeedableRng;
use store::history::HistoryFilter;
use store::web::Admin;

conformance!(
    restore_from_the_history_entry_of_a_complet_import,
    an_export_is_refused_outside_the_actors_establishments,
    only_a_system_admin_creates_or_renames_an_establishment,
    administrators_are_created_by_a_system_admin_with_a_strong_password,
    a_manual_account_is_created_in_the_actors_establishments_only,
    only_a_system_actor_imports_the_academic_feed,
    only_a_system_admin_purges_deactivated_accounts,
    the_lvs_export_gives_each_person_their_lvs_profile,
);

fn act(admin: Admin) -> Actor {
    Actor::new(admin, Channel::Web)
}

fn admin_of(login: &str, uais: &[&str]) -> Admin {
    Admin {
        id: 7,
        login: login.into(),
        system: false,
        establishments: uais.iter().map(|u| uai(u)).collect(),
        email: None,
    }
}

async fn restore_from_the_history_entry_of_a_complet_import(d: &impl Backend) {
    with_establishments(d, &[UAI]).await;
    let names = ["ARNAUD", "BLANC", "CHEVALIER", "DUMAS", "FAURE"];
    recorded(d, &teachers_file(&names), &teachers(UAI), now()).await;
    let mut complet = teachers(UAI);
    complet.complet = true;
    complet.confirm_deletions = Some(2);
    recorded(d, &teachers_file(&names[..3]), &complet, now() + Duration::hours(1)).await;
    assert_eq!(d.export_users(&uai(UAI), Profile::Enseignant).await.unwrap().len(), 3);

    // The admin finds the Complet import in the history...
    let entry = d
        .list_imports(&HistoryFilter::everything())
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.complet && e.deactivated > 0)
        .expect("the Complet import is in the history");
    assert_eq!(entry.deactivated, 2);
    assert_eq!(d.still_deactivated_by(entry.id).await.unwrap(), 2);
    // ...and restores from it.
    // Not by an admin of another establishment: for them it does not exist.
    let stranger = act(admin_of("admin-b", &[OTHER_UAI]));
    let refused = imports::restore(d, &stranger, entry.id, now() + Duration::hours(2)).await;
    assert!(matches!(refused, Err(Error::NotFound)), "{refused:?}");
    assert_eq!(d.still_deactivated_by(entry.id).await.unwrap(), 2);
    let admin = act(Admin {
        system: true,
        ..admin_of("admin-a", &[])
    });
    let restored = imports::restore(d, &admin, entry.id, now() + Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(restored, 2);
    assert_eq!(d.still_deactivated_by(entry.id).await.unwrap(), 0);
    let active = d.export_users(&uai(UAI), Profile::Enseignant).await.unwrap();
    assert_eq!(active.len(), 5);
    let audit = store::admin::audit_log(d, 10).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "restore" && a.actor == "admin-a" && a.target == format!("import n° {}", entry.id)));
}

async fn an_export_is_refused_outside_the_actors_establishments(d: &impl Backend) {
    with_establishments(d, &[UAI, OTHER_UAI]).await;
    recorded(d, &teachers_file(&["ARNAUD", "BLANC"]), &teachers(UAI), now()).await;
    let own = act(admin_of("admin-a", &[UAI]));
    let (count, bytes) = imports::export(d, &own, &uai(UAI), Profile::Enseignant).await.unwrap();
    assert_eq!(count, 2);
    assert!(String::from_utf8(bytes).unwrap().contains("ARNAUD"));
    let stranger = act(admin_of("admin-b", &[OTHER_UAI]));
    let refused = imports::export(d, &stranger, &uai(UAI), Profile::Enseignant).await;
    assert!(matches!(refused, Err(Error::NotFound)), "{refused:?}");
    // An establishment the directory does not know is not exported either.
    let system = act(Admin {
        system: true,
        ..admin_of("root", &[])
    });
    let unknown = imports::export(d, &system, &uai("0010001W"), Profile::Enseignant).await;
    assert!(matches!(unknown, Err(Error::NotFound)), "{unknown:?}");
}

async fn only_a_system_admin_creates_or_renames_an_establishment(d: &impl Backend) {
    with_establishments(d, &[UAI]).await;
    let renamed = domain::Establishment {
        uai: uai(UAI),
        name: "Collège Jean Moulin".into(),
    };
    let school_admin = act(admin_of("admin-a", &[UAI]));
    let refused = establishments::save(d, &school_admin, &renamed, now()).await;
    assert!(matches!(refused, Err(Error::SystemOnly(_))), "{refused:?}");
    assert!(refused.as_ref().is_err_and(Error::is_refusal));
    let system = act(Admin {
        system: true,
        ..admin_of("root", &[])
    });
    let former = establishments::save(d, &system, &renamed, now()).await.unwrap();
    assert_eq!(former.as_deref(), Some("Collège test 0"));
    let names = d.list_establishments().await.unwrap();
    assert!(
        names
            .iter()
            .any(|e| e.uai == uai(UAI) && e.name == "Collège Jean Moulin"),
        "{names:?}"
    );
    let audit = store::admin::audit_log(d, 10).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "establishment_rename" && a.actor == "root"));
    assert!(!audit.iter().any(|a| a.actor == "admin-a"));
}

async fn administrators_are_created_by_a_system_admin_with_a_strong_password(d: &impl Backend) {
    with_establishments(d, &[UAI]).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let new = admins::NewAdmin {
        login: "  CPE.Martin ".into(),
        establishments: vec![uai(UAI)],
        email: Some("cpe.martin@exemple.fr".into()),
        ..Default::default()
    };
    let school_admin = act(admin_of("admin-a", &[UAI]));
    let refused = admins::create(d, &school_admin, &new, now(), &mut rng).await;
    assert!(matches!(refused, Err(Error::SystemOnly(_))), "{refused:?}");
    let operator = Actor::operator("cli:test".into());
    let short = admins::NewAdmin {
        password: Some("court".into()),
        ..new.clone()
    };
    let refused = admins::create(d, &operator, &short, now(), &mut rng).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.is_refusal() && e.to_string().contains("12 caractères")),
        "{refused:?}"
    );
    let nowhere = admins::NewAdmin {
        establishments: Vec::new(),
        ..new.clone()
    };
    assert!(admins::create(d, &operator, &nowhere, now(), &mut rng).await.is_err());
    assert!(
        d.admin_by_login("cpe.martin").await.unwrap().is_none(),
        "nothing written when refused"
    );

    let created = admins::create(d, &operator, &new, now(), &mut rng).await.unwrap();
    assert_eq!(created.login, "cpe.martin");
    let secret = created.generated_password.expect("a generated password, shown once");
    let (admin, hash) = d.admin_by_login("cpe.martin").await.unwrap().unwrap();
    assert_eq!(admin.establishments, vec![uai(UAI)]);
    assert_eq!(admin.email.as_deref(), Some("cpe.martin@exemple.fr"));
    assert!(!admin.system);
    assert!(domain::password::verify(&secret, &hash));
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

async fn a_manual_account_is_created_in_the_actors_establishments_only(d: &impl Backend) {
    with_establishments(d, &[UAI, OTHER_UAI]).await;
    let input = |profile: &str, establishment: Option<&str>| domain::manual::ManualUserInput {
        profile: profile.into(),
        establishment: establishment.map(Into::into),
        last_name: "Curie".into(),
        first_name: "Marie".into(),
        ..Default::default()
    };
    let read = |i: domain::manual::ManualUserInput| i.read(now().date_naive(), 8).unwrap();
    let create = |actor: Actor, user: domain::manual::ManualUser| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        async move { accounts::create(d, &actor, &user, Default::default(), 8, now(), &mut rng).await }
    };
    let school_admin = || act(admin_of("admin-a", &[UAI]));
    let elsewhere = create(school_admin(), read(input("enseignant", Some(OTHER_UAI)))).await;
    assert!(matches!(elsewhere, Err(Error::NotFound)), "{elsewhere:?}");
    let guest = create(school_admin(), read(input("invite", None))).await;
    assert!(matches!(guest, Err(Error::NotFound)), "{guest:?}");
    let added = create(school_admin(), read(input("enseignant", Some(UAI))))
        .await
        .unwrap();
    assert_eq!(added.profile, Profile::Enseignant);
    assert!(added.password.is_some());
    let audit = store::admin::audit_log(d, 10).await.unwrap();
    assert_eq!(audit.iter().filter(|a| a.actor == "admin-a").count(), 1, "{audit:?}");
}

async fn only_a_system_actor_imports_the_academic_feed(d: &impl Backend) {
    with_establishments(d, &[UAI]).await;
    let feed = store::aaf::FeedFile::from_bytes(
        "ENT_0750654D_Complet_20261203_PersEducNat_0000.xml",
        br#"<?xml version="1.0" encoding="UTF-8"?><ficAlimMENESR></ficAlimMENESR>"#.to_vec(),
    );
    let request = store::aaf::AafRequest::default();
    let clock = store::service::FixedClock(now());
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let school_admin = act(admin_of("admin-a", &[UAI]));
    let refused = imports::run_feed(
        d,
        &school_admin,
        std::slice::from_ref(&feed),
        &request,
        &clock,
        &mut rng,
    )
    .await;
    assert!(matches!(refused, Err(Error::SystemOnly(_))), "{:?}", refused.err());
    assert!(d.list_imports(&HistoryFilter::everything()).await.unwrap().is_empty());

    let (_, import_id) = imports::run_feed(d, &Actor::scheduler(), &[feed], &request, &clock, &mut rng)
        .await
        .unwrap();
    let entry = d
        .import_entry(import_id.expect("a history line"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.actor, "planificateur");
    assert_eq!(entry.channel, Channel::Schedule);
}

async fn only_a_system_admin_purges_deactivated_accounts(d: &impl Backend) {
    with_establishments(d, &[UAI]).await;
    let names = ["ARNAUD", "BLANC", "CHEVALIER"];
    recorded(d, &teachers_file(&names), &teachers(UAI), now()).await;
    let mut complet = teachers(UAI);
    complet.complet = true;
    complet.confirm_deletions = Some(1);
    recorded(d, &teachers_file(&names[..2]), &complet, now()).await;
    let later = now() + Duration::days(100);
    let school_admin = act(admin_of("admin-a", &[UAI]));
    let refused = accounts::purge(d, &school_admin, 90, later).await;
    assert!(matches!(refused, Err(Error::SystemOnly(_))), "{refused:?}");
    let operator = Actor::operator("cli:test".into());
    assert_eq!(accounts::purge(d, &operator, 90, later).await.unwrap(), 1);
    assert_eq!(d.export_users(&uai(UAI), Profile::Enseignant).await.unwrap().len(), 2);
    let audit = store::admin::audit_log(d, 10).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "purge" && a.actor == "cli:test" && a.details["accounts"] == 1));
    assert!(!audit.iter().any(|a| a.action == "purge" && a.actor == "admin-a"));
}

/// Issue 14, item 6: teachers and staff of one establishment, ordered by
/// name, each with their LVS profile; TOS left out; the actor's scope holds.
async fn the_lvs_export_gives_each_person_their_lvs_profile(d: &impl Backend) {
    with_establishments(d, &[UAI, OTHER_UAI]).await;
    recorded(d, &teachers_file(&["ZOLA", "ARNAUD"]), &teachers(UAI), now()).await;
    let staff = csv(&[
        "Civilité;Nom;Prénom;Fonction (code)",
        "Madame;BARBIER;Véronique;DIR",
        "Monsieur;MARTIN;Paul;TOS",
    ]);
    import(d, &staff, &request(Profile::Administratif, UAI)).await;
    import(d, &teachers_file(&["AILLEURS"]), &teachers(OTHER_UAI)).await;
    let own = act(admin_of("admin-a", &[UAI]));
    let export = lvs::export(d, &own, &uai(UAI)).await.unwrap();
    let rows: Vec<(&str, &str, &str)> = export
        .rows
        .iter()
        .map(|r| (r.last_name.as_str(), r.function.as_str(), r.lvs_profile.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("ARNAUD", "ENS", "Professeur"),
            ("BARBIER", "DIR", "Direction"),
            ("ZOLA", "ENS", "Professeur")
        ]
    );
    assert_eq!(export.left_out, 1, "the TOS agent");
    let stranger = act(admin_of("admin-b", &[OTHER_UAI]));
    let refused = lvs::export(d, &stranger, &uai(UAI)).await;
    assert!(matches!(refused, Err(Error::NotFound)), "{refused:?}");
    // The table is the whole ENT's: a system admin changes it, audited.
    let refused = lvs::set_profile(d, &own, "TOS", lvs::LvsChoice::Profile("Agent".into()), now()).await;
    assert!(matches!(refused, Err(Error::SystemOnly(_))), "{refused:?}");
    let system = act(Admin {
        system: true,
        ..admin_of("root", &[])
    });
    let line = lvs::set_profile(d, &system, "tos", lvs::LvsChoice::Profile("Agent".into()), now())
        .await
        .unwrap();
    assert_eq!(
        (line.code, line.lvs_profile.as_deref(), line.changed),
        ("TOS", Some("Agent"), true)
    );
    lvs::set_profile(d, &system, "DIR", lvs::LvsChoice::NotExported, now())
        .await
        .unwrap();
    let export = lvs::export(d, &own, &uai(UAI)).await.unwrap();
    let names: Vec<(&str, &str)> = export
        .rows
        .iter()
        .map(|r| (r.last_name.as_str(), r.lvs_profile.as_str()))
        .collect();
    assert_eq!(
        names,
        [("ARNAUD", "Professeur"), ("MARTIN", "Agent"), ("ZOLA", "Professeur")]
    );
    let line = lvs::set_profile(d, &system, "DIR", lvs::LvsChoice::Guide, now())
        .await
        .unwrap();
    assert_eq!((line.lvs_profile.as_deref(), line.changed), (Some("Direction"), false));
    let audited = store::admin::audit_log(d, 10).await.unwrap();
    assert_eq!(audited.iter().filter(|e| e.action == "lvs_profile").count(), 3);
}
