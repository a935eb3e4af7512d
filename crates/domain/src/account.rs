//! One account's page (SPEC §2, §9 "Account settings"): the expiry date, the
//! networks it may sign in from, the protection flag, and the identity fields
//! an admin may correct by hand when no synchronisation owns them.
//!
//! Every door (web page, CLI `users set`) turns what was typed into an
//! [`AccountChange`] and calls [`apply_change`]: the rules are here, once.
//! [`check_sign_in`] is the rule a sign-in applies (the CAS server, when it
//! comes, calls it; there is no user sign-in yet).

use crate::person::Source;
use crate::values::{self, keep, Civility, Email, FieldProblem, Phone, ValueError};
use chrono::{DateTime, Days, NaiveDate, Utc};
use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;

/// The networks an account may sign in from; empty means anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedNetworks(Vec<IpNet>);

impl AllowedNetworks {
    /// Reads ranges separated by commas, semicolons, spaces or new lines. A
    /// bare address is a range of one (`/32`, `/128`); host bits are cleared
    /// (`10.1.2.3/8` is `10.0.0.0/8`), duplicates dropped, order kept sorted.
    pub fn parse(text: &str) -> Result<AllowedNetworks, ValueError> {
        let mut nets = Vec::new();
        for item in text
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(ValueError::new(
                            "bad_network",
                            format!(
                                "« {item} » n'est pas une plage d'adresses IP : écrivez une adresse (192.168.1.10) \
                                 ou une plage CIDR (192.168.1.0/24, 2001:db8::/32), une par ligne"
                            ),
                        ))
                    }
                },
            };
            nets.push(net);
        }
        nets.sort();
        nets.dedup();
        Ok(AllowedNetworks(nets))
    }

    /// The stored form: comma-separated ranges, `None` for anywhere.
    pub fn to_stored(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.to_string())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d) is that IPv4 client.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.is_empty() || self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn ranges(&self) -> impl Iterator<Item = String> + '_ {
        self.0.iter().map(|n| n.to_string())
    }
}

impl fmt::Display for AllowedNetworks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.ranges().collect();
        f.write_str(&list.join(","))
    }
}

/// The account settings of SPEC §9.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountSettings {
    /// The last day the account may sign in (a Paris day), `None` for never expiring.
    pub last_day: Option<NaiveDate>,
    pub networks: AllowedNetworks,
    pub protected: bool,
}

/// The stored instant an account stops working: midnight in Paris at the
/// start of the day after its last day, so that "valide jusqu'au 30/06"
/// includes the whole 30th as the school lives it.
pub fn expires_at(last_day: NaiveDate) -> DateTime<Utc> {
    let next = last_day.checked_add_days(Days::new(1)).unwrap_or(last_day);
    crate::time::start_of_day(next)
}

/// The last day of an account that stops working at `expires_at`: the Paris
/// day before the one it stops in. Instants stored before expiry days were
/// Paris days (midnight UTC, converted by migration 0011) read the same.
pub fn last_day(expires_at: DateTime<Utc>) -> NaiveDate {
    let stop_day = crate::time::day(expires_at);
    stop_day.pred_opt().unwrap_or(stop_day)
}

/// The identity fields an admin may correct on an account no sync owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub civility: Option<Civility>,
    pub last_name: String,
    pub first_name: String,
    pub birth_date: Option<NaiveDate>,
    pub email: Option<Email>,
    pub mobile: Option<Phone>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountState {
    pub settings: AccountSettings,
    pub identity: Identity,
}

/// What an admin asked to change, as typed; `None` leaves a field as it is
/// (the CLI names only what changes; the web form sends everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountChange {
    /// A date (jj/mm/aaaa or aaaa-mm-jj), or empty / `jamais` for never.
    pub last_day: Option<String>,
    pub networks: Option<String>,
    pub protected: Option<bool>,
    pub civility: Option<String>,
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub birth_date: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
}

impl AccountChange {
    fn touches_identity(&self) -> bool {
        self.civility.is_some()
            || self.last_name.is_some()
            || self.first_name.is_some()
            || self.birth_date.is_some()
            || self.email.is_some()
            || self.mobile.is_some()
    }
}

/// One changed field, for the audit log and the confirmation message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

fn parse_last_day(raw: &str) -> Result<Option<NaiveDate>, ValueError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.eq_ignore_ascii_case("jamais") || raw.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    NaiveDate::parse_from_str(raw, "%d/%m/%Y")
        .or_else(|_| NaiveDate::parse_from_str(raw, "%Y-%m-%d"))
        .map(Some)
        .map_err(|_| {
            ValueError::new(
                "bad_expiry",
                format!("date d'expiration « {raw} » illisible : écrivez jj/mm/aaaa (30/06/2027), ou « jamais »"),
            )
        })
}

fn optional<T>(raw: &str, parse: impl FnOnce(&str) -> Result<T, ValueError>) -> Result<Option<T>, ValueError> {
    let raw = raw.trim();
    if raw.is_empty() {
        Ok(None)
    } else {
        parse(raw).map(Some)
    }
}

fn show<T: fmt::Display>(value: &Option<T>) -> String {
    value.as_ref().map(|v| v.to_string()).unwrap_or_default()
}

/// Applies an admin's change to an account, or says why it is refused:
/// - a protected account's identity comes from its synchronisation only
///   (SPEC §2): change it at the source, or lift the protection first;
/// - an account of the AAF feed stays protected: the feed owns it;
/// - every value goes through the same newtypes as an import line.
///
/// Returns the new state and the fields that changed (empty: nothing to save).
pub fn apply_change(
    current: &AccountState,
    source: Source,
    change: &AccountChange,
    today: NaiveDate,
) -> Result<(AccountState, Vec<FieldChange>), Vec<FieldProblem>> {
    let mut next = current.clone();
    let mut problems = Vec::new();
    let p = &mut problems;
    if let Some(raw) = &change.last_day {
        if let Some(day) = keep(p, "last_day", parse_last_day(raw)) {
            next.settings.last_day = day;
        }
    }
    if let Some(raw) = &change.networks {
        if let Some(networks) = keep(p, "networks", AllowedNetworks::parse(raw)) {
            next.settings.networks = networks;
        }
    }
    if let Some(protected) = change.protected {
        if source == Source::Aaf && !protected {
            p.push((
                "protected",
                ValueError::new(
                    "aaf_protected",
                    "ce compte vient du flux AAF : il reste protégé, car le flux le met à jour ; \
                     corrigez son identité dans l'annuaire académique",
                ),
            ));
        } else {
            next.settings.protected = protected;
        }
    }
    if change.touches_identity() {
        let id = &mut next.identity;
        if let Some(raw) = &change.civility {
            if let Some(v) = keep(p, "civility", optional(raw, Civility::parse)) {
                id.civility = v;
            }
        }
        if let Some(raw) = &change.last_name {
            if let Some(v) = keep(p, "last_name", values::parse_name(raw, "nom")) {
                id.last_name = v;
            }
        }
        if let Some(raw) = &change.first_name {
            if let Some(v) = keep(p, "first_name", values::parse_name(raw, "prénom")) {
                id.first_name = v;
            }
        }
        if let Some(raw) = &change.birth_date {
            if let Some(v) = keep(p, "birth_date", optional(raw, |b| values::parse_birth_date(b, today))) {
                id.birth_date = v;
            }
        }
        if let Some(raw) = &change.email {
            if let Some(v) = keep(p, "email", optional(raw, Email::parse)) {
                id.email = v;
            }
        }
        if let Some(raw) = &change.mobile {
            if let Some(v) = keep(p, "mobile", optional(raw, |v| Phone::parse(v).map(|(phone, _)| phone))) {
                id.mobile = v;
            }
        }
        if current.settings.protected && next.identity != current.identity {
            p.push((
                "protected",
                ValueError::new(
                    "protected_identity",
                    "ce compte est protégé : son identité ne change que par sa synchronisation \
                     (flux AAF ou import) ; corrigez-la à la source, ou retirez d'abord la protection",
                ),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let changes = diff(current, &next);
    Ok((next, changes))
}

fn diff(before: &AccountState, after: &AccountState) -> Vec<FieldChange> {
    let day = |d: &Option<NaiveDate>| {
        d.map(|d| d.format("%d/%m/%Y").to_string())
            .unwrap_or_else(|| "jamais".into())
    };
    let nets = |n: &AllowedNetworks| {
        if n.is_empty() {
            "toutes".to_string()
        } else {
            n.to_string()
        }
    };
    let yes_no = |b: bool| if b { "oui" } else { "non" }.to_string();
    let (b, a) = (&before.identity, &after.identity);
    let email = |e: &Option<Email>| e.as_ref().map(|e| e.as_str().to_string()).unwrap_or_default();
    let phone = |p: &Option<Phone>| p.as_ref().map(|p| p.display()).unwrap_or_default();
    let birth = |d: &Option<NaiveDate>| d.map(|d| d.format("%d/%m/%Y").to_string()).unwrap_or_default();
    let fields = [
        (
            "expiration",
            day(&before.settings.last_day),
            day(&after.settings.last_day),
        ),
        (
            "plages IP",
            nets(&before.settings.networks),
            nets(&after.settings.networks),
        ),
        (
            "protégé",
            yes_no(before.settings.protected),
            yes_no(after.settings.protected),
        ),
        ("civilité", show(&b.civility), show(&a.civility)),
        ("nom", b.last_name.clone(), a.last_name.clone()),
        ("prénom", b.first_name.clone(), a.first_name.clone()),
        ("date de naissance", birth(&b.birth_date), birth(&a.birth_date)),
        ("courriel", email(&b.email), email(&a.email)),
        ("portable", phone(&b.mobile), phone(&a.mobile)),
    ];
    fields
        .into_iter()
        .filter(|(_, before, after)| before != after)
        .map(|(field, before, after)| FieldChange { field, before, after })
        .collect()
}

/// Why a sign-in is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInRefusal {
    #[error("compte désactivé")]
    Deactivated,
    #[error("compte expiré depuis le {}", .0.format("%d/%m/%Y"))]
    Expired(NaiveDate),
    #[error("connexion refusée depuis l'adresse {0} : elle n'est pas dans les plages autorisées du compte")]
    Network(IpAddr),
}

/// Whether an account may sign in at `at` from `from` (SPEC §9: the allowed
/// ranges are enforced at login).
pub fn check_sign_in(
    active: bool,
    settings: &AccountSettings,
    at: DateTime<Utc>,
    from: IpAddr,
) -> Result<(), SignInRefusal> {
    if !active {
        return Err(SignInRefusal::Deactivated);
    }
    if let Some(day) = settings.last_day {
        if at >= expires_at(day) {
            return Err(SignInRefusal::Expired(day));
        }
    }
    if !settings.networks.allows(from) {
        return Err(SignInRefusal::Network(from));
    }
    Ok(())
}

/// What an admin may do to one account. One rule for every door (web page,
/// CLI, API): an account shared by several establishments belongs to none of
/// their admins alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRights {
    /// Identity, settings, memberships: a system admin, or an establishment
    /// admin when every active membership of the account is theirs.
    Full,
    /// The account is also active in an establishment the admin does not
    /// administer: they may only end their own establishments' memberships.
    OwnMembershipsOnly,
    /// Not an account of the admin's establishments: it does not exist for them.
    None,
}

/// The rights an admin of `scope` has over an account with these memberships
/// (establishment, active). An account that only belonged to the admin's
/// establishments (all its memberships ended) is still theirs.
pub fn rights_over<'a>(
    scope: &crate::plan::AdminScope,
    memberships: impl IntoIterator<Item = (&'a crate::Uai, bool)>,
) -> AccountRights {
    if matches!(scope, crate::plan::AdminScope::All) {
        return AccountRights::Full;
    }
    let (mut mine, mut elsewhere) = (false, false);
    for (uai, active) in memberships {
        if scope.allows(uai) {
            mine = true;
        } else if active {
            elsewhere = true;
        }
    }
    match (mine, elsewhere) {
        (false, _) => AccountRights::None,
        (true, false) => AccountRights::Full,
        (true, true) => AccountRights::OwnMembershipsOnly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_account_leaves_each_admin_only_their_own_membership() {
        use crate::plan::AdminScope;
        let a = crate::Uai::parse("0750654D").unwrap();
        let b = crate::Uai::parse("0750653C").unwrap();
        let admin_a = AdminScope::Establishments([a.clone()].into_iter().collect());
        assert_eq!(rights_over(&admin_a, [(&a, true)]), AccountRights::Full);
        assert_eq!(rights_over(&admin_a, [(&a, false)]), AccountRights::Full);
        assert_eq!(
            rights_over(&admin_a, [(&a, true), (&b, true)]),
            AccountRights::OwnMembershipsOnly
        );
        // B's membership ended: the account is A's alone again.
        assert_eq!(rights_over(&admin_a, [(&a, true), (&b, false)]), AccountRights::Full);
        assert_eq!(rights_over(&admin_a, [(&b, true)]), AccountRights::None);
        assert_eq!(rights_over(&admin_a, []), AccountRights::None);
        assert_eq!(rights_over(&AdminScope::All, [(&b, true)]), AccountRights::Full);
        assert_eq!(rights_over(&AdminScope::All, []), AccountRights::Full);
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn state() -> AccountState {
        AccountState {
            settings: AccountSettings::default(),
            identity: Identity {
                last_name: "Barbier".into(),
                first_name: "Valérie".into(),
                ..Identity::default()
            },
        }
    }

    #[test]
    fn networks_are_normalised_and_checked() {
        let n = AllowedNetworks::parse("10.1.2.3/8, 192.168.1.10\n2001:db8::1/32 ; 10.0.0.0/8").unwrap();
        assert_eq!(n.to_string(), "10.0.0.0/8,192.168.1.10/32,2001:db8::/32");
        assert!(n.allows("10.200.0.1".parse().unwrap()));
        assert!(n.allows("::ffff:192.168.1.10".parse().unwrap()));
        assert!(!n.allows("192.168.1.11".parse().unwrap()));
        assert!(n.allows("2001:db8:ffff::1".parse().unwrap()));
        assert!(AllowedNetworks::parse("  ").unwrap().allows("8.8.8.8".parse().unwrap()));
        let err = AllowedNetworks::parse("10.0.0.300/8").unwrap_err();
        assert_eq!(err.code, "bad_network");
        assert!(err.message.contains("« 10.0.0.300/8 »"), "{}", err.message);
    }

    #[test]
    fn expiry_includes_the_last_day() {
        let day = date(2027, 6, 30);
        let settings = AccountSettings {
            last_day: Some(day),
            ..AccountSettings::default()
        };
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        // Paris days: 30 June 23:59:59 in Paris is 21:59:59 UTC (summer time).
        let evening = date(2027, 6, 30).and_hms_opt(21, 59, 59).unwrap().and_utc();
        let next = date(2027, 6, 30).and_hms_opt(22, 0, 0).unwrap().and_utc();
        assert_eq!(check_sign_in(true, &settings, evening, ip), Ok(()));
        assert_eq!(
            check_sign_in(true, &settings, next, ip),
            Err(SignInRefusal::Expired(day))
        );
        assert_eq!(last_day(expires_at(day)), day);
        // In winter Paris is UTC+1: a last day of 31 January ends at 23:00 UTC.
        let winter = date(2027, 1, 31);
        assert_eq!(
            expires_at(winter),
            date(2027, 1, 31).and_hms_opt(23, 0, 0).unwrap().and_utc()
        );
        assert_eq!(last_day(expires_at(winter)), winter);
        // A value stored by the former rule (midnight UTC) reads as the same day.
        let former = date(2027, 7, 1).and_hms_opt(0, 0, 0).unwrap().and_utc();
        assert_eq!(last_day(former), day);
        assert_eq!(
            check_sign_in(false, &AccountSettings::default(), evening, ip),
            Err(SignInRefusal::Deactivated)
        );
    }

    #[test]
    fn sign_in_outside_the_ranges_is_refused() {
        let settings = AccountSettings {
            networks: AllowedNetworks::parse("172.16.0.0/12").unwrap(),
            ..AccountSettings::default()
        };
        let now = date(2026, 11, 25).and_hms_opt(8, 0, 0).unwrap().and_utc();
        assert_eq!(
            check_sign_in(true, &settings, now, "172.20.1.1".parse().unwrap()),
            Ok(())
        );
        let outside: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            check_sign_in(true, &settings, now, outside),
            Err(SignInRefusal::Network(outside))
        );
    }

    #[test]
    fn change_lists_what_changed() {
        let change = AccountChange {
            last_day: Some("30/06/2027".into()),
            networks: Some("192.168.0.0/16".into()),
            protected: Some(false),
            last_name: Some("Barbier-Roux".into()),
            email: Some("v.barbier@example.org".into()),
            ..AccountChange::default()
        };
        let (next, changes) = apply_change(&state(), Source::Csv, &change, date(2026, 11, 25)).unwrap();
        assert_eq!(next.settings.last_day, Some(date(2027, 6, 30)));
        let fields: Vec<_> = changes.iter().map(|c| (c.field, c.after.as_str())).collect();
        assert_eq!(
            fields,
            vec![
                ("expiration", "30/06/2027"),
                ("plages IP", "192.168.0.0/16"),
                ("nom", "Barbier-Roux"),
                ("courriel", "v.barbier@example.org"),
            ]
        );
        let (_, none) = apply_change(&next, Source::Csv, &change, date(2026, 11, 25)).unwrap();
        assert!(none.is_empty());
        let never = AccountChange {
            last_day: Some("jamais".into()),
            ..AccountChange::default()
        };
        let (back, _) = apply_change(&next, Source::Csv, &never, date(2026, 11, 25)).unwrap();
        assert_eq!(back.settings.last_day, None);
    }

    #[test]
    fn protection_rules() {
        let mut protected = state();
        protected.settings.protected = true;
        let rename = AccountChange {
            last_name: Some("Roux".into()),
            ..AccountChange::default()
        };
        let err = apply_change(&protected, Source::Csv, &rename, date(2026, 11, 25)).unwrap_err();
        assert_eq!(err[0].1.code, "protected_identity");
        // The same identity sent back by a full form is not a change.
        let same = AccountChange {
            last_name: Some("Barbier".into()),
            last_day: Some("31/08/2027".into()),
            ..AccountChange::default()
        };
        assert!(apply_change(&protected, Source::Aaf, &same, date(2026, 11, 25)).is_ok());
        let unprotect = AccountChange {
            protected: Some(false),
            ..AccountChange::default()
        };
        let err = apply_change(&protected, Source::Aaf, &unprotect, date(2026, 11, 25)).unwrap_err();
        assert_eq!(err[0].1.code, "aaf_protected");
        let (csv, _) = apply_change(&protected, Source::Csv, &unprotect, date(2026, 11, 25)).unwrap();
        assert!(!csv.settings.protected);
        let bad = AccountChange {
            last_day: Some("31/02/2027".into()),
            ..AccountChange::default()
        };
        assert_eq!(
            apply_change(&state(), Source::Csv, &bad, date(2026, 11, 25)).unwrap_err()[0]
                .1
                .code,
            "bad_expiry"
        );
        // Every bad field at once, each on its field.
        let many = AccountChange {
            last_day: Some("bientôt".into()),
            networks: Some("10.0.0.300/8".into()),
            email: Some("pas-une-adresse".into()),
            ..AccountChange::default()
        };
        let fields: Vec<&str> = apply_change(&state(), Source::Csv, &many, date(2026, 11, 25))
            .unwrap_err()
            .iter()
            .map(|(f, _)| *f)
            .collect();
        assert_eq!(fields, ["last_day", "networks", "email"]);
    }
}
