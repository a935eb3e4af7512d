//! Test support: the real app on a loopback port with a fresh SQLite
//! directory, accounts made through the same store functions as the CLI.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use domain::password::{self, SecretOrigin};
use domain::{Establishment, Uai};
use serde_json::Value;
use std::sync::Arc;
use store::service::SystemClock;
use store::sqlite::SqliteDirectory;
use store::web::WebDirectory;
use store::Directory;
use tower::ServiceExt;
use web::{AppState, WebConfig};

pub const UAI_A: &str = "0750654D";
pub const UAI_B: &str = "0750655E";
pub const PASSWORD: &str = "mot-de-passe-de-test";

pub struct App {
    pub url: String,
    pub state: AppState<SqliteDirectory>,
    /// Where the app's notices land as `.eml` files.
    pub outbox: std::path::PathBuf,
    /// Where the AAF feed files wait for the scheduled run.
    pub inbox: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl App {
    /// The SQLite file the app runs on.
    pub fn database_file(&self) -> std::path::PathBuf {
        self._dir.path().join("annuaire.db")
    }

    /// The notices written so far, as raw messages.
    pub fn mails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.outbox) else {
            return Vec::new();
        };
        entries
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect()
    }
}

pub const ADMIN_A_EMAIL: &str = "admin-a@college.test";

pub fn uai(s: &str) -> Uai {
    Uai::parse(s).unwrap()
}

pub async fn start() -> App {
    start_with_schedule(None).await
}

/// The app, with the scheduled AAF run when a cron pattern is given
/// (its inbox is [`App::inbox`], with notices to [`ADMIN_A_EMAIL`]).
pub async fn start_with_schedule(pattern: Option<&str>) -> App {
    start_app(pattern, true).await
}

/// The app without its job worker: the test runs the jobs itself
/// ([`web::run_next_job`]), as a worker of another server would.
pub async fn start_without_worker() -> App {
    start_app(None, false).await
}

/// The app with its worker, its configuration changed by `configure`.
pub async fn start_configured(configure: impl FnOnce(&mut WebConfig)) -> App {
    start_app_with(None, true, configure).await
}

async fn start_app(pattern: Option<&str>, worker: bool) -> App {
    start_app_with(pattern, worker, |_| {}).await
}

async fn start_app_with(pattern: Option<&str>, worker: bool, configure: impl FnOnce(&mut WebConfig)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("flux");
    std::fs::create_dir(&inbox).unwrap();
    let schedule =
        pattern.map(|p| web::schedule::AafSchedule::new(inbox.clone(), p, Some(ADMIN_A_EMAIL.into())).unwrap());
    let directory = SqliteDirectory::open(&format!("sqlite://{}/annuaire.db", dir.path().display()))
        .await
        .unwrap();
    let now = chrono::Utc::now();
    for (u, name) in [(UAI_A, "Collège Jean Moulin"), (UAI_B, "Lycée Victor Hugo")] {
        directory
            .add_establishment(
                &Establishment {
                    uai: uai(u),
                    name: name.into(),
                },
                now,
            )
            .await
            .unwrap();
    }
    let hash = password::hash(PASSWORD, SecretOrigin::Chosen, &[7u8; 16]).unwrap();
    let ts = now;
    let admin_a = directory
        .create_admin("admin-a", &hash, false, &[uai(UAI_A)], ts)
        .await
        .unwrap();
    directory.set_admin_email(admin_a, Some(ADMIN_A_EMAIL)).await.unwrap();
    directory
        .create_admin("admin-b", &hash, false, &[uai(UAI_B)], ts)
        .await
        .unwrap();
    directory.create_admin("systeme", &hash, true, &[], ts).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let outbox = dir.path().join("outbox");
    let notifier = mail::Notifier::new(mail::MailSettings {
        ent_name: "ENT Test".into(),
        public_url: Some(url.clone()),
        transport: mail::TransportConfig::Outbox(outbox.clone()),
        ..mail::MailSettings::default()
    })
    .unwrap();
    let mut config = WebConfig {
        ent_name: "ENT Test".into(),
        sign_in_url: "https://ent.test/".into(),
        ..WebConfig::default()
    };
    configure(&mut config);
    let state = AppState {
        directory: Arc::new(directory),
        clock: Arc::new(SystemClock),
        config,
        notifier: Arc::new(notifier),
        metrics: Arc::default(),
    };
    let serving = state.clone();
    if worker {
        tokio::spawn(async move { web::serve(serving, listener, schedule, std::future::pending()).await });
    } else {
        tokio::spawn(async move { axum::serve(listener, web::router(serving)).await });
    }
    App {
        url,
        state,
        outbox,
        inbox,
        _dir: dir,
    }
}

/// A CSV file as Excel writes it, in a temporary file.
pub fn csv_file(dir: &std::path::Path, name: &str, lines: &[&str]) -> std::path::PathBuf {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    for l in lines {
        bytes.extend_from_slice(l.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A teachers file imported into an establishment as the CLI's operator does.
pub async fn import_as_system(app: &App, establishment: &str, file: &str) -> store::service::ImportOutcome {
    import_for(app, None, establishment, file).await
}

/// The same, its result file and slips kept for this web admin.
pub async fn import_for(
    app: &App,
    admin: Option<&str>,
    establishment: &str,
    file: &str,
) -> store::service::ImportOutcome {
    import_at(app, admin, establishment, file, &SystemClock).await
}

/// The same, at the instant this clock says.
pub async fn import_at(
    app: &App,
    admin: Option<&str>,
    establishment: &str,
    file: &str,
    clock: &dyn store::service::Clock,
) -> store::service::ImportOutcome {
    let mut request = store::service::ImportRequest::new(domain::Profile::Enseignant, Some(uai(establishment)));
    request.file_name = "enseignants.csv".into();
    if let Some(login) = admin {
        let (admin, _) = app.state.directory.admin_by_login(login).await.unwrap().unwrap();
        request.admin_id = Some(admin.id);
    }
    let mut rng = domain::password::os_rng();
    store::service::run_import(
        app.state.directory.as_ref(),
        file.as_bytes(),
        &request,
        clock,
        &mut rng,
        &store::service::NoProgress,
    )
    .await
    .unwrap()
}

/// A teacher created by CSV in establishment A, and the same person arriving
/// from the academic feed (guide §7).
pub async fn csv_and_aaf_twins(app: &App) {
    let d = app.state.directory.as_ref();
    import_as_system(
        app,
        UAI_A,
        "Civilité enseignant;Nom enseignant;Prénom enseignant;Matière enseignant\r\nMadame;BARBIER;Véronique;Anglais\r\n",
    )
    .await;
    let mut rng = domain::password::os_rng();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ficAlimMENESR><addRequest><operationalAttributes><attr name=\"categoriePersonne\"><value>PersEducNat</value></attr></operationalAttributes><identifier><id>3248023</id></identifier><attributes><attr name=\"ENTPersonJointure\"><value>3248023</value></attr><attr name=\"personalTitle\"><value>Mme</value></attr><attr name=\"sn\"><value>BARBIER</value></attr><attr name=\"givenName\"><value>Véronique</value></attr><attr name=\"ENTPersonFonctions\"><value>{UAI_A}$ENS$ENSEIGNEMENT$L0422$ANGLAIS</value></attr></attributes></addRequest></ficAlimMENESR>"
    );
    store::aaf::run_aaf_import(
        d,
        &[store::aaf::FeedFile::from_bytes(
            format!("ENT_{UAI_A}_Delta_20261125_PersEducNat_0000.xml"),
            xml,
        )],
        &store::aaf::AafRequest::default(),
        &store::service::SystemClock,
        &mut rng,
    )
    .await
    .unwrap();
}

/// An API token of this admin, made as `annuaire admin token` makes it.
pub async fn api_token(app: &App, login: &str) -> String {
    let (admin, _) = app.state.directory.admin_by_login(login).await.unwrap().unwrap();
    let token = web::new_token();
    app.state
        .directory
        .create_api_token(&web::hash_token(&token), admin.id, chrono::Utc::now())
        .await
        .unwrap();
    token
}

/// A signed-in admin's cookie and CSRF token, made as the login page makes them.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

pub async fn session(app: &App, login: &str) -> Session {
    let (admin, _) = app.state.directory.admin_by_login(login).await.unwrap().unwrap();
    let token = web::new_token();
    let csrf = web::new_token();
    let now = chrono::Utc::now();
    app.state
        .directory
        .create_session(
            &web::hash_token(&token),
            admin.id,
            &csrf,
            now,
            now + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    Session {
        cookie: format!("annuaire_session={token}"),
        csrf,
    }
}

/// Where a page sends the browser (its `Location`), or None when it answers itself.
pub async fn redirect_of(
    app: &App,
    s: Option<&Session>,
    method: Method,
    uri: &str,
    form: Option<String>,
) -> Option<String> {
    let response = respond(app, s, method, uri, form).await;
    response
        .headers()
        .get(header::LOCATION)
        .map(|l| l.to_str().unwrap().to_string())
}

/// One request to the pages, with the session's cookie and a form body if any.
pub async fn send(
    app: &App,
    s: Option<&Session>,
    method: Method,
    uri: &str,
    form: Option<String>,
) -> (StatusCode, String) {
    let response = respond(app, s, method, uri, form).await;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 10 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn respond(
    app: &App,
    s: Option<&Session>,
    method: Method,
    uri: &str,
    form: Option<String>,
) -> axum::response::Response {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(s) = s {
        req = req.header(header::COOKIE, &s.cookie);
    }
    let body = match form {
        Some(f) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(f)
        }
        None => Body::empty(),
    };
    web::router(app.state.clone())
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap()
}

/// One request to the JSON API, with a Bearer token if any.
pub async fn call(
    app: &App,
    token: Option<&str>,
    method: Method,
    uri: &str,
    body: Body,
    json: bool,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    req = req.header(header::CONTENT_TYPE, if json { "application/json" } else { "text/csv" });
    let response = web::router(app.state.clone())
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    (
        status,
        axum::body::to_bytes(response.into_body(), 10 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
}

/// A JSON answer.
pub fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(bytes)))
}

/// Polls an API job until it ends: its last state.
pub async fn wait_job(app: &App, token: &str, job: i64) -> Value {
    for _ in 0..100 {
        let (_, body) = call(
            app,
            Some(token),
            Method::GET,
            &format!("/api/v1/jobs/{job}"),
            Body::empty(),
            true,
        )
        .await;
        let last = parse(&body);
        if last["status"] != "queued" && last["status"] != "running" {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("job {job} did not finish");
}

/// The value of a page's hidden field (`csrf`, `plan`, `version`…).
pub fn hidden_value(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let after = page
        .split(&marker)
        .nth(1)
        .unwrap_or_else(|| panic!("no field {name} in the page: {page}"));
    after.split('"').next().unwrap_or_default().to_string()
}

/// A draft of `login`'s (as step 1 leaves it) with these settings changed,
/// and its id.
pub async fn draft_of(app: &App, login: &str, file: &str, changes: serde_json::Value) -> i64 {
    let (admin, _) = app.state.directory.admin_by_login(login).await.unwrap().unwrap();
    let mut settings = serde_json::json!({
        "profile": "enseignant", "establishment": UAI_A, "establishments_from_file": false,
        "separator": ";", "encoding": "auto", "has_header": true, "complet": false,
        "overrides": [], "edits": {}, "skip_conflicts": false, "confirm_deletions": null
    });
    for (k, v) in changes.as_object().unwrap() {
        settings[k] = v.clone();
    }
    let now = chrono::Utc::now();
    app.state
        .directory
        .create_draft(admin.id, "f.csv", file.as_bytes(), &settings.to_string(), now)
        .await
        .unwrap()
}

/// A page names no CLI option (`--map`, `--confirm-deletions`…) and no field
/// id (`(civilite)`): each door has its own words (issue 15).
pub fn assert_page_words(what: &str, page: &str) {
    let cli_option = page
        .match_indices("--")
        .any(|(at, _)| page[at + 2..].starts_with(|c: char| c.is_ascii_lowercase()) && !page[..at].ends_with("<!"));
    assert!(!cli_option, "{what}: a CLI option in the page: {page}");
    for field in domain::field::Field::ALL {
        let id = format!("({})", field.id());
        assert!(!page.contains(&id), "{what}: field id {id} in the page: {page}");
    }
}
