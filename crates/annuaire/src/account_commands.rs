//! `annuaire users show` and `annuaire users set`: the user page's door in
//! the CLI. The rules are in `domain::account` and `store::accounts`.

use crate::admin_commands::Refused;
use crate::cli::{UserSetArgs, UserShowArgs};
use anyhow::{anyhow, Result};
use app::accounts::{self, AccountError};
use app::Actor;
use domain::account::{AccountChange, AccountRights};
use domain::person::relation_label;
use domain::time::minute_or_never as when;
use serde::Serialize;
use std::process::ExitCode;
use store::accounts::{AccountDetail, Accounts};
use store::service::Clock;

/// The account of this key, if the admin may see it (otherwise it does not exist for them).
async fn by_key<D: Accounts>(d: &D, key: &str, actor: &Actor) -> Result<AccountDetail> {
    match accounts::open_by_key(d, actor, key).await {
        Err(AccountError::NotFound) => Err(anyhow::Error::new(Refused(format!(
            "aucun compte n'a la clé de synchronisation « {key} » : vérifiez-la (annuaire users search --last-name NOM affiche les clés)"
        )))),
        other => other.map_err(refusal),
    }
}

fn refusal(e: AccountError) -> anyhow::Error {
    match e {
        AccountError::Store(e) => anyhow!(e),
        other => anyhow::Error::new(Refused(other.to_string())),
    }
}

pub async fn leave<D: Accounts>(
    d: &D,
    key: &str,
    establishment: &str,
    actor: &Actor,
    clock: &dyn Clock,
) -> Result<ExitCode> {
    let uai = domain::Uai::parse(establishment)?;
    let account = by_key(d, key, actor).await?;
    accounts::leave_establishment(d, &account, None, &uai, actor, clock.now())
        .await
        .map_err(refusal)?;
    let still_active = account.memberships.iter().any(|m| m.active && m.uai != uai);
    println!(
        "Compte {} retiré de l'établissement {uai} (inscrit au journal){}.",
        account.user.sync_key,
        if still_active {
            ""
        } else {
            " ; sans autre établissement actif, il est désactivé"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `users deactivate` / `users reactivate`: the user page's buttons.
pub async fn set_active<D: Accounts>(
    d: &D,
    key: &str,
    active: bool,
    actor: &Actor,
    clock: &dyn Clock,
) -> Result<ExitCode> {
    let account = by_key(d, key, actor).await?;
    accounts::set_active(d, &account, None, active, actor, clock.now())
        .await
        .map_err(refusal)?;
    println!(
        "Compte {} ({}) {} (inscrit au journal).",
        account.user.sync_key,
        account.user.login,
        if active { "réactivé" } else { "désactivé" }
    );
    Ok(ExitCode::SUCCESS)
}

/// `users reset-password KEY`: the new password, printed once.
pub async fn reset_password<D: Accounts>(d: &D, key: &str, actor: &Actor, clock: &dyn Clock) -> Result<ExitCode> {
    let account = by_key(d, key, actor).await?;
    let mut rng = domain::password::os_rng();
    let reset = accounts::reset_password(d, &account, None, actor, &mut rng, clock.now())
        .await
        .map_err(refusal)?;
    println!("Compte {} : login {}", account.user.sync_key, reset.login);
    println!("Nouveau mot de passe : {}", reset.password);
    eprintln!("Affiché cette seule fois (conservé nulle part en clair) ; à changer à la première connexion.");
    Ok(ExitCode::SUCCESS)
}

/// The account page as JSON.
#[derive(Serialize)]
struct ShownAccount<'a> {
    sync_key: &'a str,
    login: &'a str,
    last_name: &'a str,
    first_name: &'a str,
    profile: domain::Profile,
    source: &'static str,
    active: bool,
    protected: bool,
    last_day: Option<chrono::NaiveDate>,
    allowed_networks: Vec<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    last_login_at: Option<chrono::DateTime<chrono::Utc>>,
    memberships: &'a [store::accounts::MembershipLine],
    /// A pupil's class and level (AAF feed).
    #[serde(skip_serializing_if = "Option::is_none")]
    class_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<&'a str>,
    /// A pupil's persons in charge or a parent's children (AAF feed).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    relatives: &'a [store::accounts::RelativeLine],
}

pub async fn show<D: Accounts>(d: &D, args: &UserShowArgs, actor: &Actor) -> Result<ExitCode> {
    let a = by_key(d, &args.key, actor).await?;
    // A shared account's login is its other establishments' to hand out.
    let login = if actor.rights_over(&a) == AccountRights::OwnMembershipsOnly {
        ""
    } else {
        a.user.login.as_str()
    };
    let s = &a.state.settings;
    if args.json {
        let shown = ShownAccount {
            sync_key: &a.user.sync_key,
            login,
            last_name: &a.user.last_name,
            first_name: &a.user.first_name,
            profile: a.profile,
            source: a.source.id(),
            active: a.user.active,
            protected: s.protected,
            last_day: s.last_day,
            allowed_networks: s.networks.ranges().collect(),
            created_at: a.created_at,
            last_login_at: a.last_login_at,
            memberships: &a.memberships,
            class_name: a.user.class_name.as_deref(),
            level: a.user.level.as_deref(),
            relatives: &a.relatives,
        };
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} {}", a.user.last_name.to_uppercase(), a.user.first_name);
    println!("  clé de synchronisation : {}", a.user.sync_key);
    if login.is_empty() {
        println!(
            "  login : connu de la personne et de son établissement d'origine (compte aussi actif dans {})",
            actor.active_elsewhere(&a)
        );
    } else {
        println!("  login : {login}");
    }
    println!("  profil : {} — source : {}", a.profile.label(), a.source.label());
    println!("  état : {}", if a.user.active { "actif" } else { "désactivé" });
    for (label, value) in [("classe", &a.user.class_name), ("niveau", &a.user.level)] {
        if let Some(value) = value {
            println!("  {label} : {value}");
        }
    }
    println!(
        "  créé le : {} — dernière connexion : {}",
        when(Some(a.created_at)),
        when(a.last_login_at)
    );
    println!(
        "  expiration : {}",
        s.last_day
            .map(|d| format!("dernier jour le {}", d.format("%d/%m/%Y")))
            .unwrap_or_else(|| "jamais".into())
    );
    println!(
        "  plages IP autorisées : {}",
        if s.networks.is_empty() {
            "toutes".to_string()
        } else {
            s.networks.to_string()
        }
    );
    println!("  protégé : {}", if s.protected { "oui" } else { "non" });
    for m in &a.memberships {
        println!(
            "  établissement : {} ({}) — rôle {} — {}",
            m.establishment,
            m.uai,
            m.role,
            if m.active { "actif" } else { "désactivé" }
        );
    }
    for r in &a.relatives {
        let (side, link) = if r.is_child {
            ("enfant", String::new())
        } else {
            (
                "responsable",
                format!(
                    " — {}{}",
                    r.relation.as_deref().map(relation_label).unwrap_or("autre lien"),
                    if r.legal_guardian { ", responsable légal" } else { "" }
                ),
            )
        };
        println!(
            "  {side} : {} {} ({}){link}{}",
            r.last_name.to_uppercase(),
            r.first_name,
            r.sync_key,
            if r.active { "" } else { " — désactivé" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn set<D: Accounts>(d: &D, args: &UserSetArgs, actor: &Actor, clock: &dyn Clock) -> Result<ExitCode> {
    let account = by_key(d, &args.key, actor).await?;
    let change = AccountChange {
        last_day: args.expires.clone(),
        networks: args.allowed_ips.clone(),
        protected: if args.protected {
            Some(true)
        } else if args.unprotected {
            Some(false)
        } else {
            None
        },
        civility: args.civility.clone(),
        last_name: args.last_name.clone(),
        first_name: args.first_name.clone(),
        birth_date: args.birth_date.clone(),
        email: args.email.clone(),
        mobile: args.mobile.clone(),
    };
    if change == AccountChange::default() {
        return Err(anyhow::Error::new(Refused(
            "rien à modifier : indiquez au moins une option (--expires, --allowed-ips, --protected, --last-name…)"
                .into(),
        )));
    }
    let saved = accounts::save_account(d, &account, None, &change, actor, clock.now())
        .await
        .map_err(refusal)?;
    if saved.changes.is_empty() {
        println!("Aucune modification pour {} : rien n'a été enregistré.", saved.sync_key);
    } else {
        println!("Compte {} modifié (inscrit au journal) :", saved.sync_key);
        for c in &saved.changes {
            println!("  {} : « {} » → « {} »", c.field, c.before, c.after);
        }
    }
    Ok(ExitCode::SUCCESS)
}
