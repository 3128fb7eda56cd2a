//! The answers to the invitations addressed to the signed-in user, which the
//! organisations page lists with **Accept** and **Decline**: accepting lands
//! in the organisation, declining asks first. (An org's admins invite from
//! its members page.)

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

use crate::api::{enc, ApiFailure};
use crate::error::PageError;
use crate::forms::FormData;
use crate::layout::Chrome;
use crate::pages::confirm::{self, Confirm};
use crate::session::Session;
use crate::PortalState;

/// An answer the Hub refused (spent, revoked, not for this user): the
/// organisations page again with the reason; a lost session: sign in.
async fn refused(
    state: &PortalState,
    session: &Session,
    failure: ApiFailure,
) -> Result<Response, PageError> {
    if failure.status == StatusCode::UNAUTHORIZED {
        return Err(PageError::from_api(failure, "/orgs"));
    }
    super::orgs::render(state, session, &FormData::new(), None, Some(&failure)).await
}

/// Post the user's answer (`accept` or `decline`) to the Hub: its answer,
/// or the organisations page again with its refusal.
async fn answer(
    state: &PortalState,
    session: &Session,
    id: &str,
    form: &FormData,
    verb: &str,
) -> Result<Result<serde_json::Value, Response>, PageError> {
    session.check(state, form)?;
    let path = format!("/hub/v1/invitations/{}/{verb}", enc(id));
    match state
        .api
        .post(session.auth(), &path, &serde_json::json!({}))
        .await
    {
        Ok(answer) => Ok(Ok(answer)),
        Err(failure) => refused(state, session, failure).await.map(Err),
    }
}

/// Accept: the user becomes a member, and lands on the organisation's dashboard.
pub async fn accept(
    State(state): State<PortalState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    Ok(
        match answer(&state, &session, &id, &form, "accept").await? {
            Ok(member) => {
                let org = member["org_id"].as_str().unwrap_or_default();
                Redirect::to(&format!("/o/{}/dashboard", enc(org))).into_response()
            }
            Err(page) => page,
        },
    )
}

/// `GET /invitations/{id}/decline`: asks before an invitation is declined,
/// naming the organisation.
pub async fn decline_page(
    State(state): State<PortalState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&state, &session, None, "orgs").await?;
    let mine = chrome
        .invitations
        .as_ref()
        .map_err(|e| PageError::from_api(e.clone(), "/orgs"))?;
    let Some(found) = mine.iter().find(|i| i["id"].as_str() == Some(id.as_str())) else {
        // Answered or revoked meanwhile: nothing to ask.
        return Ok(super::done(
            &session,
            "/orgs",
            "That invitation is no longer pending.",
        ));
    };
    let org_name = found["org_name"].as_str().unwrap_or_default();
    Ok(confirm::page(
        &chrome,
        &Confirm {
            question: format!("Decline the invitation to {org_name}?"),
            consequence: format!(
                "It is gone for good: to join {org_name} later, ask one of its admins to invite you again."
            ),
            action: &format!("/invitations/{}/decline", enc(&id)),
            button: "Decline the invitation".into(),
            back: "/orgs",
            fields: vec![],
        },
    ))
}

/// Decline: the invitation is gone; back to the organisations page.
pub async fn decline(
    State(state): State<PortalState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    Ok(
        match answer(&state, &session, &id, &form, "decline").await? {
            Ok(_) => super::done(&session, "/orgs", "The invitation was declined."),
            Err(page) => page,
        },
    )
}
