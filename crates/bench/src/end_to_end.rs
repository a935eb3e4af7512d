//! End to end: the real `annuaire import` command, in its own process, on a
//! fresh SQLite file, with passwords generated and hashed as in production.
//! Wall time from spawn to exit; peak resident memory is the child's own
//! high-water mark (`VmHWM` in `/proc/PID/status`), read every 10 ms until it
//! exits. Not `getrusage(RUSAGE_CHILDREN)`: a child spawned with vfork/exec
//! inherits the spawning process's high-water mark in `ru_maxrss`, so after
//! the big-directory measures it reported the bench's own peak.

use super::{generate_csv, Figure, ScratchDir, BENCH_UAI};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `annuaire` program to measure: the one given, or the one cargo built
/// next to this benchmark (same profile: `cargo build --release -p annuaire`).
pub fn annuaire_program(given: Option<&Path>) -> Result<PathBuf> {
    let program = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .context("chemin du programme annuaire-bench")?
            .with_file_name(format!("annuaire{}", std::env::consts::EXE_SUFFIX)),
    };
    if !program.is_file() {
        bail!(
            "programme annuaire introuvable ({}) : construisez-le avec le même profil (cargo build --release -p annuaire), indiquez-le avec --annuaire, ou omettez la mesure avec --end-to-end-rows 0",
            program.display()
        );
    }
    Ok(program)
}

pub async fn measure(program: &Path, rows: usize) -> Result<Figure> {
    let program = program.to_path_buf();
    tokio::task::spawn_blocking(move || run(&program, rows))
        .await
        .context("mesure de bout en bout interrompue")?
}

fn run(exe: &Path, rows: usize) -> Result<Figure> {
    let scratch = ScratchDir::new()?;
    let csv_path = scratch.0.join("enseignants.csv");
    let bytes = generate_csv(rows)?;
    std::fs::write(&csv_path, &bytes).with_context(|| format!("écriture de {}", csv_path.display()))?;
    let url = scratch.sqlite_url("e2e.db");
    let result = scratch.0.join("resultat.csv");

    let status = Command::new(exe)
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

    let args: Vec<String> = [
        "--database".to_string(),
        url,
        "import".into(),
        csv_path.display().to_string(),
        "--profile".into(),
        "enseignant".into(),
        "--establishment".into(),
        BENCH_UAI.into(),
        "--report".into(),
        "json".into(),
        "--result".into(),
        result.display().to_string(),
    ]
    .to_vec();
    let (elapsed, peak, report) = run_measured(exe, &args, &scratch.0)?;
    let created = report["created"].as_u64().unwrap_or_default();
    let build = if cfg!(debug_assertions) {
        "debug build, not representative"
    } else {
        "release build"
    };
    let rss = format!("peak RSS {} MiB (VmHWM)", peak >> 20);
    Ok(
        Figure::new("end to end: annuaire import (new SQLite file)", "sqlite", rows, elapsed).note(format!(
        "{rss}; {created} accounts created, passwords generated and hashed; targets 100k rows ≤ 60 s, ≤ 1 GiB; {build}",
    )),
    )
}

/// Runs `annuaire ARGS` in `dir` and waits for it: wall time from spawn to
/// exit, the child's peak resident memory (0 when unknown) and its JSON
/// report (stdout).
pub fn run_measured(exe: &Path, args: &[String], dir: &Path) -> Result<(Duration, u64, serde_json::Value)> {
    let start = Instant::now();
    let mut child = Command::new(exe)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("lancement de « annuaire »")?;
    let mut stdout = child.stdout.take().context("sortie de « annuaire »")?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).map(|_| out)
    });
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Some(hwm) = high_water_mark(&status_path) {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().context("attente de « annuaire »")? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    let stdout = reader
        .join()
        .map_err(|_| anyhow::anyhow!("lecture de la sortie de « annuaire » interrompue"))?
        .context("lecture de la sortie de « annuaire »")?;
    if !status.success() {
        bail!(
            "« annuaire {} » a échoué ({status}) : {}",
            args.get(2).map(String::as_str).unwrap_or_default(),
            String::from_utf8_lossy(&stdout)
        );
    }
    let report = serde_json::from_slice(&stdout).context("rapport JSON de « annuaire »")?;
    Ok((elapsed, peak, report))
}

/// `VmHWM` of a running process, in bytes; `None` once it has exited.
fn high_water_mark(status_path: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
