//! Size independence (issue 6) and search (issue 5) on a big directory: the
//! same small teacher imports into a directory holding no account and into
//! one already holding `--directory-users` accounts, then a last-name prefix
//! search on both, with the query plan the database chose.
//!
//! The big directory is filled by the raw bulk path (prepared INSERTs in one
//! transaction on SQLite, COPY on PostgreSQL), not the import engine: realistic
//! rows (teachers and staff, homonyms with numbered logins, memberships and
//! subject groups across [`ESTABLISHMENTS`] establishments) in seconds.

use super::{
    copy_in, generate_csv_with, new_person_within, sqlite_group_members_insert, sqlite_memberships_insert,
    sqlite_users_insert, timed_apply, timed_plan, Bench, Figure, RawUserColumns, ScratchDir, Table, SEED, SUBJECTS,
};
use anyhow::{bail, Result};
use chrono::Utc;
use domain::keys::{LoginPattern, SyncKey};
use domain::{Profile, Uai};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use store::postgres::PgDirectory;
use store::sqlite::SqliteDirectory;
use store::{Directory, UserQuery};

/// Lines of each measured import: a typical establishment's teachers.
pub const IMPORT_ROWS: usize = 500;
/// Imports per directory; the median is kept.
const REPEATS: usize = 5;
/// Establishments of the big directory.
const ESTABLISHMENTS: usize = 1_000;
/// Accounts written per chunk while filling: bounds memory whatever the size.
const FILL_CHUNK: usize = 50_000;
/// Rows per multi-row INSERT on SQLite (19 parameters each, under its 32 766).
const SQLITE_BATCH: usize = 1_000;
/// Last-name prefixes searched: a rare one and a very common one.
const SEARCHES: [&str; 2] = ["dup", "mart"];
/// Runs of each search; the median is kept.
const SEARCH_RUNS: usize = 21;
/// Rows a search page shows.
const SEARCH_LIMIT: i64 = 50;

/// The import files and the establishments, the same for both backends.
pub struct ScaleInput {
    files: Vec<Vec<u8>>,
    uais: Vec<Uai>,
    /// Keys of the imported people: the filler never draws them, so that the
    /// imports create the same accounts in both directories.
    keys: HashSet<SyncKey>,
    directory_users: usize,
}

impl ScaleInput {
    pub fn new(directory_users: usize) -> Result<ScaleInput> {
        let mut rng = StdRng::seed_from_u64(SEED ^ 0x5ca1e);
        let mut keys = HashSet::new();
        let files = (0..REPEATS)
            .map(|_| generate_csv_with(&mut rng, &mut keys, IMPORT_ROWS))
            .collect::<Result<Vec<_>>>()?;
        // 0690000… (Rhône): valid check letters, none is the demo establishment.
        let uais = (0..ESTABLISHMENTS as u32)
            .map(|i| {
                let number = 690_000 + i;
                let letter = b"ABCDEFGHJKLMNPRSTUVWXYZ"[(number % 23) as usize];
                Uai::parse(&format!("{number:07}{}", char::from(letter)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ScaleInput {
            files,
            uais,
            keys,
            directory_users,
        })
    }

    /// The establishment of the `i`th import: an existing one, with accounts
    /// in the big directory.
    fn import_uai(&self, i: usize) -> &Uai {
        &self.uais[(i * 97) % self.uais.len()]
    }
}

/// One account of the big directory, in its stored form.
struct FillUser {
    id: i64,
    sync_key: String,
    profile: &'static str,
    civility: &'static str,
    last_name: String,
    first_name: String,
    last_name_fold: String,
    first_name_fold: String,
    subject: Option<&'static str>,
    postal_code: Option<String>,
    mobile: Option<String>,
    email: Option<String>,
    login: String,
    /// Indexes into the establishments; the subject group of a teacher in each.
    establishments: Vec<usize>,
}

/// Draws the accounts of the big directory, a chunk at a time.
struct Filler<'a> {
    rng: StdRng,
    keys: HashSet<SyncKey>,
    /// Accounts per login base: the next one gets `base<n+1>`.
    bases: HashMap<String, u32>,
    next_id: i64,
    input: &'a ScaleInput,
}

impl<'a> Filler<'a> {
    fn new(input: &'a ScaleInput) -> Filler<'a> {
        Filler {
            rng: StdRng::seed_from_u64(SEED ^ 0xf111),
            keys: input.keys.clone(),
            bases: HashMap::new(),
            next_id: 1,
            input,
        }
    }

    fn chunk(&mut self, n: usize) -> Vec<FillUser> {
        (0..n).map(|_| self.user()).collect()
    }

    fn user(&mut self) -> FillUser {
        let p = new_person_within(&mut self.rng, &mut self.keys, 2);
        let teacher = self.rng.gen_bool(0.85);
        let profile = if teacher {
            Profile::Enseignant
        } else {
            Profile::Administratif
        };
        let key = SyncKey::derive(profile, p.first, &p.last, None, None);
        let base = LoginPattern::InitialLastName.base(p.first, &p.last);
        let count = self.bases.entry(base.clone()).or_insert(0);
        *count += 1;
        let login = if *count == 1 { base } else { format!("{base}{count}") };
        let mut establishments = vec![self.rng.gen_range(0..self.input.uais.len())];
        if self.rng.gen_bool(0.1) {
            let other = self.rng.gen_range(0..self.input.uais.len());
            if other != establishments[0] {
                establishments.push(other);
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let civility = match p.civility {
            "Monsieur" | "M." | "M" => "M.",
            _ => "Mme",
        };
        FillUser {
            id,
            sync_key: key.as_str().to_string(),
            profile: profile.id(),
            civility,
            last_name_fold: store::fold_for_search(&p.last),
            first_name_fold: store::fold_for_search(p.first),
            last_name: p.last,
            first_name: p.first.to_string(),
            subject: teacher.then(|| SUBJECTS[self.rng.gen_range(0..SUBJECTS.len())]),
            postal_code: (!p.postal.is_empty()).then(|| format!("{:0>5}", p.postal)),
            mobile: (!p.mobile.is_empty()).then(|| format!("+336{:08}", self.rng.gen_range(10_000_000..90_000_000))),
            email: (!p.email.is_empty()).then_some(p.email),
            login,
            establishments,
        }
    }
}

/// Id of the subject group of an establishment (ids 1, 2, … in order).
fn group_id(establishment: usize, subject: &str) -> i64 {
    let s = SUBJECTS.iter().position(|x| *x == subject).unwrap_or(0);
    (establishment * SUBJECTS.len() + s + 1) as i64
}

/// Times of one import: pure work (read, check, plan), snapshot, apply.
#[derive(Clone, Copy)]
struct ImportTimes {
    pure: Duration,
    snapshot: Duration,
    apply: Duration,
}

impl ImportTimes {
    fn total(&self) -> Duration {
        self.pure + self.snapshot + self.apply
    }
}

async fn timed_import<D: app::Backend>(d: &D, bytes: &[u8], uai: &Uai) -> Result<ImportTimes> {
    let bench = Bench::at(bytes, IMPORT_ROWS, uai.as_str())?;
    let (plan, t) = timed_plan(d, &bench).await?;
    if !plan.updates.is_empty() || !plan.unchanged.is_empty() {
        bail!(
            "l'import mesuré devait créer tous ses comptes : {} mis à jour, {} inchangés",
            plan.updates.len(),
            plan.unchanged.len()
        );
    }
    let apply = timed_apply(d, &bench).await?;
    Ok(ImportTimes {
        pure: t.check_file + t.lookup + t.plan,
        snapshot: t.snapshot,
        apply,
    })
}

/// One stage of an import's times.
type Part = fn(&ImportTimes) -> Duration;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Both directories, already filled, measured in turns so that noise hits both.
async fn measure_pair<D: app::Backend>(
    backend: &str,
    empty: &D,
    big: &D,
    input: &ScaleInput,
    fill: (usize, Duration, &str),
    table: &mut Table,
    explain: impl AsyncExplain<D>,
) -> Result<()> {
    let (users, fill_time, fill_how) = fill;
    table.push(
        Figure::new(format!("fill directory of {users} accounts"), backend, users, fill_time)
            .note(format!("{fill_how}, {ESTABLISHMENTS} establishments; not the engine")),
    );
    let mut small_runs = Vec::new();
    let mut big_runs = Vec::new();
    for (i, file) in input.files.iter().enumerate() {
        eprintln!(
            "  {backend} : import de {IMPORT_ROWS} lignes n°{} (annuaire vide puis plein)…",
            i + 1
        );
        small_runs.push(timed_import(empty, file, input.import_uai(i)).await?);
        big_runs.push(timed_import(big, file, input.import_uai(i)).await?);
    }
    let pick = |runs: &[ImportTimes], f: Part| median(runs.iter().map(f).collect());
    let parts: [(&str, Part); 4] = [
        ("total", ImportTimes::total),
        ("  pure (check_file+lookup+plan)", |t| t.pure),
        ("  snapshot", |t| t.snapshot),
        ("  apply", |t| t.apply),
    ];
    for (name, f) in parts {
        let small = pick(&small_runs, f);
        let big_time = pick(&big_runs, f);
        let small_label = format!("import {IMPORT_ROWS} into empty directory: {name}");
        let small_fig = Figure::new(small_label.clone(), backend, IMPORT_ROWS, small);
        let factor = big_time.as_secs_f64() / small.as_secs_f64().max(f64::MIN_POSITIVE);
        let target = if name == "total" { " (target ≤ 1.5)" } else { "" };
        let big_fig = Figure::new(
            format!("import {IMPORT_ROWS} into directory of {users}: {name}"),
            backend,
            IMPORT_ROWS,
            big_time,
        )
        .against(&small_label, small_fig.rows_per_s)
        .note(format!("time x{factor:.2} vs empty{target}; median of {REPEATS}"));
        table.push(small_fig.note(format!("median of {REPEATS}")));
        let big_fig = if name == "  snapshot" {
            let bases = ["jmartin", "mmartin"].map(String::from);
            big_fig.query_plan(explain.explain_logins(big, &bases).await?)
        } else {
            big_fig
        };
        table.push(big_fig);
    }

    for prefix in SEARCHES {
        let query = UserQuery {
            last_name: Some(prefix.to_string()),
            limit: SEARCH_LIMIT,
            ..UserQuery::default()
        };
        let mut found = [0usize; 2];
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..SEARCH_RUNS {
            for (k, d) in [empty, big].into_iter().enumerate() {
                let start = Instant::now();
                let rows = d.search_users(&query).await?;
                times[k].push(start.elapsed());
                found[k] = rows.len();
            }
        }
        let [small_times, big_times] = times;
        let small_label = format!("search last name \"{prefix}\", empty directory");
        let small = Figure::new(small_label.clone(), backend, 1, median(small_times)).note(format!(
            "{} shown (limit {SEARCH_LIMIT}); median of {SEARCH_RUNS}",
            found[0]
        ));
        let big_time = median(big_times);
        let factor = big_time.as_secs_f64() / small.seconds.max(f64::MIN_POSITIVE);
        let plan = explain.explain(big, &query).await?;
        let big_fig = Figure::new(
            format!("search last name \"{prefix}\", directory of {users}"),
            backend,
            1,
            big_time,
        )
        .against(&small_label, small.rows_per_s)
        .note(format!(
            "{} shown (limit {SEARCH_LIMIT}); time x{factor:.2} vs empty; median of {SEARCH_RUNS}",
            found[1]
        ))
        .query_plan(plan);
        table.push(small);
        table.push(big_fig);
    }
    Ok(())
}

/// The backend's EXPLAIN of a search, as a value (async closures are not
/// stable at this Rust version).
trait AsyncExplain<D> {
    async fn explain(&self, d: &D, q: &UserQuery) -> Result<String>;
    async fn explain_logins(&self, d: &D, bases: &[String]) -> Result<String>;
}

struct SqliteExplain;

impl AsyncExplain<SqliteDirectory> for SqliteExplain {
    async fn explain(&self, d: &SqliteDirectory, q: &UserQuery) -> Result<String> {
        Ok(d.explain_search(q).await?)
    }
    async fn explain_logins(&self, d: &SqliteDirectory, bases: &[String]) -> Result<String> {
        Ok(d.explain_logins_highest(bases).await?)
    }
}

struct PgExplain;

impl AsyncExplain<PgDirectory> for PgExplain {
    async fn explain(&self, d: &PgDirectory, q: &UserQuery) -> Result<String> {
        Ok(d.explain_search(q).await?)
    }
    async fn explain_logins(&self, d: &PgDirectory, bases: &[String]) -> Result<String> {
        Ok(d.explain_logins_highest(bases).await?)
    }
}

// ---------------------------------------------------------------------------
// SQLite

pub async fn measure_sqlite(input: &ScaleInput, password_hash: &str, table: &mut Table) -> Result<()> {
    let scratch = ScratchDir::new()?;
    let empty = SqliteDirectory::open(&scratch.sqlite_url("empty.db")).await?;
    let big = SqliteDirectory::open(&scratch.sqlite_url("big.db")).await?;
    fill_sqlite(empty.pool(), input, 0, password_hash).await?;
    eprintln!("  sqlite : remplissage de {} comptes…", input.directory_users);
    let start = Instant::now();
    fill_sqlite(big.pool(), input, input.directory_users, password_hash).await?;
    let fill_time = start.elapsed();
    empty.checkpoint().await?;
    big.checkpoint().await?;
    let result = measure_pair(
        "sqlite",
        &empty,
        &big,
        input,
        (
            input.directory_users,
            fill_time,
            "multi-row prepared INSERTs, one transaction",
        ),
        table,
        SqliteExplain,
    )
    .await;
    empty.pool().close().await;
    big.pool().close().await;
    result
}

async fn fill_sqlite(pool: &sqlx::SqlitePool, input: &ScaleInput, users: usize, password_hash: &str) -> Result<()> {
    let now = Utc::now();
    let mut tx = pool.begin().await?;
    for (i, uai) in input.uais.iter().enumerate() {
        sqlx::query("INSERT INTO establishments (uai, name, created_at) VALUES (?, ?, ?)")
            .bind(uai.as_str())
            .bind(format!("Établissement n°{}", i + 1))
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    if users > 0 {
        for (e, uai) in input.uais.iter().enumerate() {
            for subject in SUBJECTS {
                sqlx::query("INSERT INTO groups (id, uai, kind, name) VALUES (?, ?, 'subject', ?)")
                    .bind(group_id(e, subject))
                    .bind(uai.as_str())
                    .bind(*subject)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    let mut filler = Filler::new(input);
    let mut left = users;
    while left > 0 {
        let chunk = filler.chunk(left.min(FILL_CHUNK));
        left -= chunk.len();
        // Multi-row INSERTs (one prepared statement per full batch): one
        // round trip to SQLite's thread per batch rather than per row.
        for batch in chunk.chunks(SQLITE_BATCH) {
            let mut b = sqlite_users_insert(
                batch.iter().map(|u| RawUserColumns {
                    id: u.id,
                    sync_key: &u.sync_key,
                    profile: u.profile,
                    civility: Some(u.civility),
                    last_name: &u.last_name,
                    first_name: &u.first_name,
                    last_name_fold: &u.last_name_fold,
                    first_name_fold: &u.first_name_fold,
                    subject: u.subject,
                    postal_code: u.postal_code.as_deref(),
                    mobile: u.mobile.as_deref(),
                    email: u.email.as_deref(),
                    login: &u.login,
                }),
                password_hash,
                now,
            );
            b.build().execute(&mut *tx).await?;
            let links: Vec<(i64, usize, Option<&str>)> = batch
                .iter()
                .flat_map(|u| u.establishments.iter().map(move |e| (u.id, *e, u.subject)))
                .collect();
            sqlite_memberships_insert(
                links
                    .iter()
                    .map(|(id, e, _)| (*id, input.uais[*e].as_str(), "enseignant")),
            )
            .build()
            .execute(&mut *tx)
            .await?;
            let members: Vec<(i64, i64)> = links
                .iter()
                .filter_map(|(id, e, subject)| subject.map(|s| (group_id(*e, s), *id)))
                .collect();
            if !members.is_empty() {
                sqlite_group_members_insert(members).build().execute(&mut *tx).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// PostgreSQL

/// `names`: two throw-away databases, created and dropped by the caller.
pub async fn measure_postgres(
    url: &str,
    names: &[String],
    input: &ScaleInput,
    password_hash: &str,
    table: &mut Table,
) -> Result<()> {
    let [empty_name, big_name] = names else {
        bail!("deux bases attendues");
    };
    let empty = PgDirectory::open(&super::with_database(url, empty_name)?).await?;
    let big = PgDirectory::open(&super::with_database(url, big_name)?).await?;
    let result = async {
        fill_postgres(empty.pool(), input, 0, password_hash).await?;
        eprintln!("  postgres : remplissage de {} comptes…", input.directory_users);
        let start = Instant::now();
        fill_postgres(big.pool(), input, input.directory_users, password_hash).await?;
        let fill_time = start.elapsed();
        measure_pair(
            "postgres",
            &empty,
            &big,
            input,
            (input.directory_users, fill_time, "COPY, one transaction, then ANALYZE"),
            table,
            PgExplain,
        )
        .await
    }
    .await;
    empty.pool().close().await;
    big.pool().close().await;
    result
}

async fn fill_postgres(pool: &sqlx::PgPool, input: &ScaleInput, users: usize, password_hash: &str) -> Result<()> {
    let now = Utc::now().to_rfc3339();
    let mut tx = pool.begin().await?;
    let establishments: Vec<(usize, &Uai)> = input.uais.iter().enumerate().collect();
    copy_in(
        &mut tx,
        "COPY establishments (uai, name, created_at) FROM STDIN WITH (FORMAT csv)",
        &establishments,
        |w, (i, uai)| w.write_record([uai.as_str(), &format!("Établissement n°{}", i + 1), &now]),
    )
    .await?;
    if users > 0 {
        let groups: Vec<(usize, &str)> = (0..input.uais.len())
            .flat_map(|e| SUBJECTS.iter().map(move |s| (e, *s)))
            .collect();
        copy_in(
            &mut tx,
            "COPY groups (id, uai, kind, name) FROM STDIN WITH (FORMAT csv)",
            &groups,
            |w, (e, s)| w.write_record([&group_id(*e, s).to_string(), input.uais[*e].as_str(), "subject", s]),
        )
        .await?;
    }
    let mut filler = Filler::new(input);
    let mut left = users;
    while left > 0 {
        let chunk = filler.chunk(left.min(FILL_CHUNK));
        left -= chunk.len();
        copy_in(
            &mut tx,
            "COPY users (id, sync_key, profile, source, protected, civility, last_name, first_name, last_name_fold, first_name_fold, subject, postal_code, mobile, email, login, password_hash, must_change_password, created_at, updated_at) FROM STDIN WITH (FORMAT csv)",
            &chunk,
            |w, u| {
                let opt = |v: &Option<String>| v.clone().unwrap_or_default();
                w.write_record([
                    u.id.to_string(),
                    u.sync_key.clone(),
                    u.profile.to_string(),
                    "csv".to_string(),
                    "f".to_string(),
                    u.civility.to_string(),
                    u.last_name.clone(),
                    u.first_name.clone(),
                    u.last_name_fold.clone(),
                    u.first_name_fold.clone(),
                    u.subject.unwrap_or_default().to_string(),
                    opt(&u.postal_code),
                    opt(&u.mobile),
                    opt(&u.email),
                    u.login.clone(),
                    password_hash.to_string(),
                    "t".to_string(),
                    now.clone(),
                    now.clone(),
                ])
            },
        )
        .await?;
        let memberships: Vec<(i64, usize)> = chunk
            .iter()
            .flat_map(|u| u.establishments.iter().map(move |e| (u.id, *e)))
            .collect();
        copy_in(
            &mut tx,
            "COPY memberships (user_id, uai, role) FROM STDIN WITH (FORMAT csv)",
            &memberships,
            |w, (id, e)| w.write_record([&id.to_string(), input.uais[*e].as_str(), "enseignant"]),
        )
        .await?;
        let group_members: Vec<(i64, i64)> = chunk
            .iter()
            .flat_map(|u| {
                u.establishments
                    .iter()
                    .filter_map(move |e| u.subject.map(|s| (group_id(*e, s), u.id)))
            })
            .collect();
        copy_in(
            &mut tx,
            "COPY group_members (group_id, user_id) FROM STDIN WITH (FORMAT csv)",
            &group_members,
            |w, (g, u)| w.write_record([g.to_string(), u.to_string()]),
        )
        .await?;
    }
    // Ids were given explicitly: the sequences must continue after them.
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT COALESCE(max(id), 0) + 1 FROM users), false)",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('groups', 'id'), (SELECT COALESCE(max(id), 0) + 1 FROM groups), false)",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // What autovacuum does within a minute of such a load.
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(())
}
