//! Sign up, sign in and sign out: the Hub's users and sessions, with the
//! session token kept in an HttpOnly cookie.

use axum::extract::{Query, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

use crate::api::{ApiFailure, Auth};
use crate::bare;
use crate::error::{safe_next, PageError};
use crate::forms::{self, Field, FormData};
use crate::layout;
use crate::session::{self, check_csrf, Visitor, SESSION_COOKIE};
use crate::PortalState;

#[derive(Deserialize, Default)]
pub struct Next {
    next: Option<String>,
}

fn next_of(next: Option<&str>) -> String {
    safe_next(next.unwrap_or("/")).to_owned()
}

pub(crate) fn with_anon_cookie(visitor: &Visitor, page: Markup) -> Response {
    match visitor.set_cookie() {
        Some(cookie) => ([cookie], page).into_response(),
        None => page.into_response(),
    }
}

fn signin_form(
    visitor: &Visitor,
    next: &str,
    email: &str,
    failure: Option<&ApiFailure>,
    notice: Option<&str>,
) -> Markup {
    bare::bare_with(
        "Sign in",
        html! {
            // What the last form post did (signed out everywhere, a password reset).
            @if let Some(notice) = notice { p.notice.done #notice role="status" { (notice) } }
            @if let Some(f) = failure { (layout::problems(f.others(&["email", "password"]))) }
            @if next != "/" && failure.is_none() && notice.is_none() { p.notice { "Sign in to continue." } }
            form method="post" action="/signin" {
                (forms::csrf(&visitor.csrf))
                input type="hidden" name="next" value=(next);
                (Field::new("email", "Email").kind("email").value(email).autocomplete("email").render(failure))
                (Field::new("password", "Password").kind("password").autocomplete("current-password").render(failure))
                button type="submit" { "Sign in" }
            }
            p { "New here? " a href="/signup" { "Create an account" } }
        },
    )
}

pub async fn signin_page(
    State(state): State<PortalState>,
    visitor: Visitor,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Response {
    let next = next_of(q.next.as_deref());
    let notice = session::notice(&session::signed_out_notice_key(&state), &headers);
    with_anon_cookie(
        &visitor,
        signin_form(&visitor, &next, "", None, notice.as_deref()),
    )
}

/// The session cookie, and on to `next`. A session this browser held before
/// (someone else signed in here, or the same person again) is ended first:
/// replacing the cookie alone would leave its token working for a day.
async fn signed_in(state: &PortalState, headers: &HeaderMap, token: &str, next: &str) -> Response {
    end_browser_session(state, headers).await;
    (
        [(
            SET_COOKIE,
            session::set_cookie(SESSION_COOKIE, token, 86_400),
        )],
        Redirect::to(next),
    )
        .into_response()
}

/// End the session this browser holds, if any, on the Hub: dropping the
/// cookie alone would leave its token working for a day.
pub async fn end_browser_session(state: &PortalState, headers: &HeaderMap) {
    if let Some(previous) = session::cookie(headers, SESSION_COOKIE) {
        let _ = state
            .api
            .delete(Auth::Session(&previous), "/hub/v1/sessions/current")
            .await;
    }
}

pub async fn signin(
    State(state): State<PortalState>,
    headers: HeaderMap,
    visitor: Visitor,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    check_csrf(&state, &visitor.anon, &form)?;
    let next = next_of(form.get("next").map(String::as_str));
    let email = forms::value(&form, "email");
    let body =
        json!({"email": email, "password": form.get("password").cloned().unwrap_or_default()});
    match state
        .api
        .post(Auth::Visitor(&visitor.origin), "/hub/v1/sessions", &body)
        .await
    {
        Ok(answer) => {
            let token = answer["token"].as_str().unwrap_or_default();
            Ok(signed_in(&state, &headers, token, &next).await)
        }
        Err(failure) if failure.status == StatusCode::TOO_MANY_REQUESTS => {
            Ok(locked_out(&next, failure.retry_after))
        }
        Err(failure) => {
            Ok(signin_form(&visitor, &next, email, Some(&failure), None).into_response())
        }
    }
}

/// When a wait of `seconds` ends, in words: "in 5 minutes (at 14:05 UTC)".
fn wait_in_words(seconds: u64, now: chrono::DateTime<chrono::Utc>) -> String {
    let after = if seconds < 60 {
        format!("{seconds} second{}", if seconds == 1 { "" } else { "s" })
    } else {
        let minutes = seconds.div_ceil(60);
        format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
    };
    let at = now + chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 1000));
    format!("in {after} (at {} UTC)", at.format("%H:%M"))
}

/// The Hub locked this sign-in (too many failed passwords): 429 with the
/// Hub's `Retry-After`, as the Hub's own sign-in page answers, and a page
/// saying when to try again rather than the form, which would be refused.
fn locked_out(next: &str, retry_after: Option<u64>) -> Response {
    let when = retry_after.map_or_else(
        || "in a few minutes".to_owned(),
        |s| wait_in_words(s, chrono::Utc::now()),
    );
    let again = if next == "/" {
        "/signin".to_owned()
    } else {
        crate::error::signin_url(next)
    };
    let page = bare::bare_with(
        "Too many failed sign-ins",
        html! {
            p.notice #locked-out role="alert" {
                "There were too many failed attempts to sign in, so signing in is paused for a while to keep the account safe. "
                "Try again " (when) "."
            }
            p { a href=(again) { "Back to sign in" } }
        },
    );
    let mut response = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn signup_form(visitor: &Visitor, form: &FormData, failure: Option<&ApiFailure>) -> Markup {
    bare::bare_with(
        "Create an account",
        html! {
            @if let Some(f) = failure { (layout::problems(f.others(&["name", "email", "password"]))) }
            form method="post" action="/signup" {
                (forms::csrf(&visitor.csrf))
                (Field::new("name", "Your name").value(forms::value(form, "name")).autocomplete("name").render(failure))
                (Field::new("email", "Email").kind("email").value(forms::value(form, "email")).autocomplete("email").render(failure))
                (Field::new("password", "Password").kind("password").autocomplete("new-password").hint("At least 10 characters.").render(failure))
                button type="submit" { "Create account" }
            }
            p { "Have an account? " a href="/signin" { "Sign in" } }
        },
    )
}

pub async fn signup_page(visitor: Visitor) -> Response {
    with_anon_cookie(&visitor, signup_form(&visitor, &FormData::new(), None))
}

/// Create the user, then sign them in at once.
pub async fn signup(
    State(state): State<PortalState>,
    headers: HeaderMap,
    visitor: Visitor,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    check_csrf(&state, &visitor.anon, &form)?;
    let password = form.get("password").cloned().unwrap_or_default();
    let user = json!({"name": forms::value(&form, "name"), "email": forms::value(&form, "email"), "password": password});
    if let Err(failure) = state
        .api
        .post(Auth::Visitor(&visitor.origin), "/hub/v1/users", &user)
        .await
    {
        return Ok(signup_form(&visitor, &form, Some(&failure)).into_response());
    }
    let credentials = json!({"email": forms::value(&form, "email"), "password": password});
    match state
        .api
        .post(
            Auth::Visitor(&visitor.origin),
            "/hub/v1/sessions",
            &credentials,
        )
        .await
    {
        Ok(answer) => {
            let token = answer["token"].as_str().unwrap_or_default();
            Ok(signed_in(&state, &headers, token, "/orgs").await)
        }
        Err(failure) => Ok(signup_form(&visitor, &form, Some(&failure)).into_response()),
    }
}

/// End the Hub session (so the token stops working at once) and drop the cookie.
pub async fn signout(
    State(state): State<PortalState>,
    session: session::Session,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    // A session the Hub already ended is signed out all the same.
    let _ = state
        .api
        .delete(session.auth(), "/hub/v1/sessions/current")
        .await;
    Ok((
        [(SET_COOKIE, session::set_cookie(SESSION_COOKIE, "", 0))],
        Redirect::to("/signin"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::wait_in_words;

    #[test]
    fn a_wait_is_said_in_minutes_or_seconds_and_a_time() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-04T14:00:30Z")
            .unwrap()
            .to_utc();
        assert_eq!(wait_in_words(300, now), "in 5 minutes (at 14:05 UTC)");
        assert_eq!(wait_in_words(61, now), "in 2 minutes (at 14:01 UTC)");
        assert_eq!(wait_in_words(60, now), "in 1 minute (at 14:01 UTC)");
        assert_eq!(wait_in_words(45, now), "in 45 seconds (at 14:01 UTC)");
        assert_eq!(wait_in_words(1, now), "in 1 second (at 14:00 UTC)");
    }
}
