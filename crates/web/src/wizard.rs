//! The five steps of the guide's import module (§5.2), one page each, the
//! state kept on the server as a draft so that a reload or a second tab never
//! loses work. Every step recomputes what it shows from the draft with the
//! same domain functions as the CLI (a dry run for steps 3 and 4).

use crate::auth::Auth;
use crate::error::AppError;
use crate::pages::Layout;
use crate::{AppState, Backend};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Multipart, Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use domain::decode::{decode, EncodingChoice};
use domain::field::{Field, Presence};
use domain::mapping::{auto_map, ColumnRef, Mapping, MappingError, Override};
use domain::parse::{parse, ParsedFile};
use domain::pipeline::Status;
use domain::plan::{Plan, Rejection};
use domain::vocabulary::{Channel, JobStatus, DEFAULT_DELETION_THRESHOLD_PERCENT};
use domain::{Profile, Uai};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use store::service::{ImportOutcome, ImportRequest};
use store::web::Draft;

/// The admin's choices, stored as JSON in the draft.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DraftSettings {
    pub profile: Profile,
    pub establishment: Option<Uai>,
    pub establishments_from_file: bool,
    pub separator: char,
    pub encoding: EncodingChoice,
    pub has_header: bool,
    pub complet: bool,
    /// One entry per column once step 2 was submitted.
    pub overrides: Vec<Override>,
    pub edits: BTreeMap<u64, Vec<String>>,
    pub skip_conflicts: bool,
    /// Step 3's "rattacher les comptes existant dans un autre établissement".
    #[serde(default)]
    pub attach_existing: bool,
    pub confirm_deletions: Option<usize>,
    /// Started through the JSON API rather than the pages (for the history).
    #[serde(default)]
    pub via_api: bool,
    /// The plan the admin approved at step 4 ([`domain::plan::Plan::fingerprint`]):
    /// the job refuses to write if it finds another.
    #[serde(default)]
    pub expected_plan: Option<String>,
}

impl DraftSettings {
    /// The admin who made this draft, acting through the door they used.
    pub fn actor(&self, admin: &store::web::Admin) -> app::Actor {
        app::Actor::new(admin.clone(), if self.via_api { Channel::Api } else { Channel::Web })
    }

    /// The import the draft describes ([`app::imports::on_behalf`] adds who runs it).
    pub fn request(&self, draft: &Draft, max_upload: usize) -> ImportRequest {
        let mut r = ImportRequest::new(self.profile, self.establishment.clone());
        r.file_name = draft.file_name.clone();
        r.file.encoding = self.encoding;
        r.file.separator = u8::try_from(self.separator).ok();
        r.file.has_header = self.has_header;
        r.file.limits.max_bytes = max_upload;
        r.establishments_from_file = self.establishments_from_file;
        r.overrides = self.overrides.clone();
        r.edits = self.edits.clone();
        r.complet = self.complet;
        r.skip_conflicts = self.skip_conflicts;
        r.attach_existing = self.attach_existing;
        r.confirm_deletions = self.confirm_deletions;
        r.expected_plan = self.expected_plan.clone();
        r
    }
}

/// A draft of this admin, or 404 (someone else's draft does not exist for them).
pub async fn load_draft<D: Backend>(
    state: &AppState<D>,
    auth: &Auth,
    id: i64,
) -> Result<(Draft, DraftSettings), AppError> {
    load_draft_for(state, &auth.admin, id).await
}

pub async fn load_draft_for<D: Backend>(
    state: &AppState<D>,
    admin: &store::web::Admin,
    id: i64,
) -> Result<(Draft, DraftSettings), AppError> {
    let auth_admin = admin;
    let draft = state.directory.draft(id).await?.ok_or(AppError::NotFound)?;
    if draft.admin_id != auth_admin.id {
        return Err(AppError::NotFound);
    }
    let jobs = state.directory.jobs_of_draft(id).await?;
    if let Some(job) = jobs
        .iter()
        .rev()
        .find(|j| j.status.is_running() || j.status == JobStatus::Succeeded)
    {
        return Err(AppError::AlreadyImported { job: job.id });
    }
    if draft.purged_at.is_some() {
        return Err(AppError::BadRequest(
            "Ce brouillon a été effacé (son import est terminé, ou il était abandonné depuis plusieurs jours) : son fichier n'est plus conservé. Recommencez à l'étape 1.".into(),
        ));
    }
    let settings: DraftSettings = serde_json::from_str(&draft.settings)
        .map_err(|e| AppError::BadRequest(format!("brouillon illisible : {e}")))?;
    if let Some(uai) = &settings.establishment {
        if !auth_admin.may_act_on(uai) {
            return Err(AppError::NotFound);
        }
    }
    Ok((draft, settings))
}

pub async fn save_settings<D: Backend>(state: &AppState<D>, id: i64, settings: &DraftSettings) -> Result<(), AppError> {
    let json = serde_json::to_string(settings).map_err(|e| AppError::BadRequest(e.to_string()))?;
    state.directory.update_draft_settings(id, &json, state.now()).await?;
    Ok(())
}

/// A dry run of the draft: the plan steps 3 and 4 show.
pub async fn dry_run<D: Backend>(
    state: &AppState<D>,
    admin: &store::web::Admin,
    draft: &Draft,
    settings: &DraftSettings,
) -> Result<ImportOutcome, AppError> {
    let request = settings.request(draft, state.config.max_upload);
    Ok(app::imports::preview(
        state.directory.as_ref(),
        &settings.actor(admin),
        &draft.file_bytes,
        &request,
        state.clock.as_ref(),
    )
    .await?)
}

// ---------------------------------------------------------------- step 1

#[derive(Template, WebTemplate)]
#[template(path = "step1.html")]
pub struct Step1Page {
    layout: Layout,
    error: Option<String>,
    establishments: Vec<domain::Establishment>,
    max_upload_mib: usize,
}

async fn step1<D: Backend>(state: &AppState<D>, auth: &Auth, error: Option<String>) -> Result<Step1Page, AppError> {
    let establishments = crate::pages::visible_establishments(state, auth).await?;
    Ok(Step1Page {
        layout: Layout::of(state, auth),
        error,
        establishments,
        max_upload_mib: state.config.max_upload / (1024 * 1024),
    })
}

pub async fn step1_page<D: Backend>(State(state): State<AppState<D>>, auth: Auth) -> Result<Step1Page, AppError> {
    step1(&state, &auth, None).await
}

pub async fn step1_submit<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    mut multipart: Multipart,
) -> Result<Response, AppError> {
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Ok(oversize_page(&state, &auth).await);
            }
            Err(e) => return Err(AppError::BadRequest(format!("envoi du formulaire interrompu : {e}"))),
        };
        let name = field.name().unwrap_or_default().to_string();
        if name == "fichier" {
            let file_name = field.file_name().unwrap_or("fichier.csv").to_string();
            let Ok(bytes) = field.bytes().await else {
                return Ok(oversize_page(&state, &auth).await);
            };
            file = Some((file_name, bytes.to_vec()));
        } else {
            let value = field.text().await.map_err(|e| AppError::BadRequest(e.to_string()))?;
            fields.insert(name, value);
        }
    }
    auth.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or(""))?;
    let retry = |message: String| async {
        step1(&state, &auth, Some(message))
            .await
            .map(IntoResponse::into_response)
    };
    let Some((file_name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return retry("Choisissez un fichier CSV non vide.".into()).await;
    };
    let profile: Profile = match fields.get("profil").map(|p| p.parse::<Profile>()) {
        Some(Ok(p)) if p.is_importable() => p,
        _ => return retry("Choisissez le type d'utilisateurs à importer.".into()).await,
    };
    let establishment = match fields.get("etablissement").map(|u| Uai::parse(u)) {
        Some(Ok(uai)) if auth.admin.may_act_on(&uai) => uai,
        _ => return retry("Choisissez un de vos établissements.".into()).await,
    };
    let from_file = fields.contains_key("depuis_fichier");
    if from_file && profile != Profile::Administratif {
        return retry(
            "L'affectation aux établissements du fichier n'existe que pour le personnel administratif.".into(),
        )
        .await;
    }
    let separator = match fields.get("separateur").map(String::as_str) {
        Some("tab") => '\t',
        Some(s) if s.len() == 1 && ";,|".contains(s) => s.chars().next().unwrap_or(';'),
        _ => ';',
    };
    let encoding = fields
        .get("encodage")
        .and_then(|e| e.parse::<EncodingChoice>().ok())
        .unwrap_or_default();
    let overrides = match state.directory.saved_mapping(auth.admin.id, profile.id()).await? {
        Some(json) => serde_json::from_str(&json).unwrap_or_default(),
        None => Vec::new(),
    };
    let settings = DraftSettings {
        profile,
        establishment: Some(establishment),
        establishments_from_file: from_file,
        separator,
        encoding,
        has_header: fields.contains_key("entete"),
        complet: fields.contains_key("complet"),
        overrides,
        edits: BTreeMap::new(),
        skip_conflicts: false,
        attach_existing: false,
        confirm_deletions: None,
        via_api: false,
        expected_plan: None,
    };
    // An unreadable file is said now and never stored.
    if let Err(e) = read_bytes(&bytes, &settings) {
        return retry(format!("{e}.")).await;
    }
    let json = serde_json::to_string(&settings).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let id = state
        .directory
        .create_draft(auth.admin.id, &file_name, &bytes, &json, state.now())
        .await?;
    Ok(Redirect::to(&format!("/imports/{id}/correspondances")).into_response())
}

/// A file over the cap: back to step 1, with the menu and the reason
/// (nothing was stored).
pub async fn oversize_page<D: Backend>(state: &AppState<D>, auth: &Auth) -> Response {
    let error = AppError::TooLarge(state.config.max_upload);
    let message = format!("{}.", capitalised(&error.to_string()));
    match step1(state, auth, Some(message)).await {
        Ok(page) => (axum::http::StatusCode::PAYLOAD_TOO_LARGE, page).into_response(),
        Err(_) => error.into_response(),
    }
}

/// "Fichier trop volumineux…" from "fichier trop volumineux…".
fn capitalised(sentence: &str) -> String {
    let mut chars = sentence.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- step 2

struct ColumnView {
    index: usize,
    name: String,
    samples: String,
    field: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "step2.html")]
pub struct Step2Page {
    layout: Layout,
    draft_id: i64,
    file_name: String,
    encoding: String,
    separator_label: String,
    rows: usize,
    notices: Vec<String>,
    error: Option<String>,
    columns: Vec<ColumnView>,
    fields: Vec<(String, String)>,
    /// (field id, name, has a column).
    required: Vec<(String, String, bool)>,
    profile_label: String,
    complete: bool,
}

fn separator_label(c: char) -> String {
    u8::try_from(c).map_or_else(|_| format!("« {c} »"), domain::parse::separator_name)
}

/// Reads the file with the draft's settings, without any mapping check.
pub fn read_columns(
    draft: &Draft,
    settings: &DraftSettings,
) -> Result<(ParsedFile, &'static str, Vec<String>), AppError> {
    read_bytes(&draft.file_bytes, settings)
        .map_err(|e| AppError::BadRequest(format!("{e}. Revenez à l'étape 1 pour choisir un autre fichier.")))
}

/// Decodes and splits an uploaded file with the wizard's settings.
pub fn read_bytes(
    bytes: &[u8],
    settings: &DraftSettings,
) -> Result<(ParsedFile, &'static str, Vec<String>), domain::decode::FileError> {
    let limits = domain::decode::Limits::default();
    let decoded = decode(bytes, settings.encoding, &limits)?;
    let parsed = parse(
        &decoded.text,
        u8::try_from(settings.separator).ok(),
        settings.has_header,
        &limits,
    )?;
    Ok((parsed, decoded.encoding, decoded.notices))
}

/// The mapping of the draft: automatic, then the admin's choices (a saved
/// mapping may name columns this file lacks: those are skipped).
pub fn mapping_of(parsed: &ParsedFile, settings: &DraftSettings) -> Mapping {
    let mut mapping = auto_map(parsed.header.as_deref(), parsed.column_count, settings.profile);
    for o in &settings.overrides {
        let _ = mapping.apply_overrides(std::slice::from_ref(o));
    }
    mapping
}

async fn step2<D: Backend>(
    state: &AppState<D>,
    auth: &Auth,
    draft: &Draft,
    settings: &DraftSettings,
    error: Option<String>,
) -> Result<Step2Page, AppError> {
    let (mut parsed, encoding, mut notices) = read_columns(draft, settings)?;
    let mut settings = std::borrow::Cow::Borrowed(settings);
    let chosen = u8::try_from(settings.separator).unwrap_or(b';');
    if parsed.detected_separator != chosen {
        // Re-read with the separator the file really uses, and say so once
        // (the draft keeps it). Choices by column number no longer hold.
        let detected = char::from(parsed.detected_separator);
        notices.push(format!(
            "Ce fichier est séparé par {} et non par {} choisi à l'étape 1 : il a été relu avec {}.",
            separator_label(detected),
            separator_label(settings.separator),
            separator_label(detected)
        ));
        let fixed = settings.to_mut();
        fixed.separator = detected;
        fixed.overrides.retain(|o| matches!(o.column, ColumnRef::Name(_)));
        fixed.edits.clear();
        save_settings(state, draft.id, &settings).await?;
        parsed = read_columns(draft, &settings)?.0;
    }
    let settings = settings.as_ref();
    let mapping = mapping_of(&parsed, settings);
    let columns = mapping
        .columns
        .iter()
        .map(|c| ColumnView {
            index: c.index,
            name: c.name.clone(),
            samples: parsed
                .records
                .iter()
                .filter_map(|r| r.cells.get(c.index).filter(|v| !v.is_empty()))
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(" · "),
            field: c.field.map(|f| f.id().to_string()).unwrap_or_default(),
        })
        .collect();
    let profile = settings.profile;
    let fields = Field::for_profile(profile)
        .map(|f| {
            let suffix = match f.presence(profile) {
                Presence::Required => " (obligatoire)",
                Presence::Ignored => " (ignoré à l'import)",
                _ => "",
            };
            (f.id().to_string(), format!("{}{suffix}", f.name()))
        })
        .collect();
    let required: Vec<(String, String, bool)> = Field::required_for(profile)
        .map(|f| (f.id().to_string(), f.name().to_string(), mapping.has(f)))
        .collect();
    let complete = mapping.check(settings.establishments_from_file).is_ok();
    let error = error.or_else(|| {
        mapping
            .check(settings.establishments_from_file)
            .err()
            .filter(|_| !required.iter().all(|r| r.2))
            .map(|e| mapping_message(&e))
    });
    Ok(Step2Page {
        layout: Layout::of(state, auth),
        draft_id: draft.id,
        file_name: draft.file_name.clone(),
        encoding: encoding.to_string(),
        separator_label: separator_label(settings.separator),
        rows: parsed.records.len(),
        notices,
        error,
        columns,
        fields,
        required,
        profile_label: profile.label().to_string(),
        complete,
    })
}

pub async fn step2_page<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Step2Page, AppError> {
    let (draft, settings) = load_draft(&state, &auth, id).await?;
    step2(&state, &auth, &draft, &settings, None).await
}

pub async fn step2_submit<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    auth.check_csrf(form.get("csrf").map(String::as_str).unwrap_or(""))?;
    let (draft, mut settings) = load_draft(&state, &auth, id).await?;
    let (parsed, _, _) = read_columns(&draft, &settings)?;
    let mut overrides = Vec::with_capacity(parsed.column_count);
    let mut by_name = Vec::with_capacity(parsed.column_count);
    let base = mapping_of(&parsed, &settings);
    for column in &base.columns {
        let Some(choice) = form.get(&format!("col{}", column.index)) else {
            continue;
        };
        let field = if choice == "ignorer" {
            None
        } else {
            Some(
                choice
                    .parse::<Field>()
                    .map_err(|e| AppError::BadRequest(e.to_string()))?,
            )
        };
        overrides.push(Override {
            column: ColumnRef::Number(column.index + 1),
            field,
        });
        by_name.push(Override {
            column: ColumnRef::Name(column.name.clone()),
            field,
        });
    }
    // Choices replace the automatic matching column by column, in order.
    let mut mapping = auto_map(parsed.header.as_deref(), parsed.column_count, settings.profile);
    for c in &mut mapping.columns {
        c.field = None;
    }
    if let Err(e) = mapping.apply_overrides(&overrides) {
        let page = step2(&state, &auth, &draft, &settings, Some(mapping_message(&e))).await?;
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    settings.overrides = overrides;
    save_settings(&state, id, &settings).await?;
    if form.contains_key("memoriser") {
        let json = serde_json::to_string(&by_name).map_err(|e| AppError::BadRequest(e.to_string()))?;
        state
            .directory
            .save_mapping(auth.admin.id, settings.profile.id(), &json)
            .await?;
    }
    // "Suivant" is the form's only button (Enter sends it too): it records
    // the choices, then goes on, or says what is missing.
    if let Err(e) = mapping.check(settings.establishments_from_file) {
        let page = step2(&state, &auth, &draft, &settings, Some(mapping_message(&e))).await?;
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    Ok(Redirect::to(&format!("/imports/{id}/verification")).into_response())
}

/// A mapping refusal in the page's words: the fields by their headers and
/// the lists of step 2 (the CLI's message names field ids and `--map`).
fn mapping_message(e: &MappingError) -> String {
    match e {
        MappingError::MissingRequired { fields, .. } => format!(
            "Champs obligatoires sans colonne : {}. Choisissez la colonne de chacun dans les listes ci-dessous, puis « Suivant ».",
            fields.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
        ),
        MappingError::NotForProfile { field, profile } => format!(
            "Le champ « {} » n'existe pas pour le profil {} : choisissez « Aucune correspondance » pour sa colonne.",
            field.name(),
            profile.label()
        ),
        MappingError::Duplicate { field, first, second } => format!(
            "« {} » est choisi pour deux colonnes (« {first} » et « {second} ») : choisissez « Aucune correspondance » pour l'une d'elles.",
            field.name()
        ),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------- step 3

struct ConflictRowView {
    line: u64,
    /// (value, message)
    cells: Vec<(String, String)>,
    /// Every problem of the line, each with its column ("Date de naissance :
    /// …"): shown first, next to "Éditer", so that none is off screen.
    problems: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "step3.html")]
pub struct Step3Page {
    layout: Layout,
    draft_id: i64,
    rows: usize,
    valid: usize,
    headers: Vec<String>,
    conflict_rows: Vec<ConflictRowView>,
    notices: Vec<String>,
    skip: bool,
    /// Lines naming an account active in another establishment, refused until
    /// the admin confirms attaching them.
    elsewhere: usize,
    attach: bool,
    error: Option<String>,
}

fn conflict_rows(outcome: &ImportOutcome) -> Vec<ConflictRowView> {
    let mapping = &outcome.read.mapping;
    outcome
        .plan
        .conflict_lines
        .iter()
        .map(|&line| {
            let cells = outcome
                .read
                .parsed
                .records
                .iter()
                .find(|r| r.line == line)
                .map(|r| r.cells.clone())
                .unwrap_or_default();
            let mut messages: Vec<Vec<String>> = vec![Vec::new(); mapping.columns.len()];
            let mut problems = Vec::new();
            for c in outcome.plan.conflicts.iter().filter(|c| c.line == line) {
                match c
                    .column
                    .as_ref()
                    .and_then(|name| mapping.columns.iter().position(|col| &col.name == name))
                {
                    Some(i) => {
                        messages[i].push(c.message.clone());
                        problems.push(format!("{} : {}", mapping.columns[i].name, c.message));
                    }
                    None => problems.push(c.message.clone()),
                }
            }
            ConflictRowView {
                line,
                cells: (0..mapping.columns.len())
                    .map(|i| (cells.get(i).cloned().unwrap_or_default(), messages[i].join(" ; ")))
                    .collect(),
                problems,
            }
        })
        .collect()
}

async fn step3<D: Backend>(
    state: &AppState<D>,
    auth: &Auth,
    draft: &Draft,
    settings: &DraftSettings,
    error: Option<String>,
) -> Result<Response, AppError> {
    let outcome = match dry_run(state, &auth.admin, draft, settings).await {
        Ok(o) => o,
        Err(AppError::Import(e)) if e.is_rejection() => {
            return Ok(Redirect::to(&format!("/imports/{}/correspondances", draft.id)).into_response())
        }
        Err(e) => return Err(e),
    };
    Ok(Step3Page {
        layout: Layout::of(state, auth),
        draft_id: draft.id,
        rows: outcome.plan.rows,
        valid: outcome.plan.valid_rows(),
        headers: outcome.read.mapping.columns.iter().map(|c| c.name.clone()).collect(),
        conflict_rows: conflict_rows(&outcome),
        notices: outcome
            .plan
            .notices
            .iter()
            .map(|n| format!("Ligne {} : {}", n.line, n.message))
            .collect(),
        skip: settings.skip_conflicts,
        elsewhere: outcome
            .plan
            .conflicts
            .iter()
            .filter(|c| c.code == EXISTING_ELSEWHERE)
            .count(),
        attach: settings.attach_existing,
        error,
    }
    .into_response())
}

pub async fn step3_page<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let (draft, settings) = load_draft(&state, &auth, id).await?;
    step3(&state, &auth, &draft, &settings, None).await
}

#[derive(Deserialize)]
pub struct Step3Form {
    csrf: String,
    ignorer: Option<String>,
    rattacher: Option<String>,
}

pub async fn step3_submit<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<Step3Form>,
) -> Result<Response, AppError> {
    auth.check_csrf(&form.csrf)?;
    let (draft, mut settings) = load_draft(&state, &auth, id).await?;
    settings.skip_conflicts = form.ignorer.is_some();
    settings.attach_existing = form.rattacher.is_some();
    save_settings(&state, id, &settings).await?;
    let outcome = dry_run(&state, &auth.admin, &draft, &settings).await?;
    if matches!(outcome.plan.rejection, Some(Rejection::Conflicts { .. })) {
        let message = "Des lignes sont en conflit : corrigez-les avec « Éditer », ou cochez « Ne pas importer les lignes en conflit ».";
        return step3(&state, &auth, &draft, &settings, Some(message.to_string())).await;
    }
    Ok(Redirect::to(&format!("/imports/{id}/recapitulatif")).into_response())
}

// ---------------------------------------------------------------- edit a line

struct EditCell {
    label: String,
    value: String,
    message: String,
    required: bool,
    password: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "edit.html")]
pub struct EditPage {
    layout: Layout,
    draft_id: i64,
    line: u64,
    cells: Vec<EditCell>,
}

pub async fn edit_page<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path((id, line)): Path<(i64, u64)>,
) -> Result<EditPage, AppError> {
    let (draft, settings) = load_draft(&state, &auth, id).await?;
    let outcome = dry_run(&state, &auth.admin, &draft, &settings).await?;
    let record = outcome
        .read
        .parsed
        .records
        .iter()
        .find(|r| r.line == line)
        .ok_or(AppError::NotFound)?;
    let mapping = &outcome.read.mapping;
    let cells = mapping
        .columns
        .iter()
        .map(|c| {
            let messages: Vec<String> = outcome
                .plan
                .conflicts
                .iter()
                .filter(|x| x.line == line && x.column.as_deref() == Some(c.name.as_str()))
                .map(|x| x.message.clone())
                .collect();
            EditCell {
                label: match c.field {
                    // The column's own name, and the field's when it says another thing.
                    Some(f) if Field::from_header(&c.name) != Some(f) => format!("{} ({})", c.name, f.name()),
                    _ => c.name.clone(),
                },
                value: record.cells.get(c.index).cloned().unwrap_or_default(),
                message: messages.join(" ; "),
                required: c
                    .field
                    .is_some_and(|f| f.presence(settings.profile) == Presence::Required),
                password: c.field == Some(Field::Password),
            }
        })
        .collect();
    Ok(EditPage {
        layout: Layout::of(&state, &auth),
        draft_id: id,
        line,
        cells,
    })
}

pub async fn edit_submit<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path((id, line)): Path<(i64, u64)>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    auth.check_csrf(form.get("csrf").map(String::as_str).unwrap_or(""))?;
    let (draft, mut settings) = load_draft(&state, &auth, id).await?;
    let (parsed, _, _) = read_columns(&draft, &settings)?;
    if !parsed.records.iter().any(|r| r.line == line) {
        return Err(AppError::NotFound);
    }
    let cells: Vec<String> = (0..parsed.column_count)
        .map(|i| form.get(&format!("c{i}")).cloned().unwrap_or_default())
        .collect();
    settings.edits.insert(line, cells);
    save_settings(&state, id, &settings).await?;
    Ok(Redirect::to(&format!("/imports/{id}/verification#ligne-{line}")).into_response())
}

// ---------------------------------------------------------------- step 4

#[derive(Template, WebTemplate)]
#[template(path = "step4.html")]
pub struct Step4Page {
    layout: Layout,
    draft_id: i64,
    establishment: String,
    profile_label: String,
    to_import: usize,
    ignored: usize,
    complet: bool,
    mapped: Vec<(String, String)>,
    ignored_columns: String,
    creates: Vec<String>,
    updates: Vec<String>,
    unchanged: usize,
    merges: Vec<String>,
    deactivations: Vec<String>,
    /// Why the confirmation is asked, and what a wrong number typed was:
    /// shown next to the field.
    threshold_text: String,
    confirmation_error: Option<String>,
    /// Accounts of other establishments attached to the admin's (names only).
    attachments: Vec<String>,
    needs_confirmation: bool,
    /// The plan's fingerprint, sent back with "Démarrer l'importation".
    plan: String,
    error: Option<String>,
    /// (establishment, created, joined, deactivated), shown when the file
    /// touches several establishments.
    by_establishment: Vec<(String, usize, usize, usize)>,
}

/// The conflict code of a line naming an account active in another establishment.
const EXISTING_ELSEWHERE: &str = "existing_elsewhere";

/// Step 4's lists, in the admin's words.
struct PlanLists {
    creates: Vec<String>,
    updates: Vec<String>,
    merges: Vec<String>,
    deactivations: Vec<String>,
    attachments: Vec<String>,
}

/// "Collège Jean Moulin (0750654D)", or the bare UAI of an unknown establishment.
fn named(uai: &Uai, known: &[domain::Establishment]) -> String {
    known
        .iter()
        .find(|e| &e.uai == uai)
        .map_or_else(|| uai.to_string(), ToString::to_string)
}

fn describe_plan(plan: &Plan, known: &[domain::Establishment]) -> PlanLists {
    let creates = plan
        .creates
        .iter()
        .map(|c| {
            format!(
                "{} {} — login {} ({})",
                c.attrs.last_name, c.attrs.first_name, c.login, c.origin
            )
        })
        .collect();
    let attachments = plan
        .updates
        .iter()
        .filter(|u| !u.shared_with.is_empty())
        .map(|u| {
            format!(
                "{} {} : déjà dans {} ; rattachement à {}",
                u.attrs.last_name,
                u.attrs.first_name,
                domain::plan::establishment_list(&u.shared_with),
                u.memberships
                    .iter()
                    .map(|m| named(&m.uai, known))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    let updates = plan
        .updates
        .iter()
        .filter(|u| u.shared_with.is_empty())
        .map(|u| {
            let mut parts: Vec<String> = u
                .changes
                .iter()
                .map(|c| format!("{} : « {} » → « {} »", c.field.name(), c.before, c.after))
                .collect();
            if !u.memberships.is_empty() {
                parts.push(format!(
                    "rattachement à {}",
                    u.memberships
                        .iter()
                        .map(|m| named(&m.uai, known))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if !u.groups.is_empty() {
                parts.push(format!(
                    "groupes {}",
                    u.groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            if u.reactivate {
                parts.push("réactivation du compte".to_string());
            }
            format!(
                "{} {} ({}) : {}",
                u.attrs.last_name,
                u.attrs.first_name,
                u.login.as_ref().map_or("", |l| l.as_str()),
                parts.join(", ")
            )
        })
        .collect();
    let merges = plan
        .merges
        .iter()
        .map(|m| format!("ligne {} ajoutée à la ligne {} (même personne)", m.line, m.into_line))
        .collect();
    let deactivations = plan
        .deactivations
        .iter()
        .map(|d| {
            format!(
                "{} {} — {}{}",
                d.last_name,
                d.first_name,
                d.login,
                if d.whole_account {
                    ""
                } else {
                    " : rattachement seulement, reste actif ailleurs"
                }
            )
        })
        .collect();
    PlanLists {
        creates,
        updates,
        merges,
        deactivations,
        attachments,
    }
}

/// Step 4 for this preview of the draft: the one just made when a start was
/// refused (a large file is not planned twice), else a new one.
async fn step4<D: Backend>(
    state: &AppState<D>,
    auth: &Auth,
    draft: &Draft,
    settings: &DraftSettings,
    preview: Option<ImportOutcome>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let outcome = match preview {
        Some(outcome) => outcome,
        None => dry_run(state, &auth.admin, draft, settings).await?,
    };
    let plan = &outcome.plan;
    if matches!(plan.rejection, Some(Rejection::Conflicts { .. })) {
        return Ok(Redirect::to(&format!("/imports/{}/verification", draft.id)).into_response());
    }
    let known = state.directory.list_establishments().await?;
    let establishment = match &settings.establishment {
        Some(uai) if settings.establishments_from_file => format!("{} et ceux du fichier", named(uai, &known)),
        Some(uai) => named(uai, &known),
        None => "établissements du fichier".to_string(),
    };
    let by_establishment: Vec<(String, usize, usize, usize)> = plan
        .counts_by_establishment()
        .into_iter()
        .map(|c| (named(&c.uai, &known), c.created, c.joined, c.deactivated))
        .collect();
    let (threshold_text, confirmation_error) = match &plan.rejection {
        Some(Rejection::DeletionThreshold(t)) => (
            format!(
                "Ces {} désactivations dépassent le seuil de {} % des {} comptes concernés ({} sans confirmation).",
                t.deletions, t.percent, t.scope, t.allowed
            ),
            t.confirmed.is_some().then(|| domain::plan::threshold_in_words(t)),
        ),
        _ => (
            format!(
                "Ces {} désactivations dépassent le seuil de {DEFAULT_DELETION_THRESHOLD_PERCENT} % des comptes concernés.",
                plan.deactivations.len()
            ),
            None,
        ),
    };
    let needs_confirmation = matches!(plan.rejection, Some(Rejection::DeletionThreshold { .. }))
        || (settings.confirm_deletions.is_some() && !plan.deactivations.is_empty());
    let error = error.or_else(|| match &plan.rejection {
        Some(r @ (Rejection::CompletWithConflicts { .. } | Rejection::CompletWithoutRows)) => {
            Some(r.message_for(Channel::Web))
        }
        _ => None,
    });
    let PlanLists {
        creates,
        updates,
        merges,
        deactivations,
        attachments,
    } = describe_plan(plan, &known);
    let mapping = &outcome.read.mapping;
    Ok(Step4Page {
        layout: Layout::of(state, auth),
        draft_id: draft.id,
        establishment,
        profile_label: settings.profile.label().to_string(),
        to_import: plan.valid_rows(),
        ignored: plan.conflict_lines.len(),
        complet: settings.complet,
        mapped: mapping
            .columns
            .iter()
            .filter_map(|c| {
                c.field
                    .filter(|f| *f != Field::SyncKey)
                    .map(|f| (c.name.clone(), f.name().to_string()))
            })
            .collect(),
        ignored_columns: mapping
            .ignored_columns()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
            .join(", "),
        creates,
        updates,
        unchanged: plan.unchanged.len(),
        merges,
        deactivations,
        threshold_text,
        confirmation_error,
        attachments,
        needs_confirmation,
        plan: plan.fingerprint(),
        error,
        by_establishment,
    }
    .into_response())
}

pub async fn step4_page<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let (draft, settings) = load_draft(&state, &auth, id).await?;
    step4(&state, &auth, &draft, &settings, None, None).await
}

#[derive(Deserialize)]
pub struct StartForm {
    csrf: String,
    confirmation: Option<String>,
    /// The fingerprint of the plan step 4 showed.
    plan: Option<String>,
}

/// Why an import could not be started from step 4, with the preview that
/// showed it (the summary as it is now).
pub enum NotStarted {
    /// The plan is refused (conflicts, Complet threshold…).
    Rejected(Box<ImportOutcome>),
    /// The directory changed since the summary the admin approved.
    PlanChanged(Box<ImportOutcome>),
}

/// Step 4's "Démarrer l'importation", for the pages and the API: a preview
/// (no lock) checks the plan is accepted and is the one the admin saw, then a
/// job runs it; the job re-plans under its locks and refuses to write if the
/// plan changed again in between.
pub async fn start_job<D: Backend>(
    state: &AppState<D>,
    admin: &store::web::Admin,
    draft: &Draft,
    mut settings: DraftSettings,
    seen_plan: Option<String>,
) -> Result<Result<i64, NotStarted>, AppError> {
    let outcome = dry_run(state, admin, draft, &settings).await?;
    if outcome.plan.rejection.is_some() {
        return Ok(Err(NotStarted::Rejected(Box::new(outcome))));
    }
    let current = outcome.plan.fingerprint();
    if seen_plan.as_ref().is_some_and(|seen| *seen != current) {
        return Ok(Err(NotStarted::PlanChanged(Box::new(outcome))));
    }
    settings.expected_plan = Some(current);
    save_settings(state, draft.id, &settings).await?;
    Ok(Ok(state.directory.create_job(draft.id, admin.id, state.now()).await?))
}

pub async fn start<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<StartForm>,
) -> Result<Response, AppError> {
    auth.check_csrf(&form.csrf)?;
    let (draft, mut settings) = load_draft(&state, &auth, id).await?;
    settings.confirm_deletions = match form.confirmation.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(
            s.parse::<usize>()
                .map_err(|_| AppError::BadRequest("tapez le nombre de désactivations en chiffres".to_string()))?,
        ),
        None => None,
    };
    let seen_plan = form.plan.filter(|p| !p.is_empty());
    match start_job(&state, &auth.admin, &draft, settings.clone(), seen_plan).await? {
        Ok(job) => Ok(Redirect::to(&format!("/taches/{job}")).into_response()),
        Err(refusal) => {
            let (outcome, message) = match refusal {
                NotStarted::Rejected(outcome) => {
                    // A threshold refusal is said next to the confirmation field.
                    let message = match &outcome.plan.rejection {
                        Some(Rejection::DeletionThreshold(_)) | None => None,
                        Some(other) => Some(other.message_for(Channel::Web)),
                    };
                    (outcome, message)
                }
                NotStarted::PlanChanged(outcome) => (
                    outcome,
                    Some("L'annuaire a changé depuis ce résumé (un autre import ou une modification de compte) : voici le résumé à jour ; vérifiez-le, puis démarrez de nouveau.".to_string()),
                ),
            };
            save_settings(&state, id, &settings).await?;
            let page = step4(&state, &auth, &draft, &settings, Some(*outcome), message).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// The home page's "Abandonner": the draft's file and edits are wiped at
/// once (as after an import), so it leaves the list of unfinished imports.
pub async fn discard<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    auth.check_csrf(&form.csrf)?;
    let (draft, _) = load_draft(&state, &auth, id).await?;
    state.directory.purge_draft(draft.id, state.now()).await?;
    Ok(Redirect::to("/").into_response())
}

// ---------------------------------------------------------------- step 5

struct OperationView {
    label: String,
    done: bool,
    progress: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "job.html")]
pub struct JobPage {
    layout: Layout,
    status: String,
    status_label: String,
    running: bool,
    error: Option<String>,
    operations: Vec<OperationView>,
    counts: Option<String>,
    /// Accounts the import created: the slips are offered only then.
    created: u64,
    /// Lines skipped for their conflicts, and their file while it is kept.
    skipped: u64,
    /// Whether (and where) the end-of-import mail goes, in the guide's words.
    mail_notice: String,
    skipped_url: Option<String>,
    result_url: Option<String>,
    history_url: Option<String>,
    retention_days: i64,
}

/// A job of this admin, or 404.
async fn own_job<D: Backend>(state: &AppState<D>, auth: &Auth, id: i64) -> Result<store::web::Job, AppError> {
    let job = state.directory.job(id).await?.ok_or(AppError::NotFound)?;
    if job.admin_id != auth.admin.id {
        return Err(AppError::NotFound);
    }
    Ok(job)
}

pub async fn job_page<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<JobPage, AppError> {
    let job = own_job(&state, &auth, id).await?;
    let progress: BTreeMap<String, (usize, usize)> = serde_json::from_str(&job.progress).unwrap_or_default();
    let finished = job.status == JobStatus::Succeeded;
    // The same four operations from the first second to the end: only
    // their state changes (a list that grows under a screen reader is lost).
    let operations: Vec<OperationView> = ["Mots de passe", "Groupes", "Utilisateurs", "Appartenances aux groupes"]
        .iter()
        .map(|label| {
            let (done, total) = progress.get(*label).copied().unwrap_or((0, 0));
            let started = progress.contains_key(*label);
            let (complete, said) = match (started, finished) {
                (true, _) => (done == total || finished, format!("{done} / {total}")),
                // An import that creates no account has no password to hash.
                (false, true) if *label == "Mots de passe" => (true, "aucun à générer".to_string()),
                (false, true) => (true, "0 / 0".to_string()),
                (false, false) => (false, "en attente".to_string()),
            };
            OperationView {
                label: label.to_string(),
                done: complete,
                progress: said,
            }
        })
        .collect();
    let report = job
        .report
        .as_deref()
        .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok());
    let created = report.as_ref().and_then(|r| r["created"].as_u64()).unwrap_or(0);
    let skipped = report.as_ref().and_then(|r| r["skipped"].as_u64()).unwrap_or(0);
    let counts = report.map(|r| {
        format!(
            "{} compte(s) créé(s), {} mis à jour, {} inchangé(s), {} ligne(s) fusionnée(s), {} désactivé(s), {} ligne(s) en conflit ignorée(s).",
            r["created"], r["updated"], r["unchanged"], r["merged"], r["deactivated"], r["skipped"]
        )
    });
    let status_label = job.status.label().to_string();
    let result_available = match job.import_id {
        Some(import_id) if job.status == JobStatus::Succeeded => result_retained(&state, import_id).await?,
        _ => false,
    };
    Ok(JobPage {
        layout: Layout::of(&state, &auth),
        running: job.status.is_running(),
        status: job.status.id().to_string(),
        status_label,
        error: job.error.clone(),
        operations,
        counts,
        created,
        mail_notice: match (&auth.admin.email, state.notifier.enabled()) {
            (_, false) => "Aucun courriel ne sera envoyé : les courriels sont désactivés sur ce serveur ; le suivi des imports garde le compte rendu.".to_string(),
            (Some(address), true) => format!(
                "Un courriel vous sera envoyé à {address} une fois l'import terminé (pensez à regarder dans le courrier indésirable)."
            ),
            (None, true) => "Aucun courriel ne sera envoyé : votre compte n'a pas d'adresse ; le suivi des imports garde le compte rendu.".to_string(),
        },
        skipped_url: job
            .import_id
            .filter(|_| result_available && skipped > 0)
            .map(|i| format!("/suivi/{i}/lignes-ignorees.csv")),
        skipped,
        result_url: result_available.then(|| format!("/taches/{id}/resultat.csv")),
        history_url: job.import_id.map(|i| format!("/suivi/{i}")),
        retention_days: state.config.result_retention_days,
    })
}

pub async fn job_result<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let job = own_job(&state, &auth, id).await?;
    result_download(&state, job.import_id.ok_or(AppError::NotFound)?).await
}

/// Whether an import's result file can still be downloaded.
pub async fn result_retained<D: Backend>(state: &AppState<D>, import_id: i64) -> Result<bool, AppError> {
    let entry = state.directory.import_entry(import_id).await?;
    Ok(entry
        .and_then(|e| e.result_expires_at)
        .is_some_and(|t| t >= state.now()))
}

/// The result file of an import as a download no cache keeps (it holds
/// passwords), while its retention lasts; shared by the job page, the
/// history and the API. Callers check that the admin ran the import.
pub async fn result_download<D: Backend>(state: &AppState<D>, import_id: i64) -> Result<Response, AppError> {
    let bytes = state
        .directory
        .import_result(import_id, state.now())
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(csv_download(format!("resultat-import-{import_id}.csv"), bytes))
}

/// The lines an import skipped, as a CSV to fix and import again (same rules
/// as the result file: its owner, while it is retained).
pub async fn skipped_download<D: Backend>(state: &AppState<D>, import_id: i64) -> Result<Response, AppError> {
    let bytes = state
        .directory
        .import_skipped_lines(import_id, state.now())
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(csv_download(format!("lignes-ignorees-import-{import_id}.csv"), bytes))
}

/// A CSV download no cache keeps (it names people, or holds passwords).
pub(crate) fn csv_download(file_name: String, bytes: Vec<u8>) -> Response {
    (
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
            (CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
        .into_response()
}

/// Status of a finished import job, as stored.
pub fn job_status(status: Status) -> JobStatus {
    match status {
        Status::Imported => JobStatus::Succeeded,
        Status::Rejected => JobStatus::Rejected,
        // A job never runs a dry run: if one did, nothing was imported.
        Status::DryRun => JobStatus::Failed,
    }
}
