//! `aaf import`, `duplicates`, `reconcile`, `users add` and `audit` as an
//! administrator runs them: real files, a real SQLite database, exit statuses
//! (0 done, 2 refused with nothing written, 1 other errors) and French messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::Value;
use support::*;

/// A PersEducNat feed in ISO-8859-15, one teacher per (jointure, sn, givenName).
fn feed(people: &[(&str, &str, &str)]) -> Vec<u8> {
    let requests: String = people
        .iter()
        .map(|(j, sn, given)| {
            format!(
                "<addRequest><operationalAttributes><attr name=\"categoriePersonne\"><value>PersEducNat</value></attr></operationalAttributes>\
                 <identifier><id>{j}</id></identifier><attributes>\
                 <attr name=\"ENTPersonJointure\"><value>{j}</value></attr>\
                 <attr name=\"personalTitle\"><value>Mme</value></attr>\
                 <attr name=\"sn\"><value>{sn}</value></attr>\
                 <attr name=\"givenName\"><value>{given}</value></attr>\
                 <attr name=\"ENTPersonFonctions\"><value>0750654D$ENS$ENSEIGNEMENT$L1500$SCIENCES PHYSIQUES</value></attr>\
                 </attributes></addRequest>\n"
            )
        })
        .collect();
    let xml =
        format!("<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?>\n<ficAlimMENESR>\n{requests}</ficAlimMENESR>\n");
    encoding_rs::ISO_8859_15.encode(&xml).0.into_owned()
}

const FEED_NAME: &str = "ENT_0750654D_Complet_20261125_PersEducNat_0000.xml";

#[test]
fn aaf_import_from_a_folder_writes_a_private_result_file_and_reports_json() {
    let env = Env::new();
    std::fs::create_dir(env.path("flux")).unwrap();
    env.write(
        &format!("flux/{FEED_NAME}"),
        &feed(&[("1841028", "BARBIER", "Véronique")]),
    );
    env.write("flux/lisezmoi.txt", b"pas du XML");
    let out = env.run(&["aaf", "import", "flux", "--result", "aaf.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("1 créé(s)"), "{text}");
    assert!(text.contains("aaf.csv"), "says where the credentials go: {text}");
    let result = std::fs::read_to_string(env.path("aaf.csv")).unwrap();
    assert!(
        result.contains("PERSON.1841028") && result.contains("vbarbier"),
        "{result}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path("aaf.csv")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let users = env.json(&["users", "search", "--json"]);
    assert_eq!(users[0]["first_name"], "Véronique", "ISO-8859-15 decoded");
    assert_eq!(users[0]["source"], "aaf");

    let feed_path = env.path(&format!("flux/{FEED_NAME}")).display().to_string();
    let report = env.json(&["aaf", "import", &feed_path, "--report", "json"]);
    assert_eq!(report["status"], "imported");
    assert_eq!(
        (report["created"].as_u64(), report["unchanged"].as_u64()),
        (Some(0), Some(1))
    );

    // A Complet feed that would remove the only account: refused (exit 2) until confirmed.
    env.write(&format!("flux/{FEED_NAME}"), &feed(&[("1841099", "AUTRE", "Anne")]));
    let out = env.run(&["aaf", "import", &feed_path, "--report", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["rejection"].as_str().unwrap().contains("--confirm-deletions 1"));
    let out = env.run(&[
        "aaf",
        "import",
        &feed_path,
        "--confirm-deletions",
        "1",
        "--result",
        "aaf2.csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 désactivé(s)"));

    let audit = env.json(&["audit", "--json"]);
    assert!(audit.as_array().unwrap().iter().any(|a| a["action"] == "aaf_import"));
}

#[test]
fn aaf_import_of_a_missing_or_foreign_file_says_what_is_wrong() {
    let env = Env::new();
    let out = env.run(&["aaf", "import", "absent.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("absent.xml"), "{}", stderr(&out));
    let html = env.write("page.xml", b"<html><body>Erreur 404</body></html>");
    let out = env.run(&["aaf", "import", &html]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("n'est pas un flux AAF"), "{}", stderr(&out));
}

#[test]
fn duplicates_then_reconcile_then_refusals() {
    let env = Env::new();
    let csv = env.write(
        "enseignants.csv",
        "Civilité;Nom;Prénom;Matière\r\nMadame;Barbier;Veronique;Physique-Chimie\r\n".as_bytes(),
    );
    let out = env.run(&[
        "import",
        &csv,
        "--profile",
        "enseignant",
        "--establishment",
        "0750654D",
        "--result",
        "r.csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let aaf = env.write(FEED_NAME, &feed(&[("3248023", "BARBIER", "Véronique")]));
    let out = env.run(&["aaf", "import", &aaf, "--result", "a.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Doublons probables"), "{}", stdout(&out));

    let pairs = env.json(&["duplicates", "--establishment", "0750654D", "--json"]);
    assert_eq!(pairs.as_array().unwrap().len(), 1);
    assert_eq!(pairs[0]["local"]["key"], "PERSON.m-mmeveroniquebarbier");
    assert_eq!(pairs[0]["aaf"]["key"], "PERSON.3248023");
    let text = stdout(&env.run(&["duplicates"]));
    assert!(
        text.contains("annuaire reconcile PERSON.m-mmeveroniquebarbier PERSON.3248023"),
        "{text}"
    );

    // Refusals: exit 2, a French message that says what to do, nothing written.
    let out = env.run(&["reconcile", "PERSON.3248023", "PERSON.m-mmeveroniquebarbier"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("ordre inversé"), "{}", stderr(&out));
    let out = env.run(&["reconcile", "PERSON.m-mmeveroniquebarbier", "PERSON.0000000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("aucun compte n'a la clé"), "{}", stderr(&out));
    let out = env.run(&["reconcile", "PERSON.3248023", "PERSON.3248023"]);
    assert_eq!(out.status.code(), Some(2));

    let done = env.json(&["reconcile", "PERSON.m-mmeveroniquebarbier", "PERSON.3248023", "--json"]);
    assert_eq!(done["login"], "vbarbier");
    assert_eq!(done["key"], "PERSON.3248023");
    let users = env.json(&["users", "search", "--json"]);
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["login"], "vbarbier");
    assert_eq!(users[0]["source"], "aaf");
    let audit = stdout(&env.run(&["audit"]));
    assert!(
        audit.contains("reconcile") && audit.contains("PERSON.3248023"),
        "{audit}"
    );
}

#[test]
fn users_add_prints_the_generated_password_once_and_refuses_bad_input() {
    let env = Env::new();
    let out = env.run(&[
        "users",
        "add",
        "--profile",
        "administrateur",
        "--establishment",
        "0750654D",
        "--last-name",
        "Martin",
        "--first-name",
        "Élise",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("login emartin"), "{text}");
    assert!(text.contains("affiché une seule fois"), "{text}");

    let added: Value = {
        let out = env.run_with_stdin(
            &[
                "users",
                "add",
                "--profile",
                "invite",
                "--last-name",
                "Inspecteur",
                "--first-name",
                "Paul",
                "--login",
                "p.inspecteur",
                "--password-stdin",
                "--json",
            ],
            "motdepasse\n",
        );
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(added["login"], "p.inspecteur");
    assert!(added["password"].is_null(), "an imposed password is never printed");

    let out = env.run(&[
        "users",
        "add",
        "--profile",
        "administratif",
        "--establishment",
        "0750654D",
        "--last-name",
        "Durand",
        "--first-name",
        "Paul",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--function"), "{}", stderr(&out));
    let out = env.run(&[
        "users",
        "add",
        "--profile",
        "enseignant",
        "--establishment",
        "0750654E",
        "--last-name",
        "Durand",
        "--first-name",
        "Paul",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("lettre de contrôle"), "{}", stderr(&out));
    let users = env.json(&["users", "search", "--json"]);
    assert_eq!(users.as_array().unwrap().len(), 2);
    let profiles: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["source"].as_str().unwrap())
        .collect();
    assert_eq!(profiles, ["manual", "manual"]);
}

#[test]
fn a_csv_import_lists_the_duplicates_it_made_and_is_audited() {
    let env = Env::new();
    let aaf = env.write(FEED_NAME, &feed(&[("3248023", "BARBIER", "Véronique")]));
    assert!(env.run(&["aaf", "import", &aaf, "--result", "a.csv"]).status.success());
    let csv = env.write(
        "enseignants.csv",
        "Civilité;Nom;Prénom;Matière\r\nMadame;Barbier;Veronique;Physique-Chimie\r\n".as_bytes(),
    );
    let out = env.run(&[
        "import",
        &csv,
        "--profile",
        "enseignant",
        "--establishment",
        "0750654D",
        "--result",
        "r.csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Doublons probables avec des comptes du flux AAF"),
        "{text}"
    );
    assert!(
        text.contains("annuaire reconcile PERSON.m-mmeveroniquebarbier PERSON.3248023"),
        "{text}"
    );
    let actions: Vec<String> = env
        .json(&["audit", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["import", "aaf_import"], "most recent first");
}

#[test]
fn users_show_and_set_change_settings_with_audit_and_refuse_bad_input() {
    let env = Env::new();
    env.write(FEED_NAME, &feed(&[("1841028", "BARBIER", "Véronique")]));
    let out = env.run(&["aaf", "import", FEED_NAME]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = env.run(&[
        "users",
        "set",
        "PERSON.1841028",
        "--expires",
        "30/06/2027",
        "--allowed-ips",
        "10.1.2.3/8,192.168.1.10",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("expiration : « jamais » → « 30/06/2027 »"), "{text}");
    assert!(text.contains("10.0.0.0/8,192.168.1.10/32"), "host bits cleared: {text}");

    let out = env.run(&["users", "show", "PERSON.1841028", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["last_day"], "2027-06-30");
    assert_eq!(shown["allowed_networks"][1], "192.168.1.10/32");
    assert_eq!(shown["source"], "aaf");
    assert_eq!(shown["protected"], true);
    assert_eq!(shown["memberships"][0]["uai"], "0750654D");
    let out = env.run(&["users", "show", "PERSON.1841028"]);
    assert!(stdout(&out).contains("flux académique (AAF)"), "{}", stdout(&out));

    // Refusals: exit 2, a French reason, nothing written.
    for (args, expected) in [
        (
            vec!["--allowed-ips", "10.0.0.300/8"],
            "« 10.0.0.300/8 » n'est pas une plage d'adresses IP",
        ),
        (vec!["--unprotected"], "vient du flux AAF"),
        (vec!["--last-name", "ROUX"], "ce compte est protégé"),
        (
            vec!["--expires", "31/02/2027"],
            "date d'expiration « 31/02/2027 » illisible",
        ),
        (vec![], "rien à modifier"),
    ] {
        let mut full = vec!["users", "set", "PERSON.1841028"];
        full.extend(args.iter().copied());
        let out = env.run(&full);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    }
    let out = env.run(&["users", "show", "PERSON.0000000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("aucun compte n'a la clé"), "{}", stderr(&out));

    let out = env.run(&["audit", "--json"]);
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    let updates: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "account_update")
        .collect();
    assert_eq!(updates.len(), 1, "only the accepted change is audited: {log}");
    assert_eq!(updates[0]["target"], "PERSON.1841028");
}

/// A pupil and their father from the feed, as `users show` gives them: the
/// class, the level and the person in charge; the father's child.
#[test]
fn users_show_gives_a_pupils_class_level_and_persons_in_charge() {
    let env = Env::new();
    std::fs::create_dir(env.path("flux")).unwrap();
    let request = |kind: &str, attrs: &str| {
        format!(
            "<ficAlimMENESR><addRequest><operationalAttributes><attr name=\"categoriePersonne\"><value>{kind}</value></attr></operationalAttributes>\
             <identifier><id>x</id></identifier><attributes>{attrs}</attributes></addRequest></ficAlimMENESR>"
        )
    };
    let attr = |name: &str, value: &str| format!("<attr name=\"{name}\"><value>{value}</value></attr>");
    env.write(
        "flux/ENT_Complet_20261125_EtabEducNat_0000.xml",
        request(
            "EtabEducNat",
            &[
                attr("ENTStructureJointure", "4931"),
                attr("ENTStructureUAI", "0750654D"),
                attr("ENTStructureNomCourant", "CLG$LES CLOSEAUX$RUNGIS"),
            ]
            .concat(),
        )
        .replace("categoriePersonne", "categorieStructure")
        .as_bytes(),
    );
    env.write(
        "flux/ENT_0750654D_Complet_20261125_Eleve_0000.xml",
        request(
            "Eleve",
            &[
                attr("ENTPersonJointure", "111"),
                attr("sn", "LUCAS"),
                attr("givenName", "Léa"),
                attr("ENTEleveINE", "123456789AB"),
                attr("ENTPersonStructRattach", "4931"),
                attr("ENTEleveClasses", "4931$4A"),
                attr("ENTEleveLibelleMEF", "4EME"),
                attr("ENTElevePersRelEleve", "222$20$1$1$0$1"),
            ]
            .concat(),
        )
        .as_bytes(),
    );
    env.write(
        "flux/ENT_0750654D_Complet_20261125_PersRelEleve_0000.xml",
        request(
            "PersRelEleve",
            &[
                attr("ENTPersonJointure", "222"),
                attr("sn", "LUCAS"),
                attr("givenName", "Marc"),
                attr("ENTAuxPersRelEleveEleve", "111"),
            ]
            .concat(),
        )
        .as_bytes(),
    );
    let out = env.run(&["aaf", "import", "flux", "--result", "aaf.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let pupil = env.json(&["users", "show", "PERSON.111", "--json"]);
    assert_eq!(
        (pupil["class_name"].as_str(), pupil["level"].as_str()),
        (Some("4A"), Some("4EME"))
    );
    assert_eq!(pupil["relatives"][0]["last_name"], "LUCAS");
    assert_eq!(pupil["relatives"][0]["first_name"], "Marc");
    let out = env.run(&["users", "show", "PERSON.111"]);
    let text = stdout(&out);
    for line in [
        "classe : 4A",
        "niveau : 4EME",
        "responsable : LUCAS Marc",
        "père, responsable légal",
    ] {
        assert!(text.contains(line), "« {line} » missing from:\n{text}");
    }
    let father = stdout(&env.run(&["users", "show", "PERSON.222"]));
    assert!(father.contains("enfant : LUCAS Léa"), "{father}");
    assert!(!father.contains("niveau"), "a parent has no level: {father}");
}
