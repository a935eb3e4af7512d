//! SQLite backend: the embedded default. One file, WAL, a 64 MiB page cache;
//! lists are bound as JSON arrays and read back with `json_each`, so every
//! lookup is one indexed statement whatever the number of keys.

use crate::users::{attribute_column_list, attribute_values, ATTRIBUTE_COLUMNS};
use crate::{uai_strings, NewUser, Result, StoreError, UserQuery, UserUpdate};
use chrono::{DateTime, Utc};
use domain::person::{GroupRef, Membership};
use domain::{Profile, Uai};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Rows per multi-row INSERT: each statement is one round trip to sqlx's
/// SQLite thread, which costs more than SQLite's own work on a row. 400 rows
/// of 24 columns stay well under SQLite's 32 766 bound parameters, and every
/// full chunk reuses one cached prepared statement.
pub(crate) const ROWS_PER_INSERT: usize = 400;

pub struct SqliteDirectory {
    pool: SqlitePool,
    /// The database file, watched by [`Directory::readiness`]: a file deleted
    /// under a running server keeps answering through its open connections,
    /// and everything written then would be lost.
    file: PathBuf,
    /// Writers of this process wait here for their turn, first come first
    /// served, instead of racing for SQLite's lock (see [`WriterQueue`]).
    writers: WriterQueue,
}

/// The schema this program expects, embedded at build time.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub(crate) fn json<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_string())
}

/// SQLite takes `?` placeholders as they are written.
pub(crate) fn sql(text: &str) -> String {
    text.to_string()
}

/// `column` is one of the values of a list bound with [`list`].
pub(crate) fn in_list(column: &str) -> String {
    format!("{column} IN (SELECT value FROM json_each(?))")
}

/// A list bound as one JSON array, so a statement has one placeholder
/// whatever the number of values.
pub(crate) fn list<T: serde::Serialize>(items: &[T]) -> String {
    json(items)
}

/// [`in_list`] in a `QueryBuilder`.
pub(crate) fn push_in_list(b: &mut QueryBuilder<'static, Sqlite>, column: &str, items: Vec<String>) {
    b.push(format!("{column} IN (SELECT value FROM json_each("))
        .push_bind(json(&items))
        .push("))");
}

/// `EXPLAIN QUERY PLAN` rows as text, one step a line, indented by depth.
fn plan_lines(rows: &[sqlx::sqlite::SqliteRow]) -> Result<String> {
    let mut depth: HashMap<i64, usize> = HashMap::new();
    let mut lines = Vec::with_capacity(rows.len());
    for r in rows {
        let id: i64 = r.try_get("id")?;
        let parent: i64 = r.try_get("parent")?;
        let detail: String = r.try_get("detail")?;
        let d = depth.get(&parent).map_or(0, |d| d + 1);
        depth.insert(id, d);
        lines.push(format!("{}{detail}", "  ".repeat(d)));
    }
    Ok(lines.join("\n"))
}

/// Per base: its highest-numbered login (index `users_login_base`, read
/// backwards from the longest number) and the base itself (`users_login_ci`).
pub(crate) const LOGINS_HIGHEST: &str = "SELECT \
     (SELECT u.login FROM users u WHERE rtrim(u.login, '0123456789') = b.value ORDER BY length(u.login) DESC, u.login DESC LIMIT 1) AS highest, \
     (SELECT u.login FROM users u WHERE lower(u.login) = b.value) AS exact \
     FROM json_each(?) b";

impl SqliteDirectory {
    /// Opens (creating the file and its folder if missing) and migrates.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, WriterQueue::default()).await
    }

    /// Opens with a given wait for SQLite's lock: the tests shorten it to
    /// see writers queue in a second rather than in minutes.
    pub async fn open_with(url: &str, writers: WriterQueue) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|_| StoreError::BadUrl(url.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(writers.busy_timeout)
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            // Checkpoints run outside imports (`Directory::checkpoint`), not in their commit.
            .pragma("wal_autocheckpoint", "0");
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::BadUrl(format!("{url} ({e})")))?;
            }
        }
        let file = options.get_filename().to_path_buf();
        // A first connection creates the file if missing; the pool's own
        // connections never do: a file deleted under a running server is
        // then said (readiness, 503), not silently replaced by an empty one
        // when the pool opens its next connection.
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?
            .close()
            .await;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.create_if_missing(false))
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteDirectory { pool, file, writers })
    }

    async fn begin_writing_tx(&self) -> Result<SqliteTx> {
        let turn = std::sync::Arc::clone(&self.writers.turn).lock_owned().await;
        let mut tx = self.new_tx(self.pool.begin().await?);
        tx.turn = Some(turn);
        Ok(tx)
    }

    fn new_tx(&self, tx: Transaction<'static, Sqlite>) -> SqliteTx {
        SqliteTx {
            tx,
            turn: None,
            writers: self.writers.clone(),
        }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Refuses when the database file is gone (deleted or moved away).
    pub(crate) fn file_present(&self) -> Result<()> {
        if self.file.exists() || self.file.as_os_str() == ":memory:" {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "le fichier de la base {} a disparu : arrêtez le serveur et restaurez-le depuis une sauvegarde",
                self.file.display()
            )))
        }
    }

    /// `EXPLAIN QUERY PLAN` of the statement [`Directory::search_users`] runs
    /// for this query, one line per step, indented by depth.
    pub async fn explain_search(&self, q: &UserQuery) -> Result<String> {
        let rows = Self::search_query("EXPLAIN QUERY PLAN ", q)
            .build()
            .fetch_all(&self.pool)
            .await?;
        plan_lines(&rows)
    }

    /// `EXPLAIN QUERY PLAN` of the snapshot's read of the highest login of
    /// each base ([`DirectoryTx::logins_highest`]).
    pub async fn explain_logins_highest(&self, bases: &[String]) -> Result<String> {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {LOGINS_HIGHEST}"))
            .bind(json(bases))
            .fetch_all(&self.pool)
            .await?;
        plan_lines(&rows)
    }
}

pub struct SqliteTx {
    pub(crate) tx: Transaction<'static, Sqlite>,
    /// This process's writer turn, held until the transaction ends.
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    writers: WriterQueue,
}

/// How imports share SQLite's single writer lock. In one process (a server
/// with its worker, its scheduled AAF run and its pages) writers queue on a
/// mutex, in arrival order. Across processes (a CLI import beside the server)
/// SQLite's own lock decides: a writer asks for it again each time its busy
/// timeout runs out, until `patience`, and only then gives up with a French
/// message. A long import thus makes the next one wait, not fail after 30 s.
#[derive(Clone, Debug)]
pub struct WriterQueue {
    turn: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// SQLite's wait for its lock at each attempt (and for every short write).
    pub busy_timeout: Duration,
    /// How long an import waits for another process's write in all.
    pub patience: Duration,
}

impl Default for WriterQueue {
    fn default() -> Self {
        WriterQueue::new(Duration::from_secs(30), Duration::from_secs(3600))
    }
}

impl WriterQueue {
    pub fn new(busy_timeout: Duration, patience: Duration) -> WriterQueue {
        WriterQueue {
            turn: std::sync::Arc::default(),
            busy_timeout,
            patience,
        }
    }
}

crate::statements::impl_directory!(sqlite, sqlx::Sqlite, SqliteDirectory, SqliteTx, sqlx::sqlite::SqliteRow);

impl SqliteDirectory {
    async fn checkpoint_log(&self) -> Result<()> {
        // PASSIVE: copies what no reader still needs and never blocks; the
        // next writer then restarts the log from its beginning.
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// What SQLite does its own way: one writer lock, multi-row INSERTs of
/// [`ROWS_PER_INSERT`] rows, one UPDATE per row (each is one indexed write).
impl SqliteTx {
    async fn lock_establishments_for_writing(&mut self, uais: &[Uai]) -> Result<()> {
        // A write takes SQLite's single writer lock now rather than at the
        // first insert, so a concurrent import waits instead of failing later.
        let uais = json(&uai_strings(uais));
        self.take_writer_turn(
            "UPDATE establishments SET name = name WHERE uai IN (SELECT value FROM json_each(?))",
            &uais,
        )
        .await
    }

    /// Waits for SQLite's lock (this process's turn was taken by
    /// [`Directory::begin_writing`]), with `write` (a statement that changes
    /// nothing) as the first statement of the transaction: a busy answer then
    /// leaves it as it was, and it can ask again.
    async fn take_writer_turn(&mut self, write: &str, argument: &str) -> Result<()> {
        let started = std::time::Instant::now();
        loop {
            match sqlx::query(write).bind(argument).execute(&mut *self.tx).await {
                Ok(_) => return Ok(()),
                Err(e) if crate::is_busy(&e) && started.elapsed() < self.writers.patience => {
                    tracing::info!(
                        waited_seconds = started.elapsed().as_secs(),
                        "la base SQLite est occupée par un autre programme : l'import attend son tour"
                    );
                }
                Err(e) if crate::is_busy(&e) => {
                    return Err(StoreError::Unavailable(format!(
                        "la base SQLite est occupée par un autre programme depuis {} minutes (un import en ligne de commande ou un autre serveur sur le même fichier ?) : rien n'a été enregistré ; attendez la fin de cette opération, puis recommencez",
                        started.elapsed().as_secs() / 60
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn lock_keys_and_logins(&mut self, _keys: &[String], _logins: &[String]) -> Result<()> {
        // SQLite has one writer at a time: the lock taken above already covers it.
        Ok(())
    }

    async fn lock_all_keys_and_logins(&mut self) -> Result<()> {
        Ok(())
    }

    async fn analyze_directory_tables(&mut self) -> Result<()> {
        // Without statistics SQLite prefers the indexes, which is what a
        // growing directory needs: nothing to refresh.
        Ok(())
    }

    async fn lock_users_for_writing(&mut self, _keys: &[String]) -> Result<()> {
        // SQLite has one writer: taking its lock now covers every row.
        self.take_writer_turn("UPDATE users SET id = id WHERE id = ?", "-1")
            .await
    }

    async fn logins_in_base_ranges(&mut self, bases: &[String]) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT lower(u.login) FROM json_each(?) b JOIN users u ON lower(u.login) >= b.value AND lower(u.login) < b.value || ':'",
        )
        .bind(json(bases))
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn write_groups(&mut self, groups: &[GroupRef]) -> Result<()> {
        for g in groups {
            sqlx::query(
                "INSERT INTO groups (uai, kind, name) VALUES (?, ?, ?) ON CONFLICT (uai, kind, name) DO NOTHING",
            )
            .bind(g.uai.as_str())
            .bind(g.kind.id())
            .bind(&g.name)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn write_new_users(&mut self, users: &[NewUser<'_>], now: DateTime<Utc>) -> Result<Vec<i64>> {
        let columns = format!(
            "INSERT INTO users (sync_key, profile, source, protected, {}, login, password_hash, must_change_password, created_at, updated_at) ",
            attribute_column_list()
        );
        let mut ids = Vec::with_capacity(users.len());
        for chunk in users.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(&columns);
            insert.push_values(chunk, |mut row, u| {
                row.push_bind(u.key.as_str())
                    .push_bind(u.profile.id())
                    .push_bind(u.source.id())
                    .push_bind(u.protected);
                for value in attribute_values(u.attrs) {
                    row.push_bind(value);
                }
                row.push_bind(u.login.as_str())
                    .push_bind(u.password_hash.as_str())
                    .push_bind(u.must_change_password)
                    .push_bind(now)
                    .push_bind(now);
            });
            insert.push(" RETURNING id, sync_key");
            let rows = insert
                .build()
                .fetch_all(&mut *self.tx)
                .await
                .map_err(StoreError::from_sqlx)?;
            // RETURNING's order is not documented: map ids back by key.
            let mut by_key: HashMap<String, i64> = HashMap::with_capacity(rows.len());
            for r in &rows {
                by_key.insert(r.try_get("sync_key")?, r.try_get("id")?);
            }
            for u in chunk {
                let key = u.key.as_str();
                ids.push(
                    *by_key
                        .get(key)
                        .ok_or_else(|| StoreError::Corrupt(format!("identifiant non renvoyé pour {key}")))?,
                );
            }
        }
        Ok(ids)
    }

    async fn write_user_updates(&mut self, updates: &[UserUpdate<'_>], now: DateTime<Utc>) -> Result<()> {
        let set: Vec<String> = ATTRIBUTE_COLUMNS
            .iter()
            .map(|(name, _)| format!("{name} = ?"))
            .collect();
        let statement = format!(
            "UPDATE users SET {}, updated_at = ?, \
             deactivated_at = CASE WHEN ? THEN NULL ELSE deactivated_at END, \
             deactivated_by_import = CASE WHEN ? THEN NULL ELSE deactivated_by_import END WHERE id = ?",
            set.join(", ")
        );
        for u in updates {
            let mut update = sqlx::query(&statement);
            for value in attribute_values(u.attrs) {
                update = update.bind(value);
            }
            update
                .bind(now)
                .bind(u.reactivate)
                .bind(u.reactivate)
                .bind(u.id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    async fn write_memberships(&mut self, rows: &[(i64, Membership)]) -> Result<()> {
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut upsert = QueryBuilder::<Sqlite>::new("INSERT INTO memberships (user_id, uai, role, active) ");
            upsert.push_values(chunk, |mut row, (id, m)| {
                row.push_bind(*id)
                    .push_bind(m.uai.as_str())
                    .push_bind(m.role.as_str())
                    .push_bind(true);
            });
            upsert.push(
                " ON CONFLICT (user_id, uai) DO UPDATE SET role = excluded.role, active = TRUE, deactivated_at = NULL, deactivated_by_import = NULL",
            );
            upsert.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn write_group_members(&mut self, rows: &[(i64, i64)]) -> Result<()> {
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO group_members (group_id, user_id) ");
            insert.push_values(chunk, |mut row, (group_id, user_id)| {
                row.push_bind(*group_id).push_bind(*user_id);
            });
            insert.push(" ON CONFLICT DO NOTHING");
            insert.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn write_membership_deactivations(
        &mut self,
        rows: &[(i64, Uai)],
        import_id: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        for (user_id, uai) in rows {
            sqlx::query("UPDATE memberships SET active = FALSE, deactivated_at = ?, deactivated_by_import = ? WHERE user_id = ? AND uai = ?")
                .bind(now)
                .bind(import_id)
                .bind(user_id)
                .bind(uai.as_str())
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    async fn write_profiles(&mut self, rows: &[(i64, Profile)], now: DateTime<Utc>) -> Result<()> {
        for (id, profile) in rows {
            sqlx::query("UPDATE users SET profile = ?, updated_at = ? WHERE id = ?")
                .bind(profile.id())
                .bind(now)
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }
}
