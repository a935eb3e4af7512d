//! The JSON API end to end with a Bearer token: the five steps for
//! automation, the same scoping as the pages, and an OpenAPI document that
//! describes exactly the routes the app serves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use support::*;
use tower::ServiceExt;

/// Step 1: a teachers file for establishment A; answers the draft and its mapping.
async fn new_teachers_draft(app: &App, token: &str, file: &str) -> Value {
    let (status, body) = call(
        app,
        Some(token),
        Method::POST,
        &format!("/api/v1/drafts?profile=enseignant&establishment={UAI_A}&file_name=f.csv"),
        Body::from(file.to_string()),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    parse(&body)
}

/// The answer is what the derived OpenAPI document says: every key it has
/// is documented, every required one is there.
fn assert_documented(answer: &Value, schema: &str) {
    let doc = web::openapi_document();
    let documented = &doc["components"]["schemas"][schema];
    let properties = documented["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {schema}"));
    for key in answer.as_object().unwrap().keys() {
        assert!(properties.contains_key(key), "{schema} does not document « {key} »");
    }
    for key in documented["required"].as_array().into_iter().flatten() {
        let key = key.as_str().unwrap();
        assert!(answer.get(key).is_some(), "{schema}: « {key} » missing in {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_steps_through_the_api() {
    let app = start().await;
    let t = api_token(&app, "admin-a").await;
    let file = "Civ;Famille;Prénom;Matière\r\nM.;PLATON;Francis;Philosophie\r\nDocteur;ZOLA;Emile;Français\r\n";

    let draft = new_teachers_draft(&app, &t, file).await;
    assert_documented(&draft, "Mapping");
    let id = draft["draft"].as_i64().unwrap();
    assert_eq!(draft["missing_required"], json!(["nom"]), "{draft}");

    let mapping = json!({"columns": {"Famille": "nom"}});
    let (status, body) = call(
        &app,
        Some(&t),
        Method::PUT,
        &format!("/api/v1/drafts/{id}/mapping"),
        Body::from(mapping.to_string()),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body)["missing_required"], json!([]));

    let (status, body) = call(
        &app,
        Some(&t),
        Method::GET,
        &format!("/api/v1/drafts/{id}/check"),
        Body::empty(),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let check = parse(&body);
    assert_documented(&check, "Report");
    assert_documented(&check["conflict_details"][0], "ConflictDetail");
    assert_eq!(
        (check["rows"].as_u64(), check["conflicts"].as_u64()),
        (Some(2), Some(1)),
        "{check}"
    );
    assert_eq!(check["conflict_details"][0]["code"], "bad_civility");

    // Starting with a conflict is refused with the report.
    let (status, _) = call(
        &app,
        Some(&t),
        Method::POST,
        &format!("/api/v1/drafts/{id}/start"),
        Body::from("{}"),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let row = json!({"cells": ["M.", "ZOLA", "Emile", "Français"]});
    let (status, body) = call(
        &app,
        Some(&t),
        Method::PUT,
        &format!("/api/v1/drafts/{id}/rows/3"),
        Body::from(row.to_string()),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_documented(&parse(&body), "RowCheck");
    assert_eq!(parse(&body)["valid"], true);

    let (status, body) = call(
        &app,
        Some(&t),
        Method::GET,
        &format!("/api/v1/drafts/{id}/plan"),
        Body::empty(),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let plan = parse(&body);
    assert_documented(&plan, "PlanAnswer");
    assert_eq!(plan["creates"].as_array().unwrap().len(), 2, "{plan}");

    let (status, body) = call(
        &app,
        Some(&t),
        Method::POST,
        &format!("/api/v1/drafts/{id}/start"),
        Body::from("{}"),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&body));
    assert_documented(&parse(&body), "JobCreated");
    let job = parse(&body)["job"].as_i64().unwrap();
    let last = wait_job(&app, &t, job).await;
    assert_documented(&last, "JobState");
    assert_eq!(last["status"], "succeeded", "{last}");
    assert_eq!(last["report"]["created"], 2);
    let (status, body) = call(
        &app,
        Some(&t),
        Method::GET,
        &format!("/api/v1/jobs/{job}/result"),
        Body::empty(),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("PERSON.m-mmeemilezola"));

    // The history knows the import came through the API, and the notice went out.
    let import_id = last["import_id"].as_i64().unwrap();
    // The notice follows the job's end by a moment.
    let mut imports = Value::Null;
    for _ in 0..50 {
        let (status, body) = call(&app, Some(&t), Method::GET, "/api/v1/imports", Body::empty(), true).await;
        assert_eq!(status, StatusCode::OK);
        imports = parse(&body);
        if imports["imports"][0]["mail_status"] == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let entry = &imports["imports"][0];
    assert_eq!(entry["id"], import_id);
    assert_eq!(
        (entry["channel"].as_str(), entry["actor"].as_str()),
        (Some("api"), Some("admin-a"))
    );
    assert_eq!((entry["rows"].as_i64(), entry["created"].as_i64()), (Some(2), Some(2)));
    assert_eq!(entry["notify"], support::ADMIN_A_EMAIL);
    assert_eq!(entry["mail_status"], "sent", "{entry}");
    let mails = app.mails();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("Subject: [SUCCES] Import CSV-ENT Test"),
        "{}",
        mails[0]
    );
    assert!(
        mails[0].contains(&format!("To: {}", support::ADMIN_A_EMAIL)),
        "{}",
        mails[0]
    );
    let (status, _) = call(
        &app,
        Some(&t),
        Method::GET,
        &format!("/api/v1/imports/{import_id}"),
        Body::empty(),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Scoping: another establishment's admin sees none of it; no token, no access.
    let other = api_token(&app, "admin-b").await;
    for uri in [
        format!("/api/v1/drafts/{id}/check"),
        format!("/api/v1/jobs/{job}"),
        format!("/api/v1/jobs/{job}/result"),
        format!("/api/v1/imports/{import_id}"),
    ] {
        let (status, _) = call(&app, Some(&other), Method::GET, &uri, Body::empty(), true).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        let (status, _) = call(&app, None, Method::GET, &uri, Body::empty(), true).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    let (status, _) = call(
        &app,
        Some(&other),
        Method::POST,
        &format!("/api/v1/drafts?profile=enseignant&establishment={UAI_A}"),
        Body::from(file),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &app,
        Some("inconnu"),
        Method::GET,
        &format!("/api/v1/jobs/{job}"),
        Body::empty(),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_routes() {
    let app = start().await;
    let (status, body) = call(&app, None, Method::GET, "/api/openapi.json", Body::empty(), true).await;
    assert_eq!(status, StatusCode::OK);
    let doc = parse(&body);
    assert_eq!(doc["openapi"], "3.1.0");
    let t = api_token(&app, "admin-a").await;
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 13);
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let uri = path.replace("{id}", "999").replace("{line}", "2");
            let method: Method = method.to_uppercase().parse().unwrap();
            let (status, body) = call(&app, Some(&t), method.clone(), &uri, Body::from("{}"), true).await;
            // A documented route exists: our 404s carry a JSON error, the router's own is bare.
            let ours = status != StatusCode::NOT_FOUND || serde_json::from_slice::<Value>(&body).is_ok();
            assert!(ours, "{method} {uri} is not routed: {status}");
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_reconciliation_through_the_api() {
    let app = start().await;
    csv_and_aaf_twins(&app).await;
    // admin-b sees no pair of establishment A and cannot reconcile it.
    let b = api_token(&app, "admin-b").await;
    let (status, body) = call(&app, Some(&b), Method::GET, "/api/v1/duplicates", Body::empty(), true).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(parse(&body)["pairs"].as_array().unwrap().len(), 0);
    let pair = serde_json::json!({"csv_key": "PERSON.m-mmeveroniquebarbier", "aaf_key": "PERSON.3248023"}).to_string();
    let (status, _) = call(
        &app,
        Some(&b),
        Method::POST,
        "/api/v1/reconcile",
        Body::from(pair.clone()),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let a = api_token(&app, "admin-a").await;
    let (_, body) = call(&app, Some(&a), Method::GET, "/api/v1/duplicates", Body::empty(), true).await;
    let pairs = parse(&body)["pairs"].clone();
    assert_eq!(pairs.as_array().unwrap().len(), 1, "{pairs}");
    assert_eq!(pairs[0]["aaf"]["key"], "PERSON.3248023");
    // Swapped keys: refused with the command to run instead.
    let swapped =
        serde_json::json!({"csv_key": "PERSON.3248023", "aaf_key": "PERSON.m-mmeveroniquebarbier"}).to_string();
    let s = api_token(&app, "systeme").await;
    let (status, body) = call(
        &app,
        Some(&s),
        Method::POST,
        "/api/v1/reconcile",
        Body::from(swapped),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(parse(&body)["error"].as_str().unwrap().contains("ordre inversé"));

    let (status, body) = call(
        &app,
        Some(&a),
        Method::POST,
        "/api/v1/reconcile",
        Body::from(pair.clone()),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let done = parse(&body);
    assert_eq!(
        (done["login"].as_str(), done["key"].as_str()),
        (Some("vbarbier"), Some("PERSON.3248023"))
    );
    let (_, body) = call(&app, Some(&a), Method::GET, "/api/v1/duplicates", Body::empty(), true).await;
    assert_eq!(parse(&body)["pairs"].as_array().unwrap().len(), 0, "no pair left");
    // Done once: the same call now names a key that no longer exists.
    let (status, _) = call(
        &app,
        Some(&a),
        Method::POST,
        "/api/v1/reconcile",
        Body::from(pair),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Step 3 (page and API check) and step 4 (API plan) are previews: they answer
/// while another import holds the establishment's write lock. A start with a
/// plan the directory no longer gives is refused (409) and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_pass_a_running_import_and_a_stale_plan_is_refused() {
    use store::{Directory, DirectoryTx};
    let app = start().await;
    let t = api_token(&app, "admin-a").await;
    let file = "Civilité enseignant;Nom enseignant;Prénom enseignant;Matière enseignant\r\nM.;PLATON;Francis;Philosophie\r\nMme;LAVOISIER;Nicole;Chimie\r\n";
    let id = new_teachers_draft(&app, &t, file).await["draft"].as_i64().unwrap();
    let plan_uri = format!("/api/v1/drafts/{id}/plan");
    let (_, body) = call(&app, Some(&t), Method::GET, &plan_uri, Body::empty(), true).await;
    let plan_body = parse(&body);
    let seen = plan_body["plan"]
        .as_str()
        .unwrap_or_else(|| panic!("{plan_body}"))
        .to_string();
    assert_eq!(seen.len(), 64, "a SHA-256 in hex");

    let admin = session(&app, "admin-a").await;

    // A long import holds establishment A.
    let mut writer = app.state.directory.begin().await.unwrap();
    writer.lock_establishments(&[uai(UAI_A)]).await.unwrap();
    let within_a_second = Duration::from_secs(1);
    let check = tokio::time::timeout(
        within_a_second,
        call(
            &app,
            Some(&t),
            Method::GET,
            &format!("/api/v1/drafts/{id}/check"),
            Body::empty(),
            true,
        ),
    )
    .await
    .expect("the API check waited for the running import");
    assert_eq!(check.0, StatusCode::OK);
    assert_eq!(parse(&check.1)["rows"], 2);
    let plan = tokio::time::timeout(
        within_a_second,
        call(&app, Some(&t), Method::GET, &plan_uri, Body::empty(), true),
    )
    .await
    .expect("the API plan waited for the running import");
    assert_eq!(parse(&plan.1)["plan"], seen.as_str());
    let page = tokio::time::timeout(
        within_a_second,
        send(
            &app,
            Some(&admin),
            Method::GET,
            &format!("/imports/{id}/verification"),
            None,
        ),
    )
    .await
    .expect("step 3 waited for the running import");
    assert_eq!(page.0, StatusCode::OK, "{}", page.1);
    assert!(page.1.contains(r#"<strong id="nb-valides">2</strong>"#), "{}", page.1);
    drop(writer);

    // Meanwhile someone imports the same two people: the plan seen is stale.
    let mut request = store::service::ImportRequest::new(domain::Profile::Enseignant, Some(uai(UAI_A)));
    request.file_name = "autre.csv".into();
    store::service::run_import(
        app.state.directory.as_ref(),
        file.as_bytes(),
        &request,
        &store::service::SystemClock,
        &mut domain::password::os_rng(),
        &store::service::NoProgress,
    )
    .await
    .unwrap();
    let users_before = app.state.directory.count_users().await.unwrap();
    let start_uri = format!("/api/v1/drafts/{id}/start");
    let stale = json!({ "plan": seen }).to_string();
    let (status, body) = call(&app, Some(&t), Method::POST, &start_uri, Body::from(stale), true).await;
    assert_eq!(status, StatusCode::CONFLICT, "{}", String::from_utf8_lossy(&body));
    assert!(parse(&body)["error"].as_str().unwrap().contains("a changé"));
    assert_eq!(app.state.directory.count_users().await.unwrap(), users_before);

    // Step 4's page refuses the same way, and shows the summary as it is now.
    let form = format!("csrf={}&plan={seen}", admin.csrf);
    let (status, page) = send(
        &app,
        Some(&admin),
        Method::POST,
        &format!("/imports/{id}/demarrer"),
        Some(form),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("a changé depuis ce résumé"), "{page}");
    assert!(!page.contains(&seen), "the page offers the new plan, not the stale one");
    assert_eq!(app.state.directory.count_users().await.unwrap(), users_before);

    let (_, body) = call(&app, Some(&t), Method::GET, &plan_uri, Body::empty(), true).await;
    let fresh = parse(&body);
    assert_ne!(fresh["plan"], seen.as_str());
    assert_eq!(fresh["report"]["unchanged"], 2, "{fresh}");
    let body = json!({ "plan": fresh["plan"] }).to_string();
    let (status, body) = call(&app, Some(&t), Method::POST, &start_uri, Body::from(body), true).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&body));
}

/// The OpenAPI document is a contract with the ENT's automation: any change
/// to it shows up in review as a diff of `tests/openapi.snapshot.json`.
/// After a deliberate change: `ANNUAIRE_UPDATE_SNAPSHOTS=1 cargo test -p web --test api openapi`.
#[test]
fn the_openapi_document_matches_its_snapshot() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi.snapshot.json");
    let current = serde_json::to_string_pretty(&web::openapi_document()).unwrap() + "\n";
    if std::env::var("ANNUAIRE_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &current).unwrap();
    }
    let snapshot = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        snapshot == current,
        "the OpenAPI document changed; if on purpose, run ANNUAIRE_UPDATE_SNAPSHOTS=1 cargo test -p web --test api openapi and commit {}",
        path.display()
    );
}

async fn draft_count(app: &App) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM drafts")
        .fetch_one(app.state.directory.pool())
        .await
        .unwrap()
}

/// Drafts hold the uploaded file and the admin's edits (imposed passwords
/// in clear): an unreadable upload is never stored, a committed import's
/// draft is wiped, an abandoned one is deleted after its retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_are_not_kept_beyond_their_use() {
    use store::web::WebDirectory;
    let app = start_without_worker().await;
    let t = api_token(&app, "admin-a").await;
    let upload = format!("/api/v1/drafts?profile=enseignant&establishment={UAI_A}");

    // A spreadsheet sent as CSV: refused with the reason, nothing stored.
    let (status, body) = call(
        &app,
        Some(&t),
        Method::POST,
        &upload,
        Body::from(&b"PK\x03\x04xlsx"[..]),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        parse(&body)["error"].as_str().unwrap().contains("classeur Excel"),
        "{}",
        parse(&body)
    );
    assert_eq!(draft_count(&app).await, 0);
    // The same at the wizard's step 1: said on the page, nothing stored.
    let a = session(&app, "admin-a").await;
    let form = format!(
        "--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n\
         --x\r\nContent-Disposition: form-data; name=\"profil\"\r\n\r\nenseignant\r\n\
         --x\r\nContent-Disposition: form-data; name=\"etablissement\"\r\n\r\n{UAI_A}\r\n\
         --x\r\nContent-Disposition: form-data; name=\"fichier\"; filename=\"profs.xlsx\"\r\n\r\nPK\x03\x04xlsx\r\n--x--\r\n",
        a.csrf
    );
    let response = web::router(app.state.clone())
        .oneshot(
            Request::post("/imports")
                .header(header::COOKIE, &a.cookie)
                .header(header::CONTENT_TYPE, "multipart/form-data; boundary=x")
                .body(Body::from(form))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    assert!(String::from_utf8_lossy(&page).contains("classeur Excel"));
    assert_eq!(draft_count(&app).await, 0);

    // Imported: the draft's file and edits are wiped, its pages say so.
    let file = "Civilité;Nom;Prénom;Matière;Nom utilisateur;Mot de passe\r\nM.;PLATON;Francis;Philosophie;fplaton;Secret-impose-2026\r\n";
    let (status, body) = call(&app, Some(&t), Method::POST, &upload, Body::from(file), false).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let id = parse(&body)["draft"].as_i64().unwrap();
    let start = format!("/api/v1/drafts/{id}/start");
    let (status, body) = call(&app, Some(&t), Method::POST, &start, Body::from("{}"), true).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&body));
    assert!(web::run_next_job(&app.state).await.unwrap());
    let (_, metrics) = call(&app, None, Method::GET, "/metrics", Body::empty(), false).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains(r#"annuaire_imports_total{status="succeeded",door="api"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("annuaire_import_rows_total 1"), "{metrics}");
    let draft = app.state.directory.draft(id).await.unwrap().unwrap();
    assert!(draft.purged_at.is_some());
    assert!(draft.file_bytes.is_empty());
    assert!(!draft.settings.contains("Secret"), "{}", draft.settings);
    let (status, body) = call(
        &app,
        Some(&t),
        Method::GET,
        &format!("/api/v1/drafts/{id}/plan"),
        Body::empty(),
        true,
    )
    .await;
    // Its import is said, not a second start offered.
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(String::from_utf8_lossy(&body).contains("déjà été importé"));

    // Abandoned: kept during its retention, deleted after it.
    let (status, body) = call(&app, Some(&t), Method::POST, &upload, Body::from(file), false).await;
    assert_eq!(status, StatusCode::CREATED);
    let abandoned = parse(&body)["draft"].as_i64().unwrap();
    let now = chrono::Utc::now();
    let d = app.state.directory.as_ref();
    assert_eq!(
        d.purge_abandoned_drafts(now - chrono::Duration::days(1), now)
            .await
            .unwrap(),
        0
    );
    assert!(d.draft(abandoned).await.unwrap().is_some());
    assert_eq!(
        d.purge_abandoned_drafts(now + chrono::Duration::seconds(1), now)
            .await
            .unwrap(),
        1
    );
    assert!(d.draft(abandoned).await.unwrap().is_none());
    assert!(
        d.draft(id).await.unwrap().is_some(),
        "an imported draft stays for its job's pages"
    );
}

/// The LVS export through the API (issue 14, item 6): the admin's own
/// establishment only, JSON by default, the CSV on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lvs_export_through_the_api() {
    let app = start().await;
    import_as_system(
        &app,
        UAI_A,
        "Civilité;Nom;Prénom;Matière\r\nMonsieur;PLATON;Francis;Philosophie\r\n",
    )
    .await;
    let a = api_token(&app, "admin-a").await;
    let uri = format!("/api/v1/lvs?establishment={UAI_A}");
    let (status, body) = call(&app, Some(&a), Method::GET, &uri, Body::empty(), true).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let rows = parse(&body);
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_documented(&rows[0], "LvsRow");
    assert_eq!(
        (rows[0]["last_name"].as_str(), rows[0]["lvs_profile"].as_str()),
        (Some("PLATON"), Some("Professeur"))
    );

    let (status, body) = call(
        &app,
        Some(&a),
        Method::GET,
        &format!("{uri}&format=csv"),
        Body::empty(),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains(";PLATON;Francis;ENS;Professeur\r\n"));
    let (status, _) = call(
        &app,
        Some(&a),
        Method::GET,
        &format!("{uri}&format=xml"),
        Body::empty(),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let b = api_token(&app, "admin-b").await;
    let (status, _) = call(&app, Some(&b), Method::GET, &uri, Body::empty(), true).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "establishment A is not admin-b's");
}
