//! The account page's acts (SPEC §9) and the sign-in check: open an account,
//! save a change, leave an establishment, deactivate or reactivate, each
//! refused unless the actor's rights over the account allow it
//! ([`domain::account::rights_over`]), audited, and refused when the account
//! changed since the page the admin acted from.

use crate::Actor;
use chrono::{DateTime, Utc};
use domain::account::{self, AccountChange, AccountRights, FieldChange, SignInRefusal};
use domain::person::Source;
use domain::Uai;
use serde::Serialize;
use std::net::IpAddr;
use store::accounts::{AccountDetail, Accounts};
use store::admin::{AddedUser, AdminDirectory, NewAudit};
use store::StoreError;

/// The account, if the actor manages it: an account outside their
/// establishments does not exist for them.
pub async fn open<D: Accounts>(d: &D, actor: &Actor, id: i64) -> Result<AccountDetail, AccountError> {
    match d.account(id).await? {
        Some(detail) if actor.manages(&detail) => Ok(detail),
        _ => Err(AccountError::NotFound),
    }
}

/// Creates one account by hand (the "Créer un compte" form, `users add`),
/// audited. An establishment admin creates accounts in their establishments
/// only; ENT-wide accounts (system admins, guests) are a system admin's.
pub async fn create<D: AdminDirectory, R: rand::RngCore + rand::CryptoRng>(
    d: &D,
    actor: &Actor,
    user: &domain::manual::ManualUser,
    pattern: domain::keys::LoginPattern,
    min_password_len: usize,
    now: DateTime<Utc>,
    rng: &mut R,
) -> crate::Result<AddedUser> {
    let allowed = match &user.establishment {
        Some(uai) => actor.may_act_on(uai),
        None => actor.is_system(),
    };
    let ent_wide = matches!(
        user.profile,
        domain::Profile::AdministrateurSysteme | domain::Profile::Invite
    );
    if !allowed || (ent_wide && !actor.is_system()) {
        return Err(crate::Error::NotFound);
    }
    Ok(store::admin::add_user(d, user, pattern, min_password_len, actor.name(), now, rng).await?)
}

/// Deletes the accounts deactivated for more than `retention_days`, audited
/// (a system act: the retention period is the ENT's); the number deleted.
pub async fn purge<D: store::Directory + AdminDirectory>(
    d: &D,
    actor: &Actor,
    retention_days: i64,
    now: DateTime<Utc>,
) -> crate::Result<u64> {
    actor.require_system("la suppression des comptes désactivés")?;
    let purged = d
        .purge_deactivated(now - chrono::Duration::days(retention_days))
        .await?;
    store::admin::audit(
        d,
        &NewAudit {
            at: now,
            actor: actor.name().to_string(),
            action: "purge".into(),
            target: "comptes désactivés".into(),
            details: serde_json::json!({ "accounts": purged, "retention_days": retention_days }),
        },
    )
    .await?;
    Ok(purged)
}

/// [`open`] by sync key, for the command line.
pub async fn open_by_key<D: Accounts>(d: &D, actor: &Actor, key: &str) -> Result<AccountDetail, AccountError> {
    match d.account_id_by_key(key.trim()).await? {
        Some(id) => open(d, actor, id).await,
        None => Err(AccountError::NotFound),
    }
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
    /// Resetting the password of a deactivated account.
    #[error("ce compte est désactivé : réactivez-le d'abord, puis réinitialisez son mot de passe")]
    Deactivated,
    #[error("mot de passe impossible à chiffrer : {0}")]
    Hash(String),
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
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<SavedAccount, AccountError> {
    match actor.rights_over(detail) {
        AccountRights::Full => {}
        AccountRights::OwnMembershipsOnly => return Err(AccountError::Shared(actor.active_elsewhere(detail))),
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
        actor: actor.name().to_string(),
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
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), AccountError> {
    if actor.rights_over(detail) == AccountRights::None {
        return Err(AccountError::NotFound);
    }
    if !actor.scope().allows(uai) {
        return Err(AccountError::Shared(actor.active_elsewhere(detail)));
    }
    if !detail.memberships.iter().any(|m| m.active && &m.uai == uai) {
        return Err(AccountError::NotMember(uai.clone()));
    }
    let last = !detail.memberships.iter().any(|m| m.active && &m.uai != uai);
    let audit = NewAudit {
        at: now,
        actor: actor.name().to_string(),
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
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), AccountError> {
    match actor.rights_over(detail) {
        AccountRights::None => return Err(AccountError::NotFound),
        AccountRights::OwnMembershipsOnly => return Err(AccountError::Shared(actor.active_elsewhere(detail))),
        AccountRights::Full => {}
    }
    if detail.source == Source::Aaf {
        return Err(AccountError::FeedOwned);
    }
    if detail.deactivated_at.is_none() == active {
        return Err(AccountError::AlreadyThere(active));
    }
    let scope = actor.scope();
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
        actor: actor.name().to_string(),
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

/// A password an admin reset: shown once (and on a credential slip), never
/// stored in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordReset {
    pub login: String,
    pub password: String,
}

/// Gives the account a new generated password that its holder must change
/// at the next sign-in, audited (`password_reset`, without the password).
/// Full rights only: the password of an account shared with another
/// establishment is not this admin's to hand out. `version` as for
/// [`save_account`].
pub async fn reset_password<D: Accounts, R: rand::RngCore + rand::CryptoRng>(
    d: &D,
    detail: &AccountDetail,
    version: Option<DateTime<Utc>>,
    actor: &Actor,
    rng: &mut R,
    now: DateTime<Utc>,
) -> Result<PasswordReset, AccountError> {
    match actor.rights_over(detail) {
        AccountRights::None => return Err(AccountError::NotFound),
        AccountRights::OwnMembershipsOnly => return Err(AccountError::Shared(actor.active_elsewhere(detail))),
        AccountRights::Full => {}
    }
    if detail.deactivated_at.is_some() {
        return Err(AccountError::Deactivated);
    }
    let password = domain::password::generate(rng);
    let salt = domain::password::salt(rng);
    let hash = domain::password::hash(&password, domain::password::SecretOrigin::Generated, &salt)
        .map_err(|e| AccountError::Hash(e.to_string()))?;
    let audit = NewAudit {
        at: now,
        actor: actor.name().to_string(),
        action: "password_reset".into(),
        target: detail.user.sync_key.clone(),
        details: serde_json::json!({ "login": detail.user.login }),
    };
    let version = version.unwrap_or(detail.updated_at);
    if d.write_password(detail.user.id, version, &hash, true, &audit, now)
        .await?
    {
        Ok(PasswordReset {
            login: detail.user.login.clone(),
            password,
        })
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
) -> Result<Result<i64, SignInFailure>, StoreError> {
    let account = match checked_account(d, login, password, from, now).await? {
        Ok(account) => account,
        Err(failure) => return Ok(Err(failure)),
    };
    d.record_sign_in(account.id, now).await?;
    Ok(Ok(account.id))
}

/// How many failed sign-ins are allowed, per login and per address, within
/// a window: the counts live in the database, so every server shares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub window_minutes: i64,
    pub per_login: i64,
    /// Higher: a school's pupils may share one public address.
    pub per_address: i64,
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle {
            window_minutes: 15,
            per_login: 5,
            per_address: 50,
        }
    }
}

/// [`sign_in`] behind the [`Throttle`]: refused while the login or the
/// address has had too many failures within the window; a failure counts
/// for both, a success clears the login's count. The people's counts are
/// kept apart from the administrators' (`personne:`, `adresse:` keys).
pub async fn throttled_sign_in<D: Accounts + store::web::WebDirectory>(
    d: &D,
    login: &str,
    password: &str,
    from: IpAddr,
    throttle: Throttle,
    now: DateTime<Utc>,
) -> Result<Result<i64, SignInFailure>, StoreError> {
    Ok(throttled_account(d, login, password, from, throttle, now)
        .await?
        .map(|account| account.id))
}

/// [`throttled_sign_in`], giving the account read (the CAS sign-in goes on
/// with it without reading it again).
pub(crate) async fn throttled_account<D: Accounts + store::web::WebDirectory>(
    d: &D,
    login: &str,
    password: &str,
    from: IpAddr,
    throttle: Throttle,
    now: DateTime<Utc>,
) -> Result<Result<store::accounts::SignInAccount, SignInFailure>, StoreError> {
    let by_login = format!("personne:{}", login.trim().to_lowercase());
    let by_address = format!("adresse:{from}");
    let since = now - chrono::Duration::minutes(throttle.window_minutes);
    let failed = d.failed_logins_since(&by_login, since).await?;
    if failed >= throttle.per_login || d.failed_logins_since(&by_address, since).await? >= throttle.per_address {
        return Ok(Err(SignInFailure::Throttled(throttle.window_minutes)));
    }
    let outcome = checked_account(d, login, password, from, now).await?;
    match &outcome {
        Ok(account) => {
            d.record_sign_in(account.id, now).await?;
            // Nothing to clear after a clean record (the common case).
            if failed > 0 {
                d.clear_failed_logins(&by_login).await?;
            }
        }
        Err(_) => {
            d.record_failed_login(&by_login, now).await?;
            d.record_failed_login(&by_address, now).await?;
        }
    }
    Ok(outcome)
}

/// The account behind a login and password that may sign in now from there.
async fn checked_account<D: Accounts>(
    d: &D,
    login: &str,
    password: &str,
    from: IpAddr,
    now: DateTime<Utc>,
) -> Result<Result<store::accounts::SignInAccount, SignInFailure>, StoreError> {
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
    Ok(Ok(account))
}

/// Why a person's password change was refused (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    /// The current password or the account's state (same words as a sign-in).
    #[error(transparent)]
    SignIn(SignInFailure),
    /// The new password breaks the policy: the sentence to show by the field.
    #[error("{0}")]
    Policy(String),
    /// Changed meanwhile (an admin's reset, another tab).
    #[error("votre mot de passe vient d'être changé ailleurs : reconnectez-vous")]
    Changed,
    #[error("mot de passe impossible à chiffrer : {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A person replaces their password (the first-sign-in change of a
/// distributed password, or any later one): the current one must sign in,
/// the new one follows [`domain::password::check_chosen`] and is stored with
/// the full Argon2id parameters; `must_change_password` is cleared. Audited
/// (`password_change`, by the person, never with a password).
#[allow(clippy::too_many_arguments)]
pub async fn change_password<D: Accounts, R: rand::RngCore + rand::CryptoRng>(
    d: &D,
    login: &str,
    current: &str,
    new: &str,
    confirm: &str,
    from: IpAddr,
    rng: &mut R,
    now: DateTime<Utc>,
) -> Result<(), PasswordChangeError> {
    let account = checked_account(d, login, current, from, now)
        .await?
        .map_err(PasswordChangeError::SignIn)?;
    let login = login.trim().to_lowercase();
    domain::password::check_chosen(new, confirm, &login, current).map_err(PasswordChangeError::Policy)?;
    let hash = chosen_hash(new, rng).map_err(PasswordChangeError::Hash)?;
    let audit = NewAudit {
        at: now,
        actor: login.clone(),
        action: "password_change".into(),
        target: login.clone(),
        details: serde_json::json!({ "login": login, "was_distributed": account.must_change_password }),
    };
    if d.replace_password_hash(account.id, &account.password_hash, &hash, false, Some(&audit))
        .await?
    {
        Ok(())
    } else {
        Err(PasswordChangeError::Changed)
    }
}

/// After a successful sign-in with a password the person chose: a hash
/// stored with weaker parameters than today's (an older setting, or an
/// imposed password of an import) is replaced by one at the full Argon2id
/// cost. A distributed password is left to the first-sign-in change. True
/// when the hash was upgraded.
pub async fn upgrade_hash<D: Accounts, R: rand::RngCore + rand::CryptoRng>(
    d: &D,
    login: &str,
    password: &str,
    rng: &mut R,
) -> Result<bool, StoreError> {
    let login = login.trim().to_lowercase();
    let Some(account) = d.sign_in_account(&login).await? else {
        return Ok(false);
    };
    // The cheap checks first: most hashes need nothing, and then no Argon2id runs.
    if account.must_change_password
        || !domain::password::needs_rehash(&account.password_hash)
        || !domain::password::verify(password, &account.password_hash)
    {
        return Ok(false);
    }
    upgrade_verified(d, &account, password, rng).await
}

/// [`upgrade_hash`] for an account whose password was just verified: no
/// read, no second Argon2id evaluation unless the hash must change.
pub(crate) async fn upgrade_verified<D: Accounts, R: rand::RngCore + rand::CryptoRng>(
    d: &D,
    account: &store::accounts::SignInAccount,
    password: &str,
    rng: &mut R,
) -> Result<bool, StoreError> {
    if account.must_change_password || !domain::password::needs_rehash(&account.password_hash) {
        return Ok(false);
    }
    let hash = chosen_hash(password, rng).map_err(StoreError::Corrupt)?;
    d.replace_password_hash(account.id, &account.password_hash, &hash, false, None)
        .await
}

/// A password a person chose, hashed at the full Argon2id cost.
fn chosen_hash<R: rand::RngCore + rand::CryptoRng>(password: &str, rng: &mut R) -> Result<String, String> {
    let salt = domain::password::salt(rng);
    domain::password::hash(password, domain::password::SecretOrigin::Chosen, &salt).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInFailure {
    #[error("identifiant ou mot de passe incorrect")]
    BadCredentials,
    /// Too many failed attempts for this login or from this address lately
    /// (counted for unknown logins too, so it says nothing of who exists).
    #[error("trop de tentatives de connexion : réessayez dans {0} minutes")]
    Throttled(i64),
    #[error(transparent)]
    Refused(SignInRefusal),
}
