//! [`AdminTx`] on SQLite: lists bound as JSON arrays, as in `sqlite.rs`.

use crate::admin::{AdminDirectory, AdminTx, AuditEntry, CandidateRow, NewAudit};
use crate::sqlite::{SqliteDirectory, SqliteTx};
use crate::{Directory, Result, StoreError};
use chrono::{DateTime, Utc};
use domain::keys::SyncKey;
use domain::person::Source;
use domain::{Establishment, Profile, Uai};
use sqlx::Row;

use crate::sqlite::json;
use crate::uai_strings;

const CANDIDATE_COLUMNS: &str =
    "u.id, u.sync_key, u.login, u.profile, u.source, u.last_name, u.first_name, u.birth_date, u.email, m.uai";

impl AdminTx for SqliteTx {
    async fn lock_users(&mut self, _keys: &[String]) -> Result<()> {
        // SQLite has one writer: taking its lock now covers every row.
        sqlx::query("UPDATE users SET id = id WHERE id = -1")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn establishments_named(&mut self, uais: &[Uai]) -> Result<Vec<Establishment>> {
        let rows = sqlx::query("SELECT uai, name FROM establishments WHERE uai IN (SELECT value FROM json_each(?))")
            .bind(json(&uai_strings(uais)))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(crate::establishment_row).collect()
    }

    async fn upsert_establishments(&mut self, list: &[Establishment], now: DateTime<Utc>) -> Result<()> {
        for e in list {
            sqlx::query(
                "INSERT INTO establishments (uai, name, created_at) VALUES (?, ?, ?) ON CONFLICT (uai) DO UPDATE SET name = excluded.name",
            )
            .bind(e.uai.as_str())
            .bind(&e.name)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn aaf_scope(&mut self, uais: &[Uai]) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT u.sync_key FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.uai IN (SELECT value FROM json_each(?)) AND m.active AND u.source = 'aaf' \
             AND u.profile IN ('enseignant', 'administratif') AND u.deactivated_at IS NULL",
        )
        .bind(json(&uai_strings(uais)))
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn set_profiles(&mut self, rows: &[(i64, Profile)], now: DateTime<Utc>) -> Result<()> {
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

    async fn reassign_identity(
        &mut self,
        id: i64,
        key: &SyncKey,
        source: Source,
        protected: bool,
        profile: Profile,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE users SET sync_key = ?, source = ?, protected = ?, profile = ?, updated_at = ? WHERE id = ?",
        )
        .bind(key.as_str())
        .bind(source.id())
        .bind(protected)
        .bind(profile.id())
        .bind(now)
        .bind(id)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn delete_user(&mut self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn duplicate_candidates(&mut self, uais: Option<&[Uai]>) -> Result<Vec<CandidateRow>> {
        let filter = match uais {
            Some(_) => "m.uai IN (SELECT value FROM json_each(?))",
            None => "m.uai IN (SELECT DISTINCT m2.uai FROM users u2 JOIN memberships m2 ON m2.user_id = u2.id WHERE u2.source = 'aaf' AND m2.active AND ? IS NOT NULL)",
        };
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS} FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE {filter} AND m.active AND u.deactivated_at IS NULL"
        );
        Ok(sqlx::query_as(&sql)
            .bind(json(&uai_strings(uais.unwrap_or(&[]))))
            .fetch_all(&mut *self.tx)
            .await?)
    }

    async fn user_establishments(&mut self, ids: &[i64]) -> Result<Vec<Uai>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT uai FROM memberships WHERE active AND user_id IN (SELECT value FROM json_each(?)) ORDER BY uai",
        )
        .bind(json(ids))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter()
            .map(|u| Uai::parse(&u).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect()
    }

    async fn dismissals(&mut self) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query("SELECT user_a, user_b FROM duplicate_dismissals")
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("user_a")?, r.try_get("user_b")?)))
            .collect()
    }

    async fn dismiss(&mut self, pair: (i64, i64), actor: &str, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO duplicate_dismissals (user_a, user_b, dismissed_at, actor) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(pair.0)
        .bind(pair.1)
        .bind(now)
        .bind(actor)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_audit(&mut self, e: &NewAudit) -> Result<()> {
        crate::sqlite::SqliteDirectory::write_audit(&mut self.tx, e).await
    }

    async fn audit_entries(&mut self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, details FROM audit_log ORDER BY at DESC, id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(crate::admin::audit_row).collect()
    }
}

impl AdminDirectory for SqliteDirectory {
    type AdminTx<'c> = SqliteTx;

    async fn begin_admin(&self) -> Result<SqliteTx> {
        self.begin().await
    }
}
