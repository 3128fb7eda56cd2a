//! Signing users in through the Hub: the PKCE sign-in kept under a cookie
//! until the callback, the app's session under another, and the Hub session
//! re-checked when due (its `recheck_at`) so that signing out of Mno signs
//! out of the app; a back-channel logout from the Hub ends it at once.

use std::collections::HashMap;

use anyhow::Result;
use axum::extract::{FromRef, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mno_sdk::sso::{PendingSignIn, SessionChecks, Sso};
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

use crate::html::{page, PageError};

/// A signed-in user's session in the app.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_name: String,
    pub org: String,
    pub org_name: String,
    /// The org's ISO 4217 currency.
    pub org_currency: String,
    /// The Hub session, re-checked when due.
    pub hub_session: String,
    pub id_token: String,
}

/// Sign-in for one app: its cookies are named `<app>_session` and `<app>_pending`.
#[derive(Clone)]
pub struct SignIn {
    sso: Sso,
    checks: SessionChecks,
    pool: SqlitePool,
    title: &'static str,
    session_cookie: String,
    pending_cookie: String,
    public_url: String,
}

impl SignIn {
    /// Sign-in through `sso` for the app called `title`, its sessions in
    /// `pool` (the tables are made if missing), its cookies named after `app`.
    pub async fn new(
        sso: Sso,
        pool: SqlitePool,
        app: &str,
        title: &'static str,
        public_url: &str,
    ) -> Result<SignIn> {
        for statement in [
            "CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, user_name TEXT NOT NULL,
               org TEXT NOT NULL, org_name TEXT NOT NULL, org_currency TEXT NOT NULL,
               hub_session TEXT NOT NULL, id_token TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS pending_sign_ins (token TEXT PRIMARY KEY, pending TEXT NOT NULL)",
        ] {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(SignIn {
            checks: SessionChecks::new(sso.clone()),
            sso,
            pool,
            title,
            session_cookie: format!("{app}_session"),
            pending_cookie: format!("{app}_pending"),
            public_url: public_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The signed-in user, if their session here and their Hub session both live.
    pub async fn user(&self, headers: &HeaderMap) -> Result<Option<Session>> {
        let Some(token) = cookie(headers, &self.session_cookie) else {
            return Ok(None);
        };
        let Some(session) = self.session(token).await? else {
            return Ok(None);
        };
        // Signed out of the Hub: signed out here too.
        if !self.checks.is_live(&session.hub_session).await? {
            self.end_session(token).await?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// `GET /login`: off to the Hub, the pending sign-in kept under a cookie.
    pub async fn login(&self) -> Result<Response> {
        let (url, pending) = self.sso.authorization_url()?;
        let token = random_token();
        sqlx::query("INSERT INTO pending_sign_ins (token, pending) VALUES (?, ?)")
            .bind(&token)
            .bind(serde_json::to_string(&pending)?)
            .execute(&self.pool)
            .await?;
        Ok((
            [set_cookie(&self.pending_cookie, &token)],
            Redirect::to(url.as_str()),
        )
            .into_response())
    }

    /// `GET /auth/callback`: the user back from the Hub, signed in here.
    pub async fn callback(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Response> {
        let pending: Option<String> = match cookie(headers, &self.pending_cookie) {
            // A pending sign-in is good once.
            Some(token) => {
                sqlx::query_scalar("DELETE FROM pending_sign_ins WHERE token = ? RETURNING pending")
                    .bind(token)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => None,
        };
        let Some(pending) = pending else {
            let body = "<p>This sign-in expired. <a href=\"/login\">Sign in again</a></p>";
            return Ok((StatusCode::BAD_REQUEST, Html(page(self.title, body))).into_response());
        };
        let pending: PendingSignIn = serde_json::from_str(&pending)?;
        let signed_in = self.sso.callback(&pending, query.unwrap_or("")).await?;
        let token = random_token();
        let user = signed_in.user;
        sqlx::query(
            "INSERT INTO sessions (token, user_name, org, org_name, org_currency, hub_session, id_token)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&token)
        .bind(user.name)
        .bind(user.org.id)
        .bind(user.org.name)
        .bind(user.org.currency)
        .bind(user.session_id)
        .bind(signed_in.id_token)
        .execute(&self.pool)
        .await?;
        Ok((
            [set_cookie(&self.session_cookie, &token)],
            Redirect::to("/"),
        )
            .into_response())
    }

    /// `GET /logout`: signed out here, then off to the Hub to sign out there.
    pub async fn logout(&self, headers: &HeaderMap) -> Result<Response> {
        let Some(token) = cookie(headers, &self.session_cookie) else {
            return Ok(Redirect::to("/").into_response());
        };
        let session = self.session(token).await?;
        self.end_session(token).await?;
        match session {
            Some(session) => {
                let back = format!("{}/", self.public_url);
                let url = self.sso.logout_url(&session.id_token, Some(&back), None)?;
                Ok(Redirect::to(url.as_str()).into_response())
            }
            None => Ok(Redirect::to("/").into_response()),
        }
    }

    /// `POST /backchannel-logout` (the Hub's form with a `logout_token`): the
    /// app's sessions made with the Hub session it names end now. A token
    /// that does not validate is refused with 400 and ends nothing.
    pub async fn backchannel_logout(&self, logout_token: Option<&str>) -> Result<Response> {
        let refused = |why: String| -> Result<Response> {
            let error = serde_json::json!({
                "error": "invalid_request",
                "error_description": format!("{why}: send the logout token the Hub signed for this app as the form field logout_token"),
            });
            Ok((StatusCode::BAD_REQUEST, axum::Json(error)).into_response())
        };
        let Some(token) = logout_token else {
            return refused("no logout_token".into());
        };
        let logout = match self.sso.validate_logout_token(token).await {
            Ok(logout) => logout,
            Err(e) => return refused(format!("logout_token refused ({e})")),
        };
        sqlx::query("DELETE FROM sessions WHERE hub_session = ?")
            .bind(&logout.sid)
            .execute(&self.pool)
            .await?;
        self.checks.forget(&logout.sid);
        Ok(StatusCode::OK.into_response())
    }

    async fn session(&self, token: &str) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT user_name, org, org_name, org_currency, hub_session, id_token FROM sessions
             WHERE token = ?",
        )
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| Session {
            user_name: row.get(0),
            org: row.get(1),
            org_name: row.get(2),
            org_currency: row.get(3),
            hub_session: row.get(4),
            id_token: row.get(5),
        }))
    }

    async fn end_session(&self, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token = ?")
            .bind(token)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl SignIn {
    /// The routes of signing in, for an app whose state holds its `SignIn`:
    /// `GET /login`, `GET /auth/callback`, `GET /logout` and `POST /backchannel-logout`.
    pub fn routes<S>() -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
        SignIn: FromRef<S>,
    {
        Router::new()
            .route("/login", get(login))
            .route("/auth/callback", get(callback))
            .route("/logout", get(logout))
            .route("/backchannel-logout", post(backchannel_logout))
    }
}

async fn login(State(sign_in): State<SignIn>) -> Result<Response, PageError> {
    Ok(sign_in.login().await?)
}

async fn callback(
    State(sign_in): State<SignIn>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    Ok(sign_in.callback(&headers, query.as_deref()).await?)
}

async fn logout(State(sign_in): State<SignIn>, headers: HeaderMap) -> Result<Response, PageError> {
    Ok(sign_in.logout(&headers).await?)
}

async fn backchannel_logout(
    State(sign_in): State<SignIn>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let token = form.get("logout_token").map(String::as_str);
    Ok(sign_in.backchannel_logout(token).await?)
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str) -> (header::HeaderName, String) {
    (
        header::SET_COOKIE,
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax"),
    )
}

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; crm_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, "crm_session"), Some("abc"));
        assert_eq!(cookie(&headers, "books_session"), None);
    }
}
