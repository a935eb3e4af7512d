//! The AAF feed, duplicates, reconciliation, manual creation and the audit
//! log, on both real backends (SQLite and PostgreSQL) by the `conformance!`
//! macro. Feed files are built here in the `ficAlimMENESR` structure of SPEC
//! §10, encoded ISO-8859-15 as the academies send them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use domain::keys::{LoginPattern, SyncKey};
use domain::manual::ManualUser;
use domain::person::{Attributes, Source};
use domain::Profile;
use rand::SeedableRng;
use store::aaf::{AafOutcome, AafRequest, FeedFile, Status};
use store::admin::{self, AdminDirectory, AdminError};
use store::history::{History, HistoryFilter};
use store::service::FixedClock;

trait Feed: AdminDirectory + History {}
impl<T: AdminDirectory + History> Feed for T {}
use store::{Directory, DirectoryTx, UserQuery, UserRow};

conformance!(
    aaf_add_creates_establishments_and_protected_accounts,
    aaf_modify_updates_and_delete_deactivates,
    aaf_complet_deactivates_only_absent_aaf_accounts,
    aaf_run_is_all_or_nothing,
    guide_section_7_story,
    reconcile_refuses_what_is_not_one_person,
    dismissed_pairs_are_never_proposed_again,
    users_add_creates_any_profile_by_hand,
);

// ---- feed builders -------------------------------------------------------

fn feed(requests: &[String]) -> Vec<u8> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?>\n<ficAlimMENESR>\n{}\n</ficAlimMENESR>\n",
        requests.join("\n")
    );
    let (bytes, _, unmappable) = encoding_rs::ISO_8859_15.encode(&xml);
    assert!(!unmappable, "test feed not representable in ISO-8859-15");
    bytes.into_owned()
}

fn attr(name: &str, values: &[&str]) -> String {
    let values: String = values
        .iter()
        .map(|v| format!("<value>{}</value>", v.replace('&', "&amp;")))
        .collect();
    format!("<attr name=\"{name}\">{values}</attr>")
}

fn structure(uai: &str, name: &str) -> String {
    format!(
        "<addRequest><operationalAttributes>{}</operationalAttributes><identifier><id>{uai}</id></identifier><attributes>{}{}</attributes></addRequest>",
        attr("categorieStructure", &["EtabEducNat"]),
        attr("ENTStructureUAI", &[uai]),
        attr("ENTStructureNomCourant", &[name]),
    )
}

struct Person<'a> {
    jointure: &'a str,
    title: &'a str,
    last: &'a str,
    first: &'a str,
    born: Option<&'a str>,
    mail: Option<&'a str>,
    functions: &'a [&'a str],
}

fn add(p: &Person<'_>) -> String {
    let mut attrs = vec![
        attr("ENTPersonJointure", &[p.jointure]),
        attr("personalTitle", &[p.title]),
        attr("sn", &[p.last]),
        attr("givenName", &[p.first]),
        attr("ENTPersonFonctions", p.functions),
    ];
    if let Some(b) = p.born {
        attrs.push(attr("ENTPersonDateNaissance", &[b]));
    }
    if let Some(m) = p.mail {
        attrs.push(attr("mail", &[m]));
    }
    format!(
        "<addRequest><operationalAttributes>{}</operationalAttributes><identifier><id>{}</id></identifier><attributes>{}</attributes></addRequest>",
        attr("categoriePersonne", &["PersEducNat"]),
        p.jointure,
        attrs.join("")
    )
}

fn modify(jointure: &str, changes: &[(&str, &[&str])]) -> String {
    let mods: String = changes
        .iter()
        .map(|(name, values)| {
            let values: String = values.iter().map(|v| format!("<value>{v}</value>")).collect();
            format!("<modification name=\"{name}\" operation=\"replace\">{values}</modification>")
        })
        .collect();
    format!(
        "<modifyRequest><operationalAttributes>{}</operationalAttributes><identifier><id>{jointure}</id></identifier><modifications>{mods}</modifications></modifyRequest>",
        attr("categoriePersonne", &["PersEducNat"]),
    )
}

fn delete(jointure: &str) -> String {
    format!(
        "<deleteRequest><operationalAttributes>{}</operationalAttributes><identifier><id>{jointure}</id></identifier></deleteRequest>",
        attr("categoriePersonne", &["PersEducNat"]),
    )
}

fn teacher<'a>(jointure: &'a str, last: &'a str, first: &'a str, functions: &'a [&'a str]) -> Person<'a> {
    Person {
        jointure,
        title: "M.",
        last,
        first,
        born: None,
        mail: None,
        functions,
    }
}

fn file(name: &str, bytes: Vec<u8>) -> FeedFile {
    FeedFile::from_bytes(name, bytes)
}

async fn run(d: &impl Feed, files: &[FeedFile], request: &AafRequest) -> AafOutcome {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    match store::aaf::run_aaf_import(d, files, request, &FixedClock(now()), &mut rng).await {
        Ok(o) => o,
        Err(e) => panic!("AAF import failed: {e}"),
    }
}

async fn user(d: &impl Directory, key: &str) -> Option<UserRow> {
    let mut tx = d.begin().await.unwrap();
    tx.users_by_keys(&[key.to_string()]).await.unwrap().into_iter().next()
}

async fn establishments_of(d: &impl Directory, login: &str) -> (bool, Vec<String>) {
    let found = d
        .search_users(&UserQuery {
            login: Some(login.into()),
            limit: 10,
            ..UserQuery::default()
        })
        .await
        .unwrap();
    let u = found.iter().find(|u| u.login == login).expect("user by login");
    (u.active, u.establishments.clone())
}

fn csv_result_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    let text = std::str::from_utf8(bytes).unwrap().strip_prefix('\u{feff}').unwrap();
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| l.split(';').map(str::to_string).collect())
        .collect()
}

const ETAB_FILE: &str = "ENT_0750655E_Complet_20261125_EtabEducNat_0000.xml";
const STAFF_FILE: &str = "ENT_0750654D_Complet_20261125_PersEducNat_0000.xml";
const STAFF_DELTA: &str = "ENT_0750654D_Delta_20261202_PersEducNat_0000.xml";

// ---- the feed ----------------------------------------------------------------

async fn aaf_add_creates_establishments_and_protected_accounts(d: &impl Feed) {
    with_establishments(d, &[UAI]).await;
    let staff = feed(&[
        add(&Person {
            jointure: "1841028",
            title: "Mme",
            last: "BARBIER",
            first: "Véronique",
            born: Some("12/03/1971"),
            mail: Some("veronique.barbier@ac-paris.fr"),
            functions: &[
                "0750654D$ENS$ENSEIGNEMENT$L1500$SCIENCES PHYSIQUES",
                "0750655E$ENS$ENSEIGNEMENT$L1500$SCIENCES PHYSIQUES",
            ],
        }),
        add(&teacher("3248023", "DURAND", "Paul", &["0750655E$DIR$DIRECTION"])),
    ]);
    // The staff file first on the command line: structures are still processed first.
    let files = [
        file(STAFF_FILE, staff),
        file(ETAB_FILE, feed(&[structure(OTHER_UAI, "Lycée Hélène Boucher")])),
    ];
    let o = run(d, &files, &AafRequest::default()).await;
    assert_eq!(o.report.status, Status::Imported, "{:?}", o.report);
    assert_eq!(o.report.establishments_created, 1);
    assert_eq!((o.report.created, o.report.updated, o.report.skipped), (2, 0, 0));
    let names: Vec<String> = d
        .list_establishments()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&"Lycée Hélène Boucher".to_string()), "{names:?}");

    let teacher = user(d, "PERSON.1841028").await.expect("created");
    assert_eq!((teacher.source.as_str(), teacher.protected), ("aaf", true));
    assert_eq!(
        (teacher.profile.as_str(), teacher.first_name.as_str()),
        ("enseignant", "Véronique")
    );
    assert_eq!(teacher.subject.as_deref(), Some("SCIENCES PHYSIQUES"));
    assert_eq!(teacher.email.as_deref(), Some("veronique.barbier@ac-paris.fr"));
    assert_eq!(teacher.login, "vbarbier");
    assert_eq!(
        establishments_of(d, "vbarbier").await,
        (true, vec![UAI.to_string(), OTHER_UAI.to_string()])
    );
    let head = user(d, "PERSON.3248023").await.expect("created");
    assert_eq!(
        (head.profile.as_str(), head.function_code.as_deref()),
        ("administratif", Some("DIR"))
    );

    // The result file holds the generated credentials, and they log in.
    let rows = csv_result_rows(o.result_file.as_ref().expect("result file"));
    assert_eq!(rows[0][0], "Clé de synchronisation");
    let row = rows.iter().find(|r| r[0] == "PERSON.1841028").expect("row");
    assert_eq!(row[6], "vbarbier");
    let hash = d.password_hash("vbarbier").await.unwrap().expect("hash");
    assert!(domain::password::verify(&row[7], &hash));

    // The same feed again changes nothing.
    let again = run(d, &files, &AafRequest::default()).await;
    assert_eq!(
        (again.report.created, again.report.updated, again.report.unchanged),
        (0, 0, 2)
    );
    assert_eq!(again.report.establishments_created, 0);
    assert!(again.result_file.is_none());
    let audit = admin::audit_log(d, 10).await.unwrap();
    assert_eq!(audit.iter().filter(|a| a.action == "aaf_import").count(), 2);
}

async fn aaf_modify_updates_and_delete_deactivates(d: &impl Feed) {
    with_establishments(d, &[UAI, OTHER_UAI]).await;
    let first = feed(&[
        add(&teacher(
            "1000001",
            "MARTIN",
            "Anne",
            &["0750654D$ENS$ENSEIGNEMENT$L0100$PHILOSOPHIE"],
        )),
        add(&teacher("1000002", "PETIT", "Louis", &["0750654D$ENS$ENSEIGNEMENT"])),
    ]);
    let o = run(d, &[file(STAFF_FILE, first)], &AafRequest::default()).await;
    assert_eq!(o.report.created, 2);
    let before = user(d, "PERSON.1000001").await.unwrap();

    let delta = feed(&[
        modify(
            "1000001",
            &[
                ("sn", &["MARTIN-LEROY"]),
                ("ENTPersonFonctions", &["0750655E$DIR$DIRECTION"]),
            ],
        ),
        delete("1000002"),
        modify("9999999", &[("sn", &["INCONNU"])]),
    ]);
    let o = run(d, &[file(STAFF_DELTA, delta)], &AafRequest::default()).await;
    assert_eq!(o.report.status, Status::Imported);
    assert_eq!((o.report.updated, o.report.deactivated, o.report.skipped), (1, 1, 1));
    assert_eq!(o.report.issues[0].code, "unknown_account");
    let after = user(d, "PERSON.1000001").await.unwrap();
    assert_eq!((after.id, after.login.as_str()), (before.id, before.login.as_str()));
    assert_eq!(after.last_name, "MARTIN-LEROY");
    assert_eq!(after.profile, "administratif", "DIR only: now staff");
    assert_eq!(
        establishments_of(d, "amartin").await,
        (true, vec![OTHER_UAI.to_string()])
    );
    let gone = user(d, "PERSON.1000002").await.unwrap();
    assert!(!gone.active, "deleteRequest deactivates");

    // Deactivation is undone like a Complet CSV import's.
    let restored = d.restore_import(o.report.import_id.unwrap(), now()).await.unwrap();
    assert!(restored >= 1);
    assert!(user(d, "PERSON.1000002").await.unwrap().active);
}

async fn aaf_complet_deactivates_only_absent_aaf_accounts(d: &impl Feed) {
    with_establishments(d, &[UAI, OTHER_UAI]).await;
    import(d, &guide_teachers(), &teachers(UAI)).await;
    let full = |people: &[(&str, &str)]| {
        let requests: Vec<String> = people
            .iter()
            .map(|(j, last)| add(&teacher(j, last, "Jean", &["0750654D$ENS$ENSEIGNEMENT"])))
            .collect();
        feed(&requests)
    };
    let o = run(
        d,
        &[file(
            STAFF_FILE,
            full(&[("2000001", "UN"), ("2000002", "DEUX"), ("2000003", "TROIS")]),
        )],
        &AafRequest::default(),
    )
    .await;
    assert_eq!(o.report.created, 3);
    // The third teacher also works in another establishment.
    let other = feed(&[add(&teacher(
        "2000003",
        "TROIS",
        "Jean",
        &["0750654D$ENS$ENSEIGNEMENT", "0750655E$ENS$ENSEIGNEMENT"],
    ))]);
    run(
        d,
        &[file("ENT_0750655E_Delta_20261126_PersEducNat_0000.xml", other)],
        &AafRequest::default(),
    )
    .await;

    // A record the run cannot read (no first name) still protects its person.
    let unreadable = {
        let mut requests = vec![add(&teacher("2000001", "UN", "Jean", &["0750654D$ENS$ENSEIGNEMENT"]))];
        requests.push(add(&teacher("2000002", "DEUX", "", &["0750654D$ENS$ENSEIGNEMENT"])));
        requests.push(add(&teacher(
            "2000003",
            "TROIS",
            "Jean",
            &["0750654D$ENS$ENSEIGNEMENT", "0750655E$ENS$ENSEIGNEMENT"],
        )));
        feed(&requests)
    };
    let o = run(d, &[file(STAFF_FILE, unreadable)], &AafRequest::default()).await;
    assert_eq!(
        (o.report.status, o.report.skipped, o.report.deactivated),
        (Status::Imported, 1, 0)
    );
    assert!(user(d, "PERSON.2000002").await.unwrap().active);

    let next = full(&[("2000001", "UN")]);
    let refused = run(d, &[file(STAFF_FILE, next.clone())], &AafRequest::default()).await;
    assert_eq!(refused.report.status, Status::Rejected);
    assert!(refused
        .report
        .rejection
        .as_deref()
        .unwrap()
        .contains("--confirm-deletions 2"));
    assert!(
        user(d, "PERSON.2000002").await.unwrap().active,
        "rejected: nothing written"
    );
    let line = d
        .import_entry(refused.report.import_id.expect("a history line"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line.status.id(), "rejected");
    assert!(line.complet);
    assert!(line
        .error
        .as_deref()
        .unwrap_or_default()
        .contains("--confirm-deletions 2"));

    let confirmed = AafRequest {
        confirm_deletions: Some(2),
        ..AafRequest::default()
    };
    let o = run(d, &[file(STAFF_FILE, next)], &confirmed).await;
    assert_eq!((o.report.status, o.report.deactivated), (Status::Imported, 2));
    assert!(!user(d, "PERSON.2000002").await.unwrap().active);
    let trois = user(d, "PERSON.2000003").await.unwrap();
    assert!(trois.active, "still teaching elsewhere: only the membership ends");
    assert_eq!(establishments_of(d, &trois.login).await.1, [OTHER_UAI]);
    // CSV accounts of the establishment are never touched by the feed.
    assert!(user(d, "PERSON.m-mmefrancisplaton").await.unwrap().active);

    // A Complet file without anybody (truncated?) deactivates nobody.
    let empty = run(d, &[file(STAFF_FILE, feed(&[]))], &AafRequest::default()).await;
    assert_eq!((empty.report.status, empty.report.deactivated), (Status::Imported, 0));
    assert!(empty
        .report
        .notices
        .iter()
        .any(|n| n.message.contains("sans aucune personne")));
}

async fn aaf_run_is_all_or_nothing(d: &impl Feed) {
    with_establishments(d, &[UAI]).await;
    let good = file(
        STAFF_FILE,
        feed(&[add(&teacher("3000001", "BON", "Jean", &["0750654D$ENS$ENSEIGNEMENT"]))]),
    );
    let etab = file(ETAB_FILE, feed(&[structure(OTHER_UAI, "Nouveau lycée")]));
    let broken = file(
        "ENT_0750654D_Delta_20261126_PersEducNat_0000.xml",
        b"<?xml version=\"1.0\"?><ficAlimMENESR><addRequest><identifier>".to_vec(),
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let err = store::aaf::run_aaf_import(
        d,
        &[good, etab, broken],
        &AafRequest::default(),
        &FixedClock(now()),
        &mut rng,
    )
    .await
    .err()
    .expect("broken file");
    assert!(err.to_string().contains("Delta"), "{err}");
    assert_eq!(d.count_users().await.unwrap(), 0);
    assert_eq!(d.list_establishments().await.unwrap().len(), 1, "no structure either");
    // Refused, yet in the history with its reason.
    let history = d.list_imports(&HistoryFilter::everything()).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].source.id(), history[0].status.id()), ("aaf", "rejected"));
    assert!(
        history[0].error.as_deref().unwrap_or_default().contains("Delta"),
        "{history:?}"
    );
    assert_eq!(history[0].created, 0);

    let dry = AafRequest {
        dry_run: true,
        ..AafRequest::default()
    };
    let good = file(
        STAFF_FILE,
        feed(&[add(&teacher("3000001", "BON", "Jean", &["0750654D$ENS$ENSEIGNEMENT"]))]),
    );
    let o = run(d, &[good], &dry).await;
    assert_eq!((o.report.status, o.report.created), (Status::DryRun, 1));
    assert_eq!(d.count_users().await.unwrap(), 0);
}

// ---- guide §7, the whole story -----------------------------------------------

async fn guide_section_7_story(d: &impl Feed) {
    with_establishments(d, &[UAI]).await;
    // 1. September: the school imports its new teacher by CSV (no accent typed).
    let csv_file = csv(&[
        "Civilité;Nom;Prénom;Matière;Email",
        "Madame;Barbier;Veronique;Physique-Chimie;v.barbier@gmail.com",
    ]);
    let imported = import(d, &csv_file, &teachers(UAI)).await;
    let csv_key = "PERSON.m-mmeveroniquebarbier";
    let csv_account = user(d, csv_key).await.expect("csv account");
    assert_eq!(csv_account.login, "vbarbier");
    let hash_before = d.password_hash("vbarbier").await.unwrap().unwrap();
    let password = result_rows(&imported)[1][7].clone();
    assert!(domain::password::verify(&password, &hash_before));

    // 2. The weekly AAF feed brings the same person, spelled the academy's way.
    let barbier = Person {
        jointure: "3248023",
        title: "Mme",
        last: "BARBIER",
        first: "Véronique",
        born: Some("12/03/1971"),
        mail: Some("veronique.barbier@ac-paris.fr"),
        functions: &["0750654D$ENS$ENSEIGNEMENT$L1500$SCIENCES PHYSIQUES"],
    };
    let o = run(d, &[file(STAFF_FILE, feed(&[add(&barbier)]))], &AafRequest::default()).await;
    assert_eq!(o.report.created, 1);
    assert_eq!(d.count_users().await.unwrap(), 2, "the duplicate of the guide");
    assert_eq!(user(d, "PERSON.3248023").await.unwrap().login, "vbarbier2");
    // 3. The run lists the pair it created; so does the on-demand list.
    assert_eq!(o.report.duplicates.len(), 1);
    let pairs = admin::duplicates(d, Some(&uai(UAI))).await.unwrap();
    assert_eq!(pairs.len(), 1);
    let pair = &pairs[0];
    assert_eq!(
        (pair.local.key.as_str(), pair.aaf.key.as_str()),
        (csv_key, "PERSON.3248023")
    );
    assert_eq!(pair.local.source, Source::Csv);
    assert!(pair.evidence.iter().any(|e| e.code == "same_names"));
    assert!(pair.evidence.iter().any(|e| e.code == "different_email"));
    assert_eq!(pair.score, 40);
    // Who may act on it: the pair is read for these two accounts only, and
    // an admin of another establishment does not see it.
    use domain::plan::AdminScope;
    let own = AdminScope::Establishments([uai(UAI)].into());
    let other = AdminScope::Establishments([uai(OTHER_UAI)].into());
    let found = admin::pair_in_scope(d, csv_key, " PERSON.3248023 ", &own)
        .await
        .unwrap();
    assert_eq!(found.as_ref(), Some(pair));
    assert_eq!(
        admin::pair_in_scope(d, csv_key, "PERSON.3248023", &AdminScope::All)
            .await
            .unwrap()
            .as_ref(),
        Some(pair)
    );
    assert!(admin::pair_in_scope(d, csv_key, "PERSON.3248023", &other)
        .await
        .unwrap()
        .is_none());
    assert!(
        admin::pair_in_scope(d, "PERSON.3248023", csv_key, &own)
            .await
            .unwrap()
            .is_none(),
        "keys swapped: not the listed pair"
    );

    // 4. Reconciliation: one action instead of the guide's three steps.
    let done = admin::reconcile(d, csv_key, "PERSON.3248023", "test:admin", now())
        .await
        .unwrap();
    assert_eq!((done.user_id, done.login.as_str()), (csv_account.id, "vbarbier"));
    assert_eq!(d.count_users().await.unwrap(), 1);
    let kept = user(d, "PERSON.3248023")
        .await
        .expect("the csv account under the aaf key");
    assert_eq!(
        (kept.id, kept.source.as_str(), kept.protected),
        (csv_account.id, "aaf", true)
    );
    assert_eq!(kept.first_name, "Veronique", "identity changes come with the next feed");
    assert!(user(d, csv_key).await.is_none());
    assert!(admin::duplicates(d, None).await.unwrap().is_empty());
    let audit = admin::audit_log(d, 5).await.unwrap();
    assert_eq!(audit[0].action, "reconcile");
    assert_eq!(audit[0].details["previous_key"], csv_key);

    // 5. Next week's feed updates the CSV-born account instead of recreating the duplicate.
    let o = run(d, &[file(STAFF_FILE, feed(&[add(&barbier)]))], &AafRequest::default()).await;
    assert_eq!((o.report.created, o.report.updated), (0, 1), "{:?}", o.report);
    assert!(o.result_file.is_none(), "no new credentials to hand out");
    assert_eq!(d.count_users().await.unwrap(), 1, "no second account");
    let after = user(d, "PERSON.3248023").await.unwrap();
    assert_eq!(after.id, csv_account.id);
    assert_eq!(
        (after.first_name.as_str(), after.last_name.as_str()),
        ("Véronique", "BARBIER")
    );
    assert_eq!(after.birth_date, chrono::NaiveDate::from_ymd_opt(1971, 3, 12));
    assert_eq!(after.login, "vbarbier");
    assert_eq!(d.password_hash("vbarbier").await.unwrap().unwrap(), hash_before);
    assert!(
        domain::password::verify(&password, &hash_before),
        "same password logs in"
    );
    assert_eq!(establishments_of(d, "vbarbier").await, (true, vec![UAI.to_string()]));

    // 6. Re-importing September's CSV file finds the reconciled account by
    // the key it had: no duplicate, nothing changed, the admin is told why.
    let again = import(d, &csv_file, &teachers(UAI)).await;
    assert_eq!((again.plan.creates.len(), again.plan.updates.len()), (0, 0));
    assert_eq!(again.plan.unchanged.len(), 1);
    assert_eq!(again.plan.unchanged[0].user_id, csv_account.id);
    assert!(
        again
            .plan
            .notices
            .iter()
            .any(|n| n.code == "reconciled_key" && n.message.contains("PERSON.3248023")),
        "{:?}",
        again.plan.notices
    );
    assert_eq!(d.count_users().await.unwrap(), 1, "no duplicate from the old key");
}

async fn reconcile_refuses_what_is_not_one_person(d: &impl Feed) {
    with_establishments(d, &[UAI]).await;
    import(d, &guide_teachers(), &teachers(UAI)).await;
    let pupils = csv(&["Nom;Prénom;Date de naissance;Classe", "PLATON;Francis;03/08/2012;6A"]);
    import(d, &pupils, &request(Profile::Eleve, UAI)).await;
    run(
        d,
        &[file(
            STAFF_FILE,
            feed(&[
                add(&teacher("4000001", "PLATON", "Francis", &["0750654D$ENS$ENSEIGNEMENT"])),
                add(&teacher("4000002", "JAMES", "Henry", &["0750654D$ENS$ENSEIGNEMENT"])),
            ]),
        )],
        &AafRequest::default(),
    )
    .await;
    let refuse = |r: Result<admin::Reconciliation, AdminError>| match r {
        Ok(_) => panic!("reconciliation should be refused"),
        Err(e) => e,
    };
    let e = refuse(admin::reconcile(d, "PERSON.4000001", "PERSON.4000002", "t", now()).await);
    assert!(matches!(e, AdminError::BothAaf(..)), "{e}");
    let e = refuse(admin::reconcile(d, "PERSON.m-mmefrancisplaton", "PERSON.m-mmehenryjames", "t", now()).await);
    assert!(matches!(e, AdminError::NoAaf(..)), "{e}");
    let e = refuse(admin::reconcile(d, "PERSON.4000001", "PERSON.m-mmefrancisplaton", "t", now()).await);
    assert!(
        e.to_string()
            .contains("relancez « annuaire reconcile PERSON.m-mmefrancisplaton PERSON.4000001 »"),
        "{e}"
    );
    let e = refuse(admin::reconcile(d, "PERSON.m-mmefrancisplatom", "PERSON.4000001", "t", now()).await);
    assert!(
        e.to_string()
            .contains("aucun compte n'a la clé de synchronisation « PERSON.m-mmefrancisplatom »"),
        "{e}"
    );
    let e = refuse(admin::reconcile(d, "francisplaton03", "PERSON.4000001", "t", now()).await);
    assert!(matches!(e, AdminError::Profiles(..)), "{e}");
    assert!(e.to_string().contains("Élève"), "{e}");
    let e = refuse(admin::reconcile(d, "PERSON.4000001", "PERSON.4000001", "t", now()).await);
    assert!(matches!(e, AdminError::SameAccount), "{e}");
    assert_eq!(d.count_users().await.unwrap(), 8, "nothing changed");
    assert!(admin::audit_log(d, 10)
        .await
        .unwrap()
        .iter()
        .all(|a| a.action != "reconcile"));
}

async fn dismissed_pairs_are_never_proposed_again(d: &impl Feed) {
    with_establishments(d, &[UAI]).await;
    import(d, &guide_teachers(), &teachers(UAI)).await;
    run(
        d,
        &[file(
            STAFF_FILE,
            feed(&[add(&Person {
                born: Some("01/01/1980"),
                ..teacher("5000001", "Mozart", "Pauline", &["0750654D$ENS$ENSEIGNEMENT"])
            })]),
        )],
        &AafRequest::default(),
    )
    .await;
    let pairs = admin::duplicates(d, None).await.unwrap();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].local.key.as_str(), "PERSON.m-mmepaulinemozart");
    assert!(
        admin::dismiss(d, "PERSON.5000001", "PERSON.m-mmepaulinemozart", "t", now())
            .await
            .unwrap()
    );
    assert!(
        !admin::dismiss(d, "PERSON.m-mmepaulinemozart", "PERSON.5000001", "t", now())
            .await
            .unwrap()
    );
    assert!(admin::duplicates(d, Some(&uai(UAI))).await.unwrap().is_empty());
    let e = admin::dismiss(d, "PERSON.nobody", "PERSON.5000001", "t", now())
        .await
        .err()
        .unwrap();
    assert!(matches!(e, AdminError::UnknownKey(_)));
}

async fn users_add_creates_any_profile_by_hand(d: &impl Feed) {
    with_establishments(d, &[UAI]).await;
    let person = |profile, establishment: Option<&str>, first: &str, last: &str| ManualUser {
        profile,
        establishment: establishment.map(uai),
        attrs: Attributes {
            last_name: last.into(),
            first_name: first.into(),
            ..Attributes::default()
        },
        login: None,
        password: None,
        key: None,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let added = admin::add_user(
        d,
        &person(Profile::Administrateur, Some(UAI), "Claire", "Directrice"),
        LoginPattern::default(),
        3,
        "test:admin",
        now(),
        &mut rng,
    )
    .await
    .unwrap();
    assert_eq!(
        (added.login.as_str(), added.key.as_str()),
        ("cdirectrice", "PERSON.m-mmeclairedirectrice")
    );
    let password = added.password.clone().expect("generated");
    let hash = d.password_hash("cdirectrice").await.unwrap().unwrap();
    assert!(domain::password::verify(&password, &hash));
    let row = user(d, "PERSON.m-mmeclairedirectrice").await.unwrap();
    assert_eq!(
        (row.source.as_str(), row.profile.as_str(), row.protected),
        ("manual", "administrateur", false)
    );

    let mut guest = person(Profile::Invite, None, "Ivan", "Invité");
    guest.login = Some(domain::values::Login::parse("inspecteur.ivan").unwrap());
    guest.password = Some("secret".into());
    guest.key = Some(SyncKey::from_stored("INVITE.ivan".into()));
    let added = admin::add_user(d, &guest, LoginPattern::default(), 3, "test:admin", now(), &mut rng)
        .await
        .unwrap();
    assert!(added.password.is_none(), "imposed: never printed back");
    assert!(domain::password::verify(
        "secret",
        &d.password_hash("inspecteur.ivan").await.unwrap().unwrap()
    ));

    // Same key again, a taken login, an unknown establishment: refused, nothing written.
    let e = admin::add_user(
        d,
        &person(Profile::Administrateur, Some(UAI), "Claire", "Directrice"),
        LoginPattern::default(),
        3,
        "t",
        now(),
        &mut rng,
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(e, AdminError::KeyTaken { .. }), "{e}");
    let mut taken = person(Profile::Enseignant, Some(UAI), "Zoé", "Autre");
    taken.login = Some(domain::values::Login::parse("CDirectrice").unwrap());
    taken.password = Some("abc".into());
    let e = admin::add_user(d, &taken, LoginPattern::default(), 3, "t", now(), &mut rng)
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("login cdirectrice est déjà attribué"), "{e}");
    let e = admin::add_user(
        d,
        &person(Profile::Enseignant, Some("0750656F"), "Zoé", "Autre"),
        LoginPattern::default(),
        3,
        "t",
        now(),
        &mut rng,
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(e, AdminError::UnknownEstablishment(_)), "{e}");
    assert_eq!(d.count_users().await.unwrap(), 2);
    let audit = admin::audit_log(d, 10).await.unwrap();
    assert_eq!(audit.iter().filter(|a| a.action == "user_add").count(), 2);
}
