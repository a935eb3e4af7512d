//! Lines are checked on every core: the outcome must still be in file order,
//! the same as checking them one after another.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use domain::mapping::auto_map;
use domain::parse::{parse, ParsedFile};
use domain::validate::{validate, validate_record, ValidateOptions};
use domain::{Profile, Uai};

#[test]
fn a_big_file_is_checked_in_file_order() {
    // 5 000 lines: every 7th has a bad e-mail (a conflict), every 11th a
    // phone whose leading 0 Excel dropped (a notice), the rest are clean.
    let mut text = String::from("Civilité;Nom;Prénom;Email;Téléphone portable\n");
    for i in 0..5_000 {
        let email = if i % 7 == 0 {
            "pas-une-adresse".to_string()
        } else {
            format!("p{i}@exemple.fr")
        };
        let phone = if i % 11 == 0 { "612345678" } else { "06 12 34 56 78" };
        text.push_str(&format!("M.;DUPONT{i};Jean;{email};{phone}\n"));
    }
    let limits = domain::decode::Limits::default();
    let parsed: ParsedFile = parse(&text, Some(b';'), true, &limits).unwrap();
    let mapping = auto_map(parsed.header.as_deref(), parsed.column_count, Profile::Enseignant);
    let options = ValidateOptions {
        today: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        min_password_len: 3,
        establishments_from_file: false,
        establishment: Some(Uai::parse("0750654D").unwrap()),
        limits,
    };

    let checked = validate(&parsed, &mapping, &options);

    // The same lines checked one by one, in order.
    let mut rows = Vec::new();
    let mut conflict_lines = Vec::new();
    let mut notices = Vec::new();
    for record in &parsed.records {
        match validate_record(record, &mapping, &options, &mut notices) {
            Ok(row) => rows.push(row),
            Err(_) => conflict_lines.push(record.line),
        }
    }
    assert_eq!(checked.conflict_rows.len(), 715, "one line in 7 is refused");
    assert_eq!(checked.rows, rows);
    assert_eq!(
        checked.conflict_rows.iter().map(|c| c.line).collect::<Vec<_>>(),
        conflict_lines
    );
    assert!(!notices.is_empty(), "the padded phones give notices");
    assert_eq!(checked.notices, notices);
    assert!(checked.rows.windows(2).all(|w| w[0].line < w[1].line));
}
