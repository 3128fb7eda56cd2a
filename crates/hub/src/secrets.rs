//! Passwords, tokens and API secrets: how they are made, stored and compared.
//!
//! - Passwords are hashed with argon2id (slow on purpose: they are low-entropy).
//! - Session tokens and API secrets are 256 random bits; SHA-256 of them is
//!   enough to store (nothing to brute-force) and keeps every API call fast.
//! - Every comparison of a secret runs in constant time.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of session tokens (`Authorization: Bearer mst_...`).
pub const SESSION_PREFIX: &str = "mst_";
/// Prefix of API key ids (the user part of HTTP Basic).
pub const KEY_PREFIX: &str = "mk_";
/// Prefix of API secrets (the password part of HTTP Basic).
pub const SECRET_PREFIX: &str = "ms_";
/// Prefix of webhook signing secrets (Standard Webhooks).
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A new session token: 256 random bits.
pub fn new_session_token() -> String {
    format!(
        "{SESSION_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// An opaque bearer value of single sign-on (authorization code, access token): 256 random bits.
pub fn new_opaque_token(prefix: &str) -> String {
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// A new API key id (not secret, but unguessable).
pub fn new_key_id() -> String {
    format!(
        "{KEY_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<16>())
    )
}

/// A new API secret: 256 random bits.
pub fn new_api_secret() -> String {
    format!(
        "{SECRET_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// A new Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_webhook_secret() -> String {
    format!(
        "{WEBHOOK_SECRET_PREFIX}{}",
        STANDARD.encode(random_bytes::<32>())
    )
}

/// SHA-256 of a high-entropy secret, hex: what we store for tokens and API secrets.
pub fn sha256_hex(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `secret` hashes to `stored_hash`, compared in constant time.
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    let computed = sha256_hex(secret);
    computed.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Whether two SHA-256 hex strings are equal, compared in constant time.
pub fn hashes_match(provided: &str, stored: &str) -> bool {
    provided.as_bytes().ct_eq(stored.as_bytes()).into()
}

/// Hash a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Verify a password against a PHC string; a malformed stored hash is a mismatch.
pub fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A real argon2id hash of a random password, made once: unknown users are
/// checked against it so that "no such user" takes as long as "wrong password".
pub fn dummy_password_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(&URL_SAFE_NO_PAD.encode(random_bytes::<16>()))
            .expect("hashing a random password cannot fail")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip_and_use_argon2id() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterx", &hash));
        assert!(!verify_password("anything", "not a phc string"));
    }

    /// Unknown users are checked against the dummy hash: the same algorithm and
    /// cost as a real one, so both answers take one argon2 verification.
    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs() {
        let real = hash_password("some password").unwrap();
        let real = PasswordHash::new(&real).unwrap();
        let dummy = PasswordHash::new(dummy_password_hash()).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert!(!verify_password("some password", dummy_password_hash()));
    }

    #[test]
    fn secrets_are_random_and_prefixed() {
        let a = new_session_token();
        let b = new_session_token();
        assert_ne!(a, b);
        assert!(a.starts_with(SESSION_PREFIX) && a.len() == 4 + 43, "{a}");
        let whsec = new_webhook_secret();
        let raw = STANDARD
            .decode(whsec.strip_prefix(WEBHOOK_SECRET_PREFIX).unwrap())
            .unwrap();
        assert_eq!(raw.len(), 32);
    }

    #[test]
    fn stored_hashes_match_only_their_secret() {
        let secret = new_api_secret();
        let stored = sha256_hex(&secret);
        assert!(secret_matches(&secret, &stored));
        assert!(!secret_matches(&new_api_secret(), &stored));
        assert!(!secret_matches(&secret, ""));
    }
}
