//! Each web job runs exactly once, whatever happens to the server that runs
//! it: a job whose import committed is finished from that import, a job
//! interrupted before its commit runs again, two workers never take the same
//! job. The worker of another server (or of the restarted one) is played by
//! `web::run_next_job` on an app whose own worker is off.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use domain::vocabulary::JobStatus;
use store::history::{History, HistoryFilter};
use store::web::WebDirectory;
use support::*;

const FILE: &str = "Civilité;Nom;Prénom;Matière\r\nM.;PLATON;Francis;Philosophie\r\nDocteur;ZOLA;Emile;Français\r\n";

/// A queued job of admin-a importing [`FILE`] into establishment A, its
/// conflicting line (the civility "Docteur") skipped: one account.
async fn queued_job(app: &App) -> i64 {
    let (admin, _) = app.state.directory.admin_by_login("admin-a").await.unwrap().unwrap();
    let settings = serde_json::json!({
        "profile": "enseignant", "establishment": UAI_A, "establishments_from_file": false,
        "separator": ";", "encoding": "auto", "has_header": true, "complet": false,
        "overrides": [], "edits": {}, "skip_conflicts": true, "confirm_deletions": null
    });
    let now = chrono::Utc::now();
    let d = &app.state.directory;
    let draft = d
        .create_draft(admin.id, "a.csv", FILE.as_bytes(), &settings.to_string(), now)
        .await
        .unwrap();
    d.create_job(draft, admin.id, now).await.unwrap()
}

/// What a server killed mid-job leaves: its lease, from now on, ran out.
async fn lease_runs_out(app: &App, job: i64) {
    sqlx::query("UPDATE jobs SET lease_until = 0 WHERE id = ?")
        .bind(job)
        .execute(app.state.directory.pool())
        .await
        .unwrap();
}

async fn history_len(app: &App) -> usize {
    app.state
        .directory
        .list_imports(&HistoryFilter::everything())
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_import_committed_is_finished_from_it_not_run_again() {
    let app = start_without_worker().await;
    let d = app.state.directory.as_ref();
    let job = queued_job(&app).await;
    let now = chrono::Utc::now();
    let claimed = d
        .claim_next_job(now, store::web::JOB_LEASE_SECONDS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((claimed.id, claimed.status), (job, JobStatus::Running));

    // The attempt that died: its import committed, naming the job, and the
    // server was killed before it could write the job's end.
    let (admin, _) = d.admin_by_login("admin-a").await.unwrap().unwrap();
    let mut request = store::service::ImportRequest::new(domain::Profile::Enseignant, Some(uai(UAI_A)));
    request.file_name = "a.csv".into();
    request.admin_id = Some(admin.id);
    request.channel = domain::vocabulary::Channel::Web;
    request.job_id = Some(job);
    request.skip_conflicts = true;
    let mut rng = domain::password::os_rng();
    let committed = store::service::run_import(
        d,
        FILE.as_bytes(),
        &request,
        &store::service::SystemClock,
        &mut rng,
        &store::service::NoProgress,
    )
    .await
    .unwrap();
    let import_id = committed.import_id.unwrap();

    // While the lease holds, no other worker takes the job.
    assert!(!web::run_next_job(&app.state).await.unwrap());
    lease_runs_out(&app, job).await;
    assert!(web::run_next_job(&app.state).await.unwrap(), "the job is taken over");

    let finished = d.job(job).await.unwrap().unwrap();
    assert_eq!(finished.status, JobStatus::Succeeded, "{finished:?}");
    assert_eq!(
        finished.import_id,
        Some(import_id),
        "the committed import, not a new one"
    );
    assert_eq!(history_len(&app).await, 1, "one history line");
    let report: serde_json::Value = serde_json::from_str(finished.report.as_deref().unwrap()).unwrap();
    assert_eq!(report["created"], 1, "{report}");
    // Its passwords are those of the committed import: still downloadable.
    let result = d.import_result(import_id, now).await.unwrap().unwrap();
    assert_eq!(result, committed.result_file.unwrap());
    let accounts = store::Directory::count_users(d).await.unwrap();
    assert_eq!(accounts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_interrupted_before_its_commit_runs_again_once() {
    let app = start_without_worker().await;
    let d = app.state.directory.as_ref();
    let job = queued_job(&app).await;
    d.claim_next_job(chrono::Utc::now(), store::web::JOB_LEASE_SECONDS)
        .await
        .unwrap()
        .unwrap();
    // Killed before anything committed.
    lease_runs_out(&app, job).await;
    assert!(web::run_next_job(&app.state).await.unwrap());
    let finished = d.job(job).await.unwrap().unwrap();
    assert_eq!(finished.status, JobStatus::Succeeded, "{finished:?}");
    assert_eq!(finished.attempts, 2);
    assert_eq!(history_len(&app).await, 1);
    assert!(!web::run_next_job(&app.state).await.unwrap(), "nothing left to run");
    assert_eq!(store::Directory::count_users(d).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_take_the_same_job() {
    let app = start_without_worker().await;
    let mut jobs = Vec::new();
    for _ in 0..6 {
        jobs.push(queued_job(&app).await);
    }
    let worker = |state: web::AppState<store::sqlite::SqliteDirectory>| async move {
        let mut ran = 0;
        while web::run_next_job(&state).await.unwrap() {
            ran += 1;
        }
        ran
    };
    let (a, b) = tokio::join!(
        tokio::spawn(worker(app.state.clone())),
        tokio::spawn(worker(app.state.clone()))
    );
    assert_eq!(a.unwrap() + b.unwrap(), jobs.len(), "each job ran once");
    let mut imports = Vec::new();
    for job in &jobs {
        let j = app.state.directory.job(*job).await.unwrap().unwrap();
        assert_eq!((j.status, j.attempts), (JobStatus::Succeeded, 1), "{j:?}");
        imports.push(j.import_id.unwrap());
    }
    imports.sort();
    imports.dedup();
    assert_eq!(imports.len(), jobs.len(), "one import per job");
    assert_eq!(history_len(&app).await, jobs.len());
    assert_eq!(
        store::Directory::count_users(app.state.directory.as_ref())
            .await
            .unwrap(),
        1
    );
}
