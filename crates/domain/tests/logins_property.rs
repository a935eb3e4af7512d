//! Property: whatever the homonyms in a file and the logins already in the
//! directory, generated logins are unique, never taken, and follow the rule
//! "base, then base2, base3…" (SPEC §5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use domain::keys::{is_base_or_numbered, LoginPattern, LOGIN_BASE_MAX};
use domain::mapping::auto_map;
use domain::parse::parse;
use domain::plan::{lookup_for, plan, AdminScope, PlanOptions, Snapshot};
use domain::validate::{validate, ValidateOptions};
use domain::{Profile, Uai};
use proptest::prelude::*;
use std::collections::HashSet;

const FIRST: &[&str] = &["Nicolas", "Nathalie", "Noé", "Nina", "Jean-Pierre", "Éloïse", "Anne"];
const LAST: &[&str] = &[
    "MARTIN",
    "Martin",
    "MARTÍN",
    "N'DIAYE",
    "De La Fontaine",
    "Lefèvre",
    "VERYLONGFAMILYNAMEEXCEEDING",
];

fn plan_for(people: &[(usize, usize, u8)], taken: &[String], pattern: LoginPattern) -> domain::plan::Plan {
    let mut text = String::from("Civilité;Nom;Prénom;Matière\n");
    for (f, l, suffix) in people {
        // A suffix letter in the first name keeps keys distinct while the
        // login base (initial + last name) stays the same: pure homonyms.
        text.push_str(&format!(
            "M.;{};{}{};Anglais\n",
            LAST[*l],
            FIRST[*f],
            "x".repeat(usize::from(*suffix))
        ));
    }
    let limits = domain::decode::Limits::default();
    let parsed = parse(&text, Some(b';'), true, &limits).unwrap();
    let mapping = auto_map(parsed.header.as_deref(), parsed.column_count, Profile::Enseignant);
    let uai = Uai::parse("0750654D").unwrap();
    let checked = validate(
        &parsed,
        &mapping,
        &ValidateOptions {
            today: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            min_password_len: 3,
            establishments_from_file: false,
            establishment: Some(uai.clone()),
            limits,
        },
    );
    let options = PlanOptions {
        profile: Profile::Enseignant,
        establishment: Some(uai.clone()),
        establishments_from_file: false,
        complet: false,
        skip_conflicts: false,
        confirm_deletions: None,
        deletion_threshold_percent: 10,
        login_pattern: pattern,
        scope: AdminScope::All,
        attach_existing: false,
    };
    let lookup = lookup_for(&checked, &mapping, &options);
    let snapshot = Snapshot {
        establishments: [uai].into_iter().collect(),
        // What a store returns: the taken logins near the requested bases.
        taken_logins: taken
            .iter()
            .filter(|l| domain::plan::collides_with_base(l, &lookup.login_bases.iter().map(String::as_str).collect()))
            .cloned()
            .collect(),
        ..Snapshot::default()
    };
    plan(&checked, &mapping, &snapshot, &options)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn generated_logins_stay_unique(
        people in proptest::collection::vec((0..FIRST.len(), 0..LAST.len(), 0u8..40), 1..120),
        taken_numbers in proptest::collection::vec(0u32..60, 0..30),
        dot in any::<bool>(),
    ) {
        let pattern = if dot { LoginPattern::FirstDotLast } else { LoginPattern::InitialLastName };
        let bases: Vec<String> = FIRST.iter().flat_map(|f| LAST.iter().map(move |l| pattern.base(f, l))).collect();
        let taken: Vec<String> = taken_numbers
            .iter()
            .map(|n| {
                let base = &bases[*n as usize % bases.len()];
                if *n < 2 { base.clone() } else { format!("{base}{n}") }
            })
            .collect();
        let p = plan_for(&people, &taken, pattern);
        prop_assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
        let mut seen = HashSet::new();
        for c in &p.creates {
            let login = c.login.as_str();
            prop_assert!(seen.insert(login.to_string()), "login {} given twice", login);
            prop_assert!(!taken.contains(&login.to_string()), "login {} already taken", login);
            let base = pattern.base(&c.attrs.first_name, &c.attrs.last_name);
            prop_assert!(base.len() <= LOGIN_BASE_MAX);
            prop_assert!(is_base_or_numbered(login, &base), "{} does not follow {}", login, base);
            prop_assert!(login.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'));
        }
        // Every distinct person got an account; repeated people were merged.
        prop_assert_eq!(p.creates.len() + p.merges.len(), people.len());
    }
}

#[test]
fn hundreds_of_homonyms_count_up() {
    let people: Vec<(usize, usize, u8)> = (0..300).map(|i| (0, 0, (i % 250) as u8)).collect();
    let p = plan_for(
        &people,
        &["nmartin".to_string(), "nmartin2".to_string()],
        LoginPattern::InitialLastName,
    );
    let logins: Vec<&str> = p.creates.iter().map(|c| c.login.as_str()).collect();
    assert_eq!(logins[0], "nmartin3");
    assert_eq!(logins.len(), 250);
    assert_eq!(logins[249], "nmartin252");
    assert_eq!(p.merges.len(), 50);
}
