//! Test support shared by the CLI suites: the `annuaire` binary run as an
//! administrator runs it, on a real SQLite file in a fresh folder.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A folder with a directory database holding establishment 0750654D.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = env.run(&["establishment", "add", "0750654D", "Collège test"]);
        assert!(out.status.success(), "{}", stderr(&out));
        env
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The command on this folder's database, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let url = format!("sqlite://{}", self.path("annuaire.db").display());
        let mut c = Command::new(env!("CARGO_BIN_EXE_annuaire"));
        c.current_dir(self.dir.path())
            .env_remove("ANNUAIRE_DATABASE_URL")
            .arg("--database")
            .arg(url)
            .args(args);
        c
    }

    /// Runs the command; whatever its exit status, it must not have panicked.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().unwrap();
        assert_no_panic(&out);
        out
    }

    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_no_panic(&out);
        out
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> String {
        std::fs::write(self.path(name), bytes).unwrap();
        self.path(name).display().to_string()
    }

    /// A command that must succeed, its stdout read as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A teacher import into 0750654D with its JSON report: (exit status, report).
    pub fn import_json(&self, file: &str, extra: &[&str]) -> (i32, Value) {
        let mut args = teachers_import(file).to_vec();
        args.extend_from_slice(&["--report", "json"]);
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap_or(-1), json)
    }

    pub fn users(&self) -> Vec<Value> {
        let out = self.run(&["users", "search", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
    }
}

/// `import FILE` of teachers into 0750654D, options to add after it.
pub fn teachers_import(file: &str) -> [&str; 6] {
    ["import", file, "--profile", "enseignant", "--establishment", "0750654D"]
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn assert_no_panic(out: &Output) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "the binary panicked: {err}");
}

/// A file of the repository's `examples/` folder.
pub fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .display()
        .to_string()
}
