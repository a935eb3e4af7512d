//! The OpenAPI 3.1 document of the JSON API, derived by utoipa from the
//! handlers' `#[utoipa::path]` and the types they answer with (`crate::api`).
//! The snapshot test `the_openapi_document_matches_its_snapshot` shows every
//! change of the contract as a diff.

use crate::api;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "annuaire",
        description = "Import CSV d'utilisateurs : les cinq étapes de l'assistant pour l'automatisation."
    ),
    paths(
        api::create_draft,
        api::set_mapping,
        api::check,
        api::edit_row,
        api::plan,
        api::start,
        api::job,
        api::job_result,
        api::imports,
        api::import,
        api::duplicates,
        api::reconcile,
        api::lvs,
    ),
    modifiers(&Authentication),
    security(("bearer" = []), ("session" = []))
)]
struct ApiDoc;

/// A bearer token (`annuaire admin token LOGIN`) or the session cookie of the pages.
struct Authentication;

impl Modify for Authentication {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::auth::SESSION_COOKIE))),
        );
    }
}

/// The document, as `/api/openapi.json` serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
