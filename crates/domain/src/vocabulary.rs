//! The closed sets of words the directory stores as text (statuses, sources,
//! channels): one enum each, with the id written in the database and the JSON
//! reports, and the French label the doors show. A stored value that is none
//! of them is a corrupt row, not a fourth status.

/// Declares an enum stored as text: `Variant = "id" => "libellé"`.
macro_rules! stored_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $id:literal => $label:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $id)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// As stored and as the JSON reports write it.
            pub fn id(self) -> &'static str {
                match self { $($name::$variant => $id),+ }
            }

            /// As the pages, the CLI and the notices say it.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::vocabulary::UnknownWord;
            fn from_str(s: &str) -> Result<Self, $crate::vocabulary::UnknownWord> {
                match s {
                    $($id => Ok($name::$variant),)+
                    other => Err($crate::vocabulary::UnknownWord { kind: stringify!($name), value: other.to_string() }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.id())
            }
        }
    };
}
pub(crate) use stored_enum;

/// A stored word outside its set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("valeur « {value} » inconnue pour {kind}")]
pub struct UnknownWord {
    pub kind: &'static str,
    pub value: String,
}

stored_enum! {
    /// How an import ended, in the history.
    pub enum ImportStatus {
        Succeeded = "succeeded" => "réussi",
        /// Refused before writing (conflicts, Complet threshold, bad file).
        Rejected = "rejected" => "refusé",
        Failed = "failed" => "échec",
    }
}

stored_enum! {
    /// Where a web import job is (step 5).
    pub enum JobStatus {
        Queued = "queued" => "en attente de démarrage",
        Running = "running" => "en cours",
        Succeeded = "succeeded" => "terminé avec succès",
        Rejected = "rejected" => "refusé, rien n'a été modifié",
        Failed = "failed" => "échec, rien n'a été modifié",
    }
}

impl JobStatus {
    pub fn is_running(self) -> bool {
        matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

stored_enum! {
    /// The latest end-of-import notice of an import.
    pub enum MailStatus {
        Pending = "pending" => "en attente (nouvel essai prévu)",
        Sent = "sent" => "envoyé",
        Failed = "failed" => "échec d'envoi",
    }
}

stored_enum! {
    /// What an import read: a CSV file or an AAF feed.
    pub enum ImportSource {
        Csv = "csv" => "import CSV",
        Aaf = "aaf" => "flux AAF",
    }
}

stored_enum! {
    /// Through which door an import came, for the history.
    pub enum Channel {
        Cli = "cli" => "ligne de commande",
        Web = "web" => "assistant web",
        Api = "api" => "API",
        /// The scheduled AAF run of the server.
        Schedule = "schedule" => "planification",
    }
}

/// Deletions above this share of the accounts in scope need the admin to
/// type their exact number (SPEC §8); one value for the CSV and the AAF.
pub const DEFAULT_DELETION_THRESHOLD_PERCENT: u32 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_and_unknown_words_are_refused() {
        for status in JobStatus::ALL {
            assert_eq!(status.id().parse::<JobStatus>(), Ok(*status));
            assert_eq!(
                serde_json::to_string(status).unwrap_or_default(),
                format!("\"{}\"", status.id())
            );
        }
        for channel in Channel::ALL {
            assert_eq!(channel.to_string().parse::<Channel>(), Ok(*channel));
        }
        let error = "done".parse::<ImportStatus>().unwrap_err();
        assert_eq!(error.to_string(), "valeur « done » inconnue pour ImportStatus");
    }
}
