//! One AAF feed run, start to finish, on any [`AdminDirectory`]: read every
//! file (structures first), plan against a snapshot taken inside the
//! transaction, write, list the duplicates the run touched, audit, commit.
//! All files of a run are one transaction: a refused plan, a dry run or any
//! error writes nothing.

use crate::admin::{self, AdminDirectory, AdminTx, NewAudit};
use crate::history::History;
use crate::service::{Clock, NoProgress};
use crate::write::{hash_secrets, write_changes, Ownership, SecretsError};
use crate::{fetch_snapshot, DirectoryTx, ImportRecord, StoreError};
use chrono::{DateTime, Utc};
use domain::aaf::plan::{self as aaf_plan, AafNotice, AafPlan, AafPlanOptions, CompletScope, FileRecord};
use domain::aaf::{self, FeedError, FeedKind, FileInfo, Issue, Record, RequestKind, StructureIndex, StructureRecord};
use domain::duplicates::DuplicatePair;
use domain::keys::{LoginPattern, SyncKey};
use domain::person::Source;
pub use domain::pipeline::Status;
use domain::pipeline::Tally;
use domain::plan::Lookup;
use domain::vocabulary::{Channel, ImportSource, ImportStatus, DEFAULT_DELETION_THRESHOLD_PERCENT};
use domain::{Profile, Structure, Uai};
use rand::{CryptoRng, RngCore};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One file of the feed, already read by the caller.
#[derive(Debug, Clone)]
pub struct FeedFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The `*.xml` files of a folder (not its subfolders), sorted by name: the
/// national naming (`ENT_<UAI>_Complet_<date>_<kind>_0000.xml`) then puts a
/// day's files together. Used by `aaf import DIR` and the scheduled run.
pub fn xml_files_in(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| {
            f.is_file()
                && f.extension()
                    .is_some_and(|x| x.to_string_lossy().eq_ignore_ascii_case("xml"))
        })
        .collect();
    found.sort();
    Ok(found)
}

#[derive(Debug, Clone)]
pub struct AafRequest {
    pub actor: String,
    /// How the feed came in: `cli` or `schedule`.
    pub channel: Channel,
    /// Where the end-of-feed notice goes.
    pub notify: Option<String>,
    /// How long the result file is kept for download.
    pub result_retention_seconds: i64,
    pub login_pattern: LoginPattern,
    pub deletion_threshold_percent: u32,
    pub confirm_deletions: Option<usize>,
    pub dry_run: bool,
}

impl Default for AafRequest {
    fn default() -> Self {
        AafRequest {
            actor: "cli".into(),
            channel: Channel::Cli,
            notify: None,
            result_retention_seconds: crate::service::DEFAULT_RESULT_RETENTION_DAYS * 86_400,
            login_pattern: LoginPattern::default(),
            deletion_threshold_percent: DEFAULT_DELETION_THRESHOLD_PERCENT,
            confirm_deletions: None,
            dry_run: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AafError {
    #[error("aucun fichier de flux AAF (*.xml) à importer : indiquez des fichiers ou un dossier qui en contient")]
    NoFiles,
    #[error("{file} : {source}")]
    Feed { file: String, source: FeedError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSummary {
    pub name: String,
    pub kind: Option<&'static str>,
    pub complet: bool,
    pub requests: usize,
}

/// The one JSON object of `aaf import --report json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AafReport {
    pub status: Status,
    pub files: Vec<FileSummary>,
    pub requests: usize,
    pub establishments_created: usize,
    pub establishments_updated: usize,
    pub created: usize,
    /// The accounts created, per profile (`eleve`: 277…), for a first run.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub created_by_profile: BTreeMap<&'static str, usize>,
    pub updated: usize,
    pub unchanged: usize,
    pub deactivated: usize,
    /// Requests of kinds not imported (subjects, MEF).
    pub ignored: usize,
    /// Requests skipped because of an issue.
    pub skipped: usize,
    pub issues: Vec<Issue>,
    pub notices: Vec<AafNotice>,
    pub duplicates: Vec<DuplicatePair>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_id: Option<i64>,
}

impl AafReport {
    /// The counts the history keeps of every import; a feed merges no line.
    pub fn tally(&self) -> Tally {
        Tally {
            rows: self.requests,
            created: self.created,
            updated: self.updated,
            unchanged: self.unchanged,
            merged: 0,
            deactivated: self.deactivated,
            skipped: self.skipped,
        }
    }
}

pub struct AafOutcome {
    pub report: AafReport,
    pub plan: AafPlan,
    /// Keys, logins and passwords of the accounts created, when any were.
    pub result_file: Option<Vec<u8>>,
}

/// The files in processing order: structures, subjects, MEF, pupils,
/// parents, staff (SPEC §10); then by name, so Complet before Delta of a date.
fn ordered(files: &[FeedFile]) -> Vec<(&FeedFile, FileInfo)> {
    let mut out: Vec<(&FeedFile, FileInfo)> = files.iter().map(|f| (f, aaf::file_info(&f.name))).collect();
    out.sort_by(|(a, ia), (b, ib)| {
        (ia.kind.unwrap_or(FeedKind::PersEducNat), &a.name).cmp(&(ib.kind.unwrap_or(FeedKind::PersEducNat), &b.name))
    });
    out
}

/// Everything read from the files, before the directory is consulted.
struct ReadFeed {
    summaries: Vec<FileSummary>,
    structures: Vec<(String, StructureRecord)>,
    persons: Vec<FileRecord>,
    scopes: Vec<CompletScope>,
    issues: Vec<Issue>,
    notices: Vec<AafNotice>,
    ignored: usize,
    requests: usize,
    bytes: usize,
}

/// Reads every file in processing order. `structures` holds the stored
/// establishments' jointures; the run's own structures are added as they are
/// read (their files come first), so persons resolve against both.
fn read_feed(
    files: &[FeedFile],
    today: chrono::NaiveDate,
    mut structures: StructureIndex,
) -> Result<ReadFeed, AafError> {
    let mut feed = ReadFeed {
        summaries: Vec::new(),
        structures: Vec::new(),
        persons: Vec::new(),
        scopes: Vec::new(),
        issues: Vec::new(),
        notices: Vec::new(),
        ignored: 0,
        requests: 0,
        bytes: 0,
    };
    for (file, info) in ordered(files) {
        let first_person = feed.persons.len();
        let count = aaf::read_requests(&file.bytes, |raw| {
            match aaf::map_request(&file.name, &raw, today, &structures) {
                Ok(Record::Structure(s)) => {
                    if let (Some(jointure), true) = (&s.jointure, s.kind != RequestKind::Delete) {
                        structures.insert(jointure, s.uai.clone());
                    }
                    feed.structures.push((file.name.clone(), s));
                }
                Ok(Record::Person(p)) => feed.persons.push(FileRecord {
                    file: file.name.clone(),
                    record: *p,
                }),
                Ok(Record::Unsupported { .. }) => feed.ignored += 1,
                Err(issue) => feed.issues.push(issue),
            }
            Ok::<(), std::convert::Infallible>(())
        })
        .map_err(|source| AafError::Feed {
            file: file.name.clone(),
            source,
        })?;
        let summary = match count {
            Ok(summary) => summary,
            Err(never) => match never {},
        };
        let count = summary.requests;
        feed.notices
            .extend(summary.notices.into_iter().map(|message| AafNotice {
                file: file.name.clone(),
                request: None,
                key: None,
                message,
            }));
        feed.requests += count;
        feed.bytes += file.bytes.len();
        let persons = &feed.persons[first_person..];
        let profiles = match info.kind {
            None | Some(FeedKind::PersEducNat) => vec![Profile::Enseignant, Profile::Administratif],
            Some(FeedKind::Eleve) => vec![Profile::Eleve],
            Some(FeedKind::PersRelEleve) => vec![Profile::Parent],
            Some(_) => Vec::new(),
        };
        if info.complet && !profiles.is_empty() {
            // The file's establishment: the UAI in its name, otherwise the
            // places its records name (a parents' file names none: without a
            // UAI in its name it deactivates nobody).
            let establishments: Vec<Uai> = match &info.uai {
                Some(uai) => vec![uai.clone()],
                None => persons
                    .iter()
                    .flat_map(|p| {
                        let functions = match &p.record.functions {
                            Some(aaf::FunctionsChange::Replace(f)) => f.as_slice(),
                            _ => &[],
                        };
                        let pupil_places = match p.record.person {
                            aaf::PersonKind::Pupil => p.record.attached.clone().unwrap_or_default(),
                            _ => Vec::new(),
                        };
                        functions
                            .iter()
                            .map(|f| f.uai.clone())
                            .chain(pupil_places)
                            .chain(p.record.classes.iter().flatten().map(|(u, _)| u.clone()))
                    })
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            };
            if persons.is_empty() {
                feed.notices.push(AafNotice {
                    file: file.name.clone(),
                    request: None,
                    key: None,
                    message: "fichier Complet sans aucune personne : par sécurité, il ne désactive personne (fichier tronqué ?)".into(),
                });
            } else if !establishments.is_empty() {
                feed.scopes.push(CompletScope {
                    file: file.name.clone(),
                    establishments,
                    profiles,
                });
            }
        }
        feed.summaries.push(FileSummary {
            name: file.name.clone(),
            kind: info.kind.map(FeedKind::id),
            complet: info.complet,
            requests: count,
        });
    }
    Ok(feed)
}

/// Runs a feed: every file in one transaction. A feed that is refused (its
/// plan, or a file that cannot be read) or that fails still gets its line in
/// the history, with the reason, like a CSV import; a dry run gets none.
/// See [`run_recorded_aaf_import`] for the line's number in every case.
pub async fn run_aaf_import<D: AdminDirectory + History, R: RngCore + CryptoRng>(
    directory: &D,
    files: &[FeedFile],
    request: &AafRequest,
    clock: &dyn Clock,
    rng: &mut R,
) -> Result<AafOutcome, AafError> {
    run_recorded_aaf_import(directory, files, request, clock, rng).await.0
}

/// [`run_aaf_import`], with the number of the history line it left (also
/// for an unreadable file, whose error carries none), to send its notice.
pub async fn run_recorded_aaf_import<D: AdminDirectory + History, R: RngCore + CryptoRng>(
    directory: &D,
    files: &[FeedFile],
    request: &AafRequest,
    clock: &dyn Clock,
    rng: &mut R,
) -> (Result<AafOutcome, AafError>, Option<i64>) {
    let started_at = clock.now();
    let mut result = run_feed(directory, files, request, clock, rng).await;
    let (status, error) = match &result {
        Ok(o) if o.report.status == Status::Rejected => (ImportStatus::Rejected, o.report.rejection.clone()),
        Ok(o) => {
            let id = o.report.import_id;
            return (result, id);
        }
        Err(AafError::NoFiles) => return (result, None),
        Err(e @ AafError::Feed { .. }) => (ImportStatus::Rejected, Some(e.to_string())),
        Err(e) => (ImportStatus::Failed, Some(e.to_string())),
    };
    let report = result.as_ref().ok().map(|o| &o.report);
    let complet = report.is_some_and(|r| r.files.iter().any(|f| f.complet));
    let record = feed_record(
        files,
        request,
        started_at,
        clock.now(),
        report,
        Vec::new(),
        complet,
        status,
        error,
    );
    match (directory.record_import(&record).await, &mut result) {
        (Ok(id), Ok(outcome)) => {
            outcome.report.import_id = Some(id);
            (result, Some(id))
        }
        (Ok(id), Err(_)) => (result, Some(id)),
        (Err(e), Ok(_)) => (Err(e.into()), None),
        // The run's own error says more than a failure to record it.
        (Err(_), Err(_)) => (result, None),
    }
}

/// The history line of a feed run.
#[allow(clippy::too_many_arguments)]
fn feed_record(
    files: &[FeedFile],
    request: &AafRequest,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    report: Option<&AafReport>,
    establishments: Vec<Uai>,
    complet: bool,
    status: ImportStatus,
    error: Option<String>,
) -> ImportRecord {
    let mut record = ImportRecord {
        job_id: None,
        started_at,
        finished_at,
        source: ImportSource::Aaf,
        channel: request.channel,
        actor: request.actor.clone(),
        admin_id: None,
        profile: "aaf".into(),
        establishments,
        complet,
        options: serde_json::json!({
            "confirm_deletions": request.confirm_deletions,
            "files": report.map(|r| r.files.clone()).unwrap_or_default(),
            "created_by_profile": report.map(|r| r.created_by_profile.clone()).unwrap_or_default(),
        })
        .to_string(),
        file_name: files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(","),
        file_size: files.iter().map(|f| f.bytes.len() as i64).sum(),
        rows: 0,
        created: 0,
        updated: 0,
        unchanged: 0,
        merged: 0,
        deactivated: 0,
        skipped: 0,
        status,
        error,
        notify: request.notify.clone(),
    };
    if let Some(report) = report {
        record.count(report.tally());
    }
    record
}

async fn run_feed<D: AdminDirectory, R: RngCore + CryptoRng>(
    directory: &D,
    files: &[FeedFile],
    request: &AafRequest,
    clock: &dyn Clock,
    rng: &mut R,
) -> Result<AafOutcome, AafError> {
    if files.is_empty() {
        return Err(AafError::NoFiles);
    }
    let started_at = clock.now();
    let mut stored = StructureIndex::default();
    for (jointure, uai) in directory.structure_jointures().await? {
        stored.insert(&jointure, uai);
    }
    let mut feed = read_feed(files, clock.today(), stored)?;
    let lookup = aaf_plan::lookup_for(&feed.persons, &feed.scopes, request.login_pattern);
    let structure_uais: Vec<Uai> = feed
        .structures
        .iter()
        .map(|(_, s)| s.uai.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let all_uais: Vec<Uai> = structure_uais
        .iter()
        .chain(&lookup.establishments)
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    let mut tx = directory.begin_admin().await?;
    tx.lock_establishments(&all_uais).await?;
    let keys: Vec<String> = lookup.keys.iter().map(|k| k.as_str().to_string()).collect();
    tx.lock_identities(&keys, &lookup.login_bases).await?;

    // Structures first: persons of this run may belong to a new establishment.
    let (establishments, created_uais, updated_uais) = plan_structures(&mut tx, &feed, &structure_uais).await?;
    for (file, s) in &feed.structures {
        if s.kind == RequestKind::Delete {
            feed.notices.push(AafNotice {
                file: file.clone(),
                request: Some(s.request),
                key: Some(s.uai.to_string()),
                message: format!(
                    "suppression de l'établissement {} ignorée : un établissement ne se supprime jamais automatiquement",
                    s.uai
                ),
            });
        }
    }
    tx.write_structures(&establishments, started_at).await?;

    let mut scopes = Vec::new();
    let mut all_keys: BTreeSet<SyncKey> = lookup.keys.iter().cloned().collect();
    // A person whose request could not be read is still in the file: never
    // deactivate them for our failure to read their record.
    let unreadable: BTreeSet<&str> = feed.issues.iter().filter_map(|i| i.key.as_deref()).collect();
    for scope in &feed.scopes {
        let keys: Vec<SyncKey> = tx
            .aaf_scope(&scope.establishments, &scope.profiles)
            .await?
            .into_iter()
            .filter(|k| !unreadable.contains(k.as_str()))
            .map(SyncKey::from_stored)
            .collect();
        all_keys.extend(keys.iter().cloned());
        scopes.push((scope.clone(), keys));
    }
    let snapshot = fetch_snapshot(
        &mut tx,
        &Lookup {
            keys: all_keys.into_iter().collect(),
            logins: Vec::new(),
            login_bases: lookup.login_bases.clone(),
            establishments: lookup.establishments.clone(),
            groups: Vec::new(),
            complet_scope: None,
            // The feed attaches whatever establishments it names.
            establishment_names: false,
        },
    )
    .await?;
    let options = AafPlanOptions {
        login_pattern: request.login_pattern,
        deletion_threshold_percent: request.deletion_threshold_percent,
        confirm_deletions: request.confirm_deletions,
    };
    let mut plan = aaf_plan::plan(&feed.persons, &scopes, &snapshot, &options);
    feed.issues.append(&mut plan.issues);
    plan.issues = std::mem::take(&mut feed.issues);
    let mut notices = std::mem::take(&mut feed.notices);
    notices.append(&mut plan.notices);
    plan.notices = notices;

    let mut report = AafReport {
        status: Status::Imported,
        files: feed.summaries.clone(),
        requests: feed.requests,
        establishments_created: created_uais.len(),
        establishments_updated: updated_uais.len(),
        created: plan.creates.len(),
        created_by_profile: plan.creates.iter().fold(BTreeMap::new(), |mut counts, c| {
            *counts.entry(c.profile.id()).or_default() += 1;
            counts
        }),
        updated: plan.updates.len(),
        unchanged: plan.unchanged.len(),
        deactivated: plan.deactivations.len(),
        ignored: feed.ignored,
        skipped: plan.issues.len(),
        issues: plan.issues.clone(),
        notices: plan.notices.clone(),
        duplicates: Vec::new(),
        rejection: plan.rejection.as_ref().map(|r| r.message()),
        import_id: None,
    };
    if plan.rejection.is_some() || request.dry_run {
        report.status = if plan.rejection.is_some() {
            Status::Rejected
        } else {
            Status::DryRun
        };
        // Dropping the transaction rolls it back, structures included.
        return Ok(AafOutcome {
            report,
            plan,
            result_file: None,
        });
    }

    let secrets = hash_secrets(&plan.creates, rng, &NoProgress).await?;
    let now = clock.now();
    let record = feed_record(
        files,
        request,
        started_at,
        now,
        Some(&report),
        all_uais.clone(),
        !feed.scopes.is_empty(),
        ImportStatus::Succeeded,
        None,
    );
    let import_id = tx.insert_import(&record).await?;
    let owner = Ownership {
        source: Source::Aaf,
        protected: true,
    };
    let created_ids = write_changes(&mut tx, plan.changeset(), owner, &secrets, import_id, now, &NoProgress).await?;

    let touched: Vec<i64> = created_ids
        .iter()
        .copied()
        .chain(plan.updates.iter().map(|u| u.user_id))
        .collect();
    report.duplicates = admin::duplicates_for(&mut tx, &touched).await?;
    report.import_id = Some(import_id);
    tx.insert_audit(&NewAudit {
        at: now,
        actor: request.actor.clone(),
        action: "aaf_import".into(),
        target: format!("import n° {import_id}"),
        details: serde_json::json!({
            "files": report.files,
            "establishments_created": report.establishments_created,
            "establishments_updated": report.establishments_updated,
            "created": report.created,
            "created_by_profile": report.created_by_profile,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "deactivated": report.deactivated,
            "ignored": report.ignored,
            "skipped": report.skipped,
            "duplicates": report.duplicates.len(),
        }),
    })
    .await?;
    let result_file = (!plan.creates.is_empty()).then(|| {
        let passwords: HashMap<SyncKey, String> = plan
            .creates
            .iter()
            .zip(&secrets)
            .map(|(c, s)| (c.key.clone(), s.cleartext.clone()))
            .collect();
        aaf_plan::result_file(&plan, &passwords)
    });
    if let Some(bytes) = &result_file {
        // Kept for the history page like a CSV import's (no slips: the AAF
        // accounts sign in through the academy's own distribution).
        tx.insert_import_result(
            import_id,
            bytes,
            "[]",
            now + chrono::Duration::seconds(request.result_retention_seconds),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(AafOutcome {
        report,
        plan,
        result_file,
    })
}

/// Establishments to create or update: each request sets the values it
/// carries, the last one of the run wins. Returns what to write, the UAIs
/// created and the UAIs updated.
async fn plan_structures<T: AdminTx>(
    tx: &mut T,
    feed: &ReadFeed,
    uais: &[Uai],
) -> Result<(Vec<Structure>, Vec<Uai>, Vec<Uai>), StoreError> {
    let existing: HashMap<Uai, Structure> = tx
        .structures(uais)
        .await?
        .into_iter()
        .map(|s| (s.uai.clone(), s))
        .collect();
    let mut wanted: std::collections::BTreeMap<Uai, Structure> = std::collections::BTreeMap::new();
    for (_, s) in &feed.structures {
        if s.kind == RequestKind::Delete {
            continue;
        }
        let entry = wanted.entry(s.uai.clone()).or_insert_with(|| {
            existing.get(&s.uai).cloned().unwrap_or_else(|| Structure {
                uai: s.uai.clone(),
                name: format!("Établissement {}", s.uai),
                jointure: None,
                structure_type: None,
                city: None,
                academy: None,
            })
        });
        let set = |field: &mut Option<String>, value: &Option<String>| {
            if value.is_some() {
                field.clone_from(value);
            }
        };
        if let Some(name) = &s.name {
            entry.name.clone_from(name);
        }
        set(&mut entry.jointure, &s.jointure);
        set(&mut entry.structure_type, &s.structure_type);
        set(&mut entry.city, &s.city);
        set(&mut entry.academy, &s.academy);
    }
    let mut writes = Vec::new();
    let mut created = Vec::new();
    let mut updated = Vec::new();
    for (uai, structure) in wanted {
        match existing.get(&uai) {
            None => created.push(uai),
            Some(old) if *old != structure => updated.push(uai),
            Some(_) => continue,
        }
        writes.push(structure);
    }
    Ok((writes, created, updated))
}
