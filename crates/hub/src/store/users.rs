//! Users and their sessions.

use serde_json::json;
use sqlx::AnyPool;

use super::{new_id, now_ms, rfc3339, NewEvent, Store, WriteTx};
use mno_events::subject::{hub_kind, PLATFORM_ORG};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub created_at: i64,
}

impl UserRow {
    /// The user as the API shows it (never the hash).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "created_at": rfc3339(self.created_at),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email taken")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Create a user; `email` is already normalised (lower case).
pub async fn create(
    store: &Store,
    email: &str,
    name: &str,
    password_hash: &str,
) -> Result<UserRow, CreateUserError> {
    let mut w = store.begin_write().await?;
    let taken: Option<String> = sqlx::query_scalar("SELECT id FROM hub_users WHERE email = $1")
        .bind(email)
        .fetch_optional(&mut *w.tx)
        .await?;
    if taken.is_some() {
        return Err(CreateUserError::EmailTaken);
    }
    let now = now_ms();
    let user = UserRow {
        id: new_id(),
        email: email.to_owned(),
        name: name.to_owned(),
        password_hash: password_hash.to_owned(),
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO hub_users (id, email, name, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(&user.name)
    .bind(&user.password_hash)
    .bind(now)
    .execute(&mut *w.tx)
    .await
    .map_err(|e| {
        if super::is_unique_violation(&e) {
            CreateUserError::EmailTaken
        } else {
            e.into()
        }
    })?;
    w.emit(
        NewEvent::new(
            PLATFORM_ORG,
            hub_kind::USER_CREATED,
            ("user", user.id.clone()),
        )
        .user(&user.id)
        .payload(json!({"user_id": user.id, "name": user.name})),
    )
    .await?;
    w.commit().await?;
    Ok(user)
}

pub(crate) const USER_COLUMNS: &str = "id, email, name, password_hash, created_at";

pub async fn by_email(pool: &AnyPool, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM hub_users WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(pool)
    .await
}

pub async fn by_id(pool: &AnyPool, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM hub_users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

pub async fn count(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM hub_users")
        .fetch_one(pool)
        .await
}

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub session_id: String,
    pub expires_at: i64,
    pub user: UserRow,
}

/// Store a new session (only the token's hash); returns its id.
pub async fn create_session(
    pool: &AnyPool,
    user_id: &str,
    token_hash: &str,
    expires_at: i64,
) -> Result<String, sqlx::Error> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO hub_sessions (id, token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(token_hash)
    .bind(user_id)
    .bind(now_ms())
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(id)
}

/// The session with this token hash, if it is neither expired nor revoked.
pub async fn live_session(
    pool: &AnyPool,
    token_hash: &str,
) -> Result<Option<SessionUser>, sqlx::Error> {
    let row: Option<(String, i64, String, String, String, String, i64)> = sqlx::query_as(
        "SELECT s.id, s.expires_at, u.id, u.email, u.name, u.password_hash, u.created_at
         FROM hub_sessions s JOIN hub_users u ON u.id = s.user_id
         WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
    )
    .bind(token_hash)
    .bind(now_ms())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |(session_id, expires_at, id, email, name, password_hash, created_at)| SessionUser {
            session_id,
            expires_at,
            user: UserRow {
                id,
                email,
                name,
                password_hash,
                created_at,
            },
        },
    ))
}

/// Revoke a session and tell the caches (`session_revoked`).
pub async fn revoke_session(
    store: &Store,
    session_id: &str,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    let mut w = store.begin_write().await?;
    sqlx::query("UPDATE hub_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(session_id)
        .execute(&mut *w.tx)
        .await?;
    w.emit(session_revoked(user_id, session_id)).await?;
    w.commit().await
}

/// Change the user's name; `None` when there is no such user. A name that
/// does not change writes nothing (no event).
pub async fn rename(
    store: &Store,
    user_id: &str,
    name: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    let mut w = store.begin_write().await?;
    let Some(mut user): Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM hub_users WHERE id = $1"
    ))
    .bind(user_id)
    .fetch_optional(&mut *w.tx)
    .await?
    else {
        return Ok(None);
    };
    if user.name == name {
        return Ok(Some(user));
    }
    user.name = name.to_owned();
    sqlx::query("UPDATE hub_users SET name = $1, updated_at = $2 WHERE id = $3")
        .bind(name)
        .bind(now_ms())
        .bind(user_id)
        .execute(&mut *w.tx)
        .await?;
    w.emit(user_updated(user_id, json!({"name": name}), &["name"]))
        .await?;
    w.commit().await?;
    Ok(Some(user))
}

/// The `user_updated` event: what changed (never a password or its hash).
fn user_updated(user_id: &str, mut payload: serde_json::Value, changed: &[&str]) -> NewEvent {
    payload["user_id"] = json!(user_id);
    payload["changed_fields"] = json!(changed);
    NewEvent::new(
        PLATFORM_ORG,
        hub_kind::USER_UPDATED,
        ("user", user_id.to_owned()),
    )
    .user(user_id)
    .payload(payload)
}

/// Store a new password hash in `w` and end the user's live sessions but
/// `keep` (each with its `session_revoked` event, which back-channel logout
/// acts on). Returns how many sessions ended.
pub async fn set_password_in(
    w: &mut WriteTx,
    user_id: &str,
    password_hash: &str,
    keep: Option<&str>,
) -> Result<usize, sqlx::Error> {
    sqlx::query("UPDATE hub_users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(password_hash)
        .bind(now_ms())
        .bind(user_id)
        .execute(&mut *w.tx)
        .await?;
    w.emit(user_updated(user_id, json!({}), &["password"]))
        .await?;
    // A reset link made before no longer resets: one that leaked would
    // otherwise undo the change for the rest of its hour.
    super::password_resets::spend_all_in(w, user_id).await?;
    end_sessions_in(w, user_id, keep).await
}

/// Change the password from `verified_hash` (the one the caller's current
/// password was checked against) and end every other session of the user
/// (the one `keep`s its caller signed in). `None` when the password changed
/// meanwhile (another session's change won the race): nothing is written.
/// Otherwise, how many sessions ended.
pub async fn change_password(
    store: &Store,
    user_id: &str,
    verified_hash: &str,
    password_hash: &str,
    keep: &str,
) -> Result<Option<usize>, sqlx::Error> {
    let mut w = store.begin_write().await?;
    // Read under the write lock: two changes at once are decided one after the other.
    let stored: Option<String> =
        sqlx::query_scalar("SELECT password_hash FROM hub_users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut *w.tx)
            .await?;
    if stored.as_deref() != Some(verified_hash) {
        return Ok(None);
    }
    let ended = set_password_in(&mut w, user_id, password_hash, Some(keep)).await?;
    w.commit().await?;
    Ok(Some(ended))
}

/// End every live session of the user ("sign out everywhere"), and spend their
/// unused reset links (whoever signs out everywhere fears someone else got
/// in). Returns how many sessions ended.
pub async fn end_all_sessions(store: &Store, user_id: &str) -> Result<usize, sqlx::Error> {
    let mut w = store.begin_write().await?;
    super::password_resets::spend_all_in(&mut w, user_id).await?;
    let ended = end_sessions_in(&mut w, user_id, None).await?;
    w.commit().await?;
    Ok(ended)
}

/// Revoke the user's live sessions but `keep`, each with its `session_revoked` event.
async fn end_sessions_in(
    w: &mut WriteTx,
    user_id: &str,
    keep: Option<&str>,
) -> Result<usize, sqlx::Error> {
    let now = now_ms();
    let live: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM hub_sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(&mut *w.tx)
    .await?;
    let ending: Vec<String> = live
        .into_iter()
        .filter(|id| Some(id.as_str()) != keep)
        .collect();
    for session_id in &ending {
        sqlx::query("UPDATE hub_sessions SET revoked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(session_id)
            .execute(&mut *w.tx)
            .await?;
        w.emit(session_revoked(user_id, session_id)).await?;
    }
    Ok(ending.len())
}

fn session_revoked(user_id: &str, session_id: &str) -> NewEvent {
    NewEvent::new(
        PLATFORM_ORG,
        hub_kind::SESSION_REVOKED,
        ("user", user_id.to_owned()),
    )
    .user(user_id)
    .payload(json!({"user_id": user_id, "session_id": session_id}))
}
