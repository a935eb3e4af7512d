//! CSV files handed to people: the result file of an import (SPEC §7, guide
//! §5.2.E) and exports. UTF-8 with BOM, `;`, CRLF, as Excel opens them, and
//! cells that Excel would run as formulas neutralised.

use crate::field::Field;
use crate::keys::SyncKey;
use crate::mapping::Mapping;
use crate::parse::ParsedFile;
use crate::plan::Plan;
use crate::validate::Checked;
use std::borrow::Cow;
use std::collections::HashMap;

/// Prefixes `'` to a cell Excel would read as a formula (= + - @, tab, CR):
/// the OWASP CSV-injection defence. Our importer strips it back.
pub fn excel_safe(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Writes rows as an Excel-friendly CSV.
pub fn write_csv<'a>(header: &[String], rows: impl Iterator<Item = Vec<Cow<'a, str>>>) -> Vec<u8> {
    let mut csv = CsvBuilder::new(header);
    csv.rows(rows);
    csv.finish()
}

/// An Excel-friendly CSV (UTF-8 BOM, `;`, CRLF, formula-safe cells) written
/// a few rows at a time: a feed's result file grows batch by batch.
#[derive(Debug, Clone, Default)]
pub struct CsvBuilder {
    out: Vec<u8>,
}

impl CsvBuilder {
    pub fn new(header: &[String]) -> CsvBuilder {
        let mut csv = CsvBuilder {
            out: vec![0xEF, 0xBB, 0xBF],
        };
        csv.rows(std::iter::once(
            header.iter().map(|h| Cow::Borrowed(h.as_str())).collect(),
        ));
        csv
    }

    pub fn rows<'a>(&mut self, rows: impl Iterator<Item = Vec<Cow<'a, str>>>) {
        let mut writer = csv::WriterBuilder::new()
            .delimiter(b';')
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut self.out);
        // Writing to a Vec cannot fail; errors would only come from I/O.
        for row in rows {
            let _ = writer.write_record(
                row.iter()
                    .map(|c| excel_safe(c))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(|c| c.as_bytes()),
            );
        }
        let _ = writer.flush();
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// The result file: every imported line with its sync key, login and, for
/// accounts this import created, the password to hand out.
pub fn build(checked: &Checked, mapping: &Mapping, plan: &Plan, passwords: &HashMap<SyncKey, String>) -> Vec<u8> {
    let profile = mapping.profile;
    let login_col = mapping.column_of(Field::Login);
    let password_col = mapping.column_of(Field::Password);
    let key_col = mapping.column_of(Field::SyncKey);
    let landline_col = mapping.column_of(Field::Landline);
    let mobile_col = mapping.column_of(Field::Mobile);
    let kept: Vec<usize> = (0..mapping.columns.len()).filter(|&i| Some(i) != key_col).collect();

    let mut header = vec![Field::SyncKey.header(profile)];
    for &i in &kept {
        let c = &mapping.columns[i];
        header.push(match (c.field, c.name.starts_with("Colonne ")) {
            (Some(f), true) => f.header(profile),
            _ => c.name.clone(),
        });
    }
    if login_col.is_none() {
        header.push(Field::Login.header(profile));
    }
    if password_col.is_none() {
        header.push(Field::Password.header(profile));
    }

    // An account of another establishment is listed without its login
    // (the person already has it; the importer is not given it).
    let mut logins: HashMap<&SyncKey, &str> = HashMap::new();
    for c in &plan.creates {
        logins.insert(&c.key, c.login.as_str());
    }
    for u in &plan.updates {
        logins.insert(&u.key, u.login.as_ref().map_or("", |l| l.as_str()));
    }
    for u in &plan.unchanged {
        logins.insert(&u.key, u.login.as_ref().map_or("", |l| l.as_str()));
    }

    let rows = checked
        .rows
        .iter()
        .filter(|r| !plan.conflict_lines.contains(&r.line))
        .filter_map(|r| {
            let login = logins.get(&r.key)?;
            let password = passwords.get(&r.key).map(String::as_str).unwrap_or("");
            let mut cells: Vec<Cow<'_, str>> = vec![Cow::Borrowed(r.key.as_str())];
            for &i in &kept {
                let value = r.cells.get(i).map(String::as_str).unwrap_or("");
                // Phones as checked ("06 12 34 56 78"), not as typed ("+33 6…"
                // would show Excel's formula guard).
                let phone = if Some(i) == landline_col {
                    r.attrs.landline.as_ref()
                } else if Some(i) == mobile_col {
                    r.attrs.mobile.as_ref()
                } else {
                    None
                };
                cells.push(if let Some(phone) = phone {
                    Cow::Owned(phone.for_spreadsheet())
                } else {
                    Cow::Borrowed(if Some(i) == login_col {
                        login
                    } else if Some(i) == password_col {
                        password
                    } else {
                        value
                    })
                });
            }
            if login_col.is_none() {
                cells.push(Cow::Borrowed(login));
            }
            if password_col.is_none() {
                cells.push(Cow::Borrowed(password));
            }
            Some(cells)
        });
    write_csv(&header, rows)
}

/// The lines an import skipped for their conflicts, as the admin's file had
/// them (step-3 edits included) plus a last column "Problème": a CSV to fix
/// and import again (the importer leaves that column unmapped). `None` when
/// no line was skipped.
pub fn skipped_lines(parsed: &ParsedFile, mapping: &Mapping, plan: &Plan) -> Option<Vec<u8>> {
    if plan.skipped() == 0 {
        return None;
    }
    let mut header: Vec<String> = mapping.columns.iter().map(|c| c.name.clone()).collect();
    header.push("Problème".to_string());
    let rows = parsed
        .records
        .iter()
        .filter(|r| plan.conflict_lines.contains(&r.line))
        .map(|r| {
            let problems: Vec<String> = plan
                .conflicts
                .iter()
                .filter(|c| c.line == r.line)
                .map(|c| match &c.column {
                    Some(column) => format!("ligne {}, {column} : {}", r.line, c.message),
                    None => format!("ligne {} : {}", r.line, c.message),
                })
                .collect();
            let mut cells: Vec<Cow<'_, str>> = (0..mapping.columns.len())
                .map(|i| Cow::Borrowed(r.cells.get(i).map(String::as_str).unwrap_or("")))
                .collect();
            cells.push(Cow::Owned(problems.join(" ; ")));
            cells
        });
    Some(write_csv(&header, rows))
}

/// One printable credential slip (SPEC §7 "Beyond"): what a person needs to
/// sign in for the first time. Only accounts created by the import get one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Slip {
    pub civility: Option<String>,
    pub last_name: String,
    pub first_name: String,
    pub login: String,
    pub password: String,
    pub establishments: Vec<String>,
}

/// The slips of an import, in the order of the file.
pub fn slips(plan: &Plan, passwords: &HashMap<SyncKey, String>) -> Vec<Slip> {
    plan.creates
        .iter()
        .filter_map(|c| {
            Some(Slip {
                civility: c.attrs.civility.map(|v| v.as_str().to_string()),
                last_name: c.attrs.last_name.clone(),
                first_name: c.attrs.first_name.clone(),
                login: c.login.as_str().to_string(),
                password: passwords.get(&c.key)?.clone(),
                establishments: c.memberships.iter().map(|m| m.uai.as_str().to_string()).collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_read_as_phones_in_excel() {
        use crate::values::Phone;
        let (french, _) = Phone::parse("+33 1 67 89 12 34").unwrap();
        assert_eq!(french.for_spreadsheet(), "01 67 89 12 34");
        let (british, _) = Phone::parse("+44 20 7946 0958").unwrap();
        assert_eq!(british.for_spreadsheet(), "00442079460958");
        // Both read back as the same numbers (an export re-imports unchanged).
        for p in [&french, &british] {
            assert_eq!(&Phone::parse(&p.for_spreadsheet()).unwrap().0, p);
        }
        // Neither needs Excel's guard, so no apostrophe shows.
        for p in [french, british] {
            let cell = p.for_spreadsheet();
            assert_eq!(excel_safe(&cell), cell.as_str());
        }
    }

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(excel_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(excel_safe("+33612345678"), "'+33612345678");
        assert_eq!(excel_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(excel_safe("-2+3"), "'-2+3");
        assert_eq!(excel_safe("Dupont"), "Dupont");
    }

    #[test]
    fn csv_has_bom_semicolons_and_crlf() {
        let out = write_csv(
            &["A".into(), "B".into()],
            std::iter::once(vec![Cow::Borrowed("x;y"), Cow::Borrowed("=1")]),
        );
        assert_eq!(out, "\u{feff}A;B\r\n\"x;y\";'=1\r\n".as_bytes());
    }
}
