//! The wizard driven through Debian's Chromium (chromedriver + fantoccini),
//! as an administrator uses it: the four flows of the issue, plus screenshots
//! of each step when `ANNUAIRE_SCREENSHOTS=DIR` is set (docs/screenshots).
//! Without a browser the tests say SKIPPED outside CI and fail in CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use store::Directory;
use support::*;

struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn find(candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
}

async fn browser() -> Option<Browser> {
    let driver_path = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
    let chromium = find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
    let (Some(driver_path), Some(chromium)) = (driver_path, chromium) else {
        store::testing::skip_unless_ci(
            "chromium and chromium-driver are not installed (.ci/run installs them; apt-get install chromium chromium-driver)",
        );
        return None;
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let driver = Command::new(driver_path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1100",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let caps = caps.as_object().unwrap().clone();
    let mut last_error = String::new();
    for _ in 0..50 {
        match ClientBuilder::native()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => {
                return Some(Browser {
                    client,
                    driver,
                    _profile: profile,
                })
            }
            Err(e) => {
                last_error = e.to_string();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    panic!("chromedriver did not answer: {last_error}");
}

/// axe-core's script, from its npm package (`npm ci` in tests/axe: `.ci/run`
/// and `scripts/test` install it). Without it the check says SKIPPED outside
/// CI and fails in CI.
fn axe_script() -> Option<&'static str> {
    static SCRIPT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    SCRIPT
        .get_or_init(|| {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/axe/node_modules/axe-core/axe.min.js"
            );
            let script = std::fs::read_to_string(path).ok();
            if script.is_none() {
                store::testing::skip_unless_ci(
                    "axe-core is not installed (npm ci --prefix crates/web/tests/axe; scripts/test does it)",
                );
            }
            script
        })
        .as_deref()
}

/// Runs axe-core on the page as it is and fails on any violation, named with
/// the elements concerned.
async fn assert_accessible(c: &Client, page: &str) {
    let Some(script) = axe_script() else { return };
    c.execute(script, vec![]).await.unwrap();
    let outcome = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
               .then(r => done({ passes: r.passes.length, violations: r.violations.map(v =>
                   v.id + ' (' + v.help + ') : ' + v.nodes.map(n => n.target.join(' ')).join(', ')) }))
               .catch(e => done({ passes: 0, violations: ['axe a échoué : ' + e] }));",
            vec![],
        )
        .await
        .unwrap();
    let violations: Vec<String> = serde_json::from_value(outcome["violations"].clone()).unwrap();
    assert!(violations.is_empty(), "{page}: {violations:#?}");
    assert!(
        outcome["passes"].as_u64().unwrap_or(0) > 5,
        "{page}: axe checked nothing ({outcome})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accessibility_check_finds_a_known_violation() {
    let Some(b) = browser().await else { return };
    let Some(script) = axe_script() else { return };
    let c = &b.client;
    c.goto("data:text/html,<html lang=fr><title>t</title><main><img src=x.png></main></html>")
        .await
        .unwrap();
    c.execute(script, vec![]).await.unwrap();
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document).then(r => done(r.violations.map(v => v.id)));",
            vec![],
        )
        .await
        .unwrap();
    assert!(found.as_array().unwrap().iter().any(|v| v == "image-alt"), "{found}");
    c.clone().close().await.unwrap();
}

/// Every page the tests look at is checked by axe-core on a laptop (1,366
/// px) and on a phone (390 px), where it must not scroll sideways; it is
/// photographed at both widths for docs/screenshots when
/// `ANNUAIRE_SCREENSHOTS=DIR` is set (`NAME.png`, `NAME-390.png`).
async fn shot(c: &Client, name: &str) {
    assert_page_words(name, &c.source().await.unwrap());
    let dir = std::env::var("ANNUAIRE_SCREENSHOTS").ok();
    let (width, height) = c.get_window_size().await.unwrap();
    for (w, h, suffix) in [(1366, 900, ""), (390, 844, "-390")] {
        c.set_window_size(w, h).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_accessible(c, &format!("{name}{suffix}")).await;
        let culprits = c
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth + 1
                   ? Array.from(document.querySelectorAll('body *'))
                       .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                       .map(e => e.tagName + '#' + e.id + '.' + e.className).slice(-5)
                   : []",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(culprits, serde_json::json!([]), "{name} scrolls sideways at {w} px");
        if let Some(dir) = &dir {
            if !suffix.is_empty() {
                // On a phone the menu fills the first screen: show the page's own content.
                c.execute(
                    "const m = document.querySelector('main'); if (m) m.scrollIntoView();",
                    vec![],
                )
                .await
                .unwrap();
            }
            std::fs::create_dir_all(dir).unwrap();
            let png = c.screenshot().await.unwrap();
            std::fs::write(std::path::Path::new(dir).join(format!("{name}{suffix}.png")), png).unwrap();
        }
    }
    c.set_window_size(u32::try_from(width).unwrap(), u32::try_from(height).unwrap())
        .await
        .unwrap();
    c.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// The text of a download, fetched by the page itself (with its session):
/// `url` is a JavaScript expression evaluated in the page.
async fn download(c: &Client, url: &str) -> String {
    let body = c
        .execute_async(
            &format!("const done = arguments[0]; fetch({url}).then(r => r.text()).then(done)"),
            vec![],
        )
        .await
        .unwrap();
    body.as_str().unwrap().to_string()
}

/// Whether the element of this id shows on the page.
async fn shown(c: &Client, id: &str) -> bool {
    c.find(Locator::Id(id)).await.unwrap().is_displayed().await.unwrap()
}

/// Clicks an element (a select's option, a box) that does not leave the page.
async fn pick(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Clicks a button that submits a form and waits until the next page replaced this one.
async fn click_and_wait(c: &Client, css: &str) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
    for _ in 0..200 {
        if old.tag_name().await.is_err() {
            break; // the old document is gone
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for _ in 0..200 {
        let ready = c.execute("return document.readyState", vec![]).await.ok();
        if ready.as_ref().and_then(|v| v.as_str()) == Some("complete") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn login(c: &Client, app: &App, who: &str) {
    c.goto(&format!("{}/connexion", app.url)).await.unwrap();
    c.find(Locator::Id("login"))
        .await
        .unwrap()
        .send_keys(who)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    click_and_wait(c, "button[type=submit].principal").await;
    assert!(text(c, "h1").await.contains("Administration"), "logged in");
}

/// Step 1: upload a file with the given options; lands on step 2.
async fn upload(c: &Client, app: &App, file: &std::path::Path, complet: bool) {
    c.goto(&format!("{}/imports/nouveau", app.url)).await.unwrap();
    c.find(Locator::Id("fichier"))
        .await
        .unwrap()
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    if complet {
        pick(c, "#complet").await;
    }
    click_and_wait(c, "form button.principal").await;
    assert!(c.current_url().await.unwrap().path().ends_with("/correspondances"));
}

async fn next(c: &Client) {
    click_and_wait(c, "main form button.principal").await;
}

/// Waits on step 5 until the job ends; returns its status.
async fn wait_for_job(c: &Client) -> String {
    if c.find(Locator::Id("statut")).await.is_err() {
        panic!("not on the job page: {}", text(c, "main").await);
    }
    for _ in 0..100 {
        // The page refreshes itself: an element may go stale under us, try again.
        let status = match c.find(Locator::Id("statut")).await {
            Ok(e) => e.attr("data-statut").await.ok().flatten().unwrap_or_default(),
            Err(_) => String::new(),
        };
        if !status.is_empty() && !matches!(status.as_str(), "queued" | "running") {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.refresh().await.unwrap();
    }
    panic!("the import job did not finish");
}

const HEADER: &str = "Civilité enseignant;Nom enseignant;Prénom enseignant;Matière enseignant";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_flows_in_a_real_browser() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = start().await;
    let files = tempfile::tempdir().unwrap();
    login(c, &app, "admin-a").await;
    shot(c, "00-accueil").await;

    // 1. A clean file, all five steps.
    let clean = csv_file(
        files.path(),
        "enseignants.csv",
        &[
            HEADER,
            "Monsieur;PLATON;Francis;Philosophie",
            "Monsieur;DESCARTES;Rachid;Mathématiques",
            "Madame;LAVOISIER;Nicole;Physique-Chimie",
            "Monsieur;JAMES;Henry;Anglais",
            "Madame;MOZART;Pauline;Education Musicale",
        ],
    );
    c.goto(&format!("{}/imports/nouveau", app.url)).await.unwrap();
    shot(c, "01-etape1-chargement").await;
    let options = c.find_all(Locator::Css("#etablissement option")).await.unwrap();
    assert_eq!(
        options.len(),
        1,
        "an establishment admin sees only their establishments"
    );
    upload(c, &app, &clean, false).await;
    shot(c, "02-etape2-correspondances").await;
    assert!(c
        .find(Locator::Css("button[value=suivant]:not([disabled])"))
        .await
        .is_ok());
    click_and_wait(c, "button[value=suivant]").await;
    assert_eq!(text(c, "#nb-lignes").await, "5");
    assert_eq!(text(c, "#nb-conflits").await, "0");
    assert!(text(c, "main").await.contains("Aucun conflit n'a été détecté."));
    shot(c, "03-etape3-verification").await;
    next(c).await;
    assert_eq!(text(c, "#plan-crees").await, "5");
    shot(c, "04-etape4-recapitulatif").await;
    next(c).await;
    assert_eq!(wait_for_job(c).await, "succeeded");
    assert!(text(c, "#bilan").await.contains("5 compte(s) créé(s)"));
    let link = c
        .find(Locator::Css("a[download]"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(link.ends_with("/resultat.csv"));
    shot(c, "05-etape5-suivi").await;

    // 2. Conflicts fixed inline.
    let with_error = csv_file(
        files.path(),
        "conflits.csv",
        &[
            HEADER,
            "Monsieur;HUGO;Victor;Français",
            "Docteur;ZOLA;Emile;Français",
            "Madame;SAND;George;Français",
        ],
    );
    upload(c, &app, &with_error, false).await;
    click_and_wait(c, "button[value=suivant]").await;
    assert_eq!(text(c, "#nb-conflits").await, "1");
    assert_eq!(text(c, "#ligne-3 td.invalide").await, "Docteur");
    let problem = text(c, "#ligne-3 td.probleme").await;
    assert!(
        problem.starts_with("Civilité enseignant : ") && problem.contains("Monsieur"),
        "{problem}"
    );
    shot(c, "03b-etape3-conflits").await;
    click_and_wait(c, "#ligne-3 a").await;
    let civility = c.find(Locator::Css("input[aria-invalid=true]")).await.unwrap();
    civility.clear().await.unwrap();
    civility.send_keys("M.").await.unwrap();
    shot(c, "03c-edition-ligne").await;
    next(c).await;
    assert_eq!(text(c, "#nb-conflits").await, "0");
    next(c).await;
    assert_eq!(text(c, "#plan-crees").await, "3");
    next(c).await;
    assert_eq!(wait_for_job(c).await, "succeeded");

    // 3. Conflicts skipped.
    let skipped = csv_file(
        files.path(),
        "ignorer.csv",
        &[HEADER, "Monsieur;VERNE;Jules;Français", "Monsieur;;Sans nom;Français"],
    );
    upload(c, &app, &skipped, false).await;
    click_and_wait(c, "button[value=suivant]").await;
    next(c).await;
    assert!(
        c.find(Locator::Css(".erreur")).await.is_ok(),
        "refused while conflicts are neither fixed nor skipped"
    );
    pick(c, "#ignorer").await;
    next(c).await;
    assert_eq!(text(c, "#ignorees").await, "1");
    assert_eq!(text(c, "#plan-crees").await, "1");
    next(c).await;
    assert_eq!(wait_for_job(c).await, "succeeded");
    assert!(text(c, "#bilan").await.contains("1 ligne(s) en conflit ignorée(s)"));
    // The skipped line, ready to fix and import again.
    let skipped_lines = download(c, "document.getElementById('lien-ignorees').href").await;
    assert!(
        skipped_lines.contains("Problème") && skipped_lines.contains("Sans nom") && !skipped_lines.contains("VERNE"),
        "{skipped_lines}"
    );

    // 4. Complet over the threshold: refused, then confirmed.
    let only_one = csv_file(
        files.path(),
        "complet.csv",
        &[HEADER, "Monsieur;PLATON;Francis;Philosophie"],
    );
    upload(c, &app, &only_one, true).await;
    click_and_wait(c, "button[value=suivant]").await;
    next(c).await;
    let listed = text(c, "#desactivations").await;
    assert!(
        listed.contains("MOZART Pauline") && listed.contains("VERNE Jules"),
        "{listed}"
    );
    let planned: usize = text(c, "#plan-desactives").await.parse().unwrap();
    assert_eq!(planned, 8, "9 teachers imported above, PLATON stays");
    shot(c, "04b-etape4-complet").await;
    c.find(Locator::Id("confirmation"))
        .await
        .unwrap()
        .send_keys("3")
        .await
        .unwrap();
    next(c).await;
    // Said next to the field, in the page's words: what was typed, what is expected, why.
    let refusal = text(c, "#confirmation + #erreur-confirmation").await;
    assert!(
        refusal.starts_with("Vous avez tapé 3, mais l'import désactivera 8 compte(s) sur les 9 concernés")
            && refusal.ends_with("tapez 8 pour confirmer."),
        "{refusal}"
    );
    let described = c
        .find(Locator::Id("confirmation"))
        .await
        .unwrap()
        .attr("aria-describedby")
        .await
        .unwrap();
    assert_eq!(described.as_deref(), Some("erreur-confirmation"));
    c.find(Locator::Id("confirmation"))
        .await
        .unwrap()
        .send_keys("8")
        .await
        .unwrap();
    next(c).await;
    assert_eq!(wait_for_job(c).await, "succeeded");
    assert!(text(c, "#bilan").await.contains("8 désactivé(s)"));

    c.goto(&format!("{}/utilisateurs", app.url)).await.unwrap();
    shot(c, "06-utilisateurs").await;
    let rows = c.find_all(Locator::Css("main table tbody tr")).await.unwrap();
    assert_eq!(
        rows.len(),
        9,
        "every account of the establishment, deactivated ones included"
    );

    // 5. The history: four imports, newest first, rows of file and result side by side.
    c.goto(&format!("{}/suivi", app.url)).await.unwrap();
    shot(c, "07-suivi-imports").await;
    let lines = c.find_all(Locator::Css("#historique tbody tr")).await.unwrap();
    assert_eq!(lines.len(), 4, "{}", text(c, "main").await);
    let newest = text(c, "#historique tbody tr:first-child").await;
    assert!(
        newest.contains("Complet") && newest.contains("1 / 1") && newest.contains("8 désactivé(s)"),
        "{newest}"
    );
    let oldest = text(c, "#historique tbody tr:last-child").await;
    assert!(
        oldest.contains("enseignants.csv") && oldest.contains("5 / 5") && oldest.contains("envoyé"),
        "{oldest}"
    );
    // A date filter that excludes everything. The filter reads Paris dates:
    // two days after today in UTC is after today in Paris at any hour (at
    // 23:30 UTC, Paris is already on the next day).
    let after_today = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    c.goto(&format!("{}/suivi?du={after_today}", app.url)).await.unwrap();
    assert!(text(c, "main").await.contains("Aucun import ne correspond."));

    // 6. The Complet import's page restores the eight accounts it deactivated.
    c.goto(&format!("{}/suivi", app.url)).await.unwrap();
    click_and_wait(c, "#historique tbody tr:first-child td a").await;
    assert_eq!(text(c, "#lignes-fichier").await, "1");
    assert!(text(c, "main")
        .await
        .contains("8 compte(s) ou rattachement(s) désactivé(s)"));
    shot(c, "08-suivi-import-complet").await;
    // Asked first, naming the accounts it brings back.
    click_and_wait(c, "#restaurer").await;
    let named = text(c, "#comptes-restaures").await;
    assert!(
        named.contains("MOZART Pauline") && named.contains("VERNE Jules") && !named.contains("PLATON"),
        "{named}"
    );
    assert_eq!(
        c.find_all(Locator::Css("#comptes-restaures li")).await.unwrap().len(),
        8
    );
    assert_eq!(text(c, "#confirmer-restauration").await, "Restaurer ces 8 compte(s)");
    shot(c, "08b-restauration-confirmation").await;
    click_and_wait(c, "#confirmer-restauration").await;
    assert!(text(c, "#restauration").await.contains("8 compte(s) réactivé(s)"));
    assert!(
        c.find(Locator::Id("restaurer")).await.is_err(),
        "nothing left to restore"
    );

    // 6b. Everyday actions on a user page: deactivate and reactivate, each
    // confirmed by name and audited; a new slip without a password.
    c.goto(&format!("{}/utilisateurs?nom=platon", app.url)).await.unwrap();
    click_and_wait(c, "table.tableau tbody a").await;
    click_and_wait(c, "#desactiver").await;
    assert_eq!(
        text(c, "h1").await,
        "Désactiver le compte de Francis PLATON (fplaton) ?"
    );
    shot(c, "14b-desactivation-confirmation").await;
    click_and_wait(c, "#confirmer").await;
    assert!(text(c, "#activation").await.contains("Compte désactivé"));
    assert_eq!(text(c, "#etat").await, "désactivé");
    click_and_wait(c, "#reactiver").await;
    assert_eq!(text(c, "h1").await, "Réactiver le compte de Francis PLATON (fplaton) ?");
    click_and_wait(c, "#confirmer").await;
    assert!(text(c, "#activation").await.contains("Compte réactivé"));
    assert_eq!(text(c, "#etat").await, "actif");
    click_and_wait(c, "#imprimer-fiche").await;
    let reprint = text(c, ".fiche").await;
    assert!(
        reprint.contains("Francis PLATON") && reprint.contains("fplaton") && reprint.contains("https://ent.test/"),
        "{reprint}"
    );
    assert!(
        c.find(Locator::Css(".fiche .mot-de-passe")).await.is_err(),
        "no password kept"
    );
    shot(c, "14c-fiche-reimprimee").await;
    // A new password, shown once on a slip, to be changed at the first sign-in.
    c.goto(&format!("{}/utilisateurs?nom=platon", app.url)).await.unwrap();
    click_and_wait(c, "table.tableau tbody a").await;
    click_and_wait(c, "#reinitialiser").await;
    assert_eq!(
        text(c, "h1").await,
        "Réinitialiser le mot de passe de Francis PLATON (fplaton) ?"
    );
    shot(c, "14d-mot-de-passe-confirmation").await;
    click_and_wait(c, "#confirmer").await;
    let password = text(c, ".fiche .mot-de-passe").await;
    assert_eq!(password.chars().count(), 12, "{password}");
    assert!(text(c, "h1").await.contains("affiché cette seule fois"));
    shot(c, "14e-nouveau-mot-de-passe").await;
    let signed_in = app::accounts::sign_in(
        app.state.directory.as_ref(),
        "fplaton",
        &password,
        "127.0.0.1".parse().unwrap(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(signed_in.is_ok(), "the printed password signs in: {signed_in:?}");

    // 7. Credential slips of the first import, ready to print.
    c.goto(&format!("{}/suivi", app.url)).await.unwrap();
    click_and_wait(c, "#historique tbody tr:last-child td a").await;
    click_and_wait(c, "#lien-fiches").await;
    let slips = c.find_all(Locator::Css(".fiche")).await.unwrap();
    assert_eq!(slips.len(), 5);
    let first = text(c, ".fiche:first-child").await;
    assert!(
        first.contains("Francis PLATON") && first.contains("fplaton") && first.contains("https://ent.test/"),
        "{first}"
    );
    assert_eq!(text(c, ".fiche:first-child .mot-de-passe").await.chars().count(), 12);
    shot(c, "09-fiches-connexion").await;

    // 8. Export: the file re-imports as is (keys, no passwords).
    c.goto(&format!("{}/export", app.url)).await.unwrap();
    shot(c, "10-export").await;
    let csv = download(
        c,
        "'/export/utilisateurs.csv?etablissement=' + document.getElementById('etab').value + '&profil=enseignant'",
    )
    .await;
    assert!(
        csv.contains("PERSON.m-mmefrancisplaton") && csv.contains("fplaton"),
        "{csv}"
    );
    assert_eq!(
        csv.lines().count(),
        10,
        "header and the nine teachers, restored ones included: {csv}"
    );
    // The same teachers for La Vie Scolaire, each a Professeur.
    let lvs = download(
        c,
        "'/export/lvs.csv?etablissement=' + document.getElementById('etab-lvs').value",
    )
    .await;
    assert!(lvs.contains(";PLATON;Francis;ENS;Professeur"), "{lvs}");
    assert_eq!(lvs.lines().count(), 10, "{lvs}");

    // Every import sent its notice to admin-a (outbox of .eml files).
    let mails = app.mails();
    assert_eq!(mails.len(), 4);
    assert!(mails
        .iter()
        .all(|m| m.contains("Subject: [SUCCES] Import CSV-ENT Test")));
    c.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_reconciliation_manual_creation_and_audit_in_a_real_browser() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = start().await;
    csv_and_aaf_twins(&app).await;
    login(c, &app, "admin-a").await;

    // The pair is listed with its evidence, then reconciled in one action.
    c.goto(&format!("{}/doublons", app.url)).await.unwrap();
    let pairs = c.find_all(Locator::Css("section.doublon")).await.unwrap();
    assert_eq!(pairs.len(), 1, "{}", text(c, "main").await);
    assert!(text(c, "section.doublon td.local")
        .await
        .contains("PERSON.m-mmeveroniquebarbier"));
    assert!(text(c, "section.doublon td.aaf").await.contains("PERSON.3248023"));
    shot(c, "11-doublons").await;
    click_and_wait(c, "button.reconcilier").await;
    let message = text(c, "#message").await;
    assert!(
        message.contains("vbarbier garde son login") && message.contains("PERSON.3248023"),
        "{message}"
    );
    assert!(c.find(Locator::Id("aucun")).await.is_ok(), "no pair left");
    let kept = app
        .state
        .directory
        .search_users(&store::UserQuery {
            last_name: Some("barbier".into()),
            limit: 10,
            ..store::UserQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(kept.len(), 1, "one account left");
    assert_eq!(
        (kept[0].login.as_str(), kept[0].sync_key.as_str()),
        ("vbarbier", "PERSON.3248023")
    );

    // The reconciled account's page: found by login, protected by the feed,
    // its identity read-only, its settings changed and audited.
    c.goto(&format!("{}/utilisateurs?login=vbar", app.url)).await.unwrap();
    click_and_wait(c, "table.tableau tbody a").await;
    assert_eq!(text(c, "#cle").await, "PERSON.3248023");
    assert!(text(c, "#source").await.contains("AAF"));
    assert!(text(c, "#rattachements").await.contains(UAI_A));
    let last_name = c.find(Locator::Id("last_name")).await.unwrap();
    assert!(
        last_name.attr("disabled").await.unwrap().is_some(),
        "identity is read-only"
    );
    assert!(c.find(Locator::Id("identite-protegee")).await.is_ok());
    assert!(
        c.find(Locator::Id("desactiver")).await.is_err(),
        "the feed deactivates its accounts, not the page"
    );
    let networks = c.find(Locator::Id("networks")).await.unwrap();
    networks.send_keys("10.0.0.300/8").await.unwrap();
    c.find(Locator::Id("last_day"))
        .await
        .unwrap()
        .send_keys("bientôt")
        .await
        .unwrap();
    click_and_wait(c, "#enregistrer").await;
    assert!(
        text(c, "#erreur").await.contains("« 10.0.0.300/8 »"),
        "a bad range is explained"
    );
    // Both bad fields marked, each with its own reason.
    for (field, said) in [("networks", "« 10.0.0.300/8 »"), ("last_day", "« bientôt »")] {
        let input = c.find(Locator::Id(field)).await.unwrap();
        assert_eq!(
            input.attr("aria-invalid").await.unwrap().as_deref(),
            Some("true"),
            "{field}"
        );
        assert!(text(c, &format!("#erreur-{field}")).await.contains(said), "{field}");
    }
    shot(c, "14d-compte-erreurs").await;
    c.find(Locator::Id("last_day")).await.unwrap().clear().await.unwrap();
    let networks = c.find(Locator::Id("networks")).await.unwrap();
    assert_eq!(
        networks.prop("value").await.unwrap().as_deref(),
        Some("10.0.0.300/8"),
        "the form keeps what was typed"
    );
    networks.clear().await.unwrap();
    networks.send_keys("10.1.2.3/8\n192.168.1.10").await.unwrap();
    c.find(Locator::Id("last_day"))
        .await
        .unwrap()
        .send_keys("30/06/2027")
        .await
        .unwrap();
    click_and_wait(c, "#enregistrer").await;
    let saved = text(c, "#enregistre").await;
    assert!(
        saved.contains("« jamais » → « 30/06/2027 »") && saved.contains("10.0.0.0/8,192.168.1.10/32"),
        "{saved}"
    );
    shot(c, "14-compte").await;
    let account = store::accounts::Accounts::account(app.state.directory.as_ref(), kept[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        account.state.settings.networks.to_string(),
        "10.0.0.0/8,192.168.1.10/32"
    );
    assert!(account.state.settings.protected);

    // An administrator created by hand (no file creates one).
    c.goto(&format!("{}/utilisateurs", app.url)).await.unwrap();
    click_and_wait(c, "#nouveau-compte").await;
    let options = c.find_all(Locator::Css("#profile option")).await.unwrap();
    assert_eq!(
        options.len(),
        5,
        "an establishment admin creates no system admin nor guest"
    );
    // A valid pair to start from; only the teacher's fields show.
    let value = |id: &'static str| async move {
        c.find(Locator::Id(id))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    };
    assert_eq!(value("profile").await, "enseignant");
    assert_eq!(value("establishment").await, UAI_A);
    assert!(shown(c, "subject").await);
    assert!(!shown(c, "function").await);
    pick(c, "#profile option[value=administratif]").await;
    assert!(shown(c, "function").await);
    assert!(!shown(c, "subject").await);
    let codes = c.find_all(Locator::Css("#function option")).await.unwrap();
    assert!(codes.len() > 50, "the function codes are listed: {}", codes.len());
    assert!(
        c.find(Locator::Css("#function option[value=ENS]")).await.is_err(),
        "ENS is the teachers'"
    );
    // Every invalid field at once, each marked and described.
    c.find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys("pas-une-adresse")
        .await
        .unwrap();
    c.find(Locator::Id("birth_date"))
        .await
        .unwrap()
        .send_keys("31/02/1980")
        .await
        .unwrap();
    click_and_wait(c, "#creer").await;
    let summary = text(c, "#erreur").await;
    assert!(summary.starts_with("5 champ(s) à corriger"), "{summary}");
    for field in ["last_name", "first_name", "birth_date", "email", "function"] {
        let input = c.find(Locator::Id(field)).await.unwrap();
        assert_eq!(
            input.attr("aria-invalid").await.unwrap().as_deref(),
            Some("true"),
            "{field}"
        );
        let described = input.attr("aria-describedby").await.unwrap().unwrap();
        assert!(!text(c, &format!("#{described}")).await.is_empty(), "{field}");
    }
    assert!(text(c, "#erreur-birth_date").await.contains("31/02/1980"));
    shot(c, "12b-creation-erreurs").await;
    for field in ["email", "birth_date"] {
        c.find(Locator::Id(field)).await.unwrap().clear().await.unwrap();
    }
    pick(c, "#profile option[value=administrateur]").await;
    pick(c, &format!("#establishment option[value='{UAI_A}']")).await;
    c.find(Locator::Id("last_name"))
        .await
        .unwrap()
        .send_keys("Martin")
        .await
        .unwrap();
    c.find(Locator::Id("first_name"))
        .await
        .unwrap()
        .send_keys("Élise")
        .await
        .unwrap();
    c.find(Locator::Id("birth_date"))
        .await
        .unwrap()
        .send_keys("31/02/1980")
        .await
        .unwrap();
    click_and_wait(c, "#creer").await;
    assert!(
        text(c, "#erreur").await.contains("31/02/1980"),
        "a bad date is explained"
    );
    assert_eq!(
        c.find(Locator::Id("last_name"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Martin"),
        "the form keeps what was typed"
    );
    let birth = c.find(Locator::Id("birth_date")).await.unwrap();
    birth.clear().await.unwrap();
    click_and_wait(c, "#creer").await;
    assert_eq!(text(c, "#login-cree").await, "emartin");
    assert_eq!(text(c, "#mot-de-passe-cree").await.chars().count(), 12);
    shot(c, "12-creation-compte").await;
    click_and_wait(c, "#voir-compte").await;
    assert_eq!(text(c, "#login").await, "emartin");

    // The audit log is a system administrator's.
    c.goto(&format!("{}/journal", app.url)).await.unwrap();
    assert!(text(c, "main").await.contains("réservé aux administrateurs système"));
    c.goto(&format!("{}/", app.url)).await.unwrap();
    click_and_wait(c, "form[action='/deconnexion'] button").await;
    login(c, &app, "systeme").await;
    // Establishments are added and renamed from the web too.
    click_and_wait(c, "nav a[href='/etablissements']").await;
    c.find(Locator::Id("uai"))
        .await
        .unwrap()
        .send_keys("0750656X")
        .await
        .unwrap();
    c.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("Lycée Nouveau")
        .await
        .unwrap();
    click_and_wait(c, "#ajouter").await;
    assert!(text(c, "#erreur").await.contains("0750656X"), "a bad UAI is explained");
    let uai_field = c.find(Locator::Id("uai")).await.unwrap();
    assert_eq!(
        uai_field.prop("value").await.unwrap().as_deref(),
        Some("0750656X"),
        "kept"
    );
    uai_field.clear().await.unwrap();
    uai_field.send_keys("0750656F").await.unwrap();
    click_and_wait(c, "#ajouter").await;
    assert!(text(c, "#message").await.contains("Lycée Nouveau (0750656F) ajouté"));
    assert!(text(c, "#etab-0750656F").await.contains("Lycée Nouveau"));
    let rename = c.find(Locator::Id(&format!("nom-{UAI_B}"))).await.unwrap();
    rename.clear().await.unwrap();
    rename.send_keys("Lycée Victor-Hugo").await.unwrap();
    click_and_wait(c, &format!("#etab-{UAI_B} button")).await;
    assert!(
        text(c, "#message")
            .await
            .contains("s'appelle désormais « Lycée Victor-Hugo »"),
        "{}",
        text(c, "main").await
    );
    shot(c, "19-etablissements").await;
    // The LVS profiles of the function codes, changed for the whole ENT.
    c.goto(&format!("{}/lvs", app.url)).await.unwrap();
    let tos = c.find(Locator::Id("profil-TOS")).await.unwrap();
    tos.send_keys("Agent").await.unwrap();
    click_and_wait(c, "#lvs-TOS button[value='profil']").await;
    assert!(text(c, "#message")
        .await
        .contains("TOS (AGENT DES COLLECTIVITES) : profil LVS « Agent »"));
    assert!(text(c, "#lvs-TOS").await.contains("Agent (guide : non exporté)"));
    click_and_wait(c, "#lvs-DOC button[value='exclure']").await;
    assert!(text(c, "#lvs-DOC")
        .await
        .contains("non exporté (guide : Documentaliste)"));
    shot(c, "20-profils-lvs").await;
    click_and_wait(c, "#lvs-DOC button[value='guide']").await;
    assert!(text(c, "#message").await.contains("profil LVS « Documentaliste »"));
    // In the system admin's menu; its scrolling table takes the keyboard focus.
    click_and_wait(c, "nav a[href='/journal']").await;
    let region = c.find(Locator::Css("div.defilement[tabindex='0']")).await.unwrap();
    assert_eq!(
        region.attr("aria-labelledby").await.unwrap().as_deref(),
        Some("titre-journal")
    );
    let log = text(c, "#journal").await;
    assert!(
        log.contains("réconciliation") && log.contains("admin-a") && log.contains("PERSON.3248023"),
        "{log}"
    );
    assert!(
        log.contains("création d'un compte") && log.contains("login : emartin"),
        "{log}"
    );
    assert!(log.contains("modification d'un compte"), "{log}");
    assert!(
        log.contains("ajout d'un établissement") && log.contains("ancien nom : Lycée Victor Hugo"),
        "{log}"
    );
    assert!(
        log.contains("profil LVS d'une fonction") && log.contains("profil du guide : non exporté ; profil LVS : Agent"),
        "{log}"
    );
    assert!(
        !log.contains('{') && !log.contains("\"login\""),
        "details in words, not JSON: {log}"
    );
    shot(c, "13-journal").await;
    c.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_schools_teacher_in_a_real_browser() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = start().await;
    let b_teachers = import_as_system(
        &app,
        UAI_B,
        &format!("{HEADER}\r\nMonsieur;PLATON;Francis;Philosophie\r\n"),
    )
    .await;
    let login_b = b_teachers.plan.creates[0].login.as_str().to_string();
    let files = tempfile::tempdir().unwrap();
    login(c, &app, "admin-a").await;

    // Step 3: the line names B's teacher; it is refused until the box is ticked.
    let file = csv_file(
        files.path(),
        "a.csv",
        &[HEADER, "Monsieur;PLATON;Francis;Mathématiques"],
    );
    upload(c, &app, &file, false).await;
    click_and_wait(c, "button[value=suivant]").await;
    assert_eq!(text(c, "#nb-conflits").await, "1");
    let conflicts = text(c, "table.conflits").await;
    assert!(
        conflicts.contains("compte existant dans un autre établissement : Lycée Victor Hugo (0750655E)"),
        "{conflicts}"
    );
    assert!(text(c, "label[for=rattacher]").await.contains("(1 ligne(s))"));
    shot(c, "15-etape3-rattachement").await;
    pick(c, "#rattacher").await;
    next(c).await;
    assert_eq!(text(c, "#plan-rattaches").await, "1");
    let attached = text(c, "#rattachements").await;
    assert!(
        attached.contains("PLATON Francis : déjà dans Lycée Victor Hugo (0750655E)"),
        "{attached}"
    );
    assert!(
        !text(c, "main").await.contains(&format!(" {login_b}")),
        "no login on step 4"
    );
    shot(c, "16-etape4-rattachement").await;
    next(c).await;
    assert_eq!(wait_for_job(c).await, "succeeded");

    // The shared account: no login, no settings form, only "Retirer de …".
    c.goto(&format!("{}/utilisateurs?nom=platon&etablissement={UAI_A}", app.url))
        .await
        .unwrap();
    click_and_wait(c, "table.tableau tbody a").await;
    assert!(c.find(Locator::Id("compte-partage")).await.is_ok());
    assert!(c.find(Locator::Id("enregistrer")).await.is_err());
    assert!(!text(c, "#login").await.contains(&login_b));
    shot(c, "17-compte-partage").await;

    // B's admin reads it in their history.
    c.goto(&format!("{}/", app.url)).await.unwrap();
    click_and_wait(c, "form[action='/deconnexion'] button").await;
    login(c, &app, "admin-b").await;
    c.goto(&format!("{}/suivi", app.url)).await.unwrap();
    let told = text(c, "#rattachements-recus").await;
    assert!(
        told.contains("Francis PLATON a été rattaché(e) à Collège Jean Moulin (0750654D) par admin-a le "),
        "{told}"
    );
    shot(c, "18-suivi-rattachements").await;

    // A ends their membership: B owns the account alone again.
    c.goto(&format!("{}/", app.url)).await.unwrap();
    click_and_wait(c, "form[action='/deconnexion'] button").await;
    login(c, &app, "admin-a").await;
    c.goto(&format!("{}/utilisateurs?nom=platon&etablissement={UAI_A}", app.url))
        .await
        .unwrap();
    click_and_wait(c, "table.tableau tbody a").await;
    click_and_wait(c, &format!("#retirer-{UAI_A}")).await;
    assert!(text(c, "#retire").await.contains("Collège Jean Moulin (0750654D)"));
    c.clone().close().await.unwrap();
}

/// The pages of a PDF: its page objects (`/Type /Page`, not `/Pages`).
fn pdf_pages(pdf: &[u8]) -> usize {
    let text = String::from_utf8_lossy(pdf);
    text.match_indices("/Type /Page")
        .filter(|(at, m)| !text[at + m.len()..].starts_with('s'))
        .count()
}

/// A teachers file of `n` new people (names numbered from `first`).
fn numbered_teachers(first: usize, n: usize) -> String {
    let mut file = HEADER.to_string();
    for i in first..first + n {
        let name: String = i.to_string().bytes().map(|d| char::from(b'A' + (d - b'0'))).collect();
        file.push_str(&format!("\r\nMonsieur;NOM{name};Jean;Français"));
    }
    file
}

/// The slips of an import as Chromium prints them on A4: their pages.
async fn printed_slip_pages(c: &Client, app: &App, import: i64, slips: usize) -> usize {
    c.goto(&format!("{}/suivi/{import}/fiches", app.url)).await.unwrap();
    assert_eq!(c.find_all(Locator::Css("main .fiche")).await.unwrap().len(), slips);
    assert!(text(c, "main h1").await.contains(&format!("import n° {import}")));
    let pdf = c.print(fantoccini::wd::PrintConfiguration::default()).await.unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    pdf_pages(&pdf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slips_print_eight_per_a4_page() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = start().await;
    login(c, &app, "admin-a").await;
    // 17 slips fill 3 pages; 24 too (at six per page, as before, they took 4).
    for (first, n) in [(0, 17), (100, 24)] {
        let outcome = import_for(&app, Some("admin-a"), UAI_A, &numbered_teachers(first, n)).await;
        assert_eq!(outcome.report.created, n);
        let pages = printed_slip_pages(c, &app, outcome.import_id.unwrap(), n).await;
        assert_eq!(pages, 3, "{n} slips, eight per A4 page");
    }

    // An import that created nobody offers no slips.
    let again = import_for(&app, Some("admin-a"), UAI_A, &numbered_teachers(0, 17)).await;
    assert_eq!((again.report.created, again.report.unchanged), (0, 17));
    c.goto(&format!("{}/suivi/{}", app.url, again.import_id.unwrap()))
        .await
        .unwrap();
    assert!(
        c.find(Locator::Css("a[download]")).await.is_ok(),
        "the result file stays"
    );
    assert!(c.find(Locator::Id("lien-fiches")).await.is_err());
    c.clone().close().await.unwrap();
}

/// Whether every element `css` matches lies within the window's width.
async fn all_in_view(c: &Client, css: &str) -> bool {
    let script = format!(
        "const all = [...document.querySelectorAll('{css}')]; \
         return all.length > 0 && all.every(e => {{ const r = e.getBoundingClientRect(); \
         return r.left >= 0 && r.right <= window.innerWidth; }});"
    );
    c.execute(&script, vec![]).await.unwrap().as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_stay_in_view_on_a_laptop_and_a_phone() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = start().await;
    let files = tempfile::tempdir().unwrap();
    login(c, &app, "admin-a").await;
    // A wide file: the problems are in its last columns.
    let notes: Vec<String> = (1..=8).map(|i| format!("Remarque {i}")).collect();
    let header = format!("{};{HEADER};Email enseignant", notes.join(";"));
    let filler = ["une remarque assez longue pour élargir le tableau"; 8].join(";");
    let lines = [
        header,
        format!("{filler};Monsieur;HUGO;Victor;Français;victor.hugo@exemple.fr"),
        format!("{filler};Monsieur;ZOLA;Emile;Français;pas-une-adresse"),
        format!("{filler};Docteur;SAND;George;Français;george.sand@exemple.fr"),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let file = csv_file(files.path(), "large.csv", &refs);
    upload(c, &app, &file, false).await;
    click_and_wait(c, "button[value=suivant]").await;
    assert_eq!(text(c, "#nb-conflits").await, "2");
    for (width, height) in [(1366, 900), (390, 844)] {
        c.set_window_size(width, height).await.unwrap();
        c.refresh().await.unwrap();
        assert!(
            all_in_view(c, "td.probleme .message").await,
            "{width} px: a problem off screen"
        );
        assert!(
            all_in_view(c, "a.editer").await,
            "{width} px: an Éditer link off screen"
        );
    }
    // At both widths again: axe-core, and no sideways scroll.
    shot(c, "03d-etape3-conflits").await;
    c.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_5_follows_the_job_without_reloading_the_page() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    // No worker: the job waits on step 5 until the test runs it.
    let app = start_without_worker().await;
    let files = tempfile::tempdir().unwrap();
    login(c, &app, "admin-a").await;
    let file = csv_file(
        files.path(),
        "cinq.csv",
        &[HEADER, "Monsieur;PLATON;Francis;Philosophie"],
    );
    upload(c, &app, &file, false).await;
    click_and_wait(c, "button[value=suivant]").await;
    next(c).await;
    next(c).await;
    assert_eq!(
        text(c, "#statut").await,
        "en attente de démarrage",
        "the job waits for a worker"
    );
    let source = c.source().await.unwrap();
    assert!(source.contains("<noscript><meta http-equiv=\"refresh\" content=\"2\"></noscript>"));
    c.execute("window.memePage = true;", vec![]).await.unwrap();
    let operations = || async {
        let labels = c
            .execute(
                "return Array.from(document.querySelectorAll('#rapport tbody td:nth-child(2)')).map(e => e.textContent.trim())",
                vec![],
            )
            .await
            .unwrap();
        serde_json::from_value::<Vec<String>>(labels).unwrap()
    };
    let before = operations().await;
    assert_eq!(before.len(), 4, "{before:?}");

    assert!(web::run_next_job(&app.state).await.unwrap());
    let mut status = String::new();
    for _ in 0..50 {
        status = c
            .execute("return document.getElementById('statut').dataset.statut", vec![])
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_string();
        if status == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, "succeeded");
    let same_page = c.execute("return window.memePage === true", vec![]).await.unwrap();
    assert_eq!(same_page.as_bool(), Some(true), "updated in place, not reloaded");
    assert_eq!(operations().await, before, "the same operations from start to end");
    assert!(text(c, "#bilan").await.contains("1 compte(s) créé(s)"));
    assert_eq!(
        c.find(Locator::Id("rapport"))
            .await
            .unwrap()
            .attr("aria-live")
            .await
            .unwrap()
            .as_deref(),
        Some("polite")
    );
    c.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_are_paris_times_in_winter_and_summer() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = start().await;
    // 09:30 UTC is 10:30 in Paris in winter (UTC+1), 11:30 in summer (UTC+2).
    let seasons = [
        ("2026-01-15T09:30:00Z", "HIVER", "15/01/2026 10:30"),
        ("2026-07-01T09:30:00Z", "ETE", "01/07/2026 11:30"),
    ];
    for (at, name, _) in seasons {
        let clock = store::service::FixedClock(at.parse().unwrap());
        let file = format!("{HEADER}\nMadame;{name};Claire;Anglais\n");
        import_at(&app, Some("admin-a"), UAI_A, &file, &clock).await;
    }
    login(c, &app, "admin-a").await;
    c.goto(&format!("{}/suivi", app.url)).await.unwrap();
    let history = text(c, "#historique").await;
    for (_, _, shown) in seasons {
        assert!(history.contains(shown), "{shown} in {history}");
    }
    assert!(!history.contains("09:30"), "no UTC time: {history}");
    click_and_wait(c, "#historique tbody tr:last-child td a").await;
    let winter = text(c, "main").await;
    assert!(winter.contains("15/01/2026 10:30"), "{winter}");
    c.goto(&format!("{}/utilisateurs?nom=ete", app.url)).await.unwrap();
    click_and_wait(c, "table.tableau tbody a").await;
    let summer = text(c, "main").await;
    assert!(
        summer.contains("01/07/2026 11:30") && !summer.contains("09:30"),
        "{summer}"
    );
    c.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_2_follows_each_choice_and_enter_goes_on() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = start().await;
    let files = tempfile::tempdir().unwrap();
    login(c, &app, "admin-a").await;
    // Commas, while step 1 says ";": re-read with "," and said so. Two of
    // the four mandatory fields are found by their headers.
    let file = csv_file(
        files.path(),
        "virgules.csv",
        &["Appellation,Nom,Prénom,Enseigne", "Monsieur,PLATON,Francis,Philosophie"],
    );
    upload(c, &app, &file, false).await;
    let main = text(c, "main").await;
    assert!(
        main.contains(
            "Ce fichier est séparé par « , » et non par « ; » choisi à l'étape 1 : il a été relu avec « , »."
        ),
        "{main}"
    );
    assert_eq!(c.find_all(Locator::Css("select[name^=col]")).await.unwrap().len(), 4);
    let checklist = |field: &'static str| async move {
        let cell = text(c, &format!("tr[data-champ={field}] td:first-child")).await;
        cell.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    assert_eq!(checklist("civilite").await, "✗ absent");
    assert_eq!(checklist("nom").await, "✓ présent");
    shot(c, "02b-etape2-incomplete").await;
    c.execute("window.memePage = true;", vec![]).await.unwrap();

    // Each choice updates the checklist and the sentence at once.
    pick(c, "#col0 option[value=civilite]").await;
    assert_eq!(checklist("civilite").await, "✓ présent");
    let status = text(c, "#etat-correspondances").await;
    assert_eq!(status, "Il manque encore une colonne pour : Matière.");
    pick(c, "#col3 option[value=nom]").await;
    assert!(text(c, "#etat-correspondances")
        .await
        .contains("est choisi pour deux colonnes"));
    pick(c, "#col3 option[value=matiere]").await;
    assert!(text(c, "#etat-correspondances")
        .await
        .starts_with("Chaque champ obligatoire a sa colonne"));
    let same_page = c.execute("return window.memePage === true", vec![]).await.unwrap();
    assert_eq!(same_page.as_bool(), Some(true), "no round trip to the server");

    // Enter submits a form through its first button: "Suivant" is the only one.
    let default_button = c
        .execute(
            "return document.querySelector('#correspondances button[type=submit]').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(default_button.as_str(), Some("Suivant"));
    let old = c.find(Locator::Css("html")).await.unwrap();
    c.execute("document.getElementById('correspondances').requestSubmit()", vec![])
        .await
        .unwrap();
    for _ in 0..200 {
        if old.tag_name().await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(c.current_url().await.unwrap().path().ends_with("/verification"));
    assert_eq!(text(c, "#nb-lignes").await, "1");

    // Left there, the import waits on the home page.
    c.goto(&format!("{}/", app.url)).await.unwrap();
    assert!(text(c, "#imports-inacheves").await.contains("virgules.csv"));
    shot(c, "00b-accueil-imports-inacheves").await;
    click_and_wait(c, "#imports-inacheves a.reprendre").await;
    assert!(c.current_url().await.unwrap().path().ends_with("/correspondances"));
    c.clone().close().await.unwrap();
}

/// A service of the ENT for the CAS pages: a page that shows the query it
/// was reached with (the ticket).
async fn cas_service() -> String {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|axum::extract::RawQuery(query): axum::extract::RawQuery| async move {
            axum::response::Html(format!(
                "<!doctype html><html lang=\"fr\"><title>Vie scolaire</title><main><h1>Vie scolaire</h1><p id=\"requete\">{}</p></main></html>",
                query.unwrap_or_default()
            ))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn type_into(c: &Client, id: &str, value: &str) {
    let field = c.find(Locator::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// Issue 14: a teacher's first sign-in through CAS in Chromium, from the
/// service's redirect to the service again with a ticket (the page's policy
/// lets the form lead there), every page checked by axe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_signs_in_through_cas_in_a_real_browser() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let app = start().await;
    let d = app.state.directory.as_ref();
    let outcome = import_as_system(
        &app,
        UAI_A,
        &format!("{HEADER}\r\nMadame;LAVOISIER;Nicole;Physique-Chimie\r\n"),
    )
    .await;
    let login = outcome.plan.creates[0].login.as_str().to_string();
    let operator = app::Actor::operator("cli:test".into());
    let found = d
        .search_users(&store::UserQuery {
            login: Some(login.clone()),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let id = store::accounts::Accounts::account_id_by_key(d, &found[0].sync_key)
        .await
        .unwrap()
        .unwrap();
    let detail = store::accounts::Accounts::account(d, id).await.unwrap().unwrap();
    let handed_out = app::accounts::reset_password(
        d,
        &detail,
        None,
        &operator,
        &mut domain::password::os_rng(),
        chrono::Utc::now(),
    )
    .await
    .unwrap()
    .password;
    let service = cas_service().await;
    app::cas::add_service(
        d,
        &operator,
        "Vie scolaire",
        &service,
        &[],
        "",
        false,
        chrono::Utc::now(),
    )
    .await
    .unwrap();

    let sign_in = format!(
        "{}/cas/login?service={}",
        app.url,
        form_urlencoded::byte_serialize(service.as_bytes()).collect::<String>()
    );
    c.goto(&sign_in).await.unwrap();
    assert!(text(c, "main")
        .await
        .contains("Vous vous connectez pour accéder au service Vie scolaire."));
    shot(c, "30-cas-connexion").await;
    type_into(c, "username", &login).await;
    type_into(c, "password", "pas le bon").await;
    click_and_wait(c, "button[type=submit].principal").await;
    assert_eq!(text(c, "p.erreur").await, "Identifiant ou mot de passe incorrect.");
    shot(c, "31-cas-erreur").await;
    type_into(c, "password", &handed_out).await;
    click_and_wait(c, "button[type=submit].principal").await;
    assert_eq!(text(c, "h1").await, "Choisissez votre mot de passe");
    shot(c, "32-cas-changement").await;
    type_into(c, "new_password", "court").await;
    type_into(c, "confirm_password", "court").await;
    click_and_wait(c, "button[type=submit].principal").await;
    assert!(text(c, "p.erreur").await.contains("il en faut au moins 12"));
    shot(c, "33-cas-regle").await;
    type_into(c, "new_password", "trois pommes et deux poires").await;
    type_into(c, "confirm_password", "trois pommes et deux poires").await;
    click_and_wait(c, "button[type=submit].principal").await;
    let landed = c.current_url().await.unwrap().to_string();
    assert!(landed.starts_with(&service), "{landed}");
    assert!(text(c, "#requete").await.starts_with("ticket=ST-"), "{landed}");

    c.goto(&format!("{}/cas/login", app.url)).await.unwrap();
    assert_eq!(text(c, "h1").await, "Vous êtes connecté");
    shot(c, "34-cas-connecte").await;
    click_and_wait(c, "main a").await;
    assert_eq!(text(c, "h1").await, "Vous êtes déconnecté");
    shot(c, "35-cas-deconnecte").await;
    c.goto(&format!("{}/cas/login?service=https%3A%2F%2Fpirate.test%2F", app.url))
        .await
        .unwrap();
    assert_eq!(text(c, "h1").await, "Service inconnu");
    shot(c, "36-cas-service-inconnu").await;

    // "Mot de passe oublié ?": the same answer whether or not a mail leaves;
    // a used or made-up link says so.
    c.goto(&sign_in).await.unwrap();
    click_and_wait(c, "a[href='/cas/mot-de-passe-oublie']").await;
    assert_eq!(text(c, "h1").await, "Mot de passe oublié");
    shot(c, "37-cas-mot-de-passe-oublie").await;
    type_into(c, "username", &login).await;
    click_and_wait(c, "button[type=submit].principal").await;
    assert!(text(c, "main")
        .await
        .contains("Si ce compte a une adresse électronique"));
    shot(c, "38-cas-lien-envoye").await;
    c.goto(&format!("{}/cas/reinitialisation?jeton=RST-0", app.url))
        .await
        .unwrap();
    shot(c, "39-cas-lien").await;
    click_and_wait(c, "button[type=submit].principal").await;
    assert_eq!(text(c, "h1").await, "Lien expiré");
    shot(c, "40-cas-lien-expire").await;
    c.clone().close().await.unwrap();
}
