//! The one mapping between a person's attributes and the columns of `users`.
//!
//! Adding an attribute to accounts means: its field in
//! `domain::person::Attributes`, then here a line in [`ATTRIBUTE_COLUMNS`] and
//! [`attribute_values`], a field in [`UserRow`] and in
//! [`UserRow::attributes`], and one migration per backend. Every statement
//! (the inserts, the bulk COPY, the updates on both backends) builds its
//! column list from [`ATTRIBUTE_COLUMNS`].

use crate::{fold_for_search, stored_word, Result, StoreError};
use chrono::NaiveDate;
use domain::person::{Attributes, Source};
use domain::Profile;

/// The attribute columns of `users` written by imports, in the order of
/// [`attribute_values`], with their PostgreSQL type (arrays are bound as
/// text and cast).
pub(crate) const ATTRIBUTE_COLUMNS: [(&str, &str); 17] = [
    ("civility", "text"),
    ("last_name", "text"),
    ("first_name", "text"),
    ("last_name_fold", "text"),
    ("first_name_fold", "text"),
    ("birth_date", "date"),
    ("subject", "text"),
    ("function_code", "text"),
    ("class_name", "text"),
    ("address", "text"),
    ("postal_code", "text"),
    ("city", "text"),
    ("landline", "text"),
    ("mobile", "text"),
    ("email", "text"),
    ("ine", "text"),
    ("level", "text"),
];

/// The values of [`ATTRIBUTE_COLUMNS`] for one person, as text: dates in ISO
/// 8601 (`YYYY-MM-DD`, how both backends store and read a date), phones in
/// E.164, names also folded for the indexed search.
pub(crate) fn attribute_values(a: &Attributes) -> [Option<String>; 17] {
    [
        a.civility.map(|c| c.as_str().to_string()),
        Some(a.last_name.clone()),
        Some(a.first_name.clone()),
        Some(fold_for_search(&a.last_name)),
        Some(fold_for_search(&a.first_name)),
        a.birth_date.map(|d| d.format("%Y-%m-%d").to_string()),
        a.subject.clone(),
        a.function_code.clone(),
        a.class_name.clone(),
        a.address.clone(),
        a.postal_code.as_ref().map(|p| p.as_str().to_string()),
        a.city.clone(),
        a.landline.as_ref().map(|p| p.as_e164().to_string()),
        a.mobile.as_ref().map(|p| p.as_e164().to_string()),
        a.email.as_ref().map(|e| e.as_str().to_string()),
        a.ine.clone(),
        a.level.clone(),
    ]
}

/// `civility, last_name, …`: the attribute columns, for an INSERT or COPY.
pub(crate) fn attribute_column_list() -> String {
    ATTRIBUTE_COLUMNS.map(|(name, _)| name).join(", ")
}

/// One account as a user row stores it, for the snapshot and searches.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub sync_key: String,
    pub profile: String,
    pub source: String,
    pub protected: bool,
    pub active: bool,
    pub login: String,
    pub civility: Option<String>,
    pub last_name: String,
    pub first_name: String,
    pub birth_date: Option<NaiveDate>,
    pub subject: Option<String>,
    pub function_code: Option<String>,
    pub class_name: Option<String>,
    pub address: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub landline: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub ine: Option<String>,
    pub level: Option<String>,
}

/// Columns of [`UserRow`], in a form both dialects accept.
/// The users table is always aliased `u`.
pub(crate) const USER_COLUMNS: &str = "u.id, u.sync_key, u.profile, u.source, u.protected, (u.deactivated_at IS NULL) AS active, u.login, u.civility, u.last_name, u.first_name, u.birth_date, u.subject, u.function_code, u.class_name, u.address, u.postal_code, u.city, u.landline, u.mobile, u.email, u.ine, u.level";

impl UserRow {
    pub fn attributes(&self) -> Result<Attributes> {
        use domain::values::{Civility, Email, Phone, PostalCode};
        Ok(Attributes {
            civility: self
                .civility
                .as_deref()
                .map(Civility::parse)
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.message))?,
            last_name: self.last_name.clone(),
            first_name: self.first_name.clone(),
            birth_date: self.birth_date,
            subject: self.subject.clone(),
            function_code: self.function_code.clone(),
            class_name: self.class_name.clone(),
            address: self.address.clone(),
            postal_code: self.postal_code.clone().map(PostalCode::from_stored),
            city: self.city.clone(),
            landline: self.landline.clone().map(Phone::from_stored),
            mobile: self.mobile.clone().map(Phone::from_stored),
            email: self.email.clone().map(Email::from_stored),
            ine: self.ine.clone(),
            level: self.level.clone(),
        })
    }

    pub fn profile(&self) -> Result<Profile> {
        self.profile
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("profil {}", self.profile)))
    }

    pub fn source(&self) -> Result<Source> {
        stored_word(&self.source)
    }
}
