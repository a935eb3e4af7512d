//! Migration 0013 (issue 12): the web, job, result and mail tables held unix
//! seconds; a database written before it keeps every instant, now read as
//! `DateTime<Utc>` by the store, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{DateTime, Utc};
use sqlx::Connection;
use store::history::History;
use store::postgres::PgDirectory;
use store::sqlite::SqliteDirectory;
use store::web::WebDirectory;

/// 2025-12-01 09:00:00 UTC, the instant every former row is written around.
const T: i64 = 1_764_579_600;

fn at(offset: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(T + offset, 0).unwrap()
}

/// Rows as a database at migration 0012 held them. Literal values only, so
/// that the same text runs on SQLite and on PostgreSQL.
fn former_rows() -> String {
    format!(
        "INSERT INTO establishments (uai, name, created_at) VALUES ('0750654D', 'Collège', '2025-12-01T09:00:00+00:00');
         INSERT INTO admins (id, login, password_hash, system, created_at) VALUES (7, 'admin', 'x', TRUE, {T});
         INSERT INTO sessions (token_hash, admin_id, csrf_token, created_at, expires_at) VALUES ('live', 7, 'c', {T}, {live});
         INSERT INTO sessions (token_hash, admin_id, csrf_token, created_at, expires_at) VALUES ('gone', 7, 'c', {T}, {gone});
         INSERT INTO failed_logins (login, at) VALUES ('admin', {T}), ('admin', {early});
         INSERT INTO drafts (id, admin_id, file_name, file_bytes, settings, created_at, updated_at) VALUES (3, 7, 'f.csv', '', '{{}}', {T}, {updated});
         INSERT INTO jobs (id, draft_id, admin_id, status, progress, attempts, created_at, started_at, finished_at, lease_until)
             VALUES (5, 3, 7, 'succeeded', '{{}}', 1, {T}, {started}, {finished}, {lease});
         INSERT INTO imports (id, started_at, actor, profile, establishments, complet, options, file_name, file_size, rows,
             created, updated, unchanged, merged, deactivated, skipped, status)
             VALUES (11, '2025-12-01T09:00:00+00:00', 'cli:test', 'enseignant', '0750654D', FALSE, '', 'f.csv', 0, 0, 0, 0, 0, 0, 0, 0, 'succeeded');
         INSERT INTO import_results (import_id, content, expires_at) VALUES (11, 'x', {kept});
         INSERT INTO mails (id, import_id, recipients, cc, subject, body_text, body_html, status, attempts, next_attempt_at, created_at)
             VALUES (13, 11, 'a@example.org', '', 's', 't', 'h', 'pending', 0, {due}, {T});",
        live = T + 3_600,
        gone = T - 1,
        early = T - 7_200,
        updated = T + 60,
        started = T + 1,
        finished = T + 2,
        lease = T + 61,
        kept = T + 86_400,
        due = T + 30,
    )
}

/// What the store reads back after migration 0013, and how it compares.
async fn assert_instants_kept(d: &(impl WebDirectory + History)) {
    let now = at(0);
    let session = d.session("live", now).await.unwrap().expect("the live session");
    assert_eq!(session.expires_at, at(3_600));
    assert!(
        d.session("gone", now).await.unwrap().is_none(),
        "an expired session stays expired"
    );
    assert_eq!(d.failed_logins_since("admin", at(-3_600)).await.unwrap(), 1);
    let draft = d.draft(3).await.unwrap().unwrap();
    assert_eq!(
        (draft.created_at, draft.updated_at, draft.purged_at),
        (at(0), at(60), None)
    );
    let job = d.job(5).await.unwrap().unwrap();
    assert_eq!(
        (job.created_at, job.started_at, job.finished_at),
        (at(0), Some(at(1)), Some(at(2)))
    );
    let entry = d.import_entry(11).await.unwrap().unwrap();
    assert_eq!(entry.result_expires_at, Some(at(86_400)));
    let json = serde_json::to_value(&entry).unwrap();
    assert_eq!(json["result_expires_at"], T + 86_400, "the JSON keeps unix seconds");
    assert!(d.import_result(11, at(86_400)).await.unwrap().is_some());
    assert!(d.import_result(11, at(86_401)).await.unwrap().is_none());
    assert!(
        d.claim_due_mails(at(29), 60, 10).await.unwrap().is_empty(),
        "not due yet"
    );
    let due = d.claim_due_mails(at(30), 60, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|m| (m.id, m.created_at)).collect::<Vec<_>>(),
        vec![(13, at(0))]
    );
    assert_eq!(d.mails_of_import(11).await.unwrap()[0].next_attempt_at, at(90));
}

/// The migrations before 0013 of one backend's folder.
fn before_instants(migrator: &sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    let migrations: Vec<_> = migrator.migrations.iter().filter(|m| m.version < 13).cloned().collect();
    assert_eq!(migrations.len(), 12);
    sqlx::migrate::Migrator {
        migrations: migrations.into(),
        ..sqlx::migrate::Migrator::DEFAULT
    }
}

#[tokio::test]
async fn former_unix_seconds_become_instants_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/annuaire.db?mode=rwc", dir.path().display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    before_instants(&sqlx::migrate!("./migrations/sqlite"))
        .run(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(&former_rows()).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let directory = SqliteDirectory::open(&url).await.unwrap();
    assert_instants_kept(&directory).await;
    let declared: Vec<String> =
        sqlx::query_scalar("SELECT type FROM pragma_table_info('mails') WHERE name LIKE '%_at'")
            .fetch_all(directory.pool())
            .await
            .unwrap();
    assert_eq!(
        declared,
        ["TEXT", "TEXT", "TEXT"],
        "declared as the directory's instants"
    );
}

#[tokio::test]
async fn former_unix_seconds_become_instants_on_postgres() {
    let Some(admin_url) = common::postgres_url() else {
        return;
    };
    let name = format!("annuaire_migration_{}_{}", std::process::id(), rand::random::<u32>());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = common::with_database(&admin_url, &name);
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    before_instants(&sqlx::migrate!("./migrations/postgres"))
        .run(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(&former_rows()).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let directory = PgDirectory::open(&url).await.unwrap();
    assert_instants_kept(&directory).await;
    directory.pool().close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}
