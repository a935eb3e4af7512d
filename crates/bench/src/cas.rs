//! The CAS server's measures (issue 14, item 8), over HTTP against two
//! `annuaire serve` run in this process on one database (two connection
//! pools, two listeners: what two servers behind one address share is the
//! database): sign-ins per second at the full Argon2id cost against one
//! core's verify rate, ticket validations per second, and the "Monday 8 a.m."
//! run (people signing in and opening two services, through both servers),
//! with p50/p99 latencies and errors. Clients are blocking HTTP clients on
//! threads, as many browsers and services would be.

use crate::Figure;
use anyhow::{bail, Context, Result};
use domain::password::{self, SecretOrigin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every bench account's password (one hash for all: a verification costs
/// the same whichever account it checks, and hashing thousands of chosen
/// passwords at the full cost would only slow the setup down).
const PASSWORD: &str = "un mot de passe de banc d'essai";
const SERVICE_A: &str = "http://127.0.0.1:9/vie-scolaire/";
const SERVICE_B: &str = "http://127.0.0.1:9/manuels/";
/// Concurrent clients of the throughput runs, per core.
const CLIENTS_PER_CORE: usize = 8;

/// A teachers file of `n` people (logins and passwords generated: cheap
/// hashes, replaced by [`chosen_hash`] once imported).
pub(crate) fn teachers_file(n: usize) -> Vec<u8> {
    let mut file = String::from("Civilité;Nom;Prénom;Matière\r\n");
    for i in 0..n {
        file.push_str(&format!("M.;BANC{};Jean;Anglais\r\n", crate::letter_suffix(i)));
    }
    file.into_bytes()
}

/// The hash every bench account gets: a chosen password at the full cost.
pub(crate) fn chosen_hash() -> Result<String> {
    let mut rng = domain::password::os_rng();
    Ok(password::hash(
        PASSWORD,
        SecretOrigin::Chosen,
        &password::salt(&mut rng),
    )?)
}

/// The two services every person opens.
pub(crate) async fn register_services<D: app::Backend>(d: &D) -> Result<()> {
    let operator = app::Actor::operator("bench".into());
    for (name, url) in [("vie-scolaire", SERVICE_A), ("manuels", SERVICE_B)] {
        app::cas::add_service(d, &operator, name, url, &[], "", false, chrono::Utc::now())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// A server of the bench: its address; stopped when dropped.
pub(crate) struct Server {
    pub(crate) url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _outbox: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `annuaire serve` on a loopback port over this directory.
pub(crate) async fn serve<D: app::Backend>(directory: D) -> Result<Server> {
    let outbox = tempfile::tempdir()?;
    let notifier = mail::Notifier::new(mail::MailSettings {
        transport: mail::TransportConfig::Outbox(outbox.path().to_path_buf()),
        ..mail::MailSettings::default()
    })?;
    let state = web::AppState {
        directory: Arc::new(directory),
        clock: Arc::new(store::service::SystemClock),
        config: web::WebConfig::default(),
        notifier: Arc::new(notifier),
        metrics: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(web::serve(state, listener, None, async move {
        let _ = stopped.await;
    }));
    Ok(Server {
        url,
        stop: Some(stop),
        _outbox: outbox,
    })
}

/// One person's browser: no redirect followed, the CAS cookies kept.
struct Browser {
    agent: ureq::Agent,
    cookies: Vec<(String, String)>,
}

struct Answer {
    status: u16,
    location: String,
    body: String,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            agent: ureq::Agent::config_builder()
                .max_redirects(0)
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(120)))
                .build()
                .into(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, mut response: ureq::http::Response<ureq::Body>) -> Result<Answer> {
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str()?.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.retain(|(k, _)| k != name);
                if !value.is_empty() {
                    self.cookies.push((name.to_string(), value.to_string()));
                }
            }
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(Answer {
            status: response.status().as_u16(),
            location,
            body: response.body_mut().read_to_string()?,
        })
    }

    fn get(&mut self, url: &str) -> Result<Answer> {
        let response = self.agent.get(url).header("Cookie", &self.cookie_header()).call()?;
        self.keep(response)
    }

    fn post(&mut self, url: &str, fields: &[(&str, &str)]) -> Result<Answer> {
        let response = self
            .agent
            .post(url)
            .header("Cookie", &self.cookie_header())
            .send_form(fields.iter().copied())?;
        self.keep(response)
    }
}

/// A query parameter's value, percent-encoded.
fn encoded(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn hidden(page: &str, name: &str) -> Result<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).context("champ caché absent")? + marker.len();
    Ok(page[start..].split('"').next().unwrap_or_default().to_string())
}

fn ticket_of(answer: &Answer) -> Result<String> {
    if answer.status != 303 {
        bail!("pas de redirection vers le service (HTTP {})", answer.status);
    }
    answer
        .location
        .split("ticket=")
        .nth(1)
        .map(str::to_string)
        .context("pas de ticket dans la redirection")
}

/// The timed steps of one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Step {
    /// The form, then the password posted: a ticket for the first service.
    SignIn,
    /// The second service's ticket, by single sign-on.
    Sso,
    /// A service validates its ticket (`p3/serviceValidate`).
    Validate,
}

impl Step {
    fn label(self) -> &'static str {
        match self {
            Step::SignIn => "sign-in (form + password, Argon2id)",
            Step::Sso => "second service ticket (SSO)",
            Step::Validate => "ticket validation",
        }
    }
}

/// The latencies of each step, and the errors.
#[derive(Default)]
struct Latencies {
    samples: Mutex<Vec<(Step, Duration)>>,
    errors: AtomicUsize,
}

impl Latencies {
    fn time<T>(&self, step: Step, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let outcome = work();
        match &outcome {
            Ok(_) => {
                if let Ok(mut samples) = self.samples.lock() {
                    samples.push((step, start.elapsed()));
                }
            }
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        outcome
    }

    /// p50 and p99 of a step, in milliseconds.
    fn percentiles(&self, step: Step) -> (f64, f64, usize) {
        let mut times: Vec<Duration> = self
            .samples
            .lock()
            .map(|s| s.iter().filter(|(k, _)| *k == step).map(|(_, d)| *d).collect())
            .unwrap_or_default();
        times.sort();
        let at = |q: f64| {
            times
                .get(((times.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        (at(0.50), at(0.99), times.len())
    }
}

/// One person: signs in on `front` for service A, opens service B by SSO;
/// each service validates its ticket on `back` (the other server).
fn monday_person(front: &str, back: &str, login: &str, latencies: &Latencies) -> Result<()> {
    let mut browser = Browser::new();
    let ticket_a = latencies.time(Step::SignIn, || {
        let form = browser.get(&format!("{front}/cas/login?service={}", encoded(SERVICE_A)))?;
        let csrf = hidden(&form.body, "csrf")?;
        let answer = browser.post(
            &format!("{front}/cas/login"),
            &[
                ("username", login),
                ("password", PASSWORD),
                ("service", SERVICE_A),
                ("csrf", &csrf),
            ],
        )?;
        ticket_of(&answer)
    })?;
    validate(back, &ticket_a, SERVICE_A, latencies)?;
    let ticket_b = latencies.time(Step::Sso, || {
        ticket_of(&browser.get(&format!("{front}/cas/login?service={}", encoded(SERVICE_B)))?)
    })?;
    validate(back, &ticket_b, SERVICE_B, latencies)
}

fn validate(server: &str, ticket: &str, service: &str, latencies: &Latencies) -> Result<()> {
    latencies.time(Step::Validate, || {
        let mut answer = ureq::get(&format!(
            "{server}/cas/p3/serviceValidate?ticket={ticket}&service={}",
            encoded(service)
        ))
        .call()?;
        let body = answer.body_mut().read_to_string()?;
        if !body.contains("<cas:authenticationSuccess>") {
            bail!("validation refusée : {body}");
        }
        Ok(())
    })
}

/// Runs `work(i)` for i in 0..n on `threads` threads; the wall time.
fn on_threads(n: usize, threads: usize, work: impl Fn(usize) + Sync) -> Duration {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                work(i);
            });
        }
    });
    start.elapsed()
}

/// One core's rate of Argon2id verifications of a chosen password: the
/// baseline of the sign-in rate.
pub(crate) fn verify_rate(hash: &str, samples: usize) -> Result<Figure> {
    let start = Instant::now();
    for _ in 0..samples {
        if !password::verify(PASSWORD, hash) {
            bail!("le mot de passe du banc d'essai ne se vérifie pas");
        }
    }
    Ok(Figure::new(
        "Argon2id verify, chosen password",
        "1 thread",
        samples,
        start.elapsed(),
    ))
}

/// The CAS measures on two servers of one backend: `people` sign-ins for the
/// throughput figures, then `monday` people for the Monday run (the first of
/// `logins` each time).
pub(crate) fn measure(
    backend: &str,
    servers: [&str; 2],
    logins: &[String],
    people: usize,
    monday: usize,
    verify_per_core: f64,
    cores: usize,
) -> Result<Vec<Figure>> {
    if logins.len() < people.max(monday) {
        bail!("{} comptes pour {} personnes", logins.len(), people.max(monday));
    }
    let clients = cores * CLIENTS_PER_CORE;
    let [one, two] = servers;
    let mut figures = Vec::new();

    // Sign-ins per second, all on one server, at the full Argon2id cost.
    let signed = Latencies::default();
    let tickets = Mutex::new(Vec::with_capacity(people));
    let took = on_threads(people, clients, |i| {
        let mut browser = Browser::new();
        let ticket = signed.time(Step::SignIn, || {
            let form = browser.get(&format!("{one}/cas/login?service={}", encoded(SERVICE_A)))?;
            let csrf = hidden(&form.body, "csrf")?;
            let answer = browser.post(
                &format!("{one}/cas/login"),
                &[
                    ("username", &logins[i]),
                    ("password", PASSWORD),
                    ("service", SERVICE_A),
                    ("csrf", &csrf),
                ],
            )?;
            ticket_of(&answer)
        });
        if let (Ok(ticket), Ok(mut all)) = (ticket, tickets.lock()) {
            all.push(ticket);
        }
    });
    let errors = signed.errors.load(Ordering::Relaxed);
    let (p50, p99, _) = signed.percentiles(Step::SignIn);
    figures.push(
        Figure::new("CAS sign-ins, chosen passwords", backend, people - errors, took)
            .against(
                &format!("Argon2id verify x {cores} cores"),
                verify_per_core * cores as f64,
            )
            .note(format!(
                "target ≥ 0.85; {clients} clients; p50 {p50:.0} ms, p99 {p99:.0} ms; {errors} error(s)"
            )),
    );

    // Validations per second, on the other server.
    let tickets = tickets.into_inner().unwrap_or_default();
    let validated = Latencies::default();
    let took = on_threads(tickets.len(), clients, |i| {
        let _ = validate(two, &tickets[i], SERVICE_A, &validated);
    });
    let errors = validated.errors.load(Ordering::Relaxed);
    let (p50, p99, _) = validated.percentiles(Step::Validate);
    figures.push(
        Figure::new("CAS ticket validations", backend, tickets.len() - errors, took).note(format!(
            "target ≥ 2,000/s; p3/serviceValidate with attributes, on the other server; {clients} clients; p50 {p50:.1} ms, p99 {p99:.1} ms; {errors} error(s)"
        )),
    );

    // Monday 8 a.m.: each person signs in and opens two services; the
    // browsers alternate the servers, the services validate on the other.
    if monday > 0 {
        let latencies = Latencies::default();
        let took = on_threads(monday, clients * 4, |i| {
            let (front, back) = if i % 2 == 0 { (one, two) } else { (two, one) };
            let _ = monday_person(front, back, &logins[i], &latencies);
        });
        let errors = latencies.errors.load(Ordering::Relaxed);
        let mut note = format!(
            "{monday} people in {:.1} s (target ≤ 60 s), 2 servers, {} clients; {errors} error(s)",
            took.as_secs_f64(),
            clients * 4
        );
        for step in [Step::SignIn, Step::Sso, Step::Validate] {
            let (p50, p99, n) = latencies.percentiles(step);
            note.push_str(&format!("; {} ×{n}: p50 {p50:.0} ms, p99 {p99:.0} ms", step.label()));
        }
        figures.push(
            Figure::new(
                "CAS Monday 8 a.m. (sign in + 2 services)",
                backend,
                monday - errors.min(monday),
                took,
            )
            .note(note),
        );
    }
    Ok(figures)
}
