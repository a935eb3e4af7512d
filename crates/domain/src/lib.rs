//! The pure heart of annuaire: everything an import decides, with no I/O.
//!
//! ```text
//! bytes ─decode─▶ text ─parse─▶ raw rows ─map─▶ typed rows ─validate─▶ checked rows
//!                                   directory snapshot ─plan─▶ Plan ─(store applies)
//! ```
//! Every door (CLI, web wizard, JSON API) calls these same functions; storage
//! only provides the [`plan::Snapshot`] and applies the [`plan::Plan`].

pub mod aaf;
pub mod account;
pub mod cas;
pub mod changeset;
pub mod decode;
pub mod duplicates;
pub mod establishment;
pub mod export;
pub mod field;
pub mod functions;
pub mod keys;
pub mod lvs;
pub mod manual;
pub mod mapping;
pub mod parse;
pub mod password;
pub mod person;
pub mod pipeline;
pub mod plan;
pub mod profile;
pub mod result_file;
pub mod text;
pub mod time;
pub mod validate;
pub mod values;
pub mod vocabulary;

pub use establishment::{Establishment, Structure, Uai};
pub use field::Field;
pub use profile::Profile;
