//! The marketplace: the app catalogue, installing and uninstalling apps in the
//! organisation, switching each install's data sharing, and choosing which of
//! the app's entities the organisation shares with it.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde_json::{json, Value};

use crate::api::{enc, ApiFailure};
use crate::error::PageError;
use crate::forms::{self, FormData};
use crate::layout::{self, Chrome};
use crate::pages::confirm::{self, Confirm};
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

/// The names of the entities the app shares, in its order.
fn entity_names(app: &Value) -> Vec<&str> {
    app["shared_entities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["entity"].as_str())
        .collect()
}

/// The form field of one entity's checkbox (a form keeps one value per name).
const ENTITY_FIELD: &str = "entity.";

/// Whether an API error is about the `entities` field (`/entities` or `/entities/N`).
fn about_entities(pointer: Option<&str>) -> bool {
    pointer.is_some_and(|p| p == "/entities" || p.starts_with("/entities/"))
}

/// A checkbox per entity the app shares, ticked when the org shares it, and
/// the API's errors about the list beside it.
fn entities_form(
    org: &str,
    app_id: &str,
    app: &Value,
    install: &Value,
    session: &Session,
    errors: &[&str],
) -> Markup {
    let shared = install["entities"].as_array();
    let ticked = |entity: &str| shared.is_none_or(|list| list.iter().any(|e| e == entity));
    let names = entity_names(app);
    let error_id = format!("entities-{app_id}-error");
    html! {
        form.entities method="post" action={ "/o/" (enc(org)) "/installs/" (enc(app_id)) "/entities" } {
            (forms::csrf(&session.csrf))
            input type="hidden" name="offered" value=(names.join(","));
            fieldset.field.invalid[!errors.is_empty()]
                aria-describedby=[(!errors.is_empty()).then_some(&error_id)] {
                legend { "Entities shared with " (app["name"].as_str().unwrap_or_default()) }
                @for entity in &names {
                    @let id = format!("share-{app_id}-{entity}");
                    span.choice {
                        input type="checkbox" id=(id) name={ (ENTITY_FIELD) (entity) } value="on" checked[ticked(entity)];
                        label for=(id) { (entity) }
                    }
                }
                @if !errors.is_empty() {
                    p.field-error id=(error_id) { @for e in errors { (e) " " } }
                }
            }
            button.secondary type="submit" { "Save the entities shared with " (app["name"].as_str().unwrap_or_default()) }
        }
    }
}

async fn render(
    state: &PortalState,
    session: &Session,
    org: &str,
    failure: Option<&ApiFailure>,
) -> Result<Response, PageError> {
    render_for(state, session, org, failure, None).await
}

/// The page; `failure` came from changing the entities of `failed_app` when given,
/// and its errors about them are shown beside that app's checkboxes.
async fn render_for(
    state: &PortalState,
    session: &Session,
    org: &str,
    failure: Option<&ApiFailure>,
    failed_app: Option<&str>,
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
    let field_errors = |app_id: &str| -> Vec<&str> {
        match failure {
            Some(f) if failed_app == Some(app_id) => f
                .errors
                .iter()
                .filter(|e| about_entities(e.pointer.as_deref()))
                .map(|e| e.detail.as_str())
                .collect(),
            _ => Vec::new(),
        }
    };
    let general = failure.map(|f| ApiFailure {
        status: f.status,
        retry_after: f.retry_after,
        errors: f
            .errors
            .iter()
            .filter(|e| failed_app.is_none() || !about_entities(e.pointer.as_deref()))
            .cloned()
            .collect(),
    });
    let body = html! {
        @if let Some(f) = general.as_ref().filter(|f| !f.errors.is_empty()) { (layout::failed(f)) }
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
                                    @if let Some(list) = install["entities"].as_array() {
                                        p.hint { "Shares only: " (list.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")) "." }
                                    }
                                    @if admin {
                                        @let install_path = format!("/o/{org}/installs/{}", id.trim_matches('"'));
                                        // Stopping and uninstalling are confirmed on a page of their own.
                                        @if sharing {
                                            (confirm::link(&format!("{install_path}/sharing"), &format!("Stop sharing data with {name}"), None))
                                        } @else {
                                            form.inline method="post" action={ (install_path) "/sharing" } {
                                                (forms::csrf(&session.csrf))
                                                input type="hidden" name="data_sharing" value="true";
                                                button.secondary type="submit" { "Share data with " (name) }
                                            }
                                        }
                                        " "
                                        (confirm::link(&format!("{install_path}/uninstall"), &format!("Uninstall {name}"), None))
                                        @if !entity_names(app).is_empty() {
                                            (entities_form(org, id.trim_matches('"'), app, &install, session, &field_errors(id.trim_matches('"'))))
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
        p.hint { "An app shares only the collections listed beside it, only while data sharing is on, and only those the organisation ticks." }
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

/// Do `call`; on success back to the marketplace saying what was done
/// (`notice`), on an error other than a lost session the page with it.
async fn then_back(
    state: &PortalState,
    session: &Session,
    org: &str,
    call: Result<Value, ApiFailure>,
    notice: impl FnOnce(&Value) -> String,
) -> Result<Response, PageError> {
    match super::settle(call, session, &format!("/o/{org}/marketplace"), notice)? {
        Ok(done) => Ok(done),
        Err(failure) => render(state, session, org, Some(&failure)).await,
    }
}

/// PATCH the install of `app` in `org` with `body`.
async fn patch_install(
    state: &PortalState,
    session: &Session,
    org: &str,
    app: &str,
    body: Value,
) -> Result<Value, ApiFailure> {
    state
        .api
        .patch(
            session.auth(),
            &format!("/hub/v1/orgs/{}/installs/{}", enc(org), enc(app)),
            &body,
        )
        .await
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
    then_back(&state, &session, &org, call, |install| {
        format!("{} was installed.", app_name(install))
    })
    .await
}

/// The app's name as an install names it.
fn app_name(install: &Value) -> &str {
    install["app_name"].as_str().unwrap_or("The app")
}

/// The install of `app` in `org` (its `app_name` names it on the confirmation pages).
async fn get_install(
    state: &PortalState,
    session: &Session,
    org: &str,
    app: &str,
) -> Result<Value, PageError> {
    state
        .api
        .get(
            session.auth(),
            &format!("/hub/v1/orgs/{}/installs/{}", enc(org), enc(app)),
        )
        .await
        .map_err(|e| PageError::from_api(e, &session.here))
}

/// `GET .../uninstall`: asks before uninstalling.
pub async fn uninstall_page(
    State(state): State<PortalState>,
    session: Session,
    Path((org, app)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&state, &session, Some(&org), "marketplace").await?;
    let install = get_install(&state, &session, &org, &app).await?;
    let name = app_name(&install);
    Ok(confirm::page(
        &chrome,
        &Confirm {
            question: format!("Uninstall {name} from {}?", chrome.org_name()),
            consequence: format!(
                "{name} stops getting the organisation's changes and may no longer read or write its records. You can install it again later."
            ),
            action: &format!("/o/{org}/installs/{app}/uninstall"),
            button: format!("Uninstall {name}"),
            back: &format!("/o/{org}/marketplace"),
            fields: vec![],
        },
    ))
}

/// `GET .../sharing`: asks before stopping data sharing (switching it on is not asked).
pub async fn sharing_page(
    State(state): State<PortalState>,
    session: Session,
    Path((org, app)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&state, &session, Some(&org), "marketplace").await?;
    let install = get_install(&state, &session, &org, &app).await?;
    let name = app_name(&install);
    Ok(confirm::page(
        &chrome,
        &Confirm {
            question: format!("Stop sharing data with {name}?"),
            consequence: format!(
                "{name} stays installed but may no longer read or write the organisation's records, and gets none of its changes, until data sharing is switched on again."
            ),
            action: &format!("/o/{org}/installs/{app}/sharing"),
            button: format!("Stop sharing data with {name}"),
            back: &format!("/o/{org}/marketplace"),
            fields: vec![("data_sharing", "false")],
        },
    ))
}

pub async fn uninstall(
    State(state): State<PortalState>,
    session: Session,
    Path((org, app)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    // Its name, for the notice (the DELETE answers nothing).
    let install = get_install(&state, &session, &org, &app).await?;
    let call = state
        .api
        .delete(
            session.auth(),
            &format!("/hub/v1/orgs/{}/installs/{}", enc(&org), enc(&app)),
        )
        .await;
    then_back(&state, &session, &org, call, |_| {
        format!("{} was uninstalled.", app_name(&install))
    })
    .await
}

pub async fn sharing(
    State(state): State<PortalState>,
    session: Session,
    Path((org, app)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let on = forms::value(&form, "data_sharing") == "true";
    let call = patch_install(&state, &session, &org, &app, json!({ "data_sharing": on })).await;
    then_back(&state, &session, &org, call, |install| {
        let name = app_name(install);
        if on {
            format!("{name} shares the organisation's data again.")
        } else {
            format!("{name} no longer shares the organisation's data.")
        }
    })
    .await
}

/// Save the entities the org shares with the app: the ticked ones, or all of
/// them (`null`, which also covers entities the app adds later) when every
/// one offered is ticked.
pub async fn save_entities(
    State(state): State<PortalState>,
    session: Session,
    Path((org, app)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let mut ticked: Vec<&str> = form
        .keys()
        .filter_map(|k| k.strip_prefix(ENTITY_FIELD))
        .collect();
    ticked.sort_unstable();
    let mut offered: Vec<&str> = forms::value(&form, "offered")
        .split(',')
        .filter(|e| !e.is_empty())
        .collect();
    offered.sort_unstable();
    let entities = if !ticked.is_empty() && ticked == offered {
        Value::Null
    } else {
        json!(ticked)
    };
    let call = patch_install(
        &state,
        &session,
        &org,
        &app,
        json!({ "entities": entities }),
    )
    .await;
    // Errors about the list go beside that app's checkboxes.
    let saved =
        |install: &Value| format!("The entities shared with {} were saved.", app_name(install));
    match super::settle(call, &session, &format!("/o/{org}/marketplace"), saved)? {
        Ok(done) => Ok(done),
        Err(mut failure) => {
            if ticked.is_empty() {
                // The Hub's words name its API ("set data_sharing to false"): say which button does it.
                let install = get_install(&state, &session, &org, &app).await?;
                for error in &mut failure.errors {
                    if about_entities(error.pointer.as_deref()) {
                        error.detail = none_ticked(app_name(&install));
                    }
                }
            }
            render_for(&state, &session, &org, Some(&failure), Some(&app)).await
        }
    }
}

/// Why no entity ticked is refused, and what to do instead.
fn none_ticked(app: &str) -> String {
    format!("Tick at least one entity to share with {app}; to share none, use Stop sharing data with {app}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unticking_all_says_which_button_shares_none() {
        let said = none_ticked("Demo Books");
        assert!(said.contains("Stop sharing data with Demo Books"), "{said}");
        assert!(!said.contains("data_sharing"), "{said}");
    }

    #[test]
    fn only_errors_about_the_entities_list_go_beside_it() {
        assert!(about_entities(Some("/entities")));
        assert!(about_entities(Some("/entities/2")));
        assert!(!about_entities(Some("/entities_x")));
        assert!(!about_entities(Some("/data_sharing")));
        assert!(!about_entities(None));
    }
}
