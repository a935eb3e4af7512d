//! Directory administration pages (SPEC §9, guide §7): probable duplicates
//! with their evidence, reconciliation in one action, "pas un doublon",
//! manual creation of one account, and the audit log.

use crate::auth::Auth;
use crate::error::AppError;
use crate::pages::Layout;
use crate::{AppState, Backend};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use domain::manual::ManualUserInput;
use domain::{Profile, Uai};
use serde::Deserialize;
use store::admin;

pub struct PairView {
    score: u8,
    local_key: String,
    aaf_key: String,
    local: String,
    aaf: String,
    establishments: String,
    /// (weight as "+30", message)
    evidence: Vec<(String, String)>,
}

fn side(s: &domain::duplicates::Side) -> String {
    format!(
        "{} {} — login {} — {} ({}){}{}",
        s.last_name.to_uppercase(),
        s.first_name,
        s.login,
        s.profile.label(),
        s.key,
        s.birth_date
            .map(|d| format!(" — né(e) le {}", d.format("%d/%m/%Y")))
            .unwrap_or_default(),
        s.email
            .as_ref()
            .map(|e| format!(" — {}", e.as_str()))
            .unwrap_or_default(),
    )
}

#[derive(Template, WebTemplate)]
#[template(path = "duplicates.html")]
pub struct DuplicatesPage {
    layout: Layout,
    pairs: Vec<PairView>,
    message: Option<String>,
}

pub async fn duplicates<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    headers: HeaderMap,
) -> Result<(CookieJar, DuplicatesPage), AppError> {
    let pairs = app::duplicates::list(state.directory.as_ref(), &auth.actor(), None).await?;
    let (jar, message) = crate::auth::take_flash(&headers, state.config.secure_cookies);
    Ok((
        jar,
        DuplicatesPage {
            layout: Layout::of(&state, &auth),
            pairs: pairs
                .iter()
                .map(|p| PairView {
                    score: p.score,
                    local_key: p.local.key.to_string(),
                    aaf_key: p.aaf.key.to_string(),
                    local: side(&p.local),
                    aaf: side(&p.aaf),
                    establishments: p.establishments.iter().map(Uai::as_str).collect::<Vec<_>>().join(", "),
                    evidence: p
                        .evidence
                        .iter()
                        .map(|e| (format!("{:+}", e.weight), e.message.clone()))
                        .collect(),
                })
                .collect(),
            message,
        },
    ))
}

#[derive(Deserialize)]
pub struct PairForm {
    csrf: String,
    local: String,
    aaf: String,
}

pub async fn reconcile<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Form(form): Form<PairForm>,
) -> Result<(CookieJar, Redirect), AppError> {
    auth.check_csrf(&form.csrf)?;
    let done = app::duplicates::reconcile(
        state.directory.as_ref(),
        &auth.actor(),
        &form.local,
        &form.aaf,
        state.clock.now(),
    )
    .await?;
    back_to_duplicates(
        &state,
        &format!(
            "Comptes réconciliés : {} garde son login et son mot de passe et prend la clé {} ; le compte AAF {} est supprimé.",
            done.login, done.key, done.removed_login
        ),
    )
}

/// Back to the duplicates page, with what was done said once at its top.
fn back_to_duplicates<D>(state: &AppState<D>, message: &str) -> Result<(CookieJar, Redirect), AppError> {
    Ok((
        crate::auth::flash(message, state.config.secure_cookies),
        Redirect::to("/doublons"),
    ))
}

pub async fn dismiss<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Form(form): Form<PairForm>,
) -> Result<(CookieJar, Redirect), AppError> {
    auth.check_csrf(&form.csrf)?;
    app::duplicates::dismiss(
        state.directory.as_ref(),
        &auth.actor(),
        &form.local,
        &form.aaf,
        state.clock.now(),
    )
    .await?;
    back_to_duplicates(
        &state,
        &format!("{} et {} ne seront plus proposés comme doublon.", form.local, form.aaf),
    )
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
pub struct AuditPage {
    layout: Layout,
    /// (when, who, action, target, details)
    entries: Vec<(String, String, String, String, String)>,
}

/// The whole log is a system administrator's: its entries span establishments.
/// An audited action as the journal names it.
fn action_label(action: &str) -> &str {
    match action {
        "import" => "import CSV",
        "aaf_import" => "flux AAF",
        "account_update" => "modification d'un compte",
        "account_attach" => "rattachement d'un compte d'un autre établissement",
        "membership_end" => "retrait d'un établissement",
        "establishment_add" => "ajout d'un établissement",
        "establishment_rename" => "renommage d'un établissement",
        "account_deactivate" => "désactivation d'un compte",
        "account_reactivate" => "réactivation d'un compte",
        "reconcile" => "réconciliation",
        "duplicate_dismiss" => "« pas un doublon »",
        "user_add" => "création d'un compte",
        "restore" => "restauration d'un import Complet",
        "purge" => "purge des comptes désactivés",
        "lvs_profile" => "profil LVS d'une fonction",
        "password_reset" => "réinitialisation d'un mot de passe",
        "password_change" => "changement de son mot de passe",
        other => other,
    }
}

/// An audit row's details in words: « fichier : enseignants.csv ; créés : 5 ».
fn audit_details(details: &serde_json::Value) -> String {
    use serde_json::Value;
    fn label(key: &str) -> &str {
        match key {
            "file" => "fichier",
            "files" => "fichiers",
            "channel" => "par",
            "profile" => "profil",
            "establishment" => "établissement",
            "complet" => "mode Complet",
            "created" => "créés",
            "created_by_profile" => "créés par profil",
            "updated" => "mis à jour",
            "unchanged" => "inchangés",
            "merged" => "fusionnés",
            "deactivated" => "désactivés",
            "skipped" => "lignes ignorées",
            "ignored" => "demandes ignorées",
            "duplicates" => "doublons probables",
            "establishments" => "établissements",
            "name" => "nom",
            "former_name" => "ancien nom",
            "establishments_created" => "établissements créés",
            "establishments_updated" => "établissements mis à jour",
            "accounts" => "comptes",
            "retention_days" => "conservation (jours)",
            "import" => "import n°",
            "attached_to" => "rattaché à",
            "already_in" => "déjà dans",
            "account_deactivated" => "compte désactivé",
            "login" => "login",
            "password" => "mot de passe",
            "changes" => "modifications",
            "ids" => "comptes n°",
            "id" => "compte n°",
            "lvs_profile" => "profil LVS",
            "guide" => "profil du guide",
            "reset" => "retour au guide",
            "was_distributed" => "mot de passe remis",
            other => other,
        }
    }
    fn value(v: &Value) -> String {
        match v {
            Value::Null => "—".to_string(),
            Value::Bool(b) => if *b { "oui" } else { "non" }.to_string(),
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Array(items) => items.iter().map(value).collect::<Vec<_>>().join(", "),
            Value::Object(map) => match (map.get("field"), map.get("before"), map.get("after")) {
                (Some(field), Some(before), Some(after)) => {
                    format!("{} « {} » → « {} »", value(field), value(before), value(after))
                }
                _ => map
                    .iter()
                    .map(|(k, v)| format!("{} : {}", label(k), value(v)))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
        }
    }
    match details {
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{} : {}", label(k), value(v)))
            .collect::<Vec<_>>()
            .join(" ; "),
        other => value(other),
    }
}

pub async fn audit<D: Backend>(State(state): State<AppState<D>>, auth: Auth) -> Result<AuditPage, AppError> {
    let entries = app::audit::log(state.directory.as_ref(), &auth.actor(), 500).await?;
    Ok(AuditPage {
        layout: Layout::of(&state, &auth),
        entries: entries
            .into_iter()
            .map(|e| {
                (
                    domain::time::second(e.at),
                    e.actor,
                    action_label(&e.action).to_string(),
                    e.target,
                    audit_details(&e.details),
                )
            })
            .collect(),
    })
}

/// The account the creation form just made.
pub struct CreatedAccount {
    id: i64,
    name: String,
    login: String,
    profile: &'static str,
    /// Generated, shown once.
    password: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "user_new.html")]
pub struct NewUserPage {
    layout: Layout,
    /// (id, label, selected)
    profiles: Vec<(&'static str, &'static str, bool)>,
    /// (UAI, name, selected)
    establishments: Vec<(String, String, bool)>,
    /// (code, label, selected): the function codes of administrative staff.
    functions: Vec<(&'static str, &'static str, bool)>,
    input: ManualUserInput,
    /// (field, message, field's label) of every field to correct.
    problems: Vec<(&'static str, String, &'static str)>,
    created: Option<CreatedAccount>,
}

impl NewUserPage {
    fn problem(&self, field: &str) -> Option<&str> {
        self.problems.iter().find(|p| p.0 == field).map(|p| p.1.as_str())
    }
}

/// The label of a creation form's field, for the list of problems.
fn form_label(field: &str) -> &'static str {
    match field {
        "profile" => "Profil",
        "establishment" => "Établissement",
        "civility" => "Civilité",
        "last_name" => "Nom",
        "first_name" => "Prénom",
        "birth_date" => "Date de naissance",
        "email" => "Adresse électronique",
        "function" => "Fonction",
        "subject" => "Matière",
        "class" => "Classe",
        "login" => "Identifiant de connexion",
        "password" => "Mot de passe",
        _ => "Formulaire",
    }
}

async fn new_user_page<D: Backend>(
    state: &AppState<D>,
    auth: &Auth,
    mut input: ManualUserInput,
    problems: Vec<(&'static str, String)>,
    created: Option<CreatedAccount>,
) -> Result<NewUserPage, AppError> {
    let profiles = [
        Profile::Enseignant,
        Profile::Administratif,
        Profile::Eleve,
        Profile::Parent,
        Profile::Administrateur,
        Profile::Invite,
        Profile::AdministrateurSysteme,
    ];
    // A blank form starts from a valid pair: a teacher of the admin's first establishment.
    if input.profile.is_empty() {
        input.profile = Profile::Enseignant.id().to_string();
    }
    let mut establishments = crate::pages::establishment_choices(state, auth, input.establishment.as_deref()).await?;
    if !auth.admin.system && !establishments.iter().any(|e| e.2) {
        if let Some(first) = establishments.first_mut() {
            first.2 = true;
        }
    }
    let chosen_function = input
        .function
        .as_deref()
        .and_then(domain::functions::lookup)
        .map(|f| f.code);
    let mut functions: Vec<(&'static str, &'static str, bool)> = domain::functions::all()
        .filter(|f| !f.is_teaching())
        .map(|f| (f.code, f.long_label, Some(f.code) == chosen_function))
        .collect();
    functions.sort_by_key(|f| f.0);
    Ok(NewUserPage {
        layout: Layout::of(state, auth),
        profiles: profiles
            .iter()
            .filter(|p| auth.admin.system || !matches!(p, Profile::AdministrateurSysteme | Profile::Invite))
            .map(|p| (p.id(), p.label(), input.profile == p.id()))
            .collect(),
        establishments,
        functions,
        input,
        problems: problems
            .into_iter()
            .map(|(field, message)| (field, message, form_label(field)))
            .collect(),
        created,
    })
}

pub async fn new_user_form<D: Backend>(State(state): State<AppState<D>>, auth: Auth) -> Result<NewUserPage, AppError> {
    new_user_page(&state, &auth, ManualUserInput::default(), Vec::new(), None).await
}

#[derive(Deserialize)]
pub struct NewUserForm {
    csrf: String,
    #[serde(flatten)]
    input: ManualUserInput,
}

/// A refused creation in the form's words: its fields, not the CLI's options,
/// and not the login or key of someone else's account.
fn creation_refusal(e: &admin::AdminError) -> String {
    match e {
        admin::AdminError::KeyTaken { key, .. } => format!(
            "la clé {key} existe déjà : si c'est la même personne, son compte existe (cherchez-la dans Utilisateurs) ; sinon distinguez le prénom (ex. ajoutez le second prénom)"
        ),
        admin::AdminError::LoginTaken { login, .. } => format!(
            "le login {login} est déjà attribué : choisissez-en un autre, ou laissez le champ Login vide pour qu'il soit généré"
        ),
        other => other.to_string(),
    }
}

pub async fn new_user_submit<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Form(form): Form<NewUserForm>,
) -> Result<NewUserPage, AppError> {
    auth.check_csrf(&form.csrf)?;
    let mut input = form.input;
    // The password typed in the form is never sent back.
    let typed_password = input.password.take();
    let mut reading = input.clone();
    reading.password = typed_password;
    let user = match reading.read(state.clock.today(), domain::password::DEFAULT_MIN_LEN) {
        Ok(user) => user,
        Err(problems) => {
            let problems = problems.into_iter().map(|(f, e)| (f, e.message)).collect();
            return new_user_page(&state, &auth, input, problems, None).await;
        }
    };
    let mut rng = domain::password::os_rng();
    let added = app::accounts::create(
        state.directory.as_ref(),
        &auth.actor(),
        &user,
        domain::keys::LoginPattern::default(),
        domain::password::DEFAULT_MIN_LEN,
        state.clock.now(),
        &mut rng,
    )
    .await;
    match added {
        Ok(a) => {
            let created = CreatedAccount {
                id: a.id,
                name: format!("{} {}", user.attrs.first_name, user.attrs.last_name.to_uppercase()),
                login: a.login.to_string(),
                profile: a.profile.label(),
                password: a.password.clone(),
            };
            new_user_page(&state, &auth, ManualUserInput::default(), Vec::new(), Some(created)).await
        }
        Err(app::Error::Admin(admin::AdminError::Store(e))) => Err(e.into()),
        Err(app::Error::Admin(e)) => {
            let field = match &e {
                admin::AdminError::KeyTaken { .. } => "first_name",
                admin::AdminError::LoginTaken { .. } => "login",
                _ => "establishment",
            };
            new_user_page(&state, &auth, input, vec![(field, creation_refusal(&e))], None).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "establishments.html")]
pub struct EstablishmentsPage {
    layout: Layout,
    /// (UAI, name)
    establishments: Vec<(String, String)>,
    message: Option<String>,
    error: Option<String>,
    new_uai: String,
    new_name: String,
}

async fn establishments_page<D: Backend>(
    state: &AppState<D>,
    auth: &Auth,
    message: Option<String>,
    error: Option<String>,
    typed: (String, String),
) -> Result<EstablishmentsPage, AppError> {
    Ok(EstablishmentsPage {
        layout: Layout::of(state, auth),
        establishments: crate::pages::visible_establishments(state, auth)
            .await?
            .into_iter()
            .map(|e| (e.uai.to_string(), e.name))
            .collect(),
        message,
        error,
        new_uai: typed.0,
        new_name: typed.1,
    })
}

/// GET /etablissements: the establishments the admin acts on; a system
/// admin adds and renames them here (and with the CLI).
pub async fn establishments<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
) -> Result<EstablishmentsPage, AppError> {
    establishments_page(&state, &auth, None, None, Default::default()).await
}

#[derive(Deserialize)]
pub struct EstablishmentForm {
    csrf: String,
    #[serde(default)]
    uai: String,
    #[serde(default)]
    name: String,
}

/// POST /etablissements: adds an establishment, or renames a known one.
pub async fn save_establishment<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Form(form): Form<EstablishmentForm>,
) -> Result<Response, AppError> {
    auth.check_csrf(&form.csrf)?;
    let typed = (form.uai.clone(), form.name.clone());
    let refused = |message: String| {
        let (state, auth, typed) = (&state, &auth, typed.clone());
        async move {
            let page = establishments_page(state, auth, None, Some(message), typed).await?;
            Ok::<_, AppError>((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    };
    let uai = match Uai::parse(&form.uai) {
        Ok(uai) => uai,
        Err(e) => return refused(format!("{e}.")).await,
    };
    let establishment = domain::Establishment {
        uai,
        name: form.name.trim().to_string(),
    };
    match app::establishments::save(
        state.directory.as_ref(),
        &auth.actor(),
        &establishment,
        state.clock.now(),
    )
    .await
    {
        Ok(former) => {
            let message = match former {
                Some(old) if old != establishment.name => format!(
                    "« {old} » ({}) s'appelle désormais « {} ».",
                    establishment.uai, establishment.name
                ),
                Some(_) => format!("{establishment} : nom inchangé."),
                None => format!(
                    "{establishment} ajouté : vous pouvez y importer des comptes et lui donner des administrateurs."
                ),
            };
            Ok(
                establishments_page(&state, &auth, Some(message), None, Default::default())
                    .await?
                    .into_response(),
            )
        }
        Err(app::Error::Admin(e @ admin::AdminError::Invalid(_))) => refused(format!("{e}.")).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "lvs.html")]
pub struct LvsPage {
    layout: Layout,
    lines: Vec<domain::lvs::MappingLine>,
    message: Option<String>,
    error: Option<String>,
}

async fn lvs_page<D: Backend>(
    state: &AppState<D>,
    auth: &Auth,
    message: Option<String>,
    error: Option<String>,
) -> Result<LvsPage, AppError> {
    Ok(LvsPage {
        layout: Layout::of(state, auth),
        lines: app::lvs::mapping(state.directory.as_ref()).await?,
        message,
        error,
    })
}

/// GET /lvs: the LVS profile of each function code (the guide's, or the
/// system admin's); a system admin changes them here (and with the CLI).
pub async fn lvs<D: Backend>(State(state): State<AppState<D>>, auth: Auth) -> Result<LvsPage, AppError> {
    lvs_page(&state, &auth, None, None).await
}

#[derive(Deserialize)]
pub struct LvsForm {
    csrf: String,
    code: String,
    /// "profil", "exclure" or "guide".
    action: String,
    #[serde(default)]
    profil: String,
}

/// POST /lvs: one function code's LVS profile, for the whole ENT.
pub async fn save_lvs<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Form(form): Form<LvsForm>,
) -> Result<Response, AppError> {
    auth.check_csrf(&form.csrf)?;
    let choice = match form.action.as_str() {
        "profil" => app::lvs::LvsChoice::Profile(form.profil.clone()),
        "exclure" => app::lvs::LvsChoice::NotExported,
        "guide" => app::lvs::LvsChoice::Guide,
        other => return Err(AppError::BadRequest(format!("action « {other} » inconnue"))),
    };
    match app::lvs::set_profile(
        state.directory.as_ref(),
        &auth.actor(),
        &form.code,
        choice,
        state.clock.now(),
    )
    .await
    {
        Ok(line) => {
            let message = match &line.lvs_profile {
                Some(profile) => format!("{} ({}) : profil LVS « {profile} ».", line.code, line.label),
                None => format!("{} ({}) : plus exporté vers LVS.", line.code, line.label),
            };
            Ok(lvs_page(&state, &auth, Some(message), None).await?.into_response())
        }
        Err(app::Error::Admin(e @ admin::AdminError::Invalid(_))) => {
            let page = lvs_page(&state, &auth, None, Some(format!("{e}."))).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
