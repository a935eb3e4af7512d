//! Directory administration beyond imports (SPEC §9, §11): manual creation,
//! duplicates, reconciliation and the audit log.
//!
//! # Why a second trait
//! [`AdminTx`] holds the reads and writes these actions need, next to the
//! import's [`DirectoryTx`] rather than inside it, so that the two grow apart
//! without touching each other. Each backend implements it in its own file
//! (`sqlite_admin.rs`, `postgres_admin.rs`); every rule is in the generic
//! functions below and in `domain`, written once.

use crate::{Directory, DirectoryTx, NewUser, Result, StoreError, UserRow};
use chrono::{DateTime, NaiveDate, Utc};
use domain::duplicates::{self, Candidate, DuplicatePair};
use domain::keys::{LoginAllocator, LoginPattern, SyncKey};
use domain::manual::ManualUser;
use domain::password::{self, HashError, SecretOrigin};
use domain::person::{ExistingMembership, GroupRef, Membership, Source};
use domain::values::{Email, Login};
use domain::{Profile, Structure, Uai};
use rand::{CryptoRng, RngCore};
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};
use std::future::Future;

/// An audit row to write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewAudit {
    pub at: DateTime<Utc>,
    pub actor: String,
    /// `import`, `aaf_import`, `reconcile`, `user_add`, `duplicate_dismiss`, `restore`, `purge`…
    pub action: String,
    /// Whom or what: a sync key, a file name, an import number.
    pub target: String,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: serde_json::Value,
}

/// A user with one of their active memberships, as duplicate detection reads it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CandidateRow {
    pub id: i64,
    pub sync_key: String,
    pub login: String,
    pub profile: String,
    pub source: String,
    pub last_name: String,
    pub first_name: String,
    pub birth_date: Option<NaiveDate>,
    pub email: Option<String>,
    pub uai: String,
}

impl CandidateRow {
    fn candidate(self) -> Result<Candidate> {
        Ok(Candidate {
            id: self.id,
            key: SyncKey::from_stored(self.sync_key),
            login: Login::from_stored(self.login),
            profile: self
                .profile
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("profil {}", self.profile)))?,
            source: crate::stored_word(&self.source)?,
            last_name: self.last_name,
            first_name: self.first_name,
            birth_date: self.birth_date,
            email: self.email.map(Email::from_stored),
            uai: Uai::parse(&self.uai).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        })
    }
}

/// The reads and writes of administration actions, inside one transaction.
pub trait AdminTx: DirectoryTx {
    /// Takes the write lock now (SQLite: one writer; PostgreSQL: the rows of
    /// these keys, `FOR UPDATE`), so that read-check-write cannot interleave.
    fn lock_users(&mut self, keys: &[String]) -> impl Future<Output = Result<()>> + Send;
    /// These establishments as the feed describes them (those that exist).
    fn structures(&mut self, uais: &[Uai]) -> impl Future<Output = Result<Vec<Structure>>> + Send;
    /// Creates the missing establishments and updates the others; a jointure
    /// moves to the establishment that now holds it.
    fn write_structures(&mut self, list: &[Structure], now: DateTime<Utc>) -> impl Future<Output = Result<()>> + Send;
    /// Keys of the active `aaf` accounts of these profiles with an active
    /// membership in these establishments (a Complet file's scope).
    fn aaf_scope(&mut self, uais: &[Uai], profiles: &[Profile]) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Keys of the active `aaf` parents of these accounts who have no active
    /// child left (read through the links of these children only).
    fn parents_without_child(&mut self, children: &[i64]) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Gives an account another key, source, protection and profile (reconciliation).
    fn reassign_identity(
        &mut self,
        id: i64,
        key: &SyncKey,
        source: Source,
        protected: bool,
        profile: Profile,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Remembers the key an account had before a reconciliation.
    fn keep_former_key(&mut self, key: &str, user_id: i64) -> impl Future<Output = Result<()>> + Send;
    /// Deletes an account; its memberships and group memberships go with it.
    fn delete_user(&mut self, id: i64) -> impl Future<Output = Result<()>> + Send;
    /// Accounts with an active membership in these establishments (all
    /// establishments that hold an AAF account when `None`: on demand only).
    fn duplicate_candidates(&mut self, uais: Option<&[Uai]>) -> impl Future<Output = Result<Vec<CandidateRow>>> + Send;
    /// Establishments where these accounts have an active membership.
    fn user_establishments(&mut self, ids: &[i64]) -> impl Future<Output = Result<Vec<Uai>>> + Send;
    fn dismissals(&mut self) -> impl Future<Output = Result<Vec<(i64, i64)>>> + Send;
    fn dismiss(
        &mut self,
        pair: (i64, i64),
        actor: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;
    fn insert_audit(&mut self, entry: &NewAudit) -> impl Future<Output = Result<()>> + Send;
    /// Adds the establishment, or renames it when its UAI is known.
    fn save_establishment(
        &mut self,
        establishment: &domain::Establishment,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn audit_entries(&mut self, limit: i64) -> impl Future<Output = Result<Vec<AuditEntry>>> + Send;
    /// The system admin's LVS profiles, per function code (`None`: not exported).
    fn lvs_overrides(&mut self) -> impl Future<Output = Result<Vec<(String, Option<String>)>>> + Send;
    /// Sets a function code's LVS profile (`None`: its people are not exported).
    fn save_lvs_profile(
        &mut self,
        code: &str,
        profile: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Gives a function code back the guide's profile.
    fn reset_lvs_profile(&mut self, code: &str) -> impl Future<Output = Result<()>> + Send;
}

/// A directory whose transactions can also run administration actions.
pub trait AdminDirectory: Directory {
    type AdminTx<'c>: AdminTx + 'c
    where
        Self: 'c;
    fn begin_admin(&self) -> impl Future<Output = Result<Self::AdminTx<'_>>> + Send;
    /// Every stored establishment's AAF jointure and UAI: how a feed without
    /// its EtabEducNat file names them (one row per establishment, a few
    /// thousand in an academy, never the accounts).
    fn structure_jointures(&self) -> impl Future<Output = Result<Vec<(String, Uai)>>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("aucun compte n'a la clé de synchronisation « {0} » : vérifiez-la (annuaire users search --last-name NOM affiche les clés)")]
    UnknownKey(String),
    #[error("les deux clés désignent le même compte : indiquez la clé du compte CSV puis celle du compte AAF")]
    SameAccount,
    #[error("les deux comptes viennent du flux AAF ({0}, {1}) : on ne réconcilie qu'un compte CSV avec un compte AAF ; un doublon dans le flux se signale à l'académie")]
    BothAaf(String, String),
    #[error("aucun des deux comptes ne vient du flux AAF ({0}, {1}) : la deuxième clé doit être celle du compte créé par le flux (PERSON.<chiffres>) ; pour deux comptes CSV, supprimez le doublon")]
    NoAaf(String, String),
    #[error("ordre inversé : {0} est le compte AAF et {1} le compte CSV ; relancez « annuaire reconcile {1} {0} »")]
    Swapped(String, String),
    #[error("profils incompatibles ({0} / {1}) : seuls un enseignant et un personnel administratif peuvent être réconciliés entre eux ; vérifiez qu'il s'agit de la même personne")]
    Profiles(String, String),
    #[error("la clé {key} existe déjà (compte {login}) : si c'est la même personne, rien à créer ; sinon imposez une autre clé avec --key, ou distinguez le prénom")]
    KeyTaken { key: String, login: String },
    #[error("le login {login} est déjà attribué (compte {key}) : choisissez-en un autre, ou omettez --login pour qu'il soit généré")]
    LoginTaken { login: String, key: String },
    #[error("établissement {0} inconnu : ajoutez-le avec « annuaire establishment add {0} NOM »")]
    UnknownEstablishment(Uai),
    #[error("{0}")]
    Invalid(String),
    /// A rule of the account's profile (its code says which).
    #[error("{}", .0.message)]
    Refused(domain::values::ValueError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// Creates an establishment, or renames a known one (a system admin's act,
/// from the web page or the CLI), audited, in one transaction. Returns its
/// former name when it was renamed. An establishment of the academic feed
/// takes the feed's name again at the feed's next run.
pub async fn save_establishment<D: AdminDirectory>(
    d: &D,
    establishment: &domain::Establishment,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, AdminError> {
    if establishment.name.trim().is_empty() {
        return Err(AdminError::Invalid(
            "le nom de l'établissement est vide : indiquez-le".to_string(),
        ));
    }
    let uais = [establishment.uai.clone()];
    let mut tx = d.begin_admin().await?;
    tx.lock_establishments(&uais).await?;
    let former = tx
        .establishment_names(&uais)
        .await?
        .into_iter()
        .next()
        .map(|(_, name)| name);
    if former.as_deref() == Some(establishment.name.as_str()) {
        return Ok(former);
    }
    tx.save_establishment(establishment, now).await?;
    tx.insert_audit(&NewAudit {
        at: now,
        actor: actor.to_string(),
        action: if former.is_some() {
            "establishment_rename"
        } else {
            "establishment_add"
        }
        .into(),
        target: establishment.uai.to_string(),
        details: serde_json::json!({ "name": establishment.name, "former_name": former }),
    })
    .await?;
    tx.commit().await?;
    Ok(former)
}

/// Writes one audit row in its own transaction (actions that have no other write).
pub async fn audit<D: AdminDirectory>(d: &D, entry: &NewAudit) -> Result<()> {
    let mut tx = d.begin_admin().await?;
    tx.insert_audit(entry).await?;
    tx.commit().await
}

/// The system admin's LVS profiles, per function code, as `domain::lvs` reads them.
pub async fn lvs_overrides<D: AdminDirectory>(d: &D) -> Result<domain::lvs::Overrides> {
    let mut tx = d.begin_admin().await?;
    Ok(tx.lvs_overrides().await?.into_iter().collect())
}

pub async fn audit_log<D: AdminDirectory>(d: &D, limit: i64) -> Result<Vec<AuditEntry>> {
    let mut tx = d.begin_admin().await?;
    tx.audit_entries(limit).await
}

/// What `users add` created; the password is shown once and stored nowhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddedUser {
    pub id: i64,
    pub key: SyncKey,
    pub login: Login,
    pub profile: Profile,
    /// The generated password, when none was imposed.
    pub password: Option<String>,
}

/// Creates one account by hand (source `manual`), in one audited transaction.
pub async fn add_user<D: AdminDirectory, R: RngCore + CryptoRng>(
    d: &D,
    user: &ManualUser,
    pattern: LoginPattern,
    min_password_len: usize,
    actor: &str,
    now: DateTime<Utc>,
    rng: &mut R,
) -> Result<AddedUser, AdminError> {
    user.check(min_password_len).map_err(AdminError::Refused)?;
    let key = user.key();
    let base = pattern.base(&user.attrs.first_name, &user.attrs.last_name);
    let uais: Vec<Uai> = user.establishment.iter().cloned().collect();

    let mut tx = d.begin_admin().await?;
    tx.lock_establishments(&uais).await?;
    let wanted_login = user.login.as_ref().map(|l| l.as_str().to_string());
    tx.lock_identities(
        std::slice::from_ref(&key.as_str().to_string()),
        &[wanted_login.clone().unwrap_or_else(|| base.clone())],
    )
    .await?;
    if let Some(uai) = &user.establishment {
        if tx.known_establishments(std::slice::from_ref(uai)).await?.is_empty() {
            return Err(AdminError::UnknownEstablishment(uai.clone()));
        }
    }
    if let Some(existing) = tx.users_by_keys(&[key.as_str().to_string()]).await?.into_iter().next() {
        return Err(AdminError::KeyTaken {
            key: key.to_string(),
            login: existing.login,
        });
    }
    let login = match &user.login {
        Some(l) => {
            if let Some((_, owner)) = tx.login_owners(&[l.as_str().to_string()]).await?.into_iter().next() {
                return Err(AdminError::LoginTaken {
                    login: l.to_string(),
                    key: owner,
                });
            }
            l.clone()
        }
        None => {
            let near = tx.logins_near(std::slice::from_ref(&base)).await?;
            LoginAllocator::new(near).allocate(&base)
        }
    };
    let (secret, origin, generated) = match &user.password {
        Some(p) => (p.clone(), SecretOrigin::Chosen, false),
        None => (password::generate(rng), SecretOrigin::Generated, true),
    };
    let salt = password::salt(rng);
    let hash = tokio::task::spawn_blocking(move || password::hash(&secret, origin, &salt).map(|h| (h, secret)))
        .await
        .map_err(|e| AdminError::Invalid(format!("calcul du mot de passe interrompu : {e}")))??;
    let (hash, secret) = hash;
    let ids = tx
        .insert_users(
            &[NewUser {
                key: &key,
                profile: user.profile,
                source: Source::Manual,
                protected: false,
                attrs: &user.attrs,
                login: &login,
                password_hash: hash,
                must_change_password: true,
            }],
            now,
        )
        .await?;
    let id = ids
        .first()
        .copied()
        .ok_or_else(|| StoreError::Corrupt("identifiant du compte créé non renvoyé".into()))?;
    if let Some(m) = user.membership() {
        tx.upsert_memberships(&[(id, m)]).await?;
    }
    let groups = user.groups();
    if !groups.is_empty() {
        tx.insert_groups(&groups).await?;
        let ids: Vec<(i64, i64)> = tx
            .groups_in(&uais)
            .await?
            .into_iter()
            .filter(|(_, g)| groups.contains(g))
            .map(|(gid, _)| (gid, id))
            .collect();
        tx.add_group_members(&ids).await?;
    }
    tx.insert_audit(&NewAudit {
        at: now,
        actor: actor.to_string(),
        action: "user_add".into(),
        target: key.to_string(),
        details: serde_json::json!({
            "id": id,
            "login": login,
            "profile": user.profile,
            "establishment": user.establishment,
            "password": if generated { "généré" } else { "imposé" },
        }),
    })
    .await?;
    tx.commit().await?;
    Ok(AddedUser {
        id,
        key,
        login,
        profile: user.profile,
        password: generated.then_some(secret),
    })
}

/// Probable duplicates, on demand: in one establishment, or in every
/// establishment that holds an AAF account.
pub async fn duplicates<D: AdminDirectory>(d: &D, establishment: Option<&Uai>) -> Result<Vec<DuplicatePair>> {
    let mut tx = d.begin_admin().await?;
    let only = establishment.map(std::slice::from_ref);
    let candidates = tx.duplicate_candidates(only).await?;
    pairs_from(&mut tx, candidates, None).await
}

/// Duplicates involving these accounts only: read in their establishments, so
/// the cost follows the import, not the directory.
pub async fn duplicates_for<T: AdminTx>(tx: &mut T, ids: &[i64]) -> Result<Vec<DuplicatePair>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let uais = tx.user_establishments(ids).await?;
    if uais.is_empty() {
        return Ok(Vec::new());
    }
    let candidates = tx.duplicate_candidates(Some(&uais)).await?;
    let only: HashSet<i64> = ids.iter().copied().collect();
    pairs_from(tx, candidates, Some(&only)).await
}

async fn pairs_from<T: AdminTx>(
    tx: &mut T,
    rows: Vec<CandidateRow>,
    only: Option<&HashSet<i64>>,
) -> Result<Vec<DuplicatePair>> {
    let candidates: Vec<Candidate> = rows.into_iter().map(CandidateRow::candidate).collect::<Result<_>>()?;
    let dismissed: HashSet<(i64, i64)> = tx.dismissals().await?.into_iter().collect();
    Ok(duplicates::find_pairs(&candidates, &dismissed, only))
}

/// The pair (local account, AAF account) as this scope sees it: found among
/// the duplicates of these two accounts only (read in their establishments,
/// whatever the size of the directory), and listed in at least one
/// establishment the scope covers. `None`: not a pair this admin may act on.
pub async fn pair_in_scope<D: AdminDirectory>(
    d: &D,
    local_key: &str,
    aaf_key: &str,
    scope: &domain::plan::AdminScope,
) -> Result<Option<DuplicatePair>> {
    let keys = [local_key.trim().to_string(), aaf_key.trim().to_string()];
    Ok(duplicates_for_keys(d, &keys).await?.into_iter().find(|p| {
        p.local.key.as_str() == keys[0]
            && p.aaf.key.as_str() == keys[1]
            && p.establishments.iter().any(|uai| scope.allows(uai))
    }))
}

/// "Pas un doublon": the pair is never proposed again.
pub async fn dismiss<D: AdminDirectory>(
    d: &D,
    key_a: &str,
    key_b: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<bool, AdminError> {
    let mut tx = d.begin_admin().await?;
    let keys = [key_a.trim().to_string(), key_b.trim().to_string()];
    tx.lock_users(&keys).await?;
    let rows = tx.users_by_keys(&keys).await?;
    let find = |k: &str| {
        rows.iter()
            .find(|r| r.sync_key == k)
            .ok_or_else(|| AdminError::UnknownKey(k.to_string()))
    };
    let (a, b) = (find(&keys[0])?, find(&keys[1])?);
    if a.id == b.id {
        return Err(AdminError::SameAccount);
    }
    let (a_id, b_id) = (a.id, b.id);
    let inserted = tx.dismiss(duplicates::pair_ids(a_id, b_id), actor, now).await?;
    if inserted {
        tx.insert_audit(&NewAudit {
            at: now,
            actor: actor.to_string(),
            action: "duplicate_dismiss".into(),
            target: format!("{} {}", keys[0], keys[1]),
            details: serde_json::json!({ "ids": [a_id, b_id] }),
        })
        .await?;
    }
    tx.commit().await?;
    Ok(inserted)
}

/// What a reconciliation did, for the CLI, the web page and the audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// The kept account: same id, login, password, memberships and groups.
    pub user_id: i64,
    pub login: String,
    pub previous_key: String,
    pub key: String,
    pub previous_profile: Profile,
    pub profile: Profile,
    /// The removed AAF account.
    pub removed_id: i64,
    pub removed_login: String,
    /// Establishments whose membership came over from the AAF account.
    pub memberships_moved: Vec<Uai>,
    pub groups_moved: usize,
}

/// The guide's three manual steps (§7) as one atomic, audited action: the CSV
/// account takes the AAF key, source and protection; the AAF account goes.
///
/// Teacher and staff accounts may be reconciled with each other (one person
/// whose CSV file chose the other profile); the account takes the feed's
/// profile, which the next feed would set anyway. Any other profile mismatch
/// is refused, as are two AAF or two non-AAF accounts.
pub async fn reconcile<D: AdminDirectory>(
    d: &D,
    local_key: &str,
    aaf_key: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Reconciliation, AdminError> {
    let keys = [local_key.trim().to_string(), aaf_key.trim().to_string()];
    let mut tx = d.begin_admin().await?;
    tx.lock_users(&keys).await?;
    let rows = tx.users_by_keys(&keys).await?;
    let find = |k: &str| -> Result<UserRow, AdminError> {
        rows.iter()
            .find(|r| r.sync_key == k)
            .cloned()
            .ok_or_else(|| AdminError::UnknownKey(k.to_string()))
    };
    let local = find(&keys[0])?;
    let aaf = find(&keys[1])?;
    if local.id == aaf.id {
        return Err(AdminError::SameAccount);
    }
    match (local.source()?, aaf.source()?) {
        (Source::Aaf, Source::Aaf) => return Err(AdminError::BothAaf(keys[0].clone(), keys[1].clone())),
        (Source::Aaf, _) => return Err(AdminError::Swapped(keys[0].clone(), keys[1].clone())),
        (_, Source::Aaf) => {}
        _ => return Err(AdminError::NoAaf(keys[0].clone(), keys[1].clone())),
    }
    let (local_profile, aaf_profile) = (local.profile()?, aaf.profile()?);
    let compatible = local_profile == aaf_profile || (local_profile.is_staff_family() && aaf_profile.is_staff_family());
    if !compatible {
        return Err(AdminError::Profiles(
            local_profile.label().to_string(),
            aaf_profile.label().to_string(),
        ));
    }

    let ids = [local.id, aaf.id];
    let memberships = tx.memberships_of(&ids).await?;
    let groups = tx.groups_of(&ids).await?;
    let local_memberships: Vec<&ExistingMembership> = memberships
        .iter()
        .filter(|(id, _)| *id == local.id)
        .map(|(_, m)| m)
        .collect();
    // Memberships the CSV account lacks (or has deactivated) come from the AAF one.
    let moved: Vec<Membership> = memberships
        .iter()
        .filter(|(id, m)| *id == aaf.id && m.active)
        .filter(|(_, m)| !local_memberships.iter().any(|l| l.uai == m.uai && l.active))
        .map(|(_, m)| Membership {
            uai: m.uai.clone(),
            role: m.role.clone(),
        })
        .collect();
    let local_groups: BTreeSet<&GroupRef> = groups
        .iter()
        .filter(|(id, _)| *id == local.id)
        .map(|(_, g)| g)
        .collect();
    let new_groups: Vec<&GroupRef> = groups
        .iter()
        .filter(|(id, g)| *id == aaf.id && !local_groups.contains(g))
        .map(|(_, g)| g)
        .collect();
    let group_uais: Vec<Uai> = new_groups
        .iter()
        .map(|g| g.uai.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let group_ids: Vec<(i64, i64)> = tx
        .groups_in(&group_uais)
        .await?
        .into_iter()
        .filter(|(_, g)| new_groups.contains(&g))
        .map(|(gid, _)| (gid, local.id))
        .collect();

    // Step 2 before step 3: the key is unique, so the AAF account goes first.
    tx.delete_user(aaf.id).await?;
    let new_key = SyncKey::from_stored(aaf.sync_key.clone());
    tx.reassign_identity(local.id, &new_key, Source::Aaf, true, aaf_profile, now)
        .await?;
    tx.keep_former_key(&local.sync_key, local.id).await?;
    tx.upsert_memberships(&moved.iter().map(|m| (local.id, m.clone())).collect::<Vec<_>>())
        .await?;
    tx.add_group_members(&group_ids).await?;

    let result = Reconciliation {
        user_id: local.id,
        login: local.login.clone(),
        previous_key: local.sync_key.clone(),
        key: aaf.sync_key.clone(),
        previous_profile: local_profile,
        profile: aaf_profile,
        removed_id: aaf.id,
        removed_login: aaf.login.clone(),
        memberships_moved: moved.iter().map(|m| m.uai.clone()).collect(),
        groups_moved: group_ids.len(),
    };
    tx.insert_audit(&NewAudit {
        at: now,
        actor: actor.to_string(),
        action: "reconcile".into(),
        target: aaf.sync_key.clone(),
        details: serde_json::to_value(&result).unwrap_or_default(),
    })
    .await?;
    tx.commit().await?;
    Ok(result)
}

pub(crate) fn audit_row<R: sqlx::Row>(r: &R) -> Result<AuditEntry>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: sqlx::Type<R::Database> + for<'a> sqlx::Decode<'a, R::Database>,
    String: sqlx::Type<R::Database> + for<'a> sqlx::Decode<'a, R::Database>,
    DateTime<Utc>: sqlx::Type<R::Database> + for<'a> sqlx::Decode<'a, R::Database>,
{
    let details: String = r.try_get("details")?;
    Ok(AuditEntry {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        details: serde_json::from_str(&details).unwrap_or(serde_json::Value::String(details)),
    })
}

/// Duplicates involving the accounts of these keys (after a CSV import: the
/// accounts it created or updated), read in their establishments only.
pub async fn duplicates_for_keys<D: AdminDirectory>(d: &D, keys: &[String]) -> Result<Vec<DuplicatePair>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = d.begin_admin().await?;
    let ids: Vec<i64> = tx.users_by_keys(keys).await?.into_iter().map(|u| u.id).collect();
    duplicates_for(&mut tx, &ids).await
}
