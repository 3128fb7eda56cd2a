//! The user's own account: their name, their password, and signing out
//! everywhere (every session of the account, on every device).

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::StatusCode;
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde_json::{json, Value};

use super::confirm::{self, Confirm};
use crate::api::ApiFailure;
use crate::error::PageError;
use crate::forms::{self, Field, FormData};
use crate::layout::{self, Chrome};
use crate::session::{self, Session, SESSION_COOKIE};
use crate::PortalState;

const PAGE: &str = "/account";
const EVERYWHERE: &str = "/account/signout-everywhere";

/// What a form post refused, to show beside its fields.
#[derive(Default)]
struct Refused<'a> {
    /// The name as typed, and the API's refusal of it.
    name: Option<(&'a str, &'a ApiFailure)>,
    password: Option<&'a ApiFailure>,
}

async fn render(
    state: &PortalState,
    session: &Session,
    refused: Refused<'_>,
) -> Result<Response, PageError> {
    let (chrome, me) = futures::join!(
        Chrome::load(state, session, None, "account"),
        state.api.get(session.auth(), "/hub/v1/users/me"),
    );
    let chrome = chrome?;
    let me = me.map_err(|e| PageError::from_api(e, &session.here))?;
    let email = me["email"].as_str().unwrap_or_default();
    let (name, name_failure) = match refused.name {
        Some((typed, failure)) => (typed, Some(failure)),
        None => (me["name"].as_str().unwrap_or_default(), None),
    };
    let password_failure = refused.password;
    let body = html! {
        p { "You sign in as " strong #account-email { (email) } "." }
        h2 { "Your name" }
        @if let Some(f) = name_failure { (layout::problems(f.others(&["name"]))) }
        form method="post" action="/account/name" {
            (forms::csrf(&session.csrf))
            (Field::new("name", "Name").value(name).autocomplete("name").hint("As the members of your organisations see it.").render(name_failure))
            button type="submit" { "Save name" }
        }
        h2 { "Your password" }
        @if let Some(f) = password_failure { (layout::problems(f.others(&["current_password", "new_password"]))) }
        form method="post" action="/account/password" {
            (forms::csrf(&session.csrf))
            (Field::new("current_password", "Current password").kind("password").autocomplete("current-password").render(password_failure))
            (Field::new("new_password", "New password").kind("password").autocomplete("new-password").hint("At least 10 characters. You stay signed in here; everywhere else you are signed out.").render(password_failure))
            button type="submit" { "Change password" }
        }
        h2 { "Sign out everywhere" }
        p { "Signed in on a computer you no longer use, or lost a phone? This ends every session of your account, this one too." }
        (confirm::link(EVERYWHERE, "Sign out everywhere", None))
    };
    Ok(layout::page("Your account", &chrome, body).into_response())
}

pub async fn page(
    State(state): State<PortalState>,
    session: Session,
) -> Result<Response, PageError> {
    render(&state, &session, Refused::default()).await
}

/// `POST /account/name`: the new name, or the form again with the refusal.
pub async fn rename(
    State(state): State<PortalState>,
    session: Session,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let name = forms::value(&form, "name");
    let call = state
        .api
        .patch(session.auth(), "/hub/v1/users/me", &json!({"name": name}))
        .await;
    match super::settle(call, &session, PAGE, |user| {
        format!(
            "Your name is now {}.",
            user["name"].as_str().unwrap_or_default()
        )
    })? {
        Ok(done) => Ok(done),
        Err(failure) => {
            let refused = Refused {
                name: Some((name, &failure)),
                ..Refused::default()
            };
            render(&state, &session, refused).await
        }
    }
}

/// What a password change did, in words.
fn password_changed(answer: &Value) -> String {
    match answer["sessions_ended"].as_u64().unwrap_or(0) {
        0 => "Your password was changed.".to_owned(),
        1 => "Your password was changed, and your other session was signed out.".to_owned(),
        n => format!("Your password was changed, and your {n} other sessions were signed out."),
    }
}

/// `POST /account/password`: the new password (this session stays), or the
/// form again with the refusal beside its field.
pub async fn change_password(
    State(state): State<PortalState>,
    session: Session,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    // Passwords are sent as typed: spaces at either end are part of them.
    let raw = |name: &str| form.get(name).cloned().unwrap_or_default();
    let body =
        json!({"current_password": raw("current_password"), "new_password": raw("new_password")});
    let call = state
        .api
        .post(session.auth(), "/hub/v1/users/me/password", &body)
        .await;
    match super::settle(call, &session, PAGE, password_changed)? {
        Ok(done) => Ok(done),
        Err(failure) => {
            let refused = Refused {
                password: Some(&failure),
                ..Refused::default()
            };
            render(&state, &session, refused).await
        }
    }
}

/// `GET /account/signout-everywhere`: asks first.
pub async fn everywhere_page(
    State(state): State<PortalState>,
    session: Session,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&state, &session, None, "account").await?;
    Ok(confirm::page(
        &chrome,
        &Confirm {
            question: "Sign out everywhere?".into(),
            consequence: "Every session of your account ends: on this computer and on every other one, and in the apps you signed in to with it. You can sign in again at once.".into(),
            action: EVERYWHERE,
            button: "Sign out everywhere".into(),
            back: PAGE,
            fields: vec![],
        },
    ))
}

/// `POST /account/signout-everywhere`: every session ends; this browser's
/// cookie goes, and the sign-in page says what happened.
pub async fn everywhere(
    State(state): State<PortalState>,
    session: Session,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    match state.api.delete(session.auth(), "/hub/v1/sessions").await {
        // A session the Hub already ended is signed out all the same.
        Ok(_) => {}
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {}
        Err(e) => return Err(PageError::Api(e)),
    }
    Ok(signed_out_to_signin(
        &state,
        "You were signed out everywhere: every session of your account has ended. Sign in again to go on.",
    ))
}

/// Drop the session cookie and go to the sign-in page, which shows `notice`
/// (signed for a browser with no session).
pub fn signed_out_to_signin(state: &PortalState, notice: &str) -> Response {
    let key = session::signed_out_notice_key(state);
    (
        AppendHeaders([
            (SET_COOKIE, session::set_cookie(SESSION_COOKIE, "", 0)),
            (SET_COOKIE, session::set_notice(&key, notice)),
        ]),
        Redirect::to("/signin"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_counts_the_other_sessions_in_words() {
        assert_eq!(
            password_changed(&json!({"sessions_ended": 0})),
            "Your password was changed."
        );
        assert!(password_changed(&json!({"sessions_ended": 1})).contains("your other session was"));
        assert!(
            password_changed(&json!({"sessions_ended": 3})).contains("your 3 other sessions were")
        );
    }
}
