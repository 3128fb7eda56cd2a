//! The SQL of single sign-on: each app's registered URLs, authorization
//! codes, access tokens, and which apps a Hub session signed in to.

use serde_json::{json, Value};
use sqlx::{Any, AnyPool, Transaction};

use crate::secrets::sha256_hex;
use crate::store::now_ms;

/// What an app registered for sign-in (all URLs matched exactly).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Client {
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
}

impl Client {
    /// The fields as the app API shows them.
    pub fn add_to(&self, out: &mut Value) {
        out["redirect_uris"] = json!(self.redirect_uris);
        out["post_logout_redirect_uris"] = json!(self.post_logout_redirect_uris);
        out["backchannel_logout_uri"] = json!(self.backchannel_logout_uri);
    }
}

/// A change to an app's sign-in settings: `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct ClientChange {
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `Some(None)` clears the URI.
    pub backchannel_logout_uri: Option<Option<String>>,
}

impl ClientChange {
    pub fn is_empty(&self) -> bool {
        self.redirect_uris.is_none()
            && self.post_logout_redirect_uris.is_none()
            && self.backchannel_logout_uri.is_none()
    }

    fn apply(self, client: &mut Client) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if let Some(v) = self.redirect_uris.filter(|v| *v != client.redirect_uris) {
            client.redirect_uris = v;
            changed.push("redirect_uris");
        }
        if let Some(v) = self
            .post_logout_redirect_uris
            .filter(|v| *v != client.post_logout_redirect_uris)
        {
            client.post_logout_redirect_uris = v;
            changed.push("post_logout_redirect_uris");
        }
        if let Some(v) = self
            .backchannel_logout_uri
            .filter(|v| *v != client.backchannel_logout_uri)
        {
            client.backchannel_logout_uri = v;
            changed.push("backchannel_logout_uri");
        }
        changed
    }
}

type ClientTuple = (String, String, Option<String>);

fn client_from((redirects, post_logout, backchannel): ClientTuple) -> Client {
    Client {
        redirect_uris: serde_json::from_str(&redirects).unwrap_or_default(),
        post_logout_redirect_uris: serde_json::from_str(&post_logout).unwrap_or_default(),
        backchannel_logout_uri: backchannel,
    }
}

const CLIENT_QUERY: &str = "SELECT redirect_uris, post_logout_redirect_uris, backchannel_logout_uri FROM hub_sso_clients WHERE app_id = $1";

/// The app's sign-in settings (empty when it registered none).
pub async fn client(pool: &AnyPool, app: &str) -> Result<Client, sqlx::Error> {
    let row: Option<ClientTuple> = sqlx::query_as(CLIENT_QUERY)
        .bind(app)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(client_from).unwrap_or_default())
}

/// Apply `change` to the app's settings inside the app's write transaction;
/// returns the settings and the names of the fields that changed.
pub async fn save_client(
    tx: &mut Transaction<'static, Any>,
    app: &str,
    change: ClientChange,
) -> Result<(Client, Vec<&'static str>), sqlx::Error> {
    let row: Option<ClientTuple> = sqlx::query_as(CLIENT_QUERY)
        .bind(app)
        .fetch_optional(&mut **tx)
        .await?;
    let existed = row.is_some();
    let mut client = row.map(client_from).unwrap_or_default();
    let changed = change.apply(&mut client);
    if changed.is_empty() {
        return Ok((client, changed));
    }
    let sql = if existed {
        "UPDATE hub_sso_clients SET redirect_uris = $2, post_logout_redirect_uris = $3, backchannel_logout_uri = $4, updated_at = $5 WHERE app_id = $1"
    } else {
        "INSERT INTO hub_sso_clients (app_id, redirect_uris, post_logout_redirect_uris, backchannel_logout_uri, updated_at) VALUES ($1, $2, $3, $4, $5)"
    };
    sqlx::query(sql)
        .bind(app)
        .bind(json!(client.redirect_uris).to_string())
        .bind(json!(client.post_logout_redirect_uris).to_string())
        .bind(&client.backchannel_logout_uri)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok((client, changed))
}

/// What an authorization code stands for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Grant {
    pub app_id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub org_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub scope: String,
    pub auth_time: i64,
}

/// Store a new code (its hash) valid for `ttl_ms`.
pub async fn insert_code(
    pool: &AnyPool,
    code: &str,
    grant: &Grant,
    ttl_ms: i64,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO hub_sso_codes (code_hash, app_id, client_id, user_id, session_id, org_id, redirect_uri,
         code_challenge, nonce, scope, auth_time, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(sha256_hex(code))
    .bind(&grant.app_id)
    .bind(&grant.client_id)
    .bind(&grant.user_id)
    .bind(&grant.session_id)
    .bind(&grant.org_id)
    .bind(&grant.redirect_uri)
    .bind(&grant.code_challenge)
    .bind(&grant.nonce)
    .bind(&grant.scope)
    .bind(grant.auth_time)
    .bind(now)
    .bind(now + ttl_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// Why a code cannot be redeemed.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeRefused {
    Unknown,
    Expired,
    /// Issued to another client: left unused, so that a client that saw it
    /// cannot spoil the sign-in of the one it was issued to.
    OtherClient,
    /// Presented before by its client (a refused exchange uses it too);
    /// `revoked`: tokens had been issued with it, and are revoked now.
    Replayed {
        revoked: bool,
    },
}

/// A stored code: its grant and its life.
#[derive(sqlx::FromRow)]
struct CodeRow {
    #[sqlx(flatten)]
    grant: Grant,
    used_at: Option<i64>,
    created_at: i64,
}

/// Redeem a code once: mark it used and return its grant. A second redemption
/// revokes the access tokens the first one got (RFC 6749 §4.1.2).
/// Redeem `code` for the client `app_id` (authenticated): only its own client uses it up.
/// With the grant, when the code was issued (unix ms).
pub async fn redeem_code(
    pool: &AnyPool,
    code: &str,
    app_id: &str,
) -> Result<Result<(Grant, i64), CodeRefused>, sqlx::Error> {
    let hash = sha256_hex(code);
    let now = now_ms();
    let mut tx = pool.begin().await?;
    // Write first: the conditions make the single use hold against a concurrent
    // redemption, and the transaction takes the write lock at once (SQLite
    // refuses to upgrade a read transaction that another writer overtook).
    let marked = sqlx::query(
        "UPDATE hub_sso_codes SET used_at = $1 WHERE code_hash = $2 AND app_id = $3 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(&hash)
    .bind(app_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let row: Option<CodeRow> = sqlx::query_as(
        "SELECT app_id, client_id, user_id, session_id, org_id, redirect_uri, code_challenge, nonce, scope,
         auth_time, used_at, created_at FROM hub_sso_codes WHERE code_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(CodeRow {
        grant,
        used_at,
        created_at,
    }) = row
    else {
        return Ok(Err(CodeRefused::Unknown));
    };
    let refused = if marked == 1 {
        None
    } else if grant.app_id != app_id {
        Some(CodeRefused::OtherClient)
    } else if used_at.is_some() {
        let revoked = sqlx::query("UPDATE hub_sso_access_tokens SET revoked_at = $1 WHERE code_hash = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(&hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        Some(CodeRefused::Replayed {
            revoked: revoked > 0,
        })
    } else {
        Some(CodeRefused::Expired)
    };
    tx.commit().await?;
    Ok(match refused {
        None => Ok((grant, created_at)),
        Some(why) => Err(why),
    })
}

/// Store an access token (its hash) issued with `code`.
pub async fn insert_access_token(
    pool: &AnyPool,
    token: &str,
    code: &str,
    grant: &Grant,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO hub_sso_access_tokens (token_hash, code_hash, app_id, user_id, session_id, org_id, expires_at, issued_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(sha256_hex(token))
    .bind(sha256_hex(code))
    .bind(&grant.app_id)
    .bind(&grant.user_id)
    .bind(&grant.session_id)
    .bind(&grant.org_id)
    .bind(expires_at)
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

/// The (app, user, org, issued_at) of a live access token whose Hub session is live too.
pub async fn access_token(
    pool: &AnyPool,
    token: &str,
) -> Result<Option<(String, String, String, Option<i64>)>, sqlx::Error> {
    let now = now_ms();
    sqlx::query_as(
        "SELECT t.app_id, t.user_id, t.org_id, t.issued_at FROM hub_sso_access_tokens t JOIN hub_sessions s ON s.id = t.session_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2
           AND s.revoked_at IS NULL AND s.expires_at > $2",
    )
    .bind(sha256_hex(token))
    .bind(now)
    .fetch_optional(pool)
    .await
}

/// Record that a session signed in to an app (idempotent).
pub async fn record_login(pool: &AnyPool, grant: &Grant) -> Result<(), sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO hub_sso_logins (session_id, app_id, client_id, user_id, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&grant.session_id)
    .bind(&grant.app_id)
    .bind(&grant.client_id)
    .bind(&grant.user_id)
    .bind(now_ms())
    .execute(pool)
    .await;
    match result {
        Err(e) if crate::store::is_unique_violation(&e) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// When the session (signed in to `app`) ends, if it is live; `None` otherwise.
pub async fn live_login(
    pool: &AnyPool,
    session_id: &str,
    app: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT s.expires_at FROM hub_sso_logins l JOIN hub_sessions s ON s.id = l.session_id
         WHERE l.session_id = $1 AND l.app_id = $2 AND s.revoked_at IS NULL AND s.expires_at > $3",
    )
    .bind(session_id)
    .bind(app)
    .bind(now_ms())
    .fetch_optional(pool)
    .await
}

/// An app to tell that a session ended.
#[derive(Debug, Clone)]
pub struct PendingLogout {
    pub app_id: String,
    pub client_id: String,
    pub user_id: String,
    pub uri: String,
}

/// The apps the session signed in to that registered a back-channel logout
/// URI and have not taken the logout yet.
pub async fn pending_logouts(
    pool: &AnyPool,
    session_id: &str,
) -> Result<Vec<PendingLogout>, sqlx::Error> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT l.app_id, l.client_id, l.user_id, c.backchannel_logout_uri
         FROM hub_sso_logins l JOIN hub_sso_clients c ON c.app_id = l.app_id
         WHERE l.session_id = $1 AND l.logout_sent_at IS NULL AND c.backchannel_logout_uri IS NOT NULL
         ORDER BY l.created_at, l.app_id",
    )
    .bind(session_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(app_id, client_id, user_id, uri)| PendingLogout {
            app_id,
            client_id,
            user_id,
            uri,
        })
        .collect())
}

pub async fn mark_logout_sent(
    pool: &AnyPool,
    session_id: &str,
    app: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE hub_sso_logins SET logout_sent_at = $1 WHERE session_id = $2 AND app_id = $3",
    )
    .bind(now_ms())
    .bind(session_id)
    .bind(app)
    .execute(pool)
    .await?;
    Ok(())
}

/// The user and live state of a Hub session by id (for end-session by ID token hint).
pub async fn session_owner(
    pool: &AnyPool,
    session_id: &str,
) -> Result<Option<(String, bool)>, sqlx::Error> {
    let row: Option<(String, Option<i64>, i64)> =
        sqlx::query_as("SELECT user_id, revoked_at, expires_at FROM hub_sessions WHERE id = $1")
            .bind(session_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(user, revoked, expires)| (user, revoked.is_none() && expires > now_ms())))
}
