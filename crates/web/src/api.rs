//! The JSON API: the wizard's steps for automation, over the same draft and
//! job functions as the pages. Authenticated by `Authorization: Bearer <token>`
//! (`annuaire admin token LOGIN`), or by the session cookie together with an
//! `X-CSRF-Token` header for requests that change something. The OpenAPI
//! document, served at `/api/openapi.json`, is derived from the handlers'
//! `#[utoipa::path]` and the types below ([`crate::openapi`]): the doc comments
//! of the fields the API answers with are its descriptions, in French.

use crate::auth::{hash_token, Auth};
use crate::error::AppError;
use crate::wizard::{dry_run, load_draft_for, start_job, DraftSettings, NotStarted};
use crate::{AppState, Backend};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::decode::EncodingChoice;
use domain::field::Field;
use domain::mapping::{ColumnRef, Override};
use domain::pipeline::{ConflictDetail, Report};
use domain::{Profile, Uai};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use store::history::HistoryFilter;
use store::web::Admin;
use utoipa::{IntoParams, ToSchema};

/// The administrator behind an API call.
pub struct ApiAdmin(pub Admin);

impl ApiAdmin {
    /// The admin of this call, as the use cases take them.
    pub fn actor(&self) -> app::Actor {
        app::Actor::new(self.0.clone(), domain::vocabulary::Channel::Api)
    }
}

impl<D: Backend> FromRequestParts<AppState<D>> for ApiAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<D>) -> Result<Self, Self::Rejection> {
        if let Some(token) = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            return match state.directory.admin_by_api_token(&hash_token(token.trim())).await {
                Ok(Some(admin)) => Ok(ApiAdmin(admin)),
                Ok(None) => Err(ApiError::status(StatusCode::UNAUTHORIZED, "jeton d'API inconnu")),
                Err(e) => Err(ApiError::from(AppError::from(e))),
            };
        }
        let auth = Auth::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::status(StatusCode::UNAUTHORIZED, "authentification requise (Bearer ou session)"))?;
        if parts.method != Method::GET {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            auth.check_csrf(sent)?;
        }
        Ok(ApiAdmin(auth.admin))
    }
}

/// Errors as `{"error": "..."}` with the right status.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn status(status: StatusCode, message: &str) -> ApiError {
        ApiError {
            status,
            message: message.to_string(),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let status = e.status();
        ApiError {
            status,
            message: e.to_string(),
        }
    }
}

/// Une erreur : ce qui ne va pas et comment y remédier.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.message })).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NewDraft {
    /// Le type d'utilisateurs : enseignant, administratif, eleve ou parent.
    #[param(pattern = "^(enseignant|administratif|eleve|parent)$")]
    profile: String,
    /// L'UAI de l'établissement.
    establishment: String,
    #[serde(default)]
    file_name: Option<String>,
    /// « ; » (par défaut), « , », « tab » ou « | ».
    #[serde(default)]
    separator: Option<String>,
    /// auto (par défaut), utf-8, windows-1252, iso-8859-1 ou macintosh.
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    no_header: bool,
    #[serde(default)]
    establishments_from_file: bool,
    #[serde(default)]
    complet: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ColumnInfo {
    /// Numéro de la colonne, à partir de 1.
    index: usize,
    name: String,
    /// Le champ de la colonne (null : colonne ignorée).
    field: Option<&'static str>,
}

/// Les correspondances d'un brouillon (étape 2).
#[derive(Serialize, ToSchema)]
#[schema(as = Mapping)]
pub struct MappingInfo {
    draft: i64,
    columns: Vec<ColumnInfo>,
    /// Les champs obligatoires qu'aucune colonne ne donne.
    missing_required: Vec<&'static str>,
}

async fn mapping_info<D: Backend>(state: &AppState<D>, admin: &Admin, id: i64) -> ApiResult<MappingInfo> {
    let (draft, settings) = load_draft_for(state, admin, id).await?;
    let (parsed, _, _) = crate::wizard::read_columns(&draft, &settings)?;
    let mapping = crate::wizard::mapping_of(&parsed, &settings);
    Ok(MappingInfo {
        draft: id,
        columns: mapping
            .columns
            .iter()
            .map(|c| ColumnInfo {
                index: c.index + 1,
                name: c.name.clone(),
                field: c.field.map(Field::id),
            })
            .collect(),
        missing_required: mapping.missing_required().into_iter().map(Field::id).collect(),
    })
}

/// Le fichier CSV, tel quel.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct CsvFile(#[allow(dead_code)] Vec<u8>);

/// POST /api/v1/drafts?profile=…&establishment=…  body: the CSV file.
#[utoipa::path(post, path = "/api/v1/drafts", summary = "Étape 1 : déposer un fichier", params(NewDraft),
    request_body(content = inline(CsvFile), content_type = "text/csv", description = "le fichier CSV"),
    responses((status = 201, description = "correspondances", body = MappingInfo),
        (status = 400, description = "erreur", body = ErrorBody), (status = 401, description = "erreur", body = ErrorBody),
        (status = 403, description = "erreur", body = ErrorBody)))]
pub async fn create_draft<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Query(q): Query<NewDraft>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    let bad = |m: String| ApiError::status(StatusCode::BAD_REQUEST, &m);
    let too_large = || ApiError::from(AppError::TooLarge(state.config.max_upload));
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        status => ApiError::status(status, &format!("corps illisible : {}", e.body_text())),
    })?;
    if body.is_empty() {
        return Err(bad(
            "corps vide : envoyez le fichier CSV dans le corps de la requête".into()
        ));
    }
    if body.len() > state.config.max_upload {
        return Err(too_large());
    }
    let profile: Profile = q
        .profile
        .parse()
        .map_err(|e: domain::profile::UnknownProfile| bad(e.to_string()))?;
    if !profile.is_importable() {
        return Err(bad(format!("le profil {profile} ne s'importe pas par fichier")));
    }
    let uai = Uai::parse(&q.establishment).map_err(|e| bad(e.to_string()))?;
    if !admin.may_act_on(&uai) {
        return Err(ApiError::status(
            StatusCode::FORBIDDEN,
            "vous n'administrez pas cet établissement",
        ));
    }
    let separator = match q.separator.as_deref() {
        None | Some(";") => ';',
        Some("tab") | Some("\t") => '\t',
        Some(",") => ',',
        Some("|") => '|',
        Some(other) => return Err(bad(format!("séparateur « {other} » non pris en charge"))),
    };
    let encoding = match q.encoding.as_deref() {
        None => EncodingChoice::Auto,
        Some(e) => e.parse().map_err(bad)?,
    };
    let settings = DraftSettings {
        profile,
        establishment: Some(uai),
        establishments_from_file: q.establishments_from_file,
        separator,
        encoding,
        has_header: !q.no_header,
        complet: q.complet,
        overrides: Vec::new(),
        edits: BTreeMap::new(),
        skip_conflicts: false,
        attach_existing: false,
        confirm_deletions: None,
        via_api: true,
        expected_plan: None,
    };
    // An unreadable file is said now and never stored.
    crate::wizard::read_bytes(&body, &settings)
        .map_err(|e| ApiError::status(StatusCode::UNPROCESSABLE_ENTITY, &format!("{e}")))?;
    let json = serde_json::to_string(&settings).map_err(|e| bad(e.to_string()))?;
    let name = q.file_name.unwrap_or_else(|| "api.csv".to_string());
    let id = state
        .directory
        .create_draft(admin.id, &name, &body, &json, state.now())
        .await
        .map_err(AppError::from)?;
    let info = mapping_info(&state, &admin, id).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// PUT /api/v1/drafts/{id}/mapping  body: {"columns": {"Nom de famille": "nom", "5": null}}
#[derive(Deserialize, ToSchema)]
pub struct MappingBody {
    /// Par colonne (son nom d'en-tête ou son numéro), le champ, ou null pour l'ignorer.
    columns: BTreeMap<String, Option<String>>,
}

#[utoipa::path(put, path = "/api/v1/drafts/{id}/mapping", summary = "Étape 2 : correspondances", params(PathId),
    request_body = MappingBody,
    responses((status = 200, description = "correspondances", body = MappingInfo),
        (status = 404, description = "erreur", body = ErrorBody), (status = 422, description = "erreur", body = ErrorBody)))]
pub async fn set_mapping<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Path(id): Path<i64>,
    Json(body): Json<MappingBody>,
) -> ApiResult<Json<MappingInfo>> {
    let (draft, mut settings) = load_draft_for(&state, &admin, id).await?;
    let mut overrides = Vec::new();
    for (column, field) in body.columns {
        let field = match field.as_deref() {
            None | Some("ignorer") => None,
            Some(f) => Some(
                f.parse::<Field>()
                    .map_err(|e| ApiError::status(StatusCode::BAD_REQUEST, &e.to_string()))?,
            ),
        };
        let column = match column.parse::<usize>() {
            Ok(n) if n >= 1 => ColumnRef::Number(n),
            _ => ColumnRef::Name(column),
        };
        overrides.push(Override { column, field });
    }
    let (parsed, _, _) = crate::wizard::read_columns(&draft, &settings)?;
    let mut mapping = domain::mapping::auto_map(parsed.header.as_deref(), parsed.column_count, settings.profile);
    mapping
        .apply_overrides(&overrides)
        .map_err(|e| ApiError::status(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()))?;
    settings.overrides = overrides;
    crate::wizard::save_settings(&state, id, &settings).await?;
    let _ = draft;
    Ok(Json(mapping_info(&state, &admin, id).await?))
}

/// The draft, job or import the path names (`{id}`), for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PathId {
    #[allow(dead_code)]
    id: i64,
}

/// GET /api/v1/drafts/{id}/check: step 3.
#[utoipa::path(get, path = "/api/v1/drafts/{id}/check", summary = "Étape 3 : vérification", params(PathId),
    responses((status = 200, description = "compte rendu", body = Report),
        (status = 404, description = "erreur", body = ErrorBody), (status = 422, description = "erreur", body = ErrorBody)))]
pub async fn check<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Path(id): Path<i64>,
) -> ApiResult<Json<Report>> {
    let (draft, settings) = load_draft_for(&state, &admin, id).await?;
    let outcome = dry_run(&state, &admin, &draft, &settings).await?;
    Ok(Json(outcome.report))
}

#[derive(Deserialize, ToSchema)]
pub struct RowBody {
    /// Les cellules de la ligne corrigée, dans l'ordre des colonnes du fichier.
    cells: Vec<String>,
}

/// Les conflits qui restent sur une ligne corrigée.
#[derive(Serialize, ToSchema)]
pub struct RowCheck {
    line: u64,
    valid: bool,
    conflicts: Vec<ConflictDetail>,
}

/// PUT /api/v1/drafts/{id}/rows/{line}: "Éditer", then the line's conflicts.
#[utoipa::path(put, path = "/api/v1/drafts/{id}/rows/{line}", summary = "Étape 3 : corriger une ligne",
    params(PathId, ("line" = u64, Path, description = "numéro de la ligne dans le fichier")),
    request_body = RowBody,
    responses((status = 200, description = "conflits restants de la ligne", body = RowCheck),
        (status = 404, description = "erreur", body = ErrorBody)))]
pub async fn edit_row<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Path((id, line)): Path<(i64, u64)>,
    Json(body): Json<RowBody>,
) -> ApiResult<Json<RowCheck>> {
    let (draft, mut settings) = load_draft_for(&state, &admin, id).await?;
    let (parsed, _, _) = crate::wizard::read_columns(&draft, &settings)?;
    if !parsed.records.iter().any(|r| r.line == line) {
        return Err(AppError::NotFound.into());
    }
    settings.edits.insert(line, body.cells);
    crate::wizard::save_settings(&state, id, &settings).await?;
    let outcome = dry_run(&state, &admin, &draft, &settings).await?;
    let conflicts: Vec<ConflictDetail> = outcome
        .report
        .conflict_details
        .into_iter()
        .filter(|c| c.line == line)
        .collect();
    Ok(Json(RowCheck {
        line,
        valid: conflicts.is_empty(),
        conflicts,
    }))
}

/// Le plan de l'étape 4 : le compte rendu, les opérations, et son empreinte.
#[derive(Serialize, ToSchema)]
pub struct PlanAnswer<'a> {
    report: &'a Report,
    /// L'empreinte du plan, à renvoyer au démarrage (champ « plan »).
    plan: String,
    #[schema(value_type = Vec<Object>)]
    creates: &'a [domain::plan::Create],
    #[schema(value_type = Vec<Object>)]
    updates: &'a [domain::plan::Update],
    #[schema(value_type = Vec<Object>)]
    unchanged: &'a [domain::plan::Unchanged],
    #[schema(value_type = Vec<Object>)]
    merges: &'a [domain::plan::Merge],
    #[schema(value_type = Vec<Object>)]
    deactivations: &'a [domain::plan::Deactivation],
    #[schema(value_type = Vec<Object>)]
    new_groups: &'a [domain::person::GroupRef],
}

/// GET /api/v1/drafts/{id}/plan: step 4.
#[utoipa::path(get, path = "/api/v1/drafts/{id}/plan", summary = "Étape 4 : le plan", params(PathId, StartOptions),
    responses((status = 200, description = "compte rendu, listes, et « plan » : l'empreinte du plan à renvoyer au démarrage", body = PlanAnswer),
        (status = 404, description = "erreur", body = ErrorBody)))]
pub async fn plan<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Path(id): Path<i64>,
    Query(q): Query<StartBody>,
) -> ApiResult<Response> {
    let (draft, mut settings) = load_draft_for(&state, &admin, id).await?;
    settings.skip_conflicts = q.skip_conflicts;
    settings.attach_existing = q.attach_existing;
    settings.confirm_deletions = q.confirm_deletions;
    let outcome = dry_run(&state, &admin, &draft, &settings).await?;
    let p = &outcome.plan;
    Ok(Json(PlanAnswer {
        report: &outcome.report,
        plan: p.fingerprint(),
        creates: &p.creates,
        updates: &p.updates,
        unchanged: &p.unchanged,
        merges: &p.merges,
        deactivations: &p.deactivations,
        new_groups: &p.new_groups,
    })
    .into_response())
}

/// Les choix de l'étape 4, en corps du démarrage.
#[derive(Deserialize, Default, ToSchema)]
#[schema(as = Start)]
pub struct StartBody {
    #[serde(default)]
    skip_conflicts: bool,
    /// Rattacher les comptes existant dans un autre établissement (sinon conflit « existing_elsewhere »).
    #[serde(default)]
    attach_existing: bool,
    #[serde(default)]
    confirm_deletions: Option<usize>,
    /// Le champ « plan » lu à l'étape 4 : refus (409) si l'annuaire a changé depuis.
    #[serde(default)]
    plan: Option<String>,
}

/// The same choices as query parameters of the plan.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StartOptions {
    skip_conflicts: Option<bool>,
    /// Rattacher les comptes existant dans un autre établissement.
    attach_existing: Option<bool>,
    /// Le nombre de désactivations confirmé (import Complet).
    confirm_deletions: Option<usize>,
}

/// La tâche d'import créée.
#[derive(Serialize, ToSchema)]
pub struct JobCreated {
    job: i64,
    /// Où suivre la tâche.
    url: String,
}

/// POST /api/v1/drafts/{id}/start: step 4's "Démarrer l'importation".
#[utoipa::path(post, path = "/api/v1/drafts/{id}/start", summary = "Étape 4 : démarrer l'importation", params(PathId),
    request_body(content = Option<StartBody>),
    responses((status = 202, description = "tâche créée", body = JobCreated),
        (status = 409, description = "erreur", body = ErrorBody), (status = 422, description = "compte rendu du refus", body = Report),
        (status = 404, description = "erreur", body = ErrorBody)))]
pub async fn start<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Path(id): Path<i64>,
    body: Option<Json<StartBody>>,
) -> ApiResult<Response> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let (draft, mut settings) = load_draft_for(&state, &admin, id).await?;
    settings.skip_conflicts = body.skip_conflicts;
    settings.attach_existing = body.attach_existing;
    settings.confirm_deletions = body.confirm_deletions;
    let job = match start_job(&state, &admin, &draft, settings, body.plan).await? {
        Ok(job) => job,
        Err(NotStarted::Rejected(outcome)) => {
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(outcome.report)).into_response())
        }
        Err(NotStarted::PlanChanged(_)) => {
            let error = format!("l'annuaire a changé depuis le plan lu (champ « plan ») : relisez GET /api/v1/drafts/{id}/plan, puis démarrez avec le nouveau");
            return Ok((StatusCode::CONFLICT, Json(ErrorBody { error })).into_response());
        }
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(JobCreated {
            job,
            url: format!("/api/v1/jobs/{job}"),
        }),
    )
        .into_response())
}

async fn own_job<D: Backend>(state: &AppState<D>, admin: &Admin, id: i64) -> ApiResult<store::web::Job> {
    let job = state
        .directory
        .job(id)
        .await
        .map_err(AppError::from)?
        .ok_or(AppError::NotFound)?;
    if job.admin_id != admin.id {
        return Err(AppError::NotFound.into());
    }
    Ok(job)
}

/// L'état d'une tâche d'import (étape 5).
#[derive(Serialize, ToSchema)]
pub struct JobState {
    id: i64,
    /// queued, running, succeeded ou failed.
    #[schema(value_type = String)]
    status: domain::vocabulary::JobStatus,
    /// L'avancement par opération.
    #[schema(value_type = Object)]
    progress: Value,
    /// Le compte rendu, une fois la tâche finie.
    #[schema(value_type = Option<Report>)]
    report: Value,
    error: Option<String>,
    import_id: Option<i64>,
    /// Où télécharger le fichier résultat, tant qu'il est conservé.
    result: Option<String>,
}

/// GET /api/v1/jobs/{id}: step 5.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", summary = "Étape 5 : suivi", params(PathId),
    responses((status = 200, description = "état de la tâche", body = JobState), (status = 404, description = "erreur", body = ErrorBody)))]
pub async fn job<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Path(id): Path<i64>,
) -> ApiResult<Json<JobState>> {
    let job = own_job(&state, &admin, id).await?;
    let progress: Value = serde_json::from_str(&job.progress).unwrap_or(Value::Null);
    let report: Value = job
        .report
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or(Value::Null);
    let retained = match job.import_id {
        Some(import_id) if job.status == domain::vocabulary::JobStatus::Succeeded => {
            crate::wizard::result_retained(&state, import_id).await?
        }
        _ => false,
    };
    let result = retained.then(|| format!("/api/v1/jobs/{id}/result"));
    Ok(Json(JobState {
        id: job.id,
        status: job.status,
        progress,
        report,
        error: job.error,
        import_id: job.import_id,
        result,
    }))
}

/// GET /api/v1/jobs/{id}/result: the result file, for the admin who ran it.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/result", summary = "Étape 5 : fichier résultat", params(PathId),
    responses((status = 200, description = "CSV", content_type = "text/csv"), (status = 404, description = "erreur", body = ErrorBody)))]
pub async fn job_result<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let job = own_job(&state, &admin, id).await?;
    Ok(crate::wizard::result_download(&state, job.import_id.ok_or(AppError::NotFound)?).await?)
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportsQuery {
    /// UAI
    establishment: Option<String>,
    /// Date incluse : 2026-11-25 (depuis minuit, heure de Paris) ou un instant RFC 3339.
    since: Option<String>,
    /// Date exclue : 2026-11-26 (minuit, heure de Paris) ou un instant RFC 3339.
    before: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

fn instant(raw: &Option<String>, name: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, AppError> {
    let Some(raw) = raw.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.to_utc()));
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(|d| Some(domain::time::start_of_day(d)))
        .map_err(|_| AppError::BadRequest(format!("{name} « {raw} » : date attendue (2026-11-25 ou RFC 3339)")))
}

/// Far beyond any history, low enough for every database's OFFSET.
const MAX_OFFSET: i64 = 1_000_000_000;

/// Les imports du suivi.
#[derive(Serialize, ToSchema)]
pub struct ImportList {
    #[schema(value_type = Vec<Object>)]
    imports: Vec<store::history::ImportEntry>,
}

/// GET /api/v1/imports: the history, most recent first.
#[utoipa::path(get, path = "/api/v1/imports", summary = "Suivi des imports (le plus récent d'abord)", params(ImportsQuery),
    responses((status = 200, description = "liste des imports", body = ImportList), (status = 400, description = "erreur", body = ErrorBody)))]
pub async fn imports<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Query(q): Query<ImportsQuery>,
) -> ApiResult<Json<ImportList>> {
    let establishment = q
        .establishment
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(Uai::parse)
        .transpose()
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let filter = HistoryFilter {
        viewer: admin.history_viewer(),
        establishment,
        since: instant(&q.since, "since")?,
        before: instant(&q.before, "before")?,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
        offset: q.offset.unwrap_or(0).clamp(0, MAX_OFFSET),
    };
    let entries = state.directory.list_imports(&filter).await.map_err(AppError::from)?;
    Ok(Json(ImportList { imports: entries }))
}

/// GET /api/v1/imports/{id}: one import of the history.
#[utoipa::path(get, path = "/api/v1/imports/{id}", summary = "Un import du suivi", params(PathId),
    responses((status = 200, description = "import", body = Object), (status = 404, description = "erreur", body = ErrorBody)))]
pub async fn import<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Path(id): Path<i64>,
) -> ApiResult<Json<store::history::ImportEntry>> {
    if !state
        .directory
        .may_view_import(id, &admin.history_viewer())
        .await
        .map_err(AppError::from)?
    {
        return Err(AppError::NotFound.into());
    }
    let entry = state
        .directory
        .import_entry(id)
        .await
        .map_err(AppError::from)?
        .ok_or(AppError::NotFound)?;
    Ok(Json(entry))
}

/// Les paires de doublons probables, meilleur score d'abord.
#[derive(Serialize, ToSchema)]
pub struct DuplicateList {
    /// Chaque paire avec son score et ses indices.
    #[schema(value_type = Vec<Object>)]
    pairs: Vec<domain::duplicates::DuplicatePair>,
}

/// GET /api/v1/duplicates: probable duplicates in the admin's establishments, best score first.
#[utoipa::path(get, path = "/api/v1/duplicates", summary = "Doublons probables (CSV / AAF) des établissements de l'administrateur",
    responses((status = 200, description = "paires avec score et indices", body = DuplicateList)))]
pub async fn duplicates<D: Backend>(
    State(state): State<AppState<D>>,
    admin: ApiAdmin,
) -> ApiResult<Json<DuplicateList>> {
    let pairs = app::duplicates::list(state.directory.as_ref(), &admin.actor(), None)
        .await
        .map_err(AppError::from)?;
    Ok(Json(DuplicateList { pairs }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LvsQuery {
    /// L'UAI de l'établissement.
    establishment: String,
    /// json (par défaut) ou csv.
    #[param(pattern = "^(json|csv)$")]
    #[serde(default)]
    format: Option<String>,
}

/// GET /api/v1/lvs?establishment=…: the LVS export (guide §6).
#[utoipa::path(get, path = "/api/v1/lvs", summary = "Export pour La Vie Scolaire : enseignants et personnels avec leur profil LVS (jamais les TOS)",
    params(LvsQuery),
    responses((status = 200, description = "les personnes (JSON), ou le fichier CSV avec format=csv", body = Vec<domain::lvs::LvsRow>),
        (status = 400, description = "erreur", body = ErrorBody), (status = 404, description = "erreur", body = ErrorBody)))]
pub async fn lvs<D: Backend>(
    State(state): State<AppState<D>>,
    admin: ApiAdmin,
    Query(q): Query<LvsQuery>,
) -> ApiResult<Response> {
    let uai = Uai::parse(&q.establishment).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let export = app::lvs::export(state.directory.as_ref(), &admin.actor(), &uai)
        .await
        .map_err(AppError::from)?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(export.rows).into_response()),
        Some("csv") => Ok(crate::wizard::csv_download(
            format!("lvs-{}.csv", uai.as_str()),
            domain::lvs::csv(&export.rows),
        )),
        Some(other) => Err(AppError::BadRequest(format!("format « {other} » inconnu : json ou csv")).into()),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct ReconcileBody {
    csv_key: String,
    aaf_key: String,
}

/// POST /api/v1/reconcile: the guide's three steps in one audited action.
#[utoipa::path(post, path = "/api/v1/reconcile", summary = "Réconcilier un compte CSV avec un compte AAF (guide §7, en une action)",
    request_body = ReconcileBody,
    responses((status = 200, description = "compte gardé (login, nouvelle clé) et compte AAF supprimé", body = Object),
        (status = 404, description = "erreur", body = ErrorBody), (status = 422, description = "erreur", body = ErrorBody)))]
pub async fn reconcile<D: Backend>(
    State(state): State<AppState<D>>,
    admin: ApiAdmin,
    Json(body): Json<ReconcileBody>,
) -> ApiResult<Json<store::admin::Reconciliation>> {
    let done = app::duplicates::reconcile(
        state.directory.as_ref(),
        &admin.actor(),
        &body.csv_key,
        &body.aaf_key,
        state.clock.now(),
    )
    .await
    .map_err(AppError::from)?;
    Ok(Json(done))
}
