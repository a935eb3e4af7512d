//! One account's page and settings (SPEC §9), and the sign-in check the CAS
//! server will call. The rules are in [`domain::account`]; this module reads
//! an account whole, saves a change with its audit row in one transaction,
//! and refuses a save made from a page that is no longer current.
//!
//! One SQL text serves both backends, as in [`crate::history`].

use crate::admin::NewAudit;
use crate::{Result, StoreError, UserRow, USER_COLUMNS};
use chrono::{DateTime, Utc};
use domain::account::{self, AccountSettings, AccountState, AllowedNetworks, Identity};
use domain::person::{GroupRef, Source};
use domain::{Profile, Uai};
use serde::Serialize;
use std::future::Future;

/// An establishment the account belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MembershipLine {
    pub uai: Uai,
    pub establishment: String,
    pub role: String,
    pub active: bool,
}

impl MembershipLine {
    pub fn establishment(&self) -> domain::Establishment {
        domain::Establishment {
            uai: self.uai.clone(),
            name: self.establishment.clone(),
        }
    }
}

/// The other person of a pupil ↔ person in charge link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelativeLine {
    pub id: i64,
    pub sync_key: String,
    pub last_name: String,
    pub first_name: String,
    /// True when this person is the account's child (the account is the
    /// person in charge), false when they are in charge of the account.
    pub is_child: bool,
    /// The family link's code (10 mother, 20 father…).
    pub relation: Option<String>,
    pub legal_guardian: bool,
    pub financial: bool,
    pub contact: bool,
    pub active: bool,
}

/// Everything the account page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDetail {
    pub user: UserRow,
    pub profile: Profile,
    pub source: Source,
    pub state: AccountState,
    pub created_at: DateTime<Utc>,
    /// The version a change must start from (a save made from an older page is refused).
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub deactivated_at: Option<DateTime<Utc>>,
    pub memberships: Vec<MembershipLine>,
    pub groups: Vec<GroupRef>,
    /// A pupil's persons in charge, or a parent's children.
    pub relatives: Vec<RelativeLine>,
}

/// What a sign-in needs to know about an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInAccount {
    pub id: i64,
    pub password_hash: String,
    /// A distributed password (generated, imposed or reset by an admin): the
    /// sign-in asks for a new one.
    pub must_change_password: bool,
    pub active: bool,
    pub settings: AccountSettings,
}

pub trait Accounts: Send + Sync {
    fn account(&self, id: i64) -> impl Future<Output = Result<Option<AccountDetail>>> + Send;
    fn account_id_by_key(&self, key: &str) -> impl Future<Output = Result<Option<i64>>> + Send;
    /// Writes the new state and its audit row together, only if the account
    /// was not changed since `version` (its `updated_at`); false otherwise.
    fn write_account(
        &self,
        id: i64,
        version: DateTime<Utc>,
        next: &AccountState,
        audit: &NewAudit,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Ends a membership (and the groups of that establishment), and the
    /// account too when `deactivate`, with its audit row, only if the account
    /// was not changed since `version`; false otherwise.
    fn write_leave(
        &self,
        id: i64,
        version: DateTime<Utc>,
        uai: &Uai,
        deactivate: bool,
        audit: &NewAudit,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Deactivates the account (`active` false) or reactivates it with the
    /// memberships of `reopen`, with its audit row, only if the account was
    /// not changed since `version`; false otherwise.
    fn write_activation(
        &self,
        id: i64,
        version: DateTime<Utc>,
        active: bool,
        reopen: &[Uai],
        audit: &NewAudit,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Gives the account a new password hash, to be changed at its next
    /// sign-in when `must_change`, with its audit row, only if the account was
    /// not changed since `version`; false otherwise.
    fn write_password(
        &self,
        id: i64,
        version: DateTime<Utc>,
        password_hash: &str,
        must_change: bool,
        audit: &NewAudit,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Replaces the password hash the caller read (`expected`: a concurrent
    /// change wins and this one is refused), with its audit row when given;
    /// true when written.
    fn replace_password_hash(
        &self,
        id: i64,
        expected: &str,
        password_hash: &str,
        must_change: bool,
        audit: Option<&NewAudit>,
    ) -> impl Future<Output = Result<bool>> + Send;
    fn sign_in_account(&self, login: &str) -> impl Future<Output = Result<Option<SignInAccount>>> + Send;
    fn record_sign_in(&self, id: i64, now: DateTime<Utc>) -> impl Future<Output = Result<()>> + Send;
}

fn settings_of(
    protected: bool,
    expires_at: Option<DateTime<Utc>>,
    allowed_ips: Option<&str>,
) -> Result<AccountSettings> {
    Ok(AccountSettings {
        last_day: expires_at.map(account::last_day),
        networks: AllowedNetworks::parse(allowed_ips.unwrap_or_default())
            .map_err(|e| StoreError::Corrupt(e.message))?,
        protected,
    })
}

macro_rules! impl_accounts {
    ($store:ty, $conn:ty, $sql:path) => {
        impl $store {
            /// Moves the account to a new version (`updated_at`), only if it is
            /// still at `version` (false: someone changed it since the page was
            /// shown); sets `deactivated_at` too when given (`Some(None)` clears it).
            async fn take_version(
                conn: &mut $conn,
                id: i64,
                version: DateTime<Utc>,
                deactivated_at: Option<Option<DateTime<Utc>>>,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let written = sqlx::query(&$sql(
                    "UPDATE users SET updated_at = ?, deactivated_at = CASE WHEN ? THEN ? ELSE deactivated_at END \
                     WHERE id = ? AND updated_at = ?",
                ))
                .bind(now)
                .bind(deactivated_at.is_some())
                .bind(deactivated_at.flatten())
                .bind(id)
                .bind(version)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                Ok(written == 1)
            }

            /// The one UPDATE of a password hash; with `expected`, only if the
            /// stored hash is still that one. True when written.
            async fn set_password_hash(
                conn: &mut $conn,
                id: i64,
                expected: Option<&str>,
                password_hash: &str,
                must_change: bool,
            ) -> Result<bool> {
                let written = sqlx::query(&$sql(
                    "UPDATE users SET password_hash = ?, must_change_password = ? \
                     WHERE id = ? AND (? IS NULL OR password_hash = ?)",
                ))
                .bind(password_hash)
                .bind(must_change)
                .bind(id)
                .bind(expected)
                .bind(expected)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                Ok(written == 1)
            }

            /// The one INSERT of an audit row, inside any transaction.
            pub(crate) async fn write_audit(conn: &mut $conn, audit: &NewAudit) -> Result<()> {
                sqlx::query(&$sql(
                    "INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)",
                ))
                .bind(audit.at)
                .bind(&audit.actor)
                .bind(&audit.action)
                .bind(&audit.target)
                .bind(audit.details.to_string())
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }

        impl Accounts for $store {
            async fn account(&self, id: i64) -> Result<Option<AccountDetail>> {
                use sqlx::Row;
                let Some(r) = sqlx::query(&$sql(&format!(
                    "SELECT {USER_COLUMNS}, u.created_at, u.updated_at, u.last_login_at, u.deactivated_at, \
                     u.expires_at, u.allowed_ips FROM users u WHERE u.id = ?"
                )))
                .bind(id)
                .fetch_optional(self.pool())
                .await?
                else {
                    return Ok(None);
                };
                let user: UserRow = sqlx::FromRow::from_row(&r)?;
                let attrs = user.attributes()?;
                let allowed: Option<String> = r.try_get("allowed_ips")?;
                let state = AccountState {
                    settings: settings_of(user.protected, r.try_get("expires_at")?, allowed.as_deref())?,
                    identity: Identity {
                        civility: attrs.civility,
                        last_name: attrs.last_name,
                        first_name: attrs.first_name,
                        birth_date: attrs.birth_date,
                        email: attrs.email,
                        mobile: attrs.mobile,
                    },
                };
                let memberships = sqlx::query(&$sql(
                    "SELECT m.uai, e.name, m.role, m.active FROM memberships m \
                     JOIN establishments e ON e.uai = m.uai WHERE m.user_id = ? ORDER BY e.name, m.uai",
                ))
                .bind(id)
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|m| {
                    let uai: String = m.try_get("uai")?;
                    Ok(MembershipLine {
                        uai: Uai::parse(&uai).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        establishment: m.try_get("name")?,
                        role: m.try_get("role")?,
                        active: m.try_get("active")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
                let groups = sqlx::query(&$sql(
                    "SELECT g.id, g.uai, g.kind, g.name FROM groups g \
                     JOIN group_members gm ON gm.group_id = g.id WHERE gm.user_id = ? ORDER BY g.uai, g.kind, g.name",
                ))
                .bind(id)
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|g| crate::group_row(g).map(|(_, g)| g))
                .collect::<Result<Vec<_>>>()?;
                let relatives = sqlx::query(&$sql(
                    "SELECT u.id, u.sync_key, u.last_name, u.first_name, (r.parent_id = ?) AS is_child, \
                     r.relation, r.legal_guardian, r.financial, r.contact, (u.deactivated_at IS NULL) AS active \
                     FROM relationships r JOIN users u \
                     ON u.id = CASE WHEN r.parent_id = ? THEN r.child_id ELSE r.parent_id END \
                     WHERE r.parent_id = ? OR r.child_id = ? ORDER BY u.last_name_fold, u.first_name_fold, u.id",
                ))
                .bind(id)
                .bind(id)
                .bind(id)
                .bind(id)
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|r| {
                    Ok(RelativeLine {
                        id: r.try_get("id")?,
                        sync_key: r.try_get("sync_key")?,
                        last_name: r.try_get("last_name")?,
                        first_name: r.try_get("first_name")?,
                        is_child: r.try_get("is_child")?,
                        relation: r.try_get("relation")?,
                        legal_guardian: r.try_get("legal_guardian")?,
                        financial: r.try_get("financial")?,
                        contact: r.try_get("contact")?,
                        active: r.try_get("active")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
                Ok(Some(AccountDetail {
                    relatives,
                    profile: user.profile()?,
                    source: user.source()?,
                    state,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                    last_login_at: r.try_get("last_login_at")?,
                    deactivated_at: r.try_get("deactivated_at")?,
                    memberships,
                    groups,
                    user,
                }))
            }

            async fn account_id_by_key(&self, key: &str) -> Result<Option<i64>> {
                Ok(sqlx::query_scalar(&$sql("SELECT id FROM users WHERE sync_key = ?"))
                    .bind(key)
                    .fetch_optional(self.pool())
                    .await?)
            }

            async fn write_account(
                &self,
                id: i64,
                version: DateTime<Utc>,
                next: &AccountState,
                audit: &NewAudit,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let mut tx = self.pool().begin().await?;
                let s = &next.settings;
                let i = &next.identity;
                let written = sqlx::query(&$sql(
                    "UPDATE users SET expires_at = ?, allowed_ips = ?, protected = ?, civility = ?, \
                     last_name = ?, first_name = ?, last_name_fold = ?, first_name_fold = ?, birth_date = ?, \
                     email = ?, mobile = ?, updated_at = ? WHERE id = ? AND updated_at = ?",
                ))
                .bind(s.last_day.map(account::expires_at))
                .bind(s.networks.to_stored())
                .bind(s.protected)
                .bind(i.civility.map(|c| c.as_str()))
                .bind(&i.last_name)
                .bind(&i.first_name)
                .bind(crate::fold_for_search(&i.last_name))
                .bind(crate::fold_for_search(&i.first_name))
                .bind(i.birth_date)
                .bind(i.email.as_ref().map(|e| e.as_str()))
                .bind(i.mobile.as_ref().map(|p| p.as_e164()))
                .bind(now)
                .bind(id)
                .bind(version)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if written != 1 {
                    return Ok(false);
                }
                Self::write_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn write_leave(
                &self,
                id: i64,
                version: DateTime<Utc>,
                uai: &Uai,
                deactivate: bool,
                audit: &NewAudit,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let mut tx = self.pool().begin().await?;
                let deactivated_at = deactivate.then_some(Some(now));
                if !Self::take_version(&mut tx, id, version, deactivated_at, now).await? {
                    return Ok(false);
                }
                sqlx::query(&$sql("UPDATE memberships SET active = ?, deactivated_at = ? WHERE user_id = ? AND uai = ?"))
                    .bind(false)
                    .bind(now)
                    .bind(id)
                    .bind(uai.as_str())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&$sql(
                    "DELETE FROM group_members WHERE user_id = ? AND group_id IN (SELECT g.id FROM groups g WHERE g.uai = ?)",
                ))
                .bind(id)
                .bind(uai.as_str())
                .execute(&mut *tx)
                .await?;
                Self::write_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn write_activation(
                &self,
                id: i64,
                version: DateTime<Utc>,
                active: bool,
                reopen: &[Uai],
                audit: &NewAudit,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let mut tx = self.pool().begin().await?;
                if !Self::take_version(&mut tx, id, version, Some((!active).then_some(now)), now).await? {
                    return Ok(false);
                }
                for uai in reopen {
                    sqlx::query(&$sql(
                        "UPDATE memberships SET active = ?, deactivated_at = NULL WHERE user_id = ? AND uai = ?",
                    ))
                    .bind(true)
                    .bind(id)
                    .bind(uai.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
                Self::write_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn write_password(
                &self,
                id: i64,
                version: DateTime<Utc>,
                password_hash: &str,
                must_change: bool,
                audit: &NewAudit,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let mut tx = self.pool().begin().await?;
                if !Self::take_version(&mut tx, id, version, None, now).await?
                    || !Self::set_password_hash(&mut tx, id, None, password_hash, must_change).await?
                {
                    return Ok(false);
                }
                Self::write_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn replace_password_hash(
                &self,
                id: i64,
                expected: &str,
                password_hash: &str,
                must_change: bool,
                audit: Option<&NewAudit>,
            ) -> Result<bool> {
                let mut tx = self.pool().begin().await?;
                if !Self::set_password_hash(&mut tx, id, Some(expected), password_hash, must_change).await? {
                    return Ok(false);
                }
                if let Some(audit) = audit {
                    Self::write_audit(&mut tx, audit).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn sign_in_account(&self, login: &str) -> Result<Option<SignInAccount>> {
                use sqlx::Row;
                let Some(r) = sqlx::query(&$sql(
                    "SELECT id, password_hash, must_change_password, (deactivated_at IS NULL) AS active, protected, expires_at, allowed_ips \
                     FROM users WHERE lower(login) = ?",
                ))
                .bind(login)
                .fetch_optional(self.pool())
                .await?
                else {
                    return Ok(None);
                };
                let allowed: Option<String> = r.try_get("allowed_ips")?;
                Ok(Some(SignInAccount {
                    id: r.try_get("id")?,
                    password_hash: r.try_get("password_hash")?,
                    must_change_password: r.try_get("must_change_password")?,
                    active: r.try_get("active")?,
                    settings: settings_of(r.try_get("protected")?, r.try_get("expires_at")?, allowed.as_deref())?,
                }))
            }

            async fn record_sign_in(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(&$sql("UPDATE users SET last_login_at = ? WHERE id = ?"))
                    .bind(now)
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }
        }
    };
}

impl_accounts!(
    crate::sqlite::SqliteDirectory,
    sqlx::SqliteConnection,
    crate::sqlite::sql
);
impl_accounts!(crate::postgres::PgDirectory, sqlx::PgConnection, crate::postgres::sql);
