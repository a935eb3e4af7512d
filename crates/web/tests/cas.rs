//! The CAS server end to end (issue 14): a teacher imported by CSV signs in
//! through `python-cas`, a client nobody here wrote (tests/cas/e2e.py), with
//! the password of the result file, changes it, reaches two services (the
//! second by single sign-on); replayed, expired and misdirected tickets are
//! refused, so are an expired account and an address out of range; the
//! logout reaches every service by the back channel. A portal allowed to
//! proxy gets a proxy-granting ticket at its callback and a proxy ticket for
//! the first service. The services are small HTTP servers here that record
//! the logout requests and proxy-granting tickets they receive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::extract::Query;
use axum::routing::get;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::Directory;
use support::*;

type Pgts = Arc<Mutex<HashMap<String, String>>>;

/// A service: answers its pages, records the `logoutRequest`s POSTed to it,
/// and at `/rappel` keeps the proxy-granting tickets the server delivers
/// (`pgtIou` → `pgtId`), which `/pgt?iou=` gives back to the proxy.
async fn service() -> (String, Arc<Mutex<Vec<String>>>) {
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = Arc::clone(&received);
    let pgts: Pgts = Arc::default();
    let (kept, read) = (Arc::clone(&pgts), Arc::clone(&pgts));
    let app = axum::Router::new()
        .route(
            "/",
            get(|| async { "service" }).post(move |body: String| {
                let record = Arc::clone(&record);
                async move {
                    let request: String = form_urlencoded::parse(body.as_bytes())
                        .filter(|(k, _)| k == "logoutRequest")
                        .map(|(_, v)| v.into_owned())
                        .collect();
                    record.lock().unwrap().push(request);
                    "ok"
                }
            }),
        )
        .route(
            "/rappel",
            get(move |Query(q): Query<HashMap<String, String>>| {
                let kept = Arc::clone(&kept);
                async move {
                    if let (Some(iou), Some(pgt)) = (q.get("pgtIou"), q.get("pgtId")) {
                        kept.lock().unwrap().insert(iou.clone(), pgt.clone());
                    }
                    "ok"
                }
            }),
        )
        .route(
            "/pgt",
            get(move |Query(q): Query<HashMap<String, String>>| {
                let read = Arc::clone(&read);
                async move {
                    let iou = q.get("iou").cloned().unwrap_or_default();
                    read.lock().unwrap().get(&iou).cloned().unwrap_or_default()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// The Python of the venv `scripts/test` prepares, if python-cas is in it.
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("ANNUAIRE_CAS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/cas-venv/bin/python"));
    let works = std::process::Command::new(&path)
        .args(["-c", "import cas, lxml, requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    works.then_some(path)
}

const TEACHERS: &[&str] = &[
    "Civilité enseignant;Nom enseignant;Prénom enseignant;Matière enseignant",
    "Madame;LAVOISIER;Nicole;Physique-Chimie",
    "Monsieur;AMPERE;André;Physique-Chimie",
    "Madame;CURIE;Marie;Physique-Chimie",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_imported_by_csv_signs_in_through_python_cas_and_logs_out_of_both_services() {
    let Some(python) = python() else {
        store::testing::skip_unless_ci("python-cas absent (scripts/test l'installe dans target/cas-venv)");
        return;
    };
    let ticket_seconds = 2;
    let app = start_configured(|c| c.cas.ticket_seconds = ticket_seconds).await;
    let d = app.state.directory.as_ref();
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::read_to_string(csv_file(dir.path(), "enseignants.csv", TEACHERS)).unwrap();
    let outcome = import_as_system(&app, UAI_A, &file).await;
    assert!(outcome.import_id.is_some(), "{:?}", outcome.report);
    let result_file = dir.path().join("resultat.csv");
    std::fs::write(&result_file, outcome.result_file.expect("a result file")).unwrap();

    // Logins and passwords were generated: the result file has them.
    let mut logins = std::collections::HashMap::new();
    for last_name in ["LAVOISIER", "AMPERE", "CURIE"] {
        let found = d
            .search_users(&store::UserQuery {
                last_name: Some(last_name.into()),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        logins.insert(last_name, found[0].clone());
    }

    // One account expired yesterday, one allowed only from a network the test is not in.
    let operator = app::Actor::operator("cli:test".into());
    for (last_name, change) in [
        (
            "AMPERE",
            domain::account::AccountChange {
                last_day: Some("01/01/2020".into()),
                ..Default::default()
            },
        ),
        (
            "LAVOISIER",
            domain::account::AccountChange {
                email: Some("nicole.lavoisier@college.test".into()),
                ..Default::default()
            },
        ),
        (
            "CURIE",
            domain::account::AccountChange {
                networks: Some("10.0.0.0/8".into()),
                ..Default::default()
            },
        ),
    ] {
        let id = store::accounts::Accounts::account_id_by_key(d, &logins[last_name].sync_key)
            .await
            .unwrap()
            .unwrap();
        let detail = store::accounts::Accounts::account(d, id).await.unwrap().unwrap();
        app::accounts::save_account(d, &detail, None, &change, &operator, chrono::Utc::now())
            .await
            .unwrap();
    }

    let (service_a, logouts_a) = service().await;
    let (service_b, logouts_b) = service().await;
    let (portal, logouts_portal) = service().await;
    let now = chrono::Utc::now();
    app::cas::add_service(
        d,
        &operator,
        "vie-scolaire",
        &service_a,
        &[UAI_A.to_string()],
        "login,lastName,firstName,ENTPersonProfils,schools",
        false,
        now,
    )
    .await
    .unwrap();
    app::cas::add_service(d, &operator, "manuels", &service_b, &[], "", false, now)
        .await
        .unwrap();
    app::cas::add_service(d, &operator, "portail", &portal, &[], "login", true, now)
        .await
        .unwrap();

    let config = serde_json::json!({
        "cas_url": format!("{}/cas/", app.url),
        "service_a": service_a,
        "service_b": service_b,
        "portal": portal,
        "result_file": result_file,
        "xsd": PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cas/cas3.xsd"),
        "teacher": logins["LAVOISIER"].login,
        "last_name": "LAVOISIER",
        "expired": logins["AMPERE"].login,
        "outside": logins["CURIE"].login,
        "ticket_seconds": ticket_seconds,
        "outbox": app.outbox,
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cas/e2e.py");
    // The script blocks on HTTP calls to this process's server: off the async threads.
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(&script)
            .arg(config.to_string())
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "e2e.py failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    let validated: serde_json::Value = serde_json::from_str(stdout.trim()).expect("the tickets validated, as JSON");

    // The back channel: each service receives one logout request per ticket
    // it validated, naming that ticket (sent off the request: wait for them).
    for (name, received, expected) in [
        ("A", &logouts_a, &validated["a"]),
        ("B", &logouts_b, &validated["b"]),
        ("portail", &logouts_portal, &validated["portal"]),
    ] {
        let expected: Vec<String> = expected
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        assert!(!expected.is_empty());
        let mut waited = 0;
        while received.lock().unwrap().len() < expected.len() && waited < 100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
        }
        let requests = received.lock().unwrap().clone();
        assert_eq!(requests.len(), expected.len(), "service {name}: {requests:?}");
        for ticket in &expected {
            assert!(
                requests
                    .iter()
                    .any(|r| r.contains(&format!("<samlp:SessionIndex>{ticket}</samlp:SessionIndex>"))),
                "service {name}: no logout request for {ticket} in {requests:?}"
            );
        }
    }
}
