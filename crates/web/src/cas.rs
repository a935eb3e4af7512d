//! The CAS server's door (Apereo CAS protocol 1.0, 2.0 and 3.0) under
//! `/cas`: the people's sign-in page and its first-sign-in password change,
//! service tickets, their validation in the three formats, the logout. Every
//! rule is in [`app::cas`] and [`domain::cas`]; this module reads parameters
//! and cookies, runs the Argon2id work off the async threads and renders.

use crate::auth::{cookie, same_secret};
use crate::error::AppError;
use crate::{AppState, Backend};
use app::accounts::{PasswordChangeError, SignInFailure};
use app::cas::{CasSettings, TicketRefusal, Validation};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use domain::cas::{self as protocol, Failure, Success};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The single sign-on cookie (the ticket-granting cookie of the specification).
const SSO_COOKIE: &str = "annuaire_cas";
/// The sign-in forms' CSRF token (double submit: the cookie and the field).
const FORM_COOKIE: &str = "annuaire_cas_formulaire";

/// The address a request came from: the peer, or the client a trusted
/// reverse proxy names in `X-Forwarded-For` ([`crate::WebConfig::forwarded_by`]).
/// Without either (a request built in a test), the unspecified address,
/// which no account's allowed ranges contain.
pub struct ClientAddress(pub IpAddr);

impl<D: Send + Sync> FromRequestParts<AppState<D>> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<D>) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        Ok(ClientAddress(client_address(
            peer,
            &parts.headers,
            &state.config.forwarded_by,
        )))
    }
}

/// Walks `X-Forwarded-For` from the right while the hop is a trusted proxy:
/// the first untrusted address is the client (one a client wrote itself on
/// the left is never believed).
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    hops.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer)
}

fn sso_cookie(value: String, max_age: i64, secure: bool) -> Cookie<'static> {
    // Lax, not Strict: the browser comes back from a service's redirect, a
    // cross-site navigation that must carry the session.
    Cookie::build((SSO_COOKIE, value))
        .path("/cas")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age))
        .secure(secure)
        .build()
}

fn form_cookie(value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((FORM_COOKIE, value))
        .path("/cas")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(3600))
        .secure(secure)
        .build()
}

/// A parameter the specification calls "set" (`renew`, `gateway`).
fn is_set(value: &Option<String>) -> bool {
    value
        .as_deref()
        .is_some_and(|v| !v.eq_ignore_ascii_case("false") && v != "0")
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    service: Option<String>,
    renew: Option<String>,
    gateway: Option<String>,
    method: Option<String>,
}

/// What the pages carry from one form to the next.
#[derive(Clone, Default)]
struct Request {
    service: Option<String>,
    renew: bool,
    post: bool,
}

impl Request {
    fn of(service: Option<String>, renew: &Option<String>, method: &Option<String>) -> Request {
        Request {
            service: service.filter(|s| !s.trim().is_empty()),
            renew: is_set(renew),
            post: method.as_deref().is_some_and(|m| m.eq_ignore_ascii_case("post")),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "cas_login.html")]
struct LoginPage {
    ent_name: String,
    csrf: String,
    error: Option<String>,
    username: String,
    service: Option<String>,
    service_name: Option<String>,
    renew: bool,
    post: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "cas_change.html")]
struct ChangePage {
    ent_name: String,
    csrf: String,
    error: Option<String>,
    service: Option<String>,
    post: bool,
    min_len: usize,
}

#[derive(Template, WebTemplate)]
#[template(path = "cas_message.html")]
struct MessagePage {
    ent_name: String,
    title: String,
    message: String,
    error: bool,
    signed_in: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "cas_post.html")]
struct PostPage {
    ent_name: String,
    service: String,
    service_name: String,
    ticket: String,
}

/// The pages' policy: forms may lead to this server and to the service the
/// person is signing in to (the sign-in's redirect, the `method=POST` form).
fn with_policy(response: impl IntoResponse, service: Option<&str>) -> Response {
    let mut response = response.into_response();
    let target = service.and_then(protocol::origin).unwrap_or_default();
    let policy = crate::CONTENT_SECURITY_POLICY.replace("form-action 'self'", &format!("form-action 'self' {target}"));
    if let Ok(value) = HeaderValue::from_str(policy.trim()) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

impl<D> AppState<D> {
    fn cas(&self) -> &CasSettings {
        &self.config.cas
    }
}

fn login_form<D>(
    state: &AppState<D>,
    request: &Request,
    service_name: Option<String>,
    error: Option<String>,
    username: String,
) -> Response {
    let csrf = crate::auth::new_token();
    let page = LoginPage {
        ent_name: state.config.ent_name.clone(),
        csrf: csrf.clone(),
        error,
        username,
        service: request.service.clone(),
        service_name,
        renew: request.renew,
        post: request.post,
    };
    let jar = CookieJar::new().add(form_cookie(csrf, state.config.secure_cookies));
    let status = if page.error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    with_policy((status, jar, page), request.service.as_deref())
}

fn change_form<D>(state: &AppState<D>, request: &Request, error: Option<String>, jar: CookieJar) -> Response {
    let csrf = crate::auth::new_token();
    let page = ChangePage {
        ent_name: state.config.ent_name.clone(),
        csrf: csrf.clone(),
        error,
        service: request.service.clone(),
        post: request.post,
        min_len: domain::password::CHOSEN_MIN_LEN,
    };
    let status = if page.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    with_policy(
        (status, jar.add(form_cookie(csrf, state.config.secure_cookies)), page),
        request.service.as_deref(),
    )
}

fn message<D>(state: &AppState<D>, status: StatusCode, title: &str, message: String, signed_in: bool) -> Response {
    let page = MessagePage {
        ent_name: state.config.ent_name.clone(),
        title: title.to_string(),
        message,
        error: !status.is_success(),
        signed_in,
    };
    with_policy((status, page), None)
}

fn unknown_service<D>(state: &AppState<D>) -> Response {
    message(
        state,
        StatusCode::FORBIDDEN,
        "Service inconnu",
        TicketRefusal::UnknownService.to_string(),
        false,
    )
}

/// A rule of `domain` as a sentence of the page: capital letter, full stop.
fn sentence(rule: &str) -> String {
    let mut chars = rule.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut text: String = first.to_uppercase().chain(chars).collect();
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

/// The service's URL with the ticket added to its query.
fn with_ticket(service: &str, ticket: &str) -> String {
    let (base, fragment) = match service.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (service, None),
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    let encoded: String = form_urlencoded::byte_serialize(ticket.as_bytes()).collect();
    match fragment {
        Some(fragment) => format!("{base}{separator}ticket={encoded}#{fragment}"),
        None => format!("{base}{separator}ticket={encoded}"),
    }
}

/// Back to the service with a new ticket (303, or a form for `method=POST`);
/// a refusal is a page saying why.
async fn to_service<D: Backend>(
    state: &AppState<D>,
    token: &str,
    request: &Request,
    service: &str,
    from_new_login: bool,
    jar: CookieJar,
) -> Result<Response, AppError> {
    let mut rng = domain::password::os_rng();
    let granted = app::cas::grant_ticket(
        state.directory.as_ref(),
        token,
        service,
        from_new_login,
        state.cas(),
        &mut rng,
        state.now(),
    )
    .await?;
    let ticket = match granted {
        Ok(ticket) => ticket,
        Err(TicketRefusal::NoSession) => {
            return Ok(login_form(
                state,
                request,
                None,
                Some(TicketRefusal::NoSession.to_string()),
                String::new(),
            ))
        }
        Err(TicketRefusal::PasswordChangePending) => return Ok(change_form(state, request, None, jar)),
        Err(refusal @ TicketRefusal::UnknownService) => {
            return Ok(message(
                state,
                StatusCode::FORBIDDEN,
                "Service inconnu",
                refusal.to_string(),
                true,
            ))
        }
        Err(refusal) => {
            return Ok(message(
                state,
                StatusCode::FORBIDDEN,
                "Accès refusé",
                refusal.to_string(),
                true,
            ))
        }
    };
    state.metrics.cas_ticket_issued();
    if request.post {
        let services = app::cas::services(state.directory.as_ref()).await?;
        let service_name = app::cas::service_for(&services, service)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let page = PostPage {
            ent_name: state.config.ent_name.clone(),
            service: service.to_string(),
            service_name,
            ticket,
        };
        return Ok(with_policy((jar, page), Some(service)));
    }
    Ok(with_policy(
        (jar, Redirect::to(&with_ticket(service, &ticket))),
        Some(service),
    ))
}

/// The registered service's name, or the "unknown service" page.
async fn registered_name<D: Backend>(
    state: &AppState<D>,
    request: &Request,
) -> Result<Result<Option<String>, Response>, AppError> {
    let Some(service) = &request.service else {
        return Ok(Ok(None));
    };
    let services = app::cas::services(state.directory.as_ref()).await?;
    Ok(match app::cas::service_for(&services, service) {
        Some(s) => Ok(Some(s.name.clone())),
        None => Err(unknown_service(state)),
    })
}

/// `GET /cas/login`: the credential requestor (specification §2.1).
pub async fn login_page<D: Backend>(
    State(state): State<AppState<D>>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let request = Request::of(query.service.clone(), &query.renew, &query.method);
    let service_name = match registered_name(&state, &request).await? {
        Ok(name) => name,
        Err(page) => return Ok(page),
    };
    if !request.renew {
        if let Some(token) = cookie(&headers, SSO_COOKIE) {
            let session = app::cas::session(state.directory.as_ref(), &token, state.cas(), state.now()).await?;
            if let Some(session) = session {
                if session.password_change_pending {
                    return Ok(change_form(&state, &request, None, CookieJar::new()));
                }
                return match &request.service {
                    Some(service) => to_service(&state, &token, &request, service, false, CookieJar::new()).await,
                    None => Ok(message(
                        &state,
                        StatusCode::OK,
                        "Vous êtes connecté",
                        "Vous êtes connecté à l'ENT : ses services vous reconnaissent sans nouvelle saisie.".into(),
                        true,
                    )),
                };
            }
        }
    }
    if is_set(&query.gateway) && !request.renew {
        if let Some(service) = &request.service {
            // gateway: back to the service without a ticket, never a form.
            return Ok(with_policy(Redirect::to(service), Some(service)));
        }
    }
    Ok(login_form(&state, &request, service_name, None, String::new()))
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    service: Option<String>,
    renew: Option<String>,
    method: Option<String>,
}

fn check_form_token(headers: &HeaderMap, sent: &str) -> Result<(), AppError> {
    let expected = cookie(headers, FORM_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(sent, &expected) {
        return Err(AppError::Csrf);
    }
    Ok(())
}

/// Runs an Argon2id-heavy use case on a blocking thread, so that the async
/// threads keep serving while passwords are checked.
async fn off_the_async_threads<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, AppError> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(work))
        .await
        .map_err(|e| AppError::Page(format!("vérification du mot de passe interrompue : {e}")))
}

/// `POST /cas/login`: the credential acceptor (specification §2.2).
pub async fn login<D: Backend>(
    State(state): State<AppState<D>>,
    ClientAddress(from): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    check_form_token(&headers, &form.csrf)?;
    let request = Request::of(form.service.clone(), &form.renew, &form.method);
    let service_name = match registered_name(&state, &request).await? {
        Ok(name) => name,
        Err(page) => return Ok(page),
    };
    let directory = Arc::clone(&state.directory);
    let settings = *state.cas();
    let now = state.now();
    let (login, password) = (form.username.clone(), form.password);
    let outcome = off_the_async_threads(async move {
        let mut rng = domain::password::os_rng();
        app::cas::sign_in(directory.as_ref(), &login, &password, from, &settings, &mut rng, now).await
    })
    .await??;
    let signed = match outcome {
        Ok(signed) => signed,
        Err(failure) => {
            state.metrics.sign_in_failed();
            tracing::info!(reason = %failure, "connexion CAS refusée");
            let shown = match failure {
                SignInFailure::BadCredentials => "Identifiant ou mot de passe incorrect.".to_string(),
                other => format!("Connexion refusée : {other}."),
            };
            return Ok(login_form(
                &state,
                &request,
                service_name,
                Some(shown),
                form.username.trim().to_string(),
            ));
        }
    };
    let secure = state.config.secure_cookies;
    let jar = CookieJar::new()
        .add(sso_cookie(
            signed.token.clone(),
            state.cas().lifetime_hours * 3600,
            secure,
        ))
        .add(form_cookie(String::new(), secure));
    if signed.password_change_pending {
        return Ok(change_form(&state, &request, None, jar));
    }
    match &request.service {
        Some(service) => to_service(&state, &signed.token, &request, service, true, jar).await,
        None => Ok(with_policy(
            (
                jar,
                message(
                    &state,
                    StatusCode::OK,
                    "Vous êtes connecté",
                    "Vous êtes connecté à l'ENT : ses services vous reconnaissent sans nouvelle saisie.".into(),
                    true,
                ),
            ),
            None,
        )),
    }
}

#[derive(Deserialize)]
pub struct ChangeForm {
    new_password: String,
    confirm_password: String,
    csrf: String,
    service: Option<String>,
    method: Option<String>,
}

/// `POST /cas/mot-de-passe`: the first-sign-in change, then on to the service.
pub async fn change<D: Backend>(
    State(state): State<AppState<D>>,
    ClientAddress(from): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<ChangeForm>,
) -> Result<Response, AppError> {
    check_form_token(&headers, &form.csrf)?;
    let request = Request::of(form.service.clone(), &None, &form.method);
    if let Err(page) = registered_name(&state, &request).await? {
        return Ok(page);
    }
    let Some(token) = cookie(&headers, SSO_COOKIE) else {
        return Ok(login_form(
            &state,
            &request,
            None,
            Some(TicketRefusal::NoSession.to_string()),
            String::new(),
        ));
    };
    let directory = Arc::clone(&state.directory);
    let settings = *state.cas();
    let now = state.now();
    let session_token = token.clone();
    let (new, confirm) = (form.new_password, form.confirm_password);
    let changed = off_the_async_threads(async move {
        let mut rng = domain::password::os_rng();
        app::cas::change_distributed_password(
            directory.as_ref(),
            &session_token,
            &new,
            &confirm,
            from,
            &settings,
            &mut rng,
            now,
        )
        .await
    })
    .await?;
    match changed {
        Ok(()) => {}
        Err(PasswordChangeError::Policy(rule)) => {
            return Ok(change_form(&state, &request, Some(sentence(&rule)), CookieJar::new()))
        }
        Err(PasswordChangeError::Store(e)) => return Err(AppError::Store(e)),
        Err(PasswordChangeError::Changed) => {
            return Ok(login_form(
                &state,
                &request,
                None,
                Some("Votre session a expiré ou votre mot de passe a déjà été changé : reconnectez-vous.".into()),
                String::new(),
            ))
        }
        Err(other) => {
            return Ok(message(
                &state,
                StatusCode::FORBIDDEN,
                "Connexion refusée",
                other.to_string(),
                false,
            ))
        }
    }
    match &request.service {
        Some(service) => to_service(&state, &token, &request, service, true, CookieJar::new()).await,
        None => Ok(message(
            &state,
            StatusCode::OK,
            "Mot de passe enregistré",
            "Votre mot de passe est enregistré : il vous sera demandé à votre prochaine connexion.".into(),
            true,
        )),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "cas_forgot.html")]
struct ForgotPage {
    ent_name: String,
    csrf: String,
    minutes: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "cas_reset.html")]
struct ResetPage {
    ent_name: String,
    csrf: String,
    token: String,
}

/// `GET /cas/mot-de-passe-oublie`: the login to send a link for.
pub async fn forgot_page<D: Backend>(State(state): State<AppState<D>>) -> Response {
    let csrf = crate::auth::new_token();
    let page = ForgotPage {
        ent_name: state.config.ent_name.clone(),
        csrf: csrf.clone(),
        minutes: app::cas::RESET_LINK_MINUTES,
    };
    with_policy(
        (
            CookieJar::new().add(form_cookie(csrf, state.config.secure_cookies)),
            page,
        ),
        None,
    )
}

#[derive(Deserialize)]
pub struct ForgotForm {
    username: String,
    csrf: String,
}

/// `POST /cas/mot-de-passe-oublie`: mails a single-use link when the
/// account has an address; the same answer in every case.
pub async fn forgot<D: Backend>(
    State(state): State<AppState<D>>,
    headers: HeaderMap,
    Form(form): Form<ForgotForm>,
) -> Result<Response, AppError> {
    check_form_token(&headers, &form.csrf)?;
    let now = state.now();
    let d = state.directory.as_ref();
    let link = app::cas::request_password_reset(d, &form.username, &mut domain::password::os_rng(), now).await?;
    if let Some(link) = link {
        let base = match &state.notifier.settings().public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => own_address(&state, &headers),
        };
        let url = format!("{base}/cas/reinitialisation?jeton={}", link.token);
        if let Err(e) = state
            .notifier
            .password_reset(d, &link.email, &url, app::cas::RESET_LINK_MINUTES, now)
            .await
        {
            state.metrics.mail_failed();
            tracing::warn!(error = %e, "courriel « mot de passe oublié » non envoyé");
        }
    }
    Ok(message(
        &state,
        StatusCode::OK,
        "Mot de passe oublié",
        format!(
            "Si ce compte a une adresse électronique, un lien vient d'y être envoyé : il est valable {} minutes et ne sert qu'une fois. Sinon, adressez-vous à l'administrateur de l'ENT de votre établissement.",
            app::cas::RESET_LINK_MINUTES
        ),
        false,
    ))
}

/// This server's address as the browser reached it, for the mailed link
/// when no public address is configured.
fn own_address<D>(state: &AppState<D>, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if state.config.secure_cookies { "https" } else { "http" };
    format!("{scheme}://{host}")
}

#[derive(Deserialize)]
pub struct ResetQuery {
    jeton: Option<String>,
}

/// `GET /cas/reinitialisation?jeton=…`: a button, not the change itself, so
/// that a mail scanner opening the link does not spend it.
pub async fn reset_page<D: Backend>(State(state): State<AppState<D>>, Query(query): Query<ResetQuery>) -> Response {
    let csrf = crate::auth::new_token();
    let page = ResetPage {
        ent_name: state.config.ent_name.clone(),
        csrf: csrf.clone(),
        token: query.jeton.unwrap_or_default(),
    };
    with_policy(
        (
            CookieJar::new().add(form_cookie(csrf, state.config.secure_cookies)),
            page,
        ),
        None,
    )
}

#[derive(Deserialize)]
pub struct ResetForm {
    jeton: String,
    csrf: String,
}

/// `POST /cas/reinitialisation`: spends the link, opens a session that only
/// leads to the change form.
pub async fn reset<D: Backend>(
    State(state): State<AppState<D>>,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Result<Response, AppError> {
    check_form_token(&headers, &form.csrf)?;
    let opened = app::cas::open_password_reset(
        state.directory.as_ref(),
        form.jeton.trim(),
        state.cas(),
        &mut domain::password::os_rng(),
        state.now(),
    )
    .await?;
    let Some(token) = opened else {
        return Ok(message(
            &state,
            StatusCode::GONE,
            "Lien expiré",
            format!(
                "Ce lien a déjà servi ou a plus de {} minutes : demandez-en un autre depuis « Mot de passe oublié ? ».",
                app::cas::RESET_LINK_MINUTES
            ),
            false,
        ));
    };
    let secure = state.config.secure_cookies;
    let jar = CookieJar::new().add(sso_cookie(token, state.cas().lifetime_hours * 3600, secure));
    Ok(change_form(&state, &Request::default(), None, jar))
}

#[derive(Deserialize)]
pub struct LogoutQuery {
    service: Option<String>,
    /// CAS 2.0's name for the same parameter.
    url: Option<String>,
}

/// `GET /cas/logout`: ends the single sign-on session; back to the service
/// only when it is registered (never an open redirect).
pub async fn logout<D: Backend>(
    State(state): State<AppState<D>>,
    Query(query): Query<LogoutQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(token) = cookie(&headers, SSO_COOKIE) {
        let validated = app::cas::logout(state.directory.as_ref(), &token).await?;
        crate::back_channel::send_logouts(&state, validated);
    }
    let jar = CookieJar::new().add(sso_cookie(String::new(), 0, state.config.secure_cookies));
    if let Some(service) = query.service.or(query.url).filter(|s| !s.is_empty()) {
        let services = app::cas::services(state.directory.as_ref()).await?;
        if app::cas::service_for(&services, &service).is_some() {
            return Ok(with_policy((jar, Redirect::to(&service)), Some(&service)));
        }
    }
    Ok(with_policy(
        (
            jar,
            message(
                &state,
                StatusCode::OK,
                "Vous êtes déconnecté",
                "Vous êtes déconnecté de l'ENT et des services où vous étiez entré par lui. Fermez le navigateur sur un poste partagé.".into(),
                false,
            ),
        ),
        None,
    ))
}

#[derive(Deserialize)]
pub struct ValidateQuery {
    ticket: Option<String>,
    service: Option<String>,
    renew: Option<String>,
    format: Option<String>,
    #[serde(rename = "pgtUrl")]
    pgt_url: Option<String>,
}

/// The validation endpoints: which tickets each accepts, what it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// `/validate` (CAS 1.0): text, service tickets only, no proxying.
    V1,
    /// `/serviceValidate` (CAS 2.0): service tickets.
    Service,
    /// `/proxyValidate` (CAS 2.0): service and proxy tickets.
    Proxy,
    /// `/p3/serviceValidate` (CAS 3.0): with the attributes.
    P3Service,
    /// `/p3/proxyValidate` (CAS 3.0).
    P3Proxy,
}

impl Endpoint {
    fn with_attributes(self) -> bool {
        matches!(self, Endpoint::P3Service | Endpoint::P3Proxy)
    }
}

async fn validated<D: Backend>(
    state: &AppState<D>,
    query: &ValidateQuery,
    endpoint: Endpoint,
) -> Result<Success, Failure> {
    let validation = Validation {
        renew: is_set(&query.renew),
        accept_proxy_tickets: matches!(endpoint, Endpoint::Proxy | Endpoint::P3Proxy),
        proxy_callback: query.pgt_url.as_deref().filter(|_| endpoint != Endpoint::V1),
    };
    let outcome = app::cas::validate(
        state.directory.as_ref(),
        query.ticket.as_deref(),
        query.service.as_deref(),
        validation,
        &crate::back_channel::HttpProxyCallback,
        state.cas(),
        &mut domain::password::os_rng(),
        state.now(),
    )
    .await;
    let outcome = or_internal_error(outcome, "validation CAS");
    if outcome.is_ok() {
        state.metrics.cas_ticket_validated();
    }
    outcome
}

/// A protocol answer: a failure of the database becomes `INTERNAL_ERROR`
/// (logged), a refusal is logged with its code.
fn or_internal_error<T>(outcome: Result<Result<T, Failure>, store::StoreError>, what: &str) -> Result<T, Failure> {
    let outcome = outcome.unwrap_or_else(|e| {
        tracing::error!(error = %e, "{what} impossible");
        Err(Failure::new(
            protocol::FailureCode::InternalError,
            "erreur interne du serveur CAS : réessayez",
        ))
    });
    if let Err(failure) = &outcome {
        tracing::info!(code = failure.code.code(), "{what} refusé(e)");
    }
    outcome
}

/// `GET /cas/validate` (CAS 1.0): `yes` and the login, or `no`.
pub async fn validate_v1<D: Backend>(State(state): State<AppState<D>>, Query(query): Query<ValidateQuery>) -> Response {
    let outcome = validated(&state, &query, Endpoint::V1).await;
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        protocol::v1_answer(&outcome),
    )
        .into_response()
}

/// `GET /cas/serviceValidate` (CAS 2.0, no attributes).
pub async fn service_validate<D: Backend>(
    State(state): State<AppState<D>>,
    Query(query): Query<ValidateQuery>,
) -> Response {
    validation_answer(&state, &query, Endpoint::Service).await
}

/// `GET /cas/proxyValidate` (CAS 2.0): proxy tickets too.
pub async fn proxy_validate<D: Backend>(
    State(state): State<AppState<D>>,
    Query(query): Query<ValidateQuery>,
) -> Response {
    validation_answer(&state, &query, Endpoint::Proxy).await
}

/// `GET /cas/p3/serviceValidate` (CAS 3.0, with attributes).
pub async fn p3_service_validate<D: Backend>(
    State(state): State<AppState<D>>,
    Query(query): Query<ValidateQuery>,
) -> Response {
    validation_answer(&state, &query, Endpoint::P3Service).await
}

/// `GET /cas/p3/proxyValidate` (CAS 3.0): proxy tickets too.
pub async fn p3_proxy_validate<D: Backend>(
    State(state): State<AppState<D>>,
    Query(query): Query<ValidateQuery>,
) -> Response {
    validation_answer(&state, &query, Endpoint::P3Proxy).await
}

async fn validation_answer<D: Backend>(state: &AppState<D>, query: &ValidateQuery, endpoint: Endpoint) -> Response {
    answer(
        query,
        &validated(state, query, endpoint).await,
        endpoint.with_attributes(),
    )
}

#[derive(Deserialize)]
pub struct ProxyQuery {
    pgt: Option<String>,
    #[serde(rename = "targetService")]
    target_service: Option<String>,
    format: Option<String>,
}

/// `GET /cas/proxy` (CAS 2.0): a proxy ticket for a back-end service.
pub async fn proxy<D: Backend>(State(state): State<AppState<D>>, Query(query): Query<ProxyQuery>) -> Response {
    let outcome = app::cas::proxy_ticket(
        state.directory.as_ref(),
        query.pgt.as_deref(),
        query.target_service.as_deref(),
        state.cas(),
        &mut domain::password::os_rng(),
        state.now(),
    )
    .await;
    let outcome = or_internal_error(outcome, "ticket de proxy");
    if outcome.is_ok() {
        state.metrics.cas_ticket_issued();
    }
    if query.format.as_deref().is_some_and(|f| f.eq_ignore_ascii_case("json")) {
        return axum::Json(protocol::proxy_json_answer(&outcome)).into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        protocol::proxy_xml_answer(&outcome),
    )
        .into_response()
}

fn answer(query: &ValidateQuery, outcome: &Result<Success, Failure>, with_attributes: bool) -> Response {
    if query.format.as_deref().is_some_and(|f| f.eq_ignore_ascii_case("json")) {
        let mut json = protocol::json_answer(outcome);
        if !with_attributes {
            if let Some(success) = json.pointer_mut("/serviceResponse/authenticationSuccess") {
                if let Some(object) = success.as_object_mut() {
                    object.remove("attributes");
                }
            }
        }
        return axum::Json(json).into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        protocol::xml_answer(outcome, with_attributes),
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_ticket_joins_the_service_s_query() {
        assert_eq!(with_ticket("https://s.fr/a", "ST-1"), "https://s.fr/a?ticket=ST-1");
        assert_eq!(
            with_ticket("https://s.fr/a?x=1", "ST-1"),
            "https://s.fr/a?x=1&ticket=ST-1"
        );
        assert_eq!(
            with_ticket("https://s.fr/a?x=1#h", "ST-1"),
            "https://s.fr/a?x=1&ticket=ST-1#h"
        );
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 192.0.2.7, 10.0.0.3".parse().unwrap());
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            client_address(proxy, &headers, &trusted),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            client_address(stranger, &headers, &trusted),
            stranger,
            "a client's own header is ignored"
        );
        assert_eq!(client_address(proxy, &HeaderMap::new(), &trusted), proxy);
    }
}
