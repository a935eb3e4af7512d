//! The import worker: takes queued jobs one at a time and runs them with the
//! same service as the CLI. A job left running by a stopped server is queued
//! again at start and retried from the beginning: the import is one
//! transaction, so a half-done attempt left nothing behind.

use crate::wizard::{job_status, DraftSettings};
use crate::{AppState, Backend};
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
    if let Ok(n) = state.directory.requeue_running_jobs().await {
        if n > 0 {
            eprintln!("{n} import(s) interrompu(s) remis en file d'attente");
        }
    }
    loop {
        let _ = state.directory.purge_expired_results(state.now()).await;
        match state.directory.claim_next_job(state.now()).await {
            Ok(Some(job)) => run_job(&state, job).await,
            Ok(None) => tokio::time::sleep(Duration::from_millis(300)).await,
            Err(e) => {
                eprintln!("file des imports indisponible : {e}");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

pub async fn run_job<D: Backend>(state: &AppState<D>, job: Job) {
    let end = match execute(state, &job).await {
        Ok(end) => end,
        Err(message) => JobEnd {
            status: "failed",
            report: None,
            result_file: None,
            import_id: None,
            error: Some(message),
            finished_at: state.now(),
            result_expires_at: None,
        },
    };
    if let Err(e) = state.directory.finish_job(job.id, &end).await {
        eprintln!("fin de l'import {} non enregistrée : {e}", job.id);
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
    let request = settings.request(&draft, &admin, state.config.max_upload);

    let progress = Arc::new(JobProgress {
        steps: Mutex::new(BTreeMap::new()),
    });
    let ticker = {
        let progress = Arc::clone(&progress);
        let directory = Arc::clone(&state.directory);
        let id = job.id;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(400)).await;
                let _ = directory.set_job_progress(id, &progress.json()).await;
            }
        })
    };
    let mut rng = domain::password::os_rng();
    let outcome = service::run_import(
        state.directory.as_ref(),
        &draft.file_bytes,
        &request,
        state.clock.as_ref(),
        &mut rng,
        progress.as_ref(),
    )
    .await;
    ticker.abort();
    let _ = state.directory.set_job_progress(job.id, &progress.json()).await;
    let outcome = outcome.map_err(|e| e.to_string())?;
    let now = state.now();
    Ok(JobEnd {
        status: job_status(outcome.report.status),
        report: serde_json::to_string(&outcome.report).ok(),
        result_file: outcome.result_file,
        import_id: outcome.import_id,
        error: outcome.report.rejection.clone(),
        finished_at: now,
        result_expires_at: Some(now + state.config.result_retention_days * 86_400),
    })
}
