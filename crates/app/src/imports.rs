//! Past imports and the directory's lists: read an import of the history,
//! restore what a Complet import deactivated, export an establishment's
//! people. An establishment admin sees the imports they ran (a system admin
//! all of them) and restores or exports only in their establishments.

use crate::{Actor, Error, Result};
use chrono::{DateTime, Utc};
use domain::{Profile, Uai};
use store::admin::{AdminDirectory, NewAudit};
use store::history::{History, ImportEntry};
use store::Directory;

/// One import of the history, if the actor may see it.
pub async fn entry<D: History>(d: &D, actor: &Actor, id: i64) -> Result<ImportEntry> {
    if !d.may_view_import(id, &actor.admin().history_viewer()).await? {
        return Err(Error::NotFound);
    }
    d.import_entry(id).await?.ok_or(Error::NotFound)
}

/// A restore brings accounts back in every establishment the import touched:
/// the actor must be an admin of all of them.
pub fn may_restore(actor: &Actor, entry: &ImportEntry) -> bool {
    actor.may_act_on_all(&entry.establishments)
}

/// Brings back what a Complet import deactivated, audited; returns the
/// number of accounts and memberships reactivated.
pub async fn restore<D: Directory + History + AdminDirectory>(
    d: &D,
    actor: &Actor,
    id: i64,
    now: DateTime<Utc>,
) -> Result<u64> {
    let entry = entry(d, actor, id).await?;
    if !may_restore(actor, &entry) {
        return Err(Error::NotFound);
    }
    let restored = d.restore_import(id, now).await?;
    store::admin::audit(
        d,
        &NewAudit {
            at: now,
            actor: actor.name().to_string(),
            action: "restore".into(),
            target: format!("import n° {id}"),
            details: serde_json::json!({ "accounts": restored }),
        },
    )
    .await?;
    Ok(restored)
}

/// The people of one profile in one of the actor's establishments, as a CSV
/// file the import reads back ([`store::service::export_csv`]): the number
/// of people and the file's bytes.
pub async fn export<D: Directory>(d: &D, actor: &Actor, uai: &Uai, profile: Profile) -> Result<(usize, Vec<u8>)> {
    if !actor.may_act_on(uai) || !d.list_establishments().await?.iter().any(|e| &e.uai == uai) {
        return Err(Error::NotFound);
    }
    Ok(store::service::export_csv(d, uai, profile, &actor.scope()).await?)
}
