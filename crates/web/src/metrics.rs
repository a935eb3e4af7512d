//! Prometheus metrics at `/metrics`, in the text format Prometheus scrapes:
//! what an operator of several servers over one database watches. Counters
//! are this process's (Prometheus sums them over the servers); the job queue
//! is read from the database at each scrape, so every server tells the same.
//! They hold counts only, never a name or a login: no secret can leak here.

use domain::vocabulary::{Channel, JobStatus};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ImportLabels {
    status: String,
    door: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CasLabels {
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    class: String,
}

pub struct Metrics {
    registry: Registry,
    imports: Family<ImportLabels, Counter>,
    import_rows: Counter,
    import_seconds: Histogram,
    mail_failures: Counter,
    sign_in_failures: Counter,
    cas: Family<CasLabels, Counter>,
    responses: Family<ResponseLabels, Counter>,
    queued_jobs: Gauge,
    oldest_queued_job_seconds: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("annuaire");
        let imports = Family::<ImportLabels, Counter>::default();
        registry.register(
            "imports",
            "Imports run by this server, by status and door (web, api, schedule)",
            imports.clone(),
        );
        let import_rows = Counter::default();
        registry.register(
            "import_rows",
            "Lines or requests read by this server's imports (rate: rows per second)",
            import_rows.clone(),
        );
        // From a few lines to a whole academy's feed.
        let import_seconds = Histogram::new([0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 60.0, 180.0, 600.0, 1800.0]);
        registry.register(
            "import_duration_seconds",
            "Duration of this server's imports",
            import_seconds.clone(),
        );
        let mail_failures = Counter::default();
        registry.register(
            "mail_failures",
            "Notices this server could not send (the queue retries them)",
            mail_failures.clone(),
        );
        let sign_in_failures = Counter::default();
        registry.register(
            "sign_in_failures",
            "Refused sign-ins (wrong login or password, throttled)",
            sign_in_failures.clone(),
        );
        let cas = Family::<CasLabels, Counter>::default();
        registry.register(
            "cas_events",
            "CAS server events: tickets issued and validated, single logouts sent and failed",
            cas.clone(),
        );
        let responses = Family::<ResponseLabels, Counter>::default();
        registry.register(
            "http_responses",
            "HTTP responses by status class (2xx, 3xx, 4xx, 5xx)",
            responses.clone(),
        );
        let queued_jobs = Gauge::default();
        registry.register(
            "queued_jobs",
            "Import jobs waiting in the shared queue",
            queued_jobs.clone(),
        );
        let oldest_queued_job_seconds = Gauge::default();
        registry.register(
            "oldest_queued_job_age_seconds",
            "Age of the oldest waiting import job (0 when none waits)",
            oldest_queued_job_seconds.clone(),
        );
        Metrics {
            registry,
            imports,
            import_rows,
            import_seconds,
            mail_failures,
            sign_in_failures,
            cas,
            responses,
            queued_jobs,
            oldest_queued_job_seconds,
        }
    }
}

impl Metrics {
    pub fn import_finished(&self, door: Channel, status: JobStatus, rows: usize, took: Duration) {
        self.imports
            .get_or_create(&ImportLabels {
                status: status.id().to_string(),
                door: door.id().to_string(),
            })
            .inc();
        self.import_rows.inc_by(rows as u64);
        self.import_seconds.observe(took.as_secs_f64());
    }

    pub fn mail_failed(&self) {
        self.mail_failures.inc();
    }

    pub fn sign_in_failed(&self) {
        self.sign_in_failures.inc();
    }

    fn cas_event(&self, event: &'static str) {
        self.cas.get_or_create(&CasLabels { event }).inc();
    }

    pub fn cas_ticket_issued(&self) {
        self.cas_event("ticket_issued");
    }

    pub fn cas_ticket_validated(&self) {
        self.cas_event("ticket_validated");
    }

    pub fn cas_logout_sent(&self) {
        self.cas_event("logout_sent");
    }

    pub fn cas_logout_failed(&self) {
        self.cas_event("logout_failed");
    }

    pub fn responded(&self, status: u16) {
        self.responses
            .get_or_create(&ResponseLabels {
                class: format!("{}xx", status / 100),
            })
            .inc();
    }

    /// The text exposition, with the queue as the database holds it now.
    pub fn render(&self, queued: i64, oldest_age_seconds: i64) -> String {
        self.queued_jobs.set(queued);
        self.oldest_queued_job_seconds.set(oldest_age_seconds.max(0));
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}
