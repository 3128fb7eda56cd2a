//! `GET /operator/v1/bus`: the streams, consumers and lag that `mno streams`
//! and `mno consumers` print, for the platform's operators: the accounts whose
//! email is listed in `MNO_OPERATORS`. The portal's operator page reads it.
//!
//! Who the caller is comes from the Hub's public `GET /hub/v1/users/me`,
//! asked in process through the Hub's router, as any client would ask it.
//!
//! The platform does not verify emails, so a listed address nobody had signed
//! up could be claimed by anyone. The list is therefore bound to the accounts
//! that hold its addresses once the process has started ([`OperatorList::bind`]),
//! and a listed address without an account stops the process: its operator
//! signs up first, then lists it. An account made later under a listed address
//! (one deleted and signed up again) is not an operator.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Request};
use axum::routing::get;
use axum::{Json, Router};
use mno_events::ApiError;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::cli::{consumers, streams};
use mno_events::openapi::{Forbidden, Unauthorized, Unavailable};

/// `GET /operator/v1/bus`: what `mno streams` and `mno consumers --json` print.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the answer; never built
pub struct BusReport {
    streams: Vec<streams::StreamRow>,
    consumers: Vec<streams::ConsumerRow>,
    /// Each app's delivery consumer and each projection's consumer, with their lag.
    apps: Vec<consumers::AppLag>,
    /// Each projection's consumer and its lag.
    projections: Vec<consumers::ProjectionLag>,
}

#[derive(Clone)]
pub struct OperatorState {
    pub js: async_nats::jetstream::Context,
    pub hub: Router,
    pub operators: Arc<OperatorList>,
}

/// `MNO_OPERATORS`, and the accounts it was bound to.
#[derive(Debug, Default)]
pub struct OperatorList {
    /// Lower-cased emails, as listed.
    emails: Vec<String>,
    /// The user ids holding them, once bound.
    bound: OnceLock<HashSet<String>>,
}

impl OperatorList {
    pub fn new(listed: &[String]) -> OperatorList {
        let mut emails: Vec<String> = listed
            .iter()
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        emails.dedup();
        OperatorList {
            emails,
            bound: OnceLock::new(),
        }
    }

    /// Binds each listed email to the account holding it now; a listed email
    /// with no account is an error naming it and what to do.
    pub async fn bind(&self, db: &sqlx::AnyPool) -> anyhow::Result<()> {
        // Bound before the edge served (see `bind_operators_once_up`): done.
        if self.bound.get().is_some() {
            return Ok(());
        }
        let mut ids = HashSet::new();
        let mut unclaimed = Vec::new();
        for email in &self.emails {
            let id: Option<String> =
                sqlx::query_scalar("SELECT id FROM hub_users WHERE email = $1")
                    .bind(email)
                    .fetch_optional(db)
                    .await?;
            match id {
                Some(id) => {
                    ids.insert(id);
                }
                None => unclaimed.push(email.as_str()),
            }
        }
        if !unclaimed.is_empty() {
            anyhow::bail!(
                "MNO_OPERATORS lists {}, which no account holds: the platform does not verify emails, so anyone \
                 could sign up under a listed address and read the bus. Start without it, sign its operator up, \
                 then list it again",
                unclaimed.join(", ")
            );
        }
        let _ = self.bound.set(ids);
        Ok(())
    }

    fn admits(&self, user_id: &str) -> Result<(), ApiError> {
        match self.bound.get() {
            Some(ids) if ids.contains(user_id) => Ok(()),
            Some(_) => Err(ApiError::forbidden(
                "only the platform's operators see the bus: list their emails in MNO_OPERATORS",
            )),
            None if self.emails.is_empty() => Err(ApiError::forbidden(
                "only the platform's operators see the bus: list their emails in MNO_OPERATORS",
            )),
            None => Err(ApiError::unavailable(
                "the platform is still starting: the operators are known once it is up; try again in a moment",
            )),
        }
    }
}

pub fn router(state: OperatorState) -> Router {
    Router::new()
        .route("/operator/v1/bus", get(bus))
        .with_state(state)
}

/// A signed-in user whose account holds an email listed in `MNO_OPERATORS`
/// (as bound at start): 401 without a session (as the Hub answers it), 403
/// for anyone else.
pub struct Operator {
    pub email: String,
}

impl FromRequestParts<OperatorState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &OperatorState,
    ) -> Result<Self, ApiError> {
        let (id, email) = caller(state, &parts.headers).await?;
        state.operators.admits(&id)?;
        Ok(Operator { email })
    }
}

/// The signed-in user's id and email, from the Hub (401 as the Hub answers it).
async fn caller(state: &OperatorState, headers: &HeaderMap) -> Result<(String, String), ApiError> {
    let mut request = Request::get("/hub/v1/users/me");
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        request = request.header(header::AUTHORIZATION, auth);
    }
    let request = request.body(Body::empty()).map_err(ApiError::internal)?;
    let response = state
        .hub
        .clone()
        .oneshot(request)
        .await
        .map_err(ApiError::internal)?;
    let ok = response.status().is_success();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .map_err(ApiError::internal)?;
    let me: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match (me["id"].as_str(), me["email"].as_str()) {
        (Some(id), Some(email)) if ok => Ok((id.to_owned(), email.to_lowercase())),
        _ => Err(ApiError::unauthorized(
            "sign in as a user (Bearer session) to see the bus",
        )),
    }
}

#[utoipa::path(
    get,
    path = "/operator/v1/bus",
    tag = "operator",
    responses((status = 200, description = "Every stream and consumer, and how far behind each app and projection is", body = BusReport), Unauthorized, Forbidden, Unavailable),
    security(("user" = []))
)]
pub async fn bus(
    State(state): State<OperatorState>,
    _operator: Operator,
) -> Result<Json<Value>, ApiError> {
    let unavailable =
        |e: anyhow::Error| ApiError::unavailable(format!("the bus does not answer: {e}"));
    let report = streams::collect(&state.js).await.map_err(unavailable)?;
    let apps = consumers::collect(&state.js).await.map_err(unavailable)?;
    let projections = consumers::collect_projections(&state.js)
        .await
        .map_err(unavailable)?;
    Ok(Json(json!({
        "streams": report.streams,
        "consumers": report.consumers,
        "apps": apps,
        "projections": projections,
    })))
}
