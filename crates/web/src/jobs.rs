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
use store::service::{self, Operation, Progress};
use store::web::{Job, JobEnd};

/// Progress kept in memory and written to the job row by a ticker.
struct JobProgress {
    steps: Mutex<BTreeMap<String, (usize, usize)>>,
}

impl Progress for JobProgress {
    fn step(&self, operation: Operation, done: usize, total: usize) {
        if let Ok(mut steps) = self.steps.lock() {
            steps.insert(operation.label().to_string(), (done, total));
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

pub async fn run_worker<D: Backend>(state: AppState<D>) {
    let mut last_housekeeping: Option<i64> = None;
    loop {
        // Every half minute: delete expired result files, send due notices,
        // checkpoint what the pages and the API wrote.
        if last_housekeeping.is_none_or(|t| state.now() - t >= 30) {
            last_housekeeping = Some(state.now());
            let _ = state.directory.purge_import_results(state.now()).await;
            checkpoint(&state).await;
            if let Err(e) = state.notifier.deliver_due(state.directory.as_ref(), state.now()).await {
                tracing::warn!(error = %e, "envoi des courriels en attente impossible");
            }
        }
        match run_next_job(&state).await {
            Ok(true) => checkpoint(&state).await,
            Ok(false) => tokio::time::sleep(Duration::from_millis(300)).await,
            Err(e) => {
                tracing::error!(error = %e, "file des imports indisponible");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// Claims and runs one job, if one is waiting: what the worker loop does
/// each turn. Returns whether there was one.
pub async fn run_next_job<D: Backend>(state: &AppState<D>) -> Result<bool, store::StoreError> {
    match state.directory.claim_next_job(state.now()).await? {
        Some(job) => {
            run_job(state, job).await;
            Ok(true)
        }
        None => Ok(false),
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
        finished_at: entry.finished_at.map_or_else(|| state.now(), |t| t.timestamp()),
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
    let mut request = settings.request(&draft, &admin, state.config.max_upload);
    request.result_retention_seconds = state.config.result_retention_days * 86_400;
    request.job_id = Some(job.id);

    let progress = Arc::new(JobProgress {
        steps: Mutex::new(BTreeMap::new()),
    });
    let ticker = {
        let progress = Arc::clone(&progress);
        let directory = Arc::clone(&state.directory);
        let clock = Arc::clone(&state.clock);
        let id = job.id;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(400)).await;
                let now = clock.now().timestamp();
                let _ = directory.set_job_progress(id, &progress.json(), now).await;
            }
        })
    };
    let mut rng = domain::password::os_rng();
    let (outcome, import_id) = service::run_recorded_import(
        state.directory.as_ref(),
        &draft.file_bytes,
        &request,
        state.clock.as_ref(),
        &mut rng,
        progress.as_ref(),
    )
    .await;
    ticker.abort();
    let _ = state
        .directory
        .set_job_progress(job.id, &progress.json(), state.now())
        .await;
    let now = state.now();
    Ok(match outcome {
        Ok(outcome) => JobEnd {
            status: job_status(outcome.report.status),
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
