//! The audit log: every act of an admin on the directory, read by the
//! system admins.

use crate::{Actor, Result};
use store::admin::{self, AdminDirectory, AuditEntry};

/// The `limit` latest entries, newest first.
pub async fn log<D: AdminDirectory>(d: &D, actor: &Actor, limit: i64) -> Result<Vec<AuditEntry>> {
    actor.require_system("le journal d'audit")?;
    Ok(admin::audit_log(d, limit).await?)
}
