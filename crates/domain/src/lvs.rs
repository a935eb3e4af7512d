//! The export to La Vie Scolaire (LVS, guide §6; SPEC §10): the teachers and
//! staff of an establishment with the profile LVS gives them. Teachers are
//! *Professeur*; a staff member takes the profile of their function code
//! (`fonctions.csv`, column `profil_lvs`: DIR → Direction, EDU → CPE,
//! DOC → Documentaliste, AED → Assistant Education…). TOS (agents of the local
//! authority) are never exported, nor a staff member without a known function
//! code; pupils and parents are not LVS users here. The system admin may
//! change a code's profile ([`Overrides`]); teachers follow the line of ENS,
//! the teaching function.

use crate::functions;
use crate::profile::Profile;
use crate::result_file::write_csv;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The system admin's changes to the guide's table: per function code, the
/// LVS profile its people get, or `None` when they are not exported.
pub type Overrides = BTreeMap<String, Option<String>>;

/// The longest profile label LVS accepts (its "Libellé [40]", guide §6).
pub const MAX_PROFILE_LABEL: usize = 40;

/// The function of a teacher in the export: the teaching node of the guide.
pub const TEACHING_FUNCTION: &str = "ENS";

/// One person as LVS receives them (`lvs export --format json`, the API).
/// The field comments are the API's descriptions, in French.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(description = "Une personne telle que La Vie Scolaire la reçoit.")
)]
pub struct LvsRow {
    pub sync_key: String,
    pub login: String,
    pub last_name: String,
    pub first_name: String,
    /// Le code de fonction (ENS pour un enseignant).
    pub function: String,
    /// Le profil dans LVS : Professeur, Direction, CPE, Documentaliste…
    pub lvs_profile: String,
}

/// A person of the directory, as the export reads them.
pub struct LvsCandidate<'a> {
    pub sync_key: &'a str,
    pub login: &'a str,
    pub last_name: &'a str,
    pub first_name: &'a str,
    pub profile: Profile,
    pub function_code: Option<&'a str>,
}

/// The function and LVS profile of a person, or `None` when they are not
/// exported (TOS, a staff member without a known function, pupils, parents…).
pub fn function_and_profile(
    profile: Profile,
    function_code: Option<&str>,
    overrides: &Overrides,
) -> Option<(String, String)> {
    let function = match profile {
        Profile::Enseignant => functions::lookup(TEACHING_FUNCTION)?,
        Profile::Administratif => functions::lookup(function_code?)?,
        _ => return None,
    };
    Some((function.code.to_string(), profile_of(function, overrides)?))
}

/// A code's LVS profile: the system admin's if they set one, else the guide's.
fn profile_of(function: &functions::FunctionCode, overrides: &Overrides) -> Option<String> {
    match overrides.get(function.code) {
        Some(chosen) => chosen.clone(),
        None => function.lvs_profile.map(str::to_string),
    }
}

/// One line of the table of LVS profiles, as the CLI and the web show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingLine {
    pub code: &'static str,
    pub label: &'static str,
    /// The guide's profile (`None`: not exported).
    pub guide: Option<&'static str>,
    /// The profile in force (`None`: not exported).
    pub lvs_profile: Option<String>,
    /// The system admin changed it.
    pub changed: bool,
}

/// The 60 function codes, in code order, with their profile in force.
pub fn mapping(overrides: &Overrides) -> Vec<MappingLine> {
    let mut lines: Vec<MappingLine> = functions::all()
        .map(|f| MappingLine {
            code: f.code,
            label: f.long_label,
            guide: f.lvs_profile,
            lvs_profile: profile_of(f, overrides),
            changed: overrides.contains_key(f.code),
        })
        .collect();
    lines.sort_by_key(|l| l.code);
    lines
}

/// A profile label as LVS accepts it: trimmed, 1 to 40 characters, no control
/// character. The error is the message to show.
pub fn profile_label(raw: &str) -> Result<String, String> {
    let label = raw.trim();
    if label.is_empty() {
        return Err("profil LVS vide : indiquez un libellé (Professeur, Direction, CPE…)".into());
    }
    if label.chars().count() > MAX_PROFILE_LABEL {
        return Err(format!(
            "profil LVS « {label} » trop long : {MAX_PROFILE_LABEL} caractères au plus, comme dans LVS"
        ));
    }
    if label.chars().any(char::is_control) {
        return Err("profil LVS : caractère de contrôle refusé".into());
    }
    Ok(label.to_string())
}

/// The rows of the export, in the order given, and how many people were left
/// out (TOS or no LVS profile).
pub fn rows<'a>(people: impl IntoIterator<Item = LvsCandidate<'a>>, overrides: &Overrides) -> (Vec<LvsRow>, usize) {
    let mut left_out = 0;
    let mut rows = Vec::new();
    for person in people {
        match function_and_profile(person.profile, person.function_code, overrides) {
            Some((function, lvs_profile)) => rows.push(LvsRow {
                sync_key: person.sync_key.to_string(),
                login: person.login.to_string(),
                last_name: person.last_name.to_string(),
                first_name: person.first_name.to_string(),
                function,
                lvs_profile,
            }),
            None => left_out += 1,
        }
    }
    (rows, left_out)
}

/// The export as a CSV Excel opens (UTF-8 with BOM, `;`, formulas
/// neutralised), with French headers: the school's admin reads it too.
pub fn csv(rows: &[LvsRow]) -> Vec<u8> {
    let header: Vec<String> = [
        "Clé de synchronisation",
        "Login",
        "Nom",
        "Prénom",
        "Fonction",
        "Profil LVS",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect();
    write_csv(
        &header,
        rows.iter().map(|r| {
            vec![
                Cow::Borrowed(r.sync_key.as_str()),
                Cow::Borrowed(r.login.as_str()),
                Cow::Borrowed(r.last_name.as_str()),
                Cow::Borrowed(r.first_name.as_str()),
                Cow::Borrowed(r.function.as_str()),
                Cow::Borrowed(r.lvs_profile.as_str()),
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(code: &str) -> Option<(String, String)> {
        function_and_profile(Profile::Administratif, Some(code), &Overrides::new())
    }

    fn pair(code: &str, profile: &str) -> Option<(String, String)> {
        Some((code.to_string(), profile.to_string()))
    }

    /// The guide's table (§4.1.B.B, column "DANS LVS").
    #[test]
    fn function_codes_take_the_guides_lvs_profiles() {
        assert_eq!(staff("DIR"), pair("DIR", "Direction"));
        assert_eq!(staff("EDU"), pair("EDU", "CPE"));
        assert_eq!(staff("DOC"), pair("DOC", "Documentaliste"));
        assert_eq!(staff("AED"), pair("AED", "Assistant Education"));
        assert_eq!(staff("ADF"), pair("ADF", "Administrateurs"));
        assert_eq!(staff("dir "), pair("DIR", "Direction"), "read as the import reads it");
        assert_eq!(
            function_and_profile(Profile::Enseignant, None, &Overrides::new()),
            pair("ENS", "Professeur")
        );
        assert_eq!(mapping(&Overrides::new()).len(), 60);
    }

    #[test]
    fn tos_and_people_without_an_lvs_profile_are_left_out() {
        assert_eq!(staff("TOS"), None);
        assert_eq!(staff("XYZ"), None);
        let none = Overrides::new();
        assert_eq!(function_and_profile(Profile::Administratif, None, &none), None);
        assert_eq!(function_and_profile(Profile::Eleve, None, &none), None);
        assert_eq!(function_and_profile(Profile::Parent, None, &none), None);
        let person = |key, profile, code| LvsCandidate {
            sync_key: key,
            login: "x.y",
            last_name: "Y",
            first_name: "X",
            profile,
            function_code: code,
        };
        let (rows, left_out) = rows(
            [
                person("a", Profile::Enseignant, None),
                person("b", Profile::Administratif, Some("TOS")),
                person("c", Profile::Administratif, Some("EDU")),
            ],
            &none,
        );
        assert_eq!(left_out, 1);
        let kept: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.sync_key.as_str(), r.lvs_profile.as_str()))
            .collect();
        assert_eq!(kept, [("a", "Professeur"), ("c", "CPE")]);
    }

    /// The system admin's table replaces the guide's line by line.
    #[test]
    fn the_system_admins_profiles_replace_the_guides() {
        let overrides: Overrides = [
            ("TOS".to_string(), Some("Agent".to_string())),
            ("DOC".to_string(), None),
            ("ENS".to_string(), Some("Enseignant".to_string())),
        ]
        .into_iter()
        .collect();
        let of = |profile, code| function_and_profile(profile, code, &overrides);
        assert_eq!(of(Profile::Administratif, Some("TOS")), pair("TOS", "Agent"));
        assert_eq!(of(Profile::Administratif, Some("DOC")), None);
        assert_eq!(
            of(Profile::Enseignant, None),
            pair("ENS", "Enseignant"),
            "teachers follow ENS"
        );
        assert_eq!(
            of(Profile::Administratif, Some("EDU")),
            pair("EDU", "CPE"),
            "the rest stays the guide's"
        );
        let lines = mapping(&overrides);
        let tos = lines.iter().find(|l| l.code == "TOS").unwrap();
        assert_eq!(
            (tos.guide, tos.lvs_profile.as_deref(), tos.changed),
            (None, Some("Agent"), true)
        );
        let edu = lines.iter().find(|l| l.code == "EDU").unwrap();
        assert_eq!(
            (edu.guide, edu.lvs_profile.as_deref(), edu.changed),
            (Some("CPE"), Some("CPE"), false)
        );
    }

    #[test]
    fn profile_labels_are_lvs_labels() {
        assert_eq!(profile_label("  Infirmière "), Ok("Infirmière".to_string()));
        assert!(profile_label(" ").is_err());
        assert!(profile_label(&"x".repeat(41)).is_err());
        assert!(profile_label(&"é".repeat(40)).is_ok(), "40 characters, not bytes");
        assert!(profile_label("Dir\nection").is_err());
    }

    #[test]
    fn the_csv_opens_in_excel_with_french_headers_and_no_formula() {
        let row = LvsRow {
            sync_key: "PERSON.x".into(),
            login: "x.y".into(),
            last_name: "=HYPERLINK(\"http://evil\")".into(),
            first_name: "Zoé".into(),
            function: "EDU".into(),
            lvs_profile: "CPE".into(),
        };
        let text = String::from_utf8(csv(&[row])).unwrap();
        assert!(text.starts_with("\u{feff}Clé de synchronisation;Login;Nom;Prénom;Fonction;Profil LVS\r\n"));
        assert!(text.contains(";\"'=HYPERLINK("), "{text}");
        assert!(text.ends_with(";Zoé;EDU;CPE\r\n"), "{text}");
    }
}
