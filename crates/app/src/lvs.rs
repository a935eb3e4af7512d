//! The export to La Vie Scolaire (guide §6): an establishment's teachers and
//! staff with their LVS profile ([`domain::lvs`]), for the admins of that
//! establishment.

use crate::{Actor, Error, Result};
use domain::lvs::{LvsCandidate, LvsRow};
use domain::{Profile, Uai};
use store::Directory;

/// What the export gives: the people, ordered by name, and how many of the
/// establishment's teachers and staff were left out (TOS, no LVS profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvsExport {
    pub rows: Vec<LvsRow>,
    pub left_out: usize,
}

/// The LVS export of one establishment: refused as unknown when it is
/// outside the actor's establishments, as every other per-establishment act.
pub async fn export<D: Directory>(d: &D, actor: &Actor, uai: &Uai) -> Result<LvsExport> {
    if !actor.may_act_on(uai) || !d.list_establishments().await?.iter().any(|e| &e.uai == uai) {
        return Err(Error::NotFound);
    }
    let mut people = Vec::new();
    for profile in [Profile::Enseignant, Profile::Administratif] {
        people.extend(d.export_users(uai, profile).await?.into_iter().map(|u| (profile, u)));
    }
    people.sort_by(|(_, a), (_, b)| {
        (&a.last_name, &a.first_name, &a.sync_key).cmp(&(&b.last_name, &b.first_name, &b.sync_key))
    });
    let (rows, left_out) = domain::lvs::rows(people.iter().map(|(profile, u)| LvsCandidate {
        sync_key: &u.sync_key,
        login: &u.login,
        last_name: &u.last_name,
        first_name: &u.first_name,
        profile: *profile,
        function_code: u.function_code.as_deref(),
    }));
    Ok(LvsExport { rows, left_out })
}
