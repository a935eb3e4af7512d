//! The export to La Vie Scolaire (guide §6): an establishment's teachers and
//! staff with their LVS profile ([`domain::lvs`]), for the admins of that
//! establishment; and the table of profiles per function code, which every
//! admin reads and only a system admin changes (for the whole ENT).

use crate::{Actor, Result};
use chrono::{DateTime, Utc};
use domain::lvs::{LvsCandidate, LvsRow, MappingLine};
use domain::{Profile, Uai};
use store::admin::{AdminDirectory, AdminError, AdminTx, NewAudit};
use store::DirectoryTx;

/// What the export gives: the people, ordered by name, and how many of the
/// establishment's teachers and staff were left out (TOS, no LVS profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvsExport {
    pub rows: Vec<LvsRow>,
    pub left_out: usize,
}

/// The LVS export of one establishment: refused as unknown when it is
/// outside the actor's establishments, as every other per-establishment act.
pub async fn export<D: AdminDirectory>(d: &D, actor: &Actor, uai: &Uai) -> Result<LvsExport> {
    crate::imports::require_establishment(d, actor, uai).await?;
    let mut people = Vec::new();
    for profile in [Profile::Enseignant, Profile::Administratif] {
        people.extend(d.export_users(uai, profile).await?.into_iter().map(|u| (profile, u)));
    }
    people.sort_by(|(_, a), (_, b)| {
        (&a.last_name, &a.first_name, &a.sync_key).cmp(&(&b.last_name, &b.first_name, &b.sync_key))
    });
    let overrides = store::admin::lvs_overrides(d).await?;
    let (rows, left_out) = domain::lvs::rows(
        people.iter().map(|(profile, u)| LvsCandidate {
            sync_key: &u.sync_key,
            login: &u.login,
            last_name: &u.last_name,
            first_name: &u.first_name,
            profile: *profile,
            function_code: u.function_code.as_deref(),
        }),
        &overrides,
    );
    Ok(LvsExport { rows, left_out })
}

/// The 60 function codes with the LVS profile in force (any admin reads it:
/// it says what their export will hold).
pub async fn mapping<D: AdminDirectory>(d: &D) -> Result<Vec<MappingLine>> {
    Ok(domain::lvs::mapping(&store::admin::lvs_overrides(d).await?))
}

/// How the journal names a code whose people are not exported.
const NOT_EXPORTED: &str = "non exporté";

/// What a system admin sets for one function code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LvsChoice {
    /// This profile (a label of LVS, 40 characters at most).
    Profile(String),
    /// Its people are not exported to LVS.
    NotExported,
    /// Back to the guide's profile (`fonctions.csv`).
    Guide,
}

/// Changes the LVS profile of one function code for the whole ENT: system
/// admins only, audited (`lvs_profile`). Returns the line as it now stands.
pub async fn set_profile<D: AdminDirectory>(
    d: &D,
    actor: &Actor,
    code: &str,
    choice: LvsChoice,
    now: DateTime<Utc>,
) -> Result<MappingLine> {
    actor.require_system("la correspondance des profils LVS")?;
    let function = domain::functions::lookup(code).ok_or_else(|| {
        AdminError::Invalid(format!(
            "fonction « {} » inconnue : utilisez un code de fonctions.csv (DIR, EDU, DOC, TOS…) ; « annuaire lvs profiles » les liste",
            code.trim()
        ))
    })?;
    let mut tx = d.begin_admin().await?;
    let stored = match &choice {
        LvsChoice::Profile(raw) => {
            let label = domain::lvs::profile_label(raw).map_err(AdminError::Invalid)?;
            tx.save_lvs_profile(function.code, Some(&label), actor.name(), now)
                .await?;
            Some(label)
        }
        LvsChoice::NotExported => {
            tx.save_lvs_profile(function.code, None, actor.name(), now).await?;
            None
        }
        LvsChoice::Guide => {
            tx.reset_lvs_profile(function.code).await?;
            function.lvs_profile.map(str::to_string)
        }
    };
    tx.insert_audit(&NewAudit {
        at: now,
        actor: actor.name().to_string(),
        action: "lvs_profile".into(),
        target: function.code.into(),
        // In words for the journal: "non exporté" rather than a null.
        details: serde_json::json!({
            "lvs_profile": stored.as_deref().unwrap_or(NOT_EXPORTED),
            "guide": function.lvs_profile.unwrap_or(NOT_EXPORTED),
            "reset": choice == LvsChoice::Guide,
        }),
    })
    .await?;
    tx.commit().await?;
    Ok(MappingLine {
        code: function.code,
        label: function.long_label,
        guide: function.lvs_profile,
        lvs_profile: stored,
        changed: choice != LvsChoice::Guide,
    })
}
