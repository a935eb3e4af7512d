//! The import worker: takes jobs one at a time and runs them with the same
//! service as the CLI. Each job runs exactly once, with several servers on one
//! database and across crashes: a worker holds a job under a lease it renews
//! ([`store::web::JOB_LEASE_SECONDS`]); a job whose lease ran out (its server
//! died) is taken again, and then either its import had committed, naming the
//! job in its own transaction, and the job is finished from that import, or
//! it had not, and the job runs from the start (the import is one
//! transaction: a half-done attempt left nothing behind).

use crate::wizard::{job_status, DraftSettings};
use crate::{AppState, Backend};
use domain::vocabulary::JobStatus;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::service::{Operation, Progress};
use store::web::{Job, JobEnd};

/// Progress kept in memory and written to the job row by a ticker.
struct JobProgress {
    steps: Mutex<BTreeMap<String, (usize, usize)>>,
}

impl Progress for JobProgress {
    fn step(&self, operation: Operation, done: usize, total: usize) {
        if let Ok(mut steps) = self.steps.lock() {
            steps.insert(app::labels::operation(operation).to_string(), (done, total));
        }
    }
}

impl JobProgress {
    fn json(&self) -> String {
        self.steps
            .lock()
            .ok()
            .and_then(|s| serde_json::to_string(&*s).ok())
            .unwrap_or_else(|| "{}".to_string())
    }
}

/// The job a worker holds now, so that a stopping server can give it back.
pub(crate) type HeldJob = Arc<Mutex<Option<i64>>>;

/// Runs jobs until `stop` turns true; between jobs, the housekeeping.
pub(crate) async fn run_worker<D: Backend>(
    state: AppState<D>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    held: HeldJob,
) {
    let mut last_housekeeping: Option<chrono::DateTime<chrono::Utc>> = None;
    while !*stop.borrow() {
        // Every half minute: delete expired result files, send due notices,
        // checkpoint what the pages and the API wrote.
        if last_housekeeping.is_none_or(|t| (state.now() - t).num_seconds() >= 30) {
            last_housekeeping = Some(state.now());
            let _ = state.directory.purge_import_results(state.now()).await;
            let abandoned = state.now() - chrono::Duration::seconds(state.config.draft_retention_seconds);
            if let Err(e) = state.directory.purge_abandoned_drafts(abandoned, state.now()).await {
                tracing::warn!(error = %e, "brouillons abandonnés non effacés");
            }
            let idle_since = state.now() - chrono::Duration::minutes(state.config.cas.idle_minutes);
            if let Err(e) = state.directory.purge_sso_sessions(state.now(), idle_since).await {
                tracing::warn!(error = %e, "sessions CAS expirées non effacées");
            }
            checkpoint(&state).await;
            if let Err(e) = state.notifier.deliver_due(state.directory.as_ref(), state.now()).await {
                state.metrics.mail_failed();
                tracing::warn!(error = %e, "envoi des courriels en attente impossible");
            }
        }
        let pause = match claim_and_run(&state, &held).await {
            Ok(true) => {
                checkpoint(&state).await;
                continue;
            }
            Ok(false) => Duration::from_millis(300),
            Err(e) => {
                tracing::error!(error = %e, "file des imports indisponible");
                Duration::from_secs(2)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Claims and runs one job, if one is waiting: what the worker loop does
/// each turn. Returns whether there was one.
pub async fn run_next_job<D: Backend>(state: &AppState<D>) -> Result<bool, store::StoreError> {
    claim_and_run(state, &HeldJob::default()).await
}

async fn claim_and_run<D: Backend>(state: &AppState<D>, held: &HeldJob) -> Result<bool, store::StoreError> {
    let lease = state.config.job_lease_seconds;
    match state.directory.claim_next_job(state.now(), lease).await? {
        Some(job) => {
            set_held(held, Some(job.id));
            run_job(state, job).await;
            set_held(held, None);
            Ok(true)
        }
        None => Ok(false),
    }
}

fn set_held(held: &HeldJob, job: Option<i64>) {
    if let Ok(mut h) = held.lock() {
        *h = job;
    }
}

/// A server stopping: lets the worker end its job for up to `grace`, then
/// stops it and gives the job back to the queue. The import is one
/// transaction: stopped before its commit it left nothing, and after it the
/// job → import link finishes the job from it instead of running it again.
pub(crate) async fn stop_worker<D: Backend>(
    state: &AppState<D>,
    mut worker: tokio::task::JoinHandle<()>,
    held: HeldJob,
    grace: Duration,
) {
    if tokio::time::timeout(grace, &mut worker).await.is_ok() {
        return;
    }
    worker.abort();
    let _ = worker.await;
    let job = held.lock().ok().and_then(|mut h| h.take());
    if let Some(id) = job {
        match state.directory.release_job(id).await {
            Ok(()) => tracing::warn!(job = id, "arrêt du serveur : import remis dans la file"),
            Err(e) => tracing::error!(
                job = id,
                error = %e,
                "arrêt du serveur : import non remis dans la file (repris à la fin de son bail)"
            ),
        }
    }
}

/// How a job ended when its import committed already (a server died between
/// the import's commit and the job's end): read from the import itself.
async fn committed_end<D: Backend>(state: &AppState<D>, job_id: i64) -> Option<JobEnd> {
    let entry = match state.directory.import_of_job(job_id).await {
        Ok(entry) => entry?,
        Err(e) => {
            tracing::warn!(job = job_id, error = %e, "import of the job unreadable");
            return None;
        }
    };
    Some(JobEnd {
        status: JobStatus::Succeeded,
        report: serde_json::to_string(&entry.applied_report()).ok(),
        import_id: Some(entry.id),
        error: None,
        finished_at: entry.finished_at.unwrap_or_else(|| state.now()),
    })
}

/// Out of the imports' commits: see [`store::Directory::checkpoint`].
async fn checkpoint<D: Backend>(state: &AppState<D>) {
    if let Err(e) = state.directory.checkpoint().await {
        tracing::warn!(error = %e, "point de reprise du journal de la base non fait");
    }
}

pub async fn run_job<D: Backend>(state: &AppState<D>, job: Job) {
    tracing::info!(
        job = job.id,
        draft = job.draft_id,
        admin = job.admin_id,
        "import démarré"
    );
    let end = match committed_end(state, job.id).await {
        Some(end) => {
            tracing::warn!(
                job = job.id,
                import_id = end.import_id,
                "import already committed by an interrupted attempt: job finished from it"
            );
            end
        }
        None => match execute(state, &job).await {
            Ok(end) if end.status == JobStatus::Succeeded => end,
            // Another attempt may have committed meanwhile (a second server
            // took the job over): this one's write was refused, that one stands.
            Ok(end) => committed_end(state, job.id).await.unwrap_or(end),
            Err(message) => committed_end(state, job.id).await.unwrap_or(JobEnd {
                status: JobStatus::Failed,
                report: None,
                import_id: None,
                error: Some(message),
                finished_at: state.now(),
            }),
        },
    };
    tracing::info!(
        job = job.id,
        import_id = end.import_id,
        status = end.status.id(),
        error = end.error.as_deref(),
        "import terminé"
    );
    if let Err(e) = state.directory.finish_job(job.id, &end).await {
        tracing::error!(job = job.id, error = %e, "fin de l'import non enregistrée");
    }
    // Committed: the file and the edits (imposed passwords) are no longer
    // needed; the result file holds what the admin hands out. A refused or
    // failed import keeps its draft, to be fixed and started again.
    if end.status == JobStatus::Succeeded {
        if let Err(e) = state.directory.purge_draft(job.draft_id, state.now()).await {
            tracing::warn!(job = job.id, error = %e, "brouillon de l'import non effacé (nouvel essai à l'échéance)");
        }
    }
    // The notice goes out after the job is marked finished: a slow or
    // unreachable mail server never holds the import's page in "en cours".
    if let Some(import_id) = end.import_id {
        notify_finished(state, import_id).await;
    }
}

/// Queues and tries to send the end-of-import notice; a failure is logged,
/// the queue retries it later.
pub(crate) async fn notify_finished<D: Backend>(state: &AppState<D>, import_id: i64) {
    if let Err(e) = state
        .notifier
        .import_finished(state.directory.as_ref(), import_id, state.now())
        .await
    {
        state.metrics.mail_failed();
        tracing::warn!(import_id, error = %e, "avis de fin d'import non envoyé (nouvel essai prévu)");
    }
}

async fn execute<D: Backend>(state: &AppState<D>, job: &Job) -> Result<JobEnd, String> {
    let draft = state
        .directory
        .draft(job.draft_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("brouillon d'import introuvable")?;
    let admin = state
        .directory
        .admin_by_id(job.admin_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("administrateur introuvable")?;
    let settings: DraftSettings = serde_json::from_str(&draft.settings).map_err(|e| e.to_string())?;
    let actor = settings.actor(&admin);
    let mut request = settings.request(&draft, state.config.max_upload);
    request.result_retention_seconds = state.config.result_retention_days * 86_400;
    request.job_id = Some(job.id);

    let progress = Arc::new(JobProgress {
        steps: Mutex::new(BTreeMap::new()),
    });
    // Stopped with the job, even when the job is stopped from outside (a
    // server shutting down): a ticker left behind would hold the lease forever.
    let ticker = AbortOnDrop(tokio::spawn({
        let progress = Arc::clone(&progress);
        let directory = Arc::clone(&state.directory);
        let clock = Arc::clone(&state.clock);
        let id = job.id;
        let lease = state.config.job_lease_seconds;
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(400)).await;
                let now = clock.now();
                let _ = directory.set_job_progress(id, &progress.json(), now, lease).await;
            }
        }
    }));
    let started = std::time::Instant::now();
    let mut rng = domain::password::os_rng();
    let (outcome, import_id) = app::imports::run(
        state.directory.as_ref(),
        &actor,
        &draft.file_bytes,
        &request,
        state.clock.as_ref(),
        &mut rng,
        progress.as_ref(),
    )
    .await;
    drop(ticker);
    let _ = state
        .directory
        .set_job_progress(job.id, &progress.json(), state.now(), state.config.job_lease_seconds)
        .await;
    let now = state.now();
    let (status, rows) = match &outcome {
        Ok(outcome) => (job_status(outcome.report.status), outcome.report.rows),
        Err(_) => (JobStatus::Failed, 0),
    };
    state
        .metrics
        .import_finished(actor.channel(), status, rows, started.elapsed());
    Ok(match outcome {
        Ok(outcome) => JobEnd {
            status,
            report: serde_json::to_string(&outcome.report).ok(),
            import_id,
            error: outcome.report.rejection.clone(),
            finished_at: now,
        },
        Err(e) => JobEnd {
            status: JobStatus::Failed,
            report: None,
            import_id,
            error: Some(e.to_string()),
            finished_at: now,
        },
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
