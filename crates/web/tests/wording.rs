//! Refusals in the pages' words: every refusal the wizard and the creation
//! form can produce names the page's boxes and fields, never a CLI option
//! (`--map`, `--confirm-deletions`…) nor a field id (`(civilite)`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_of_the_pages_is_in_their_words() {
    let app = start().await;
    let a = session(&app, "admin-a").await;
    let get = |uri: String| {
        let (app, a) = (&app, &a);
        async move { send(app, Some(a), Method::GET, &uri, None).await }
    };
    let post = |uri: String, form: String| {
        let (app, a) = (&app, &a);
        async move {
            send(
                app,
                Some(a),
                Method::POST,
                &uri,
                Some(format!("csrf={}&{form}", a.csrf)),
            )
            .await
        }
    };

    // Step 2: required fields without a column.
    let id = draft_of(&app, "admin-a", "Nom;Prénom\r\nPLATON;Francis\r\n", json!({})).await;
    let (_, page) = get(format!("/imports/{id}/correspondances")).await;
    assert!(page.contains("Champs obligatoires sans colonne : Civilité"), "{page}");
    assert_page_words("step 2, missing fields", &page);
    // Step 2: one field for two columns.
    let (status, page) = post(
        format!("/imports/{id}/correspondances"),
        "action=suivant&col0=nom&col1=nom".into(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("est choisi pour deux colonnes"), "{page}");
    assert_page_words("step 2, duplicate field", &page);

    // Step 3: lines in conflict, and the start refused for them.
    let file = "Civilité;Nom;Prénom;Matière\r\nDocteur;ZOLA;Emile;Français\r\nM.;HUGO;Victor;Français\r\n";
    let id = draft_of(&app, "admin-a", file, json!({})).await;
    let (_, page) = post(format!("/imports/{id}/verification"), String::new()).await;
    assert!(page.contains("role=\"alert\""), "{page}");
    assert_page_words("step 3, conflicts", &page);
    let (status, page) = post(format!("/imports/{id}/demarrer"), String::new()).await;
    assert!(
        matches!(status, StatusCode::SEE_OTHER | StatusCode::UNPROCESSABLE_ENTITY),
        "{status}"
    );
    assert_page_words("start with conflicts", &page);

    // Step 4: a Complet file above the threshold, and a wrong number typed.
    let everyone = "Civilité;Nom;Prénom;Matière\r\nM.;ARAGON;Louis;Lettres\r\nM.;BALZAC;Honoré;Lettres\r\nM.;CAMUS;Albert;Lettres\r\nM.;DIDEROT;Denis;Lettres\r\n";
    import_for(&app, Some("admin-a"), UAI_A, everyone).await;
    let id = draft_of(
        &app,
        "admin-a",
        "Civilité;Nom;Prénom;Matière\r\nM.;ARAGON;Louis;Lettres\r\n",
        json!({"complet": true}),
    )
    .await;
    let (_, page) = get(format!("/imports/{id}/recapitulatif")).await;
    assert!(
        page.contains("Ces 3 désactivations dépassent le seuil de 10 % des 4 comptes concernés (0 sans confirmation)."),
        "{page}"
    );
    assert_page_words("step 4, threshold", &page);
    let plan = hidden_value(&page, "plan");
    let (status, page) = post(format!("/imports/{id}/demarrer"), format!("plan={plan}&confirmation=2")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let next_to_field = page.split("id=\"erreur-confirmation\">").nth(1).unwrap_or_default();
    assert!(
        next_to_field.starts_with("Vous avez tapé 2, mais l&#39;import désactivera 3 compte(s) sur les 4 concernés, au-delà du seuil de 10 % (0 compte(s) sans confirmation) : vérifiez la liste, puis tapez 3 pour confirmer."),
        "{page}"
    );
    assert_page_words("step 4, wrong confirmation", &page);
    // A Complet file with conflicts.
    let id = draft_of(&app, "admin-a", file, json!({"complet": true})).await;
    let (_, page) = get(format!("/imports/{id}/verification")).await;
    assert_page_words("step 3, Complet with conflicts", &page);

    // The creation form.
    for (form, says) in [
        ("profile=administratif&establishment=0750654D&last_name=Roux&first_name=Anne", "indiquez son code"),
        (
            "profile=administratif&establishment=0750654D&last_name=Roux&first_name=Anne&function=ENS",
            "avec le profil enseignant",
        ),
        ("profile=eleve&establishment=0750654D&last_name=Roux&first_name=Anne", "date de naissance"),
        ("profile=enseignant&establishment=0750654D&last_name=Aragon&first_name=Louis&civility=M.", "la clé"),
        (
            "profile=enseignant&establishment=0750654D&last_name=Roux&first_name=Anne&login=laragon&password=Un-mot-de-passe-2026",
            "le login laragon est déjà attribué",
        ),
    ] {
        let (_, page) = post("/utilisateurs/nouveau".into(), form.into()).await;
        assert!(page.contains(says), "{form}: {page}");
        assert_page_words(form, &page);
    }
}
