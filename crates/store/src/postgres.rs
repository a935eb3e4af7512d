//! PostgreSQL backend: lists are bound as arrays (`= ANY($1)`, `UNNEST`).
//! New accounts are written with COPY (their ids reserved first); the other
//! writes go in bulk statements of up to [`CHUNK`] rows, which keep
//! `ON CONFLICT`.

use crate::{
    AttrColumns, Directory, DirectoryTx, ImportRecord, NewUser, Result, StoreError, UserQuery, UserRow, UserSummary,
    UserUpdate, USER_COLUMNS,
};
use chrono::{DateTime, NaiveDate, Utc};
use domain::person::{ExistingMembership, GroupRef, Membership};
use domain::{Establishment, Profile, Uai};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::collections::HashMap;
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

use crate::uai_strings;

/// Per base: its highest-numbered login (index `users_login_base`, read
/// backwards from the longest number) and the base itself (`users_login_ci`).
pub(crate) const LOGINS_HIGHEST: &str = "SELECT \
     (SELECT u.login FROM users u WHERE rtrim(u.login, '0123456789') = (b.v COLLATE \"C\") ORDER BY length(u.login) DESC, u.login DESC LIMIT 1) AS highest, \
     (SELECT u.login FROM users u WHERE lower(u.login) = (b.v COLLATE \"C\")) AS exact \
     FROM UNNEST($1::text[]) AS b(v)";

impl PgDirectory {
    pub async fn open(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|_| StoreError::BadUrl(url.to_string()))?;
        let pool = PgPoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgDirectory { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
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
        let lines: Vec<String> = search_query("EXPLAIN ", q)
            .build_query_scalar()
            .fetch_all(&self.pool)
            .await?;
        Ok(lines.join("\n"))
    }
}

pub struct PgTx {
    pub(crate) tx: Transaction<'static, Postgres>,
}

/// Column vectors of a batch of attributes, for `UNNEST`.
#[derive(Default)]
struct AttrArrays {
    civility: Vec<Option<String>>,
    last_name: Vec<String>,
    first_name: Vec<String>,
    last_name_fold: Vec<String>,
    first_name_fold: Vec<String>,
    birth_date: Vec<Option<NaiveDate>>,
    subject: Vec<Option<String>>,
    function_code: Vec<Option<String>>,
    class_name: Vec<Option<String>>,
    address: Vec<Option<String>>,
    postal_code: Vec<Option<String>>,
    city: Vec<Option<String>>,
    landline: Vec<Option<String>>,
    mobile: Vec<Option<String>>,
    email: Vec<Option<String>>,
}

impl AttrArrays {
    fn push(&mut self, a: AttrColumns) {
        self.civility.push(a.civility.map(str::to_string));
        self.last_name.push(a.last_name);
        self.first_name.push(a.first_name);
        self.last_name_fold.push(a.last_name_fold);
        self.first_name_fold.push(a.first_name_fold);
        self.birth_date.push(a.birth_date);
        self.subject.push(a.subject);
        self.function_code.push(a.function_code);
        self.class_name.push(a.class_name);
        self.address.push(a.address);
        self.postal_code.push(a.postal_code);
        self.city.push(a.city);
        self.landline.push(a.landline);
        self.mobile.push(a.mobile);
        self.email.push(a.email);
    }
}

impl DirectoryTx for PgTx {
    async fn lock_establishments(&mut self, uais: &[Uai]) -> Result<()> {
        sqlx::query("SELECT uai FROM establishments WHERE uai = ANY($1) ORDER BY uai FOR UPDATE")
            .bind(uai_strings(uais))
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn lock_identities(&mut self, keys: &[String], logins: &[String]) -> Result<()> {
        if keys.len() + logins.len() > MAX_FINE_LOCKS {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(IMPORT_LOCK)
                .execute(&mut *self.tx)
                .await?;
            return Ok(());
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

    async fn known_establishments(&mut self, uais: &[Uai]) -> Result<Vec<Uai>> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT uai FROM establishments WHERE uai = ANY($1)")
            .bind(uai_strings(uais))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.into_iter()
            .map(|u| Uai::parse(&u).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect()
    }

    async fn users_by_keys(&mut self, keys: &[String]) -> Result<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.sync_key = ANY($1)");
        Ok(sqlx::query_as(&sql).bind(keys).fetch_all(&mut *self.tx).await?)
    }

    async fn memberships_of(&mut self, user_ids: &[i64]) -> Result<Vec<(i64, ExistingMembership)>> {
        let rows = sqlx::query("SELECT user_id, uai, role, active FROM memberships WHERE user_id = ANY($1)")
            .bind(user_ids)
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
            "SELECT gm.user_id AS id, g.uai, g.kind, g.name FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = ANY($1)",
        )
        .bind(user_ids)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(crate::group_row).collect()
    }

    async fn login_owners(&mut self, logins: &[String]) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT lower(login) AS login, sync_key FROM users WHERE lower(login) = ANY($1)")
            .bind(logins)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("login")?, r.try_get("sync_key")?)))
            .collect()
    }

    async fn logins_near(&mut self, bases: &[String]) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT lower(u.login) FROM UNNEST($1::text[]) AS b(v) JOIN users u ON lower(u.login) >= (b.v COLLATE \"C\") AND lower(u.login) < (b.v || ':') COLLATE \"C\"",
        )
        .bind(bases)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn logins_highest(&mut self, bases: &[String]) -> Result<Vec<String>> {
        let rows = sqlx::query(LOGINS_HIGHEST).bind(bases).fetch_all(&mut *self.tx).await?;
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
        let rows = sqlx::query("SELECT id, uai, kind, name FROM groups WHERE uai = ANY($1)")
            .bind(uai_strings(uais))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(crate::group_row).collect()
    }

    async fn complet_scope(&mut self, profile: Profile, uais: &[Uai]) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT u.sync_key FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.uai = ANY($1) AND m.active AND u.profile = $2 AND u.source = 'csv' AND u.deactivated_at IS NULL",
        )
        .bind(uai_strings(uais))
        .bind(profile.id())
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn insert_import(&mut self, r: &ImportRecord) -> Result<i64> {
        PgDirectory::write_import(&mut self.tx, r).await
    }

    async fn insert_import_result(
        &mut self,
        import_id: i64,
        content: &[u8],
        slips: &str,
        expires_at: i64,
    ) -> Result<()> {
        PgDirectory::write_import_result(&mut self.tx, import_id, content, slips, expires_at).await
    }

    async fn insert_groups(&mut self, groups: &[GroupRef]) -> Result<()> {
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

    async fn insert_users(&mut self, users: &[NewUser<'_>], now: DateTime<Utc>) -> Result<Vec<i64>> {
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
        let mut copy = self
            .tx
            .copy_in_raw(
                "COPY users (id, sync_key, profile, source, protected, civility, last_name, first_name, last_name_fold, first_name_fold, birth_date, subject, function_code, class_name, address, postal_code, city, landline, mobile, email, login, password_hash, must_change_password, created_at, updated_at) FROM STDIN",
            )
            .await?;
        let mut lines = String::new();
        for (chunk, chunk_ids) in users.chunks(CHUNK).zip(ids.chunks(CHUNK)) {
            lines.clear();
            for (u, id) in chunk.iter().zip(chunk_ids) {
                let a = AttrColumns::of(u.attrs);
                let birth_date = a.birth_date.map(|d| d.to_string());
                let bool_text = |b: bool| if b { "t" } else { "f" };
                let id = id.to_string();
                let fields = [
                    Some(id.as_str()),
                    Some(u.key.as_str()),
                    Some(u.profile.id()),
                    Some(u.source.id()),
                    Some(bool_text(u.protected)),
                    a.civility,
                    Some(a.last_name.as_str()),
                    Some(a.first_name.as_str()),
                    Some(a.last_name_fold.as_str()),
                    Some(a.first_name_fold.as_str()),
                    birth_date.as_deref(),
                    a.subject.as_deref(),
                    a.function_code.as_deref(),
                    a.class_name.as_deref(),
                    a.address.as_deref(),
                    a.postal_code.as_deref(),
                    a.city.as_deref(),
                    a.landline.as_deref(),
                    a.mobile.as_deref(),
                    a.email.as_deref(),
                    Some(u.login.as_str()),
                    Some(u.password_hash.as_str()),
                    Some(bool_text(u.must_change_password)),
                    Some(now.as_str()),
                    Some(now.as_str()),
                ];
                push_copy_line(&mut lines, &fields);
            }
            copy.send(lines.as_bytes()).await.map_err(StoreError::from_sqlx)?;
        }
        copy.finish().await.map_err(StoreError::from_sqlx)?;
        Ok(ids)
    }

    async fn update_users(&mut self, updates: &[UserUpdate<'_>], now: DateTime<Utc>) -> Result<()> {
        for chunk in updates.chunks(CHUNK) {
            let mut a = AttrArrays::default();
            for u in chunk {
                a.push(AttrColumns::of(u.attrs));
            }
            sqlx::query(
                "UPDATE users u SET civility = t.civility, last_name = t.last_name, first_name = t.first_name, last_name_fold = t.last_name_fold, first_name_fold = t.first_name_fold, \
                 birth_date = t.birth_date, subject = t.subject, function_code = t.function_code, class_name = t.class_name, address = t.address, postal_code = t.postal_code, city = t.city, \
                 landline = t.landline, mobile = t.mobile, email = t.email, updated_at = $18, \
                 deactivated_at = CASE WHEN t.reactivate THEN NULL ELSE u.deactivated_at END, deactivated_by_import = CASE WHEN t.reactivate THEN NULL ELSE u.deactivated_by_import END \
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::date[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::bool[]) \
                 AS t(id, civility, last_name, first_name, last_name_fold, first_name_fold, birth_date, subject, function_code, class_name, address, postal_code, city, landline, mobile, email, reactivate) \
                 WHERE u.id = t.id",
            )
            .bind(chunk.iter().map(|u| u.id).collect::<Vec<_>>())
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
            .bind(chunk.iter().map(|u| u.reactivate).collect::<Vec<_>>())
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn upsert_memberships(&mut self, rows: &[(i64, Membership)]) -> Result<()> {
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

    async fn add_group_members(&mut self, rows: &[(i64, i64)]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            sqlx::query("INSERT INTO group_members (group_id, user_id) SELECT * FROM UNNEST($1::bigint[], $2::bigint[]) ON CONFLICT DO NOTHING")
                .bind(chunk.iter().map(|(g, _)| *g).collect::<Vec<_>>())
                .bind(chunk.iter().map(|(_, u)| *u).collect::<Vec<_>>())
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    async fn deactivate_memberships(&mut self, rows: &[(i64, Uai)], import_id: i64, now: DateTime<Utc>) -> Result<()> {
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

    async fn deactivate_users(&mut self, ids: &[i64], import_id: i64, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE users SET deactivated_at = $1, deactivated_by_import = $2 WHERE id = ANY($3)")
            .bind(now)
            .bind(import_id)
            .bind(ids)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }
}

/// The search statement of [`Directory::search_users`], shared with
/// [`PgDirectory::explain_search`] so that the plan shown is the plan run.
fn search_query(prefix: &str, q: &UserQuery) -> sqlx::QueryBuilder<'static, Postgres> {
    let mut b = sqlx::QueryBuilder::<Postgres>::new(format!(
            "{prefix}SELECT u.id, u.sync_key, u.login, u.last_name, u.first_name, u.profile, u.source, (u.deactivated_at IS NULL) AS active, u.created_at, u.last_login_at FROM users u WHERE TRUE"
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
        b.push(" AND u.profile = ANY(")
            .push_bind(q.profiles.iter().map(|p| p.id().to_string()).collect::<Vec<_>>())
            .push(")");
    }
    b.push(" ORDER BY u.last_name_fold, u.first_name_fold, u.id LIMIT ")
        .push_bind(q.limit)
        .push(" OFFSET ")
        .push_bind(q.offset);
    b
}

impl Directory for PgDirectory {
    type Tx<'c> = PgTx;

    async fn begin(&self) -> Result<PgTx> {
        Ok(PgTx {
            tx: self.pool.begin().await?,
        })
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn add_establishment(&self, e: &Establishment, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("INSERT INTO establishments (uai, name, created_at) VALUES ($1, $2, $3)")
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
             WHERE m.uai = $1 AND m.active AND u.profile = $2 AND u.deactivated_at IS NULL ORDER BY u.last_name_fold, u.first_name_fold, u.id"
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
        let memberships =
            sqlx::query("SELECT user_id, uai FROM memberships WHERE active AND user_id = ANY($1) ORDER BY uai")
                .bind(&ids)
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
            "SELECT user_id FROM memberships WHERE deactivated_by_import = $1 UNION SELECT id FROM users WHERE deactivated_by_import = $1",
        )
        .bind(import_id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("UPDATE memberships SET active = TRUE, deactivated_at = NULL, deactivated_by_import = NULL WHERE deactivated_by_import = $1")
            .bind(import_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE users SET deactivated_at = NULL, deactivated_by_import = NULL WHERE deactivated_by_import = $1",
        )
        .bind(import_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(users.len() as u64)
    }

    async fn purge_deactivated(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM memberships WHERE NOT active AND deactivated_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM users WHERE deactivated_at IS NOT NULL AND deactivated_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    async fn password_hash(&self, login: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT password_hash FROM users WHERE lower(login) = lower($1)")
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
