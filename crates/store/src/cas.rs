//! The CAS server's tables (issue 14): the registered services, the single
//! sign-on sessions and the tickets. Every state lives in the database, so
//! that two servers on one PostgreSQL serve the same people: a ticket issued
//! by one is validated by the other, and a ticket is spent by one UPDATE,
//! which only one of two simultaneous validations can win.
//!
//! One SQL text serves both backends, as in [`crate::accounts`].

use crate::admin::NewAudit;
use crate::{Result, StoreError};
use chrono::{DateTime, Utc};
use domain::cas::{Attribute, TicketKind};
use domain::Uai;
use std::future::Future;

/// A service the system admin registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasService {
    pub name: String,
    /// Normalised by [`domain::cas::check_url_prefix`].
    pub url_prefix: String,
    /// Whose people may use it; empty: every establishment's.
    pub establishments: Vec<Uai>,
    pub attributes: Vec<Attribute>,
    /// May ask for proxy tickets (an ENT portal calling its services).
    pub proxy: bool,
}

/// A single sign-on session still alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSession {
    pub user_id: i64,
    /// When the person typed their password.
    pub authenticated_at: DateTime<Utc>,
    /// Signed in with a distributed password, not changed yet.
    pub password_change_pending: bool,
}

/// A ticket to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket<'a> {
    pub ticket_hash: &'a str,
    pub kind: TicketKind,
    pub session_hash: &'a str,
    pub service: &'a str,
    pub from_new_login: bool,
    /// A PT's or a PGT's proxy chain, the latest first.
    pub proxies: &'a [String],
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A ticket as its first validation found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTicket {
    pub kind: TicketKind,
    pub session_hash: String,
    pub proxies: Vec<String>,
    pub user_id: i64,
    pub service: String,
    pub from_new_login: bool,
    pub expires_at: DateTime<Utc>,
    pub authenticated_at: DateTime<Utc>,
}

/// A ticket a service validated in a session: where the single logout goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedTicket {
    pub service: String,
    pub ticket: String,
}

pub trait CasStore: Send + Sync {
    fn cas_services(&self) -> impl Future<Output = Result<Vec<CasService>>> + Send;
    /// Registers a service with its audit row; a taken name is a `Conflict`.
    fn add_cas_service(
        &self,
        service: &CasService,
        audit: &NewAudit,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// False when no service has that name.
    fn remove_cas_service(&self, name: &str, audit: &NewAudit) -> impl Future<Output = Result<bool>> + Send;
    /// The structure types (`COLLEGE`…) of establishments, for the `schools` attribute.
    fn structure_types(&self, uais: &[Uai]) -> impl Future<Output = Result<Vec<(String, Option<String>)>>> + Send;
    fn open_sso_session(
        &self,
        id_hash: &str,
        user_id: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        password_change_pending: bool,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The session if neither its absolute lifetime nor its idle one (last
    /// use before `idle_since`) has run out; the use is recorded.
    fn sso_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<SsoSession>>> + Send;
    fn finish_password_change(&self, id_hash: &str) -> impl Future<Output = Result<()>> + Send;
    /// Ends the session (its tickets go with it) and says which services validated one.
    fn close_sso_session(&self, id_hash: &str) -> impl Future<Output = Result<Vec<ValidatedTicket>>> + Send;
    fn issue_ticket(&self, ticket: &NewTicket<'_>) -> impl Future<Output = Result<()>> + Send;
    /// Spends a service or proxy ticket: the first call gets it, every later
    /// one `None`, whatever the outcome of the validation (specification
    /// §3.1.1). The ticket itself is kept from then on (spent, so harmless):
    /// the single logout names it to the service it was issued for, unless
    /// the validation refuses it ([`CasStore::forget_presented_ticket`]).
    fn consume_ticket(
        &self,
        ticket_hash: &str,
        ticket: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<IssuedTicket>>> + Send;
    /// A refused validation: the single logout does not name that ticket.
    fn forget_presented_ticket(&self, ticket_hash: &str) -> impl Future<Output = Result<()>> + Send;
    /// A proxy-granting ticket still valid (used as often as needed until
    /// its session ends).
    fn proxy_granting_ticket(
        &self,
        ticket_hash: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<IssuedTicket>>> + Send;
    /// Keeps a "mot de passe oublié" link's token (hashed), with its audit row.
    fn create_password_reset(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at: DateTime<Utc>,
        audit: &NewAudit,
    ) -> impl Future<Output = Result<()>> + Send;
    /// How many links were sent to this account since then.
    fn password_resets_since(&self, user_id: i64, since: DateTime<Utc>) -> impl Future<Output = Result<i64>> + Send;
    /// Spends a link: its account, the first time only, before it expires.
    fn use_password_reset(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<i64>>> + Send;
    /// Deletes the sessions past their lifetimes (and so their tickets), and
    /// the expired "mot de passe oublié" links.
    fn purge_sso_sessions(
        &self,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;
}

fn ticket_of(
    kind: &str,
    session_hash: String,
    proxies: &str,
    service: String,
    from_new_login: bool,
    expires_at: DateTime<Utc>,
    session: Option<(i64, DateTime<Utc>)>,
) -> Result<Option<IssuedTicket>> {
    let Some((user_id, authenticated_at)) = session else {
        return Ok(None);
    };
    let kind =
        TicketKind::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("type de ticket inconnu : {kind}")))?;
    let proxies =
        serde_json::from_str(proxies).map_err(|e| StoreError::Corrupt(format!("chaîne de proxys illisible : {e}")))?;
    Ok(Some(IssuedTicket {
        kind,
        session_hash,
        proxies,
        user_id,
        service,
        from_new_login,
        expires_at,
        authenticated_at,
    }))
}

fn service_of(
    name: String,
    url_prefix: String,
    establishments: String,
    attributes: String,
    proxy: bool,
) -> Result<CasService> {
    let establishments = establishments
        .split(',')
        .filter(|u| !u.is_empty())
        .map(crate::stored_uai)
        .collect::<Result<Vec<_>>>()?;
    let attributes = domain::cas::parse_attributes(&attributes).map_err(StoreError::Corrupt)?;
    Ok(CasService {
        name,
        url_prefix,
        establishments,
        attributes,
        proxy,
    })
}

macro_rules! impl_cas {
    ($store:ty, $sql:path) => {
        impl CasStore for $store {
            async fn cas_services(&self) -> Result<Vec<CasService>> {
                let rows: Vec<(String, String, String, String, bool)> = sqlx::query_as(&$sql(
                    "SELECT name, url_prefix, establishments, attributes, proxy FROM cas_services ORDER BY name",
                ))
                .fetch_all(self.pool())
                .await?;
                rows.into_iter()
                    .map(|(name, url, uais, attributes, proxy)| service_of(name, url, uais, attributes, proxy))
                    .collect()
            }

            async fn add_cas_service(&self, service: &CasService, audit: &NewAudit, now: DateTime<Utc>) -> Result<()> {
                let mut tx = self.pool().begin().await?;
                let uais: Vec<&str> = service.establishments.iter().map(|u| u.as_str()).collect();
                sqlx::query(&$sql(
                    "INSERT INTO cas_services (name, url_prefix, establishments, attributes, proxy, created_at, created_by) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                ))
                .bind(&service.name)
                .bind(&service.url_prefix)
                .bind(uais.join(","))
                .bind(domain::cas::attribute_list(&service.attributes))
                .bind(service.proxy)
                .bind(now)
                .bind(&audit.actor)
                .execute(&mut *tx)
                .await
                .map_err(|e| match StoreError::from_sqlx(e) {
                    StoreError::Database(sqlx::Error::Database(db)) if db.is_unique_violation() => StoreError::Conflict(format!(
                        "un service s'appelle déjà « {} » : choisissez un autre nom ou retirez l'ancien",
                        service.name
                    )),
                    other => other,
                })?;
                <$store>::write_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn remove_cas_service(&self, name: &str, audit: &NewAudit) -> Result<bool> {
                let mut tx = self.pool().begin().await?;
                let removed = sqlx::query(&$sql("DELETE FROM cas_services WHERE name = ?"))
                    .bind(name)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if removed == 0 {
                    return Ok(false);
                }
                <$store>::write_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn structure_types(&self, uais: &[Uai]) -> Result<Vec<(String, Option<String>)>> {
                let mut types = Vec::with_capacity(uais.len());
                for uai in uais {
                    let kind: Option<Option<String>> =
                        sqlx::query_scalar(&$sql("SELECT structure_type FROM establishments WHERE uai = ?"))
                            .bind(uai.as_str())
                            .fetch_optional(self.pool())
                            .await?;
                    types.push((uai.to_string(), kind.flatten()));
                }
                Ok(types)
            }

            async fn open_sso_session(
                &self,
                id_hash: &str,
                user_id: i64,
                now: DateTime<Utc>,
                expires_at: DateTime<Utc>,
                password_change_pending: bool,
            ) -> Result<()> {
                sqlx::query(&$sql(
                    "INSERT INTO sso_sessions (id_hash, user_id, authenticated_at, last_seen_at, expires_at, password_change_pending) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                ))
                .bind(id_hash)
                .bind(user_id)
                .bind(now)
                .bind(now)
                .bind(expires_at)
                .bind(password_change_pending)
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn sso_session(&self, id_hash: &str, now: DateTime<Utc>, idle_since: DateTime<Utc>) -> Result<Option<SsoSession>> {
                let row: Option<(i64, DateTime<Utc>, bool)> = sqlx::query_as(&$sql(
                    "UPDATE sso_sessions SET last_seen_at = ? WHERE id_hash = ? AND expires_at > ? AND last_seen_at > ? \
                     RETURNING user_id, authenticated_at, password_change_pending",
                ))
                .bind(now)
                .bind(id_hash)
                .bind(now)
                .bind(idle_since)
                .fetch_optional(self.pool())
                .await?;
                Ok(row.map(|(user_id, authenticated_at, password_change_pending)| SsoSession {
                    user_id,
                    authenticated_at,
                    password_change_pending,
                }))
            }

            async fn finish_password_change(&self, id_hash: &str) -> Result<()> {
                sqlx::query(&$sql("UPDATE sso_sessions SET password_change_pending = ? WHERE id_hash = ?"))
                    .bind(false)
                    .bind(id_hash)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn close_sso_session(&self, id_hash: &str) -> Result<Vec<ValidatedTicket>> {
                let mut tx = self.pool().begin().await?;
                let validated: Vec<(String, String)> = sqlx::query_as(&$sql(
                    "SELECT service, validated_ticket FROM cas_tickets \
                     WHERE session_hash = ? AND validated_ticket IS NOT NULL ORDER BY created_at",
                ))
                .bind(id_hash)
                .fetch_all(&mut *tx)
                .await?;
                sqlx::query(&$sql("DELETE FROM cas_tickets WHERE session_hash = ?"))
                    .bind(id_hash)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&$sql("DELETE FROM sso_sessions WHERE id_hash = ?"))
                    .bind(id_hash)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(validated
                    .into_iter()
                    .map(|(service, ticket)| ValidatedTicket { service, ticket })
                    .collect())
            }

            async fn issue_ticket(&self, ticket: &NewTicket<'_>) -> Result<()> {
                let proxies = serde_json::to_string(ticket.proxies).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query(&$sql(
                    "INSERT INTO cas_tickets (ticket_hash, session_hash, kind, proxies, service, from_new_login, created_at, expires_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ))
                .bind(ticket.ticket_hash)
                .bind(ticket.session_hash)
                .bind(ticket.kind.code())
                .bind(proxies)
                .bind(ticket.service)
                .bind(ticket.from_new_login)
                .bind(ticket.now)
                .bind(ticket.expires_at)
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn consume_ticket(&self, ticket_hash: &str, ticket: &str, now: DateTime<Utc>) -> Result<Option<IssuedTicket>> {
                let spent: Option<(String, String, String, String, bool, DateTime<Utc>)> = sqlx::query_as(&$sql(
                    "UPDATE cas_tickets SET consumed_at = ?, validated_ticket = ? \
                     WHERE ticket_hash = ? AND consumed_at IS NULL AND kind <> 'PGT' \
                     RETURNING kind, session_hash, proxies, service, from_new_login, expires_at",
                ))
                .bind(now)
                .bind(ticket)
                .bind(ticket_hash)
                .fetch_optional(self.pool())
                .await?;
                let Some((kind, session_hash, proxies, service, from_new_login, expires_at)) = spent else {
                    return Ok(None);
                };
                let session: Option<(i64, DateTime<Utc>)> =
                    sqlx::query_as(&$sql("SELECT user_id, authenticated_at FROM sso_sessions WHERE id_hash = ?"))
                        .bind(&session_hash)
                        .fetch_optional(self.pool())
                        .await?;
                ticket_of(&kind, session_hash, &proxies, service, from_new_login, expires_at, session)
            }

            async fn forget_presented_ticket(&self, ticket_hash: &str) -> Result<()> {
                sqlx::query(&$sql("UPDATE cas_tickets SET validated_ticket = NULL WHERE ticket_hash = ?"))
                    .bind(ticket_hash)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn proxy_granting_ticket(&self, ticket_hash: &str, now: DateTime<Utc>) -> Result<Option<IssuedTicket>> {
                type Row = (String, String, String, String, bool, DateTime<Utc>, i64, DateTime<Utc>);
                let found: Option<Row> = sqlx::query_as(&$sql(
                    "SELECT t.kind, t.session_hash, t.proxies, t.service, t.from_new_login, t.expires_at, s.user_id, s.authenticated_at \
                     FROM cas_tickets t JOIN sso_sessions s ON s.id_hash = t.session_hash \
                     WHERE t.ticket_hash = ? AND t.kind = 'PGT' AND t.expires_at > ? AND s.expires_at > ?",
                ))
                .bind(ticket_hash)
                .bind(now)
                .bind(now)
                .fetch_optional(self.pool())
                .await?;
                let Some((kind, session_hash, proxies, service, from_new_login, expires_at, user_id, authenticated_at)) = found else {
                    return Ok(None);
                };
                let session = Some((user_id, authenticated_at));
                ticket_of(&kind, session_hash, &proxies, service, from_new_login, expires_at, session)
            }

            async fn create_password_reset(
                &self,
                token_hash: &str,
                user_id: i64,
                expires_at: DateTime<Utc>,
                audit: &NewAudit,
            ) -> Result<()> {
                let mut tx = self.pool().begin().await?;
                sqlx::query(&$sql(
                    "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                ))
                .bind(token_hash)
                .bind(user_id)
                .bind(audit.at)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
                <$store>::write_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn password_resets_since(&self, user_id: i64, since: DateTime<Utc>) -> Result<i64> {
                Ok(sqlx::query_scalar(&$sql(
                    "SELECT count(*) FROM password_resets WHERE user_id = ? AND created_at >= ?",
                ))
                .bind(user_id)
                .bind(since)
                .fetch_one(self.pool())
                .await?)
            }

            async fn use_password_reset(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<i64>> {
                Ok(sqlx::query_scalar(&$sql(
                    "UPDATE password_resets SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? \
                     RETURNING user_id",
                ))
                .bind(now)
                .bind(token_hash)
                .bind(now)
                .fetch_optional(self.pool())
                .await?)
            }

            async fn purge_sso_sessions(&self, now: DateTime<Utc>, idle_since: DateTime<Utc>) -> Result<u64> {
                let mut tx = self.pool().begin().await?;
                let gone = "SELECT id_hash FROM sso_sessions WHERE expires_at <= ? OR last_seen_at <= ?";
                sqlx::query(&$sql(&format!("DELETE FROM cas_tickets WHERE session_hash IN ({gone})")))
                    .bind(now)
                    .bind(idle_since)
                    .execute(&mut *tx)
                    .await?;
                let purged = sqlx::query(&$sql("DELETE FROM sso_sessions WHERE expires_at <= ? OR last_seen_at <= ?"))
                    .bind(now)
                    .bind(idle_since)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(&$sql("DELETE FROM password_resets WHERE expires_at <= ?"))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(purged)
            }
        }
    };
}

impl_cas!(crate::sqlite::SqliteDirectory, crate::sqlite::sql);
impl_cas!(crate::postgres::PgDirectory, crate::postgres::sql);
