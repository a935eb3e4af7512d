//! The export to La Vie Scolaire (LVS, guide §6; SPEC §10): the teachers and
//! staff of an establishment with the profile LVS gives them. Teachers are
//! *Professeur*; a staff member takes the profile of their function code
//! (`fonctions.csv`, column `profil_lvs`: DIR → Direction, EDU → CPE,
//! DOC → Documentaliste, AED → Assistant Education…). TOS (agents of the local
//! authority) are never exported, nor a staff member without a known function
//! code; pupils and parents are not LVS users here.

use crate::functions;
use crate::profile::Profile;
use crate::result_file::write_csv;
use serde::Serialize;
use std::borrow::Cow;

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
pub fn function_and_profile(profile: Profile, function_code: Option<&str>) -> Option<(String, &'static str)> {
    match profile {
        Profile::Enseignant => Some((TEACHING_FUNCTION.to_string(), "Professeur")),
        Profile::Administratif => {
            let function = functions::lookup(function_code?)?;
            Some((function.code.to_string(), function.lvs_profile?))
        }
        _ => None,
    }
}

/// The rows of the export, in the order given, and how many people were left
/// out (TOS or no LVS profile).
pub fn rows<'a>(people: impl IntoIterator<Item = LvsCandidate<'a>>) -> (Vec<LvsRow>, usize) {
    let mut left_out = 0;
    let mut rows = Vec::new();
    for person in people {
        match function_and_profile(person.profile, person.function_code) {
            Some((function, lvs_profile)) => rows.push(LvsRow {
                sync_key: person.sync_key.to_string(),
                login: person.login.to_string(),
                last_name: person.last_name.to_string(),
                first_name: person.first_name.to_string(),
                function,
                lvs_profile: lvs_profile.to_string(),
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

    fn staff(code: &str) -> Option<(String, &'static str)> {
        function_and_profile(Profile::Administratif, Some(code))
    }

    /// The guide's table (§4.1.B.B, column "DANS LVS").
    #[test]
    fn function_codes_take_the_guides_lvs_profiles() {
        assert_eq!(staff("DIR"), Some(("DIR".into(), "Direction")));
        assert_eq!(staff("EDU"), Some(("EDU".into(), "CPE")));
        assert_eq!(staff("DOC"), Some(("DOC".into(), "Documentaliste")));
        assert_eq!(staff("AED"), Some(("AED".into(), "Assistant Education")));
        assert_eq!(staff("ADF"), Some(("ADF".into(), "Administrateurs")));
        assert_eq!(
            staff("dir "),
            Some(("DIR".into(), "Direction")),
            "read as the import reads it"
        );
        assert_eq!(
            function_and_profile(Profile::Enseignant, None),
            Some(("ENS".into(), "Professeur"))
        );
    }

    #[test]
    fn tos_and_people_without_an_lvs_profile_are_left_out() {
        assert_eq!(staff("TOS"), None);
        assert_eq!(staff("XYZ"), None);
        assert_eq!(function_and_profile(Profile::Administratif, None), None);
        assert_eq!(function_and_profile(Profile::Eleve, None), None);
        assert_eq!(function_and_profile(Profile::Parent, None), None);
        let person = |key, profile, code| LvsCandidate {
            sync_key: key,
            login: "x.y",
            last_name: "Y",
            first_name: "X",
            profile,
            function_code: code,
        };
        let (rows, left_out) = rows([
            person("a", Profile::Enseignant, None),
            person("b", Profile::Administratif, Some("TOS")),
            person("c", Profile::Administratif, Some("EDU")),
        ]);
        assert_eq!(left_out, 1);
        let kept: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.sync_key.as_str(), r.lvs_profile.as_str()))
            .collect();
        assert_eq!(kept, [("a", "Professeur"), ("c", "CPE")]);
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
