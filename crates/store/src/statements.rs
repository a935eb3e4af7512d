//! The statements of imports, searches and administration, written once for
//! both backends.
//!
//! [`impl_directory!`] expands them for SQLite and for PostgreSQL from the
//! dialect module of each (`crate::sqlite`, `crate::postgres`), which gives:
//! - `sql(text)`: the statement with `?` placeholders, as the backend wants it
//!   (PostgreSQL renumbers them `$1, $2…`);
//! - `in_list(column)` and `list(items)`: "column is one of a bound list"
//!   (SQLite: a JSON array read with `json_each`; PostgreSQL: an array, `= ANY`);
//! - `push_in_list(builder, column, items)`: the same for a `QueryBuilder`.
//!
//! What really differs stays in the backend's file, as inherent methods of its
//! transaction that the expansion calls: locks (SQLite's single writer lock,
//! PostgreSQL's row and advisory locks), bulk writes (multi-row INSERT, COPY,
//! `UNNEST`) and the collation of login ranges.

macro_rules! impl_directory {
    ($dialect:ident, $db:ty, $store:ident, $tx:ident, $row:ty) => {
        /// The statements of [`crate::statements`], expanded for this backend.
        mod statements {
        use super::{$store, $tx};
        use crate::$dialect::{in_list, list, push_in_list, sql};
        use crate::admin::{AdminDirectory, AdminTx, AuditEntry, CandidateRow, NewAudit};
        use crate::{
            uai_strings, Directory, DirectoryTx, ImportRecord, NewUser, Result, StoreError, StoredLink, UserQuery,
            UserRow, UserSummary, UserUpdate, USER_COLUMNS,
        };
        use chrono::{DateTime, Utc};
        use domain::keys::SyncKey;
        use domain::person::{ExistingMembership, GroupRef, Membership, Source};
        use domain::{Establishment, Profile, Structure, Uai};
        use sqlx::Row;
        use std::collections::HashMap;

        impl $tx {
            fn membership_from_row(r: &$row) -> Result<(i64, ExistingMembership)> {
                let uai: String = r.try_get("uai")?;
                Ok((
                    r.try_get("user_id")?,
                    ExistingMembership {
                        uai: crate::stored_uai(&uai)?,
                        role: r.try_get("role")?,
                        active: r.try_get("active")?,
                    },
                ))
            }
        }

        impl DirectoryTx for $tx {
            async fn lock_establishments(&mut self, uais: &[Uai]) -> Result<()> {
                self.lock_establishments_for_writing(uais).await
            }

            async fn lock_identities(&mut self, keys: &[String], logins: &[String]) -> Result<()> {
                self.lock_keys_and_logins(keys, logins).await
            }

            async fn lock_every_identity(&mut self) -> Result<()> {
                self.lock_all_keys_and_logins().await
            }

            async fn refresh_statistics(&mut self) -> Result<()> {
                self.analyze_directory_tables().await
            }

            async fn known_establishments(&mut self, uais: &[Uai]) -> Result<Vec<Uai>> {
                let rows: Vec<String> = sqlx::query_scalar(&sql(&format!(
                    "SELECT uai FROM establishments WHERE {}",
                    in_list("uai")
                )))
                .bind(list(&uai_strings(uais)))
                .fetch_all(&mut *self.tx)
                .await?;
                rows.iter().map(|u| crate::stored_uai(u)).collect()
            }

            async fn establishment_names(&mut self, uais: &[Uai]) -> Result<Vec<(Uai, String)>> {
                let rows: Vec<(String, String)> = sqlx::query_as(&sql(&format!(
                    "SELECT uai, name FROM establishments WHERE {}",
                    in_list("uai")
                )))
                .bind(list(&uai_strings(uais)))
                .fetch_all(&mut *self.tx)
                .await?;
                rows.into_iter().map(|(u, name)| Ok((crate::stored_uai(&u)?, name))).collect()
            }

            async fn record_attachment(&mut self, a: &crate::history::NewAttachment) -> Result<()> {
                let mut pairs: Vec<(&Uai, &Uai)> = Vec::new();
                for joined in &a.attached_to {
                    pairs.extend(a.others.iter().map(|o| (joined, &o.uai)));
                }
                for (joined, other) in pairs {
                    sqlx::query(&sql(
                        "INSERT INTO attachments (import_id, at, actor, user_id, last_name, first_name, attached_uai, other_uai) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    ))
                    .bind(a.import_id)
                    .bind(a.at)
                    .bind(&a.actor)
                    .bind(a.user_id)
                    .bind(&a.last_name)
                    .bind(&a.first_name)
                    .bind(joined.as_str())
                    .bind(other.as_str())
                    .execute(&mut *self.tx)
                    .await?;
                }
                $store::write_audit(&mut self.tx, &a.audit()).await
            }

            async fn former_keys(&mut self, keys: &[String]) -> Result<Vec<(String, String)>> {
                Ok(sqlx::query_as(&sql(&format!(
                    "SELECT f.sync_key, u.sync_key FROM former_keys f JOIN users u ON u.id = f.user_id WHERE {}",
                    in_list("f.sync_key")
                )))
                .bind(list(keys))
                .fetch_all(&mut *self.tx)
                .await?)
            }

            async fn users_by_keys(&mut self, keys: &[String]) -> Result<Vec<UserRow>> {
                let text = format!("SELECT {USER_COLUMNS} FROM users u WHERE {}", in_list("u.sync_key"));
                Ok(sqlx::query_as(&sql(&text))
                    .bind(list(keys))
                    .fetch_all(&mut *self.tx)
                    .await?)
            }

            async fn memberships_of(&mut self, user_ids: &[i64]) -> Result<Vec<(i64, ExistingMembership)>> {
                let rows = sqlx::query(&sql(&format!(
                    "SELECT user_id, uai, role, active FROM memberships WHERE {}",
                    in_list("user_id")
                )))
                .bind(list(user_ids))
                .fetch_all(&mut *self.tx)
                .await?;
                rows.iter().map(Self::membership_from_row).collect()
            }

            async fn groups_of(&mut self, user_ids: &[i64]) -> Result<Vec<(i64, GroupRef)>> {
                let rows = sqlx::query(&sql(&format!(
                    "SELECT gm.user_id AS id, g.uai, g.kind, g.name FROM group_members gm \
                     JOIN groups g ON g.id = gm.group_id WHERE {}",
                    in_list("gm.user_id")
                )))
                .bind(list(user_ids))
                .fetch_all(&mut *self.tx)
                .await?;
                rows.iter().map(crate::group_row).collect()
            }

            async fn login_owners(&mut self, logins: &[String]) -> Result<Vec<(String, String)>> {
                let rows = sqlx::query(&sql(&format!(
                    "SELECT lower(login) AS login, sync_key FROM users WHERE {}",
                    in_list("lower(login)")
                )))
                .bind(list(logins))
                .fetch_all(&mut *self.tx)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("login")?, r.try_get("sync_key")?)))
                    .collect()
            }

            async fn logins_near(&mut self, bases: &[String]) -> Result<Vec<String>> {
                self.logins_in_base_ranges(bases).await
            }

            async fn logins_highest(&mut self, bases: &[String]) -> Result<Vec<String>> {
                let rows = sqlx::query(crate::$dialect::LOGINS_HIGHEST)
                    .bind(list(bases))
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
                let rows = sqlx::query(&sql(&format!(
                    "SELECT id, uai, kind, name FROM groups WHERE {}",
                    in_list("uai")
                )))
                .bind(list(&uai_strings(uais)))
                .fetch_all(&mut *self.tx)
                .await?;
                rows.iter().map(crate::group_row).collect()
            }

            async fn complet_scope(&mut self, profile: Profile, uais: &[Uai]) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar(&sql(&format!(
                    "SELECT DISTINCT u.sync_key FROM memberships m JOIN users u ON u.id = m.user_id \
                     WHERE {} AND m.active AND u.profile = ? AND u.source = 'csv' AND u.deactivated_at IS NULL",
                    in_list("m.uai")
                )))
                .bind(list(&uai_strings(uais)))
                .bind(profile.id())
                .fetch_all(&mut *self.tx)
                .await?)
            }

            async fn insert_import(&mut self, r: &ImportRecord) -> Result<i64> {
                $store::write_import(&mut self.tx, r).await
            }

            async fn insert_skipped_lines(&mut self, import_id: i64, content: &[u8]) -> Result<()> {
                sqlx::query(&sql("UPDATE import_results SET skipped = ? WHERE import_id = ?"))
                    .bind(content)
                    .bind(import_id)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn insert_import_result(
                &mut self,
                import_id: i64,
                content: &[u8],
                slips: &str,
                expires_at: chrono::DateTime<chrono::Utc>,
            ) -> Result<()> {
                $store::write_import_result(&mut self.tx, import_id, content, slips, expires_at).await
            }

            async fn insert_groups(&mut self, groups: &[GroupRef]) -> Result<()> {
                self.write_groups(groups).await
            }

            async fn insert_users(&mut self, users: &[NewUser<'_>], now: DateTime<Utc>) -> Result<Vec<i64>> {
                self.write_new_users(users, now).await
            }

            async fn update_users(&mut self, updates: &[UserUpdate<'_>], now: DateTime<Utc>) -> Result<()> {
                self.write_user_updates(updates, now).await
            }

            async fn set_profiles(&mut self, rows: &[(i64, Profile)], now: DateTime<Utc>) -> Result<()> {
                self.write_profiles(rows, now).await
            }

            async fn upsert_memberships(&mut self, rows: &[(i64, Membership)]) -> Result<()> {
                self.write_memberships(rows).await
            }

            async fn add_group_members(&mut self, rows: &[(i64, i64)]) -> Result<()> {
                self.write_group_members(rows).await
            }

            async fn remove_group_members(&mut self, rows: &[(i64, i64)]) -> Result<()> {
                for (group_id, user_id) in rows {
                    sqlx::query(&sql("DELETE FROM group_members WHERE group_id = ? AND user_id = ?"))
                        .bind(group_id)
                        .bind(user_id)
                        .execute(&mut *self.tx)
                        .await?;
                }
                Ok(())
            }

            async fn deactivate_memberships(
                &mut self,
                rows: &[(i64, Uai)],
                import_id: i64,
                now: DateTime<Utc>,
            ) -> Result<()> {
                self.write_membership_deactivations(rows, import_id, now).await
            }

            async fn links_of(&mut self, ids: &[i64]) -> Result<Vec<StoredLink>> {
                // A UNION, so that each side reads its own index.
                Ok(sqlx::query_as(&sql(&format!(
                    "SELECT parent_id, child_id, relation, legal_guardian, financial, contact FROM relationships \
                     WHERE {} UNION SELECT parent_id, child_id, relation, legal_guardian, financial, contact \
                     FROM relationships WHERE {} ORDER BY parent_id, child_id",
                    in_list("parent_id"),
                    in_list("child_id")
                )))
                .bind(list(ids))
                .bind(list(ids))
                .fetch_all(&mut *self.tx)
                .await?)
            }

            async fn write_links(&mut self, removed: &[(i64, i64)], links: &[StoredLink]) -> Result<()> {
                for (parent_id, child_id) in removed {
                    sqlx::query(&sql("DELETE FROM relationships WHERE parent_id = ? AND child_id = ?"))
                        .bind(parent_id)
                        .bind(child_id)
                        .execute(&mut *self.tx)
                        .await?;
                }
                // Six values a link: 1,000 links stay under both backends'
                // limits on bound values.
                for chunk in links.chunks(1_000) {
                    let mut b = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO relationships (parent_id, child_id, relation, legal_guardian, financial, contact) ",
                    );
                    b.push_values(chunk, |mut row, l| {
                        row.push_bind(l.parent_id)
                            .push_bind(l.child_id)
                            .push_bind(l.relation.clone())
                            .push_bind(l.legal_guardian)
                            .push_bind(l.financial)
                            .push_bind(l.contact);
                    });
                    b.push(
                        " ON CONFLICT (parent_id, child_id) DO UPDATE SET relation = excluded.relation, \
                         legal_guardian = excluded.legal_guardian, financial = excluded.financial, contact = excluded.contact",
                    );
                    b.build().execute(&mut *self.tx).await?;
                }
                Ok(())
            }

            async fn update_import(&mut self, id: i64, r: &ImportRecord) -> Result<()> {
                $store::rewrite_import(&mut self.tx, id, r).await
            }

            async fn deactivate_users(&mut self, ids: &[i64], import_id: i64, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(&sql(&format!(
                    "UPDATE users SET deactivated_at = ?, deactivated_by_import = ? WHERE {}",
                    in_list("id")
                )))
                .bind(now)
                .bind(import_id)
                .bind(list(ids))
                .execute(&mut *self.tx)
                .await?;
                Ok(())
            }

            async fn commit(self) -> Result<()> {
                Ok(self.tx.commit().await?)
            }
        }

        impl $store {
            /// The search statement of [`Directory::search_users`], shared with
            /// `explain_search` so that the plan shown is the plan run.
            pub(crate) fn search_query(prefix: &str, q: &UserQuery) -> sqlx::QueryBuilder<'static, $db> {
                let mut b = sqlx::QueryBuilder::<$db>::new(format!(
                    "{prefix}SELECT u.id, u.sync_key, u.login, u.last_name, u.first_name, u.profile, u.source, \
                     (u.deactivated_at IS NULL) AS active, u.created_at, u.last_login_at FROM users u WHERE 1 = 1"
                ));
                for (column, value) in [
                    ("u.last_name_fold", &q.last_name),
                    ("u.first_name_fold", &q.first_name),
                    ("lower(u.login)", &q.login),
                ] {
                    if let Some(v) = value {
                        let folded = crate::fold_for_search(v.trim());
                        b.push(format!(" AND {column} >= ")).push_bind(folded.clone());
                        b.push(format!(" AND {column} < ")).push_bind(crate::prefix_end(&folded));
                    }
                }
                if let Some(uai) = &q.establishment {
                    b.push(" AND EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id AND m.uai = ")
                        .push_bind(uai.as_str().to_string())
                        .push(")");
                }
                if let Some(class) = &q.class {
                    b.push(
                        " AND u.id IN (SELECT gm.user_id FROM group_members gm JOIN groups g ON g.id = gm.group_id \
                         WHERE g.kind = 'class' AND g.name = ",
                    )
                    .push_bind(class.trim().to_string());
                    if let Some(uai) = &q.establishment {
                        b.push(" AND g.uai = ").push_bind(uai.as_str().to_string());
                    }
                    b.push(")");
                }
                if !q.profiles.is_empty() {
                    b.push(" AND ");
                    let ids: Vec<String> = q.profiles.iter().map(|p| p.id().to_string()).collect();
                    push_in_list(&mut b, "u.profile", ids);
                }
                b.push(" ORDER BY u.last_name_fold, u.first_name_fold, u.id LIMIT ")
                    .push_bind(q.limit)
                    .push(" OFFSET ")
                    .push_bind(q.offset);
                b
            }
        }

        impl Directory for $store {
            type Tx<'c> = $tx;

            async fn begin(&self) -> Result<$tx> {
                Ok(self.new_tx(self.pool().begin().await?))
            }

            async fn begin_writing(&self) -> Result<$tx> {
                self.begin_writing_tx().await
            }

            fn backend(&self) -> &'static str {
                stringify!($dialect)
            }

            fn storage_present(&self) -> Result<()> {
                self.file_present()
            }

            async fn readiness(&self) -> Result<()> {
                self.file_present()?;
                let applied: Option<i64> =
                    sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                        .fetch_one(self.pool())
                        .await?;
                let expected = crate::$dialect::MIGRATOR.iter().map(|m| m.version).max();
                if applied != expected {
                    return Err(StoreError::Unavailable(format!(
                        "schéma de la base à la version {}, ce programme attend la version {} : relancez le serveur pour appliquer les migrations",
                        applied.unwrap_or(0),
                        expected.unwrap_or(0)
                    )));
                }
                Ok(())
            }

            async fn add_establishment(&self, e: &Establishment, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(&sql("INSERT INTO establishments (uai, name, created_at) VALUES (?, ?, ?)"))
                    .bind(e.uai.as_str())
                    .bind(&e.name)
                    .bind(now)
                    .execute(self.pool())
                    .await
                    .map_err(StoreError::from_sqlx)?;
                Ok(())
            }

            async fn list_establishments(&self) -> Result<Vec<Establishment>> {
                let rows = sqlx::query("SELECT uai, name FROM establishments ORDER BY uai")
                    .fetch_all(self.pool())
                    .await?;
                rows.iter().map(crate::establishment_row).collect()
            }

            async fn export_users(&self, uai: &Uai, profile: Profile) -> Result<Vec<UserRow>> {
                let text = format!(
                    "SELECT {USER_COLUMNS} FROM users u JOIN memberships m ON m.user_id = u.id \
                     WHERE m.uai = ? AND m.active AND u.profile = ? AND u.deactivated_at IS NULL \
                     ORDER BY u.last_name_fold, u.first_name_fold, u.id"
                );
                Ok(sqlx::query_as(&sql(&text))
                    .bind(uai.as_str())
                    .bind(profile.id())
                    .fetch_all(self.pool())
                    .await?)
            }

            async fn search_users(&self, q: &UserQuery) -> Result<Vec<UserSummary>> {
                let mut b = Self::search_query("", q);
                let rows = b.build().fetch_all(self.pool()).await?;
                let ids: Vec<i64> = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
                let memberships = sqlx::query(&sql(&format!(
                    "SELECT user_id, uai FROM memberships WHERE active AND {} ORDER BY uai",
                    in_list("user_id")
                )))
                .bind(list(&ids))
                .fetch_all(self.pool())
                .await?;
                let mut by_user: HashMap<i64, Vec<String>> = HashMap::new();
                for m in &memberships {
                    by_user.entry(m.try_get("user_id")?).or_default().push(m.try_get("uai")?);
                }
                rows.iter().map(|r| crate::summary_row(r, &mut by_user)).collect()
            }

            async fn restore_import(&self, import_id: i64, _now: DateTime<Utc>) -> Result<u64> {
                let mut tx = self.pool().begin().await?;
                let users: Vec<i64> = sqlx::query_scalar(&sql(
                    "SELECT user_id FROM memberships WHERE deactivated_by_import = ? \
                     UNION SELECT id FROM users WHERE deactivated_by_import = ?",
                ))
                .bind(import_id)
                .bind(import_id)
                .fetch_all(&mut *tx)
                .await?;
                sqlx::query(&sql(
                    "UPDATE memberships SET active = TRUE, deactivated_at = NULL, deactivated_by_import = NULL \
                     WHERE deactivated_by_import = ?",
                ))
                .bind(import_id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(&sql(
                    "UPDATE users SET deactivated_at = NULL, deactivated_by_import = NULL WHERE deactivated_by_import = ?",
                ))
                .bind(import_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(users.len() as u64)
            }

            async fn purge_deactivated(&self, before: DateTime<Utc>) -> Result<u64> {
                let mut tx = self.pool().begin().await?;
                sqlx::query(&sql("DELETE FROM memberships WHERE NOT active AND deactivated_at < ?"))
                    .bind(before)
                    .execute(&mut *tx)
                    .await?;
                let deleted = sqlx::query(&sql(
                    "DELETE FROM users WHERE deactivated_at IS NOT NULL AND deactivated_at < ?",
                ))
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(deleted)
            }

            async fn password_hash(&self, login: &str) -> Result<Option<String>> {
                Ok(sqlx::query_scalar(&sql("SELECT password_hash FROM users WHERE lower(login) = lower(?)"))
                    .bind(login)
                    .fetch_optional(self.pool())
                    .await?)
            }

            async fn count_users(&self) -> Result<i64> {
                Ok(sqlx::query_scalar("SELECT count(*) FROM users")
                    .fetch_one(self.pool())
                    .await?)
            }

            async fn checkpoint(&self) -> Result<()> {
                self.checkpoint_log().await
            }
        }

        impl AdminTx for $tx {
            async fn lock_users(&mut self, keys: &[String]) -> Result<()> {
                self.lock_users_for_writing(keys).await
            }

            async fn structures(&mut self, uais: &[Uai]) -> Result<Vec<Structure>> {
                let rows = sqlx::query(&sql(&format!(
                    "SELECT uai, name, aaf_jointure, structure_type, city, academy FROM establishments WHERE {}",
                    in_list("uai")
                )))
                .bind(list(&uai_strings(uais)))
                .fetch_all(&mut *self.tx)
                .await?;
                rows.iter()
                    .map(|r| {
                        let e = crate::establishment_row(r)?;
                        Ok(Structure {
                            uai: e.uai,
                            name: e.name,
                            jointure: r.try_get("aaf_jointure")?,
                            structure_type: r.try_get("structure_type")?,
                            city: r.try_get("city")?,
                            academy: r.try_get("academy")?,
                        })
                    })
                    .collect()
            }

            async fn write_structures(&mut self, list: &[Structure], now: DateTime<Utc>) -> Result<()> {
                for s in list {
                    if let Some(jointure) = &s.jointure {
                        sqlx::query(&sql(
                            "UPDATE establishments SET aaf_jointure = NULL WHERE aaf_jointure = ? AND uai <> ?",
                        ))
                        .bind(jointure)
                        .bind(s.uai.as_str())
                        .execute(&mut *self.tx)
                        .await?;
                    }
                    sqlx::query(&sql(
                        "INSERT INTO establishments (uai, name, created_at, aaf_jointure, structure_type, city, academy) \
                         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (uai) DO UPDATE SET name = excluded.name, \
                         aaf_jointure = excluded.aaf_jointure, structure_type = excluded.structure_type, \
                         city = excluded.city, academy = excluded.academy",
                    ))
                    .bind(s.uai.as_str())
                    .bind(&s.name)
                    .bind(now)
                    .bind(&s.jointure)
                    .bind(&s.structure_type)
                    .bind(&s.city)
                    .bind(&s.academy)
                    .execute(&mut *self.tx)
                    .await?;
                }
                Ok(())
            }

            async fn keep_former_key(&mut self, key: &str, user_id: i64) -> Result<()> {
                sqlx::query(&sql(
                    "INSERT INTO former_keys (sync_key, user_id) VALUES (?, ?) \
                     ON CONFLICT (sync_key) DO UPDATE SET user_id = excluded.user_id",
                ))
                .bind(key)
                .bind(user_id)
                .execute(&mut *self.tx)
                .await?;
                Ok(())
            }

            async fn aaf_scope(&mut self, uais: &[Uai], profiles: &[Profile]) -> Result<Vec<String>> {
                let profiles: Vec<String> = profiles.iter().map(|p| p.id().to_string()).collect();
                Ok(sqlx::query_scalar(&sql(&format!(
                    "SELECT DISTINCT u.sync_key FROM memberships m JOIN users u ON u.id = m.user_id \
                     WHERE {} AND m.active AND u.source = 'aaf' \
                     AND {} AND u.deactivated_at IS NULL",
                    in_list("m.uai"),
                    in_list("u.profile")
                )))
                .bind(list(&uai_strings(uais)))
                .bind(list(&profiles))
                .fetch_all(&mut *self.tx)
                .await?)
            }

            async fn parents_without_child(&mut self, children: &[i64]) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar(&sql(&format!(
                    "SELECT DISTINCT p.sync_key FROM relationships r JOIN users p ON p.id = r.parent_id \
                     WHERE {} AND p.profile = 'parent' AND p.source = 'aaf' AND p.deactivated_at IS NULL \
                     AND NOT EXISTS (SELECT 1 FROM relationships o JOIN users c ON c.id = o.child_id \
                     WHERE o.parent_id = p.id AND c.deactivated_at IS NULL)",
                    in_list("r.child_id")
                )))
                .bind(list(children))
                .fetch_all(&mut *self.tx)
                .await?)
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
                sqlx::query(&sql(
                    "UPDATE users SET sync_key = ?, source = ?, protected = ?, profile = ?, updated_at = ? WHERE id = ?",
                ))
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
                sqlx::query(&sql("DELETE FROM users WHERE id = ?"))
                    .bind(id)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn duplicate_candidates(&mut self, uais: Option<&[Uai]>) -> Result<Vec<CandidateRow>> {
                const CANDIDATES: &str = "SELECT u.id, u.sync_key, u.login, u.profile, u.source, u.last_name, \
                     u.first_name, u.birth_date, u.email, m.uai FROM memberships m JOIN users u ON u.id = m.user_id \
                     WHERE m.active AND u.deactivated_at IS NULL AND ";
                Ok(match uais {
                    Some(uais) => {
                        sqlx::query_as(&sql(&format!("{CANDIDATES}{}", in_list("m.uai"))))
                            .bind(list(&uai_strings(uais)))
                            .fetch_all(&mut *self.tx)
                            .await?
                    }
                    None => {
                        let text = format!(
                            "{CANDIDATES}m.uai IN (SELECT DISTINCT m2.uai FROM users u2 \
                             JOIN memberships m2 ON m2.user_id = u2.id WHERE u2.source = 'aaf' AND m2.active)"
                        );
                        sqlx::query_as(&text).fetch_all(&mut *self.tx).await?
                    }
                })
            }

            async fn user_establishments(&mut self, ids: &[i64]) -> Result<Vec<Uai>> {
                let rows: Vec<String> = sqlx::query_scalar(&sql(&format!(
                    "SELECT DISTINCT uai FROM memberships WHERE active AND {} ORDER BY uai",
                    in_list("user_id")
                )))
                .bind(list(ids))
                .fetch_all(&mut *self.tx)
                .await?;
                rows.iter().map(|u| crate::stored_uai(u)).collect()
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
                let done = sqlx::query(&sql(
                    "INSERT INTO duplicate_dismissals (user_a, user_b, dismissed_at, actor) VALUES (?, ?, ?, ?) \
                     ON CONFLICT DO NOTHING",
                ))
                .bind(pair.0)
                .bind(pair.1)
                .bind(now)
                .bind(actor)
                .execute(&mut *self.tx)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn insert_audit(&mut self, e: &NewAudit) -> Result<()> {
                $store::write_audit(&mut self.tx, e).await
            }

            async fn save_establishment(&mut self, e: &Establishment, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(&sql(
                    "INSERT INTO establishments (uai, name, created_at) VALUES (?, ?, ?) \
                     ON CONFLICT (uai) DO UPDATE SET name = excluded.name",
                ))
                .bind(e.uai.as_str())
                .bind(e.name.trim())
                .bind(now)
                .execute(&mut *self.tx)
                .await?;
                Ok(())
            }

            async fn audit_entries(&mut self, limit: i64) -> Result<Vec<AuditEntry>> {
                let rows = sqlx::query(&sql(
                    "SELECT id, at, actor, action, target, details FROM audit_log ORDER BY at DESC, id DESC LIMIT ?",
                ))
                .bind(limit)
                .fetch_all(&mut *self.tx)
                .await?;
                rows.iter().map(crate::admin::audit_row).collect()
            }

            async fn lvs_overrides(&mut self) -> Result<Vec<(String, Option<String>)>> {
                Ok(sqlx::query_as(&sql("SELECT function_code, lvs_profile FROM lvs_profiles ORDER BY function_code"))
                    .fetch_all(&mut *self.tx)
                    .await?)
            }

            async fn save_lvs_profile(&mut self, code: &str, profile: Option<&str>, actor: &str, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(&sql(
                    "INSERT INTO lvs_profiles (function_code, lvs_profile, updated_at, updated_by) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (function_code) DO UPDATE SET lvs_profile = excluded.lvs_profile, \
                     updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                ))
                .bind(code)
                .bind(profile)
                .bind(now)
                .bind(actor)
                .execute(&mut *self.tx)
                .await?;
                Ok(())
            }

            async fn reset_lvs_profile(&mut self, code: &str) -> Result<()> {
                sqlx::query(&sql("DELETE FROM lvs_profiles WHERE function_code = ?"))
                    .bind(code)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }
        }

        impl AdminDirectory for $store {
            type AdminTx<'c> = $tx;

            async fn begin_admin(&self) -> Result<$tx> {
                self.begin_writing().await
            }

            async fn structure_jointures(&self) -> Result<Vec<(String, Uai)>> {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT aaf_jointure, uai FROM establishments WHERE aaf_jointure IS NOT NULL",
                )
                .fetch_all(self.pool())
                .await?;
                rows.into_iter()
                    .map(|(jointure, uai)| Ok((jointure, crate::stored_uai(&uai)?)))
                    .collect()
            }
        }
        }
    };
}

pub(crate) use impl_directory;
