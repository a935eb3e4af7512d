//! Single logout (CAS specification §2.3.3): when a person signs out of the
//! ENT, each service that validated a ticket in their session receives a
//! back-channel POST with a SAML `LogoutRequest` naming that ticket, so it
//! can end its own session. Best effort, as the specification allows: one
//! attempt per service with a short timeout, off the request (the logout page
//! never waits for a slow service), a failure logged and counted.

use crate::AppState;
use domain::cas as protocol;
use std::time::Duration;
use store::cas::ValidatedTicket;

/// How long one service may take to acknowledge a logout.
const TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn send<D>(state: &AppState<D>, validated: Vec<ValidatedTicket>) {
    if validated.is_empty() {
        return;
    }
    let now = state.now();
    let metrics = std::sync::Arc::clone(&state.metrics);
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .provider(ureq::tls::TlsProvider::NativeTls)
                    .build(),
            )
            .build()
            .into();
        let mut rng = domain::password::os_rng();
        for ticket in validated {
            let id = protocol::new_ticket("LR-", &mut rng);
            let request = protocol::logout_request(&id, &ticket.ticket, now);
            match agent
                .post(&ticket.service)
                .send_form([("logoutRequest", request.as_str())])
            {
                Ok(answer) if answer.status().is_success() => metrics.cas_logout_sent(),
                Ok(answer) => {
                    metrics.cas_logout_failed();
                    tracing::warn!(service = %ticket.service, status = answer.status().as_u16(), "déconnexion unique refusée par le service");
                }
                Err(e) => {
                    metrics.cas_logout_failed();
                    tracing::warn!(service = %ticket.service, error = %e, "déconnexion unique : service injoignable");
                }
            }
        }
    });
}
