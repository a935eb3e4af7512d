//! The `annuaire` binary as an administrator runs it: real files, a real SQLite
//! database, exit statuses and messages. Bad input must give a clear message,
//! exit 1 or 2, never a panic, and write nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::Value;
use std::process::{Command, Output};
use support::*;

#[test]
fn guide_example_imports_then_is_unchanged_then_updated() {
    let env = Env::new();
    let (code, report) = env.import_json(&example("enseignants-guide.csv"), &["--result", "resultat.csv"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["status"], "imported");
    assert_eq!(
        (report["rows"].as_u64(), report["created"].as_u64()),
        (Some(5), Some(5))
    );
    let keys: Vec<String> = env
        .users()
        .iter()
        .map(|u| u["sync_key"].as_str().unwrap().to_string())
        .collect();
    assert!(keys.contains(&"PERSON.m-mmefrancisplaton".to_string()));
    assert!(keys.contains(&"PERSON.m-mmepaulinemozart".to_string()));
    for field in [
        "sync_key",
        "login",
        "last_name",
        "first_name",
        "profile",
        "source",
        "establishments",
        "active",
    ] {
        assert!(env.users()[0].get(field).is_some(), "users search --json lacks {field}");
    }

    // The result file: BOM, `;`, owner-only permissions.
    let result = std::fs::read(env.path("resultat.csv")).unwrap();
    assert!(result.starts_with(&[0xEF, 0xBB, 0xBF]));
    let text = String::from_utf8(result).unwrap();
    assert!(text.contains("PERSON.m-mmefrancisplaton;Monsieur;PLATON;Francis;Philosophie;fplaton;"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path("resultat.csv"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (code, report) = env.import_json(&example("enseignants-guide.csv"), &[]);
    assert_eq!(
        (code, report["unchanged"].as_u64(), report["created"].as_u64()),
        (0, Some(5), Some(0))
    );

    let with_phone = std::fs::read_to_string(example("enseignants-guide.csv"))
        .unwrap()
        .replace(
            "Matière enseignant\r\n",
            "Matière enseignant;Telephone portable enseignant\r\n",
        )
        .replace("Philosophie\r\n", "Philosophie;06 11 22 33 44\r\n");
    let file = env.write("phone.csv", with_phone.as_bytes());
    let (code, report) = env.import_json(&file, &[]);
    assert_eq!(
        (code, report["updated"].as_u64(), report["unchanged"].as_u64()),
        (0, Some(1), Some(4)),
        "{report}"
    );
}

#[test]
fn json_report_has_the_documented_shape() {
    let env = Env::new();
    let file = env.write(
        "f.csv",
        "Civilité;Nom;Prénom;Matière\nDocteur;PLATON;Francis;Philo\nM.;HUGO;Victor;Français\n".as_bytes(),
    );
    let (code, report) = env.import_json(&file, &[]);
    assert_eq!(code, 2);
    let mut keys: Vec<&str> = report.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "conflict_details",
            "conflicts",
            "created",
            "deactivated",
            "merged",
            "rejection",
            "rows",
            "skipped",
            "status",
            "unchanged",
            "updated",
            "valid"
        ]
    );
    assert_eq!(report["status"], "rejected");
    let detail = &report["conflict_details"][0];
    assert_eq!(detail["line"], 2);
    assert_eq!(detail["column"], "Civilité");
    assert_eq!(detail["field"], "civilite");
    assert_eq!(detail["code"], "bad_civility");
    assert!(detail["message"].as_str().unwrap().contains("Monsieur"));
    assert!(env.users().is_empty(), "rejected: nothing written");

    let (code, report) = env.import_json(&file, &["--skip-conflicts"]);
    assert_eq!(
        (code, report["created"].as_u64(), report["skipped"].as_u64()),
        (0, Some(1), Some(1))
    );
}

/// A bad file: name, bytes, extra args, expected exit status, words of the message.
type BadCase<'a> = (&'a str, Vec<u8>, Vec<&'a str>, i32, &'a str);

#[test]
fn bad_input_gets_a_clear_message_and_writes_nothing() {
    let mut garbage = Vec::new();
    let mut x: u32 = 7;
    for _ in 0..4096 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        garbage.push((x >> 16) as u8 % 31 + 1);
    }
    let header = "Civilité;Nom;Prénom;Matière\n";
    let big = format!("{header}{}", "M.;PLATON;Francis;Philo\n".repeat(20));
    let cases: Vec<BadCase> = vec![
        ("garbage.csv", garbage, vec![], 1, "ne ressemble pas à du texte"),
        ("empty.csv", Vec::new(), vec![], 1, "le fichier est vide"),
        ("blank.csv", b"\r\n  \r\n".to_vec(), vec![], 1, "le fichier est vide"),
        (
            "header.csv",
            header.as_bytes().to_vec(),
            vec![],
            1,
            "aucune ligne de données (seulement l'en-tête)",
        ),
        ("nul.csv", b"Civilit\x00;Nom\n".to_vec(), vec![], 1, "octets nuls"),
        (
            "classeur.xlsx",
            b"PK\x03\x04\x14\x00".to_vec(),
            vec![],
            1,
            "classeur Excel",
        ),
        (
            "big.csv",
            big.into_bytes(),
            vec!["--max-file-size", "200"],
            1,
            "au-delà de la limite de 200 octets",
        ),
        (
            "rows.csv",
            format!("{header}M.;A;B;C\nM.;D;E;F\nM.;G;H;I\n").into_bytes(),
            vec!["--max-rows", "2"],
            1,
            "limite de 2",
        ),
        (
            "mapping.csv",
            "Nom;Prénom\nPLATON;Francis\n".as_bytes().to_vec(),
            vec![],
            2,
            "Civilite enseignant",
        ),
        (
            "utf8.csv",
            b"Civilit\xe9;Nom;Pr\xe9nom;Mati\xe8re\nM.;A;B;C\n".to_vec(),
            vec!["--encoding", "utf-8"],
            1,
            "n'est pas en UTF-8",
        ),
        (
            "sep.csv",
            format!("{header}M.;A;B;C\n").into_bytes(),
            vec!["--separator", "x"],
            1,
            "séparateur « x »",
        ),
    ];
    let env = Env::new();
    for (name, bytes, extra, code, words) in cases {
        let file = env.write(name, &bytes);
        let mut args = vec![
            "import",
            &file,
            "--profile",
            "enseignant",
            "--establishment",
            "0750654D",
        ];
        args.extend(extra.iter().copied());
        let out = env.run(&args);
        assert_no_panic(&out);
        let all = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
        assert_eq!(out.status.code(), Some(code), "{name}: {all}");
        assert!(all.contains(words), "{name}: expected « {words} » in: {all}");
        if code == 1 {
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "{name}: one line on stderr: {err}");
            assert!(err.starts_with("erreur : "), "{name}: {err}");
        }
    }
    assert!(env.users().is_empty());
}

#[test]
fn malformed_lines_are_conflicts_on_their_line() {
    let env = Env::new();
    let header = "Civilité;Nom;Prénom;Matière\n";
    let cases = [
        (
            format!("{header}M.;PLATON;Francis;Philo\nM.;\"DESCARTES;Rachid;Maths\nM.;JAMES;Henry;Anglais\n"),
            3,
            "unbalanced_quote",
        ),
        (
            format!("{header}M.;PLATON;Francis;Philo;{}\n", "x;".repeat(5000)),
            2,
            "too_many_columns",
        ),
        (
            format!("{header}M.;PLATON;{};Philo\n", "F".repeat(600)),
            2,
            "cell_too_long",
        ),
        (
            format!("{header}M.;PLATON;Francis;Philo;en trop\n"),
            2,
            "too_many_columns",
        ),
    ];
    for (text, line, code) in cases {
        let file = env.write("bad.csv", text.as_bytes());
        let (status, report) = env.import_json(&file, &[]);
        assert_eq!(status, 2, "{report}");
        let detail = report["conflict_details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["code"] == code)
            .unwrap_or_else(|| panic!("{code} missing in {report}"));
        assert_eq!(detail["line"], line, "{report}");
    }
    assert!(env.users().is_empty());
}

#[test]
fn windows_1252_and_mac_roman_files_keep_their_accents() {
    let env = Env::new();
    let cp1252 = b"Civilit\xe9;Nom;Pr\xe9nom;Mati\xe8re\nMme;LEF\xc8VRE;H\xe9l\xe8ne;Fran\xe7ais\n";
    let mac = b"Civilit\x8e;Nom;Pr\x8enom;Mati\x8fre\nMme;GAR\x83ON;Fran\x8doise;Math\x8ematiques\n";
    for (name, bytes) in [("w.csv", &cp1252[..]), ("m.csv", &mac[..])] {
        let file = env.write(name, bytes);
        let (code, report) = env.import_json(&file, &[]);
        assert_eq!(code, 0, "{name}: {report}");
    }
    let names: Vec<String> = env
        .users()
        .iter()
        .map(|u| {
            format!(
                "{} {}",
                u["first_name"].as_str().unwrap(),
                u["last_name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["Françoise GARÉON", "Hélène LEFÈVRE"]);
}

#[test]
fn complet_over_the_threshold_is_refused_then_confirmed() {
    let env = Env::new();
    let all = "Civilité;Nom;Prénom;Matière\nM.;UN;Jean;A\nM.;DEUX;Jean;A\nM.;TROIS;Jean;A\n";
    let file = env.write("all.csv", all.as_bytes());
    assert_eq!(env.import_json(&file, &[]).0, 0);
    let part = env.write("part.csv", "Civilité;Nom;Prénom;Matière\nM.;UN;Jean;A\n".as_bytes());
    let (code, report) = env.import_json(&part, &["--complet"]);
    assert_eq!(code, 2);
    assert!(
        report["rejection"].as_str().unwrap().contains("--confirm-deletions 2"),
        "{report}"
    );
    let out = env.run(&[
        "import",
        &part,
        "--profile",
        "enseignant",
        "--establishment",
        "0750654D",
        "--complet",
        "--dry-run",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("DEUX Jean") && text.contains("TROIS Jean"),
        "deletions listed by name: {text}"
    );
    let (code, report) = env.import_json(&part, &["--complet", "--confirm-deletions", "2"]);
    assert_eq!((code, report["deactivated"].as_u64()), (0, Some(2)));
    let active = env.users().iter().filter(|u| u["active"] == true).count();
    assert_eq!(active, 1);
}

#[test]
fn dry_run_and_export_round_trip() {
    let env = Env::new();
    let (code, report) = env.import_json(&example("enseignants-guide.csv"), &["--dry-run"]);
    assert_eq!(
        (code, report["status"].as_str(), report["created"].as_u64()),
        (0, Some("dry-run"), Some(5))
    );
    assert!(env.users().is_empty());
    assert_eq!(env.import_json(&example("enseignants-guide.csv"), &[]).0, 0);
    let out = env.run(&[
        "export",
        "--establishment",
        "0750654D",
        "--profile",
        "enseignant",
        "--output",
        "export.csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let export = env.path("export.csv").display().to_string();
    let (code, report) = env.import_json(&export, &[]);
    assert_eq!(
        (code, report["unchanged"].as_u64(), report["updated"].as_u64()),
        (0, Some(5), Some(0)),
        "{report}"
    );
}

#[test]
fn wrong_arguments_are_explained() {
    let env = Env::new();
    let file = example("enseignants-guide.csv");
    for (args, words) in [
        (
            vec![
                "import",
                file.as_str(),
                "--profile",
                "directeur",
                "--establishment",
                "0750654D",
            ],
            "profil « directeur » inconnu",
        ),
        (
            vec![
                "import",
                file.as_str(),
                "--profile",
                "enseignant",
                "--establishment",
                "0750654E",
            ],
            "lettre de contrôle",
        ),
        (
            vec![
                "import",
                file.as_str(),
                "--profile",
                "enseignant",
                "--establishment",
                "0750655E",
            ],
            "établissement 0750655E inconnu",
        ),
        (
            vec![
                "import",
                file.as_str(),
                "--profile",
                "administrateur",
                "--establishment",
                "0750654D",
            ],
            "ne s'importe pas par fichier",
        ),
        (
            vec![
                "import",
                "absent.csv",
                "--profile",
                "enseignant",
                "--establishment",
                "0750654D",
            ],
            "lecture de absent.csv",
        ),
        (
            vec![
                "import",
                file.as_str(),
                "--profile",
                "enseignant",
                "--establishment",
                "0750654D",
                "--map",
                "nom",
            ],
            "COLONNE=champ",
        ),
    ] {
        let out = env.run(&args);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(words), "{args:?}: {}", stderr(&out));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_annuaire"))
        .args(["--database", "mysql://x", "establishment", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("sqlite://CHEMIN ou postgres://"),
        "{}",
        stderr(&out)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_annuaire"))
        .args(["import"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "usage errors exit 1, not 2 (rejected)");
}

fn outbox(env: &Env) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(env.path("data/outbox")) else {
        return Vec::new();
    };
    let mut mails: Vec<(std::time::SystemTime, String)> = entries
        .map(|e| {
            let path = e.unwrap().path();
            (
                std::fs::metadata(&path).unwrap().modified().unwrap(),
                std::fs::read_to_string(&path).unwrap(),
            )
        })
        .collect();
    mails.sort();
    mails.into_iter().map(|(_, m)| m).collect()
}

/// Imports a teachers file into 0750654D with a notice to admin@college.test;
/// `before` are global options, `after` more import options.
fn import_notified(env: &Env, before: &[&str], file: &str, after: &[&str]) -> Output {
    let mut args: Vec<&str> = before.to_vec();
    args.extend_from_slice(&teachers_import(file));
    args.extend_from_slice(&["--notify", "admin@college.test"]);
    args.extend_from_slice(after);
    env.run(&args)
}

#[test]
fn history_and_notices_from_the_command_line() {
    let env = Env::new();
    let guide = example("enseignants-guide.csv");
    let out = import_notified(&env, &[], &guide, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Avis de fin d'import envoyé à admin@college.test."),
        "{}",
        stderr(&out)
    );
    let refused = env.write("sans-nom.csv", "Prénom;Matière\nAnne;Anglais\n".as_bytes());
    let out = import_notified(
        &env,
        &[],
        &refused,
        &["--support-email", "support@ent.test", "--ent-name", "ENT Test"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    let mails = outbox(&env);
    assert_eq!(mails.len(), 2, "one .eml per notice in data/outbox");
    assert!(
        mails[0].contains("Subject: [SUCCES] Import CSV-annuaire"),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("To: admin@college.test"));
    assert!(!mails[0].contains("Cc:"), "support is copied on errors only");
    assert!(
        mails[1].contains("Subject: [ERREUR] Import CSV-ENT Test"),
        "{}",
        mails[1]
    );
    assert!(mails[1].contains("Cc: support@ent.test"), "{}", mails[1]);

    let out = env.run(&["imports", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["status"], "rejected");
    assert!(list[0]["error"].as_str().unwrap().contains("Nom"), "{}", list[0]);
    assert_eq!(list[1]["status"], "succeeded");
    assert_eq!(
        (list[1]["rows"].as_i64(), list[1]["created"].as_i64()),
        (Some(5), Some(5))
    );
    assert_eq!(list[1]["channel"], "cli");
    assert_eq!(list[1]["file_name"], "enseignants-guide.csv");
    assert_eq!(list[1]["mail_status"], "sent");
    assert!(
        list[1]["result_expires_at"].is_i64(),
        "the result file is kept for the history"
    );

    let out = env.run(&["imports", "list"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("réussi") && text.contains("refusé") && text.contains("lignes 5 → résultat 5"),
        "{text}"
    );
    let out = env.run(&["imports", "list", "--since", "2099-01-01"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Aucun import ne correspond."));
    let out = env.run(&["imports", "list", "--since", "hier"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("aaaa-mm-jj"), "{}", stderr(&out));
    assert_no_panic(&out);
}

#[test]
fn an_unreachable_mail_server_never_fails_the_import() {
    let env = Env::new();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let smtp = format!("smtp://127.0.0.1:{port}");
    let guide = example("enseignants-guide.csv");
    let out = import_notified(&env, &["--smtp-url", &smtp], &guide, &[]);
    assert!(out.status.success(), "the import stands: {}", stderr(&out));
    assert!(
        stderr(&out).contains("avis de fin d'import non envoyé"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["imports", "list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["created"], 5);
    assert_eq!(list[0]["mail_status"], "pending", "queued for a retry");
    // Nothing is due before the backoff delay: nothing sent, nothing failed.
    let out = env.run(&["--smtp-url", &smtp, "mail", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 courriel(s) envoyé(s), 0 à réessayer"));
}

/// `--log-format json`: the server's journal is one JSON object per event on
/// stderr, with its fields, for a log collector.
#[test]
fn the_server_journal_can_be_json_lines() {
    use std::io::{BufRead, BufReader};
    let env = Env::new();
    let mut child = env
        .command(&["--log-format", "json", "serve", "--listen", "127.0.0.1:0", "--no-mail"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let next_event = |message: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            let Ok(line) = lines.recv_timeout(std::time::Duration::from_secs(1)) else {
                continue;
            };
            let event: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a JSON line: {line}"));
            if event["fields"]["message"] == message {
                return Some(event);
            }
        }
        None
    };
    let started = next_event("serveur démarré");
    // One line per request, with its id, and no query string.
    let request_line = started.as_ref().and_then(|event| {
        use std::io::{Read, Write};
        let address = event["fields"]["address"].as_str()?;
        let mut stream = std::net::TcpStream::connect(address).ok()?;
        stream
            .write_all(b"GET /healthz?nom=secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let id = answer.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-request-id: ")
                .map(str::to_string)
        })?;
        Some((id, next_event("requête")?))
    });
    let _ = child.kill();
    let _ = child.wait();
    let event = started.expect("no « serveur démarré » event within a minute");
    let (id, request) = request_line.expect("no « requête » event for GET /healthz");
    assert_eq!(request["fields"]["request_id"], id.trim(), "{request}");
    assert_eq!(request["fields"]["path"], "/healthz", "{request}");
    assert_eq!(request["fields"]["status"], 200, "{request}");
    assert!(!request.to_string().contains("secret"), "{request}");
    assert_eq!(event["level"], "INFO", "{event}");
    assert_eq!(event["fields"]["backend"], "sqlite", "{event}");
    assert!(
        event["fields"]["address"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{event}"
    );
}

/// `lvs export` (issue 14, item 6; guide §6): teachers as Professeur, staff by
/// their function code as the guide's table maps them, TOS never exported.
#[test]
fn lvs_export_maps_functions_and_leaves_tos_out() {
    let env = Env::new();
    assert_eq!(env.import_json(&example("enseignants-guide.csv"), &[]).0, 0);
    let staff = env.write(
        "personnels.csv",
        "Civilité;Nom;Prénom;Fonction (code)\r\n\
         Madame;BARBIER;Véronique;DIR\r\n\
         Monsieur;N'DIAYE;Moussa;EDU\r\n\
         Madame;LEROY;Anne;DOC\r\n\
         Monsieur;DUPONT;Jean;AED\r\n\
         Monsieur;MARTIN;Paul;TOS\r\n"
            .as_bytes(),
    );
    let out = env.run(&[
        "import",
        &staff,
        "--profile",
        "administratif",
        "--establishment",
        "0750654D",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let rows = env.json(&["lvs", "export", "--establishment", "0750654D", "--format", "json"]);
    let rows = rows.as_array().unwrap();
    for row in rows {
        for field in [
            "sync_key",
            "login",
            "last_name",
            "first_name",
            "function",
            "lvs_profile",
        ] {
            assert!(row[field].as_str().is_some_and(|v| !v.is_empty()), "{field} in {row}");
        }
    }
    let profile_of = |last_name: &str| {
        rows.iter()
            .find(|r| r["last_name"] == last_name)
            .map(|r| (r["function"].as_str().unwrap(), r["lvs_profile"].as_str().unwrap()))
    };
    assert_eq!(profile_of("BARBIER"), Some(("DIR", "Direction")));
    assert_eq!(profile_of("N'DIAYE"), Some(("EDU", "CPE")));
    assert_eq!(profile_of("LEROY"), Some(("DOC", "Documentaliste")));
    assert_eq!(profile_of("DUPONT"), Some(("AED", "Assistant Education")));
    assert_eq!(profile_of("MARTIN"), None, "TOS is never exported to LVS");
    assert_eq!(profile_of("PLATON"), Some(("ENS", "Professeur")));
    assert_eq!(rows.len(), 4 + 5);

    let out = env.run(&["lvs", "export", "--establishment", "0750654D", "--output", "lvs.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("9 personne(s) exportée(s) pour LVS ; 1 laissée(s) de côté"),
        "{}",
        stderr(&out)
    );
    let csv = std::fs::read_to_string(env.path("lvs.csv")).unwrap();
    assert!(
        csv.starts_with("\u{feff}Clé de synchronisation;Login;Nom;Prénom;Fonction;Profil LVS\r\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 10, "{csv}");

    let out = env.run(&["lvs", "export", "--establishment", "0750655E"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("établissement 0750655E inconnu"),
        "{}",
        stderr(&out)
    );
    // The system admin's table: the guide's line by line, changed for the whole ENT.
    let ok = |args: &[&str]| {
        let out = env.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    assert!(ok(&["lvs", "exclude", "doc"]).contains("DOC (DOCUMENTATION) : non exporté vers LVS."));
    assert!(ok(&["lvs", "set", "TOS", " Agent "]).contains("TOS (AGENT DES COLLECTIVITES) : profil LVS « Agent »."));
    let rows = env.json(&["lvs", "export", "--establishment", "0750654D", "--format", "json"]);
    let profiles: Vec<(&str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["function"] != "ENS")
        .map(|r| (r["last_name"].as_str().unwrap(), r["lvs_profile"].as_str().unwrap()))
        .collect();
    assert_eq!(
        profiles,
        [
            ("BARBIER", "Direction"),
            ("DUPONT", "Assistant Education"),
            ("MARTIN", "Agent"),
            ("N'DIAYE", "CPE")
        ]
    );
    let table = env.json(&["lvs", "profiles", "--json"]);
    let table = table.as_array().unwrap();
    assert_eq!(table.len(), 60);
    let changed: Vec<&str> = table
        .iter()
        .filter(|l| l["changed"] == true)
        .map(|l| l["code"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["DOC", "TOS"]);
    assert!(ok(&["lvs", "reset", "DOC"]).contains("DOC (DOCUMENTATION) : profil LVS « Documentaliste »."));
    assert!(ok(&["lvs", "profiles"]).contains("TOS\tAgent\tAGENT DES COLLECTIVITES  [modifié ; guide : non exporté]"));
    assert!(ok(&["audit"]).contains("lvs_profile"));

    let out = env.run(&["lvs", "set", "XYZ", "Professeur"]);
    assert_eq!(out.status.code(), Some(2), "a refusal: nothing written");
    assert!(stderr(&out).contains("fonction « XYZ » inconnue"), "{}", stderr(&out));
    let out = env.run(&["lvs", "set", "EDU", &"x".repeat(41)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("40 caractères au plus"), "{}", stderr(&out));
}

/// `users reset-password` (issue 14, item 7): a new password printed once,
/// audited without it; an unknown key is a refusal (exit 2).
#[test]
fn an_operator_resets_a_password() {
    let env = Env::new();
    assert_eq!(env.import_json(&example("enseignants-guide.csv"), &[]).0, 0);
    let found = env.json(&["users", "search", "--last-name", "platon", "--json"]);
    let key = found[0]["sync_key"].as_str().unwrap().to_string();
    let out = env.run(&["users", "reset-password", &key]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let password = printed
        .lines()
        .find_map(|l| l.strip_prefix("Nouveau mot de passe : "))
        .unwrap_or_else(|| panic!("{printed}"))
        .to_string();
    assert_eq!(password.chars().count(), 12, "{printed}");
    assert!(stderr(&out).contains("Affiché cette seule fois"));
    let audit = stdout(&env.run(&["audit"]));
    assert!(
        audit.contains("password_reset") && !audit.contains(&password),
        "{audit}"
    );
    let again = env.run(&["users", "reset-password", &key]);
    let second = stdout(&again);
    assert!(!second.contains(&password), "a new password each time");

    let out = env.run(&["users", "reset-password", "PERSON.inconnu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("aucun compte n'a la clé de synchronisation"),
        "{}",
        stderr(&out)
    );
}

/// `services add|list|remove` (issue 14, the contract): the CAS services a
/// system admin registers, with who may use them and what they receive.
#[test]
fn cas_services_are_registered_listed_and_removed() {
    let env = Env::new();
    assert_eq!(env.import_json(&example("enseignants-guide.csv"), &[]).0, 0);
    let ok = |args: &[&str]| {
        let out = env.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let added = ok(&[
        "services",
        "add",
        "vie-scolaire",
        "HTTPS://VS.Exemple.fr/",
        "--establishment",
        "0750654D",
        "--attributes",
        "login,ENTPersonProfils,lvsProfile",
    ]);
    assert!(
        added.contains(
            "Service « vie-scolaire » enregistré : https://vs.exemple.fr/ (établissements 0750654D) ; attributs : login,ENTPersonProfils,lvsProfile."
        ),
        "{added}"
    );
    ok(&["services", "add", "manuels", "https://manuels.exemple.fr/", "--proxy"]);
    let list = env.json(&["services", "list", "--json"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "manuels");
    assert_eq!(list[0]["proxy"], true);
    assert_eq!(list[0]["establishments"], serde_json::json!([]));
    assert_eq!(
        list[0]["attributes"],
        serde_json::json!(["login", "lastName", "firstName", "displayName", "profile", "schools"])
    );
    assert_eq!(list[1]["establishments"], serde_json::json!(["0750654D"]));
    assert!(ok(&["services", "list"]).contains("vie-scolaire\thttps://vs.exemple.fr/\tétablissements 0750654D"));

    // Refusals exit 2 and say what to type instead; nothing is written.
    for (args, expected) in [
        (
            vec!["services", "add", "x", "vs.exemple.fr"],
            "https://vie-scolaire.exemple.fr/",
        ),
        (
            vec![
                "services",
                "add",
                "x",
                "https://x.fr/",
                "--attributes",
                "login,motDePasse",
            ],
            "motDePasse",
        ),
        (
            vec!["services", "add", "x", "https://x.fr/", "--establishment", "0750655E"],
            "0750655E inconnu",
        ),
        (
            vec!["services", "add", "manuels", "https://autre.fr/"],
            "un service s'appelle déjà « manuels »",
        ),
        (
            vec!["services", "remove", "inconnu"],
            "aucun service ne s'appelle « inconnu »",
        ),
    ] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(env.json(&["services", "list", "--json"]).as_array().unwrap().len(), 2);

    assert!(ok(&["services", "remove", "manuels"]).contains("Service « manuels » retiré"));
    assert_eq!(env.json(&["services", "list", "--json"]).as_array().unwrap().len(), 1);
    let audit = ok(&["audit"]);
    assert!(audit.contains("cas_service_add\tvie-scolaire"), "{audit}");
    assert!(audit.contains("cas_service_remove\tmanuels"), "{audit}");
}
