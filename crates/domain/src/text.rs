//! Text helpers shared by every stage: cell cleaning and ASCII folding.

/// Characters Excel and web copy-paste leave around values: NBSP, narrow NBSP,
/// zero-width spaces and joiners, BOMs in the middle of a file.
fn is_invisible_or_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Trims a cell as a person reads it: spaces of every kind at both ends removed,
/// inner runs of spaces (incl. NBSP) collapsed to one ordinary space, zero-width
/// characters dropped.
pub fn clean_cell(raw: &str) -> String {
    // Most cells are one visible ASCII word: nothing to clean.
    if raw.bytes().all(|b| b.is_ascii_graphic()) {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for c in raw.chars() {
        if matches!(c, '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}') {
            continue;
        }
        if is_invisible_or_space(c) {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// ASCII transliteration, borrowed when the text is ASCII already (no copy).
fn ascii(s: &str) -> std::borrow::Cow<'_, str> {
    deunicode::deunicode_with_tofu_cow(s, "[?]")
}

/// Lowercase ASCII transliteration (é→e, Ø→o, ß→ss, Œ→oe), for comparisons
/// that must ignore accents and case.
pub fn fold(s: &str) -> String {
    let mut out = ascii(s).into_owned();
    out.make_ascii_lowercase();
    out
}

/// Appends the letters a–z of the folded text to `out`: the form sync keys are built from.
pub fn push_letters(out: &mut String, s: &str) {
    out.extend(
        ascii(s)
            .chars()
            .filter(char::is_ascii_alphabetic)
            .map(|c| c.to_ascii_lowercase()),
    );
}

/// Only the letters a–z of the folded text: the form sync keys are built from.
pub fn letters_only(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_letters(&mut out, s);
    out
}

/// Letters, digits and hyphens of the folded text: the form logins are built from
/// ("Jean-Pierre" keeps its hyphen, "N'Diaye" loses its apostrophe).
pub fn login_part(s: &str) -> String {
    let folded = ascii(s);
    let mut out = String::with_capacity(folded.len());
    for c in folded.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if c == '-' && !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_cell_removes_excel_and_web_artefacts() {
        assert_eq!(
            clean_cell("  \u{00A0}Jean\u{00A0}\u{00A0}Pierre \u{200B}"),
            "Jean Pierre"
        );
        assert_eq!(clean_cell("\u{FEFF}Nom"), "Nom");
        assert_eq!(clean_cell("\t\r\n"), "");
    }

    #[test]
    fn fold_handles_letters_nfd_misses() {
        assert_eq!(fold("Øystein Łukasz Straße ÆŒ"), "oystein lukasz strasse aeoe");
        assert_eq!(letters_only("Marie-Hélène d'Ormesson"), "mariehelenedormesson");
        assert_eq!(login_part("Jean-Pierre"), "jean-pierre");
        assert_eq!(login_part("N'Diaye --"), "ndiaye");
    }
}
