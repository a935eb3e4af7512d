//! Unfinished imports: listed on the home page to resume or discard, and a
//! draft that was imported never offers a second "Démarrer".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::http::{Method, StatusCode};
use serde_json::json;
use store::web::WebDirectory;
use support::*;

const TEACHERS: &str = "Civilité;Nom;Prénom;Matière\r\nM.;ARAGON;Louis;Lettres\r\nM.;BALZAC;Honoré;Lettres\r\n";

async fn wait_until_done(app: &App, job: i64) {
    for _ in 0..200 {
        let status = app.state.directory.job(job).await.unwrap().unwrap().status;
        if !status.is_running() {
            assert_eq!(status.id(), "succeeded");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {job} did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_draft_shows_its_import_and_unfinished_ones_wait_on_the_home_page() {
    let app = start().await;
    let a = session(&app, "admin-a").await;
    let b = session(&app, "admin-b").await;
    let started = draft_of(&app, "admin-a", TEACHERS, json!({})).await;
    let left = draft_of(&app, "admin-a", TEACHERS, json!({"complet": true})).await;

    // Both wait on their admin's home page, and only theirs.
    let (_, home) = send(&app, Some(&a), Method::GET, "/", None).await;
    for id in [started, left] {
        assert!(home.contains(&format!("id=\"brouillon-{id}\"")), "{home}");
        assert!(
            home.contains(&format!("href=\"/imports/{id}/correspondances\"")),
            "{home}"
        );
    }
    assert!(
        home.contains("Enseignant, Collège Jean Moulin (0750654D), Complet"),
        "{home}"
    );
    let (_, others) = send(&app, Some(&b), Method::GET, "/", None).await;
    assert!(!others.contains("brouillon-"), "{others}");

    // Started: step 4 and "Démarrer" now lead to the one import.
    let start = format!("/imports/{started}/demarrer");
    let job_page = redirect_of(&app, Some(&a), Method::POST, &start, Some(format!("csrf={}", a.csrf)))
        .await
        .unwrap();
    let job: i64 = job_page.strip_prefix("/taches/").unwrap().parse().unwrap();
    wait_until_done(&app, job).await;
    for (method, uri, form) in [
        (Method::GET, format!("/imports/{started}/recapitulatif"), None),
        (Method::GET, format!("/imports/{started}/correspondances"), None),
        (Method::POST, start.clone(), Some(format!("csrf={}", a.csrf))),
    ] {
        let location = redirect_of(&app, Some(&a), method, &uri, form).await;
        assert_eq!(location.as_deref(), Some(job_page.as_str()), "{uri}");
    }
    assert_eq!(app.state.directory.jobs_of_draft(started).await.unwrap().len(), 1);
    let (status, body) = call(
        &app,
        Some(&api_token(&app, "admin-a").await),
        Method::GET,
        &format!("/api/v1/drafts/{started}/plan"),
        axum::body::Body::empty(),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{}", String::from_utf8_lossy(&body));
    assert!(parse(&body)["error"]
        .as_str()
        .unwrap()
        .contains(&format!("tâche {job}")));
    let (_, home) = send(&app, Some(&a), Method::GET, "/", None).await;
    assert!(!home.contains(&format!("brouillon-{started}")), "{home}");

    // Discarded: CSRF first, then wiped and gone from the list.
    let discard = format!("/imports/{left}/abandon");
    let (status, _) = send(&app, Some(&a), Method::POST, &discard, Some("csrf=faux".into())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(&app, Some(&b), Method::POST, &discard, Some(format!("csrf={}", b.csrf))).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another admin's draft does not exist for them"
    );
    let location = redirect_of(&app, Some(&a), Method::POST, &discard, Some(format!("csrf={}", a.csrf))).await;
    assert_eq!(location.as_deref(), Some("/"));
    let (_, home) = send(&app, Some(&a), Method::GET, "/", None).await;
    assert!(!home.contains("brouillon-"), "{home}");
    assert!(app
        .state
        .directory
        .draft(left)
        .await
        .unwrap()
        .unwrap()
        .file_bytes
        .is_empty());
    let (status, page) = send(
        &app,
        Some(&a),
        Method::GET,
        &format!("/imports/{left}/correspondances"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("effacé"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_4_of_a_file_for_several_establishments_counts_each_by_name() {
    let app = start().await;
    let s = session(&app, "systeme").await;
    let staff = "Civilité;Nom;Prénom;Fonction;RNE\r\nM.;DUPONT;Jean;ADF;0750654D\r\nMme;MARTIN;Anne;DIR;0750655E\r\nM.;DURAND;Paul;EDU;0750655E\r\n";
    let id = draft_of(
        &app,
        "systeme",
        staff,
        json!({"profile": "administratif", "establishments_from_file": true}),
    )
    .await;
    let (status, page) = send(
        &app,
        Some(&s),
        Method::GET,
        &format!("/imports/{id}/recapitulatif"),
        None,
    )
    .await;
    if status != StatusCode::OK {
        let (_, check) = send(
            &app,
            Some(&s),
            Method::GET,
            &format!("/imports/{id}/verification"),
            None,
        )
        .await;
        panic!("{status}: {check}");
    }
    let table = page
        .split("id=\"par-etablissement\"")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no table per establishment: {page}"));
    assert!(
        table.contains("<th scope=\"row\">Collège Jean Moulin (0750654D)</th><td>1</td>"),
        "{table}"
    );
    assert!(
        table.contains("<th scope=\"row\">Lycée Victor Hugo (0750655E)</th><td>2</td>"),
        "{table}"
    );
}
