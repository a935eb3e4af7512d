//! Passwords: generation, policy, Argon2id hashing.
//!
//! # Why two sets of Argon2id parameters
//! Argon2id's memory and time cost exist to slow down guessing of *human-chosen*
//! passwords, whose entropy is low. A generated password here has 12 characters
//! from a 56-letter alphabet: about 69 bits of entropy from a CSPRNG. Guessing it
//! costs 2^68 hash evaluations on average whatever the parameters, so the heavy
//! parameters add nothing to its safety while making a 100 000-row import spend
//! half an hour hashing (measured: ~50 hashes/s per core at m=19456 KiB, t=2).
//!
//! So generated secrets are hashed with [`GENERATED_PARAMS`] (m=1024 KiB, t=1),
//! and the account is flagged `must_change_password`: at first login the user
//! chooses a password, which is hashed with [`HUMAN_PARAMS`] (the OWASP
//! recommendation, the argon2 crate defaults). Imposed passwords were chosen by a
//! person: they always get [`HUMAN_PARAMS`]. Both are stored as PHC strings, which
//! carry their parameters, so verification needs no side table and a login can
//! tell that a hash needs upgrading ([`needs_rehash`]).

use argon2::password_hash::{Output, ParamsString, PasswordHash, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::{CryptoRng, Rng, RngCore};
use rayon::prelude::*;
use std::cell::RefCell;

/// No 0/O/o, 1/l/I: a password read off a printed slip must not be ambiguous.
pub const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
pub const GENERATED_LEN: usize = 12;
/// Minimum length of an imposed password (guide §4.1.A: 3 characters).
pub const DEFAULT_MIN_LEN: usize = 3;
pub const MAX_LEN: usize = 128;

/// m=19456 KiB, t=2, p=1: for passwords a person chose.
pub const HUMAN_PARAMS: (u32, u32, u32) = (19_456, 2, 1);
/// m=1024 KiB, t=1, p=1: for ≥64-bit random secrets that must be changed at first login.
pub const GENERATED_PARAMS: (u32, u32, u32) = (1_024, 1, 1);

/// Bits of entropy of a generated password.
pub fn generated_entropy_bits() -> f64 {
    GENERATED_LEN as f64 * (ALPHABET.len() as f64).log2()
}

pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> String {
    (0..GENERATED_LEN)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// Who chose a secret decides how it is hashed (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOrigin {
    Generated,
    Chosen,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("paramètres Argon2 invalides : {0}")]
    Params(String),
    #[error("échec du calcul Argon2 : {0}")]
    Hash(String),
}

fn params(origin: SecretOrigin) -> Result<Params, HashError> {
    let (m, t, p) = match origin {
        SecretOrigin::Generated => GENERATED_PARAMS,
        SecretOrigin::Chosen => HUMAN_PARAMS,
    };
    Params::new(m, t, p, None).map_err(|e| HashError::Params(e.to_string()))
}

/// A salt drawn from the caller's CSPRNG, so hashing itself needs no randomness.
pub fn salt<R: RngCore + CryptoRng>(rng: &mut R) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    bytes
}

thread_local! {
    /// Argon2's working memory, kept by each hashing thread: allocating it per
    /// hash (19 MiB for a chosen password) mapped, faulted in and unmapped it
    /// every time, on every core at once.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// One Argon2id PHC string, as `PasswordHasher::hash_password` writes it.
pub fn hash(secret: &str, origin: SecretOrigin, salt: &[u8; 16]) -> Result<String, HashError> {
    let failed = |e: &dyn std::fmt::Display| HashError::Hash(e.to_string());
    let params = params(origin)?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    MEMORY
        .with_borrow_mut(|memory| {
            // Argon2 writes every block before reading it: no clearing needed.
            memory.resize(params.block_count(), Block::default());
            argon2.hash_password_into_with_memory(secret.as_bytes(), salt, &mut out, &mut memory[..])
        })
        .map_err(|e| failed(&e))?;
    let salt = SaltString::encode_b64(salt).map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// Hashes many secrets on every core (rayon); output order matches input order.
pub fn hash_all(items: &[(&str, SecretOrigin, [u8; 16])]) -> Result<Vec<String>, HashError> {
    items
        .par_iter()
        .map(|(secret, origin, salt)| hash(secret, *origin, salt))
        .collect()
}

pub fn verify(secret: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok()
}

/// True when a stored hash is weaker than [`HUMAN_PARAMS`]: rehash at next login.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    (params.m_cost(), params.t_cost()) < (HUMAN_PARAMS.0, HUMAN_PARAMS.1)
}

/// Checks an imposed password against the configured minimum length.
pub fn check_imposed(secret: &str, min_len: usize) -> Result<(), crate::values::ValueError> {
    let len = secret.chars().count();
    if len < min_len {
        return Err(crate::values::ValueError::new(
            "password_too_short",
            format!("mot de passe trop court ({len} caractère(s)) : il en faut au moins {min_len}, ou laissez login et mot de passe vides pour qu'ils soient générés"),
        ));
    }
    if len > MAX_LEN {
        return Err(crate::values::ValueError::new(
            "password_too_long",
            format!("mot de passe trop long : {MAX_LEN} caractères au plus"),
        ));
    }
    Ok(())
}

/// The least length of a password a person chooses at their first sign-in:
/// length is what makes a password hard to guess (ANSSI's recommendation for
/// a password protected by a slow hash and throttling).
pub const CHOSEN_MIN_LEN: usize = 12;

/// The policy of a password a person chooses (the first-sign-in change):
/// [`CHOSEN_MIN_LEN`] characters at least, typed twice the same, not the
/// login and not containing it, not the password being replaced. The error
/// is the sentence to show next to the field.
pub fn check_chosen(new: &str, confirm: &str, login: &str, former: &str) -> Result<(), String> {
    let len = new.chars().count();
    if len < CHOSEN_MIN_LEN {
        return Err(format!(
            "mot de passe trop court ({len} caractère(s)) : il en faut au moins {CHOSEN_MIN_LEN} ; une phrase de plusieurs mots se retient mieux"
        ));
    }
    if len > MAX_LEN {
        return Err(format!("mot de passe trop long : {MAX_LEN} caractères au plus"));
    }
    if new != confirm {
        return Err("les deux saisies diffèrent : tapez le même mot de passe deux fois".into());
    }
    let login = login.trim().to_lowercase();
    if !login.is_empty() && new.to_lowercase().contains(&login) {
        return Err("le mot de passe ne doit pas contenir votre identifiant".into());
    }
    if new == former {
        return Err("choisissez un mot de passe différent de celui qui vous a été remis".into());
    }
    Ok(())
}

/// A secret kept only as its SHA-256 (hex): session cookies, API tokens,
/// CAS tickets and sessions, reset links. A copy of the database opens nothing.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A CSPRNG for production use; tests pass a seeded one instead.
pub fn os_rng() -> rand::rngs::StdRng {
    use rand::SeedableRng;
    rand::rngs::StdRng::from_entropy()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chosen_password_follows_the_policy() {
        let ok = |new: &str| check_chosen(new, new, "fplaton", "weCtA4H5ScxU");
        assert_eq!(ok("des pommes et des poires"), Ok(()));
        assert!(ok("court").unwrap_err().contains("au moins 12"));
        assert!(ok("mon-FPlaton-2026").unwrap_err().contains("identifiant"));
        assert!(ok("weCtA4H5ScxU").unwrap_err().contains("différent"));
        assert!(
            check_chosen("des pommes et des poires", "des pommes et des poire", "fplaton", "x")
                .unwrap_err()
                .contains("diffèrent")
        );
        assert!(ok(&"é".repeat(12)).is_ok(), "characters, not bytes");
        assert!(ok(&"a".repeat(129)).unwrap_err().contains("trop long"));
    }
    use rand::SeedableRng;

    #[test]
    fn generated_passwords_have_enough_entropy_and_no_lookalikes() {
        assert!(generated_entropy_bits() >= 64.0, "{}", generated_entropy_bits());
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let p = generate(&mut rng);
        assert_eq!(p.len(), GENERATED_LEN);
        assert!(!p.contains(['0', 'O', 'o', '1', 'l', 'I']));
        assert_ne!(p, generate(&mut rng));
    }

    /// Reused memory gives the PHC string the crate's own hasher gives, both
    /// ways round between the two parameter sets (the memory shrinks and grows).
    #[test]
    fn reused_memory_hashes_like_the_crate() {
        use argon2::password_hash::PasswordHasher;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for origin in [SecretOrigin::Chosen, SecretOrigin::Generated, SecretOrigin::Chosen] {
            let s = salt(&mut rng);
            let params = params(origin).unwrap();
            let expected = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"M0t-de-passe", &SaltString::encode_b64(&s).unwrap())
                .unwrap()
                .to_string();
            assert_eq!(hash("M0t-de-passe", origin, &s).unwrap(), expected);
        }
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let s = salt(&mut rng);
        let phc = hash("abc", SecretOrigin::Chosen, &s).unwrap_or_default();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("abc", &phc));
        assert!(!verify("abd", &phc));
        assert!(!needs_rehash(&phc));
        let quick = hash("k3Pz9xQwE4rT", SecretOrigin::Generated, &s).unwrap_or_default();
        assert!(quick.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{quick}");
        assert!(verify("k3Pz9xQwE4rT", &quick));
        assert!(needs_rehash(&quick));
    }

    #[test]
    fn imposed_minimum() {
        assert!(check_imposed("ab", 3).is_err());
        assert!(check_imposed("abc", 3).is_ok());
    }
}
