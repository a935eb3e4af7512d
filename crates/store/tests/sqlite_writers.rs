//! SQLite has one writer at a time: imports that meet there wait their turn
//! instead of failing once the busy timeout runs out (issue "Nothing lost,
//! nothing run twice", item 4). The busy timeout is cut to 150 ms here so
//! that an import that does not queue fails at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use domain::pipeline::Status;
use std::sync::Arc;
use std::time::Duration;
use store::sqlite::{SqliteDirectory, WriterQueue};
use store::Directory;

const SHORT_BUSY: Duration = Duration::from_millis(150);

/// Teachers `first..first + count` of `establishment`.
fn file(first: usize, count: usize) -> Vec<u8> {
    let mut lines = vec!["Civilité;Nom;Prénom;Matière".to_string()];
    for i in first..first + count {
        lines.push(format!("M.;NOM{};Prenom{};Histoire", name(i), name(i * 3 + 1)));
    }
    csv(&lines.iter().map(String::as_str).collect::<Vec<_>>())
}

fn name(mut n: usize) -> String {
    (0..4)
        .map(|_| {
            let c = (b'a' + (n % 26) as u8) as char;
            n /= 26;
            c
        })
        .collect()
}

async fn open(dir: &tempfile::TempDir, queue: WriterQueue) -> SqliteDirectory {
    SqliteDirectory::open_with(&format!("sqlite://{}/annuaire.db", dir.path().display()), queue)
        .await
        .unwrap()
}

/// Six imports at once in one process (a server's worker, its scheduled AAF
/// run, an admin's page): each waits for the one before, none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_of_one_process_wait_their_turn() {
    let dir = tempfile::tempdir().unwrap();
    let d = Arc::new(open(&dir, WriterQueue::new(SHORT_BUSY, Duration::from_secs(600))).await);
    with_establishments(d.as_ref(), &[UAI]).await;
    let runs: Vec<_> = (0..6)
        .map(|i| {
            let d = Arc::clone(&d);
            tokio::spawn(async move { try_import(d.as_ref(), &file(i * 1000, 1000), &teachers(UAI)).await })
        })
        .collect();
    for run in runs {
        let outcome = run.await.unwrap().expect("no import fails on a busy database");
        assert_eq!(outcome.report.status, Status::Imported);
        assert_eq!(outcome.report.created, 1000);
    }
    assert_eq!(d.count_users().await.unwrap(), 6000);
}

/// Two processes on one file (a CLI import beside the server): the second
/// asks for SQLite's lock again each time its busy timeout runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_waits_for_another_process_s_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = open(&dir, WriterQueue::new(SHORT_BUSY, Duration::from_secs(600))).await;
    let cli = open(&dir, WriterQueue::new(SHORT_BUSY, Duration::from_secs(600))).await;
    with_establishments(&server, &[UAI]).await;

    // The "server" holds the writer lock for ten busy timeouts.
    let mut held = server.pool().begin().await.unwrap();
    sqlx::query("UPDATE establishments SET name = name")
        .execute(&mut *held)
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(SHORT_BUSY * 10).await;
        held.commit().await.unwrap();
    });
    let outcome = try_import(&cli, &file(0, 50), &teachers(UAI))
        .await
        .expect("the import waited instead of failing");
    assert_eq!(outcome.report.created, 50);
    release.await.unwrap();

    // Past its patience, it gives up with a sentence, having written nothing.
    let impatient = open(&dir, WriterQueue::new(SHORT_BUSY, SHORT_BUSY * 3)).await;
    let mut held = server.pool().begin().await.unwrap();
    sqlx::query("UPDATE establishments SET name = name")
        .execute(&mut *held)
        .await
        .unwrap();
    let Err(error) = try_import(&impatient, &file(100, 50), &teachers(UAI)).await else {
        panic!("the impatient import should have given up");
    };
    held.rollback().await.unwrap();
    let message = error.to_string();
    assert!(message.contains("occupée par un autre programme"), "{message}");
    assert!(!message.contains("code: 5"), "{message}");
    assert_eq!(cli.count_users().await.unwrap(), 50);
}
