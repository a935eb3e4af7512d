//! The pure parts of the CAS server (Apereo CAS protocol specification,
//! versions 1.0, 2.0 and 3.0): which registered service a URL belongs to,
//! tickets, the attributes a service may read, and the validation answers in
//! the three formats (v1 text, XML, JSON) with the specification's failure
//! codes. Storage and the HTTP doors live elsewhere.

use crate::{Profile, Uai};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use quick_xml::escape::escape;
use serde_json::{json, Map, Value};

/// The prefix of a service ticket (specification §3.1).
pub const SERVICE_TICKET: &str = "ST-";
/// The prefix of the single sign-on cookie's value (ticket-granting ticket).
pub const GRANTING_TICKET: &str = "TGC-";
/// A proxy-granting ticket, given to a service's callback (§3.3).
pub const PROXY_GRANTING_TICKET: &str = "PGT-";
/// What the validation answer names instead of the PGT itself (§3.4).
pub const PROXY_GRANTING_IOU: &str = "PGTIOU-";
/// A proxy ticket, for a back-end service (§3.2).
pub const PROXY_TICKET: &str = "PT-";

/// The tickets a session gives, as the tickets table names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketKind {
    Service,
    Proxy,
    ProxyGranting,
}

impl TicketKind {
    pub fn code(self) -> &'static str {
        match self {
            TicketKind::Service => "ST",
            TicketKind::Proxy => "PT",
            TicketKind::ProxyGranting => "PGT",
        }
    }

    pub fn parse(code: &str) -> Option<TicketKind> {
        [TicketKind::Service, TicketKind::Proxy, TicketKind::ProxyGranting]
            .into_iter()
            .find(|k| k.code() == code)
    }

    pub fn prefix(self) -> &'static str {
        match self {
            TicketKind::Service => SERVICE_TICKET,
            TicketKind::Proxy => PROXY_TICKET,
            TicketKind::ProxyGranting => PROXY_GRANTING_TICKET,
        }
    }
}

/// A new ticket: the prefix and 256 random bits in hex (67 characters for a
/// service ticket, well under the specification's 256).
pub fn new_ticket<R: rand::RngCore + rand::CryptoRng>(prefix: &str, rng: &mut R) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    let mut ticket = String::with_capacity(prefix.len() + 64);
    ticket.push_str(prefix);
    for b in bytes {
        ticket.push_str(&format!("{b:02x}"));
    }
    ticket
}

/// Checks the URL prefix of a service being registered: an absolute `http`
/// or `https` URL with a host, no spaces, no fragment. Scheme and host are
/// lowercased, as browsers and clients send them.
pub fn check_url_prefix(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let hint = "indiquez une adresse complète, par exemple https://vie-scolaire.exemple.fr/";
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err(format!("« {raw} » n'est pas une adresse web : {hint}"));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "« {raw} » : seules les adresses http et https sont acceptées ; {hint}"
        ));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) || raw.contains('#') {
        return Err(format!("« {raw} » contient un espace ou un « # » : {hint}"));
    }
    let (host, path) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if host.is_empty() || host.contains('@') {
        return Err(format!("« {raw} » n'a pas de nom de serveur : {hint}"));
    }
    // A name, an IPv4 or a bracketed IPv6 address, and a port: nothing that
    // could end a header (the pages' security policy names the origin).
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    {
        return Err(format!("« {raw} » : nom de serveur invalide ; {hint}"));
    }
    Ok(format!("{scheme}://{}{path}", host.to_ascii_lowercase()))
}

/// True when `service` (the URL a client sent) falls under a registered
/// prefix. The prefix must end where the URL's host, path segment or query
/// ends: `https://vs.exemple.fr` does not cover `https://vs.exemple.fr.pirate.net`.
pub fn service_matches(prefix: &str, service: &str) -> bool {
    let Ok(service) = check_url_prefix(service) else {
        return false;
    };
    let Some(rest) = service.strip_prefix(prefix) else {
        return false;
    };
    rest.is_empty() || prefix.ends_with(['/', '?', '&', '=']) || rest.starts_with(['/', '?', '#'])
}

/// A proxy callback (`pgtUrl`) must be HTTPS (§2.5.4), except on the
/// machine itself (`localhost`, `127.0.0.1`, `[::1]`), where a service under
/// development listens.
pub fn check_proxy_callback(url: &str) -> Result<(), String> {
    let checked = check_url_prefix(url)?;
    if checked.starts_with("https://") {
        return Ok(());
    }
    let host = checked
        .trim_start_matches("http://")
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    if matches!(name, "localhost" | "127.0.0.1" | "[::1]") {
        Ok(())
    } else {
        Err(format!("l'adresse de rappel {url} doit être en https"))
    }
}

/// The origin (`scheme://host[:port]`) of a URL, for the pages' content
/// security policy: a sign-in form may lead only to the service it serves.
pub fn origin(url: &str) -> Option<String> {
    let checked = check_url_prefix(url).ok()?;
    let (scheme, rest) = checked.split_once("://")?;
    let host = rest.split(['/', '?']).next()?;
    Some(format!("{scheme}://{host}"))
}

/// An attribute a service may be given at validation (CAS 3.0). The names
/// are those French ENT services already read: the envelope entcore sends,
/// the SDET's `ENTPerson…` names, and the LVS profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribute {
    Login,
    LastName,
    FirstName,
    DisplayName,
    BirthDate,
    Email,
    Profile,
    Schools,
    Classes,
    Jointure,
    Profils,
    StructRattach,
    Fonctions,
    EleveClasses,
    LvsProfile,
}

impl Attribute {
    pub const ALL: [Attribute; 15] = [
        Attribute::Login,
        Attribute::LastName,
        Attribute::FirstName,
        Attribute::DisplayName,
        Attribute::BirthDate,
        Attribute::Email,
        Attribute::Profile,
        Attribute::Schools,
        Attribute::Classes,
        Attribute::Jointure,
        Attribute::Profils,
        Attribute::StructRattach,
        Attribute::Fonctions,
        Attribute::EleveClasses,
        Attribute::LvsProfile,
    ];

    /// The name in the validation answer.
    pub fn name(self) -> &'static str {
        match self {
            Attribute::Login => "login",
            Attribute::LastName => "lastName",
            Attribute::FirstName => "firstName",
            Attribute::DisplayName => "displayName",
            Attribute::BirthDate => "birthDate",
            Attribute::Email => "email",
            Attribute::Profile => "profile",
            Attribute::Schools => "schools",
            Attribute::Classes => "classes",
            Attribute::Jointure => "ENTPersonJointure",
            Attribute::Profils => "ENTPersonProfils",
            Attribute::StructRattach => "ENTPersonStructRattach",
            Attribute::Fonctions => "ENTPersonFonctions",
            Attribute::EleveClasses => "ENTEleveClasses",
            Attribute::LvsProfile => "lvsProfile",
        }
    }

    pub fn parse(raw: &str) -> Option<Attribute> {
        let raw = raw.trim();
        Attribute::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(raw))
    }
}

/// A list of attribute names separated by commas or spaces, as the system
/// admin types it; duplicates dropped, order kept.
pub fn parse_attributes(list: &str) -> Result<Vec<Attribute>, String> {
    let mut chosen = Vec::new();
    for name in list.split([',', ' ', ';']).filter(|n| !n.trim().is_empty()) {
        let Some(attribute) = Attribute::parse(name) else {
            let known: Vec<&str> = Attribute::ALL.iter().map(|a| a.name()).collect();
            return Err(format!(
                "attribut « {} » inconnu : choisissez parmi {}",
                name.trim(),
                known.join(", ")
            ));
        };
        if !chosen.contains(&attribute) {
            chosen.push(attribute);
        }
    }
    Ok(chosen)
}

/// The names of a list of attributes, as stored and shown.
pub fn attribute_list(attributes: &[Attribute]) -> String {
    attributes.iter().map(|a| a.name()).collect::<Vec<_>>().join(",")
}

/// An establishment a person belongs to, as the `schools` attribute gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct School {
    pub uai: Uai,
    pub name: String,
    /// The AAF's structure type (`COLLEGE`, `LYCEE`…), when known.
    pub kind: Option<String>,
}

/// What a service may learn of the person who signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasPerson {
    pub login: String,
    pub sync_key: String,
    pub last_name: String,
    pub first_name: String,
    pub birth_date: Option<NaiveDate>,
    pub email: Option<String>,
    pub profile: Profile,
    /// Active memberships only, the main establishment first.
    pub schools: Vec<School>,
    pub function_code: Option<String>,
    pub classes: Vec<(Uai, String)>,
    pub lvs_profile: Option<String>,
}

/// One value of an attribute: text, or an establishment (an object in JSON,
/// `UAI$name$type` in XML as the SDET writes composite values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    Text(String),
    School(School),
}

impl AttributeValue {
    fn text(&self) -> String {
        match self {
            AttributeValue::Text(t) => t.clone(),
            AttributeValue::School(s) => format!("{}${}${}", s.uai, s.name, s.kind.as_deref().unwrap_or("")),
        }
    }

    fn json(&self) -> Value {
        match self {
            AttributeValue::Text(t) => Value::String(t.clone()),
            AttributeValue::School(s) => json!({ "UAI": s.uai.as_str(), "name": s.name, "type": s.kind }),
        }
    }
}

/// The entcore name of a profile.
fn entcore_profile(profile: Profile) -> &'static str {
    match profile {
        Profile::Enseignant => "Teacher",
        Profile::Eleve => "Student",
        Profile::Parent => "Relative",
        Profile::Invite => "Guest",
        Profile::Administratif | Profile::Administrateur | Profile::AdministrateurSysteme => "Personnel",
    }
}

/// The SDET's `ENTPersonProfils` value of a profile.
fn sdet_profile(profile: Profile, function_code: Option<&str>) -> &'static str {
    match (profile, function_code) {
        (Profile::Enseignant, _) => "National_ENS",
        (Profile::Eleve, _) => "National_ELV",
        (Profile::Parent, _) => "National_TUT",
        (_, Some("DOC")) => "National_DOC",
        (_, Some("EDU" | "AED")) => "National_EVS",
        _ => "National_ETA",
    }
}

/// The values of the attributes a service was granted, in the order chosen;
/// an attribute without a value (no e-mail…) is left out.
pub fn attribute_values(person: &CasPerson, wanted: &[Attribute]) -> Vec<(&'static str, Vec<AttributeValue>)> {
    use AttributeValue::Text;
    let main_uai = person.schools.first().map(|s| s.uai.to_string());
    wanted
        .iter()
        .map(|&attribute| {
            let values = match attribute {
                Attribute::Login => vec![Text(person.login.clone())],
                Attribute::LastName => vec![Text(person.last_name.clone())],
                Attribute::FirstName => vec![Text(person.first_name.clone())],
                Attribute::DisplayName => vec![Text(format!("{} {}", person.first_name, person.last_name))],
                Attribute::BirthDate => person
                    .birth_date
                    .map(|d| Text(d.format("%d/%m/%Y").to_string()))
                    .into_iter()
                    .collect(),
                Attribute::Email => person.email.clone().map(Text).into_iter().collect(),
                Attribute::Profile => vec![Text(entcore_profile(person.profile).into())],
                Attribute::Schools => person.schools.iter().cloned().map(AttributeValue::School).collect(),
                Attribute::Classes => person.classes.iter().map(|(_, c)| Text(c.clone())).collect(),
                Attribute::Jointure => vec![Text(person.sync_key.clone())],
                Attribute::Profils => vec![Text(
                    sdet_profile(person.profile, person.function_code.as_deref()).into(),
                )],
                Attribute::StructRattach => main_uai.clone().map(Text).into_iter().collect(),
                Attribute::Fonctions => match &person.function_code {
                    Some(code) => person
                        .schools
                        .iter()
                        .map(|s| Text(format!("{}${code}", s.uai)))
                        .collect(),
                    None => Vec::new(),
                },
                Attribute::EleveClasses => person
                    .classes
                    .iter()
                    .map(|(uai, c)| Text(format!("{uai}${c}")))
                    .collect(),
                Attribute::LvsProfile => person.lvs_profile.clone().map(Text).into_iter().collect(),
            };
            (attribute.name(), values)
        })
        .filter(|(_, values)| !values.is_empty())
        .collect()
}

/// The failure codes of the specification (§2.5.3, §2.6.3, §2.7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCode {
    /// A required parameter is missing.
    InvalidRequest,
    /// The ticket breaks the validation's rules (`renew` asked, ticket from SSO).
    InvalidTicketSpec,
    UnauthorizedServiceProxy,
    InvalidProxyCallback,
    /// Unknown, already used or expired.
    InvalidTicket,
    /// The ticket was issued for another service.
    InvalidService,
    /// `/proxy`: the target service is not one the person may reach.
    UnauthorizedService,
    InternalError,
}

impl FailureCode {
    pub fn code(self) -> &'static str {
        match self {
            FailureCode::InvalidRequest => "INVALID_REQUEST",
            FailureCode::InvalidTicketSpec => "INVALID_TICKET_SPEC",
            FailureCode::UnauthorizedServiceProxy => "UNAUTHORIZED_SERVICE_PROXY",
            FailureCode::InvalidProxyCallback => "INVALID_PROXY_CALLBACK",
            FailureCode::InvalidTicket => "INVALID_TICKET",
            FailureCode::InvalidService => "INVALID_SERVICE",
            FailureCode::UnauthorizedService => "UNAUTHORIZED_SERVICE",
            FailureCode::InternalError => "INTERNAL_ERROR",
        }
    }
}

/// A refused validation: the code, and a sentence for the service's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: FailureCode,
    pub description: String,
}

impl Failure {
    pub fn new(code: FailureCode, description: impl Into<String>) -> Failure {
        Failure {
            code,
            description: description.into(),
        }
    }
}

/// A successful validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Success {
    pub user: String,
    pub attributes: Vec<(&'static str, Vec<AttributeValue>)>,
    /// When the person typed their password for this SSO session.
    pub authentication_date: DateTime<Utc>,
    /// The ticket came from a password typed for it, not from the SSO session.
    pub from_new_login: bool,
    /// The IOU of the proxy-granting ticket given to the service's callback.
    pub proxy_granting_ticket: Option<String>,
    /// For a proxy ticket: the proxies it went through, the latest first.
    pub proxies: Vec<String>,
}

/// The version-1 answer of `/validate`: `yes` and the user, or `no`.
pub fn v1_answer(result: &Result<Success, Failure>) -> String {
    match result {
        Ok(success) => format!("yes\n{}\n", success.user),
        Err(_) => "no\n\n".to_string(),
    }
}

/// The XML answer of `serviceValidate` (without attributes, CAS 2.0) and of
/// `p3/serviceValidate` (with them, CAS 3.0).
pub fn xml_answer(result: &Result<Success, Failure>, with_attributes: bool) -> String {
    let mut xml = String::from("<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\n");
    match result {
        Ok(success) => {
            xml.push_str("  <cas:authenticationSuccess>\n");
            xml.push_str(&format!("    <cas:user>{}</cas:user>\n", escape(success.user.as_str())));
            if with_attributes {
                xml.push_str("    <cas:attributes>\n");
                for (name, value) in standard_attributes(success) {
                    xml.push_str(&format!("      <cas:{name}>{}</cas:{name}>\n", escape(value.as_str())));
                }
                for (name, values) in &success.attributes {
                    for value in values {
                        xml.push_str(&format!(
                            "      <cas:{name}>{}</cas:{name}>\n",
                            escape(value.text().as_str())
                        ));
                    }
                }
                xml.push_str("    </cas:attributes>\n");
            }
            if let Some(iou) = &success.proxy_granting_ticket {
                xml.push_str(&format!(
                    "    <cas:proxyGrantingTicket>{}</cas:proxyGrantingTicket>\n",
                    escape(iou.as_str())
                ));
            }
            if !success.proxies.is_empty() {
                xml.push_str("    <cas:proxies>\n");
                for proxy in &success.proxies {
                    xml.push_str(&format!("      <cas:proxy>{}</cas:proxy>\n", escape(proxy.as_str())));
                }
                xml.push_str("    </cas:proxies>\n");
            }
            xml.push_str("  </cas:authenticationSuccess>\n");
        }
        Err(failure) => xml.push_str(&format!(
            "  <cas:authenticationFailure code=\"{}\">{}</cas:authenticationFailure>\n",
            failure.code.code(),
            escape(failure.description.as_str())
        )),
    }
    xml.push_str("</cas:serviceResponse>\n");
    xml
}

/// The JSON answer of `p3/serviceValidate?format=JSON` (specification, appendix).
pub fn json_answer(result: &Result<Success, Failure>) -> Value {
    match result {
        Ok(success) => {
            let mut attributes = Map::new();
            for (name, value) in standard_attributes(success) {
                attributes.insert(name.to_string(), json!([value]));
            }
            for (name, values) in &success.attributes {
                attributes.insert(
                    name.to_string(),
                    Value::Array(values.iter().map(AttributeValue::json).collect()),
                );
            }
            let mut answer = json!({
                "user": success.user,
                "attributes": attributes,
            });
            if let Some(iou) = &success.proxy_granting_ticket {
                answer["proxyGrantingTicket"] = json!(iou);
            }
            if !success.proxies.is_empty() {
                answer["proxies"] = json!(success.proxies);
            }
            json!({ "serviceResponse": { "authenticationSuccess": answer } })
        }
        Err(failure) => json!({ "serviceResponse": { "authenticationFailure": {
            "code": failure.code.code(),
            "description": failure.description,
        }}}),
    }
}

/// The answer of `/proxy` (§2.7): the proxy ticket, or why not.
pub fn proxy_xml_answer(result: &Result<String, Failure>) -> String {
    let body = match result {
        Ok(ticket) => format!(
            "  <cas:proxySuccess>\n    <cas:proxyTicket>{}</cas:proxyTicket>\n  </cas:proxySuccess>\n",
            escape(ticket.as_str())
        ),
        Err(failure) => format!(
            "  <cas:proxyFailure code=\"{}\">{}</cas:proxyFailure>\n",
            failure.code.code(),
            escape(failure.description.as_str())
        ),
    };
    format!("<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\n{body}</cas:serviceResponse>\n")
}

/// The same in JSON (`format=JSON`).
pub fn proxy_json_answer(result: &Result<String, Failure>) -> Value {
    match result {
        Ok(ticket) => json!({ "serviceResponse": { "proxySuccess": { "proxyTicket": ticket } } }),
        Err(failure) => json!({ "serviceResponse": { "proxyFailure": {
            "code": failure.code.code(),
            "description": failure.description,
        }}}),
    }
}

/// The attributes CAS 3.0 defines for every answer, in the order of its schema.
fn standard_attributes(success: &Success) -> [(&'static str, String); 3] {
    [
        (
            "authenticationDate",
            success.authentication_date.to_rfc3339_opts(SecondsFormat::Secs, true),
        ),
        ("longTermAuthenticationRequestTokenUsed", "false".to_string()),
        ("isFromNewLogin", success.from_new_login.to_string()),
    ]
}

/// The back-channel logout request (specification §2.3.3): a SAML
/// `LogoutRequest` naming the service ticket the service validated.
pub fn logout_request(id: &str, session_index: &str, now: DateTime<Utc>) -> String {
    format!(
        "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
         xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{}\" Version=\"2.0\" IssueInstant=\"{}\">\
         <saml:NameID>@NOT_USED@</saml:NameID><samlp:SessionIndex>{}</samlp:SessionIndex></samlp:LogoutRequest>",
        escape(id),
        now.to_rfc3339_opts(SecondsFormat::Secs, true),
        escape(session_index)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_prefix_covers_its_paths_and_queries_not_a_longer_host() {
        let prefix = check_url_prefix("HTTPS://VS.Exemple.fr").unwrap();
        assert_eq!(prefix, "https://vs.exemple.fr");
        assert!(service_matches(&prefix, "https://vs.exemple.fr"));
        assert!(service_matches(&prefix, "https://vs.exemple.fr/login?x=1"));
        assert!(service_matches(&prefix, "https://VS.EXEMPLE.FR/"));
        assert!(!service_matches(&prefix, "https://vs.exemple.fr.pirate.net/"));
        assert!(!service_matches(&prefix, "https://vs.exemple.frx/"));
        assert!(!service_matches(&prefix, "http://vs.exemple.fr/"));
        let path = check_url_prefix("https://ent.fr/manuels/").unwrap();
        assert!(service_matches(&path, "https://ent.fr/manuels/abc"));
        assert!(!service_matches(&path, "https://ent.fr/manuelsX"));
        assert!(!service_matches(&path, "https://ent.fr/"));
    }

    #[test]
    fn bad_prefixes_say_what_to_type() {
        for bad in [
            "vs.exemple.fr",
            "ftp://x.fr/",
            "https:///chemin",
            "https://a b.fr/",
            "https://x.fr/#a",
            "https://x.fr;script-src*/",
            "https://x\"y.fr/",
        ] {
            let message = check_url_prefix(bad).unwrap_err();
            assert!(message.contains("https://vie-scolaire.exemple.fr/"), "{bad}: {message}");
        }
        assert_eq!(
            origin("https://vs.exemple.fr:8443/a?b").as_deref(),
            Some("https://vs.exemple.fr:8443")
        );
    }

    #[test]
    fn tickets_are_prefixed_random_and_distinct() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let a = new_ticket(SERVICE_TICKET, &mut rng);
        let b = new_ticket(SERVICE_TICKET, &mut rng);
        assert!(a.starts_with("ST-") && a.len() == 67, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn attribute_lists_are_checked_and_named() {
        let chosen = parse_attributes("login, lastName,ENTPersonProfils login lvsprofile").unwrap();
        assert_eq!(attribute_list(&chosen), "login,lastName,ENTPersonProfils,lvsProfile");
        let error = parse_attributes("login,motDePasse").unwrap_err();
        assert!(
            error.contains("motDePasse") && error.contains("ENTEleveClasses"),
            "{error}"
        );
    }

    fn teacher() -> CasPerson {
        CasPerson {
            login: "nlavoisier".into(),
            sync_key: "ENS-42".into(),
            last_name: "LAVOISIER".into(),
            first_name: "Nicole".into(),
            birth_date: NaiveDate::from_ymd_opt(1980, 3, 9),
            email: None,
            profile: Profile::Enseignant,
            schools: vec![School {
                uai: Uai::parse("0010001W").unwrap(),
                name: "Collège <Curie> & fils".into(),
                kind: Some("COLLEGE".into()),
            }],
            function_code: Some("ENS".into()),
            classes: vec![],
            lvs_profile: Some("Professeur".into()),
        }
    }

    #[test]
    fn attributes_follow_the_service_s_choice_and_skip_empty_values() {
        let values = attribute_values(
            &teacher(),
            &parse_attributes("email,profile,ENTPersonProfils,ENTPersonFonctions,birthDate").unwrap(),
        );
        let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["profile", "ENTPersonProfils", "ENTPersonFonctions", "birthDate"]
        );
        assert_eq!(values[0].1, vec![AttributeValue::Text("Teacher".into())]);
        assert_eq!(values[1].1, vec![AttributeValue::Text("National_ENS".into())]);
        assert_eq!(values[2].1, vec![AttributeValue::Text("0010001W$ENS".into())]);
        assert_eq!(values[3].1, vec![AttributeValue::Text("09/03/1980".into())]);
    }

    #[test]
    fn answers_escape_values_and_carry_the_failure_code() {
        let success = Success {
            user: "nlavoisier".into(),
            attributes: attribute_values(&teacher(), &[Attribute::Schools]),
            authentication_date: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            from_new_login: true,
            proxy_granting_ticket: None,
            proxies: vec![],
        };
        let xml = xml_answer(&Ok(success.clone()), true);
        assert!(xml.contains("<cas:user>nlavoisier</cas:user>"), "{xml}");
        assert!(
            xml.contains("<cas:schools>0010001W$Collège &lt;Curie&gt; &amp; fils$COLLEGE</cas:schools>"),
            "{xml}"
        );
        assert!(xml.contains("<cas:isFromNewLogin>true</cas:isFromNewLogin>"), "{xml}");
        assert!(!xml_answer(&Ok(success.clone()), false).contains("attributes"));
        let json = json_answer(&Ok(success.clone()));
        assert_eq!(
            json["serviceResponse"]["authenticationSuccess"]["attributes"]["schools"][0]["UAI"],
            "0010001W"
        );
        assert_eq!(v1_answer(&Ok(success)), "yes\nnlavoisier\n");
        let failure = Err(Failure::new(FailureCode::InvalidService, "ticket émis pour <autre>"));
        assert!(xml_answer(&failure, true)
            .contains("<cas:authenticationFailure code=\"INVALID_SERVICE\">ticket émis pour &lt;autre&gt;</cas:authenticationFailure>"));
        assert_eq!(
            json_answer(&failure)["serviceResponse"]["authenticationFailure"]["code"],
            "INVALID_SERVICE"
        );
        assert_eq!(v1_answer(&failure), "no\n\n");
    }

    #[test]
    fn proxy_answers_and_callbacks() {
        let proxied = Success {
            user: "u".into(),
            attributes: vec![],
            authentication_date: DateTime::from_timestamp(0, 0).unwrap(),
            from_new_login: false,
            proxy_granting_ticket: Some("PGTIOU-1".into()),
            proxies: vec!["https://portail.fr/rappel".into()],
        };
        let xml = xml_answer(&Ok(proxied.clone()), false);
        let order = [
            "<cas:user>",
            "<cas:proxyGrantingTicket>PGTIOU-1<",
            "<cas:proxy>https://portail.fr/rappel<",
        ];
        let at: Vec<usize> = order.iter().map(|p| xml.find(p).unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{xml}");
        assert_eq!(
            json_answer(&Ok(proxied))["serviceResponse"]["authenticationSuccess"]["proxies"][0],
            "https://portail.fr/rappel"
        );
        assert!(proxy_xml_answer(&Ok("PT-1".into()))
            .contains("<cas:proxySuccess>\n    <cas:proxyTicket>PT-1</cas:proxyTicket>"));
        let refused = Err(Failure::new(FailureCode::InvalidTicket, "x"));
        assert!(proxy_xml_answer(&refused).contains("<cas:proxyFailure code=\"INVALID_TICKET\">x</cas:proxyFailure>"));
        assert_eq!(
            proxy_json_answer(&refused)["serviceResponse"]["proxyFailure"]["code"],
            "INVALID_TICKET"
        );
        assert!(check_proxy_callback("https://portail.fr/pgt").is_ok());
        assert!(check_proxy_callback("http://127.0.0.1:8000/pgt").is_ok());
        assert!(check_proxy_callback("http://localhost/pgt").is_ok());
        assert!(check_proxy_callback("http://portail.fr/pgt")
            .unwrap_err()
            .contains("https"));
        assert!(check_proxy_callback("http://127.0.0.1.pirate.net/pgt").is_err());
    }

    #[test]
    fn the_logout_request_names_the_ticket() {
        let request = logout_request("LR-1", "ST-abc", DateTime::from_timestamp(0, 0).unwrap());
        assert!(request.contains("<samlp:SessionIndex>ST-abc</samlp:SessionIndex>"));
        assert!(request.contains("IssueInstant=\"1970-01-01T00:00:00Z\""));
    }
}
