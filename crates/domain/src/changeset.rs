//! What an import decides, whatever planned it: a CSV file ([`crate::plan`])
//! or an AAF run ([`crate::aaf::plan`]). Both planners keep their own rules
//! (a file's lines and conflicts, a feed's request order and protected
//! accounts) and produce these same decisions, checked by the same deletion
//! guard ([`deletion_guard`]) and written by the store's one write path from
//! the same [`Changeset`].

use crate::establishment::{Establishment, Uai};
use crate::field::Field;
use crate::keys::SyncKey;
use crate::person::{Attributes, GroupRef, Membership};
use crate::profile::Profile;
use crate::values::Login;
use serde::Serialize;

/// Where a decision comes from, as the reports point at it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Origin {
    /// A line of a CSV file (the header is line 1).
    Line { line: u64 },
    /// The first request of an AAF run that names the person.
    Request { file: String, request: usize },
}

impl Origin {
    /// The CSV line, for a decision read from a file.
    pub fn line(&self) -> Option<u64> {
        match self {
            Origin::Line { line } => Some(*line),
            Origin::Request { .. } => None,
        }
    }
}

/// "ligne 12", "PersEducNat.xml, requête 7": where to look, in the reports' words.
impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Line { line } => write!(f, "ligne {line}"),
            Origin::Request { file, request } => write!(f, "{file}, requête {request}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: Field,
    pub before: String,
    pub after: String,
}

/// An account to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Create {
    #[serde(flatten)]
    pub origin: Origin,
    pub key: SyncKey,
    pub profile: Profile,
    pub login: Login,
    /// The imposed password; `None` means one is generated at apply time.
    #[serde(skip)]
    pub imposed_password: Option<String>,
    pub attrs: Attributes,
    pub memberships: Vec<Membership>,
    pub groups: Vec<GroupRef>,
}

/// An existing account that changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Update {
    #[serde(flatten)]
    pub origin: Origin,
    pub user_id: i64,
    pub key: SyncKey,
    /// `None` for an account of another establishment ([`Update::shared_with`]):
    /// the person already has their login, the importer does not get it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,
    /// The new profile, when the feed moved the person between teacher and staff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    pub attrs: Attributes,
    pub changes: Vec<FieldChange>,
    /// Memberships to add, or to reactivate / change role.
    pub memberships: Vec<Membership>,
    /// Establishments the person left (those memberships end).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left: Vec<Uai>,
    pub groups: Vec<GroupRef>,
    /// Groups the person is no longer in (a pupil's former class).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups_left: Vec<GroupRef>,
    pub reactivate: bool,
    /// The other establishments where the account is active, when it is not
    /// the importer's alone: the update then only attaches it (memberships and
    /// groups), the admin having confirmed it; its identity is left to them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<Establishment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unchanged {
    #[serde(flatten)]
    pub origin: Origin,
    pub user_id: i64,
    pub key: SyncKey,
    /// `None` for an account also active in another establishment than the
    /// importer's: its login is not handed out by this import.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deactivation {
    pub user_id: i64,
    pub key: SyncKey,
    pub login: Login,
    pub last_name: String,
    pub first_name: String,
    /// Establishments whose membership is deactivated.
    pub establishments: Vec<Uai>,
    /// False when the person stays active in another establishment.
    pub whole_account: bool,
}

/// A pupil and a person in charge of them (the AAF feed's
/// `ENTElevePersRelEleve` / `ENTAuxPersRelEleveEleve`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub parent: SyncKey,
    pub child: SyncKey,
    /// The family link's code (10 mother, 20 father, 50 guardian…).
    pub relation: Option<String>,
    pub legal_guardian: bool,
    pub financial: bool,
    pub contact: bool,
}

/// What a plan writes, borrowed from it: the store's one write path takes this.
#[derive(Debug, Clone, Copy)]
pub struct Changeset<'a> {
    pub creates: &'a [Create],
    pub updates: &'a [Update],
    /// Not written; their ids serve the links.
    pub unchanged: &'a [Unchanged],
    pub deactivations: &'a [Deactivation],
    pub new_groups: &'a [GroupRef],
    /// Links to write (added, or their flags updated).
    pub links: &'a [Link],
    /// Persons whose stored links not in `links` end.
    pub links_replaced: &'a [SyncKey],
}

/// More deactivations than the threshold allows, without the exact
/// confirmation (SPEC §8): the import is refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletionThreshold {
    pub deletions: usize,
    pub allowed: usize,
    pub scope: usize,
    pub confirmed: Option<usize>,
    /// The threshold, in % of `scope`, that `allowed` comes from.
    pub percent: u32,
}

impl DeletionThreshold {
    /// " (vous avez confirmé N, le plan en prévoit M)" when a wrong number was confirmed.
    pub fn wrong_confirmation(&self) -> String {
        match self.confirmed {
            Some(n) => format!(" (vous avez confirmé {n}, le plan en prévoit {})", self.deletions),
            None => String::new(),
        }
    }
}

/// The one deletion guard of every import: deactivating more than
/// `threshold_percent` of the `scope` accounts needs the admin to confirm the
/// exact number (a truncated file is the usual cause).
pub fn deletion_guard(
    deletions: usize,
    scope: usize,
    threshold_percent: u32,
    confirmed: Option<usize>,
) -> Option<DeletionThreshold> {
    let allowed = scope * threshold_percent as usize / 100;
    (deletions > allowed && confirmed != Some(deletions)).then_some(DeletionThreshold {
        deletions,
        allowed,
        scope,
        confirmed,
        percent: threshold_percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_asks_for_the_exact_number_above_the_threshold() {
        assert_eq!(deletion_guard(1, 10, 10, None), None, "10 % of 10 is 1: allowed");
        let refused = deletion_guard(2, 10, 10, None).expect("above the threshold");
        assert_eq!((refused.deletions, refused.allowed, refused.scope), (2, 1, 10));
        assert_eq!(deletion_guard(2, 10, 10, Some(2)), None, "the exact number lifts it");
        let wrong = deletion_guard(2, 10, 10, Some(3)).expect("a wrong number does not");
        assert_eq!(
            wrong.wrong_confirmation(),
            " (vous avez confirmé 3, le plan en prévoit 2)"
        );
        assert!(deletion_guard(1, 0, 10, None).is_some(), "an empty scope allows none");
    }

    #[test]
    fn an_origin_serialises_as_the_reports_always_did() {
        let line = serde_json::to_value(Origin::Line { line: 3 }).unwrap();
        assert_eq!(line, serde_json::json!({"line": 3}));
        let request = serde_json::to_value(Origin::Request {
            file: "f.xml".into(),
            request: 7,
        })
        .unwrap();
        assert_eq!(request, serde_json::json!({"file": "f.xml", "request": 7}));
        assert_eq!(Origin::Line { line: 3 }.to_string(), "ligne 3");
    }
}
