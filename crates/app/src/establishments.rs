//! The establishments of the directory: created and renamed by a system
//! admin (an establishment admin works inside the ones given to them).

use crate::{Actor, Result};
use chrono::{DateTime, Utc};
use store::admin::{self, AdminDirectory};

/// Creates an establishment or renames a known one, audited; returns its
/// former name when it had one ([`store::admin::save_establishment`]).
pub async fn save<D: AdminDirectory>(
    d: &D,
    actor: &Actor,
    establishment: &domain::Establishment,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    actor.require_system("ajouter ou renommer un établissement")?;
    Ok(admin::save_establishment(d, establishment, actor.name(), now).await?)
}
