//! The national academic feed (AAF, `ficAlimMENESR` XML, SPEC §10): bytes →
//! requests → records, then ([`plan`]) records + directory snapshot → what to
//! write. Pure: the store reads the files and applies the plan.
//!
//! # Why a pull parser over the whole input
//! A Complet feed of an academy is hundreds of megabytes. The reader walks the
//! XML event by event (quick-xml, no tree) and keeps one request at a time; the
//! bytes are decoded per event with the encoding the XML declaration names
//! (usually `ISO-8859-15`), so the file is never copied whole into UTF-8.

pub mod plan;

use crate::establishment::Uai;
use crate::keys::SyncKey;
use crate::text::clean_cell;
use crate::values::{parse_birth_date, parse_name, Civility, Email, Phone, PostalCode};
use chrono::NaiveDate;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::Serialize;

/// What the file name says about a feed (`ENT_<UAI>_Complet_<date>_PersEducNat_0000.xml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileInfo {
    /// A "Complet" feed holds everything: its establishments' AAF accounts it
    /// no longer contains are deactivated.
    pub complet: bool,
    pub kind: Option<FeedKind>,
    /// The establishment the file is cut for, when its name carries one.
    pub uai: Option<Uai>,
}

/// The kinds of files of the feed, in the order they must be processed
/// (structures first, then subjects, pupils, parents, staff; SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum FeedKind {
    EtabEducNat,
    MatiereEducNat,
    MefEducNat,
    Eleve,
    PersRelEleve,
    PersEducNat,
}

impl FeedKind {
    pub fn id(self) -> &'static str {
        match self {
            FeedKind::EtabEducNat => "EtabEducNat",
            FeedKind::MatiereEducNat => "MatiereEducNat",
            FeedKind::MefEducNat => "MefEducNat",
            FeedKind::Eleve => "Eleve",
            FeedKind::PersRelEleve => "PersRelEleve",
            FeedKind::PersEducNat => "PersEducNat",
        }
    }

    fn parse(s: &str) -> Option<FeedKind> {
        [
            FeedKind::EtabEducNat,
            FeedKind::MatiereEducNat,
            FeedKind::MefEducNat,
            FeedKind::Eleve,
            FeedKind::PersRelEleve,
            FeedKind::PersEducNat,
        ]
        .into_iter()
        .find(|k| k.id().eq_ignore_ascii_case(s))
    }
}

/// Reads the parts of a feed's file name, separated by `_`.
pub fn file_info(name: &str) -> FileInfo {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let stem = base
        .strip_suffix(".xml")
        .or_else(|| base.strip_suffix(".XML"))
        .unwrap_or(base);
    let parts: Vec<&str> = stem.split('_').collect();
    FileInfo {
        complet: parts.iter().any(|p| p.eq_ignore_ascii_case("Complet")),
        kind: parts.iter().find_map(|p| FeedKind::parse(p)),
        uai: parts.iter().find_map(|p| Uai::parse(p).ok()),
    }
}

/// Why a feed file cannot be read at all (a bad request only skips itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error(
        "XML illisible à l'octet {position} : {message} ; le fichier est peut-être tronqué, redemandez-le à l'académie"
    )]
    Xml { position: u64, message: String },
    #[error("ce fichier n'est pas un flux AAF : l'élément racine est <{0}> au lieu de <ficAlimMENESR>")]
    NotAFeed(String),
    #[error("ce fichier ne contient pas d'élément <ficAlimMENESR> : vérifiez qu'il s'agit bien d'un flux AAF")]
    Empty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Add,
    Modify,
    Delete,
}

impl RequestKind {
    fn from_element(name: &[u8]) -> Option<RequestKind> {
        match name {
            b"addRequest" => Some(RequestKind::Add),
            b"modifyRequest" => Some(RequestKind::Modify),
            b"deleteRequest" => Some(RequestKind::Delete),
            _ => None,
        }
    }
}

/// The operation of one `<modification>` of a modifyRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModOp {
    Replace,
    Add,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Modification {
    pub name: String,
    pub operation: ModOp,
    pub values: Vec<String>,
}

/// One request of the feed as written, values cleaned of stray spaces.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RawRequest {
    /// 1-based position of the request in its file, for messages.
    pub index: usize,
    pub kind: Option<RequestKind>,
    /// `categoriePersonne` or `categorieStructure` value.
    pub category: Option<String>,
    pub structure: bool,
    pub identifier: Option<String>,
    /// `<attributes>` of an addRequest, in file order.
    pub attributes: Vec<(String, Vec<String>)>,
    pub modifications: Vec<Modification>,
    /// The first attribute whose value was over [`MAX_VALUE_CHARS`]: the
    /// request is refused, as a CSV line with an over-long cell is.
    pub oversized: Option<String>,
}

/// The longest value an AAF attribute may have, as for a CSV cell: longer ones
/// are not kept in memory, and their request is refused.
pub const MAX_VALUE_CHARS: usize = crate::decode::DEFAULT_MAX_CELL_CHARS;

impl RawRequest {
    pub fn attribute(&self, name: &str) -> Option<&[String]> {
        self.attributes
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// Where the reader is inside a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    None,
    Operational,
    Identifier,
    Attributes,
    Modifications,
}

fn xml_error<R>(reader: &Reader<R>, e: impl std::fmt::Display) -> FeedError {
    FeedError::Xml {
        position: reader.error_position(),
        message: e.to_string(),
    }
}

fn name_attribute<R>(reader: &Reader<R>, e: &BytesStart<'_>, wanted: &[u8]) -> Result<Option<String>, FeedError> {
    for attr in e.attributes() {
        let attr = attr.map_err(|err| xml_error(reader, err))?;
        if attr.key.local_name().as_ref() == wanted {
            let value = attr
                .decoded_and_normalized_value(quick_xml::XmlVersion::Implicit1_0, reader.decoder())
                .map_err(|err| xml_error(reader, err))?;
            return Ok(Some(value.trim().to_string()));
        }
    }
    Ok(None)
}

/// What reading a feed file found besides its requests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadSummary {
    pub requests: usize,
    /// Things the admin should know (an encoding declaration that lied).
    pub notices: Vec<String>,
}

/// The `encoding="…"` of the XML declaration: its value and byte range.
fn declared_encoding(bytes: &[u8]) -> Option<(String, std::ops::Range<usize>)> {
    let head = &bytes[..bytes.len().min(256)];
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = &head[..end];
    let at = decl.windows(8).position(|w| w == b"encoding")?;
    let rest = &decl[at + 8..];
    let quote_at = rest.iter().position(|b| *b == b'"' || *b == b'\'')?;
    let quote = rest[quote_at];
    let value_start = at + 8 + quote_at + 1;
    let len = decl[value_start..].iter().position(|b| *b == quote)?;
    let value = String::from_utf8_lossy(&decl[value_start..value_start + len]).into_owned();
    Some((value, value_start..value_start + len))
}

/// Feeds declared ISO-8859-15 but written in UTF-8 happen (a file re-saved by
/// an editor): read as declared, every accent would silently become "Ã©". Text
/// in a single-byte encoding with accents is almost never valid UTF-8, so a
/// file that is valid UTF-8 with non-ASCII bytes is read as UTF-8, and said so.
///
/// `head` is the start of the file (its first 256 bytes at least, when it
/// has them); `utf8_with_accents` says whether the whole file is valid UTF-8
/// with non-ASCII bytes ([`Utf8Scan`] finds it out in one pass). Returns the
/// bytes to read instead of `head[..replaces]`, and the notice.
pub fn utf8_declaration_fix(head: &[u8], utf8_with_accents: bool) -> Option<EncodingFix> {
    let (declared, range) = declared_encoding(head)?;
    let single_byte = encoding_rs::Encoding::for_label(declared.as_bytes())
        .is_some_and(|e| e != encoding_rs::UTF_8 && e.is_single_byte());
    if !single_byte || !utf8_with_accents {
        return None;
    }
    let mut fixed = Vec::with_capacity(range.end);
    fixed.extend_from_slice(&head[..range.start]);
    fixed.extend_from_slice(b"UTF-8");
    Some(EncodingFix {
        head: fixed,
        replaces: range.end,
        notice: format!(
            "le fichier se déclare en {declared} mais il est écrit en UTF-8 : il a été lu en UTF-8 pour ne pas déformer les accents"
        ),
    })
}

/// What [`utf8_declaration_fix`] decided: read `head` instead of the file's
/// first `replaces` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodingFix {
    pub head: Vec<u8>,
    pub replaces: usize,
    pub notice: String,
}

/// Whether a file read in pieces is valid UTF-8 with non-ASCII bytes,
/// without holding it: a character cut between two pieces is carried over.
#[derive(Debug, Clone, Default)]
pub struct Utf8Scan {
    carried: Vec<u8>,
    invalid: bool,
    non_ascii: bool,
}

impl Utf8Scan {
    pub fn feed(&mut self, piece: &[u8]) {
        if self.invalid {
            return;
        }
        let joined;
        let bytes = if self.carried.is_empty() {
            piece
        } else {
            joined = [std::mem::take(&mut self.carried).as_slice(), piece].concat();
            joined.as_slice()
        };
        self.non_ascii |= !bytes.is_ascii();
        match std::str::from_utf8(bytes) {
            Ok(_) => {}
            // Cut inside a character: the rest comes with the next piece.
            Err(e) if e.error_len().is_none() => self.carried = bytes[e.valid_up_to()..].to_vec(),
            Err(_) => self.invalid = true,
        }
    }

    pub fn utf8_with_accents(&self) -> bool {
        !self.invalid && self.carried.is_empty() && self.non_ascii
    }
}

fn effective_bytes(bytes: &[u8]) -> (std::borrow::Cow<'_, [u8]>, Option<String>) {
    let utf8_with_accents = !bytes.is_ascii() && std::str::from_utf8(bytes).is_ok();
    match utf8_declaration_fix(&bytes[..bytes.len().min(256)], utf8_with_accents) {
        None => (std::borrow::Cow::Borrowed(bytes), None),
        Some(fix) => {
            let mut fixed = fix.head;
            fixed.extend_from_slice(&bytes[fix.replaces..]);
            (std::borrow::Cow::Owned(fixed), Some(fix.notice))
        }
    }
}

/// Keeps a value being read to [`MAX_VALUE_CHARS`] characters, so that a
/// 20 MiB `sn` costs no memory; true when something was cut.
fn cap_value(value: &mut String) -> bool {
    // Cheap test first: a character is at most 4 bytes.
    if value.len() <= MAX_VALUE_CHARS {
        return false;
    }
    match value.char_indices().nth(MAX_VALUE_CHARS) {
        Some((cut, _)) => {
            value.truncate(cut);
            true
        }
        None => false,
    }
}

/// Calls `on_request` for each add/modify/delete request of a feed, in order,
/// holding only that request in memory.
pub fn read_requests<E>(
    bytes: &[u8],
    on_request: impl FnMut(RawRequest) -> Result<(), E>,
) -> Result<Result<ReadSummary, E>, FeedError> {
    let (bytes, encoding_notice) = effective_bytes(bytes);
    read_requests_from(bytes.as_ref(), encoding_notice, on_request)
}

/// [`read_requests`] on a stream (a file read piece by piece, so that a
/// feed's size never shows in memory); `encoding_notice` is what
/// [`utf8_declaration_fix`] said of it, when it had to fix the declaration.
pub fn read_requests_from<R: std::io::BufRead, E>(
    source: R,
    encoding_notice: Option<String>,
    mut on_request: impl FnMut(RawRequest) -> Result<(), E>,
) -> Result<Result<ReadSummary, E>, FeedError> {
    let mut reader = Reader::from_reader(source);
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut count = 0usize;
    let mut current: Option<RawRequest> = None;
    let mut section = Section::None;
    // Name of the open <attr> or <modification>, and its operation.
    let mut open_attr: Option<(String, Option<ModOp>)> = None;
    let mut values: Vec<String> = Vec::new();
    let mut text: Option<String> = None;
    // Characters dropped from the value being read, past the cap.
    let mut text_overflow = false;

    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| xml_error(&reader, e))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = e.local_name();
                let name = local.as_ref();
                if depth == 0 {
                    if name != b"ficAlimMENESR" {
                        return Err(FeedError::NotAFeed(String::from_utf8_lossy(name).into_owned()));
                    }
                    seen_root = true;
                } else if depth == 1 {
                    if let Some(kind) = RequestKind::from_element(name) {
                        count += 1;
                        current = Some(RawRequest {
                            index: count,
                            kind: Some(kind),
                            ..RawRequest::default()
                        });
                        section = Section::None;
                    }
                } else if let Some(request) = current.as_mut() {
                    match name {
                        b"operationalAttributes" => section = Section::Operational,
                        b"identifier" => section = Section::Identifier,
                        b"attributes" => section = Section::Attributes,
                        b"modifications" => section = Section::Modifications,
                        b"attr" => {
                            let attr_name = name_attribute(&reader, e, b"name")?.unwrap_or_default();
                            open_attr = Some((attr_name, None));
                            values.clear();
                        }
                        b"modification" => {
                            let attr_name = name_attribute(&reader, e, b"name")?.unwrap_or_default();
                            let op = match name_attribute(&reader, e, b"operation")?
                                .unwrap_or_default()
                                .to_ascii_lowercase()
                                .as_str()
                            {
                                "add" => ModOp::Add,
                                "delete" => ModOp::Delete,
                                _ => ModOp::Replace,
                            };
                            open_attr = Some((attr_name, Some(op)));
                            values.clear();
                        }
                        b"value" | b"id" => {
                            if empty {
                                if name == b"value" {
                                    values.push(String::new());
                                }
                            } else {
                                text = Some(String::new());
                                text_overflow = false;
                            }
                        }
                        _ => {}
                    }
                    if empty && (name == b"attr" || name == b"modification") {
                        close_attr(request, section, &mut open_attr, &mut values);
                    }
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::Text(ref t) => {
                if let Some(acc) = text.as_mut() {
                    acc.push_str(&t.xml10_content().map_err(|e| xml_error(&reader, e))?);
                    text_overflow |= cap_value(acc);
                }
            }
            Event::CData(ref t) => {
                if let Some(acc) = text.as_mut() {
                    acc.push_str(&t.decode().map_err(|e| xml_error(&reader, e))?);
                    text_overflow |= cap_value(acc);
                }
            }
            Event::GeneralRef(ref r) => {
                if let Some(acc) = text.as_mut() {
                    if let Some(c) = r.resolve_char_ref().map_err(|e| xml_error(&reader, e))? {
                        acc.push(c);
                    } else {
                        let entity = r.decode().map_err(|e| xml_error(&reader, e))?;
                        match quick_xml::escape::resolve_predefined_entity(&entity) {
                            Some(s) => acc.push_str(s),
                            None => {
                                return Err(xml_error(&reader, format!("entité &{entity}; inconnue")));
                            }
                        }
                    }
                }
            }
            Event::End(ref e) => {
                depth = depth.saturating_sub(1);
                let local = e.local_name();
                let name = local.as_ref();
                if depth == 1 {
                    if let Some(request) = current.take() {
                        if let Err(e) = on_request(request) {
                            return Ok(Err(e));
                        }
                    }
                } else if let Some(request) = current.as_mut() {
                    match name {
                        b"value" => {
                            if let Some(v) = text.take() {
                                if (text_overflow || v.chars().count() > MAX_VALUE_CHARS) && request.oversized.is_none()
                                {
                                    request.oversized =
                                        Some(open_attr.as_ref().map(|(n, _)| n.clone()).unwrap_or_default());
                                }
                                values.push(clean_cell(&v));
                            }
                        }
                        b"id" => {
                            if let Some(v) = text.take() {
                                if section == Section::Identifier {
                                    request.identifier = Some(clean_cell(&v));
                                }
                            }
                        }
                        b"attr" | b"modification" => close_attr(request, section, &mut open_attr, &mut values),
                        b"operationalAttributes" | b"identifier" | b"attributes" | b"modifications" => {
                            section = Section::None;
                        }
                        _ => {}
                    }
                }
            }
            Event::Eof => {
                if depth > 0 {
                    // quick-xml accepts a document cut in the middle: a truncated
                    // download must not look like a short feed.
                    return Err(FeedError::Xml {
                        position: reader.buffer_position(),
                        message: "fin de fichier avant la fermeture des éléments ouverts".into(),
                    });
                }
                break;
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err(FeedError::Empty);
    }
    Ok(Ok(ReadSummary {
        requests: count,
        notices: encoding_notice.into_iter().collect(),
    }))
}

fn close_attr(
    request: &mut RawRequest,
    section: Section,
    open_attr: &mut Option<(String, Option<ModOp>)>,
    values: &mut Vec<String>,
) {
    let Some((name, op)) = open_attr.take() else { return };
    let values = std::mem::take(values);
    match (section, op) {
        (Section::Operational, _)
            if name.eq_ignore_ascii_case("categoriePersonne") || name.eq_ignore_ascii_case("categorieStructure") =>
        {
            request.structure = name.eq_ignore_ascii_case("categorieStructure");
            request.category = values.into_iter().find(|v| !v.is_empty());
        }
        (Section::Modifications, Some(operation)) => request.modifications.push(Modification {
            name,
            operation,
            values,
        }),
        (Section::Attributes, _) => request.attributes.push((name, values)),
        _ => {}
    }
}

/// Every request of a feed, collected (tests and small files).
pub fn parse(bytes: &[u8]) -> Result<Vec<RawRequest>, FeedError> {
    let mut out = Vec::new();
    let read = read_requests(bytes, |r| {
        out.push(r);
        Ok::<(), std::convert::Infallible>(())
    })?;
    match read {
        Ok(_) => Ok(out),
        Err(never) => match never {},
    }
}

/// How persons name structures. In the feeds academies send, the first `$`
/// field of `ENTPersonFonctions`, `ENTPersonStructRattach`, `ENTEleveClasses`…
/// is the structure's `ENTStructureJointure` (`4931`), which the run's
/// `EtabEducNat` file, or an earlier run's, maps to its UAI; some feeds write
/// the UAI itself, which works too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StructureIndex {
    by_jointure: std::collections::HashMap<String, Uai>,
}

impl StructureIndex {
    pub fn insert(&mut self, jointure: &str, uai: Uai) {
        self.by_jointure.insert(jointure.trim().to_string(), uai);
    }

    pub fn len(&self) -> usize {
        self.by_jointure.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_jointure.is_empty()
    }

    /// The UAI of a structure reference, or why there is none.
    pub fn resolve(&self, reference: &str) -> Result<Uai, String> {
        let reference = reference.trim();
        if let Some(uai) = self.by_jointure.get(reference) {
            return Ok(uai.clone());
        }
        Uai::parse(reference).map_err(|_| {
            format!(
                "structure « {reference} » inconnue : ce n'est ni la jointure (ENTStructureJointure) d'une structure du flux ou de l'annuaire, ni un code UAI ; joignez le fichier EtabEducNat de cet établissement au flux"
            )
        })
    }
}

/// One `ENTPersonFonctions` value: `<structure>$<code>$<libellé>[$<code discipline>$<discipline>]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Function {
    pub uai: Uai,
    pub code: String,
    pub label: String,
    pub discipline: Option<String>,
}

/// A function value left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionLeftOut {
    pub message: String,
    /// `(code, discipline)` when only the structure is unknown: the value
    /// still says what the person does.
    pub elsewhere: Option<(String, Option<String>)>,
}

impl Function {
    pub fn parse(raw: &str, structures: &StructureIndex) -> Result<Function, FunctionLeftOut> {
        let parts: Vec<&str> = raw.split('$').map(str::trim).collect();
        let unreadable = || FunctionLeftOut {
            message: format!("fonction « {raw} » illisible (attendu STRUCTURE$CODE$LIBELLÉ) : ignorée"),
            elsewhere: None,
        };
        let structure = parts.first().filter(|s| !s.is_empty()).ok_or_else(unreadable)?;
        let code = parts
            .get(1)
            .filter(|c| !c.is_empty())
            .ok_or_else(unreadable)?
            .to_ascii_uppercase();
        let discipline = parts.get(4).filter(|d| !d.is_empty()).map(|d| d.to_string());
        let uai = match structures.resolve(structure) {
            Ok(uai) => uai,
            Err(why) => {
                return Err(FunctionLeftOut {
                    message: format!("fonction « {raw} » ignorée : {why}"),
                    elsewhere: Some((code, discipline)),
                })
            }
        };
        Ok(Function {
            uai,
            code,
            label: parts.get(2).map(|s| s.to_string()).unwrap_or_default(),
            discipline,
        })
    }

    pub fn is_teaching(&self) -> bool {
        self.code == "ENS"
    }

    /// `-` ("SANS OBJET"): a place in the structure without a function.
    pub fn has_code(&self) -> bool {
        self.code != "-"
    }
}

/// How a request changes a person's functions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", content = "functions", rename_all = "lowercase")]
pub enum FunctionsChange {
    /// The complete list (addRequest, or `replace`).
    Replace(Vec<Function>),
    Add(Vec<Function>),
    Remove(Vec<Function>),
}

/// A structure (EtabEducNat) request. `None` fields are absent from the
/// request and leave the stored value as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StructureRecord {
    pub request: usize,
    pub kind: RequestKind,
    pub uai: Uai,
    /// `ENTStructureJointure`: how the feed's persons name this structure.
    pub jointure: Option<String>,
    /// `ENTStructureNomCourant`, made readable ([`readable_structure_name`]).
    pub name: Option<String>,
    /// `ENTStructureTypeStruct` (`COLLEGE`, `ECOLE ELEMENTAIRE PUBLIQUE`…).
    pub structure_type: Option<String>,
    /// `l`: the city.
    pub city: Option<String>,
    /// `ENTServAcAcademie`.
    pub academy: Option<String>,
}

/// `ENTStructureNomCourant` separates its parts with `$` (`CLG$LES
/// CLOSEAUX$RUNGIS`, `E.E.PU$$AUDEUX`): people read " - " between the
/// non-empty parts, as entcore writes them.
pub fn readable_structure_name(raw: &str) -> String {
    raw.split('$')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" - ")
}

/// The file a person comes from, which decides their profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonKind {
    /// `PersEducNat`: teachers and staff.
    Staff,
    /// `Eleve`.
    Pupil,
    /// `PersRelEleve`: the persons in charge of pupils.
    Parent,
}

impl PersonKind {
    fn of_category(category: &str) -> Option<PersonKind> {
        [
            ("PersEducNat", PersonKind::Staff),
            ("Eleve", PersonKind::Pupil),
            ("PersRelEleve", PersonKind::Parent),
        ]
        .into_iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(category))
        .map(|(_, k)| k)
    }
}

/// A person linked to the record's person: for a pupil, a person in charge
/// (`ENTElevePersRelEleve`: `jointure$lien$financier$légal$contact$paiement`);
/// for a parent, a child (`ENTAuxPersRelEleveEleve`: the pupil's jointure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Relative {
    pub key: SyncKey,
    /// The code of the family link (10 mother, 20 father, 50 guardian…), when known.
    pub relation: Option<String>,
    pub legal_guardian: bool,
    pub financial: bool,
    pub contact: bool,
}

impl Relative {
    fn parse(raw: &str) -> Option<Relative> {
        let parts: Vec<&str> = raw.split('$').map(str::trim).collect();
        let flag = |i: usize| parts.get(i).is_some_and(|v| *v == "1");
        Some(Relative {
            key: person_key(parts.first()?)?,
            relation: parts.get(1).filter(|r| !r.is_empty()).map(|r| r.to_string()),
            financial: flag(2),
            legal_guardian: flag(3),
            contact: flag(4),
        })
    }
}

/// A person request (`PersEducNat`, `Eleve`, `PersRelEleve`) in the
/// directory's terms. `None` fields are absent from the request and leave the
/// stored value as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonRecord {
    pub request: usize,
    pub kind: RequestKind,
    pub person: PersonKind,
    pub key: SyncKey,
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub civility: Option<Option<Civility>>,
    pub birth_date: Option<Option<NaiveDate>>,
    pub email: Option<Option<Email>>,
    pub functions: Option<FunctionsChange>,
    /// The functions of `functions` whose structure is unknown, as
    /// `(code, discipline)`: no membership comes from them, but they still
    /// say who the person is (a teacher of mathematics stays one when the
    /// feed lacks the structure where they teach).
    pub functions_elsewhere: Vec<(String, Option<String>)>,
    /// `ENTPersonStructRattach`: the administrative attachment.
    pub attached: Option<Vec<Uai>>,
    /// A pupil's national identifier (`ENTEleveINE`).
    pub ine: Option<Option<String>>,
    /// A pupil's level: `ENTEleveLibelleMEF`, else `ENTEleveNivFormation`.
    pub level: Option<Option<String>>,
    /// A pupil's classes (`ENTEleveClasses`, `structure$label`), or the
    /// classes a teacher teaches (`ENTAuxEnsClasses`).
    pub classes: Option<Vec<(Uai, String)>>,
    /// A pupil's teaching groups (`ENTEleveGroupes`), or a teacher's
    /// (`ENTAuxEnsGroupes`).
    pub groups: Option<Vec<(Uai, String)>>,
    /// A pupil's persons in charge, or a parent's children.
    pub relatives: Option<Vec<Relative>>,
    pub landline: Option<Option<Phone>>,
    pub mobile: Option<Option<Phone>>,
    pub address: Option<Option<String>>,
    pub postal_code: Option<Option<PostalCode>>,
    pub city: Option<Option<String>>,
    /// Values that could not be read and were left out.
    pub notices: Vec<String>,
}

impl PersonRecord {
    /// A request that says nothing yet about the person.
    pub fn new(request: usize, kind: RequestKind, person: PersonKind, key: SyncKey) -> PersonRecord {
        PersonRecord {
            request,
            kind,
            person,
            key,
            last_name: None,
            first_name: None,
            civility: None,
            birth_date: None,
            email: None,
            functions: None,
            functions_elsewhere: Vec::new(),
            attached: None,
            ine: None,
            level: None,
            classes: None,
            groups: None,
            relatives: None,
            landline: None,
            mobile: None,
            address: None,
            postal_code: None,
            city: None,
            notices: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Structure(StructureRecord),
    Person(Box<PersonRecord>),
    /// A request of a kind this directory does not import (subjects, MEF):
    /// counted, never an error.
    Unsupported {
        request: usize,
        category: String,
    },
}

/// A request that is skipped, with what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub file: String,
    pub request: usize,
    pub key: Option<String>,
    pub code: &'static str,
    pub message: String,
}

/// The sync key of an AAF person: `PERSON.<ENTPersonJointure>`.
pub fn person_key(jointure: &str) -> Option<SyncKey> {
    let j = jointure.trim();
    let j = j.strip_prefix("PERSON.").unwrap_or(j);
    (!j.is_empty() && j.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| SyncKey::from_stored(format!("PERSON.{j}")))
}

/// Reads one request into a record. `file` only labels the issues;
/// `structures` resolves the persons' structure references.
pub fn map_request(
    file: &str,
    raw: &RawRequest,
    today: NaiveDate,
    structures: &StructureIndex,
) -> Result<Record, Issue> {
    let issue = |key: Option<String>, code: &'static str, message: String| Issue {
        file: file.to_string(),
        request: raw.index,
        key,
        code,
        message,
    };
    let Some(kind) = raw.kind else {
        return Err(issue(None, "bad_request", "requête sans type".into()));
    };
    if let Some(attribute) = &raw.oversized {
        return Err(issue(
            raw.identifier.clone(),
            "value_too_long",
            format!("valeur de l'attribut {attribute} trop longue (plus de {MAX_VALUE_CHARS} caractères) : la requête est ignorée (signalez-le à l'académie)"),
        ));
    }
    let category = raw.category.clone().unwrap_or_default();
    let is_structure = raw.structure || category.eq_ignore_ascii_case("EtabEducNat");
    if is_structure {
        return map_structure(raw, kind, structures).map_err(|m| issue(raw.identifier.clone(), "bad_structure", m));
    }
    let Some(person) = PersonKind::of_category(&category) else {
        return Ok(Record::Unsupported {
            request: raw.index,
            category: if category.is_empty() { "?".into() } else { category },
        });
    };
    let jointure = single(raw, "ENTPersonJointure")
        .or(raw.identifier.clone())
        .unwrap_or_default();
    let Some(key) = person_key(&jointure) else {
        return Err(issue(
            None,
            "bad_jointure",
            format!("identifiant ENTPersonJointure « {jointure} » absent ou invalide : la personne est ignorée (signalez-le à l'académie)"),
        ));
    };
    let key_text = Some(key.as_str().to_string());
    let mut record = PersonRecord::new(raw.index, kind, person, key);
    if kind == RequestKind::Delete {
        return Ok(Record::Person(Box::new(record)));
    }
    // The attributes as (name, operation, values): an addRequest replaces.
    let changes: Vec<(&str, ModOp, &[String])> = match kind {
        RequestKind::Add => raw
            .attributes
            .iter()
            .map(|(n, v)| (n.as_str(), ModOp::Replace, v.as_slice()))
            .collect(),
        _ => raw
            .modifications
            .iter()
            .map(|m| (m.name.as_str(), m.operation, m.values.as_slice()))
            .collect(),
    };
    for (name, op, values) in changes {
        let first = values.iter().find(|v| !v.is_empty()).map(String::as_str);
        let cleared = op == ModOp::Delete || first.is_none();
        // The value an optional attribute sets: `None` when deleted or empty.
        let value = first.filter(|_| !cleared);
        // Second-degree files name people with the LDAP attributes (`sn`,
        // `givenName`…), first-degree files with `ENTPerson*` ones.
        match name {
            "sn" | "givenName" | "ENTPersonNom" | "ENTPersonPrenom" => {
                let last = matches!(name, "sn" | "ENTPersonNom");
                let what = if last { "nom" } else { "prénom" };
                let value = match first.map(|v| parse_name(v, what)) {
                    Some(Ok(v)) if op != ModOp::Delete => v,
                    Some(Err(e)) => return Err(issue(key_text, "bad_name", e.message)),
                    // An empty value in an addRequest may be the other
                    // degree's spelling: the check after the loop decides.
                    _ if kind == RequestKind::Add => continue,
                    _ => {
                        return Err(issue(
                            key_text,
                            "missing_name",
                            format!("{what} absent : la personne est ignorée (signalez-le à l'académie)"),
                        ))
                    }
                };
                if last {
                    record.last_name = Some(value);
                } else {
                    record.first_name = Some(value);
                }
            }
            "personalTitle" | "ENTPersonCivilite" => {
                record.civility = optional(value, Civility::parse, &mut record.notices).or(record.civility);
            }
            "ENTPersonDateNaissance" => {
                let parse = |v: &str| parse_birth_date(v, today);
                record.birth_date = optional(value, parse, &mut record.notices).or(record.birth_date);
            }
            "mail" | "ENTPersonMail" => {
                record.email = optional(value, Email::parse, &mut record.notices).or(record.email.take());
            }
            "ENTPersonFonctions" => {
                let mut functions = Vec::new();
                record.functions_elsewhere.clear();
                for v in values.iter().filter(|v| !v.is_empty()) {
                    match Function::parse(v, structures) {
                        Ok(f) => functions.push(f),
                        Err(left_out) => {
                            record.notices.push(left_out.message);
                            record.functions_elsewhere.extend(left_out.elsewhere);
                        }
                    }
                }
                record.functions = Some(match op {
                    ModOp::Replace => FunctionsChange::Replace(functions),
                    ModOp::Add => FunctionsChange::Add(functions),
                    ModOp::Delete => FunctionsChange::Remove(functions),
                });
            }
            "ENTEleveINE" => {
                record.ine = Some(value.map(str::to_string));
            }
            // The MEF label, or the level's wording when the label is absent.
            "ENTEleveLibelleMEF" if value.is_some() || record.level.is_none() => {
                record.level = Some(value.map(str::to_string));
            }
            "ENTEleveNivFormation" if record.level.as_ref().is_none_or(Option::is_none) => {
                record.level = Some(value.map(str::to_string));
            }
            // A pupil's classes and groups, and the ones a teacher teaches.
            "ENTEleveClasses" | "ENTEleveGroupes" | "ENTAuxEnsClasses" | "ENTAuxEnsGroupes" => {
                let mut labelled = Vec::new();
                for v in values.iter().filter(|v| !v.is_empty()) {
                    match v.split_once('$') {
                        Some((structure, label)) if !label.trim().is_empty() => match structures.resolve(structure) {
                            Ok(uai) => labelled.push((uai, label.trim().to_string())),
                            Err(why) => record.notices.push(format!("« {v} » ignoré : {why}")),
                        },
                        _ => record
                            .notices
                            .push(format!("« {v} » illisible (attendu STRUCTURE$LIBELLÉ) : ignoré")),
                    }
                }
                let labelled = Some(labelled).filter(|_| op != ModOp::Delete).unwrap_or_default();
                if name.ends_with("Classes") {
                    record.classes = Some(labelled);
                } else {
                    record.groups = Some(labelled);
                }
            }
            "ENTElevePersRelEleve" | "ENTAuxPersRelEleveEleve" => {
                let mut relatives = Vec::new();
                for v in values.iter().filter(|v| !v.is_empty()) {
                    match Relative::parse(v) {
                        // entcore's test pupil names themself as their person in charge.
                        Some(r) if r.key == record.key => record.notices.push(format!(
                            "lien « {v} » ignoré : une personne n'est pas sa propre personne en charge"
                        )),
                        Some(r) => relatives.push(r),
                        None => record.notices.push(format!("lien « {v} » illisible : ignoré")),
                    }
                }
                record.relatives = Some(if op == ModOp::Delete { Vec::new() } else { relatives });
            }
            "homePhone" | "mobile" => {
                let phone = |v: &str| Phone::parse(v).map(|(p, _)| p);
                let field = if name == "mobile" {
                    &mut record.mobile
                } else {
                    &mut record.landline
                };
                *field = optional(value, phone, &mut record.notices).or(field.take());
            }
            "ENTPersonAdresse" => {
                record.address = Some(value.map(readable_structure_name).filter(|a| !a.is_empty()));
            }
            "ENTPersonCodePostal" => {
                let code = |v: &str| PostalCode::parse(v).map(|(p, _)| p);
                record.postal_code = optional(value, code, &mut record.notices).or(record.postal_code.take());
            }
            "ENTPersonVille" => {
                record.city = Some(value.map(str::to_string));
            }
            "ENTPersonStructRattach" => {
                let mut uais = Vec::new();
                for v in values.iter().filter(|v| !v.is_empty()) {
                    match structures.resolve(v) {
                        Ok(u) => uais.push(u),
                        Err(why) => record.notices.push(format!("établissement de rattachement : {why}")),
                    }
                }
                record.attached = Some(uais);
            }
            _ => {}
        }
    }
    if kind == RequestKind::Add && (record.last_name.is_none() || record.first_name.is_none()) {
        return Err(issue(
            key_text,
            "missing_name",
            "nom (sn ou ENTPersonNom) ou prénom (givenName ou ENTPersonPrenom) absent : la personne est ignorée (signalez-le à l'académie)".into(),
        ));
    }
    Ok(Record::Person(Box::new(record)))
}

/// An optional attribute's new value: `Some(None)` clears it, `Some(Some(v))`
/// sets it, and `None` (unreadable, said in a notice) leaves the stored one.
fn optional<T>(
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, crate::values::ValueError>,
    notices: &mut Vec<String>,
) -> Option<Option<T>> {
    match value.map(parse) {
        None => Some(None),
        Some(Ok(v)) => Some(Some(v)),
        Some(Err(e)) => {
            notices.push(e.message);
            None
        }
    }
}

fn single(raw: &RawRequest, name: &str) -> Option<String> {
    raw.attribute(name)?.iter().find(|v| !v.is_empty()).cloned()
}

/// The first non-empty value of an attribute, from an addRequest's
/// attributes or a modifyRequest's `replace`/`add` modifications.
fn value_of(raw: &RawRequest, kind: RequestKind, name: &str) -> Option<String> {
    match kind {
        RequestKind::Add => single(raw, name),
        _ => raw
            .modifications
            .iter()
            .filter(|m| m.operation != ModOp::Delete && m.name.eq_ignore_ascii_case(name))
            .find_map(|m| m.values.iter().find(|v| !v.is_empty()).cloned()),
    }
}

fn map_structure(raw: &RawRequest, kind: RequestKind, structures: &StructureIndex) -> Result<Record, String> {
    // The identifier of a structure request is its jointure; a modifyRequest
    // or deleteRequest may name the structure by it alone.
    let jointure = value_of(raw, kind, "ENTStructureJointure").or(raw.identifier.clone());
    let uai = match value_of(raw, kind, "ENTStructureUAI") {
        Some(text) => Uai::parse(&text).map_err(|e| format!("structure ignorée : {e}"))?,
        None => structures
            .resolve(jointure.as_deref().unwrap_or_default())
            .map_err(|why| format!("structure ignorée : {why}"))?,
    };
    Ok(Record::Structure(StructureRecord {
        request: raw.index,
        kind,
        uai,
        jointure,
        name: value_of(raw, kind, "ENTStructureNomCourant")
            .map(|n| readable_structure_name(&n))
            .filter(|n| !n.is_empty()),
        structure_type: value_of(raw, kind, "ENTStructureTypeStruct"),
        city: value_of(raw, kind, "l"),
        academy: value_of(raw, kind, "ENTServAcAcademie"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap_or_default()
    }

    const PERSON: &str = r#"<?xml version="1.0" encoding="ISO-8859-15"?>
<ficAlimMENESR>
  <addRequest>
    <operationalAttributes><attr name="categoriePersonne"><value>PersEducNat</value></attr></operationalAttributes>
    <identifier><id>1841028</id></identifier>
    <attributes>
      <attr name="ENTPersonJointure"><value>1841028</value></attr>
      <attr name="sn"><value>BARBIER</value></attr>
      <attr name="givenName"><value>Véronique</value></attr>
      <attr name="personalTitle"><value>Mme</value></attr>
      <attr name="ENTPersonDateNaissance"><value>12/03/1971</value></attr>
      <attr name="mail"><value>v.barbier@ac-test.fr</value></attr>
      <attr name="ENTPersonFonctions"><value>0750654D$ENS$ENSEIGNEMENT$L1500$SCIENCES PHYSIQUES</value><value>0750655E$DIR$DIRECTION</value></attr>
    </attributes>
  </addRequest>
  <modifyRequest>
    <operationalAttributes><attr name="categoriePersonne"><value>PersEducNat</value></attr></operationalAttributes>
    <identifier><id>1841028</id></identifier>
    <modifications><modification name="mail" operation="replace"><value>vb&amp;co@ac-test.fr</value></modification></modifications>
  </modifyRequest>
  <deleteRequest>
    <operationalAttributes><attr name="categoriePersonne"><value>PersEducNat</value></attr></operationalAttributes>
    <identifier><id>1841029</id></identifier>
  </deleteRequest>
</ficAlimMENESR>
"#;

    fn latin9(s: &str) -> Vec<u8> {
        let (bytes, _, _) = encoding_rs::ISO_8859_15.encode(s);
        bytes.into_owned()
    }

    #[test]
    fn reads_requests_in_iso_8859_15() {
        let requests = parse(&latin9(PERSON)).unwrap_or_default();
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[0].kind, Some(RequestKind::Add));
        assert_eq!(requests[0].category.as_deref(), Some("PersEducNat"));
        assert_eq!(requests[0].identifier.as_deref(), Some("1841028"));
        assert_eq!(requests[0].attribute("givenName"), Some(&["Véronique".to_string()][..]));
        assert_eq!(requests[1].modifications[0].values, ["vb&co@ac-test.fr"]);
        assert_eq!(requests[2].kind, Some(RequestKind::Delete));
    }

    #[test]
    fn a_utf8_file_declared_iso_8859_15_is_read_as_utf8_with_a_notice() {
        let mut first_name = None;
        let summary = read_requests(PERSON.as_bytes(), |r| {
            first_name = first_name.take().or(r.attribute("givenName").map(|v| v[0].clone()));
            Ok::<(), ()>(())
        });
        assert_eq!(first_name.as_deref(), Some("Véronique"));
        let notices = summary.ok().and_then(|r| r.ok()).map(|s| s.notices).unwrap_or_default();
        assert!(notices[0].contains("écrit en UTF-8"), "{notices:?}");
        let summary = read_requests(&latin9(PERSON), |_| Ok::<(), ()>(()));
        assert_eq!(summary.ok().and_then(|r| r.ok()).map(|s| s.notices.len()), Some(0));
    }

    #[test]
    fn an_over_long_value_is_cut_while_reading_and_its_request_refused() {
        let huge = "A".repeat(20 * 1024 * 1024);
        let feed = PERSON
            .replace("ISO-8859-15", "UTF-8")
            .replace("<value>BARBIER</value>", &format!("<value>{huge}</value>"));
        let requests = parse(feed.as_bytes()).unwrap_or_default();
        assert_eq!(requests[0].oversized.as_deref(), Some("sn"));
        let kept = requests[0].attribute("sn").map(|v| v[0].chars().count());
        assert_eq!(kept, Some(MAX_VALUE_CHARS), "only the cap is kept in memory");
        let Err(issue) = map_request("f.xml", &requests[0], today(), &StructureIndex::default()) else {
            panic!("an over-long name must be refused");
        };
        assert_eq!(issue.code, "value_too_long");
        assert!(issue.message.contains("sn"), "{}", issue.message);
        // The other requests of the file are read as usual.
        assert_eq!(requests[1].modifications[0].values, ["vb&co@ac-test.fr"]);
        assert!(requests[1].oversized.is_none());
    }

    #[test]
    fn maps_a_teacher_with_two_establishments() {
        let requests = parse(PERSON.replace("ISO-8859-15", "UTF-8").as_bytes()).unwrap_or_default();
        let Ok(Record::Person(p)) = map_request("f.xml", &requests[0], today(), &StructureIndex::default()) else {
            panic!("not a person");
        };
        assert_eq!(p.key.as_str(), "PERSON.1841028");
        assert_eq!(p.first_name.as_deref(), Some("Véronique"));
        assert_eq!(p.civility, Some(Some(Civility::Madame)));
        assert_eq!(p.birth_date, Some(NaiveDate::from_ymd_opt(1971, 3, 12)));
        let Some(FunctionsChange::Replace(f)) = &p.functions else {
            panic!("functions");
        };
        assert_eq!(f[0].uai.as_str(), "0750654D");
        assert_eq!(f[0].discipline.as_deref(), Some("SCIENCES PHYSIQUES"));
        assert_eq!(f[1].code, "DIR");
    }

    /// A function in a structure the index cannot resolve gives no place
    /// but is kept for who the person is; a pupil who names themself as
    /// their person in charge (entcore's test data) gets no such link.
    #[test]
    fn unknown_structures_and_self_links_are_said_and_left_out() {
        let feed = PERSON
            .replace("ISO-8859-15", "UTF-8")
            .replace("0750654D$ENS$ENSEIGNEMENT$L1500", "4931$ENS$ENSEIGNEMENT$L1500");
        let requests = parse(feed.as_bytes()).unwrap_or_default();
        let Ok(Record::Person(p)) = map_request("f.xml", &requests[0], today(), &StructureIndex::default()) else {
            panic!("not a person");
        };
        assert_eq!(
            p.functions_elsewhere,
            [("ENS".to_string(), Some("SCIENCES PHYSIQUES".to_string()))]
        );
        assert!(
            p.notices.iter().any(|n| n.contains("« 4931 » inconnue")),
            "{:?}",
            p.notices
        );

        let pupil = r#"<ficAlimMENESR><addRequest>
            <operationalAttributes><attr name="categoriePersonne"><value>Eleve</value></attr></operationalAttributes>
            <identifier><id>2000000</id></identifier><attributes>
            <attr name="ENTPersonJointure"><value>2000000</value></attr>
            <attr name="sn"><value>NOM</value></attr><attr name="givenName"><value>Prenom</value></attr>
            <attr name="ENTElevePersRelEleve"><value>2000000$10$1$1$1$1</value><value>2000001$20$0$1$1$0</value></attr>
            <attr name="ENTEleveLibelleMEF"><value></value></attr>
            <attr name="ENTEleveNivFormation"><value>BAC PRO</value></attr>
            </attributes></addRequest></ficAlimMENESR>"#;
        let requests = parse(pupil.as_bytes()).unwrap_or_default();
        let Ok(Record::Person(p)) = map_request("f.xml", &requests[0], today(), &StructureIndex::default()) else {
            panic!("not a person");
        };
        let keys: Vec<&str> = p.relatives.iter().flatten().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["PERSON.2000001"]);
        assert_eq!(
            p.level,
            Some(Some("BAC PRO".to_string())),
            "the level's wording without a MEF label"
        );
        assert!(
            p.notices.iter().any(|n| n.contains("sa propre personne en charge")),
            "{:?}",
            p.notices
        );
    }

    #[test]
    fn file_names_tell_kind_uai_and_complet() {
        let info = file_info("/x/ENT_0750654D_Complet_20261125_PersEducNat_0000.xml");
        assert!(info.complet);
        assert_eq!(info.kind, Some(FeedKind::PersEducNat));
        assert_eq!(info.uai.map(|u| u.to_string()).as_deref(), Some("0750654D"));
        let delta = file_info("ENT_0750654D_Delta_20261125_EtabEducNat_0000.xml");
        assert!(!delta.complet);
        assert_eq!(delta.kind, Some(FeedKind::EtabEducNat));
    }

    #[test]
    fn broken_and_foreign_files_are_errors() {
        assert!(matches!(parse(b"<html></html>"), Err(FeedError::NotAFeed(_))));
        assert!(matches!(parse(b""), Err(FeedError::Empty)));
        assert!(matches!(
            parse(b"<ficAlimMENESR><addRequest></ficAlimMENESR>"),
            Err(FeedError::Xml { .. })
        ));
        assert!(matches!(
            parse(b"<ficAlimMENESR><addRequest><identifier>"),
            Err(FeedError::Xml { .. })
        ));
    }

    #[test]
    fn missing_names_and_bad_jointures_are_issues() {
        let xml = PERSON.replace("<attr name=\"sn\"><value>BARBIER</value></attr>", "");
        let requests = parse(xml.as_bytes()).unwrap_or_default();
        let err = map_request("f.xml", &requests[0], today(), &StructureIndex::default())
            .err()
            .map(|i| i.code);
        assert_eq!(err, Some("missing_name"));
        assert!(person_key("12 34").is_none());
        assert_eq!(
            person_key("1234").map(|k| k.to_string()).as_deref(),
            Some("PERSON.1234")
        );
    }

    const JOINTURES: &str = r#"<ficAlimMENESR>
<addRequest>
<operationalAttributes><attr name="categorieStructure"><value>EtabEducNat</value></attr></operationalAttributes>
<identifier><id>4931</id></identifier>
<attributes>
<attr name="ENTStructureJointure"><value>4931</value></attr>
<attr name="ENTStructureUAI"><value>0940072T</value></attr>
<attr name="ENTStructureNomCourant"><value>CLG$LES CLOSEAUX$$RUNGIS</value></attr>
<attr name="ENTStructureTypeStruct"><value>COLLEGE</value></attr>
<attr name="l"><value>RUNGIS</value></attr>
<attr name="ENTServAcAcademie"><value>CRETEIL</value></attr>
</attributes>
</addRequest>
<modifyRequest>
<operationalAttributes><attr name="categorieStructure"><value>EtabEducNat</value></attr></operationalAttributes>
<identifier><id>4931</id></identifier>
<modifications><modification name="l" operation="replace"><value>RUNGIS CEDEX</value></modification></modifications>
</modifyRequest>
<addRequest>
<operationalAttributes><attr name="categoriePersonne"><value>PersEducNat</value></attr></operationalAttributes>
<identifier><id>5282</id></identifier>
<attributes>
<attr name="ENTPersonJointure"><value>5282</value></attr>
<attr name="sn"><value/></attr>
<attr name="ENTPersonCivilite"><value>M.</value></attr>
<attr name="ENTPersonStructRattach"><value>4931</value></attr>
<attr name="ENTPersonFonctions"><value>4931$ENS$ENSEIGNEMENT$L0202$LETTRES MODERNES</value><value>77$DIR$DIRECTION</value></attr>
<attr name="ENTPersonNom"><value>&#201;GYPTIEN</value></attr>
<attr name="ENTPersonPrenom"><value>Armin</value></attr>
<attr name="ENTPersonMail"><value>armin.egyptien@ac-test.fr</value></attr>
</attributes>
</addRequest>
</ficAlimMENESR>"#;

    #[test]
    fn structures_are_named_by_jointure_and_first_degree_names_are_read() {
        let requests = parse(JOINTURES.as_bytes()).unwrap_or_default();
        let mut index = StructureIndex::default();
        let Ok(Record::Structure(s)) = map_request("e.xml", &requests[0], today(), &index) else {
            panic!("not a structure");
        };
        assert_eq!(s.jointure.as_deref(), Some("4931"));
        assert_eq!(s.name.as_deref(), Some("CLG - LES CLOSEAUX - RUNGIS"));
        assert_eq!(s.structure_type.as_deref(), Some("COLLEGE"));
        assert_eq!(s.academy.as_deref(), Some("CRETEIL"));
        index.insert("4931", s.uai.clone());
        // A modifyRequest names the structure by its jointure only.
        let Ok(Record::Structure(m)) = map_request("e.xml", &requests[1], today(), &index) else {
            panic!("not a structure");
        };
        assert_eq!(m.uai.as_str(), "0940072T");
        assert_eq!((m.city.as_deref(), m.name), (Some("RUNGIS CEDEX"), None));

        let Ok(Record::Person(p)) = map_request("p.xml", &requests[2], today(), &index) else {
            panic!("not a person");
        };
        assert_eq!(p.last_name.as_deref(), Some("ÉGYPTIEN"));
        assert_eq!(p.first_name.as_deref(), Some("Armin"));
        assert_eq!(p.civility, Some(Some(Civility::Monsieur)));
        assert!(p.email.is_some());
        assert_eq!(p.attached.as_deref(), Some(&[s.uai.clone()][..]));
        let Some(FunctionsChange::Replace(f)) = &p.functions else {
            panic!("functions");
        };
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].uai.as_str(), "0940072T");
        // The unknown jointure 77 is said, not silently dropped.
        assert!(
            p.notices.iter().any(|n| n.contains("« 77 » inconnue")),
            "{:?}",
            p.notices
        );

        // Without the structure file, the same person has no known structure.
        let Ok(Record::Person(alone)) = map_request("p.xml", &requests[2], today(), &StructureIndex::default()) else {
            panic!("not a person");
        };
        assert_eq!(alone.attached.as_deref(), Some(&[][..]));
    }

    #[test]
    fn readable_names_drop_the_dollar_separators() {
        assert_eq!(readable_structure_name("E.E.PU$$AUDEUX"), "E.E.PU - AUDEUX");
        assert_eq!(readable_structure_name("A.B.C-ABC-ac-TOTO"), "A.B.C-ABC-ac-TOTO");
        assert_eq!(readable_structure_name("$$"), "");
    }
}
