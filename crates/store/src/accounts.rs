//! One account's page and settings (SPEC §9), and the sign-in check the CAS
//! server will call. The rules are in [`domain::account`]; this module reads
//! an account whole, saves a change with its audit row in one transaction,
//! and refuses a save made from a page that is no longer current.
//!
//! One SQL text serves both backends, as in [`crate::history`].

use crate::admin::NewAudit;
use crate::web::Admin;
use crate::{Result, StoreError, UserRow, USER_COLUMNS};
use chrono::{DateTime, Utc};
use domain::account::{
    self, AccountChange, AccountRights, AccountSettings, AccountState, AllowedNetworks, FieldChange, Identity,
    SignInRefusal,
};
use domain::person::{GroupRef, Source};
use domain::{Profile, Uai};
use serde::Serialize;
use std::future::Future;
use std::net::IpAddr;

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
    /// The version a change must start from (see [`save_account`]).
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub deactivated_at: Option<DateTime<Utc>>,
    pub memberships: Vec<MembershipLine>,
    pub groups: Vec<GroupRef>,
    /// A pupil's persons in charge, or a parent's children.
    pub relatives: Vec<RelativeLine>,
}

impl AccountDetail {
    /// An establishment admin manages the accounts that belong (or belonged)
    /// to one of their establishments; ENT-wide accounts are the system admins'.
    pub fn managed_by(&self, admin: &Admin) -> bool {
        self.rights(admin) != AccountRights::None
    }

    /// What this admin may do to the account ([`account::rights_over`]).
    pub fn rights(&self, admin: &Admin) -> AccountRights {
        account::rights_over(&admin.scope(), self.memberships.iter().map(|m| (&m.uai, m.active)))
    }

    /// "Lycée Henri-IV (0750653C)": the active memberships outside this admin's establishments.
    pub fn active_elsewhere(&self, admin: &Admin) -> String {
        let scope = admin.scope();
        let elsewhere: Vec<domain::Establishment> = self
            .memberships
            .iter()
            .filter(|m| m.active && !scope.allows(&m.uai))
            .map(MembershipLine::establishment)
            .collect();
        domain::establishment::establishment_list(&elsewhere)
    }
}

/// What a sign-in needs to know about an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInAccount {
    pub id: i64,
    pub password_hash: String,
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
    fn sign_in_account(&self, login: &str) -> impl Future<Output = Result<Option<SignInAccount>>> + Send;
    fn record_sign_in(&self, id: i64, now: DateTime<Utc>) -> impl Future<Output = Result<()>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("compte introuvable")]
    NotFound,
    /// Every field to correct, each with its reason.
    #[error("{}", domain::values::problems_in_words(.0))]
    Invalid(Vec<domain::values::FieldProblem>),
    /// An establishment admin on an account also active elsewhere.
    #[error("ce compte est aussi actif dans {0} : seuls les administrateurs de tous ses établissements réunis (ou un administrateur système) modifient son identité et ses paramètres ; vous pouvez seulement retirer votre établissement de ses rattachements")]
    Shared(String),
    /// Leaving an establishment the account is not (or no longer) active in.
    #[error("ce compte n'est pas rattaché à l'établissement {0} (ou ne l'est plus)")]
    NotMember(Uai),
    /// Deactivating or reactivating an account the academic feed owns.
    #[error("ce compte vient du flux académique (AAF) : il est désactivé ou réactivé par le flux ; pour l'empêcher de se connecter dès maintenant, fixez son dernier jour de validité à hier")]
    FeedOwned,
    /// Deactivating a deactivated account, or reactivating an active one.
    #[error("ce compte est déjà {}", if *.0 { "actif" } else { "désactivé" })]
    AlreadyThere(bool),
    #[error("ce compte a été modifié entre-temps (import, synchronisation ou autre administrateur) : rechargez sa page et refaites la modification")]
    Stale,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a save did: the fields that changed (none: nothing was written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedAccount {
    pub sync_key: String,
    pub changes: Vec<FieldChange>,
}

/// Applies an admin's change to an account the caller has just read,
/// audited, all or nothing. `version` is the `updated_at` the admin's page
/// was built from (`None`: the one of `detail`, for the CLI which reads and
/// writes in one go); the write is refused if the account changed since.
pub async fn save_account<D: Accounts>(
    d: &D,
    detail: &AccountDetail,
    version: Option<DateTime<Utc>>,
    change: &AccountChange,
    admin: &Admin,
    now: DateTime<Utc>,
) -> Result<SavedAccount, AccountError> {
    match detail.rights(admin) {
        AccountRights::Full => {}
        AccountRights::OwnMembershipsOnly => return Err(AccountError::Shared(detail.active_elsewhere(admin))),
        AccountRights::None => return Err(AccountError::NotFound),
    }
    let (next, changes) = account::apply_change(&detail.state, detail.source, change, domain::time::day(now))
        .map_err(AccountError::Invalid)?;
    let saved = SavedAccount {
        sync_key: detail.user.sync_key.clone(),
        changes,
    };
    if saved.changes.is_empty() {
        return Ok(saved);
    }
    let audit = NewAudit {
        at: now,
        actor: admin.login.clone(),
        action: "account_update".into(),
        target: detail.user.sync_key.clone(),
        details: serde_json::json!({ "login": detail.user.login, "changes": saved.changes }),
    };
    let version = version.unwrap_or(detail.updated_at);
    if d.write_account(detail.user.id, version, &next, &audit, now).await? {
        Ok(saved)
    } else {
        Err(AccountError::Stale)
    }
}

/// Ends the account's membership in one of the admin's establishments (and
/// its groups there), audited; the account is deactivated when it was its
/// last active membership. Allowed on a shared account, whose other
/// establishments keep it.
pub async fn leave_establishment<D: Accounts>(
    d: &D,
    detail: &AccountDetail,
    version: Option<DateTime<Utc>>,
    uai: &Uai,
    admin: &Admin,
    now: DateTime<Utc>,
) -> Result<(), AccountError> {
    if detail.rights(admin) == AccountRights::None {
        return Err(AccountError::NotFound);
    }
    if !admin.scope().allows(uai) {
        return Err(AccountError::Shared(detail.active_elsewhere(admin)));
    }
    if !detail.memberships.iter().any(|m| m.active && &m.uai == uai) {
        return Err(AccountError::NotMember(uai.clone()));
    }
    let last = !detail.memberships.iter().any(|m| m.active && &m.uai != uai);
    let audit = NewAudit {
        at: now,
        actor: admin.login.clone(),
        action: "membership_end".into(),
        target: detail.user.sync_key.clone(),
        details: serde_json::json!({ "login": detail.user.login, "establishment": uai, "account_deactivated": last }),
    };
    let version = version.unwrap_or(detail.updated_at);
    if d.write_leave(detail.user.id, version, uai, last, &audit, now).await? {
        Ok(())
    } else {
        Err(AccountError::Stale)
    }
}

/// Deactivates (`active` false) or reactivates an account by hand, audited.
/// Only an admin with full rights over it may (a shared account is left, not
/// deactivated); an account of the academic feed follows the feed. A
/// reactivated account with no active establishment gets back its
/// memberships in the admin's establishments (all of them for a system admin).
/// A deactivated account is purged after the retention period like any other.
pub async fn set_active<D: Accounts>(
    d: &D,
    detail: &AccountDetail,
    version: Option<DateTime<Utc>>,
    active: bool,
    admin: &Admin,
    now: DateTime<Utc>,
) -> Result<(), AccountError> {
    match detail.rights(admin) {
        AccountRights::None => return Err(AccountError::NotFound),
        AccountRights::OwnMembershipsOnly => return Err(AccountError::Shared(detail.active_elsewhere(admin))),
        AccountRights::Full => {}
    }
    if detail.source == Source::Aaf {
        return Err(AccountError::FeedOwned);
    }
    if detail.deactivated_at.is_none() == active {
        return Err(AccountError::AlreadyThere(active));
    }
    let scope = admin.scope();
    let reopen: Vec<Uai> = if active && !detail.memberships.iter().any(|m| m.active) {
        detail
            .memberships
            .iter()
            .filter(|m| scope.allows(&m.uai))
            .map(|m| m.uai.clone())
            .collect()
    } else {
        Vec::new()
    };
    let audit = NewAudit {
        at: now,
        actor: admin.login.clone(),
        action: if active {
            "account_reactivate"
        } else {
            "account_deactivate"
        }
        .into(),
        target: detail.user.sync_key.clone(),
        details: if reopen.is_empty() {
            serde_json::json!({ "login": detail.user.login })
        } else {
            serde_json::json!({ "login": detail.user.login, "establishments": reopen })
        },
    };
    let version = version.unwrap_or(detail.updated_at);
    if d.write_activation(detail.user.id, version, active, &reopen, &audit, now)
        .await?
    {
        Ok(())
    } else {
        Err(AccountError::Stale)
    }
}

/// Checks a sign-in (password, deactivation, expiry, allowed networks) and
/// records it. The error says why, for the server's log; a sign-in page shows
/// the user only "identifiant ou mot de passe incorrect" for a bad password.
pub async fn sign_in<D: Accounts>(
    d: &D,
    login: &str,
    password: &str,
    from: IpAddr,
    now: DateTime<Utc>,
) -> Result<Result<i64, SignInFailure>> {
    let login = login.trim().to_lowercase();
    let Some(account) = d.sign_in_account(&login).await? else {
        return Ok(Err(SignInFailure::BadCredentials));
    };
    if !domain::password::verify(password, &account.password_hash) {
        return Ok(Err(SignInFailure::BadCredentials));
    }
    if let Err(refusal) = account::check_sign_in(account.active, &account.settings, now, from) {
        return Ok(Err(SignInFailure::Refused(refusal)));
    }
    d.record_sign_in(account.id, now).await?;
    Ok(Ok(account.id))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInFailure {
    #[error("identifiant ou mot de passe incorrect")]
    BadCredentials,
    #[error(transparent)]
    Refused(SignInRefusal),
}

/// An instant as the pages and the CLI show it; `None` is "jamais".
pub fn when(at: Option<DateTime<Utc>>) -> String {
    at.map(domain::time::minute).unwrap_or_else(|| "jamais".to_string())
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

            async fn sign_in_account(&self, login: &str) -> Result<Option<SignInAccount>> {
                use sqlx::Row;
                let Some(r) = sqlx::query(&$sql(
                    "SELECT id, password_hash, (deactivated_at IS NULL) AS active, protected, expires_at, allowed_ips \
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
