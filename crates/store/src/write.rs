//! The one way an import writes, whatever planned it (a CSV file or an AAF
//! run): passwords hashed off the runtime, then [`write_changes`] inside the
//! import's transaction, from the [`Changeset`] both planners produce: the
//! order of the writes, the group ids and the deactivations are decided here
//! once.

use crate::service::{Operation, Progress};
use crate::{DirectoryTx, NewUser, StoreError, StoredLink, UserUpdate};
use chrono::{DateTime, Utc};
use domain::changeset::{Changeset, Create};
use domain::password::{self, HashError, SecretOrigin};
use domain::person::{GroupRef, Source};
use domain::{Profile, Uai};
use rand::{CryptoRng, RngCore};
use std::collections::{BTreeSet, HashMap};

/// A created account's password: cleartext for the result file, hash for the base.
pub struct Secret {
    pub cleartext: String,
    pub hash: String,
    pub origin: SecretOrigin,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("calcul des mots de passe interrompu : {0}")]
    Join(String),
}

/// Hashes on every core, off the async runtime, in chunks so that progress
/// shows: one secret per account to create, its imposed password when there
/// is one, a generated one otherwise.
pub(crate) async fn hash_secrets<R: RngCore + CryptoRng>(
    creates: &[Create],
    rng: &mut R,
    progress: &dyn Progress,
) -> Result<Vec<Secret>, SecretsError> {
    let jobs: Vec<(String, SecretOrigin, [u8; 16])> = creates
        .iter()
        .map(|c| {
            let (secret, origin) = match &c.imposed_password {
                Some(p) => (p.clone(), SecretOrigin::Chosen),
                None => (password::generate(rng), SecretOrigin::Generated),
            };
            (secret, origin, password::salt(rng))
        })
        .collect();
    let total = jobs.len();
    let mut secrets = Vec::with_capacity(total);
    let chunk_size = 2_000;
    let mut remaining = jobs.into_iter();
    loop {
        let chunk: Vec<(String, SecretOrigin, [u8; 16])> = remaining.by_ref().take(chunk_size).collect();
        if chunk.is_empty() {
            break;
        }
        let (chunk, hashes) = tokio::task::spawn_blocking(move || {
            let refs: Vec<(&str, SecretOrigin, [u8; 16])> =
                chunk.iter().map(|(s, o, salt)| (s.as_str(), *o, *salt)).collect();
            password::hash_all(&refs).map(|hashes| (chunk, hashes))
        })
        .await
        .map_err(|e| SecretsError::Join(e.to_string()))??;
        for ((cleartext, origin, _), hash) in chunk.into_iter().zip(hashes) {
            secrets.push(Secret {
                cleartext,
                hash,
                origin,
            });
        }
        progress.step(Operation::Passwords, secrets.len(), total);
    }
    Ok(secrets)
}

/// Who the accounts an import creates belong to.
#[derive(Debug, Clone, Copy)]
pub struct Ownership {
    pub source: Source,
    /// AAF accounts are protected: only the feed changes their identity.
    pub protected: bool,
}

/// What [`write_changes`] wrote that its caller needs to know.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// The ids of the created accounts, in the order of the creates.
    pub created_ids: Vec<i64>,
    /// The links written (both persons found), as indexes in `links`.
    pub links: Vec<usize>,
    /// Rows inserted: the accounts created and the links new or changed.
    pub rows_added: usize,
}

/// Writes what a plan decided ([`Changeset`]) inside the import's open
/// transaction; `secrets` holds one hashed password per creation, in order.
pub async fn write_changes<T: DirectoryTx>(
    tx: &mut T,
    changes: Changeset<'_>,
    owner: Ownership,
    secrets: &[Secret],
    import_id: i64,
    now: DateTime<Utc>,
    progress: &dyn Progress,
) -> Result<Written, StoreError> {
    if secrets.len() != changes.creates.len() {
        return Err(StoreError::Corrupt(format!(
            "{} mots de passe pour {} comptes à créer",
            secrets.len(),
            changes.creates.len()
        )));
    }
    tx.insert_groups(changes.new_groups).await?;
    let group_uais: Vec<Uai> = changes
        .creates
        .iter()
        .flat_map(|c| &c.groups)
        .chain(
            changes
                .updates
                .iter()
                .flat_map(|u| u.groups.iter().chain(&u.groups_left)),
        )
        .map(|g| g.uai.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let group_ids: HashMap<GroupRef, i64> = tx
        .groups_in(&group_uais)
        .await?
        .into_iter()
        .map(|(id, g)| (g, id))
        .collect();
    let group_id = |g: &GroupRef| {
        group_ids
            .get(g)
            .copied()
            .ok_or_else(|| StoreError::Corrupt(format!("groupe {} absent après création", g.name)))
    };
    progress.step(Operation::Groups, changes.new_groups.len(), changes.new_groups.len());

    let new_users: Vec<NewUser<'_>> = changes
        .creates
        .iter()
        .zip(secrets)
        .map(|(c, secret)| NewUser {
            key: &c.key,
            profile: c.profile,
            source: owner.source,
            protected: owner.protected,
            attrs: &c.attrs,
            login: &c.login,
            password_hash: secret.hash.clone(),
            must_change_password: true,
        })
        .collect();
    let ids = tx.insert_users(&new_users, now).await?;
    let updates: Vec<UserUpdate<'_>> = changes
        .updates
        .iter()
        .map(|u| UserUpdate {
            id: u.user_id,
            attrs: &u.attrs,
            reactivate: u.reactivate,
        })
        .collect();
    tx.update_users(&updates, now).await?;
    let profiles: Vec<(i64, Profile)> = changes
        .updates
        .iter()
        .filter_map(|u| u.profile.map(|p| (u.user_id, p)))
        .collect();
    tx.set_profiles(&profiles, now).await?;
    let deactivated_accounts: Vec<i64> = changes
        .deactivations
        .iter()
        .filter(|d| d.whole_account)
        .map(|d| d.user_id)
        .collect();
    tx.deactivate_users(&deactivated_accounts, import_id, now).await?;
    let user_ops = ids.len() + updates.len() + changes.deactivations.len();
    progress.step(Operation::Users, user_ops, user_ops);

    let mut memberships = Vec::new();
    let mut group_members = Vec::new();
    let accounts = changes
        .creates
        .iter()
        .zip(&ids)
        .map(|(c, id)| (*id, &c.memberships, &c.groups))
        .chain(changes.updates.iter().map(|u| (u.user_id, &u.memberships, &u.groups)));
    for (id, account_memberships, groups) in accounts {
        memberships.extend(account_memberships.iter().map(|m| (id, m.clone())));
        for g in groups {
            group_members.push((group_id(g)?, id));
        }
    }
    tx.upsert_memberships(&memberships).await?;
    tx.add_group_members(&group_members).await?;
    let mut groups_left = Vec::new();
    for u in changes.updates {
        for g in &u.groups_left {
            groups_left.push((group_id(g)?, u.user_id));
        }
    }
    tx.remove_group_members(&groups_left).await?;
    let ended: Vec<(i64, Uai)> = changes
        .updates
        .iter()
        .flat_map(|u| u.left.iter().map(move |uai| (u.user_id, uai.clone())))
        .chain(
            changes
                .deactivations
                .iter()
                .flat_map(|d| d.establishments.iter().map(move |uai| (d.user_id, uai.clone()))),
        )
        .collect();
    tx.deactivate_memberships(&ended, import_id, now).await?;
    let (links, links_changed) = write_links(tx, &changes, &ids).await?;
    let membership_ops = memberships.len() + group_members.len() + groups_left.len() + ended.len();
    progress.step(Operation::Memberships, membership_ops, membership_ops);
    Ok(Written {
        rows_added: ids.len() + links_changed,
        created_ids: ids,
        links,
    })
}

/// The plan names linked persons by key. The ids of the persons the run
/// wrote or compared are known here (`created_ids` in the order of the
/// creates); only the other ends (a stored person the run does not mention)
/// are read back, by key. A link is written when both persons are found.
/// Compared with the stored links, only what differs is written: a feed
/// that states the same families again writes nothing. Returns the indexes
/// of the links written (or already stored as they are), and how many were
/// new or changed.
async fn write_links<T: DirectoryTx>(
    tx: &mut T,
    changes: &Changeset<'_>,
    created_ids: &[i64],
) -> Result<(Vec<usize>, usize), StoreError> {
    if changes.links.is_empty() && changes.links_replaced.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let mut ids: HashMap<String, i64> = changes
        .creates
        .iter()
        .map(|c| &c.key)
        .zip(created_ids.iter().copied())
        .chain(changes.updates.iter().map(|u| (&u.key, u.user_id)))
        .chain(changes.unchanged.iter().map(|u| (&u.key, u.user_id)))
        .chain(changes.deactivations.iter().map(|d| (&d.key, d.user_id)))
        .map(|(k, id)| (k.as_str().to_string(), id))
        .collect();
    let others: Vec<String> = changes
        .links
        .iter()
        .flat_map(|l| [&l.parent, &l.child])
        .chain(changes.links_replaced)
        .map(|k| k.as_str().to_string())
        .filter(|k| !ids.contains_key(k))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !others.is_empty() {
        ids.extend(tx.users_by_keys(&others).await?.into_iter().map(|r| (r.sync_key, r.id)));
    }
    let id = |k: &domain::keys::SyncKey| ids.get(k.as_str()).copied();
    let replaced: BTreeSet<i64> = changes.links_replaced.iter().filter_map(id).collect();
    let (found, links): (Vec<usize>, Vec<StoredLink>) = changes
        .links
        .iter()
        .enumerate()
        .filter_map(|(at, l)| {
            Some((
                at,
                StoredLink {
                    parent_id: id(&l.parent)?,
                    child_id: id(&l.child)?,
                    relation: l.relation.clone(),
                    legal_guardian: l.legal_guardian,
                    financial: l.financial,
                    contact: l.contact,
                },
            ))
        })
        .unzip();
    let persons: Vec<i64> = replaced
        .iter()
        .copied()
        .chain(links.iter().flat_map(|l| [l.parent_id, l.child_id]))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let stored: HashMap<(i64, i64), StoredLink> = tx
        .links_of(&persons)
        .await?
        .into_iter()
        .map(|l| ((l.parent_id, l.child_id), l))
        .collect();
    let wanted: BTreeSet<(i64, i64)> = links.iter().map(|l| (l.parent_id, l.child_id)).collect();
    // A whole record replaces its person's links: the ones no side states any more end.
    let removed: Vec<(i64, i64)> = stored
        .keys()
        .filter(|pair| (replaced.contains(&pair.0) || replaced.contains(&pair.1)) && !wanted.contains(pair))
        .copied()
        .collect();
    let changed: Vec<StoredLink> = links
        .into_iter()
        .filter(|l| stored.get(&(l.parent_id, l.child_id)) != Some(l))
        .collect();
    tx.write_links(&removed, &changed).await?;
    Ok((found, changed.len()))
}
