//! One-time password reset links: the platform sends no mail, so an operator
//! makes a link (`mno users reset-password <email>`) and hands it to the user.
//! Only the SHA-256 of the link's random token is stored; a link works once,
//! for [`RESET_TTL`], and using it ends every session of the user.

use std::time::Duration;

use sqlx::AnyPool;

use super::users::{self, UserRow};
use super::{new_id, now_ms, Store, WriteTx};
use crate::secrets;

/// How long a reset link works.
pub const RESET_TTL: Duration = Duration::from_secs(3600);
/// Prefix of reset tokens (the last part of `<public url>/reset/<token>`).
pub const TOKEN_PREFIX: &str = "mpr_";

/// A new link's token (shown once, to the operator) and when it expires.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub expires_at: i64,
    pub user: UserRow,
}

/// A new reset token for the user with this (normalised) email, valid for
/// `ttl`; `None` when no user has that email.
pub async fn issue(
    store: &Store,
    email: &str,
    ttl: Duration,
) -> Result<Option<Issued>, sqlx::Error> {
    let Some(user) = users::by_email(&store.pool, email).await? else {
        return Ok(None);
    };
    let token = secrets::new_opaque_token(TOKEN_PREFIX);
    let now = now_ms();
    let expires_at = now + ttl.as_millis() as i64;
    sqlx::query(
        "INSERT INTO hub_password_resets (id, token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id())
    .bind(secrets::sha256_hex(&token))
    .bind(&user.id)
    .bind(now)
    .bind(expires_at)
    .execute(&store.pool)
    .await?;
    Ok(Some(Issued {
        token,
        expires_at,
        user,
    }))
}

/// Why a token cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    Unknown,
    Used,
    Expired,
}

/// A usable token's user and expiry.
#[derive(Debug, Clone)]
pub struct Usable {
    pub user: UserRow,
    pub expires_at: i64,
}

/// What the token is good for now.
pub async fn lookup(pool: &AnyPool, token: &str) -> Result<Result<Usable, Unusable>, sqlx::Error> {
    let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT user_id, expires_at, used_at FROM hub_password_resets WHERE token_hash = $1",
    )
    .bind(secrets::sha256_hex(token))
    .fetch_optional(pool)
    .await?;
    let Some((user_id, expires_at, used_at)) = row else {
        return Ok(Err(Unusable::Unknown));
    };
    if used_at.is_some() {
        return Ok(Err(Unusable::Used));
    }
    if expires_at <= now_ms() {
        return Ok(Err(Unusable::Expired));
    }
    Ok(match users::by_id(pool, &user_id).await? {
        Some(user) => Ok(Usable { user, expires_at }),
        None => Err(Unusable::Unknown),
    })
}

/// Spend every unused link of the user: a password set (by a link or a
/// change) or a sign-out everywhere ends what older links could do.
pub async fn spend_all_in(w: &mut WriteTx, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE hub_password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
    )
    .bind(now_ms())
    .bind(user_id)
    .execute(&mut *w.tx)
    .await?;
    Ok(())
}

/// Spend the token: the user's new password hash, every unused link of the
/// user spent with it, every session ended. Checked again inside the write
/// transaction, so two uses at once cannot both succeed. Returns the user and
/// how many sessions ended.
pub async fn redeem(
    store: &Store,
    token: &str,
    password_hash: &str,
) -> Result<Result<(UserRow, usize), Unusable>, sqlx::Error> {
    let mut w = store.begin_write().await?;
    let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT user_id, expires_at, used_at FROM hub_password_resets WHERE token_hash = $1",
    )
    .bind(secrets::sha256_hex(token))
    .fetch_optional(&mut *w.tx)
    .await?;
    let now = now_ms();
    let user_id = match row {
        None => return Ok(Err(Unusable::Unknown)),
        Some((_, _, Some(_))) => return Ok(Err(Unusable::Used)),
        Some((_, expires_at, None)) if expires_at <= now => return Ok(Err(Unusable::Expired)),
        Some((user_id, _, None)) => user_id,
    };
    // Setting the password spends this link and the user's others.
    let ended = users::set_password_in(&mut w, &user_id, password_hash, None).await?;
    let user: UserRow = sqlx::query_as(&format!(
        "SELECT {} FROM hub_users WHERE id = $1",
        users::USER_COLUMNS
    ))
    .bind(&user_id)
    .fetch_one(&mut *w.tx)
    .await?;
    w.commit().await?;
    Ok(Ok((user, ended)))
}
