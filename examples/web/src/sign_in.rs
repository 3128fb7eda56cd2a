//! Signing users in through the Hub: the PKCE sign-in kept under a cookie
//! until the callback, the app's session under another, and the Hub session
//! checked on every page so that signing out of Mno signs out of the app.

use anyhow::Result;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use mno_sdk::sso::{PendingSignIn, Sso};
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

use crate::html::page;

/// A signed-in user's session in the app.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_name: String,
    pub org: String,
    pub org_name: String,
    /// The org's ISO 4217 currency.
    pub org_currency: String,
    /// The Hub session, checked on every page.
    pub hub_session: String,
    pub id_token: String,
}

/// Sign-in for one app: its cookies are named `<app>_session` and `<app>_pending`.
#[derive(Clone)]
pub struct SignIn {
    sso: Sso,
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
        if !self.sso.session_check(&session.hub_session).await?.valid {
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
