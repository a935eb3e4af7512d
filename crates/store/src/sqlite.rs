//! SQLite backend: the embedded default. One file, WAL, a 64 MiB page cache;
//! lists are bound as JSON arrays and read back with `json_each`, so every
//! lookup is one indexed statement whatever the number of keys.

use crate::{
    AttrColumns, Directory, DirectoryTx, ImportRecord, NewUser, Result, StoreError, UserQuery, UserRow, UserSummary,
    UserUpdate, USER_COLUMNS,
};
use chrono::{DateTime, Utc};
use domain::person::{ExistingMembership, GroupRef, Membership};
use domain::{Establishment, Profile, Uai};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// Rows per multi-row INSERT: each statement is one round trip to sqlx's
/// SQLite thread, which costs more than SQLite's own work on a row. 400 rows
/// of 24 columns stay well under SQLite's 32 766 bound parameters, and every
/// full chunk reuses one cached prepared statement.
pub(crate) const ROWS_PER_INSERT: usize = 400;

pub struct SqliteDirectory {
    pool: SqlitePool,
}

pub(crate) fn json<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_string())
}

use crate::uai_strings;

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
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|_| StoreError::BadUrl(url.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            // Checkpoints run outside imports (`Directory::checkpoint`), not in their commit.
            .pragma("wal_autocheckpoint", "0");
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::BadUrl(format!("{url} ({e})")))?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteDirectory { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// `EXPLAIN QUERY PLAN` of the statement [`Directory::search_users`] runs
    /// for this query, one line per step, indented by depth.
    pub async fn explain_search(&self, q: &UserQuery) -> Result<String> {
        let rows = search_query("EXPLAIN QUERY PLAN ", q)
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
}

impl DirectoryTx for SqliteTx {
    async fn lock_establishments(&mut self, uais: &[Uai]) -> Result<()> {
        // A write takes SQLite's single writer lock now rather than at the
        // first insert, so a concurrent import waits instead of failing later.
        sqlx::query("UPDATE establishments SET name = name WHERE uai IN (SELECT value FROM json_each(?))")
            .bind(json(&uai_strings(uais)))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn lock_identities(&mut self, _keys: &[String], _logins: &[String]) -> Result<()> {
        // SQLite has one writer at a time: the lock taken above already covers it.
        Ok(())
    }

    async fn known_establishments(&mut self, uais: &[Uai]) -> Result<Vec<Uai>> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT uai FROM establishments WHERE uai IN (SELECT value FROM json_each(?))")
                .bind(json(&uai_strings(uais)))
                .fetch_all(&mut *self.tx)
                .await?;
        rows.into_iter()
            .map(|u| Uai::parse(&u).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect()
    }

    async fn users_by_keys(&mut self, keys: &[String]) -> Result<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.sync_key IN (SELECT value FROM json_each(?))");
        Ok(sqlx::query_as(&sql).bind(json(keys)).fetch_all(&mut *self.tx).await?)
    }

    async fn memberships_of(&mut self, user_ids: &[i64]) -> Result<Vec<(i64, ExistingMembership)>> {
        let rows = sqlx::query(
            "SELECT user_id, uai, role, active FROM memberships WHERE user_id IN (SELECT value FROM json_each(?))",
        )
        .bind(json(user_ids))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                let uai: String = r.try_get("uai")?;
                Ok((
                    r.try_get("user_id")?,
                    ExistingMembership {
                        uai: Uai::parse(&uai).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        role: r.try_get("role")?,
                        active: r.try_get("active")?,
                    },
                ))
            })
            .collect()
    }

    async fn groups_of(&mut self, user_ids: &[i64]) -> Result<Vec<(i64, GroupRef)>> {
        let rows = sqlx::query(
            "SELECT gm.user_id AS id, g.uai, g.kind, g.name FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id IN (SELECT value FROM json_each(?))",
        )
        .bind(json(user_ids))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(crate::group_row).collect()
    }

    async fn login_owners(&mut self, logins: &[String]) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT lower(login) AS login, sync_key FROM users WHERE lower(login) IN (SELECT value FROM json_each(?))",
        )
        .bind(json(logins))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("login")?, r.try_get("sync_key")?)))
            .collect()
    }

    async fn logins_near(&mut self, bases: &[String]) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT lower(u.login) FROM json_each(?) b JOIN users u ON lower(u.login) >= b.value AND lower(u.login) < b.value || ':'",
        )
        .bind(json(bases))
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn logins_highest(&mut self, bases: &[String]) -> Result<Vec<String>> {
        let rows = sqlx::query(LOGINS_HIGHEST)
            .bind(json(bases))
            .fetch_all(&mut *self.tx)
            .await?;
        let mut logins = Vec::with_capacity(rows.len() * 2);
        for r in &rows {
            for column in ["highest", "exact"] {
                if let Some(login) = r.try_get::<Option<String>, _>(column)? {
                    logins.push(login);
                }
            }
        }
        Ok(logins)
    }

    async fn groups_in(&mut self, uais: &[Uai]) -> Result<Vec<(i64, GroupRef)>> {
        let rows = sqlx::query("SELECT id, uai, kind, name FROM groups WHERE uai IN (SELECT value FROM json_each(?))")
            .bind(json(&uai_strings(uais)))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(crate::group_row).collect()
    }

    async fn complet_scope(&mut self, profile: Profile, uais: &[Uai]) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT u.sync_key FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.uai IN (SELECT value FROM json_each(?)) AND m.active AND u.profile = ? AND u.source = 'csv' AND u.deactivated_at IS NULL",
        )
        .bind(json(&uai_strings(uais)))
        .bind(profile.id())
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn insert_import(&mut self, r: &ImportRecord) -> Result<i64> {
        SqliteDirectory::write_import(&mut self.tx, r).await
    }

    async fn insert_import_result(
        &mut self,
        import_id: i64,
        content: &[u8],
        slips: &str,
        expires_at: i64,
    ) -> Result<()> {
        SqliteDirectory::write_import_result(&mut self.tx, import_id, content, slips, expires_at).await
    }

    async fn insert_groups(&mut self, groups: &[GroupRef]) -> Result<()> {
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

    async fn insert_users(&mut self, users: &[NewUser<'_>], now: DateTime<Utc>) -> Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(users.len());
        for chunk in users.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO users (sync_key, profile, source, protected, civility, last_name, first_name, last_name_fold, first_name_fold, birth_date, subject, function_code, class_name, address, postal_code, city, landline, mobile, email, login, password_hash, must_change_password, created_at, updated_at) ",
            );
            insert.push_values(chunk, |mut row, u| {
                let a = AttrColumns::of(u.attrs);
                row.push_bind(u.key.as_str())
                    .push_bind(u.profile.id())
                    .push_bind(u.source.id())
                    .push_bind(u.protected)
                    .push_bind(a.civility)
                    .push_bind(a.last_name)
                    .push_bind(a.first_name)
                    .push_bind(a.last_name_fold)
                    .push_bind(a.first_name_fold)
                    .push_bind(a.birth_date)
                    .push_bind(a.subject)
                    .push_bind(a.function_code)
                    .push_bind(a.class_name)
                    .push_bind(a.address)
                    .push_bind(a.postal_code)
                    .push_bind(a.city)
                    .push_bind(a.landline)
                    .push_bind(a.mobile)
                    .push_bind(a.email)
                    .push_bind(u.login.as_str())
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

    async fn update_users(&mut self, updates: &[UserUpdate<'_>], now: DateTime<Utc>) -> Result<()> {
        for u in updates {
            let a = AttrColumns::of(u.attrs);
            sqlx::query(
                "UPDATE users SET civility = ?, last_name = ?, first_name = ?, last_name_fold = ?, first_name_fold = ?, birth_date = ?, subject = ?, function_code = ?, class_name = ?, address = ?, postal_code = ?, city = ?, landline = ?, mobile = ?, email = ?, updated_at = ?, \
                 deactivated_at = CASE WHEN ? THEN NULL ELSE deactivated_at END, deactivated_by_import = CASE WHEN ? THEN NULL ELSE deactivated_by_import END WHERE id = ?",
            )
            .bind(a.civility)
            .bind(a.last_name)
            .bind(a.first_name)
            .bind(a.last_name_fold)
            .bind(a.first_name_fold)
            .bind(a.birth_date)
            .bind(a.subject)
            .bind(a.function_code)
            .bind(a.class_name)
            .bind(a.address)
            .bind(a.postal_code)
            .bind(a.city)
            .bind(a.landline)
            .bind(a.mobile)
            .bind(a.email)
            .bind(now)
            .bind(u.reactivate)
            .bind(u.reactivate)
            .bind(u.id)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn upsert_memberships(&mut self, rows: &[(i64, Membership)]) -> Result<()> {
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut upsert = QueryBuilder::<Sqlite>::new("INSERT INTO memberships (user_id, uai, role, active) ");
            upsert.push_values(chunk, |mut row, (id, m)| {
                row.push_bind(*id)
                    .push_bind(m.uai.as_str())
                    .push_bind(m.role.as_str())
                    .push_bind(true);
            });
            upsert.push(
                " ON CONFLICT (user_id, uai) DO UPDATE SET role = excluded.role, active = 1, deactivated_at = NULL, deactivated_by_import = NULL",
            );
            upsert.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn add_group_members(&mut self, rows: &[(i64, i64)]) -> Result<()> {
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

    async fn deactivate_memberships(&mut self, rows: &[(i64, Uai)], import_id: i64, now: DateTime<Utc>) -> Result<()> {
        for (user_id, uai) in rows {
            sqlx::query("UPDATE memberships SET active = 0, deactivated_at = ?, deactivated_by_import = ? WHERE user_id = ? AND uai = ?")
                .bind(now)
                .bind(import_id)
                .bind(user_id)
                .bind(uai.as_str())
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    async fn deactivate_users(&mut self, ids: &[i64], import_id: i64, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE users SET deactivated_at = ?, deactivated_by_import = ? WHERE id IN (SELECT value FROM json_each(?))")
            .bind(now)
            .bind(import_id)
            .bind(json(ids))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }
}

/// The search statement of [`Directory::search_users`], shared with
/// [`SqliteDirectory::explain_search`] so that the plan shown is the plan run.
fn search_query(prefix: &str, q: &UserQuery) -> sqlx::QueryBuilder<'static, Sqlite> {
    let mut b = sqlx::QueryBuilder::<Sqlite>::new(format!(
            "{prefix}SELECT u.id, u.sync_key, u.login, u.last_name, u.first_name, u.profile, u.source, (u.deactivated_at IS NULL) AS active, u.created_at, u.last_login_at FROM users u WHERE 1 = 1"
        ));
    for (column, value) in [
        ("u.last_name_fold", &q.last_name),
        ("u.first_name_fold", &q.first_name),
        ("lower(u.login)", &q.login),
    ] {
        if let Some(v) = value {
            let folded = crate::fold_for_search(v.trim());
            b.push(format!(" AND {column} >= ")).push_bind(folded.clone());
            b.push(format!(" AND {column} < "))
                .push_bind(crate::prefix_end(&folded));
        }
    }
    if let Some(uai) = &q.establishment {
        b.push(" AND EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id AND m.uai = ")
            .push_bind(uai.as_str().to_string())
            .push(")");
    }
    if !q.profiles.is_empty() {
        b.push(" AND u.profile IN (SELECT value FROM json_each(")
            .push_bind(json(&q.profiles.iter().map(|p| p.id()).collect::<Vec<_>>()))
            .push("))");
    }
    b.push(" ORDER BY u.last_name_fold, u.first_name_fold, u.id LIMIT ")
        .push_bind(q.limit)
        .push(" OFFSET ")
        .push_bind(q.offset);
    b
}

impl Directory for SqliteDirectory {
    type Tx<'c> = SqliteTx;

    async fn begin(&self) -> Result<SqliteTx> {
        Ok(SqliteTx {
            tx: self.pool.begin().await?,
        })
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn add_establishment(&self, e: &Establishment, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("INSERT INTO establishments (uai, name, created_at) VALUES (?, ?, ?)")
            .bind(e.uai.as_str())
            .bind(&e.name)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn list_establishments(&self) -> Result<Vec<Establishment>> {
        let rows = sqlx::query("SELECT uai, name FROM establishments ORDER BY uai")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(crate::establishment_row).collect()
    }

    async fn export_users(&self, uai: &Uai, profile: Profile) -> Result<Vec<UserRow>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN memberships m ON m.user_id = u.id \
             WHERE m.uai = ? AND m.active AND u.profile = ? AND u.deactivated_at IS NULL ORDER BY u.last_name_fold, u.first_name_fold, u.id"
        );
        Ok(sqlx::query_as(&sql)
            .bind(uai.as_str())
            .bind(profile.id())
            .fetch_all(&self.pool)
            .await?)
    }

    async fn search_users(&self, q: &UserQuery) -> Result<Vec<UserSummary>> {
        let mut b = search_query("", q);
        let rows = b.build().fetch_all(&self.pool).await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
        let memberships = sqlx::query("SELECT user_id, uai FROM memberships WHERE active AND user_id IN (SELECT value FROM json_each(?)) ORDER BY uai")
            .bind(json(&ids))
            .fetch_all(&self.pool)
            .await?;
        let mut by_user: HashMap<i64, Vec<String>> = HashMap::new();
        for m in &memberships {
            by_user
                .entry(m.try_get("user_id")?)
                .or_default()
                .push(m.try_get("uai")?);
        }
        rows.iter().map(|r| crate::summary_row(r, &mut by_user)).collect()
    }

    async fn restore_import(&self, import_id: i64, _now: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let users: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM memberships WHERE deactivated_by_import = ? UNION SELECT id FROM users WHERE deactivated_by_import = ?",
        )
        .bind(import_id)
        .bind(import_id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("UPDATE memberships SET active = 1, deactivated_at = NULL, deactivated_by_import = NULL WHERE deactivated_by_import = ?")
            .bind(import_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE users SET deactivated_at = NULL, deactivated_by_import = NULL WHERE deactivated_by_import = ?",
        )
        .bind(import_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(users.len() as u64)
    }

    async fn purge_deactivated(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM memberships WHERE NOT active AND deactivated_at < ?")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM users WHERE deactivated_at IS NOT NULL AND deactivated_at < ?")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    async fn password_hash(&self, login: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT password_hash FROM users WHERE lower(login) = lower(?)")
                .bind(login)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn checkpoint(&self) -> Result<()> {
        // PASSIVE: copies what no reader still needs and never blocks; the
        // next writer then restarts the log from its beginning.
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
