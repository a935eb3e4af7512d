//! Probable duplicates between a local (CSV or manual) account and an account
//! of the academic feed (guide §7): list them, reconcile a pair, or dismiss
//! it. An establishment admin sees and acts on the pairs listed in one of
//! their establishments only; a system admin on any two keys (the action's
//! own rules then refuse what is not a pair).

use crate::{Actor, Error, Result};
use chrono::{DateTime, Utc};
use domain::duplicates::DuplicatePair;
use domain::Uai;
use store::admin::{self, AdminDirectory, Reconciliation};

/// The pairs the actor may see, most certain first; `establishment` narrows
/// the list to one of theirs.
pub async fn list<D: AdminDirectory>(d: &D, actor: &Actor, establishment: Option<&Uai>) -> Result<Vec<DuplicatePair>> {
    if let Some(uai) = establishment {
        if !actor.may_act_on(uai) {
            return Err(Error::NotFound);
        }
        return Ok(admin::duplicates(d, Some(uai)).await?);
    }
    if actor.is_system() {
        return Ok(admin::duplicates(d, None).await?);
    }
    let mut pairs: Vec<DuplicatePair> = Vec::new();
    for uai in &actor.admin().establishments {
        for pair in admin::duplicates(d, Some(uai)).await? {
            if !pairs
                .iter()
                .any(|p| p.local.id == pair.local.id && p.aaf.id == pair.aaf.id)
            {
                pairs.push(pair);
            }
        }
    }
    pairs.sort_by(|a, b| b.score.cmp(&a.score).then(a.local.last_name.cmp(&b.local.last_name)));
    Ok(pairs)
}

/// The scope check of reconciliation and dismissal: a pair outside the
/// actor's establishments does not exist for them.
async fn require_pair<D: AdminDirectory>(d: &D, actor: &Actor, local_key: &str, aaf_key: &str) -> Result<()> {
    if actor.is_system() {
        return Ok(());
    }
    match admin::pair_in_scope(d, local_key, aaf_key, &actor.scope()).await? {
        Some(_) => Ok(()),
        None => Err(Error::NotFound),
    }
}

/// "Même personne": the local account takes the feed's key, the feed's
/// account goes ([`store::admin::reconcile`]), audited under the actor's name.
pub async fn reconcile<D: AdminDirectory>(
    d: &D,
    actor: &Actor,
    local_key: &str,
    aaf_key: &str,
    now: DateTime<Utc>,
) -> Result<Reconciliation> {
    require_pair(d, actor, local_key, aaf_key).await?;
    Ok(admin::reconcile(d, local_key, aaf_key, actor.name(), now).await?)
}

/// "Pas un doublon": the pair is never proposed again. False when it was
/// already dismissed.
pub async fn dismiss<D: AdminDirectory>(
    d: &D,
    actor: &Actor,
    key_a: &str,
    key_b: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    require_pair(d, actor, key_a, key_b).await?;
    Ok(admin::dismiss(d, key_a, key_b, actor.name(), now).await?)
}
