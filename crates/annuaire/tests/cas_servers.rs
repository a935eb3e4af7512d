//! Issue 14, item 5: two `annuaire serve` processes on one PostgreSQL serve
//! the same people. A teacher signs in on one, changes the password handed
//! out on the other, gets tickets from both; each server validates the
//! other's tickets, a ticket is spent for both, and failed sign-ins counted
//! by one throttle the other.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashMap;
use support::{stderr, stdout, Backend, Env, Server};

/// One of the two servers, killed when dropped.
fn start(env: &Env) -> Server {
    Server::spawn(env.command(&["--no-mail", "serve", "--listen", "127.0.0.1:0"]))
}

/// A browser without redirects followed, keeping its cookies by name (one
/// host: every server is 127.0.0.1, as behind one address).
struct Browser {
    agent: ureq::Agent,
    cookies: HashMap<String, String>,
}

struct Page {
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
                .build()
                .into(),
            cookies: HashMap::new(),
        }
    }

    fn keep(&mut self, response: &mut ureq::http::Response<ureq::Body>) -> Page {
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Page {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string())
                .unwrap_or_default(),
            body: response.body_mut().read_to_string().unwrap(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn get(&mut self, url: &str) -> Page {
        let mut response = self
            .agent
            .get(url)
            .header("Cookie", &self.cookie_header())
            .call()
            .unwrap();
        self.keep(&mut response)
    }

    /// Posts a form with the CSRF token of `page`.
    fn post(&mut self, url: &str, page: &Page, fields: &[(&str, &str)]) -> Page {
        let csrf = hidden(&page.body, "csrf");
        let mut fields = fields.to_vec();
        fields.push(("csrf", &csrf));
        let mut response = self
            .agent
            .post(url)
            .header("Cookie", &self.cookie_header())
            .send_form(fields)
            .unwrap();
        self.keep(&mut response)
    }
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} in {page}")) + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

/// A query parameter's value, percent-encoded.
fn encoded(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn ticket_of(page: &Page, service: &str) -> String {
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(page.location.starts_with(service), "{}", page.location);
    page.location.split("ticket=").nth(1).unwrap().to_string()
}

fn validate(server: &Server, ticket: &str, service: &str) -> String {
    let mut response = ureq::get(&format!(
        "{}/cas/p3/serviceValidate?ticket={ticket}&service={}",
        server.url,
        encoded(service)
    ))
    .call()
    .unwrap();
    response.body_mut().read_to_string().unwrap()
}

#[test]
fn two_servers_on_one_postgresql_share_sessions_tickets_and_throttling() {
    let Some(Backend::Postgres(admin_url)) = Backend::all().into_iter().find(|b| matches!(b, Backend::Postgres(_)))
    else {
        return;
    };
    let env = Env::on(&Backend::Postgres(admin_url));
    let file = env.write(
        "enseignants.csv",
        "Civilité;Nom;Prénom;Matière\r\nMadame;LAVOISIER;Nicole;Physique-Chimie\r\n".as_bytes(),
    );
    let out = env.run(&[
        "import",
        &file,
        "--profile",
        "enseignant",
        "--establishment",
        "0750654D",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = env.users()[0]["sync_key"].as_str().unwrap().to_string();
    let out = env.run(&["users", "reset-password", &key]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let login = printed
        .split("login ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    let handed_out = printed
        .split("Nouveau mot de passe : ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let service = "http://127.0.0.1:9/vie-scolaire/";
    let out = env.run(&["services", "add", "vie-scolaire", service]);
    assert!(out.status.success(), "{}", stderr(&out));

    let one = start(&env);
    let two = start(&env);
    let mut browser = Browser::new();
    let sign_in = |server: &Server| format!("{}/cas/login?service={}", server.url, encoded(service));

    // Signed in on one, the password changed on two: the session is in the database.
    let form = browser.get(&sign_in(&one));
    assert_eq!(form.status, 200, "{}", form.body);
    let change = browser.post(
        &format!("{}/cas/login", one.url),
        &form,
        &[("username", &login), ("password", &handed_out), ("service", service)],
    );
    assert!(change.body.contains("name=\"new_password\""), "{}", change.body);
    let done = browser.post(
        &format!("{}/cas/mot-de-passe", two.url),
        &change,
        &[
            ("new_password", "trois pommes et deux poires"),
            ("confirm_password", "trois pommes et deux poires"),
            ("service", service),
        ],
    );
    let from_two = ticket_of(&done, service);
    let answer = validate(&one, &from_two, service);
    assert!(answer.contains(&format!("<cas:user>{login}</cas:user>")), "{answer}");
    let replay = validate(&two, &from_two, service);
    assert!(replay.contains("code=\"INVALID_TICKET\""), "{replay}");

    // Single sign-on from the other server; each validates the other's tickets.
    let from_one = ticket_of(&browser.get(&sign_in(&one)), service);
    assert!(validate(&two, &from_one, service).contains("<cas:isFromNewLogin>false</cas:isFromNewLogin>"));

    // Failures counted by one throttle the other (5 per login in 15 minutes).
    let mut stranger = Browser::new();
    for attempt in 0..5 {
        let server = if attempt % 2 == 0 { &one } else { &two };
        let page = stranger.get(&sign_in(server));
        let refused = stranger.post(
            &format!("{}/cas/login", server.url),
            &page,
            &[("username", &login), ("password", "pas le bon"), ("service", service)],
        );
        assert!(
            refused.body.contains("Identifiant ou mot de passe incorrect."),
            "{}",
            refused.body
        );
    }
    let page = stranger.get(&sign_in(&two));
    let throttled = stranger.post(
        &format!("{}/cas/login", two.url),
        &page,
        &[
            ("username", &login),
            ("password", "trois pommes et deux poires"),
            ("service", service),
        ],
    );
    assert_eq!(throttled.status, 401);
    assert!(throttled.body.contains("trop de tentatives"), "{}", throttled.body);

    // Logout on two ends the session on one as well (even with the cookie kept).
    let kept = browser.cookies["annuaire_cas"].clone();
    browser.get(&format!("{}/cas/logout", two.url));
    browser.cookies.insert("annuaire_cas".into(), kept);
    let again = browser.get(&sign_in(&one));
    assert_eq!(again.status, 200, "a sign-in form, no ticket: {}", again.location);
}
