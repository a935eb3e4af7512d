//! The French words every door (pages, CLI, mails) shows for what the store
//! keeps as codes: one wording, kept out of the storage layer.

use domain::vocabulary::{ImportSource, MailStatus};
use store::history::{AttachmentEntry, ImportEntry};
use store::service::Operation;

/// The profile's name, or "flux AAF" for a feed (it holds several).
pub fn import_profile(entry: &ImportEntry) -> String {
    if entry.source == ImportSource::Aaf {
        return "flux AAF".into();
    }
    entry
        .profile
        .parse::<domain::Profile>()
        .map(|p| p.label().to_string())
        .unwrap_or_else(|_| entry.profile.clone())
}

/// A notice's state (`None`: no notice).
pub fn mail(status: Option<MailStatus>) -> &'static str {
    status.map_or("—", MailStatus::label)
}

/// "X a été rattaché(e) à <établissement> par <admin> le <date>".
pub fn attachment(a: &AttachmentEntry) -> String {
    format!(
        "{} {} a été rattaché(e) à {} par {} le {}",
        a.first_name,
        a.last_name,
        a.attached(),
        a.actor,
        domain::time::minute(a.at)
    )
}

/// A step of an import's writing, as the progress bar and step 5 name it.
pub fn operation(operation: Operation) -> &'static str {
    match operation {
        Operation::Passwords => "Mots de passe",
        Operation::Groups => "Groupes",
        Operation::Users => "Utilisateurs",
        Operation::Memberships => "Appartenances aux groupes",
    }
}
