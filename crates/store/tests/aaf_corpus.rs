//! Real AAF feeds written by other projects (`../shared/corpus-external/aaf`,
//! origins in its `SOURCES.md`), run on both backends. What each feed must
//! give is counted here from its XML by a plain text scan, independently of
//! the importer's reader and planner: a person of `PersEducNat` with a name
//! and at least one structure of the run with a valid UAI is an account.
//!
//! The corpus is other projects' data and is never copied into the
//! repository: the tests read it where it lies (`ANNUAIRE_CORPUS_DIR`, or
//! `shared/corpus-external` beside the checkout). Absent, they say SKIPPED,
//! except under `CI=true` where its absence is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use domain::Uai;
use rand::SeedableRng;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use store::aaf::{AafOutcome, AafRequest, FeedFile, Status};
use store::admin::AdminDirectory;
use store::history::History;
use store::service::FixedClock;
use store::{Directory, DirectoryTx, UserQuery};

trait Feed: AdminDirectory + History {}
impl<T: AdminDirectory + History> Feed for T {}

conformance!(
    a_whole_college_feed_gives_its_staff_in_their_college,
    a_first_degree_feed_gives_its_teachers_in_their_schools,
    a_delta_feed_without_structures_resolves_stored_jointures,
    the_delta_series_creates_moves_adds_and_deletes,
    malformed_feeds_are_refused_and_write_nothing,
    a_feed_planned_a_few_persons_at_a_time_gives_the_same_directory,
    the_small_feeds_as_sent_give_what_they_describe_and_say_who_is_left_out,
    the_small_feeds_with_their_structures_give_every_person_they_name,
);

/// The corpus folder, or `None` (skip) outside CI.
fn corpus() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("ANNUAIRE_CORPUS_DIR").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus-external")),
        Some(PathBuf::from("/work/shared/corpus-external")),
    ];
    if let Some(found) = candidates.into_iter().flatten().find(|p| p.join("aaf").is_dir()) {
        return Some(found.join("aaf"));
    }
    store::testing::skip_unless_ci(
        "the external corpus is absent (set ANNUAIRE_CORPUS_DIR to the corpus-external folder; its aaf/ feeds must run in CI)",
    );
    None
}

/// A corpus file's bytes, read here to count what it describes.
fn bytes_of(f: &FeedFile) -> Vec<u8> {
    std::fs::read(f.path().expect("a corpus file is on disk")).unwrap()
}

fn files_of(dir: &Path) -> Vec<FeedFile> {
    store::aaf::xml_files_in(dir)
        .unwrap()
        .into_iter()
        .map(|p| FeedFile::from_path(&p).unwrap())
        .collect()
}

async fn run(d: &impl Feed, files: &[FeedFile]) -> AafOutcome {
    run_with(d, files, &AafRequest::default()).await
}

async fn run_with(d: &impl Feed, files: &[FeedFile], request: &AafRequest) -> AafOutcome {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    match store::aaf::run_aaf_import(d, files, request, &FixedClock(now()), &mut rng).await {
        Ok(o) => o,
        Err(e) => panic!("AAF import failed: {e}"),
    }
}

// ---- what the XML says, read without the importer --------------------------

/// The `<addRequest>` blocks of a file, as text (accents may be lost: only
/// ASCII markup, identifiers and character references are read).
fn add_requests(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.split("<addRequest>")
        .skip(1)
        .filter_map(|b| b.split("</addRequest>").next())
        .map(str::to_string)
        .collect()
}

/// The person requests of one kind (`categoriePersonne`: `PersEducNat`,
/// `Eleve`, `PersRelEleve`), whatever the file's name.
fn requests_of_kind(f: &FeedFile, kind: &str) -> Vec<String> {
    add_requests(&bytes_of(f))
        .into_iter()
        .filter(|b| values(b, "categoriePersonne").first().map(String::as_str) == Some(kind))
        .collect()
}

/// The values of `<attr name="NAME">` in a block.
fn values(block: &str, name: &str) -> Vec<String> {
    let open = format!("<attr name=\"{name}\">");
    let Some(start) = block.find(&open) else {
        return Vec::new();
    };
    let rest = &block[start + open.len()..];
    let attr = &rest[..rest.find("</attr>").unwrap_or(rest.len())];
    attr.split("<value>")
        .skip(1)
        .filter_map(|v| v.split("</value>").next())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// `&#201;GYPTIEN` → `ÉGYPTIEN`, `&apos;` → `'`.
fn decode_references(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let end = tail.find(';').unwrap_or(0);
        let entity = &tail[1..end.max(1)];
        let c = match entity {
            "apos" => Some('\''),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            e if e.starts_with('#') => e[1..].parse::<u32>().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// One person the feed describes as an account: key, last name as written
/// (references decoded, `None` when the file's accents are not ASCII-safe),
/// and the UAIs of their structures.
struct Expected {
    key: String,
    last_name: Option<String>,
    /// The discipline of their first teaching function (`…$ENS$…$L0421$&#201;GYPTIEN`).
    subject: Option<String>,
    uais: BTreeSet<Uai>,
    /// The classes they teach (`ENTAuxEnsClasses`: `structure$label`).
    classes: BTreeSet<(Uai, String)>,
}

/// The staff accounts a folder's files describe, and the structures they
/// resolve through (`known`: jointures stored by an earlier run).
fn expected_staff(files: &[FeedFile], known: &HashMap<String, Uai>) -> Vec<Expected> {
    let structures = structures_of(files, known);
    let mut out = Vec::new();
    for f in files {
        for block in requests_of_kind(f, "PersEducNat") {
            let name = |a: &str, b: &str| values(&block, a).into_iter().chain(values(&block, b)).next();
            let (Some(last), Some(_first)) = (name("sn", "ENTPersonNom"), name("givenName", "ENTPersonPrenom")) else {
                continue;
            };
            let refs = values(&block, "ENTPersonFonctions")
                .into_iter()
                .chain(values(&block, "ENTPersonStructRattach"))
                .filter_map(|v| v.split('$').next().map(str::to_string));
            let uais: BTreeSet<Uai> = refs.filter_map(|r| structures.get(&r).cloned()).collect();
            if uais.is_empty() {
                continue;
            }
            let jointure = values(&block, "ENTPersonJointure").into_iter().next().unwrap();
            let subject = values(&block, "ENTPersonFonctions").into_iter().find_map(|f| {
                let parts: Vec<&str> = f.split('$').collect();
                (parts.get(1) == Some(&"ENS"))
                    .then(|| parts.get(4).map(|d| decode_references(d)))
                    .flatten()
            });
            out.push(Expected {
                key: format!("PERSON.{jointure}"),
                last_name: last.is_ascii().then(|| decode_references(&last)),
                subject,
                uais,
                classes: values(&block, "ENTAuxEnsClasses")
                    .iter()
                    .filter_map(|c| c.split_once('$'))
                    .filter_map(|(s, label)| Some((structures.get(s)?.clone(), decode_references(label))))
                    .collect(),
            });
        }
    }
    out
}

/// The structures of a folder's EtabEducNat files, by jointure.
fn structures_of(files: &[FeedFile], known: &HashMap<String, Uai>) -> HashMap<String, Uai> {
    let mut structures = known.clone();
    for f in files.iter().filter(|f| f.name.contains("EtabEducNat")) {
        for block in add_requests(&bytes_of(f)) {
            let (Some(jointure), Some(uai)) = (
                values(&block, "ENTStructureJointure").into_iter().next(),
                values(&block, "ENTStructureUAI").into_iter().next(),
            ) else {
                continue;
            };
            if let Ok(uai) = Uai::parse(&uai) {
                structures.insert(jointure, uai);
            }
        }
    }
    structures
}

fn has_names(block: &str) -> bool {
    let name = |a: &str, b: &str| !values(block, a).is_empty() || !values(block, b).is_empty();
    name("sn", "ENTPersonNom") && name("givenName", "ENTPersonPrenom")
}

fn key_of(block: &str) -> String {
    format!(
        "PERSON.{}",
        values(block, "ENTPersonJointure").into_iter().next().unwrap()
    )
}

/// What the XML says of a pupil.
struct Pupil {
    places: BTreeSet<Uai>,
    /// The first class.
    class: Option<String>,
    ine: Option<String>,
    /// `ENTEleveLibelleMEF`, else `ENTEleveNivFormation`.
    level: Option<String>,
}

/// Pupils (with their first class) and parents a folder describes, and the
/// links between them that both ends make real.
struct Families {
    pupils: BTreeMap<String, Pupil>,
    parents: BTreeMap<String, BTreeSet<Uai>>,
    links: BTreeSet<(String, String)>,
}

fn expected_families(files: &[FeedFile], structures: &HashMap<String, Uai>) -> Families {
    let mut pupils = BTreeMap::new();
    let mut stated: BTreeSet<(String, String)> = BTreeSet::new();
    for f in files {
        for block in requests_of_kind(f, "Eleve").iter().filter(|b| has_names(b)) {
            let key = key_of(block);
            let classes = values(block, "ENTEleveClasses");
            let places: BTreeSet<Uai> = values(block, "ENTPersonStructRattach")
                .into_iter()
                .chain(
                    classes
                        .iter()
                        .chain(&values(block, "ENTEleveGroupes"))
                        .filter_map(|c| c.split('$').next().map(str::to_string)),
                )
                .filter_map(|r| structures.get(&r).cloned())
                .collect();
            for relative in values(block, "ENTElevePersRelEleve") {
                stated.insert((format!("PERSON.{}", relative.split('$').next().unwrap()), key.clone()));
            }
            if !places.is_empty() {
                let class = classes
                    .first()
                    .and_then(|c| c.split_once('$'))
                    .map(|(_, l)| decode_references(l));
                let ine = values(block, "ENTEleveINE").into_iter().next();
                let level = values(block, "ENTEleveLibelleMEF")
                    .into_iter()
                    .chain(values(block, "ENTEleveNivFormation"))
                    .next()
                    .map(|l| decode_references(&l));
                pupils.insert(
                    key,
                    Pupil {
                        places,
                        class,
                        ine,
                        level,
                    },
                );
            }
        }
    }
    let mut parent_keys = Vec::new();
    for f in files {
        for block in requests_of_kind(f, "PersRelEleve").into_iter().filter(|b| has_names(b)) {
            let key = key_of(&block);
            for child in values(&block, "ENTAuxPersRelEleveEleve") {
                stated.insert((key.clone(), format!("PERSON.{child}")));
            }
            parent_keys.push(key);
        }
    }
    let mut parents = BTreeMap::new();
    for key in parent_keys {
        let places: BTreeSet<Uai> = stated
            .iter()
            .filter(|(p, _)| *p == key)
            .filter_map(|(_, c)| pupils.get(c).map(|pupil| pupil.places.clone()))
            .flatten()
            .collect();
        if !places.is_empty() {
            parents.insert(key, places);
        }
    }
    let links = stated
        .into_iter()
        .filter(|(p, c)| parents.contains_key(p) && pupils.contains_key(c))
        .collect();
    Families { pupils, parents, links }
}

/// Every pupil and parent exists with their places (and a pupil's class and
/// INE); the stored links are exactly the expected ones.
async fn check_families(d: &impl Directory, expected: &Families) {
    let keys: Vec<String> = expected.pupils.keys().chain(expected.parents.keys()).cloned().collect();
    let mut tx = d.begin().await.unwrap();
    let rows = tx.users_by_keys(&keys).await.unwrap();
    assert_eq!(rows.len(), keys.len(), "pupils and parents found by key");
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let key_of_id: HashMap<i64, String> = rows.iter().map(|r| (r.id, r.sync_key.clone())).collect();
    let mut places: BTreeMap<i64, BTreeSet<Uai>> = BTreeMap::new();
    for (id, m) in tx.memberships_of(&ids).await.unwrap() {
        if m.active {
            places.entry(id).or_default().insert(m.uai);
        }
    }
    for row in &rows {
        let (want_profile, want_places) = match expected.pupils.get(&row.sync_key) {
            Some(pupil) => {
                assert_eq!(row.class_name, pupil.class, "{}", row.sync_key);
                assert_eq!(
                    row.ine.as_deref().map(str::to_uppercase),
                    pupil.ine.as_deref().map(str::to_uppercase),
                    "{}",
                    row.sync_key
                );
                assert_eq!(row.level, pupil.level, "{}", row.sync_key);
                ("eleve", &pupil.places)
            }
            None => ("parent", &expected.parents[&row.sync_key]),
        };
        assert!(row.active, "{}", row.sync_key);
        assert_eq!(row.profile, want_profile, "{}", row.sync_key);
        assert_eq!(places.get(&row.id), Some(want_places), "{}", row.sync_key);
    }
    let stored: BTreeSet<(String, String)> = tx
        .links_of(&ids)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (key_of_id[&l.parent_id].clone(), key_of_id[&l.child_id].clone()))
        .collect();
    assert_eq!(stored, expected.links);
}

async fn accounts_in(d: &impl Directory, uai: &Uai) -> usize {
    d.search_users(&UserQuery {
        establishment: Some(uai.clone()),
        limit: 100_000,
        ..UserQuery::default()
    })
    .await
    .unwrap()
    .len()
}

fn staff_created(outcome: &AafOutcome) -> usize {
    let created = &outcome.report.created_by_profile;
    created.get("enseignant").copied().unwrap_or(0) + created.get("administratif").copied().unwrap_or(0)
}

/// Every expected account exists, active, with its name as written and a
/// membership in each of its structures; nobody else was created.
async fn check_accounts(d: &impl Directory, expected: &[Expected], created: usize) {
    assert_eq!(created, expected.len(), "accounts created vs persons the XML describes");
    let keys: Vec<String> = expected.iter().map(|e| e.key.clone()).collect();
    let mut tx = d.begin().await.unwrap();
    let rows: HashMap<String, _> = tx
        .users_by_keys(&keys)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.sync_key.clone(), r))
        .collect();
    let mut classes: BTreeMap<i64, BTreeSet<(Uai, String)>> = BTreeMap::new();
    for (id, g) in tx
        .groups_of(&rows.values().map(|r| r.id).collect::<Vec<_>>())
        .await
        .unwrap()
    {
        if g.kind == domain::person::GroupKind::Class {
            classes.entry(id).or_default().insert((g.uai, g.name));
        }
    }
    let memberships: BTreeMap<i64, BTreeSet<Uai>> = tx
        .memberships_of(&rows.values().map(|r| r.id).collect::<Vec<_>>())
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, m)| m.active)
        .fold(BTreeMap::new(), |mut acc, (id, m)| {
            acc.entry(id).or_default().insert(m.uai);
            acc
        });
    for e in expected {
        let row = rows.get(&e.key).unwrap_or_else(|| panic!("{} not created", e.key));
        assert!(row.active && row.source == "aaf", "{}", e.key);
        assert!(
            row.profile == "enseignant" || row.profile == "administratif",
            "{}: {}",
            e.key,
            row.profile
        );
        if let Some(name) = &e.last_name {
            assert_eq!(&row.last_name, name, "{}", e.key);
        }
        if e.subject.is_some() {
            assert_eq!(row.subject, e.subject, "{}", e.key);
        }
        assert_eq!(memberships.get(&row.id), Some(&e.uais), "{}", e.key);
        assert_eq!(classes.remove(&row.id).unwrap_or_default(), e.classes, "{}", e.key);
    }
}

// ---- the feeds ---------------------------------------------------------------

/// The collège's feed planned and written 7 persons at a time, as an
/// academy's is 5,000 at a time: a pupil's persons in charge come batches
/// later (their file comes after), yet the directory holds what the XML
/// describes, as with one batch. Run again, nothing changes; without one
/// pupil, the Complet file ends that pupil only.
async fn a_feed_planned_a_few_persons_at_a_time_gives_the_same_directory(d: &impl Feed) {
    let Some(corpus) = corpus() else { return };
    let files = files_of(&corpus.join("eole-0940072T-2018"));
    let expected = expected_staff(&files, &HashMap::new());
    let families = expected_families(&files, &structures_of(&files, &HashMap::new()));
    let small = AafRequest {
        batch_size: 7,
        ..AafRequest::default()
    };
    let first = run_with(d, &files, &small).await;
    assert_eq!(first.report.status, Status::Imported);
    assert_eq!(first.report.created, 52 + 277 + 550, "{:?}", first.report.issues);
    check_accounts(d, &expected, staff_created(&first)).await;
    check_families(d, &families).await;
    let left_out: Vec<&str> = first
        .report
        .notices
        .iter()
        .map(|n| n.message.as_str())
        .filter(|m| m.contains("lien(s)"))
        .collect();
    assert!(left_out.is_empty(), "every link stated has both persons: {left_out:?}");
    let rows = first
        .result_file
        .as_deref()
        .map_or(0, |f| f.split(|b| *b == b'\n').count() - 2);
    assert_eq!(rows, 879, "one line per account created, after the header");

    let again = run_with(d, &files, &small).await;
    let r = &again.report;
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.deactivated),
        (0, 0, 879, 0),
        "{:?}",
        again.updates.first()
    );
    check_families(d, &families).await;

    // The Eleve file without its first pupil who is the only child of a
    // parent (by the XML's links).
    let children_of = |parent: &str| families.links.iter().filter(|(p, _)| p == parent).count();
    let orphans_of = |pupil: &str| -> BTreeSet<String> {
        families
            .links
            .iter()
            .filter(|(p, child)| child == pupil && children_of(p) == 1)
            .map(|(p, _)| p.clone())
            .collect()
    };
    let eleve = files.iter().position(|f| f.name.contains("_Eleve_")).unwrap();
    let bytes = bytes_of(&files[eleve]);
    let find = |needle: &[u8], from: usize| {
        bytes[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|at| from + at)
    };
    let (mut start, mut end) = (0, 0);
    let mut gone = String::new();
    while let Some(at) = find(b"<addRequest>", end) {
        start = at;
        end = find(b"</addRequest>", start).unwrap() + b"</addRequest>".len();
        gone = key_of(&String::from_utf8_lossy(&bytes[start..end]));
        if !orphans_of(&gone).is_empty() {
            break;
        }
    }
    let orphaned = orphans_of(&gone);
    assert!(!orphaned.is_empty(), "a pupil is the only child of a parent");
    let mut fewer = files.clone();
    fewer[eleve] = FeedFile::from_bytes(files[eleve].name.clone(), [&bytes[..start], &bytes[end..]].concat());
    let third = run_with(d, &fewer, &small).await;
    let r = &third.report;
    let n = orphaned.len();
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.deactivated),
        (0, 0, 878 - n, 1 + n)
    );
    let ended: BTreeSet<String> = third.deactivations.iter().map(|x| x.key.to_string()).collect();
    let mut want = orphaned.clone();
    want.insert(gone.clone());
    assert_eq!(ended, want, "the pupil, and the parents left without a child");
    assert!(third.deactivations.iter().all(|x| x.whole_account));
    assert!(r
        .notices
        .iter()
        .any(|x| x.message.starts_with(&format!("{n} parent(s) désactivé(s)"))));
    assert!(!state_of(d, &gone).await.0);

    // The pupil comes back: so do their parents.
    let fourth = run_with(d, &files, &small).await;
    let r = &fourth.report;
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.deactivated),
        (0, 1 + n, 878 - n, 0)
    );
    for key in &want {
        assert!(state_of(d, key).await.0, "{key} active again");
    }
}

/// EOLE's Complet feed of the collège 0940072T (jointure 4931): 125
/// structures, 52 staff named by jointure, names with character references.
async fn a_whole_college_feed_gives_its_staff_in_their_college(d: &impl Feed) {
    let Some(corpus) = corpus() else { return };
    let files = files_of(&corpus.join("eole-0940072T-2018"));
    let expected = expected_staff(&files, &HashMap::new());
    // The count the XML gives, and the one the corpus's SOURCES.md states.
    assert_eq!(expected.len(), 52);
    assert!(expected.iter().any(|e| !e.classes.is_empty()), "teachers with classes");
    assert!(expected.iter().any(|e| e.subject.as_deref() == Some("ÉGYPTIEN")));
    let families = expected_families(&files, &structures_of(&files, &HashMap::new()));
    // The counts EOLE's own importer gives for this feed.
    assert_eq!((families.pupils.len(), families.parents.len()), (277, 550));
    let levels: BTreeSet<&str> = families.pupils.values().filter_map(|p| p.level.as_deref()).collect();
    assert_eq!(
        levels,
        BTreeSet::from(["3EME", "4EME", "5EME", "6EME"]),
        "every pupil's level"
    );
    assert!(families.links.len() >= 550, "every parent has a child");
    let outcome = run(d, &files).await;
    assert_eq!(outcome.report.status, Status::Imported);
    assert_eq!(outcome.report.establishments_created, 125);
    assert_eq!(outcome.report.created, 52 + 277 + 550);
    let by_profile = &outcome.report.created_by_profile;
    assert_eq!((by_profile["eleve"], by_profile["parent"]), (277, 550));
    assert_eq!(by_profile["enseignant"] + by_profile["administratif"], 52);
    check_accounts(d, &expected, staff_created(&outcome)).await;
    check_families(d, &families).await;
    let college = Uai::parse("0940072T").unwrap();
    assert_eq!(accounts_in(d, &college).await, 52 + 277 + 550);
    let names: HashMap<Uai, String> = d
        .list_establishments()
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.uai, e.name))
        .collect();
    assert_eq!(
        names.get(&college).map(String::as_str),
        Some("CLG - LES CLOSEAUX - RUNGIS")
    );
    assert!(
        names.values().all(|n| !n.contains('$')),
        "a name keeps the feed's separator"
    );

    // The export of each kind re-imports with zero changes: each line names
    // its account of the feed by its key, which no CSV derives.
    for (profile, count) in [
        (domain::Profile::Eleve, 277),
        (domain::Profile::Parent, 550),
        (domain::Profile::Enseignant, 25),
    ] {
        let (exported, file) = store::service::export_csv(d, &college, profile, &domain::plan::AdminScope::All)
            .await
            .unwrap();
        assert_eq!(exported, count, "{profile}");
        let again = import(d, &file, &request(profile, "0940072T")).await;
        assert_eq!(
            counts(&again),
            (0, 0, count, 0, 0, 0),
            "{profile}: {:?}",
            again.report.conflict_details.first()
        );
    }

    // A class's members: its pupils and the teachers the feed gives it.
    let in_3c = d
        .search_users(&UserQuery {
            establishment: Some(college.clone()),
            class: Some("3C".into()),
            limit: 1000,
            ..UserQuery::default()
        })
        .await
        .unwrap();
    let pupils_3c = families
        .pupils
        .values()
        .filter(|pupil| pupil.class.as_deref() == Some("3C"))
        .count();
    let teachers_3c = expected
        .iter()
        .filter(|e| e.classes.contains(&(college.clone(), "3C".to_string())))
        .count();
    assert!(
        pupils_3c >= 20 && teachers_3c > 0,
        "{pupils_3c} pupils, {teachers_3c} teachers"
    );
    assert_eq!(in_3c.len(), pupils_3c + teachers_3c);

    // The same feed again changes nothing.
    let again = run(d, &files).await;
    assert_eq!(
        (again.report.created, again.report.updated),
        (0, 0),
        "{:?}",
        again.updates.first()
    );
    assert_eq!(
        (again.report.establishments_created, again.report.establishments_updated),
        (0, 0)
    );
    assert_eq!(again.report.unchanged, 52 + 277 + 550);
    check_families(d, &families).await;

    // A delta moves a pupil of 3C to 4A: they leave the 3C group.
    let class_size = |class: &'static str| {
        let college = college.clone();
        async move {
            d.search_users(&UserQuery {
                establishment: Some(college),
                class: Some(class.into()),
                limit: 1000,
                ..UserQuery::default()
            })
            .await
            .unwrap()
            .len()
        }
    };
    let (in_3c, in_4a) = (class_size("3C").await, class_size("4A").await);
    let delta = FeedFile::from_bytes(
        "EnvOLE_ENT2DVA_0940072T_Delta_20180901_Eleve_0000.xml",
        b"<ficAlimMENESR><modifyRequest><operationalAttributes><attr name=\"categoriePersonne\"><value>Eleve</value></attr></operationalAttributes><identifier><id>4507663</id></identifier><modifications><modification name=\"ENTEleveClasses\" operation=\"replace\"><value>4931$4A</value></modification></modifications></modifyRequest></ficAlimMENESR>".to_vec(),
    );
    let moved = run(d, &[delta]).await;
    assert_eq!(moved.report.updated, 1, "{:?}", moved.report.issues);
    let update = &moved.updates[0];
    assert_eq!(
        update.groups_left.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["3C"]
    );
    assert_eq!((class_size("3C").await, class_size("4A").await), (in_3c - 1, in_4a + 1));
    assert_eq!(update.attrs.class_name.as_deref(), Some("4A"));
}

/// A first-degree (annexe 1D) feed: persons named by `ENTPersonNom` /
/// `ENTPersonPrenom`, schools by jointure.
async fn a_first_degree_feed_gives_its_teachers_in_their_schools(d: &impl Feed) {
    let Some(corpus) = corpus() else { return };
    let files = files_of(&corpus.join("eole-1d-besancon-2020"));
    let expected = expected_staff(&files, &HashMap::new());
    assert!(
        expected.len() >= 70,
        "the excerpt holds 80 persons, most in a school of the feed"
    );
    let outcome = run(d, &files).await;
    assert_eq!(outcome.report.status, Status::Imported);
    assert!(
        !outcome.report.issues.iter().any(|i| i.code == "missing_name"),
        "{:?}",
        outcome.report.issues
    );
    check_accounts(d, &expected, outcome.report.created).await;
}

/// A delta run without its EtabEducNat file still resolves the jointures a
/// previous run stored.
async fn a_delta_feed_without_structures_resolves_stored_jointures(d: &impl Feed) {
    let Some(corpus) = corpus() else { return };
    let files = files_of(&corpus.join("eole-0940072T-2018"));
    let (structures, persons): (Vec<FeedFile>, Vec<FeedFile>) =
        files.into_iter().partition(|f| f.name.contains("EtabEducNat"));
    let first = run(d, &structures).await;
    assert_eq!((first.report.establishments_created, first.report.created), (125, 0));
    let stored: HashMap<String, Uai> = d.structure_jointures().await.unwrap().into_iter().collect();
    assert_eq!(stored.len(), 125);
    let expected = expected_staff(&persons, &stored);
    assert_eq!(expected.len(), 52);
    let second = run(d, &persons).await;
    check_accounts(d, &expected, staff_created(&second)).await;
}

/// Files that are not well-formed feeds: one French line, nothing written.
async fn malformed_feeds_are_refused_and_write_nothing(d: &impl Feed) {
    let Some(corpus) = corpus() else { return };
    for folder in ["laclasse-2013", "eole-scribe/badaaf"] {
        for file in files_of(&corpus.join(folder)) {
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            let result = store::aaf::run_aaf_import(
                d,
                std::slice::from_ref(&file),
                &AafRequest::default(),
                &FixedClock(now()),
                &mut rng,
            )
            .await;
            match result {
                Err(e) => {
                    let message = e.to_string();
                    assert!(!message.contains('\n'), "{message}");
                    assert!(message.starts_with(&file.name), "{message}");
                }
                // An empty root is a valid, empty feed: it must write nothing either.
                Ok(o) => assert_eq!(o.report.created + o.report.establishments_created, 0, "{}", file.name),
            }
        }
    }
    assert_eq!(d.count_users().await.unwrap(), 0);
    assert!(d.list_establishments().await.unwrap().is_empty());
}

/// EOLE's delta series (`eole-delta-2014/`, run in order): a Complet file
/// creates 370009, a delta modifyRequest moves them, another adds 1447165, a
/// deleteRequest ends 370009. Their structures (2310, 2091, 2148) are not in
/// the series' EtabEducNat files, so without them nobody is created (the
/// issue says which structure is missing); this test first gives them, in a
/// structure file of its own, as the academy's full EtabEducNat would.
async fn the_delta_series_creates_moves_adds_and_deletes(d: &impl Feed) {
    let Some(corpus) = corpus() else { return };
    let series = corpus.join("eole-delta-2014");
    let step = |name: &str| files_of(&series.join(name));

    // Without the structures: the persons are refused, each with the reason.
    let alone = run(d, &step("1-complet")).await;
    assert_eq!(alone.report.created, 0);
    assert!(
        alone.report.issues.iter().any(|i| i.code == "no_establishment"),
        "{:?}",
        alone.report.issues
    );
    assert!(
        alone
            .report
            .notices
            .iter()
            .any(|n| n.message.contains("« 2310 » inconnue")),
        "{:?}",
        alone.report.notices
    );

    let structures: Vec<(String, Uai)> = [("2310", "0750654D"), ("2091", "0750655E"), ("2148", "0750656F")]
        .iter()
        .map(|(jointure, uai)| (jointure.to_string(), Uai::parse(uai).unwrap()))
        .collect();
    let mut first = step("1-complet");
    first.push(structure_file(
        "ENT_TEST_Complet_20140129_EtabEducNat_0001.xml",
        &structures,
    ));
    let created = run(d, &first).await;
    assert_eq!(created.report.created, 1, "{:?}", created.report.issues);
    assert_eq!(
        state_of(d, "PERSON.370009").await,
        (true, BTreeSet::from(["0750654D".to_string()]))
    );

    let moved = run(d, &step("2-delta")).await;
    assert_eq!((moved.report.updated, moved.report.establishments_updated), (1, 1));
    assert_eq!(
        state_of(d, "PERSON.370009").await,
        (true, BTreeSet::from(["0750655E".to_string()]))
    );

    let added = run(d, &step("3-delta-add")).await;
    assert_eq!(added.report.created, 1, "{:?}", added.report.issues);

    let deleted = run(d, &step("4-delta-delete")).await;
    assert_eq!(deleted.report.deactivated, 1);
    assert_eq!(state_of(d, "PERSON.370009").await, (false, BTreeSet::new()));
    assert_eq!(d.count_users().await.unwrap(), 2, "deactivated, not deleted");
}

/// A structure file of the test's own, as the academy's whole EtabEducNat
/// file would give: each jointure with its UAI.
fn structure_file(name: &str, structures: &[(String, Uai)]) -> FeedFile {
    let attr = |name: &str, value: &str| format!("<attr name=\"{name}\"><value>{value}</value></attr>");
    let requests: String = structures
        .iter()
        .map(|(jointure, uai)| {
            format!(
                "<addRequest><operationalAttributes>{}</operationalAttributes><identifier><id>{jointure}</id></identifier><attributes>{}{}{}</attributes></addRequest>",
                attr("categorieStructure", "EtabEducNat"),
                attr("ENTStructureJointure", jointure),
                attr("ENTStructureUAI", uai.as_str()),
                attr("ENTStructureNomCourant", &format!("CLG${jointure}$TEST")),
            )
        })
        .collect();
    FeedFile::from_bytes(name, format!("<ficAlimMENESR>{requests}</ficAlimMENESR>"))
}

// ---- the small feeds ----------------------------------------------------------

/// The corpus's small feeds (other projects' test data), run in this order.
/// With the folders the tests above read, they are the whole corpus: a file
/// added to it that no test reads fails `every_corpus_file_is_read_by_a_test`.
const SMALL_FEEDS: [&str; 10] = [
    "entcore-2013-enttsservices",
    "entcore-2020-test",
    "entcore-2024-positions/before",
    "entcore-2024-positions/after",
    "eole-aaf-mini",
    "eole-saran-2013/1-complet",
    "eole-saran-2013/2-complet-maj",
    "eole-scribe/personnels_sans_date.xml",
    "eole-scribe/emptyaaf",
    "laclasse-2013/file_Eleve_test.xml",
];

/// Read by the tests above.
const LARGE_FEEDS: [&str; 5] = [
    "eole-0940072T-2018",
    "eole-1d-besancon-2020",
    "eole-delta-2014",
    "laclasse-2013",
    "eole-scribe/badaaf",
];

/// A folder's feed files, or one file.
fn files_at(path: &Path) -> Vec<FeedFile> {
    if path.is_file() {
        vec![FeedFile::from_path(path).unwrap()]
    } else {
        files_of(path)
    }
}

fn xml_files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            xml_files_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "xml") {
            out.push(path);
        }
    }
}

#[test]
fn every_corpus_file_is_read_by_a_test() {
    let Some(corpus) = corpus() else { return };
    let mut all = Vec::new();
    xml_files_under(&corpus, &mut all);
    assert!(all.len() >= 39, "{} files", all.len());
    let unread: Vec<&PathBuf> = all
        .iter()
        .filter(|f| {
            !SMALL_FEEDS
                .iter()
                .chain(&LARGE_FEEDS)
                .any(|read| f.starts_with(corpus.join(read)))
        })
        .collect();
    assert!(unread.is_empty(), "corpus files no test reads: {unread:?}");
}

/// What a feed describes, counted from its XML against the structures known
/// (the run's and the stored ones).
struct Described {
    staff: Vec<Expected>,
    families: Families,
    /// Every person an addRequest names, with or without names.
    named: BTreeSet<String>,
}

impl Described {
    fn of(files: &[FeedFile], stored: &HashMap<String, Uai>) -> Described {
        let named = files
            .iter()
            .flat_map(|f| add_requests(&bytes_of(f)))
            .filter(|b| !values(b, "ENTPersonJointure").is_empty())
            .map(|b| key_of(&b))
            .collect();
        Described {
            staff: expected_staff(files, stored),
            families: expected_families(files, &structures_of(files, stored)),
            named,
        }
    }

    fn keys(&self) -> Vec<String> {
        self.staff
            .iter()
            .map(|e| e.key.clone())
            .chain(self.families.pupils.keys().cloned())
            .chain(self.families.parents.keys().cloned())
            .collect()
    }
}

/// Runs one small feed and checks it against its XML: the accounts it
/// describes exist as described (counted as created, or as updated or
/// unchanged when an earlier feed created them), and every other person it
/// names is reported with their key. `supplied`: structures given in a file
/// of the test's own. Returns the accounts described.
async fn run_described(
    d: &impl Feed,
    label: &str,
    files: &[FeedFile],
    supplied: &[(String, Uai)],
) -> (Described, AafOutcome) {
    let mut known: HashMap<String, Uai> = d.structure_jointures().await.unwrap().into_iter().collect();
    known.extend(supplied.iter().cloned());
    let described = Described::of(files, &known);
    let keys = described.keys();
    let staff: BTreeSet<&str> = described.staff.iter().map(|e| e.key.as_str()).collect();
    let (existing, existing_staff) = {
        let mut tx = d.begin().await.unwrap();
        let rows = tx.users_by_keys(&keys).await.unwrap();
        let staff = rows.iter().filter(|r| staff.contains(r.sync_key.as_str())).count();
        (rows.len(), staff)
    };
    let mut run_files = files.to_vec();
    if !supplied.is_empty() {
        run_files.push(structure_file("TEST_Complet_20260101_EtabEducNat_0000.xml", supplied));
    }
    let outcome = run(d, &run_files).await;
    let r = &outcome.report;
    assert_eq!(r.status, Status::Imported, "{label}");
    assert_eq!(r.created, keys.len() - existing, "{label}: {:?}", r.issues);
    assert_eq!(r.created + r.updated + r.unchanged, keys.len(), "{label}");
    check_accounts(d, &described.staff, staff_created(&outcome) + existing_staff).await;
    check_families(d, &described.families).await;
    let reported: BTreeSet<&str> = r.issues.iter().filter_map(|i| i.key.as_deref()).collect();
    for key in described.named.iter().filter(|k| !keys.contains(k)) {
        assert!(
            reported.contains(key.as_str()),
            "{label}: {key} is neither an account nor reported: {:?}",
            r.issues
        );
    }
    (described, outcome)
}

/// The small feeds as other projects wrote them: most name structures with
/// a fake UAI (`0000000V`, `0123456A`, `00000001`: wrong check letter or
/// shape) or not at all, so their persons are refused, each named in an
/// issue; the persons of real structures are created.
async fn the_small_feeds_as_sent_give_what_they_describe_and_say_who_is_left_out(d: &impl Feed) {
    let Some(corpus) = corpus() else { return };
    let mut accounts = 0;
    let mut left_out = 0;
    for feed in SMALL_FEEDS {
        let (described, _) = run_described(d, feed, &files_at(&corpus.join(feed)), &[]).await;
        accounts += described.keys().len();
        left_out += described.named.len() - described.keys().len();
    }
    // The 2013 academy extract: 2 of its 3 staff are in structures whose
    // UAI is valid; its 10 parents' children are not in the feed.
    assert!(accounts >= 2, "{accounts} accounts");
    assert!(left_out >= 20, "{left_out} persons left out");
}

/// The same feeds given the structures they name (a structure file of the
/// test's own in place of theirs, valid UAIs, as the academy's whole
/// EtabEducNat would): every person with a name becomes the account the
/// XML describes; a later feed updates what an earlier one created (the
/// 2013 "complet-maj" changes an e-mail; the 2024 positions add a person).
async fn the_small_feeds_with_their_structures_give_every_person_they_name(d: &impl Feed) {
    let Some(corpus) = corpus() else { return };
    let mut next_uai = 1_300_000u32;
    let mut accounts = BTreeSet::new();
    for feed in SMALL_FEEDS {
        let files: Vec<FeedFile> = files_at(&corpus.join(feed))
            .into_iter()
            .filter(|f| !f.name.contains("EtabEducNat"))
            .collect();
        let stored: HashMap<String, Uai> = d.structure_jointures().await.unwrap().into_iter().collect();
        let mut missing: BTreeSet<String> = BTreeSet::new();
        for f in &files {
            for block in add_requests(&bytes_of(f)) {
                for attr in [
                    "ENTPersonStructRattach",
                    "ENTPersonFonctions",
                    "ENTEleveClasses",
                    "ENTEleveGroupes",
                    "ENTAuxEnsClasses",
                    "ENTAuxEnsGroupes",
                ] {
                    for v in values(&block, attr) {
                        let jointure = v.split('$').next().unwrap_or_default().to_string();
                        if !jointure.is_empty() && !stored.contains_key(&jointure) {
                            missing.insert(jointure);
                        }
                    }
                }
            }
        }
        let structures: Vec<(String, Uai)> = missing
            .into_iter()
            .map(|jointure| {
                next_uai += 1;
                (jointure, valid_uai(next_uai))
            })
            .collect();
        let (described, outcome) = run_described(d, feed, &files, &structures).await;
        let without_names = files
            .iter()
            .flat_map(|f| add_requests(&bytes_of(f)))
            .filter(|b| !values(b, "ENTPersonJointure").is_empty() && !has_names(b))
            .count();
        let without_child = outcome.report.issues.iter().filter(|i| i.code == "no_child").count();
        assert_eq!(
            described.named.len(),
            described.keys().len() + without_names + without_child,
            "{feed}: every person with a name and a place is an account: {:?}",
            outcome.report.issues
        );
        accounts.extend(described.keys());
        if feed == "eole-saran-2013/2-complet-maj" {
            assert_eq!(outcome.report.updated, 1, "the new e-mail");
            let mail = values(&add_requests(&bytes_of(&files[0]))[0], "mail")[0].to_lowercase();
            let mut tx = d.begin().await.unwrap();
            let row = tx.users_by_keys(&described.keys()).await.unwrap().remove(0);
            assert_eq!(row.email.map(|e| e.to_lowercase()), Some(mail));
        }
    }
    assert_eq!(d.count_users().await.unwrap(), i64::try_from(accounts.len()).unwrap());
    assert!(accounts.len() >= 15, "{} accounts", accounts.len());
}

/// The UAI of number `n` with its check letter.
fn valid_uai(n: u32) -> Uai {
    ('A'..='Z')
        .find_map(|letter| Uai::parse(&format!("{n:07}{letter}")).ok())
        .unwrap()
}

/// Whether an account is active, and the establishments of its active memberships.
async fn state_of(d: &impl Directory, key: &str) -> (bool, BTreeSet<String>) {
    let mut tx = d.begin().await.unwrap();
    let row = tx
        .users_by_keys(&[key.to_string()])
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let places = tx
        .memberships_of(&[row.id])
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, m)| m.active)
        .map(|(_, m)| m.uai.to_string())
        .collect();
    (row.active, places)
}
