//! Single sign-on with the Hub (OpenID Connect, authorization code with PKCE):
//! the authorization URL, the callback (code exchange and ID-token validation
//! against a cached JWKS), the periodic session check (made only when due by
//! [`SessionChecks`]), and logout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{Mutex, OnceCell};
use url::Url;

use crate::error::{Error, Result};
use crate::transport::{Call, Transport};
use crate::Org;

mod recheck;
pub use recheck::SessionChecks;

/// The JWKS is refetched after this long (the Hub lets it be cached five minutes).
const JWKS_TTL: Duration = Duration::from_secs(300);
/// Clock skew allowed when checking `exp`.
const LEEWAY_SECS: u64 = 30;

/// The single sign-on client. Get one from [`crate::Mno::sso`].
#[derive(Debug, Clone)]
pub struct Sso {
    transport: Arc<Transport>,
    redirect_uri: String,
    jwks: Arc<Mutex<Option<(JwkSet, Instant)>>>,
    /// The issuer the Hub announces (`MNO_PUBLIC_URL`), which may differ from
    /// the URL the app reaches the API at.
    issuer: Arc<OnceCell<String>>,
}

/// What the app keeps between redirecting the browser and the callback
/// (in its own session cookie, server side or signed): never send it to the browser in clear.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingSignIn {
    /// The `state` sent; the callback must bring it back.
    pub state: String,
    /// The `nonce` sent; the ID token must carry it.
    pub nonce: String,
    /// The PKCE code verifier.
    pub code_verifier: String,
}

/// A member's role in an org.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads the org's data.
    Member,
    /// Also writes it.
    PowerUser,
    /// Also manages members, apps and billing.
    Admin,
    /// Also owns the org.
    SuperAdmin,
}

/// A signed-in user, from a validated ID token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SsoUser {
    /// The Hub user id (stable; `sub`).
    pub id: String,
    /// Their email.
    pub email: String,
    /// Their name.
    pub name: String,
    /// The org they signed in with.
    pub org: Org,
    /// Their role in that org.
    pub role: Role,
    /// The Hub session (`sid`): for [`Sso::session_check`] and back-channel logout.
    pub session_id: String,
}

/// The outcome of a sign-in.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// Who signed in.
    pub user: SsoUser,
    /// The ID token (keep it for [`Sso::logout_url`]'s hint).
    pub id_token: String,
    /// The access token for `/sso/v1/userinfo`.
    pub access_token: String,
}

/// The answer of a session check.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct SessionStatus {
    /// The Hub session is live: keep the user signed in.
    pub valid: bool,
    /// When to ask again (RFC 3339).
    pub recheck_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    sid: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    org: OrgClaim,
}

/// The `org` claim: the org and the user's role in it.
#[derive(Debug, Deserialize)]
struct OrgClaim {
    #[serde(flatten)]
    org: Org,
    role: Role,
}

/// The claims of a back-channel logout token.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct LogoutToken {
    /// The user.
    pub sub: String,
    /// The Hub session that ended: end the app's sessions made with it.
    pub sid: String,
}

impl Sso {
    pub(crate) fn new(transport: Arc<Transport>, redirect_uri: &str) -> Sso {
        Sso {
            transport,
            redirect_uri: redirect_uri.to_owned(),
            jwks: Arc::new(Mutex::new(None)),
            issuer: Arc::new(OnceCell::new()),
        }
    }

    /// The issuer ID tokens must name, from the Hub's discovery document (fetched once).
    async fn issuer(&self) -> Result<&str> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
        }
        let issuer = self
            .issuer
            .get_or_try_init(|| async {
                let call = Call::new(Method::GET, "/.well-known/openid-configuration");
                let discovery: Discovery = self.transport.send(&call).await?.json()?;
                Ok::<_, Error>(discovery.issuer)
            })
            .await?;
        Ok(issuer)
    }

    /// Where to send the browser to sign in, and what to keep until the callback.
    ///
    /// ```no_run
    /// # fn f(mno: mno_sdk::Mno) -> mno_sdk::Result<()> {
    /// let sso = mno.sso("https://crm.example.com/auth/callback");
    /// let (url, pending) = sso.authorization_url()?;
    /// // store `pending` in the app's session, then answer 302 Location: url
    /// # Ok(()) }
    /// ```
    pub fn authorization_url(&self) -> Result<(Url, PendingSignIn)> {
        let pending = PendingSignIn {
            state: random_token(),
            nonce: random_token(),
            code_verifier: random_token(),
        };
        let challenge = BASE64URL.encode(Sha256::digest(pending.code_verifier.as_bytes()));
        let mut url = self.transport.config.url("/sso/v1/authorize")?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.transport.config.app_key)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", "openid profile email")
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok((url, pending))
    }

    /// Completes a sign-in from the callback's query string (`code=...&state=...&iss=...`):
    /// checks `state` and `iss`, exchanges the code and validates the ID token.
    pub async fn callback(&self, pending: &PendingSignIn, query: &str) -> Result<SignIn> {
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let param = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        if let Some(error) = param("error") {
            return Err(Error::Sso(format!(
                "the Hub refused the sign-in: {error} {}",
                param("error_description").unwrap_or("")
            )));
        }
        let state = param("state").unwrap_or("");
        if !bool::from(state.as_bytes().ct_eq(pending.state.as_bytes())) {
            return Err(Error::Sso(
                "the callback's state is not the one sent (a forged or stale callback)".into(),
            ));
        }
        if let Some(iss) = param("iss") {
            if iss != self.issuer().await? {
                return Err(Error::Sso(format!(
                    "the callback names issuer {iss:?}, not ours"
                )));
            }
        }
        let code = param("code").ok_or_else(|| Error::Sso("the callback has no code".into()))?;
        self.exchange(pending, code).await
    }

    /// Exchanges an authorization code and validates the ID token.
    pub async fn exchange(&self, pending: &PendingSignIn, code: &str) -> Result<SignIn> {
        #[derive(Deserialize)]
        struct Tokens {
            access_token: String,
            id_token: String,
        }
        let mut call = Call::new(Method::POST, "/sso/v1/token");
        call.form = Some(vec![
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), code.to_owned()),
            ("redirect_uri".into(), self.redirect_uri.clone()),
            ("code_verifier".into(), pending.code_verifier.clone()),
        ]);
        // A code is good once: never retried.
        let tokens: Tokens = self.transport.send(&call).await?.json()?;
        let user = self
            .validate_id_token(&tokens.id_token, &pending.nonce)
            .await?;
        Ok(SignIn {
            user,
            id_token: tokens.id_token,
            access_token: tokens.access_token,
        })
    }

    /// Validates an ID token: RS256 signature against the Hub's JWKS, `iss`,
    /// `aud` (the app's key), `exp` and `nonce`.
    pub async fn validate_id_token(&self, token: &str, nonce: &str) -> Result<SsoUser> {
        let claims: Claims = self.decode(token).await?;
        let given = claims.nonce.as_deref().unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(nonce.as_bytes())) {
            return Err(Error::Sso(
                "the ID token's nonce is not the one sent".into(),
            ));
        }
        Ok(SsoUser {
            id: claims.sub,
            email: claims.email,
            name: claims.name,
            org: claims.org.org,
            role: claims.org.role,
            session_id: claims.sid,
        })
    }

    /// Validates a back-channel logout token (`logout_token` of the form the Hub posts).
    pub async fn validate_logout_token(&self, token: &str) -> Result<LogoutToken> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Error::Sso(format!("logout token: {e}")))?;
        if header.typ.as_deref() != Some("logout+jwt") {
            return Err(Error::Sso("not a logout token (typ logout+jwt)".into()));
        }
        self.decode(token).await
    }

    async fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| Error::Sso(format!("ID token: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(Error::Sso(format!(
                "ID token signed with {:?}, not RS256",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| Error::Sso("ID token has no kid".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[self.issuer().await?]);
        validation.set_audience(&[&self.transport.config.app_key]);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<T>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| Error::Sso(format!("ID token refused: {e}")))
    }

    /// The signing key `kid` from the cached JWKS, refetched when stale or
    /// when the key is unknown (the Hub rotated).
    async fn key(&self, kid: &str) -> Result<DecodingKey> {
        let mut cache = self.jwks.lock().await;
        for attempt in 0..2 {
            let fresh = cache
                .as_ref()
                .is_some_and(|(_, at)| at.elapsed() < JWKS_TTL);
            if attempt == 1 || !fresh {
                let call = Call::new(Method::GET, "/sso/v1/jwks");
                let set: JwkSet = self.transport.send(&call).await?.json()?;
                *cache = Some((set, Instant::now()));
            }
            if let Some(jwk) = cache.as_ref().and_then(|(set, _)| set.find(kid)) {
                return DecodingKey::from_jwk(jwk)
                    .map_err(|e| Error::Sso(format!("JWKS key {kid}: {e}")));
            }
        }
        Err(Error::Sso(format!("no key {kid:?} in the Hub's JWKS")))
    }

    /// Asks whether the user's Hub session is still live; sign the user out of
    /// the app when `valid` is false, and ask again at `recheck_at`
    /// ([`SessionChecks`] asks only then, answering the cached result before).
    pub async fn session_check(&self, session_id: &str) -> Result<SessionStatus> {
        let call = Call::new(Method::POST, "/sso/v1/session_check")
            .json(&serde_json::json!({ "sid": session_id }))?;
        self.transport.send(&call).await?.json()
    }

    /// Where to send the browser to sign out of the Hub (RP-initiated logout);
    /// `post_logout_redirect_uri` must be one the app registered.
    pub fn logout_url(
        &self,
        id_token_hint: &str,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> Result<Url> {
        let mut url = self.transport.config.url("/sso/v1/end_session")?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("id_token_hint", id_token_hint)
                .append_pair("client_id", &self.transport.config.app_key);
            if let Some(uri) = post_logout_redirect_uri {
                query.append_pair("post_logout_redirect_uri", uri);
            }
            if let Some(state) = state {
                query.append_pair("state", state);
            }
        }
        Ok(url)
    }
}

/// 256 random bits, base64url: states, nonces and PKCE verifiers (43 characters).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    BASE64URL.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_pkce_sized() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }
}
