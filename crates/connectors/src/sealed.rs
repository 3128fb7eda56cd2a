//! Credentials at rest: sealed with ChaCha20-Poly1305 under the platform key.
//!
//! The key is `MNO_SECRET_KEY` when set (any text of at least 32 characters;
//! its SHA-256 is the key), else 32 random bytes generated once into
//! `<data dir>/secret.key` (mode 0600). Losing the key loses the sealed
//! credentials (installs must then be configured again), never the records.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The file the generated key lives in, under the data dir.
pub const KEY_FILE: &str = "secret.key";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("MNO_SECRET_KEY is too short ({0} characters); use at least 32 random characters")]
    ShortKey(usize),
    #[error("cannot read or create the key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("sealed credentials cannot be opened with this platform key (was MNO_SECRET_KEY changed?); configure the install again")]
    Open,
}

/// Seals and opens small secrets under the platform key.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer { key: <redacted> }")
    }
}

impl Sealer {
    /// The key from `configured` (MNO_SECRET_KEY) or from the data dir's key file.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> Result<Sealer, SealError> {
        let key: [u8; 32] = match configured.filter(|k| !k.is_empty()) {
            Some(text) if text.chars().count() < 32 => {
                return Err(SealError::ShortKey(text.chars().count()))
            }
            Some(text) => Sha256::digest(text.as_bytes()).into(),
            None => key_file(&data_dir.join(KEY_FILE))?,
        };
        Ok(Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    /// base64 of nonce || ciphertext.
    pub fn seal(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .expect("sealing a small buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SealError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SealError::Open)?;
        if bytes.len() < 12 {
            return Err(SealError::Open);
        }
        let (nonce, body) = bytes.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| SealError::Open)
    }
}

/// Read the key file, or create it with 32 random bytes readable by the owner only.
fn key_file(path: &Path) -> Result<[u8; 32], SealError> {
    let failed = |e: std::io::Error| SealError::KeyFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = STANDARD.decode(text.trim()).ok();
            bytes
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| SealError::KeyFile {
                    path: path.display().to_string(),
                    reason: "it does not hold base64 of 32 bytes".into(),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            use std::io::Write;
            let mut file = options.open(path).map_err(failed)?;
            file.write_all(STANDARD.encode(key).as_bytes())
                .map_err(failed)?;
            Ok(key)
        }
        Err(e) => Err(failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_only_under_its_key() {
        let dir = tempfile_dir();
        let a = Sealer::load(None, &dir).unwrap();
        let sealed = a.seal(b"password 123");
        assert!(!sealed.contains("password"));
        assert_eq!(a.open(&sealed).unwrap(), b"password 123");
        // The generated key is reused on the next start.
        let again = Sealer::load(None, &dir).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), b"password 123");
        let other = Sealer::load(Some("another key of at least thirty-two chars"), &dir).unwrap();
        assert!(matches!(other.open(&sealed), Err(SealError::Open)));
        assert!(matches!(
            Sealer::load(Some("short"), &dir),
            Err(SealError::ShortKey(5))
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("mno-sealed-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
