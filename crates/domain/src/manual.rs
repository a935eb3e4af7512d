//! One user created by hand (guide §1.2, SPEC §9): any profile, including
//! administrators and guests, which no file creates. Source `manual`.

use crate::establishment::Uai;
use crate::functions;
use crate::keys::SyncKey;
use crate::person::{role_for, Attributes, GroupKind, GroupRef, Membership};
use crate::profile::Profile;
use crate::values::{Login, ValueError};

/// The creation form as typed (CLI options or web form fields): every door
/// reads it with [`ManualUserInput::parse`], so both say the same things.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ManualUserInput {
    pub profile: String,
    pub establishment: Option<String>,
    pub civility: Option<String>,
    pub last_name: String,
    pub first_name: String,
    pub birth_date: Option<String>,
    pub email: Option<String>,
    pub function: Option<String>,
    pub subject: Option<String>,
    pub class: Option<String>,
    pub login: Option<String>,
    pub password: Option<String>,
    pub key: Option<String>,
}

fn filled(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl ManualUserInput {
    pub fn parse(&self, today: chrono::NaiveDate) -> Result<ManualUser, ValueError> {
        let profile: Profile = self
            .profile
            .parse()
            .map_err(|e: crate::profile::UnknownProfile| ValueError::new("bad_profile", e.to_string()))?;
        let attrs = Attributes {
            civility: filled(&self.civility).map(crate::values::Civility::parse).transpose()?,
            last_name: crate::values::parse_name(&self.last_name, "nom")?,
            first_name: crate::values::parse_name(&self.first_name, "prénom")?,
            birth_date: filled(&self.birth_date)
                .map(|b| crate::values::parse_birth_date(b, today))
                .transpose()?,
            email: filled(&self.email).map(crate::values::Email::parse).transpose()?,
            function_code: filled(&self.function).map(|f| {
                functions::lookup(f)
                    .map(|x| x.code.to_string())
                    .unwrap_or_else(|| f.to_string())
            }),
            subject: filled(&self.subject).map(str::to_string),
            class_name: filled(&self.class).map(str::to_string),
            ..Attributes::default()
        };
        Ok(ManualUser {
            profile,
            establishment: filled(&self.establishment)
                .map(Uai::parse)
                .transpose()
                .map_err(|e| ValueError::new("bad_uai", e.to_string()))?,
            attrs,
            login: filled(&self.login).map(Login::parse).transpose()?,
            password: self.password.clone().filter(|p| !p.is_empty()),
            key: filled(&self.key).map(|k| SyncKey::from_stored(k.to_string())),
        })
    }
}

/// The CLI option that fixes a refusal of [`ManualUser::check`], by its code.
pub fn cli_option(code: &str) -> Option<&'static str> {
    Some(match code {
        "missing_establishment" => "--establishment UAI",
        "missing_name" => "--last-name et --first-name",
        "missing_function" => "--function",
        "ens_for_staff" => "--profile enseignant",
        "missing_birth_date" => "--birth-date jj/mm/aaaa",
        _ => return None,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualUser {
    pub profile: Profile,
    pub establishment: Option<Uai>,
    pub attrs: Attributes,
    pub login: Option<Login>,
    pub password: Option<String>,
    /// An imposed sync key; derived from the names like a CSV import's otherwise.
    pub key: Option<SyncKey>,
}

impl ManualUser {
    /// The same rules as a file line of that profile (SPEC §4), plus: every
    /// profile but the ENT-wide ones belongs to an establishment. The messages
    /// name no door's fields: each door adds its own (see [`cli_option`]).
    pub fn check(&self, min_password_len: usize) -> Result<(), ValueError> {
        let needs_establishment = !matches!(self.profile, Profile::AdministrateurSysteme | Profile::Invite);
        if needs_establishment && self.establishment.is_none() {
            return Err(ValueError::new(
                "missing_establishment",
                format!(
                    "un compte {} appartient à un établissement : indiquez-le",
                    self.profile.label()
                ),
            ));
        }
        if self.attrs.last_name.trim().is_empty() || self.attrs.first_name.trim().is_empty() {
            return Err(ValueError::new(
                "missing_name",
                "nom et prénom sont obligatoires : indiquez-les",
            ));
        }
        match (self.profile, self.attrs.function_code.as_deref()) {
            (Profile::Administratif, None) => {
                return Err(ValueError::new(
                    "missing_function",
                    "le personnel administratif a une fonction : indiquez son code (ex. DIR, EDU, SEC)",
                ))
            }
            (_, Some(code)) => match functions::lookup(code) {
                None => {
                    return Err(ValueError::new(
                        "unknown_function",
                        format!("fonction « {code} » inconnue : utilisez un code de fonctions.csv (DIR, EDU, SEC…)"),
                    ))
                }
                Some(f) if f.is_teaching() && self.profile == Profile::Administratif => {
                    return Err(ValueError::new(
                        "ens_for_staff",
                        "la fonction ENS est réservée aux enseignants : créez le compte avec le profil enseignant",
                    ))
                }
                Some(_) => {}
            },
            _ => {}
        }
        if self.profile == Profile::Eleve && self.attrs.birth_date.is_none() {
            return Err(ValueError::new(
                "missing_birth_date",
                "la date de naissance d'un élève est obligatoire (elle fait partie de sa clé) : indiquez-la (jj/mm/aaaa)",
            ));
        }
        if let Some(p) = &self.password {
            crate::password::check_imposed(p, min_password_len)?;
        }
        Ok(())
    }

    pub fn key(&self) -> SyncKey {
        self.key.clone().unwrap_or_else(|| {
            SyncKey::derive(
                self.profile,
                &self.attrs.first_name,
                &self.attrs.last_name,
                self.attrs.birth_date,
                self.attrs.postal_code.as_ref().map(|p| p.as_str()),
            )
        })
    }

    pub fn membership(&self) -> Option<Membership> {
        self.establishment.as_ref().map(|uai| Membership {
            uai: uai.clone(),
            role: role_for(self.profile, self.attrs.function_code.as_deref()).to_string(),
        })
    }

    /// A teacher's subject group and a pupil's class, as an import would.
    pub fn groups(&self) -> Vec<GroupRef> {
        let Some(uai) = &self.establishment else {
            return Vec::new();
        };
        let group = match self.profile {
            Profile::Enseignant => self.attrs.subject.clone().map(|s| (GroupKind::Subject, s)),
            Profile::Eleve => self.attrs.class_name.clone().map(|c| (GroupKind::Class, c)),
            _ => None,
        };
        group
            .into_iter()
            .map(|(kind, name)| GroupRef {
                uai: uai.clone(),
                kind,
                name,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(profile: Profile) -> ManualUser {
        ManualUser {
            profile,
            establishment: Uai::parse("0750654D").ok(),
            attrs: Attributes {
                last_name: "Durand".into(),
                first_name: "Léa".into(),
                ..Attributes::default()
            },
            login: None,
            password: None,
            key: None,
        }
    }

    #[test]
    fn rules_per_profile() {
        assert!(user(Profile::Administrateur).check(3).is_ok());
        assert_eq!(
            user(Profile::Administratif).check(3).map_err(|e| e.code),
            Err("missing_function")
        );
        let mut staff = user(Profile::Administratif);
        staff.attrs.function_code = Some("ENS".into());
        assert_eq!(staff.check(3).map_err(|e| e.code), Err("ens_for_staff"));
        let mut guest = user(Profile::Invite);
        guest.establishment = None;
        assert!(guest.check(3).is_ok());
        let mut admin = user(Profile::Administrateur);
        admin.establishment = None;
        assert_eq!(admin.check(3).map_err(|e| e.code), Err("missing_establishment"));
        assert_eq!(user(Profile::Administrateur).key().as_str(), "PERSON.m-mmeleadurand");
    }
}
