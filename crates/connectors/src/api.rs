//! The connectors' routes, beside the Hub's installs:
//!
//! - `PUT /hub/v1/orgs/{org}/installs/{app}/connector`: configure (admin+)
//! - `GET` the same: the install's status (members)
//! - `DELETE` the same: stop syncing and forget the sync state (admin+)
//! - `POST /hub/v1/orgs/{org}/installs/{app}/sync`: pull now (admin+)
//! - `PUT /hub/v1/apps/{app}/connector_credentials`: the connector app's own
//!   key and secret, registered once by the app's owner for every install
//!   (`GET` tells whether some are registered, `DELETE` forgets them)
//!
//! Credentials go in, never out: no answer and no log line holds them. An
//! org admin never needs the app's secret: it reads and writes every org
//! that installed the app, so only its owner holds it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use mno_events::directory::{AppProfile, AppStack, Directory};
use mno_events::idm::{Action, Credential, Idm, IdmRequest, PrincipalKind};
use mno_events::openapi::{
    BadRequest, Forbidden, JsonBodyErrors, NotFound, TooManyRequests, Unauthorized, Unavailable,
    Unprocessable,
};
use mno_events::{api_error::ApiJson, ApiError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::catalogue;
use crate::http_clients::check_outside_url;
use crate::record_api::{AppCredentials, RecordApi};
use crate::runtime::{CredentialsSource, Runtime, SealedCredentials, SyncError};
use crate::store::{Direction, InstallRow, Prefer};

#[derive(Clone)]
pub struct ApiState {
    pub runtime: Arc<Runtime>,
    pub idm: Arc<dyn Idm>,
    pub directory: Arc<dyn Directory>,
    pub allow_private_urls: bool,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/hub/v1/orgs/{org}/installs/{app}/connector",
            put(configure).get(status).delete(remove),
        )
        .route("/hub/v1/orgs/{org}/installs/{app}/sync", post(sync))
        .route(
            "/hub/v1/apps/{app}/connector_credentials",
            put(register_credentials)
                .get(registered_credentials)
                .delete(remove_credentials),
        )
        .with_state(state)
}

/// The body of `PUT .../connector`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigureBody {
    /// Which connector: `carddav`.
    connector: String,
    /// The connector's settings (CardDAV: `{"url": "<address book URL>"}`).
    #[schema(value_type = Object)]
    settings: Value,
    /// The outside API's credentials (CardDAV: `{"username", "password"}`); sealed at rest, never shown.
    #[schema(value_type = Object)]
    credentials: Value,
    /// Leave out: the runtime then writes to Connec! with the key and secret the app's owner registered (PUT /hub/v1/apps/{app}/connector_credentials), and follows their rotations. Kept for compatibility, from the app's owner only (403 from anyone else): the connector app's own API key and secret for this install only; sealed, never shown.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    app_credentials: Option<AppCredentialsBody>,
    /// Per entity: `{"direction": "to_connec" | "from_connec" | "both", "cutoff": RFC 3339}`; default every entity the connector knows that the app shares read and write, both ways.
    #[serde(default)]
    #[schema(value_type = Object)]
    entities: Option<BTreeMap<String, EntityBody>>,
    /// `newest` (default), `connec` or `outside`: who wins a conflict.
    #[serde(default)]
    prefer: Option<String>,
    /// Seconds between scheduled pulls (default 300, at least 1).
    #[serde(default)]
    interval_secs: Option<i64>,
}

/// The connector app's API key and secret (`POST /hub/v1/apps` or its rotation answered them).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppCredentialsBody {
    key: String,
    secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityBody {
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    cutoff: Option<String>,
}

const ADMIN_ROLES: &[&str] = &["admin", "super_admin"];

/// The caller must be a user with a role in `org` (one of `roles` when given);
/// answers the user's id.
async fn user_in_org(
    state: &ApiState,
    headers: &HeaderMap,
    org: &str,
    roles: Option<&[&str]>,
) -> Result<String, ApiError> {
    let principal = mno_events::http_auth::authenticate(state.idm.as_ref(), headers, org).await?;
    if principal.kind != PrincipalKind::User {
        return Err(ApiError::forbidden(
            "connector installs are managed by the org's users (Authorization: Bearer <session token>), not by apps",
        ));
    }
    let Some(role) = principal.role.as_deref() else {
        return Err(ApiError::forbidden(
            "you are not a member of this organisation; ask one of its admins for an invitation",
        ));
    };
    if let Some(roles) = roles {
        if !roles.contains(&role) {
            return Err(ApiError::forbidden(format!(
                "your role here is {role}; configuring and syncing connectors takes admin or super_admin"
            )));
        }
    }
    Ok(principal.id)
}

/// The app must be a connector installed in the org; answers its profile.
async fn installed_connector(
    state: &ApiState,
    org: &str,
    app: &str,
) -> Result<mno_events::directory::AppProfile, ApiError> {
    let unavailable =
        |e: mno_events::directory::DirectoryError| ApiError::unavailable(e.to_string());
    let profile = state
        .directory
        .app(app)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::not_found(format!("there is no app {app:?}")))?;
    let installed = state
        .directory
        .installs_of_app(app)
        .await
        .map_err(unavailable)?
        .iter()
        .any(|i| i.org == org);
    if !installed {
        return Err(ApiError::not_found(format!(
            "the app {app:?} is not installed in this organisation; install it first (POST /hub/v1/orgs/{org}/installs)"
        )));
    }
    require_connector(&profile)?;
    Ok(profile)
}

/// Only apps of stack `connector` are run by the connectors runtime.
fn require_connector(profile: &AppProfile) -> Result<(), ApiError> {
    if profile.stack != AppStack::Connector {
        return Err(ApiError::unprocessable(
            "not_a_connector",
            format!("the app {:?} is of stack cloud; only apps of stack connector are run by the connectors runtime", profile.name),
        ));
    }
    Ok(())
}

#[utoipa::path(
    put,
    path = "/hub/v1/orgs/{org}/installs/{app}/connector",
    tag = "connectors",
    params(mno_events::openapi::OrgPath, mno_events::openapi::AppPath),
    request_body = ConfigureBody,
    responses((status = 200, description = "The install's connector status (no credentials)", body = Object), JsonBodyErrors, Unauthorized, Forbidden, NotFound, Unavailable),
    security(("user" = []))
)]
pub async fn configure(
    State(state): State<ApiState>,
    Path((org, app)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<ApiJson<ConfigureBody>, ApiError>,
) -> Result<Response, ApiError> {
    // Who asks comes first: a stranger learns nothing from the body's errors.
    let caller = user_in_org(&state, &headers, &org, Some(ADMIN_ROLES)).await?;
    let profile = installed_connector(&state, &org, &app).await?;
    let ApiJson(body) = body?;
    let runtime = &state.runtime;
    // The app's secret reads and writes every org that installed the app: an
    // admin who holds it is not its owner's choice, and a copy kept with one
    // install would go on syncing out of the owner's sight and reach (their
    // removal of the registered credentials does not stop it).
    if body.app_credentials.is_some() && profile.owner_id.as_deref() != Some(caller.as_str()) {
        return Err(ApiError::forbidden(format!(
            "app_credentials are taken only from the owner of the app {app:?}; leave them out: the install then writes with the key and secret its owner registers (PUT /hub/v1/apps/{app}/connector_credentials)"
        ))
        .at_pointer("/app_credentials"));
    }

    // Every problem of the body at once, each pointing at its field.
    let mut problems: Vec<ApiError> = Vec::new();
    let mut problem = |pointer: &str, detail: String| {
        problems.push(ApiError::unprocessable("invalid_field", detail).at_pointer(pointer));
    };
    let outside = match catalogue::build(
        &body.connector,
        &app,
        runtime.outside_http().clone(),
        &body.settings,
        &body.credentials,
    ) {
        Ok(outside) => Some(outside),
        Err(e) => {
            problem(&e.pointer, e.detail);
            None
        }
    };
    if let Some(url) = catalogue::target_url(&body.settings) {
        if let Err(refused) = check_outside_url(url, state.allow_private_urls) {
            problem("/settings/url", refused);
        }
    }
    let prefer = match body.prefer.as_deref() {
        None => Prefer::Newest,
        Some(text) => Prefer::parse(text).unwrap_or_else(|| {
            problem(
                "/prefer",
                format!("prefer {text:?} is unknown; use newest, connec or outside"),
            );
            Prefer::Newest
        }),
    };
    let interval = body.interval_secs.unwrap_or(300);
    if interval < 1 {
        problem(
            "/interval_secs",
            "interval_secs must be at least 1 (seconds)".into(),
        );
    }
    let mut entities: Vec<(String, Direction, Option<String>)> = Vec::new();
    if let Some(outside) = &outside {
        let known = outside.entities();
        match &body.entities {
            // By default: what the connector knows and the app shares read and write.
            None => {
                let shared: Vec<&str> = profile
                    .shared_entities
                    .iter()
                    .filter(|s| s.read && s.write)
                    .map(|s| s.entity.as_str())
                    .collect();
                entities.extend(
                    known
                        .iter()
                        .filter(|e| shared.contains(&e.as_str()))
                        .map(|e| (e.clone(), Direction::Both, None)),
                );
                if entities.is_empty() {
                    problem("/entities", format!("the app shares none of the entities the {} connector syncs ({}) read and write; share them, or name the entities", body.connector, known.join(", ")));
                }
            }
            Some(asked) => {
                if asked.is_empty() {
                    problem("/entities", "name at least one entity".into());
                }
                for (name, entity) in asked {
                    let at = format!("/entities/{name}");
                    if !known.contains(name) {
                        problem(
                            &at,
                            format!(
                                "the {} connector does not sync {name:?}; it syncs {}",
                                body.connector,
                                known.join(", ")
                            ),
                        );
                        continue;
                    }
                    let direction = match entity.direction.as_deref() {
                        None => Direction::Both,
                        Some(text) => match Direction::parse(text) {
                            Some(d) => d,
                            None => {
                                problem(&format!("{at}/direction"), format!("direction {text:?} is unknown; use to_connec, from_connec or both"));
                                continue;
                            }
                        },
                    };
                    if let Some(cutoff) = &entity.cutoff {
                        if chrono::DateTime::parse_from_rfc3339(cutoff).is_err() {
                            problem(&format!("{at}/cutoff"), format!("cutoff {cutoff:?} is not an RFC 3339 time such as 2026-01-01T00:00:00Z"));
                            continue;
                        }
                    }
                    entities.push((name.clone(), direction, entity.cutoff.clone()));
                }
            }
        }
    }
    // Given with the install, or registered by the app's owner for every install.
    let (credentials, source) = match &body.app_credentials {
        Some(given) => (
            Some(AppCredentials {
                key: given.key.clone(),
                secret: given.secret.clone(),
            }),
            CredentialsSource::Install,
        ),
        None => (
            runtime
                .app_credentials(&app)
                .await
                .map_err(ApiError::unavailable)?,
            CredentialsSource::App,
        ),
    };
    if credentials.is_none() {
        problem("/app_credentials", format!("the app {app:?} has no API credentials registered for its installs: its owner must register the app's key and secret once (PUT /hub/v1/apps/{app}/connector_credentials); no org admin needs them"));
    }
    // The app's key must be this app's, and may read and write each entity it syncs.
    if let Some(credentials) = &credentials {
        for (entity, _, _) in &entities {
            let decision = state
                .idm
                .check(&IdmRequest {
                    credential: Credential::App {
                        key: credentials.key.clone(),
                        secret: credentials.secret.clone(),
                    },
                    org: org.clone(),
                    entity: Some(entity.clone()),
                    action: Action::Write,
                })
                .await
                .map_err(|e| ApiError::unavailable(e.to_string()))?;
            match decision.principal {
                Some(p) if p.kind == PrincipalKind::App && p.id == app => {
                    if !decision.allow {
                        problem("/app_credentials", format!("the app may not write {entity}: {}; share it read and write in the app's shared_entities", decision.reason));
                    }
                }
                _ if source == CredentialsSource::App => {
                    problem("/app_credentials", format!("the API credentials the owner of the app {app:?} registered are no longer accepted (rotated?); its owner must register the current key and secret (PUT /hub/v1/apps/{app}/connector_credentials)"));
                    break;
                }
                _ => {
                    problem("/app_credentials", format!("these are not valid API credentials of the app {app:?}; leave app_credentials out to use those the app's owner registers (PUT /hub/v1/apps/{app}/connector_credentials)"));
                    break;
                }
            }
        }
    }
    if let Some(first) = problems.pop() {
        return Err(problems.into_iter().fold(first, ApiError::and));
    }
    let credentials = credentials.expect("a problem otherwise");

    let existing = runtime
        .store()
        .install(&org, &app)
        .await
        .map_err(ApiError::internal)?;
    let push_cursor = match &existing {
        Some(row) => row.push_cursor,
        None => {
            let api = RecordApi::new(
                runtime.platform_http().clone(),
                runtime.api_base(),
                &org,
                credentials.clone(),
            );
            api.head()
                .await
                .map_err(|e| ApiError::unavailable(e.to_string()))? as i64
        }
    };
    let sealed = SealedCredentials {
        outside: body.credentials,
        app: (source == CredentialsSource::Install).then_some(credentials),
    };
    let row = InstallRow {
        org: org.clone(),
        app_id: app.clone(),
        kind: body.connector,
        settings: body.settings,
        sealed_credentials: runtime
            .sealer()
            .seal(&serde_json::to_vec(&sealed).expect("credentials serialise")),
        prefer,
        interval_secs: interval,
        push_cursor,
        last_success_at: None,
        last_error: None,
        last_error_at: None,
        failures: 0,
        next_attempt_at: None,
    };
    runtime
        .store()
        .configure(&row, &entities)
        .await
        .map_err(ApiError::internal)?;
    runtime.configured(&org, &app);
    tracing::info!(%org, %app, connector = %row.kind, "connector configured");
    Ok(Json(status_body(&state, &org, &app).await?).into_response())
}

#[utoipa::path(
    get,
    path = "/hub/v1/orgs/{org}/installs/{app}/connector",
    tag = "connectors",
    params(mno_events::openapi::OrgPath, mno_events::openapi::AppPath),
    responses((status = 200, description = "Running, last success, last error, counts per entity, records parked, recent conflicts and refusals", body = Object), BadRequest, Unauthorized, Forbidden, NotFound, Unavailable),
    security(("user" = []))
)]
pub async fn status(
    State(state): State<ApiState>,
    Path((org, app)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    user_in_org(&state, &headers, &org, None).await?;
    Ok(Json(status_body(&state, &org, &app).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/hub/v1/orgs/{org}/installs/{app}/connector",
    tag = "connectors",
    params(mno_events::openapi::OrgPath, mno_events::openapi::AppPath),
    responses((status = 204, description = "Syncing stopped; the credentials and sync state are gone (records stay)"), BadRequest, Unauthorized, Forbidden, NotFound, Unavailable),
    security(("user" = []))
)]
pub async fn remove(
    State(state): State<ApiState>,
    Path((org, app)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    user_in_org(&state, &headers, &org, Some(ADMIN_ROLES)).await?;
    state.runtime.stop(&org, &app);
    let removed = state
        .runtime
        .store()
        .remove(&org, &app)
        .await
        .map_err(ApiError::internal)?;
    if !removed {
        return Err(not_configured(&org, &app));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    post,
    path = "/hub/v1/orgs/{org}/installs/{app}/sync",
    tag = "connectors",
    params(mno_events::openapi::OrgPath, mno_events::openapi::AppPath),
    responses((status = 200, description = "The pull ran to its end; the install's status", body = Object), (status = 502, description = "The pull failed (the error is also in the status); the next one resumes from the cursor", body = mno_events::openapi::ErrorBody), BadRequest, Unauthorized, Forbidden, NotFound, TooManyRequests, Unavailable),
    security(("user" = []))
)]
pub async fn sync(
    State(state): State<ApiState>,
    Path((org, app)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    user_in_org(&state, &headers, &org, Some(ADMIN_ROLES)).await?;
    match state.runtime.sync(&org, &app).await {
        Ok(()) => Ok(Json(status_body(&state, &org, &app).await?).into_response()),
        Err(SyncError::NotConfigured) => Err(not_configured(&org, &app)),
        Err(SyncError::RateLimited(wait)) => Err(ApiError::too_many_requests(
            "the outside API asked to slow down (429); the sync waits until Retry-After has passed",
            wait.as_secs().max(1),
        )),
        Err(SyncError::Failed(detail)) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "sync_failed",
            format!("the sync failed: {detail}; nothing was lost, the error is in the install's status and the next sync resumes from the cursor"),
        )),
    }
}

fn not_configured(org: &str, app: &str) -> ApiError {
    ApiError::not_found(format!(
        "the app {app:?} is not configured as a connector in this organisation; PUT /hub/v1/orgs/{org}/installs/{app}/connector first"
    ))
}

/// The install's status as the API and `mno connectors status` show it.
async fn status_body(state: &ApiState, org: &str, app: &str) -> Result<Value, ApiError> {
    let store = state.runtime.store();
    let row = store
        .install(org, app)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| not_configured(org, app))?;
    let entities = store.entities(org, app).await.map_err(ApiError::internal)?;
    // Where the app's key comes from (never the key itself).
    let app_credentials =
        state
            .runtime
            .sealed_credentials(&row)
            .ok()
            .map(|sealed| match sealed.app {
                Some(_) => CredentialsSource::Install.name(),
                None => CredentialsSource::App.name(),
            });
    let recent = store
        .recent_log(org, app, 50)
        .await
        .map_err(ApiError::internal)?;
    // Records parked for a reference that never came, with the reason.
    let parked: Vec<_> = store
        .parked(org, app)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .filter(|p| p.parked_at.is_some())
        .collect();
    Ok(json!({"connector": {
        "org": row.org,
        "app_id": row.app_id,
        "connector": row.kind,
        "settings": row.settings,
        "prefer": row.prefer.name(),
        "interval_secs": row.interval_secs,
        "app_credentials": app_credentials,
        "running": state.runtime.is_running(org, app),
        "last_success_at": row.last_success_at,
        "last_error": row.last_error,
        "last_error_at": row.last_error_at,
        "failures": row.failures,
        "next_attempt_at": row.next_attempt_at,
        "entities": entities,
        "parked": parked,
        "recent": recent,
    }}))
}

/// The caller must be the user who owns `app`, a connector app; answers its profile.
async fn owner_of_connector(
    state: &ApiState,
    headers: &HeaderMap,
    app: &str,
) -> Result<mno_events::directory::AppProfile, ApiError> {
    // No organisation here: any valid session names its user.
    let principal = mno_events::http_auth::authenticate(state.idm.as_ref(), headers, "").await?;
    if principal.kind != PrincipalKind::User {
        return Err(ApiError::forbidden(
            "a connector app's credentials are registered by the app's owner (Authorization: Bearer <session token>), not by apps",
        ));
    }
    let profile = state
        .directory
        .app(app)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "there is no app {app}; list the catalogue with GET /hub/v1/apps"
            ))
            .at_parameter("app")
        })?;
    if profile.owner_id.as_deref() != Some(principal.id.as_str()) {
        return Err(ApiError::forbidden(format!(
            "app {app} belongs to another user; only its owner may register, see or remove its connector credentials (an org admin configures the install without them)"
        )));
    }
    require_connector(&profile)?;
    Ok(profile)
}

#[utoipa::path(
    put,
    path = "/hub/v1/apps/{app}/connector_credentials",
    tag = "connectors",
    params(mno_events::openapi::AppPath),
    request_body = AppCredentialsBody,
    responses((status = 204, description = "Registered (sealed, never shown again); every install configured without app_credentials writes with them from now on"), JsonBodyErrors, Unauthorized, Forbidden, NotFound, Unavailable),
    security(("user" = []))
)]
pub async fn register_credentials(
    State(state): State<ApiState>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: Result<ApiJson<AppCredentialsBody>, ApiError>,
) -> Result<Response, ApiError> {
    owner_of_connector(&state, &headers, &app).await?;
    let ApiJson(body) = body?;
    let decision = state
        .idm
        .check(&IdmRequest {
            credential: Credential::App {
                key: body.key.clone(),
                secret: body.secret.clone(),
            },
            org: String::new(),
            entity: None,
            action: Action::Read,
        })
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    match decision.principal {
        Some(p) if p.kind == PrincipalKind::App && p.id == app => {}
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                format!("this key is another app's; send the key and secret of the app {app:?} (POST /hub/v1/apps or its rotation answered them)"),
            )
            .at_pointer("/key"))
        }
        None => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                format!("these are not valid API credentials of the app {app:?} (unknown, wrong, or expired after a rotation); send the key and secret POST /hub/v1/apps or its latest rotation answered"),
            )
            .at_pointer("/secret"))
        }
    }
    let credentials = AppCredentials {
        key: body.key,
        secret: body.secret,
    };
    let runtime = &state.runtime;
    let sealed = runtime
        .sealer()
        .seal(&serde_json::to_vec(&credentials).expect("credentials serialise"));
    runtime
        .store()
        .set_app_credentials(&app, &sealed)
        .await
        .map_err(ApiError::internal)?;
    runtime.app_credentials_changed(&app).await;
    tracing::info!(%app, "connector app credentials registered");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get,
    path = "/hub/v1/apps/{app}/connector_credentials",
    tag = "connectors",
    params(mno_events::openapi::AppPath),
    responses((status = 200, description = "The key registered and when (never the secret)", body = Object), Unauthorized, Forbidden, NotFound, Unprocessable, Unavailable),
    security(("user" = []))
)]
pub async fn registered_credentials(
    State(state): State<ApiState>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    owner_of_connector(&state, &headers, &app).await?;
    let runtime = &state.runtime;
    let registered = runtime
        .store()
        .app_credentials(&app)
        .await
        .map_err(ApiError::internal)?;
    let Some((_, registered_at)) = registered else {
        return Err(none_registered(&app));
    };
    let key = runtime
        .app_credentials(&app)
        .await
        .map_err(ApiError::unavailable)?
        .map(|c| c.key);
    Ok(Json(json!({"connector_credentials": {
        "app_id": app,
        "key": key,
        "registered_at": registered_at,
    }}))
    .into_response())
}

#[utoipa::path(
    delete,
    path = "/hub/v1/apps/{app}/connector_credentials",
    tag = "connectors",
    params(mno_events::openapi::AppPath),
    responses((status = 204, description = "Forgotten; installs configured without app_credentials stop syncing until new ones are registered"), Unauthorized, Forbidden, NotFound, Unprocessable, Unavailable),
    security(("user" = []))
)]
pub async fn remove_credentials(
    State(state): State<ApiState>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    owner_of_connector(&state, &headers, &app).await?;
    let removed = state
        .runtime
        .store()
        .remove_app_credentials(&app)
        .await
        .map_err(ApiError::internal)?;
    if !removed {
        return Err(none_registered(&app));
    }
    tracing::info!(%app, "connector app credentials removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn none_registered(app: &str) -> ApiError {
    ApiError::not_found(format!(
        "the app {app:?} has no connector credentials registered; PUT /hub/v1/apps/{app}/connector_credentials with its key and secret"
    ))
}

/// The connectors' part of `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(configure, status, remove, sync, register_credentials, registered_credentials, remove_credentials),
    components(schemas(ConfigureBody, AppCredentialsBody)),
    tags((name = "connectors", description = "Connector apps synced through outside APIs (docs/connectors.md)"))
)]
pub struct ConnectorsApi;
