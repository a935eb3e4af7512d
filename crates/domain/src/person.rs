//! A person's attributes as imports set them, and what the directory already
//! holds about a person (the snapshot the plan compares against).

use crate::establishment::Uai;
use crate::keys::SyncKey;
use crate::profile::Profile;
use crate::values::{Civility, Email, Login, Phone, PostalCode};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

crate::vocabulary::stored_enum! {
    /// Where an account comes from: only `csv` accounts are ever deactivated by a
    /// Complet CSV import, and `aaf` ones are owned by the academic feed.
    pub enum Source {
        Csv = "csv" => "import CSV",
        Aaf = "aaf" => "flux académique (AAF)",
        Manual = "manual" => "création manuelle",
    }
}

/// The identity and contact fields of a user (SPEC §2), normalised.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Attributes {
    pub civility: Option<Civility>,
    pub last_name: String,
    pub first_name: String,
    pub birth_date: Option<NaiveDate>,
    pub subject: Option<String>,
    pub function_code: Option<String>,
    pub class_name: Option<String>,
    pub address: Option<String>,
    pub postal_code: Option<PostalCode>,
    pub city: Option<String>,
    pub landline: Option<Phone>,
    pub mobile: Option<Phone>,
    pub email: Option<Email>,
    /// A pupil's national identifier (INE), from the AAF feed only.
    pub ine: Option<String>,
    /// A pupil's level (the MEF label, `ENTEleveLibelleMEF`, such as `4EME`),
    /// from the AAF feed only.
    pub level: Option<String>,
}

/// The family link of a person in charge, from its AAF code
/// (`ENTElevePersRelEleve`'s second field), in the words the pages use.
pub fn relation_label(code: &str) -> &'static str {
    match code.trim() {
        "10" => "mère",
        "20" => "père",
        "37" | "38" | "39" => "autre membre de la famille",
        "50" => "tuteur ou tutrice",
        "51" | "52" => "aide sociale à l'enfance",
        "70" => "l'élève lui-même",
        _ => "autre lien",
    }
}

/// Kinds of groups an import fills (SPEC §2 "Hierarchy and groups").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// A teacher's subject (Matière).
    Subject,
    /// A pupil's class.
    Class,
    /// A teaching group (AAF `ENTEleveGroupes`: a half class, an option).
    Group,
}

impl GroupKind {
    pub fn id(self) -> &'static str {
        match self {
            GroupKind::Subject => "subject",
            GroupKind::Class => "class",
            GroupKind::Group => "group",
        }
    }
}

impl FromStr for GroupKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "subject" => Ok(GroupKind::Subject),
            "class" => Ok(GroupKind::Class),
            "group" => Ok(GroupKind::Group),
            other => Err(format!("type de groupe « {other} » inconnu")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupRef {
    pub uai: Uai,
    pub kind: GroupKind,
    pub name: String,
}

/// A user's attachment to an establishment, with the role of the hierarchy
/// node (staff: `administrateur` for DIR, `enseignant` otherwise, guide §4.1.B.B).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Membership {
    pub uai: Uai,
    pub role: String,
}

/// The role in the establishment's node for a profile and function code.
pub fn role_for(profile: Profile, function_code: Option<&str>) -> &'static str {
    match profile {
        Profile::Administratif if function_code == Some("DIR") => "administrateur",
        Profile::Administratif | Profile::Enseignant => "enseignant",
        Profile::Eleve => "eleve",
        Profile::Parent => "parent",
        Profile::Administrateur | Profile::AdministrateurSysteme => "administrateur",
        Profile::Invite => "invite",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistingMembership {
    pub uai: Uai,
    pub role: String,
    pub active: bool,
}

/// What the directory holds about one account, as the plan needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistingUser {
    pub id: i64,
    pub key: SyncKey,
    pub profile: Profile,
    pub source: Source,
    pub protected: bool,
    pub active: bool,
    pub login: Login,
    pub attrs: Attributes,
    pub memberships: Vec<ExistingMembership>,
    pub groups: Vec<GroupRef>,
}
