//! What the web wizard stores: administrators and their establishments,
//! sessions, API tokens, login throttling, drafts (an import in progress, so
//! that a reload or a second tab never loses work) and import jobs (durable:
//! a server restart requeues a running job, and the all-or-nothing import
//! makes the retry safe).
//!
//! One SQL text serves both backends: [`impl_web_directory!`] expands the same
//! code for SQLite and for PostgreSQL, with each dialect's `sql` (`?`
//! placeholders renumbered to `$n`). Instants are `DateTime<Utc>`, stored as
//! the directory's are (migration 0013).

use crate::{Result, StoreError};
use chrono::{DateTime, Utc};
use domain::vocabulary::JobStatus;
use domain::Uai;
use serde::{Deserialize, Serialize};
use std::future::Future;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admin {
    pub id: i64,
    pub login: String,
    /// A system administrator sees every establishment.
    pub system: bool,
    pub establishments: Vec<Uai>,
    /// Where this admin's import notices go.
    pub email: Option<String>,
}

impl Admin {
    pub fn scope(&self) -> domain::plan::AdminScope {
        if self.system {
            domain::plan::AdminScope::All
        } else {
            domain::plan::AdminScope::Establishments(self.establishments.iter().cloned().collect())
        }
    }

    /// What this admin may see of the import history.
    pub fn history_viewer(&self) -> crate::history::Viewer {
        if self.system {
            crate::history::Viewer::Everything
        } else {
            crate::history::Viewer::Admin { id: self.id }
        }
    }

    pub fn may_act_on(&self, uai: &Uai) -> bool {
        self.system || self.establishments.contains(uai)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub admin: Admin,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub id: i64,
    pub admin_id: i64,
    pub file_name: String,
    pub file_bytes: Vec<u8>,
    /// The wizard's choices as JSON (owned by the web crate).
    pub settings: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When its content (file, edits) was wiped: see [`WebDirectory::purge_draft`].
    pub purged_at: Option<DateTime<Utc>>,
}

/// A draft without its file, for lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftSummary {
    pub id: i64,
    pub file_name: String,
    /// The wizard's choices as JSON (owned by the web crate).
    pub settings: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    pub id: i64,
    pub draft_id: i64,
    pub admin_id: i64,
    pub status: JobStatus,
    /// JSON: per-operation progress.
    pub progress: String,
    /// JSON: the import report.
    pub report: Option<String>,
    pub import_id: Option<i64>,
    pub error: Option<String>,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobEnd {
    pub status: JobStatus,
    pub report: Option<String>,
    pub import_id: Option<i64>,
    pub error: Option<String>,
    pub finished_at: DateTime<Utc>,
}

pub trait WebDirectory: Send + Sync {
    fn create_admin(
        &self,
        login: &str,
        password_hash: &str,
        system: bool,
        establishments: &[Uai],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<i64>> + Send;
    /// The admin and their password hash.
    fn admin_by_login(&self, login: &str) -> impl Future<Output = Result<Option<(Admin, String)>>> + Send;
    fn admin_by_id(&self, id: i64) -> impl Future<Output = Result<Option<Admin>>> + Send;
    fn set_admin_password(&self, id: i64, password_hash: &str) -> impl Future<Output = Result<()>> + Send;
    fn set_admin_email(&self, id: i64, email: Option<&str>) -> impl Future<Output = Result<()>> + Send;
    fn record_failed_login(&self, login: &str, at: DateTime<Utc>) -> impl Future<Output = Result<()>> + Send;
    fn failed_logins_since(&self, login: &str, since: DateTime<Utc>) -> impl Future<Output = Result<i64>> + Send;
    fn clear_failed_logins(&self, login: &str) -> impl Future<Output = Result<()>> + Send;
    fn create_session(
        &self,
        token_hash: &str,
        admin_id: i64,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn session(&self, token_hash: &str, now: DateTime<Utc>) -> impl Future<Output = Result<Option<Session>>> + Send;
    fn delete_session(&self, token_hash: &str) -> impl Future<Output = Result<()>> + Send;
    fn create_api_token(
        &self,
        token_hash: &str,
        admin_id: i64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn admin_by_api_token(&self, token_hash: &str) -> impl Future<Output = Result<Option<Admin>>> + Send;
    fn saved_mapping(&self, admin_id: i64, profile: &str) -> impl Future<Output = Result<Option<String>>> + Send;
    fn save_mapping(&self, admin_id: i64, profile: &str, overrides: &str) -> impl Future<Output = Result<()>> + Send;
    fn create_draft(
        &self,
        admin_id: i64,
        file_name: &str,
        bytes: &[u8],
        settings: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<i64>> + Send;
    fn draft(&self, id: i64) -> impl Future<Output = Result<Option<Draft>>> + Send;
    fn update_draft_settings(
        &self,
        id: i64,
        settings: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Wipes a draft's file and settings (its edits may hold imposed
    /// passwords in clear) once its import committed. The row stays for its
    /// jobs' pages.
    fn purge_draft(&self, id: i64, now: DateTime<Utc>) -> impl Future<Output = Result<()>> + Send;
    /// Abandoned drafts, untouched since `before` and without a job waiting
    /// or running: deleted when no job ever ran them, wiped otherwise. The
    /// number of drafts concerned.
    fn purge_abandoned_drafts(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;
    fn create_job(&self, draft_id: i64, admin_id: i64, now: DateTime<Utc>) -> impl Future<Output = Result<i64>> + Send;
    fn job(&self, id: i64) -> impl Future<Output = Result<Option<Job>>> + Send;
    fn jobs_of_draft(&self, draft_id: i64) -> impl Future<Output = Result<Vec<Job>>> + Send;
    /// An admin's drafts that no job imported or is importing and that are
    /// not wiped (the home page offers to resume or discard them), the 20
    /// last touched first.
    fn unfinished_drafts(&self, admin_id: i64) -> impl Future<Output = Result<Vec<DraftSummary>>> + Send;
    /// Takes the oldest job that is queued, or running under a lease that ran
    /// out (its server died), marking it running with a lease of
    /// `lease_seconds` (see [`JOB_LEASE_SECONDS`]). One statement: two
    /// servers never take the same job.
    fn claim_next_job(
        &self,
        now: DateTime<Utc>,
        lease_seconds: i64,
    ) -> impl Future<Output = Result<Option<Job>>> + Send;
    /// Records the progress and renews the lease for `lease_seconds`.
    fn set_job_progress(
        &self,
        id: i64,
        progress: &str,
        now: DateTime<Utc>,
        lease_seconds: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Gives a running job back to the queue (a server stopping before it
    /// ends): another worker takes it at once instead of waiting for the
    /// lease. Its import, if it committed, still finishes it (see
    /// [`JOB_LEASE_SECONDS`]).
    fn release_job(&self, id: i64) -> impl Future<Output = Result<()>> + Send;
    fn finish_job(&self, id: i64, end: &JobEnd) -> impl Future<Output = Result<()>> + Send;
    /// The waiting jobs: how many, and when the oldest was queued.
    fn job_queue(&self) -> impl Future<Output = Result<(i64, Option<DateTime<Utc>>)>> + Send;
}

/// How long a claimed job stays its worker's without news, by default
/// (`annuaire serve --job-lease`): the worker renews
/// the lease with every progress report (several a second). Once it runs
/// out, another worker, or the same server restarted, takes the job over; the
/// job → import link then keeps a committed import from being run twice.
pub const JOB_LEASE_SECONDS: i64 = 60;

const JOB_COLUMNS: &str =
    "id, draft_id, admin_id, status, progress, report, import_id, error, attempts, created_at, started_at, finished_at";

fn parse_uais(rows: Vec<String>) -> Result<Vec<Uai>> {
    rows.iter()
        .map(|u| Uai::parse(u).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect()
}

macro_rules! impl_web_directory {
    ($store:ty, $row:ty, $sql:path, $skip_locked:expr) => {
        impl $store {
            async fn load_admin(&self, id: i64, login: String, system: bool, email: Option<String>) -> Result<Admin> {
                let uais: Vec<String> = sqlx::query_scalar(&$sql("SELECT uai FROM admin_establishments WHERE admin_id = ? ORDER BY uai"))
                    .bind(id)
                    .fetch_all(self.pool())
                    .await?;
                Ok(Admin { id, login, system, establishments: parse_uais(uais)?, email })
            }

            fn job_from_row(r: &$row) -> Result<Job> {
                use sqlx::Row;
                let status: String = r.try_get("status")?;
                Ok(Job {
                    id: r.try_get("id")?,
                    draft_id: r.try_get("draft_id")?,
                    admin_id: r.try_get("admin_id")?,
                    status: crate::stored_word(&status)?,
                    progress: r.try_get("progress")?,
                    report: r.try_get("report")?,
                    import_id: r.try_get("import_id")?,
                    error: r.try_get("error")?,
                    attempts: r.try_get("attempts")?,
                    created_at: r.try_get("created_at")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                })
            }
        }

        impl WebDirectory for $store {
            async fn create_admin(&self, login: &str, password_hash: &str, system: bool, establishments: &[Uai], now: DateTime<Utc>) -> Result<i64> {
                let mut tx = self.pool().begin().await?;
                let id: i64 = sqlx::query_scalar(&$sql("INSERT INTO admins (login, password_hash, system, created_at) VALUES (?, ?, ?, ?) RETURNING id"))
                    .bind(login.to_lowercase())
                    .bind(password_hash)
                    .bind(system)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| match crate::StoreError::from_sqlx(e) {
                        StoreError::Database(sqlx::Error::Database(db)) if db.message().contains("admins") || db.constraint() == Some("admins_login") => {
                            StoreError::Conflict(format!("l'administrateur {login} existe déjà"))
                        }
                        other => other,
                    })?;
                for uai in establishments {
                    sqlx::query(&$sql("INSERT INTO admin_establishments (admin_id, uai) VALUES (?, ?)"))
                        .bind(id)
                        .bind(uai.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(|_| StoreError::NotFound(format!("établissement {uai} inconnu : ajoutez-le d'abord")))?;
                }
                tx.commit().await?;
                Ok(id)
            }

            async fn admin_by_login(&self, login: &str) -> Result<Option<(Admin, String)>> {
                use sqlx::Row;
                let row = sqlx::query(&$sql("SELECT id, login, system, email, password_hash FROM admins WHERE login = ?"))
                    .bind(login.trim().to_lowercase())
                    .fetch_optional(self.pool())
                    .await?;
                match row {
                    None => Ok(None),
                    Some(r) => {
                        let admin = self.load_admin(r.try_get("id")?, r.try_get("login")?, r.try_get("system")?, r.try_get("email")?).await?;
                        Ok(Some((admin, r.try_get("password_hash")?)))
                    }
                }
            }

            async fn admin_by_id(&self, id: i64) -> Result<Option<Admin>> {
                use sqlx::Row;
                let row = sqlx::query(&$sql("SELECT id, login, system, email FROM admins WHERE id = ?"))
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?;
                match row {
                    None => Ok(None),
                    Some(r) => Ok(Some(self.load_admin(r.try_get("id")?, r.try_get("login")?, r.try_get("system")?, r.try_get("email")?).await?)),
                }
            }

            async fn set_admin_password(&self, id: i64, password_hash: &str) -> Result<()> {
                sqlx::query(&$sql("UPDATE admins SET password_hash = ? WHERE id = ?"))
                    .bind(password_hash)
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn set_admin_email(&self, id: i64, email: Option<&str>) -> Result<()> {
                sqlx::query(&$sql("UPDATE admins SET email = ? WHERE id = ?"))
                    .bind(email)
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn record_failed_login(&self, login: &str, at: DateTime<Utc>) -> Result<()> {
                sqlx::query(&$sql("INSERT INTO failed_logins (login, at) VALUES (?, ?)"))
                    .bind(login.trim().to_lowercase())
                    .bind(at)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn failed_logins_since(&self, login: &str, since: DateTime<Utc>) -> Result<i64> {
                Ok(sqlx::query_scalar(&$sql("SELECT count(*) FROM failed_logins WHERE login = ? AND at >= ?"))
                    .bind(login.trim().to_lowercase())
                    .bind(since)
                    .fetch_one(self.pool())
                    .await?)
            }

            async fn clear_failed_logins(&self, login: &str) -> Result<()> {
                sqlx::query(&$sql("DELETE FROM failed_logins WHERE login = ?"))
                    .bind(login.trim().to_lowercase())
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn create_session(&self, token_hash: &str, admin_id: i64, csrf_token: &str, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> Result<()> {
                sqlx::query(&$sql("INSERT INTO sessions (token_hash, admin_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)"))
                    .bind(token_hash)
                    .bind(admin_id)
                    .bind(csrf_token)
                    .bind(now)
                    .bind(expires_at)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
                use sqlx::Row;
                let row = sqlx::query(&$sql(
                    "SELECT s.admin_id, s.csrf_token, s.expires_at, a.login, a.system, a.email FROM sessions s JOIN admins a ON a.id = s.admin_id WHERE s.token_hash = ? AND s.expires_at > ?",
                ))
                .bind(token_hash)
                .bind(now)
                .fetch_optional(self.pool())
                .await?;
                match row {
                    None => Ok(None),
                    Some(r) => {
                        let admin = self.load_admin(r.try_get("admin_id")?, r.try_get("login")?, r.try_get("system")?, r.try_get("email")?).await?;
                        Ok(Some(Session { admin, csrf_token: r.try_get("csrf_token")?, expires_at: r.try_get("expires_at")? }))
                    }
                }
            }

            async fn delete_session(&self, token_hash: &str) -> Result<()> {
                sqlx::query(&$sql("DELETE FROM sessions WHERE token_hash = ?"))
                    .bind(token_hash)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn create_api_token(&self, token_hash: &str, admin_id: i64, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(&$sql("INSERT INTO api_tokens (token_hash, admin_id, created_at) VALUES (?, ?, ?)"))
                    .bind(token_hash)
                    .bind(admin_id)
                    .bind(now)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn admin_by_api_token(&self, token_hash: &str) -> Result<Option<Admin>> {
                let id: Option<i64> = sqlx::query_scalar(&$sql("SELECT admin_id FROM api_tokens WHERE token_hash = ?"))
                    .bind(token_hash)
                    .fetch_optional(self.pool())
                    .await?;
                match id {
                    None => Ok(None),
                    Some(id) => self.admin_by_id(id).await,
                }
            }

            async fn saved_mapping(&self, admin_id: i64, profile: &str) -> Result<Option<String>> {
                Ok(sqlx::query_scalar(&$sql("SELECT overrides FROM saved_mappings WHERE admin_id = ? AND profile = ?"))
                    .bind(admin_id)
                    .bind(profile)
                    .fetch_optional(self.pool())
                    .await?)
            }

            async fn save_mapping(&self, admin_id: i64, profile: &str, overrides: &str) -> Result<()> {
                sqlx::query(&$sql(
                    "INSERT INTO saved_mappings (admin_id, profile, overrides) VALUES (?, ?, ?) ON CONFLICT (admin_id, profile) DO UPDATE SET overrides = excluded.overrides",
                ))
                .bind(admin_id)
                .bind(profile)
                .bind(overrides)
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn create_draft(&self, admin_id: i64, file_name: &str, bytes: &[u8], settings: &str, now: DateTime<Utc>) -> Result<i64> {
                Ok(sqlx::query_scalar(&$sql(
                    "INSERT INTO drafts (admin_id, file_name, file_bytes, settings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                ))
                .bind(admin_id)
                .bind(file_name)
                .bind(bytes)
                .bind(settings)
                .bind(now)
                .bind(now)
                .fetch_one(self.pool())
                .await?)
            }

            async fn draft(&self, id: i64) -> Result<Option<Draft>> {
                use sqlx::Row;
                let row = sqlx::query(&$sql(
                    "SELECT id, admin_id, file_name, file_bytes, settings, created_at, updated_at, purged_at FROM drafts WHERE id = ?",
                ))
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?;
                row.map(|r| -> Result<Draft> {
                    Ok(Draft {
                        id: r.try_get("id")?,
                        admin_id: r.try_get("admin_id")?,
                        file_name: r.try_get("file_name")?,
                        file_bytes: r.try_get("file_bytes")?,
                        settings: r.try_get("settings")?,
                        created_at: r.try_get("created_at")?,
                        updated_at: r.try_get("updated_at")?,
                        purged_at: r.try_get("purged_at")?,
                    })
                })
                .transpose()
            }

            async fn purge_draft(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(&$sql(
                    "UPDATE drafts SET file_bytes = ?, settings = '{}', purged_at = ? WHERE id = ? AND purged_at IS NULL",
                ))
                .bind(Vec::<u8>::new())
                .bind(now)
                .bind(id)
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn purge_abandoned_drafts(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64> {
                let mut tx = self.pool().begin().await?;
                let deleted = sqlx::query(&$sql(
                    "DELETE FROM drafts WHERE updated_at < ? AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.draft_id = drafts.id)",
                ))
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let wiped = sqlx::query(&$sql(
                    "UPDATE drafts SET file_bytes = ?, settings = '{}', purged_at = ? \
                     WHERE purged_at IS NULL AND updated_at < ? \
                     AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.draft_id = drafts.id AND jobs.status IN ('queued', 'running'))",
                ))
                .bind(Vec::<u8>::new())
                .bind(now)
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(deleted + wiped)
            }

            async fn update_draft_settings(&self, id: i64, settings: &str, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(&$sql("UPDATE drafts SET settings = ?, updated_at = ? WHERE id = ?"))
                    .bind(settings)
                    .bind(now)
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn create_job(&self, draft_id: i64, admin_id: i64, now: DateTime<Utc>) -> Result<i64> {
                Ok(sqlx::query_scalar(&$sql(
                    "INSERT INTO jobs (draft_id, admin_id, status, progress, created_at) VALUES (?, ?, 'queued', '{}', ?) RETURNING id",
                ))
                .bind(draft_id)
                .bind(admin_id)
                .bind(now)
                .fetch_one(self.pool())
                .await?)
            }

            async fn job(&self, id: i64) -> Result<Option<Job>> {
                let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?");
                let row = sqlx::query(&$sql(&sql)).bind(id).fetch_optional(self.pool()).await?;
                row.as_ref().map(Self::job_from_row).transpose()
            }

            async fn jobs_of_draft(&self, draft_id: i64) -> Result<Vec<Job>> {
                let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE draft_id = ? ORDER BY id");
                let rows = sqlx::query(&$sql(&sql)).bind(draft_id).fetch_all(self.pool()).await?;
                rows.iter().map(Self::job_from_row).collect()
            }

            async fn unfinished_drafts(&self, admin_id: i64) -> Result<Vec<DraftSummary>> {
                let rows: Vec<(i64, String, String, DateTime<Utc>)> = sqlx::query_as(&$sql(
                    "SELECT id, file_name, settings, updated_at FROM drafts \
                     WHERE admin_id = ? AND purged_at IS NULL \
                     AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.draft_id = drafts.id \
                                     AND jobs.status IN ('queued', 'running', 'succeeded')) \
                     ORDER BY updated_at DESC, id DESC LIMIT 20",
                ))
                .bind(admin_id)
                .fetch_all(self.pool())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, file_name, settings, updated_at)| DraftSummary { id, file_name, settings, updated_at })
                    .collect())
            }

            async fn claim_next_job(&self, now: DateTime<Utc>, lease_seconds: i64) -> Result<Option<Job>> {
                let claimed: Option<i64> = sqlx::query_scalar(&$sql(&format!(
                    "UPDATE jobs SET status = 'running', started_at = ?, attempts = attempts + 1, lease_until = ? \
                     WHERE id = (SELECT id FROM jobs WHERE status = 'queued' \
                                 OR (status = 'running' AND (lease_until IS NULL OR lease_until < ?)) \
                                 ORDER BY id LIMIT 1{}) RETURNING id",
                    $skip_locked
                )))
                .bind(now)
                .bind(now + chrono::Duration::seconds(lease_seconds))
                .bind(now)
                .fetch_optional(self.pool())
                .await?;
                match claimed {
                    Some(id) => self.job(id).await,
                    None => Ok(None),
                }
            }

            async fn set_job_progress(&self, id: i64, progress: &str, now: DateTime<Utc>, lease_seconds: i64) -> Result<()> {
                sqlx::query(&$sql("UPDATE jobs SET progress = ?, lease_until = ? WHERE id = ? AND status = 'running'"))
                    .bind(progress)
                    .bind(now + chrono::Duration::seconds(lease_seconds))
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn job_queue(&self) -> Result<(i64, Option<DateTime<Utc>>)> {
                Ok(sqlx::query_as(&$sql("SELECT COUNT(*), MIN(created_at) FROM jobs WHERE status = 'queued'"))
                    .fetch_one(self.pool())
                    .await?)
            }

            async fn release_job(&self, id: i64) -> Result<()> {
                sqlx::query(&$sql("UPDATE jobs SET status = 'queued', lease_until = NULL WHERE id = ? AND status = 'running'"))
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn finish_job(&self, id: i64, end: &JobEnd) -> Result<()> {
                sqlx::query(&$sql(
                    "UPDATE jobs SET status = ?, report = ?, import_id = ?, error = ?, finished_at = ? WHERE id = ?",
                ))
                .bind(end.status.id())
                .bind(&end.report)
                .bind(end.import_id)
                .bind(&end.error)
                .bind(end.finished_at)
                .bind(id)
                .execute(self.pool())
                .await?;
                Ok(())
            }
        }
    };
}

impl_web_directory!(
    crate::sqlite::SqliteDirectory,
    sqlx::sqlite::SqliteRow,
    crate::sqlite::sql,
    ""
);
impl_web_directory!(
    crate::postgres::PgDirectory,
    sqlx::postgres::PgRow,
    crate::postgres::sql,
    // Two servers polling at once skip each other's row instead of waiting.
    " FOR UPDATE SKIP LOCKED"
);
