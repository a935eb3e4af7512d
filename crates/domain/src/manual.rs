//! One user created by hand (guide §1.2, SPEC §9): any profile, including
//! administrators and guests, which no file creates. Source `manual`.

use crate::establishment::Uai;
use crate::functions;
use crate::keys::SyncKey;
use crate::person::{role_for, Attributes, GroupKind, GroupRef, Membership};
use crate::profile::Profile;
use crate::values::{keep, FieldProblem, Login, ValueError};

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
    /// Every problem of the form at once, each on its field (the pages mark
    /// them all), or the account to create.
    pub fn read(&self, today: chrono::NaiveDate, min_password_len: usize) -> Result<ManualUser, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let p = &mut problems;
        let profile = keep(
            p,
            "profile",
            self.profile
                .parse::<Profile>()
                .map_err(|e| ValueError::new("bad_profile", e.to_string())),
        );
        let establishment = keep(
            p,
            "establishment",
            filled(&self.establishment)
                .map(Uai::parse)
                .transpose()
                .map_err(|e| ValueError::new("bad_uai", e.to_string())),
        )
        .flatten();
        let attrs = Attributes {
            civility: keep(
                p,
                "civility",
                filled(&self.civility).map(crate::values::Civility::parse).transpose(),
            )
            .flatten(),
            last_name: keep(p, "last_name", crate::values::parse_name(&self.last_name, "nom")).unwrap_or_default(),
            first_name: keep(p, "first_name", crate::values::parse_name(&self.first_name, "prénom"))
                .unwrap_or_default(),
            birth_date: keep(
                p,
                "birth_date",
                filled(&self.birth_date)
                    .map(|b| crate::values::parse_birth_date(b, today))
                    .transpose(),
            )
            .flatten(),
            email: keep(
                p,
                "email",
                filled(&self.email).map(crate::values::Email::parse).transpose(),
            )
            .flatten(),
            function_code: filled(&self.function).map(|f| {
                functions::lookup(f)
                    .map(|x| x.code.to_string())
                    .unwrap_or_else(|| f.to_string())
            }),
            subject: filled(&self.subject).map(str::to_string),
            class_name: filled(&self.class).map(str::to_string),
            ..Attributes::default()
        };
        let login = keep(p, "login", filled(&self.login).map(Login::parse).transpose()).flatten();
        let Some(profile) = profile else {
            return Err(problems);
        };
        let user = ManualUser {
            profile,
            establishment,
            attrs,
            login,
            password: self.password.clone().filter(|p| !p.is_empty()),
            key: filled(&self.key).map(|k| SyncKey::from_stored(k.to_string())),
        };
        for (field, problem) in user.problems(min_password_len) {
            // A field already refused says its first reason only.
            if !problems.iter().any(|(f, _)| *f == field) {
                problems.push((field, problem));
            }
        }
        if problems.is_empty() {
            Ok(user)
        } else {
            Err(problems)
        }
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
        match self.problems(min_password_len).into_iter().next() {
            Some((_, first)) => Err(first),
            None => Ok(()),
        }
    }

    /// Every rule [`ManualUser::check`] applies, each on the field of
    /// [`ManualUserInput`] it concerns, in the form's order.
    pub fn problems(&self, min_password_len: usize) -> Vec<FieldProblem> {
        let mut problems = Vec::new();
        let needs_establishment = !matches!(self.profile, Profile::AdministrateurSysteme | Profile::Invite);
        if needs_establishment && self.establishment.is_none() {
            problems.push((
                "establishment",
                ValueError::new(
                    "missing_establishment",
                    format!(
                        "un compte {} appartient à un établissement : indiquez-le",
                        self.profile.label()
                    ),
                ),
            ));
        }
        for (field, value, what) in [
            ("last_name", &self.attrs.last_name, "le nom"),
            ("first_name", &self.attrs.first_name, "le prénom"),
        ] {
            if value.trim().is_empty() {
                problems.push((
                    field,
                    ValueError::new(
                        "missing_name",
                        format!("nom et prénom sont obligatoires : indiquez {what}"),
                    ),
                ));
            }
        }
        let function = match (self.profile, self.attrs.function_code.as_deref()) {
            (Profile::Administratif, None) => Some(ValueError::new(
                "missing_function",
                "le personnel administratif a une fonction : indiquez son code (ex. DIR, EDU, ADF)",
            )),
            (_, Some(code)) => match functions::lookup(code) {
                None => Some(ValueError::new(
                    "unknown_function",
                    format!("fonction « {code} » inconnue : utilisez un code de fonctions.csv (DIR, EDU, ADF…)"),
                )),
                Some(f) if f.is_teaching() && self.profile == Profile::Administratif => Some(ValueError::new(
                    "ens_for_staff",
                    "la fonction ENS est réservée aux enseignants : créez le compte avec le profil enseignant",
                )),
                Some(_) => None,
            },
            _ => None,
        };
        problems.extend(function.map(|e| ("function", e)));
        if self.profile == Profile::Eleve && self.attrs.birth_date.is_none() {
            problems.push((
                "birth_date",
                ValueError::new(
                    "missing_birth_date",
                    "la date de naissance d'un élève est obligatoire (elle fait partie de sa clé) : indiquez-la (jj/mm/aaaa)",
                ),
            ));
        }
        if let Some(p) = &self.password {
            if let Err(e) = crate::password::check_imposed(p, min_password_len) {
                problems.push(("password", e));
            }
        }
        problems
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

    #[test]
    fn the_form_hears_every_problem_at_once() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        let input = ManualUserInput {
            profile: "eleve".into(),
            establishment: Some("0750654D".into()),
            last_name: "  ".into(),
            first_name: "Léa".into(),
            birth_date: Some("31/02/2010".into()),
            email: Some("pas-une-adresse".into()),
            function: Some("XYZ".into()),
            ..ManualUserInput::default()
        };
        let problems = input.read(today, 8).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["last_name", "birth_date", "email", "function"], "{problems:?}");
        assert!(problems[1].1.message.contains("31/02/2010"), "{problems:?}");
        let fine = ManualUserInput {
            profile: "enseignant".into(),
            establishment: Some("0750654D".into()),
            last_name: "Durand".into(),
            first_name: "Léa".into(),
            ..ManualUserInput::default()
        };
        assert!(fine.read(today, 8).is_ok());
        // The codes the messages give as examples are accepted ones.
        for code in ["DIR", "EDU", "ADF"] {
            assert!(functions::lookup(code).is_some_and(|f| !f.is_teaching()), "{code}");
        }
    }
}
