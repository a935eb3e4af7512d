//! The import history ("Suivi Synchros", SPEC §7), result files kept for a
//! while, and the durable mail queue behind the end-of-import notices.
//!
//! One SQL text serves both backends, as in [`crate::web`]: the macro below
//! expands the same code for SQLite and PostgreSQL (`?` renumbered to `$n`).

use crate::{stored_word, ImportRecord, Result, StoreError};
use chrono::{DateTime, Utc};
use domain::result_file::Slip;
use domain::vocabulary::{Channel, ImportSource, ImportStatus, MailStatus};
use domain::Uai;
use serde::Serialize;
use std::future::Future;

/// One import as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportEntry {
    pub id: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub source: ImportSource,
    pub channel: Channel,
    pub actor: String,
    pub admin_id: Option<i64>,
    pub profile: String,
    pub establishments: Vec<Uai>,
    pub complet: bool,
    pub options: String,
    pub file_name: String,
    pub file_size: i64,
    pub rows: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub merged: i64,
    pub deactivated: i64,
    pub skipped: i64,
    pub status: ImportStatus,
    pub error: Option<String>,
    pub notify: Option<String>,
    /// The latest notice's status (none: no notice).
    pub mail_status: Option<MailStatus>,
    /// Until when the result file can be downloaded, if kept. Unix seconds in
    /// the JSON of `history --json` and the API, as before migration 0013.
    #[serde(with = "chrono::serde::ts_seconds_option")]
    pub result_expires_at: Option<DateTime<Utc>>,
}

impl ImportEntry {
    pub fn duration_seconds(&self) -> Option<i64> {
        self.finished_at.map(|f| (f - self.started_at).num_seconds().max(0))
    }

    /// Rows of the file that reached the result file: what the admin compares
    /// with the row count of the file they sent (guide §4.1.A.C).
    pub fn result_rows(&self) -> i64 {
        self.created + self.updated + self.unchanged + self.merged
    }

    /// The report of an applied import, as its history line counts it: what
    /// a job taken over after its import committed shows (the lines in
    /// conflict were skipped, their details are not kept).
    pub fn applied_report(&self) -> domain::pipeline::Report {
        let count = |n: i64| usize::try_from(n).unwrap_or_default();
        domain::pipeline::Report {
            status: domain::pipeline::Status::Imported,
            rows: count(self.rows),
            valid: count(self.rows - self.skipped),
            conflicts: count(self.skipped),
            created: count(self.created),
            updated: count(self.updated),
            // Not counted on the history line: the import's page lists them.
            attached: 0,
            unchanged: count(self.unchanged),
            merged: count(self.merged),
            deactivated: count(self.deactivated),
            skipped: count(self.skipped),
            conflict_details: Vec::new(),
            rejection: None,
        }
    }
}

/// Who is looking: a system admin sees everything; an establishment admin
/// sees the imports they ran and those that touched only their establishments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    Everything,
    Admin { id: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryFilter {
    pub viewer: Viewer,
    pub establishment: Option<Uai>,
    /// Inclusive lower bound on the start time.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive upper bound on the start time.
    pub before: Option<DateTime<Utc>>,
    pub limit: i64,
    pub offset: i64,
}

impl HistoryFilter {
    /// Imports started from the first day to the last one, both included:
    /// Paris days, as the pages show the times.
    pub fn days(mut self, first: Option<chrono::NaiveDate>, last: Option<chrono::NaiveDate>) -> Self {
        self.since = first.map(domain::time::start_of_day);
        self.before = last.and_then(|d| d.succ_opt()).map(domain::time::start_of_day);
        self
    }

    pub fn everything() -> Self {
        HistoryFilter {
            viewer: Viewer::Everything,
            establishment: None,
            since: None,
            before: None,
            limit: 100,
            offset: 0,
        }
    }
}

/// An account active in other establishments that an import attached to
/// the importer's: written with the import, told to the others' admins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub import_id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub user_id: i64,
    pub sync_key: String,
    pub last_name: String,
    pub first_name: String,
    pub attached_to: Vec<Uai>,
    /// Where the account already was.
    pub others: Vec<domain::Establishment>,
}

impl NewAttachment {
    /// Its audit row: who attached whom, where, from where.
    pub fn audit(&self) -> crate::admin::NewAudit {
        crate::admin::NewAudit {
            at: self.at,
            actor: self.actor.clone(),
            action: "account_attach".into(),
            target: self.sync_key.clone(),
            details: serde_json::json!({
                "import": self.import_id,
                "attached_to": self.attached_to,
                "already_in": self.others.iter().map(|e| &e.uai).collect::<Vec<_>>(),
            }),
        }
    }
}

/// One attachment as an establishment that already had the account sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentEntry {
    pub import_id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub user_id: i64,
    pub last_name: String,
    pub first_name: String,
    pub attached_uai: Uai,
    pub attached_name: String,
    pub other_uai: Uai,
    pub other_name: String,
}

impl AttachmentEntry {
    /// The establishment the account was attached to.
    pub fn attached(&self) -> domain::Establishment {
        domain::Establishment {
            uai: self.attached_uai.clone(),
            name: self.attached_name.clone(),
        }
    }

    /// The establishment where the account already was.
    pub fn other(&self) -> domain::Establishment {
        domain::Establishment {
            uai: self.other_uai.clone(),
            name: self.other_name.clone(),
        }
    }
}

/// A notice to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    pub import_id: Option<i64>,
    pub recipients: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    /// File name and content (the result file, when the setting allows it).
    pub attachment: Option<(String, Vec<u8>)>,
}

/// A notice in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: i64,
    pub import_id: Option<i64>,
    pub recipients: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub attachment: Option<(String, Vec<u8>)>,
    pub status: MailStatus,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

pub trait History: Send + Sync {
    /// Most recent first.
    fn list_imports(&self, filter: &HistoryFilter) -> impl Future<Output = Result<Vec<ImportEntry>>> + Send;
    fn import_entry(&self, id: i64) -> impl Future<Output = Result<Option<ImportEntry>>> + Send;
    /// The import a web job applied, if it committed.
    fn import_of_job(&self, job_id: i64) -> impl Future<Output = Result<Option<ImportEntry>>> + Send;
    /// Whether `viewer` may see this import (same rule as [`History::list_imports`]).
    fn may_view_import(&self, id: i64, viewer: &Viewer) -> impl Future<Output = Result<bool>> + Send;
    /// Records an import that was not applied (rejected or failed).
    fn record_import(&self, record: &ImportRecord) -> impl Future<Output = Result<i64>> + Send;
    /// The result file while it is retained.
    fn import_result(&self, import_id: i64, now: DateTime<Utc>)
        -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
    /// The credential slips while the result file is retained.
    fn import_slips(
        &self,
        import_id: i64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Vec<Slip>>>> + Send;
    /// Deletes result files past their retention.
    fn purge_import_results(&self, now: DateTime<Utc>) -> impl Future<Output = Result<u64>> + Send;
    /// The lines an import skipped, while its result file is kept.
    fn import_skipped_lines(
        &self,
        import_id: i64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
    /// Accounts and memberships still deactivated by this import (what a restore would bring back).
    fn still_deactivated_by(&self, import_id: i64) -> impl Future<Output = Result<i64>> + Send;
    /// The accounts a restore of this import would bring back (deactivated by
    /// it, or one of their memberships), by name: (id, "LAST First"), at most `limit`.
    fn still_deactivated_accounts(
        &self,
        import_id: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<(i64, String)>>> + Send;

    fn enqueue_mail(&self, mail: &NewMail, now: DateTime<Utc>) -> impl Future<Output = Result<i64>> + Send;
    /// Takes up to `limit` due mails, pushing their next attempt `lease_seconds`
    /// ahead so that a second sender (CLI and server at once) skips them.
    fn claim_due_mails(
        &self,
        now: DateTime<Utc>,
        lease_seconds: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<QueuedMail>>> + Send;
    /// Marks a mail sent and forgets its attachment.
    fn mail_sent(&self, id: i64, now: DateTime<Utc>) -> impl Future<Output = Result<()>> + Send;
    /// Records a failed attempt: retried at `retry_at`, or given up when `None`.
    fn mail_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn mails_of_import(&self, import_id: i64) -> impl Future<Output = Result<Vec<QueuedMail>>> + Send;
    /// Accounts attached by other establishments' imports that were already in
    /// the viewer's establishments, most recent first.
    fn attachments_seen_by(
        &self,
        viewer: &Viewer,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<AttachmentEntry>>> + Send;
    fn attachments_of_import(&self, import_id: i64) -> impl Future<Output = Result<Vec<AttachmentEntry>>> + Send;
    /// The e-mail addresses of the admins of an establishment (those who gave one).
    fn admin_emails_of(&self, uai: &Uai) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// The establishments of these UAIs (an import touches a few), with their
    /// names, for the mails; an unknown UAI is left out.
    fn establishments_named(&self, uais: &[Uai]) -> impl Future<Output = Result<Vec<domain::Establishment>>> + Send;
}

const ATTACHMENT_COLUMNS: &str =
    "t.import_id, t.at, t.actor, t.user_id, t.last_name, t.first_name, t.attached_uai, t.other_uai, \
     COALESCE((SELECT e.name FROM establishments e WHERE e.uai = t.attached_uai), '') AS attached_name, \
     COALESCE((SELECT e.name FROM establishments e WHERE e.uai = t.other_uai), '') AS other_name";

const ENTRY_COLUMNS: &str = "i.id, i.started_at, i.finished_at, i.source, i.channel, i.actor, i.admin_id, i.profile, \
     i.establishments, i.complet, i.options, i.file_name, i.file_size, i.rows, i.created, i.updated, i.unchanged, \
     i.merged, i.deactivated, i.skipped, i.status, i.error, i.notify, \
     (SELECT m.status FROM mails m WHERE m.import_id = i.id ORDER BY m.id DESC LIMIT 1) AS mail_status, \
     (SELECT r.expires_at FROM import_results r WHERE r.import_id = i.id) AS result_expires_at";

const MAIL_COLUMNS: &str =
    "id, import_id, recipients, cc, subject, body_text, body_html, attachment_name, attachment, \
     status, attempts, next_attempt_at, last_error, created_at, sent_at";

/// An establishment admin sees an import they ran, or one whose establishments
/// are all theirs (an import with no establishment is a system admin's).
const ADMIN_MAY_VIEW: &str =
    "(i.admin_id = ? OR (EXISTS (SELECT 1 FROM import_establishments e WHERE e.import_id = i.id) \
     AND NOT EXISTS (SELECT 1 FROM import_establishments e WHERE e.import_id = i.id \
     AND e.uai NOT IN (SELECT a.uai FROM admin_establishments a WHERE a.admin_id = ?))))";

fn split_list(text: &str) -> Vec<String> {
    text.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn parse_establishments(text: &str) -> Result<Vec<Uai>> {
    split_list(text)
        .iter()
        .map(|u| Uai::parse(u).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect()
}

macro_rules! impl_history {
    ($store:ty, $row:ty, $conn:ty, $sql:path) => {
        impl $store {
            /// The one INSERT of a history line, used inside an import's
            /// transaction and on its own for rejected or failed imports.
            pub(crate) async fn write_import(conn: &mut $conn, r: &ImportRecord) -> Result<i64> {
                let id: i64 = sqlx::query_scalar(&$sql(
                    "INSERT INTO imports (started_at, finished_at, source, channel, actor, admin_id, profile, establishments, complet, options, \
                     file_name, file_size, rows, created, updated, unchanged, merged, deactivated, skipped, status, error, notify, job_id) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                ))
                .bind(r.started_at)
                .bind(r.finished_at)
                .bind(r.source.id())
                .bind(r.channel.id())
                .bind(&r.actor)
                .bind(r.admin_id)
                .bind(&r.profile)
                .bind(crate::uai_strings(&r.establishments).join(","))
                .bind(r.complet)
                .bind(&r.options)
                .bind(&r.file_name)
                .bind(r.file_size)
                .bind(r.rows)
                .bind(r.created)
                .bind(r.updated)
                .bind(r.unchanged)
                .bind(r.merged)
                .bind(r.deactivated)
                .bind(r.skipped)
                .bind(r.status.id())
                .bind(&r.error)
                .bind(&r.notify)
                .bind(r.job_id)
                .fetch_one(&mut *conn)
                .await?;
                Self::write_import_establishments(conn, id, r).await?;
                Ok(id)
            }

            async fn write_import_establishments(conn: &mut $conn, id: i64, r: &ImportRecord) -> Result<()> {
                let mut uais = crate::uai_strings(&r.establishments);
                uais.sort();
                uais.dedup();
                for uai in uais {
                    sqlx::query(&$sql("INSERT INTO import_establishments (import_id, uai) VALUES (?, ?)"))
                        .bind(id)
                        .bind(uai)
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            }

            /// The history line of an import written batch by batch, once its
            /// counts are known (same transaction as [`Self::write_import`]).
            pub(crate) async fn rewrite_import(conn: &mut $conn, id: i64, r: &ImportRecord) -> Result<()> {
                sqlx::query(&$sql(
                    "UPDATE imports SET finished_at = ?, establishments = ?, complet = ?, options = ?, rows = ?, \
                     created = ?, updated = ?, unchanged = ?, merged = ?, deactivated = ?, skipped = ?, status = ?, error = ? \
                     WHERE id = ?",
                ))
                .bind(r.finished_at)
                .bind(crate::uai_strings(&r.establishments).join(","))
                .bind(r.complet)
                .bind(&r.options)
                .bind(r.rows)
                .bind(r.created)
                .bind(r.updated)
                .bind(r.unchanged)
                .bind(r.merged)
                .bind(r.deactivated)
                .bind(r.skipped)
                .bind(r.status.id())
                .bind(&r.error)
                .bind(id)
                .execute(&mut *conn)
                .await?;
                sqlx::query(&$sql("DELETE FROM import_establishments WHERE import_id = ?"))
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                Self::write_import_establishments(conn, id, r).await
            }

            pub(crate) async fn write_import_result(conn: &mut $conn, import_id: i64, content: &[u8], slips: &str, expires_at: DateTime<Utc>) -> Result<()> {
                sqlx::query(&$sql("INSERT INTO import_results (import_id, content, slips, expires_at) VALUES (?, ?, ?, ?)"))
                    .bind(import_id)
                    .bind(content)
                    .bind(slips)
                    .bind(expires_at)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }

            fn attachment_from_row(r: &$row) -> Result<AttachmentEntry> {
                use sqlx::Row;
                let other: String = r.try_get("other_uai")?;
                let attached: String = r.try_get("attached_uai")?;
                Ok(AttachmentEntry {
                    import_id: r.try_get("import_id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    user_id: r.try_get("user_id")?,
                    last_name: r.try_get("last_name")?,
                    first_name: r.try_get("first_name")?,
                    attached_uai: crate::stored_uai(&attached)?,
                    attached_name: r.try_get("attached_name")?,
                    other_uai: crate::stored_uai(&other)?,
                    other_name: r.try_get("other_name")?,
                })
            }

            fn entry_from_row(r: &$row) -> Result<ImportEntry> {
                use sqlx::Row;
                let establishments: String = r.try_get("establishments")?;
                let source: String = r.try_get("source")?;
                let channel: String = r.try_get("channel")?;
                let status: String = r.try_get("status")?;
                let mail_status: Option<String> = r.try_get("mail_status")?;
                Ok(ImportEntry {
                    id: r.try_get("id")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                    source: stored_word(&source)?,
                    channel: stored_word(&channel)?,
                    actor: r.try_get("actor")?,
                    admin_id: r.try_get("admin_id")?,
                    profile: r.try_get("profile")?,
                    establishments: parse_establishments(&establishments)?,
                    complet: r.try_get("complet")?,
                    options: r.try_get("options")?,
                    file_name: r.try_get("file_name")?,
                    file_size: r.try_get("file_size")?,
                    rows: r.try_get("rows")?,
                    created: r.try_get("created")?,
                    updated: r.try_get("updated")?,
                    unchanged: r.try_get("unchanged")?,
                    merged: r.try_get("merged")?,
                    deactivated: r.try_get("deactivated")?,
                    skipped: r.try_get("skipped")?,
                    status: stored_word(&status)?,
                    error: r.try_get("error")?,
                    notify: r.try_get("notify")?,
                    mail_status: mail_status.as_deref().map(stored_word).transpose()?,
                    result_expires_at: r.try_get("result_expires_at")?,
                })
            }

            fn mail_from_row(r: &$row) -> Result<QueuedMail> {
                use sqlx::Row;
                let recipients: String = r.try_get("recipients")?;
                let cc: String = r.try_get("cc")?;
                let name: Option<String> = r.try_get("attachment_name")?;
                let content: Option<Vec<u8>> = r.try_get("attachment")?;
                let status: String = r.try_get("status")?;
                Ok(QueuedMail {
                    id: r.try_get("id")?,
                    import_id: r.try_get("import_id")?,
                    recipients: split_list(&recipients),
                    cc: split_list(&cc),
                    subject: r.try_get("subject")?,
                    body_text: r.try_get("body_text")?,
                    body_html: r.try_get("body_html")?,
                    attachment: name.zip(content),
                    status: stored_word(&status)?,
                    attempts: r.try_get("attempts")?,
                    next_attempt_at: r.try_get("next_attempt_at")?,
                    last_error: r.try_get("last_error")?,
                    created_at: r.try_get("created_at")?,
                    sent_at: r.try_get("sent_at")?,
                })
            }
        }

        impl History for $store {
            async fn list_imports(&self, f: &HistoryFilter) -> Result<Vec<ImportEntry>> {
                let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM imports i WHERE 1 = 1");
                if f.establishment.is_some() {
                    sql.push_str(" AND EXISTS (SELECT 1 FROM import_establishments e WHERE e.import_id = i.id AND e.uai = ?)");
                }
                if f.since.is_some() {
                    sql.push_str(" AND i.started_at >= ?");
                }
                if f.before.is_some() {
                    sql.push_str(" AND i.started_at < ?");
                }
                if matches!(f.viewer, Viewer::Admin { .. }) {
                    sql.push_str(" AND ");
                    sql.push_str(ADMIN_MAY_VIEW);
                }
                sql.push_str(" ORDER BY i.started_at DESC, i.id DESC LIMIT ? OFFSET ?");
                let sql = $sql(&sql);
                let mut q = sqlx::query(&sql);
                if let Some(uai) = &f.establishment {
                    q = q.bind(uai.as_str());
                }
                if let Some(since) = f.since {
                    q = q.bind(since);
                }
                if let Some(before) = f.before {
                    q = q.bind(before);
                }
                if let Viewer::Admin { id } = f.viewer {
                    q = q.bind(id).bind(id);
                }
                let rows = q.bind(f.limit).bind(f.offset).fetch_all(self.pool()).await?;
                rows.iter().map(Self::entry_from_row).collect()
            }

            async fn import_entry(&self, id: i64) -> Result<Option<ImportEntry>> {
                let row = sqlx::query(&$sql(&format!("SELECT {ENTRY_COLUMNS} FROM imports i WHERE i.id = ?")))
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?;
                row.as_ref().map(Self::entry_from_row).transpose()
            }

            async fn import_of_job(&self, job_id: i64) -> Result<Option<ImportEntry>> {
                let row = sqlx::query(&$sql(&format!("SELECT {ENTRY_COLUMNS} FROM imports i WHERE i.job_id = ?")))
                    .bind(job_id)
                    .fetch_optional(self.pool())
                    .await?;
                row.as_ref().map(Self::entry_from_row).transpose()
            }

            async fn may_view_import(&self, id: i64, viewer: &Viewer) -> Result<bool> {
                let found: Option<i64> = match viewer {
                    Viewer::Everything => {
                        sqlx::query_scalar(&$sql("SELECT i.id FROM imports i WHERE i.id = ?"))
                            .bind(id)
                            .fetch_optional(self.pool())
                            .await?
                    }
                    Viewer::Admin { id: admin } => {
                        sqlx::query_scalar(&$sql(&format!("SELECT i.id FROM imports i WHERE i.id = ? AND {ADMIN_MAY_VIEW}")))
                            .bind(id)
                            .bind(*admin)
                            .bind(*admin)
                            .fetch_optional(self.pool())
                            .await?
                    }
                };
                Ok(found.is_some())
            }

            async fn record_import(&self, record: &ImportRecord) -> Result<i64> {
                let mut tx = self.pool().begin().await?;
                let id = Self::write_import(&mut tx, record).await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn import_result(&self, import_id: i64, now: DateTime<Utc>) -> Result<Option<Vec<u8>>> {
                Ok(sqlx::query_scalar(&$sql("SELECT content FROM import_results WHERE import_id = ? AND expires_at >= ?"))
                    .bind(import_id)
                    .bind(now)
                    .fetch_optional(self.pool())
                    .await?)
            }

            async fn import_slips(&self, import_id: i64, now: DateTime<Utc>) -> Result<Option<Vec<Slip>>> {
                let json: Option<String> = sqlx::query_scalar(&$sql("SELECT slips FROM import_results WHERE import_id = ? AND expires_at >= ?"))
                    .bind(import_id)
                    .bind(now)
                    .fetch_optional(self.pool())
                    .await?;
                json.map(|j| serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string())))
                    .transpose()
            }

            async fn import_skipped_lines(&self, import_id: i64, now: DateTime<Utc>) -> Result<Option<Vec<u8>>> {
                let found: Option<Option<Vec<u8>>> =
                    sqlx::query_scalar(&$sql("SELECT skipped FROM import_results WHERE import_id = ? AND expires_at >= ?"))
                        .bind(import_id)
                        .bind(now)
                        .fetch_optional(self.pool())
                        .await?;
                Ok(found.flatten())
            }

            async fn purge_import_results(&self, now: DateTime<Utc>) -> Result<u64> {
                Ok(sqlx::query(&$sql("DELETE FROM import_results WHERE expires_at < ?"))
                    .bind(now)
                    .execute(self.pool())
                    .await?
                    .rows_affected())
            }

            async fn still_deactivated_accounts(&self, import_id: i64, limit: i64) -> Result<Vec<(i64, String)>> {
                let rows: Vec<(i64, String, String)> = sqlx::query_as(&$sql(
                    "SELECT u.id, u.last_name, u.first_name FROM users u WHERE u.deactivated_by_import = ? \
                     OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id AND m.deactivated_by_import = ?) \
                     ORDER BY u.last_name, u.first_name, u.id LIMIT ?",
                ))
                .bind(import_id)
                .bind(import_id)
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, last, first)| (id, format!("{} {first}", last.to_uppercase())))
                    .collect())
            }

            async fn still_deactivated_by(&self, import_id: i64) -> Result<i64> {
                let users: i64 = sqlx::query_scalar(&$sql("SELECT count(*) FROM users WHERE deactivated_by_import = ?"))
                    .bind(import_id)
                    .fetch_one(self.pool())
                    .await?;
                let memberships: i64 = sqlx::query_scalar(&$sql(
                    "SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id \
                     WHERE m.deactivated_by_import = ? AND (u.deactivated_by_import IS NULL OR u.deactivated_by_import <> ?)",
                ))
                .bind(import_id)
                .bind(import_id)
                .fetch_one(self.pool())
                .await?;
                Ok(users + memberships)
            }

            async fn enqueue_mail(&self, m: &NewMail, now: DateTime<Utc>) -> Result<i64> {
                let (name, content) = match &m.attachment {
                    Some((n, c)) => (Some(n.as_str()), Some(c.as_slice())),
                    None => (None, None),
                };
                Ok(sqlx::query_scalar(&$sql(
                    "INSERT INTO mails (import_id, recipients, cc, subject, body_text, body_html, attachment_name, attachment, status, attempts, next_attempt_at, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) RETURNING id",
                ))
                .bind(m.import_id)
                .bind(m.recipients.join(","))
                .bind(m.cc.join(","))
                .bind(&m.subject)
                .bind(&m.body_text)
                .bind(&m.body_html)
                .bind(name)
                .bind(content)
                .bind(now)
                .bind(now)
                .fetch_one(self.pool())
                .await?)
            }

            async fn claim_due_mails(&self, now: DateTime<Utc>, lease_seconds: i64, limit: i64) -> Result<Vec<QueuedMail>> {
                let due: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(&$sql(
                    "SELECT id, next_attempt_at FROM mails WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
                ))
                .bind(now)
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
                let mut claimed = Vec::new();
                for (id, at) in due {
                    // Compare-and-set on next_attempt_at: only one sender wins.
                    let won = sqlx::query(&$sql(
                        "UPDATE mails SET next_attempt_at = ?, attempts = attempts + 1 WHERE id = ? AND status = 'pending' AND next_attempt_at = ?",
                    ))
                    .bind(now + chrono::Duration::seconds(lease_seconds))
                    .bind(id)
                    .bind(at)
                    .execute(self.pool())
                    .await?
                    .rows_affected();
                    if won == 1 {
                        let row = sqlx::query(&$sql(&format!("SELECT {MAIL_COLUMNS} FROM mails WHERE id = ?")))
                            .bind(id)
                            .fetch_one(self.pool())
                            .await?;
                        claimed.push(Self::mail_from_row(&row)?);
                    }
                }
                Ok(claimed)
            }

            async fn mail_sent(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(&$sql("UPDATE mails SET status = 'sent', sent_at = ?, last_error = NULL, attachment = NULL WHERE id = ?"))
                    .bind(now)
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn mail_failed(&self, id: i64, error: &str, retry_at: Option<DateTime<Utc>>) -> Result<()> {
                match retry_at {
                    Some(at) => {
                        sqlx::query(&$sql("UPDATE mails SET last_error = ?, next_attempt_at = ? WHERE id = ?"))
                            .bind(error)
                            .bind(at)
                            .bind(id)
                            .execute(self.pool())
                            .await?;
                    }
                    None => {
                        sqlx::query(&$sql("UPDATE mails SET status = 'failed', last_error = ?, attachment = NULL WHERE id = ?"))
                            .bind(error)
                            .bind(id)
                            .execute(self.pool())
                            .await?;
                    }
                }
                Ok(())
            }

            async fn attachments_seen_by(&self, viewer: &Viewer, limit: i64) -> Result<Vec<AttachmentEntry>> {
                let rows = match viewer {
                    Viewer::Everything => {
                        sqlx::query(&$sql(&format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments t ORDER BY t.at DESC, t.id DESC LIMIT ?")))
                            .bind(limit)
                            .fetch_all(self.pool())
                            .await?
                    }
                    Viewer::Admin { id } => {
                        sqlx::query(&$sql(&format!(
                            "SELECT {ATTACHMENT_COLUMNS} FROM attachments t WHERE t.other_uai IN \
                             (SELECT a.uai FROM admin_establishments a WHERE a.admin_id = ?) ORDER BY t.at DESC, t.id DESC LIMIT ?"
                        )))
                        .bind(*id)
                        .bind(limit)
                        .fetch_all(self.pool())
                        .await?
                    }
                };
                rows.iter().map(Self::attachment_from_row).collect()
            }

            async fn attachments_of_import(&self, import_id: i64) -> Result<Vec<AttachmentEntry>> {
                let rows = sqlx::query(&$sql(&format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments t WHERE t.import_id = ? ORDER BY t.id")))
                    .bind(import_id)
                    .fetch_all(self.pool())
                    .await?;
                rows.iter().map(Self::attachment_from_row).collect()
            }

            async fn admin_emails_of(&self, uai: &Uai) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar(&$sql(
                    "SELECT DISTINCT ad.email FROM admins ad JOIN admin_establishments a ON a.admin_id = ad.id \
                     WHERE a.uai = ? AND ad.email IS NOT NULL AND ad.email <> '' ORDER BY ad.email",
                ))
                .bind(uai.as_str())
                .fetch_all(self.pool())
                .await?)
            }

            async fn establishments_named(&self, uais: &[Uai]) -> Result<Vec<domain::Establishment>> {
                let mut named = Vec::with_capacity(uais.len());
                for uai in uais {
                    let name: Option<String> = sqlx::query_scalar(&$sql("SELECT name FROM establishments WHERE uai = ?"))
                        .bind(uai.as_str())
                        .fetch_optional(self.pool())
                        .await?;
                    named.extend(name.map(|name| domain::Establishment { uai: uai.clone(), name }));
                }
                Ok(named)
            }

            async fn mails_of_import(&self, import_id: i64) -> Result<Vec<QueuedMail>> {
                let rows = sqlx::query(&$sql(&format!("SELECT {MAIL_COLUMNS} FROM mails WHERE import_id = ? ORDER BY id")))
                    .bind(import_id)
                    .fetch_all(self.pool())
                    .await?;
                rows.iter().map(Self::mail_from_row).collect()
            }
        }
    };
}

impl_history!(
    crate::sqlite::SqliteDirectory,
    sqlx::sqlite::SqliteRow,
    sqlx::SqliteConnection,
    crate::sqlite::sql
);
impl_history!(
    crate::postgres::PgDirectory,
    sqlx::postgres::PgRow,
    sqlx::PgConnection,
    crate::postgres::sql
);
