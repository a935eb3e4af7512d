//! Route by route: an establishment admin cannot read or change another
//! establishment's drafts, jobs, result files or users; nothing works without
//! a session; no state-changing request passes without its CSRF token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use std::time::Duration;
use store::web::WebDirectory;
use support::*;
use tower::ServiceExt;

/// The history id of a finished job.
/// The account id of the teacher PLATON imported by admin-a.
async fn platon(app: &App) -> i64 {
    use store::Directory;
    let found = app
        .state
        .directory
        .search_users(&store::UserQuery {
            last_name: Some("platon".into()),
            limit: 2,
            ..store::UserQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    found[0].id
}

async fn import_id(app: &App, job: i64) -> i64 {
    app.state.directory.job(job).await.unwrap().unwrap().import_id.unwrap()
}

/// A finished import of admin-a in establishment A: its draft and job ids.
async fn import_of_admin_a(app: &App) -> (i64, i64) {
    let (admin, _) = app.state.directory.admin_by_login("admin-a").await.unwrap().unwrap();
    let file = "Civilité;Nom;Prénom;Matière\r\nM.;PLATON;Francis;Philosophie\r\nDocteur;ZOLA;Emile;Français\r\n";
    let settings = serde_json::json!({
        "profile": "enseignant", "establishment": UAI_A, "establishments_from_file": false,
        "separator": ";", "encoding": "auto", "has_header": true, "complet": false,
        "overrides": [], "edits": {}, "skip_conflicts": true, "confirm_deletions": null
    });
    let now = chrono::Utc::now();
    let draft = app
        .state
        .directory
        .create_draft(admin.id, "a.csv", file.as_bytes(), &settings.to_string(), now)
        .await
        .unwrap();
    let job = app.state.directory.create_job(draft, admin.id, now).await.unwrap();
    for _ in 0..100 {
        let j = app.state.directory.job(job).await.unwrap().unwrap();
        if j.status.id() == "succeeded" {
            return (draft, job);
        }
        assert!(matches!(j.status.id(), "queued" | "running"), "{j:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn establishment_admins_stay_in_their_establishments() {
    let app = start().await;
    let (draft, job) = import_of_admin_a(&app).await;
    let import = import_id(&app, job).await;
    let account = platon(&app).await;
    let a = session(&app, "admin-a").await;
    let b = session(&app, "admin-b").await;

    // The import committed: its draft (file, edited cells) is wiped, and its
    // steps lead its owner to the import's job, never to a second start.
    assert!(app
        .state
        .directory
        .draft(draft)
        .await
        .unwrap()
        .unwrap()
        .purged_at
        .is_some());
    for uri in [
        format!("/imports/{draft}/correspondances"),
        format!("/imports/{draft}/verification"),
        format!("/imports/{draft}/recapitulatif"),
        format!("/imports/{draft}/lignes/3"),
    ] {
        let location = redirect_of(&app, Some(&a), Method::GET, &uri, None).await;
        assert_eq!(location, Some(format!("/taches/{job}")), "{uri}");
    }
    // Establishments are a system admin's to add or rename.
    let (status, _) = send(
        &app,
        Some(&a),
        Method::POST,
        "/etablissements",
        Some(format!("csrf={}&uai={UAI_A}&name=Autre", a.csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The LVS profiles are the whole ENT's: an establishment admin reads them only.
    let (status, table) = send(&app, Some(&a), Method::GET, "/lvs", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        table.contains("Documentaliste") && !table.contains("id=\"profil-DOC\""),
        "{table}"
    );
    let (status, _) = send(
        &app,
        Some(&a),
        Method::POST,
        "/lvs",
        Some(format!("csrf={}&code=DOC&action=exclure", a.csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, listed) = send(&app, Some(&a), Method::GET, "/etablissements", None).await;
    assert!(
        listed.contains(UAI_A) && !listed.contains(UAI_B) && !listed.contains("id=\"ajout\""),
        "{listed}"
    );
    // The owner can read everything of the import.
    for uri in [
        format!("/taches/{job}"),
        format!("/taches/{job}/resultat.csv"),
        format!("/suivi/{import}"),
        format!("/suivi/{import}/resultat.csv"),
        format!("/suivi/{import}/fiches"),
        "/suivi".to_string(),
        format!("/export/utilisateurs.csv?etablissement={UAI_A}&profil=enseignant"),
        format!("/export/lvs.csv?etablissement={UAI_A}"),
        format!("/utilisateurs/{account}"),
    ] {
        let (status, body) = send(&app, Some(&a), Method::GET, &uri, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    }
    // Instants in Paris time, never UTC.
    let entry = {
        use store::history::History;
        app.state.directory.import_entry(import).await.unwrap().unwrap()
    };
    let (_, page) = send(&app, Some(&a), Method::GET, &format!("/suivi/{import}"), None).await;
    let paris = domain::time::minute(entry.started_at);
    let utc = entry.started_at.format("%d/%m/%Y %H:%M").to_string();
    assert!(page.contains(&paris), "{paris} in {page}");
    assert!(!page.contains(&utc), "no UTC time ({utc}) in {page}");
    let (_, slips) = send(&app, Some(&a), Method::GET, &format!("/suivi/{import}/fiches"), None).await;
    assert!(slips.contains("fplaton") && slips.contains("PLATON"), "{slips}");
    let (_, result) = send(
        &app,
        Some(&a),
        Method::GET,
        &format!("/taches/{job}/resultat.csv"),
        None,
    )
    .await;
    assert!(result.contains("PERSON.m-mmefrancisplaton"));

    // The other establishment's admin gets 404 everywhere, reading or writing.
    let gets = [
        format!("/imports/{draft}/correspondances"),
        format!("/imports/{draft}/verification"),
        format!("/imports/{draft}/recapitulatif"),
        format!("/imports/{draft}/lignes/3"),
        format!("/taches/{job}"),
        format!("/taches/{job}/resultat.csv"),
        format!("/utilisateurs?etablissement={UAI_A}"),
        format!("/suivi/{import}"),
        format!("/suivi/{import}/resultat.csv"),
        format!("/suivi/{import}/fiches"),
        format!("/export/utilisateurs.csv?etablissement={UAI_A}&profil=enseignant"),
        format!("/export/lvs.csv?etablissement={UAI_A}"),
        format!("/utilisateurs/{account}"),
    ];
    for uri in &gets {
        let (status, body) = send(&app, Some(&b), Method::GET, uri, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body}");
        assert!(!body.contains("PLATON"), "{uri} leaks data");
    }
    let csrf = format!("csrf={}", b.csrf);
    let posts = [
        (
            format!("/imports/{draft}/correspondances"),
            format!("{csrf}&action=suivant&col0=civilite"),
        ),
        (format!("/imports/{draft}/verification"), format!("{csrf}&ignorer=oui")),
        (
            format!("/imports/{draft}/lignes/3"),
            format!("{csrf}&c0=M.&c1=ZOLA&c2=Emile&c3=Fr"),
        ),
        (format!("/imports/{draft}/demarrer"), csrf.clone()),
        (format!("/suivi/{import}/restaurer"), csrf.clone()),
        (
            format!("/utilisateurs/{account}"),
            format!("{csrf}&version=2026-01-01T00:00:00Z&networks=0.0.0.0/0&last_day="),
        ),
    ];
    for (uri, form) in &posts {
        let (status, _) = send(&app, Some(&b), Method::POST, uri, Some(form.clone())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
    let untouched = store::accounts::Accounts::account(app.state.directory.as_ref(), account)
        .await
        .unwrap()
        .unwrap();
    assert!(untouched.state.settings.networks.is_empty(), "admin-b changed nothing");
    // The users page of admin-b shows establishment B only, where nobody was imported.
    let (status, body) = send(&app, Some(&b), Method::GET, "/utilisateurs", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !body.contains("PLATON") && body.contains(UAI_B) && !body.contains(UAI_A),
        "{body}"
    );
    // admin-b's history does not list admin-a's import.
    let (status, body) = send(&app, Some(&b), Method::GET, "/suivi", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains(&format!("data-import=\"{import}\"")), "{body}");
    let (_, body) = send(&app, Some(&a), Method::GET, "/suivi", None).await;
    assert!(body.contains(&format!("data-import=\"{import}\"")), "{body}");
    // And admin-a sees its teacher.
    let (_, body) = send(&app, Some(&a), Method::GET, "/utilisateurs", None).await;
    assert!(body.contains("PLATON"));
    // Step 1 refuses an establishment out of scope (the form only offers B, a forged request says A).
    let boundary = "XyZ";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"profil\"\r\n\r\nenseignant\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"etablissement\"\r\n\r\n{UAI_A}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"fichier\"; filename=\"x.csv\"\r\nContent-Type: text/csv\r\n\r\nNom;Prénom\r\nA;B\r\n--{boundary}--\r\n",
        b.csrf
    );
    let req = Request::post("/imports")
        .header(header::COOKIE, &b.cookie)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(multipart))
        .unwrap();
    let response = web::router(app.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "form shown again with the error, no draft created"
    );
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("Choisissez un de vos établissements"));
    assert!(app.state.directory.draft(draft + 1).await.unwrap().is_none());

    // A system administrator may read the users of every establishment.
    let s = session(&app, "systeme").await;
    let (status, body) = send(
        &app,
        Some(&s),
        Method::GET,
        &format!("/utilisateurs?etablissement={UAI_A}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("PLATON"));
    // ...and every account's page.
    let (status, body) = send(&app, Some(&s), Method::GET, &format!("/utilisateurs/{account}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("fplaton"), "{body}");
    // ...and every import's page, but not the passwords of an import someone else ran.
    let (status, _) = send(&app, Some(&s), Method::GET, &format!("/suivi/{import}"), None).await;
    assert_eq!(status, StatusCode::OK);
    for uri in [
        format!("/suivi/{import}/fiches"),
        format!("/suivi/{import}/resultat.csv"),
    ] {
        let (status, body) = send(&app, Some(&s), Method::GET, &uri, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(!body.contains("fplaton"), "{uri} leaks passwords");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_no_access_and_csrf_everywhere() {
    let app = start().await;
    let (draft, job) = import_of_admin_a(&app).await;
    for uri in [
        "/",
        "/imports/nouveau",
        "/utilisateurs",
        "/suivi",
        "/export",
        &format!("/imports/{draft}/verification"),
        &format!("/taches/{job}/resultat.csv"),
        &format!("/suivi/{}/fiches", import_id(&app, job).await),
        &format!("/utilisateurs/{}", platon(&app).await),
    ] {
        let (status, _) = send(&app, None, Method::GET, uri, None).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{uri} redirects to the login page");
    }
    let a = session(&app, "admin-a").await;
    for (uri, form) in [
        (format!("/imports/{draft}/verification"), "ignorer=oui".to_string()),
        (format!("/imports/{draft}/demarrer"), "csrf=faux".to_string()),
        (
            format!("/suivi/{}/restaurer", import_id(&app, job).await),
            "csrf=faux".to_string(),
        ),
        ("/deconnexion".to_string(), "csrf=".to_string()),
        (
            format!("/utilisateurs/{}", platon(&app).await),
            "csrf=faux&version=2026-01-01T00:00:00Z&networks=10.0.0.0/8".to_string(),
        ),
    ] {
        let (status, _) = send(&app, Some(&a), Method::POST, &uri, Some(form)).await;
        assert!(
            matches!(status, StatusCode::FORBIDDEN | StatusCode::UNPROCESSABLE_ENTITY),
            "{uri}: {status}"
        );
    }
    // Login itself needs the token of its form.
    let (status, _) = send(
        &app,
        None,
        Method::POST,
        "/connexion",
        Some(format!("login=admin-a&password={PASSWORD}&csrf=x")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_throttled_and_cookies_are_safe() {
    let app = start().await;
    let (status, page) = send(&app, None, Method::GET, "/connexion", None).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = hidden_value(&page, "csrf");
    let post = |password: String| {
        let csrf = csrf.clone();
        let state = app.state.clone();
        async move {
            let req = Request::post("/connexion")
                .header(header::COOKIE, format!("annuaire_login_csrf={csrf}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("login=admin-a&password={password}&csrf={csrf}")))
                .unwrap();
            web::router(state).oneshot(req).await.unwrap()
        }
    };
    let ok = post(PASSWORD.to_string()).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let cookie = ok
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("annuaire_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    for _ in 0..5 {
        let r = post("mauvais".into()).await;
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains("incorrect"));
    }
    // Even the right password is refused now.
    let r = post(PASSWORD.to_string()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("Trop de tentatives"));

    // The operator sees them: five wrong passwords and one throttled attempt.
    let (status, metrics) = send(&app, None, Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.contains("annuaire_sign_in_failures_total 6"), "{metrics}");
    assert!(metrics.contains("annuaire_queued_jobs 0"), "{metrics}");
    assert!(
        metrics.contains("annuaire_http_responses_total{class=\"2xx\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("admin-a"), "counts only, no login: {metrics}");
}

/// The academic feed's pupil ↔ person in charge links, on both account
/// pages, and only for the admins of the pupil's establishment.
#[tokio::test]
async fn a_pupil_page_shows_the_persons_in_charge_and_a_parent_page_the_children() {
    let app = start().await;
    let attr = |name: &str, value: &str| format!("<attr name=\"{name}\"><value>{value}</value></attr>");
    let request = |category: &str, id: &str, attrs: String| {
        let kind = if category == "EtabEducNat" {
            "categorieStructure"
        } else {
            "categoriePersonne"
        };
        format!(
            "<addRequest><operationalAttributes>{}</operationalAttributes><identifier><id>{id}</id></identifier><attributes>{attrs}</attributes></addRequest>",
            attr(kind, category)
        )
    };
    let file = |kind: &str, body: String| {
        store::aaf::FeedFile::from_bytes(
            format!("ENT_{UAI_A}_Complet_20261125_{kind}_0000.xml"),
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ficAlimMENESR>{body}</ficAlimMENESR>"),
        )
    };
    // The persons name the collège by its jointure (4931), as real feeds do.
    let files = [
        file(
            "EtabEducNat",
            request(
                "EtabEducNat",
                "4931",
                [
                    attr("ENTStructureJointure", "4931"),
                    attr("ENTStructureUAI", UAI_A),
                    attr("ENTStructureNomCourant", "CLG$JEAN MOULIN$PARIS"),
                ]
                .concat(),
            ),
        ),
        file(
            "Eleve",
            request(
                "Eleve",
                "111",
                [
                    attr("ENTPersonJointure", "111"),
                    attr("sn", "LUCAS"),
                    attr("givenName", "Léa"),
                    attr("ENTEleveINE", "123456789AB"),
                    attr("ENTPersonStructRattach", "4931"),
                    attr("ENTEleveClasses", "4931$3C"),
                    attr("ENTEleveLibelleMEF", "3EME"),
                    attr("ENTElevePersRelEleve", "222$20$1$1$0$1"),
                ]
                .concat(),
            ),
        ),
        file(
            "PersRelEleve",
            request(
                "PersRelEleve",
                "222",
                [
                    attr("ENTPersonJointure", "222"),
                    attr("sn", "LUCAS"),
                    attr("givenName", "Marc"),
                    attr("mobile", "06 12 34 56 78"),
                    attr("ENTAuxPersRelEleveEleve", "111"),
                ]
                .concat(),
            ),
        ),
    ];
    let mut rng = domain::password::os_rng();
    let outcome = store::aaf::run_aaf_import(
        app.state.directory.as_ref(),
        &files,
        &store::aaf::AafRequest::default(),
        &store::service::SystemClock,
        &mut rng,
    )
    .await
    .unwrap();
    assert_eq!(outcome.report.created, 2, "{:?}", outcome.report.issues);
    let id_of = |key: &'static str| {
        let app = &app;
        async move {
            use store::accounts::Accounts;
            app.state.directory.account_id_by_key(key).await.unwrap().unwrap()
        }
    };
    let (pupil, parent) = (id_of("PERSON.111").await, id_of("PERSON.222").await);

    let a = session(&app, "admin-a").await;
    let (status, body) = send(&app, Some(&a), Method::GET, &format!("/utilisateurs/{pupil}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<h2>Responsables de l&#39;élève</h2>"), "{body}");
    assert!(
        body.contains(&format!("href=\"/utilisateurs/{parent}\">LUCAS Marc</a>")),
        "{body}"
    );
    assert!(
        body.contains("père, responsable légal, responsable financier"),
        "{body}"
    );
    assert!(
        body.contains("123456789AB") && body.contains("3C") && body.contains("Niveau") && body.contains("3EME"),
        "INE, class and level: {body}"
    );
    let (status, body) = send(&app, Some(&a), Method::GET, &format!("/utilisateurs/{parent}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<h2>Enfants</h2>"), "{body}");
    assert!(
        body.contains(&format!("href=\"/utilisateurs/{pupil}\">LUCAS Léa</a>")),
        "{body}"
    );
    assert!(
        body.contains("CLG - JEAN MOULIN - PARIS"),
        "the parent is in the child's collège: {body}"
    );
    // The run's history page counts the accounts created per profile.
    let run = outcome.report.import_id.unwrap();
    let (status, body) = send(&app, Some(&a), Method::GET, &format!("/suivi/{run}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Comptes créés par profil"), "{body}");
    assert!(body.contains("Élève : 1, Parent : 1"), "{body}");

    let b = session(&app, "admin-b").await;
    for id in [pupil, parent] {
        let (status, _) = send(&app, Some(&b), Method::GET, &format!("/utilisateurs/{id}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

/// The lines skipped by "Ne pas importer les lignes en conflit" are offered
/// on step 5, on the import's page and in the mail, to the import's owner only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_lines_are_offered_to_their_owner_only() {
    use store::history::History;
    let app = start().await;
    let (_, job) = import_of_admin_a(&app).await;
    let import = import_id(&app, job).await;
    let a = session(&app, "admin-a").await;
    let b = session(&app, "admin-b").await;
    let url = format!("/suivi/{import}/lignes-ignorees.csv");
    for page in [format!("/taches/{job}"), format!("/suivi/{import}")] {
        let (_, html) = send(&app, Some(&a), Method::GET, &page, None).await;
        assert!(html.contains(&format!("href=\"{url}\"")), "{page}: {html}");
        assert!(html.contains("Télécharger les 1 ligne(s) ignorée(s)"), "{page}: {html}");
    }
    // Step 5 says where the end-of-import mail goes (guide §5.2.E).
    let (_, step5) = send(&app, Some(&a), Method::GET, &format!("/taches/{job}"), None).await;
    assert!(
        step5.contains(&format!(
            "Un courriel vous sera envoyé à {ADMIN_A_EMAIL} une fois l&#39;import terminé"
        )),
        "{step5}"
    );
    let (status, csv) = send(&app, Some(&a), Method::GET, &url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(csv.contains("Docteur;ZOLA;Emile;Français;ligne 3"), "{csv}");
    let (status, _) = send(&app, Some(&b), Method::GET, &url, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut told = String::new();
    for _ in 0..50 {
        if let Some(m) = app.state.directory.mails_of_import(import).await.unwrap().first() {
            told = m.body_text.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(told.contains("Lignes en conflit ignorées : 1"), "{told}");
    assert!(told.contains("Ces lignes sont dans un fichier CSV"), "{told}");
}
