//! The user's organisations: list, create, switch between them, and the
//! invitations to join others (answered in [`super::invitations`]).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

use crate::api::{enc, ApiFailure};
use crate::error::PageError;
use crate::forms::{self, Field, FormData};
use crate::layout::{self, Chrome, SECTIONS};
use crate::pages::members::role_name;
use crate::session::Session;
use crate::PortalState;

/// The page; `failure` is the create form's refusal, `answer_failure` that of
/// an answer to an invitation.
pub(super) async fn render(
    state: &PortalState,
    session: &Session,
    form: &FormData,
    failure: Option<&ApiFailure>,
    answer_failure: Option<&ApiFailure>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(state, session, None, "orgs").await?;
    let fields = ["name", "currency", "timezone", "country"];
    let body = html! {
        (invitations_received(&chrome, answer_failure))
        @if chrome.orgs.is_empty() {
            p.notice { "You are not in any organisation yet: accept an invitation, or create one to install apps and see its dashboard." }
        } @else {
            table {
                caption { "Your organisations" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Currency" } th scope="col" { "Your role" } } }
                tbody {
                    @for org in &chrome.orgs {
                        tr {
                            td { a href={ "/o/" (org["id"].as_str().unwrap_or_default()) "/dashboard" } { (org["name"].as_str().unwrap_or_default()) } }
                            td { (org["currency"].as_str().unwrap_or_default()) }
                            td { (role_name(org["role"].as_str().unwrap_or_default())) }
                        }
                    }
                }
            }
        }
        h2 { "Create an organisation" }
        @if let Some(f) = failure { (layout::problems(f.others(&fields))) }
        form method="post" action="/orgs" {
            (forms::csrf(&session.csrf))
            (Field::new("name", "Name").value(forms::value(form, "name")).render(failure))
            (Field::new("currency", "Currency").value(match forms::value(form, "currency") { "" => "USD", c => c }).hint("An ISO 4217 code, such as USD, EUR or AUD.").render(failure))
            (Field::new("timezone", "Time zone").value(match forms::value(form, "timezone") { "" => "UTC", t => t }).render(failure))
            (Field::new("country", "Country").value(forms::value(form, "country")).optional().hint("Two letters, such as US (optional).").render(failure))
            button type="submit" { "Create organisation" }
        }
        p.hint { "Platform operators: " a href="/operator" { "streams, consumers and lag" } "." }
    };
    Ok(layout::page("Organisations", &chrome, body).into_response())
}

pub async fn page(
    State(state): State<PortalState>,
    session: Session,
) -> Result<Response, PageError> {
    render(&state, &session, &FormData::new(), None, None).await
}

pub async fn create(
    State(state): State<PortalState>,
    session: Session,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let mut body = json!({
        "name": forms::value(&form, "name"),
        "currency": forms::value(&form, "currency"),
        "timezone": forms::value(&form, "timezone"),
    });
    if !forms::value(&form, "country").is_empty() {
        body["country"] = json!(forms::value(&form, "country"));
    }
    match state.api.post(session.auth(), "/hub/v1/orgs", &body).await {
        Ok(org) => Ok(Redirect::to(&format!(
            "/o/{}/dashboard",
            org["id"].as_str().unwrap_or_default()
        ))
        .into_response()),
        Err(failure) if failure.status == axum::http::StatusCode::UNAUTHORIZED => {
            Err(PageError::from_api(failure, "/orgs"))
        }
        Err(failure) => render(&state, &session, &form, Some(&failure), None).await,
    }
}

#[derive(Deserialize)]
pub struct Switch {
    org: String,
    to: Option<String>,
}

/// The organisation picker: the same section of the chosen organisation.
pub async fn switch(Query(q): Query<Switch>) -> Response {
    let section =
        q.to.as_deref()
            .filter(|to| SECTIONS.iter().any(|(s, _)| s == to))
            .unwrap_or("dashboard");
    let org: String = q
        .org
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    Redirect::to(&format!("/o/{org}/{section}")).into_response()
}

/// The section of the organisations page: each pending invitation with its
/// buttons, and why the last answer failed (`failure`, e.g. one already spent).
fn invitations_received(chrome: &Chrome, failure: Option<&ApiFailure>) -> Markup {
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
                                td { (role_name(invitation["role"].as_str().unwrap_or_default())) }
                                td { (invitation["invited_by"]["name"].as_str().unwrap_or_default()) }
                                td { (invitation["created_at"].as_str().unwrap_or_default().get(..10).unwrap_or_default()) }
                                td {
                                    form.inline method="post" action={ "/invitations/" (id) "/accept" } {
                                        (forms::csrf(&chrome.csrf))
                                        button type="submit" aria-label={ "Accept the invitation to " (org_name) } { "Accept" }
                                    }
                                    " "
                                    (super::confirm::link(
                                        &format!("/invitations/{}/decline", enc(id)),
                                        "Decline",
                                        Some(&format!("Decline the invitation to {org_name}")),
                                    ))
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
