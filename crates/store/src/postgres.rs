//! PostgreSQL backend: lists are bound as arrays (`= ANY($1)`, `UNNEST`).
//! New accounts are written with COPY (their ids reserved first); the other
//! writes go in bulk statements of up to [`CHUNK`] rows, which keep
//! `ON CONFLICT`.

use crate::users::{attribute_column_list, attribute_values, ATTRIBUTE_COLUMNS};
use crate::{uai_strings, NewUser, Result, StoreError, UserQuery, UserUpdate};
use chrono::{DateTime, Utc};
use domain::person::{GroupRef, Membership};
use domain::{Profile, Uai};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, QueryBuilder, Transaction};
use std::str::FromStr;

/// Rows per bulk statement.
const CHUNK: usize = 5_000;

/// Advisory-lock namespace of imports: held shared by imports that lock their
/// keys and logins one by one, exclusive by the big ones that lock everything.
const IMPORT_LOCK: i64 = 0x616e_6e75_6169_7265;
/// Above this many identities an import takes [`IMPORT_LOCK`] exclusively
/// rather than one lock each (PostgreSQL's lock table is finite).
const MAX_FINE_LOCKS: usize = 2_000;

/// Appends one line of COPY's text format: fields separated by tabs, `\N`
/// for NULL, and the format's four special characters escaped.
fn push_copy_line(line: &mut String, fields: &[Option<&str>]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push('\t');
        }
        match field {
            None => line.push_str("\\N"),
            Some(value) => {
                for c in value.chars() {
                    match c {
                        '\\' => line.push_str("\\\\"),
                        '\t' => line.push_str("\\t"),
                        '\n' => line.push_str("\\n"),
                        '\r' => line.push_str("\\r"),
                        c => line.push(c),
                    }
                }
            }
        }
    }
    line.push('\n');
}

pub struct PgDirectory {
    pool: PgPool,
}

/// The schema this program expects, embedded at build time.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL numbers its placeholders: every `?` becomes `$1, $2…`.
pub(crate) fn sql(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut n = 0;
    for c in text.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// `column` is one of the values of an array bound with [`list`].
pub(crate) fn in_list(column: &str) -> String {
    format!("{column} = ANY(?)")
}

/// A list bound as one array.
pub(crate) fn list<T>(items: &[T]) -> &[T] {
    items
}

/// [`in_list`] in a `QueryBuilder`.
pub(crate) fn push_in_list(b: &mut QueryBuilder<'static, Postgres>, column: &str, items: Vec<String>) {
    b.push(format!("{column} = ANY(")).push_bind(items).push(")");
}

/// Per base: its highest-numbered login (index `users_login_base`, read
/// backwards from the longest number) and the base itself (`users_login_ci`).
pub(crate) const LOGINS_HIGHEST: &str = "SELECT \
     (SELECT u.login FROM users u WHERE rtrim(u.login, '0123456789') = (b.v COLLATE \"C\") ORDER BY length(u.login) DESC, u.login DESC LIMIT 1) AS highest, \
     (SELECT u.login FROM users u WHERE lower(u.login) = (b.v COLLATE \"C\")) AS exact \
     FROM UNNEST($1::text[]) AS b(v)";

/// How long to wait for a connection before saying the database is unreachable.
const CONNECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(6);

impl PgDirectory {
    pub async fn open(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|_| StoreError::BadUrl(url.to_string()))?;
        // A server that does not answer is said within seconds (sqlx would
        // retry for 30 s by default): the CLI gives up in under 10 s, and a
        // page answers 503 instead of hanging.
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECTION_WAIT)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PgDirectory { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The server holds the data: reachability is checked by the query itself.
    pub(crate) fn file_present(&self) -> Result<()> {
        Ok(())
    }

    /// `EXPLAIN` of the snapshot's read of the highest login of each base
    /// ([`DirectoryTx::logins_highest`]).
    pub async fn explain_logins_highest(&self, bases: &[String]) -> Result<String> {
        let lines: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {LOGINS_HIGHEST}"))
            .bind(bases)
            .fetch_all(&self.pool)
            .await?;
        Ok(lines.join("\n"))
    }

    /// `EXPLAIN` of the statement [`Directory::search_users`] runs for this query.
    pub async fn explain_search(&self, q: &UserQuery) -> Result<String> {
        let lines: Vec<String> = Self::search_query("EXPLAIN ", q)
            .build_query_scalar()
            .fetch_all(&self.pool)
            .await?;
        Ok(lines.join("\n"))
    }
}

pub struct PgTx {
    pub(crate) tx: Transaction<'static, Postgres>,
}

impl PgDirectory {
    fn new_tx(&self, tx: Transaction<'static, Postgres>) -> PgTx {
        PgTx { tx }
    }

    /// PostgreSQL's row locks order the writers: no queue of our own.
    async fn begin_writing_tx(&self) -> Result<PgTx> {
        Ok(self.new_tx(self.pool().begin().await?))
    }
}

crate::statements::impl_directory!(postgres, sqlx::Postgres, PgDirectory, PgTx, sqlx::postgres::PgRow);

impl PgDirectory {
    async fn checkpoint_log(&self) -> Result<()> {
        Ok(())
    }
}

/// What PostgreSQL does its own way: row and advisory locks, COPY and
/// `UNNEST` bulk writes of up to [`CHUNK`] rows, collation-exact login ranges.
impl PgTx {
    async fn lock_establishments_for_writing(&mut self, uais: &[Uai]) -> Result<()> {
        sqlx::query("SELECT uai FROM establishments WHERE uai = ANY($1) ORDER BY uai FOR UPDATE")
            .bind(uai_strings(uais))
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn analyze_directory_tables(&mut self) -> Result<()> {
        // ANALYZE inside the transaction counts the rows it inserted.
        sqlx::query("ANALYZE users, memberships, groups, group_members, relationships")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn lock_all_keys_and_logins(&mut self) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(IMPORT_LOCK)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn lock_keys_and_logins(&mut self, keys: &[String], logins: &[String]) -> Result<()> {
        if keys.len() + logins.len() > MAX_FINE_LOCKS {
            return self.lock_all_keys_and_logins().await;
        }
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(IMPORT_LOCK)
            .execute(&mut *self.tx)
            .await?;
        let names: Vec<String> = keys
            .iter()
            .map(|k| format!("key:{k}"))
            .chain(logins.iter().map(|l| format!("login:{l}")))
            .collect();
        // One order for everybody, so that two imports never deadlock.
        sqlx::query(
            "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(n, 0) AS h FROM UNNEST($1::text[]) AS n ORDER BY h) AS s",
        )
        .bind(names)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn lock_users_for_writing(&mut self, keys: &[String]) -> Result<()> {
        sqlx::query("SELECT id FROM users WHERE sync_key = ANY($1) ORDER BY id FOR UPDATE")
            .bind(keys)
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn logins_in_base_ranges(&mut self, bases: &[String]) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT lower(u.login) FROM UNNEST($1::text[]) AS b(v) JOIN users u ON lower(u.login) >= (b.v COLLATE \"C\") AND lower(u.login) < (b.v || ':') COLLATE \"C\"",
        )
        .bind(bases)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn write_groups(&mut self, groups: &[GroupRef]) -> Result<()> {
        for chunk in groups.chunks(CHUNK) {
            sqlx::query(
                "INSERT INTO groups (uai, kind, name) SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) ON CONFLICT (uai, kind, name) DO NOTHING",
            )
            .bind(chunk.iter().map(|g| g.uai.as_str().to_string()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|g| g.kind.id().to_string()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|g| g.name.clone()).collect::<Vec<_>>())
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn write_new_users(&mut self, users: &[NewUser<'_>], now: DateTime<Utc>) -> Result<Vec<i64>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        // The ids first, so that COPY (PostgreSQL's bulk path, which has no
        // RETURNING) writes them with the rows.
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('users', 'id')) FROM generate_series(1, $1)")
                .bind(users.len() as i64)
                .fetch_all(&mut *self.tx)
                .await?;
        if ids.len() != users.len() {
            return Err(StoreError::Corrupt(format!(
                "{} identifiants réservés pour {} comptes",
                ids.len(),
                users.len()
            )));
        }
        let now = now.to_rfc3339();
        let columns = format!(
            "COPY users (id, sync_key, profile, source, protected, {}, login, password_hash, must_change_password, created_at, updated_at) FROM STDIN",
            attribute_column_list()
        );
        let mut copy = self.tx.copy_in_raw(&columns).await?;
        let bool_text = |b: bool| if b { "t" } else { "f" };
        let mut lines = String::new();
        for (chunk, chunk_ids) in users.chunks(CHUNK).zip(ids.chunks(CHUNK)) {
            lines.clear();
            for (u, id) in chunk.iter().zip(chunk_ids) {
                let id = id.to_string();
                let attributes = attribute_values(u.attrs);
                let mut fields = vec![
                    Some(id.as_str()),
                    Some(u.key.as_str()),
                    Some(u.profile.id()),
                    Some(u.source.id()),
                    Some(bool_text(u.protected)),
                ];
                fields.extend(attributes.iter().map(Option::as_deref));
                fields.extend([
                    Some(u.login.as_str()),
                    Some(u.password_hash.as_str()),
                    Some(bool_text(u.must_change_password)),
                    Some(now.as_str()),
                    Some(now.as_str()),
                ]);
                push_copy_line(&mut lines, &fields);
            }
            copy.send(lines.as_bytes()).await.map_err(StoreError::from_sqlx)?;
        }
        copy.finish().await.map_err(StoreError::from_sqlx)?;
        Ok(ids)
    }

    async fn write_user_updates(&mut self, updates: &[UserUpdate<'_>], now: DateTime<Utc>) -> Result<()> {
        // One UPDATE per chunk from arrays: every attribute column bound as
        // text[] and cast to its type.
        let set: Vec<String> = ATTRIBUTE_COLUMNS
            .iter()
            .map(|(name, kind)| format!("{name} = t.{name}::{kind}"))
            .collect();
        let names = attribute_column_list();
        let arrays = vec!["?::text[]"; ATTRIBUTE_COLUMNS.len()].join(", ");
        let statement = sql(&format!(
            "UPDATE users u SET {}, updated_at = ?, \
             deactivated_at = CASE WHEN t.reactivate THEN NULL ELSE u.deactivated_at END, \
             deactivated_by_import = CASE WHEN t.reactivate THEN NULL ELSE u.deactivated_by_import END \
             FROM UNNEST(?::bigint[], {arrays}, ?::bool[]) AS t(id, {names}, reactivate) WHERE u.id = t.id",
            set.join(", ")
        ));
        for chunk in updates.chunks(CHUNK) {
            let mut columns: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(chunk.len()); ATTRIBUTE_COLUMNS.len()];
            for u in chunk {
                for (column, value) in columns.iter_mut().zip(attribute_values(u.attrs)) {
                    column.push(value);
                }
            }
            let mut update = sqlx::query(&statement)
                .bind(now)
                .bind(chunk.iter().map(|u| u.id).collect::<Vec<_>>());
            for column in columns {
                update = update.bind(column);
            }
            update
                .bind(chunk.iter().map(|u| u.reactivate).collect::<Vec<_>>())
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    async fn write_memberships(&mut self, rows: &[(i64, Membership)]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            sqlx::query(
                "INSERT INTO memberships (user_id, uai, role, active) SELECT t.*, TRUE FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS t \
                 ON CONFLICT (user_id, uai) DO UPDATE SET role = excluded.role, active = TRUE, deactivated_at = NULL, deactivated_by_import = NULL",
            )
            .bind(chunk.iter().map(|(id, _)| *id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, m)| m.uai.as_str().to_string()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, m)| m.role.clone()).collect::<Vec<_>>())
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn write_group_members(&mut self, rows: &[(i64, i64)]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            sqlx::query("INSERT INTO group_members (group_id, user_id) SELECT * FROM UNNEST($1::bigint[], $2::bigint[]) ON CONFLICT DO NOTHING")
                .bind(chunk.iter().map(|(g, _)| *g).collect::<Vec<_>>())
                .bind(chunk.iter().map(|(_, u)| *u).collect::<Vec<_>>())
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    async fn write_membership_deactivations(
        &mut self,
        rows: &[(i64, Uai)],
        import_id: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            sqlx::query(
                "UPDATE memberships m SET active = FALSE, deactivated_at = $3, deactivated_by_import = $4 \
                 FROM UNNEST($1::bigint[], $2::text[]) AS t(user_id, uai) WHERE m.user_id = t.user_id AND m.uai = t.uai",
            )
            .bind(chunk.iter().map(|(id, _)| *id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, u)| u.as_str().to_string()).collect::<Vec<_>>())
            .bind(now)
            .bind(import_id)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn write_profiles(&mut self, rows: &[(i64, Profile)], now: DateTime<Utc>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE users u SET profile = t.profile, updated_at = $3 FROM UNNEST($1::bigint[], $2::text[]) AS t(id, profile) WHERE u.id = t.id",
        )
        .bind(rows.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, p)| p.id().to_string()).collect::<Vec<_>>())
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::push_copy_line;

    #[test]
    fn copy_line_escapes_the_text_format() {
        let mut line = String::new();
        push_copy_line(&mut line, &[Some("a\tb"), None, Some("c:\\d\r\ne"), Some("")]);
        assert_eq!(line, "a\\tb\t\\N\tc:\\\\d\\r\\ne\t\n");
    }
}
