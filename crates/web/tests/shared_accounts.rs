//! One school's admin cannot take another school's accounts: admin-a names
//! admin-b's teachers in a file, through the pages and through the API.
//! Attaching them needs a confirmation, hands out no login, leaves their
//! identity to both schools together, and admin-b is told.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;
use store::accounts::Accounts;
use store::web::WebDirectory;
use store::Directory;
use support::*;

const ADMIN_B_EMAIL: &str = "admin-b@lycee.test";

/// Teachers of establishment B, imported by the system: their logins.
async fn teachers_of_b(app: &App) -> Vec<String> {
    let d = app.state.directory.as_ref();
    let file = "Civilité;Nom;Prénom;Matière\r\nM.;PLATON;Francis;Philosophie\r\nM.;ZOLA;Emile;Français\r\n";
    let outcome = import_as_system(app, UAI_B, file).await;
    assert_eq!(outcome.report.created, 2);
    let (admin_b, _) = d.admin_by_login("admin-b").await.unwrap().unwrap();
    d.set_admin_email(admin_b.id, Some(ADMIN_B_EMAIL)).await.unwrap();
    outcome
        .plan
        .creates
        .iter()
        .map(|c| c.login.as_str().to_string())
        .collect()
}

async fn account_id(app: &App, last_name: &str) -> i64 {
    let found = app
        .state
        .directory
        .search_users(&store::UserQuery {
            last_name: Some(last_name.into()),
            limit: 2,
            ..store::UserQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    found[0].id
}

/// No login as a word of the text (a generated login is also part of its
/// owner's sync key, `PERSON.m-mmeemilezola`, which may be shown).
fn assert_no_login(what: &str, text: &str, logins: &[String]) {
    for login in logins {
        assert!(!shows_word(text, login), "{what} shows login {login}: {text}");
    }
}

fn shows_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[test]
fn a_login_inside_a_key_is_not_a_shown_login() {
    assert!(!shows_word("PERSON.m-mmeemilezola", "ezola"));
    assert!(shows_word("<td>ezola</td>", "ezola"));
    assert!(shows_word("x;ezola;y", "ezola"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_schools_teacher_is_attached_only_when_confirmed_through_the_api() {
    let app = start().await;
    let logins = teachers_of_b(&app).await;
    let t = api_token(&app, "admin-a").await;
    let file = "Civilité;Nom;Prénom;Matière\r\nM.;PLATON;Francis;Mathématiques\r\nM.;HUGO;Victor;Français\r\n";
    let (status, body) = call(
        &app,
        Some(&t),
        Method::POST,
        &format!("/api/v1/drafts?profile=enseignant&establishment={UAI_A}&file_name=a.csv"),
        Body::from(file),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let id = parse(&body)["draft"].as_i64().unwrap();

    let (_, body) = call(
        &app,
        Some(&t),
        Method::GET,
        &format!("/api/v1/drafts/{id}/check"),
        Body::empty(),
        true,
    )
    .await;
    let check = parse(&body);
    assert_eq!(check["conflict_details"][0]["code"], "existing_elsewhere", "{check}");
    assert!(check.to_string().contains("Lycée Victor Hugo (0750655E)"), "{check}");
    assert_no_login("check", &check.to_string(), &logins);

    // Without the confirmation the start is refused with the report.
    let (status, body) = call(
        &app,
        Some(&t),
        Method::POST,
        &format!("/api/v1/drafts/{id}/start"),
        Body::from("{}"),
        true,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        String::from_utf8_lossy(&body)
    );

    let (status, body) = call(
        &app,
        Some(&t),
        Method::GET,
        &format!("/api/v1/drafts/{id}/plan?attach_existing=true"),
        Body::empty(),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let plan = parse(&body);
    assert_eq!(plan["report"]["attached"], 1, "{plan}");
    let update = &plan["updates"][0];
    assert!(update.get("login").is_none(), "{update}");
    assert_eq!(update["shared_with"][0]["uai"], UAI_B, "{update}");
    assert_eq!(
        update["changes"],
        json!([]),
        "the identity is left to its schools: {update}"
    );
    assert_no_login("plan", &plan.to_string(), &logins);

    let start = json!({"attach_existing": true, "plan": plan["plan"]});
    let (status, body) = call(
        &app,
        Some(&t),
        Method::POST,
        &format!("/api/v1/drafts/{id}/start"),
        Body::from(start.to_string()),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&body));
    let job = parse(&body)["job"].as_i64().unwrap();
    let last = wait_job(&app, &t, job).await;
    assert_eq!(last["status"], "succeeded", "{last}");
    assert_no_login("job", &last.to_string(), &logins);
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
    let result = String::from_utf8_lossy(&body).into_owned();
    assert!(result.contains("PERSON.m-mmefrancisplaton"), "{result}");
    assert_no_login("result file", &result, &logins);

    // The slips of that import: only the created teacher.
    let import = last["import_id"].as_i64().unwrap();
    let a = session(&app, "admin-a").await;
    let (status, slips) = send(&app, Some(&a), Method::GET, &format!("/suivi/{import}/fiches"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(slips.contains("HUGO") && !slips.contains("PLATON"), "{slips}");
    assert_no_login("slips", &slips, &logins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_schools_teacher_through_the_pages_then_left_to_both_schools() {
    let app = start().await;
    let logins = teachers_of_b(&app).await;
    let (admin, _) = app.state.directory.admin_by_login("admin-a").await.unwrap().unwrap();
    let file = "Civilité;Nom;Prénom;Matière\r\nM.;ZOLA;Emile;Lettres\r\n";
    let settings = json!({
        "profile": "enseignant", "establishment": UAI_A, "establishments_from_file": false,
        "separator": ";", "encoding": "auto", "has_header": true, "complet": false,
        "overrides": [], "edits": {}, "skip_conflicts": false, "confirm_deletions": null
    });
    let now = chrono::Utc::now();
    let draft = app
        .state
        .directory
        .create_draft(admin.id, "a.csv", file.as_bytes(), &settings.to_string(), now)
        .await
        .unwrap();
    let a = session(&app, "admin-a").await;

    // Step 3: the line is in conflict, says whose it is, and offers the confirmation.
    let (status, step3) = send(
        &app,
        Some(&a),
        Method::GET,
        &format!("/imports/{draft}/verification"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        step3.contains("compte existant dans un autre établissement : Lycée Victor Hugo (0750655E)"),
        "{step3}"
    );
    assert!(step3.contains("id=\"rattacher\""), "{step3}");
    assert_no_login("step 3", &step3, &logins);
    let (_, refused) = send(
        &app,
        Some(&a),
        Method::POST,
        &format!("/imports/{draft}/verification"),
        Some(format!("csrf={}", a.csrf)),
    )
    .await;
    assert!(refused.contains("role=\"alert\""), "{refused}");

    let (status, _) = send(
        &app,
        Some(&a),
        Method::POST,
        &format!("/imports/{draft}/verification"),
        Some(format!("csrf={}&rattacher=oui", a.csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, step4) = send(
        &app,
        Some(&a),
        Method::GET,
        &format!("/imports/{draft}/recapitulatif"),
        None,
    )
    .await;
    assert!(
        step4.contains("Comptes d'autres établissements rattachés au vôtre (1)"),
        "{step4}"
    );
    assert!(
        step4.contains("ZOLA Emile : déjà dans Lycée Victor Hugo (0750655E)"),
        "{step4}"
    );
    assert_no_login("step 4", &step4, &logins);
    let plan = hidden_value(&step4, "plan");
    let (status, _) = send(
        &app,
        Some(&a),
        Method::POST,
        &format!("/imports/{draft}/demarrer"),
        Some(format!("csrf={}&plan={plan}", a.csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let zola = account_id(&app, "zola").await;
    let mut attached = false;
    for _ in 0..100 {
        let detail = app.state.directory.account(zola).await.unwrap().unwrap();
        if detail.memberships.iter().any(|m| m.uai.as_str() == UAI_A && m.active) {
            attached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(attached, "the job attached ZOLA to A");

    // admin-a sees the account, without its login and without the settings form.
    let (status, page) = send(&app, Some(&a), Method::GET, &format!("/utilisateurs/{zola}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("id=\"compte-partage\"") && !page.contains("id=\"enregistrer\""),
        "{page}"
    );
    assert_no_login("account page", &page, &logins);
    let (_, list) = send(
        &app,
        Some(&a),
        Method::GET,
        &format!("/utilisateurs?nom=zola&etablissement={UAI_A}"),
        None,
    )
    .await;
    assert!(list.contains("ZOLA"), "{list}");
    assert_no_login("users list", &list, &logins);
    let (_, export) = send(
        &app,
        Some(&a),
        Method::GET,
        &format!("/export/utilisateurs.csv?etablissement={UAI_A}&profil=enseignant"),
        None,
    )
    .await;
    assert!(export.contains("PERSON.m-mmeemilezola"), "{export}");
    assert_no_login("export", &export, &logins);

    // A forged save changes nothing: neither school alone owns a shared account.
    let version = hidden_value(&page, "version");
    let before = app.state.directory.account(zola).await.unwrap().unwrap();
    for admin in ["admin-a", "admin-b"] {
        let s = session(&app, admin).await;
        let (status, answer) = send(
            &app,
            Some(&s),
            Method::POST,
            &format!("/utilisateurs/{zola}"),
            Some(format!(
                "csrf={}&version={version}&last_day=30/06/2027&networks=10.0.0.0/8&last_name=Autre&first_name=Nom",
                s.csrf
            )),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(answer.contains("ce compte est aussi actif dans"), "{admin}: {answer}");
    }
    let after = app.state.directory.account(zola).await.unwrap().unwrap();
    assert_eq!(
        (after.state.clone(), after.updated_at),
        (before.state.clone(), before.updated_at)
    );

    // admin-b is told: in the history, and by mail.
    let b = session(&app, "admin-b").await;
    let (_, history) = send(&app, Some(&b), Method::GET, "/suivi", None).await;
    assert!(
        history.contains("Emile ZOLA a été rattaché(e) à Collège Jean Moulin (0750654D) par admin-a le "),
        "{history}"
    );
    let (_, history_a) = send(&app, Some(&a), Method::GET, "/suivi", None).await;
    assert!(!history_a.contains("a été rattaché(e)"), "{history_a}");
    use store::history::History;
    let attachment = app
        .state
        .directory
        .attachments_seen_by(&store::history::Viewer::Everything, 5)
        .await
        .unwrap();
    assert_eq!(attachment.len(), 1);
    let mut notice = None;
    for _ in 0..50 {
        let queued = app
            .state
            .directory
            .mails_of_import(attachment[0].import_id)
            .await
            .unwrap();
        notice = queued.into_iter().find(|m| m.recipients == [ADMIN_B_EMAIL]);
        if notice.as_ref().is_some_and(|m| m.status.id() == "sent") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let notice = notice.expect("a notice to admin-b");
    assert_eq!(notice.status.id(), "sent", "{notice:?}");
    assert!(
        notice
            .body_text
            .contains("Emile ZOLA a été rattaché(e) à Collège Jean Moulin (0750654D) par admin-a"),
        "{}",
        notice.body_text
    );
    assert!(
        app.mails().iter().any(|m| m.contains(&format!("To: {ADMIN_B_EMAIL}"))),
        "{:?}",
        app.mails()
    );

    // admin-a may end their own membership, and then B owns the account alone again.
    let (status, left) = send(
        &app,
        Some(&a),
        Method::POST,
        &format!("/utilisateurs/{zola}/retrait"),
        Some(format!("csrf={}&version={version}&uai={UAI_A}", a.csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(left.contains("id=\"retire\""), "{left}");
    let (_, forged) = send(
        &app,
        Some(&a),
        Method::POST,
        &format!("/utilisateurs/{zola}/retrait"),
        Some(format!("csrf={}&version={version}&uai={UAI_B}", a.csrf)),
    )
    .await;
    assert!(forged.contains("role=\"alert\""), "{forged}");
    let detail = app.state.directory.account(zola).await.unwrap().unwrap();
    let active: Vec<&str> = detail
        .memberships
        .iter()
        .filter(|m| m.active)
        .map(|m| m.uai.as_str())
        .collect();
    assert_eq!(active, [UAI_B]);
    assert!(detail.user.active);
    let (_, page_b) = send(&app, Some(&b), Method::GET, &format!("/utilisateurs/{zola}"), None).await;
    assert!(page_b.contains("id=\"enregistrer\""), "B owns it alone again: {page_b}");
}
