//! Members of the organisation and their roles, and (for admins) the
//! invitations: adding someone by email invites them, and they become a
//! member once they accept (`POST /hub/v1/orgs/{org}/members` answers the
//! pending invitation). Pending invitations are listed with **Revoke**.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde_json::{json, Value};

use crate::api::{enc, ApiFailure};
use crate::error::PageError;
use crate::forms::{self, Field, FormData};
use crate::layout::{self, Chrome};
use crate::pages::confirm::{self, Confirm};
use crate::session::Session;
use crate::PortalState;

const ROLES: &[&str] = &["member", "power_user", "admin", "super_admin"];

async fn render(
    state: &PortalState,
    session: &Session,
    org: &str,
    form: &FormData,
    failure: Option<&ApiFailure>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(state, session, Some(org), "members").await?;
    let members = state
        .api
        .get(
            session.auth(),
            &format!("/hub/v1/orgs/{}/members", enc(org)),
        )
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    let admin = chrome.is_admin();
    // Only admins may list invitations; for the others the section is not there.
    let pending = if admin {
        Some(
            state
                .api
                .get(
                    session.auth(),
                    &format!("/hub/v1/orgs/{}/invitations", enc(org)),
                )
                .await,
        )
    } else {
        None
    };
    let body = html! {
        @if let Some(f) = failure { (layout::problems(f.others(&["email", "role"]))) }
        table {
            caption { "Members" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { span.skip { "Actions" } } } }
            tbody {
                @for m in members["members"].as_array().into_iter().flatten() {
                    @let user = m["user_id"].as_str().map(str::to_owned).unwrap_or_else(|| m["user_id"].to_string());
                    @let role = m["role"].as_str().unwrap_or_default();
                    tr {
                        td { (m["name"].as_str().unwrap_or_default()) }
                        td { (m["email"].as_str().unwrap_or_default()) }
                        td {
                            @if admin {
                                form.inline method="post" action={ "/o/" (org) "/members/" (user) "/role" } {
                                    (forms::csrf(&session.csrf))
                                    label.skip for={ "role-" (user) } { "Role of " (m["email"].as_str().unwrap_or_default()) }
                                    select id={ "role-" (user) } name="role" {
                                        @for r in ROLES { option value=(r) selected[*r == role] { (r.replace('_', " ")) } }
                                    }
                                    button.secondary type="submit" { "Change role" }
                                }
                            } @else { (role.replace('_', " ")) }
                        }
                        td {
                            @if admin {
                                (confirm::link(&format!("/o/{org}/members/{user}/remove"), "Remove",
                                    Some(&format!("Remove {}", m["email"].as_str().unwrap_or_default()))))
                            }
                        }
                    }
                }
            }
        }
        @match &pending {
            Some(Ok(pending)) => { (invitations_table(org, &session.csrf, pending)) }
            Some(Err(f)) => { (layout::failed(f)) }
            None => {}
        }
        @if admin {
            h2 { "Invite a member" }
            p.hint {
                "They get an invitation to accept or decline when they sign in with this email "
                "(or sign up with it, if they have no account yet); they become a member once they accept."
            }
            form method="post" action={ "/o/" (org) "/members" } {
                (forms::csrf(&session.csrf))
                (Field::new("email", "Email").kind("email").value(forms::value(form, "email")).render(failure))
                div.field {
                    label for="f-role" { "Role" }
                    select #f-role name="role" {
                        @for r in ROLES { option value=(r) selected[*r == forms::value(form, "role")] { (r.replace('_', " ")) } }
                    }
                    @if let Some(f) = failure { @for e in f.for_field("role") { p.field-error { (e) } } }
                }
                button type="submit" { "Send invitation" }
            }
        } @else {
            p.hint { "The organisation's admins invite new members by email." }
        }
    };
    Ok(layout::page("Members", &chrome, body).into_response())
}

/// The pending invitations, each with its **Revoke** button.
fn invitations_table(org: &str, csrf: &str, pending: &Value) -> Markup {
    let pending = pending["invitations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    html! {
        @if !pending.is_empty() {
            table #pending-invitations {
                caption { "Pending invitations" }
                thead { tr {
                    th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Sent" }
                    th scope="col" { span.skip { "Actions" } }
                } }
                tbody {
                    @for invitation in &pending {
                        @let id = invitation["id"].as_str().unwrap_or_default();
                        @let email = invitation["email"].as_str().unwrap_or_default();
                        tr.invitation {
                            td { (email) }
                            td { (invitation["role"].as_str().unwrap_or_default().replace('_', " ")) }
                            td { (invitation["created_at"].as_str().unwrap_or_default().get(..10).unwrap_or_default()) }
                            td {
                                form.inline method="post" action={ "/o/" (org) "/invitations/" (id) "/revoke" } {
                                    (forms::csrf(csrf))
                                    button.danger type="submit" aria-label={ "Revoke the invitation of " (email) } { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub async fn page(
    State(state): State<PortalState>,
    session: Session,
    Path(org): Path<String>,
) -> Result<Response, PageError> {
    render(&state, &session, &org, &FormData::new(), None).await
}

/// Back to the members page saying what was done (`notice`), or the page
/// again with the API's refusal.
async fn then_back(
    state: &PortalState,
    session: &Session,
    org: &str,
    form: &FormData,
    call: Result<Value, ApiFailure>,
    notice: impl FnOnce(&Value) -> String,
) -> Result<Response, PageError> {
    match super::settle(call, session, &format!("/o/{org}/members"), notice)? {
        Ok(done) => Ok(done),
        Err(failure) => render(state, session, org, form, Some(&failure)).await,
    }
}

pub async fn add(
    State(state): State<PortalState>,
    session: Session,
    Path(org): Path<String>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let body = json!({"email": forms::value(&form, "email"), "role": forms::value(&form, "role")});
    let call = state
        .api
        .post(
            session.auth(),
            &format!("/hub/v1/orgs/{}/members", enc(&org)),
            &body,
        )
        .await;
    let email = forms::value(&form, "email").to_owned();
    then_back(&state, &session, &org, &form, call, |_| {
        format!("An invitation was sent to {email}.")
    })
    .await
}

pub async fn revoke_invitation(
    State(state): State<PortalState>,
    session: Session,
    Path((org, invitation)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let path = format!(
        "/hub/v1/orgs/{}/invitations/{}",
        enc(&org),
        enc(&invitation)
    );
    let call = state.api.delete(session.auth(), &path).await;
    then_back(&state, &session, &org, &FormData::new(), call, |_| {
        "The invitation was revoked.".to_owned()
    })
    .await
}

pub async fn change_role(
    State(state): State<PortalState>,
    session: Session,
    Path((org, user)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let body = json!({"role": forms::value(&form, "role")});
    let call = state
        .api
        .patch(
            session.auth(),
            &format!("/hub/v1/orgs/{}/members/{}", enc(&org), enc(&user)),
            &body,
        )
        .await;
    then_back(&state, &session, &org, &FormData::new(), call, |member| {
        format!(
            "{} is now {}.",
            display_name(member),
            member["role"]
                .as_str()
                .unwrap_or_default()
                .replace('_', " ")
        )
    })
    .await
}

/// A member as people know them: their name, else their email.
fn display_name(member: &Value) -> &str {
    member["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .or(member["email"].as_str())
        .unwrap_or("The member")
}

/// The member `user` of `org`, as the members list has them.
async fn member(
    state: &PortalState,
    session: &Session,
    org: &str,
    user: &str,
) -> Result<Value, PageError> {
    let members = state
        .api
        .get(
            session.auth(),
            &format!("/hub/v1/orgs/{}/members", enc(org)),
        )
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    Ok(members["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["user_id"].as_str() == Some(user))
        .cloned()
        .unwrap_or(Value::Null))
}

/// `GET .../members/{user}/remove`: asks before removing.
pub async fn remove_page(
    State(state): State<PortalState>,
    session: Session,
    Path((org, user)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&state, &session, Some(&org), "members").await?;
    let who = member(&state, &session, &org, &user).await?;
    let name = display_name(&who);
    Ok(confirm::page(
        &chrome,
        &Confirm {
            question: format!("Remove {name} from {}?", chrome.org_name()),
            consequence: format!(
                "{name} no longer sees the organisation, its dashboards and its apps' data. An admin may invite them again."
            ),
            action: &format!("/o/{org}/members/{user}/remove"),
            button: format!("Remove {name}"),
            back: &format!("/o/{org}/members"),
            fields: vec![],
        },
    ))
}

pub async fn remove(
    State(state): State<PortalState>,
    session: Session,
    Path((org, user)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let who = member(&state, &session, &org, &user).await?;
    let path = format!("/hub/v1/orgs/{}/members/{}", enc(&org), enc(&user));
    let call = state.api.delete(session.auth(), &path).await;
    then_back(&state, &session, &org, &FormData::new(), call, |_| {
        format!("{} is no longer a member.", display_name(&who))
    })
    .await
}
