//! The edges of the web door (issue "Nothing lost, nothing run twice"):
//! security headers on every response, bounded inputs, no page that says
//! what a link wants it to say, health and readiness for operations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use support::*;
use tower::ServiceExt;

/// One request, answered with its status, headers and body.
async fn fetch(app: &App, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let response = web::router(app.state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 10 << 20).await.unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn get(uri: &str, s: Option<&Session>) -> Request<Body> {
    let mut req = Request::get(uri);
    if let Some(s) = s {
        req = req.header(header::COOKIE, &s.cookie);
    }
    req.body(Body::empty()).unwrap()
}

fn header_of(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers.get(&name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers_and_pages_are_never_cached() {
    let app = start().await;
    let a = session(&app, "admin-a").await;
    let token = api_token(&app, "admin-a").await;
    let api = Request::get("/api/v1/imports")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let cases = [
        ("login page", get("/connexion", None), true),
        ("home", get("/", Some(&a)), true),
        ("users", get("/utilisateurs", Some(&a)), true),
        ("history", get("/suivi", Some(&a)), true),
        ("new account form", get("/utilisateurs/nouveau", Some(&a)), true),
        ("absent page", get("/suivi/999999", Some(&a)), true),
        ("redirect to login", get("/utilisateurs", None), true),
        ("API", api, true),
        ("stylesheet", get("/style.css", None), false),
        ("slips stylesheet", get("/fiches.css", None), false),
        ("print script", get("/imprimer.js", None), false),
        ("step 5 script", get("/suivi.js", None), false),
    ];
    for (what, request, private) in cases {
        let (status, headers, _) = fetch(&app, request).await;
        let csp = header_of(&headers, header::CONTENT_SECURITY_POLICY);
        assert!(
            csp.contains("script-src 'self'")
                && csp.contains("frame-ancestors 'none'")
                && !csp.contains("unsafe-inline"),
            "{what} ({status}): {csp}"
        );
        assert_eq!(header_of(&headers, header::X_CONTENT_TYPE_OPTIONS), "nosniff", "{what}");
        assert_eq!(header_of(&headers, header::REFERRER_POLICY), "no-referrer", "{what}");
        let cache = header_of(&headers, header::CACHE_CONTROL);
        if private {
            assert_eq!(cache, "no-store", "{what} ({status})");
        } else {
            assert!(cache.starts_with("public"), "{what}: {cache}");
        }
    }
}

/// The policy allows no inline script or style: no page may carry one, or
/// the browser would ignore it (the slips' print button was inline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_has_inline_script_or_style() {
    let app = start().await;
    let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    for entry in std::fs::read_dir(templates).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for forbidden in [
            "<style",
            "style=\"",
            " onclick=",
            " onchange=",
            " onsubmit=",
            "javascript:",
        ] {
            assert!(!text.contains(forbidden), "{}: {forbidden}", path.display());
        }
        for script in text.split("<script").skip(1) {
            assert!(
                script.trim_start().starts_with("src="),
                "{}: inline script",
                path.display()
            );
        }
    }
    let (_, _, script) = fetch(&app, get("/imprimer.js", None)).await;
    assert!(script.contains("window.print()"), "{script}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_numbers_out_of_range_are_bounded_not_errors() {
    let app = start().await;
    let a = session(&app, "admin-a").await;
    for uri in [
        "/utilisateurs?page=9223372036854775807",
        "/utilisateurs?page=-9223372036854775808",
        "/suivi?page=9223372036854775807",
        "/suivi?page=0",
    ] {
        let (status, _, page) = fetch(&app, get(uri, Some(&a))).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {page}");
    }
    let token = api_token(&app, "systeme").await;
    let (status, _, body) = fetch(
        &app,
        Request::get("/api/v1/imports?offset=9223372036854775807")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A declared length over the cap is refused before the body is read: the
/// API in JSON, the wizard with a French page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_before_reading_in_the_door_s_language() {
    let app = start().await;
    let cap = app.state.config.max_upload;
    let token = api_token(&app, "admin-a").await;
    // The declared length is a lie: only a few bytes follow. Were the body
    // read, the request would fail differently (incomplete body).
    let declared = (cap + 1024 * 1024).to_string();
    let (status, headers, body) = fetch(
        &app,
        Request::post(format!("/api/v1/drafts?profile=enseignant&establishment={UAI_A}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "text/csv")
            .header(header::CONTENT_LENGTH, &declared)
            .body(Body::from("Nom;Prénom\r\n"))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(header_of(&headers, header::CONTENT_TYPE).starts_with("application/json"));
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(json["error"].as_str().unwrap().contains("trop volumineux"), "{body}");

    // A body with no declared length, over the cap: cut while reading, JSON too.
    let (status, _, body) = fetch(
        &app,
        Request::post(format!("/api/v1/drafts?profile=enseignant&establishment={UAI_A}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from(vec![b'a'; cap + 128 * 1024]))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("trop volumineux"));

    let a = session(&app, "admin-a").await;
    let (status, headers, page) = fetch(
        &app,
        Request::post("/imports")
            .header(header::COOKIE, &a.cookie)
            .header(header::CONTENT_TYPE, "multipart/form-data; boundary=x")
            .header(header::CONTENT_LENGTH, &declared)
            .body(Body::from("--x--\r\n"))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(header_of(&headers, header::CONTENT_TYPE).starts_with("text/html"));
    assert!(page.contains("trop volumineux") && page.contains("Mio"), "{page}");
    assert!(
        page.contains("id=\"fichier\"") && page.contains("href=\"/utilisateurs\""),
        "back to step 1 with the menu: {page}"
    );
    // Without a declared length the body is cut while reading: the same page.
    let multipart = [
        format!(
            "--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n",
            a.csrf
        )
        .into_bytes(),
        b"--x\r\nContent-Disposition: form-data; name=\"fichier\"; filename=\"gros.csv\"\r\n\r\n".to_vec(),
        vec![b'a'; cap + 128 * 1024],
        b"\r\n--x--\r\n".to_vec(),
    ]
    .concat();
    let (status, _, page) = fetch(
        &app,
        Request::post("/imports")
            .header(header::COOKIE, &a.cookie)
            .header(header::CONTENT_TYPE, "multipart/form-data; boundary=x")
            .body(Body::from(multipart))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{page}");
    assert!(
        page.contains("Fichier trop volumineux")
            && page.contains("id=\"fichier\"")
            && page.contains("href=\"/utilisateurs\""),
        "{page}"
    );

    // Each refusal of a declared length has its history line, as any refused
    // file. (A body sent without a length is cut while reading, without one.)
    use store::history::{History, HistoryFilter};
    let lines = app
        .state
        .directory
        .list_imports(&HistoryFilter::everything())
        .await
        .unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert_eq!(line.status, domain::vocabulary::ImportStatus::Rejected);
        assert_eq!(line.actor, "admin-a");
        assert!(
            line.error
                .as_deref()
                .unwrap_or_default()
                .contains("au-delà de la limite"),
            "{line:?}"
        );
    }
    let (status, _, history) = fetch(&app, get("/suivi", Some(&a))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(history.contains("Refusé") || history.contains("refusé"), "{history}");
}

/// The banner of the duplicates page comes from the server, never from the
/// link: `/doublons?fait=…` cannot make the page tell an admin anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duplicates_banner_does_not_echo_the_link() {
    let app = start().await;
    csv_and_aaf_twins(&app).await;
    let a = session(&app, "admin-a").await;
    let bait = "Votre compte est suspendu, appelez le 0899";
    let (status, page) = send(
        &app,
        Some(&a),
        Method::GET,
        "/doublons?fait=Votre+compte+est+suspendu%2C+appelez+le+0899",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains(bait) && !page.contains("0899"), "{page}");

    // The real message follows a reconciliation, once.
    let form = format!("csrf={}&local=PERSON.m-mmeveroniquebarbier&aaf=PERSON.3248023", a.csrf);
    let response = web::router(app.state.clone())
        .oneshot(
            Request::post("/doublons/reconcilier")
                .header(header::COOKIE, &a.cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(header_of(response.headers(), header::LOCATION), "/doublons");
    let flash = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("annuaire_message="))
        .expect("the message travels in a cookie");
    let with_flash = Request::get("/doublons")
        .header(header::COOKIE, format!("{}; {flash}", a.cookie))
        .body(Body::empty())
        .unwrap();
    let (status, headers, page) = fetch(&app, with_flash).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Comptes réconciliés"), "{page}");
    let cleared = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("annuaire_message="))
        .expect("read once, then deleted");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_follow_the_database() {
    let app = start().await;
    let (status, _, body) = fetch(&app, get("/healthz", None)).await;
    assert_eq!((status, body.trim()), (StatusCode::OK, "ok"));
    let (status, _, body) = fetch(&app, get("/readyz", None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The SQLite file deleted under the running server: not ready, and the
    // pages answer 503 rather than accepting writes that would be lost.
    let file = app.database_file();
    std::fs::remove_file(&file).unwrap();
    let (status, _, body) = fetch(&app, get("/readyz", None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("a disparu"), "{body}");
    let (status, _, page) = fetch(&app, get("/utilisateurs", None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(page.contains("a disparu"), "{page}");
}
