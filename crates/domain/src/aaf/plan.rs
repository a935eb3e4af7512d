//! AAF records + a directory snapshot → what one feed run writes.
//!
//! # Why a state per person rather than one decision per request
//! A run may hold several files, and one person may appear in several requests
//! (an addRequest in a Complet file and a modifyRequest in a Delta, or a
//! deleteRequest after a modify). Each request is applied in order to the
//! person's state, starting from what the directory holds; the plan is the
//! difference between the first and the last state. So the order of requests
//! is respected and nobody is written twice.

use super::{FunctionsChange, Issue, PersonKind, PersonRecord, RequestKind};
use crate::changeset::{
    deletion_guard, Changeset, Create, Deactivation, DeletionThreshold, FieldChange, Link, Origin, Unchanged, Update,
};
use crate::establishment::Uai;
use crate::keys::{LoginAllocator, LoginPattern, SyncKey};
use crate::person::{role_for, Attributes, ExistingUser, GroupKind, GroupRef, Membership, Source};
use crate::plan::{attribute_value, Snapshot};
use crate::profile::Profile;
use crate::Field;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// One person request, with the file it came from.
#[derive(Debug, Clone)]
pub struct FileRecord {
    pub file: String,
    pub record: PersonRecord,
}

/// A Complet file's promise: the AAF accounts of these establishments that
/// the run does not mention are gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompletScope {
    pub file: String,
    pub establishments: Vec<Uai>,
    /// The profiles of the file's kind (teachers and staff, pupils, parents).
    pub profiles: Vec<Profile>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AafPlanOptions {
    pub login_pattern: LoginPattern,
    /// Deactivations by Complet files above this share of the accounts in
    /// scope need `confirm_deletions` (as for CSV, SPEC §8).
    pub deletion_threshold_percent: u32,
    pub confirm_deletions: Option<usize>,
}

impl Default for AafPlanOptions {
    fn default() -> Self {
        AafPlanOptions {
            login_pattern: LoginPattern::default(),
            deletion_threshold_percent: crate::vocabulary::DEFAULT_DELETION_THRESHOLD_PERCENT,
            confirm_deletions: None,
        }
    }
}

/// Why a run is refused as a whole (nothing written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AafRejection {
    DeletionThreshold(DeletionThreshold),
}

impl AafRejection {
    pub fn message(&self) -> String {
        match self {
            AafRejection::DeletionThreshold(t) => format!(
                "flux Complet : {} compte(s) AAF seraient désactivés sur {}, au-delà du seuil de {}{} ; un fichier tronqué en est souvent la cause : vérifiez la liste, puis confirmez avec --confirm-deletions {}",
                t.deletions,
                t.scope,
                t.allowed,
                t.wrong_confirmation(),
                t.deletions
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AafNotice {
    pub file: String,
    pub request: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AafPlan {
    pub creates: Vec<Create>,
    pub updates: Vec<Update>,
    pub unchanged: Vec<Unchanged>,
    /// Accounts deactivated by a deleteRequest or a Complet file (whole
    /// account, or only the memberships of the Complet establishments).
    pub deactivations: Vec<Deactivation>,
    pub issues: Vec<Issue>,
    pub notices: Vec<AafNotice>,
    pub new_groups: Vec<GroupRef>,
    /// Pupil ↔ person in charge links stated by the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// Persons whose whole record (addRequest) is in the run: their stored
    /// links that the run does not state end.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links_replaced: Vec<SyncKey>,
    /// AAF accounts in the Complet files' establishments before the run.
    pub scope_size: usize,
    pub rejection: Option<AafRejection>,
}

impl AafPlan {
    /// What the store writes for this run.
    pub fn changeset(&self) -> Changeset<'_> {
        Changeset {
            creates: &self.creates,
            updates: &self.updates,
            unchanged: &self.unchanged,
            deactivations: &self.deactivations,
            new_groups: &self.new_groups,
            links: &self.links,
            links_replaced: &self.links_replaced,
        }
    }
}

/// What the plan needs to fetch: keys, login bases, establishments, and the
/// Complet scopes whose AAF accounts must be loaded too.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AafLookup {
    pub keys: Vec<SyncKey>,
    pub login_bases: Vec<String>,
    pub establishments: Vec<Uai>,
}

pub fn lookup_for(records: &[FileRecord], scopes: &[CompletScope], pattern: LoginPattern) -> AafLookup {
    let mut keys = BTreeSet::new();
    let mut bases = BTreeSet::new();
    let mut establishments = BTreeSet::new();
    for r in records {
        keys.insert(r.record.key.clone());
        if let (Some(first), Some(last)) = (&r.record.first_name, &r.record.last_name) {
            bases.insert(pattern.base(first, last));
        }
        if let Some(FunctionsChange::Replace(f) | FunctionsChange::Add(f) | FunctionsChange::Remove(f)) =
            &r.record.functions
        {
            establishments.extend(f.iter().map(|f| f.uai.clone()));
        }
        if let Some(a) = &r.record.attached {
            establishments.extend(a.iter().cloned());
        }
        for (uai, _) in r.record.classes.iter().chain(&r.record.groups).flatten() {
            establishments.insert(uai.clone());
        }
        // Linked persons: a parent's memberships follow their children.
        keys.extend(r.record.relatives.iter().flatten().map(|rel| rel.key.clone()));
    }
    for s in scopes {
        establishments.extend(s.establishments.iter().cloned());
    }
    AafLookup {
        keys: keys.into_iter().collect(),
        login_bases: bases.into_iter().collect(),
        establishments: establishments.into_iter().collect(),
    }
}

/// What the run says of one pupil ↔ person in charge link (the pupil's file
/// carries the flags, the parent's file only the link).
#[derive(Debug, Clone, Default)]
struct LinkFlags {
    relation: Option<String>,
    legal_guardian: bool,
    financial: bool,
    contact: bool,
    /// Written by a batch: both persons were in the directory.
    written: bool,
}

impl LinkFlags {
    fn merge(&mut self, relative: &super::Relative, from_pupil: bool) {
        if from_pupil {
            self.relation.clone_from(&relative.relation);
            self.legal_guardian = relative.legal_guardian;
            self.financial = relative.financial;
            self.contact = relative.contact;
        }
    }
}

/// What a run has done to a key so far; the strongest wins when a person
/// appears in several batches (created, then found unchanged, is created).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    /// Named by a request that was skipped or changed nothing stored.
    Mentioned,
    Unchanged,
    Updated,
    Deactivated,
    Created,
}

/// What a run carries from one batch of records to the next. A feed is
/// planned and written a batch at a time, so that its memory holds one
/// batch's persons and these indexes, never the whole feed; with them, the
/// batches decide what one plan of the whole run would.
#[derive(Debug, Default)]
pub struct RunState {
    /// Every pupil ↔ person in charge link the run states, by (parent,
    /// child), whichever side stated it first.
    links: BTreeMap<(SyncKey, SyncKey), LinkFlags>,
    /// The same links by (child, parent).
    by_child: BTreeSet<(SyncKey, SyncKey)>,
    /// Every key the run's records name: a Complet file spares them.
    seen: HashMap<SyncKey, Seen>,
}

/// How many persons the run created, updated, found unchanged or deactivated
/// (each person once, however many batches named them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunCounts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub deactivated: usize,
}

impl RunState {
    /// What a batch's plan must fetch: [`lookup_for`] its records, plus the
    /// persons that links stated by earlier batches tie them to.
    pub fn lookup_for(&self, records: &[FileRecord], pattern: LoginPattern) -> AafLookup {
        let mut lookup = lookup_for(records, &[], pattern);
        let mut linked = BTreeSet::new();
        for r in records {
            linked.extend(self.linked_to(&r.record.key).map(|(parent, child)| {
                if *parent == r.record.key {
                    child.clone()
                } else {
                    parent.clone()
                }
            }));
        }
        if !linked.is_empty() {
            linked.extend(std::mem::take(&mut lookup.keys));
            lookup.keys = linked.into_iter().collect();
        }
        lookup
    }

    /// The stated links where `key` is the parent or the child.
    fn linked_to<'a>(&'a self, key: &'a SyncKey) -> impl Iterator<Item = (&'a SyncKey, &'a SyncKey)> + 'a {
        let start = || SyncKey::from_stored(String::new());
        let as_parent = self
            .links
            .range((key.clone(), start())..)
            .map(|(pair, _)| pair)
            .take_while(move |(parent, _)| parent == key)
            .map(|(parent, child)| (parent, child));
        let as_child = self
            .by_child
            .range((key.clone(), start())..)
            .take_while(move |(child, _)| child == key)
            .map(|(child, parent)| (parent, child));
        as_parent.chain(as_child)
    }

    /// An account ended after the batches (a parent whose last child the
    /// run ended): counted once as deactivated. False when no record of the
    /// run named it, for the caller to count.
    pub fn ended_after_batches(&mut self, key: &SyncKey) -> bool {
        let named = self.mentioned(key);
        if named {
            self.see(key, Seen::Deactivated);
        }
        named
    }

    /// Whether a record of the run named this key (a Complet file spares it).
    pub fn mentioned(&self, key: &SyncKey) -> bool {
        self.seen.contains_key(key)
    }

    /// The links the store could write (both persons found), from a batch's
    /// [`AafPlan::links`].
    pub fn links_written<'a>(&mut self, written: impl IntoIterator<Item = &'a Link>) {
        for link in written {
            if let Some(flags) = self.links.get_mut(&(link.parent.clone(), link.child.clone())) {
                flags.written = true;
            }
        }
    }

    /// Links the run stated that were never written: one of the two persons
    /// is neither in the directory nor created by the run.
    pub fn links_left_out(&self) -> usize {
        self.links.values().filter(|f| !f.written).count()
    }

    pub fn counts(&self) -> RunCounts {
        let mut counts = RunCounts::default();
        for seen in self.seen.values() {
            match seen {
                Seen::Mentioned => {}
                Seen::Unchanged => counts.unchanged += 1,
                Seen::Updated => counts.updated += 1,
                Seen::Deactivated => counts.deactivated += 1,
                Seen::Created => counts.created += 1,
            }
        }
        counts
    }

    fn see(&mut self, key: &SyncKey, seen: Seen) {
        match self.seen.get_mut(key) {
            Some(was) => *was = (*was).max(seen),
            None => {
                self.seen.insert(key.clone(), seen);
            }
        }
    }
}

/// A person as the run sees them between two requests.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    profile: Profile,
    attrs: Attributes,
    /// Establishment → (role, active).
    memberships: BTreeMap<Uai, (String, bool)>,
    groups: BTreeSet<GroupRef>,
    active: bool,
}

impl State {
    fn of(user: &ExistingUser) -> State {
        State {
            profile: user.profile,
            attrs: user.attrs.clone(),
            memberships: user
                .memberships
                .iter()
                .map(|m| (m.uai.clone(), (m.role.clone(), m.active)))
                .collect(),
            groups: user.groups.iter().cloned().collect(),
            active: user.active,
        }
    }

    fn active_places(&self) -> BTreeSet<Uai> {
        self.memberships
            .iter()
            .filter(|(_, (_, active))| *active && self.active)
            .map(|(u, _)| u.clone())
            .collect()
    }

    fn active_memberships(&self) -> BTreeMap<&Uai, &str> {
        self.memberships
            .iter()
            .filter(|(_, (_, active))| *active)
            .map(|(u, (r, _))| (u, r.as_str()))
            .collect()
    }
}

/// The role of a person in one establishment from their functions there:
/// `administrateur` for DIR, `enseignant` otherwise (guide §4.1.B.B).
fn role_in(functions: &[&super::Function]) -> String {
    if functions.iter().any(|f| f.code == "DIR") {
        "administrateur".into()
    } else {
        role_for(Profile::Administratif, functions.first().map(|f| f.code.as_str())).into()
    }
}

/// Applies one record to a person's state. Returns false when the record was
/// skipped (an issue or a notice has been pushed).
/// `children_places`: for a parent, the establishments where their children
/// are (the parent's memberships follow them).
fn apply(
    state: &mut Option<State>,
    r: &FileRecord,
    known: &HashSet<Uai>,
    children_places: &BTreeSet<Uai>,
    issues: &mut Vec<Issue>,
    notices: &mut Vec<AafNotice>,
) {
    let rec = &r.record;
    let notice = |message: String| AafNotice {
        file: r.file.clone(),
        request: Some(rec.request),
        key: Some(rec.key.to_string()),
        message,
    };
    for n in &rec.notices {
        notices.push(notice(n.clone()));
    }
    match rec.kind {
        RequestKind::Delete => {
            match state.as_mut() {
                Some(s) => {
                    s.active = false;
                    for (_, active) in s.memberships.values_mut() {
                        *active = false;
                    }
                }
                None => notices.push(notice(format!(
                    "suppression de {} : compte inconnu de l'annuaire, rien à faire",
                    rec.key
                ))),
            }
            return;
        }
        RequestKind::Modify if state.is_none() => {
            issues.push(Issue {
                file: r.file.clone(),
                request: rec.request,
                key: Some(rec.key.to_string()),
                code: "unknown_account",
                message: format!(
                    "modification de {} : ce compte n'existe pas dans l'annuaire ; il sera créé par le prochain flux Complet (addRequest)",
                    rec.key
                ),
            });
            return;
        }
        _ => {}
    }

    // The functions in known establishments, and the ones we must leave out.
    let mut unknown: BTreeSet<Uai> = BTreeSet::new();
    let mut keep_known = |uai: &Uai| {
        let ok = known.contains(uai);
        if !ok {
            unknown.insert(uai.clone());
        }
        ok
    };
    // Functions in structures the directory does not know give no place, but
    // those a request states still say what the person does: `(code, discipline)`.
    let mut elsewhere: Vec<(&str, Option<&str>)> = Vec::new();
    let functions: Option<(&FunctionsChange, Vec<&super::Function>)> = rec.functions.as_ref().map(|change| {
        let (list, stated) = match change {
            FunctionsChange::Replace(f) | FunctionsChange::Add(f) => (f, true),
            FunctionsChange::Remove(f) => (f, false),
        };
        let mut placed = Vec::new();
        for f in list {
            if keep_known(&f.uai) {
                placed.push(f);
            } else if stated {
                elsewhere.push((f.code.as_str(), f.discipline.as_deref()));
            }
        }
        if stated {
            elsewhere.extend(rec.functions_elsewhere.iter().map(|(c, d)| (c.as_str(), d.as_deref())));
        }
        (change, placed)
    });
    let teaches_elsewhere = elsewhere.iter().any(|(code, _)| *code == "ENS");
    let attached: Vec<Uai> = rec
        .attached
        .iter()
        .flatten()
        .filter(|u| keep_known(u))
        .cloned()
        .collect();
    // A pupil's classes and groups in known establishments.
    let labelled = |list: &Option<Vec<(Uai, String)>>, kind: GroupKind| -> Vec<GroupRef> {
        list.iter()
            .flatten()
            .filter(|(u, _)| known.contains(u))
            .map(|(uai, name)| GroupRef {
                uai: uai.clone(),
                kind,
                name: name.clone(),
            })
            .collect()
    };
    let pupil_groups: Vec<GroupRef> = labelled(&rec.classes, GroupKind::Class)
        .into_iter()
        .chain(labelled(&rec.groups, GroupKind::Group))
        .collect();
    for (uai, _) in rec.classes.iter().chain(&rec.groups).flatten() {
        keep_known(uai);
    }
    for uai in &unknown {
        notices.push(notice(format!(
            "établissement {uai} inconnu de l'annuaire (absent des structures du flux) : rattachement ignoré ; importez d'abord le fichier EtabEducNat"
        )));
    }

    let new_profile = match rec.person {
        PersonKind::Pupil => Some(Profile::Eleve),
        PersonKind::Parent => Some(Profile::Parent),
        PersonKind::Staff => match &functions {
            Some((FunctionsChange::Replace(_) | FunctionsChange::Add(_), list))
                if list.iter().any(|f| f.is_teaching()) || teaches_elsewhere =>
            {
                Some(Profile::Enseignant)
            }
            Some((FunctionsChange::Replace(_), list)) if !list.is_empty() || !elsewhere.is_empty() => {
                Some(Profile::Administratif)
            }
            _ => None,
        },
    };
    // Where a pupil or a parent is, when the record says it; staff places
    // come from their functions below.
    let places: Option<BTreeSet<Uai>> = match rec.person {
        PersonKind::Staff => None,
        PersonKind::Pupil => (rec.attached.is_some() || rec.classes.is_some() || rec.groups.is_some()).then(|| {
            attached
                .iter()
                .cloned()
                .chain(pupil_groups.iter().map(|g| g.uai.clone()))
                .collect()
        }),
        PersonKind::Parent => (rec.relatives.is_some() || !children_places.is_empty()).then(|| children_places.clone()),
    };

    let creating = state.is_none();
    if creating {
        let has_place = match &places {
            None => functions.as_ref().is_some_and(|(_, l)| !l.is_empty()) || !attached.is_empty(),
            Some(places) => !places.is_empty(),
        };
        if !has_place {
            let (code, message) = if rec.person == PersonKind::Parent {
                (
                    "no_child",
                    format!(
                        "{} n'est lié(e) à aucun élève connu de l'annuaire : compte non créé ; importez le fichier Eleve de ses enfants avec ce fichier",
                        rec.key
                    ),
                )
            } else {
                (
                    "no_establishment",
                    format!(
                        "{} n'est rattaché(e) à aucun établissement connu de l'annuaire : compte non créé ; importez le fichier EtabEducNat de ses établissements avec ce fichier",
                        rec.key
                    ),
                )
            };
            issues.push(Issue {
                file: r.file.clone(),
                request: rec.request,
                key: Some(rec.key.to_string()),
                code,
                message,
            });
            return;
        }
        *state = Some(State {
            profile: new_profile.unwrap_or(Profile::Administratif),
            attrs: Attributes::default(),
            memberships: BTreeMap::new(),
            groups: BTreeSet::new(),
            active: true,
        });
    }
    let Some(s) = state.as_mut() else { return };
    if rec.kind == RequestKind::Add {
        // An addRequest is the person's whole record: whoever was deleted comes back.
        s.active = true;
    }
    if let Some(p) = new_profile {
        s.profile = p;
    }
    if let Some(v) = &rec.last_name {
        s.attrs.last_name.clone_from(v);
    }
    if let Some(v) = &rec.first_name {
        s.attrs.first_name.clone_from(v);
    }
    if let Some(v) = rec.civility {
        s.attrs.civility = v;
    }
    if let Some(v) = rec.birth_date {
        s.attrs.birth_date = v;
    }
    // The optional attributes the request carries replace the stored ones.
    macro_rules! set_present {
        ($($field:ident),*) => {$(
            if let Some(v) = &rec.$field {
                s.attrs.$field.clone_from(v);
            }
        )*};
    }
    set_present!(email, ine, level, landline, mobile, address, postal_code, city);
    if let (Some(classes), PersonKind::Pupil) = (&rec.classes, rec.person) {
        s.attrs.class_name = classes.first().map(|(_, label)| label.clone());
    }
    // A list the request carries is the complete one: the former class
    // (or teaching groups) is left.
    if rec.classes.is_some() {
        s.groups.retain(|g| g.kind != GroupKind::Class);
    }
    if rec.groups.is_some() {
        s.groups.retain(|g| g.kind != GroupKind::Group);
    }
    s.groups.extend(pupil_groups);
    if let Some(places) = &places {
        let role = role_for(s.profile, None).to_string();
        if rec.kind == RequestKind::Add || !places.is_empty() {
            // The record's places are the complete list: others are left.
            for (uai, (_, active)) in s.memberships.iter_mut() {
                if !places.contains(uai) {
                    *active = false;
                }
            }
        }
        for uai in places {
            s.memberships.insert(uai.clone(), (role.clone(), true));
        }
    }
    // A parent none of whose children is left in the directory has no reason
    // to be in it: deactivated like any account (restorable, purged after
    // the retention), back with the record of a child who comes back.
    if rec.person == PersonKind::Parent && places.as_ref().is_some_and(BTreeSet::is_empty) {
        s.active = false;
    }

    if let Some((change, list)) = &functions {
        let mut by_uai: BTreeMap<&Uai, Vec<&super::Function>> = BTreeMap::new();
        for f in list.iter().copied() {
            by_uai.entry(&f.uai).or_default().push(f);
        }
        match change {
            FunctionsChange::Replace(_) | FunctionsChange::Add(_) => {
                if matches!(change, FunctionsChange::Replace(_)) {
                    // The complete list: establishments not named any more are left.
                    for (uai, (_, active)) in s.memberships.iter_mut() {
                        if !by_uai.contains_key(uai) && !attached.contains(uai) {
                            *active = false;
                        }
                    }
                }
                for (uai, fs) in &by_uai {
                    s.memberships.insert((*uai).clone(), (role_in(fs), true));
                    for f in fs.iter().filter(|f| f.is_teaching()) {
                        if let Some(d) = &f.discipline {
                            s.groups.insert(GroupRef {
                                uai: (*uai).clone(),
                                kind: GroupKind::Subject,
                                name: d.clone(),
                            });
                        }
                    }
                }
                let all: Vec<&super::Function> = by_uai.values().flatten().copied().collect();
                match s.profile {
                    Profile::Enseignant => {
                        if let Some(d) = all
                            .iter()
                            .filter(|f| f.is_teaching())
                            .find_map(|f| f.discipline.clone())
                            .or_else(|| {
                                elsewhere
                                    .iter()
                                    .filter(|(code, _)| *code == "ENS")
                                    .find_map(|(_, d)| d.map(str::to_string))
                            })
                        {
                            s.attrs.subject = Some(d);
                        }
                    }
                    _ => {
                        let code = all
                            .iter()
                            .find(|f| f.code == "DIR")
                            .or_else(|| all.iter().find(|f| !f.is_teaching() && f.has_code()))
                            .map(|f| f.code.clone());
                        if code.is_some() {
                            s.attrs.function_code = code;
                        }
                    }
                }
            }
            FunctionsChange::Remove(_) => {
                for uai in by_uai.keys() {
                    if let Some((_, active)) = s.memberships.get_mut(*uai) {
                        *active = false;
                    }
                }
            }
        }
    }
    for uai in &attached {
        let role = role_for(s.profile, s.attrs.function_code.as_deref()).to_string();
        let entry = s.memberships.entry(uai.clone()).or_insert((role, true));
        entry.1 = true;
    }
}

/// The plan of one whole run in one piece: person records in processing
/// order, the Complet scopes (with the keys of the AAF accounts in each,
/// fetched by the store), and the snapshot (those accounts and every key of
/// the records). The store plans a feed batch by batch ([`plan_batch`], then
/// [`complet`]); this is the same decisions for a run that fits in one.
pub fn plan(
    records: &[FileRecord],
    scopes: &[(CompletScope, Vec<SyncKey>)],
    snapshot: &Snapshot,
    options: &AafPlanOptions,
) -> AafPlan {
    let mut run = RunState::default();
    let mut plan = plan_batch(records, snapshot, options, &mut run);
    let ended = complet(scopes, |k| run.mentioned(k), snapshot, options);
    // Links between two persons who are in the directory after the run.
    let created: HashSet<&SyncKey> = plan.creates.iter().map(|c| &c.key).collect();
    let exists = |k: &SyncKey| snapshot.users.contains_key(k) || created.contains(k);
    let links: Vec<Link> = plan
        .links
        .iter()
        .filter(|l| exists(&l.parent) && exists(&l.child))
        .cloned()
        .collect();
    run.links_written(&links);
    plan.links = links;
    if let Some(notice) = links_left_out_notice(run.links_left_out()) {
        plan.notices.push(notice);
    }
    plan.deactivations.extend(ended.deactivations);
    plan.deactivations
        .sort_by(|a, b| (&a.last_name, &a.first_name, &a.key).cmp(&(&b.last_name, &b.first_name, &b.key)));
    plan.scope_size = ended.scope_size;
    plan.rejection = ended.rejection;
    plan
}

/// The notice of the links a run stated but could not keep, when there are.
pub fn links_left_out_notice(count: usize) -> Option<AafNotice> {
    (count > 0).then(|| AafNotice {
        file: String::new(),
        request: None,
        key: None,
        message: format!(
            "{count} lien(s) entre un élève et une personne en charge ignoré(s) : l'un des deux n'est ni dans l'annuaire ni dans le flux"
        ),
    })
}

/// Parents whose last child the run deactivated (found by the store among
/// the parents of those children, in `snapshot`): deactivated like any
/// account, as a parent's record with no child left would be.
pub fn parents_without_child(snapshot: &Snapshot) -> Vec<Deactivation> {
    let mut ended: Vec<Deactivation> = snapshot
        .users
        .values()
        .filter(|u| u.active && u.profile == Profile::Parent && u.source == Source::Aaf)
        .map(|u| Deactivation {
            user_id: u.id,
            key: u.key.clone(),
            login: u.login.clone(),
            last_name: u.attrs.last_name.clone(),
            first_name: u.attrs.first_name.clone(),
            establishments: u
                .memberships
                .iter()
                .filter(|m| m.active)
                .map(|m| m.uai.clone())
                .collect(),
            whole_account: true,
        })
        .collect();
    ended.sort_by(|a, b| a.key.cmp(&b.key));
    ended.dedup_by(|a, b| a.user_id == b.user_id);
    ended
}

/// What Complet files end: the AAF accounts of their establishments that no
/// record of the run named.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompletOutcome {
    pub deactivations: Vec<Deactivation>,
    /// AAF accounts in the Complet files' establishments before the run.
    pub scope_size: usize,
    pub rejection: Option<AafRejection>,
}

/// Complet: the AAF accounts of the files' establishments (`scopes`, with
/// the keys the store found in each) that the run never mentions lose those
/// memberships, and their account when they have no other. `snapshot` holds
/// at least the accounts not mentioned. Above the threshold, the run is refused.
pub fn complet(
    scopes: &[(CompletScope, Vec<SyncKey>)],
    mentioned: impl Fn(&SyncKey) -> bool,
    snapshot: &Snapshot,
    options: &AafPlanOptions,
) -> CompletOutcome {
    let mut scope_keys: HashSet<&SyncKey> = HashSet::new();
    let mut complet_ended: BTreeMap<SyncKey, BTreeSet<Uai>> = BTreeMap::new();
    for (scope, keys) in scopes {
        let uais: BTreeSet<&Uai> = scope.establishments.iter().collect();
        for key in keys {
            scope_keys.insert(key);
            if mentioned(key) {
                continue;
            }
            let Some(user) = snapshot.users.get(key) else { continue };
            if user.source != Source::Aaf {
                continue;
            }
            let ended = complet_ended.entry(key.clone()).or_default();
            ended.extend(
                user.memberships
                    .iter()
                    .filter(|m| m.active && uais.contains(&m.uai))
                    .map(|m| m.uai.clone()),
            );
        }
    }
    let mut deactivations = Vec::new();
    for (key, ended) in complet_ended {
        let Some(user) = snapshot.users.get(&key) else { continue };
        if ended.is_empty() {
            continue;
        }
        let whole_account = !user.memberships.iter().any(|m| m.active && !ended.contains(&m.uai));
        deactivations.push(Deactivation {
            user_id: user.id,
            key,
            login: user.login.clone(),
            last_name: user.attrs.last_name.clone(),
            first_name: user.attrs.first_name.clone(),
            establishments: ended.into_iter().collect(),
            whole_account,
        });
    }
    let scope_size = scope_keys.len();
    let rejection = deletion_guard(
        deactivations.len(),
        scope_size,
        options.deletion_threshold_percent,
        options.confirm_deletions,
    )
    .map(AafRejection::DeletionThreshold);
    deactivations.sort_by(|a, b| (&a.last_name, &a.first_name, &a.key).cmp(&(&b.last_name, &b.first_name, &b.key)));
    CompletOutcome {
        deactivations,
        scope_size,
        rejection,
    }
}

/// The plan of one batch of a run's person records, in processing order,
/// against a snapshot of every key they name (see [`RunState::lookup_for`]).
/// Deactivations come only from deleteRequests here (Complet: [`complet`]
/// once every batch is written). `links` are the run's stated links that
/// touch the batch's persons: the store writes those whose two persons it finds.
pub fn plan_batch(
    records: &[FileRecord],
    snapshot: &Snapshot,
    options: &AafPlanOptions,
    run: &mut RunState,
) -> AafPlan {
    let mut issues = Vec::new();
    let mut notices = Vec::new();
    let mut states: HashMap<SyncKey, Option<State>> = HashMap::new();
    let mut order: Vec<(SyncKey, String, usize)> = Vec::new();
    let mut links_replaced: BTreeSet<SyncKey> = BTreeSet::new();

    for r in records {
        let key = &r.record.key;
        run.see(key, Seen::Mentioned);
        if let Some(existing) = snapshot.users.get(key) {
            if existing.source != Source::Aaf {
                issues.push(Issue {
                    file: r.file.clone(),
                    request: r.record.request,
                    key: Some(key.to_string()),
                    code: "key_not_aaf",
                    message: format!(
                        "la clé {key} appartient à un compte {} ({}) que le flux ne modifie jamais : si c'est la même personne, réconciliez plutôt deux comptes (annuaire reconcile)",
                        existing.source, existing.login
                    ),
                });
                continue;
            }
            let (same_family, file_kind) = match r.record.person {
                PersonKind::Staff => (existing.profile.is_staff_family(), "PersEducNat"),
                PersonKind::Pupil => (existing.profile == Profile::Eleve, "Eleve"),
                PersonKind::Parent => (existing.profile == Profile::Parent, "PersRelEleve"),
            };
            if !same_family {
                issues.push(Issue {
                    file: r.file.clone(),
                    request: r.record.request,
                    key: Some(key.to_string()),
                    code: "key_other_profile",
                    message: format!(
                        "la clé {key} appartient à un compte {} : une fiche {file_kind} ne peut pas le modifier",
                        existing.profile.label()
                    ),
                });
                continue;
            }
        }
        if !states.contains_key(key) {
            order.push((key.clone(), r.file.clone(), r.record.request));
        }
        let rec = &r.record;
        // The links both files state, whichever comes first: a pupil's
        // persons in charge, a parent's children.
        for relative in rec.relatives.iter().flatten() {
            let (parent, child) = match rec.person {
                PersonKind::Pupil => (relative.key.clone(), key.clone()),
                PersonKind::Parent => (key.clone(), relative.key.clone()),
                PersonKind::Staff => continue,
            };
            run.by_child.insert((child.clone(), parent.clone()));
            let link = run.links.entry((parent, child)).or_default();
            link.merge(relative, rec.person == PersonKind::Pupil);
        }
        if rec.kind == RequestKind::Add && rec.relatives.is_some() {
            links_replaced.insert(key.clone());
        }
        let children_places: BTreeSet<Uai> = if rec.person == PersonKind::Parent {
            // The parent's links, found by range (the map is ordered by parent).
            run.links
                .range((key.clone(), SyncKey::from_stored(String::new()))..)
                .map(|(pair, _)| pair)
                .take_while(|(parent, _)| parent == key)
                .filter_map(|(_, child)| match states.get(child) {
                    Some(state) => state.as_ref().map(|s| s.active_places()),
                    None => snapshot.users.get(child).map(|u| State::of(u).active_places()),
                })
                .flatten()
                .collect()
        } else {
            BTreeSet::new()
        };
        let state = states
            .entry(key.clone())
            .or_insert_with(|| snapshot.users.get(key).map(State::of));
        apply(
            state,
            r,
            &snapshot.establishments,
            &children_places,
            &mut issues,
            &mut notices,
        );
    }

    // The run's links that touch this batch's persons (stated now or by an
    // earlier batch): the store writes those whose two persons it finds.
    let mut touched: BTreeSet<(&SyncKey, &SyncKey)> = BTreeSet::new();
    for (key, _, _) in &order {
        touched.extend(run.linked_to(key));
    }
    let links: Vec<Link> = touched
        .into_iter()
        .filter_map(|(parent, child)| {
            let f = run.links.get(&(parent.clone(), child.clone()))?;
            Some(Link {
                parent: parent.clone(),
                child: child.clone(),
                relation: f.relation.clone(),
                legal_guardian: f.legal_guardian,
                financial: f.financial,
                contact: f.contact,
            })
        })
        .collect();
    let mut deactivations = Vec::new();

    let mut allocator = LoginAllocator::new(snapshot.taken_logins.iter().cloned());
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    let mut unchanged = Vec::new();
    for (key, file, request) in order {
        let Some(Some(after)) = states.remove(&key) else {
            continue;
        };
        match snapshot.users.get(&key) {
            None => {
                if !after.active {
                    continue;
                }
                let login = allocator.allocate(
                    &options
                        .login_pattern
                        .base(&after.attrs.first_name, &after.attrs.last_name),
                );
                creates.push(Create {
                    origin: Origin::Request { file, request },
                    key,
                    profile: after.profile,
                    login,
                    imposed_password: None,
                    attrs: after.attrs,
                    memberships: after
                        .memberships
                        .into_iter()
                        .filter(|(_, (_, active))| *active)
                        .map(|(uai, (role, _))| Membership { uai, role })
                        .collect(),
                    groups: after.groups.into_iter().collect(),
                });
            }
            Some(existing) => {
                let before = State::of(existing);
                if before.active && !after.active {
                    deactivations.push(Deactivation {
                        user_id: existing.id,
                        key,
                        login: existing.login.clone(),
                        last_name: existing.attrs.last_name.clone(),
                        first_name: existing.attrs.first_name.clone(),
                        establishments: before.active_memberships().keys().map(|u| (*u).clone()).collect(),
                        whole_account: true,
                    });
                    continue;
                }
                let changes = field_changes(&before.attrs, &after.attrs);
                let was = before.active_memberships();
                let now = after.active_memberships();
                let memberships: Vec<Membership> = now
                    .iter()
                    .filter(|(u, r)| was.get(*u) != Some(*r))
                    .map(|(u, r)| Membership {
                        uai: (*u).clone(),
                        role: r.to_string(),
                    })
                    .collect();
                let left: Vec<Uai> = was
                    .keys()
                    .filter(|u| !now.contains_key(*u))
                    .map(|u| (*u).clone())
                    .collect();
                let groups: Vec<GroupRef> = after.groups.difference(&before.groups).cloned().collect();
                let groups_left: Vec<GroupRef> = before.groups.difference(&after.groups).cloned().collect();
                let profile = (after.profile != before.profile).then_some(after.profile);
                let reactivate = !before.active && after.active;
                if changes.is_empty()
                    && memberships.is_empty()
                    && left.is_empty()
                    && groups.is_empty()
                    && groups_left.is_empty()
                    && profile.is_none()
                    && !reactivate
                {
                    unchanged.push(Unchanged {
                        origin: Origin::Request { file, request },
                        user_id: existing.id,
                        key,
                        login: Some(existing.login.clone()),
                    });
                } else {
                    updates.push(Update {
                        origin: Origin::Request { file, request },
                        user_id: existing.id,
                        key,
                        login: Some(existing.login.clone()),
                        profile,
                        attrs: after.attrs,
                        changes,
                        memberships,
                        left,
                        groups,
                        groups_left,
                        reactivate,
                        shared_with: Vec::new(),
                    });
                }
            }
        }
    }

    for c in &creates {
        run.see(&c.key, Seen::Created);
    }
    for u in &updates {
        run.see(&u.key, Seen::Updated);
    }
    for u in &unchanged {
        run.see(&u.key, Seen::Unchanged);
    }
    for d in &deactivations {
        run.see(&d.key, Seen::Deactivated);
    }
    let new_groups: BTreeSet<GroupRef> = creates
        .iter()
        .flat_map(|c| c.groups.iter())
        .chain(updates.iter().flat_map(|u| u.groups.iter()))
        .filter(|g| !snapshot.groups.contains(*g))
        .cloned()
        .collect();

    AafPlan {
        creates,
        updates,
        unchanged,
        deactivations,
        issues,
        notices,
        new_groups: new_groups.into_iter().collect(),
        links,
        links_replaced: links_replaced.into_iter().collect(),
        scope_size: 0,
        rejection: None,
    }
}

/// The identity fields the feed owns, compared for the report.
fn field_changes(before: &Attributes, after: &Attributes) -> Vec<FieldChange> {
    [
        Field::Civility,
        Field::LastName,
        Field::FirstName,
        Field::BirthDate,
        Field::Email,
        Field::Subject,
        Field::Function,
    ]
    .into_iter()
    .filter_map(|field| {
        let b = attribute_value(before, field);
        let a = attribute_value(after, field);
        (b != a).then(|| FieldChange {
            field,
            before: b.unwrap_or_default(),
            after: a.unwrap_or_default(),
        })
    })
    .collect()
}

/// The result file of a run: the accounts it created with their generated
/// credentials (same format as the CSV import's: UTF-8 BOM, `;`, Excel-safe).
/// Started empty; each batch adds its accounts ([`add_created`]).
pub fn result_file() -> crate::result_file::CsvBuilder {
    let header: Vec<String> = [
        "Clé de synchronisation",
        "Profil",
        "Civilité",
        "Nom",
        "Prénom",
        "Établissements",
        "Nom d'utilisateur",
        "Mot de passe",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    crate::result_file::CsvBuilder::new(&header)
}

/// Adds the accounts a batch created, with their passwords (in the order of
/// the creates), to the run's result file.
pub fn add_created(file: &mut crate::result_file::CsvBuilder, creates: &[Create], passwords: &[&str]) {
    file.rows(creates.iter().zip(passwords).map(|(c, password)| {
        use std::borrow::Cow;
        vec![
            Cow::Owned(c.key.to_string()),
            Cow::Borrowed(c.profile.label()),
            Cow::Borrowed(c.attrs.civility.map(|x| x.as_str()).unwrap_or("")),
            Cow::Owned(c.attrs.last_name.clone()),
            Cow::Owned(c.attrs.first_name.clone()),
            Cow::Owned(
                c.memberships
                    .iter()
                    .map(|m| m.uai.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Cow::Owned(c.login.to_string()),
            Cow::Owned(password.to_string()),
        ]
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aaf::{Function, PersonRecord};
    use crate::person::ExistingMembership;
    use crate::values::Login;

    fn uai(s: &str) -> Uai {
        Uai::parse(s).unwrap_or_else(|_| panic!("uai"))
    }

    fn person(kind: RequestKind, jointure: &str, last: &str, functions: &[&str]) -> FileRecord {
        FileRecord {
            file: "f.xml".into(),
            record: PersonRecord {
                last_name: Some(last.into()),
                first_name: Some("Anne".into()),
                functions: Some(FunctionsChange::Replace(
                    functions
                        .iter()
                        .filter_map(|f| Function::parse(f, &Default::default()).ok())
                        .collect(),
                )),
                ..PersonRecord::new(
                    1,
                    kind,
                    PersonKind::Staff,
                    SyncKey::from_stored(format!("PERSON.{jointure}")),
                )
            },
        }
    }

    fn snapshot(users: Vec<ExistingUser>) -> Snapshot {
        Snapshot {
            users: users.into_iter().map(|u| (u.key.clone(), u)).collect(),
            establishments: [uai("0750654D"), uai("0750655E")].into_iter().collect(),
            ..Snapshot::default()
        }
    }

    fn existing(id: i64, jointure: &str, source: Source, uais: &[&str]) -> ExistingUser {
        ExistingUser {
            id,
            key: SyncKey::from_stored(format!("PERSON.{jointure}")),
            profile: Profile::Enseignant,
            source,
            protected: source == Source::Aaf,
            active: true,
            login: Login::from_stored(format!("login{id}")),
            attrs: Attributes {
                last_name: "ANCIEN".into(),
                first_name: "Anne".into(),
                subject: Some("MATHS".into()),
                ..Attributes::default()
            },
            memberships: uais
                .iter()
                .map(|u| ExistingMembership {
                    uai: uai(u),
                    role: "enseignant".into(),
                    active: true,
                })
                .collect(),
            groups: vec![],
        }
    }

    #[test]
    fn add_creates_with_profile_roles_and_subject() {
        let records = [
            person(
                RequestKind::Add,
                "1",
                "MARTIN",
                &["0750654D$ENS$ENSEIGNEMENT$L1300$MATHS"],
            ),
            person(RequestKind::Add, "2", "DURAND", &["0750654D$DIR$DIRECTION"]),
        ];
        let p = plan(&records, &[], &snapshot(vec![]), &AafPlanOptions::default());
        assert_eq!(p.creates.len(), 2);
        assert_eq!(p.creates[0].profile, Profile::Enseignant);
        assert_eq!(p.creates[0].attrs.subject.as_deref(), Some("MATHS"));
        assert_eq!(p.creates[0].login.as_str(), "amartin");
        assert_eq!(p.creates[1].profile, Profile::Administratif);
        assert_eq!(p.creates[1].memberships[0].role, "administrateur");
        assert_eq!(p.new_groups.len(), 1);
    }

    /// A teacher whose teaching function is in a structure the directory
    /// does not know (absent from the feed, or named by an unknown
    /// jointure) is still a teacher of their subject where they are attached.
    #[test]
    fn functions_in_unknown_structures_still_say_who_the_person_is() {
        let mut by_uai = person(
            RequestKind::Add,
            "1",
            "MARTIN",
            &["0940072T$ENS$ENSEIGNEMENT$L1300$MATHS"],
        );
        by_uai.record.attached = Some(vec![uai("0750654D")]);
        let mut by_jointure = person(RequestKind::Add, "2", "DURAND", &[]);
        by_jointure.record.attached = Some(vec![uai("0750654D")]);
        by_jointure.record.functions_elsewhere = vec![("ENS".into(), Some("HISTOIRE".into()))];
        let mut staff = person(RequestKind::Add, "3", "PETIT", &[]);
        staff.record.attached = Some(vec![uai("0750654D")]);
        staff.record.functions_elsewhere = vec![("DIR".into(), None)];
        let p = plan(
            &[by_uai, by_jointure, staff],
            &[],
            &snapshot(vec![]),
            &AafPlanOptions::default(),
        );
        let made: Vec<(Profile, Option<&str>, Vec<&str>)> = p
            .creates
            .iter()
            .map(|c| {
                (
                    c.profile,
                    c.attrs.subject.as_deref(),
                    c.memberships.iter().map(|m| m.uai.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            made,
            [
                (Profile::Enseignant, Some("MATHS"), vec!["0750654D"]),
                (Profile::Enseignant, Some("HISTOIRE"), vec!["0750654D"]),
                (Profile::Administratif, None, vec!["0750654D"]),
            ]
        );
    }

    #[test]
    fn update_changes_names_and_moves_establishment() {
        let snap = snapshot(vec![existing(7, "1", Source::Aaf, &["0750654D"])]);
        let records = [person(RequestKind::Add, "1", "MARTIN", &["0750655E$ENS$ENSEIGNEMENT"])];
        let p = plan(&records, &[], &snap, &AafPlanOptions::default());
        assert_eq!(p.updates.len(), 1);
        let u = &p.updates[0];
        assert_eq!(u.changes[0].field, Field::LastName);
        assert_eq!(u.left, [uai("0750654D")]);
        assert_eq!(u.memberships[0].uai, uai("0750655E"));
    }

    #[test]
    fn csv_accounts_are_never_touched_and_unknown_modifies_are_issues() {
        let snap = snapshot(vec![existing(7, "1", Source::Csv, &["0750654D"])]);
        let records = [
            person(RequestKind::Add, "1", "MARTIN", &["0750654D$ENS$ENSEIGNEMENT"]),
            person(RequestKind::Modify, "9", "X", &[]),
        ];
        let p = plan(&records, &[], &snap, &AafPlanOptions::default());
        let codes: Vec<&str> = p.issues.iter().map(|i| i.code).collect();
        assert_eq!(codes, ["key_not_aaf", "unknown_account"]);
        assert!(p.creates.is_empty() && p.updates.is_empty());
    }

    #[test]
    fn complet_deactivates_absent_aaf_accounts_above_threshold_only_when_confirmed() {
        let snap = snapshot(vec![
            existing(1, "1", Source::Aaf, &["0750654D"]),
            existing(2, "2", Source::Aaf, &["0750654D", "0750655E"]),
        ]);
        let scope = CompletScope {
            file: "f".into(),
            establishments: vec![uai("0750654D")],
            profiles: vec![Profile::Enseignant, Profile::Administratif],
        };
        let keys = vec![
            SyncKey::from_stored("PERSON.1".into()),
            SyncKey::from_stored("PERSON.2".into()),
        ];
        let p = plan(&[], &[(scope.clone(), keys.clone())], &snap, &AafPlanOptions::default());
        assert_eq!(p.deactivations.len(), 2);
        assert!(p.rejection.is_some());
        let confirmed = AafPlanOptions {
            confirm_deletions: Some(2),
            ..AafPlanOptions::default()
        };
        let p = plan(&[], &[(scope, keys)], &snap, &confirmed);
        assert!(p.rejection.is_none());
        let partial: Vec<bool> = p.deactivations.iter().map(|d| d.whole_account).collect();
        assert_eq!(partial, [true, false]);
    }

    #[test]
    fn delete_then_add_in_one_run_reactivates() {
        let mut gone = existing(1, "1", Source::Aaf, &["0750654D"]);
        gone.active = false;
        gone.memberships[0].active = false;
        let records = [person(RequestKind::Add, "1", "ANCIEN", &["0750654D$ENS$ENSEIGNEMENT"])];
        let p = plan(&records, &[], &snapshot(vec![gone]), &AafPlanOptions::default());
        assert!(p.updates[0].reactivate);
        assert_eq!(p.updates[0].memberships.len(), 1);
    }
}
