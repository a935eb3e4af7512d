//! "Suivi des imports" (SPEC §7, the guide's "Suivi Synchros"): every import
//! whatever its door, filterable by establishment and date; an import's page
//! with its counts, options, notice, result file and credential slips (for the
//! admin who ran it, while retained) and the restore of a Complet import.
//! Also "Exporter les utilisateurs de l'ENT" (SPEC §9).

use crate::auth::{Auth, CsrfForm};
use crate::error::AppError;
use crate::pages::Layout;
use crate::{AppState, Backend};
use app::labels::mail as mail_label;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use domain::result_file::Slip;
use domain::vocabulary::ImportSource;
use domain::{Profile, Uai};
use serde::Deserialize;
use std::collections::HashMap;
use store::history::{HistoryFilter, ImportEntry};

const PAGE_SIZE: i64 = 50;

fn when(at: DateTime<Utc>) -> String {
    domain::time::minute(at)
}

/// One line of the history table.
pub struct Row {
    id: i64,
    started: String,
    actor: String,
    channel: String,
    establishments: String,
    profile: String,
    complet: bool,
    file_name: String,
    rows: i64,
    result_rows: i64,
    counts: String,
    status: String,
    status_label: &'static str,
    mail: &'static str,
}

impl Row {
    fn of(e: &ImportEntry, names: &Names) -> Row {
        Row {
            id: e.id,
            started: when(e.started_at),
            actor: e.actor.clone(),
            channel: e.channel.id().to_string(),
            establishments: named(&e.establishments, names),
            profile: app::labels::import_profile(e),
            complet: e.complet,
            file_name: e.file_name.clone(),
            rows: e.rows,
            result_rows: e.result_rows(),
            counts: format!(
                "{} créé(s), {} modifié(s), {} inchangé(s), {} fusionné(s), {} désactivé(s), {} ignorée(s)",
                e.created, e.updated, e.unchanged, e.merged, e.deactivated, e.skipped
            ),
            status: e.status.id().to_string(),
            status_label: e.status.label(),
            mail: mail_label(e.mail_status),
        }
    }
}

/// Establishment names by UAI, read once per page.
type Names = std::collections::HashMap<Uai, String>;

async fn establishment_names<D: Backend>(state: &AppState<D>) -> Result<Names, AppError> {
    Ok(state
        .directory
        .list_establishments()
        .await?
        .into_iter()
        .map(|e| (e.uai, e.name))
        .collect())
}

/// "Collège Jean Moulin (0750654D), Lycée Victor Hugo (0750655E)".
fn named(uais: &[Uai], names: &Names) -> String {
    uais.iter()
        .map(|u| match names.get(u) {
            Some(name) => format!("{name} ({u})"),
            None => u.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Deserialize, Default)]
pub struct HistoryQuery {
    etablissement: Option<String>,
    /// yyyy-mm-dd, inclusive.
    du: Option<String>,
    /// yyyy-mm-dd, inclusive.
    au: Option<String>,
    page: Option<i64>,
}

#[derive(Template, WebTemplate)]
#[template(path = "history.html")]
pub struct HistoryPage {
    layout: Layout,
    /// (UAI, name, selected)
    establishments: Vec<(String, String, bool)>,
    since: String,
    until: String,
    rows: Vec<Row>,
    /// "X a été rattaché(e) à … par … le …": accounts of the admin's
    /// establishments that another establishment's import attached (first page).
    attachments: Vec<String>,
    page: i64,
    previous_url: Option<String>,
    next_url: Option<String>,
}

/// How many of the latest attachments the history's first page lists.
const ATTACHMENTS_SHOWN: i64 = 50;

fn parse_day(raw: &Option<String>, what: &str) -> Result<Option<NaiveDate>, AppError> {
    match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| AppError::BadRequest(format!("date {what} « {s} » invalide : écrivez-la jj/mm/aaaa"))),
    }
}

pub async fn list<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Query(q): Query<HistoryQuery>,
) -> Result<HistoryPage, AppError> {
    let establishment = q
        .etablissement
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(Uai::parse)
        .transpose()
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let since = parse_day(&q.du, "de début")?;
    let until = parse_day(&q.au, "de fin")?;
    let page = crate::pages::page_number(q.page);
    let filter = HistoryFilter {
        viewer: auth.admin.history_viewer(),
        establishment: establishment.clone(),
        // One more than a page tells whether there is a next page.
        limit: PAGE_SIZE + 1,
        offset: (page - 1) * PAGE_SIZE,
        ..HistoryFilter::everything()
    }
    .days(since, until);
    let mut entries = state.directory.list_imports(&filter).await?;
    let has_next = entries.len() as i64 > PAGE_SIZE;
    entries.truncate(PAGE_SIZE as usize);
    let since_text = q.du.clone().unwrap_or_default();
    let until_text = q.au.clone().unwrap_or_default();
    let page_url = |p: i64| {
        format!(
            "/suivi?etablissement={}&du={}&au={}&page={p}",
            establishment.as_ref().map(Uai::as_str).unwrap_or(""),
            since_text,
            until_text
        )
    };
    let attachments = if page == 1 {
        state
            .directory
            .attachments_seen_by(&auth.admin.history_viewer(), ATTACHMENTS_SHOWN)
            .await?
            .iter()
            .map(|a| format!("{} (déjà dans {})", app::labels::attachment(a), a.other()))
            .collect()
    } else {
        Vec::new()
    };
    Ok(HistoryPage {
        attachments,
        layout: Layout::of(&state, &auth),
        establishments: crate::pages::establishment_choices(&state, &auth, establishment.as_ref().map(Uai::as_str))
            .await?,
        rows: {
            let names = establishment_names(&state).await?;
            entries.iter().map(|e| Row::of(e, &names)).collect()
        },
        previous_url: (page > 1).then(|| page_url(page - 1)),
        next_url: has_next.then(|| page_url(page + 1)),
        page,
        since: since_text,
        until: until_text,
    })
}

/// An import this admin may see, or 404 (as for drafts and jobs).
async fn visible_import<D: Backend>(state: &AppState<D>, auth: &Auth, id: i64) -> Result<ImportEntry, AppError> {
    Ok(app::imports::entry(state.directory.as_ref(), &auth.actor(), id).await?)
}

/// The result file and the slips are the runner's only: they hold passwords.
async fn own_retained_import<D: Backend>(state: &AppState<D>, auth: &Auth, id: i64) -> Result<ImportEntry, AppError> {
    let entry = visible_import(state, auth, id).await?;
    let retained = entry.result_expires_at.is_some_and(|t| t >= state.now());
    if entry.admin_id != Some(auth.admin.id) || !retained {
        return Err(AppError::NotFound);
    }
    Ok(entry)
}

#[derive(Template, WebTemplate)]
#[template(path = "import.html")]
pub struct ImportPage {
    layout: Layout,
    row: Row,
    source: String,
    duration: String,
    file_size: i64,
    error: Option<String>,
    options: Vec<(String, String)>,
    notify: String,
    /// (date, status, attempts, last error)
    mails: Vec<(String, &'static str, i64, String)>,
    /// Result file and slips, for the admin who ran the import.
    result_until: Option<String>,
    /// Accounts created (no slips to print without).
    created: i64,
    /// Lines skipped for their conflicts (downloadable with the result).
    skipped: i64,
    /// Accounts and memberships still deactivated by this Complet import.
    restorable: i64,
    may_restore: bool,
    restored: Option<u64>,
}

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    restaures: Option<u64>,
}

pub async fn detail<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
    Query(q): Query<DetailQuery>,
) -> Result<ImportPage, AppError> {
    let entry = visible_import(&state, &auth, id).await?;
    let mails = state.directory.mails_of_import(id).await?;
    let restorable = if entry.deactivated > 0 {
        state.directory.still_deactivated_by(id).await?
    } else {
        0
    };
    let options: serde_json::Value = serde_json::from_str(&entry.options).unwrap_or_default();
    let mut shown = vec![(
        "Complet (désactiver les comptes absents du fichier)".to_string(),
        if entry.complet { "oui" } else { "non" }.to_string(),
    )];
    let labels = [
        ("skip_conflicts", "Ne pas importer les lignes en conflit"),
        ("establishments_from_file", "Établissements lus dans le fichier"),
        ("confirm_deletions", "Désactivations confirmées"),
        ("encoding", "Encodage"),
        ("separator", "Séparateur"),
    ];
    for (key, label) in labels {
        let value = match &options[key] {
            serde_json::Value::Bool(b) => if *b { "oui" } else { "non" }.to_string(),
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        shown.push((label.to_string(), value));
    }
    // An AAF run's accounts created per profile (pupils, parents, staff).
    if let Some(counts) = options["created_by_profile"].as_object().filter(|c| !c.is_empty()) {
        let counts: Vec<String> = counts
            .iter()
            .map(|(id, n)| {
                let label = id.parse::<domain::Profile>().map(|p| p.label()).unwrap_or(id);
                format!("{label} : {n}")
            })
            .collect();
        shown.push(("Comptes créés par profil".to_string(), counts.join(", ")));
    }
    let owner = entry.admin_id == Some(auth.admin.id);
    let result_until = entry.result_expires_at.filter(|t| owner && *t >= state.now()).map(when);
    Ok(ImportPage {
        layout: Layout::of(&state, &auth),
        source: if entry.source == ImportSource::Aaf {
            "flux AAF"
        } else {
            "fichier CSV"
        }
        .to_string(),
        duration: entry
            .duration_seconds()
            .map(|s| format!("{s} s"))
            .unwrap_or_else(|| "—".into()),
        file_size: entry.file_size,
        error: entry.error.clone(),
        options: shown,
        notify: entry.notify.clone().unwrap_or_else(|| "—".into()),
        mails: mails
            .iter()
            .map(|m| {
                (
                    when(m.sent_at.unwrap_or(m.created_at)),
                    mail_label(Some(m.status)),
                    m.attempts,
                    m.last_error.clone().unwrap_or_default(),
                )
            })
            .collect(),
        result_until,
        created: entry.created,
        skipped: entry.skipped,
        restorable,
        may_restore: restorable > 0 && app::imports::may_restore(&auth.actor(), &entry),
        restored: q.restaures,
        row: Row::of(&entry, &establishment_names(&state).await?),
    })
}

pub async fn result<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    own_retained_import(&state, &auth, id).await?;
    crate::wizard::result_download(&state, id).await
}

pub async fn skipped<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    own_retained_import(&state, &auth, id).await?;
    crate::wizard::skipped_download(&state, id).await
}

#[derive(Template, WebTemplate)]
#[template(path = "restore.html")]
pub struct RestorePage {
    layout: Layout,
    id: i64,
    file_name: String,
    started: String,
    /// (account id, "LAST First") of the accounts brought back.
    accounts: Vec<(i64, String)>,
    /// Accounts beyond the list's length.
    more: i64,
    total: i64,
}

/// How many accounts the restore confirmation lists by name.
const RESTORE_LISTED: i64 = 200;

/// GET /suivi/{id}/restaurer: the confirmation, naming the accounts a
/// restore brings back.
pub async fn restore_page<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let entry = visible_import(&state, &auth, id).await?;
    if !app::imports::may_restore(&auth.actor(), &entry) {
        return Err(AppError::NotFound);
    }
    let accounts = state.directory.still_deactivated_accounts(id, RESTORE_LISTED).await?;
    if accounts.is_empty() {
        return Ok(Redirect::to(&format!("/suivi/{id}")).into_response());
    }
    let listed = i64::try_from(accounts.len()).unwrap_or(i64::MAX);
    // Counted only when the list is cut (the count is of accounts and memberships).
    let total = if listed < RESTORE_LISTED {
        listed
    } else {
        state.directory.still_deactivated_by(id).await?.max(listed)
    };
    Ok(RestorePage {
        layout: Layout::of(&state, &auth),
        id,
        file_name: entry.file_name.clone(),
        started: when(entry.started_at),
        more: (total - listed).max(0),
        accounts,
        total,
    }
    .into_response())
}

pub async fn restore<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, AppError> {
    auth.check_csrf(&form.csrf)?;
    let restored = app::imports::restore(state.directory.as_ref(), &auth.actor(), id, state.clock.now()).await?;
    Ok(Redirect::to(&format!("/suivi/{id}?restaures={restored}")))
}

#[derive(Template, WebTemplate)]
#[template(path = "slips.html")]
pub struct SlipsPage {
    ent_name: String,
    heading: String,
    back_url: String,
    back_label: &'static str,
    sign_in: String,
    /// (slip, establishment names); a slip without password is a reprint.
    slips: Vec<(Slip, String)>,
    with_passwords: bool,
}

pub async fn slips<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    own_retained_import(&state, &auth, id).await?;
    let slips = state
        .directory
        .import_slips(id, state.now())
        .await?
        .ok_or(AppError::NotFound)?;
    slips_page(
        &state,
        format!("Fiches de connexion — import n° {id}"),
        format!("/suivi/{id}"),
        "Retour à l'import",
        slips,
    )
    .await
}

/// The printable slips, never cached (they may carry passwords).
pub async fn slips_page<D: Backend>(
    state: &AppState<D>,
    heading: String,
    back_url: String,
    back_label: &'static str,
    slips: Vec<Slip>,
) -> Result<Response, AppError> {
    let names: HashMap<String, String> = state
        .directory
        .list_establishments()
        .await?
        .into_iter()
        .map(|e| (e.uai.as_str().to_string(), e.name))
        .collect();
    let page = SlipsPage {
        ent_name: state.config.ent_name.clone(),
        with_passwords: slips.iter().any(|s| !s.password.is_empty()),
        heading,
        back_url,
        back_label,
        sign_in: state.config.sign_in_url.clone(),
        slips: slips
            .into_iter()
            .map(|s| {
                let places = s
                    .establishments
                    .iter()
                    .map(|u| names.get(u).map(|n| format!("{n} ({u})")).unwrap_or_else(|| u.clone()))
                    .collect::<Vec<_>>()
                    .join(", ");
                (s, places)
            })
            .collect(),
    };
    let html = page.render().map_err(|e| AppError::Page(e.to_string()))?;
    Ok((
        [(CONTENT_TYPE, "text/html; charset=utf-8"), (CACHE_CONTROL, "no-store")],
        html,
    )
        .into_response())
}

#[derive(Deserialize, Default)]
pub struct ExportQuery {
    etablissement: Option<String>,
    profil: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "export.html")]
pub struct ExportPage {
    layout: Layout,
    /// (UAI, name, selected)
    establishments: Vec<(String, String, bool)>,
    /// (id, label)
    profiles: Vec<(&'static str, &'static str)>,
}

pub async fn export_page<D: Backend>(State(state): State<AppState<D>>, auth: Auth) -> Result<ExportPage, AppError> {
    Ok(ExportPage {
        layout: Layout::of(&state, &auth),
        establishments: crate::pages::establishment_choices(&state, &auth, None).await?,
        profiles: Profile::IMPORTABLE.iter().map(|p| (p.id(), p.label())).collect(),
    })
}

pub async fn export_csv<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Query(q): Query<ExportQuery>,
) -> Result<Response, AppError> {
    let uai = Uai::parse(q.etablissement.as_deref().unwrap_or_default())
        .map_err(|e| AppError::BadRequest(format!("choisissez un établissement : {e}")))?;
    let profile: Profile = q
        .profil
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(|e: domain::profile::UnknownProfile| AppError::BadRequest(e.to_string()))?;
    let (_, bytes) = app::imports::export(state.directory.as_ref(), &auth.actor(), &uai, profile).await?;
    Ok(crate::wizard::csv_download(
        format!("export-{}-{}.csv", uai.as_str(), profile.id()),
        bytes,
    ))
}

#[derive(Deserialize, Default)]
pub struct LvsQuery {
    etablissement: Option<String>,
}

/// GET /export/lvs.csv: the establishment's teachers and staff with their
/// La Vie Scolaire profile (guide §6), TOS left out.
pub async fn export_lvs<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Query(q): Query<LvsQuery>,
) -> Result<Response, AppError> {
    let uai = Uai::parse(q.etablissement.as_deref().unwrap_or_default())
        .map_err(|e| AppError::BadRequest(format!("choisissez un établissement : {e}")))?;
    let export = app::lvs::export(state.directory.as_ref(), &auth.actor(), &uai).await?;
    Ok(crate::wizard::csv_download(
        format!("lvs-{}.csv", uai.as_str()),
        domain::lvs::csv(&export.rows),
    ))
}
