//! The application layer of annuaire: one function per thing an admin does
//! (save an account, reconcile a pair, restore an import, export a list…).
//! Each takes the acting admin as an [`Actor`] and refuses what they may not
//! do, here and nowhere else; the CLI, the web pages and the API call only
//! these functions and render their outcomes and refusals in their own words.
//!
//! The rules themselves are pure and live in `domain` (for instance
//! [`domain::account::rights_over`]); the reads and writes live in `store`.

pub mod accounts;
pub mod admins;
pub mod audit;
pub mod cas;
pub mod duplicates;
pub mod establishments;
pub mod imports;
pub mod labels;
pub mod lvs;

use domain::account::AccountRights;
use domain::plan::AdminScope;
use domain::vocabulary::Channel;
use domain::Uai;
use store::accounts::{AccountDetail, Accounts, MembershipLine};
use store::admin::{AdminDirectory, AdminError};
use store::cas::CasStore;
use store::history::History;
use store::web::{Admin, WebDirectory};
use store::{Directory, StoreError};

/// Every storage trait a door needs: the directory, the administration, the
/// web tables, the history, the accounts and the CAS server's tables. Both
/// backends implement it.
pub trait Backend: Directory + WebDirectory + History + AdminDirectory + Accounts + CasStore + 'static {}
impl<T: Directory + WebDirectory + History + AdminDirectory + Accounts + CasStore + 'static> Backend for T {}

/// Who acts, and through which door: the admin of a web session or an API
/// token, or the operator of the command line (who has the directory's own
/// rights unless `--as-admin` names an admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    admin: Admin,
    channel: Channel,
    /// The command line's operator: no admin account behind them.
    operator: bool,
}

impl Actor {
    pub fn new(admin: Admin, channel: Channel) -> Actor {
        Actor {
            admin,
            channel,
            operator: false,
        }
    }

    /// The person at the command line, with every right; `name` is what the
    /// audit log records (for instance `cli:jdupont`).
    pub fn operator(name: String) -> Actor {
        Actor::process(name, Channel::Cli)
    }

    /// The server's scheduled AAF run, which acts with the directory's own rights.
    pub fn scheduler() -> Actor {
        Actor::process("planificateur".to_string(), Channel::Schedule)
    }

    fn process(name: String, channel: Channel) -> Actor {
        Actor {
            admin: Admin {
                id: 0,
                login: name,
                system: true,
                establishments: Vec::new(),
                email: None,
            },
            channel,
            operator: true,
        }
    }

    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// The admin account acting, if any (none for the command line's operator).
    pub fn admin_id(&self) -> Option<i64> {
        (!self.operator).then_some(self.admin.id)
    }

    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// The name the audit log and the history record.
    pub fn name(&self) -> &str {
        &self.admin.login
    }

    pub fn is_system(&self) -> bool {
        self.admin.system
    }

    pub fn scope(&self) -> AdminScope {
        self.admin.scope()
    }

    pub fn may_act_on(&self, uai: &Uai) -> bool {
        self.admin.may_act_on(uai)
    }

    /// True when every one of these establishments is the actor's.
    pub fn may_act_on_all<'a>(&self, uais: impl IntoIterator<Item = &'a Uai>) -> bool {
        uais.into_iter().all(|u| self.may_act_on(u))
    }

    /// What this actor may do to the account ([`domain::account::rights_over`]).
    pub fn rights_over(&self, account: &AccountDetail) -> AccountRights {
        domain::account::rights_over(&self.scope(), account.memberships.iter().map(|m| (&m.uai, m.active)))
    }

    /// An establishment admin manages the accounts that belong (or belonged)
    /// to one of their establishments; ENT-wide accounts are the system admins'.
    pub fn manages(&self, account: &AccountDetail) -> bool {
        self.rights_over(account) != AccountRights::None
    }

    /// "Lycée Henri-IV (0750653C)": the account's active memberships outside
    /// this actor's establishments.
    pub fn active_elsewhere(&self, account: &AccountDetail) -> String {
        let scope = self.scope();
        let elsewhere: Vec<domain::Establishment> = account
            .memberships
            .iter()
            .filter(|m| m.active && !scope.allows(&m.uai))
            .map(MembershipLine::establishment)
            .collect();
        domain::establishment::establishment_list(&elsewhere)
    }

    /// `act` names the act in the refusal ("le journal d'audit").
    fn require_system(&self, act: &'static str) -> Result<(), Error> {
        if self.is_system() {
            Ok(())
        } else {
            Err(Error::SystemOnly(act))
        }
    }
}

/// Why a use case did nothing. The doors word the refusals their own way
/// (a page, an HTTP status, an exit status); [`Error::is_refusal`] tells a
/// refusal the admin can act on from a failure of the machine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Absent, or outside the actor's establishments: one answer for both,
    /// so that nothing leaks about other establishments.
    #[error("introuvable, ou hors de vos établissements")]
    NotFound,
    /// An act only a system administrator may perform (named for the message).
    #[error("{0} est réservé aux administrateurs système")]
    SystemOnly(&'static str),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// True when the admin can act on it (nothing was written); false for a
    /// failure of the database or the machine.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            Error::Store(_) | Error::Admin(AdminError::Store(_) | AdminError::Hash(_))
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
