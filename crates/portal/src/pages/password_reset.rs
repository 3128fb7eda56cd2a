//! The page of a password reset link, `/reset/<token>`: the platform sends no
//! mail, so an operator makes the link (`mno users reset-password <email>`)
//! and hands it over. It sets a new password once, within the hour, and ends
//! every session of the account; a link that does not work says so in plain
//! words, and what to do.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde_json::{json, Value};

use super::account::signed_out_to_signin;
use super::auth::with_anon_cookie;
use crate::api::{ApiFailure, Auth};
use crate::bare;
use crate::error::PageError;
use crate::forms::{self, Field, FormData};
use crate::layout;
use crate::session::{check_csrf, Visitor};
use crate::PortalState;

/// What to do about a link that does not work.
const ASK: &str = "Ask the platform's operator for a new link: they make one with the command mno users reset-password and your email address.";

/// The page for a link the Hub refused (404 unknown, 410 used or expired);
/// `None` for any other failure, which is not about the link.
fn dead_link(failure: &ApiFailure) -> Option<Markup> {
    let code = failure.errors.first().map_or("", |e| e.code.as_str());
    let (title, why) = match (failure.status, code) {
        (StatusCode::GONE, "reset_link_used") => (
            "This link was already used",
            "Each password reset link works once, and this one has set a password already.",
        ),
        (StatusCode::GONE, _) => (
            "This link has expired",
            "A password reset link works for one hour after it is made, and this one is older.",
        ),
        (StatusCode::NOT_FOUND, _) => (
            "This link does not work",
            "This password reset link is not known: it may have been mistyped or cut short when it was copied.",
        ),
        _ => return None,
    };
    Some(bare::bare_with(
        title,
        html! {
            p.notice #reset-refused { (why) " " (ASK) }
            p { "Remember your password after all? " a href="/signin" { "Sign in" } }
        },
    ))
}

fn form_page(visitor: &Visitor, token: &str, link: &Value, failure: Option<&ApiFailure>) -> Markup {
    let email = link["email"].as_str().unwrap_or_default();
    let until = link["expires_at"].as_str().unwrap_or_default();
    // "2026-12-04T05:15:00.000Z" → "05:15 UTC"
    let until = until
        .get(11..16)
        .map(|t| format!("{t} UTC"))
        .unwrap_or_default();
    bare::bare_with(
        "Choose a new password",
        html! {
            @if let Some(f) = failure { (layout::problems(f.others(&["password"]))) }
            p { "For the account " strong #reset-email { (email) } ". This link works once, until " (until) "." }
            p.hint { "Once the password is set, every session of the account ends, on every device: sign in again with the new password." }
            form method="post" action={ "/reset/" (token) } {
                (forms::csrf(&visitor.csrf))
                // For password managers: whose password this is.
                input type="hidden" name="username" value=(email) autocomplete="username";
                (Field::new("password", "New password").kind("password").autocomplete("new-password").hint("At least 10 characters.").render(failure))
                button type="submit" { "Set new password" }
            }
        },
    )
}

async fn look_up(state: &PortalState, token: &str) -> Result<Value, ApiFailure> {
    state
        .api
        .post(
            Auth::Anonymous,
            "/hub/v1/password_resets/lookup",
            &json!({"token": token}),
        )
        .await
}

/// A link the Hub refused gets its page; another failure is the portal's error page.
fn refused(failure: ApiFailure) -> Result<Response, PageError> {
    match dead_link(&failure) {
        // With the Hub's status (404, 410), as the portal's other refusals.
        Some(page) => Ok((failure.status, page).into_response()),
        None => Err(PageError::Api(failure)),
    }
}

/// `GET /reset/{token}`: the form, if the link works.
pub async fn page(
    State(state): State<PortalState>,
    visitor: Visitor,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    match look_up(&state, &token).await {
        Ok(link) => Ok(with_anon_cookie(
            &visitor,
            form_page(&visitor, &token, &link, None),
        )),
        Err(failure) => refused(failure),
    }
}

/// `POST /reset/{token}`: set the password; then to sign in, which says so.
pub async fn reset(
    State(state): State<PortalState>,
    headers: HeaderMap,
    visitor: Visitor,
    Path(token): Path<String>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    check_csrf(&state, &visitor.anon, &form)?;
    let password = form.get("password").cloned().unwrap_or_default();
    let body = json!({"token": token, "password": password});
    match state
        .api
        .post(Auth::Anonymous, "/hub/v1/password_resets/redeem", &body)
        .await
    {
        Ok(_) => {
            // The browser may hold another account's session (someone opened
            // a link for another account): it ends too, as the notice says.
            super::auth::end_browser_session(&state, &headers).await;
            Ok(signed_out_to_signin(
            &state,
            "Your password was changed, and every session of your account has ended. Sign in with the new password.",
        ))
        }
        Err(failure) if failure.status == StatusCode::UNPROCESSABLE_ENTITY => {
            let link = match look_up(&state, &token).await {
                Ok(link) => link,
                Err(gone) => return refused(gone),
            };
            Ok(form_page(&visitor, &token, &link, Some(&failure)).into_response())
        }
        Err(failure) => refused(failure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiErrorItem;

    fn failure(status: StatusCode, code: &str) -> ApiFailure {
        ApiFailure {
            status,
            errors: vec![ApiErrorItem {
                code: code.into(),
                detail: "from the Hub".into(),
                pointer: Some("/token".into()),
            }],
            retry_after: None,
        }
    }

    #[test]
    fn each_dead_link_says_why_and_to_ask_the_operator() {
        for (status, code, says) in [
            (StatusCode::GONE, "reset_link_used", "already used"),
            (StatusCode::GONE, "reset_link_expired", "has expired"),
            (StatusCode::NOT_FOUND, "not_found", "does not work"),
        ] {
            let html = dead_link(&failure(status, code)).unwrap().into_string();
            assert!(html.contains(says), "{html}");
            assert!(
                html.contains("Ask the platform's operator for a new link"),
                "{html}"
            );
        }
        assert!(dead_link(&failure(StatusCode::BAD_GATEWAY, "unavailable")).is_none());
    }
}
