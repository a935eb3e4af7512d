//! End to end: the real `annuaire import` command, in its own process, on a
//! fresh SQLite file, with passwords generated and hashed as in production.
//! Wall time from spawn to exit, peak resident memory from the kernel's
//! accounting of waited-for children (`getrusage(RUSAGE_CHILDREN)`).

use super::{generate_csv, Figure, ScratchDir, BENCH_UAI};
use anyhow::{bail, Context, Result};
use std::process::{Command, Stdio};
use std::time::Instant;

pub async fn measure(rows: usize) -> Result<Figure> {
    tokio::task::spawn_blocking(move || run(rows))
        .await
        .context("mesure de bout en bout interrompue")?
}

fn run(rows: usize) -> Result<Figure> {
    let scratch = ScratchDir::new()?;
    let csv_path = scratch.0.join("enseignants.csv");
    let bytes = generate_csv(rows)?;
    std::fs::write(&csv_path, &bytes).with_context(|| format!("écriture de {}", csv_path.display()))?;
    let exe = std::env::current_exe().context("chemin du programme annuaire")?;
    let url = scratch.sqlite_url("e2e.db");
    let result = scratch.0.join("resultat.csv");

    let status = Command::new(&exe)
        .args([
            "--database",
            &url,
            "establishment",
            "add",
            BENCH_UAI,
            "Établissement de mesure",
        ])
        .stdout(Stdio::null())
        .status()
        .context("lancement de « annuaire establishment add »")?;
    if !status.success() {
        bail!("« annuaire establishment add » a échoué ({status})");
    }

    let start = Instant::now();
    let output = Command::new(&exe)
        .arg("--database")
        .arg(&url)
        .arg("import")
        .arg(&csv_path)
        .args([
            "--profile",
            "enseignant",
            "--establishment",
            BENCH_UAI,
            "--report",
            "json",
        ])
        .arg("--result")
        .arg(&result)
        .stderr(Stdio::null())
        .output()
        .context("lancement de « annuaire import »")?;
    let elapsed = start.elapsed();
    if !output.status.success() {
        bail!(
            "« annuaire import » a échoué ({}) : {}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("rapport JSON de « annuaire import »")?;
    let created = report["created"].as_u64().unwrap_or_default();
    let peak = peak_child_rss_bytes();
    let build = if cfg!(debug_assertions) {
        "debug build, not representative"
    } else {
        "release build"
    };
    let rss = peak.map_or_else(
        || "peak RSS unknown".to_string(),
        |b| format!("peak RSS {} MiB", b >> 20),
    );
    Ok(
        Figure::new("end to end: annuaire import (new SQLite file)", "sqlite", rows, elapsed).note(format!(
        "{rss}; {created} accounts created, passwords generated and hashed; targets 100k rows ≤ 60 s, ≤ 1 GiB; {build}",
    )),
    )
}

/// Largest resident set of the children waited for so far (the import is
/// the biggest by far), in bytes.
#[cfg(unix)]
fn peak_child_rss_bytes() -> Option<u64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given,
    // which points to memory of that type; it is read only on success.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    // Linux reports kilobytes.
    u64::try_from(usage.ru_maxrss).ok().map(|kib| kib * 1024)
}

#[cfg(not(unix))]
fn peak_child_rss_bytes() -> Option<u64> {
    None
}
