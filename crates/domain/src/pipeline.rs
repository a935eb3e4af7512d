//! The pure stages strung together, and the report every door prints.

use crate::decode::{decode, Decoded, EncodingChoice, FileError, Limits};
use crate::mapping::{auto_map, Mapping, MappingError, Override};
use crate::parse::{parse, ParsedFile};
use crate::plan::Plan;
use crate::profile::Profile;
use crate::vocabulary::Channel;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOptions {
    pub encoding: EncodingChoice,
    /// `None`: detect.
    pub separator: Option<u8>,
    pub has_header: bool,
    pub limits: Limits,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            encoding: EncodingChoice::Auto,
            separator: None,
            has_header: true,
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
}

/// Steps 1–2: the file read, split and mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFile {
    pub encoding: &'static str,
    pub encoding_detected: bool,
    pub decode_notices: Vec<String>,
    pub parsed: ParsedFile,
    pub mapping: Mapping,
}

pub fn read(
    bytes: &[u8],
    options: &FileOptions,
    profile: Profile,
    overrides: &[Override],
    establishments_from_file: bool,
) -> Result<ReadFile, ReadError> {
    let Decoded {
        text,
        encoding,
        detected,
        notices,
    } = decode(bytes, options.encoding, &options.limits)?;
    let parsed = parse(&text, options.separator, options.has_header, &options.limits)?;
    let mut mapping = auto_map(parsed.header.as_deref(), parsed.column_count, profile);
    mapping.apply_overrides(overrides)?;
    if let Err(missing) = mapping.check(establishments_from_file) {
        // A separator that splits nothing: say which one would, rather than
        // listing every field as missing.
        return Err(match options.separator {
            Some(chosen) if parsed.column_count == 1 && parsed.detected_separator != chosen => {
                ReadError::File(FileError::WrongSeparator {
                    chosen,
                    detected: parsed.detected_separator,
                })
            }
            _ => ReadError::Mapping(missing),
        });
    }
    Ok(ReadFile {
        encoding,
        encoding_detected: detected,
        decode_notices: notices,
        parsed,
        mapping,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Imported,
    DryRun,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConflictDetail {
    pub line: u64,
    pub column: Option<String>,
    pub field: Option<String>,
    pub code: String,
    pub message: String,
}

/// The one JSON object of `--report json` (and the API's answer). The field
/// comments are the API's descriptions (OpenAPI, derived): French, as its readers'.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(description = "Le compte rendu d'une vérification ou d'un import.")
)]
pub struct Report {
    pub status: Status,
    pub rows: usize,
    pub valid: usize,
    pub conflicts: usize,
    pub created: usize,
    pub updated: usize,
    /// Parmi les mis à jour : comptes d'autres établissements rattachés (absent si 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub attached: usize,
    pub unchanged: usize,
    pub merged: usize,
    pub deactivated: usize,
    pub skipped: usize,
    pub conflict_details: Vec<ConflictDetail>,
    /// Pourquoi l'import est refusé, quand il l'est.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What every import counts, whatever its source (a CSV file, the AAF feed):
/// the history line and the notice read it from either report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Lines of the file, or requests of the feed.
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub merged: usize,
    pub deactivated: usize,
    pub skipped: usize,
}

impl Report {
    pub fn tally(&self) -> Tally {
        Tally {
            rows: self.rows,
            created: self.created,
            updated: self.updated,
            unchanged: self.unchanged,
            merged: self.merged,
            deactivated: self.deactivated,
            skipped: self.skipped,
        }
    }

    /// The report, its refusal in the CLI's words.
    pub fn from_plan(plan: &Plan, status: Status) -> Report {
        Report::from_plan_for(plan, status, Channel::Cli)
    }

    /// The report, its refusal in the words of the door it came through.
    pub fn from_plan_for(plan: &Plan, status: Status, door: Channel) -> Report {
        Report {
            status,
            rows: plan.rows,
            valid: plan.valid_rows(),
            conflicts: plan.conflict_lines.len(),
            created: plan.creates.len(),
            updated: plan.updates.len(),
            attached: plan.updates.iter().filter(|u| !u.shared_with.is_empty()).count(),
            unchanged: plan.unchanged.len(),
            merged: plan.merges.len(),
            deactivated: plan.deactivations.len(),
            skipped: if status == Status::Rejected { 0 } else { plan.skipped() },
            conflict_details: plan
                .conflicts
                .iter()
                .map(|c| ConflictDetail {
                    line: c.line,
                    column: c.column.clone(),
                    field: c.field.map(|f| f.id().to_string()),
                    code: c.code.to_string(),
                    message: c.message.clone(),
                })
                .collect(),
            rejection: plan.rejection.as_ref().map(|r| r.message_for(door)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_separator_that_splits_nothing_names_the_one_that_would() {
        let file = "Civilité,Nom,Prénom,Matière\r\nM.,PLATON,Francis,Philosophie\r\n".as_bytes();
        let options = FileOptions {
            separator: Some(b';'),
            ..FileOptions::default()
        };
        let error = read(file, &options, Profile::Enseignant, &[], false).unwrap_err();
        assert_eq!(
            error,
            ReadError::File(FileError::WrongSeparator {
                chosen: b';',
                detected: b','
            })
        );
        assert!(error.to_string().contains("semble séparé par « , »"), "{error}");
        // Detected, it reads.
        let options = FileOptions::default();
        assert!(read(file, &options, Profile::Enseignant, &[], false).is_ok());
    }
}
