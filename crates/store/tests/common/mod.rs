//! Test support: a fresh database per test on each real backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//!
//! SQLite: a file in a temporary folder. PostgreSQL: a new database in the
//! server named by `ANNUAIRE_TEST_POSTGRES_URL` (`.ci/run` starts one). Without
//! that variable the PostgreSQL tests say so and skip, except under `CI=true`,
//! where a missing server is a failure: every test must really run in CI.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use domain::{Establishment, Uai};
use rand::SeedableRng;
use sqlx::Connection;
use std::sync::atomic::{AtomicU32, Ordering};
use store::postgres::PgDirectory;
use store::service::{self, FixedClock, ImportOutcome, ImportRequest, NoProgress};
use store::sqlite::SqliteDirectory;
use store::Directory;

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0)
        .single()
        .unwrap_or_default()
}

pub struct SqliteDb {
    pub directory: SqliteDirectory,
    _dir: tempfile::TempDir,
}

impl SqliteDb {
    /// The end of a test: nothing to drop (the folder goes with it).
    pub async fn finish(self) {}

    /// The database file.
    pub fn file(&self) -> std::path::PathBuf {
        self._dir.path().join("annuaire.db")
    }
}

pub async fn sqlite() -> SqliteDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/annuaire.db", dir.path().display());
    let directory = SqliteDirectory::open(&url).await.expect("open sqlite");
    SqliteDb { directory, _dir: dir }
}

pub struct PgDb {
    pub directory: PgDirectory,
    admin_url: String,
    name: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The admin URL of the test server, or `None` (skip) outside CI.
pub fn postgres_url() -> Option<String> {
    match std::env::var("ANNUAIRE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            store::testing::skip_unless_ci(
                "ANNUAIRE_TEST_POSTGRES_URL is not set (scripts/test and .ci/run start a PostgreSQL cluster; or run scripts/postgres-test-cluster start and export its URL)",
            );
            None
        }
    }
}

pub async fn postgres() -> Option<PgDb> {
    let admin_url = postgres_url()?;
    let name = format!(
        "annuaire_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        rand::random::<u32>()
    );
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let url = with_database(&admin_url, &name);
    let directory = PgDirectory::open(&url).await.expect("open postgres");
    Some(PgDb {
        directory,
        admin_url,
        name,
    })
}

/// Replaces the database part of a postgres URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..host_end])
}

impl PgDb {
    /// This database's URL, to open it a second time.
    pub fn url(&self) -> String {
        with_database(&self.admin_url, &self.name)
    }

    /// The end of a test: the database is dropped.
    pub async fn finish(self) {
        self.drop_database().await
    }

    pub async fn drop_database(self) {
        self.directory.pool().close().await;
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .execute(&mut admin)
                .await;
        }
    }
}

/// Declares each listed `async fn name(d: &impl Directory)` as a test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::common::sqlite().await;
                    super::$name(&db.directory).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::common::postgres().await else { return };
                    super::$name(&db.directory).await;
                    db.drop_database().await;
                }
            )*
        }
    };
}

pub const UAI: &str = "0750654D";
pub const OTHER_UAI: &str = "0750655E";

pub fn uai(s: &str) -> Uai {
    Uai::parse(s).expect("valid uai")
}

pub async fn with_establishments<D: Directory>(d: &D, uais: &[&str]) {
    for (i, u) in uais.iter().enumerate() {
        d.add_establishment(
            &Establishment {
                uai: uai(u),
                name: format!("Collège test {i}"),
            },
            now(),
        )
        .await
        .expect("add establishment");
    }
}

/// A CSV file as Excel writes it: BOM, `;`, CRLF.
pub fn csv(lines: &[&str]) -> Vec<u8> {
    let mut out = vec![0xEF, 0xBB, 0xBF];
    for l in lines {
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

pub const TEACHER_HEADER: &str = "Civilité enseignant;Nom enseignant;Prénom enseignant;Matière enseignant;Telephone portable enseignant;Nom utilisateur enseignant;Mot de passe enseignant";

/// The guide's five teachers (§4.1.B.A).
pub fn guide_teachers() -> Vec<u8> {
    csv(&[
        "Civilité enseignant;Nom enseignant;Prénom enseignant;Matière enseignant;Telephone portable enseignant",
        "Monsieur;PLATON;Francis;Philosophie;",
        "Monsieur;DESCARTES;Rachid;Mathématiques;",
        "Madame;LAVOISIER;Nicole;Physique-Chimie;06 12 34 56 78",
        "Monsieur;JAMES;Henry;Anglais;",
        "Madame;MOZART;Pauline;Education Musicale;",
    ])
}

pub fn teachers(establishment: &str) -> ImportRequest {
    let mut r = ImportRequest::new(domain::Profile::Enseignant, Some(uai(establishment)));
    r.file_name = "enseignants.csv".into();
    r
}

pub fn request(profile: domain::Profile, establishment: &str) -> ImportRequest {
    let mut r = ImportRequest::new(profile, Some(uai(establishment)));
    r.file_name = format!("{profile}.csv");
    r
}

pub async fn import<D: Directory>(d: &D, bytes: &[u8], request: &ImportRequest) -> ImportOutcome {
    match try_import(d, bytes, request).await {
        Ok(o) => o,
        Err(e) => panic!("import failed: {e}"),
    }
}

pub async fn try_import<D: Directory>(
    d: &D,
    bytes: &[u8],
    request: &ImportRequest,
) -> Result<ImportOutcome, service::ImportError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    service::run_import(d, bytes, request, &FixedClock(now()), &mut rng, &NoProgress).await
}

/// Counts of a report as a tuple: (created, updated, unchanged, merged, deactivated, conflicts).
pub fn counts(o: &ImportOutcome) -> (usize, usize, usize, usize, usize, usize) {
    let r = &o.report;
    (r.created, r.updated, r.unchanged, r.merged, r.deactivated, r.conflicts)
}

pub fn codes(o: &ImportOutcome) -> Vec<(u64, String)> {
    o.report
        .conflict_details
        .iter()
        .map(|c| (c.line, c.code.clone()))
        .collect()
}

/// Reads the result file back as rows of cells (BOM stripped).
pub fn result_rows(o: &ImportOutcome) -> Vec<Vec<String>> {
    let bytes = o.result_file.as_ref().expect("result file");
    let text = std::str::from_utf8(bytes).expect("utf-8");
    let text = text.strip_prefix('\u{feff}').expect("BOM");
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| l.split(';').map(str::to_string).collect())
        .collect()
}

/// Runs an import as the CLI does, with its history line; the outcome (if
/// it was not refused) and the history line's id.
pub async fn recorded<D: Directory + store::history::History + store::admin::AdminDirectory>(
    d: &D,
    bytes: &[u8],
    request: &ImportRequest,
    at: chrono::DateTime<chrono::Utc>,
) -> (Option<ImportOutcome>, i64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let (outcome, id) = store::service::run_recorded_import(
        d,
        bytes,
        request,
        &store::service::FixedClock(at),
        &mut rng,
        &store::service::NoProgress,
    )
    .await;
    (outcome.ok(), id.expect("a history line"))
}

/// A file of teachers of these last names.
pub fn teachers_file(names: &[&str]) -> Vec<u8> {
    let mut lines = vec!["Civilité;Nom;Prénom;Matière".to_string()];
    lines.extend(names.iter().map(|n| format!("M.;{n};Jean;Anglais")));
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    csv(&refs)
}
