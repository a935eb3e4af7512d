//! One import, start to finish, on any [`Directory`]: read the file, check it,
//! plan against a snapshot taken inside the transaction (after locking the
//! establishments), hash passwords on every core, write, commit. A rejected
//! plan, a dry run or any error rolls back: nothing is half-written.

pub use crate::write::Secret;
use crate::write::{hash_secrets, write_changes, Ownership, SecretsError};
use crate::{fetch_snapshot, Directory, DirectoryTx, ImportRecord, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use domain::keys::{LoginPattern, SyncKey};
use domain::mapping::Override;
use domain::password;
use domain::person::Source;
use domain::pipeline::{self, FileOptions, ReadError, ReadFile, Report, Status};
use domain::plan::{self, AdminScope, Plan, PlanOptions};
use domain::validate::{self, Checked, ValidateOptions};
use domain::vocabulary::{Channel, ImportSource, ImportStatus, DEFAULT_DELETION_THRESHOLD_PERCENT};
use domain::{Profile, Uai};
use rand::{CryptoRng, RngCore};
use std::collections::HashMap;

/// The time, passed in so that tests are deterministic.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Progress of the long operations (step 5's three operations).
pub trait Progress: Send + Sync {
    fn step(&self, operation: Operation, done: usize, total: usize);
    /// An import reached `stage`: whoever times the phases (the benchmark)
    /// sees where the time goes; the progress bars ignore it.
    fn stage(&self, _stage: Stage) {}
}

/// The phases of an import, in the order [`run_import`] reaches them (a
/// preview stops at [`Stage::Planned`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The file decoded, parsed, mapped and validated.
    Checked,
    /// The keys, logins and establishments to read are known.
    LookedUp,
    /// Their rows read from the directory (after the real run's locks).
    Snapshot,
    /// The plan made.
    Planned,
    /// The new accounts' passwords generated and hashed.
    Hashed,
    /// The history line and every change of the plan written.
    Written,
    /// The result file, the credential slips and the skipped lines kept.
    ResultKept,
    /// The transaction committed.
    Committed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Hashing passwords, the dominant cost of big imports.
    Passwords,
    Groups,
    Users,
    Memberships,
}

pub struct NoProgress;

impl Progress for NoProgress {
    fn step(&self, _: Operation, _: usize, _: usize) {}
}

/// Result files hold cleartext passwords: kept a week, then deleted.
pub const DEFAULT_RESULT_RETENTION_DAYS: i64 = 7;

/// Everything the admin chose in steps 1–4.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub file_name: String,
    pub file: FileOptions,
    pub profile: Profile,
    pub establishment: Option<Uai>,
    pub establishments_from_file: bool,
    pub overrides: Vec<Override>,
    pub complet: bool,
    pub skip_conflicts: bool,
    pub confirm_deletions: Option<usize>,
    pub deletion_threshold_percent: u32,
    pub login_pattern: LoginPattern,
    pub min_password_len: usize,
    pub scope: AdminScope,
    /// The admin confirmed attaching accounts active in other establishments.
    pub attach_existing: bool,
    /// A preview: plans against a snapshot read without any lock, so it
    /// answers at once even while another import writes.
    pub dry_run: bool,
    /// The [`Plan::fingerprint`] the admin saw in the preview: the real run
    /// re-plans under its locks and refuses if the plan is no longer this one.
    pub expected_plan: Option<String>,
    /// Who runs it, for the history.
    pub actor: String,
    /// How it came in, for the history.
    pub channel: Channel,
    /// The web admin who runs it: the only one who may download its result.
    pub admin_id: Option<i64>,
    /// Where the end-of-import notice goes.
    pub notify: Option<String>,
    /// How long the result file (cleartext passwords) is kept for download.
    pub result_retention_seconds: i64,
    /// Lines corrected in step 3: physical line → new cells.
    pub edits: std::collections::BTreeMap<u64, Vec<String>>,
    /// The web job running it: the applied import names it in its own
    /// transaction (see [`crate::history::History::import_of_job`]).
    pub job_id: Option<i64>,
    /// Where the history line of a failed import waits when the database
    /// is gone (see [`replay_pending_history`]); none: it is only logged.
    pub pending_history: Option<std::path::PathBuf>,
}

impl ImportRequest {
    pub fn new(profile: Profile, establishment: Option<Uai>) -> Self {
        ImportRequest {
            file_name: String::new(),
            file: FileOptions::default(),
            profile,
            establishment,
            establishments_from_file: false,
            overrides: Vec::new(),
            complet: false,
            skip_conflicts: false,
            confirm_deletions: None,
            deletion_threshold_percent: DEFAULT_DELETION_THRESHOLD_PERCENT,
            login_pattern: LoginPattern::default(),
            min_password_len: password::DEFAULT_MIN_LEN,
            scope: AdminScope::All,
            attach_existing: false,
            dry_run: false,
            expected_plan: None,
            actor: "cli".to_string(),
            channel: Channel::Cli,
            admin_id: None,
            notify: None,
            result_retention_seconds: DEFAULT_RESULT_RETENTION_DAYS * 86_400,
            pending_history: None,
            edits: std::collections::BTreeMap::new(),
            job_id: None,
        }
    }
}

impl ImportRequest {
    /// What the pure planner needs of the request.
    pub fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            profile: self.profile,
            establishment: self.establishment.clone(),
            establishments_from_file: self.establishments_from_file,
            complet: self.complet,
            skip_conflicts: self.skip_conflicts,
            confirm_deletions: self.confirm_deletions,
            deletion_threshold_percent: self.deletion_threshold_percent,
            login_pattern: self.login_pattern,
            scope: self.scope.clone(),
            attach_existing: self.attach_existing,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("établissement {0} inconnu : ajoutez-le avec « annuaire establishment add {0} NOM »")]
    UnknownEstablishment(Uai),
    #[error("vous n'administrez pas l'établissement {0} : choisissez un de vos établissements")]
    OutOfScope(Uai),
    #[error("choisissez un établissement (--establishment), ou l'option « affecter aux établissements du fichier » pour le personnel administratif")]
    NoEstablishment,
    #[error(
        "le profil {0} ne s'importe pas par fichier : les administrateurs et invités se créent un par un (guide §1.2)"
    )]
    NotImportable(Profile),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("l'annuaire a changé depuis l'aperçu (un autre import ou une modification de compte) : rien n'a été écrit ; revoyez le résumé et relancez l'import")]
    PlanChanged,
}

impl ImportError {
    /// The CLI's exit status: 2 when the file, the mapping or the admin's
    /// scope refused it, 1 otherwise.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            ImportError::Read(ReadError::Mapping(_)) | ImportError::OutOfScope(_)
        )
    }
}

pub struct ImportOutcome {
    pub read: ReadFile,
    pub checked: Checked,
    pub plan: Plan,
    pub report: Report,
    /// The result file of §7, for an import that was applied.
    pub result_file: Option<Vec<u8>>,
    pub import_id: Option<i64>,
}

/// Steps 1–3 without the directory: reading, mapping and line checks.
pub fn check_file(bytes: &[u8], request: &ImportRequest, today: NaiveDate) -> Result<(ReadFile, Checked), ImportError> {
    if !request.profile.is_importable() {
        return Err(ImportError::NotImportable(request.profile));
    }
    if request.establishment.is_none() && !request.establishments_from_file {
        return Err(ImportError::NoEstablishment);
    }
    let mut read = pipeline::read(
        bytes,
        &request.file,
        request.profile,
        &request.overrides,
        request.establishments_from_file,
    )?;
    read.parsed.apply_edits(&request.edits);
    let checked = validate::validate(
        &read.parsed,
        &read.mapping,
        &ValidateOptions {
            today,
            min_password_len: request.min_password_len,
            establishments_from_file: request.establishments_from_file,
            establishment: request.establishment.clone(),
            limits: request.file.limits,
        },
    );
    Ok((read, checked))
}

pub async fn run_import<D: Directory, R: RngCore + CryptoRng>(
    directory: &D,
    bytes: &[u8],
    request: &ImportRequest,
    clock: &dyn Clock,
    rng: &mut R,
    progress: &dyn Progress,
) -> Result<ImportOutcome, ImportError> {
    let started_at = clock.now();
    let (read, checked) = check_file(bytes, request, clock.today())?;
    progress.stage(Stage::Checked);
    let options = request.plan_options();
    let lookup = plan::lookup_for(&checked, &read.mapping, &options);
    progress.stage(Stage::LookedUp);

    let mut tx = if request.dry_run {
        directory.begin().await?
    } else {
        directory.begin_writing().await?
    };
    if !request.dry_run {
        // Only the real run locks: a preview reads what is committed (SQLite's
        // WAL and PostgreSQL's MVCC let readers pass a writer), and the real
        // run re-plans under these locks before writing.
        tx.lock_establishments(&lookup.establishments).await?;
        let keys: Vec<String> = lookup.keys.iter().map(|k| k.as_str().to_string()).collect();
        let logins: Vec<String> = lookup.logins.iter().chain(&lookup.login_bases).cloned().collect();
        tx.lock_identities(&keys, &logins).await?;
    }
    let snapshot = fetch_snapshot(&mut tx, &lookup).await?;
    progress.stage(Stage::Snapshot);
    if let Some(chosen) = &request.establishment {
        if !snapshot.establishments.contains(chosen) {
            return Err(ImportError::UnknownEstablishment(chosen.clone()));
        }
        if !request.scope.allows(chosen) {
            return Err(ImportError::OutOfScope(chosen.clone()));
        }
    }
    let plan = plan::plan(&checked, &read.mapping, &snapshot, &options);
    progress.stage(Stage::Planned);

    if plan.rejection.is_some() || request.dry_run {
        let status = if plan.rejection.is_some() {
            Status::Rejected
        } else {
            Status::DryRun
        };
        let report = Report::from_plan_for(&plan, status, request.channel);
        // Dropping the transaction rolls it back.
        return Ok(ImportOutcome {
            read,
            checked,
            plan,
            report,
            result_file: None,
            import_id: None,
        });
    }

    if request
        .expected_plan
        .as_ref()
        .is_some_and(|seen| *seen != plan.fingerprint())
    {
        return Err(ImportError::PlanChanged);
    }
    let secrets = hash_secrets(&plan.creates, rng, progress).await?;
    progress.stage(Stage::Hashed);
    let now = clock.now();
    let report = Report::from_plan(&plan, Status::Imported);
    let mut record = history_record(request, bytes.len(), started_at, now, Some(&read));
    record.establishments = touched_establishments(request, &checked, &plan);
    record.count(report.tally());
    record.status = ImportStatus::Succeeded;
    let import_id = tx.insert_import(&record).await?;
    apply(&mut tx, &plan, &secrets, import_id, now, progress).await?;
    for u in plan.updates.iter().filter(|u| !u.shared_with.is_empty()) {
        tx.record_attachment(&crate::history::NewAttachment {
            import_id,
            at: now,
            actor: request.actor.clone(),
            user_id: u.user_id,
            sync_key: u.key.as_str().to_string(),
            last_name: u.attrs.last_name.clone(),
            first_name: u.attrs.first_name.clone(),
            attached_to: u.memberships.iter().map(|m| m.uai.clone()).collect(),
            others: u.shared_with.clone(),
        })
        .await?;
    }
    progress.stage(Stage::Written);

    let passwords: HashMap<SyncKey, String> = plan
        .creates
        .iter()
        .zip(secrets.iter())
        .map(|(c, s)| (c.key.clone(), s.cleartext.clone()))
        .collect();
    let result_file = domain::result_file::build(&checked, &read.mapping, &plan, &passwords);
    let slips = serde_json::to_string(&domain::result_file::slips(&plan, &passwords))
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.insert_import_result(
        import_id,
        &result_file,
        &slips,
        now + chrono::Duration::seconds(request.result_retention_seconds),
    )
    .await?;
    if let Some(skipped) = domain::result_file::skipped_lines(&read.parsed, &read.mapping, &plan) {
        tx.insert_skipped_lines(import_id, &skipped).await?;
    }
    progress.stage(Stage::ResultKept);
    tx.commit().await?;
    progress.stage(Stage::Committed);
    Ok(ImportOutcome {
        read,
        checked,
        plan,
        report,
        result_file: Some(result_file),
        import_id: Some(import_id),
    })
}

/// The establishments an import really touched, for its history line: the
/// one chosen, those named by its imported lines (not by a refused line's
/// unknown or foreign UAI) and those of the accounts it deactivated.
fn touched_establishments(request: &ImportRequest, checked: &Checked, plan: &Plan) -> Vec<Uai> {
    let mut touched: std::collections::BTreeSet<Uai> = request.establishment.iter().cloned().collect();
    if request.establishments_from_file {
        touched.extend(
            checked
                .rows
                .iter()
                .filter(|r| !plan.conflict_lines.contains(&r.line))
                .filter_map(|r| r.uai.clone()),
        );
    }
    touched.extend(plan.deactivations.iter().flat_map(|d| d.establishments.iter().cloned()));
    touched.into_iter().collect()
}

/// The history line of an import, counts and status left for the caller;
/// `read` adds what was detected in the file when it got that far.
fn history_record(
    request: &ImportRequest,
    file_size: usize,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
    read: Option<&ReadFile>,
) -> ImportRecord {
    let mut options = serde_json::json!({
        "skip_conflicts": request.skip_conflicts,
        "establishments_from_file": request.establishments_from_file,
        "confirm_deletions": request.confirm_deletions,
    });
    if let Some(read) = read {
        options["encoding"] = serde_json::json!(read.encoding);
        options["separator"] = serde_json::json!(char::from(read.parsed.separator).to_string());
    }
    ImportRecord {
        started_at,
        finished_at: now,
        source: ImportSource::Csv,
        channel: request.channel,
        actor: request.actor.clone(),
        admin_id: request.admin_id,
        profile: request.profile.id().to_string(),
        establishments: request.establishment.iter().cloned().collect(),
        complet: request.complet,
        options: options.to_string(),
        file_name: request.file_name.clone(),
        file_size: file_size as i64,
        rows: 0,
        created: 0,
        updated: 0,
        unchanged: 0,
        merged: 0,
        deactivated: 0,
        skipped: 0,
        // Set by the caller once the outcome is known.
        status: ImportStatus::Failed,
        error: None,
        notify: request.notify.clone(),
        job_id: request.job_id,
    }
}

/// [`run_import`] as every door runs it: an import that was refused or failed
/// also gets its history line (with the reason), so that the history and the
/// notice tell the whole story. A dry run is not an import and leaves no trace.
/// Returns the outcome and the history line's id.
pub async fn run_recorded_import<
    D: Directory + crate::history::History + crate::admin::AdminDirectory,
    R: RngCore + CryptoRng,
>(
    directory: &D,
    bytes: &[u8],
    request: &ImportRequest,
    clock: &dyn Clock,
    rng: &mut R,
    progress: &dyn Progress,
) -> (Result<ImportOutcome, ImportError>, Option<i64>) {
    let started_at = clock.now();
    let result = run_import(directory, bytes, request, clock, rng, progress).await;
    let applied = result.as_ref().ok().and_then(|o| o.import_id);
    if let (Some(import_id), Ok(outcome)) = (applied, &result) {
        let r = &outcome.report;
        let audit = crate::admin::NewAudit {
            at: clock.now(),
            actor: request.actor.clone(),
            action: "import".into(),
            target: format!("import n° {import_id}"),
            details: serde_json::json!({
                "file": request.file_name,
                "channel": request.channel,
                "profile": request.profile,
                "establishment": request.establishment,
                "complet": request.complet,
                "created": r.created,
                "updated": r.updated,
                "unchanged": r.unchanged,
                "merged": r.merged,
                "deactivated": r.deactivated,
                "skipped": r.skipped,
            }),
        };
        if let Err(e) = crate::admin::audit(directory, &audit).await {
            tracing::warn!(import_id, error = %e, "journal d'audit : import non consigné");
        }
    }
    if request.dry_run || applied.is_some() {
        return (result, applied);
    }
    let read = result.as_ref().ok().map(|o| &o.read);
    let mut record = history_record(request, bytes.len(), started_at, clock.now(), read);
    // Only an applied import answers for its job; a refusal or a failure
    // wrote nothing, and a retry of the job may record its own line.
    record.job_id = None;
    match &result {
        Ok(outcome) => {
            // Nothing was written: only the file's row count, the reason says the rest.
            record.rows = outcome.report.rows as i64;
            record.status = ImportStatus::Rejected;
            record.error = outcome.report.rejection.clone();
        }
        Err(e) => {
            record.status = if e.is_rejection() {
                ImportStatus::Rejected
            } else {
                ImportStatus::Failed
            };
            record.error = Some(e.to_string());
        }
    }
    (result, record_history(directory, request, &record).await)
}

/// Writes a history line; when the database is gone, keeps it in
/// [`ImportRequest::pending_history`] (if the door gave one) until it is back.
async fn record_history<D: crate::history::History>(
    directory: &D,
    request: &ImportRequest,
    record: &ImportRecord,
) -> Option<i64> {
    let e = match directory.record_import(record).await {
        Ok(id) => return Some(id),
        Err(e) => e,
    };
    tracing::warn!(error = %e, file = %request.file_name, "historique : ligne non enregistrée");
    if let (Some(folder), true) = (&request.pending_history, e.is_unavailable()) {
        match spool_history(folder, record) {
            Ok(path) => tracing::warn!(file = %path.display(), "historique : la ligne attend le retour de la base"),
            Err(e) => tracing::error!(error = %e, "historique : ligne perdue"),
        }
    }
    None
}

/// Keeps a history line the database could not take, as a JSON file of its
/// own in `folder` (created private), until [`replay_pending_history`].
fn spool_history(folder: &std::path::Path, record: &ImportRecord) -> std::io::Result<std::path::PathBuf> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(folder)?;
    let json = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    let stamp = record.finished_at.format("%Y%m%dT%H%M%S%.6f");
    for attempt in 0..100 {
        let path = folder.join(format!("{stamp}-{attempt}.json"));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                std::io::Write::write_all(&mut file, &json)?;
                file.sync_all()?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "trop de lignes d'historique en attente à la même seconde",
    ))
}

/// Writes the history lines that waited for the database (see
/// [`ImportRequest::pending_history`]), oldest first, and removes each once
/// written. Run by every command and by the server when they start: a
/// failed import reaches the history once the database is back. The number
/// of lines written.
pub async fn replay_pending_history<D: crate::history::History>(
    directory: &D,
    folder: &std::path::Path,
) -> Result<usize, StoreError> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Ok(0);
    };
    let mut files: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut written = 0;
    for path in files {
        let record: ImportRecord = match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
        {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "historique en attente illisible : laissé en place");
                continue;
            }
        };
        directory.record_import(&record).await?;
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(file = %path.display(), error = %e, "historique en attente écrit mais non effacé");
        }
        written += 1;
    }
    Ok(written)
}

/// The history line of a file refused before it was read (over the size
/// cap), for the door to complete with what only it knows.
pub fn refused_record(
    request: &ImportRequest,
    refusal: &domain::decode::FileError,
    now: DateTime<Utc>,
) -> ImportRecord {
    let size = match refusal {
        domain::decode::FileError::TooLarge { size, .. } => *size,
        _ => 0,
    };
    let mut record = history_record(request, size, now, now, None);
    record.job_id = None;
    record.status = ImportStatus::Rejected;
    record.error = Some(refusal.to_string());
    record
}

/// A file refused before it was read (over the size cap): its history line,
/// as every other refusal has one.
pub async fn record_refused_file<D: crate::history::History>(
    directory: &D,
    request: &ImportRequest,
    refusal: &domain::decode::FileError,
    clock: &dyn Clock,
) -> Option<i64> {
    record_history(directory, request, &refused_record(request, refusal, clock.now())).await
}

/// "Exporter les utilisateurs de l'ENT" (SPEC §9, guide §5.3): the users of
/// an establishment and profile in the import format (same headers, keys,
/// no passwords, Excel-safe), which re-imports with zero changes. Returns the
/// number of users and the file. The login of an account also active in an
/// establishment outside `scope` is left blank: it is not this admin's to hand out.
pub async fn export_csv<D: Directory>(
    d: &D,
    uai: &Uai,
    profile: Profile,
    scope: &AdminScope,
) -> Result<(usize, Vec<u8>), StoreError> {
    let users = d.export_users(uai, profile).await?;
    let shared: std::collections::HashSet<i64> = match scope {
        AdminScope::All => Default::default(),
        AdminScope::Establishments(_) => {
            let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
            let mut tx = d.begin().await?;
            tx.memberships_of(&ids)
                .await?
                .into_iter()
                .filter(|(_, m)| m.active && !scope.allows(&m.uai))
                .map(|(id, _)| id)
                .collect()
        }
    };
    let rows = users
        .into_iter()
        .map(|r| {
            Ok(domain::export::ExportRow {
                key: SyncKey::from_stored(r.sync_key.clone()),
                login: (!shared.contains(&r.id)).then(|| domain::values::Login::from_stored(r.login.clone())),
                attrs: r.attributes()?,
                uai: uai.clone(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok((rows.len(), domain::export::write(profile, &rows)))
}

/// Writes a plan inside an open transaction.
pub async fn apply<T: DirectoryTx>(
    tx: &mut T,
    plan: &Plan,
    secrets: &[Secret],
    import_id: i64,
    now: DateTime<Utc>,
    progress: &dyn Progress,
) -> Result<(), StoreError> {
    let owner = Ownership {
        source: Source::Csv,
        protected: false,
    };
    write_changes(tx, plan.changeset(), owner, secrets, import_id, now, progress).await?;
    Ok(())
}
