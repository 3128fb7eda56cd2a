//! Sign up, sign in and sign out: the Hub's users and sessions, with the
//! session token kept in an HttpOnly cookie.

use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
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

pub async fn signin_page(visitor: Visitor, headers: HeaderMap, Query(q): Query<Next>) -> Response {
    let next = next_of(q.next.as_deref());
    let notice = session::notice(&headers);
    with_anon_cookie(
        &visitor,
        signin_form(&visitor, &next, "", None, notice.as_deref()),
    )
}

/// The session cookie, and on to `next`. A session this browser held before
/// (someone else signed in here, or the same person again) is ended first:
/// replacing the cookie alone would leave its token working for a day.
async fn signed_in(state: &PortalState, headers: &HeaderMap, token: &str, next: &str) -> Response {
    if let Some(previous) = session::cookie(headers, SESSION_COOKIE) {
        let _ = state
            .api
            .delete(Auth::Session(&previous), "/hub/v1/sessions/current")
            .await;
    }
    (
        [(
            SET_COOKIE,
            session::set_cookie(SESSION_COOKIE, token, 86_400),
        )],
        Redirect::to(next),
    )
        .into_response()
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
        Err(failure) => {
            Ok(signin_form(&visitor, &next, email, Some(&failure), None).into_response())
        }
    }
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
