//! Test support shared by the CLI suites: the `annuaire` binary run as an
//! administrator runs it, on a real SQLite file in a fresh folder (or a
//! fresh PostgreSQL database, [`Env::on`]).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A folder with a directory database holding establishment 0750654D.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub url: String,
}

impl Env {
    pub fn new() -> Env {
        Env::on(&Backend::Sqlite)
    }

    /// The same folder, with its database on this backend.
    pub fn on(backend: &Backend) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("annuaire.db").display()),
            Backend::Postgres(admin_url) => fresh_postgres_database(admin_url),
        };
        let env = Env { dir, url };
        let out = env.run(&["establishment", "add", "0750654D", "Collège test"]);
        assert!(out.status.success(), "{}", stderr(&out));
        env
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The command on this folder's database, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_annuaire"));
        c.current_dir(self.dir.path())
            .env_remove("ANNUAIRE_DATABASE_URL")
            .env_remove("ANNUAIRE_AS_ADMIN")
            .arg("--database")
            .arg(&self.url)
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

/// Where a suite's database lives.
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// SQLite always; PostgreSQL when the test server is there (in CI it must be).
    pub fn all() -> Vec<Backend> {
        let mut backends = vec![Backend::Sqlite];
        match std::env::var("ANNUAIRE_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => backends.push(Backend::Postgres(url)),
            _ => store::testing::skip_unless_ci("ANNUAIRE_TEST_POSTGRES_URL is not set: tests on SQLite only"),
        }
        backends
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// A new, empty database on the test PostgreSQL server: its URL.
pub fn fresh_postgres_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("annuaire_cli_{}_{}", std::process::id(), rand_suffix());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut admin = sqlx::PgConnection::connect(admin_url).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
    });
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    nanos * 1000 + COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// A running `annuaire serve`: its address, read from what it prints;
/// killed (SIGKILL) when dropped.
pub struct Server {
    pub child: std::process::Child,
    pub url: String,
}

impl Server {
    /// Starts the command (an `annuaire … serve`) and waits for its address.
    pub fn spawn(mut command: Command) -> Server {
        use std::io::{BufRead, BufReader};
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("http://").nth(1) {
                    let address = rest.split('/').next().unwrap_or_default().to_string();
                    let _ = tx.send(format!("http://{address}"));
                }
            }
        });
        let url = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the server says where it listens");
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // std's kill is SIGKILL on Unix: no handler runs, nothing is flushed.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
