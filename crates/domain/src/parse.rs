//! Text → raw records: separator detection, header or not, Excel artefacts
//! (SPEC §3). A malformed line becomes a problem on that line, never a crash.

use crate::decode::{FileError, Limits};
use crate::text::clean_cell;
use serde::Serialize;

/// Separators an ENT admin's spreadsheet may produce, `;` first (guide §5.2.A).
pub const SEPARATORS: [u8; 4] = [b';', b',', b'\t', b'|'];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineProblem {
    pub code: &'static str,
    pub message: String,
    /// 0-based column of the cell at fault, when one cell is.
    pub column: Option<usize>,
}

/// One data line as read, cells cleaned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawRecord {
    /// Physical line number (1-based) where the record starts.
    pub line: u64,
    pub cells: Vec<String>,
    pub problems: Vec<LineProblem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedFile {
    pub separator: u8,
    /// What detection proposed, shown next to the admin's choice.
    pub detected_separator: u8,
    /// Header cells, trailing empty ones removed; `None` for a file without header.
    pub header: Option<Vec<String>>,
    pub column_count: usize,
    pub records: Vec<RawRecord>,
}

/// A separator as people name it: « ; », « , », tabulation.
pub fn separator_name(separator: u8) -> String {
    match separator {
        b'\t' => "tabulation".to_string(),
        other => format!("« {} »", char::from(other)),
    }
}

/// The separator that splits the first lines most regularly; `;` when unsure.
pub fn detect_separator(text: &str) -> u8 {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(30).collect();
    let mut best = (0usize, b';');
    for sep in SEPARATORS {
        let counts: Vec<usize> = lines.iter().map(|l| count_outside_quotes(l, sep)).collect();
        let Some(&first) = counts.first() else { continue };
        if first == 0 {
            continue;
        }
        let regular = counts.iter().filter(|&&c| c == first).count();
        // Lines with the header's count, weighted by how many columns that makes.
        let score = regular * 100 + first.min(99);
        if score > best.0 {
            best = (score, sep);
        }
    }
    best.1
}

fn count_outside_quotes(line: &str, sep: u8) -> usize {
    let mut in_quotes = false;
    let mut n = 0;
    for b in line.bytes() {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if b == sep && !in_quotes {
            n += 1;
        }
    }
    n
}

/// Strips the apostrophe Excel users type before digits ('06000) and the one our
/// own exports put before formula-like cells ('=…, '+33…), so both round-trip.
fn unprotect(cell: String) -> String {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '=' | '+' | '-' | '@')) => {
            rest.to_string()
        }
        _ => cell,
    }
}

pub fn parse(text: &str, separator: Option<u8>, has_header: bool, limits: &Limits) -> Result<ParsedFile, FileError> {
    let detected_separator = detect_separator(text);
    let separator = separator.unwrap_or(detected_separator);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(false)
        .flexible(true)
        .double_quote(true)
        .from_reader(text.as_bytes());

    let mut header: Option<Vec<String>> = None;
    let mut records: Vec<RawRecord> = Vec::new();
    let mut raw = csv::ByteRecord::new();
    let mut starts: Vec<usize> = Vec::new();
    let bytes = text.as_bytes();
    // csv's own line counter lags behind blank lines: count newlines ourselves.
    let (mut counted_to, mut newlines) = (0usize, 0u64);
    loop {
        let mut start_byte = reader.position().byte() as usize;
        while start_byte < bytes.len() && matches!(bytes[start_byte], b'\r' | b'\n') {
            start_byte += 1;
        }
        newlines += bytes[counted_to..start_byte.max(counted_to)]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        counted_to = counted_to.max(start_byte);
        let start_line = newlines + 1;
        match reader.read_byte_record(&mut raw) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // csv only fails on I/O or UTF-8 here; report the line and go on.
                records.push(RawRecord {
                    line: start_line,
                    cells: Vec::new(),
                    problems: vec![LineProblem {
                        code: "malformed_line",
                        message: format!("ligne illisible : {e}"),
                        column: None,
                    }],
                });
                continue;
            }
        }
        let line = start_line;
        let mut problems = Vec::new();
        if raw.len() > limits.max_columns && header.is_some() {
            problems.push(LineProblem {
                code: "too_many_columns",
                message: format!(
                    "la ligne a {} colonnes (limite {}) : vérifiez les séparateurs de cette ligne",
                    raw.len(),
                    limits.max_columns
                ),
                column: None,
            });
            records.push(RawRecord {
                line,
                cells: Vec::new(),
                problems,
            });
            starts.push(start_byte);
            continue;
        }
        let mut cells: Vec<String> = raw
            .iter()
            .map(|c| unprotect(clean_cell(&String::from_utf8_lossy(c))))
            .collect();
        if cells.iter().all(String::is_empty) {
            continue; // blank line, or a line of separators only
        }
        for (i, raw_cell) in raw.iter().enumerate() {
            // Never more characters than bytes: most cells need no count.
            let chars = if raw_cell.len() > limits.max_cell_chars {
                String::from_utf8_lossy(raw_cell).chars().count()
            } else {
                0
            };
            if chars > limits.max_cell_chars {
                problems.push(LineProblem {
                    code: "cell_too_long",
                    message: format!(
                        "cellule de {chars} caractères (limite {}) : raccourcissez-la ; un guillemet non fermé peut aussi en être la cause",
                        limits.max_cell_chars
                    ),
                    column: Some(i),
                });
                cells[i] = cells[i].chars().take(limits.max_cell_chars).collect();
            }
            if raw_cell.contains(&b'\n') && raw_cell.contains(&separator) {
                problems.push(LineProblem {
                    code: "unbalanced_quote",
                    message: format!(
                        "un guillemet ouvert à la ligne {line} englobe plusieurs lignes : fermez-le ou retirez-le"
                    ),
                    column: Some(i),
                });
            }
        }
        if header.is_none() && has_header {
            while cells.last().is_some_and(String::is_empty) {
                cells.pop();
            }
            if cells.len() > limits.max_columns {
                return Err(FileError::TooManyColumns {
                    columns: cells.len(),
                    limit: limits.max_columns,
                });
            }
            header = Some(cells);
            continue;
        }
        if records.len() >= limits.max_rows {
            let remaining =
                1 + std::iter::from_fn(|| reader.read_byte_record(&mut raw).ok().filter(|&more| more)).count();
            return Err(FileError::TooManyRows {
                rows: records.len() + remaining,
                limit: limits.max_rows,
            });
        }
        starts.push(start_byte);
        records.push(RawRecord { line, cells, problems });
    }

    // A quote opened on the last record and never closed swallows the file's end.
    if let (Some(last), Some(&start)) = (records.last_mut(), starts.last()) {
        let tail = &text.as_bytes()[start.min(text.len())..];
        if tail.iter().filter(|&&b| b == b'"').count() % 2 == 1
            && !last.problems.iter().any(|p| p.code == "unbalanced_quote")
        {
            last.problems.push(LineProblem {
                code: "unbalanced_quote",
                message: format!(
                    "guillemet ouvert à la ligne {} et jamais refermé : fermez-le ou retirez-le",
                    last.line
                ),
                column: None,
            });
        }
    }

    let column_count = match &header {
        Some(h) => h.len(),
        None => records.iter().map(|r| trimmed_len(&r.cells)).max().unwrap_or(0),
    };
    if records.is_empty() {
        return Err(FileError::NoDataRows {
            detail: if header.is_some() {
                " (seulement l'en-tête)"
            } else {
                ""
            },
        });
    }
    if header.is_none() && column_count > limits.max_columns {
        return Err(FileError::TooManyColumns {
            columns: column_count,
            limit: limits.max_columns,
        });
    }
    for record in &mut records {
        let used = trimmed_len(&record.cells);
        if used > column_count && record.problems.is_empty() {
            record.problems.push(LineProblem {
                code: "too_many_columns",
                message: format!(
                    "la ligne a {used} colonnes remplies alors que l'en-tête en a {column_count} : une valeur contient sans doute le séparateur, mettez-la entre guillemets"
                ),
                column: None,
            });
        }
        record.cells.resize(column_count, String::new());
    }
    Ok(ParsedFile {
        separator,
        detected_separator,
        header,
        column_count,
        records,
    })
}

impl ParsedFile {
    /// Replaces the cells of edited lines (step 3's "Éditer"): the edited line
    /// is then checked again like any other, its reading problems forgotten.
    pub fn apply_edits(&mut self, edits: &std::collections::BTreeMap<u64, Vec<String>>) {
        for record in &mut self.records {
            if let Some(cells) = edits.get(&record.line) {
                record.cells = cells.iter().map(|c| unprotect(clean_cell(c))).collect();
                record.cells.resize(self.column_count, String::new());
                record.problems.clear();
            }
        }
    }
}

/// Number of cells up to the last non-empty one (Excel pads rows with `;;;`).
fn trimmed_len(cells: &[String]) -> usize {
    cells.iter().rposition(|c| !c.is_empty()).map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<ParsedFile, FileError> {
        parse(text, None, true, &Limits::default())
    }

    #[test]
    fn detects_separators() {
        assert_eq!(detect_separator("a;b;c\n1;2;3\n"), b';');
        assert_eq!(detect_separator("a,b,c\n1,2,3\n"), b',');
        assert_eq!(detect_separator("a\tb\tc\n1\t2\t3\n"), b'\t');
        assert_eq!(detect_separator("a|b\n1|2\n"), b'|');
        assert_eq!(detect_separator("\"Dupont, Jean\";b\nx;y\n"), b';');
        assert_eq!(detect_separator("seul\n"), b';');
    }

    #[test]
    fn excel_artefacts() {
        let text = "Nom;Prénom;CP;;;\r\n\r\n  DUPONT\u{a0};\"Jean; dit \"\"Jeannot\"\"\";'06000;;;\r\n;;;;;\r\nMARTIN;\"Anne\nMarie\";75001\r\n";
        let f = p(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.header, Some(vec!["Nom".into(), "Prénom".into(), "CP".into()]));
        assert_eq!(f.records.len(), 2);
        assert_eq!(f.records[0].cells, vec!["DUPONT", "Jean; dit \"Jeannot\"", "06000"]);
        assert_eq!(f.records[0].line, 3);
        assert_eq!(f.records[1].cells, vec!["MARTIN", "Anne Marie", "75001"]);
        assert_eq!(f.records[1].line, 5);
        assert!(f.records.iter().all(|r| r.problems.is_empty()));
    }

    #[test]
    fn shifted_line_is_a_problem_not_a_crash() {
        let f = p("Nom;Prénom\nDUPONT;Jean;en trop\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.records[0].problems[0].code, "too_many_columns");
    }

    #[test]
    fn unbalanced_quote_is_reported_on_its_line() {
        let f = p("Nom;Prénom\nDUPONT;\"Jean\nMARTIN;Anne\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.records.len(), 1);
        assert_eq!(f.records[0].line, 2);
        assert_eq!(f.records[0].problems[0].code, "unbalanced_quote");
    }

    #[test]
    fn header_alone_and_limits() {
        assert_eq!(
            p("Nom;Prénom\n"),
            Err(FileError::NoDataRows {
                detail: " (seulement l'en-tête)"
            })
        );
        let limits = Limits {
            max_rows: 2,
            ..Limits::default()
        };
        assert_eq!(
            parse("N;P\na;b\nc;d\ne;f\ng;h\n", None, true, &limits),
            Err(FileError::TooManyRows { rows: 4, limit: 2 })
        );
        let long = format!("Nom;Prénom\n{};Jean\n", "x".repeat(600));
        let f = p(&long).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.records[0].problems[0].code, "cell_too_long");
        assert_eq!(f.records[0].problems[0].column, Some(0));
        let wide = format!("Nom;Prénom\n{}\n", "a;".repeat(5000));
        let f = p(&wide).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.records[0].problems[0].code, "too_many_columns");
    }

    #[test]
    fn no_header_counts_columns() {
        let f = parse("Monsieur;PLATON;Francis\n", None, false, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.header, None);
        assert_eq!(f.column_count, 3);
        assert_eq!(f.records[0].line, 1);
    }
}
