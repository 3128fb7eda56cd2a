//! The page shell: head with the shipped assets, the top bar (organisation
//! picker, sections, the account page and sign-out) and the main column. maud escapes every value
//! it is given, so nothing a user typed is ever rendered as HTML.

use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

use crate::api::ApiFailure;
use crate::bare;
use crate::error::PageError;
use crate::session::Session;
use crate::PortalState;

/// The sections of an organisation, in the order of the top bar.
pub const SECTIONS: &[(&str, &str)] = &[
    ("dashboard", "Dashboard"),
    ("marketplace", "Marketplace"),
    ("members", "Members"),
    ("sync", "Sync status"),
    ("invoices", "Invoices"),
];

/// Sections only the organisation's admins are shown (the API refuses the others).
const ADMIN_SECTIONS: &[&str] = &["invoices"];

/// What the top bar shows: the user's organisations, the one in view, and
/// the invitations waiting for the user.
pub struct Chrome {
    pub csrf: String,
    pub orgs: Vec<Value>,
    /// `GET /hub/v1/invitations`: the pending invitations to the user's email.
    pub invitations: Result<Vec<Value>, ApiFailure>,
    pub org: Option<String>,
    pub section: &'static str,
    /// What the last form post did ("Demo HR was installed."), shown once.
    pub notice: Option<String>,
}

impl Chrome {
    /// The user's organisations and invitations from the Hub (a 401 sends
    /// them to sign in).
    pub async fn load(
        state: &PortalState,
        session: &Session,
        org: Option<&str>,
        section: &'static str,
    ) -> Result<Chrome, PageError> {
        let (orgs, invitations) = futures::join!(
            state.api.get(session.auth(), "/hub/v1/orgs"),
            state.api.get(session.auth(), "/hub/v1/invitations"),
        );
        let orgs = orgs.map_err(|e| PageError::from_api(e, &session.here))?;
        Ok(Chrome {
            csrf: session.csrf.clone(),
            orgs: orgs["orgs"].as_array().cloned().unwrap_or_default(),
            invitations: invitations
                .map(|list| list["invitations"].as_array().cloned().unwrap_or_default()),
            org: org.map(str::to_owned),
            section,
            notice: session.notice.clone(),
        })
    }

    /// The organisation in view, as the Hub listed it.
    pub fn current(&self) -> Option<&Value> {
        let org = self.org.as_deref()?;
        self.orgs.iter().find(|o| o["id"].as_str() == Some(org))
    }

    /// The caller's role in the organisation in view.
    pub fn role(&self) -> &str {
        self.current()
            .and_then(|o| o["role"].as_str())
            .unwrap_or("member")
    }

    /// The name of the organisation in view ("" when it is not one of the user's).
    pub fn org_name(&self) -> &str {
        self.current()
            .and_then(|o| o["name"].as_str())
            .unwrap_or_default()
    }

    pub fn is_admin(&self) -> bool {
        matches!(self.role(), "admin" | "super_admin")
    }
}

/// A page for a signed-in user.
pub fn page(title: &str, chrome: &Chrome, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (bare::head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Mno" }
                    @if !chrome.orgs.is_empty() {
                        form.picker method="get" action="/switch" {
                            label for="org-picker" { "Organisation" }
                            select #org-picker name="org" {
                                @for org in &chrome.orgs {
                                    @let id = org["id"].as_str().unwrap_or_default();
                                    option value=(id) selected[chrome.org.as_deref() == Some(id)] {
                                        (org["name"].as_str().unwrap_or(id))
                                    }
                                }
                            }
                            input type="hidden" name="to" value=(chrome.section);
                            button type="submit" { "Switch" }
                        }
                    }
                    nav aria-label="Sections" {
                        @if let Some(org) = &chrome.org {
                            @for (section, label) in SECTIONS.iter().filter(|(s, _)| chrome.is_admin() || !ADMIN_SECTIONS.contains(s)) {
                                a href={ "/o/" (org) "/" (section) }
                                  aria-current=[(chrome.section == *section).then_some("page")] { (label) }
                            }
                        }
                        a href="/orgs" aria-current=[(chrome.section == "orgs").then_some("page")] { "Organisations" }
                    }
                    div.account-links {
                        a href="/account" aria-current=[(chrome.section == "account").then_some("page")] { "Account" }
                        form.signout method="post" action="/signout" {
                            input type="hidden" name="csrf" value=(chrome.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main {
                    @if chrome.section != "orgs" { (invitation_banner(chrome)) }
                    h1 { (title) }
                    @if let Some(notice) = &chrome.notice { p.notice.done #notice role="status" { (notice) } }
                    (body)
                }
            }
        }
    }
}

/// On every page but the organisations page (which lists them with their
/// buttons): the invitations waiting for the user, and where to answer them.
fn invitation_banner(chrome: &Chrome) -> Markup {
    let invitations = chrome.invitations.as_deref().unwrap_or_default();
    html! {
        @if !invitations.is_empty() {
            p.notice #invitation-banner {
                @if let [one] = invitations {
                    "You are invited to join " strong { (one["org_name"].as_str().unwrap_or_default()) } ". "
                } @else {
                    "You have " (invitations.len()) " invitations to join organisations. "
                }
                a href="/orgs#invitations" { "Accept or decline" }
            }
        }
    }
}

/// Errors from the platform shown in place, above a form or a list.
pub fn problems<'a>(details: impl Iterator<Item = &'a str>) -> Markup {
    let details: Vec<&str> = details.collect();
    html! {
        @if !details.is_empty() {
            div.problems role="alert" {
                @for detail in details { p { (detail) } }
            }
        }
    }
}

/// A failure shown in place of content that could not load.
pub fn failed(failure: &ApiFailure) -> Markup {
    problems(failure.errors.iter().map(|e| e.detail.as_str()))
}
