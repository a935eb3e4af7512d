//! Page models (askama templates) and the pages outside the wizard.

use crate::auth::Auth;
use crate::error::AppError;
use crate::{AppState, Backend};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use store::UserQuery;

/// What every page's frame shows: the ENT, who is logged in, the CSRF token.
pub struct Layout {
    pub ent_name: String,
    pub admin_login: Option<String>,
    pub csrf: String,
    /// A system admin: the menu shows the audit log.
    pub system: bool,
}

impl Layout {
    pub fn of<D>(state: &AppState<D>, auth: &Auth) -> Layout {
        Layout {
            ent_name: state.config.ent_name.clone(),
            admin_login: Some(auth.admin.login.clone()),
            csrf: auth.csrf.clone(),
            system: auth.admin.system,
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
            system: false,
        }
    }
}

/// The establishments this admin acts on.
pub async fn visible_establishments<D: Backend>(
    state: &AppState<D>,
    auth: &Auth,
) -> Result<Vec<domain::Establishment>, AppError> {
    Ok(state
        .directory
        .list_establishments()
        .await?
        .into_iter()
        .filter(|e| auth.admin.may_act_on(&e.uai))
        .collect())
}

/// The establishments this admin acts on, for a `<select>`: (UAI, name, selected).
pub async fn establishment_choices<D: Backend>(
    state: &AppState<D>,
    auth: &Auth,
    selected: Option<&str>,
) -> Result<Vec<(String, String, bool)>, AppError> {
    Ok(visible_establishments(state, auth)
        .await?
        .into_iter()
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
    static_asset("text/css; charset=utf-8", include_str!("../static/style.css"))
}

pub async fn slips_stylesheet() -> Response {
    static_asset("text/css; charset=utf-8", include_str!("../static/fiches.css"))
}

/// The slips' "Imprimer" button: a file, since the Content-Security-Policy
/// allows no inline script.
pub async fn print_script() -> Response {
    static_asset("text/javascript; charset=utf-8", include_str!("../static/imprimer.js"))
}

/// Step 5's in-place updates (see the file).
pub async fn progress_script() -> Response {
    static_asset("text/javascript; charset=utf-8", include_str!("../static/suivi.js"))
}

/// Step 2's checklist that follows each choice (see the file).
pub async fn mapping_script() -> Response {
    static_asset(
        "text/javascript; charset=utf-8",
        include_str!("../static/correspondances.js"),
    )
}

/// The creation form's fields per profile (see the file).
pub async fn creation_script() -> Response {
    static_asset("text/javascript; charset=utf-8", include_str!("../static/creation.js"))
}

/// Files that hold nothing personal: cacheable, unlike every page.
fn static_asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "public, max-age=3600")],
        body,
    )
        .into_response()
}

/// An import left before "Démarrer", to resume or discard.
pub struct UnfinishedDraft {
    id: i64,
    file_name: String,
    what: String,
    touched: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    layout: Layout,
    login: String,
    system: bool,
    establishments: String,
    drafts: Vec<UnfinishedDraft>,
}

pub async fn home<D: Backend>(State(state): State<AppState<D>>, auth: Auth) -> Result<HomePage, AppError> {
    let known = state.directory.list_establishments().await?;
    let establishments = if auth.admin.system {
        String::new()
    } else {
        domain::establishment::establishment_list(known.iter().filter(|e| auth.admin.may_act_on(&e.uai)))
    };
    let drafts = state
        .directory
        .unfinished_drafts(auth.admin.id)
        .await?
        .into_iter()
        .filter_map(|d| {
            // Drafts of the JSON API are its client's business.
            let settings: crate::wizard::DraftSettings = serde_json::from_str(&d.settings).ok()?;
            if settings.via_api {
                return None;
            }
            let mut what = settings.profile.label().to_string();
            if let Some(uai) = &settings.establishment {
                match known.iter().find(|e| &e.uai == uai) {
                    Some(e) => what.push_str(&format!(", {e}")),
                    None => what.push_str(&format!(", {uai}")),
                }
            } else if settings.establishments_from_file {
                what.push_str(", établissements du fichier");
            }
            if settings.complet {
                what.push_str(", Complet");
            }
            Some(UnfinishedDraft {
                id: d.id,
                file_name: d.file_name,
                what,
                touched: domain::time::minute(d.updated_at),
            })
        })
        .collect();
    Ok(HomePage {
        layout: Layout::of(&state, &auth),
        login: auth.admin.login.clone(),
        system: auth.admin.system,
        establishments,
        drafts,
    })
}

/// The search form of the users page; profiles may repeat (check boxes).
#[derive(Debug, Default)]
pub struct UsersQuery {
    last_name: String,
    first_name: String,
    login: String,
    establishment: String,
    class: String,
    profiles: Vec<String>,
    page: i64,
}

impl UsersQuery {
    fn parse(raw: Option<&str>) -> UsersQuery {
        let mut q = UsersQuery::default();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let value = value.trim().to_string();
            match name.as_ref() {
                "nom" => q.last_name = value,
                "prenom" => q.first_name = value,
                "login" => q.login = value,
                "etablissement" => q.establishment = value,
                "classe" => q.class = value,
                "profil" => q.profiles.push(value),
                "page" => q.page = page_number(value.parse().ok()),
                _ => {}
            }
        }
        q.page = page_number(Some(q.page));
        q
    }

    /// The same search on another page, for the paging links.
    fn page_link(&self, page: i64) -> String {
        let mut link = form_urlencoded::Serializer::new(String::new());
        link.append_pair("nom", &self.last_name)
            .append_pair("prenom", &self.first_name)
            .append_pair("login", &self.login)
            .append_pair("etablissement", &self.establishment)
            .append_pair("classe", &self.class);
        for p in &self.profiles {
            link.append_pair("profil", p);
        }
        link.append_pair("page", &page.to_string());
        format!("/utilisateurs?{}", link.finish())
    }
}

/// The last page a link may ask for: far beyond any directory, low enough
/// that `(page - 1) × page size` stays a valid offset for the database.
const MAX_PAGE: i64 = 1_000_000;

/// A page number from a query: 1 when absent or invalid, never past [`MAX_PAGE`].
pub(crate) fn page_number(raw: Option<i64>) -> i64 {
    raw.unwrap_or(1).clamp(1, MAX_PAGE)
}

fn filled(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// One line of the search results.
pub struct UserLine {
    id: i64,
    name: String,
    key: String,
    login: String,
    created: String,
    last_login: String,
    profile: &'static str,
    active: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "users.html")]
pub struct UsersPage {
    layout: Layout,
    query: UsersQuery,
    system: bool,
    /// (UAI, name, selected)
    establishments: Vec<(String, String, bool)>,
    /// (id, label, checked)
    profiles: Vec<(&'static str, &'static str, bool)>,
    users: Vec<UserLine>,
    previous: Option<String>,
    next: Option<String>,
}

/// Users per page of the search.
const USERS_PER_PAGE: i64 = 50;

/// The guide's §7 search, limited to the admin's establishments: names,
/// login, establishment and profiles, alphabetical, 50 per page.
pub async fn users<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<UsersPage, AppError> {
    let query = UsersQuery::parse(raw.as_deref());
    let visible = visible_establishments(&state, &auth).await?;
    let wanted = filled(&query.establishment)
        .map(|u| domain::Uai::parse(&u))
        .transpose()
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let establishment = match wanted {
        Some(uai) if auth.admin.may_act_on(&uai) => Some(uai),
        Some(_) => return Err(AppError::NotFound),
        None if auth.admin.system => None,
        None => visible.first().map(|e| e.uai.clone()),
    };
    let profiles = query
        .profiles
        .iter()
        .map(|p| p.parse::<domain::Profile>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let mut found = if auth.admin.system || establishment.is_some() {
        state
            .directory
            .search_users(&UserQuery {
                last_name: filled(&query.last_name),
                first_name: filled(&query.first_name),
                login: filled(&query.login),
                establishment: establishment.clone(),
                class: filled(&query.class),
                profiles: profiles.clone(),
                // One more than shown tells whether a next page exists.
                limit: USERS_PER_PAGE + 1,
                offset: (query.page - 1) * USERS_PER_PAGE,
            })
            .await?
    } else {
        Vec::new()
    };
    let more = found.len() as i64 > USERS_PER_PAGE;
    found.truncate(USERS_PER_PAGE as usize);
    Ok(UsersPage {
        layout: Layout::of(&state, &auth),
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
        profiles: domain::Profile::ALL
            .iter()
            .map(|p| (p.id(), p.label(), profiles.contains(p)))
            .collect(),
        users: found
            .into_iter()
            .map(|u| UserLine {
                id: u.id,
                name: format!("{}, {}", u.last_name.to_uppercase(), u.first_name),
                key: u.sync_key,
                // A shared account's login is its other establishments' to hand out.
                login: if u
                    .establishments
                    .iter()
                    .all(|uai| auth.admin.system || auth.admin.establishments.iter().any(|e| e.as_str() == uai))
                {
                    u.login
                } else {
                    "—".to_string()
                },
                created: domain::time::minute(u.created_at),
                last_login: u.last_login_at.map_or_else(|| "jamais".into(), domain::time::minute),
                profile: u.profile.label(),
                active: u.active,
            })
            .collect(),
        previous: (query.page > 1).then(|| query.page_link(query.page - 1)),
        next: more.then(|| query.page_link(query.page + 1)),
        query,
    })
}
