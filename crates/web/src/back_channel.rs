//! The CAS server's calls to services (the back channel): the single logout
//! (specification §2.3.3) and the delivery of proxy-granting tickets to a
//! proxy's callback (§2.5.4). Both are HTTP requests from the server, with a
//! short timeout, certificates checked by the system's TLS, no redirect
//! followed, run on blocking threads so that no request waits on a service.

use crate::AppState;
use domain::cas as protocol;
use std::time::Duration;
use store::cas::ValidatedTicket;

/// How long a service may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::NativeTls)
                .build(),
        )
        .build()
        .into()
}

/// When a person signs out of the ENT, each service that validated a ticket
/// in their session receives a POST with a SAML `LogoutRequest` naming that
/// ticket, so it can end its own session. Best effort, as the specification
/// allows: one attempt per service, off the request, a failure logged and
/// counted.
pub(crate) fn send_logouts<D>(state: &AppState<D>, validated: Vec<ValidatedTicket>) {
    if validated.is_empty() {
        return;
    }
    let now = state.now();
    let metrics = std::sync::Arc::clone(&state.metrics);
    tokio::task::spawn_blocking(move || {
        let agent = agent();
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

/// Delivers proxy-granting tickets by an HTTPS GET on the proxy's callback
/// with `pgtIou` and `pgtId`; only a 200 counts as delivered.
pub(crate) struct HttpProxyCallback;

impl app::cas::ProxyCallback for HttpProxyCallback {
    async fn deliver(&self, url: &str, iou: &str, pgt: &str) -> bool {
        let (url, iou, pgt) = (url.to_string(), iou.to_string(), pgt.to_string());
        let delivered = tokio::task::spawn_blocking(move || {
            match agent().get(&url).query("pgtIou", &iou).query("pgtId", &pgt).call() {
                Ok(answer) if answer.status().as_u16() == 200 => true,
                Ok(answer) => {
                    tracing::warn!(callback = %url, status = answer.status().as_u16(), "rappel du proxy refusé : pas de PGT");
                    false
                }
                Err(e) => {
                    tracing::warn!(callback = %url, error = %e, "rappel du proxy injoignable : pas de PGT");
                    false
                }
            }
        })
        .await;
        delivered.unwrap_or(false)
    }
}
