//! Probable duplicates between a CSV-born and an AAF-fed account (SPEC §9,
//! guide §7): same establishment, same profile family, same normalised names,
//! one account from the feed and one not. Scored on birth date and e-mail, with
//! the evidence an administrator needs to decide.
//!
//! Pure: the store hands over the candidate accounts of a few establishments
//! (never the whole directory during an import) and the dismissed pairs.

use crate::establishment::Uai;
use crate::keys::SyncKey;
use crate::person::Source;
use crate::profile::Profile;
use crate::text::letters_only;
use crate::values::{Email, Login};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// One account with an active membership in one establishment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    pub key: SyncKey,
    pub login: Login,
    pub profile: Profile,
    pub source: Source,
    pub last_name: String,
    pub first_name: String,
    pub birth_date: Option<NaiveDate>,
    pub email: Option<Email>,
    pub uai: Uai,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    pub id: i64,
    pub key: SyncKey,
    pub login: Login,
    pub profile: Profile,
    pub source: Source,
    pub last_name: String,
    pub first_name: String,
    pub birth_date: Option<NaiveDate>,
    pub email: Option<Email>,
}

/// One reason for (or against) a pair, with its weight in the score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub code: &'static str,
    pub weight: i32,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuplicatePair {
    /// 0–100: 50 for the names, ±30 birth date, ±20/−10 e-mail, −10 profile.
    pub score: u8,
    /// The account to keep (CSV or manual: it holds the login and content).
    pub local: Side,
    /// The account from the feed, whose key the local one takes on reconciliation.
    pub aaf: Side,
    pub establishments: Vec<Uai>,
    pub evidence: Vec<Evidence>,
}

/// Teachers and staff are one family (the feed moves people between them);
/// every other profile is its own.
pub fn family(profile: Profile) -> &'static str {
    if profile.is_staff_family() {
        "personnel"
    } else {
        profile.id()
    }
}

/// First and last name reduced to letters a–z: "Véronique BARBIER" and
/// "veronique Barbier" and "Veronique BAR-BIER" all give `veroniquebarbier`.
pub fn name_key(first_name: &str, last_name: &str) -> String {
    format!("{}{}", letters_only(first_name), letters_only(last_name))
}

/// Pairs ordered so that `(a, b)` and `(b, a)` are one dismissal.
pub fn pair_ids(a: i64, b: i64) -> (i64, i64) {
    (a.min(b), a.max(b))
}

fn side(c: &Candidate) -> Side {
    Side {
        id: c.id,
        key: c.key.clone(),
        login: c.login.clone(),
        profile: c.profile,
        source: c.source,
        last_name: c.last_name.clone(),
        first_name: c.first_name.clone(),
        birth_date: c.birth_date,
        email: c.email.clone(),
    }
}

/// The score and its evidence for two accounts whose names already match.
pub fn score(local: &Side, aaf: &Side) -> (u8, Vec<Evidence>) {
    let mut evidence = vec![Evidence {
        code: "same_names",
        weight: 50,
        message: format!(
            "mêmes nom et prénom une fois accents, casse et tirets retirés (« {} {} » / « {} {} »)",
            local.first_name, local.last_name, aaf.first_name, aaf.last_name
        ),
    }];
    match (local.birth_date, aaf.birth_date) {
        (Some(a), Some(b)) if a == b => evidence.push(Evidence {
            code: "same_birth_date",
            weight: 30,
            message: format!("même date de naissance ({})", a.format("%d/%m/%Y")),
        }),
        (Some(a), Some(b)) => evidence.push(Evidence {
            code: "different_birth_date",
            weight: -30,
            message: format!(
                "dates de naissance différentes ({} / {}) : probablement deux homonymes",
                a.format("%d/%m/%Y"),
                b.format("%d/%m/%Y")
            ),
        }),
        _ => evidence.push(Evidence {
            code: "unknown_birth_date",
            weight: 0,
            message: "date de naissance inconnue d'un des deux comptes".into(),
        }),
    }
    match (&local.email, &aaf.email) {
        (Some(a), Some(b)) if a == b => evidence.push(Evidence {
            code: "same_email",
            weight: 20,
            message: format!("même adresse e-mail ({})", a.as_str()),
        }),
        (Some(a), Some(b)) => evidence.push(Evidence {
            code: "different_email",
            weight: -10,
            message: format!("adresses e-mail différentes ({} / {})", a.as_str(), b.as_str()),
        }),
        _ => {}
    }
    if local.profile != aaf.profile {
        evidence.push(Evidence {
            code: "different_profile",
            weight: -10,
            message: format!(
                "profils différents ({} / {})",
                local.profile.label(),
                aaf.profile.label()
            ),
        });
    }
    let total: i32 = evidence.iter().map(|e| e.weight).sum();
    (total.clamp(0, 100) as u8, evidence)
}

/// Every probable pair among the candidates, best first. `only` restricts the
/// result to pairs with at least one of these accounts (those an import touched).
pub fn find_pairs(
    candidates: &[Candidate],
    dismissed: &HashSet<(i64, i64)>,
    only: Option<&HashSet<i64>>,
) -> Vec<DuplicatePair> {
    // (establishment, family, names) → accounts.
    let mut groups: BTreeMap<(&Uai, &'static str, String), Vec<&Candidate>> = BTreeMap::new();
    for c in candidates {
        let names = name_key(&c.first_name, &c.last_name);
        if names.is_empty() {
            continue;
        }
        groups.entry((&c.uai, family(c.profile), names)).or_default().push(c);
    }
    let mut pairs: BTreeMap<(i64, i64), (Side, Side, BTreeSet<Uai>)> = BTreeMap::new();
    for ((uai, _, _), accounts) in &groups {
        for aaf in accounts.iter().filter(|c| c.source == Source::Aaf) {
            for local in accounts.iter().filter(|c| c.source != Source::Aaf) {
                if local.id == aaf.id || dismissed.contains(&pair_ids(local.id, aaf.id)) {
                    continue;
                }
                if only.is_some_and(|ids| !ids.contains(&local.id) && !ids.contains(&aaf.id)) {
                    continue;
                }
                pairs
                    .entry((local.id, aaf.id))
                    .or_insert_with(|| (side(local), side(aaf), BTreeSet::new()))
                    .2
                    .insert((*uai).clone());
            }
        }
    }
    let mut out: Vec<DuplicatePair> = pairs
        .into_values()
        .map(|(local, aaf, establishments)| {
            let (score, evidence) = score(&local, &aaf);
            DuplicatePair {
                score,
                local,
                aaf,
                establishments: establishments.into_iter().collect(),
                evidence,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| a.local.last_name.cmp(&b.local.last_name))
            .then_with(|| a.local.id.cmp(&b.local.id))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(
        id: i64,
        source: Source,
        profile: Profile,
        first: &str,
        last: &str,
        born: Option<(i32, u32, u32)>,
    ) -> Candidate {
        Candidate {
            id,
            key: SyncKey::from_stored(format!("K{id}")),
            login: Login::from_stored(format!("l{id}")),
            profile,
            source,
            last_name: last.into(),
            first_name: first.into(),
            birth_date: born.and_then(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d)),
            email: None,
            uai: Uai::parse("0750654D").unwrap_or_else(|_| panic!("uai")),
        }
    }

    #[test]
    fn the_guides_barbier_pair_is_found_and_scored() {
        let all = [
            c(
                1,
                Source::Csv,
                Profile::Administratif,
                "Véronique",
                "BARBIER",
                Some((1971, 3, 12)),
            ),
            c(
                2,
                Source::Aaf,
                Profile::Administratif,
                "VERONIQUE",
                "Barbier",
                Some((1971, 3, 12)),
            ),
            c(3, Source::Csv, Profile::Enseignant, "Paul", "Barbier", None),
            c(4, Source::Aaf, Profile::Enseignant, "Mylan", "ANDRIOT", None),
        ];
        let pairs = find_pairs(&all, &HashSet::new(), None);
        assert_eq!(pairs.len(), 1);
        assert_eq!((pairs[0].local.id, pairs[0].aaf.id), (1, 2));
        assert_eq!(pairs[0].score, 80);
        assert!(pairs[0].evidence.iter().any(|e| e.code == "same_birth_date"));
    }

    #[test]
    fn teacher_and_staff_pair_but_two_csv_or_dismissed_do_not() {
        let all = [
            c(1, Source::Csv, Profile::Enseignant, "Anne", "Roy", None),
            c(
                2,
                Source::Aaf,
                Profile::Administratif,
                "Anne",
                "ROY",
                Some((1980, 1, 1)),
            ),
            c(3, Source::Csv, Profile::Enseignant, "Anne", "Roy", None),
            c(4, Source::Csv, Profile::Eleve, "Anne", "Roy", None),
        ];
        let pairs = find_pairs(&all, &HashSet::new(), None);
        let ids: Vec<(i64, i64)> = pairs.iter().map(|p| (p.local.id, p.aaf.id)).collect();
        assert_eq!(ids, [(1, 2), (3, 2)]);
        assert_eq!(pairs[0].score, 40);
        let dismissed: HashSet<(i64, i64)> = [pair_ids(2, 1)].into_iter().collect();
        assert_eq!(find_pairs(&all, &dismissed, None).len(), 1);
        let touched: HashSet<i64> = [3].into_iter().collect();
        assert_eq!(find_pairs(&all, &HashSet::new(), Some(&touched)).len(), 1);
    }
}
