//! What the tokens say: the claims of ID tokens and userinfo, the `org` claim,
//! and signing and verifying with the platform's keys.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

use super::keys::{self, KeyError};
use crate::store::users::UserRow;

/// The organisation a user signs in to an app with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgClaim {
    pub id: String,
    pub name: String,
    /// The user's role in it.
    pub role: String,
    pub currency: String,
    pub timezone: String,
    /// ISO 3166 alpha-2; empty when the org did not say.
    pub country: String,
}

type OrgTuple = (String, String, String, String, String, String);

fn org_from((id, name, role, currency, timezone, country): OrgTuple) -> OrgClaim {
    OrgClaim {
        id,
        name,
        role,
        currency,
        timezone,
        country,
    }
}

const ELIGIBLE: &str = "SELECT o.id, o.name, m.role, o.currency, o.timezone, o.country
     FROM hub_members m JOIN hub_orgs o ON o.id = m.org_id
     JOIN hub_installs i ON i.org_id = o.id AND i.app_id = $2
     WHERE m.user_id = $1";

/// The orgs the user is a member of where the app is installed, by name.
pub async fn eligible_orgs(
    pool: &AnyPool,
    user: &str,
    app: &str,
) -> Result<Vec<OrgClaim>, sqlx::Error> {
    let rows: Vec<OrgTuple> = sqlx::query_as(&format!("{ELIGIBLE} ORDER BY o.name, o.id"))
        .bind(user)
        .bind(app)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(org_from).collect())
}

/// The org claim, if the user is still a member and the app still installed;
/// with `issued_at` (unix ms), only when both were so when a token was issued:
/// leaving and joining again, or an uninstall and a new install, does not
/// bring a token issued before back.
pub async fn org_claim(
    pool: &AnyPool,
    user: &str,
    app: &str,
    org: &str,
    issued_at: Option<i64>,
) -> Result<Option<OrgClaim>, sqlx::Error> {
    let row: Option<OrgTuple> = sqlx::query_as(&format!(
        "{ELIGIBLE} AND o.id = $3 AND m.created_at <= $4 AND i.created_at <= $4"
    ))
    .bind(user)
    .bind(app)
    .bind(org)
    .bind(issued_at.unwrap_or(i64::MAX))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(org_from))
}

/// The claims about the user, in ID tokens and from userinfo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserClaims {
    pub sub: String,
    pub email: String,
    pub name: String,
    pub org: OrgClaim,
}

impl UserClaims {
    pub fn new(user: &UserRow, org: OrgClaim) -> Self {
        Self {
            sub: user.id.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            org,
        }
    }
}

/// An ID token's claims (OpenID Connect Core §2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The Hub session: what the session check and back-channel logout name.
    pub sid: String,
    #[serde(flatten)]
    pub user: UserClaims,
}

/// Sign `claims` with the current key (RS256, `kid` in the header).
pub async fn sign<T: Serialize>(pool: &AnyPool, claims: &T, typ: &str) -> Result<String, KeyError> {
    let key = keys::signing(pool).await?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| KeyError::Corrupt {
        kid: key.kid,
        why: e.to_string(),
    })
}

/// The claims of an ID token this platform signed, expired or not (for an
/// end-session `id_token_hint`); `None` if it is not one of ours.
pub async fn verify_hint(
    pool: &AnyPool,
    issuer: &str,
    token: &str,
) -> Result<Option<IdClaims>, KeyError> {
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Ok(None);
    };
    let Some(kid) = header.kid else {
        return Ok(None);
    };
    let published = keys::published(pool).await?;
    let Some(key) = published.iter().find(|k| k.kid == kid) else {
        return Ok(None);
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_issuer(&[issuer]);
    validation.required_spec_claims.clear();
    Ok(
        jsonwebtoken::decode::<IdClaims>(token, &key.decoding_key()?, &validation)
            .ok()
            .map(|data| data.claims),
    )
}
