//! Bytes → text: size limits, BOMs, encoding detection (UTF-8, Windows-1252,
//! ISO-8859-1, Mac Roman, UTF-16 from Excel's "texte Unicode"), refusal of
//! binary files with a message that says what to do instead.

use encoding_rs::{Encoding, MACINTOSH, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncodingChoice {
    #[default]
    Auto,
    Utf8,
    Windows1252,
    Iso88591,
    Macintosh,
}

impl FromStr for EncodingChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(EncodingChoice::Auto),
            "utf-8" | "utf8" => Ok(EncodingChoice::Utf8),
            "windows-1252" | "cp1252" | "ansi" => Ok(EncodingChoice::Windows1252),
            "iso-8859-1" | "latin1" | "latin-1" | "iso-8859-15" => Ok(EncodingChoice::Iso88591),
            "macintosh" | "mac-roman" | "macroman" => Ok(EncodingChoice::Macintosh),
            other => Err(format!(
                "encodage « {other} » inconnu : choisissez auto, utf-8, windows-1252, iso-8859-1 ou macintosh"
            )),
        }
    }
}

/// Limits that keep a bad upload from exhausting the server (SPEC §3).
/// The longest cell (and AAF value) kept, in characters.
pub const DEFAULT_MAX_CELL_CHARS: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_rows: usize,
    pub max_cell_chars: usize,
    pub max_columns: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 20 * 1024 * 1024,
            max_rows: 200_000,
            max_cell_chars: DEFAULT_MAX_CELL_CHARS,
            max_columns: 200,
        }
    }
}

/// A problem with the whole file: nothing in it can be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("le fichier est vide : exportez de nouveau votre tableau au format CSV")]
    Empty,
    #[error(
        "le fichier fait {size} octets, au-delà de la limite de {limit} octets : découpez-le en plusieurs fichiers"
    )]
    TooLarge { size: usize, limit: usize },
    #[error("le fichier est un classeur Excel (.xlsx/.xls), pas un CSV : dans Excel, « Enregistrer sous » et choisissez « CSV (séparateur : point-virgule) »")]
    Spreadsheet,
    #[error("le fichier contient des octets nuls (position {offset}) : ce n'est pas un fichier texte CSV ; enregistrez-le au format CSV depuis votre tableur")]
    NulBytes { offset: usize },
    #[error(
        "le fichier ne ressemble pas à du texte ({share} % de caractères de contrôle) : choisissez un fichier CSV"
    )]
    Binary { share: usize },
    #[error("le fichier n'est pas en {encoding} (octet invalide à la ligne {line}) : choisissez l'encodage automatique ou windows-1252")]
    Undecodable { encoding: &'static str, line: usize },
    #[error("le fichier est en UTF-8 mais {invalid} caractère(s) y sont abîmés (octet invalide, le premier à la ligne {line}) : corrigez cette ligne dans le tableur (retapez ses accents) puis réenregistrez au format « CSV UTF-8 »")]
    DamagedUtf8 { invalid: usize, line: usize },
    #[error("le fichier ne contient aucune ligne de données{detail} : ajoutez au moins une personne")]
    NoDataRows { detail: &'static str },
    #[error("le fichier contient {rows} lignes, au-delà de la limite de {limit} : découpez-le en plusieurs fichiers")]
    TooManyRows { rows: usize, limit: usize },
    #[error("l'en-tête a {columns} colonnes, au-delà de la limite de {limit} : vérifiez le séparateur choisi")]
    TooManyColumns { columns: usize, limit: usize },
    #[error("le fichier n'a qu'une colonne avec le séparateur {}, mais il semble séparé par {} : choisissez ce séparateur", crate::parse::separator_name(*.chosen), crate::parse::separator_name(*.detected))]
    WrongSeparator { chosen: u8, detected: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decoded {
    pub text: String,
    /// The encoding used, as a WHATWG label ("UTF-8", "windows-1252", "macintosh").
    pub encoding: &'static str,
    /// True when the encoding was detected rather than imposed.
    pub detected: bool,
    /// Remarks to show the admin (mojibake suspected, BOMs removed…).
    pub notices: Vec<String>,
}

pub fn decode(bytes: &[u8], choice: EncodingChoice, limits: &Limits) -> Result<Decoded, FileError> {
    if bytes.len() > limits.max_bytes {
        return Err(FileError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(FileError::Empty);
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(FileError::Spreadsheet);
    }
    // Excel's "Texte Unicode" export is UTF-16 with a BOM.
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        if encoding == UTF_16LE || encoding == UTF_16BE {
            let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
            if had_errors {
                return Err(FileError::Undecodable {
                    encoding: encoding.name(),
                    line: 1,
                });
            }
            return finish(text.into_owned(), encoding.name(), true, Vec::new());
        }
    }
    // Some tools write UTF-16 without a BOM: Latin text then has a nul byte
    // in every other position, on the same side throughout.
    if let Some(encoding) = utf16_without_bom(bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
        if !had_errors {
            let notice = format!(
                "Fichier reconnu comme {} sans marque d'ordre des octets (BOM).",
                encoding.name()
            );
            return finish(text.into_owned(), encoding.name(), true, vec![notice]);
        }
    }
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(FileError::NulBytes { offset });
    }
    let body = strip_utf8_boms(bytes);
    let mut notices = Vec::new();
    let (text, encoding, detected) = match choice {
        EncodingChoice::Auto => {
            if let Some((invalid, line)) = damaged_utf8(body) {
                return Err(FileError::DamagedUtf8 { invalid, line });
            }
            let (text, encoding) = detect_and_decode(body);
            (text, encoding, true)
        }
        EncodingChoice::Utf8 => match std::str::from_utf8(body) {
            Ok(s) => (s.to_string(), UTF_8, false),
            Err(e) => {
                let line = body[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
                return Err(FileError::Undecodable {
                    encoding: "UTF-8",
                    line,
                });
            }
        },
        EncodingChoice::Windows1252 | EncodingChoice::Iso88591 => {
            // WHATWG maps ISO-8859-1 to windows-1252: a strict superset for text.
            (
                WINDOWS_1252.decode_without_bom_handling(body).0.into_owned(),
                WINDOWS_1252,
                false,
            )
        }
        EncodingChoice::Macintosh => (
            MACINTOSH.decode_without_bom_handling(body).0.into_owned(),
            MACINTOSH,
            false,
        ),
    };
    if encoding == UTF_8 && looks_double_encoded(&text) {
        notices.push(
            "des accents semblent mal encodés (« Ã© » au lieu de « é ») : le fichier a sans doute été converti deux fois ; réenregistrez-le en UTF-8 depuis le tableur d'origine".to_string(),
        );
    }
    finish(text, encoding.name(), detected, notices)
}

/// UTF-16 little- or big-endian, told by where the nul bytes fall in the
/// first 4 KiB: at least a third of one side nul, almost none of the other.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    let sample = &bytes[..bytes.len().min(4096) & !1];
    let pairs = sample.len() / 2;
    if pairs < 2 {
        return None;
    }
    let nul_at = |parity: usize| sample.iter().skip(parity).step_by(2).filter(|&&b| b == 0).count();
    let (even, odd) = (nul_at(0), nul_at(1));
    let mostly = |n: usize| n * 3 >= pairs;
    let hardly = |n: usize| n * 50 <= pairs;
    if mostly(odd) && hardly(even) {
        Some(UTF_16LE)
    } else if mostly(even) && hardly(odd) {
        Some(UTF_16BE)
    } else {
        None
    }
}

fn finish(text: String, encoding: &'static str, detected: bool, notices: Vec<String>) -> Result<Decoded, FileError> {
    let controls = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n' | '\u{0C}'))
        .count();
    let total = text.chars().count().max(1);
    if controls * 100 > total {
        return Err(FileError::Binary {
            share: controls * 100 / total,
        });
    }
    if text
        .trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}')
        .is_empty()
    {
        return Err(FileError::Empty);
    }
    Ok(Decoded {
        text,
        encoding,
        detected,
        notices,
    })
}

/// Excel on Windows writes one BOM; files concatenated by hand carry several.
fn strip_utf8_boms(mut bytes: &[u8]) -> &[u8] {
    while let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        bytes = rest;
    }
    bytes
}

/// A UTF-8 file with a few damaged characters, rather than a file in another
/// encoding: its valid accented characters outnumber its invalid sequences
/// (a Windows-1252 file has almost none of the former). Decoding it as
/// Windows-1252 would turn every accent into two signs and the headers into
/// "missing required fields". (invalid sequences, line of the first).
fn damaged_utf8(body: &[u8]) -> Option<(usize, usize)> {
    let mut accented = 0usize;
    let mut invalid = 0usize;
    let mut first_offset = None;
    let mut offset = 0usize;
    for chunk in body.utf8_chunks() {
        accented += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        offset += chunk.valid().len();
        if !chunk.invalid().is_empty() {
            invalid += 1;
            first_offset.get_or_insert(offset);
        }
        offset += chunk.invalid().len();
    }
    let first = first_offset?;
    (accented >= 2 && accented > invalid).then(|| (invalid, body[..first].iter().filter(|&&b| b == b'\n').count() + 1))
}

fn detect_and_decode(body: &[u8]) -> (String, &'static Encoding) {
    if let Ok(s) = std::str::from_utf8(body) {
        return (s.to_string(), UTF_8);
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(body, true);
    let guess = detector.guess(Some(b"fr"), false);
    // chardetng never proposes Mac Roman (Excel for macOS): score the candidates
    // on how French the decoded letters look and keep the best.
    let mut best: Option<(i64, String, &'static Encoding)> = None;
    for candidate in [guess, WINDOWS_1252, MACINTOSH] {
        let (text, _, _) = candidate.decode(body);
        let score = french_score(&text);
        if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
            best = Some((score, text.into_owned(), candidate));
        }
    }
    match best {
        Some((_, text, encoding)) => (text, encoding),
        None => (WINDOWS_1252.decode(body).0.into_owned(), WINDOWS_1252),
    }
}

/// Rewards accented letters next to letters, punishes symbols inside words:
/// "Hélène" decoded right scores high, "H»l»ne" or "HÈlËne" low.
fn french_score(text: &str) -> i64 {
    const FRENCH: &str = "àâäçéèêëîïôöùûüÿœæÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸŒÆ";
    let chars: Vec<char> = text.chars().collect();
    let mut score = 0i64;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii() {
            continue;
        }
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied().unwrap_or(' ');
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        let in_word = prev.is_alphabetic() || next.is_alphabetic();
        let lowercase_context = prev.is_lowercase() || next.is_lowercase();
        score += if FRENCH.contains(c) {
            // Capital accented letters inside lowercase words are a Mac Roman tell.
            if c.is_uppercase() && lowercase_context && prev.is_lowercase() {
                -2
            } else if in_word {
                3
            } else {
                1
            }
        } else if c.is_alphabetic() {
            if in_word {
                1
            } else {
                0
            }
        } else if matches!(c, '€' | '’' | '«' | '»' | '°' | '–' | '—' | '…' | '\u{A0}') && !in_word {
            1
        } else {
            -4
        };
    }
    score
}

fn looks_double_encoded(text: &str) -> bool {
    ["Ã©", "Ã¨", "Ã§", "Ã ", "Ãª", "Ã«", "Ã®", "Ã´", "Ã¹"]
        .iter()
        .any(|m| text.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(bytes: &[u8]) -> Result<Decoded, FileError> {
        decode(bytes, EncodingChoice::Auto, &Limits::default())
    }

    const SAMPLE: &str = "Civilité;Nom;Prénom;Matière\nMadame;LAVOISIER;Hélène;Physique-Chimie\nMonsieur;DESCARTES;François;Mathématiques\n";

    #[test]
    fn utf8_with_repeated_boms() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF, 0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice(SAMPLE.as_bytes());
        let d = auto(&bytes).map(|d| (d.text, d.encoding));
        assert_eq!(d, Ok((SAMPLE.to_string(), "UTF-8")));
    }

    #[test]
    fn one_damaged_character_in_a_utf8_file_is_said_with_its_line() {
        let mut bytes = "Civilité;Nom;Prénom\r\nMadame;Hélène;Éloïse\r\nMonsieur;Dupont;Jérôme\r\n"
            .as_bytes()
            .to_vec();
        // "Jérôme" with its "ô" cut in half: one invalid byte on line 3.
        let o = bytes.windows(2).position(|w| w == "ô".as_bytes()).unwrap_or_default();
        bytes.remove(o + 1);
        match auto(&bytes) {
            Err(FileError::DamagedUtf8 { invalid: 1, line: 3 }) => {}
            other => panic!("{other:?}"),
        }
        // A Windows-1252 file is still detected as such.
        let (latin, _, _) = WINDOWS_1252.encode("Civilité;Nom;Prénom\r\nMadame;Hélène;Éloïse\r\n");
        assert_eq!(auto(&latin).map(|d| d.encoding).ok(), Some("windows-1252"));
    }

    #[test]
    fn windows_1252_is_detected() {
        let (bytes, _, _) = WINDOWS_1252.encode(SAMPLE);
        let d = auto(&bytes).map(|d| (d.text, d.encoding));
        assert_eq!(d, Ok((SAMPLE.to_string(), "windows-1252")));
    }

    #[test]
    fn mac_roman_is_detected() {
        let bytes: Vec<u8> = SAMPLE
            .chars()
            .map(|c| match c {
                'é' => 0x8E,
                'è' => 0x8F,
                'ç' => 0x8D,
                'à' => 0x88,
                other => other as u8,
            })
            .collect();
        let d = auto(&bytes).map(|d| (d.text, d.encoding));
        assert_eq!(d, Ok((SAMPLE.to_string(), "macintosh")));
    }

    #[test]
    fn utf16_without_bom_is_recognised_on_either_side() {
        let sample = "Civilité;Nom;Prénom\r\nMadame;ÉLÈVE;Zoé\r\n";
        for big_endian in [false, true] {
            let bytes: Vec<u8> = sample
                .encode_utf16()
                .flat_map(|u| if big_endian { u.to_be_bytes() } else { u.to_le_bytes() })
                .collect();
            let decoded = decode(&bytes, EncodingChoice::Auto, &Limits::default()).unwrap();
            assert_eq!(decoded.text, sample);
            assert_eq!(decoded.encoding, if big_endian { "UTF-16BE" } else { "UTF-16LE" });
            assert!(
                decoded.notices.iter().any(|n| n.contains("sans marque")),
                "{:?}",
                decoded.notices
            );
        }
        // A binary file with scattered nul bytes is still refused as such.
        let mut binary = b"Nom;Prenom\r\nDUPONT;Jean\r\n".to_vec();
        binary.insert(5, 0);
        assert!(matches!(
            decode(&binary, EncodingChoice::Auto, &Limits::default()),
            Err(FileError::NulBytes { .. })
        ));
    }

    #[test]
    fn utf16_from_excel_unicode_text() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in SAMPLE.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(auto(&bytes).map(|d| d.text), Ok(SAMPLE.to_string()));
    }

    #[test]
    fn refusals() {
        assert_eq!(auto(b""), Err(FileError::Empty));
        assert_eq!(auto(b" \r\n "), Err(FileError::Empty));
        assert_eq!(auto(b"PK\x03\x04rest"), Err(FileError::Spreadsheet));
        assert_eq!(auto(b"Nom;Pr\x00nom"), Err(FileError::NulBytes { offset: 6 }));
        let garbage: Vec<u8> = (1u8..=8).cycle().take(400).collect();
        assert!(matches!(auto(&garbage), Err(FileError::Binary { .. })));
        let limits = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        assert!(matches!(
            decode(SAMPLE.as_bytes(), EncodingChoice::Auto, &limits),
            Err(FileError::TooLarge { .. })
        ));
        let forced = decode(&WINDOWS_1252.encode(SAMPLE).0, EncodingChoice::Utf8, &Limits::default());
        assert_eq!(
            forced,
            Err(FileError::Undecodable {
                encoding: "UTF-8",
                line: 1
            })
        );
    }

    #[test]
    fn double_encoding_is_reported() {
        let d = auto("Nom;Prénom\nDUPONT;HÃ©lÃ¨ne\n".as_bytes());
        assert_eq!(d.map(|d| d.notices.len()), Ok(1));
    }
}
