//! Establishments and their UAI (ex-RNE) code.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Letters used as the UAI check key: 23 letters, no I, O, Q.
const UAI_CHECK_LETTERS: &[u8; 23] = b"ABCDEFGHJKLMNPRSTUVWXYZ";

/// A valid UAI: 7 digits and the check letter of their number, uppercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Uai(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UaiError {
    #[error("« {0} » n'est pas un code UAI : il faut 7 chiffres suivis d'une lettre (ex. 0750654D)")]
    Shape(String),
    #[error("« {given} » n'est pas un code UAI valide : la lettre de contrôle de {digits} est {expected} (vérifiez le numéro)")]
    CheckLetter {
        given: String,
        digits: String,
        expected: char,
    },
}

impl Uai {
    pub fn parse(raw: &str) -> Result<Self, UaiError> {
        let s: String = raw.trim().to_ascii_uppercase();
        let bytes = s.as_bytes();
        if bytes.len() != 8 || !bytes[..7].iter().all(u8::is_ascii_digit) || !bytes[7].is_ascii_uppercase() {
            return Err(UaiError::Shape(raw.trim().to_string()));
        }
        let number: u32 = bytes[..7].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        let expected = UAI_CHECK_LETTERS[(number % 23) as usize];
        if bytes[7] != expected {
            return Err(UaiError::CheckLetter {
                given: s.clone(),
                digits: s[..7].to_string(),
                expected: char::from(expected),
            });
        }
        Ok(Uai(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Uai {
    type Error = UaiError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Uai::parse(&value)
    }
}

impl From<Uai> for String {
    fn from(value: Uai) -> Self {
        value.0
    }
}

impl fmt::Display for Uai {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Establishment {
    pub uai: Uai,
    pub name: String,
}

/// "Lycée Henri-IV (0750653C)" as people read it; the UAI alone when the
/// name is unknown.
impl fmt::Display for Establishment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "{}", self.uai)
        } else {
            write!(f, "{} ({})", self.name, self.uai)
        }
    }
}

/// "Lycée Henri-IV (0750653C), Collège Rostand (0750654D)".
pub fn establishment_list<'a>(establishments: impl IntoIterator<Item = &'a Establishment>) -> String {
    establishments
        .into_iter()
        .map(Establishment::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An establishment as the academic feed describes it: besides its UAI and
/// name, the jointure by which the feed's persons name it, its type, city and
/// academy (all absent for an establishment created by hand).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Structure {
    pub uai: Uai,
    pub name: String,
    pub jointure: Option<String>,
    pub structure_type: Option<String>,
    pub city: Option<String>,
    pub academy: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_uai_is_valid_and_normalised() {
        assert_eq!(Uai::parse(" 0750654d ").map(|u| u.to_string()), Ok("0750654D".into()));
    }

    #[test]
    fn wrong_check_letter_names_the_right_one() {
        let err = Uai::parse("0750654E").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("est D"), "{err}");
    }

    #[test]
    fn bad_shapes_are_refused() {
        for s in ["", "075065D", "07506540", "A750654D", "0750654DD"] {
            assert!(matches!(Uai::parse(s), Err(UaiError::Shape(_))), "{s}");
        }
    }
}
