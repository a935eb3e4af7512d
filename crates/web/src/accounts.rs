//! The user page (SPEC §9, guide §7): identity, source, sync key,
//! memberships, dates, and the account settings. The rules are in
//! [`domain::account`] and [`app::accounts::save_account`].

use crate::auth::Auth;
use crate::error::AppError;
use crate::pages::Layout;
use crate::{AppState, Backend};
use app::accounts::{self, AccountError};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use domain::account::{AccountChange, AccountRights, FieldChange};
use domain::person::{relation_label, Source};
use domain::time::minute_or_never as when;
use serde::Deserialize;
use store::accounts::{AccountDetail, MembershipLine};

/// What the settings form shows and sends back, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    csrf: String,
    /// The `updated_at` the page was built from (RFC 3339).
    #[serde(default)]
    version: String,
    #[serde(default)]
    last_day: String,
    #[serde(default)]
    networks: String,
    /// Present when the protection checkbox could be changed on the page.
    protection_shown: Option<String>,
    protected: Option<String>,
    /// Absent when the identity fields were read-only (protected account).
    civility: Option<String>,
    last_name: Option<String>,
    first_name: Option<String>,
    birth_date: Option<String>,
    email: Option<String>,
    mobile: Option<String>,
}

impl AccountForm {
    fn of(detail: &AccountDetail) -> AccountForm {
        let s = &detail.state.settings;
        let i = &detail.state.identity;
        AccountForm {
            version: detail.updated_at.to_rfc3339_opts(SecondsFormat::Nanos, true),
            last_day: s.last_day.map(|d| d.format("%d/%m/%Y").to_string()).unwrap_or_default(),
            networks: s.networks.ranges().collect::<Vec<_>>().join("\n"),
            protected: s.protected.then(|| "on".to_string()),
            civility: i.civility.map(|c| c.as_str().to_string()),
            last_name: Some(i.last_name.clone()),
            first_name: Some(i.first_name.clone()),
            birth_date: i.birth_date.map(|d| d.format("%d/%m/%Y").to_string()),
            email: i.email.as_ref().map(|e| e.as_str().to_string()),
            mobile: i.mobile.as_ref().map(|p| p.display()),
            ..AccountForm::default()
        }
    }

    fn change(&self) -> AccountChange {
        AccountChange {
            last_day: Some(self.last_day.clone()),
            networks: Some(self.networks.clone()),
            protected: self.protection_shown.as_ref().map(|_| self.protected.is_some()),
            civility: self.civility.clone(),
            last_name: self.last_name.clone(),
            first_name: self.first_name.clone(),
            birth_date: self.birth_date.clone(),
            email: self.email.clone(),
            mobile: self.mobile.clone(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
pub struct AccountPage {
    layout: Layout,
    id: i64,
    name: String,
    key: String,
    login: String,
    profile: &'static str,
    source: &'static str,
    aaf: bool,
    active: bool,
    /// (label, value) of the dates and of the fields only an import changes.
    facts: Vec<(&'static str, String)>,
    /// (establishment, UAI, role, active)
    memberships: Vec<(String, String, String, bool)>,
    groups: Vec<String>,
    /// "Responsables" for a pupil, "Enfants" for a parent (None: no link).
    relatives_title: Option<&'static str>,
    /// (id, name, link, state) of the persons linked to the account.
    relatives: Vec<(i64, String, String, &'static str)>,
    protected: bool,
    /// The other establishments of a shared account ("Lycée Henri-IV
    /// (0750653C)"): the admin may then only end their own memberships, and
    /// the login is not shown.
    shared_with: Option<String>,
    /// (UAI, establishment) of the active memberships this admin may end.
    leavable: Vec<(String, String)>,
    form: AccountForm,
    error: Option<String>,
    saved: Option<Vec<FieldChange>>,
    /// The establishment whose membership was just ended.
    left: Option<String>,
    /// "désactivé" / "réactivé": what the admin just did to the account.
    activation: Option<&'static str>,
    /// The admin may deactivate or reactivate it here (full rights, not the feed's).
    may_switch: bool,
    /// (field, message, label) of every field to correct.
    problems: Vec<(&'static str, String, &'static str)>,
}

impl AccountPage {
    fn problem(&self, field: &str) -> Option<&str> {
        self.problems.iter().find(|p| p.0 == field).map(|p| p.1.as_str())
    }
}

/// The label of a settings form's field, for the list of problems.
fn form_label(field: &str) -> &'static str {
    match field {
        "last_day" => "Dernier jour de validité",
        "networks" => "Plages d'adresses IP autorisées",
        "protected" => "Protégé",
        "civility" => "Civilité",
        "last_name" => "Nom",
        "first_name" => "Prénom",
        "birth_date" => "Date de naissance",
        "email" => "Adresse électronique",
        "mobile" => "Téléphone portable",
        _ => "Formulaire",
    }
}

/// The version of the account a form was built from (its `updated_at`).
fn page_version(raw: &str) -> Result<DateTime<Utc>, AppError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| AppError::BadRequest("formulaire incomplet : rechargez la page du compte".into()))
}

/// A form posted from the account page: its CSRF checked, the account read
/// again, and the version the page was built from.
async fn posted<D: Backend>(
    state: &AppState<D>,
    auth: &Auth,
    id: i64,
    csrf: &str,
    version: &str,
) -> Result<(AccountDetail, DateTime<Utc>), AppError> {
    auth.check_csrf(csrf)?;
    let detail = managed(state, auth, id).await?;
    Ok((detail, page_version(version)?))
}

async fn managed<D: Backend>(state: &AppState<D>, auth: &Auth, id: i64) -> Result<AccountDetail, AppError> {
    Ok(accounts::open(state.directory.as_ref(), &auth.actor(), id).await?)
}

fn page<D>(
    state: &AppState<D>,
    auth: &Auth,
    detail: &AccountDetail,
    form: AccountForm,
    error: Option<String>,
    saved: Option<Vec<FieldChange>>,
) -> AccountPage {
    let u = &detail.user;
    let actor = auth.actor();
    let shared_with =
        (actor.rights_over(detail) == AccountRights::OwnMembershipsOnly).then(|| actor.active_elsewhere(detail));
    let scope = actor.scope();
    let optional = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut facts = vec![
        ("Créé le", when(Some(detail.created_at))),
        ("Modifié le", when(Some(detail.updated_at))),
        ("Dernière connexion", when(detail.last_login_at)),
    ];
    if let Some(at) = detail.deactivated_at {
        facts.push(("Désactivé le", when(Some(at))));
    }
    for (label, value) in [
        ("Matière", optional(&u.subject)),
        ("Fonction", optional(&u.function_code)),
        ("Classe", optional(&u.class_name)),
        ("INE", optional(&u.ine)),
        ("Niveau", optional(&u.level)),
        ("Adresse", optional(&u.address)),
        ("Code postal", optional(&u.postal_code)),
        ("Ville", optional(&u.city)),
        ("Téléphone fixe", optional(&u.landline)),
    ] {
        if !value.is_empty() {
            facts.push((label, value));
        }
    }
    AccountPage {
        layout: Layout::of(state, auth),
        id: u.id,
        name: format!("{} {}", u.last_name.to_uppercase(), u.first_name),
        key: u.sync_key.clone(),
        login: if shared_with.is_some() {
            "connu de la personne et de son établissement d'origine".to_string()
        } else {
            u.login.clone()
        },
        profile: detail.profile.label(),
        source: detail.source.label(),
        aaf: detail.source == Source::Aaf,
        active: u.active,
        facts,
        memberships: detail
            .memberships
            .iter()
            .map(|m| (m.establishment.clone(), m.uai.to_string(), m.role.clone(), m.active))
            .collect(),
        groups: detail
            .groups
            .iter()
            .map(|g| format!("{} ({})", g.name, g.uai))
            .collect(),
        relatives_title: detail.relatives.first().map(|r| {
            if r.is_child {
                "Enfants"
            } else {
                "Responsables de l'élève"
            }
        }),
        relatives: detail
            .relatives
            .iter()
            .map(|r| {
                let mut link = vec![if r.is_child {
                    "enfant"
                } else {
                    r.relation.as_deref().map(relation_label).unwrap_or("autre lien")
                }];
                if r.legal_guardian {
                    link.push("responsable légal");
                }
                if r.financial {
                    link.push("responsable financier");
                }
                if r.contact {
                    link.push("à contacter");
                }
                (
                    r.id,
                    format!("{} {}", r.last_name.to_uppercase(), r.first_name),
                    link.join(", "),
                    if r.active { "actif" } else { "désactivé" },
                )
            })
            .collect(),
        protected: detail.state.settings.protected,
        shared_with,
        leavable: detail
            .memberships
            .iter()
            .filter(|m| m.active && scope.allows(&m.uai))
            .map(|m| (m.uai.to_string(), m.establishment.clone()))
            .collect(),
        may_switch: actor.rights_over(detail) == AccountRights::Full && detail.source != Source::Aaf,
        form,
        error,
        saved,
        left: None,
        activation: None,
        problems: Vec::new(),
    }
}

pub async fn show<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<AccountPage, AppError> {
    let detail = managed(&state, &auth, id).await?;
    let form = AccountForm::of(&detail);
    Ok(page(&state, &auth, &detail, form, None, None))
}

pub async fn save<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<AccountForm>,
) -> Result<AccountPage, AppError> {
    let (detail, version) = posted(&state, &auth, id, &form.csrf, &form.version).await?;
    let result = accounts::save_account(
        state.directory.as_ref(),
        &detail,
        Some(version),
        &form.change(),
        &auth.actor(),
        state.clock.now(),
    )
    .await;
    match result {
        Ok(saved) => {
            let detail = managed(&state, &auth, id).await?;
            let fresh = AccountForm::of(&detail);
            Ok(page(&state, &auth, &detail, fresh, None, Some(saved.changes)))
        }
        Err(AccountError::NotFound) => Err(AppError::NotFound),
        Err(AccountError::Store(e)) => Err(e.into()),
        // What was typed stays on the page, each field to correct marked.
        Err(AccountError::Invalid(problems)) => {
            let mut shown = page(&state, &auth, &detail, form, None, None);
            shown.problems = problems
                .into_iter()
                .map(|(field, e)| (field, e.message, form_label(field)))
                .collect();
            Ok(shown)
        }
        Err(
            e @ (AccountError::Stale
            | AccountError::Shared(_)
            | AccountError::NotMember(_)
            | AccountError::FeedOwned
            | AccountError::AlreadyThere(_)
            | AccountError::Deactivated
            | AccountError::Hash(_)),
        ) => {
            let fresh = AccountForm::of(&detail);
            Ok(page(&state, &auth, &detail, fresh, Some(e.to_string()), None))
        }
    }
}

/// The forms of the account page's actions (leave an establishment,
/// deactivate or reactivate).
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    /// The `updated_at` the page was built from.
    #[serde(default)]
    version: String,
    /// The establishment to leave.
    #[serde(default)]
    uai: String,
    /// "desactiver" or "reactiver": what the confirmation page asked.
    #[serde(default)]
    action: String,
}

/// POST /utilisateurs/{id}/retrait: ends the account's membership in one of
/// the admin's establishments (the only change allowed on a shared account).
pub async fn leave<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<ActionForm>,
) -> Result<AccountPage, AppError> {
    let (detail, version) = posted(&state, &auth, id, &form.csrf, &form.version).await?;
    let uai = domain::Uai::parse(&form.uai).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let result = accounts::leave_establishment(
        state.directory.as_ref(),
        &detail,
        Some(version),
        &uai,
        &auth.actor(),
        state.clock.now(),
    )
    .await;
    // Still theirs when it remains active (or belonged) in one of their establishments.
    after_action(&state, &auth, &detail, result, |shown, detail| {
        shown.left = Some(
            detail
                .memberships
                .iter()
                .find(|m| m.uai == uai)
                .map_or_else(|| uai.to_string(), |m| format!("{} ({})", m.establishment, m.uai)),
        );
    })
    .await
}

/// The account page after an action on it: read again and told what was
/// done, or as it was with the reason of the refusal.
async fn after_action<D: Backend>(
    state: &AppState<D>,
    auth: &Auth,
    before: &AccountDetail,
    result: Result<(), AccountError>,
    done: impl FnOnce(&mut AccountPage, &AccountDetail),
) -> Result<AccountPage, AppError> {
    match result {
        Ok(()) => {
            let detail = managed(state, auth, before.user.id).await?;
            let mut shown = page(state, auth, &detail, AccountForm::of(&detail), None, None);
            done(&mut shown, &detail);
            Ok(shown)
        }
        Err(AccountError::NotFound) => Err(AppError::NotFound),
        Err(AccountError::Store(e)) => Err(e.into()),
        Err(e) => Ok(page(
            state,
            auth,
            before,
            AccountForm::of(before),
            Some(e.to_string()),
            None,
        )),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "account_activation.html")]
pub struct ActivationPage {
    layout: Layout,
    id: i64,
    /// "Nicole LAVOISIER (nlavoisier)".
    who: String,
    establishments: String,
    /// True: the page confirms a reactivation.
    reactivate: bool,
    version: String,
}

/// GET /utilisateurs/{id}/activation: the confirmation, naming the account,
/// of a deactivation (or of a reactivation when it is deactivated).
pub async fn activation_page<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let detail = managed(&state, &auth, id).await?;
    if auth.actor().rights_over(&detail) != AccountRights::Full || detail.source == Source::Aaf {
        return Ok(Redirect::to(&format!("/utilisateurs/{id}")).into_response());
    }
    let u = &detail.user;
    let establishments: Vec<domain::Establishment> = detail
        .memberships
        .iter()
        .filter(|m| m.active || detail.deactivated_at.is_some())
        .map(MembershipLine::establishment)
        .collect();
    Ok(ActivationPage {
        layout: Layout::of(&state, &auth),
        id,
        who: format!("{} {} ({})", u.first_name, u.last_name.to_uppercase(), u.login),
        establishments: domain::establishment::establishment_list(&establishments),
        reactivate: detail.deactivated_at.is_some(),
        version: AccountForm::of(&detail).version,
    }
    .into_response())
}

/// POST /utilisateurs/{id}/activation: deactivates or reactivates, audited.
pub async fn activation<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<ActionForm>,
) -> Result<AccountPage, AppError> {
    let (detail, version) = posted(&state, &auth, id, &form.csrf, &form.version).await?;
    let active = match form.action.as_str() {
        "reactiver" => true,
        "desactiver" => false,
        _ => {
            return Err(AppError::BadRequest(
                "formulaire incomplet : rechargez la page du compte".into(),
            ))
        }
    };
    let result = accounts::set_active(
        state.directory.as_ref(),
        &detail,
        Some(version),
        active,
        &auth.actor(),
        state.clock.now(),
    )
    .await;
    after_action(&state, &auth, &detail, result, |shown, _| {
        shown.activation = Some(if active { "réactivé" } else { "désactivé" });
    })
    .await
}

#[derive(Template, WebTemplate)]
#[template(path = "account_password.html")]
pub struct PasswordPage {
    layout: Layout,
    id: i64,
    /// "Nicole LAVOISIER (nlavoisier)".
    who: String,
    version: String,
}

/// GET /utilisateurs/{id}/mot-de-passe: the confirmation, naming the
/// account, of a password reset.
pub async fn password_page<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let detail = managed(&state, &auth, id).await?;
    if auth.actor().rights_over(&detail) != AccountRights::Full || detail.deactivated_at.is_some() {
        return Ok(Redirect::to(&format!("/utilisateurs/{id}")).into_response());
    }
    let u = &detail.user;
    Ok(PasswordPage {
        layout: Layout::of(&state, &auth),
        id,
        who: format!("{} {} ({})", u.first_name, u.last_name.to_uppercase(), u.login),
        version: AccountForm::of(&detail).version,
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct VersionForm {
    csrf: String,
    #[serde(default)]
    version: String,
}

/// POST /utilisateurs/{id}/mot-de-passe: a new generated password, shown
/// once on a credential slip to print, to be changed at the next sign-in.
pub async fn reset_password<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<VersionForm>,
) -> Result<Response, AppError> {
    let (detail, version) = posted(&state, &auth, id, &form.csrf, &form.version).await?;
    let mut rng = domain::password::os_rng();
    let reset = match accounts::reset_password(
        state.directory.as_ref(),
        &detail,
        Some(version),
        &auth.actor(),
        &mut rng,
        state.clock.now(),
    )
    .await
    {
        Ok(reset) => reset,
        Err(AccountError::NotFound) => return Err(AppError::NotFound),
        Err(AccountError::Store(e)) => return Err(e.into()),
        Err(e) => {
            let fresh = AccountForm::of(&detail);
            return Ok(page(&state, &auth, &detail, fresh, Some(e.to_string()), None).into_response());
        }
    };
    let u = &detail.user;
    let mut slip = account_slip(&detail);
    slip.password = reset.password;
    crate::history::slips_page(
        &state,
        format!(
            "Nouveau mot de passe de {} {} : affiché cette seule fois, à changer à la première connexion",
            u.first_name,
            u.last_name.to_uppercase()
        ),
        format!("/utilisateurs/{id}"),
        "Retour au compte",
        vec![slip],
    )
    .await
}

/// The credential slip of an account, without its password.
fn account_slip(detail: &AccountDetail) -> domain::result_file::Slip {
    let u = &detail.user;
    domain::result_file::Slip {
        civility: u.civility.clone(),
        last_name: u.last_name.clone(),
        first_name: u.first_name.clone(),
        login: u.login.clone(),
        password: String::new(),
        establishments: detail
            .memberships
            .iter()
            .filter(|m| m.active)
            .map(|m| m.uai.to_string())
            .collect(),
    }
}

/// GET /utilisateurs/{id}/fiche: a new credential slip (login and sign-in
/// address; the password is not kept, so the slip does not carry it).
pub async fn slip<D: Backend>(
    State(state): State<AppState<D>>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let detail = managed(&state, &auth, id).await?;
    if auth.actor().rights_over(&detail) != AccountRights::Full {
        // A shared account's login is not this admin's to hand out.
        return Err(AppError::NotFound);
    }
    let u = &detail.user;
    let slip = account_slip(&detail);
    crate::history::slips_page(
        &state,
        format!("Fiche de connexion de {} {}", u.first_name, u.last_name.to_uppercase()),
        format!("/utilisateurs/{id}"),
        "Retour au compte",
        vec![slip],
    )
    .await
}
