//! The JSON API: the wizard's steps for automation, over the same draft and
//! job functions as the pages. Authenticated by `Authorization: Bearer <token>`
//! (`annuaire admin token LOGIN`), or by the session cookie together with an
//! `X-CSRF-Token` header for requests that change something. The OpenAPI
//! document is served at `/api/openapi.json`.

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
use domain::pipeline::Report;
use domain::{Profile, Uai};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use store::history::HistoryFilter;
use store::web::Admin;

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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

#[derive(Deserialize)]
pub struct NewDraft {
    profile: String,
    establishment: String,
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default)]
    separator: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    no_header: bool,
    #[serde(default)]
    establishments_from_file: bool,
    #[serde(default)]
    complet: bool,
}

#[derive(Serialize)]
pub struct ColumnInfo {
    index: usize,
    name: String,
    field: Option<&'static str>,
}

#[derive(Serialize)]
pub struct MappingInfo {
    draft: i64,
    columns: Vec<ColumnInfo>,
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

/// POST /api/v1/drafts?profile=…&establishment=…  body: the CSV file.
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
#[derive(Deserialize)]
pub struct MappingBody {
    columns: BTreeMap<String, Option<String>>,
}

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

fn report_json(report: &Report) -> Value {
    serde_json::to_value(report).unwrap_or(Value::Null)
}

/// GET /api/v1/drafts/{id}/check: step 3.
pub async fn check<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    let (draft, settings) = load_draft_for(&state, &admin, id).await?;
    let outcome = dry_run(&state, &admin, &draft, &settings).await?;
    Ok(Json(report_json(&outcome.report)))
}

#[derive(Deserialize)]
pub struct RowBody {
    cells: Vec<String>,
}

/// PUT /api/v1/drafts/{id}/rows/{line}: "Éditer", then the line's conflicts.
pub async fn edit_row<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Path((id, line)): Path<(i64, u64)>,
    Json(body): Json<RowBody>,
) -> ApiResult<Json<Value>> {
    let (draft, mut settings) = load_draft_for(&state, &admin, id).await?;
    let (parsed, _, _) = crate::wizard::read_columns(&draft, &settings)?;
    if !parsed.records.iter().any(|r| r.line == line) {
        return Err(AppError::NotFound.into());
    }
    settings.edits.insert(line, body.cells);
    crate::wizard::save_settings(&state, id, &settings).await?;
    let outcome = dry_run(&state, &admin, &draft, &settings).await?;
    let conflicts: Vec<_> = outcome
        .report
        .conflict_details
        .iter()
        .filter(|c| c.line == line)
        .collect();
    Ok(Json(
        json!({ "line": line, "valid": conflicts.is_empty(), "conflicts": conflicts }),
    ))
}

/// GET /api/v1/drafts/{id}/plan: step 4.
pub async fn plan<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Path(id): Path<i64>,
    Query(q): Query<StartBody>,
) -> ApiResult<Json<Value>> {
    let (draft, mut settings) = load_draft_for(&state, &admin, id).await?;
    settings.skip_conflicts = q.skip_conflicts;
    settings.attach_existing = q.attach_existing;
    settings.confirm_deletions = q.confirm_deletions;
    let outcome = dry_run(&state, &admin, &draft, &settings).await?;
    let p = &outcome.plan;
    Ok(Json(json!({
        "report": report_json(&outcome.report),
        "plan": p.fingerprint(),
        "creates": p.creates,
        "updates": p.updates,
        "unchanged": p.unchanged,
        "merges": p.merges,
        "deactivations": p.deactivations,
        "new_groups": p.new_groups,
    })))
}

#[derive(Deserialize, Default)]
pub struct StartBody {
    #[serde(default)]
    skip_conflicts: bool,
    /// Attach the accounts active in other establishments that the file names
    /// (conflict `existing_elsewhere` otherwise).
    #[serde(default)]
    attach_existing: bool,
    #[serde(default)]
    confirm_deletions: Option<usize>,
    /// The `plan` fingerprint read from the plan endpoint: the start is
    /// refused (409) if the plan is no longer that one.
    #[serde(default)]
    plan: Option<String>,
}

/// POST /api/v1/drafts/{id}/start: step 4's "Démarrer l'importation".
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
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(report_json(&outcome.report))).into_response())
        }
        Err(NotStarted::PlanChanged(_)) => {
            let error = format!("l'annuaire a changé depuis le plan lu (champ « plan ») : relisez GET /api/v1/drafts/{id}/plan, puis démarrez avec le nouveau");
            return Ok((StatusCode::CONFLICT, Json(json!({ "error": error }))).into_response());
        }
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "job": job, "url": format!("/api/v1/jobs/{job}") })),
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

/// GET /api/v1/jobs/{id}: step 5.
pub async fn job<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(json!({
        "id": job.id, "status": job.status, "progress": progress, "report": report,
        "error": job.error, "import_id": job.import_id, "result": result,
    })))
}

/// GET /api/v1/jobs/{id}/result: the result file, for the admin who ran it.
pub async fn job_result<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let job = own_job(&state, &admin, id).await?;
    Ok(crate::wizard::result_download(&state, job.import_id.ok_or(AppError::NotFound)?).await?)
}

#[derive(Deserialize, Default)]
pub struct ImportsQuery {
    establishment: Option<String>,
    /// RFC 3339 or yyyy-mm-dd, inclusive.
    since: Option<String>,
    /// RFC 3339 or yyyy-mm-dd, exclusive.
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

/// GET /api/v1/imports: the history, most recent first.
pub async fn imports<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Query(q): Query<ImportsQuery>,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(json!({ "imports": entries })))
}

/// GET /api/v1/imports/{id}: one import of the history.
pub async fn import<D: Backend>(
    State(state): State<AppState<D>>,
    ApiAdmin(admin): ApiAdmin,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(json!(entry)))
}

/// GET /api/v1/duplicates: probable duplicates in the admin's establishments, best score first.
pub async fn duplicates<D: Backend>(State(state): State<AppState<D>>, admin: ApiAdmin) -> ApiResult<Json<Value>> {
    let pairs = app::duplicates::list(state.directory.as_ref(), &admin.actor(), None)
        .await
        .map_err(AppError::from)?;
    Ok(Json(json!({ "pairs": pairs })))
}

#[derive(Deserialize)]
pub struct ReconcileBody {
    csv_key: String,
    aaf_key: String,
}

/// POST /api/v1/reconcile: the guide's three steps in one audited action.
pub async fn reconcile<D: Backend>(
    State(state): State<AppState<D>>,
    admin: ApiAdmin,
    Json(body): Json<ReconcileBody>,
) -> ApiResult<Json<Value>> {
    let done = app::duplicates::reconcile(
        state.directory.as_ref(),
        &admin.actor(),
        &body.csv_key,
        &body.aaf_key,
        state.clock.now(),
    )
    .await
    .map_err(AppError::from)?;
    Ok(Json(json!(done)))
}

/// The OpenAPI 3.1 description of the routes above.
pub async fn openapi() -> Json<Value> {
    Json(openapi_document())
}

pub fn openapi_document() -> Value {
    let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}});
    let error = json!({"description": "erreur", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let report = json!({"description": "compte rendu", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}}});
    let mapping = json!({"description": "correspondances", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Mapping"}}}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "annuaire", "version": env!("CARGO_PKG_VERSION"), "description": "Import CSV d'utilisateurs : les cinq étapes de l'assistant pour l'automatisation."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}, "session": {"type": "apiKey", "in": "cookie", "name": "annuaire_session"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "Mapping": {"type": "object", "properties": {
                    "draft": {"type": "integer"},
                    "columns": {"type": "array", "items": {"type": "object", "properties": {"index": {"type": "integer"}, "name": {"type": "string"}, "field": {"type": ["string", "null"]}}}},
                    "missing_required": {"type": "array", "items": {"type": "string"}}}},
                "Report": {"type": "object", "required": ["status", "rows", "valid", "conflicts", "created", "updated", "unchanged", "merged", "deactivated", "skipped", "conflict_details"], "properties": {
                    "status": {"type": "string", "enum": ["imported", "dry-run", "rejected"]},
                    "rows": {"type": "integer"}, "valid": {"type": "integer"}, "conflicts": {"type": "integer"},
                    "created": {"type": "integer"}, "updated": {"type": "integer"}, "unchanged": {"type": "integer"},
                    "attached": {"type": "integer", "description": "parmi les mis à jour : comptes d'autres établissements rattachés (absent si 0)"},
                    "merged": {"type": "integer"}, "deactivated": {"type": "integer"}, "skipped": {"type": "integer"},
                    "rejection": {"type": "string"},
                    "conflict_details": {"type": "array", "items": {"type": "object", "properties": {
                        "line": {"type": "integer"}, "column": {"type": ["string", "null"]}, "field": {"type": ["string", "null"]},
                        "code": {"type": "string"}, "message": {"type": "string"}}}}}},
                "Start": {"type": "object", "properties": {"skip_conflicts": {"type": "boolean"}, "confirm_deletions": {"type": ["integer", "null"]},
                    "attach_existing": {"type": "boolean", "description": "rattacher les comptes existant dans un autre établissement (sinon conflit « existing_elsewhere »)"},
                    "plan": {"type": ["string", "null"], "description": "le champ « plan » lu à l'étape 4 : refus (409) si l'annuaire a changé depuis"}}}
            }
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/v1/drafts": {"post": {"summary": "Étape 1 : déposer un fichier", "parameters": [
                {"name": "profile", "in": "query", "required": true, "schema": {"type": "string", "enum": ["enseignant", "administratif", "eleve", "parent"]}},
                {"name": "establishment", "in": "query", "required": true, "schema": {"type": "string"}},
                {"name": "file_name", "in": "query", "schema": {"type": "string"}},
                {"name": "separator", "in": "query", "schema": {"type": "string", "enum": [";", ",", "tab", "|"]}},
                {"name": "encoding", "in": "query", "schema": {"type": "string", "enum": ["auto", "utf-8", "windows-1252", "iso-8859-1", "macintosh"]}},
                {"name": "no_header", "in": "query", "schema": {"type": "boolean"}},
                {"name": "establishments_from_file", "in": "query", "schema": {"type": "boolean"}},
                {"name": "complet", "in": "query", "schema": {"type": "boolean"}}],
                "requestBody": {"required": true, "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": {"201": mapping, "400": error, "401": error, "403": error}}},
            "/api/v1/drafts/{id}/mapping": {"put": {"summary": "Étape 2 : correspondances", "parameters": [id],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"columns": {"type": "object", "additionalProperties": {"type": ["string", "null"]}}}}}}},
                "responses": {"200": mapping, "404": error, "422": error}}},
            "/api/v1/drafts/{id}/check": {"get": {"summary": "Étape 3 : vérification", "parameters": [id], "responses": {"200": report, "404": error, "422": error}}},
            "/api/v1/drafts/{id}/rows/{line}": {"put": {"summary": "Étape 3 : corriger une ligne", "parameters": [id, {"name": "line", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"cells": {"type": "array", "items": {"type": "string"}}}}}}},
                "responses": {"200": {"description": "conflits restants de la ligne"}, "404": error}}},
            "/api/v1/drafts/{id}/plan": {"get": {"summary": "Étape 4 : le plan", "parameters": [id,
                {"name": "skip_conflicts", "in": "query", "schema": {"type": "boolean"}},
                {"name": "attach_existing", "in": "query", "schema": {"type": "boolean"}},
                {"name": "confirm_deletions", "in": "query", "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "compte rendu, listes, et « plan » : l'empreinte du plan à renvoyer au démarrage"}, "404": error}}},
            "/api/v1/drafts/{id}/start": {"post": {"summary": "Étape 4 : démarrer l'importation", "parameters": [id],
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Start"}}}},
                "responses": {"202": {"description": "tâche créée"}, "409": error, "422": report, "404": error}}},
            "/api/v1/jobs/{id}": {"get": {"summary": "Étape 5 : suivi", "parameters": [id], "responses": {"200": {"description": "état de la tâche"}, "404": error}}},
            "/api/v1/jobs/{id}/result": {"get": {"summary": "Étape 5 : fichier résultat", "parameters": [id],
                "responses": {"200": {"description": "CSV", "content": {"text/csv": {}}}, "404": error}}},
            "/api/v1/imports": {"get": {"summary": "Suivi des imports (le plus récent d'abord)",
                "parameters": [
                    {"name": "establishment", "in": "query", "schema": {"type": "string"}, "description": "UAI"},
                    {"name": "since", "in": "query", "schema": {"type": "string"}, "description": "date incluse : 2026-11-25 (depuis minuit, heure de Paris) ou un instant RFC 3339"},
                    {"name": "before", "in": "query", "schema": {"type": "string"}, "description": "date exclue : 2026-11-26 (minuit, heure de Paris) ou un instant RFC 3339"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "liste des imports"}, "400": error}}},
            "/api/v1/imports/{id}": {"get": {"summary": "Un import du suivi", "parameters": [id],
                "responses": {"200": {"description": "import"}, "404": error}}},
            "/api/v1/duplicates": {"get": {"summary": "Doublons probables (CSV / AAF) des établissements de l'administrateur",
                "responses": {"200": {"description": "paires avec score et indices"}}}},
            "/api/v1/reconcile": {"post": {"summary": "Réconcilier un compte CSV avec un compte AAF (guide §7, en une action)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["csv_key", "aaf_key"],
                    "properties": {"csv_key": {"type": "string"}, "aaf_key": {"type": "string"}}}}}},
                "responses": {"200": {"description": "compte gardé (login, nouvelle clé) et compte AAF supprimé"}, "404": error, "422": error}}}
        }
    })
}
