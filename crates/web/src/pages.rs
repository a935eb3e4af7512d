//! Page models (askama templates) and the pages outside the wizard.

use crate::auth::Auth;
use crate::error::AppError;
use crate::{AppState, Backend};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use store::UserQuery;

/// What every page's frame shows: the ENT, who is logged in, the CSRF token.
pub struct Layout {
    pub ent_name: String,
    pub admin_login: Option<String>,
    pub csrf: String,
}

impl Layout {
    pub fn of<D>(state: &AppState<D>, auth: &Auth) -> Layout {
        Layout {
            ent_name: state.config.ent_name.clone(),
            admin_login: Some(auth.admin.login.clone()),
            csrf: auth.csrf.clone(),
        }
    }
}

impl Layout {
    /// The frame of pages shown without a session (login, errors).
    pub fn anonymous(ent_name: &str) -> Layout {
        Layout {
            ent_name: ent_name.to_string(),
            admin_login: None,
            csrf: String::new(),
        }
    }
}

/// The establishments this admin acts on, for a `<select>`: (UAI, name, selected).
pub async fn establishment_choices<D: Backend>(
    state: &AppState<D>,
    auth: &Auth,
    selected: Option<&str>,
) -> Result<Vec<(String, String, bool)>, AppError> {
    Ok(state
        .directory
        .list_establishments()
        .await?
        .into_iter()
        .filter(|e| auth.admin.may_act_on(&e.uai))
        .map(|e| {
            let chosen = selected == Some(e.uai.as_str());
            (e.uai.to_string(), e.name, chosen)
        })
        .collect())
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub title: String,
    pub message: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub layout: Layout,
    pub csrf: String,
    pub error: Option<String>,
    pub login: String,
}

pub async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/style.css"),
    )
        .into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    layout: Layout,
    login: String,
    system: bool,
    establishments: String,
}

pub async fn home<D: Backend>(State(state): State<AppState<D>>, auth: Auth) -> HomePage {
    HomePage {
        layout: Layout::of(&state, &auth),
        login: auth.admin.login.clone(),
        system: auth.admin.system,
        establishments: auth
            .admin
            .establishments
            .iter()
            .map(|u| u.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[derive(Deserialize, Default)]
pub struct UsersQuery {
    nom: Option<String>,
    prenom: Option<String>,
    etablissement: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "users.html")]
pub struct UsersPage {
    layout: Layout,
    last_name: String,
    first_name: String,
    system: bool,
    /// (UAI, name, selected)
    establishments: Vec<(String, String, bool)>,
    /// name, key, login, created, profile, state
    users: Vec<(String, String, String, String, String, String)>,
}

/// The guide's §7 search, limited to the admin's establishments.
pub async fn users<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Query(q): Query<UsersQuery>,
) -> Result<UsersPage, AppError> {
    let all = state.directory.list_establishments().await?;
    let visible: Vec<_> = all.into_iter().filter(|e| auth.admin.may_act_on(&e.uai)).collect();
    let wanted = q
        .etablissement
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(domain::Uai::parse)
        .transpose()
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let establishment = match wanted {
        Some(uai) if auth.admin.may_act_on(&uai) => Some(uai),
        Some(_) => return Err(AppError::NotFound),
        None if auth.admin.system => None,
        None => visible.first().map(|e| e.uai.clone()),
    };
    let users = if auth.admin.system || establishment.is_some() {
        state
            .directory
            .search_users(&UserQuery {
                last_name: q.nom.clone().filter(|s| !s.trim().is_empty()),
                first_name: q.prenom.clone().filter(|s| !s.trim().is_empty()),
                establishment: establishment.clone(),
                limit: 200,
                ..UserQuery::default()
            })
            .await?
    } else {
        Vec::new()
    };
    Ok(UsersPage {
        layout: Layout::of(&state, &auth),
        last_name: q.nom.unwrap_or_default(),
        first_name: q.prenom.unwrap_or_default(),
        system: auth.admin.system,
        establishments: visible
            .iter()
            .map(|e| {
                (
                    e.uai.to_string(),
                    e.name.clone(),
                    Some(&e.uai) == establishment.as_ref(),
                )
            })
            .collect(),
        users: users
            .into_iter()
            .map(|u| {
                (
                    format!("{}, {}", u.last_name.to_uppercase(), u.first_name),
                    u.sync_key,
                    u.login,
                    u.created_at.format("%d/%m/%Y %H:%M").to_string(),
                    u.profile.label().to_string(),
                    if u.active { "actif" } else { "désactivé" }.to_string(),
                )
            })
            .collect(),
    })
}
