//! Administration commands: the AAF feed, manual creation, duplicates,
//! reconciliation and the audit log. Thin like `commands.rs`: parse, call
//! `store::aaf` / `store::admin`, print.

use crate::cli::ReportFormat;
use crate::commands::whoami;
use crate::output::{print_deactivations, print_status, update_summary};
use crate::result_file::ResultDestination;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use domain::duplicates::{DuplicatePair, Side};
use domain::keys::LoginPattern;
use domain::{Profile, Uai};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use store::aaf::{AafOutcome, AafRequest, FeedFile};
use store::admin::{self, AdminDirectory, AdminError};
use store::service::Clock;

#[derive(Debug, Subcommand)]
pub enum AafCommand {
    /// Importer des fichiers du flux académique (ficAlimMENESR, XML) ou les dossiers qui les contiennent
    Import(AafImportArgs),
}

#[derive(Debug, Args)]
pub struct AafImportArgs {
    /// Fichiers XML du flux, ou dossiers (tous leurs *.xml)
    #[arg(required = true, value_name = "FICHIER_OU_DOSSIER")]
    pub paths: Vec<PathBuf>,
    /// Vérifier et afficher le plan sans rien écrire
    #[arg(long)]
    pub dry_run: bool,
    /// Où écrire le fichier résultat des comptes créés (logins, mots de passe) : un fichier qui n'existe pas encore
    #[arg(long, value_name = "FICHIER")]
    pub result: Option<PathBuf>,
    /// Format du compte rendu
    #[arg(long, value_enum, default_value = "text")]
    pub report: ReportFormat,
    /// Adresse à qui envoyer l'avis de fin d'import ([SUCCES] / [ERREUR])
    #[arg(long, value_name = "COURRIEL")]
    pub notify: Option<String>,
    /// Modèle des logins générés : initiale-nom (ncepe) ou prenom.nom
    #[arg(long, default_value = "initiale-nom")]
    pub login_pattern: String,
    /// Confirme le nombre exact de désactivations d'un flux Complet au-delà du seuil
    #[arg(long, value_name = "N")]
    pub confirm_deletions: Option<usize>,
    /// Seuil de désactivations sans confirmation, en % des comptes AAF concernés
    #[arg(long, default_value_t = domain::vocabulary::DEFAULT_DELETION_THRESHOLD_PERCENT, value_name = "POURCENT")]
    pub deletion_threshold: u32,
}

#[derive(Debug, Args)]
pub struct DuplicatesArgs {
    #[command(subcommand)]
    pub command: Option<DuplicatesCommand>,
    /// Seulement cet établissement (sinon tous ceux qui ont des comptes AAF)
    #[arg(long)]
    pub establishment: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DuplicatesCommand {
    /// « Pas un doublon » : ne plus jamais proposer cette paire
    Dismiss {
        #[arg(value_name = "CLE_A")]
        key_a: String,
        #[arg(value_name = "CLE_B")]
        key_b: String,
    },
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Clé du compte créé par import CSV (ou à la main), qui est conservé
    #[arg(value_name = "CLE_CSV")]
    pub csv_key: String,
    /// Clé du compte créé par le flux AAF (PERSON.<chiffres>), qui est supprimé
    #[arg(value_name = "CLE_AAF")]
    pub aaf_key: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long)]
    pub json: bool,
    /// Nombre d'entrées, les plus récentes d'abord
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// enseignant, administratif, eleve, parent, administrateur, administrateur-systeme ou invite
    #[arg(long)]
    pub profile: String,
    /// UAI de l'établissement (facultatif pour administrateur-systeme et invite)
    #[arg(long)]
    pub establishment: Option<String>,
    #[arg(long)]
    pub last_name: String,
    #[arg(long)]
    pub first_name: String,
    /// Monsieur, Madame, Mademoiselle (ou M., Mme, Mlle)
    #[arg(long)]
    pub civility: Option<String>,
    /// jj/mm/aaaa
    #[arg(long)]
    pub birth_date: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    /// Code de fonction (personnel administratif) : DIR, EDU, ADF…
    #[arg(long)]
    pub function: Option<String>,
    /// Matière (enseignant)
    #[arg(long)]
    pub subject: Option<String>,
    /// Classe (élève)
    #[arg(long)]
    pub class: Option<String>,
    /// Login imposé (généré depuis le nom sinon)
    #[arg(long)]
    pub login: Option<String>,
    /// Lire le mot de passe imposé sur l'entrée standard (généré et affiché une fois sinon)
    #[arg(long)]
    pub password_stdin: bool,
    /// Clé de synchronisation imposée (dérivée des nom et prénom sinon)
    #[arg(long)]
    pub key: Option<String>,
    /// Modèle du login généré : initiale-nom ou prenom.nom
    #[arg(long, default_value = "initiale-nom")]
    pub login_pattern: String,
    #[arg(long, default_value_t = domain::password::DEFAULT_MIN_LEN)]
    pub min_password_length: usize,
    #[arg(long)]
    pub json: bool,
}

/// The audit log's name for the person at the command line.
pub(crate) fn actor() -> String {
    format!("cli:{}", whoami())
}

/// The person at the command line, with the directory's own rights.
pub(crate) fn operator() -> app::Actor {
    app::Actor::operator(actor())
}

/// The `*.xml` files named, folders expanded (sorted, not recursive).
fn feed_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("lecture de {}", p.display()))?;
        if meta.is_dir() {
            let found = store::aaf::xml_files_in(p).with_context(|| format!("lecture du dossier {}", p.display()))?;
            if found.is_empty() {
                bail!("le dossier {} ne contient aucun fichier .xml du flux AAF", p.display());
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

pub async fn aaf<D: web::Backend>(
    d: &D,
    command: AafCommand,
    clock: &dyn Clock,
    notifier: &mail::Notifier,
    results_dir: &Path,
) -> Result<ExitCode> {
    let AafCommand::Import(args) = command;
    let destination = ResultDestination::prepare(args.result.as_deref(), results_dir, args.dry_run)?;
    let mut files = Vec::new();
    for path in feed_paths(&args.paths)? {
        files.push(FeedFile::from_path(&path).with_context(|| format!("lecture de {}", path.display()))?);
    }
    let request = AafRequest {
        notify: args.notify.clone(),
        result_retention_seconds: store::service::DEFAULT_RESULT_RETENTION_DAYS * 86_400,
        login_pattern: args.login_pattern.parse::<LoginPattern>().map_err(|e| anyhow!(e))?,
        deletion_threshold_percent: args.deletion_threshold,
        confirm_deletions: args.confirm_deletions,
        dry_run: args.dry_run,
        // Who runs it: stamped by app::imports::run_feed.
        ..AafRequest::default()
    };
    let mut rng = domain::password::os_rng();
    let (outcome, import_id) = app::imports::run_feed(d, &operator(), &files, &request, clock, &mut rng).await?;
    // Refused or failed feeds are notified too ([ERREUR]).
    crate::commands::notify_import(d, notifier, import_id, clock).await;
    let outcome = outcome?;
    let import_id = outcome.report.import_id;
    let result_path = destination.deliver(
        outcome.result_file.as_deref(),
        &crate::commands::result_name("aaf", import_id, clock),
        import_id,
    );
    match args.report {
        ReportFormat::Json => println!("{}", serde_json::to_string(&outcome.report)?),
        ReportFormat::Text => print_aaf(&outcome, result_path.as_deref()),
    }
    Ok(match outcome.report.status {
        store::aaf::Status::Rejected => ExitCode::from(crate::EXIT_REJECTED),
        store::aaf::Status::Imported | store::aaf::Status::DryRun => ExitCode::SUCCESS,
    })
}

fn print_aaf(outcome: &AafOutcome, result_path: Option<&Path>) {
    let r = &outcome.report;
    println!("Flux AAF : {} fichier(s), {} requête(s)", r.files.len(), r.requests);
    for f in &r.files {
        println!(
            "  {} ({}{}) : {} requête(s)",
            f.name,
            f.kind.unwrap_or("type inconnu"),
            if f.complet { ", Complet" } else { "" },
            f.requests
        );
    }
    println!(
        "Établissements : {} créé(s), {} mis à jour",
        r.establishments_created, r.establishments_updated
    );
    println!(
        "Comptes : {} créé(s), {} mis à jour, {} inchangé(s), {} désactivé(s) ; {} requête(s) en erreur, {} non prise(s) en charge (matières, MEF)",
        r.created, r.updated, r.unchanged, r.deactivated, r.skipped, r.ignored
    );
    if !r.created_by_profile.is_empty() {
        let counts: Vec<String> = r
            .created_by_profile
            .iter()
            .map(|(id, n)| {
                let label = id.parse::<domain::Profile>().map(|p| p.label()).unwrap_or(id);
                format!("{label} {n}")
            })
            .collect();
        println!("  créés par profil : {}", counts.join(", "));
    }
    for i in &r.issues {
        println!(
            "  erreur {} requête {}{} : {}",
            i.file,
            i.request,
            i.key.as_ref().map(|k| format!(" ({k})")).unwrap_or_default(),
            i.message
        );
    }
    for n in &r.notices {
        println!(
            "  remarque {}{}{} : {}",
            n.file,
            n.request.map(|q| format!(" requête {q}")).unwrap_or_default(),
            n.key.as_ref().map(|k| format!(" ({k})")).unwrap_or_default(),
            n.message
        );
    }
    for u in &outcome.updates {
        println!(
            "  mis à jour {} ({}) : {}",
            u.key,
            u.login.as_ref().map_or("", |l| l.as_str()),
            update_summary(u)
        );
    }
    let listed = outcome.updates.len();
    if listed < r.updated {
        println!("  … et {} autre(s) compte(s) mis à jour", r.updated - listed);
    }
    print_deactivations("Comptes désactivés :", &outcome.deactivations);
    if outcome.deactivations.len() < r.deactivated {
        println!(
            "  … et {} autre(s) compte(s) désactivé(s)",
            r.deactivated - outcome.deactivations.len()
        );
    }
    if !r.duplicates.is_empty() {
        println!("Doublons probables touchés par ce flux :");
        print_pairs(&r.duplicates);
    }
    print_status(
        r.status,
        r.import_id,
        r.rejection.as_deref(),
        result_path.map(|p| (p, "logins et mots de passe des comptes créés, à distribuer")),
    );
}

fn side_line(label: &str, s: &Side) -> String {
    format!(
        "  {label}  {}, {}\t{}\tlogin {}\t{}{}{}",
        s.last_name.to_uppercase(),
        s.first_name,
        s.key,
        s.login,
        s.profile.label(),
        s.birth_date
            .map(|d| format!("\tné(e) le {}", d.format("%d/%m/%Y")))
            .unwrap_or_default(),
        s.email
            .as_ref()
            .map(|e| format!("\t{}", e.as_str()))
            .unwrap_or_default()
    )
}

fn print_pairs(pairs: &[DuplicatePair]) {
    for p in pairs {
        let uais: Vec<&str> = p.establishments.iter().map(Uai::as_str).collect();
        println!("Score {} — établissement(s) {}", p.score, uais.join(", "));
        println!("{}", side_line(&p.local.source.id().to_uppercase(), &p.local));
        println!("{}", side_line("AAF", &p.aaf));
        for e in &p.evidence {
            let sign = if e.weight > 0 {
                "+"
            } else if e.weight < 0 {
                "−"
            } else {
                "·"
            };
            println!("    {sign} {}", e.message);
        }
        println!(
            "    → même personne : annuaire reconcile {} {}\n    → pas un doublon : annuaire duplicates dismiss {} {}",
            p.local.key, p.aaf.key, p.local.key, p.aaf.key
        );
    }
}

pub async fn duplicates<D: AdminDirectory>(d: &D, args: DuplicatesArgs, clock: &dyn Clock) -> Result<ExitCode> {
    if let Some(DuplicatesCommand::Dismiss { key_a, key_b }) = args.command {
        let inserted = app::duplicates::dismiss(d, &operator(), &key_a, &key_b, clock.now()).await?;
        if inserted {
            println!("Paire {key_a} / {key_b} écartée : elle ne sera plus proposée comme doublon.");
        } else {
            println!("La paire {key_a} / {key_b} était déjà écartée.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let uai = args.establishment.as_deref().map(Uai::parse).transpose()?;
    let pairs = app::duplicates::list(d, &operator(), uai.as_ref()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&pairs)?);
    } else if pairs.is_empty() {
        println!("Aucun doublon probable entre comptes CSV et AAF.");
    } else {
        println!("{} doublon(s) probable(s), du plus sûr au moins sûr :", pairs.len());
        print_pairs(&pairs);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn reconcile<D: AdminDirectory>(d: &D, args: ReconcileArgs, clock: &dyn Clock) -> Result<ExitCode> {
    let done = app::duplicates::reconcile(d, &operator(), &args.csv_key, &args.aaf_key, clock.now())
        .await
        .map_err(app_refusal)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Comptes réconciliés. Le compte {} garde son login, son mot de passe, ses rattachements et ses groupes ;",
        done.login
    );
    println!(
        "sa clé devient {} (était {}), source aaf, protégé : le prochain flux AAF le mettra à jour.",
        done.key, done.previous_key
    );
    if done.profile != done.previous_profile {
        println!(
            "Profil : {} → {} (celui du flux).",
            done.previous_profile.label(),
            done.profile.label()
        );
    }
    println!("Le compte AAF {} ({}) est supprimé.", done.removed_login, done.key);
    if !done.memberships_moved.is_empty() {
        let uais: Vec<&str> = done.memberships_moved.iter().map(Uai::as_str).collect();
        println!("Rattachements repris du compte AAF : {}", uais.join(", "));
    }
    if done.groups_moved > 0 {
        println!("Groupes repris du compte AAF : {}", done.groups_moved);
    }
    Ok(ExitCode::SUCCESS)
}

/// `lvs profiles`: the 60 function codes and the LVS profile their people get.
pub async fn lvs_profiles<D: AdminDirectory>(d: &D, json: bool) -> Result<ExitCode> {
    let lines = app::lvs::mapping(d).await.map_err(app_refusal)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
        return Ok(ExitCode::SUCCESS);
    }
    for l in &lines {
        let profile = l.lvs_profile.as_deref().unwrap_or("(non exporté)");
        let changed = if l.changed {
            format!("  [modifié ; guide : {}]", l.guide.unwrap_or("non exporté"))
        } else {
            String::new()
        };
        println!("{}\t{profile}\t{}{changed}", l.code, l.label);
    }
    Ok(ExitCode::SUCCESS)
}

/// `lvs set`, `lvs exclude`, `lvs reset`: one function code's LVS profile.
pub async fn lvs_set<D: AdminDirectory>(
    d: &D,
    code: &str,
    choice: app::lvs::LvsChoice,
    clock: &dyn Clock,
) -> Result<ExitCode> {
    let line = app::lvs::set_profile(d, &operator(), code, choice, clock.now())
        .await
        .map_err(app_refusal)?;
    match &line.lvs_profile {
        Some(profile) => println!("{} ({}) : profil LVS « {profile} ».", line.code, line.label),
        None => println!("{} ({}) : non exporté vers LVS.", line.code, line.label),
    }
    Ok(ExitCode::SUCCESS)
}

/// Refusals are exit 2, like a rejected import: nothing was written.
fn refusal(e: AdminError) -> anyhow::Error {
    match e {
        AdminError::Store(_) | AdminError::Hash(_) => anyhow!(e),
        AdminError::Refused(e) => invalid(e),
        other => anyhow::Error::new(Refused(other.to_string())),
    }
}

/// A use case's refusal exits 2 ([`app::Error::is_refusal`]), a failure 1.
fn app_refusal(e: app::Error) -> anyhow::Error {
    match e {
        app::Error::Admin(e) => refusal(e),
        e if e.is_refusal() => anyhow::Error::new(Refused(e.to_string())),
        e => anyhow!(e),
    }
}

/// An action refused for a reason the admin can fix; `main` exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

pub async fn audit<D: AdminDirectory>(d: &D, args: AuditArgs) -> Result<ExitCode> {
    let entries = app::audit::log(d, &operator(), args.limit.clamp(1, 10_000)).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else if entries.is_empty() {
        println!("Journal d'audit vide.");
    } else {
        for e in &entries {
            println!(
                "{}\t{}\t{}\t{}\t{}",
                domain::time::second(e.at),
                e.actor,
                e.action,
                e.target,
                e.details
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A refused value, with the option that fixes it when there is one.
fn invalid(e: domain::values::ValueError) -> anyhow::Error {
    anyhow::Error::new(Refused(with_option(e)))
}

/// A refusal with the option that fixes it.
fn with_option(e: domain::values::ValueError) -> String {
    match domain::manual::cli_option(e.code) {
        Some(option) => format!("{} ({option})", e.message),
        None => e.message,
    }
}

pub async fn add_user<D: AdminDirectory>(d: &D, args: &UserAddArgs, clock: &dyn Clock) -> Result<ExitCode> {
    let profile: Profile = args.profile.parse()?;
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            bail!("--password-stdin : aucun mot de passe lu sur l'entrée standard");
        }
        Some(line)
    } else {
        None
    };
    let user = domain::manual::ManualUserInput {
        profile: profile.id().to_string(),
        establishment: args.establishment.clone(),
        civility: args.civility.clone(),
        last_name: args.last_name.clone(),
        first_name: args.first_name.clone(),
        birth_date: args.birth_date.clone(),
        email: args.email.clone(),
        function: args.function.clone(),
        subject: args.subject.clone(),
        class: args.class.clone(),
        login: args.login.clone(),
        password,
        key: args.key.clone(),
    }
    .read(clock.today(), args.min_password_length)
    .map_err(|problems| {
        // Every problem at once, each with its option.
        let said: Vec<String> = problems.into_iter().map(|(_, e)| with_option(e)).collect();
        anyhow::Error::new(Refused(said.join(" ; ")))
    })?;
    let pattern = args.login_pattern.parse::<LoginPattern>().map_err(|e| anyhow!(e))?;
    let mut rng = domain::password::os_rng();
    let added = app::accounts::create(
        d,
        &operator(),
        &user,
        pattern,
        args.min_password_length,
        clock.now(),
        &mut rng,
    )
    .await
    .map_err(app_refusal)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&added)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Compte {} créé : login {}, clé {}.",
        added.profile.label(),
        added.login,
        added.key
    );
    match &added.password {
        Some(p) => println!("Mot de passe (affiché une seule fois, à changer à la première connexion) : {p}"),
        None => println!("Mot de passe : celui que vous avez imposé (à changer à la première connexion)."),
    }
    Ok(ExitCode::SUCCESS)
}

/// After a CSV import: the probable duplicates among the accounts it created
/// or updated (read in their establishments only). The audit row is written
/// by the service, for every door.
pub async fn after_csv_import<D: AdminDirectory>(
    d: &D,
    outcome: &store::service::ImportOutcome,
    print: bool,
) -> Result<()> {
    if outcome.import_id.is_none() {
        return Ok(());
    }
    if print {
        let keys: Vec<String> = outcome
            .plan
            .creates
            .iter()
            .map(|c| c.key.to_string())
            .chain(outcome.plan.updates.iter().map(|u| u.key.to_string()))
            .collect();
        let pairs = admin::duplicates_for_keys(d, &keys).await?;
        if !pairs.is_empty() {
            println!("Doublons probables avec des comptes du flux AAF :");
            print_pairs(&pairs);
        }
    }
    Ok(())
}

/// `services add|list|remove`: the CAS services of the ENT (system admins).
pub async fn services<D: app::Backend>(
    d: &D,
    command: crate::cli::ServicesCommand,
    clock: &dyn Clock,
) -> Result<ExitCode> {
    use crate::cli::ServicesCommand;
    let refused = |e: app::cas::ServiceError| match e {
        app::cas::ServiceError::Refused(e) => app_refusal(e),
        other => anyhow::Error::new(Refused(other.to_string())),
    };
    match command {
        ServicesCommand::Add(args) => {
            let service = app::cas::add_service(
                d,
                &operator(),
                &args.name,
                &args.url_prefix,
                &args.establishments,
                args.attributes.as_deref().unwrap_or(""),
                args.proxy,
                clock.now(),
            )
            .await
            .map_err(refused)?;
            println!(
                "Service « {} » enregistré : {} ({}) ; attributs : {}.",
                service.name,
                service.url_prefix,
                who_may_use(&service),
                domain::cas::attribute_list(&service.attributes)
            );
        }
        ServicesCommand::List { json } => {
            let services = app::cas::services(d).await.map_err(app_refusal)?;
            if json {
                let list: Vec<serde_json::Value> = services
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name,
                            "url_prefix": s.url_prefix,
                            "establishments": s.establishments.iter().map(Uai::as_str).collect::<Vec<_>>(),
                            "attributes": s.attributes.iter().map(|a| a.name()).collect::<Vec<_>>(),
                            "proxy": s.proxy,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if services.is_empty() {
                println!("Aucun service enregistré : annuaire services add NOM https://… en ajoute un.");
            } else {
                for s in &services {
                    println!(
                        "{}\t{}\t{}\t{}{}",
                        s.name,
                        s.url_prefix,
                        who_may_use(s),
                        domain::cas::attribute_list(&s.attributes),
                        if s.proxy { "\tproxy" } else { "" }
                    );
                }
            }
        }
        ServicesCommand::Remove { name } => {
            app::cas::remove_service(d, &operator(), &name, clock.now())
                .await
                .map_err(refused)?;
            println!("Service « {} » retiré : ses tickets ne sont plus validés.", name.trim());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn who_may_use(service: &store::cas::CasService) -> String {
    if service.establishments.is_empty() {
        "tous les établissements".to_string()
    } else {
        let uais: Vec<&str> = service.establishments.iter().map(Uai::as_str).collect();
        format!("établissements {}", uais.join(", "))
    }
}
