//! Human-readable output of the CLI, in French.

use domain::changeset::{Deactivation, Update};
use domain::pipeline::Status;
use domain::Uai;
use std::path::Path;
use store::service::{ImportOutcome, ImportRequest};
use store::UserSummary;

use domain::parse::separator_name;

pub fn print_import(outcome: &ImportOutcome, request: &ImportRequest, result_path: Option<&Path>) {
    let read = &outcome.read;
    let plan = &outcome.plan;
    let report = &outcome.report;
    println!(
        "Fichier : {} ({}{}, séparateur {}, {})",
        if request.file_name.is_empty() {
            "-"
        } else {
            &request.file_name
        },
        read.encoding,
        if read.encoding_detected { " détecté" } else { "" },
        separator_name(read.parsed.separator),
        if read.parsed.header.is_some() {
            "avec en-tête"
        } else {
            "sans en-tête"
        }
    );
    for n in &read.decode_notices {
        println!("  attention : {n}");
    }
    match &request.establishment {
        Some(uai) => println!("Établissement : {uai}    Profil : {}", request.profile.label()),
        None => println!(
            "Établissements : ceux du fichier    Profil : {}",
            request.profile.label()
        ),
    }
    let imported: Vec<String> = read
        .mapping
        .columns
        .iter()
        .filter_map(|c| {
            c.field
                .filter(|f| *f != domain::Field::SyncKey)
                .map(|f| format!("{} → {}", c.name, f.id()))
        })
        .collect();
    println!("Champs CSV importés : {}", imported.join(", "));
    let ignored: Vec<&str> = read.mapping.ignored_columns().map(|c| c.name.as_str()).collect();
    if !ignored.is_empty() {
        println!("Colonnes CSV ignorées : {}", ignored.join(", "));
    }
    println!(
        "Lignes à importer : {}    valides : {}    en conflit : {}",
        report.rows, report.valid, report.conflicts
    );
    for c in &plan.conflicts {
        match &c.column {
            Some(col) => println!("  ligne {}, colonne « {col} » : {}", c.line, c.message),
            None => println!("  ligne {} : {}", c.line, c.message),
        }
    }
    for n in &plan.notices {
        println!("  remarque ligne {} : {}", n.line, n.message);
    }
    println!(
        "Plan : {} créé(s), {} mis à jour, {} inchangé(s), {} fusionné(s), {} désactivé(s){}",
        report.created,
        report.updated,
        report.unchanged,
        report.merged,
        report.deactivated,
        if report.skipped > 0 {
            format!(", {} ligne(s) en conflit ignorée(s)", report.skipped)
        } else {
            String::new()
        }
    );
    for u in &plan.updates {
        println!("  mis à jour {} ({}) : {}", u.origin, u.key, update_summary(u));
    }
    for m in &plan.merges {
        println!(
            "  ligne {} fusionnée avec la ligne {} (même clé {})",
            m.line, m.into_line, m.key
        );
    }
    print_deactivations("Comptes désactivés (mode Complet) :", &plan.deactivations);
    print_status(
        report.status,
        outcome.import_id,
        report.rejection.as_deref(),
        result_path.map(|p| (p, "clés, logins et mots de passe à distribuer")),
    );
}

/// What changes for one account, in a report line: fields, profile,
/// establishments joined and left, reactivation.
pub fn update_summary(u: &Update) -> String {
    let mut what: Vec<String> = u
        .changes
        .iter()
        .map(|c| format!("{} : « {} » → « {} »", c.field.id(), c.before, c.after))
        .collect();
    if let Some(p) = u.profile {
        what.push(format!("profil → {}", p.label()));
    }
    if !u.memberships.is_empty() {
        let uais: Vec<&str> = u.memberships.iter().map(|m| m.uai.as_str()).collect();
        what.push(format!("rattachement {}", uais.join(", ")));
    }
    if !u.left.is_empty() {
        let uais: Vec<&str> = u.left.iter().map(Uai::as_str).collect();
        what.push(format!("quitte {}", uais.join(", ")));
    }
    let names =
        |groups: &[domain::person::GroupRef]| groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(", ");
    if !u.groups.is_empty() {
        what.push(format!("groupes + {}", names(&u.groups)));
    }
    if !u.groups_left.is_empty() {
        what.push(format!("groupes − {}", names(&u.groups_left)));
    }
    if u.reactivate {
        what.push("réactivation".into());
    }
    if !u.shared_with.is_empty() {
        what.push(format!(
            "compte existant dans {}, rattaché sans changer son identité",
            domain::plan::establishment_list(&u.shared_with)
        ));
    }
    what.join(", ")
}

pub fn print_deactivations(title: &str, deactivations: &[Deactivation]) {
    if deactivations.is_empty() {
        return;
    }
    println!("{title}");
    for d in deactivations {
        println!(
            "  {} {} ({}, {}){}",
            d.last_name,
            d.first_name,
            d.login,
            d.key,
            if d.whole_account {
                ""
            } else {
                " — rattachement seulement, le compte reste actif ailleurs"
            }
        );
    }
}

/// The last line of an import's report, and where its result file went.
pub fn print_status(status: Status, import_id: Option<i64>, rejection: Option<&str>, result: Option<(&Path, &str)>) {
    match status {
        Status::Imported => {
            println!(
                "Résultat : importé{}.",
                import_id.map(|id| format!(" (import n° {id})")).unwrap_or_default()
            );
            if let Some((path, holds)) = result {
                println!(
                    "Fichier résultat : {} — {holds} ; il contient des mots de passe, conservez-le en lieu sûr.",
                    path.display()
                );
            }
        }
        Status::DryRun => println!("Résultat : simulation (--dry-run), rien n'a été écrit."),
        Status::Rejected => println!(
            "Résultat : refusé, rien n'a été écrit. {}",
            rejection.unwrap_or_default()
        ),
    }
}

pub fn print_users(users: &[UserSummary]) {
    if users.is_empty() {
        println!("Aucun compte ne correspond.");
        return;
    }
    for u in users {
        println!(
            "{}, {}\t{}\t{}\t{}\t{}\t{}\t{}\tcréé le {}",
            u.last_name.to_uppercase(),
            u.first_name,
            u.sync_key,
            u.login,
            u.profile.label(),
            u.source,
            u.establishments.join(","),
            if u.active { "actif" } else { "désactivé" },
            domain::time::minute(u.created_at)
        );
    }
}
