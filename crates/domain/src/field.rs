//! The fields of an import row, what each profile requires (SPEC §4) and the
//! header names that mean each of them.

use crate::profile::Profile;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Field {
    SyncKey,
    Civility,
    LastName,
    FirstName,
    Subject,
    Function,
    BirthDate,
    Class,
    Login,
    Password,
    Uai,
    Address,
    PostalCode,
    City,
    Landline,
    Mobile,
    Email,
}

/// Whether a profile's file must, may or cannot carry a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
    /// The column is read but never imported (the sync key, §5.2.D).
    Ignored,
    NotApplicable,
}

impl Field {
    pub const ALL: [Field; 17] = [
        Field::SyncKey,
        Field::Civility,
        Field::LastName,
        Field::FirstName,
        Field::Subject,
        Field::Function,
        Field::BirthDate,
        Field::Class,
        Field::Login,
        Field::Password,
        Field::Uai,
        Field::Address,
        Field::PostalCode,
        Field::City,
        Field::Landline,
        Field::Mobile,
        Field::Email,
    ];

    /// Identifier used by `--map "COLONNE=champ"` and the JSON report.
    pub fn id(self) -> &'static str {
        match self {
            Field::SyncKey => "cle",
            Field::Civility => "civilite",
            Field::LastName => "nom",
            Field::FirstName => "prenom",
            Field::Subject => "matiere",
            Field::Function => "fonction",
            Field::BirthDate => "date-naissance",
            Field::Class => "classe",
            Field::Login => "login",
            Field::Password => "mot-de-passe",
            Field::Uai => "uai",
            Field::Address => "adresse",
            Field::PostalCode => "code-postal",
            Field::City => "ville",
            Field::Landline => "telephone-fixe",
            Field::Mobile => "telephone-portable",
            Field::Email => "email",
        }
    }

    /// Fields stored on the person (not the key, login, password or establishment).
    pub fn is_attribute(self) -> bool {
        !matches!(self, Field::SyncKey | Field::Login | Field::Password | Field::Uai)
    }

    /// The guide's label without the profile suffix.
    pub fn label(self) -> &'static str {
        match self {
            Field::SyncKey => "Cle synchro",
            Field::Civility => "Civilite",
            Field::LastName => "Nom",
            Field::FirstName => "Prenom",
            Field::Subject => "Matiere",
            Field::Function => "Fonction",
            Field::BirthDate => "Date de naissance",
            Field::Class => "Classe",
            Field::Login => "Nom utilisateur",
            Field::Password => "Mot de passe",
            Field::Uai => "RNE",
            Field::Address => "Adresse",
            Field::PostalCode => "Code postal",
            Field::City => "Ville",
            Field::Landline => "Telephone fixe",
            Field::Mobile => "Telephone portable",
            Field::Email => "Email",
        }
    }

    /// The field's name in the pages, written as French is ("Prénom",
    /// "Matière"): the profile is said once by the page, not by each field.
    /// Files keep the guide's headers ([`Field::header`]).
    pub fn name(self) -> &'static str {
        match self {
            Field::SyncKey => "Clé de synchronisation",
            Field::Civility => "Civilité",
            Field::LastName => "Nom",
            Field::FirstName => "Prénom",
            Field::Subject => "Matière",
            Field::Function => "Fonction (code)",
            Field::BirthDate => "Date de naissance",
            Field::Class => "Classe",
            Field::Login => "Identifiant de connexion",
            Field::Password => "Mot de passe",
            Field::Uai => "Établissement (RNE)",
            Field::Address => "Adresse",
            Field::PostalCode => "Code postal",
            Field::City => "Ville",
            Field::Landline => "Téléphone fixe",
            Field::Mobile => "Téléphone portable",
            Field::Email => "Adresse électronique",
        }
    }

    /// The column header the guide uses for this field and profile ("Nom enseignant").
    pub fn header(self, profile: Profile) -> String {
        format!("{} {}", self.label(), profile.header_suffix())
    }

    pub fn presence(self, profile: Profile) -> Presence {
        use Presence::*;
        use Profile::*;
        match (self, profile) {
            (Field::SyncKey, _) => Ignored,
            (Field::LastName | Field::FirstName, _) => Required,
            (Field::Login | Field::Password | Field::Landline | Field::Mobile | Field::Email, _) => Optional,
            (Field::Civility, Enseignant | Administratif) => Required,
            (Field::Civility, Parent) => Optional,
            (Field::Subject, Enseignant) => Required,
            (Field::Function, Administratif) => Required,
            (Field::BirthDate, Eleve) => Required,
            (Field::BirthDate, Enseignant) => Optional,
            (Field::Class, Eleve) => Required,
            (Field::Uai, Administratif) => Optional,
            (Field::Address | Field::PostalCode | Field::City, Enseignant | Administratif | Parent) => Optional,
            _ => NotApplicable,
        }
    }

    /// The fields a file of this profile may map, in the guide's column order.
    pub fn for_profile(profile: Profile) -> impl Iterator<Item = Field> {
        Field::ALL
            .into_iter()
            .filter(move |f| f.presence(profile) != Presence::NotApplicable)
    }

    pub fn required_for(profile: Profile) -> impl Iterator<Item = Field> {
        Field::ALL
            .into_iter()
            .filter(move |f| f.presence(profile) == Presence::Required)
    }

    /// Normalised header names (see [`normalise_header`]) that mean this field.
    fn synonyms(self) -> &'static [&'static str] {
        match self {
            Field::SyncKey => &[
                "cle synchro",
                "cle de synchro",
                "cle synchronisation",
                "cle de synchronisation",
                "cle",
                "sync key",
                "synckey",
            ],
            Field::Civility => &["civilite", "civ", "titre", "civility", "title"],
            Field::LastName => &[
                "nom",
                "nom de famille",
                "nom d usage",
                "nom usuel",
                "last name",
                "lastname",
                "surname",
                "family name",
            ],
            Field::FirstName => &["prenom", "prenom usuel", "first name", "firstname", "given name"],
            Field::Subject => &["matiere", "matiere enseignee", "discipline", "subject"],
            Field::Function => &[
                "fonction",
                "code fonction",
                "fonction code",
                "fonction filiere",
                "code",
                "function",
            ],
            Field::BirthDate => &[
                "date de naissance",
                "date naissance",
                "naissance",
                "ne le",
                "nee le",
                "ddn",
                "birth date",
                "birthdate",
                "date of birth",
            ],
            Field::Class => &["classe", "division", "class"],
            Field::Login => &[
                "nom utilisateur",
                "nom d utilisateur",
                "nom de l utilisateur",
                "login",
                "identifiant",
                "identifiant de connexion",
                "username",
                "user name",
            ],
            Field::Password => &["mot de passe", "mdp", "password", "mot passe"],
            Field::Uai => &[
                "rne",
                "uai",
                "code rne",
                "code uai",
                "rne etablissement",
                "uai etablissement",
                "etablissement",
            ],
            Field::Address => &["adresse", "adresse postale", "rue", "address"],
            Field::PostalCode => &["code postal", "cp", "postal code", "zip", "code post"],
            Field::City => &["ville", "commune", "localite", "city"],
            Field::Landline => &[
                "telephone fixe",
                "tel fixe",
                "telephone",
                "tel",
                "fixe",
                "telephone domicile",
                "tel domicile",
                "phone",
            ],
            Field::Mobile => &[
                "telephone portable",
                "tel portable",
                "portable",
                "mobile",
                "telephone mobile",
                "tel mobile",
                "gsm",
                "cellulaire",
            ],
            Field::Email => &[
                "email",
                "e mail",
                "mail",
                "courriel",
                "adresse e mail",
                "adresse email",
                "adresse mail",
                "adresse electronique",
                "adresse courriel",
            ],
        }
    }

    /// The field a column header means, ignoring case, accents, spaces, `*`,
    /// apostrophes and the profile suffix ("Nom du personnel administratif" → nom).
    pub fn from_header(header: &str) -> Option<Field> {
        let normalised = normalise_header(header);
        if normalised.is_empty() {
            return None;
        }
        Field::ALL
            .into_iter()
            .find(|f| f.synonyms().contains(&normalised.as_str()))
    }
}

/// Words the guide and ENT templates put around a field name to say whose it is.
const SUFFIXES: &[&str] = &[
    "du personnel administratif",
    "de l personnel administratif",
    "personnel administratif",
    "de l enseignant",
    "de l eleve",
    "du parent",
    "de l administratif",
    "du responsable",
    "enseignants",
    "enseignant",
    "administratifs",
    "administratif",
    "personnel",
    "eleves",
    "eleve",
    "parents",
    "parent",
    "responsable",
    "prof",
];

/// Lowercase ASCII words of a header, with `*`, punctuation and the profile
/// suffix removed: "Nom  du personnel administratif*" → "nom".
pub fn normalise_header(header: &str) -> String {
    let without_notes = strip_parenthesised(header);
    let folded = crate::text::fold(&crate::text::clean_cell(&without_notes));
    let spaced: String = folded
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    let mut words = spaced.split_whitespace().collect::<Vec<_>>().join(" ");
    // Strip suffixes repeatedly ("Nom de l'enseignant" → "nom de l enseignant" → "nom").
    loop {
        let before = words.len();
        for suffix in SUFFIXES {
            if let Some(stripped) = words.strip_suffix(suffix) {
                if stripped.is_empty() || stripped.ends_with(' ') {
                    words = stripped.trim_end().to_string();
                    break;
                }
            }
        }
        if words.len() == before {
            break;
        }
    }
    words
}

/// "Fonction (code)" → "Fonction ": notes in brackets never name the field.
fn strip_parenthesised(s: &str) -> String {
    let mut depth = 0usize;
    s.chars()
        .filter(|&c| match c {
            '(' | '[' => {
                depth += 1;
                false
            }
            ')' | ']' => {
                depth = depth.saturating_sub(1);
                false
            }
            _ => depth == 0,
        })
        .collect()
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("champ « {0} » inconnu : les champs sont cle, civilite, nom, prenom, matiere, fonction, date-naissance, classe, login, mot-de-passe, uai, adresse, code-postal, ville, telephone-fixe, telephone-portable, email (ou ignorer)")]
pub struct UnknownField(pub String);

impl FromStr for Field {
    type Err = UnknownField;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = crate::text::fold(s.trim()).replace([' ', '_'], "-");
        Field::ALL
            .into_iter()
            .find(|f| f.id() == wanted)
            .or_else(|| Field::from_header(s))
            .ok_or_else(|| UnknownField(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guide_headers_are_recognised() {
        let cases = [
            ("Civilité enseignant", Field::Civility),
            ("Nom enseignant", Field::LastName),
            ("Prénom enseignant", Field::FirstName),
            ("Matière enseignant", Field::Subject),
            ("Nom utilisateur enseignant", Field::Login),
            ("Mot de passe enseignant", Field::Password),
            ("Telephone fixe enseignant", Field::Landline),
            ("Telephone portable enseignant", Field::Mobile),
            ("Email enseignant", Field::Email),
            ("Adresse e-mail enseignant", Field::Email),
            ("Date de naissance enseignant", Field::BirthDate),
            ("Cle synchro enseignant", Field::SyncKey),
            ("Nom du personnel administratif", Field::LastName),
            ("Fonction du personnel administratif (code)", Field::Function),
            ("RNE administratif", Field::Uai),
            ("Nom d'utilisateur de l'enseignant", Field::Login),
            ("  NOM DE FAMILLE* ", Field::LastName),
            ("Classe eleve", Field::Class),
            ("Code postal du personnel administratif", Field::PostalCode),
        ];
        for (header, field) in cases {
            assert_eq!(Field::from_header(header), Some(field), "{header}");
        }
        assert_eq!(Field::from_header("Couleur préférée"), None);
    }

    #[test]
    fn every_profile_requires_names() {
        for p in Profile::IMPORTABLE {
            let req: Vec<_> = Field::required_for(p).collect();
            assert!(req.contains(&Field::LastName) && req.contains(&Field::FirstName));
        }
        let teacher: Vec<_> = Field::required_for(Profile::Enseignant).collect();
        assert_eq!(
            teacher,
            vec![Field::Civility, Field::LastName, Field::FirstName, Field::Subject]
        );
    }

    #[test]
    fn field_ids_parse_back() {
        for f in Field::ALL {
            assert_eq!(f.id().parse::<Field>(), Ok(f));
        }
    }
}
