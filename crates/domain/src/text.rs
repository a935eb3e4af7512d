//! Text helpers shared by every stage: cell cleaning and ASCII folding.

/// Characters nobody sees that change what others see or compare: zero-width
/// spaces and joiners, BOMs in the middle of a file, soft hyphens, the
/// bidirectional controls that make "nimda" display as "admin" (U+202A–U+202E,
/// U+2066–U+2069, marks), tags, and control characters other than spaces.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{0000}'..='\u{0008}' | '\u{000E}'..='\u{001F}' | '\u{007F}'..='\u{009F}'
        | '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E0000}'..='\u{E007F}')
}

/// Trims a cell as a person reads it: spaces of every kind at both ends removed,
/// inner runs of spaces (incl. NBSP) collapsed to one ordinary space, invisible
/// characters ([`is_invisible`]) dropped.
pub fn clean_cell(raw: &str) -> String {
    // Most cells are one visible ASCII word: nothing to clean.
    if raw.bytes().all(|b| b.is_ascii_graphic()) {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for c in raw.chars() {
        if is_invisible(c) {
            continue;
        }
        if c.is_whitespace() {
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

/// The ASCII transliteration of the letters, digits, spaces and dashes only:
/// an emoji or a symbol becomes nothing rather than a word (deunicode writes
/// 😀 "grinning" and © "(c)", which no one would recognise in a login).
fn ascii_of_letters(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_ascii() {
        return std::borrow::Cow::Borrowed(s);
    }
    let kept: String = s
        .chars()
        .filter(|c| c.is_ascii() || c.is_alphanumeric() || c.is_whitespace() || matches!(c, '\u{2010}'..='\u{2015}'))
        .collect();
    std::borrow::Cow::Owned(ascii(&kept).into_owned())
}

/// Appends the letters a–z of the folded text to `out`: the form sync keys are built from.
pub fn push_letters(out: &mut String, s: &str) {
    out.extend(
        ascii_of_letters(s)
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
    let folded = ascii_of_letters(s);
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
    fn clean_cell_drops_bidirectional_and_format_controls() {
        // "Jean" then RIGHT-TO-LEFT OVERRIDE: would display reversed.
        assert_eq!(clean_cell("Je\u{202E}an\u{202C}"), "Jean");
        assert_eq!(
            clean_cell("\u{2066}Martin\u{2069} \u{200F}Dupont\u{00AD}"),
            "Martin Dupont"
        );
        assert_eq!(clean_cell("Lé\u{0007}a\u{E0041}"), "Léa");
    }

    #[test]
    fn emoji_and_symbols_never_become_words_in_logins_or_keys() {
        assert_eq!(login_part("Dupont-Grin😀"), "dupont-grin");
        assert_eq!(login_part("Jean😀 ©"), "jean");
        assert_eq!(letters_only("Zoé😀"), "zoe");
        // Letters of other scripts are still transliterated.
        assert_eq!(login_part("Łukasz–Ørsted"), "lukasz-orsted");
    }

    #[test]
    fn fold_handles_letters_nfd_misses() {
        assert_eq!(fold("Øystein Łukasz Straße ÆŒ"), "oystein lukasz strasse aeoe");
        assert_eq!(letters_only("Marie-Hélène d'Ormesson"), "mariehelenedormesson");
        assert_eq!(login_part("Jean-Pierre"), "jean-pierre");
        assert_eq!(login_part("N'Diaye --"), "ndiaye");
    }
}
