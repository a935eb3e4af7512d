//! The import history ("Suivi des imports"), result files and credential
//! slips, restore from a history entry, and the mail queue, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Duration;
use common::*;
use domain::Profile;
use rand::SeedableRng;
use store::admin::AdminDirectory;
use store::history::{History, HistoryFilter, NewMail, Viewer};
use store::service::{self, FixedClock, ImportRequest, NoProgress};
use store::web::WebDirectory;
use store::Directory;

conformance!(
    every_import_has_a_history_line_with_its_counts,
    history_filters_by_establishment_date_and_viewer,
    result_file_and_slips_are_kept_then_purged,
    skipped_lines_are_kept_to_fix_and_import_again,
    the_history_lists_only_the_establishments_an_import_touched,
    export_from_the_service_reimports_with_zero_changes,
    mail_queue_sends_each_mail_once_with_backoff,
);

trait Full: Directory + History + AdminDirectory + WebDirectory {}
impl<T: Directory + History + AdminDirectory + WebDirectory> Full for T {}

async fn every_import_has_a_history_line_with_its_counts(d: &impl Full) {
    with_establishments(d, &[UAI]).await;
    let mut request = teachers(UAI);
    request.channel = domain::vocabulary::Channel::Web;
    request.actor = "admin-a".into();
    let (_, ok) = recorded(d, &teachers_file(&["DUPONT", "MARTIN", "BERNARD"]), &request, now()).await;
    // A conflict (bad birth date) without "skip conflicts": refused, nothing written.
    let bad = csv(&[
        "Civilité;Nom;Prénom;Matière;Date de naissance",
        "Mme;PETIT;Anne;Anglais;31/02/1980",
        "Mme;ROUX;Léa;Anglais;",
    ]);
    let (_, rejected) = recorded(d, &bad, &request, now() + Duration::minutes(1)).await;
    // No last-name column: the mapping is refused before anything is read.
    let (_, refused) = recorded(d, &csv(&["Prénom", "Anne"]), &request, now() + Duration::minutes(2)).await;
    let mut dry = request.clone();
    dry.dry_run = true;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let (_, dry_id) = service::run_recorded_import(
        d,
        &teachers_file(&["X"]),
        &dry,
        &FixedClock(now()),
        &mut rng,
        &NoProgress,
    )
    .await;
    assert_eq!(dry_id, None, "a dry run is not an import");

    let all = d.list_imports(&HistoryFilter::everything()).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        [refused, rejected, ok],
        "newest first"
    );
    let first = &all[2];
    assert_eq!(
        (first.status.id(), first.channel.id(), first.actor.as_str()),
        ("succeeded", "web", "admin-a")
    );
    assert_eq!(
        (first.rows, first.created, first.updated, first.unchanged),
        (3, 3, 0, 0)
    );
    assert_eq!(first.result_rows(), 3);
    assert_eq!(first.establishments, [uai(UAI)]);
    assert_eq!(first.profile, "enseignant");
    assert_eq!(first.file_name, "enseignants.csv");
    assert!(first.file_size > 0);
    assert_eq!(first.duration_seconds(), Some(0));
    let second = &all[1];
    assert_eq!(second.status.id(), "rejected", "{:?}", second.error);
    assert_eq!((second.rows, second.created), (2, 0), "{:?}", second.error);
    assert!(
        second.error.as_deref().unwrap().contains("conflit"),
        "{:?}",
        second.error
    );
    assert_eq!(second.result_expires_at, None, "no result file for a refused import");
    let third = &all[0];
    assert_eq!(third.status.id(), "rejected");
    assert!(third.error.as_deref().unwrap().contains("Nom"), "{:?}", third.error);
    assert_eq!(d.count_users().await.unwrap(), 3);

    // The audit log has the applied import, whatever its door.
    let audit = store::admin::audit_log(d, 10).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "import" && a.target == format!("import n° {ok}") && a.details["channel"] == "web"));
}

async fn history_filters_by_establishment_date_and_viewer(d: &impl Full) {
    with_establishments(d, &[UAI, OTHER_UAI]).await;
    let a = d
        .create_admin("admin-a", "x", false, &[uai(UAI)], chrono::Utc::now())
        .await
        .unwrap();
    let b = d
        .create_admin("admin-b", "x", false, &[uai(OTHER_UAI)], chrono::Utc::now())
        .await
        .unwrap();
    let mut in_a = teachers(UAI);
    in_a.admin_id = Some(a);
    let (_, a1) = recorded(d, &teachers_file(&["DUPONT"]), &in_a, now()).await;
    let mut in_b = teachers(OTHER_UAI);
    in_b.admin_id = Some(b);
    let (_, b1) = recorded(d, &teachers_file(&["MARTIN"]), &in_b, now() + Duration::days(2)).await;
    // The system admin ran this one in A from the CLI.
    let (_, a2) = recorded(
        d,
        &teachers_file(&["DUPONT", "DURAND"]),
        &teachers(UAI),
        now() + Duration::days(3),
    )
    .await;

    let ids = |v: Vec<store::history::ImportEntry>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let mut f = HistoryFilter::everything();
    f.establishment = Some(uai(UAI));
    assert_eq!(ids(d.list_imports(&f).await.unwrap()), [a2, a1]);
    f.establishment = None;
    f.since = Some(now() + Duration::days(1));
    f.before = Some(now() + Duration::days(3));
    assert_eq!(ids(d.list_imports(&f).await.unwrap()), [b1]);

    let mut seen_by_b = HistoryFilter::everything();
    seen_by_b.viewer = Viewer::Admin { id: b };
    assert_eq!(
        ids(d.list_imports(&seen_by_b).await.unwrap()),
        [b1],
        "only their establishment"
    );
    let mut seen_by_a = HistoryFilter::everything();
    seen_by_a.viewer = Viewer::Admin { id: a };
    assert_eq!(ids(d.list_imports(&seen_by_a).await.unwrap()), [a2, a1]);
    assert!(d.may_view_import(a2, &Viewer::Admin { id: a }).await.unwrap());
    assert!(!d.may_view_import(a2, &Viewer::Admin { id: b }).await.unwrap());
    assert!(d.may_view_import(b1, &Viewer::Everything).await.unwrap());
    let mut page = HistoryFilter::everything();
    page.limit = 1;
    page.offset = 1;
    assert_eq!(ids(d.list_imports(&page).await.unwrap()), [b1]);
}

async fn result_file_and_slips_are_kept_then_purged(d: &impl Full) {
    with_establishments(d, &[UAI]).await;
    let mut request = teachers(UAI);
    request.result_retention_seconds = 3_600;
    let (outcome, id) = recorded(d, &teachers_file(&["DUPONT", "MARTIN"]), &request, now()).await;
    let outcome = outcome.unwrap();
    let t = now();
    let stored = d.import_result(id, t).await.unwrap().unwrap();
    assert_eq!(Some(stored), outcome.result_file);
    let slips = d.import_slips(id, t).await.unwrap().unwrap();
    let rows = result_rows(&outcome);
    let column = |name: &str| rows[0].iter().position(|h| h.starts_with(name)).unwrap();
    let (login, password) = (column("Nom utilisateur"), column("Mot de passe"));
    assert_eq!(slips.len(), 2);
    for slip in &slips {
        let row = rows
            .iter()
            .find(|r| r[login] == slip.login)
            .expect("the slip's login is in the result file");
        assert_eq!(
            row[password], slip.password,
            "same password on the slip and in the result file"
        );
        assert_eq!(slip.establishments, [UAI]);
        assert_eq!(slip.civility.as_deref(), Some("M."));
    }
    let entry = d.import_entry(id).await.unwrap().unwrap();
    assert_eq!(entry.result_expires_at, Some(t + chrono::Duration::seconds(3_600)));

    // Past the retention: gone, then deleted for good.
    assert_eq!(
        d.import_result(id, t + chrono::Duration::seconds(3_601)).await.unwrap(),
        None
    );
    assert_eq!(
        d.purge_import_results(t + chrono::Duration::seconds(10)).await.unwrap(),
        0
    );
    assert_eq!(
        d.purge_import_results(t + chrono::Duration::seconds(3_601))
            .await
            .unwrap(),
        1
    );
    assert_eq!(d.import_slips(id, t).await.unwrap(), None);
    assert_eq!(d.import_entry(id).await.unwrap().unwrap().result_expires_at, None);
}

/// "Ne pas importer les lignes en conflit": the skipped lines come back as a
/// CSV with their problems, kept and purged with the result file, and the
/// file, once fixed, imports as it is.
async fn skipped_lines_are_kept_to_fix_and_import_again(d: &impl Full) {
    with_establishments(d, &[UAI]).await;
    let mut request = teachers(UAI);
    request.result_retention_seconds = 3_600;
    request.skip_conflicts = true;
    let file = csv(&[
        "Civilité;Nom;Prénom;Matière",
        "M.;DUPONT;Jean;Anglais",
        "Docteur;MARTIN;Paul;Anglais",
        "M.;;Sans nom;Anglais",
    ]);
    let (outcome, id) = recorded(d, &file, &request, now()).await;
    assert_eq!(outcome.unwrap().report.skipped, 2);
    let t = now();
    let skipped = d.import_skipped_lines(id, t).await.unwrap().expect("the skipped lines");
    let text = String::from_utf8(skipped).unwrap();
    let lines: Vec<&str> = text
        .trim_start_matches('\u{feff}')
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], "Civilité;Nom;Prénom;Matière;Problème");
    assert!(
        lines[1].starts_with("Docteur;MARTIN;Paul;Anglais;ligne 3, Civilité : civilité « Docteur »"),
        "{text}"
    );
    assert!(lines[2].starts_with("M.;;Sans nom;Anglais;ligne 4, Nom : "), "{text}");

    // Fixed, it imports: the "Problème" column is left aside.
    let fixed = text
        .replace("Docteur;MARTIN", "M.;MARTIN")
        .replace("M.;;Sans nom", "M.;DURAND;Sans nom");
    let mut again = teachers(UAI);
    again.result_retention_seconds = 3_600;
    let (outcome, again_id) = recorded(d, fixed.as_bytes(), &again, now()).await;
    let outcome = outcome.unwrap();
    assert_eq!(
        (outcome.report.created, outcome.report.conflicts),
        (2, 0),
        "{:?}",
        outcome.report
    );
    assert_eq!(
        d.import_skipped_lines(again_id, t).await.unwrap(),
        None,
        "nothing skipped, no file"
    );

    // Past the retention: gone with the result file.
    assert_eq!(
        d.import_skipped_lines(id, t + chrono::Duration::seconds(3_601))
            .await
            .unwrap(),
        None
    );
    d.purge_import_results(t + chrono::Duration::seconds(3_601))
        .await
        .unwrap();
    assert_eq!(d.import_skipped_lines(id, t).await.unwrap(), None);
}

/// A refused line's unknown UAI is not an establishment the import touched.
async fn the_history_lists_only_the_establishments_an_import_touched(d: &impl Full) {
    with_establishments(d, &[UAI, OTHER_UAI]).await;
    let file = csv(&[
        "Civilité;Nom;Prénom;Fonction;RNE",
        "Mme;BARBIER;Véronique;DIR;0750654D",
        "M.;DURAND;Paul;EDU;0010001W",
    ]);
    let mut request = ImportRequest::new(Profile::Administratif, None);
    request.establishments_from_file = true;
    request.skip_conflicts = true;
    let (outcome, id) = recorded(d, &file, &request, now()).await;
    assert_eq!(outcome.unwrap().report.skipped, 1);
    let entry = d.import_entry(id).await.unwrap().unwrap();
    assert_eq!(entry.establishments, [uai(UAI)]);
}

async fn export_from_the_service_reimports_with_zero_changes(d: &impl Full) {
    with_establishments(d, &[UAI]).await;
    let file = csv(&[
        "Civilité;Nom;Prénom;Matière;Date de naissance;Code postal;Téléphone portable;Email",
        "Mme;LEFÈVRE-DURAND;Marie-Hélène;Histoire-Géographie;07/11/67;'06000;+33 6 12 34 56 78;MH.Lefevre@Exemple.fr",
        "M.;=DANGER;Moussa;EPS;;;;",
    ]);
    recorded(d, &file, &teachers(UAI), now()).await;
    let (count, export) = service::export_csv(d, &uai(UAI), Profile::Enseignant, &domain::plan::AdminScope::All)
        .await
        .unwrap();
    assert_eq!(count, 2);
    let text = String::from_utf8(export.clone()).unwrap();
    assert!(text.starts_with('\u{feff}'), "BOM for Excel");
    assert!(text.contains(";'=DANGER;"), "formula neutralised: {text}");
    assert!(!text.to_lowercase().contains("mot de passe"), "no password column");
    let (outcome, _) = recorded(d, &export, &teachers(UAI), now() + Duration::hours(1)).await;
    let outcome = outcome.unwrap();
    assert_eq!(counts(&outcome), (0, 0, 2, 0, 0, 0), "{:?}", outcome.plan.updates);
}

async fn mail_queue_sends_each_mail_once_with_backoff(d: &impl Full) {
    with_establishments(d, &[UAI]).await;
    let (_, id) = recorded(d, &teachers_file(&["DUPONT"]), &teachers(UAI), now()).await;
    let t = now();
    let mail = NewMail {
        import_id: Some(id),
        recipients: vec!["a@ecole.test".into()],
        cc: vec!["support@ent.test".into()],
        subject: "[SUCCES] Import CSV-ENT".into(),
        body_text: "texte".into(),
        body_html: "<p>html</p>".into(),
        attachment: Some(("resultat.csv".into(), b"secret".to_vec())),
    };
    let mail_id = d.enqueue_mail(&mail, t).await.unwrap();
    assert_eq!(
        d.import_entry(id).await.unwrap().unwrap().mail_status.map(|s| s.id()),
        Some("pending")
    );

    let claimed = d.claim_due_mails(t, 120, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].recipients, ["a@ecole.test"]);
    assert_eq!(claimed[0].cc, ["support@ent.test"]);
    assert_eq!(claimed[0].attachment, Some(("resultat.csv".into(), b"secret".to_vec())));
    assert_eq!(claimed[0].attempts, 1);
    assert!(
        d.claim_due_mails(t, 120, 10).await.unwrap().is_empty(),
        "a claimed mail is leased"
    );

    d.mail_failed(mail_id, "connexion refusée", Some(t + chrono::Duration::seconds(60)))
        .await
        .unwrap();
    assert!(d
        .claim_due_mails(t + chrono::Duration::seconds(59), 120, 10)
        .await
        .unwrap()
        .is_empty());
    let again = d
        .claim_due_mails(t + chrono::Duration::seconds(60), 120, 10)
        .await
        .unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 2));
    assert_eq!(again[0].last_error.as_deref(), Some("connexion refusée"));
    d.mail_sent(mail_id, t + chrono::Duration::seconds(61)).await.unwrap();
    let stored = d.mails_of_import(id).await.unwrap();
    assert_eq!(
        (stored[0].status.id(), stored[0].sent_at),
        ("sent", Some(t + chrono::Duration::seconds(61)))
    );
    assert_eq!(stored[0].attachment, None, "passwords forgotten once sent");
    assert!(d
        .claim_due_mails(t + chrono::Duration::seconds(100_000), 120, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        d.import_entry(id).await.unwrap().unwrap().mail_status.map(|s| s.id()),
        Some("sent")
    );
}

/// The database lost during an import: the failure's history line waits in
/// a private folder and is written once the database is back.
async fn a_failed_import_waits_for_the_database<D: Directory + History + AdminDirectory>(lost: &D, back: &D) {
    let folder = tempfile::tempdir().unwrap();
    let waiting = folder.path().join("historique-en-attente");
    let mut request = teachers(UAI);
    request.pending_history = Some(waiting.clone());
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let (result, id) = service::run_recorded_import(
        lost,
        &guide_teachers(),
        &request,
        &FixedClock(now()),
        &mut rng,
        &NoProgress,
    )
    .await;
    assert!(result.is_err() && id.is_none());
    assert_eq!(std::fs::read_dir(&waiting).unwrap().count(), 1, "the line waits");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&waiting).unwrap().permissions().mode() & 0o777, 0o700);
    }

    assert_eq!(service::replay_pending_history(back, &waiting).await.unwrap(), 1);
    assert_eq!(std::fs::read_dir(&waiting).unwrap().count(), 0, "written once");
    assert_eq!(service::replay_pending_history(back, &waiting).await.unwrap(), 0);
    let lines = back.list_imports(&HistoryFilter::everything()).await.unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].status, domain::vocabulary::ImportStatus::Failed);
    assert!(
        lines[0].error.as_deref().unwrap_or_default().contains("ne répond pas"),
        "{:?}",
        lines[0].error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_import_reaches_the_history_once_the_database_is_back() {
    let db = sqlite().await;
    let url = format!("sqlite://{}", db.file().display());
    let back = store::sqlite::SqliteDirectory::open(&url).await.unwrap();
    with_establishments(&back, &[UAI]).await;
    db.directory.pool().close().await;
    a_failed_import_waits_for_the_database(&db.directory, &back).await;

    let Some(pg) = postgres().await else { return };
    let back = store::postgres::PgDirectory::open(&pg.url()).await.unwrap();
    with_establishments(&back, &[UAI]).await;
    pg.directory.pool().close().await;
    a_failed_import_waits_for_the_database(&pg.directory, &back).await;
    back.pool().close().await;
    pg.drop_database().await;
}
