//! One school's admin cannot take another school's accounts, through the
//! CLI acting as that admin (`--as-admin`), on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::Value;
use support::*;

const UAI_A: &str = "0750654D";
const UAI_B: &str = "0750655E";

/// The result file's rows, cells split.
fn result_rows(env: &Env, name: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(env.path(name)).unwrap();
    text.trim_start_matches('\u{feff}')
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| l.split(';').map(str::to_string).collect())
        .collect()
}

/// The login as a word of the text (it is also inside its owner's sync key).
fn shows_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Runs a command that must succeed, and its output.
fn succeeds(env: &Env, backend: &Backend, args: &[&str]) -> std::process::Output {
    let out = env.run(args);
    assert!(out.status.success(), "{} {args:?}: {}", backend.name(), stderr(&out));
    out
}

fn refused(out: &std::process::Output, says: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
    assert!(stderr(out).contains(says), "{}", stderr(out));
}

#[test]
fn an_establishment_admin_attaches_another_schools_teacher_only_when_confirmed() {
    for backend in Backend::all() {
        let env = Env::on(&backend);
        let ok = |args: &[&str]| succeeds(&env, &backend, args);
        ok(&["establishment", "add", UAI_B, "Lycée Victor Hugo"]);
        ok(&["admin", "create", "admin-a", "--establishment", UAI_A]);
        ok(&["admin", "create", "admin-b", "--establishment", UAI_B]);

        // The system imports B's teachers.
        let b = env.write(
            "b.csv",
            "Civilité;Nom;Prénom;Matière\r\nM.;PLATON;Francis;Philosophie\r\n".as_bytes(),
        );
        ok(&[
            "import",
            &b,
            "--profile",
            "enseignant",
            "--establishment",
            UAI_B,
            "--result",
            "b-resultat.csv",
        ]);
        let rows = result_rows(&env, "b-resultat.csv");
        let (key, login) = (rows[1][0].clone(), rows[1][rows[0].len() - 2].clone());
        assert!(!login.is_empty());

        // admin-a names him in a file: refused without the confirmation.
        let a = env.write(
            "a.csv",
            "Civilité;Nom;Prénom;Matière\r\nM.;PLATON;Francis;Mathématiques\r\n".as_bytes(),
        );
        let import_a = [
            "--as-admin",
            "admin-a",
            "import",
            &a,
            "--profile",
            "enseignant",
            "--establishment",
            UAI_A,
        ];
        let out = env.run(&[&import_a[..], &["--report", "json"]].concat());
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["conflict_details"][0]["code"], "existing_elsewhere", "{report}");
        assert!(!shows_word(&stdout(&out), &login), "{report}");
        // admin-a's scope holds for the CLI too: not B's establishment.
        let out = env.run(&[
            "--as-admin",
            "admin-a",
            "import",
            &a,
            "--profile",
            "enseignant",
            "--establishment",
            UAI_B,
        ]);
        refused(&out, "vous n'administrez pas l'établissement 0750655E");

        // Confirmed: attached, without a login or a password in the result.
        let out = ok(&[
            &import_a[..],
            &["--attach-existing", "--report", "json", "--result", "a-resultat.csv"],
        ]
        .concat());
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (report["updated"].as_u64(), report["attached"].as_u64()),
            (Some(1), Some(1)),
            "{report}"
        );
        let text = std::fs::read_to_string(env.path("a-resultat.csv")).unwrap();
        assert!(text.contains(&key) && !shows_word(&text, &login), "{text}");

        // Shared now: admin-a sees no login, changes nothing, may only leave.
        let shown: Value =
            serde_json::from_slice(&ok(&["--as-admin", "admin-a", "users", "show", &key, "--json"]).stdout).unwrap();
        assert_eq!(shown["login"], "", "{shown}");
        assert!(!shows_word(&shown.to_string(), &login), "{shown}");
        for admin in ["admin-a", "admin-b"] {
            let out = env.run(&["--as-admin", admin, "users", "set", &key, "--expires", "30/06/2027"]);
            refused(&out, "ce compte est aussi actif dans");
        }
        let out = env.run(&[
            "--as-admin",
            "admin-a",
            "users",
            "leave",
            &key,
            "--establishment",
            UAI_B,
        ]);
        refused(&out, "aussi actif dans Lycée Victor Hugo (0750655E)");
        ok(&[
            "--as-admin",
            "admin-a",
            "users",
            "leave",
            &key,
            "--establishment",
            UAI_A,
        ]);
        let shown: Value = serde_json::from_slice(&ok(&["users", "show", &key, "--json"]).stdout).unwrap();
        let active: Vec<&str> = shown["memberships"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["active"] == true)
            .map(|m| m["uai"].as_str().unwrap())
            .collect();
        assert_eq!(active, [UAI_B], "{shown}");
        assert_eq!(shown["login"], login.as_str(), "the operator sees it");
        // B owns the account alone again.
        ok(&["--as-admin", "admin-b", "users", "set", &key, "--expires", "30/06/2027"]);

        // The audit says who attached and who left.
        let audit: Value = serde_json::from_slice(&ok(&["audit", "--json"]).stdout).unwrap();
        let actions: Vec<(&str, &str)> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
            .collect();
        for expected in [
            ("account_attach", "admin-a"),
            ("membership_end", "admin-a"),
            ("account_update", "admin-b"),
        ] {
            assert!(actions.contains(&expected), "{expected:?} in {actions:?}");
        }

        // --as-admin bounds only the commands it names, and only a known admin.
        refused(
            &env.run(&["--as-admin", "admin-a", "establishment", "list"]),
            "--as-admin ne s'applique qu'à",
        );
        refused(
            &env.run(&["--as-admin", "personne", "users", "show", &key]),
            "aucun administrateur n'a le login « personne »",
        );
    }
}

#[test]
fn a_system_admin_renames_an_establishment_from_the_cli() {
    for backend in Backend::all() {
        let env = Env::on(&backend);
        let out = env.run(&["establishment", "add", UAI_B, "Lycée Victor Hugo"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = env.run(&["establishment", "rename", UAI_B, "Lycée Victor-Hugo"]);
        assert!(out.status.success(), "{} {}", backend.name(), stderr(&out));
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(said.contains("« Lycée Victor Hugo » → « Lycée Victor-Hugo »"), "{said}");
        let listed = env.run(&["establishment", "list"]);
        assert!(String::from_utf8_lossy(&listed.stdout).contains("Lycée Victor-Hugo"));
        let unknown = env.run(&["establishment", "rename", "0750656F", "Nouveau"]);
        assert!(!unknown.status.success());
        assert!(
            stderr(&unknown).contains("annuaire establishment add 0750656F"),
            "{}",
            stderr(&unknown)
        );
        let empty = env.run(&["establishment", "rename", UAI_B, "  "]);
        assert!(!empty.status.success());
        assert!(
            stderr(&empty).contains("le nom de l'établissement est vide"),
            "{}",
            stderr(&empty)
        );
    }
}

#[test]
fn an_admin_deactivates_and_reactivates_an_account_from_the_cli() {
    for backend in Backend::all() {
        let env = Env::on(&backend);
        let ok = |args: &[&str]| succeeds(&env, &backend, args);
        ok(&["establishment", "add", UAI_B, "Lycée Victor Hugo"]);
        ok(&["admin", "create", "admin-a", "--establishment", UAI_A]);
        let file = env.write(
            "a.csv",
            "Civilité;Nom;Prénom;Matière\r\nM.;PLATON;Francis;Philosophie\r\n".as_bytes(),
        );
        ok(&[
            "import",
            &file,
            "--profile",
            "enseignant",
            "--establishment",
            UAI_A,
            "--result",
            "a-resultat.csv",
        ]);
        let rows = result_rows(&env, "a-resultat.csv");
        let key = rows[1][0].clone();
        let out = ok(&["--as-admin", "admin-a", "users", "deactivate", &key]);
        assert!(
            stdout(&out).contains("désactivé (inscrit au journal)"),
            "{}",
            stdout(&out)
        );
        refused(
            &env.run(&["--as-admin", "admin-a", "users", "deactivate", &key]),
            "ce compte est déjà désactivé",
        );
        let shown = ok(&["users", "show", &key, "--json"]);
        let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
        assert_eq!(shown["active"], false, "{shown}");
        ok(&["--as-admin", "admin-a", "users", "reactivate", &key]);
        let shown: Value = serde_json::from_slice(&ok(&["users", "show", &key, "--json"]).stdout).unwrap();
        assert_eq!(shown["active"], true, "{shown}");
        let log = stdout(&ok(&["audit", "--json"]));
        assert!(
            log.contains("account_deactivate") && log.contains("account_reactivate"),
            "{log}"
        );
    }
}
