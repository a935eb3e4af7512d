//! "Exporter les utilisateurs de l'ENT" (guide §5.3, SPEC §9): a CSV in the
//! import format, keys and logins included, no passwords, that re-imports with
//! zero changes.

use crate::establishment::Uai;
use crate::field::{Field, Presence};
use crate::keys::SyncKey;
use crate::person::Attributes;
use crate::plan::attribute_value;
use crate::profile::Profile;
use crate::values::Login;
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    pub key: SyncKey,
    /// `None`: an account shared with an establishment the exporting admin
    /// does not administer (its login is not theirs to hand out).
    pub login: Option<Login>,
    pub attrs: Attributes,
    pub uai: Uai,
}

/// Columns of an export: the key, then the profile's fields but the password.
pub fn columns(profile: Profile) -> Vec<Field> {
    Field::for_profile(profile)
        .filter(|f| *f != Field::Password && f.presence(profile) != Presence::NotApplicable)
        .collect()
}

pub fn write(profile: Profile, rows: &[ExportRow]) -> Vec<u8> {
    let fields = columns(profile);
    let header: Vec<String> = fields.iter().map(|f| f.header(profile)).collect();
    let lines = rows.iter().map(|r| {
        fields
            .iter()
            .map(|f| match f {
                Field::SyncKey => Cow::Borrowed(r.key.as_str()),
                Field::Login => Cow::Borrowed(r.login.as_ref().map_or("", |l| l.as_str())),
                Field::Uai => Cow::Borrowed(r.uai.as_str()),
                Field::Landline => Cow::Owned(
                    r.attrs
                        .landline
                        .as_ref()
                        .map(|p| p.for_spreadsheet())
                        .unwrap_or_default(),
                ),
                Field::Mobile => Cow::Owned(r.attrs.mobile.as_ref().map(|p| p.for_spreadsheet()).unwrap_or_default()),
                other => Cow::Owned(attribute_value(&r.attrs, *other).unwrap_or_default()),
            })
            .collect::<Vec<_>>()
    });
    crate::result_file::write_csv(&header, lines)
}
