//! The web door of annuaire: the five-step import wizard of the guide (§5),
//! administrator accounts and sessions, background import jobs. Pages are
//! server-rendered French HTML that works without JavaScript (step 5 refreshes
//! itself with a `<meta refresh>` while the job runs). Every rule lives in
//! `domain`, every write in `store`: handlers only check who asks, call them
//! and render.

mod accounts;
mod admin_pages;
mod api;
mod auth;
mod back_channel;
mod cas;
mod error;
mod history;
mod jobs;
mod metrics;
mod openapi;
mod pages;
pub mod schedule;
mod wizard;

/// The OpenAPI document of the JSON API, as JSON.
pub fn openapi_document() -> serde_json::Value {
    serde_json::to_value(openapi::document()).unwrap_or_default()
}
pub use auth::{hash_token, new_token};
pub use error::AppError;
pub use jobs::run_next_job;
pub use metrics::Metrics;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use store::service::Clock;

/// A backend the web app can run on: the directory, the web tables, the history.
pub use app::Backend;

#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The ENT's name, shown in titles and mail subjects.
    pub ent_name: String,
    /// Largest upload accepted, in bytes.
    pub max_upload: usize,
    /// Days a result file (with cleartext passwords) stays downloadable.
    pub result_retention_days: i64,
    /// Session lifetime in seconds.
    pub session_seconds: i64,
    /// Mark cookies `Secure` (behind HTTPS).
    pub secure_cookies: bool,
    /// Failed logins allowed per login in [`WebConfig::throttle_seconds`].
    pub max_failed_logins: i64,
    pub throttle_seconds: i64,
    /// Where users sign in, printed on the credential slips (empty: "the ENT's address").
    pub sign_in_url: String,
    /// How long a job stays its server's without news (see
    /// [`store::web::JOB_LEASE_SECONDS`]): how soon another server takes
    /// over the job of a server that died.
    pub job_lease_seconds: i64,
    /// How long a stopping server lets its running import finish before it
    /// gives the job back to the queue.
    pub shutdown_grace: std::time::Duration,
    /// How long an untouched draft (file, edits) is kept before it is wiped.
    pub draft_retention_seconds: i64,
    /// The CAS server's ticket and session lifetimes, and its throttling.
    pub cas: app::cas::CasSettings,
    /// The reverse proxies whose `X-Forwarded-For` names the client (the
    /// address an account's allowed ranges and the throttling look at).
    pub forwarded_by: Vec<ipnet::IpNet>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            ent_name: "annuaire".to_string(),
            max_upload: 20 * 1024 * 1024,
            result_retention_days: 7,
            session_seconds: 8 * 3600,
            secure_cookies: false,
            max_failed_logins: 5,
            throttle_seconds: 15 * 60,
            sign_in_url: String::new(),
            job_lease_seconds: store::web::JOB_LEASE_SECONDS,
            shutdown_grace: std::time::Duration::from_secs(30),
            draft_retention_seconds: 7 * 86_400,
            cas: app::cas::CasSettings::default(),
            forwarded_by: Vec::new(),
        }
    }
}

pub struct AppState<D> {
    pub directory: Arc<D>,
    pub clock: Arc<dyn Clock>,
    pub config: WebConfig,
    /// End-of-import notices (and their retries).
    pub notifier: Arc<mail::Notifier>,
    pub metrics: Arc<Metrics>,
}

impl<D> Clone for AppState<D> {
    fn clone(&self) -> Self {
        AppState {
            directory: Arc::clone(&self.directory),
            clock: Arc::clone(&self.clock),
            metrics: Arc::clone(&self.metrics),
            config: self.config.clone(),
            notifier: Arc::clone(&self.notifier),
        }
    }
}

impl<D> AppState<D> {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}

pub fn router<D: Backend>(state: AppState<D>) -> Router {
    let upload_limit = upload_limit(&state.config);
    Router::new()
        .route("/", get(pages::home::<D>))
        .route("/style.css", get(pages::stylesheet))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<D>))
        .route("/metrics", get(metrics_page::<D>))
        .route("/fiches.css", get(pages::slips_stylesheet))
        .route("/imprimer.js", get(pages::print_script))
        .route("/suivi.js", get(pages::progress_script))
        .route("/correspondances.js", get(pages::mapping_script))
        .route("/creation.js", get(pages::creation_script))
        .route("/connexion", get(auth::login_page::<D>).post(auth::login::<D>))
        .route("/deconnexion", post(auth::logout::<D>))
        .route("/cas/login", get(cas::login_page::<D>).post(cas::login::<D>))
        .route("/cas/mot-de-passe", post(cas::change::<D>))
        .route(
            "/cas/mot-de-passe-oublie",
            get(cas::forgot_page::<D>).post(cas::forgot::<D>),
        )
        .route("/cas/reinitialisation", get(cas::reset_page::<D>).post(cas::reset::<D>))
        .route("/cas/logout", get(cas::logout::<D>))
        .route("/cas/validate", get(cas::validate_v1::<D>))
        .route("/cas/serviceValidate", get(cas::service_validate::<D>))
        .route("/cas/proxyValidate", get(cas::proxy_validate::<D>))
        .route("/cas/p3/serviceValidate", get(cas::p3_service_validate::<D>))
        .route("/cas/p3/proxyValidate", get(cas::p3_proxy_validate::<D>))
        .route("/cas/proxy", get(cas::proxy::<D>))
        .route("/imports/nouveau", get(wizard::step1_page::<D>))
        .route("/imports", post(wizard::step1_submit::<D>))
        .route(
            "/imports/{id}/correspondances",
            get(wizard::step2_page::<D>).post(wizard::step2_submit::<D>),
        )
        .route(
            "/imports/{id}/verification",
            get(wizard::step3_page::<D>).post(wizard::step3_submit::<D>),
        )
        .route(
            "/imports/{id}/lignes/{line}",
            get(wizard::edit_page::<D>).post(wizard::edit_submit::<D>),
        )
        .route("/imports/{id}/recapitulatif", get(wizard::step4_page::<D>))
        .route("/imports/{id}/demarrer", post(wizard::start::<D>))
        .route("/imports/{id}/abandon", post(wizard::discard::<D>))
        .route("/taches/{id}", get(wizard::job_page::<D>))
        .route("/taches/{id}/resultat.csv", get(wizard::job_result::<D>))
        .route("/utilisateurs", get(pages::users::<D>))
        .route(
            "/utilisateurs/nouveau",
            get(admin_pages::new_user_form::<D>).post(admin_pages::new_user_submit::<D>),
        )
        .route("/utilisateurs/{id}", get(accounts::show::<D>).post(accounts::save::<D>))
        .route("/utilisateurs/{id}/retrait", post(accounts::leave::<D>))
        .route(
            "/utilisateurs/{id}/activation",
            get(accounts::activation_page::<D>).post(accounts::activation::<D>),
        )
        .route("/utilisateurs/{id}/fiche", get(accounts::slip::<D>))
        .route(
            "/utilisateurs/{id}/mot-de-passe",
            get(accounts::password_page::<D>).post(accounts::reset_password::<D>),
        )
        .route("/doublons", get(admin_pages::duplicates::<D>))
        .route("/doublons/reconcilier", post(admin_pages::reconcile::<D>))
        .route("/doublons/ignorer", post(admin_pages::dismiss::<D>))
        .route("/journal", get(admin_pages::audit::<D>))
        .route(
            "/etablissements",
            get(admin_pages::establishments::<D>).post(admin_pages::save_establishment::<D>),
        )
        .route("/lvs", get(admin_pages::lvs::<D>).post(admin_pages::save_lvs::<D>))
        .route("/suivi", get(history::list::<D>))
        .route("/suivi/{id}", get(history::detail::<D>))
        .route("/suivi/{id}/resultat.csv", get(history::result::<D>))
        .route("/suivi/{id}/fiches", get(history::slips::<D>))
        .route("/suivi/{id}/lignes-ignorees.csv", get(history::skipped::<D>))
        .route(
            "/suivi/{id}/restaurer",
            get(history::restore_page::<D>).post(history::restore::<D>),
        )
        .route("/export", get(history::export_page::<D>))
        .route("/export/utilisateurs.csv", get(history::export_csv::<D>))
        .route("/export/lvs.csv", get(history::export_lvs::<D>))
        .route("/api/openapi.json", get(|| async { axum::Json(openapi_document()) }))
        .route("/api/v1/drafts", post(api::create_draft::<D>))
        .route("/api/v1/drafts/{id}/mapping", axum::routing::put(api::set_mapping::<D>))
        .route("/api/v1/drafts/{id}/check", get(api::check::<D>))
        .route(
            "/api/v1/drafts/{id}/rows/{line}",
            axum::routing::put(api::edit_row::<D>),
        )
        .route("/api/v1/drafts/{id}/plan", get(api::plan::<D>))
        .route("/api/v1/drafts/{id}/start", post(api::start::<D>))
        .route("/api/v1/jobs/{id}", get(api::job::<D>))
        .route("/api/v1/jobs/{id}/result", get(api::job_result::<D>))
        .route("/api/v1/imports", get(api::imports::<D>))
        .route("/api/v1/imports/{id}", get(api::import::<D>))
        .route("/api/v1/duplicates", get(api::duplicates::<D>))
        .route("/api/v1/reconcile", post(api::reconcile::<D>))
        .route("/api/v1/lvs", get(api::lvs::<D>))
        .layer(DefaultBodyLimit::max(upload_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_declared_oversize::<D>,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_without_storage::<D>,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            log_request,
        ))
        .with_state(state)
}

/// Liveness, for an orchestrator: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the database answers, is still there and is migrated. A load
/// balancer sends no request to a server that says 503 here.
async fn readyz<D: Backend>(
    axum::extract::State(state): axum::extract::State<AppState<D>>,
) -> (axum::http::StatusCode, String) {
    match state.directory.readiness().await {
        Ok(()) => (axum::http::StatusCode::OK, "prêt\n".to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("indisponible : {e}\n"),
            )
        }
    }
}

/// Prometheus metrics (see [`metrics`]); the queue read from the database.
/// Counts only, no personal data: like `/healthz`, it needs no session, and
/// a reverse proxy keeps it off the public address (README, "Exploitation").
async fn metrics_page<D: Backend>(
    axum::extract::State(state): axum::extract::State<AppState<D>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let now = state.now();
    let (queued, oldest) = match state.directory.job_queue().await {
        Ok(queue) => queue,
        Err(e) => return error_for("/metrics", AppError::Store(e)),
    };
    let age = oldest.map_or(0, |created| (now - created).num_seconds());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(queued, age),
    )
        .into_response()
}

/// One journal line per request, with an id the response carries too
/// (`X-Request-Id`), so that an admin's report can be found in the log. The
/// path only: a query string may hold the names searched, a body passwords.
async fn log_request(
    axum::extract::State(metrics): axum::extract::State<Arc<Metrics>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use rand::Rng;
    let id = format!("{:016x}", rand::thread_rng().gen::<u64>());
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    tracing::info!(
        request_id = %id,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        "requête"
    );
    metrics.responded(response.status().as_u16());
    response
}

/// What every response carries: no inline script nor framing, no MIME
/// sniffing, no address sent to other sites, and nothing kept in a cache
/// (pages show passwords, personal data or a CSRF token) unless the handler
/// said otherwise, as the static files do.
async fn security_headers(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::http::header::{self, HeaderValue};
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // A page may set its own (the CAS pages let their forms lead to the service).
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// An error answered before any handler: in JSON under `/api/`, as a French
/// page elsewhere, as the handlers themselves answer.
fn error_for(path: &str, error: AppError) -> axum::response::Response {
    use axum::response::IntoResponse;
    if path.starts_with("/api/") {
        api::ApiError::from(error).into_response()
    } else {
        error.into_response()
    }
}

/// A body whose declared length is over the cap is refused before a byte of
/// it is read (a chunked one is cut at the cap by `DefaultBodyLimit`); the
/// API answers in JSON, the pages with a French page.
async fn refuse_declared_oversize<D: Backend>(
    axum::extract::State(state): axum::extract::State<AppState<D>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let limit = upload_limit(&state.config);
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(size) if size > limit as u64 => {
            let (mut parts, _unread) = request.into_parts();
            record_oversize_upload(&state, &mut parts, size).await;
            if parts.uri.path() == "/imports" {
                use axum::extract::FromRequestParts;
                if let Ok(auth) = auth::Auth::from_request_parts(&mut parts, &state).await {
                    return wizard::oversize_page(&state, &auth).await;
                }
            }
            error_for(parts.uri.path(), AppError::TooLarge(limit))
        }
        _ => next.run(request).await,
    }
}

/// The cap on a request's body: the upload cap and room for a form's other fields.
fn upload_limit(config: &WebConfig) -> usize {
    config.max_upload + 64 * 1024
}

/// A file refused for its size is a refused import like any other: its
/// history line, when its sender is known (the wizard's session, or an API
/// token). What the unread body would have said (the wizard's profile) stays
/// blank; the API's query gives profile, establishment and file name.
async fn record_oversize_upload<D: Backend>(state: &AppState<D>, parts: &mut axum::http::request::Parts, size: u64) {
    use axum::extract::FromRequestParts;
    let via_api = match (parts.method == axum::http::Method::POST, parts.uri.path()) {
        (true, "/imports") => false,
        (true, "/api/v1/drafts") => true,
        _ => return,
    };
    let actor = if via_api {
        api::ApiAdmin::from_request_parts(parts, state)
            .await
            .ok()
            .map(|a| a.actor())
    } else {
        auth::Auth::from_request_parts(parts, state)
            .await
            .ok()
            .map(|a| a.actor())
    };
    let Some(actor) = actor else { return };
    let query: std::collections::HashMap<String, String> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let profile = query.get("profile").and_then(|p| p.parse::<domain::Profile>().ok());
    let establishment = query
        .get("establishment")
        .and_then(|u| domain::Uai::parse(u).ok())
        .filter(|u| actor.may_act_on(u));
    let mut request = store::service::ImportRequest::new(profile.unwrap_or(domain::Profile::Enseignant), establishment);
    app::imports::on_behalf(&actor, &mut request);
    request.file_name = query.get("file_name").cloned().unwrap_or_default();
    let refusal = domain::decode::FileError::TooLarge {
        size: usize::try_from(size).unwrap_or(usize::MAX),
        limit: state.config.max_upload,
    };
    let mut record = store::service::refused_record(&request, &refusal, state.clock.now());
    if profile.is_none() {
        record.profile = String::new();
    }
    if let Err(e) = state.directory.record_import(&record).await {
        tracing::warn!(error = %e, "historique : refus d'un fichier trop volumineux non enregistré");
    }
}

/// Nothing is accepted once the database file is gone: the open connections
/// would go on answering and every write would be lost with the file. The
/// answer is 503, with the sentence that says what to do.
async fn refuse_without_storage<D: Backend>(
    axum::extract::State(state): axum::extract::State<AppState<D>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path();
    if path != "/healthz" && path != "/readyz" {
        if let Err(e) = state.directory.storage_present() {
            tracing::error!(error = %e, "database storage missing");
            return error_for(path, AppError::Store(e));
        }
    }
    next.run(request).await
}

/// Scripts and styles from this site only (files, never inline), no
/// framing, forms posted back here only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Serves until `shutdown` resolves, with the job worker in the background,
/// and the scheduled AAF run when one is configured. Then it stops taking
/// requests and jobs, lets the running import end for up to
/// [`WebConfig::shutdown_grace`], and otherwise gives its job back to the
/// queue for another server (or this one restarted) to run at once.
pub async fn serve<D: Backend>(
    state: AppState<D>,
    listener: tokio::net::TcpListener,
    aaf_schedule: Option<schedule::AafSchedule>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let held = jobs::HeldJob::default();
    let worker = tokio::spawn(jobs::run_worker(state.clone(), stopped, Arc::clone(&held)));
    let scheduler = aaf_schedule.map(|s| tokio::spawn(schedule::run_schedule(state.clone(), s)));
    // The peer's address: the CAS sign-in checks it against the account's ranges.
    let app = router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    tracing::info!("arrêt demandé : plus de nouvelle requête ni de nouvel import");
    let _ = stop.send(true);
    if let Some(scheduler) = scheduler {
        scheduler.abort();
    }
    jobs::stop_worker(&state, worker, held, state.config.shutdown_grace).await;
    tracing::info!("serveur arrêté");
    served
}
