//! Crash tests (issue "Nothing lost, nothing run twice"): the CLI and the
//! server killed with SIGKILL at moments spread over an import, on SQLite and
//! on PostgreSQL. After every kill the directory is exactly its state before
//! or after the import, each web job ends once with its result, and the
//! passwords of a committed import can always be read back.
//!
//! `ANNUAIRE_CRASH_TRIALS` sets the kills per scenario and backend: 3 by
//! default (what `.ci/run` runs), 20 with `scripts/crash-test --full`.
//! `ANNUAIRE_CRASH_SEED` changes the moments (each failure prints its seed).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{fresh_postgres_database, Backend, Server};

const UAI: &str = "0750654D";

fn trials() -> usize {
    std::env::var("ANNUAIRE_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn seed() -> u64 {
    std::env::var("ANNUAIRE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_203)
}

/// A small deterministic generator: the kill moments, reproducible from the seed.
struct Moments(u64);

impl Moments {
    fn next_fraction(&mut self) -> f64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Trial `i` of `n` dies somewhere in its share of `span`: every part of
    /// the import is hit, at a point that changes with the seed.
    fn moment(&mut self, i: usize, n: usize, span: Duration) -> Duration {
        span.mul_f64((i as f64 + self.next_fraction()) / n as f64)
    }
}

// ---------------------------------------------------------------------------
// Databases

/// One database and the folder the commands run in.
struct Db {
    url: String,
    dir: tempfile::TempDir,
}

impl Db {
    fn new(backend: &Backend) -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("annuaire.db").display()),
            Backend::Postgres(admin_url) => fresh_postgres_database(admin_url),
        };
        let db = Db { url, dir };
        db.ok(&["establishment", "add", UAI, "Collège des essais"]);
        db
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_annuaire"));
        c.current_dir(self.dir.path())
            .env_remove("ANNUAIRE_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .args(["--database", &self.url, "--no-mail"])
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        out
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// What an admin can see of the directory: every account (without the
    /// instants, which differ between two runs) and the establishment's
    /// export in the import format.
    fn state(&self) -> DirectoryState {
        let mut users = self.json(&["users", "search", "--json", "--limit", "10000"]);
        let list = users.as_array_mut().unwrap();
        for user in list.iter_mut() {
            let object = user.as_object_mut().unwrap();
            object.remove("id");
            object.remove("created_at");
            object.remove("last_login_at");
        }
        let logins: Vec<String> = list.iter().map(|u| u["login"].as_str().unwrap().to_string()).collect();
        let distinct: BTreeSet<&String> = logins.iter().collect();
        assert_eq!(distinct.len(), logins.len(), "a login appears twice");
        let export = self.ok(&["export", "--establishment", UAI, "--profile", "enseignant"]);
        DirectoryState {
            users: users.to_string(),
            export,
            accounts: logins.len(),
        }
    }

    fn imports(&self) -> Vec<Value> {
        self.json(&["imports", "list", "--json"]).as_array().unwrap().clone()
    }

    /// The result file of import `id` as the database keeps it: its data
    /// lines, and how many of them hand out a password.
    fn kept_result(&self, id: i64, name: &str) -> (usize, usize) {
        let out = self.run(&["imports", "result", &id.to_string(), "--output", name]);
        assert!(
            out.status.success(),
            "result of import {id} lost: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(self.path(name)).unwrap();
        std::fs::remove_file(self.path(name)).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(';').collect();
        let password = header
            .iter()
            .position(|h| h.to_lowercase().contains("mot de passe"))
            .expect("a password column");
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(';').collect()).collect();
        let with_password = rows
            .iter()
            .filter(|r| r.get(password).is_some_and(|p| !p.is_empty()))
            .count();
        (rows.len(), with_password)
    }
}

#[derive(PartialEq, Eq, Debug)]
struct DirectoryState {
    users: String,
    export: String,
    accounts: usize,
}

// ---------------------------------------------------------------------------
// Files

/// Teachers `first..first + count`, in the guide's format; `subject` lets a
/// second file change every one of them.
fn teachers(first: usize, count: usize, subject: &str) -> Vec<u8> {
    let mut text = String::from("Civilité enseignant;Nom enseignant;Prénom enseignant;Matière enseignant\r\n");
    for i in first..first + count {
        let civility = if i % 2 == 0 { "Madame" } else { "Monsieur" };
        text.push_str(&format!(
            "{civility};ESSAI{};Prenom{};{subject}\r\n",
            letters(i),
            letters(i * 7 + 3)
        ));
    }
    text.into_bytes()
}

/// Names must be letters: 0 → "AA", 1 → "AB"…
fn letters(mut n: usize) -> String {
    let mut s = Vec::new();
    for _ in 0..3 {
        s.push(b'A' + (n % 26) as u8);
        n /= 26;
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}

fn teachers_import(file: &str) -> Vec<&str> {
    vec!["import", file, "--profile", "enseignant", "--establishment", UAI]
}

fn kill(child: &mut Child) {
    // std's kill is SIGKILL on Unix: no handler runs, nothing is flushed.
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------
// The CLI killed during an import

/// 300 teachers already there; the import updates them all and adds 1,200.
/// Killed anywhere, the directory is the before- or the after-state, and an
/// import that committed keeps its result (the passwords) in the database.
#[test]
fn the_cli_killed_anywhere_leaves_the_before_or_the_after_state() {
    for backend in Backend::all() {
        cli_trials(&backend);
    }
}

fn cli_trials(backend: &Backend) {
    let n = trials();
    let seed = seed();
    let mut moments = Moments(seed);
    let prepare = |db: &Db| {
        std::fs::write(db.path("base.csv"), teachers(0, 300, "Histoire")).unwrap();
        std::fs::write(db.path("change.csv"), teachers(0, 1500, "Géographie")).unwrap();
        db.ok(&teachers_import("base.csv"));
        db.state()
    };

    // An uninterrupted run: the after-state and how long the import takes.
    let reference = Db::new(backend);
    let before = prepare(&reference);
    let started = Instant::now();
    reference.ok(&teachers_import("change.csv"));
    let duration = started.elapsed();
    let after = reference.state();
    assert_eq!((before.accounts, after.accounts), (300, 1500));

    let (mut died_before, mut died_after) = (0, 0);
    for i in 0..n {
        let db = Db::new(backend);
        assert_eq!(prepare(&db), before);
        // Up to 20 % past the end: some kills find the process gone.
        let at = moments.moment(i, n, duration.mul_f64(1.2));
        let mut child = db
            .command(&teachers_import("change.csv"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        kill(&mut child);

        let context = format!(
            "{} trial {i} (seed {seed}, killed at {at:?} of {duration:?})",
            backend.name()
        );
        let state = db.state();
        let imports = db.imports();
        if state == before {
            died_before += 1;
            assert_eq!(imports.len(), 1, "{context}: no history line but the base import's");
        } else {
            assert_eq!(state, after, "{context}: neither the before- nor the after-state");
            died_after += 1;
            assert_eq!(imports.len(), 2, "{context}: one history line per import");
            let id = imports.iter().map(|i| i["id"].as_i64().unwrap()).max().unwrap();
            assert_eq!(
                db.kept_result(id, "relu.csv"),
                (1500, 1200),
                "{context}: the result is kept, with the 1,200 new passwords"
            );
        }
        // Whatever the kill left (a journal, a lock), the next run goes through.
        db.ok(&teachers_import("change.csv"));
        assert_eq!(
            db.state().accounts,
            1500,
            "{context}: the import runs again after the kill"
        );
    }
    eprintln!(
        "{}: {n} kills of the CLI during a {duration:?} import: {died_before} before-state, {died_after} after-state",
        backend.name()
    );
}

// ---------------------------------------------------------------------------
// The server killed during its jobs

impl Server {
    fn start(db: &Db) -> Server {
        Server::start_with(db, &["serve", "--listen", "127.0.0.1:0", "--job-lease", "2"])
    }

    fn start_with(db: &Db, args: &[&str]) -> Server {
        Server::spawn(db.command(args))
    }
}

struct Api {
    token: String,
    agent: ureq::Agent,
}

impl Api {
    fn new(db: &Db) -> Api {
        db.ok(&["admin", "create", "chef", "--system"]);
        let out = db.ok(&["admin", "token", "chef"]);
        let token = out.rsplit(" : ").next().unwrap().trim().to_string();
        Api {
            token,
            agent: ureq::Agent::new_with_defaults(),
        }
    }

    fn get(&self, url: &str) -> Value {
        let mut response = self
            .agent
            .get(url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .unwrap();
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
    }

    fn post(&self, url: &str, body: &[u8]) -> Value {
        let mut response = self
            .agent
            .post(url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap();
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// Uploads a file of teachers and starts its import: the job's id.
    fn submit(&self, server: &str, file: &[u8]) -> i64 {
        let draft = self.post(
            &format!("{server}/api/v1/drafts?profile=enseignant&establishment={UAI}"),
            file,
        );
        let id = draft["draft"]
            .as_i64()
            .or_else(|| draft["id"].as_i64())
            .expect("draft id");
        let started = self.post(&format!("{server}/api/v1/drafts/{id}/start"), b"{}");
        started["job"].as_i64().expect("job id")
    }

    /// How many of `jobs` have ended.
    fn ended(&self, server: &str, jobs: &[i64]) -> usize {
        jobs.iter()
            .filter(|id| {
                let s = self.get(&format!("{server}/api/v1/jobs/{id}"));
                !matches!(s["status"].as_str(), Some("queued" | "running"))
            })
            .count()
    }

    /// Waits until every job has ended, asking `server`: their final states.
    fn wait_all(&self, server: &str, jobs: &[i64], limit: Duration) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let states: Vec<Value> = jobs
                .iter()
                .map(|id| self.get(&format!("{server}/api/v1/jobs/{id}")))
                .collect();
            if states
                .iter()
                .all(|s| !matches!(s["status"].as_str(), Some("queued" | "running")))
            {
                return states;
            }
            assert!(
                Instant::now() < deadline,
                "jobs still not ended after {limit:?}: {states:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Every job succeeded once: one import each, named by its job, with its
/// result file kept, and every teacher of every file in the directory.
fn assert_each_job_ran_once(db: &Db, jobs: &[i64], ends: &[Value], per_job: usize, context: &str) {
    for end in ends {
        assert_eq!(end["status"], "succeeded", "{context}: {end}");
    }
    let imports: BTreeSet<i64> = ends.iter().map(|e| e["import_id"].as_i64().unwrap()).collect();
    assert_eq!(imports.len(), jobs.len(), "{context}: one import per job");
    let history = db.imports();
    assert_eq!(history.len(), jobs.len(), "{context}: no job ran twice: {history:?}");
    for id in &imports {
        assert_eq!(
            db.kept_result(*id, "relu.csv"),
            (per_job, per_job),
            "{context}: result of import {id}"
        );
    }
    assert_eq!(db.state().accounts, jobs.len() * per_job, "{context}");
}

/// Four jobs of 400 teachers; the server dies at some point of them and is
/// started again: each job ends once, with its result.
#[test]
fn the_server_killed_during_its_jobs_runs_each_job_once() {
    for backend in Backend::all() {
        let n = trials();
        let seed = seed();
        let mut moments = Moments(seed ^ 0x5e);
        let mut unfinished_at_kill = 0;
        for i in 0..n {
            let db = Db::new(&backend);
            let api = Api::new(&db);
            let server = Server::start(&db);
            let started = Instant::now();
            let jobs: Vec<i64> = (0..4)
                .map(|j| api.submit(&server.url, &teachers(j * 400, 400, "Lettres")))
                .collect();
            let at = moments.moment(i, n, Duration::from_secs(3));
            std::thread::sleep(at.saturating_sub(started.elapsed()));
            let ended = api.ended(&server.url, &jobs);
            drop(server);
            unfinished_at_kill += jobs.len() - ended;

            let server = Server::start(&db);
            let context = format!("{} trial {i} (seed {seed}, killed at {at:?})", backend.name());
            let ends = api.wait_all(&server.url, &jobs, Duration::from_secs(120));
            assert_each_job_ran_once(&db, &jobs, &ends, 400, &context);
        }
        eprintln!(
            "{}: {n} kills of the server, {unfinished_at_kill} of {} jobs unfinished at the kill, each ended once",
            backend.name(),
            n * 4
        );
    }
}

/// A server stopped (SIGTERM, as systemd stops it) while it imports gives
/// its job back to the queue: it exits at once, and restarted with the
/// default one-minute lease it ends every job within seconds, once each.
#[test]
fn a_stopped_server_gives_its_job_back() {
    let db = Db::new(&Backend::Sqlite);
    let api = Api::new(&db);
    let args = ["serve", "--listen", "127.0.0.1:0", "--shutdown-grace", "0"];
    let mut server = Server::start_with(&db, &args);
    let jobs: Vec<i64> = (0..4)
        .map(|j| api.submit(&server.url, &teachers(j * 2000, 2000, "Arts")))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !jobs
        .iter()
        .any(|id| api.get(&format!("{}/api/v1/jobs/{id}", server.url))["status"] == "running")
    {
        assert!(Instant::now() < deadline, "no job started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let asked = Instant::now();
    // SAFETY: a plain signal to our own child process.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "stopped in {:?}",
        asked.elapsed()
    );

    let server = Server::start_with(&db, &args);
    let restarted = Instant::now();
    let ends = api.wait_all(&server.url, &jobs, Duration::from_secs(50));
    assert!(
        restarted.elapsed() < Duration::from_secs(45),
        "a job given back does not wait for its lease: {:?}",
        restarted.elapsed()
    );
    assert_each_job_ran_once(&db, &jobs, &ends, 2000, "server stopped by SIGTERM");
}

/// Two servers on one PostgreSQL, 20 jobs submitted to either; one server
/// dies mid-run. The other ends every job, once, with its result file.
#[test]
fn two_servers_on_one_database_one_killed_every_job_ends_once() {
    let Some(Backend::Postgres(admin_url)) = Backend::all().into_iter().find(|b| matches!(b, Backend::Postgres(_)))
    else {
        return;
    };
    let backend = Backend::Postgres(admin_url);
    let db = Db::new(&backend);
    let api = Api::new(&db);
    let first = Server::start(&db);
    let second = Server::start(&db);
    let jobs: Vec<i64> = (0..20)
        .map(|j| {
            let server = if j % 2 == 0 { &first.url } else { &second.url };
            api.submit(server, &teachers(j * 150, 150, "Sciences"))
        })
        .collect();
    // Once some jobs have ended, so that the first server is in the middle of its share.
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.ended(&second.url, &jobs) < 4 {
        assert!(Instant::now() < deadline, "no job ended within a minute");
        std::thread::sleep(Duration::from_millis(50));
    }
    let unfinished = jobs.len() - api.ended(&second.url, &jobs);
    drop(first);
    let ends = api.wait_all(&second.url, &jobs, Duration::from_secs(180));
    assert_each_job_ran_once(&db, &jobs, &ends, 150, "two servers, one killed");
    eprintln!("two servers: one killed with {unfinished} of 20 jobs unfinished; every job ended once");
}
