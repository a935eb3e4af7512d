//! Administrator sessions: a random token in an HttpOnly, SameSite cookie, only
//! its SHA-256 in the database; a CSRF token per session checked on every
//! state-changing request; login throttling per login.

use crate::error::AppError;
use crate::pages::LoginPage;
use crate::{AppState, Backend};
use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use rand::RngCore;
use serde::Deserialize;
use store::web::Admin;

pub(crate) const SESSION_COOKIE: &str = "annuaire_session";
const LOGIN_CSRF_COOKIE: &str = "annuaire_login_csrf";

/// 256 random bits, hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Tokens are stored hashed: a stolen database copy opens no session.
pub fn hash_token(token: &str) -> String {
    domain::password::token_hash(token)
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_string())
}

/// Every cookie of the app: HttpOnly, SameSite=Strict, the whole site, `Secure`
/// behind HTTPS; `max_age` 0 deletes it.
fn app_cookie(name: &'static str, value: String, max_age: i64, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age))
        .secure(secure)
        .build()
}

const FLASH_COOKIE: &str = "annuaire_message";

/// A message for the page a redirect leads to. A cookie set by this server
/// only, so that no link can make a page say what its author wants (a query
/// parameter echoed in the page could).
pub fn flash(message: &str, secure: bool) -> CookieJar {
    let value: String = form_urlencoded::byte_serialize(message.as_bytes()).collect();
    CookieJar::new().add(app_cookie(FLASH_COOKIE, value, 60, secure))
}

/// The message left by [`flash`], read once: the returned jar deletes it.
pub fn take_flash(headers: &HeaderMap, secure: bool) -> (CookieJar, Option<String>) {
    let message = cookie(headers, FLASH_COOKIE).map(|raw| {
        form_urlencoded::parse(format!("m={raw}").as_bytes())
            .map(|(_, v)| v.into_owned())
            .collect::<String>()
    });
    let jar = match message {
        Some(_) => CookieJar::new().add(app_cookie(FLASH_COOKIE, String::new(), 0, secure)),
        None => CookieJar::new(),
    };
    (jar, message.filter(|m| !m.is_empty()))
}

/// Equal-time comparison, so the token cannot be guessed byte by byte.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The logged-in administrator of a request.
pub struct Auth {
    pub admin: Admin,
    pub csrf: String,
    token_hash: String,
}

impl Auth {
    /// The admin of this session, as the use cases take them.
    pub fn actor(&self) -> app::Actor {
        app::Actor::new(self.admin.clone(), domain::vocabulary::Channel::Web)
    }

    /// Checks the token a form or an `X-CSRF-Token` header carried.
    pub fn check_csrf(&self, sent: &str) -> Result<(), AppError> {
        if same_secret(sent, &self.csrf) {
            Ok(())
        } else {
            Err(AppError::Csrf)
        }
    }
}

impl<D: Backend> FromRequestParts<AppState<D>> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<D>) -> Result<Self, Self::Rejection> {
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(AppError::LoginRequired)?;
        let token_hash = hash_token(&token);
        let session = state
            .directory
            .session(&token_hash, state.now())
            .await?
            .ok_or(AppError::LoginRequired)?;
        Ok(Auth {
            admin: session.admin,
            csrf: session.csrf_token,
            token_hash,
        })
    }
}

pub async fn login_page<D: Backend>(State(state): State<AppState<D>>) -> Response {
    login_form(&state, None, String::new())
}

fn login_form<D>(state: &AppState<D>, error: Option<String>, login: String) -> Response {
    let csrf = new_token();
    let page = LoginPage {
        layout: crate::pages::Layout::anonymous(&state.config.ent_name),
        csrf: csrf.clone(),
        error,
        login,
    };
    let jar = CookieJar::new().add(app_cookie(LOGIN_CSRF_COOKIE, csrf, 3600, state.config.secure_cookies));
    (jar, page).into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
    csrf: String,
}

pub async fn login<D: Backend>(
    State(state): State<AppState<D>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    // Login CSRF: the form's token must match the cookie set with the form.
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf, &expected) {
        return Err(AppError::Csrf);
    }
    let now = state.now();
    let login = form.login.trim().to_lowercase();
    let d = &state.directory;
    if d.failed_logins_since(&login, now - chrono::Duration::seconds(state.config.throttle_seconds))
        .await?
        >= state.config.max_failed_logins
    {
        state.metrics.sign_in_failed();
        return Ok(login_form(
            &state,
            Some("Trop de tentatives pour ce login : réessayez dans 15 minutes.".into()),
            login,
        ));
    }
    let found = d.admin_by_login(&login).await?;
    let password = form.password.clone();
    // Verify even for an unknown login, so timing does not reveal which exist.
    let hash = found
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| DUMMY_HASH.to_string());
    let ok = tokio::task::spawn_blocking(move || domain::password::verify(&password, &hash))
        .await
        .unwrap_or(false);
    let Some((admin, _)) = found.filter(|_| ok) else {
        d.record_failed_login(&login, now).await?;
        state.metrics.sign_in_failed();
        return Ok(login_form(
            &state,
            Some("Login ou mot de passe incorrect.".into()),
            login,
        ));
    };
    d.clear_failed_logins(&login).await?;
    let token = new_token();
    d.create_session(
        &hash_token(&token),
        admin.id,
        &new_token(),
        now,
        now + chrono::Duration::seconds(state.config.session_seconds),
    )
    .await?;
    let secure = state.config.secure_cookies;
    let jar = CookieJar::new()
        .add(app_cookie(SESSION_COOKIE, token, state.config.session_seconds, secure))
        .add(app_cookie(LOGIN_CSRF_COOKIE, String::new(), 0, secure));
    Ok((jar, Redirect::to("/")).into_response())
}

/// An Argon2id hash of a random secret, verified against when the login is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0k5u6F1xH0cz3dgqZ4nP5v6z0cB3dFQ7yXm1pT0lWkA";

#[derive(Deserialize)]
pub struct CsrfForm {
    pub(crate) csrf: String,
}

pub async fn logout<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    auth.check_csrf(&form.csrf)?;
    state.directory.delete_session(&auth.token_hash).await?;
    let jar = CookieJar::new().add(app_cookie(
        SESSION_COOKIE,
        String::new(),
        0,
        state.config.secure_cookies,
    ));
    Ok((jar, Redirect::to("/connexion")).into_response())
}
