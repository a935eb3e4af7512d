//! Newtypes that normalise on construction ("parse, don't validate"). Each
//! parser returns a [`ValueError`] whose message says, in French, what is wrong
//! and how to fix it; some also return a [`Notice`] when they repaired a known
//! Excel artefact (a postal code or phone number whose leading zero was eaten).

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a cell cannot be imported: a stable code for machines, a French message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValueError {
    pub code: &'static str,
    pub message: String,
}

impl ValueError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ValueError {
            code,
            message: message.into(),
        }
    }
}

/// What is wrong with one field of a form: the field by its name in the
/// form's input (`last_name`, `birth_date`…), and why. Forms report all of
/// them at once, so that a page can mark every field to correct.
pub type FieldProblem = (&'static str, ValueError);

/// Keeps a field's value, or records its problem.
pub fn keep<T>(problems: &mut Vec<FieldProblem>, field: &'static str, read: Result<T, ValueError>) -> Option<T> {
    read.map_err(|e| problems.push((field, e))).ok()
}

/// The messages of several problems, for a door that shows one sentence (the CLI).
pub fn problems_in_words(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(|(_, e)| e.message.as_str())
        .collect::<Vec<_>>()
        .join(" ; ")
}

/// A value that was accepted after a repair the admin should know about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub code: &'static str,
    pub message: String,
}

/// Leading apostrophe Excel users type to keep a leading zero ('06000, §4.1.A).
fn strip_excel_apostrophe(s: &str) -> &str {
    s.strip_prefix('\'').unwrap_or(s).trim()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Civility {
    #[serde(rename = "M.")]
    Monsieur,
    #[serde(rename = "Mme")]
    Madame,
    #[serde(rename = "Mlle")]
    Mademoiselle,
}

impl Civility {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let folded = crate::text::fold(raw.trim());
        let word = folded.trim_end_matches('.');
        match word {
            "monsieur" | "m" | "mr" | "mister" => Ok(Civility::Monsieur),
            "madame" | "mme" | "mrs" | "ms" => Ok(Civility::Madame),
            "mademoiselle" | "mlle" | "melle" | "mle" => Ok(Civility::Mademoiselle),
            _ => Err(ValueError::new(
                "bad_civility",
                format!(
                    "civilité « {} » non reconnue : écrivez Monsieur (M, Mr), Madame (Mme) ou Mademoiselle (Mlle, Melle)",
                    raw.trim()
                ),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Civility::Monsieur => "M.",
            Civility::Madame => "Mme",
            Civility::Mademoiselle => "Mlle",
        }
    }
}

impl fmt::Display for Civility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A real calendar date, not in the future, written jj/mm/aaaa or jj/mm/aa.
pub fn parse_birth_date(raw: &str, today: NaiveDate) -> Result<NaiveDate, ValueError> {
    let s = strip_excel_apostrophe(raw);
    let bad_format = || {
        ValueError::new(
            "bad_date",
            format!("date « {s} » illisible : écrivez-la jj/mm/aaaa (ex. 03/08/2012) ou jj/mm/aa"),
        )
    };
    let parts: Vec<&str> = s.split(['/', '-', '.']).map(str::trim).collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad_format());
    }
    let num = |p: &str| p.parse::<u32>().map_err(|_| bad_format());
    // aaaa-mm-jj, as LibreOffice and ISO exports write it.
    let (day, month, year_text) = if parts[0].len() == 4 {
        (num(parts[2])?, num(parts[1])?, parts[0])
    } else {
        (num(parts[0])?, num(parts[1])?, parts[2])
    };
    let not_a_date = || {
        ValueError::new(
            "bad_date",
            format!("la date « {s} » n'existe pas dans le calendrier : vérifiez le jour et le mois (jj/mm/aaaa)"),
        )
    };
    let date = match year_text.len() {
        4 => {
            let year = i32::try_from(num(year_text)?).map_err(|_| bad_format())?;
            NaiveDate::from_ymd_opt(year, month, day).ok_or_else(not_a_date)?
        }
        2 => {
            // Two-digit years: the most recent date that is not in the future.
            let yy = i32::try_from(num(year_text)?).map_err(|_| bad_format())?;
            let century = today.year() / 100 * 100;
            let recent = NaiveDate::from_ymd_opt(century + yy, month, day);
            match recent {
                Some(d) if d <= today => d,
                _ => NaiveDate::from_ymd_opt(century - 100 + yy, month, day).ok_or_else(not_a_date)?,
            }
        }
        _ => return Err(bad_format()),
    };
    if date > today {
        return Err(ValueError::new(
            "future_date",
            format!(
                "la date de naissance {} est dans le futur : corrigez l'année",
                date.format("%d/%m/%Y")
            ),
        ));
    }
    if date.year() < 1900 {
        return Err(ValueError::new(
            "bad_date",
            format!(
                "la date de naissance {} est avant 1900 : corrigez l'année",
                date.format("%d/%m/%Y")
            ),
        ));
    }
    Ok(date)
}

/// A French postal code: 5 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PostalCode(String);

impl PostalCode {
    pub fn parse(raw: &str) -> Result<(Self, Option<Notice>), ValueError> {
        let s: String = strip_excel_apostrophe(raw)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit()) {
            return Ok((PostalCode(s), None));
        }
        if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
            let padded = format!("0{s}");
            let notice = Notice {
                code: "postal_code_padded",
                message: format!(
                    "code postal « {s} » complété en {padded} (Excel supprime le 0 initial : écrivez '{padded} dans le fichier)"
                ),
            };
            return Ok((PostalCode(padded), Some(notice)));
        }
        Err(ValueError::new(
            "bad_postal_code",
            format!(
                "code postal « {} » invalide : il faut 5 chiffres (ex. 06000, écrit '06000 dans Excel)",
                raw.trim()
            ),
        ))
    }

    pub fn from_stored(s: String) -> Self {
        PostalCode(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number stored as E.164 (+33612345678), shown in the French national
/// format (06 12 34 56 78) for French numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<(Self, Option<Notice>), ValueError> {
        let s = strip_excel_apostrophe(raw);
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        let mut notice = None;
        let mut candidate = s.to_string();
        // Excel turns 0612345678 into the number 612345678.
        if digits.len() == 9
            && !s.starts_with('+')
            && !digits.starts_with('0')
            && digits == s.replace([' ', '.', '-'], "")
        {
            candidate = format!("0{digits}");
            notice = Some(Notice {
                code: "phone_padded",
                message: format!(
                    "numéro « {s} » complété en {candidate} (Excel supprime le 0 initial : écrivez '{candidate} dans le fichier)"
                ),
            });
        }
        let bad = || {
            ValueError::new(
                "bad_phone",
                format!("numéro de téléphone « {} » invalide : écrivez 10 chiffres (ex. 01 23 45 67 89) ou le format international (+33 1 23 45 67 89)", raw.trim()),
            )
        };
        if candidate.chars().any(|c| c.is_alphabetic()) || digits.len() < 6 {
            return Err(bad());
        }
        let national = french::plain_national(&candidate);
        let e164 = match national.as_deref().zip(french::NUMBERS.as_ref()) {
            Some((national, numbers)) => numbers.e164(national),
            None => french::parse_any(&candidate),
        }
        .or_else(|| french::parse_overseas(&candidate));
        // Well written (a plain national spelling) but not a number in use:
        // saying "write 10 digits" would send the person looking for the
        // wrong mistake.
        let unallocated = || {
            ValueError::new(
                "bad_phone",
                format!(
                    "numéro de téléphone « {} » invalide : ce numéro n'est attribué à personne ; vérifiez-le (un numéro d'outre-mer s'écrit 06 92 12 34 56, ou avec l'indicatif de son territoire : +262 6 92 12 34 56)",
                    raw.trim()
                ),
            )
        };
        let e164 = e164.ok_or_else(|| if national.is_some() { unallocated() } else { bad() })?;
        Ok((Phone(e164), notice))
    }

    pub fn from_stored(s: String) -> Self {
        Phone(s)
    }

    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// As a spreadsheet cell: "06 12 34 56 78" for French numbers, "00 44…"
    /// for the others. A leading `+` would make Excel read a formula, and the
    /// apostrophe that neutralises it shows in the cell.
    pub fn for_spreadsheet(&self) -> String {
        let shown = self.display();
        match shown.strip_prefix('+') {
            Some(international) => format!("00{international}"),
            None => shown,
        }
    }

    /// "06 12 34 56 78" for French numbers, the E.164 form otherwise.
    pub fn display(&self) -> String {
        if let Some(rest) = self.0.strip_prefix("+33") {
            if rest.len() == 9 && rest.bytes().all(|b| b.is_ascii_digit()) {
                let national = format!("0{rest}");
                return national
                    .as_bytes()
                    .chunks(2)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ");
            }
        }
        self.0.clone()
    }
}

/// French numbers without `phonenumber`'s parser and its regex cache (an LRU
/// behind a mutex, most of a file's check time): the same metadata patterns,
/// compiled once. Other spellings still go through `phonenumber`.
mod french {
    use phonenumber::metadata::{Descriptor, DATABASE};
    use regex::{Regex, RegexBuilder};
    use std::sync::LazyLock;

    /// One pattern of the metadata, matched as `Descriptor::is_match` does: the
    /// length among the possible ones, and a match starting at the first digit.
    struct Pattern {
        regex: Regex,
        lengths: Vec<u16>,
    }

    impl Pattern {
        fn of(d: &Descriptor) -> Option<Pattern> {
            Some(Pattern {
                // Built as the metadata's own regexes are: whitespace ignored.
                regex: RegexBuilder::new(&format!("^(?:{})", d.national_number().as_str()))
                    .ignore_whitespace(true)
                    .build()
                    .ok()?,
                lengths: d.possible_length().to_vec(),
            })
        }

        fn is_match(&self, national: &str) -> bool {
            (self.lengths.is_empty() || self.lengths.contains(&(national.len() as u16)))
                && self.regex.is_match(national)
        }
    }

    pub(super) struct FrenchNumbers {
        general: Pattern,
        /// Every type `phonenumber::validator::number_type` tries.
        types: Vec<Pattern>,
    }

    impl FrenchNumbers {
        /// `+33…` when the national number is valid, as `phonenumber::is_valid` says.
        pub(super) fn e164(&self, national: &str) -> Option<String> {
            (self.general.is_match(national) && self.types.iter().any(|t| t.is_match(national)))
                .then(|| format!("+33{national}"))
        }
    }

    /// `None` (everything through `phonenumber`) if the metadata is not the
    /// plain national prefix 0 that [`plain_national`] assumes.
    pub(super) static NUMBERS: LazyLock<Option<FrenchNumbers>> = LazyLock::new(|| {
        let meta = DATABASE.by_id("FR")?;
        if meta.country_code() != 33
            || meta.national_prefix() != Some("0")
            || meta.national_prefix_for_parsing().is_some()
            || DATABASE.region(&33u16)?.len() != 1
        {
            return None;
        }
        let d = meta.descriptors();
        let types = [
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ];
        Some(FrenchNumbers {
            general: Pattern::of(d.general())?,
            types: types.into_iter().flatten().map(Pattern::of).collect::<Option<_>>()?,
        })
    });

    /// The 9-digit national number of `0X XX XX XX XX` or `+33 X XX XX XX XX`
    /// (digits between spaces, dots or hyphens), X not 0; `None` for any other spelling.
    pub(super) fn plain_national(s: &str) -> Option<String> {
        let (rest, prefix) = match s.strip_prefix("+33") {
            Some(rest) => (rest, ""),
            None => (s, "0"),
        };
        let separator = |b: u8| matches!(b, b' ' | b'.' | b'-');
        let bytes = rest.as_bytes();
        if !bytes.iter().all(|&b| b.is_ascii_digit() || separator(b))
            || !bytes.last().is_some_and(u8::is_ascii_digit)
            || (prefix == "0" && !bytes.first().is_some_and(u8::is_ascii_digit))
        {
            return None;
        }
        let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
        let national = digits.strip_prefix(prefix)?;
        (national.len() == 9 && !national.starts_with('0')).then(|| national.to_string())
    }

    /// The overseas departments and communities share France's national
    /// numbering (a Réunion mobile is dialled 06 92 … from Paris) under
    /// country codes of their own (+262 692 …).
    const OVERSEAS: [phonenumber::country::Id; 8] = {
        use phonenumber::country::Id::*;
        [RE, YT, GP, MQ, GF, PM, BL, MF]
    };

    /// A number written the national way that is not metropolitan: its
    /// territory's E.164 form.
    pub(super) fn parse_overseas(s: &str) -> Option<String> {
        let s = s.trim();
        if s.starts_with('+') || s.starts_with("00") {
            return None;
        }
        OVERSEAS.iter().find_map(|id| {
            let number = phonenumber::parse(Some(*id), s).ok()?;
            phonenumber::is_valid(&number).then(|| number.format().mode(phonenumber::Mode::E164).to_string())
        })
    }

    /// Any spelling, through `phonenumber`.
    pub(super) fn parse_any(s: &str) -> Option<String> {
        let number = phonenumber::parse(Some(phonenumber::country::Id::FR), s).ok()?;
        phonenumber::is_valid(&number).then(|| number.format().mode(phonenumber::Mode::E164).to_string())
    }
}

/// An e-mail address, lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim().trim_start_matches("mailto:").to_lowercase();
        let bad = || {
            ValueError::new(
                "bad_email",
                format!(
                    "adresse e-mail « {} » invalide : écrivez-la comme prenom.nom@exemple.fr",
                    raw.trim()
                ),
            )
        };
        let parsed: email_address::EmailAddress = s.parse().map_err(|_| bad())?;
        // The crate accepts "a@b"; a deliverable address has a dot in its domain.
        if !parsed.domain().contains('.') || s.contains(' ') {
            return Err(bad());
        }
        Ok(Email(s))
    }

    pub fn from_stored(s: String) -> Self {
        Email(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A login, unique in the whole ENT regardless of case: stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Login(String);

pub const LOGIN_MAX_LEN: usize = 64;

impl Login {
    /// An imposed login, as written in a file or a form.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim().to_lowercase();
        if s.len() > LOGIN_MAX_LEN {
            return Err(ValueError::new(
                "bad_login",
                format!(
                    "login « {} » trop long : {LOGIN_MAX_LEN} caractères au plus",
                    raw.trim()
                ),
            ));
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_' | '@');
        let starts_well = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !starts_well || !s.chars().all(allowed) {
            return Err(ValueError::new(
                "bad_login",
                format!(
                    "login « {} » invalide : utilisez lettres sans accent, chiffres, point, tiret, _ ou @, en commençant par une lettre ou un chiffre",
                    raw.trim()
                ),
            ));
        }
        Ok(Login(s))
    }

    /// A login built by the generator, already in the allowed alphabet.
    pub(crate) fn generated(s: String) -> Self {
        Login(s)
    }

    pub fn from_stored(s: String) -> Self {
        Login(s.to_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's name as written (trimmed, inner spaces collapsed); must hold a letter.
pub fn parse_name(raw: &str, what: &str) -> Result<String, ValueError> {
    let s = crate::text::clean_cell(raw);
    if !s.chars().any(char::is_alphabetic) {
        return Err(ValueError::new(
            "bad_name",
            format!("{what} « {s} » ne contient aucune lettre : vérifiez que les colonnes ne sont pas décalées"),
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap_or_default()
    }

    #[test]
    fn civility_spellings_of_the_guide() {
        for (s, c) in [
            ("Monsieur", Civility::Monsieur),
            ("M", Civility::Monsieur),
            ("M.", Civility::Monsieur),
            ("Mr", Civility::Monsieur),
            ("madame", Civility::Madame),
            ("Mme", Civility::Madame),
            ("Mademoiselle", Civility::Mademoiselle),
            ("Mlle", Civility::Mademoiselle),
            ("Melle", Civility::Mademoiselle),
        ] {
            assert_eq!(Civility::parse(s), Ok(c), "{s}");
        }
        assert_eq!(Civility::parse("Dr").map_err(|e| e.code), Err("bad_civility"));
    }

    #[test]
    fn birth_dates() {
        let d = |s| parse_birth_date(s, today());
        assert_eq!(
            d("03/08/2012"),
            Ok(NaiveDate::from_ymd_opt(2012, 8, 3).unwrap_or_default())
        );
        assert_eq!(
            d("03/08/12"),
            Ok(NaiveDate::from_ymd_opt(2012, 8, 3).unwrap_or_default())
        );
        assert_eq!(
            d("03/08/75"),
            Ok(NaiveDate::from_ymd_opt(1975, 8, 3).unwrap_or_default())
        );
        // 26 is this year but 03/12/2026 is still to come: 1926.
        assert_eq!(
            d("03/12/26"),
            Ok(NaiveDate::from_ymd_opt(1926, 12, 3).unwrap_or_default())
        );
        assert_eq!(
            d("2012-08-03"),
            Ok(NaiveDate::from_ymd_opt(2012, 8, 3).unwrap_or_default())
        );
        assert_eq!(d("31/02/2012").map_err(|e| e.code), Err("bad_date"));
        assert_eq!(d("03/12/2026").map_err(|e| e.code), Err("future_date"));
        assert_eq!(d("hier").map_err(|e| e.code), Err("bad_date"));
        assert_eq!(d("3/8/2012").map(|x| x.day()), Ok(3));
    }

    #[test]
    fn postal_codes() {
        assert_eq!(PostalCode::parse("'06000").map(|p| p.0 .0), Ok("06000".into()));
        let (pc, notice) = PostalCode::parse("6000").unwrap_or((PostalCode(String::new()), None));
        assert_eq!(pc.as_str(), "06000");
        assert!(notice.is_some());
        assert!(PostalCode::parse("750").is_err());
        assert!(PostalCode::parse("75A01").is_err());
    }

    #[test]
    fn phones_any_usual_spelling() {
        for s in [
            "06 12 34 56 78",
            "06.12.34.56.78",
            "0612345678",
            "+33 6 12 34 56 78",
            "0033612345678",
            "'0612345678",
        ] {
            assert_eq!(Phone::parse(s).map(|p| p.0 .0), Ok("+33612345678".into()), "{s}");
        }
        assert_eq!(Phone::parse("612345678").map(|p| p.1.is_some()), Ok(true));
        // Overseas numbers written the national way, as their owners write them.
        for (s, e164) in [
            ("06 92 12 34 56", "+262692123456"),
            ("02 62 12 34 56", "+262262123456"),
            ("06 90 12 34 56", "+590690123456"),
            ("0696 12 34 56", "+596696123456"),
            ("+262 6 92 12 34 56", "+262692123456"),
        ] {
            assert_eq!(Phone::parse(s).map(|p| p.0 .0), Ok(e164.into()), "{s}");
        }
        // Well written, yet no one's number: the message says so.
        let Err(e) = Phone::parse("+33 6 92 12 34 56") else {
            panic!("+33 6 92 is Réunion's range under +262");
        };
        assert!(e.message.contains("n'est attribué à personne"), "{}", e.message);
        let Err(e) = Phone::parse("06 12 34") else {
            panic!("too short");
        };
        assert!(e.message.contains("écrivez 10 chiffres"), "{}", e.message);
        assert!(Phone::parse("12").is_err());
        assert!(Phone::parse("abc").is_err());
        assert_eq!(Phone::from_stored("+33612345678".into()).display(), "06 12 34 56 78");
    }

    /// The compiled French patterns answer as `phonenumber` does, for every
    /// national prefix and the usual spellings.
    #[test]
    fn french_fast_path_agrees_with_phonenumber() {
        let Some(numbers) = french::NUMBERS.as_ref() else {
            panic!("French metadata not as expected: the fast path would never run");
        };
        let mut checked = 0;
        for head in 10..100u32 {
            for tail in [0u32, 1_234_567, 3_456_789, 9_876_543, 9_999_999, 5_000_000] {
                let digits = format!("0{head:02}{tail:07}");
                let pairs: Vec<&str> = (0..5).map(|k| &digits[2 * k..2 * k + 2]).collect();
                let international = format!("+33 {} {}", &digits[1..2], pairs[1..].join(" "));
                for s in [
                    digits.clone(),
                    pairs.join(" "),
                    pairs.join("."),
                    pairs.join("-"),
                    international,
                    format!("+33{}", &digits[1..]),
                ] {
                    let national = french::plain_national(&s).unwrap_or_else(|| panic!("{s}: not plain"));
                    assert_eq!(numbers.e164(&national), french::parse_any(&s), "{s}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 3000);
        for s in [
            "+33 06 12 34 56 78",
            "0033612345678",
            "+33 (0)6 12 34 56 78",
            "-0612345678",
            "06 12 34 56 7",
            "0612345678 ",
        ] {
            assert_eq!(french::plain_national(s), None, "{s}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Jean.Dupont@Exemple.FR ").map(|e| e.0),
            Ok("jean.dupont@exemple.fr".into())
        );
        assert!(Email::parse("jean.dupont").is_err());
        assert!(Email::parse("jean@localhost").is_err());
    }

    #[test]
    fn logins() {
        assert_eq!(Login::parse("JDupont").map(|l| l.0), Ok("jdupont".into()));
        assert!(Login::parse("jé").is_err());
        assert!(Login::parse(".abc").is_err());
        assert!(Login::parse(&"a".repeat(65)).is_err());
    }
}
