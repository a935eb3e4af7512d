//! `annuaire serve` and `annuaire admin`: the web server and its accounts.

use crate::cli::{AdminCommand, MailArgs, ServeArgs};
use crate::commands::{DEMO_NAME, DEMO_UAI};

const DEMO_EMAIL: &str = "demo@college-demonstration.invalid";
use anyhow::{bail, Context, Result};
use domain::password::{self, SecretOrigin};
use domain::Uai;
use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use store::service::{Clock, SystemClock};
use web::{AppState, Backend, WebConfig};

pub async fn run<D: Backend>(directory: D, args: &ServeArgs, mail: &MailArgs) -> Result<ExitCode> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let aaf_schedule = match (&args.aaf_inbox, &args.aaf_schedule) {
        (Some(inbox), Some(pattern)) => {
            if !inbox.is_dir() {
                bail!(
                    "--aaf-inbox {} : ce dossier n'existe pas ; créez-le (c'est là que le flux AAF dépose ses fichiers .xml)",
                    inbox.display()
                );
            }
            Some(
                web::schedule::AafSchedule::new(inbox.clone(), pattern, args.aaf_notify.clone())
                    .map_err(anyhow::Error::msg)?,
            )
        }
        _ => None,
    };
    if args.demo {
        demo_accounts(&directory, clock.as_ref()).await?;
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("écoute sur {} impossible (adresse déjà utilisée ?)", args.listen))?;
    let address = listener.local_addr()?;
    // Links in the notices point at this server unless a public address is set.
    let mut mail = mail.clone();
    mail.public_url = mail.public_url.or_else(|| Some(format!("http://{address}")));
    let notifier = crate::commands::notifier(&mail)?;
    if let Some(outbox) = (mail.smtp_url.is_none() && !mail.no_mail).then_some(&mail.mail_outbox) {
        println!("Courriels : déposés dans {} (fichiers .eml)", outbox.display());
    }
    println!(
        "annuaire écoute sur http://{address}/ (base {}) — Ctrl+C pour arrêter",
        directory.backend()
    );
    tracing::info!(%address, backend = directory.backend(), "serveur démarré");
    let state = AppState {
        directory: Arc::new(directory),
        clock,
        config: WebConfig {
            ent_name: mail.ent_name.clone(),
            secure_cookies: args.secure_cookies,
            sign_in_url: args.sign_in_url.clone(),
            result_retention_days: args.result_retention_days,
            job_lease_seconds: args.job_lease,
            shutdown_grace: std::time::Duration::from_secs(args.shutdown_grace),
            cas: app::cas::CasSettings {
                ticket_seconds: args.cas_ticket_seconds,
                idle_minutes: args.cas_idle_minutes,
                lifetime_hours: args.cas_lifetime_hours,
                ..app::cas::CasSettings::default()
            },
            forwarded_by: args.trusted_proxies.clone(),
            ..WebConfig::default()
        },
        notifier: Arc::new(notifier),
        metrics: Arc::default(),
    };
    if let Some(s) = &aaf_schedule {
        let next = s
            .next_after(state.clock.now())
            .map(|t| format!("{} heure de Paris", domain::time::minute(t)))
            .unwrap_or_else(|| "aucune".into());
        println!(
            "Flux AAF : fichiers .xml de {} importés selon « {} » (prochaine échéance : {next})",
            s.inbox.display(),
            s.pattern()
        );
    }
    web::serve(state, listener, aaf_schedule, stop_requested())
        .await
        .context("serveur web")?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl+C, or SIGTERM (what systemd and container runtimes send).
async fn stop_requested() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    println!("Arrêt demandé : plus de nouvelle requête ; un import en cours finit ou est remis dans la file.");
}

/// The demo establishment and a `demo` establishment admin with a fresh password.
async fn demo_accounts<D: Backend>(d: &D, clock: &dyn Clock) -> Result<()> {
    let (uai, _) = crate::commands::demo_establishment(d, clock).await?;
    let secret = password::generate(&mut password::os_rng());
    let hash = hash_chosen(&secret)?;
    let id = match d.admin_by_login("demo").await? {
        Some((admin, _)) => {
            d.set_admin_password(admin.id, &hash).await?;
            admin.id
        }
        None => {
            d.create_admin("demo", &hash, false, std::slice::from_ref(&uai), clock.now())
                .await?
        }
    };
    // Its notices land in the outbox folder: a newcomer sees them without a mail server.
    d.set_admin_email(id, Some(DEMO_EMAIL)).await?;
    println!("Démonstration : établissement {DEMO_UAI} « {DEMO_NAME} »");
    println!("  administrateur : demo    mot de passe : {secret}");
    println!("  fichier d'exemple : examples/enseignants-guide.csv");
    Ok(())
}

fn hash_chosen(secret: &str) -> Result<String> {
    let salt = password::salt(&mut password::os_rng());
    Ok(password::hash(secret, SecretOrigin::Chosen, &salt)?)
}

pub async fn admin<D: Backend>(d: &D, command: AdminCommand, clock: &dyn Clock) -> Result<ExitCode> {
    match command {
        AdminCommand::Create {
            login,
            system,
            establishment,
            password_stdin,
            email,
        } => {
            if !system && establishment.is_empty() {
                bail!("précisez --system ou au moins un --establishment UAI");
            }
            let uais = establishment
                .iter()
                .map(|u| Uai::parse(u))
                .collect::<Result<Vec<_>, _>>()?;
            // Only when asked: a script without a terminal that forgot the
            // option gets a generated password, not an empty read.
            let chosen = if password_stdin {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                Some(s.trim_end_matches(['\r', '\n']).to_string())
            } else {
                None
            };
            let new = app::admins::NewAdmin {
                login,
                system,
                establishments: uais.clone(),
                email,
                password: chosen,
            };
            let created = app::admins::create(
                d,
                &crate::admin_commands::operator(),
                &new,
                clock.now(),
                &mut password::os_rng(),
            )
            .await?;
            let login = created.login;
            println!(
                "Administrateur {login} créé ({}).",
                if system {
                    "système".to_string()
                } else {
                    uais.iter().map(Uai::as_str).collect::<Vec<_>>().join(", ")
                }
            );
            if let Some(secret) = created.generated_password {
                println!("Mot de passe (affiché une seule fois) : {secret}");
            }
        }
        AdminCommand::Token { login } => {
            let (admin, _) = d
                .admin_by_login(&login)
                .await?
                .with_context(|| format!("administrateur {login} inconnu"))?;
            let token = web::new_token();
            d.create_api_token(&web::hash_token(&token), admin.id, clock.now())
                .await?;
            println!("Jeton d'API de {} (affiché une seule fois) : {token}", admin.login);
        }
    }
    Ok(ExitCode::SUCCESS)
}
