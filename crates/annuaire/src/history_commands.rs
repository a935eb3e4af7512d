//! `annuaire imports list` (the history, "Suivi des imports") and
//! `annuaire mail send` (notices waiting for their next attempt).

use crate::cli::{ImportsListArgs, ImportsResultArgs};
use anyhow::{bail, Result};
use app::labels::mail as mail_label;
use chrono::NaiveDate;
use domain::vocabulary::ImportStatus;
use domain::Uai;
use mail::Notifier;
use std::io::Write;
use std::process::ExitCode;
use store::history::{HistoryFilter, ImportEntry};
use store::service::Clock;

fn day(raw: &Option<String>, what: &str) -> Result<Option<NaiveDate>> {
    match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) => Ok(Some(d)),
            Err(_) => bail!("{what} « {s} » invalide : écrivez la date aaaa-mm-jj, par exemple 2026-09-01"),
        },
    }
}

/// The result file an import keeps in the database, written again: what an
/// admin runs when the file of the import itself could not be written.
pub async fn result<D: web::Backend>(d: &D, args: &ImportsResultArgs, clock: &dyn Clock) -> Result<ExitCode> {
    let Some(bytes) = d.import_result(args.import, clock.now()).await? else {
        bail!(
            "l'import n° {} n'a pas de fichier résultat conservé : il n'existe pas, n'a créé aucun compte, ou son délai de conservation est passé (annuaire imports list)",
            args.import
        );
    };
    match &args.output {
        Some(path) => {
            crate::result_file::write_new_private(path, &bytes)?;
            eprintln!(
                "Fichier résultat de l'import n° {} écrit dans {} (mots de passe en clair : à remettre puis supprimer).",
                args.import,
                path.display()
            );
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list<D: web::Backend>(d: &D, args: &ImportsListArgs) -> Result<ExitCode> {
    let since = day(&args.since, "--since")?;
    let until = day(&args.until, "--until")?;
    if args.limit < 1 {
        bail!("--limit doit être au moins 1");
    }
    let filter = HistoryFilter {
        establishment: args.establishment.as_deref().map(Uai::parse).transpose()?,
        limit: args.limit,
        ..HistoryFilter::everything()
    }
    .days(since, until);
    let entries = d.list_imports(&filter).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("Aucun import ne correspond.");
        return Ok(ExitCode::SUCCESS);
    }
    for e in &entries {
        print_entry(e);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_entry(e: &ImportEntry) {
    let establishments = e.establishments.iter().map(Uai::as_str).collect::<Vec<_>>().join(",");
    println!(
        "n° {}  {}  {}  {} ({})  {}  {}{}  « {} »",
        e.id,
        domain::time::minute(e.started_at),
        e.status.label(),
        e.actor,
        e.channel,
        if establishments.is_empty() {
            "-"
        } else {
            &establishments
        },
        app::labels::import_profile(e),
        if e.complet { " Complet" } else { "" },
        e.file_name
    );
    println!(
        "      lignes {} → résultat {} : {} créé(s), {} modifié(s), {} inchangé(s), {} fusionné(s), {} désactivé(s), {} ignorée(s) ; durée {} ; courriel {}",
        e.rows,
        if e.status == ImportStatus::Succeeded { e.result_rows().to_string() } else { "-".into() },
        e.created,
        e.updated,
        e.unchanged,
        e.merged,
        e.deactivated,
        e.skipped,
        e.duration_seconds().map(|s| format!("{s} s")).unwrap_or_else(|| "-".into()),
        mail_label(e.mail_status)
    );
    if let Some(error) = &e.error {
        println!("      {error}");
    }
}

pub async fn send_mail<D: web::Backend>(d: &D, notifier: &Notifier, clock: &dyn Clock) -> Result<ExitCode> {
    if !notifier.enabled() {
        bail!("les courriels sont désactivés (--no-mail) : rien à envoyer");
    }
    let delivery = notifier.deliver_due(d, clock.now()).await?;
    println!(
        "{} courriel(s) envoyé(s), {} à réessayer plus tard, {} abandonné(s) après le dernier essai.",
        delivery.sent, delivery.retried, delivery.failed
    );
    Ok(if delivery.retried + delivery.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
