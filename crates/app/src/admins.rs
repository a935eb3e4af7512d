//! The directory's administrators, created by a system admin (the command
//! line's operator today): ENT-wide, or bound to their establishments.

use crate::{Actor, Result};
use chrono::{DateTime, Utc};
use domain::password::{self, SecretOrigin};
use domain::Uai;
use store::admin::AdminError;
use store::web::WebDirectory;

/// Shortest password an administrator may choose.
pub const MIN_ADMIN_PASSWORD_LEN: usize = 12;

/// What the system admin asks for.
#[derive(Debug, Clone, Default)]
pub struct NewAdmin {
    pub login: String,
    pub system: bool,
    pub establishments: Vec<Uai>,
    pub email: Option<String>,
    /// Chosen by the person; none: one is generated and shown once.
    pub password: Option<String>,
}

/// The created admin; `generated_password` is shown once and stored nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedAdmin {
    pub id: i64,
    pub login: String,
    pub generated_password: Option<String>,
}

fn invalid(message: impl Into<String>) -> crate::Error {
    crate::Error::Admin(AdminError::Invalid(message.into()))
}

/// Creates an administrator, their password hashed at the full Argon2id cost.
pub async fn create<D: WebDirectory, R: rand::RngCore + rand::CryptoRng>(
    d: &D,
    actor: &Actor,
    new: &NewAdmin,
    now: DateTime<Utc>,
    rng: &mut R,
) -> Result<CreatedAdmin> {
    actor.require_system("créer un administrateur")?;
    let login = new.login.trim().to_lowercase();
    domain::values::Login::parse(&login).map_err(|e| invalid(e.message))?;
    let email = new
        .email
        .as_deref()
        .map(|e| domain::values::Email::parse(e).map_err(|e| invalid(e.message)))
        .transpose()?;
    if !new.system && new.establishments.is_empty() {
        return Err(invalid(
            "un administrateur est soit administrateur système, soit administrateur d'au moins un établissement : précisez lequel",
        ));
    }
    let (secret, generated) = match &new.password {
        Some(chosen) if chosen.chars().count() < MIN_ADMIN_PASSWORD_LEN => {
            return Err(invalid(format!(
                "mot de passe d'administrateur trop court : {MIN_ADMIN_PASSWORD_LEN} caractères au moins"
            )))
        }
        Some(chosen) => (chosen.clone(), false),
        None => (password::generate(rng), true),
    };
    let salt = password::salt(rng);
    let hash = password::hash(&secret, SecretOrigin::Chosen, &salt).map_err(AdminError::from)?;
    let id = d
        .create_admin(&login, &hash, new.system, &new.establishments, now)
        .await?;
    if let Some(email) = &email {
        d.set_admin_email(id, Some(email.as_str())).await?;
    }
    Ok(CreatedAdmin {
        id,
        login,
        generated_password: generated.then_some(secret),
    })
}
