//! Columns → fields (guide §5.2.B): automatic matching of headers, explicit
//! overrides, and the mandatory-fields check that blocks step 2.

use crate::field::{Field, Presence};
use crate::profile::Profile;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchKind {
    /// Recognised from the header (or the position, without header).
    Auto,
    /// Chosen by the admin.
    Chosen,
    /// Not imported.
    Unmapped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub index: usize,
    /// The file's header, or "Colonne N" for a file without header.
    pub name: String,
    pub field: Option<Field>,
    pub how: MatchKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub profile: Profile,
    pub columns: Vec<Column>,
}

/// Which column an override talks about: its header or its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnRef {
    Name(String),
    Number(usize),
}

/// `COLONNE=champ` from the CLI or a saved mapping; `field: None` ignores the column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub column: ColumnRef,
    pub field: Option<Field>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("correspondance « {0} » mal écrite : utilisez \"COLONNE=champ\" (ex. \"Nom de famille=nom\" ou \"3=prenom\", ou \"Commentaire=ignorer\")")]
    Syntax(String),
    #[error("{0}")]
    UnknownField(String),
    #[error("la colonne « {0} » n'existe pas dans le fichier (colonnes : {1})")]
    UnknownColumn(String, String),
    /// The CLI's words (field ids, `--map`); the web renders its own from the data.
    #[error("le champ {} n'existe pas pour le profil {} : retirez cette correspondance", .field.id(), .profile.id())]
    NotForProfile { field: Field, profile: Profile },
    #[error("le champ {} est associé à deux colonnes (« {first} » et « {second} ») : ignorez l'une d'elles", .field.id())]
    Duplicate {
        field: Field,
        first: String,
        second: String,
    },
    #[error("champs obligatoires absents pour le profil {} : {} ; associez une colonne à chacun (--map \"COLONNE=champ\")", .profile.id(), field_list(*.profile, .fields))]
    MissingRequired { profile: Profile, fields: Vec<Field> },
    #[error("l'option « affecter aux établissements du fichier » demande une colonne RNE/UAI associée au champ uai")]
    UaiColumnNeeded,
    #[error("l'option « affecter aux établissements du fichier » n'existe que pour le personnel administratif")]
    EstablishmentsFromFileNotForProfile,
}

/// "Civilité enseignant (civilite), Matière enseignant (matiere)": the
/// headers the admin knows and the ids `--map` takes.
fn field_list(profile: Profile, fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| format!("{} ({})", f.header(profile), f.id()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Override {
    /// Parses `COLONNE=champ`; `ignorer`/`ignore`/`-` as field ignores the column.
    pub fn parse(spec: &str) -> Result<Self, MappingError> {
        let (column, field) = spec
            .rsplit_once('=')
            .ok_or_else(|| MappingError::Syntax(spec.to_string()))?;
        let column = column.trim();
        if column.is_empty() {
            return Err(MappingError::Syntax(spec.to_string()));
        }
        let field = match crate::text::fold(field.trim()).as_str() {
            "ignorer" | "ignore" | "-" | "" => None,
            other => Some(
                other
                    .parse::<Field>()
                    .map_err(|e| MappingError::UnknownField(e.to_string()))?,
            ),
        };
        let column = match column.parse::<usize>() {
            Ok(n) if n >= 1 => ColumnRef::Number(n),
            _ => ColumnRef::Name(column.to_string()),
        };
        Ok(Override { column, field })
    }
}

/// The column order of a file without header: the guide's template order.
pub fn template_fields(profile: Profile) -> Vec<Field> {
    Field::for_profile(profile)
        .filter(|f| f.presence(profile) != Presence::Ignored)
        .collect()
}

/// Maps headers to fields; without header, by template position. A header
/// recognised as a field the profile doesn't have, or a second column for the
/// same field, stays unmapped (shown as ignored in the summary).
pub fn auto_map(header: Option<&[String]>, column_count: usize, profile: Profile) -> Mapping {
    let mut columns = Vec::with_capacity(column_count);
    let template = template_fields(profile);
    for index in 0..column_count {
        let (name, guess) = match header {
            Some(h) => {
                let name = h.get(index).cloned().unwrap_or_default();
                let guess = Field::from_header(&name);
                (
                    if name.is_empty() {
                        format!("Colonne {}", index + 1)
                    } else {
                        name
                    },
                    guess,
                )
            }
            None => (format!("Colonne {}", index + 1), template.get(index).copied()),
        };
        let field = guess.filter(|f| f.presence(profile) != Presence::NotApplicable);
        columns.push(Column {
            index,
            name,
            field,
            how: if field.is_some() {
                MatchKind::Auto
            } else {
                MatchKind::Unmapped
            },
        });
    }
    // First column wins when two headers mean the same field.
    for i in 0..columns.len() {
        if let Some(f) = columns[i].field {
            if columns[..i].iter().any(|c| c.field == Some(f)) {
                columns[i].field = None;
                columns[i].how = MatchKind::Unmapped;
            }
        }
    }
    Mapping { profile, columns }
}

impl Mapping {
    pub fn apply_overrides(&mut self, overrides: &[Override]) -> Result<(), MappingError> {
        for o in overrides {
            let index = self.find_column(&o.column)?;
            if let Some(field) = o.field {
                if field.presence(self.profile) == Presence::NotApplicable {
                    return Err(MappingError::NotForProfile {
                        field,
                        profile: self.profile,
                    });
                }
                // An explicit choice takes the field from an automatic match.
                for c in &mut self.columns {
                    if c.field == Some(field) && c.how == MatchKind::Auto && c.index != index {
                        c.field = None;
                        c.how = MatchKind::Unmapped;
                    }
                }
            }
            let column = &mut self.columns[index];
            column.field = o.field;
            column.how = if o.field.is_some() {
                MatchKind::Chosen
            } else {
                MatchKind::Unmapped
            };
        }
        Ok(())
    }

    fn find_column(&self, wanted: &ColumnRef) -> Result<usize, MappingError> {
        let names = || {
            self.columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match wanted {
            ColumnRef::Number(n) => {
                if *n >= 1 && *n <= self.columns.len() {
                    Ok(n - 1)
                } else {
                    Err(MappingError::UnknownColumn(n.to_string(), names()))
                }
            }
            ColumnRef::Name(name) => {
                let folded = crate::text::fold(&crate::text::clean_cell(name));
                self.columns
                    .iter()
                    .position(|c| crate::text::fold(&c.name) == folded)
                    .ok_or_else(|| MappingError::UnknownColumn(name.clone(), names()))
            }
        }
    }

    pub fn column_of(&self, field: Field) -> Option<usize> {
        self.columns.iter().find(|c| c.field == Some(field)).map(|c| c.index)
    }

    pub fn has(&self, field: Field) -> bool {
        self.column_of(field).is_some()
    }

    /// Required fields with no column: what step 2's checklist shows unticked.
    pub fn missing_required(&self) -> Vec<Field> {
        Field::required_for(self.profile).filter(|f| !self.has(*f)).collect()
    }

    /// Step 2's gate: every required field mapped, no field twice.
    pub fn check(&self, establishments_from_file: bool) -> Result<(), MappingError> {
        for (i, c) in self.columns.iter().enumerate() {
            if let Some(f) = c.field {
                if let Some(first) = self.columns[..i].iter().find(|o| o.field == Some(f)) {
                    return Err(MappingError::Duplicate {
                        field: f,
                        first: first.name.clone(),
                        second: c.name.clone(),
                    });
                }
            }
        }
        let missing = self.missing_required();
        if !missing.is_empty() {
            return Err(MappingError::MissingRequired {
                profile: self.profile,
                fields: missing,
            });
        }
        if establishments_from_file {
            if self.profile != Profile::Administratif {
                return Err(MappingError::EstablishmentsFromFileNotForProfile);
            }
            if !self.has(Field::Uai) {
                return Err(MappingError::UaiColumnNeeded);
            }
        }
        Ok(())
    }

    pub fn ignored_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns
            .iter()
            .filter(|c| c.field.is_none() || c.field == Some(Field::SyncKey))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn guide_teacher_file_maps_itself() {
        let h = headers(&[
            "Civilité enseignant",
            "Nom enseignant",
            "Prénom enseignant",
            "Matière enseignant",
        ]);
        let m = auto_map(Some(&h), 4, Profile::Enseignant);
        assert_eq!(m.check(false), Ok(()));
        assert_eq!(m.column_of(Field::Subject), Some(3));
    }

    #[test]
    fn missing_required_fields_are_listed() {
        let h = headers(&["Nom", "Prénom"]);
        let m = auto_map(Some(&h), 2, Profile::Enseignant);
        assert_eq!(m.missing_required(), vec![Field::Civility, Field::Subject]);
        let err = m.check(false).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("Civilite enseignant") && err.contains("Matiere enseignant"),
            "{err}"
        );
    }

    #[test]
    fn overrides_by_name_number_and_ignore() {
        let h = headers(&["Civ", "Famille", "Prénom", "Discipline", "Commentaire"]);
        let mut m = auto_map(Some(&h), 5, Profile::Enseignant);
        assert!(!m.has(Field::LastName));
        let o = ["famille=nom", "5=ignorer"].map(|s| Override::parse(s).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(m.apply_overrides(&o), Ok(()));
        assert_eq!(m.check(false), Ok(()));
        assert!(matches!(Override::parse("nom"), Err(MappingError::Syntax(_))));
        assert!(matches!(
            m.apply_overrides(&[Override::parse("Inconnue=nom").unwrap_or_else(|e| panic!("{e}"))]),
            Err(MappingError::UnknownColumn(..))
        ));
        assert!(matches!(
            m.apply_overrides(&[Override::parse("1=classe").unwrap_or_else(|e| panic!("{e}"))]),
            Err(MappingError::NotForProfile { .. })
        ));
    }

    #[test]
    fn no_header_uses_template_order() {
        let m = auto_map(None, 4, Profile::Enseignant);
        let fields: Vec<_> = m.columns.iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            vec![
                Some(Field::Civility),
                Some(Field::LastName),
                Some(Field::FirstName),
                Some(Field::Subject)
            ]
        );
    }

    #[test]
    fn same_field_twice_keeps_the_first() {
        let h = headers(&["Nom", "Prénom", "Téléphone", "Tel fixe"]);
        let m = auto_map(Some(&h), 4, Profile::Eleve);
        assert_eq!(m.column_of(Field::Landline), Some(2));
        assert_eq!(m.columns[3].field, None);
    }
}
