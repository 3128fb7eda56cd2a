//! Standard Webhooks signing: `webhook-signature` is a space-separated list of
//! `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, one per active
//! secret (two during a rotation), where the key is the base64-decoded part of
//! `whsec_<base64>`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const WEBHOOK_ID: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
const SECRET_PREFIX: &str = "whsec_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the app has no webhook signing secret; rotate its credentials in the Hub to get one")]
    NoSecret,
    #[error("a webhook secret is not whsec_ followed by base64")]
    BadSecret,
}

/// The `webhook-signature` header value for `body` under every secret given.
pub fn signature_header(
    secrets: &[String],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SignError> {
    if secrets.is_empty() {
        return Err(SignError::NoSecret);
    }
    let signatures = secrets
        .iter()
        .map(|secret| sign_one(secret, id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(signatures.join(" "))
}

fn sign_one(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = STANDARD.decode(encoded).map_err(|_| SignError::BadSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SignError::BadSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn matches_the_reference_vector() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
        let header = signature_header(
            &[secret],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn signs_with_every_secret_during_a_rotation() {
        let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
        let new = format!("whsec_{}", STANDARD.encode([7u8; 32]));
        let header = signature_header(&[new, old], "id", 1, b"{}").unwrap();
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        assert_ne!(parts[0], parts[1]);
    }

    #[test]
    fn refuses_missing_or_malformed_secrets() {
        assert_eq!(
            signature_header(&[], "id", 1, b""),
            Err(SignError::NoSecret)
        );
        assert_eq!(
            signature_header(&["whsec_!!!".into()], "id", 1, b""),
            Err(SignError::BadSecret)
        );
    }
}
