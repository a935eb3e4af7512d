//! Raw records + mapping → checked rows or conflicts (SPEC §4–§6, guide §5.2.C).
//! One conflict per bad field, each with a French message saying how to fix it.

use crate::decode::Limits;
use crate::establishment::Uai;
use crate::field::{Field, Presence};
use crate::functions;
use crate::keys::SyncKey;
use crate::mapping::Mapping;
use crate::parse::{ParsedFile, RawRecord};
use crate::person::Attributes;
use crate::profile::Profile;
use crate::values::{parse_birth_date, parse_name, Civility, Email, Login, Notice, Phone, PostalCode, ValueError};
use chrono::NaiveDate;
use rayon::prelude::*;
use serde::Serialize;

/// One problem on one line, as the report and step 3 show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// Physical line number in the file.
    pub line: u64,
    /// The file's column header (or "Colonne N").
    pub column: Option<String>,
    pub field: Option<Field>,
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowNotice {
    pub line: u64,
    pub column: Option<String>,
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckedRow {
    pub line: u64,
    /// The cleaned cells of the line, for the result file and step 3.
    pub cells: Vec<String>,
    pub attrs: Attributes,
    pub login: Option<Login>,
    pub password: Option<String>,
    /// The establishment named on the line (staff files only).
    pub uai: Option<Uai>,
    pub key: SyncKey,
    /// The key written in the line's key column (an export's), when it is
    /// not the derived one: it finds an account of the AAF feed, whose key
    /// no file derives; it never chooses a key.
    pub file_key: Option<SyncKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictRow {
    pub line: u64,
    pub cells: Vec<String>,
    pub conflicts: Vec<Conflict>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checked {
    pub rows: Vec<CheckedRow>,
    pub conflict_rows: Vec<ConflictRow>,
    pub notices: Vec<RowNotice>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateOptions {
    pub today: NaiveDate,
    pub min_password_len: usize,
    pub establishments_from_file: bool,
    /// The establishment chosen in step 1; lines naming another one are refused
    /// unless `establishments_from_file` is set.
    pub establishment: Option<Uai>,
    pub limits: Limits,
}

/// One line checked: the row or its conflicts, and its notices.
type LineOutcome = (Result<CheckedRow, Vec<Conflict>>, Vec<RowNotice>);

/// Lines per rayon task: enough work per task that splitting costs nothing.
const LINES_PER_TASK: usize = 512;

/// Checks every line. Lines are independent, so they are checked on every
/// core; the result is in file order, as if checked one after another.
pub fn validate(parsed: &ParsedFile, mapping: &Mapping, options: &ValidateOptions) -> Checked {
    let outcomes: Vec<LineOutcome> = parsed
        .records
        .par_iter()
        .with_min_len(LINES_PER_TASK)
        .map(|record| {
            let mut notices = Vec::new();
            (validate_record(record, mapping, options, &mut notices), notices)
        })
        .collect();
    let mut checked = Checked {
        rows: Vec::with_capacity(parsed.records.len()),
        conflict_rows: Vec::new(),
        notices: Vec::new(),
    };
    for (record, (outcome, notices)) in parsed.records.iter().zip(outcomes) {
        checked.notices.extend(notices);
        match outcome {
            Ok(row) => checked.rows.push(row),
            Err(conflicts) => checked.conflict_rows.push(ConflictRow {
                line: record.line,
                cells: record.cells.clone(),
                conflicts,
            }),
        }
    }
    checked
}

/// Checks one line on its own (also used when step 3 saves an edited row).
pub fn validate_record(
    record: &RawRecord,
    mapping: &Mapping,
    options: &ValidateOptions,
    notices: &mut Vec<RowNotice>,
) -> Result<CheckedRow, Vec<Conflict>> {
    let profile = mapping.profile;
    let line = record.line;
    let mut conflicts: Vec<Conflict> = record
        .problems
        .iter()
        .map(|p| Conflict {
            line,
            column: p.column.and_then(|i| mapping.columns.get(i)).map(|c| c.name.clone()),
            field: p.column.and_then(|i| mapping.columns.get(i)).and_then(|c| c.field),
            code: p.code,
            message: p.message.clone(),
        })
        .collect();

    let column_name = |field: Field| {
        mapping
            .column_of(field)
            .and_then(|i| mapping.columns.get(i))
            .map(|c| c.name.clone())
    };
    let cell = |field: Field| -> Option<&str> {
        mapping
            .column_of(field)
            .and_then(|i| record.cells.get(i))
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    };
    let fail = |conflicts: &mut Vec<Conflict>, field: Field, e: ValueError| {
        conflicts.push(Conflict {
            line,
            column: column_name(field),
            field: Some(field),
            code: e.code,
            message: e.message,
        });
    };
    let mut notice = |field: Field, n: Notice| {
        notices.push(RowNotice {
            line,
            column: column_name(field),
            code: n.code,
            message: n.message,
        });
    };

    for field in Field::required_for(profile) {
        if cell(field).is_none() && mapping.has(field) {
            fail(
                &mut conflicts,
                field,
                ValueError::new(
                    "missing_required",
                    format!(
                        "{} obligatoire pour le profil {} : renseignez-le, ou cochez « Ne pas importer les lignes en conflit »",
                        field.header(profile),
                        profile.label()
                    ),
                ),
            );
        }
    }

    let mut attrs = Attributes::default();
    macro_rules! parse_field {
        ($field:expr, $parse:expr) => {
            match cell($field).map($parse) {
                Some(Ok(v)) => Some(v),
                Some(Err(e)) => {
                    fail(&mut conflicts, $field, e);
                    None
                }
                None => None,
            }
        };
    }
    attrs.civility = parse_field!(Field::Civility, Civility::parse);
    attrs.last_name = parse_field!(Field::LastName, |s| parse_name(s, "le nom")).unwrap_or_default();
    attrs.first_name = parse_field!(Field::FirstName, |s| parse_name(s, "le prénom")).unwrap_or_default();
    attrs.birth_date = parse_field!(Field::BirthDate, |s| parse_birth_date(s, options.today));
    attrs.subject = cell(Field::Subject).map(str::to_string);
    attrs.class_name = cell(Field::Class).map(str::to_string);
    attrs.address = cell(Field::Address).map(str::to_string);
    attrs.city = cell(Field::City).map(str::to_string);
    attrs.function_code = parse_field!(Field::Function, |s: &str| {
        match functions::lookup(s) {
        Some(f) if f.is_teaching() && profile == Profile::Administratif => Err(ValueError::new(
            "ens_for_staff",
            "la fonction ENS (enseignement) correspond au nœud enseignant : importez cette personne avec le profil enseignant, ou choisissez une autre fonction",
        )),
        Some(f) => Ok(f.code.to_string()),
        None => Err(ValueError::new(
            "unknown_function",
            format!("code fonction « {s} » inconnu : utilisez un code de la liste des fonctions (ex. DIR, EDU, DOC, ADF, AED, MDS, TOS)"),
        )),
    }
    });
    if let Some((pc, n)) = parse_field!(Field::PostalCode, PostalCode::parse) {
        if let Some(n) = n {
            notice(Field::PostalCode, n);
        }
        attrs.postal_code = Some(pc);
    }
    for (field, slot) in [
        (Field::Landline, &mut attrs.landline),
        (Field::Mobile, &mut attrs.mobile),
    ] {
        if let Some((phone, n)) = parse_field!(field, Phone::parse) {
            if let Some(n) = n {
                notice(field, n);
            }
            *slot = Some(phone);
        }
    }
    attrs.email = parse_field!(Field::Email, Email::parse);

    let login = parse_field!(Field::Login, Login::parse);
    let password = cell(Field::Password).map(str::to_string);
    if let Some(p) = &password {
        if let Err(e) = crate::password::check_imposed(p, options.min_password_len) {
            fail(&mut conflicts, Field::Password, e);
        }
        if cell(Field::Login).is_none() {
            fail(
                &mut conflicts,
                Field::Password,
                ValueError::new(
                    "password_without_login",
                    "mot de passe sans login : imposez aussi le login (jamais l'un sans l'autre), ou videz le mot de passe pour que les deux soient générés",
                ),
            );
        }
    }

    let uai = parse_field!(Field::Uai, |s| Uai::parse(s)
        .map_err(|e| ValueError::new("bad_uai", e.to_string())));
    if options.establishments_from_file && cell(Field::Uai).is_none() && profile == Profile::Administratif {
        fail(
            &mut conflicts,
            Field::Uai,
            ValueError::new(
                "missing_required",
                "RNE obligatoire avec l'option « affecter aux établissements du fichier » : indiquez l'établissement de la ligne",
            ),
        );
    }
    if let (false, Some(u), Some(chosen)) = (options.establishments_from_file, &uai, &options.establishment) {
        if u != chosen {
            fail(
                &mut conflicts,
                Field::Uai,
                ValueError::new(
                    "uai_mismatch",
                    format!("la ligne indique l'établissement {u} mais l'import vise {chosen} : corrigez le RNE, ou cochez « affecter aux établissements du fichier »"),
                ),
            );
        }
    }

    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    debug_assert!(Field::SyncKey.presence(profile) == Presence::Ignored);
    let key = SyncKey::derive(
        profile,
        &attrs.first_name,
        &attrs.last_name,
        attrs.birth_date,
        attrs.postal_code.as_ref().map(PostalCode::as_str),
    );
    let file_key = cell(Field::SyncKey)
        .map(|k| SyncKey::from_stored(k.to_string()))
        .filter(|k| *k != key);
    Ok(CheckedRow {
        line,
        cells: record.cells.clone(),
        attrs,
        login,
        password,
        uai,
        key,
        file_key,
    })
}

impl Checked {
    /// Every conflict, in line order.
    pub fn conflicts(&self) -> impl Iterator<Item = &Conflict> {
        self.conflict_rows.iter().flat_map(|r| r.conflicts.iter())
    }
}
