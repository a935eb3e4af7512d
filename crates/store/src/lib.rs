//! Storage of the directory behind one trait, with two real backends: SQLite
//! (the embedded default: one file, WAL) and PostgreSQL (scale, several app
//! servers). The [`service`] module runs an import against either in one
//! transaction; it is generic over [`Directory`], so both backends share every
//! rule and only the SQL differs.

use chrono::{DateTime, Utc};
use domain::keys::SyncKey;
use domain::person::{Attributes, ExistingMembership, GroupRef, Membership, Source};
use domain::plan::Snapshot;
use domain::values::Login;
use domain::vocabulary::{Channel, ImportSource, ImportStatus};
use domain::{Establishment, Profile, Uai};
use serde::Serialize;
use sqlx::Row;
use std::collections::HashMap;
use std::future::Future;

pub mod aaf;
pub mod accounts;
pub mod admin;
pub mod cas;
pub mod history;
pub mod postgres;
pub mod service;
pub mod sqlite;
mod statements;
#[doc(hidden)]
pub mod testing;
mod users;
pub mod write;

pub use users::UserRow;
pub(crate) use users::USER_COLUMNS;
pub mod web;

pub(crate) fn uai_strings(uais: &[Uai]) -> Vec<String> {
    uais.iter().map(|u| u.as_str().to_string()).collect()
}

/// A stored UAI read back; anything else is a corrupt row.
pub(crate) fn stored_uai(uai: &str) -> Result<Uai> {
    Uai::parse(uai).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}", database_message(.0))]
    Database(#[from] sqlx::Error),
    #[error("migration de la base : {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("adresse de base de données « {0} » non reconnue : utilisez sqlite://CHEMIN ou postgres://…")]
    BadUrl(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("donnée incohérente en base : {0}")]
    Corrupt(String),
    /// The database cannot serve: gone, unreachable or not migrated.
    #[error("{0}")]
    Unavailable(String),
}

/// Database failures an admin can act on, rather than a bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trouble {
    Unreachable,
    Busy,
    DiskFull,
}

fn trouble(e: &sqlx::Error) -> Option<Trouble> {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            Some(Trouble::Unreachable)
        }
        sqlx::Error::Database(db) => {
            let message = db.message();
            // SQLite's primary result codes 5, 6, 13; PostgreSQL's SQLSTATE 53100.
            match db.code().as_deref().unwrap_or_default() {
                "5" | "6" => Some(Trouble::Busy),
                "13" | "53100" => Some(Trouble::DiskFull),
                _ if message.contains("database is locked") => Some(Trouble::Busy),
                _ if message.contains("disk is full") || message.contains("No space left") => Some(Trouble::DiskFull),
                _ => None,
            }
        }
        _ => None,
    }
}

/// SQLite's "database is locked": another writer holds the lock.
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    trouble(e) == Some(Trouble::Busy)
}

/// What an admin can do about a database failure, in their words; the
/// driver's own message for the rest.
fn database_message(e: &sqlx::Error) -> String {
    const NOT_SAVED: &str = "l'opération n'a pas été enregistrée";
    match trouble(e) {
        Some(Trouble::Unreachable) => format!(
            "la base de données ne répond pas (serveur arrêté, réseau coupé ou connexion perdue) : {NOT_SAVED} ; vérifiez que la base tourne et que l'adresse --database est juste, puis recommencez"
        ),
        Some(Trouble::Busy) => format!(
            "la base SQLite est occupée par une autre opération (un autre import en cours ?) : {NOT_SAVED} ; recommencez quand elle sera terminée"
        ),
        Some(Trouble::DiskFull) => format!(
            "disque plein : {NOT_SAVED} ; libérez de la place sur le disque de la base de données puis recommencez"
        ),
        None => match e {
            sqlx::Error::Database(db) => format!("base de données : {}", db.message()),
            other => format!("base de données : {other}"),
        },
    }
}

impl StoreError {
    /// The database cannot serve now (gone, unreachable, busy, full): the
    /// web answers 503 rather than 500, and a retry later may succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(e) => trouble(e).is_some(),
            _ => false,
        }
    }

    /// Maps unique-constraint violations to messages an admin understands.
    pub fn from_sqlx(e: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(db) = &e {
            let message = db.message().to_string();
            let constraint = db.constraint().unwrap_or("").to_string();
            let on = |name: &str| {
                constraint == name || message.contains(name) || message.contains(&name.replace("users_", "users."))
            };
            if on("users_login_ci") || message.contains("lower(login)") {
                return StoreError::Conflict(
                    "un login est déjà attribué dans l'ENT (attribué entre-temps par une autre opération) : relancez l'import".into(),
                );
            }
            if on("users_sync_key") || message.contains("users.sync_key") {
                return StoreError::Conflict(
                    "une clé de synchronisation existe déjà (créée entre-temps par une autre opération) : relancez l'import".into(),
                );
            }
            if constraint == "establishments_pkey" || message.contains("establishments.uai") {
                return StoreError::Conflict("cet établissement existe déjà".into());
            }
        }
        StoreError::Database(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Upper bound of a prefix range over folded ASCII text.
pub(crate) fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{7f}")
}

/// A user to insert, with everything already decided by the plan.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub key: &'a SyncKey,
    pub profile: Profile,
    pub source: Source,
    pub protected: bool,
    pub attrs: &'a Attributes,
    pub login: &'a Login,
    pub password_hash: String,
    pub must_change_password: bool,
}

#[derive(Debug, Clone)]
pub struct UserUpdate<'a> {
    pub id: i64,
    pub attrs: &'a Attributes,
    pub reactivate: bool,
}

/// One line of the import history, written by every door (CLI, web, API,
/// AAF feed), for applied imports inside their transaction and for rejected
/// or failed ones afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ImportRecord {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub source: ImportSource,
    pub channel: Channel,
    pub actor: String,
    /// The web admin who ran it (owner of its result file).
    pub admin_id: Option<i64>,
    /// A profile id, or `aaf` for a feed (it holds several).
    pub profile: String,
    pub establishments: Vec<Uai>,
    pub complet: bool,
    /// The options as JSON, for the history page.
    pub options: String,
    pub file_name: String,
    pub file_size: i64,
    pub rows: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub merged: i64,
    pub deactivated: i64,
    pub skipped: i64,
    pub status: ImportStatus,
    pub error: Option<String>,
    /// Where the end-of-import notice goes.
    pub notify: Option<String>,
    /// The web job that applied it, written in the import's transaction:
    /// one applied import per job, whatever happens to the server.
    pub job_id: Option<i64>,
}

impl ImportRecord {
    /// The counts of an applied import, from its report (CSV or AAF).
    pub fn count(&mut self, tally: domain::pipeline::Tally) {
        let n = |count: usize| i64::try_from(count).unwrap_or(i64::MAX);
        self.rows = n(tally.rows);
        self.created = n(tally.created);
        self.updated = n(tally.updated);
        self.unchanged = n(tally.unchanged);
        self.merged = n(tally.merged);
        self.deactivated = n(tally.deactivated);
        self.skipped = n(tally.skipped);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    pub id: i64,
    pub sync_key: String,
    pub login: String,
    pub last_name: String,
    pub first_name: String,
    pub profile: Profile,
    pub source: Source,
    pub establishments: Vec<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A pupil ↔ person in charge link, by account ids.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredLink {
    pub parent_id: i64,
    pub child_id: i64,
    pub relation: Option<String>,
    pub legal_guardian: bool,
    pub financial: bool,
    pub contact: bool,
}

/// Search filters (guide §7 prerequisite): prefixes, accents and case ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserQuery {
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub login: Option<String>,
    pub establishment: Option<Uai>,
    /// Members of the class of this name (pupils, and the teachers the feed
    /// gives it), in the establishment above when one is given.
    pub class: Option<String>,
    pub profiles: Vec<Profile>,
    pub limit: i64,
    pub offset: i64,
}

/// Reads and writes an import transaction needs; each backend implements them
/// with its own SQL, the orchestration in [`service`] is shared.
pub trait DirectoryTx: Send {
    /// Serialises imports that touch the same establishments.
    fn lock_establishments(&mut self, uais: &[Uai]) -> impl Future<Output = Result<()>> + Send;
    /// Serialises imports that could hand out the same sync keys or logins
    /// (logins are unique in the whole ENT, across establishments).
    fn lock_identities(&mut self, keys: &[String], logins: &[String]) -> impl Future<Output = Result<()>> + Send;
    /// Every key and login at once, until the commit: for a run too large to
    /// lock its identities one by one (an academy's feed).
    fn lock_every_identity(&mut self) -> impl Future<Output = Result<()>> + Send;
    /// Tells the query planner what this transaction wrote: a run that
    /// fills an empty directory batch by batch would otherwise be planned as
    /// if its tables were still empty (PostgreSQL then scans them whole).
    fn refresh_statistics(&mut self) -> impl Future<Output = Result<()>> + Send;
    fn known_establishments(&mut self, uais: &[Uai]) -> impl Future<Output = Result<Vec<Uai>>> + Send;
    /// The names of these establishments (those that exist).
    fn establishment_names(&mut self, uais: &[Uai]) -> impl Future<Output = Result<Vec<(Uai, String)>>> + Send;
    /// Writes that an import attached an account active elsewhere, with its
    /// audit row: what the other establishments' admins are told.
    fn record_attachment(&mut self, attachment: &history::NewAttachment) -> impl Future<Output = Result<()>> + Send;
    fn users_by_keys(&mut self, keys: &[String]) -> impl Future<Output = Result<Vec<UserRow>>> + Send;
    /// (former key, current key) of the accounts a reconciliation gave a new
    /// key, for these former keys.
    fn former_keys(&mut self, keys: &[String]) -> impl Future<Output = Result<Vec<(String, String)>>> + Send;
    fn memberships_of(
        &mut self,
        user_ids: &[i64],
    ) -> impl Future<Output = Result<Vec<(i64, ExistingMembership)>>> + Send;
    fn groups_of(&mut self, user_ids: &[i64]) -> impl Future<Output = Result<Vec<(i64, GroupRef)>>> + Send;
    /// Owners (sync keys) of these exact logins.
    fn login_owners(&mut self, logins: &[String]) -> impl Future<Output = Result<Vec<(String, String)>>> + Send;
    /// Logins between `base` and `base:` for each base: a superset of `base` and
    /// `base<digits>`, fetched by index range.
    fn logins_near(&mut self, bases: &[String]) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// For each base, the base itself if taken and its login with the highest
    /// number (`nmartin41` rather than every `nmartin<digits>`), each found by
    /// one index descent: the cost does not grow with the number of homonyms
    /// in the directory. For bases that do not end with a digit (a base ending
    /// with one, `abc1`, would mistake `abc12` for `abc` + 12).
    fn logins_highest(&mut self, bases: &[String]) -> impl Future<Output = Result<Vec<String>>> + Send;
    fn groups_in(&mut self, uais: &[Uai]) -> impl Future<Output = Result<Vec<(i64, GroupRef)>>> + Send;
    /// Keys of the active csv users of a profile in these establishments.
    fn complet_scope(&mut self, profile: Profile, uais: &[Uai]) -> impl Future<Output = Result<Vec<String>>> + Send;

    fn insert_import(&mut self, record: &ImportRecord) -> impl Future<Output = Result<i64>> + Send;
    /// Rewrites the history line of an import still in this transaction
    /// (a feed written batch by batch knows its counts at the end).
    fn update_import(&mut self, id: i64, record: &ImportRecord) -> impl Future<Output = Result<()>> + Send;
    /// The lines the import skipped (a CSV), kept with its result file.
    fn insert_skipped_lines(&mut self, import_id: i64, content: &[u8]) -> impl Future<Output = Result<()>> + Send;
    /// Keeps the result file and the credential slips (JSON) of an import
    /// until `expires_at`.
    fn insert_import_result(
        &mut self,
        import_id: i64,
        content: &[u8],
        slips: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn insert_groups(&mut self, groups: &[GroupRef]) -> impl Future<Output = Result<()>> + Send;
    /// Inserts users and returns their ids, in input order.
    fn insert_users(
        &mut self,
        users: &[NewUser<'_>],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;
    fn update_users(
        &mut self,
        updates: &[UserUpdate<'_>],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Gives accounts another profile (the AAF feed moves people between
    /// teacher and staff).
    fn set_profiles(&mut self, rows: &[(i64, Profile)], now: DateTime<Utc>) -> impl Future<Output = Result<()>> + Send;
    fn upsert_memberships(&mut self, rows: &[(i64, Membership)]) -> impl Future<Output = Result<()>> + Send;
    fn add_group_members(&mut self, rows: &[(i64, i64)]) -> impl Future<Output = Result<()>> + Send;
    /// Removes these (group id, user id) memberships.
    fn remove_group_members(&mut self, rows: &[(i64, i64)]) -> impl Future<Output = Result<()>> + Send;
    fn deactivate_memberships(
        &mut self,
        rows: &[(i64, Uai)],
        import_id: i64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn deactivate_users(
        &mut self,
        ids: &[i64],
        import_id: i64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Ends the links of the `replaced` accounts, then writes `links`
    /// (added, or their flags updated).
    /// Deletes these (parent, child) links, then writes these (new or changed).
    fn write_links(&mut self, removed: &[(i64, i64)], links: &[StoredLink]) -> impl Future<Output = Result<()>> + Send;
    /// The links of these accounts, on either side.
    fn links_of(&mut self, ids: &[i64]) -> impl Future<Output = Result<Vec<StoredLink>>> + Send;
    fn commit(self) -> impl Future<Output = Result<()>> + Send;
}

/// A directory database.
pub trait Directory: Send + Sync {
    type Tx<'c>: DirectoryTx + 'c
    where
        Self: 'c;
    fn begin(&self) -> impl Future<Output = Result<Self::Tx<'_>>> + Send;
    /// A transaction that will write. On SQLite it first waits for this
    /// process's writer turn ([`sqlite::WriterQueue`]), before it takes a
    /// connection: waiting writers never starve the pages' reads.
    fn begin_writing(&self) -> impl Future<Output = Result<Self::Tx<'_>>> + Send;
    fn backend(&self) -> &'static str;

    fn add_establishment(
        &self,
        establishment: &Establishment,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn list_establishments(&self) -> impl Future<Output = Result<Vec<Establishment>>> + Send;
    /// Users of an establishment and profile with an active membership, by name.
    fn export_users(&self, uai: &Uai, profile: Profile) -> impl Future<Output = Result<Vec<UserRow>>> + Send;
    fn search_users(&self, query: &UserQuery) -> impl Future<Output = Result<Vec<UserSummary>>> + Send;
    /// Reactivates what a Complet import deactivated; returns the accounts restored.
    fn restore_import(&self, import_id: i64, now: DateTime<Utc>) -> impl Future<Output = Result<u64>> + Send;
    /// Deletes accounts deactivated before `before` (retention over).
    fn purge_deactivated(&self, before: DateTime<Utc>) -> impl Future<Output = Result<u64>> + Send;
    fn password_hash(&self, login: &str) -> impl Future<Output = Result<Option<String>>> + Send;
    fn count_users(&self) -> impl Future<Output = Result<i64>> + Send;
    /// Refuses at once, without a query, when the storage is gone (an SQLite
    /// file deleted under the process): checked before each web request.
    fn storage_present(&self) -> Result<()>;
    /// Whether the database answers, is still there and has the schema this
    /// program expects (every embedded migration applied): `/readyz`.
    fn readiness(&self) -> impl Future<Output = Result<()>> + Send;
    /// Copies committed pages from SQLite's write-ahead log into the database,
    /// without waiting for readers. Automatic checkpoints are off (they ran inside
    /// an import's commit, the more costly the bigger the directory): each door
    /// calls this after its writes instead. Nothing to do on PostgreSQL.
    fn checkpoint(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

/// Reads everything a [`domain::plan::Lookup`] asks for, by key, login and
/// establishment: never a scan of the directory.
pub async fn fetch_snapshot<T: DirectoryTx>(tx: &mut T, lookup: &domain::plan::Lookup) -> Result<Snapshot> {
    let mut snapshot = Snapshot {
        establishments: tx
            .known_establishments(&lookup.establishments)
            .await?
            .into_iter()
            .collect(),
        ..Snapshot::default()
    };
    let mut keys: Vec<String> = lookup.keys.iter().map(|k| k.as_str().to_string()).collect();
    if let Some((profile, uais)) = &lookup.complet_scope {
        let scope = tx.complet_scope(*profile, uais).await?;
        snapshot.scope_keys = scope.iter().cloned().map(SyncKey::from_stored).collect();
        keys.extend(scope);
        keys.sort();
        keys.dedup();
    }
    // A key a reconciliation replaced still finds its account.
    let former = tx.former_keys(&keys).await?;
    keys.extend(former.iter().map(|(_, current)| current.clone()));
    let rows = tx.users_by_keys(&keys).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut memberships: HashMap<i64, Vec<ExistingMembership>> = HashMap::new();
    for (id, m) in tx.memberships_of(&ids).await? {
        memberships.entry(id).or_default().push(m);
    }
    if lookup.establishment_names {
        let member_of: std::collections::BTreeSet<Uai> = memberships
            .values()
            .flatten()
            .filter(|m| m.active)
            .map(|m| m.uai.clone())
            .collect();
        let member_of: Vec<Uai> = member_of.into_iter().collect();
        snapshot.establishment_names = tx.establishment_names(&member_of).await?.into_iter().collect();
    }
    let mut groups: HashMap<i64, Vec<GroupRef>> = HashMap::new();
    for (id, g) in tx.groups_of(&ids).await? {
        groups.entry(id).or_default().push(g);
    }
    for row in rows {
        let user = domain::person::ExistingUser {
            id: row.id,
            key: SyncKey::from_stored(row.sync_key.clone()),
            profile: row.profile()?,
            source: row.source()?,
            protected: row.protected,
            active: row.active,
            login: Login::from_stored(row.login.clone()),
            attrs: row.attributes()?,
            memberships: memberships.remove(&row.id).unwrap_or_default(),
            groups: groups.remove(&row.id).unwrap_or_default(),
        };
        snapshot.users.insert(user.key.clone(), user);
    }
    for (former_key, current) in former {
        if let Some(user) = snapshot.users.get(&SyncKey::from_stored(current)).cloned() {
            snapshot.users.entry(SyncKey::from_stored(former_key)).or_insert(user);
        }
    }
    for (login, key) in tx.login_owners(&lookup.logins).await? {
        snapshot.login_owners.insert(login, SyncKey::from_stored(key));
    }
    // The highest-numbered login of each base is enough: the allocator hands
    // out the numbers after it. A base ending with a digit is rare and keeps
    // the range read of every login it could collide with.
    let (ends_with_digit, plain): (Vec<String>, Vec<String>) = lookup
        .login_bases
        .iter()
        .cloned()
        .partition(|b| b.ends_with(|c: char| c.is_ascii_digit()));
    let bases: std::collections::HashSet<&str> = lookup.login_bases.iter().map(String::as_str).collect();
    let mut taken = tx.logins_highest(&plain).await?;
    if !ends_with_digit.is_empty() {
        taken.extend(tx.logins_near(&ends_with_digit).await?);
    }
    snapshot.taken_logins = taken
        .into_iter()
        .filter(|l| domain::plan::collides_with_base(l, &bases))
        .collect();
    snapshot.groups = tx
        .groups_in(&lookup.establishments)
        .await?
        .into_iter()
        .map(|(_, g)| g)
        .collect();
    Ok(snapshot)
}

/// Opens the database a URL names: `sqlite://PATH` (created and migrated if
/// missing) or `postgres://…`.
pub enum AnyDirectory {
    Sqlite(sqlite::SqliteDirectory),
    Postgres(postgres::PgDirectory),
}

impl AnyDirectory {
    pub async fn open(url: &str) -> Result<AnyDirectory> {
        if url.starts_with("sqlite:") {
            Ok(AnyDirectory::Sqlite(sqlite::SqliteDirectory::open(url).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(AnyDirectory::Postgres(postgres::PgDirectory::open(url).await?))
        } else {
            Err(StoreError::BadUrl(url.to_string()))
        }
    }
}

/// Folds a name for indexed prefix search ("Éloïse" → "eloise").
pub fn fold_for_search(s: &str) -> String {
    domain::text::fold(s)
}

pub(crate) fn group_row<R: Row>(r: &R) -> Result<(i64, GroupRef)>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: sqlx::Type<R::Database> + for<'a> sqlx::Decode<'a, R::Database>,
    String: sqlx::Type<R::Database> + for<'a> sqlx::Decode<'a, R::Database>,
{
    let uai: String = r.try_get("uai")?;
    let kind: String = r.try_get("kind")?;
    Ok((
        r.try_get("id")?,
        GroupRef {
            uai: Uai::parse(&uai).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            kind: kind.parse().map_err(StoreError::Corrupt)?,
            name: r.try_get("name")?,
        },
    ))
}

pub(crate) fn establishment_row<R: Row>(r: &R) -> Result<Establishment>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: sqlx::Type<R::Database> + for<'a> sqlx::Decode<'a, R::Database>,
{
    let uai: String = r.try_get("uai")?;
    Ok(Establishment {
        uai: Uai::parse(&uai).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        name: r.try_get("name")?,
    })
}

pub(crate) fn summary_row<R: Row>(r: &R, establishments: &mut HashMap<i64, Vec<String>>) -> Result<UserSummary>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: sqlx::Type<R::Database> + for<'a> sqlx::Decode<'a, R::Database>,
    bool: sqlx::Type<R::Database> + for<'a> sqlx::Decode<'a, R::Database>,
    String: sqlx::Type<R::Database> + for<'a> sqlx::Decode<'a, R::Database>,
    DateTime<Utc>: sqlx::Type<R::Database> + for<'a> sqlx::Decode<'a, R::Database>,
    Option<DateTime<Utc>>: sqlx::Type<R::Database> + for<'a> sqlx::Decode<'a, R::Database>,
{
    let id: i64 = r.try_get("id")?;
    let profile: String = r.try_get("profile")?;
    let source: String = r.try_get("source")?;
    Ok(UserSummary {
        id,
        sync_key: r.try_get("sync_key")?,
        login: r.try_get("login")?,
        last_name: r.try_get("last_name")?,
        first_name: r.try_get("first_name")?,
        profile: profile.parse().map_err(|_| StoreError::Corrupt(profile.clone()))?,
        source: stored_word(&source)?,
        establishments: establishments.remove(&id).unwrap_or_default(),
        active: r.try_get("active")?,
        created_at: r.try_get("created_at")?,
        last_login_at: r.try_get("last_login_at")?,
    })
}

/// A stored word (status, source, channel) read back into its enum; any other
/// value is a corrupt row.
pub(crate) fn stored_word<T>(value: &str) -> Result<T>
where
    T: std::str::FromStr<Err = domain::vocabulary::UnknownWord>,
{
    value
        .parse()
        .map_err(|e: domain::vocabulary::UnknownWord| StoreError::Corrupt(e.to_string()))
}
