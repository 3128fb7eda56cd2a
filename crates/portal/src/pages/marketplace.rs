//! The marketplace: the app catalogue, installing and uninstalling apps in the
//! organisation, and switching each install's data sharing.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::html;
use serde_json::{json, Value};

use crate::api::{enc, ApiFailure};
use crate::error::PageError;
use crate::forms::{self, FormData};
use crate::layout::{self, Chrome};
use crate::session::Session;
use crate::PortalState;

fn entities(app: &Value) -> String {
    app["shared_entities"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let access = match (e["read"].as_bool(), e["write"].as_bool()) {
                (Some(true), Some(true)) => "read and write",
                (_, Some(true)) => "write",
                _ => "read",
            };
            format!("{} ({access})", e["entity"].as_str().unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn render(
    state: &PortalState,
    session: &Session,
    org: &str,
    failure: Option<&ApiFailure>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(state, session, Some(org), "marketplace").await?;
    let fail = |e| PageError::from_api(e, &session.here);
    let catalogue = state
        .api
        .get(session.auth(), "/hub/v1/apps")
        .await
        .map_err(fail)?;
    let installs = state
        .api
        .get(
            session.auth(),
            &format!("/hub/v1/orgs/{}/installs", enc(org)),
        )
        .await
        .map_err(fail)?;
    let installs = installs["installs"].as_array().cloned().unwrap_or_default();
    let install_of = |app: &Value| installs.iter().find(|i| i["app_id"] == app["id"]).cloned();
    let admin = chrome.is_admin();
    let body = html! {
        @if let Some(f) = failure { (layout::failed(f)) }
        @if !admin { p.notice { "Only admins of the organisation install apps and switch data sharing; you see what is installed." } }
        table {
            caption { "Apps" }
            thead { tr { th scope="col" { "App" } th scope="col" { "Shares" } th scope="col" { "In this organisation" } } }
            tbody {
                @for app in catalogue["apps"].as_array().into_iter().flatten() {
                    @let id = app["id"].to_string();
                    @let name = app["name"].as_str().unwrap_or_default();
                    tr id={ "app-" (id.trim_matches('"')) } {
                        td { strong { (name) } br; small.hint { (app["stack"].as_str().unwrap_or_default()) } }
                        td { (entities(app)) }
                        td {
                            @match install_of(app) {
                                Some(install) => {
                                    @let sharing = install["data_sharing"].as_bool() == Some(true);
                                    p { "Installed; data sharing " strong { @if sharing { "on" } @else { "off" } } "." }
                                    @if admin {
                                        form.inline method="post" action={ "/o/" (org) "/installs/" (id.trim_matches('"')) "/sharing" } {
                                            (forms::csrf(&session.csrf))
                                            input type="hidden" name="data_sharing" value=(if sharing { "false" } else { "true" });
                                            button.secondary type="submit" { @if sharing { "Stop sharing data with " } @else { "Share data with " } (name) }
                                        }
                                        form.inline method="post" action={ "/o/" (org) "/installs/" (id.trim_matches('"')) "/uninstall" } {
                                            (forms::csrf(&session.csrf))
                                            button.danger type="submit" { "Uninstall " (name) }
                                        }
                                    }
                                }
                                None => {
                                    @if admin {
                                        form.inline method="post" action={ "/o/" (org) "/installs" } {
                                            (forms::csrf(&session.csrf))
                                            input type="hidden" name="app_id" value=(id.trim_matches('"'));
                                            button type="submit" { "Install " (name) }
                                        }
                                    } @else { "Not installed" }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.hint { "An app shares only the collections listed beside it, and only while data sharing is on." }
    };
    Ok(layout::page("Marketplace", &chrome, body).into_response())
}

pub async fn page(
    State(state): State<PortalState>,
    session: Session,
    Path(org): Path<String>,
) -> Result<Response, PageError> {
    render(&state, &session, &org, None).await
}

/// Do `call`; on an error other than a lost session, show the page with it.
async fn then_back(
    state: &PortalState,
    session: &Session,
    org: &str,
    call: Result<Value, ApiFailure>,
) -> Result<Response, PageError> {
    match super::settle(call, session, &format!("/o/{org}/marketplace"))? {
        Ok(done) => Ok(done),
        Err(failure) => render(state, session, org, Some(&failure)).await,
    }
}

pub async fn install(
    State(state): State<PortalState>,
    session: Session,
    Path(org): Path<String>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let app_id: Value = forms::value(&form, "app_id")
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| json!(forms::value(&form, "app_id")));
    let call = state
        .api
        .post(
            session.auth(),
            &format!("/hub/v1/orgs/{}/installs", enc(&org)),
            &json!({ "app_id": app_id }),
        )
        .await;
    then_back(&state, &session, &org, call).await
}

pub async fn uninstall(
    State(state): State<PortalState>,
    session: Session,
    Path((org, app)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let call = state
        .api
        .delete(
            session.auth(),
            &format!("/hub/v1/orgs/{}/installs/{}", enc(&org), enc(&app)),
        )
        .await;
    then_back(&state, &session, &org, call).await
}

pub async fn sharing(
    State(state): State<PortalState>,
    session: Session,
    Path((org, app)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let on = forms::value(&form, "data_sharing") == "true";
    let call = state
        .api
        .patch(
            session.auth(),
            &format!("/hub/v1/orgs/{}/installs/{}", enc(&org), enc(&app)),
            &json!({ "data_sharing": on }),
        )
        .await;
    then_back(&state, &session, &org, call).await
}
