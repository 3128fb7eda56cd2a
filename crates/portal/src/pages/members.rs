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

/// Who looks at the page: their role in the org and their user id.
struct Viewer<'a> {
    role: &'a str,
    user_id: &'a str,
}

impl Viewer<'_> {
    /// The roles the viewer may give (the Hub's permission table: only a
    /// super admin grants super admin; members and power users none).
    fn grantable(&self) -> &'static [&'static str] {
        match self.role {
            "super_admin" => ROLES,
            "admin" => &ROLES[..3],
            _ => &[],
        }
    }

    /// Whether the viewer may change or remove a member of `role` (an admin
    /// may not touch a super admin).
    fn manages(&self, role: &str) -> bool {
        self.grantable().contains(&role)
    }
}

/// "super_admin" → "super admin", as every page shows a role.
pub fn role_name(role: &str) -> String {
    role.replace('_', " ")
}

/// The members, each with what the viewer may do to them: a role selector
/// and **Remove** only where the Hub would not refuse it (not on the viewer's
/// own row, which has **Leave** below the table).
fn members_table(org: &str, csrf: &str, viewer: &Viewer, members: &[Value]) -> Markup {
    html! {
        table #members {
            caption { "Members" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { span.skip { "Actions" } } } }
            tbody {
                @for m in members {
                    @let user = m["user_id"].as_str().unwrap_or_default();
                    @let role = m["role"].as_str().unwrap_or_default();
                    @let email = m["email"].as_str().unwrap_or_default();
                    tr {
                        td { (m["name"].as_str().unwrap_or_default()) @if user == viewer.user_id { " (you)" } }
                        td { (email) }
                        td {
                            @if viewer.manages(role) {
                                form.inline method="post" action={ "/o/" (org) "/members/" (user) "/role" } {
                                    (forms::csrf(csrf))
                                    label.skip for={ "role-" (user) } { "Role of " (email) }
                                    select id={ "role-" (user) } name="role" {
                                        @for r in viewer.grantable() { option value=(r) selected[*r == role] { (role_name(r)) } }
                                    }
                                    button.secondary type="submit" { "Change role" }
                                }
                            } @else { (role_name(role)) }
                        }
                        td {
                            @if viewer.manages(role) && user != viewer.user_id {
                                (confirm::link(&format!("/o/{org}/members/{user}/remove"), "Remove",
                                    Some(&format!("Remove {email}"))))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The viewer as the wording of refusals needs them.
struct Me<'a> {
    email: &'a str,
    role: &'a str,
}

/// Whether `user` is the org's only super admin (who may not leave).
fn last_super_admin(members: &[Value], user: &str) -> bool {
    let supers: Vec<&Value> = members
        .iter()
        .filter(|m| m["role"] == "super_admin")
        .collect();
    matches!(supers.as_slice(), [only] if only["user_id"].as_str() == Some(user))
}

/// The Hub's refusals of this page's forms in a person's words: the org's
/// name rather than its id, the button to use rather than the API call.
/// `email` is the address the invitation form was posted with.
fn in_words(failure: &ApiFailure, org_name: &str, email: &str, me: &Me) -> ApiFailure {
    let mut worded = failure.clone();
    for error in &mut worded.errors {
        let said = match error.code.as_str() {
            "already_member" if email.eq_ignore_ascii_case(me.email) => {
                format!("You are already a member of {org_name}.")
            }
            "already_member" => format!(
                "{email} is already a member of {org_name}: change their role in the list above."
            ),
            "already_invited" => format!(
                "{email} already has a pending invitation to {org_name}: revoke it under Pending invitations to invite them with another role."
            ),
            "last_super_admin" => format!(
                "{org_name} needs a super admin: make another member super admin first."
            ),
            // An admin's 403s here are about super admins (a member's are not).
            "forbidden" if me.role == "admin" => {
                "Only a super admin may invite a super admin, or change or remove one.".to_owned()
            }
            _ => continue,
        };
        error.detail = said;
    }
    worded
}

async fn render(
    state: &PortalState,
    session: &Session,
    org: &str,
    form: &FormData,
    failure: Option<&ApiFailure>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(state, session, Some(org), "members").await?;
    let fail = |e| PageError::from_api(e, &session.here);
    let members_path = format!("/hub/v1/orgs/{}/members", enc(org));
    let (members, me) = futures::join!(
        state.api.get(session.auth(), &members_path),
        state.api.get(session.auth(), "/hub/v1/users/me"),
    );
    let (members, me) = (members.map_err(fail)?, me.map_err(fail)?);
    let members = members["members"].as_array().cloned().unwrap_or_default();
    let viewer = Viewer {
        role: chrome.role(),
        user_id: me["id"].as_str().unwrap_or_default(),
    };
    let admin = chrome.is_admin();
    let failure = failure.map(|f| {
        let me = Me {
            email: me["email"].as_str().unwrap_or_default(),
            role: chrome.role(),
        };
        in_words(f, chrome.org_name(), forms::value(form, "email"), &me)
    });
    let failure = failure.as_ref();
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
        (members_table(org, &session.csrf, &viewer, &members))
        @match &pending {
            Some(Ok(pending)) => { (invitations_table(org, pending)) }
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
                        @for r in viewer.grantable() { option value=(r) selected[*r == forms::value(form, "role")] { (role_name(r)) } }
                    }
                    @if let Some(f) = failure { @for e in f.for_field("role") { p.field-error { (e) } } }
                }
                button type="submit" { "Send invitation" }
            }
        } @else {
            p.hint { "The organisation's admins invite new members by email." }
        }
        h2 { "Leave " (chrome.org_name()) }
        @if last_super_admin(&members, viewer.user_id) {
            p.hint #leave { "You are its only super admin: make another member super admin before you leave." }
        } @else {
            p.hint { "You stop seeing the organisation; an admin may invite you again." }
            (confirm::link(&format!("/o/{org}/leave"), &format!("Leave {}", chrome.org_name()), None))
        }
    };
    Ok(layout::page("Members", &chrome, body).into_response())
}

/// The pending invitations, each with its **Revoke** link (asked first).
fn invitations_table(org: &str, pending: &Value) -> Markup {
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
                            td { (role_name(invitation["role"].as_str().unwrap_or_default())) }
                            td { (invitation["created_at"].as_str().unwrap_or_default().get(..10).unwrap_or_default()) }
                            td {
                                (confirm::link(
                                    &format!("/o/{org}/invitations/{}/revoke", enc(id)),
                                    "Revoke",
                                    Some(&format!("Revoke the invitation of {email}")),
                                ))
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

/// `GET /o/{org}/invitations/{id}/revoke`: asks before an invitation is
/// withdrawn, naming whom it was for.
pub async fn revoke_invitation_page(
    State(state): State<PortalState>,
    session: Session,
    Path((org, invitation)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&state, &session, Some(&org), "members").await?;
    let pending = state
        .api
        .get(
            session.auth(),
            &format!("/hub/v1/orgs/{}/invitations", enc(&org)),
        )
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    let found = pending["invitations"].as_array().and_then(|all| {
        all.iter()
            .find(|i| i["id"].as_str() == Some(invitation.as_str()))
    });
    let Some(found) = found else {
        // Accepted, declined or revoked meanwhile: nothing to ask.
        return Ok(super::done(
            &session,
            &format!("/o/{org}/members"),
            "That invitation is no longer pending.",
        ));
    };
    let email = found["email"].as_str().unwrap_or_default();
    Ok(confirm::page(
        &chrome,
        &Confirm {
            question: format!("Revoke the invitation of {email}?"),
            consequence: format!(
                "{email} can no longer join {} with it. An admin may invite them again.",
                chrome.org_name()
            ),
            action: &format!("/o/{org}/invitations/{}/revoke", enc(&invitation)),
            button: "Revoke the invitation".into(),
            back: &format!("/o/{org}/members"),
            fields: vec![],
        },
    ))
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

/// `GET /o/{org}/leave`: asks before the viewer leaves the organisation.
pub async fn leave_page(
    State(state): State<PortalState>,
    session: Session,
    Path(org): Path<String>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&state, &session, Some(&org), "members").await?;
    let name = chrome.org_name();
    Ok(confirm::page(
        &chrome,
        &Confirm {
            question: format!("Leave {name}?"),
            consequence: format!(
                "You stop seeing {name}, its dashboards and its apps' data. An admin may invite you again."
            ),
            action: &format!("/o/{org}/leave"),
            button: format!("Leave {name}"),
            back: &format!("/o/{org}/members"),
            fields: vec![],
        },
    ))
}

/// Leave: the Hub removes the caller (any member may; the last super admin
/// is refused, shown on the members page); then the organisations page.
pub async fn leave(
    State(state): State<PortalState>,
    session: Session,
    Path(org): Path<String>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let fail = |e| PageError::from_api(e, &session.here);
    let org_path = format!("/hub/v1/orgs/{}", enc(&org));
    let (me, org_json) = futures::join!(
        state.api.get(session.auth(), "/hub/v1/users/me"),
        state.api.get(session.auth(), &org_path),
    );
    let (me, org_json) = (me.map_err(fail)?, org_json.map_err(fail)?);
    let path = format!(
        "/hub/v1/orgs/{}/members/{}",
        enc(&org),
        enc(me["id"].as_str().unwrap_or_default())
    );
    match state.api.delete(session.auth(), &path).await {
        Ok(_) => Ok(super::done(
            &session,
            "/orgs",
            &format!(
                "You left {}.",
                org_json["name"].as_str().unwrap_or("the organisation")
            ),
        )),
        Err(failure) => {
            then_back(&state, &session, &org, &form, Err(failure), |_| {
                String::new()
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiErrorItem;
    use axum::http::StatusCode;

    fn members() -> Vec<Value> {
        vec![
            json!({"user_id": "zoe", "name": "Zoë", "email": "zoe@x.example", "role": "super_admin"}),
            json!({"user_id": "ali", "name": "Ali", "email": "ali@x.example", "role": "admin"}),
            json!({"user_id": "bob", "name": "Bob", "email": "bob@x.example", "role": "member"}),
        ]
    }

    fn table(role: &str, me: &str) -> String {
        let viewer = Viewer { role, user_id: me };
        members_table("o1", "tok", &viewer, &members()).into_string()
    }

    #[test]
    fn an_admin_is_offered_nothing_a_super_admin_alone_may_do() {
        let html = table("admin", "ali");
        // Zoë's row: her role as text, no selector, no Remove.
        assert!(!html.contains(r#"id="role-zoe""#), "{html}");
        assert!(!html.contains("/members/zoe/remove"), "{html}");
        assert!(html.contains("<td>super admin</td>"), "{html}");
        // Bob's: a selector without super admin, and Remove.
        assert!(html.contains(r#"id="role-bob""#), "{html}");
        assert!(html.contains("/members/bob/remove"), "{html}");
        assert!(!html.contains(r#"value="super_admin""#), "{html}");
        // Ali's own row: no Remove (Leave is below the table).
        assert!(!html.contains("/members/ali/remove"), "{html}");
    }

    #[test]
    fn a_super_admin_manages_everyone_and_a_member_no_one() {
        let html = table("super_admin", "zoe");
        assert!(html.contains("/members/ali/remove") && html.contains("/members/bob/remove"));
        assert!(
            html.contains(r#"<option value="super_admin" selected>super admin</option>"#),
            "{html}"
        );
        let html = table("member", "bob");
        assert!(
            !html.contains("<select") && !html.contains("/remove"),
            "{html}"
        );
    }

    #[test]
    fn the_only_super_admin_may_not_leave() {
        assert!(last_super_admin(&members(), "zoe"));
        assert!(!last_super_admin(&members(), "ali"));
        let mut two = members();
        two[1]["role"] = json!("super_admin");
        assert!(!last_super_admin(&two, "zoe"));
    }

    #[test]
    fn refusals_name_the_org_and_the_button_not_its_id_and_the_api() {
        let refused = |code: &str, status| {
            ApiFailure {
            status,
            errors: vec![ApiErrorItem {
                code: code.into(),
                detail: "already a member of 01a23e69-...; change their role with PATCH .../members/{user}".into(),
                pointer: None,
            }],
            retry_after: None,
        }
        };
        let admin = Me {
            email: "ali@x.example",
            role: "admin",
        };
        let said = |f: ApiFailure, email: &str| in_words(&f, "Pâtisserie", email, &admin).summary();
        assert_eq!(
            said(
                refused("already_member", StatusCode::CONFLICT),
                "bob@x.example"
            ),
            "bob@x.example is already a member of Pâtisserie: change their role in the list above."
        );
        assert_eq!(
            said(
                refused("already_member", StatusCode::CONFLICT),
                "ALI@x.example"
            ),
            "You are already a member of Pâtisserie."
        );
        assert!(said(
            refused("already_invited", StatusCode::CONFLICT),
            "bob@x.example"
        )
        .contains("revoke it under Pending invitations"));
        assert!(said(refused("last_super_admin", StatusCode::CONFLICT), "")
            .starts_with("Pâtisserie needs a super admin"));
        assert!(
            said(refused("forbidden", StatusCode::FORBIDDEN), "").starts_with("Only a super admin")
        );
        // A member's 403 is not about super admins: the Hub's words stay.
        let member = Me {
            email: "bob@x.example",
            role: "member",
        };
        let forbidden = refused("forbidden", StatusCode::FORBIDDEN);
        assert_eq!(
            in_words(&forbidden, "P", "", &member).summary(),
            forbidden.summary()
        );
        // What the page does not know how to say is shown as the Hub said it.
        let other = refused("invalid_field", StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(said(other.clone(), ""), other.summary());
    }
}
