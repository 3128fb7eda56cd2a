//! The invitations addressed to the signed-in user: listed on the
//! organisations page with **Accept** and **Decline**; accepting lands in the
//! organisation. (An org's admins invite from its members page.)

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};

use crate::api::{enc, ApiFailure};
use crate::error::PageError;
use crate::forms::{self, FormData};
use crate::layout::{self, Chrome};
use crate::session::Session;
use crate::PortalState;

/// The section of the organisations page: each pending invitation with its
/// buttons, and why the last answer failed (`failure`, e.g. one already spent).
pub fn received(chrome: &Chrome, failure: Option<&ApiFailure>) -> Markup {
    html! {
        @if let Some(f) = failure { (layout::failed(f)) }
        @match &chrome.invitations {
            Err(f) => { (layout::failed(f)) }
            Ok(invitations) if !invitations.is_empty() => {
                table #invitations {
                    caption { "Invitations for you" }
                    thead { tr {
                        th scope="col" { "Organisation" } th scope="col" { "Role" }
                        th scope="col" { "Invited by" } th scope="col" { "Sent" }
                        th scope="col" { span.skip { "Answer" } }
                    } }
                    tbody {
                        @for invitation in invitations {
                            @let id = invitation["id"].as_str().unwrap_or_default();
                            @let org_name = invitation["org_name"].as_str().unwrap_or_default();
                            tr.invitation {
                                td { (org_name) }
                                td { (invitation["role"].as_str().unwrap_or_default().replace('_', " ")) }
                                td { (invitation["invited_by"]["name"].as_str().unwrap_or_default()) }
                                td { (invitation["created_at"].as_str().unwrap_or_default().get(..10).unwrap_or_default()) }
                                td {
                                    form.inline method="post" action={ "/invitations/" (id) "/accept" } {
                                        (forms::csrf(&chrome.csrf))
                                        button type="submit" aria-label={ "Accept the invitation to " (org_name) } { "Accept" }
                                    }
                                    " "
                                    form.inline method="post" action={ "/invitations/" (id) "/decline" } {
                                        (forms::csrf(&chrome.csrf))
                                        button.danger type="submit" aria-label={ "Decline the invitation to " (org_name) } { "Decline" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Ok(_) => {}
        }
    }
}

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

/// Decline: the invitation is gone; back to the organisations page.
pub async fn decline(
    State(state): State<PortalState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    Ok(
        match answer(&state, &session, &id, &form, "decline").await? {
            Ok(_) => super::back_to("/orgs"),
            Err(page) => page,
        },
    )
}
