//! The app catalogue: any signed-in user may create an app and becomes its
//! owner; only the owner sees its settings, changes it or rotates its
//! credentials. The app itself (HTTP Basic) may read its own settings and installs.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use mno_events::api_error::ApiJson;
use mno_events::directory::{AppStack, SharedEntity};
use mno_events::ApiError;
use serde::Deserialize;
use serde_json::json;

use super::auth::SignedIn;
use super::auth::{app_of, basic};
use super::{db_error, not_null, owned_app, present, AppState};
use crate::sso::store::{self as sso_store, ClientChange};
use crate::store::apps::{self as store, AppFields, AppRow, NewCredentials};
use crate::store::{installs, rfc3339};
use crate::validate::{self, Problems};
use mno_events::openapi::{BadRequest, Forbidden, JsonBodyErrors, NotFound, Unauthorized};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedEntityIn {
    entity: String,
    #[serde(default)]
    read: bool,
    #[serde(default)]
    write: bool,
}

fn shared(list: Vec<SharedEntityIn>) -> Vec<SharedEntity> {
    list.into_iter()
        .map(|s| SharedEntity {
            entity: s.entity,
            read: s.read,
            write: s.write,
        })
        .collect()
}

fn stack(problems: &mut Problems, value: &str) -> Option<AppStack> {
    problems.check(
        "/stack",
        store::parse_stack(value)
            .ok_or_else(|| format!("stack {value:?} is unknown; use cloud or connector")),
    )
}

fn optional_url(
    problems: &mut Problems,
    state: &AppState,
    field: &str,
    value: Option<String>,
) -> Option<String> {
    let allow_private = state.config.allow_private_webhooks;
    value.and_then(|v| {
        problems.check(
            &format!("/{field}"),
            validate::webhook_url(field, &v, allow_private),
        )
    })
}

/// The sign-in settings of a request, checked (docs/api/sso.md): redirect URIs
/// are kept as given (they are matched exactly); the back-channel logout URI
/// follows the rules of webhook URLs.
fn sso_fields(
    problems: &mut Problems,
    state: &AppState,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    backchannel_logout_uri: Option<Option<String>>,
) -> ClientChange {
    let allow_http = state.config.allow_private_webhooks;
    ClientChange {
        redirect_uris: redirect_uris
            .map(|list| validate::redirect_uris(problems, "redirect_uris", &list, allow_http)),
        post_logout_redirect_uris: post_logout_redirect_uris.map(|list| {
            validate::redirect_uris(problems, "post_logout_redirect_uris", &list, allow_http)
        }),
        backchannel_logout_uri: backchannel_logout_uri
            .map(|v| optional_url(problems, state, "backchannel_logout_uri", v)),
    }
}

/// What the owner (or the app) sees: settings with the sign-in settings.
async fn owner_view(state: &AppState, app: &AppRow) -> Result<serde_json::Value, ApiError> {
    let mut out = app.to_owner_json();
    sso_store::client(&state.store.pool, &app.id)
        .await
        .map_err(db_error)?
        .add_to(&mut out);
    Ok(out)
}

fn credentials_json(creds: &NewCredentials) -> serde_json::Value {
    json!({
        "credentials": {"key": creds.key, "secret": creds.secret},
        "webhook_secret": creds.webhook_secret,
    })
}

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApp {
    name: Option<String>,
    stack: Option<String>,
    webhook_url: Option<String>,
    account_webhook_url: Option<String>,
    #[serde(default)]
    shared_entities: Vec<SharedEntityIn>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    backchannel_logout_uri: Option<String>,
}

/// `POST /hub/v1/apps` → 201 the app with its credentials and webhook secret,
/// shown this once.
#[utoipa::path(
    post,
    path = "/hub/v1/apps",
    tag = "hub",
    request_body = NewApp,
    responses((status = 201, description = "The app, with its credentials and webhook secret shown this once", body = super::openapi::NewAppAnswer), JsonBodyErrors, Unauthorized, Forbidden),
    security(("user" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    me: SignedIn,
    ApiJson(body): ApiJson<NewApp>,
) -> Result<impl IntoResponse, ApiError> {
    let mut problems = Problems::default();
    let name = problems.check("/name", validate::name("name", body.name.as_deref()));
    let stack = stack(&mut problems, body.stack.as_deref().unwrap_or("cloud"));
    let webhook_url = optional_url(&mut problems, &state, "webhook_url", body.webhook_url);
    let account_webhook_url = optional_url(
        &mut problems,
        &state,
        "account_webhook_url",
        body.account_webhook_url,
    );
    let shared_entities = validate::shared_entities(
        &mut problems,
        &shared(body.shared_entities),
        &state.config.known_entities,
    );
    let sso = sso_fields(
        &mut problems,
        &state,
        Some(body.redirect_uris),
        Some(body.post_logout_redirect_uris),
        body.backchannel_logout_uri.map(Some),
    );
    problems.into_result()?;
    let (app, creds) = store::create(
        &state.store,
        &me.user.id,
        name.unwrap(),
        stack.unwrap(),
        webhook_url,
        account_webhook_url,
        shared_entities,
        sso,
    )
    .await
    .map_err(db_error)?;
    let mut out = owner_view(&state, &app).await?;
    let extra = credentials_json(&creds);
    out["credentials"] = extra["credentials"].clone();
    out["webhook_secret"] = extra["webhook_secret"].clone();
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /hub/v1/apps` → the catalogue (public fields of every app).
#[utoipa::path(
    get,
    path = "/hub/v1/apps",
    tag = "hub",
    responses((status = 200, description = "The catalogue", body = super::openapi::AppList), Unauthorized, Forbidden),
    security(("user" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _me: SignedIn,
) -> Result<Json<serde_json::Value>, ApiError> {
    let apps = store::all(&state.store.pool).await.map_err(db_error)?;
    let list: Vec<_> = apps.iter().map(AppRow::to_public_json).collect();
    Ok(Json(json!({ "apps": list })))
}

/// The app's owner (a session) or the app itself (HTTP Basic).
pub enum OwnerOrApp {
    Owner(SignedIn),
    App(String),
}

impl FromRequestParts<AppState> for OwnerOrApp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some((key, secret)) = basic(&parts.headers) {
            return Ok(OwnerOrApp::App(app_of(state, &key, &secret).await?.id));
        }
        Ok(OwnerOrApp::Owner(
            SignedIn::from_request_parts(parts, state).await?,
        ))
    }
}

async fn visible_app(state: &AppState, caller: &OwnerOrApp, app: &str) -> Result<AppRow, ApiError> {
    match caller {
        OwnerOrApp::Owner(me) => owned_app(state, app, &me.user.id).await,
        OwnerOrApp::App(own) if own == app => store::get(&state.store.pool, app)
            .await
            .map_err(db_error)?
            .ok_or_else(|| ApiError::not_found(format!("there is no app {app}"))),
        OwnerOrApp::App(_) => Err(ApiError::forbidden(
            "an app may only read its own settings; use its own id",
        )),
    }
}

/// `GET /hub/v1/apps/{app}`: settings and live API keys, never a secret.
#[utoipa::path(
    get,
    path = "/hub/v1/apps/{app}",
    tag = "hub",
    params(super::openapi::AppPath),
    responses((status = 200, description = "The app's settings and live API keys", body = super::openapi::AppWithKeys), Unauthorized, Forbidden, NotFound),
    security(("user" = []), ("app" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: OwnerOrApp,
    Path(app): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let row = visible_app(&state, &caller, &app).await?;
    let mut out = owner_view(&state, &row).await?;
    out["credentials"] = json!(store::credentials(&state.store.pool, &app)
        .await
        .map_err(db_error)?);
    Ok(Json(out))
}

/// `GET /hub/v1/apps/{app}/installs`: the orgs that installed the app.
#[utoipa::path(
    get,
    path = "/hub/v1/apps/{app}/installs",
    tag = "hub",
    params(super::openapi::AppPath),
    responses((status = 200, description = "The organisations that installed the app", body = super::openapi::InstallList), Unauthorized, Forbidden, NotFound),
    security(("user" = []), ("app" = []))
)]
pub async fn installs(
    State(state): State<AppState>,
    caller: OwnerOrApp,
    Path(app): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    visible_app(&state, &caller, &app).await?;
    let list = installs::of_app(&state.store.pool, &app)
        .await
        .map_err(db_error)?;
    let list: Vec<_> = list.iter().map(|i| i.to_json()).collect();
    Ok(Json(json!({ "installs": list })))
}

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppPatch {
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    stack: Option<String>,
    #[serde(default, deserialize_with = "present")]
    webhook_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    account_webhook_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "not_null")]
    shared_entities: Option<Vec<SharedEntityIn>>,
    #[serde(default, deserialize_with = "not_null")]
    redirect_uris: Option<Vec<String>>,
    #[serde(default, deserialize_with = "not_null")]
    post_logout_redirect_uris: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    backchannel_logout_uri: Option<Option<String>>,
}

/// `PATCH /hub/v1/apps/{app}` (owner): the fields given change; `null` clears a
/// URL; setting `webhook_url` re-enables a webhook disabled after a 410.
#[utoipa::path(
    patch,
    path = "/hub/v1/apps/{app}",
    tag = "hub",
    params(super::openapi::AppPath),
    request_body = AppPatch,
    responses((status = 200, description = "The app as changed", body = super::openapi::AppSettings), JsonBodyErrors, Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    me: SignedIn,
    Path(app): Path<String>,
    ApiJson(body): ApiJson<AppPatch>,
) -> Result<Json<serde_json::Value>, ApiError> {
    owned_app(&state, &app, &me.user.id).await?;
    let mut problems = Problems::default();
    let fields = AppFields {
        name: body
            .name
            .and_then(|v| problems.check("/name", validate::name("name", Some(&v)))),
        stack: body.stack.and_then(|v| stack(&mut problems, &v)),
        webhook_url: body
            .webhook_url
            .map(|v| optional_url(&mut problems, &state, "webhook_url", v)),
        account_webhook_url: body
            .account_webhook_url
            .map(|v| optional_url(&mut problems, &state, "account_webhook_url", v)),
        shared_entities: body.shared_entities.map(|list| {
            validate::shared_entities(&mut problems, &shared(list), &state.config.known_entities)
        }),
        sso: sso_fields(
            &mut problems,
            &state,
            body.redirect_uris,
            body.post_logout_redirect_uris,
            body.backchannel_logout_uri,
        ),
    };
    problems.into_result()?;
    let row = store::update(&state.store, &me.user.id, &app, fields)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::not_found(format!("there is no app {app}")))?;
    Ok(Json(owner_view(&state, &row).await?))
}

/// How long the previous credentials keep working after a rotation:
/// `?previous_valid_secs=N`, from 0 (revoked at once: a leaked secret) up to
/// the configured overlap, which is also the default.
fn previous_valid_ms(
    query: &HashMap<String, String>,
    overlap: std::time::Duration,
) -> Result<i64, ApiError> {
    if let Some(unknown) = query.keys().find(|k| *k != "previous_valid_secs") {
        return Err(ApiError::bad_request(
            "unknown_parameter",
            format!("{unknown:?} is not a parameter of a rotation; the one there is: previous_valid_secs"),
        )
        .at_parameter(unknown.clone()));
    }
    let most = overlap.as_secs();
    let secs = match query.get("previous_valid_secs") {
        None => most,
        Some(text) => text.parse::<u64>().ok().filter(|s| *s <= most).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_parameter",
                format!("previous_valid_secs must be a whole number from 0 (revoke the previous credentials now) to {most}, not {text:?}"),
            )
            .at_parameter("previous_valid_secs")
        })?,
    };
    Ok(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX))
}

/// `POST /hub/v1/apps/{app}/credentials/rotate` (owner) → 201 new credentials
/// and webhook secret; the previous ones keep working for the overlap
/// (`?previous_valid_secs=0`: not at all).
#[utoipa::path(
    post,
    path = "/hub/v1/apps/{app}/credentials/rotate",
    tag = "hub",
    params(super::openapi::AppPath, ("previous_valid_secs" = Option<u64>, Query, description = "Seconds the previous credentials keep working, 0 (revoked now) up to the overlap (the default, 24 h)")),
    responses((status = 201, description = "New credentials and webhook secret", body = super::openapi::RotatedCredentials), BadRequest, Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn rotate(
    State(state): State<AppState>,
    me: SignedIn,
    Path(app): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    owned_app(&state, &app, &me.user.id).await?;
    let overlap = previous_valid_ms(&query, state.config.credential_overlap)?;
    let (creds, until) = store::rotate(&state.store, &me.user.id, &app, overlap)
        .await
        .map_err(db_error)?;
    let mut out = credentials_json(&creds);
    out["app_id"] = json!(app);
    out["previous_valid_until"] = json!(rfc3339(until));
    Ok((StatusCode::CREATED, Json(out)))
}
