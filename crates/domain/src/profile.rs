//! The profiles of the directory (SPEC §2).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    Enseignant,
    Administratif,
    Eleve,
    Parent,
    Administrateur,
    AdministrateurSysteme,
    Invite,
}

impl Profile {
    /// The profiles a CSV import may create (guide §1.2: admins and guests are manual).
    pub const IMPORTABLE: [Profile; 4] = [
        Profile::Enseignant,
        Profile::Administratif,
        Profile::Eleve,
        Profile::Parent,
    ];

    /// Every profile, in the guide's order of the search filters (§7).
    pub const ALL: [Profile; 7] = [
        Profile::AdministrateurSysteme,
        Profile::Administrateur,
        Profile::Administratif,
        Profile::Enseignant,
        Profile::Eleve,
        Profile::Parent,
        Profile::Invite,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Profile::Enseignant => "enseignant",
            Profile::Administratif => "administratif",
            Profile::Eleve => "eleve",
            Profile::Parent => "parent",
            Profile::Administrateur => "administrateur",
            Profile::AdministrateurSysteme => "administrateur-systeme",
            Profile::Invite => "invite",
        }
    }

    /// The French label shown to administrators, one per profile on every
    /// page, mail and CLI line: the guide imports "personnel administratif"
    /// (its search screens say "Employé" for the same accounts; one name
    /// is kept, the one the admin chose at step 1).
    pub fn label(self) -> &'static str {
        match self {
            Profile::Enseignant => "Enseignant",
            Profile::Administratif => "Personnel administratif",
            Profile::Eleve => "Élève",
            Profile::Parent => "Parent",
            Profile::Administrateur => "Administrateur",
            Profile::AdministrateurSysteme => "Administrateur système",
            Profile::Invite => "Invité",
        }
    }

    /// The word the guide appends to field labels ("Nom enseignant").
    pub fn header_suffix(self) -> &'static str {
        match self {
            Profile::Enseignant => "enseignant",
            Profile::Administratif => "administratif",
            Profile::Eleve => "eleve",
            Profile::Parent => "parent",
            Profile::Administrateur => "administrateur",
            Profile::AdministrateurSysteme => "administrateur systeme",
            Profile::Invite => "invite",
        }
    }

    pub fn is_importable(self) -> bool {
        Self::IMPORTABLE.contains(&self)
    }

    /// Teachers and staff share the `PERSON.m-mme…` key space (SPEC §5).
    pub fn is_staff_family(self) -> bool {
        matches!(self, Profile::Enseignant | Profile::Administratif)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("profil « {0} » inconnu : choisissez enseignant, administratif, eleve, parent, administrateur, administrateur-systeme ou invite")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let folded = crate::text::fold(s.trim()).replace([' ', '_'], "-");
        Ok(match folded.as_str() {
            "enseignant" | "enseignants" | "teacher" => Profile::Enseignant,
            "administratif" | "administratifs" | "employe" | "staff" => Profile::Administratif,
            "eleve" | "eleves" | "pupil" | "student" => Profile::Eleve,
            "parent" | "parents" => Profile::Parent,
            "administrateur" | "admin" => Profile::Administrateur,
            "administrateur-systeme" | "system-admin" => Profile::AdministrateurSysteme,
            "invite" | "guest" => Profile::Invite,
            _ => return Err(UnknownProfile(s.to_string())),
        })
    }
}
