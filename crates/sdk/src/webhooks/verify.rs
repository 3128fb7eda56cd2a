//! Standard Webhooks verification: HMAC-SHA256 over `{id}.{timestamp}.{body}`,
//! compared in constant time, within a timestamp tolerance, against every
//! secret the app holds (several during a rotation).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// A `webhook-*` header is missing or unreadable.
    #[error("missing or malformed header {0}")]
    MissingHeader(&'static str),
    /// No signature matches any secret.
    #[error("no valid signature: the body or headers were changed, or the secret is wrong")]
    BadSignature,
    /// The timestamp is too far from now (a replay of an old message, or a wrong clock).
    #[error("timestamp {timestamp} is {skew_secs} s away from now (tolerance {tolerance_secs} s)")]
    OutsideTolerance {
        /// The `webhook-timestamp` sent.
        timestamp: i64,
        /// How far from now it is.
        skew_secs: u64,
        /// The tolerance allowed.
        tolerance_secs: u64,
    },
    /// This `webhook-id` was already taken.
    #[error("webhook {0} was already received")]
    Replayed(String),
    /// The same `webhook-id` is being handled right now.
    #[error("webhook {0} is being handled")]
    InFlight(String),
    /// A secret is not `whsec_<base64>`.
    #[error("webhook secret is malformed: {0}")]
    BadSecret(String),
    /// The signed body is not a webhook the SDK knows.
    #[error("the body is not a webhook payload: {0}")]
    BadPayload(String),
}

/// Checks the signature and age of webhooks.
///
/// ```
/// use mno_sdk::webhooks::Verifier;
/// let verifier = Verifier::new(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).unwrap();
/// let (id, ts, body) = ("msg_1", 1_700_000_000, br#"{"people":[]}"#);
/// let signature = verifier.sign(id, ts, body);
/// assert!(verifier.verify_at(id, &ts.to_string(), &signature, body, ts).is_ok());
/// assert!(verifier.verify_at(id, &ts.to_string(), &signature, b"{}", ts).is_err());
/// ```
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<Vec<u8>>,
    tolerance: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.keys.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

/// Standard Webhooks' recommended tolerance.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

impl Verifier {
    /// A verifier for the app's `whsec_...` secrets (any one valid signature passes).
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<Verifier, WebhookError> {
        if secrets.is_empty() {
            return Err(WebhookError::BadSecret(
                "no secret given (the app's webhook_secret from POST /hub/v1/apps)".into(),
            ));
        }
        let keys = secrets
            .iter()
            .map(|s| {
                let s = s.as_ref();
                let encoded = s.strip_prefix("whsec_").unwrap_or(s);
                BASE64.decode(encoded).map_err(|_| {
                    WebhookError::BadSecret("expected whsec_ followed by base64".into())
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Verifier {
            keys,
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// How far a timestamp may be from now (5 minutes by default).
    pub fn with_tolerance(mut self, tolerance: Duration) -> Verifier {
        self.tolerance = tolerance;
        self
    }

    /// Verifies a webhook received now from its three headers and raw body.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
    ) -> Result<(), WebhookError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.verify_at(id, timestamp, signatures, body, now)
    }

    /// As [`Verifier::verify`], as if it were `now` (unix seconds).
    pub fn verify_at(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), WebhookError> {
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| WebhookError::MissingHeader("webhook-timestamp"))?;
        // The signature first: an unsigned message learns nothing about the clock.
        let valid = self.keys.iter().any(|key| {
            let expected = mac(key, id, timestamp.trim(), body);
            signatures.split_whitespace().any(|candidate| {
                let Some(encoded) = candidate.strip_prefix("v1,") else {
                    return false;
                };
                let Ok(given) = BASE64.decode(encoded) else {
                    return false;
                };
                given.len() == expected.len() && bool::from(given.ct_eq(&expected))
            })
        });
        if !valid {
            return Err(WebhookError::BadSignature);
        }
        let skew = now.abs_diff(ts);
        if skew > self.tolerance.as_secs() {
            return Err(WebhookError::OutsideTolerance {
                timestamp: ts,
                skew_secs: skew,
                tolerance_secs: self.tolerance.as_secs(),
            });
        }
        Ok(())
    }

    /// The `webhook-signature` value the first secret gives (for tests and tools).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = self.keys.first().expect("a verifier holds a secret");
        format!(
            "v1,{}",
            BASE64.encode(mac(key, id, &timestamp.to_string(), body))
        )
    }
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn the_specs_example_verifies() {
        // From the Standard Webhooks reference implementations' tests.
        let verifier = Verifier::new(&[SECRET]).unwrap();
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let body = br#"{"test": 2432232314}"#;
        verifier
            .verify_at(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                "1614265330",
                sig,
                body,
                1614265330,
            )
            .unwrap();
    }

    #[test]
    fn any_secret_of_a_rotation_passes_and_others_fail() {
        let old = Verifier::new(&[SECRET]).unwrap();
        let both = Verifier::new(&["whsec_c2Vjb25kIHNlY3JldCBvZiB0aGUgYXBw", SECRET]).unwrap();
        let sig = format!("v1,AAAA {}", old.sign("m", 100, b"x"));
        assert_eq!(both.verify_at("m", "100", &sig, b"x", 100), Ok(()));
        let other = Verifier::new(&["whsec_c2Vjb25kIHNlY3JldCBvZiB0aGUgYXBw"]).unwrap();
        assert_eq!(
            other.verify_at("m", "100", &sig, b"x", 100),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn old_and_future_timestamps_are_refused() {
        let v = Verifier::new(&[SECRET]).unwrap();
        let sig = v.sign("m", 1000, b"x");
        assert!(matches!(
            v.verify_at("m", "1000", &sig, b"x", 1000 + 301),
            Err(WebhookError::OutsideTolerance { .. })
        ));
        assert!(v.verify_at("m", "1000", &sig, b"x", 1000 - 301).is_err());
        assert!(v.verify_at("m", "1000", &sig, b"x", 1000 + 299).is_ok());
        assert!(v.verify_at("m", "1001", &sig, b"x", 1000).is_err());
    }
}
