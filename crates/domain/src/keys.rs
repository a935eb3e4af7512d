//! Sync keys and generated logins (guide §4.1.A.B–C, SPEC §5).

use crate::profile::Profile;
use crate::text::{login_part, push_letters};
use crate::values::Login;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// The clé de synchronisation: unique, never changed, never reused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SyncKey(String);

impl SyncKey {
    /// Teachers and staff: `PERSON.m-mme<prénom><nom>` whatever the civility;
    /// pupils: `<prénom><nom><jour de naissance>` (`noamcepe03`); parents:
    /// `<prénom><nom><code postal>`. Lowercase ASCII letters only.
    pub fn derive(
        profile: Profile,
        first_name: &str,
        last_name: &str,
        birth_date: Option<NaiveDate>,
        postal_code: Option<&str>,
    ) -> SyncKey {
        // Built in one string: this runs for every line of every file.
        let mut key = String::with_capacity(16 + first_name.len() + last_name.len());
        if !matches!(profile, Profile::Eleve | Profile::Parent) {
            key.push_str("PERSON.m-mme");
        }
        push_letters(&mut key, first_name);
        push_letters(&mut key, last_name);
        match profile {
            Profile::Eleve => {
                if let Some(d) = birth_date {
                    key.push_str(&format!("{:02}", d.day()));
                }
            }
            Profile::Parent => key.push_str(postal_code.unwrap_or("")),
            _ => {}
        }
        SyncKey(key)
    }

    pub fn from_stored(s: String) -> SyncKey {
        SyncKey(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `PERSON.` followed by digits only: an account fed by the academic directory.
    pub fn looks_like_aaf(&self) -> bool {
        self.0
            .strip_prefix("PERSON.")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
    }
}

impl fmt::Display for SyncKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How logins are built from names when the file imposes none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoginPattern {
    /// First initial and last name: Noam CEPE → `ncepe` (the guide's result file).
    #[default]
    InitialLastName,
    /// `prenom.nom`.
    FirstDotLast,
}

/// Longest generated base before the numeric suffix.
pub const LOGIN_BASE_MAX: usize = 20;

impl LoginPattern {
    /// The login before any `2`, `3`… suffix: lowercase `[a-z0-9.-]`, at most
    /// [`LOGIN_BASE_MAX`] characters, never empty.
    pub fn base(self, first_name: &str, last_name: &str) -> String {
        let first = login_part(first_name);
        let last = login_part(last_name).replace('-', "");
        let raw = match self {
            LoginPattern::InitialLastName => {
                let initial: String = first.chars().find(char::is_ascii_alphanumeric).into_iter().collect();
                format!("{initial}{last}")
            }
            LoginPattern::FirstDotLast => match (first.is_empty(), last.is_empty()) {
                (false, false) => format!("{first}.{last}"),
                _ => format!("{first}{last}"),
            },
        };
        let mut base: String = raw.chars().take(LOGIN_BASE_MAX).collect();
        while base.ends_with(['.', '-']) {
            base.pop();
        }
        if base.is_empty() {
            base.push_str("utilisateur");
        }
        base
    }
}

impl std::str::FromStr for LoginPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "initiale-nom" | "initial-last-name" | "pnom" => Ok(LoginPattern::InitialLastName),
            "prenom.nom" | "first-dot-last" => Ok(LoginPattern::FirstDotLast),
            _ => Err(format!(
                "modèle de login « {s} » inconnu : choisissez initiale-nom (ncepe) ou prenom.nom (noam.cepe)"
            )),
        }
    }
}

/// The first number that is greater than `digits` and, written without
/// leading zeros, at least as long: `41` → 42, `007` → 100. Every number
/// written with as many digits is then greater as text too, so it is free
/// whenever `digits` is the greatest of the longest numbers in use.
fn after_number(digits: &str) -> Option<u64> {
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let shortest = 10u64.pow(digits.len() as u32 - 1);
    Some((n + 1).max(shortest).max(2))
}

/// Whether `login` is `base` or `base` followed by a number: the logins a base
/// can collide with, fetched from the directory by prefix.
pub fn is_base_or_numbered(login: &str, base: &str) -> bool {
    login
        .strip_prefix(base)
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
}

/// Hands out generated logins: `base`, then `base2`, `base3`… after the
/// highest number in use for that base (in the directory or given earlier in
/// the same file), skipping every login taken. A number freed by a purge is
/// not handed out again: the directory then needs to tell only the highest
/// number of each base, never every homonym (SPEC §5.3: the cost of an import
/// must not grow with the directory).
#[derive(Debug, Default)]
pub struct LoginAllocator {
    taken: HashSet<String>,
    /// Per base, the first number to try: every smaller one is taken or below
    /// the highest in use. Logins are never released, so the k-th homonym of a
    /// file costs one probe rather than k.
    next_suffix: HashMap<String, u64>,
}

impl LoginAllocator {
    pub fn new(taken: impl IntoIterator<Item = String>) -> Self {
        let taken: HashSet<String> = taken.into_iter().map(|l| l.to_lowercase()).collect();
        let mut next_suffix: HashMap<String, u64> = HashMap::new();
        for login in &taken {
            let base = login.trim_end_matches(|c: char| c.is_ascii_digit());
            if let Some(next) = after_number(&login[base.len()..]) {
                if !base.is_empty() {
                    let entry = next_suffix.entry(base.to_string()).or_insert(2);
                    *entry = (*entry).max(next);
                }
            }
        }
        LoginAllocator { taken, next_suffix }
    }

    pub fn is_taken(&self, login: &str) -> bool {
        self.taken.contains(login)
    }

    /// Marks an imposed or existing login as used; false if it already was.
    pub fn reserve(&mut self, login: &str) -> bool {
        self.taken.insert(login.to_lowercase())
    }

    pub fn allocate(&mut self, base: &str) -> Login {
        if !self.next_suffix.contains_key(base) && self.taken.insert(base.to_string()) {
            return Login::generated(base.to_string());
        }
        let next = self.next_suffix.entry(base.to_string()).or_insert(2);
        loop {
            let candidate = format!("{base}{next}");
            *next += 1;
            if self.taken.insert(candidate.clone()) {
                return Login::generated(candidate);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teacher_keys_ignore_civility_accents_and_case() {
        let k = SyncKey::derive(Profile::Enseignant, "Martin", "Dupont", None, None);
        assert_eq!(k.as_str(), "PERSON.m-mmemartindupont");
        let k = SyncKey::derive(Profile::Administratif, "Hélène", "D'ORMESSON-LÉVY", None, None);
        assert_eq!(k.as_str(), "PERSON.m-mmehelenedormessonlevy");
    }

    #[test]
    fn pupil_key_of_the_guide() {
        let born = NaiveDate::from_ymd_opt(2012, 8, 3);
        let k = SyncKey::derive(Profile::Eleve, "Noam", "CEPE", born, None);
        assert_eq!(k.as_str(), "noamcepe03");
    }

    #[test]
    fn aaf_keys_are_recognised() {
        assert!(SyncKey::from_stored("PERSON.1841028".into()).looks_like_aaf());
        assert!(!SyncKey::from_stored("PERSON.m-mmemartindupont".into()).looks_like_aaf());
    }

    #[test]
    fn login_bases() {
        assert_eq!(LoginPattern::InitialLastName.base("Noam", "CEPE"), "ncepe");
        assert_eq!(
            LoginPattern::FirstDotLast.base("Jean-Pierre", "De La Fontaine"),
            "jean-pierre.delafont"
        );
        assert_eq!(
            LoginPattern::InitialLastName.base("Éloïse", "N'Diaye-Koné"),
            "endiayekone"
        );
        assert_eq!(LoginPattern::InitialLastName.base("", "!!"), "utilisateur");
        assert!(LoginPattern::InitialLastName.base("A", &"x".repeat(50)).len() <= LOGIN_BASE_MAX);
    }

    #[test]
    fn allocator_skips_taken_logins() {
        let mut a = LoginAllocator::new(["ncepe".to_string(), "ncepe2".to_string()]);
        assert_eq!(a.allocate("ncepe").as_str(), "ncepe3");
        assert_eq!(a.allocate("ncepe").as_str(), "ncepe4");
        assert_eq!(a.allocate("jdoe").as_str(), "jdoe");
        assert!(is_base_or_numbered("ncepe12", "ncepe"));
        assert!(!is_base_or_numbered("ncepex", "ncepe"));
    }

    #[test]
    fn allocator_continues_after_the_highest_number() {
        let mut a = LoginAllocator::new(["ncepe".to_string(), "ncepe7".to_string(), "jdoe007".to_string()]);
        assert_eq!(
            a.allocate("ncepe").as_str(),
            "ncepe8",
            "holes below the highest are not reused"
        );
        assert_eq!(
            a.allocate("jdoe").as_str(),
            "jdoe100",
            "a zero-padded number is passed by length"
        );
        let mut b = LoginAllocator::new(["ncepe3".to_string()]);
        assert_eq!(
            b.allocate("ncepe").as_str(),
            "ncepe4",
            "a free base is not handed out below a number"
        );
        assert_eq!(after_number("41"), Some(42));
        assert_eq!(after_number("0"), Some(2));
        assert_eq!(after_number(""), None);
    }

    #[test]
    fn allocator_resumes_after_the_last_suffix_and_still_skips_reserved_ones() {
        let mut a = LoginAllocator::new(["ncepe".to_string(), "ncepe2".to_string()]);
        assert_eq!(a.allocate("ncepe").as_str(), "ncepe3");
        assert!(a.reserve("ncepe4"));
        assert_eq!(a.allocate("ncepe").as_str(), "ncepe5");
        let mut b = LoginAllocator::default();
        let logins: Vec<String> = (0..1_000).map(|_| b.allocate("mmartin").as_str().to_string()).collect();
        assert_eq!(logins[0], "mmartin");
        assert_eq!(logins[999], "mmartin1000");
    }
}
