//! One AAF feed run, start to finish, on any [`AdminDirectory`]. A thread
//! reads the files (structures first), a request at a time, while the run
//! plans and writes the persons a batch at a time against a snapshot of that
//! batch taken inside the transaction; Complet files end, at the end, the
//! accounts no batch named. So memory holds one batch and the run's indexes
//! (keys named, links stated), never the whole feed, and an academy's feed
//! is read once. All files of a run are still one transaction: a refused
//! plan, a dry run or any error writes nothing.

use crate::admin::{self, AdminDirectory, AdminTx, NewAudit};
use crate::history::History;
use crate::service::{Clock, NoProgress};
use crate::write::{hash_secrets, write_changes, Ownership, Secret, SecretsError};
use crate::{fetch_snapshot, ImportRecord, StoreError};
use chrono::{DateTime, Utc};
use domain::aaf::plan::{self as aaf_plan, AafNotice, AafPlan, AafPlanOptions, CompletScope, FileRecord, RunState};
use domain::aaf::{
    self, FeedError, FeedKind, FileInfo, Issue, ReadSummary, Record, RequestKind, StructureIndex, StructureRecord,
};
use domain::changeset::{Deactivation, Update};
use domain::duplicates::DuplicatePair;
use domain::keys::{LoginPattern, SyncKey};
use domain::password::SecretOrigin;
use domain::person::Source;
pub use domain::pipeline::Status;
use domain::pipeline::Tally;
use domain::plan::{Lookup, Snapshot};
use domain::result_file::CsvBuilder;
use domain::vocabulary::{Channel, ImportSource, ImportStatus, DEFAULT_DELETION_THRESHOLD_PERCENT};
use domain::{Profile, Structure, Uai};
use rand::{CryptoRng, RngCore};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Persons planned and written at a time: large enough that a batch's
/// queries cost little each, small enough that memory never shows the feed.
pub const BATCH: usize = 5_000;
/// Records the reading thread hands over at a time.
const PIECES: usize = 500;
/// Identities a run locks one by one before it locks them all (PostgreSQL
/// keeps each advisory lock until the commit).
const FINE_LOCKS: usize = 2_000;
/// Updates and deactivations kept for the command line's list; the report
/// counts them all.
pub const LISTED: usize = 10_000;

/// One file of the feed. A file on disk is read when its turn comes, piece
/// by piece, so that a feed never has to fit in memory.
#[derive(Debug, Clone)]
pub struct FeedFile {
    pub name: String,
    content: FeedContent,
    size: u64,
}

#[derive(Debug, Clone)]
enum FeedContent {
    Bytes(Arc<[u8]>),
    Path(PathBuf),
}

impl FeedFile {
    /// A file already in memory (tests, uploads).
    pub fn from_bytes(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> FeedFile {
        let bytes: Arc<[u8]> = bytes.into().into();
        FeedFile {
            name: name.into(),
            size: bytes.len() as u64,
            content: FeedContent::Bytes(bytes),
        }
    }

    /// A file on disk, named by its file name; read during the run.
    pub fn from_path(path: &Path) -> std::io::Result<FeedFile> {
        let meta = std::fs::metadata(path)?;
        if !meta.is_file() {
            return Err(std::io::Error::other("ce n'est pas un fichier"));
        }
        Ok(FeedFile {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            size: meta.len(),
            content: FeedContent::Path(path.to_path_buf()),
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Where the file is read from, for a file on disk.
    pub fn path(&self) -> Option<&Path> {
        match &self.content {
            FeedContent::Path(path) => Some(path),
            FeedContent::Bytes(_) => None,
        }
    }

    /// Calls `on_request` for each request of the file, in order.
    fn read<E>(
        &self,
        on_request: impl FnMut(aaf::RawRequest) -> Result<(), E>,
    ) -> Result<Result<ReadSummary, E>, AafError> {
        let feed_error = |source| AafError::Feed {
            file: self.name.clone(),
            source,
        };
        let path = match &self.content {
            FeedContent::Bytes(bytes) => return aaf::read_requests(bytes, on_request).map_err(feed_error),
            FeedContent::Path(path) => path,
        };
        let io_error = |source| AafError::Read {
            file: self.name.clone(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io_error)?;
        let mut head = Vec::with_capacity(256);
        (&mut file).take(256).read_to_end(&mut head).map_err(io_error)?;
        // Only a file that declares a single-byte encoding may need the
        // declaration fixed, which takes one pass over the whole file.
        let fix = match aaf::utf8_declaration_fix(&head, true) {
            None => None,
            Some(_) => {
                let mut scan = aaf::Utf8Scan::default();
                scan.feed(&head);
                let mut piece = vec![0; 1 << 16];
                loop {
                    let n = file.read(&mut piece).map_err(io_error)?;
                    if n == 0 {
                        break;
                    }
                    scan.feed(&piece[..n]);
                }
                aaf::utf8_declaration_fix(&head, scan.utf8_with_accents())
            }
        };
        let skip = fix.as_ref().map_or(0, |f| f.replaces);
        file.seek(std::io::SeekFrom::Start(skip as u64)).map_err(io_error)?;
        let (head, notice) = match fix {
            Some(f) => (f.head, Some(f.notice)),
            None => (Vec::new(), None),
        };
        let source = std::io::Cursor::new(head).chain(std::io::BufReader::with_capacity(1 << 16, file));
        aaf::read_requests_from(source, notice, on_request).map_err(feed_error)
    }
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
    /// Persons planned and written at a time ([`BATCH`]; tests make it small
    /// to show that batches decide what one plan would).
    pub batch_size: usize,
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
            batch_size: BATCH,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AafError {
    #[error("aucun fichier de flux AAF (*.xml) à importer : indiquez des fichiers ou un dossier qui en contient")]
    NoFiles,
    #[error("{file} : {source}")]
    Feed { file: String, source: FeedError },
    #[error("lecture de {file} impossible : {source}")]
    Read { file: String, source: std::io::Error },
    #[error("lecture du flux interrompue : {0}")]
    Interrupted(String),
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
    /// The accounts updated, for the command line's list (the first [`LISTED`]).
    pub updates: Vec<Update>,
    /// The accounts deactivated, whole or some of their memberships, by name
    /// (the first [`LISTED`]).
    pub deactivations: Vec<Deactivation>,
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

/// What the reading thread hands the run, in the files' order.
enum Piece {
    Structure(String, StructureRecord),
    Person(Box<FileRecord>),
    Issue(Issue),
    Notice(AafNotice),
    /// A request of a kind not imported (subjects, MEF).
    Ignored,
    /// A file read to its end, and the Complet scope it promises.
    FileDone(FileSummary, Option<CompletScope>),
}

type Pieces = Result<Vec<Piece>, AafError>;

/// The reading stopped because the run did (an error there, or a refusal).
struct Stopped;

/// The establishments a person record names (a Complet file's scope when its
/// name carries no UAI).
fn places_of(record: &aaf::PersonRecord) -> impl Iterator<Item = Uai> + '_ {
    let functions = match &record.functions {
        Some(aaf::FunctionsChange::Replace(f)) => f.as_slice(),
        _ => &[],
    };
    let pupil_places = match record.person {
        aaf::PersonKind::Pupil => record.attached.clone().unwrap_or_default(),
        _ => Vec::new(),
    };
    functions
        .iter()
        .map(|f| f.uai.clone())
        .chain(pupil_places)
        .chain(record.classes.iter().flatten().map(|(u, _)| u.clone()))
}

/// Reads every file in processing order, on a thread of its own, and hands
/// the records over a few hundred at a time. `structures` holds the stored
/// establishments' jointures; the run's own structures are added as they
/// are read (their files come first), so persons resolve against both.
fn read_feed(
    files: Vec<(FeedFile, FileInfo)>,
    today: chrono::NaiveDate,
    mut structures: StructureIndex,
    out: tokio::sync::mpsc::Sender<Pieces>,
) {
    let mut pieces: Vec<Piece> = Vec::with_capacity(PIECES);
    let send = |pieces: &mut Vec<Piece>| out.blocking_send(Ok(std::mem::take(pieces))).is_ok();
    for (file, info) in files {
        let mut persons = 0usize;
        let mut places: BTreeSet<Uai> = BTreeSet::new();
        let read = file.read(|raw| {
            match aaf::map_request(&file.name, &raw, today, &structures) {
                Ok(Record::Structure(s)) => {
                    if let (Some(jointure), true) = (&s.jointure, s.kind != RequestKind::Delete) {
                        structures.insert(jointure, s.uai.clone());
                    }
                    pieces.push(Piece::Structure(file.name.clone(), s));
                }
                Ok(Record::Person(p)) => {
                    persons += 1;
                    if info.complet && info.uai.is_none() {
                        places.extend(places_of(&p));
                    }
                    pieces.push(Piece::Person(Box::new(FileRecord {
                        file: file.name.clone(),
                        record: *p,
                    })));
                }
                Ok(Record::Unsupported { .. }) => pieces.push(Piece::Ignored),
                Err(issue) => pieces.push(Piece::Issue(issue)),
            }
            if pieces.len() >= PIECES && !send(&mut pieces) {
                return Err(Stopped);
            }
            Ok(())
        });
        let summary = match read {
            Ok(Ok(summary)) => summary,
            Ok(Err(Stopped)) => return,
            Err(e) => {
                let _ = out.blocking_send(Err(e));
                return;
            }
        };
        pieces.extend(summary.notices.into_iter().map(|message| {
            Piece::Notice(AafNotice {
                file: file.name.clone(),
                request: None,
                key: None,
                message,
            })
        }));
        let profiles = match info.kind {
            None | Some(FeedKind::PersEducNat) => vec![Profile::Enseignant, Profile::Administratif],
            Some(FeedKind::Eleve) => vec![Profile::Eleve],
            Some(FeedKind::PersRelEleve) => vec![Profile::Parent],
            Some(_) => Vec::new(),
        };
        let mut scope = None;
        if info.complet && !profiles.is_empty() {
            // The file's establishment: the UAI in its name, otherwise the
            // places its records name (a parents' file names none: without a
            // UAI in its name it deactivates nobody).
            let establishments: Vec<Uai> = match &info.uai {
                Some(uai) => vec![uai.clone()],
                None => places.into_iter().collect(),
            };
            if persons == 0 {
                pieces.push(Piece::Notice(AafNotice {
                    file: file.name.clone(),
                    request: None,
                    key: None,
                    message: "fichier Complet sans aucune personne : par sécurité, il ne désactive personne (fichier tronqué ?)".into(),
                }));
            } else if !establishments.is_empty() {
                scope = Some(CompletScope {
                    file: file.name.clone(),
                    establishments,
                    profiles,
                });
            }
        }
        pieces.push(Piece::FileDone(
            FileSummary {
                name: file.name.clone(),
                kind: info.kind.map(FeedKind::id),
                complet: info.complet,
                requests: summary.requests,
            },
            scope,
        ));
        if !send(&mut pieces) {
            return;
        }
    }
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
        file_size: files.iter().map(|f| f.size() as i64).sum(),
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
    let in_order: Vec<(FeedFile, FileInfo)> = ordered(files).into_iter().map(|(f, i)| (f.clone(), i)).collect();
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Pieces>(4);
    let today = clock.today();
    let reader = tokio::task::spawn_blocking(move || read_feed(in_order, today, stored, sender));

    let mut tx = directory.begin_admin().await?;
    let mut run = FeedRun::new(request, started_at);
    while let Some(message) = receiver.recv().await {
        for piece in message? {
            match piece {
                Piece::Structure(file, s) => {
                    run.flush_persons(&mut tx, files, clock, rng).await?;
                    run.structures.push((file, s));
                }
                Piece::Person(record) => {
                    run.flush_structures(&mut tx).await?;
                    run.batch.push(*record);
                    if run.batch.len() >= request.batch_size.max(1) {
                        run.flush_persons(&mut tx, files, clock, rng).await?;
                    }
                }
                Piece::Issue(issue) => run.issues.push(issue),
                Piece::Notice(notice) => run.notices.push(notice),
                Piece::Ignored => run.ignored += 1,
                Piece::FileDone(summary, scope) => {
                    run.requests += summary.requests;
                    run.summaries.push(summary);
                    run.scopes.extend(scope);
                }
            }
        }
    }
    reader.await.map_err(|e| AafError::Interrupted(e.to_string()))?;
    run.flush_structures(&mut tx).await?;
    run.flush_persons(&mut tx, files, clock, rng).await?;
    run.finish(tx, files, clock, rng).await
}

/// A feed run between its batches: the options, what the run carries from
/// batch to batch, and what its report and result file gather.
struct FeedRun<'r> {
    request: &'r AafRequest,
    options: AafPlanOptions,
    started_at: DateTime<Utc>,
    state: RunState,
    /// Structures read and not written yet.
    structures: Vec<(String, StructureRecord)>,
    /// Persons read and not planned yet.
    batch: Vec<FileRecord>,
    summaries: Vec<FileSummary>,
    scopes: Vec<CompletScope>,
    issues: Vec<Issue>,
    notices: Vec<AafNotice>,
    ignored: usize,
    requests: usize,
    establishments: BTreeSet<Uai>,
    establishments_created: BTreeSet<Uai>,
    establishments_updated: BTreeSet<Uai>,
    created_by_profile: BTreeMap<&'static str, usize>,
    duplicates: Vec<DuplicatePair>,
    duplicate_pairs: HashSet<(String, String)>,
    updates: Vec<Update>,
    deactivations: Vec<Deactivation>,
    result: Option<CsvBuilder>,
    import_id: Option<i64>,
    fine_locks: usize,
    locked_all: bool,
    /// Rows the run inserted so far (accounts, links), and the count at
    /// which the planner's statistics are refreshed next (doubling: a few
    /// refreshes while a run fills an empty directory, none for a run that
    /// inserts little).
    rows_added: usize,
    next_statistics: usize,
    /// Accounts the run deactivated whole: their parents may have no child left.
    ended_accounts: Vec<i64>,
}

impl<'r> FeedRun<'r> {
    fn new(request: &'r AafRequest, started_at: DateTime<Utc>) -> FeedRun<'r> {
        FeedRun {
            request,
            options: AafPlanOptions {
                login_pattern: request.login_pattern,
                deletion_threshold_percent: request.deletion_threshold_percent,
                confirm_deletions: request.confirm_deletions,
            },
            started_at,
            state: RunState::default(),
            structures: Vec::new(),
            batch: Vec::new(),
            summaries: Vec::new(),
            scopes: Vec::new(),
            issues: Vec::new(),
            notices: Vec::new(),
            ignored: 0,
            requests: 0,
            establishments: BTreeSet::new(),
            establishments_created: BTreeSet::new(),
            establishments_updated: BTreeSet::new(),
            created_by_profile: BTreeMap::new(),
            duplicates: Vec::new(),
            duplicate_pairs: HashSet::new(),
            updates: Vec::new(),
            deactivations: Vec::new(),
            result: None,
            import_id: None,
            fine_locks: 0,
            locked_all: false,
            rows_added: 0,
            next_statistics: BATCH,
            ended_accounts: Vec::new(),
        }
    }

    /// Writes the structures read so far: persons of this run may belong to
    /// a new establishment.
    async fn flush_structures<T: AdminTx>(&mut self, tx: &mut T) -> Result<(), AafError> {
        if self.structures.is_empty() {
            return Ok(());
        }
        let structures = std::mem::take(&mut self.structures);
        let uais: Vec<Uai> = structures
            .iter()
            .map(|(_, s)| s.uai.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        tx.lock_establishments(&uais).await?;
        let (writes, created, updated) = plan_structures(tx, &structures, &uais).await?;
        for (file, s) in &structures {
            if s.kind == RequestKind::Delete {
                self.notices.push(AafNotice {
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
        tx.write_structures(&writes, self.started_at).await?;
        self.establishments_created.extend(created);
        self.establishments_updated
            .extend(updated.into_iter().filter(|u| !self.establishments_created.contains(u)));
        self.establishments.extend(uais);
        Ok(())
    }

    /// Plans and writes the persons read so far, against a snapshot of the
    /// keys they name (and the persons their links name).
    async fn flush_persons<T: AdminTx, R: RngCore + CryptoRng>(
        &mut self,
        tx: &mut T,
        files: &[FeedFile],
        clock: &dyn Clock,
        rng: &mut R,
    ) -> Result<(), AafError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let lookup = self.state.lookup_for(&batch, self.request.login_pattern);
        tx.lock_establishments(&lookup.establishments).await?;
        let keys: Vec<String> = lookup.keys.iter().map(|k| k.as_str().to_string()).collect();
        if !self.locked_all {
            if self.fine_locks + keys.len() + lookup.login_bases.len() > FINE_LOCKS {
                tx.lock_every_identity().await?;
                self.locked_all = true;
            } else {
                self.fine_locks += keys.len() + lookup.login_bases.len();
                tx.lock_identities(&keys, &lookup.login_bases).await?;
            }
        }
        let snapshot = fetch_snapshot(
            tx,
            &Lookup {
                keys: lookup.keys,
                logins: Vec::new(),
                login_bases: lookup.login_bases,
                establishments: lookup.establishments.clone(),
                groups: Vec::new(),
                complet_scope: None,
                // The feed attaches whatever establishments it names.
                establishment_names: false,
            },
        )
        .await?;
        let plan = aaf_plan::plan_batch(&batch, &snapshot, &self.options, &mut self.state);
        drop(snapshot);
        drop(batch);
        self.establishments.extend(lookup.establishments);
        self.write(tx, plan, files, clock, rng).await?;
        if self.rows_added >= self.next_statistics {
            tx.refresh_statistics().await?;
            self.next_statistics = self.rows_added * 2;
        }
        Ok(())
    }

    /// Writes one plan (a batch's, or the Complet deactivations), keeps what
    /// the report lists and adds the accounts created to the result file.
    async fn write<T: AdminTx, R: RngCore + CryptoRng>(
        &mut self,
        tx: &mut T,
        mut plan: AafPlan,
        files: &[FeedFile],
        clock: &dyn Clock,
        rng: &mut R,
    ) -> Result<(), AafError> {
        self.issues.append(&mut plan.issues);
        self.notices.append(&mut plan.notices);
        for c in &plan.creates {
            *self.created_by_profile.entry(c.profile.id()).or_default() += 1;
        }
        let secrets = if self.request.dry_run {
            // Nothing a dry run writes is kept: no password to compute.
            plan.creates
                .iter()
                .map(|_| Secret {
                    cleartext: String::new(),
                    hash: String::new(),
                    origin: SecretOrigin::Generated,
                })
                .collect()
        } else {
            hash_secrets(&plan.creates, rng, &NoProgress).await?
        };
        let import_id = self.import_id(tx, files, clock).await?;
        let owner = Ownership {
            source: Source::Aaf,
            protected: true,
        };
        let written = write_changes(
            tx,
            plan.changeset(),
            owner,
            &secrets,
            import_id,
            clock.now(),
            &NoProgress,
        )
        .await?;
        self.state
            .links_written(written.links.iter().filter_map(|&at| plan.links.get(at)));
        self.rows_added += written.rows_added;
        // A pair depends on names, birth date, e-mail, profile and a shared
        // establishment: an update that changes none of them (a pupil moved
        // to another class) cannot make one, and is not looked at.
        let touched: Vec<i64> = written
            .created_ids
            .iter()
            .copied()
            .chain(
                plan.updates
                    .iter()
                    .filter(|u| {
                        !u.changes.is_empty() || !u.memberships.is_empty() || u.profile.is_some() || u.reactivate
                    })
                    .map(|u| u.user_id),
            )
            .collect();
        if !touched.is_empty() {
            for pair in admin::duplicates_for(tx, &touched).await? {
                if self
                    .duplicate_pairs
                    .insert((pair.local.key.to_string(), pair.aaf.key.to_string()))
                {
                    self.duplicates.push(pair);
                }
            }
        }
        if !self.request.dry_run && !plan.creates.is_empty() {
            let passwords: Vec<&str> = secrets.iter().map(|s| s.cleartext.as_str()).collect();
            aaf_plan::add_created(
                self.result.get_or_insert_with(aaf_plan::result_file),
                &plan.creates,
                &passwords,
            );
        }
        self.ended_accounts
            .extend(plan.deactivations.iter().filter(|d| d.whole_account).map(|d| d.user_id));
        let room = LISTED.saturating_sub(self.updates.len());
        self.updates.extend(plan.updates.into_iter().take(room));
        let room = LISTED.saturating_sub(self.deactivations.len());
        self.deactivations.extend(plan.deactivations.into_iter().take(room));
        Ok(())
    }

    /// The run's history line, written with its first batch (deactivations
    /// name it) and given its counts at the end.
    async fn import_id<T: AdminTx>(
        &mut self,
        tx: &mut T,
        files: &[FeedFile],
        clock: &dyn Clock,
    ) -> Result<i64, AafError> {
        if let Some(id) = self.import_id {
            return Ok(id);
        }
        let record = feed_record(
            files,
            self.request,
            self.started_at,
            clock.now(),
            None,
            Vec::new(),
            !self.scopes.is_empty(),
            ImportStatus::Succeeded,
            None,
        );
        let id = tx.insert_import(&record).await?;
        self.import_id = Some(id);
        Ok(id)
    }

    /// Once every batch is written: the Complet files' deactivations (with
    /// the deletion guard), the parents left without a child, the report,
    /// the history line, the audit row and the result file, then the commit.
    async fn finish<T: AdminTx, R: RngCore + CryptoRng>(
        mut self,
        mut tx: T,
        files: &[FeedFile],
        clock: &dyn Clock,
        rng: &mut R,
    ) -> Result<AafOutcome, AafError> {
        let ended = self.complet(&mut tx).await?;
        if let Some(rejection) = &ended.rejection {
            let report = self.report(Status::Rejected, Some(rejection.message()), ended.deactivations.len());
            let room = LISTED.saturating_sub(self.deactivations.len());
            self.deactivations.extend(ended.deactivations.into_iter().take(room));
            // Dropping the transaction rolls it back, structures included.
            return Ok(self.outcome(report, None));
        }
        let complet_ended = ended.deactivations.len();
        if complet_ended > 0 {
            let plan = AafPlan {
                deactivations: ended.deactivations,
                ..AafPlan::default()
            };
            self.write(&mut tx, plan, files, clock, rng).await?;
        }
        let orphans = self.parents_without_child(&mut tx, files, clock, rng).await?;
        let status = if self.request.dry_run {
            Status::DryRun
        } else {
            Status::Imported
        };
        let mut report = self.report(status, None, complet_ended + orphans);
        if self.request.dry_run {
            // Dropping the transaction rolls back every batch.
            return Ok(self.outcome(report, None));
        }
        let import_id = self.import_id(&mut tx, files, clock).await?;
        let now = clock.now();
        let record = feed_record(
            files,
            self.request,
            self.started_at,
            now,
            Some(&report),
            self.establishments.iter().cloned().collect(),
            !self.scopes.is_empty(),
            ImportStatus::Succeeded,
            None,
        );
        tx.update_import(import_id, &record).await?;
        report.import_id = Some(import_id);
        tx.insert_audit(&NewAudit {
            at: now,
            actor: self.request.actor.clone(),
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
        let result_file = self.result.take().map(CsvBuilder::finish);
        if let Some(bytes) = &result_file {
            // Kept for the history page like a CSV import's (no slips: the AAF
            // accounts sign in through the academy's own distribution).
            tx.insert_import_result(
                import_id,
                bytes,
                "[]",
                now + chrono::Duration::seconds(self.request.result_retention_seconds),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(self.outcome(report, result_file))
    }

    /// The Complet files' promise, once every record is written: their
    /// establishments' AAF accounts that no record named. Only those are
    /// read (the scope's keys, then the accounts absent from the run).
    async fn complet<T: AdminTx>(&mut self, tx: &mut T) -> Result<aaf_plan::CompletOutcome, AafError> {
        if self.scopes.is_empty() {
            return Ok(aaf_plan::CompletOutcome::default());
        }
        // A person whose request could not be read is still in the file:
        // never deactivate them for our failure to read their record.
        let unreadable: HashSet<&str> = self.issues.iter().filter_map(|i| i.key.as_deref()).collect();
        let mut scopes = Vec::with_capacity(self.scopes.len());
        let mut absent: BTreeSet<SyncKey> = BTreeSet::new();
        let mut places: BTreeSet<Uai> = BTreeSet::new();
        for scope in &self.scopes {
            let keys: Vec<SyncKey> = tx
                .aaf_scope(&scope.establishments, &scope.profiles)
                .await?
                .into_iter()
                .filter(|k| !unreadable.contains(k.as_str()))
                .map(SyncKey::from_stored)
                .collect();
            absent.extend(keys.iter().filter(|k| !self.state.mentioned(k)).cloned());
            places.extend(scope.establishments.iter().cloned());
            scopes.push((scope.clone(), keys));
        }
        let snapshot = if absent.is_empty() {
            Snapshot::default()
        } else {
            fetch_snapshot(
                tx,
                &Lookup {
                    keys: absent.into_iter().collect(),
                    logins: Vec::new(),
                    login_bases: Vec::new(),
                    establishments: places.iter().cloned().collect(),
                    groups: Vec::new(),
                    complet_scope: None,
                    establishment_names: false,
                },
            )
            .await?
        };
        self.establishments.extend(places);
        Ok(aaf_plan::complet(
            &scopes,
            |k| self.state.mentioned(k),
            &snapshot,
            &self.options,
        ))
    }

    /// Parents whose last child this run deactivated: deactivated too, with
    /// a notice. Returns how many no record of the run named.
    async fn parents_without_child<T: AdminTx, R: RngCore + CryptoRng>(
        &mut self,
        tx: &mut T,
        files: &[FeedFile],
        clock: &dyn Clock,
        rng: &mut R,
    ) -> Result<usize, AafError> {
        if self.ended_accounts.is_empty() {
            return Ok(0);
        }
        let ended = std::mem::take(&mut self.ended_accounts);
        let keys = tx.parents_without_child(&ended).await?;
        if keys.is_empty() {
            return Ok(0);
        }
        let snapshot = fetch_snapshot(
            tx,
            &Lookup {
                keys: keys.into_iter().map(SyncKey::from_stored).collect(),
                ..Lookup::default()
            },
        )
        .await?;
        let deactivations = aaf_plan::parents_without_child(&snapshot);
        let count = deactivations.len();
        // Those the batches counted (their record was in the run) are
        // counted as deactivated instead; the others are added.
        let not_named = deactivations
            .iter()
            .filter(|d| !self.state.ended_after_batches(&d.key))
            .count();
        if count > 0 {
            self.notices.push(AafNotice {
                file: String::new(),
                request: None,
                key: None,
                message: format!(
                    "{count} parent(s) désactivé(s) : plus aucun de leurs enfants n'est actif dans l'annuaire (restaurables avec l'import)"
                ),
            });
            let plan = AafPlan {
                deactivations,
                ..AafPlan::default()
            };
            self.write(tx, plan, files, clock, rng).await?;
        }
        Ok(not_named)
    }

    /// The report of the run so far; `deactivated` adds the accounts ended
    /// after the batches (Complet files, parents left without a child).
    fn report(&mut self, status: Status, rejection: Option<String>, deactivated: usize) -> AafReport {
        let counts = self.state.counts();
        if let Some(notice) = aaf_plan::links_left_out_notice(self.state.links_left_out()) {
            self.notices.push(notice);
        }
        AafReport {
            status,
            files: std::mem::take(&mut self.summaries),
            requests: self.requests,
            establishments_created: self.establishments_created.len(),
            establishments_updated: self.establishments_updated.len(),
            created: counts.created,
            created_by_profile: std::mem::take(&mut self.created_by_profile),
            updated: counts.updated,
            unchanged: counts.unchanged,
            deactivated: counts.deactivated + deactivated,
            ignored: self.ignored,
            skipped: self.issues.len(),
            issues: std::mem::take(&mut self.issues),
            notices: std::mem::take(&mut self.notices),
            duplicates: std::mem::take(&mut self.duplicates),
            rejection,
            import_id: None,
        }
    }

    fn outcome(mut self, report: AafReport, result_file: Option<Vec<u8>>) -> AafOutcome {
        self.deactivations
            .sort_by(|a, b| (&a.last_name, &a.first_name, &a.key).cmp(&(&b.last_name, &b.first_name, &b.key)));
        AafOutcome {
            report,
            updates: self.updates,
            deactivations: self.deactivations,
            result_file,
        }
    }
}

/// Establishments to create or update: each request sets the values it
/// carries, the last one wins. Returns what to write, the UAIs created and
/// the UAIs updated.
async fn plan_structures<T: AdminTx>(
    tx: &mut T,
    structures: &[(String, StructureRecord)],
    uais: &[Uai],
) -> Result<(Vec<Structure>, Vec<Uai>, Vec<Uai>), StoreError> {
    let existing: HashMap<Uai, Structure> = tx
        .structures(uais)
        .await?
        .into_iter()
        .map(|s| (s.uai.clone(), s))
        .collect();
    let mut wanted: BTreeMap<Uai, Structure> = BTreeMap::new();
    for (_, s) in structures {
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
