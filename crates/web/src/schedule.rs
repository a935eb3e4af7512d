//! The scheduled AAF run (issue 5): at each time of a cron-like schedule,
//! the server imports the `*.xml` feed files waiting in an inbox folder,
//! with the same service, history, audit and notice as `annuaire aaf import`.
//!
//! After a run the files leave the inbox, so the next run does not read them
//! again: `traites/<date>-n<import>/` when applied, `refuses/<date>/` when the
//! feed was refused (the history line says why; fix and put them back). When
//! the run failed for another reason (database unavailable…) they stay in the
//! inbox and are tried again at the next time of the schedule.

use crate::{AppState, Backend};
use chrono::{DateTime, Utc};
use croner::Cron;
use std::path::{Path, PathBuf};
use std::time::Duration;
use store::aaf::{self, AafError, AafRequest, FeedFile, Status};

/// Where the feed arrives and when to read it.
#[derive(Debug, Clone)]
pub struct AafSchedule {
    pub inbox: PathBuf,
    cron: Cron,
    /// Where each run's notice goes.
    pub notify: Option<String>,
}

impl AafSchedule {
    /// `pattern` is a cron pattern of 5 fields (minute hour day month
    /// weekday), or 6 with seconds first; times are Paris times, as the
    /// schools and their admins read a clock (a time that daylight saving
    /// skips runs at the next one that exists).
    pub fn new(inbox: PathBuf, pattern: &str, notify: Option<String>) -> Result<AafSchedule, String> {
        let cron = Cron::new(pattern.trim()).with_seconds_optional().parse().map_err(|_| {
            format!(
                "planification « {pattern} » illisible : écrivez 5 champs « minute heure jour mois jour-de-semaine », \
                     par exemple « 30 2 * * * » pour chaque nuit à 2 h 30 (heure de Paris)"
            )
        })?;
        Ok(AafSchedule { inbox, cron, notify })
    }

    /// The first time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&domain::time::local(after), false)
            .ok()
            .map(|next| next.with_timezone(&Utc))
    }

    pub fn pattern(&self) -> &str {
        self.cron.pattern.as_str()
    }
}

/// What one run of the inbox did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxRun {
    /// No `*.xml` file was waiting.
    Empty,
    /// Applied: the history line, and where the files went.
    Imported { import_id: Option<i64>, moved_to: PathBuf },
    /// Refused (plan or file): the history line, and where the files went.
    Refused {
        import_id: Option<i64>,
        reason: String,
        moved_to: PathBuf,
    },
    /// Not run (database, disk…): the files stay in the inbox.
    Failed { reason: String },
}

/// Runs the inbox at each time of the schedule, until the server stops.
pub async fn run_schedule<D: Backend>(state: AppState<D>, schedule: AafSchedule) {
    loop {
        let now = state.clock.now();
        let Some(next) = schedule.next_after(now) else {
            tracing::warn!(
                pattern = schedule.pattern(),
                "flux AAF : la planification n'a plus d'échéance ; arrêt"
            );
            return;
        };
        let wait = (next - now).to_std().unwrap_or(Duration::ZERO);
        tokio::time::sleep(wait).await;
        match run_inbox(&state, &schedule).await {
            InboxRun::Empty => {}
            InboxRun::Imported { import_id, moved_to } => tracing::info!(
                import_id,
                moved_to = %moved_to.display(),
                "flux AAF planifié appliqué ; fichiers rangés"
            ),
            InboxRun::Refused { reason, moved_to, .. } => tracing::warn!(
                reason = %reason,
                moved_to = %moved_to.display(),
                "flux AAF planifié refusé ; fichiers rangés"
            ),
            InboxRun::Failed { reason } => tracing::error!(
                reason = %reason,
                inbox = %schedule.inbox.display(),
                "flux AAF planifié non exécuté ; fichiers laissés pour la prochaine échéance"
            ),
        }
    }
}

/// Imports what waits in the inbox now, in one transaction, and files it away.
pub async fn run_inbox<D: Backend>(state: &AppState<D>, schedule: &AafSchedule) -> InboxRun {
    let paths = match aaf::xml_files_in(&schedule.inbox) {
        Ok(paths) => paths,
        Err(e) => {
            return InboxRun::Failed {
                reason: format!("lecture du dossier {} impossible : {e}", schedule.inbox.display()),
            }
        }
    };
    if paths.is_empty() {
        return InboxRun::Empty;
    }
    let mut files = Vec::with_capacity(paths.len());
    for path in &paths {
        match FeedFile::from_path(path) {
            Ok(file) => files.push(file),
            Err(e) => {
                return InboxRun::Failed {
                    reason: format!("lecture de {} impossible : {e}", path.display()),
                }
            }
        }
    }
    let actor = app::Actor::scheduler();
    let request = AafRequest {
        notify: schedule.notify.clone(),
        result_retention_seconds: state.config.result_retention_days * 86_400,
        ..AafRequest::default()
    };
    let mut rng = domain::password::os_rng();
    let started = std::time::Instant::now();
    let (result, import_id) = match app::imports::run_feed(
        state.directory.as_ref(),
        &actor,
        &files,
        &request,
        state.clock.as_ref(),
        &mut rng,
    )
    .await
    {
        Ok(run) => run,
        Err(e) => return InboxRun::Failed { reason: e.to_string() },
    };
    let (status, rows) = match &result {
        Ok(o) => (crate::wizard::job_status(o.report.status), o.report.requests),
        Err(_) => (domain::vocabulary::JobStatus::Failed, 0),
    };
    state
        .metrics
        .import_finished(actor.channel(), status, rows, started.elapsed());
    let stamp = state.clock.now().format("%Y%m%d-%H%M%S").to_string();
    let refused = match &result {
        Ok(o) if o.report.status == Status::Imported => None,
        Ok(o) => Some(o.report.rejection.clone().unwrap_or_default()),
        Err(e @ AafError::Feed { .. }) => Some(e.to_string()),
        Err(e) => return InboxRun::Failed { reason: e.to_string() },
    };
    if let Some(id) = import_id {
        crate::jobs::notify_finished(state, id).await;
    }
    let folder = match (&refused, import_id) {
        (None, Some(id)) => schedule.inbox.join("traites").join(format!("{stamp}-n{id}")),
        (None, None) => schedule.inbox.join("traites").join(&stamp),
        (Some(_), _) => schedule.inbox.join("refuses").join(&stamp),
    };
    if let Err(e) = move_all(&paths, &folder) {
        return InboxRun::Failed {
            reason: format!(
                "flux traité (import n° {}) mais fichiers non déplacés vers {} : {e} ; retirez-les du dossier à la main",
                import_id.unwrap_or_default(),
                folder.display()
            ),
        };
    }
    match refused {
        None => InboxRun::Imported {
            import_id,
            moved_to: folder,
        },
        Some(reason) => InboxRun::Refused {
            import_id,
            reason,
            moved_to: folder,
        },
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn move_all(paths: &[PathBuf], folder: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(folder)?;
    for path in paths {
        std::fs::rename(path, folder.join(file_name(path)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn schedule_times_are_paris_times_and_strictly_after() {
        let s = AafSchedule::new(PathBuf::from("flux"), "30 2 * * *", None).unwrap();
        // 2 h 30 in Paris is 1 h 30 UTC in winter.
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 1, 30, 0).unwrap();
        assert_eq!(
            s.next_after(at),
            Some(Utc.with_ymd_and_hms(2026, 11, 26, 1, 30, 0).unwrap())
        );
        // And 0 h 30 UTC in summer.
        let summer = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        assert_eq!(
            s.next_after(summer),
            Some(Utc.with_ymd_and_hms(2026, 7, 2, 0, 30, 0).unwrap())
        );
        // 29 March 2026 has no 2 h 30 in Paris: that night's run is not lost.
        let before_the_change = Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
        let next = s.next_after(before_the_change).unwrap();
        assert_eq!(
            domain::time::day(next),
            chrono::NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
            "{next}"
        );
        let weekly = AafSchedule::new(PathBuf::from("flux"), "0 3 * * MON", None).unwrap();
        // 2026-11-25 is a Wednesday: next Monday is the 30th, 3 h in Paris.
        assert_eq!(
            weekly.next_after(at),
            Some(Utc.with_ymd_and_hms(2026, 11, 30, 2, 0, 0).unwrap())
        );
        let err = AafSchedule::new(PathBuf::from("flux"), "tous les jours", None).unwrap_err();
        assert!(
            err.contains("« tous les jours »") && err.contains("30 2 * * *"),
            "{err}"
        );
    }
}
