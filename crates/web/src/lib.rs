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
mod error;
mod history;
mod jobs;
mod pages;
pub mod schedule;
mod wizard;

pub use api::openapi_document;
pub use auth::{hash_token, new_token};
pub use error::AppError;
pub use jobs::run_worker;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use store::accounts::Accounts;
use store::admin::AdminDirectory;
use store::history::History;
use store::service::Clock;
use store::web::WebDirectory;
use store::Directory;

/// A backend the web app can run on: the directory, the web tables, the history.
pub trait Backend: Directory + WebDirectory + History + AdminDirectory + Accounts + 'static {}
impl<T: Directory + WebDirectory + History + AdminDirectory + Accounts + 'static> Backend for T {}

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
        }
    }
}

pub struct AppState<D> {
    pub directory: Arc<D>,
    pub clock: Arc<dyn Clock>,
    pub config: WebConfig,
    /// End-of-import notices (and their retries).
    pub notifier: Arc<mail::Notifier>,
}

impl<D> Clone for AppState<D> {
    fn clone(&self) -> Self {
        AppState {
            directory: Arc::clone(&self.directory),
            clock: Arc::clone(&self.clock),
            config: self.config.clone(),
            notifier: Arc::clone(&self.notifier),
        }
    }
}

impl<D> AppState<D> {
    pub fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }
}

pub fn router<D: Backend>(state: AppState<D>) -> Router {
    let upload_limit = state.config.max_upload + 64 * 1024;
    Router::new()
        .route("/", get(pages::home::<D>))
        .route("/style.css", get(pages::stylesheet))
        .route("/connexion", get(auth::login_page::<D>).post(auth::login::<D>))
        .route("/deconnexion", post(auth::logout::<D>))
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
        .route("/taches/{id}", get(wizard::job_page::<D>))
        .route("/taches/{id}/resultat.csv", get(wizard::job_result::<D>))
        .route("/utilisateurs", get(pages::users::<D>))
        .route(
            "/utilisateurs/nouveau",
            get(admin_pages::new_user_form::<D>).post(admin_pages::new_user_submit::<D>),
        )
        .route("/utilisateurs/{id}", get(accounts::show::<D>).post(accounts::save::<D>))
        .route("/doublons", get(admin_pages::duplicates::<D>))
        .route("/doublons/reconcilier", post(admin_pages::reconcile::<D>))
        .route("/doublons/ignorer", post(admin_pages::dismiss::<D>))
        .route("/journal", get(admin_pages::audit::<D>))
        .route("/suivi", get(history::list::<D>))
        .route("/suivi/{id}", get(history::detail::<D>))
        .route("/suivi/{id}/resultat.csv", get(history::result::<D>))
        .route("/suivi/{id}/fiches", get(history::slips::<D>))
        .route("/suivi/{id}/restaurer", post(history::restore::<D>))
        .route("/export", get(history::export_page::<D>))
        .route("/export/utilisateurs.csv", get(history::export_csv::<D>))
        .route("/api/openapi.json", get(api::openapi))
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
        .layer(DefaultBodyLimit::max(upload_limit))
        .with_state(state)
}

/// Serves until the process stops, with the job worker in the background,
/// and the scheduled AAF run when one is configured.
pub async fn serve<D: Backend>(
    state: AppState<D>,
    listener: tokio::net::TcpListener,
    aaf_schedule: Option<schedule::AafSchedule>,
) -> std::io::Result<()> {
    let worker_state = state.clone();
    tokio::spawn(async move { run_worker(worker_state).await });
    if let Some(s) = aaf_schedule {
        let schedule_state = state.clone();
        tokio::spawn(async move { schedule::run_schedule(schedule_state, s).await });
    }
    axum::serve(listener, router(state)).await
}
