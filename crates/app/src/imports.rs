//! Imports and what follows them: preview and run a CSV import on the
//! actor's behalf, read an import of the history, restore what a Complet
//! import deactivated, export an establishment's people. An establishment
//! admin imports, restores and exports only in their establishments, and
//! sees the imports they ran (a system admin all of them).

use crate::{Actor, Error, Result};
use chrono::{DateTime, Utc};
use domain::{Profile, Uai};
use store::aaf::{AafError, AafOutcome, AafRequest, FeedFile};
use store::admin::{AdminDirectory, NewAudit};
use store::history::{History, ImportEntry};
use store::service::{self, Clock, ImportError, ImportOutcome, ImportRequest, NoProgress, Progress};
use store::Directory;

/// Stamps who runs an import on its request: the actor's scope bounds what
/// the plan may touch (a line of another establishment is refused, a chosen
/// establishment outside it refuses the file), and the history records their
/// name, door and account; the end-of-import notice goes to their address
/// unless the request names one.
pub fn on_behalf(actor: &Actor, request: &mut ImportRequest) {
    request.scope = actor.scope();
    request.actor = actor.name().to_string();
    request.channel = actor.channel();
    request.admin_id = actor.admin_id();
    if request.notify.is_none() {
        request.notify = actor.admin().email.clone();
    }
}

/// Steps 3 and 4: the plan of the file as the directory stands, written
/// nowhere and without any lock, so it answers while another import writes.
pub async fn preview<D: Directory>(
    d: &D,
    actor: &Actor,
    bytes: &[u8],
    request: &ImportRequest,
    clock: &dyn Clock,
) -> Result<ImportOutcome, ImportError> {
    preview_observed(d, actor, bytes, request, clock, &NoProgress).await
}

/// [`preview`], its stages reported to `progress` (the benchmark times them).
pub async fn preview_observed<D: Directory>(
    d: &D,
    actor: &Actor,
    bytes: &[u8],
    request: &ImportRequest,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<ImportOutcome, ImportError> {
    let mut request = request.clone();
    on_behalf(actor, &mut request);
    request.dry_run = true;
    let mut rng = domain::password::os_rng();
    service::run_import(d, bytes, &request, clock, &mut rng, progress).await
}

/// The import itself, all or nothing, with its history line (also for a
/// refused or failed file): the outcome and the history line's id.
pub async fn run<D: Directory + History + AdminDirectory, R: rand::RngCore + rand::CryptoRng>(
    d: &D,
    actor: &Actor,
    bytes: &[u8],
    request: &ImportRequest,
    clock: &dyn Clock,
    rng: &mut R,
    progress: &dyn Progress,
) -> (Result<ImportOutcome, ImportError>, Option<i64>) {
    let mut request = request.clone();
    on_behalf(actor, &mut request);
    service::run_recorded_import(d, bytes, &request, clock, rng, progress).await
}

/// An AAF feed (one or several files, one transaction), with its history
/// line: the academy's accounts are the whole ENT's, so only a system admin
/// (the command line's operator, the server's schedule) imports them. The
/// outer error is that refusal; the inner result is the import's.
pub async fn run_feed<D: AdminDirectory + History, R: rand::RngCore + rand::CryptoRng>(
    d: &D,
    actor: &Actor,
    files: &[FeedFile],
    request: &AafRequest,
    clock: &dyn Clock,
    rng: &mut R,
) -> Result<(Result<AafOutcome, AafError>, Option<i64>)> {
    actor.require_system("l'import du flux académique")?;
    let request = AafRequest {
        actor: actor.name().to_string(),
        channel: actor.channel(),
        ..request.clone()
    };
    Ok(store::aaf::run_recorded_aaf_import(d, files, &request, clock, rng).await)
}

/// An establishment the directory knows and the actor acts on; anything
/// else is `NotFound`, so that nothing is told about other establishments.
pub(crate) async fn require_establishment<D: Directory>(d: &D, actor: &Actor, uai: &Uai) -> Result<()> {
    if !actor.may_act_on(uai) || !d.list_establishments().await?.iter().any(|e| &e.uai == uai) {
        return Err(Error::NotFound);
    }
    Ok(())
}

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
    require_establishment(d, actor, uai).await?;
    Ok(store::service::export_csv(d, uai, profile, &actor.scope()).await?)
}
