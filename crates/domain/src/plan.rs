//! Checked rows + a directory snapshot → the Plan: what an import would create,
//! update, leave unchanged, merge, deactivate, and which lines are in conflict
//! (SPEC §5–§8). Pure: the store fetches the [`Snapshot`] a [`Lookup`] asks for,
//! and applies the plan in one transaction.

use crate::changeset::{deletion_guard, Changeset};
pub use crate::changeset::{Create, Deactivation, DeletionThreshold, FieldChange, Origin, Unchanged, Update};
pub use crate::establishment::establishment_list;
use crate::establishment::{Establishment, Uai};
use crate::field::Field;
use crate::keys::{is_base_or_numbered, LoginAllocator, LoginPattern, SyncKey};
use crate::mapping::Mapping;
use crate::person::{role_for, Attributes, ExistingUser, GroupKind, GroupRef, Membership, Source};
use crate::profile::Profile;
use crate::validate::{Checked, CheckedRow, Conflict, RowNotice};
use crate::values::Login;
use crate::vocabulary::Channel;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Which establishments the person running the import may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminScope {
    /// A system administrator (and the CLI run by the operator).
    All,
    Establishments(BTreeSet<Uai>),
}

impl AdminScope {
    pub fn allows(&self, uai: &Uai) -> bool {
        match self {
            AdminScope::All => true,
            AdminScope::Establishments(set) => set.contains(uai),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    pub profile: Profile,
    /// The establishment chosen in step 1 (none when every line names its own).
    pub establishment: Option<Uai>,
    pub establishments_from_file: bool,
    pub complet: bool,
    pub skip_conflicts: bool,
    /// The exact number of deletions the admin confirmed (SPEC §8).
    pub confirm_deletions: Option<usize>,
    /// Deletions above this share of the users in scope need confirmation.
    pub deletion_threshold_percent: u32,
    pub login_pattern: LoginPattern,
    pub scope: AdminScope,
    /// The admin confirmed attaching accounts active in establishments outside
    /// their scope (a line naming another school's teacher is refused otherwise).
    pub attach_existing: bool,
}

/// What the plan needs to know from the directory: fetched by key, login and
/// establishment, never by scanning (cost independent of the directory's size).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Lookup {
    pub keys: Vec<SyncKey>,
    /// Imposed logins: who owns each, if anyone.
    pub logins: Vec<String>,
    /// Generated-login bases: every login equal to a base or a base plus digits.
    pub login_bases: Vec<String>,
    pub establishments: Vec<Uai>,
    pub groups: Vec<GroupRef>,
    /// Complet mode: the csv accounts of this profile in these establishments.
    pub complet_scope: Option<(Profile, Vec<Uai>)>,
    /// An establishment admin's import: the names of the establishments the
    /// accounts found belong to, for the lines naming another school's account.
    pub establishment_names: bool,
}

/// The answer to a [`Lookup`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub users: HashMap<SyncKey, ExistingUser>,
    pub login_owners: HashMap<String, SyncKey>,
    pub taken_logins: HashSet<String>,
    pub establishments: HashSet<Uai>,
    pub groups: HashSet<GroupRef>,
    /// Keys of the users in the Complet scope (their records are in `users`).
    pub scope_keys: Vec<SyncKey>,
    /// The names of the establishments where the accounts found are members,
    /// for the lines that name another school's account.
    pub establishment_names: HashMap<Uai, String>,
}

/// A second line with the same key: its assignment is added to the first (§4.1.A.C).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Merge {
    pub line: u64,
    pub into_line: u64,
    pub key: SyncKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rejection {
    /// Lines in conflict and "Ne pas importer les lignes en conflit" not chosen.
    Conflicts {
        lines: usize,
    },
    /// Complet never runs on a file with conflicts: their people would be deleted.
    CompletWithConflicts {
        lines: usize,
    },
    CompletWithoutRows,
    /// More deletions than the threshold and no matching confirmation.
    DeletionThreshold(DeletionThreshold),
}

impl Rejection {
    /// The CLI's sentence (it names the command's options).
    pub fn message(&self) -> String {
        self.message_for(Channel::Cli)
    }

    /// The sentence of one door: the CLI names its options, the web its
    /// boxes and fields, the API its JSON fields.
    pub fn message_for(&self, door: Channel) -> String {
        match self {
            Rejection::Conflicts { lines } => format!(
                "{lines} ligne(s) en conflit : corrigez-les, ou choisissez « Ne pas importer les lignes en conflit »{}",
                match door {
                    Channel::Cli | Channel::Schedule => " (--skip-conflicts)",
                    Channel::Web => " à l'étape 3",
                    Channel::Api => " (champ skip_conflicts)",
                }
            ),
            Rejection::CompletWithConflicts { lines } => format!(
                "mode Complet refusé : {lines} ligne(s) en conflit, dont les personnes seraient supprimées ; corrigez le fichier d'abord"
            ),
            Rejection::CompletWithoutRows => {
                "mode Complet refusé : le fichier ne contient aucune ligne valide, ce qui supprimerait tout le monde".to_string()
            }
            Rejection::DeletionThreshold(t) => match door {
                Channel::Cli | Channel::Schedule => format!(
                    "mode Complet : {} compte(s) seraient désactivés sur {}, au-delà du seuil de {}{} ; vérifiez la liste, puis confirmez avec --confirm-deletions {}",
                    t.deletions,
                    t.scope,
                    t.allowed,
                    t.wrong_confirmation(),
                    t.deletions
                ),
                Channel::Web => threshold_in_words(t),
                Channel::Api => format!(
                    "mode Complet : {} compte(s) seraient désactivés sur {}, au-delà du seuil de {}{} ; vérifiez la liste, puis confirmez avec le champ confirm_deletions = {}",
                    t.deletions,
                    t.scope,
                    t.allowed,
                    t.wrong_confirmation(),
                    t.deletions
                ),
            },
        }
    }
}

/// One establishment's share of a plan ([`Plan::counts_by_establishment`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstablishmentCounts {
    pub uai: Uai,
    pub created: usize,
    pub joined: usize,
    pub deactivated: usize,
}

impl EstablishmentCounts {
    fn of(uai: &Uai) -> Self {
        EstablishmentCounts {
            uai: uai.clone(),
            created: 0,
            joined: 0,
            deactivated: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub profile: Profile,
    /// Data lines read from the file.
    pub rows: usize,
    pub creates: Vec<Create>,
    pub updates: Vec<Update>,
    pub unchanged: Vec<Unchanged>,
    pub merges: Vec<Merge>,
    pub deactivations: Vec<Deactivation>,
    pub conflicts: Vec<Conflict>,
    /// Lines with at least one conflict.
    pub conflict_lines: BTreeSet<u64>,
    pub notices: Vec<RowNotice>,
    pub new_groups: Vec<GroupRef>,
    /// Users in the Complet scope before the import.
    pub scope_size: usize,
    pub rejection: Option<Rejection>,
}

impl Plan {
    /// What the store writes for this plan.
    pub fn changeset(&self) -> Changeset<'_> {
        Changeset {
            creates: &self.creates,
            updates: &self.updates,
            unchanged: &self.unchanged,
            deactivations: &self.deactivations,
            new_groups: &self.new_groups,
            links: &[],
            links_replaced: &[],
        }
    }

    /// What the plan does in each establishment it touches, in UAI order:
    /// accounts created there, accounts that join it (new or reactivated
    /// memberships of existing accounts), memberships deactivated there.
    /// (A field change of an existing account belongs to the person, not to
    /// one establishment: it is counted once, in the plan's totals.)
    pub fn counts_by_establishment(&self) -> Vec<EstablishmentCounts> {
        let mut counts: std::collections::BTreeMap<&Uai, EstablishmentCounts> = std::collections::BTreeMap::new();
        for c in &self.creates {
            for m in &c.memberships {
                counts
                    .entry(&m.uai)
                    .or_insert_with(|| EstablishmentCounts::of(&m.uai))
                    .created += 1;
            }
        }
        for u in &self.updates {
            for m in &u.memberships {
                counts
                    .entry(&m.uai)
                    .or_insert_with(|| EstablishmentCounts::of(&m.uai))
                    .joined += 1;
            }
        }
        for d in &self.deactivations {
            for uai in &d.establishments {
                counts
                    .entry(uai)
                    .or_insert_with(|| EstablishmentCounts::of(uai))
                    .deactivated += 1;
            }
        }
        counts.into_values().collect()
    }

    pub fn valid_rows(&self) -> usize {
        self.rows - self.conflict_lines.len()
    }

    /// Conflict lines left out because the admin chose to skip them.
    pub fn skipped(&self) -> usize {
        if self.rejection.is_none() {
            self.conflict_lines.len()
        } else {
            0
        }
    }

    pub fn memberships_added(&self) -> usize {
        self.creates
            .iter()
            .map(|c| c.memberships.len() + c.groups.len())
            .sum::<usize>()
            + self
                .updates
                .iter()
                .map(|u| u.memberships.len() + u.groups.len())
                .sum::<usize>()
    }

    /// A digest of every decision of the plan (who is created with which
    /// login, what changes, who is merged, deactivated or in conflict; not
    /// the rejection, which the admin's confirmation lifts): a
    /// preview hands it to the real run, which re-plans under its locks and
    /// refuses to write when the directory changed in between.
    pub fn fingerprint(&self) -> String {
        #[derive(Serialize)]
        struct Decisions<'a> {
            creates: &'a [Create],
            updates: &'a [Update],
            unchanged: &'a [Unchanged],
            merges: &'a [Merge],
            deactivations: &'a [Deactivation],
            conflict_lines: &'a BTreeSet<u64>,
        }
        let decisions = Decisions {
            creates: &self.creates,
            updates: &self.updates,
            unchanged: &self.unchanged,
            merges: &self.merges,
            deactivations: &self.deactivations,
            conflict_lines: &self.conflict_lines,
        };
        // Structs, sequences and string-keyed values only: serialising them
        // into a Vec cannot fail.
        let bytes = serde_json::to_vec(&decisions).unwrap_or_default();
        let digest = Sha256::digest(&bytes);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Step 4's sentence next to the confirmation field: what was typed, what is
/// expected, and why (the threshold in % and in accounts).
pub fn threshold_in_words(t: &DeletionThreshold) -> String {
    let why = format!(
        "l'import désactivera {} compte(s) sur les {} concernés, au-delà du seuil de {} % ({} compte(s) sans confirmation)",
        t.deletions, t.scope, t.percent, t.allowed
    );
    match t.confirmed {
        Some(typed) => format!(
            "Vous avez tapé {typed}, mais {why} : vérifiez la liste, puis tapez {} pour confirmer.",
            t.deletions
        ),
        None => format!(
            "Confirmation nécessaire : {why} ; vérifiez la liste, puis tapez {} pour confirmer.",
            t.deletions
        ),
    }
}

/// The directory reads an import needs, from its checked rows.
pub fn lookup_for(checked: &Checked, mapping: &Mapping, options: &PlanOptions) -> Lookup {
    let mut keys = BTreeSet::new();
    let mut logins = BTreeSet::new();
    let mut bases = BTreeSet::new();
    let mut establishments: BTreeSet<Uai> = options.establishment.iter().cloned().collect();
    let mut groups = BTreeSet::new();
    for row in &checked.rows {
        keys.insert(row.key.clone());
        keys.extend(row.file_key.clone());
        match &row.login {
            Some(l) => {
                logins.insert(l.as_str().to_string());
            }
            None => {
                bases.insert(options.login_pattern.base(&row.attrs.first_name, &row.attrs.last_name));
            }
        }
        for uai in targets(row, options) {
            if !establishments.contains(uai) {
                establishments.insert(uai.clone());
            }
            groups.extend(groups_for(row, uai, mapping.profile));
        }
    }
    let complet_scope = options
        .complet
        .then(|| (options.profile, complet_establishments(checked, options)));
    Lookup {
        keys: keys.into_iter().collect(),
        logins: logins.into_iter().collect(),
        login_bases: bases.into_iter().collect(),
        establishments: establishments.into_iter().collect(),
        groups: groups.into_iter().collect(),
        complet_scope,
        establishment_names: !matches!(options.scope, AdminScope::All),
    }
}

/// The establishments a line goes to: borrowed, as this runs for every line.
fn targets<'a>(row: &'a CheckedRow, options: &'a PlanOptions) -> &'a [Uai] {
    if options.establishments_from_file {
        row.uai.as_slice()
    } else {
        options.establishment.as_slice()
    }
}

fn complet_establishments(checked: &Checked, options: &PlanOptions) -> Vec<Uai> {
    let mut set: BTreeSet<Uai> = options.establishment.iter().cloned().collect();
    if options.establishments_from_file {
        set.extend(checked.rows.iter().filter_map(|r| r.uai.clone()));
    }
    set.into_iter().collect()
}

fn groups_for(row: &CheckedRow, uai: &Uai, profile: Profile) -> Option<GroupRef> {
    let (kind, name) = match profile {
        Profile::Enseignant => (GroupKind::Subject, row.attrs.subject.as_ref()?),
        Profile::Eleve => (GroupKind::Class, row.attrs.class_name.as_ref()?),
        _ => return None,
    };
    Some(GroupRef {
        uai: uai.clone(),
        kind,
        name: name.clone(),
    })
}

/// The attribute fields an import may set, with their printable values.
pub fn attribute_value(attrs: &Attributes, field: Field) -> Option<String> {
    match field {
        Field::Civility => attrs.civility.map(|c| c.as_str().to_string()),
        Field::LastName => Some(attrs.last_name.clone()),
        Field::FirstName => Some(attrs.first_name.clone()),
        Field::Subject => attrs.subject.clone(),
        Field::Function => attrs.function_code.clone(),
        Field::BirthDate => attrs.birth_date.map(|d| d.format("%d/%m/%Y").to_string()),
        Field::Class => attrs.class_name.clone(),
        Field::Address => attrs.address.clone(),
        Field::PostalCode => attrs.postal_code.as_ref().map(|p| p.as_str().to_string()),
        Field::City => attrs.city.clone(),
        Field::Landline => attrs.landline.as_ref().map(|p| p.display()),
        Field::Mobile => attrs.mobile.as_ref().map(|p| p.display()),
        Field::Email => attrs.email.as_ref().map(|e| e.as_str().to_string()),
        Field::SyncKey | Field::Login | Field::Password | Field::Uai => None,
    }
}

/// Copies one mapped field from the file's row onto the stored attributes.
/// A mapped column is the truth for its field, empty cells included.
fn set_attribute(target: &mut Attributes, source: &Attributes, field: Field) {
    match field {
        Field::Civility => target.civility = source.civility,
        Field::LastName => target.last_name.clone_from(&source.last_name),
        Field::FirstName => target.first_name.clone_from(&source.first_name),
        Field::Subject => target.subject.clone_from(&source.subject),
        Field::Function => target.function_code.clone_from(&source.function_code),
        Field::BirthDate => target.birth_date = source.birth_date,
        Field::Class => target.class_name.clone_from(&source.class_name),
        Field::Address => target.address.clone_from(&source.address),
        Field::PostalCode => target.postal_code.clone_from(&source.postal_code),
        Field::City => target.city.clone_from(&source.city),
        Field::Landline => target.landline.clone_from(&source.landline),
        Field::Mobile => target.mobile.clone_from(&source.mobile),
        Field::Email => target.email.clone_from(&source.email),
        Field::SyncKey | Field::Login | Field::Password | Field::Uai => {}
    }
}

/// The stored attributes with the file's mapped fields written over them.
fn overlay(stored: &Attributes, row: &Attributes, mapped_fields: &[Field]) -> Attributes {
    let mut attrs = stored.clone();
    for &field in mapped_fields {
        set_attribute(&mut attrs, row, field);
    }
    attrs
}

/// A row accepted so far, before logins are handed out.
struct Pending<'s> {
    line: u64,
    key: SyncKey,
    attrs: Attributes,
    /// Small vectors rather than sets (most lines have one establishment);
    /// sorted and deduplicated once, when the pending line is planned.
    memberships: Vec<Membership>,
    groups: Vec<GroupRef>,
    target: PendingTarget<'s>,
}

enum PendingTarget<'s> {
    Create {
        login: Option<Login>,
        password: Option<String>,
    },
    /// Borrowed from the snapshot: copying every account of a re-import cost more than the plan.
    Existing(&'s ExistingUser),
    /// An account also active in establishments outside the admin's scope
    /// (listed): only attached, its identity left to them.
    Shared(&'s ExistingUser, Vec<Establishment>),
}

pub fn plan(checked: &Checked, mapping: &Mapping, snapshot: &Snapshot, options: &PlanOptions) -> Plan {
    let profile = mapping.profile;
    let mut conflicts: Vec<Conflict> = checked.conflicts().cloned().collect();
    let mut notices = checked.notices.clone();
    let column = |field: Field| {
        mapping
            .column_of(field)
            .and_then(|i| mapping.columns.get(i))
            .map(|c| c.name.clone())
    };
    let conflict = |row: &CheckedRow, field: Option<Field>, code: &'static str, message: String| Conflict {
        line: row.line,
        column: field.and_then(column),
        field,
        code,
        message,
    };

    let mut allocator = LoginAllocator::new(
        snapshot
            .taken_logins
            .iter()
            .cloned()
            .chain(snapshot.login_owners.keys().cloned()),
    );
    let mut pending: Vec<Pending> = Vec::with_capacity(checked.rows.len());
    let mut reconciled: Vec<Unchanged> = Vec::new();
    let mut by_key: HashMap<SyncKey, usize> = HashMap::with_capacity(checked.rows.len());
    let mut merges = Vec::new();

    for row in &checked.rows {
        let mut row_conflicts = Vec::new();
        let row_targets = targets(row, options);
        for uai in row_targets {
            if !snapshot.establishments.contains(uai) {
                row_conflicts.push(conflict(
                    row,
                    Some(Field::Uai),
                    "unknown_establishment",
                    format!("établissement {uai} inconnu de l'ENT : vérifiez le RNE, ou demandez à l'administrateur système de le créer"),
                ));
            } else if !options.scope.allows(uai) {
                row_conflicts.push(conflict(
                    row,
                    Some(Field::Uai),
                    "out_of_scope",
                    format!("vous n'administrez pas l'établissement {uai} : retirez cette ligne ou demandez à son administrateur"),
                ));
            }
        }
        if !row_conflicts.is_empty() {
            conflicts.extend(row_conflicts);
            continue;
        }
        let role = role_for(profile, row.attrs.function_code.as_deref());
        let memberships: Vec<Membership> = row_targets
            .iter()
            .map(|uai| Membership {
                uai: uai.clone(),
                role: role.to_string(),
            })
            .collect();
        let groups: Vec<GroupRef> = row_targets.iter().filter_map(|u| groups_for(row, u, profile)).collect();

        if let Some(&first) = by_key.get(&row.key) {
            let target = &mut pending[first];
            target.memberships.extend(memberships);
            target.groups.extend(groups);
            merges.push(Merge {
                line: row.line,
                into_line: target.line,
                key: row.key.clone(),
            });
            continue;
        }

        // A line of an export names an account of the feed by its key (no
        // file derives a feed's key).
        let found = snapshot.users.get(&row.key).or_else(|| {
            row.file_key
                .as_ref()
                .and_then(|k| snapshot.users.get(k))
                .filter(|e| e.source == Source::Aaf)
        });
        let shared_with = found.map_or_else(Vec::new, |e| active_elsewhere(e, &options.scope, snapshot));
        let target = match found {
            Some(existing) if existing.profile != profile => {
                conflicts.push(conflict(
                    row,
                    Some(Field::LastName),
                    "key_other_profile",
                    format!(
                        "la clé {} appartient déjà à un compte {} (login {}) : si c'est la même personne, importez-la avec ce profil ; sinon distinguez le prénom (ex. ajoutez le second prénom)",
                        row.key,
                        existing.profile.label(),
                        existing.login
                    ),
                ));
                continue;
            }
            Some(existing) if row.file_key.as_ref() == Some(&existing.key) => {
                notices.push(RowNotice {
                    line: row.line,
                    column: column(Field::LastName),
                    code: "feed_account",
                    message: format!(
                        "la ligne nomme par sa clé le compte {} (login {}) du flux académique (AAF) : ce compte est alimenté par son flux, la ligne ne le modifie pas",
                        existing.key, existing.login
                    ),
                });
                reconciled.push(Unchanged {
                    origin: Origin::Line { line: row.line },
                    user_id: existing.id,
                    key: existing.key.clone(),
                    login: Some(existing.login.clone()),
                });
                continue;
            }
            // The key this line's person had before a reconciliation: the
            // account is theirs, it is not created twice.
            Some(existing) if existing.key != row.key => {
                notices.push(RowNotice {
                    line: row.line,
                    column: column(Field::LastName),
                    code: "reconciled_key",
                    message: format!(
                        "la clé {} a été réconciliée avec le compte {} (login {}) : la ligne ne crée pas de doublon{}",
                        row.key,
                        existing.key,
                        existing.login,
                        if existing.protected {
                            " ; ce compte est alimenté par son flux, la ligne ne le modifie pas"
                        } else {
                            ""
                        }
                    ),
                });
                reconciled.push(Unchanged {
                    origin: Origin::Line { line: row.line },
                    user_id: existing.id,
                    key: existing.key.clone(),
                    login: Some(existing.login.clone()),
                });
                continue;
            }
            Some(existing) if existing.source == Source::Aaf || existing.protected => {
                conflicts.push(conflict(
                    row,
                    Some(Field::LastName),
                    "key_protected",
                    format!(
                        "la clé {} appartient à un compte alimenté par l'annuaire académique (AAF), modifiable seulement par son flux : retirez cette ligne",
                        row.key
                    ),
                ));
                continue;
            }
            // Also active in an establishment outside the admin's: attached only
            // when the admin confirmed it, never changed.
            Some(existing) if !shared_with.is_empty() => {
                let joins = !additions(existing, memberships.clone(), Vec::new()).0.is_empty();
                if joins && !options.attach_existing {
                    conflicts.push(conflict(
                        row,
                        Some(Field::LastName),
                        "existing_elsewhere",
                        format!(
                            "compte existant dans un autre établissement : {} ; confirmez son rattachement au vôtre, ou retirez la ligne",
                            establishment_list(&shared_with)
                        ),
                    ));
                    continue;
                }
                if row.login.is_some() || row.password.is_some() {
                    notices.push(RowNotice {
                        line: row.line,
                        column: column(Field::Login),
                        code: "login_kept",
                        message: "ce compte existe déjà dans un autre établissement : un import ne change ni son login ni son mot de passe".to_string(),
                    });
                }
                PendingTarget::Shared(existing, shared_with)
            }
            Some(existing) => {
                if let Some(login) = &row.login {
                    if login != &existing.login {
                        notices.push(RowNotice {
                            line: row.line,
                            column: column(Field::Login),
                            code: "login_kept",
                            message: format!(
                                "le compte existe déjà avec le login {} : un import ne change ni le login ni le mot de passe d'un compte existant",
                                existing.login
                            ),
                        });
                    }
                }
                PendingTarget::Existing(existing)
            }
            None => {
                if let Some(login) = &row.login {
                    if row.password.is_none() {
                        conflicts.push(conflict(
                            row,
                            Some(Field::Login),
                            "login_without_password",
                            "login sans mot de passe : imposez aussi le mot de passe (jamais l'un sans l'autre), ou videz le login pour que les deux soient générés".to_string(),
                        ));
                        continue;
                    }
                    if let Some(owner) = snapshot.login_owners.get(login.as_str()) {
                        conflicts.push(conflict(
                            row,
                            Some(Field::Login),
                            "login_taken",
                            format!(
                                "le login {login} est déjà attribué dans l'ENT (compte {owner}) : choisissez-en un autre, ou videz login et mot de passe pour les générer"
                            ),
                        ));
                        continue;
                    }
                    if !allocator.reserve(login.as_str()) {
                        conflicts.push(conflict(
                            row,
                            Some(Field::Login),
                            "login_duplicate_in_file",
                            format!("le login {login} est déjà imposé par une ligne précédente du fichier : choisissez-en un autre"),
                        ));
                        continue;
                    }
                }
                PendingTarget::Create {
                    login: row.login.clone(),
                    password: row.password.clone(),
                }
            }
        };
        by_key.insert(row.key.clone(), pending.len());
        pending.push(Pending {
            line: row.line,
            key: row.key.clone(),
            attrs: row.attrs.clone(),
            memberships,
            groups,
            target,
        });
    }

    let conflict_lines: BTreeSet<u64> = conflicts.iter().map(|c| c.line).collect();
    // A line in conflict never becomes a merge target's partner either.
    merges.retain(|m| !conflict_lines.contains(&m.line));

    let mapped_fields: Vec<Field> = mapping
        .columns
        .iter()
        .filter_map(|c| c.field)
        .filter(|f| f.is_attribute())
        .collect();

    let mut creates = Vec::new();
    let mut updates = Vec::new();
    let mut unchanged = reconciled;
    let mut file_keys: HashSet<SyncKey> = HashSet::with_capacity(pending.len());
    for p in pending {
        file_keys.insert(p.key.clone());
        match p.target {
            PendingTarget::Create { login, password } => {
                let login = login.unwrap_or_else(|| {
                    allocator.allocate(&options.login_pattern.base(&p.attrs.first_name, &p.attrs.last_name))
                });
                creates.push(Create {
                    origin: Origin::Line { line: p.line },
                    key: p.key,
                    profile,
                    login,
                    imposed_password: password,
                    attrs: p.attrs,
                    memberships: one_role_per_establishment(p.memberships),
                    groups: sorted_unique(p.groups),
                });
            }
            PendingTarget::Shared(existing, shared_with) => {
                if existing.attrs != overlay(&existing.attrs, &p.attrs, &mapped_fields) {
                    notices.push(RowNotice {
                        line: p.line,
                        column: None,
                        code: "shared_identity_kept",
                        message: format!(
                            "l'identité de ce compte est gérée par {} : la ligne le rattache sans modifier ses données",
                            establishment_list(&shared_with)
                        ),
                    });
                }
                let (memberships, groups) = additions(existing, p.memberships, p.groups);
                if memberships.is_empty() && groups.is_empty() {
                    unchanged.push(Unchanged {
                        origin: Origin::Line { line: p.line },
                        user_id: existing.id,
                        key: p.key,
                        login: None,
                    });
                } else {
                    updates.push(Update {
                        origin: Origin::Line { line: p.line },
                        user_id: existing.id,
                        key: p.key,
                        login: None,
                        profile: None,
                        attrs: existing.attrs.clone(),
                        changes: Vec::new(),
                        memberships,
                        left: Vec::new(),
                        groups,
                        groups_left: Vec::new(),
                        reactivate: false,
                        shared_with,
                    });
                }
            }
            PendingTarget::Existing(existing) => {
                let attrs = overlay(&existing.attrs, &p.attrs, &mapped_fields);
                let mut changes = Vec::new();
                // Equal attributes print equal: the strings are built only when something changed.
                if attrs != existing.attrs {
                    for &field in &mapped_fields {
                        let before = attribute_value(&existing.attrs, field);
                        let after = attribute_value(&attrs, field);
                        if before != after {
                            changes.push(FieldChange {
                                field,
                                before: before.unwrap_or_default(),
                                after: after.unwrap_or_default(),
                            });
                        }
                    }
                }
                let (memberships, groups) = additions(existing, p.memberships, p.groups);
                let reactivate = !existing.active;
                if changes.is_empty() && memberships.is_empty() && groups.is_empty() && !reactivate {
                    unchanged.push(Unchanged {
                        origin: Origin::Line { line: p.line },
                        user_id: existing.id,
                        key: p.key,
                        login: Some(existing.login.clone()),
                    });
                } else {
                    updates.push(Update {
                        origin: Origin::Line { line: p.line },
                        user_id: existing.id,
                        key: p.key,
                        login: Some(existing.login.clone()),
                        profile: None,
                        attrs,
                        changes,
                        memberships,
                        left: Vec::new(),
                        groups,
                        groups_left: Vec::new(),
                        reactivate,
                        shared_with: Vec::new(),
                    });
                }
            }
        }
    }

    let mut new_groups: BTreeSet<GroupRef> = BTreeSet::new();
    for g in creates
        .iter()
        .flat_map(|c| c.groups.iter())
        .chain(updates.iter().flat_map(|u| u.groups.iter()))
    {
        if !snapshot.groups.contains(g) {
            new_groups.insert(g.clone());
        }
    }

    let mut deactivations = Vec::new();
    let scope_size = snapshot.scope_keys.len();
    if options.complet {
        let scope_uais: BTreeSet<Uai> = complet_establishments(checked, options).into_iter().collect();
        for key in &snapshot.scope_keys {
            if file_keys.contains(key) {
                continue;
            }
            let Some(user) = snapshot.users.get(key) else { continue };
            if user.source != Source::Csv || user.profile != options.profile {
                continue;
            }
            let establishments: Vec<Uai> = user
                .memberships
                .iter()
                .filter(|m| m.active && scope_uais.contains(&m.uai))
                .map(|m| m.uai.clone())
                .collect();
            if establishments.is_empty() {
                continue;
            }
            let whole_account = !user
                .memberships
                .iter()
                .any(|m| m.active && !scope_uais.contains(&m.uai));
            deactivations.push(Deactivation {
                user_id: user.id,
                key: key.clone(),
                login: user.login.clone(),
                last_name: user.attrs.last_name.clone(),
                first_name: user.attrs.first_name.clone(),
                establishments,
                whole_account,
            });
        }
        deactivations.sort_by(|a, b| (&a.last_name, &a.first_name, &a.key).cmp(&(&b.last_name, &b.first_name, &b.key)));
    }

    let rows = checked.rows.len() + checked.conflict_rows.len();
    let valid = rows - conflict_lines.len();
    let rejection = if !conflict_lines.is_empty() && options.complet {
        Some(Rejection::CompletWithConflicts {
            lines: conflict_lines.len(),
        })
    } else if !conflict_lines.is_empty() && !options.skip_conflicts {
        Some(Rejection::Conflicts {
            lines: conflict_lines.len(),
        })
    } else if options.complet && valid == 0 {
        Some(Rejection::CompletWithoutRows)
    } else {
        deletion_guard(
            deactivations.len(),
            scope_size,
            options.deletion_threshold_percent,
            options.confirm_deletions,
        )
        .map(Rejection::DeletionThreshold)
    };

    conflicts.sort_by_key(|c| c.line);
    notices.sort_by_key(|n| n.line);
    Plan {
        profile,
        rows,
        creates,
        updates,
        unchanged,
        merges,
        deactivations,
        conflicts,
        conflict_lines,
        notices,
        new_groups: new_groups.into_iter().collect(),
        scope_size,
        rejection,
    }
}

/// The memberships and groups a line adds to an existing account.
fn additions(
    existing: &ExistingUser,
    memberships: Vec<Membership>,
    groups: Vec<GroupRef>,
) -> (Vec<Membership>, Vec<GroupRef>) {
    let memberships = one_role_per_establishment(memberships)
        .into_iter()
        .filter(|m| {
            !existing
                .memberships
                .iter()
                .any(|e| e.active && e.uai == m.uai && e.role == m.role)
        })
        .collect();
    let groups = sorted_unique(groups)
        .into_iter()
        .filter(|g| !existing.groups.contains(g))
        .collect();
    (memberships, groups)
}

/// The establishments outside the admin's scope where the account is active:
/// empty when it is the admin's alone (or the admin is a system admin).
fn active_elsewhere(existing: &ExistingUser, scope: &AdminScope, snapshot: &Snapshot) -> Vec<Establishment> {
    let uais: BTreeSet<&Uai> = existing
        .memberships
        .iter()
        .filter(|m| m.active && !scope.allows(&m.uai))
        .map(|m| &m.uai)
        .collect();
    uais.into_iter()
        .map(|uai| Establishment {
            uai: uai.clone(),
            name: snapshot.establishment_names.get(uai).cloned().unwrap_or_default(),
        })
        .collect()
}

/// Two lines of one person in one establishment with different functions
/// (DIR and EDU) give one membership: the administrateur role wins.
fn one_role_per_establishment(memberships: Vec<Membership>) -> Vec<Membership> {
    if memberships.len() < 2 {
        return memberships;
    }
    let mut by_uai: std::collections::BTreeMap<Uai, String> = std::collections::BTreeMap::new();
    for m in sorted_unique(memberships) {
        let keep_existing = by_uai.get(&m.uai).is_some_and(|r| r == "administrateur");
        if !keep_existing {
            by_uai.insert(m.uai, m.role);
        }
    }
    by_uai.into_iter().map(|(uai, role)| Membership { uai, role }).collect()
}

/// In order, each once: what a set gave, built only when a line was merged.
fn sorted_unique<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    if items.len() > 1 {
        items.sort_unstable();
        items.dedup();
    }
    items
}

/// Logins from the directory that a base can collide with (for stores that
/// fetch by prefix and must filter the extra matches). Looks up the login with
/// 0, 1, 2… trailing digits removed, so the cost does not grow with the number
/// of bases (a linear scan of them made a 100 000-row re-import quadratic).
pub fn collides_with_base(login: &str, bases: &HashSet<&str>) -> bool {
    let mut end = login.len();
    loop {
        let candidate = &login[..end];
        if bases.contains(candidate) && is_base_or_numbered(login, candidate) {
            return true;
        }
        match candidate.as_bytes().last() {
            Some(b) if b.is_ascii_digit() => end -= 1,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collisions_are_found_by_stripping_digits() {
        let bases: HashSet<&str> = ["nmartin", "agent007", "jdoe"].into_iter().collect();
        assert!(collides_with_base("nmartin", &bases));
        assert!(collides_with_base("nmartin12", &bases));
        assert!(collides_with_base("agent0072", &bases));
        assert!(!collides_with_base("nmartinez", &bases));
        assert!(!collides_with_base("nmartin-x", &bases));
        assert!(!collides_with_base("jdo", &bases));
    }
}
