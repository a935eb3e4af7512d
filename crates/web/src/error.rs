//! One error type for every handler, turned into a French page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Not logged in: back to the login page.
    #[error("connexion requise")]
    LoginRequired,
    /// Missing or wrong CSRF token.
    #[error("formulaire expiré ou envoyé depuis un autre site : rechargez la page et recommencez")]
    Csrf,
    /// Absent, or someone else's: the same answer, so nothing leaks.
    #[error("page introuvable")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    /// A draft a job imported or is importing: its page is the job's, never
    /// a second "Démarrer".
    #[error("ce fichier a déjà été importé ou est en cours d'import (tâche {job}) : suivez-le sur /taches/{job}, ou chargez un nouveau fichier pour un autre import")]
    AlreadyImported { job: i64 },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Import(#[from] store::service::ImportError),
    #[error("{0}")]
    Admin(#[from] store::admin::AdminError),
    #[error("page impossible à afficher : {0}")]
    Page(String),
    /// A body over the upload cap, in bytes.
    #[error("fichier trop volumineux : {} Mio au plus ; découpez-le en plusieurs fichiers", .0 / (1024 * 1024))]
    TooLarge(usize),
}

impl From<app::Error> for AppError {
    fn from(e: app::Error) -> AppError {
        match e {
            app::Error::NotFound => AppError::NotFound,
            e @ app::Error::SystemOnly(_) => AppError::Forbidden(e.to_string()),
            app::Error::Admin(e) => AppError::Admin(e),
            app::Error::Store(e) => AppError::Store(e),
        }
    }
}

impl From<app::accounts::AccountError> for AppError {
    /// For the acts whose refusals the account page does not show in place.
    fn from(e: app::accounts::AccountError) -> AppError {
        match e {
            app::accounts::AccountError::NotFound => AppError::NotFound,
            app::accounts::AccountError::Store(e) => AppError::Store(e),
            other => AppError::BadRequest(other.to_string()),
        }
    }
}

impl AppError {
    /// One status per error, for the pages and the API alike.
    pub fn status(&self) -> StatusCode {
        if self.store_error().is_some_and(store::StoreError::is_unavailable) {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        match self {
            AppError::LoginRequired => StatusCode::UNAUTHORIZED,
            AppError::Csrf | AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::AlreadyImported { .. } => StatusCode::CONFLICT,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Import(store::service::ImportError::Store(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Import(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Admin(store::admin::AdminError::Store(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Admin(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Store(_) | AppError::Page(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl AppError {
    /// The storage failure behind this error, if any.
    fn store_error(&self) -> Option<&store::StoreError> {
        match self {
            AppError::Store(e)
            | AppError::Import(store::service::ImportError::Store(e))
            | AppError::Admin(store::admin::AdminError::Store(e)) => Some(e),
            _ => None,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::LoginRequired => return Redirect::to("/connexion").into_response(),
            AppError::AlreadyImported { job } => return Redirect::to(&format!("/taches/{job}")).into_response(),
            _ => {}
        }
        let status = self.status();
        let page = crate::pages::ErrorPage {
            layout: crate::pages::Layout::anonymous("annuaire"),
            title: if status == StatusCode::NOT_FOUND {
                "Page introuvable"
            } else {
                "Erreur"
            }
            .to_string(),
            message: self.to_string(),
        };
        (status, page).into_response()
    }
}
