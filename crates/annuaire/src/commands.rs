//! The commands: each opens the directory named by `--database` and calls the
//! shared service functions.

use crate::cli::{
    Cli, Command, EstablishmentCommand, ExportArgs, ImportArgs, ImportsCommand, LvsCommand, LvsExportArgs, LvsFormat,
    MailArgs, MailCommand, ReportFormat, SearchArgs, UsersCommand,
};
use crate::output;
use crate::result_file::ResultDestination;
use anyhow::{anyhow, bail, Context, Result};
use domain::decode::EncodingChoice;
use domain::keys::LoginPattern;
use domain::mapping::Override;
use domain::pipeline::{ConflictDetail, ReadError, Report, Status};
use domain::{Establishment, Profile, Uai};
use mail::{MailSettings, Notifier, TransportConfig};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use store::service::{self, Clock, ImportError, ImportRequest, Operation, Progress, SystemClock};
use store::{AnyDirectory, Directory, UserQuery};

/// Runs a generic body on whichever backend the URL opened.
macro_rules! on_directory {
    ($any:expr, $d:ident => $body:expr) => {
        match $any {
            AnyDirectory::Sqlite($d) => $body,
            AnyDirectory::Postgres($d) => $body,
        }
    };
}

/// The example shipped for `annuaire demo`: the guide's five teachers (§4.1.B.A).
const DEMO_FILE: &[u8] = include_bytes!("../../../examples/enseignants-guide.csv");
pub const DEMO_UAI: &str = "0750654D";
pub const DEMO_NAME: &str = "Collège de démonstration";

/// Inside the private data folder: history lines of failed imports that
/// waited for the database (see [`service::replay_pending_history`]).
fn pending_history(results_dir: &Path) -> std::path::PathBuf {
    results_dir.join("historique-en-attente")
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let directory = AnyDirectory::open(&cli.database)
        .await
        .with_context(|| format!("ouverture de la base {}", redact(&cli.database)))?;
    let waiting = pending_history(&cli.results_dir);
    match on_directory!(&directory, d => service::replay_pending_history(d, &waiting).await) {
        Ok(0) => {}
        Ok(n) => {
            eprintln!("Historique : {n} import(s) échoué(s) pendant une coupure de la base, enregistré(s) maintenant.")
        }
        Err(e) => eprintln!(
            "Historique : les lignes en attente dans {} restent à enregistrer : {e}",
            waiting.display()
        ),
    }
    if cli.as_admin.is_some() && !acts_as_admin(&cli.command) {
        return Err(anyhow::Error::new(crate::admin_commands::Refused(
            "--as-admin ne s'applique qu'à import et users show, set, leave, deactivate, reactivate : retirez-la (ou la variable ANNUAIRE_AS_ADMIN) pour cette commande".into(),
        )));
    }
    if let Command::Serve(args) = cli.command {
        return match directory {
            AnyDirectory::Sqlite(d) => crate::serve::run(d, &args, &cli.mail).await,
            AnyDirectory::Postgres(d) => crate::serve::run(d, &args, &cli.mail).await,
        };
    }
    let notifier = notifier(&cli.mail)?;
    let results_dir = cli.results_dir.clone();
    let as_admin = cli.as_admin.as_deref();
    let result = on_directory!(&directory, d => dispatch(d, cli.command, as_admin, &notifier, &results_dir).await);
    // Once the command has answered, so that its writes never wait for it.
    if let Err(e) = on_directory!(&directory, d => d.checkpoint().await) {
        eprintln!("point de reprise du journal de la base non fait : {e}");
    }
    result
}

/// The mail settings of the command line, checked once.
pub fn notifier(args: &MailArgs) -> Result<Notifier> {
    let transport = if args.no_mail {
        TransportConfig::Disabled
    } else if let Some(url) = &args.smtp_url {
        TransportConfig::Smtp(url.clone())
    } else {
        TransportConfig::Outbox(args.mail_outbox.clone())
    };
    Ok(Notifier::new(MailSettings {
        ent_name: args.ent_name.clone(),
        from: args.mail_from.clone(),
        support: args.support_email.clone(),
        attach_results: args.mail_attach_results,
        public_url: args.public_url.clone(),
        transport,
    })?)
}

/// Sends the notice of an import; a mail problem is a warning, never a failure
/// of the import (the mail stays queued and `annuaire mail send` retries it).
pub async fn notify_import<D: web::Backend>(d: &D, notifier: &Notifier, import_id: Option<i64>, clock: &dyn Clock) {
    let Some(import_id) = import_id else { return };
    match notifier.import_finished(d, import_id, clock.now()).await {
        Ok(Some(mail)) => {
            let status = d
                .mails_of_import(import_id)
                .await
                .ok()
                .and_then(|m| m.into_iter().find(|m| m.id == mail));
            match status {
                Some(m) if m.status == domain::vocabulary::MailStatus::Sent => eprintln!("Avis de fin d'import envoyé à {}.", m.recipients.join(", ")),
                Some(m) => eprintln!(
                    "attention : avis de fin d'import non envoyé ({}) ; nouvel essai par « annuaire mail send » ou le serveur",
                    m.last_error.unwrap_or_default()
                ),
                None => {}
            }
        }
        Ok(None) => {}
        Err(e) => eprintln!("attention : avis de fin d'import non envoyé : {e}"),
    }
}

/// Hides a password in a database URL before printing it.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The commands an admin's scope can bound (`--as-admin`).
fn acts_as_admin(command: &Command) -> bool {
    matches!(
        command,
        Command::Import(_)
            | Command::Users(
                UsersCommand::Show(_)
                    | UsersCommand::Set(_)
                    | UsersCommand::Leave { .. }
                    | UsersCommand::Deactivate { .. }
                    | UsersCommand::Reactivate { .. }
                    | UsersCommand::ResetPassword { .. }
            )
    )
}

/// Who the command acts as: the admin `--as-admin` names, or the operator,
/// who has every right (the CLI runs with the directory's own rights).
pub(crate) async fn acting_admin<D: web::Backend>(d: &D, login: Option<&str>) -> Result<app::Actor> {
    let Some(login) = login else {
        return Ok(crate::admin_commands::operator());
    };
    match d.admin_by_login(login.trim()).await? {
        Some((admin, _)) => Ok(app::Actor::new(admin, domain::vocabulary::Channel::Cli)),
        None => Err(anyhow::Error::new(crate::admin_commands::Refused(format!(
            "aucun administrateur n'a le login « {login} » : vérifiez --as-admin (les comptes se créent avec « annuaire admin create »)"
        )))),
    }
}

async fn dispatch<D: web::Backend>(
    d: &D,
    command: Command,
    as_admin: Option<&str>,
    notifier: &Notifier,
    results_dir: &Path,
) -> Result<ExitCode> {
    let clock = SystemClock;
    match command {
        Command::Establishment(EstablishmentCommand::Add { uai, name }) => {
            let uai = Uai::parse(&uai)?;
            let name = name.trim().to_string();
            if name.is_empty() {
                bail!("le nom de l'établissement est vide : indiquez-le entre guillemets");
            }
            d.add_establishment(
                &Establishment {
                    uai: uai.clone(),
                    name: name.clone(),
                },
                clock.now(),
            )
            .await?;
            println!("Établissement {uai} « {name} » ajouté.");
            Ok(ExitCode::SUCCESS)
        }
        Command::Establishment(EstablishmentCommand::Rename { uai, name }) => {
            let uai = Uai::parse(&uai)?;
            if !d.list_establishments().await?.iter().any(|e| e.uai == uai) {
                bail!("établissement {uai} inconnu : ajoutez-le avec « annuaire establishment add {uai} NOM »");
            }
            let renamed = Establishment {
                uai: uai.clone(),
                name: name.trim().to_string(),
            };
            let former =
                app::establishments::save(d, &crate::admin_commands::operator(), &renamed, clock.now()).await?;
            match former {
                Some(old) if old != renamed.name => println!("Établissement {uai} : « {old} » → « {} ».", renamed.name),
                _ => println!("Établissement {uai} : nom inchangé."),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Establishment(EstablishmentCommand::List) => {
            for e in d.list_establishments().await? {
                println!("{}\t{}", e.uai, e.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(args) => {
            let actor = acting_admin(d, as_admin).await?;
            import(d, &args, &actor, &clock, notifier, results_dir).await
        }
        Command::Imports(ImportsCommand::List(args)) => crate::history_commands::list(d, &args).await,
        Command::Imports(ImportsCommand::Result(args)) => crate::history_commands::result(d, &args, &clock).await,
        Command::Mail(MailCommand::Send) => crate::history_commands::send_mail(d, notifier, &clock).await,
        Command::Export(args) => export(d, &args).await,
        Command::Lvs(LvsCommand::Export(args)) => lvs_export(d, &args).await,
        Command::Lvs(LvsCommand::Profiles { json }) => crate::admin_commands::lvs_profiles(d, json).await,
        Command::Lvs(LvsCommand::Set { code, profile }) => {
            crate::admin_commands::lvs_set(d, &code, app::lvs::LvsChoice::Profile(profile), &clock).await
        }
        Command::Lvs(LvsCommand::Exclude { code }) => {
            crate::admin_commands::lvs_set(d, &code, app::lvs::LvsChoice::NotExported, &clock).await
        }
        Command::Lvs(LvsCommand::Reset { code }) => {
            crate::admin_commands::lvs_set(d, &code, app::lvs::LvsChoice::Guide, &clock).await
        }
        Command::Services(command) => crate::admin_commands::services(d, command, &clock).await,
        Command::Users(UsersCommand::Search(args)) => search(d, &args).await,
        Command::Users(UsersCommand::Show(args)) => {
            crate::account_commands::show(d, &args, &acting_admin(d, as_admin).await?).await
        }
        Command::Users(UsersCommand::Set(args)) => {
            crate::account_commands::set(d, &args, &acting_admin(d, as_admin).await?, &clock).await
        }
        Command::Users(UsersCommand::Deactivate { key }) => {
            crate::account_commands::set_active(d, &key, false, &acting_admin(d, as_admin).await?, &clock).await
        }
        Command::Users(UsersCommand::ResetPassword { key }) => {
            crate::account_commands::reset_password(d, &key, &acting_admin(d, as_admin).await?, &clock).await
        }
        Command::Users(UsersCommand::Reactivate { key }) => {
            crate::account_commands::set_active(d, &key, true, &acting_admin(d, as_admin).await?, &clock).await
        }
        Command::Users(UsersCommand::Leave { key, establishment }) => {
            crate::account_commands::leave(d, &key, &establishment, &acting_admin(d, as_admin).await?, &clock).await
        }
        Command::Users(UsersCommand::Restore { import }) => {
            let n = match app::imports::restore(d, &crate::admin_commands::operator(), import, clock.now()).await {
                Err(app::Error::NotFound) => {
                    bail!("l'import n° {import} n'existe pas : annuaire imports list donne les numéros des imports")
                }
                other => other?,
            };
            println!("{n} compte(s) réactivé(s) (import n° {import}).");
            Ok(ExitCode::SUCCESS)
        }
        Command::Users(UsersCommand::Purge { retention_days }) => {
            if retention_days < 0 {
                bail!("la durée de conservation doit être positive");
            }
            let n = app::accounts::purge(d, &crate::admin_commands::operator(), retention_days, clock.now()).await?;
            println!("{n} compte(s) désactivé(s) depuis plus de {retention_days} jours supprimé(s).");
            Ok(ExitCode::SUCCESS)
        }
        Command::Users(UsersCommand::Add(args)) => crate::admin_commands::add_user(d, &args, &clock).await,
        Command::Aaf(c) => crate::admin_commands::aaf(d, c, &clock, notifier, results_dir).await,
        Command::Duplicates(args) => crate::admin_commands::duplicates(d, args, &clock).await,
        Command::Reconcile(args) => crate::admin_commands::reconcile(d, args, &clock).await,
        Command::Audit(args) => crate::admin_commands::audit(d, args).await,
        Command::Demo => demo(d, &clock, results_dir).await,
        Command::Admin(command) => crate::serve::admin(d, command, &clock).await,
        Command::Serve(_) => Ok(ExitCode::SUCCESS),
    }
}

fn parse_separator(s: &str) -> Result<u8> {
    match s {
        "tab" | "\\t" | "\t" | "tabulation" => Ok(b'\t'),
        ";" | "," | "|" => Ok(s.as_bytes()[0]),
        other => bail!("séparateur « {other} » non pris en charge : choisissez ;  ,  tab  ou  |"),
    }
}

fn build_request(args: &ImportArgs) -> Result<ImportRequest> {
    let profile: Profile = args.profile.parse()?;
    let establishment = args.establishment.as_deref().map(Uai::parse).transpose()?;
    let mut request = ImportRequest::new(profile, establishment);
    request.file_name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    request.file.encoding = args.encoding.parse::<EncodingChoice>().map_err(|e| anyhow!(e))?;
    request.file.separator = args.separator.as_deref().map(parse_separator).transpose()?;
    request.file.has_header = !args.no_header;
    request.file.limits.max_bytes = args.max_file_size;
    request.file.limits.max_rows = args.max_rows;
    request.overrides = args.map.iter().map(|m| Override::parse(m)).collect::<Result<_, _>>()?;
    request.establishments_from_file = args.establishments_from_file;
    request.skip_conflicts = args.skip_conflicts;
    request.attach_existing = args.attach_existing;
    request.complet = args.complet;
    request.confirm_deletions = args.confirm_deletions;
    request.deletion_threshold_percent = args.deletion_threshold;
    request.login_pattern = args.login_pattern.parse::<LoginPattern>().map_err(|e| anyhow!(e))?;
    request.min_password_len = args.min_password_length;
    request.dry_run = args.dry_run;
    request.notify = args.notify.clone();
    Ok(request)
}

pub(crate) fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "inconnu".to_string())
}

/// A progress bar on stderr when it is a terminal, silence otherwise.
struct BarProgress {
    bar: Option<indicatif::ProgressBar>,
}

impl BarProgress {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg:28} [{bar:30}] {pos}/{len} ({eta})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        BarProgress { bar }
    }
}

impl Progress for BarProgress {
    fn step(&self, operation: Operation, done: usize, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(app::labels::operation(operation));
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            if operation == Operation::Memberships {
                bar.finish_and_clear();
            }
        }
    }
}

async fn import<D: web::Backend>(
    d: &D,
    args: &ImportArgs,
    actor: &app::Actor,
    clock: &dyn Clock,
    notifier: &Notifier,
    results_dir: &Path,
) -> Result<ExitCode> {
    let mut request = build_request(args)?;
    // Stamped now so that a file refused before reading is recorded as theirs too.
    app::imports::on_behalf(actor, &mut request);
    request.pending_history = Some(pending_history(results_dir));
    let destination = ResultDestination::prepare(args.result.as_deref(), results_dir, request.dry_run)?;
    let bytes = match read_input(&args.file, request.file.limits.max_bytes)? {
        Ok(bytes) => bytes,
        Err(refusal) => {
            // Refused like any unreadable file: with its history line.
            service::record_refused_file(d, &request, &refusal, clock).await;
            bail!("{refusal}");
        }
    };
    let mut rng = domain::password::os_rng();
    let progress = BarProgress::new();
    let (outcome, history_id) = app::imports::run(d, actor, &bytes, &request, clock, &mut rng, &progress).await;
    notify_import(d, notifier, history_id, clock).await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(ImportError::Read(ReadError::Mapping(e))) => {
            // A refused mapping is a rejection (exit 2), reported like the others.
            let report = Report {
                status: Status::Rejected,
                rows: 0,
                valid: 0,
                conflicts: 0,
                created: 0,
                updated: 0,
                attached: 0,
                unchanged: 0,
                merged: 0,
                deactivated: 0,
                skipped: 0,
                conflict_details: vec![ConflictDetail {
                    line: 1,
                    column: None,
                    field: None,
                    code: "bad_mapping".to_string(),
                    message: e.to_string(),
                }],
                rejection: Some(e.to_string()),
            };
            match args.report {
                ReportFormat::Json => println!("{}", serde_json::to_string(&report)?),
                ReportFormat::Text => eprintln!("import refusé : {e}"),
            }
            return Ok(ExitCode::from(crate::EXIT_REJECTED));
        }
        Err(e @ ImportError::OutOfScope(_)) => {
            return Err(anyhow::Error::new(crate::admin_commands::Refused(e.to_string())))
        }
        Err(e) => return Err(e.into()),
    };

    let result_path = destination.deliver(
        outcome.result_file.as_deref(),
        &default_result_name(&args.file, outcome.import_id, clock),
        outcome.import_id,
    );
    match args.report {
        ReportFormat::Json => println!("{}", serde_json::to_string(&outcome.report)?),
        ReportFormat::Text => output::print_import(&outcome, &request, result_path.as_deref()),
    }
    crate::admin_commands::after_csv_import(d, &outcome, args.report == ReportFormat::Text).await?;
    Ok(match outcome.report.status {
        Status::Rejected => ExitCode::from(crate::EXIT_REJECTED),
        Status::Imported | Status::DryRun => ExitCode::SUCCESS,
    })
}

/// Reads the file, refusing before reading when it is over the limit (the
/// inner error: a refusal of the file, recorded in the history).
fn read_input(path: &Path, max_bytes: usize) -> Result<Result<Vec<u8>, domain::decode::FileError>> {
    let meta = std::fs::metadata(path).with_context(|| format!("lecture de {}", path.display()))?;
    if meta.is_dir() {
        bail!("{} est un dossier : indiquez un fichier CSV", path.display());
    }
    if meta.len() > max_bytes as u64 {
        return Ok(Err(domain::decode::FileError::TooLarge {
            size: usize::try_from(meta.len()).unwrap_or(usize::MAX),
            limit: max_bytes,
        }));
    }
    Ok(Ok(
        std::fs::read(path).with_context(|| format!("lecture de {}", path.display()))?
    ))
}

/// `<fichier>-resultat-n<import>-<date>.csv`: never the name of an earlier
/// import's result (its passwords exist nowhere else).
fn default_result_name(input: &Path, import_id: Option<i64>, clock: &dyn Clock) -> String {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "import".into());
    result_name(&stem, import_id, clock)
}

pub(crate) fn result_name(stem: &str, import_id: Option<i64>, clock: &dyn Clock) -> String {
    let id = import_id.map(|i| format!("n{i}-")).unwrap_or_default();
    format!("{stem}-resultat-{id}{}.csv", clock.now().format("%Y%m%d-%H%M%S"))
}

async fn export<D: Directory>(d: &D, args: &ExportArgs) -> Result<ExitCode> {
    let uai = Uai::parse(&args.establishment)?;
    let profile: Profile = args.profile.parse()?;
    let (count, bytes) = match app::imports::export(d, &crate::admin_commands::operator(), &uai, profile).await {
        Err(app::Error::NotFound) => bail!("établissement {uai} inconnu"),
        other => other?,
    };
    write_output(
        args.output.as_deref(),
        &bytes,
        &format!("{count} utilisateur(s) exporté(s)"),
    )
}

/// `lvs export`: the establishment's teachers and staff with their LVS profile.
async fn lvs_export<D: store::admin::AdminDirectory>(d: &D, args: &LvsExportArgs) -> Result<ExitCode> {
    let uai = Uai::parse(&args.establishment)?;
    let export = match app::lvs::export(d, &crate::admin_commands::operator(), &uai).await {
        Err(app::Error::NotFound) => {
            bail!("établissement {uai} inconnu : vérifiez l'UAI, ou ajoutez-le avec « annuaire establishment add {uai} NOM »")
        }
        other => other?,
    };
    let bytes = match args.format {
        LvsFormat::Csv => domain::lvs::csv(&export.rows),
        LvsFormat::Json => {
            let mut json = serde_json::to_vec_pretty(&export.rows)?;
            json.push(b'\n');
            json
        }
    };
    let mut summary = format!("{} personne(s) exportée(s) pour LVS", export.rows.len());
    if export.left_out > 0 {
        summary.push_str(&format!(
            " ; {} laissée(s) de côté (TOS, ou personnel sans fonction ayant un profil LVS)",
            export.left_out
        ));
    }
    write_output(args.output.as_deref(), &bytes, &summary)
}

/// Writes an export to its file (and says so on stderr) or to stdout.
fn write_output(path: Option<&Path>, bytes: &[u8], summary: &str) -> Result<ExitCode> {
    match path {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("écriture de {}", path.display()))?;
            eprintln!("{summary} dans {}", path.display());
        }
        None => {
            std::io::stdout().write_all(bytes)?;
            eprintln!("{summary}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The most lines one search prints; `--offset` reads the next ones.
const MAX_SEARCH_LIMIT: i64 = 10_000;

async fn search<D: Directory>(d: &D, args: &SearchArgs) -> Result<ExitCode> {
    if !(1..=MAX_SEARCH_LIMIT).contains(&args.limit) {
        bail!(
            "--limit {} hors des bornes : entre 1 et {MAX_SEARCH_LIMIT} ; pour lire la suite, relancez avec --offset",
            args.limit
        );
    }
    if args.offset < 0 {
        bail!(
            "--offset {} est négatif : indiquez combien de lignes sauter (0 ou plus)",
            args.offset
        );
    }
    let query = UserQuery {
        last_name: args.last_name.clone(),
        first_name: args.first_name.clone(),
        login: args.login.clone(),
        establishment: args.establishment.as_deref().map(Uai::parse).transpose()?,
        class: args.class.clone(),
        profiles: args.profiles.iter().map(|p| p.parse()).collect::<Result<_, _>>()?,
        limit: args.limit,
        offset: args.offset,
    };
    let users = d.search_users(&query).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&users)?);
    } else {
        output::print_users(&users);
    }
    Ok(ExitCode::SUCCESS)
}

/// The demo establishment, created when missing (true: it was just created).
pub(crate) async fn demo_establishment<D: Directory>(d: &D, clock: &dyn Clock) -> Result<(Uai, bool)> {
    let uai = Uai::parse(DEMO_UAI)?;
    if d.list_establishments().await?.iter().any(|e| e.uai == uai) {
        return Ok((uai, false));
    }
    d.add_establishment(
        &Establishment {
            uai: uai.clone(),
            name: DEMO_NAME.to_string(),
        },
        clock.now(),
    )
    .await?;
    Ok((uai, true))
}

async fn demo<D: Directory>(d: &D, clock: &dyn Clock, results_dir: &Path) -> Result<ExitCode> {
    let (uai, created) = demo_establishment(d, clock).await?;
    if created {
        println!("Établissement de démonstration {DEMO_UAI} « {DEMO_NAME} » créé.");
    }
    let mut request = ImportRequest::new(Profile::Enseignant, Some(uai));
    request.file_name = "enseignants-guide.csv".to_string();
    request.actor = "demo".to_string();
    let mut rng = domain::password::os_rng();
    let outcome = service::run_import(d, DEMO_FILE, &request, clock, &mut rng, &BarProgress::new()).await?;
    let result_path = ResultDestination::prepare(None, results_dir, false)?.deliver(
        outcome.result_file.as_deref(),
        &default_result_name(Path::new("enseignants-guide.csv"), outcome.import_id, clock),
        outcome.import_id,
    );
    output::print_import(&outcome, &request, result_path.as_deref());
    println!();
    println!("Relancez la même commande : les 5 comptes seront « inchangés ». Pour importer votre fichier :");
    println!("  annuaire import MON_FICHIER.csv --profile enseignant --establishment {DEMO_UAI} --dry-run");
    Ok(ExitCode::SUCCESS)
}
