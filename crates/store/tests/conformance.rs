//! The directory's behaviour, run on both real backends (SQLite and
//! PostgreSQL) by the `conformance!` macro: every rule of SPEC §4–§8 that needs
//! the directory, with files built here as Excel writes them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use domain::person::{Attributes, Membership, Source};
use domain::pipeline::Status;
use domain::{Profile, Uai};
use store::service::{self, FixedClock, NoProgress, Secret};
use store::{Directory, DirectoryTx, NewUser, UserQuery};

conformance!(
    guide_teachers_create_then_unchanged_then_updated,
    imposed_logins_are_unique_ignoring_case,
    database_enforces_unique_logins_and_keys,
    every_attribute_is_written_and_read_back_by_insert_and_update,
    homonyms_get_numbered_logins_across_imports,
    same_key_twice_in_a_file_is_merged_and_adds_the_establishment,
    keys_of_other_profiles_and_aaf_accounts_are_conflicts,
    conflicts_reject_the_import_unless_skipped,
    dry_run_writes_nothing,
    a_preview_answers_while_an_import_holds_the_lock,
    a_real_run_refuses_a_plan_changed_since_its_preview,
    complet_threshold_confirmation_and_restore,
    complet_spares_aaf_manual_and_other_establishments,
    complet_refuses_files_with_conflicts,
    a_failure_during_apply_leaves_nothing,
    passwords_are_argon2id_and_match_the_result_file,
    export_then_reimport_changes_nothing,
    staff_roles_follow_the_function_code,
    pupils_and_parents_keys_and_classes,
    search_by_prefix_ignores_accents_and_case,
    concurrent_imports_never_share_a_login,
    a_deactivated_account_in_a_new_file_is_reactivated,
    establishments_named_in_the_file_are_checked,
    purge_removes_accounts_after_retention,
    logins_are_fetched_by_index_range,
    highest_numbered_login_of_each_base,
);

async fn guide_teachers_create_then_unchanged_then_updated(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let first = import(d, &guide_teachers(), &teachers(UAI)).await;
    assert_eq!(first.report.status, Status::Imported);
    assert_eq!(counts(&first), (5, 0, 0, 0, 0, 0));
    let rows = result_rows(&first);
    let keys: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        keys,
        [
            "PERSON.m-mmefrancisplaton",
            "PERSON.m-mmerachiddescartes",
            "PERSON.m-mmenicolelavoisier",
            "PERSON.m-mmehenryjames",
            "PERSON.m-mmepaulinemozart"
        ]
    );
    assert_eq!(rows[1][6], "fplaton", "generated login is initial + last name");
    assert_eq!(rows[1][7].len(), 12, "generated password in the result file");

    let again = import(d, &guide_teachers(), &teachers(UAI)).await;
    assert_eq!(counts(&again), (0, 0, 5, 0, 0, 0));
    assert!(
        result_rows(&again)[1..].iter().all(|r| r[7].is_empty()),
        "no password for existing accounts"
    );

    let phone_changed = String::from_utf8(guide_teachers())
        .unwrap()
        .replace("06 12 34 56 78", "07 98 76 54 32");
    let updated = import(d, phone_changed.as_bytes(), &teachers(UAI)).await;
    assert_eq!(counts(&updated), (0, 1, 4, 0, 0, 0));
    let change = &updated.plan.updates[0].changes[0];
    assert_eq!(
        (change.before.as_str(), change.after.as_str()),
        ("06 12 34 56 78", "07 98 76 54 32")
    );
    assert_eq!(d.count_users().await.unwrap(), 5);
}

async fn imposed_logins_are_unique_ignoring_case(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    import(d, &guide_teachers(), &teachers(UAI)).await;
    let file = csv(&[
        TEACHER_HEADER,
        "M.;SOCRATE;Jean;Philosophie;;FPlaton;secret",
        "M.;ARISTOTE;Paul;Philosophie;;aristote;abc",
        "M.;EPICURE;Luc;Philosophie;;ARISTOTE;abcd",
        "M.;ZENON;Marc;Philosophie;;zenon;ab",
        "M.;DIOGENE;Max;Philosophie;;diogene;",
        "M.;THALES;Leo;Philosophie;;;motdepasse",
    ]);
    let o = import(d, &file, &teachers(UAI)).await;
    assert_eq!(o.report.status, Status::Rejected);
    assert_eq!(
        codes(&o),
        vec![
            (2, "login_taken".to_string()),
            (4, "login_duplicate_in_file".to_string()),
            (5, "password_too_short".to_string()),
            (6, "login_without_password".to_string()),
            (7, "password_without_login".to_string()),
        ]
    );
    assert!(o.report.conflict_details[0].message.contains("fplaton"));
    assert_eq!(
        o.report.conflict_details[0].column.as_deref(),
        Some("Nom utilisateur enseignant")
    );
    assert_eq!(d.count_users().await.unwrap(), 5, "rejected: nothing written");

    let mut skip = teachers(UAI);
    skip.skip_conflicts = true;
    let o = import(d, &file, &skip).await;
    assert_eq!((o.report.created, o.report.skipped), (1, 5));
    assert!(store_has_login(d, "aristote").await);
}

async fn store_has_login(d: &impl Directory, login: &str) -> bool {
    d.password_hash(login).await.unwrap().is_some()
}

async fn database_enforces_unique_logins_and_keys(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let attrs = Attributes {
        last_name: "DUPONT".into(),
        first_name: "Jean".into(),
        ..Attributes::default()
    };
    let key = domain::keys::SyncKey::from_stored("PERSON.m-mmejeandupont".into());
    let other_key = domain::keys::SyncKey::from_stored("PERSON.m-mmejeandupont2".into());
    let login = domain::values::Login::from_stored("jdupont".into());
    let new = |key, login| NewUser {
        key,
        profile: Profile::Enseignant,
        source: Source::Csv,
        protected: false,
        attrs: &attrs,
        login,
        password_hash: "x".into(),
        must_change_password: true,
    };
    let mut tx = d.begin().await.unwrap();
    tx.insert_users(&[new(&key, &login)], now()).await.unwrap();
    tx.commit().await.unwrap();

    // Same login, other key: refused by the database itself, not only by the plan.
    let mut tx = d.begin().await.unwrap();
    let err = tx
        .insert_users(&[new(&other_key, &login)], now())
        .await
        .expect_err("unique login");
    assert!(err.to_string().contains("login"), "{err}");
    drop(tx);
    // Same key, other login.
    let other_login = domain::values::Login::from_stored("jdupont9".into());
    let mut tx = d.begin().await.unwrap();
    let err = tx
        .insert_users(&[new(&key, &other_login)], now())
        .await
        .expect_err("unique key");
    assert!(err.to_string().contains("clé"), "{err}");
    drop(tx);
    assert_eq!(d.count_users().await.unwrap(), 1);
}

/// The one mapping of attributes to columns (`users.rs`) serves the inserts,
/// the bulk writes (COPY on PostgreSQL) and the updates of both backends:
/// every attribute reads back as it was written, and a second write replaces
/// each one, down to the empty ones.
async fn every_attribute_is_written_and_read_back_by_insert_and_update(d: &impl Directory) {
    use domain::values::{Civility, Email, Phone, PostalCode};
    with_establishments(d, &[UAI]).await;
    let full = Attributes {
        civility: Some(Civility::parse("Mme").unwrap()),
        last_name: "D'ARTAGNAN-ÉLÉONORE".into(),
        first_name: "Zoé\tab".into(),
        birth_date: chrono::NaiveDate::from_ymd_opt(1967, 11, 7),
        subject: Some("Mathématiques".into()),
        function_code: Some("ENS".into()),
        class_name: Some("3e B".into()),
        address: Some("12, rue de l'École\nBât. A".into()),
        postal_code: Some(PostalCode::from_stored("06000".into())),
        city: Some("Nice".into()),
        landline: Some(Phone::from_stored("+33123456789".into())),
        mobile: Some(Phone::from_stored("+33612345678".into())),
        email: Some(Email::from_stored("zoe@exemple.fr".into())),
        ine: Some("123456789AB".into()),
        level: Some("4EME".into()),
    };
    let other = Attributes {
        civility: Some(Civility::parse("M.").unwrap()),
        last_name: "MARTIN".into(),
        first_name: "Paul".into(),
        birth_date: chrono::NaiveDate::from_ymd_opt(2001, 2, 28),
        subject: None,
        function_code: Some("DOC".into()),
        class_name: None,
        address: None,
        postal_code: None,
        city: Some("Paris".into()),
        landline: None,
        mobile: Some(Phone::from_stored("+33700000000".into())),
        email: None,
        ine: None,
        level: None,
    };
    let key = domain::keys::SyncKey::from_stored("PERSON.m-mmezoedartagnan".into());
    let login = domain::values::Login::from_stored("zdartagnan".into());
    let mut tx = d.begin().await.unwrap();
    let ids = tx
        .insert_users(
            &[NewUser {
                key: &key,
                profile: Profile::Enseignant,
                source: Source::Csv,
                protected: false,
                attrs: &full,
                login: &login,
                password_hash: "x".into(),
                must_change_password: true,
            }],
            now(),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let read = || async {
        let mut tx = d.begin().await.unwrap();
        let rows = tx
            .users_by_keys(&["PERSON.m-mmezoedartagnan".to_string()])
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        rows[0].attributes().unwrap()
    };
    assert_eq!(read().await, full, "as inserted");

    for (next, reactivate) in [(&other, false), (&full, true)] {
        let mut tx = d.begin().await.unwrap();
        tx.update_users(
            &[store::UserUpdate {
                id: ids[0],
                attrs: next,
                reactivate,
            }],
            now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(&read().await, next, "as updated");
    }
    let found = d
        .search_users(&UserQuery {
            last_name: Some("d'artagnan-ele".into()),
            limit: 10,
            ..UserQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "the folded name is written with the name");
}

async fn homonyms_get_numbered_logins_across_imports(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let file = csv(&[
        "Civilité;Nom;Prénom;Matière",
        "M.;MARTIN;Nicolas;Anglais",
        "Mme;MARTIN;Nathalie;Anglais",
        "M.;Martin;Noé;Histoire",
    ]);
    let o = import(d, &file, &teachers(UAI)).await;
    let logins: Vec<String> = result_rows(&o)[1..].iter().map(|r| r[5].clone()).collect();
    assert_eq!(logins, ["nmartin", "nmartin2", "nmartin3"]);
    let second = csv(&[
        "Civilité;Nom;Prénom;Matière",
        "M.;MARTIN;Norbert;Anglais",
        "M.;MARTINEZ;Noa;Anglais",
    ]);
    let o = import(d, &second, &teachers(UAI)).await;
    let logins: Vec<String> = result_rows(&o)[1..].iter().map(|r| r[5].clone()).collect();
    assert_eq!(logins, ["nmartin4", "nmartinez"]);
}

async fn same_key_twice_in_a_file_is_merged_and_adds_the_establishment(d: &impl Directory) {
    with_establishments(d, &[UAI, OTHER_UAI]).await;
    let file = csv(&[
        "Civilité;Nom;Prénom;Fonction;RNE",
        "Mme;BARBIER;Véronique;DIR;0750654D",
        "Mme;Barbier;Veronique;DIR;0750655E",
        "M.;DURAND;Paul;EDU;0750654D",
    ]);
    let mut r = request(Profile::Administratif, UAI);
    r.establishment = None;
    r.establishments_from_file = true;
    let o = import(d, &file, &r).await;
    assert_eq!(counts(&o), (2, 0, 0, 1, 0, 0));
    assert_eq!((o.plan.merges[0].line, o.plan.merges[0].into_line), (3, 2));
    let found = d
        .search_users(&UserQuery {
            last_name: Some("barbier".into()),
            limit: 10,
            ..UserQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].establishments, [UAI, OTHER_UAI]);
    // The result file still has a line per file line, merged ones sharing the account.
    let rows = result_rows(&o);
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1][0], rows[2][0]);
}

async fn insert_existing(
    d: &impl Directory,
    key: &str,
    login: &str,
    profile: Profile,
    source: Source,
    uai_s: &str,
) -> i64 {
    let attrs = Attributes {
        last_name: "AAF".into(),
        first_name: "Compte".into(),
        ..Attributes::default()
    };
    let key = domain::keys::SyncKey::from_stored(key.into());
    let login = domain::values::Login::from_stored(login.into());
    let mut tx = d.begin().await.unwrap();
    let ids = tx
        .insert_users(
            &[NewUser {
                key: &key,
                profile,
                source,
                protected: source == Source::Aaf,
                attrs: &attrs,
                login: &login,
                password_hash: "x".into(),
                must_change_password: false,
            }],
            now(),
        )
        .await
        .unwrap();
    tx.upsert_memberships(&[(
        ids[0],
        Membership {
            uai: uai(uai_s),
            role: "enseignant".into(),
        },
    )])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    ids[0]
}

async fn keys_of_other_profiles_and_aaf_accounts_are_conflicts(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    insert_existing(
        d,
        "PERSON.m-mmejeandupont",
        "jdupont",
        Profile::Administratif,
        Source::Csv,
        UAI,
    )
    .await;
    insert_existing(
        d,
        "PERSON.m-mmeannemartin",
        "amartin",
        Profile::Enseignant,
        Source::Aaf,
        UAI,
    )
    .await;
    let file = csv(&[
        "Civilité;Nom;Prénom;Matière",
        "M.;DUPONT;Jean;Anglais",
        "Mme;MARTIN;Anne;Anglais",
    ]);
    let o = import(d, &file, &teachers(UAI)).await;
    assert_eq!(
        codes(&o),
        vec![(2, "key_other_profile".into()), (3, "key_protected".into())]
    );
    assert!(o.report.conflict_details[0].message.contains("Personnel administratif"));
}

async fn conflicts_reject_the_import_unless_skipped(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let file = csv(&[
        "Civilité;Nom;Prénom;Matière;Email;Code postal;Téléphone fixe;Date de naissance",
        "Docteur;PLATON;Francis;Philosophie;;;;",
        ";DESCARTES;Rachid;Mathématiques;;;;",
        "M.;JAMES;Henry;Anglais;henry.james@;;;",
        "M.;HUGO;Victor;Français;;750;;",
        "M.;ZOLA;Emile;Français;;;12;",
        "M.;VERNE;Jules;Français;;;;31/02/1990",
        "M.;SAND;George;Français;;;;01/01/2090",
        "M.;DUMAS;Alexandre;;;;;",
        "Mme;CURIE;Marie;Physique;marie.curie@exemple.fr;'06000;01 23 45 67 89;07/11/67",
    ]);
    let o = import(d, &file, &teachers(UAI)).await;
    assert_eq!(o.report.status, Status::Rejected);
    assert_eq!(
        codes(&o),
        vec![
            (2, "bad_civility".into()),
            (3, "missing_required".into()),
            (4, "bad_email".into()),
            (5, "bad_postal_code".into()),
            (6, "bad_phone".into()),
            (7, "bad_date".into()),
            (8, "future_date".into()),
            (9, "missing_required".into()),
        ]
    );
    assert_eq!((o.report.rows, o.report.valid, o.report.conflicts), (9, 1, 8));
    assert_eq!(d.count_users().await.unwrap(), 0);
    let mut skip = teachers(UAI);
    skip.skip_conflicts = true;
    let o = import(d, &file, &skip).await;
    assert_eq!(
        (o.report.status, o.report.created, o.report.skipped),
        (Status::Imported, 1, 8)
    );
    let rows = d.export_users(&uai(UAI), Profile::Enseignant).await.unwrap();
    assert_eq!(rows[0].postal_code.as_deref(), Some("06000"));
    assert_eq!(rows[0].landline.as_deref(), Some("+33123456789"));
    assert_eq!(rows[0].birth_date.map(|d| d.to_string()).as_deref(), Some("1967-11-07"));
}

async fn dry_run_writes_nothing(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let mut r = teachers(UAI);
    r.dry_run = true;
    let o = import(d, &guide_teachers(), &r).await;
    assert_eq!((o.report.status, o.report.created), (Status::DryRun, 5));
    assert!(o.result_file.is_none());
    assert_eq!(d.count_users().await.unwrap(), 0);
}

fn teachers_file(names: &[&str]) -> Vec<u8> {
    let mut lines = vec!["Civilité;Nom;Prénom;Matière".to_string()];
    lines.extend(names.iter().map(|n| format!("M.;{n};Jean;Anglais")));
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    csv(&refs)
}

/// The wizard's steps 3–4 and the API's check/plan are dry runs: they read
/// what is committed and take no lock, so they answer while a long import
/// holds the establishment (before, they waited for SQLite's busy timeout or
/// PostgreSQL's row lock).
async fn a_preview_answers_while_an_import_holds_the_lock(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    import(d, &guide_teachers(), &teachers(UAI)).await;
    let mut writer = d.begin().await.unwrap();
    writer.lock_establishments(&[uai(UAI)]).await.unwrap();
    writer.lock_identities(&[], &[]).await.unwrap();

    let phone_changed = String::from_utf8(guide_teachers())
        .unwrap()
        .replace("06 12 34 56 78", "07 98 76 54 32");
    let mut preview = teachers(UAI);
    preview.dry_run = true;
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        try_import(d, phone_changed.as_bytes(), &preview),
    )
    .await
    .expect("the preview waited for the running import's lock")
    .unwrap();
    assert_eq!(outcome.report.status, Status::DryRun);
    assert_eq!(counts(&outcome), (0, 1, 4, 0, 0, 0));
    drop(writer);
}

/// Step 4 shows a plan; the real run re-plans under its locks and writes
/// nothing if what it would do is no longer what the admin approved.
async fn a_real_run_refuses_a_plan_changed_since_its_preview(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let mut preview = teachers(UAI);
    preview.dry_run = true;
    let seen = import(d, &guide_teachers(), &preview).await.plan.fingerprint();
    assert_eq!(
        import(d, &guide_teachers(), &preview).await.plan.fingerprint(),
        seen,
        "the same directory gives the same plan"
    );

    // Someone imports the same people between the summary and the start.
    import(d, &guide_teachers(), &teachers(UAI)).await;
    let imports_before = d.count_users().await.unwrap();
    let mut run = teachers(UAI);
    run.expected_plan = Some(seen);
    match try_import(d, &guide_teachers(), &run).await {
        Err(service::ImportError::PlanChanged) => {}
        Err(e) => panic!("expected PlanChanged, got {e}"),
        Ok(o) => panic!("a changed plan was written: {:?}", o.report.status),
    }
    assert_eq!(d.count_users().await.unwrap(), imports_before);

    // With the summary read again, the run goes through (and changes nothing).
    let seen_again = import(d, &guide_teachers(), &preview).await.plan.fingerprint();
    run.expected_plan = Some(seen_again);
    let applied = import(d, &guide_teachers(), &run).await;
    assert_eq!(applied.report.status, Status::Imported);
    assert_eq!(counts(&applied), (0, 0, 5, 0, 0, 0));

    // Two imports queued one after the other, both bringing a new subject:
    // the group the first creates is no change for the second's people.
    let newcomers = |name: &str| csv(&["Civilité;Nom;Prénom;Matière", &format!("Mme;{name};Anne;Occitan")]);
    let mut second = teachers(UAI);
    second.dry_run = true;
    let seen = import(d, &newcomers("ARAGO"), &second).await.plan.fingerprint();
    import(d, &newcomers("BRASSENS"), &teachers(UAI)).await;
    second.dry_run = false;
    second.expected_plan = Some(seen);
    let applied = import(d, &newcomers("ARAGO"), &second).await;
    assert_eq!(applied.report.created, 1, "{:?}", applied.report.rejection);
}

async fn complet_threshold_confirmation_and_restore(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let all: Vec<String> = (0..20).map(|i| format!("NOM{}", char::from(b'A' + i))).collect();
    let all_refs: Vec<&str> = all.iter().map(String::as_str).collect();
    import(d, &teachers_file(&all_refs), &teachers(UAI)).await;

    // 2 of 20 missing: 10 % of 20 = 2, within the threshold.
    let mut complet = teachers(UAI);
    complet.complet = true;
    let o = import(d, &teachers_file(&all_refs[..18]), &complet).await;
    assert_eq!(o.report.status, Status::Imported);
    assert_eq!(o.report.deactivated, 2);
    let deactivated: Vec<&str> = o.plan.deactivations.iter().map(|x| x.last_name.as_str()).collect();
    assert_eq!(deactivated, ["NOMS", "NOMT"]);
    let import_id = o.import_id.unwrap();
    let active = d.export_users(&uai(UAI), Profile::Enseignant).await.unwrap();
    assert_eq!(active.len(), 18);

    // 5 more missing out of 18: over the threshold (1), refused...
    let o = import(d, &teachers_file(&all_refs[..13]), &complet).await;
    assert_eq!(o.report.status, Status::Rejected);
    assert!(o.report.rejection.as_deref().unwrap().contains("--confirm-deletions 5"));
    assert_eq!(d.export_users(&uai(UAI), Profile::Enseignant).await.unwrap().len(), 18);
    // ...also with a wrong confirmation...
    complet.confirm_deletions = Some(4);
    let o = import(d, &teachers_file(&all_refs[..13]), &complet).await;
    assert_eq!(o.report.status, Status::Rejected);
    // ...and applied with the exact number.
    complet.confirm_deletions = Some(5);
    let o = import(d, &teachers_file(&all_refs[..13]), &complet).await;
    assert_eq!((o.report.status, o.report.deactivated), (Status::Imported, 5));
    assert_eq!(d.export_users(&uai(UAI), Profile::Enseignant).await.unwrap().len(), 13);

    // Restore the first Complet import: its two accounts come back.
    assert_eq!(d.restore_import(import_id, now()).await.unwrap(), 2);
    assert_eq!(d.export_users(&uai(UAI), Profile::Enseignant).await.unwrap().len(), 15);
    let restored = d
        .search_users(&UserQuery {
            last_name: Some("noms".into()),
            limit: 5,
            ..UserQuery::default()
        })
        .await
        .unwrap();
    assert!(restored[0].active);
}

async fn complet_spares_aaf_manual_and_other_establishments(d: &impl Directory) {
    with_establishments(d, &[UAI, OTHER_UAI]).await;
    insert_existing(d, "PERSON.1841028", "caaf", Profile::Enseignant, Source::Aaf, UAI).await;
    insert_existing(
        d,
        "PERSON.m-mmemanuel",
        "cmanuel",
        Profile::Enseignant,
        Source::Manual,
        UAI,
    )
    .await;
    let names: Vec<String> = (0..10).map(|i| format!("PROF{}", char::from(b'A' + i))).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    import(d, &teachers_file(&refs), &teachers(UAI)).await;
    // PROFA also teaches in the other establishment.
    import(d, &teachers_file(&refs[..1]), &teachers(OTHER_UAI)).await;

    let mut complet = teachers(UAI);
    complet.complet = true;
    let o = import(d, &teachers_file(&refs[1..]), &complet).await;
    assert_eq!(o.report.status, Status::Imported);
    assert_eq!(
        o.plan.scope_size, 10,
        "only csv teachers of this establishment are in scope"
    );
    assert_eq!(o.plan.deactivations.len(), 1);
    assert!(
        !o.plan.deactivations[0].whole_account,
        "PROFA stays active in the other establishment"
    );
    let profa = d
        .search_users(&UserQuery {
            last_name: Some("profa".into()),
            limit: 5,
            ..UserQuery::default()
        })
        .await
        .unwrap();
    assert!(profa[0].active);
    assert_eq!(profa[0].establishments, [OTHER_UAI]);
    let aaf = d
        .search_users(&UserQuery {
            login: Some("caaf".into()),
            limit: 5,
            ..UserQuery::default()
        })
        .await
        .unwrap();
    assert!(aaf[0].active && aaf[0].establishments == [UAI]);
}

async fn complet_refuses_files_with_conflicts(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    import(d, &teachers_file(&["UN", "DEUX", "TROIS"]), &teachers(UAI)).await;
    let mut complet = teachers(UAI);
    complet.complet = true;
    complet.skip_conflicts = true;
    let file = csv(&[
        "Civilité;Nom;Prénom;Matière",
        "M.;UN;Jean;Anglais",
        "Docteur;DEUX;Jean;Anglais",
        "M.;TROIS;Jean;Anglais",
    ]);
    let o = import(d, &file, &complet).await;
    assert_eq!(o.report.status, Status::Rejected);
    assert!(o.report.rejection.unwrap().contains("Complet"));
    // A file whose lines are all in conflict never deletes anybody either.
    let o = import(
        d,
        &csv(&["Civilité;Nom;Prénom;Matière", "Docteur;UN;Jean;Anglais"]),
        &complet,
    )
    .await;
    assert_eq!(o.report.status, Status::Rejected);
    // A header alone is refused before any planning.
    let err = try_import(d, &csv(&["Civilité;Nom;Prénom;Matière"]), &complet)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("aucune ligne de données"), "{err}");
    assert_eq!(d.export_users(&uai(UAI), Profile::Enseignant).await.unwrap().len(), 3);
}

/// A real transaction whose `add_group_members` fails, as a crash mid-import would.
struct FailingTx<T>(T);

impl<T: DirectoryTx> DirectoryTx for FailingTx<T> {
    async fn lock_establishments(&mut self, u: &[Uai]) -> store::Result<()> {
        self.0.lock_establishments(u).await
    }
    async fn lock_identities(&mut self, k: &[String], l: &[String]) -> store::Result<()> {
        self.0.lock_identities(k, l).await
    }
    async fn lock_every_identity(&mut self) -> store::Result<()> {
        self.0.lock_every_identity().await
    }
    async fn refresh_statistics(&mut self) -> store::Result<()> {
        self.0.refresh_statistics().await
    }
    async fn known_establishments(&mut self, u: &[Uai]) -> store::Result<Vec<Uai>> {
        self.0.known_establishments(u).await
    }
    async fn establishment_names(&mut self, u: &[Uai]) -> store::Result<Vec<(Uai, String)>> {
        self.0.establishment_names(u).await
    }
    async fn record_attachment(&mut self, a: &store::history::NewAttachment) -> store::Result<()> {
        self.0.record_attachment(a).await
    }
    async fn users_by_keys(&mut self, k: &[String]) -> store::Result<Vec<store::UserRow>> {
        self.0.users_by_keys(k).await
    }
    async fn memberships_of(&mut self, i: &[i64]) -> store::Result<Vec<(i64, domain::person::ExistingMembership)>> {
        self.0.memberships_of(i).await
    }
    async fn groups_of(&mut self, i: &[i64]) -> store::Result<Vec<(i64, domain::person::GroupRef)>> {
        self.0.groups_of(i).await
    }
    async fn login_owners(&mut self, l: &[String]) -> store::Result<Vec<(String, String)>> {
        self.0.login_owners(l).await
    }
    async fn logins_near(&mut self, b: &[String]) -> store::Result<Vec<String>> {
        self.0.logins_near(b).await
    }
    async fn logins_highest(&mut self, b: &[String]) -> store::Result<Vec<String>> {
        self.0.logins_highest(b).await
    }
    async fn groups_in(&mut self, u: &[Uai]) -> store::Result<Vec<(i64, domain::person::GroupRef)>> {
        self.0.groups_in(u).await
    }
    async fn complet_scope(&mut self, p: Profile, u: &[Uai]) -> store::Result<Vec<String>> {
        self.0.complet_scope(p, u).await
    }
    async fn insert_import(&mut self, r: &store::ImportRecord) -> store::Result<i64> {
        self.0.insert_import(r).await
    }
    async fn update_import(&mut self, i: i64, r: &store::ImportRecord) -> store::Result<()> {
        self.0.update_import(i, r).await
    }
    async fn insert_skipped_lines(&mut self, i: i64, c: &[u8]) -> store::Result<()> {
        self.0.insert_skipped_lines(i, c).await
    }
    async fn insert_import_result(
        &mut self,
        i: i64,
        c: &[u8],
        s: &str,
        e: chrono::DateTime<chrono::Utc>,
    ) -> store::Result<()> {
        self.0.insert_import_result(i, c, s, e).await
    }
    async fn insert_groups(&mut self, g: &[domain::person::GroupRef]) -> store::Result<()> {
        self.0.insert_groups(g).await
    }
    async fn insert_users(&mut self, u: &[NewUser<'_>], n: chrono::DateTime<chrono::Utc>) -> store::Result<Vec<i64>> {
        self.0.insert_users(u, n).await
    }
    async fn update_users(
        &mut self,
        u: &[store::UserUpdate<'_>],
        n: chrono::DateTime<chrono::Utc>,
    ) -> store::Result<()> {
        self.0.update_users(u, n).await
    }
    async fn set_profiles(&mut self, r: &[(i64, Profile)], n: chrono::DateTime<chrono::Utc>) -> store::Result<()> {
        self.0.set_profiles(r, n).await
    }
    async fn upsert_memberships(&mut self, r: &[(i64, Membership)]) -> store::Result<()> {
        self.0.upsert_memberships(r).await
    }
    async fn add_group_members(&mut self, _: &[(i64, i64)]) -> store::Result<()> {
        Err(store::StoreError::Conflict("panne simulée".into()))
    }
    async fn deactivate_memberships(
        &mut self,
        r: &[(i64, Uai)],
        i: i64,
        n: chrono::DateTime<chrono::Utc>,
    ) -> store::Result<()> {
        self.0.deactivate_memberships(r, i, n).await
    }
    async fn deactivate_users(&mut self, r: &[i64], i: i64, n: chrono::DateTime<chrono::Utc>) -> store::Result<()> {
        self.0.deactivate_users(r, i, n).await
    }
    async fn write_links(&mut self, r: &[(i64, i64)], l: &[store::StoredLink]) -> store::Result<()> {
        self.0.write_links(r, l).await
    }
    async fn links_of(&mut self, ids: &[i64]) -> store::Result<Vec<store::StoredLink>> {
        self.0.links_of(ids).await
    }
    async fn remove_group_members(&mut self, rows: &[(i64, i64)]) -> store::Result<()> {
        self.0.remove_group_members(rows).await
    }
    async fn former_keys(&mut self, keys: &[String]) -> store::Result<Vec<(String, String)>> {
        self.0.former_keys(keys).await
    }
    async fn commit(self) -> store::Result<()> {
        self.0.commit().await
    }
}

async fn a_failure_during_apply_leaves_nothing(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let r = teachers(UAI);
    let (read, checked) = service::check_file(&guide_teachers(), &r, now().date_naive()).unwrap();
    let options = domain::plan::PlanOptions {
        profile: Profile::Enseignant,
        establishment: r.establishment.clone(),
        establishments_from_file: false,
        complet: false,
        skip_conflicts: false,
        confirm_deletions: None,
        deletion_threshold_percent: 10,
        login_pattern: Default::default(),
        scope: domain::plan::AdminScope::All,
        attach_existing: false,
    };
    let lookup = domain::plan::lookup_for(&checked, &read.mapping, &options);
    let mut tx = FailingTx(d.begin().await.unwrap());
    tx.lock_establishments(&lookup.establishments).await.unwrap();
    let snapshot = store::fetch_snapshot(&mut tx, &lookup).await.unwrap();
    let plan = domain::plan::plan(&checked, &read.mapping, &snapshot, &options);
    assert_eq!(plan.creates.len(), 5);
    let secrets: Vec<Secret> = plan
        .creates
        .iter()
        .map(|_| Secret {
            cleartext: "x".into(),
            hash: "h".into(),
            origin: domain::password::SecretOrigin::Generated,
        })
        .collect();
    let err = service::apply(&mut tx, &plan, &secrets, 1, now(), &NoProgress)
        .await
        .err();
    assert!(err.is_some());
    drop(tx);
    assert_eq!(
        d.count_users().await.unwrap(),
        0,
        "users inserted before the failure are rolled back"
    );
    // And the same import then runs cleanly.
    let o = service::run_import(
        d,
        &guide_teachers(),
        &r,
        &FixedClock(now()),
        &mut rand::rngs::OsRng,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(o.report.created, 5);
}

async fn passwords_are_argon2id_and_match_the_result_file(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let file = csv(&[
        TEACHER_HEADER,
        "M.;SOCRATE;Jean;Philosophie;;jsocrate;abc",
        "M.;ZENON;Marc;Philosophie;;;",
    ]);
    let o = import(d, &file, &teachers(UAI)).await;
    let rows = result_rows(&o);
    assert_eq!((rows[1][6].as_str(), rows[1][7].as_str()), ("jsocrate", "abc"));
    let imposed = d.password_hash("JSOCRATE").await.unwrap().unwrap();
    assert!(imposed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{imposed}");
    assert!(domain::password::verify("abc", &imposed));
    let (login, password) = (&rows[2][6], &rows[2][7]);
    let generated = d.password_hash(login).await.unwrap().unwrap();
    assert!(generated.starts_with("$argon2id$"), "{generated}");
    assert!(domain::password::verify(password, &generated));
    assert!(
        domain::password::needs_rehash(&generated),
        "generated secrets are rehashed at first login"
    );
}

/// Every column survives the round trip; the backslash checks the escaping of
/// PostgreSQL's COPY, which writes new accounts.
async fn export_then_reimport_changes_nothing(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let file = csv(&[
        "Civilité;Nom;Prénom;Matière;Date de naissance;Adresse;Code postal;Ville;Téléphone fixe;Téléphone portable;Email",
        "Mme;LEFÈVRE-DURAND;Marie-Hélène;Histoire-Géographie;07/11/67;3 rue de l'École \\ bât. B;'06000;Nice;04 93 00 00 00;+33 6 12 34 56 78;MH.Lefevre@Exemple.fr",
        "M.;N'DIAYE;Moussa;EPS;;;;;;;",
        "Mlle;ØSTERGÅRD;Åsa;Allemand;29/02/2000;;6000;;;612345678;",
    ]);
    import(d, &file, &teachers(UAI)).await;
    let (_, export) = service::export_csv(d, &uai(UAI), Profile::Enseignant, &domain::plan::AdminScope::All)
        .await
        .unwrap();
    let o = import(d, &export, &teachers(UAI)).await;
    assert_eq!(counts(&o), (0, 0, 3, 0, 0, 0), "{:?}", o.plan.updates);
}

async fn staff_roles_follow_the_function_code(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let file = csv(&[
        "Civilité;Nom;Prénom;Fonction",
        "Mme;BARBIER;Véronique;DIR",
        "M.;DURAND;Paul;edu",
        "M.;LEROY;Luc;ENS",
        "M.;PETIT;Marc;XYZ",
    ]);
    let mut r = request(Profile::Administratif, UAI);
    r.skip_conflicts = true;
    let o = import(d, &file, &r).await;
    assert_eq!(
        codes(&o),
        vec![(4, "ens_for_staff".into()), (5, "unknown_function".into())]
    );
    let roles: Vec<(String, String)> = o
        .plan
        .creates
        .iter()
        .map(|c| (c.attrs.function_code.clone().unwrap(), c.memberships[0].role.clone()))
        .collect();
    assert_eq!(
        roles,
        [
            ("DIR".into(), "administrateur".into()),
            ("EDU".into(), "enseignant".into())
        ]
    );
}

async fn pupils_and_parents_keys_and_classes(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let pupils = csv(&[
        "Nom eleve;Prenom eleve;Date de naissance eleve;Classe eleve",
        "CEPE;Noam;03/08/2012;CP",
        "CEPE;Léa;03/08/2012;CP",
    ]);
    let o = import(d, &pupils, &request(Profile::Eleve, UAI)).await;
    assert_eq!(o.report.status, Status::Imported, "{:?}", o.report);
    let rows = result_rows(&o);
    assert_eq!(rows[0][0], "Cle synchro eleve");
    assert_eq!((rows[1][0].as_str(), rows[1][5].as_str()), ("noamcepe03", "ncepe"));
    assert_eq!((rows[2][0].as_str(), rows[2][5].as_str()), ("leacepe03", "lcepe"));
    assert_eq!(o.plan.new_groups.len(), 1, "one class group CP");
    let missing = try_import(
        d,
        &csv(&["Nom;Prénom;Classe", "CEPE;Noam;CP"]),
        &request(Profile::Eleve, UAI),
    )
    .await;
    let err = missing.err().expect("birth date is mandatory for pupils");
    assert!(
        err.is_rejection() && err.to_string().contains("Date de naissance eleve"),
        "{err}"
    );
    let parents = csv(&[
        "Civilité;Nom;Prénom;Code postal;Email",
        "Mme;CEPE;Anne;75011;anne.cepe@exemple.fr",
    ]);
    let o = import(d, &parents, &request(Profile::Parent, UAI)).await;
    assert_eq!(result_rows(&o)[1][0], "annecepe75011");
}

async fn search_by_prefix_ignores_accents_and_case(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let file = csv(&[
        "Civilité;Nom;Prénom;Matière",
        "Mme;LEFÈVRE;Élodie;Anglais",
        "M.;Lefebvre;Marc;Anglais",
        "M.;LEGRAND;Luc;Anglais",
    ]);
    import(d, &file, &teachers(UAI)).await;
    let q = |last: &str, first: Option<&str>| UserQuery {
        last_name: Some(last.into()),
        first_name: first.map(str::to_string),
        profiles: vec![Profile::Enseignant],
        limit: 10,
        ..UserQuery::default()
    };
    let names = |v: Vec<store::UserSummary>| v.into_iter().map(|u| u.last_name).collect::<Vec<_>>();
    assert_eq!(
        names(d.search_users(&q("lef", None)).await.unwrap()),
        ["Lefebvre", "LEFÈVRE"]
    );
    assert_eq!(names(d.search_users(&q("LEFÈV", None)).await.unwrap()), ["LEFÈVRE"]);
    assert_eq!(names(d.search_users(&q("le", Some("elo"))).await.unwrap()), ["LEFÈVRE"]);
    let none = d
        .search_users(&UserQuery {
            last_name: Some("le".into()),
            profiles: vec![Profile::Eleve],
            limit: 10,
            ..UserQuery::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}

async fn concurrent_imports_never_share_a_login(d: &impl Directory) {
    with_establishments(d, &[UAI, OTHER_UAI]).await;
    let a = csv(&[
        "Civilité;Nom;Prénom;Matière",
        "M.;ROUSSEAU;Jean;Philosophie",
        "M.;ROUSSEAU;Jacques;Histoire",
    ]);
    let b = csv(&[
        "Civilité;Nom;Prénom;Matière",
        "M.;ROUSSEAU;Julien;Anglais",
        "M.;ROUSSEAU;Joseph;Anglais",
    ]);
    let (ra, rb) = (teachers(UAI), teachers(OTHER_UAI));
    let (oa, ob) = tokio::join!(import(d, &a, &ra), import(d, &b, &rb));
    let mut logins: Vec<String> = result_rows(&oa)[1..]
        .iter()
        .chain(result_rows(&ob)[1..].iter())
        .map(|r| r[5].clone())
        .collect();
    logins.sort();
    assert_eq!(logins, ["jrousseau", "jrousseau2", "jrousseau3", "jrousseau4"]);
}

async fn a_deactivated_account_in_a_new_file_is_reactivated(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    import(d, &teachers_file(&["UN", "DEUX", "TROIS"]), &teachers(UAI)).await;
    let mut complet = teachers(UAI);
    complet.complet = true;
    complet.confirm_deletions = Some(1);
    let o = import(d, &teachers_file(&["UN", "DEUX"]), &complet).await;
    assert_eq!(o.report.deactivated, 1);
    let o = import(d, &teachers_file(&["TROIS"]), &teachers(UAI)).await;
    assert_eq!(counts(&o), (0, 1, 0, 0, 0, 0));
    assert!(o.plan.updates[0].reactivate);
    assert_eq!(d.export_users(&uai(UAI), Profile::Enseignant).await.unwrap().len(), 3);
}

async fn establishments_named_in_the_file_are_checked(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let file = csv(&[
        "Civilité;Nom;Prénom;Fonction;RNE",
        "Mme;BARBIER;Véronique;DIR;0750654D",
        "M.;DURAND;Paul;EDU;0750655E",
        "M.;LEROY;Luc;EDU;0750655A",
        "M.;PETIT;Luc;EDU;",
    ]);
    let mut r = request(Profile::Administratif, UAI);
    r.establishment = None;
    r.establishments_from_file = true;
    let o = import(d, &file, &r).await;
    assert_eq!(
        codes(&o),
        vec![
            (3, "unknown_establishment".into()),
            (4, "bad_uai".into()),
            (5, "missing_required".into())
        ]
    );
    // Without the option, a line naming another establishment is refused.
    let mut r = request(Profile::Administratif, UAI);
    r.skip_conflicts = true;
    let o = import(d, &file, &r).await;
    assert_eq!(o.report.conflict_details[0].code, "uai_mismatch");
    assert_eq!(o.report.created, 2, "BARBIER (same UAI) and PETIT (no UAI)");
    // An establishment admin's scope is checked on every line.
    let mut scoped = request(Profile::Administratif, UAI);
    scoped.establishment = None;
    scoped.establishments_from_file = true;
    scoped.scope = domain::plan::AdminScope::Establishments([uai(OTHER_UAI)].into_iter().collect());
    let o = import(
        d,
        &csv(&["Civilité;Nom;Prénom;Fonction;RNE", "M.;NOUVEAU;Jean;EDU;0750654D"]),
        &scoped,
    )
    .await;
    assert_eq!(o.report.conflict_details[0].code, "out_of_scope");
}

async fn purge_removes_accounts_after_retention(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    import(d, &teachers_file(&["UN", "DEUX"]), &teachers(UAI)).await;
    let mut complet = teachers(UAI);
    complet.complet = true;
    complet.confirm_deletions = Some(1);
    import(d, &teachers_file(&["UN"]), &complet).await;
    assert_eq!(
        d.purge_deactivated(now() - chrono::Duration::days(90)).await.unwrap(),
        0,
        "still within retention"
    );
    assert_eq!(d.purge_deactivated(now() + chrono::Duration::days(1)).await.unwrap(), 1);
    assert_eq!(d.count_users().await.unwrap(), 1);
}

async fn logins_are_fetched_by_index_range(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    for login in ["nmartin", "nmartin7", "nmartinez", "nmartin-x", "nmarti"] {
        insert_existing(
            d,
            &format!("PERSON.{login}"),
            login,
            Profile::Administratif,
            Source::Manual,
            UAI,
        )
        .await;
    }
    let mut tx = d.begin().await.unwrap();
    let mut near = tx.logins_near(&["nmartin".to_string()]).await.unwrap();
    near.sort();
    assert_eq!(
        near,
        ["nmartin", "nmartin-x", "nmartin7"],
        "the range [base, base:) and nothing else"
    );
}

async fn highest_numbered_login_of_each_base(d: &impl Directory) {
    with_establishments(d, &[UAI]).await;
    let existing = [
        "nmartin",
        "nmartin7",
        "nmartin12",
        "nmartin9",
        "nmartinez",
        "nmartin-x",
        "nmarti",
        "jdoe3",
        "jdoe10",
    ];
    for login in existing {
        insert_existing(
            d,
            &format!("PERSON.{login}"),
            login,
            Profile::Administratif,
            Source::Manual,
            UAI,
        )
        .await;
    }
    let mut tx = d.begin().await.unwrap();
    let bases = ["nmartin", "nmarti", "jdoe", "absent"].map(String::from);
    let mut highest = tx.logins_highest(&bases).await.unwrap();
    highest.sort();
    highest.dedup();
    assert_eq!(
        highest,
        ["jdoe10", "nmarti", "nmartin", "nmartin12"],
        "the longest number, then the greatest; the base itself; nothing for an unknown base"
    );
    drop(tx);
    // The next homonym comes after the highest number, whatever the holes.
    let file = "Civilité;Nom;Prénom;Matière\r\nM.;MARTIN;Noé;Anglais\r\nM.;DOE;Jane;Anglais\r\n";
    let outcome = import(d, file.as_bytes(), &teachers(UAI)).await;
    let mut logins: Vec<String> = outcome
        .plan
        .creates
        .iter()
        .map(|c| c.login.as_str().to_string())
        .collect();
    logins.sort();
    assert_eq!(logins, ["jdoe11", "nmartin13"]);
}

/// SQLite never checkpoints inside a commit (the cost grew with the directory):
/// the log is copied into the database only when a door asks, after its writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checkpoints_only_when_asked() {
    let db = sqlite().await;
    let d = &db.directory;
    let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
        .fetch_one(d.pool())
        .await
        .unwrap();
    assert_eq!(auto, 0);
    with_establishments(d, &[UAI]).await;
    import(d, &guide_teachers(), &teachers(UAI)).await;
    d.checkpoint().await.unwrap();
    // (busy, frames in the log, frames copied): nothing left to copy.
    let (busy, log, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(d.pool())
        .await
        .unwrap();
    assert_eq!(busy, 0);
    assert!(log > 0, "the import wrote to the log");
    assert_eq!(log, copied);
}

/// `/readyz`: a migrated database is ready; one whose schema is behind this
/// program is not, on both backends, and neither is an SQLite file deleted
/// under the running process (its open connections would go on answering,
/// and every write from then on would be lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_schema_and_the_database_file() {
    const FORGET_LAST_MIGRATION: &str =
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)";
    let db = sqlite().await;
    db.directory.readiness().await.unwrap();
    std::fs::remove_file(db.file()).unwrap();
    let gone = db.directory.readiness().await.unwrap_err();
    assert!(
        gone.is_unavailable() && gone.to_string().contains("a disparu"),
        "{gone}"
    );

    let db = sqlite().await;
    sqlx::query(FORGET_LAST_MIGRATION)
        .execute(db.directory.pool())
        .await
        .unwrap();
    let behind = db.directory.readiness().await.unwrap_err();
    assert!(
        behind.is_unavailable() && behind.to_string().contains("migrations"),
        "{behind}"
    );

    let Some(pg) = postgres().await else { return };
    pg.directory.readiness().await.unwrap();
    sqlx::query(FORGET_LAST_MIGRATION)
        .execute(pg.directory.pool())
        .await
        .unwrap();
    let behind = pg.directory.readiness().await.unwrap_err();
    assert!(
        behind.is_unavailable() && behind.to_string().contains("migrations"),
        "{behind}"
    );
    pg.drop_database().await;
}

/// A lost PostgreSQL server is a French sentence saying what to do, and the
/// web's 503, not the driver's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_said_in_french() {
    let Some(pg) = postgres().await else { return };
    pg.directory.pool().close().await;
    let e = pg.directory.count_users().await.unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    assert!(e.to_string().contains("ne répond pas"), "{e}");
    pg.drop_database().await;
}

/// Jobs are claimed once, even by workers polling at the same moment (on
/// PostgreSQL with `FOR UPDATE SKIP LOCKED`), kept while their lease is
/// renewed, and taken over once it runs out.
async fn jobs_are_claimed_once_and_taken_over_after_their_lease<D>(d: &D)
where
    D: store::web::WebDirectory + Directory,
{
    use store::web::JOB_LEASE_SECONDS;
    let now = now();
    let admin = d.create_admin("chef", "hash", true, &[], now).await.unwrap();
    let mut jobs = Vec::new();
    for _ in 0..8 {
        let draft = d.create_draft(admin, "a.csv", b"x", "{}", now).await.unwrap();
        jobs.push(d.create_job(draft, admin, now).await.unwrap());
    }
    let claims = futures_join_all((0..12).map(|_| d.claim_next_job(now, JOB_LEASE_SECONDS))).await;
    let mut claimed: Vec<i64> = claims.into_iter().filter_map(|c| c.unwrap()).map(|j| j.id).collect();
    claimed.sort();
    assert_eq!(claimed, jobs, "each job claimed exactly once");

    // Renewed by its progress reports, a lease holds past its first term.
    d.set_job_progress(
        jobs[0],
        "{}",
        now + chrono::Duration::seconds(JOB_LEASE_SECONDS - 1),
        JOB_LEASE_SECONDS,
    )
    .await
    .unwrap();
    let later = now + chrono::Duration::seconds(JOB_LEASE_SECONDS + 1);
    let taken = d.claim_next_job(later, JOB_LEASE_SECONDS).await.unwrap().unwrap();
    assert_eq!(
        (taken.id, taken.attempts),
        (jobs[1], 2),
        "the first job's lease was renewed"
    );

    // A stopping server gives its job back: taken again at once, lease or not.
    d.release_job(jobs[0]).await.unwrap();
    let again = d.claim_next_job(later, JOB_LEASE_SECONDS).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (jobs[0], 2));
    d.release_job(jobs[0]).await.unwrap();
    d.finish_job(
        jobs[0],
        &store::web::JobEnd {
            status: domain::vocabulary::JobStatus::Failed,
            report: None,
            import_id: None,
            error: Some("x".into()),
            finished_at: later,
        },
    )
    .await
    .unwrap();
    d.release_job(jobs[0]).await.unwrap();
    assert_eq!(
        d.job(jobs[0]).await.unwrap().unwrap().status,
        domain::vocabulary::JobStatus::Failed,
        "a finished job is never given back"
    );
}

/// Runs the futures concurrently on this task, in order.
async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    // Polled together: each claim is one statement, so the database decides.
    let mut pending: Vec<_> = futures.map(|f| Some(Box::pin(f))).collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_claims_on_both_backends() {
    let db = sqlite().await;
    jobs_are_claimed_once_and_taken_over_after_their_lease(&db.directory).await;
    let Some(pg) = postgres().await else { return };
    jobs_are_claimed_once_and_taken_over_after_their_lease(&pg.directory).await;
    pg.drop_database().await;
}
