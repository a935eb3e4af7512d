//! The 60 function codes of administrative staff (guide §4.1.B.B), embedded at
//! build time from `data/fonctions.csv` (a copy of shared/domain/fonctions.csv).

use std::collections::HashMap;
use std::sync::OnceLock;

const FONCTIONS_CSV: &str = include_str!("../data/fonctions.csv");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCode {
    pub code: &'static str,
    pub short_label: &'static str,
    pub long_label: &'static str,
    /// Profile in La Vie Scolaire; `None` for TOS, never exported there.
    pub lvs_profile: Option<&'static str>,
}

impl FunctionCode {
    /// DIR gets the *administrateur* role in the administrative node, every other
    /// code the *enseignant* role (guide §4.1.B.B).
    pub fn is_direction(&self) -> bool {
        self.code == "DIR"
    }

    /// ENS is the teaching node: refused in staff files (guide §4.1.B.B).
    pub fn is_teaching(&self) -> bool {
        self.code == "ENS"
    }
}

fn table() -> &'static HashMap<&'static str, FunctionCode> {
    static TABLE: OnceLock<HashMap<&'static str, FunctionCode>> = OnceLock::new();
    TABLE.get_or_init(|| {
        FONCTIONS_CSV
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut parts = line.split(';');
                let code = parts.next()?.trim();
                let short_label = parts.next()?.trim();
                let long_label = parts.next()?.trim();
                let lvs = parts.next()?.trim();
                if code.is_empty() {
                    return None;
                }
                Some((
                    code,
                    FunctionCode {
                        code,
                        short_label,
                        long_label,
                        lvs_profile: (lvs != "ne pas exporter").then_some(lvs),
                    },
                ))
            })
            .collect()
    })
}

/// Looks a code up, ignoring case and spaces ("dir " → DIR). Accepts the short
/// label too ("DIRECTION"), since staff lists often carry it.
pub fn lookup(raw: &str) -> Option<&'static FunctionCode> {
    let wanted = raw.trim().to_ascii_uppercase();
    let table = table();
    table.get(wanted.as_str()).or_else(|| {
        table
            .values()
            .find(|f| f.short_label.eq_ignore_ascii_case(&wanted) || f.long_label == wanted)
    })
}

pub fn all() -> impl Iterator<Item = &'static FunctionCode> {
    table().values()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixty_codes_are_embedded() {
        assert_eq!(all().count(), 60);
        let dir = lookup("dir");
        assert!(dir.is_some_and(|d| d.is_direction() && d.lvs_profile == Some("Direction")));
        assert_eq!(lookup("TOS").map(|t| t.lvs_profile), Some(None));
        assert_eq!(lookup("EDUCATION").map(|f| f.code), Some("EDU"));
        assert!(lookup("XYZ").is_none());
    }
}
