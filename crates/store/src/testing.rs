//! For the test suites of every crate: one way to skip a test whose outside
//! service (PostgreSQL, a browser, the external corpus) is missing.

use std::io::Write;

/// Outside CI, says SKIPPED on stderr and appends `reason` to the file named
/// by `ANNUAIRE_SKIP_LOG`, which `scripts/test` counts in its last line (cargo
/// hides a passing test's output); in CI (`CI=true`) fails the test, since a
/// test that silently passes there is a defect.
pub fn skip_unless_ci(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {reason}");
    }
    eprintln!("SKIPPED: {reason}");
    if let Some(path) = std::env::var_os("ANNUAIRE_SKIP_LOG") {
        if let Ok(mut log) = std::fs::OpenOptions::new().append(true).create(true).open(path) {
            let _ = writeln!(log, "{reason}");
        }
    }
}
