//! The CLI at its edges (issue "Nothing lost, nothing run twice"): result
//! files that never replace anything and are never lost, closed pipes, bounds
//! said rather than applied silently, set-up commands that cannot misfire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Stdio;
use support::*;

fn history_len(env: &Env) -> usize {
    env.json(&["imports", "list", "--json"]).as_array().unwrap().len()
}

#[test]
fn an_existing_result_path_is_refused_before_anything_is_written() {
    let env = Env::new();
    let guide = example("enseignants-guide.csv");
    env.write("resultat.csv", b"mots de passe d'un import precedent");
    let mut args = teachers_import(&guide).to_vec();
    args.extend_from_slice(&["--result", "resultat.csv"]);
    let out = env.run(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("existe déjà"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(env.path("resultat.csv")).unwrap(),
        b"mots de passe d'un import precedent"
    );
    assert!(env.users().is_empty(), "nothing imported");
    assert_eq!(history_len(&env), 0, "refused before planning: no history line");

    // Nor a link, even one to a file that does not exist yet.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(env.path("cible.csv"), env.path("lien.csv")).unwrap();
        let mut args = teachers_import(&guide).to_vec();
        args.extend_from_slice(&["--result", "lien.csv"]);
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(!env.path("cible.csv").exists(), "the link was not followed");
        assert!(env.users().is_empty());
    }

    // A folder that does not exist: said before planning, nothing committed.
    let out = env.run(&["aaf", "import", &guide, "--result", "/nonexistent/r.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/r.csv"), "{}", stderr(&out));
    let mut args = teachers_import(&guide).to_vec();
    args.extend_from_slice(&["--result", "/nonexistent/r.csv"]);
    let out = env.run(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(env.users().is_empty());
    assert_eq!(history_len(&env), 0);
}

#[test]
fn results_go_to_a_private_data_folder_and_can_be_written_again() {
    let env = Env::new();
    let out = env.run(&teachers_import(&example("enseignants-guide.csv")));
    assert!(out.status.success(), "{}", stderr(&out));
    let folder = env.path("data/resultats");
    let files: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("enseignants-guide-resultat-n1-"), "{name}");
    assert!(stdout(&out).contains(&name), "the CLI says where: {}", stdout(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&files[0]), 0o600);
    }
    let original = std::fs::read(&files[0]).unwrap();

    // The copy kept in the database, written again.
    let out = env.run(&["imports", "result", "1", "--output", "copie.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(env.path("copie.csv")).unwrap(), original);
    let out = env.run(&["imports", "result", "1", "--output", "copie.csv"]);
    assert_eq!(out.status.code(), Some(1), "never over an existing file");
    let out = env.run(&["imports", "result", "99"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("n° 99"), "{}", stderr(&out));
}

/// `annuaire users search --json | head`: the reader goes away, the command
/// stops quietly (it panicked on "Broken pipe", exit 101).
#[test]
fn a_closed_pipe_is_not_a_panic() {
    let env = Env::new();
    assert!(env
        .run(&teachers_import(&example("enseignants-guide.csv")))
        .status
        .success());
    for _ in 0..3 {
        let mut child = env
            .command(&["users", "search", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the command writes its first line.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_no_panic(&out);
        assert_ne!(out.status.code(), Some(101), "{}", stderr(&out));
    }
}

#[test]
fn bounds_and_unknown_numbers_are_said() {
    let env = Env::new();
    let out = env.run(&["users", "search", "--limit", "20000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--offset"), "{}", stderr(&out));
    let out = env.run(&["users", "restore", "--import", "42"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("n'existe pas"), "{}", stderr(&out));
}

/// A script without a terminal that forgot `--password-stdin` gets a
/// generated password, printed once, rather than whatever stdin held.
#[test]
fn admin_create_without_a_terminal_generates_the_password() {
    let env = Env::new();
    let out = env
        .command(&["admin", "create", "chef", "--system"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let password = printed
        .split("Mot de passe (affiché une seule fois) : ")
        .nth(1)
        .unwrap_or_else(|| panic!("{printed}"))
        .trim();
    assert!(password.chars().count() >= 12, "{password}");

    let out = env.run_with_stdin(
        &["admin", "create", "adjoint", "--system", "--password-stdin"],
        "un-mot-de-passe-assez-long\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("Mot de passe"), "{}", stdout(&out));
}

/// A file over the size cap is refused before it is read, with its history
/// line like every other refusal; a wrong separator names the detected one.
#[test]
fn refused_files_are_explained_and_recorded() {
    let env = Env::new();
    let guide = example("enseignants-guide.csv");
    let mut args = teachers_import(&guide).to_vec();
    args.extend_from_slice(&["--max-file-size", "40"]);
    let out = env.run(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("au-delà de la limite de 40 octets"),
        "{}",
        stderr(&out)
    );
    let history = env.json(&["imports", "list", "--json"]);
    let lines = history.as_array().unwrap();
    assert_eq!(lines.len(), 1, "{history}");
    assert_eq!(lines[0]["status"], "rejected", "{history}");
    assert!(env.users().is_empty());

    let commas = env.write(
        "virgules.csv",
        "Civilité,Nom,Prénom,Matière\r\nM.,PLATON,Francis,Philosophie\r\n".as_bytes(),
    );
    let mut args = teachers_import(&commas).to_vec();
    args.extend_from_slice(&["--separator", ";"]);
    let out = env.run(&args);
    assert_ne!(out.status.code(), Some(0));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains("semble séparé par « , »"), "{said}");
}

/// A PostgreSQL server that does not answer is said in French within 10 s
/// (the driver alone retried for 30 s and more).
#[test]
fn an_unreachable_postgresql_is_said_within_seconds() {
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_annuaire"))
        .env_remove("ANNUAIRE_DATABASE_URL")
        .args([
            "--database",
            "postgres://annuaire@127.0.0.1:1/annuaire",
            "users",
            "search",
        ])
        .output()
        .unwrap();
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ne répond pas"), "{}", stderr(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "gave up after {:?}",
        started.elapsed()
    );
}
