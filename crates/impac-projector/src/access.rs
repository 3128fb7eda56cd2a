//! Who may read a report, as axum extractors: `OrgsReader` or `WidgetReader`
//! in a handler's signature is the check, made before the handler runs.
//!
//! The orgs come from the query's `org_ids[]` (422 when none, 404 for one that
//! cannot be an org); the decision from the Hub's IDM check through
//! `mno_events::http_auth` (401 for no or bad credentials, 403 for valid ones
//! without the right). Impac! keeps no ACLs of its own; the one list it keeps
//! is which orgs' admins may load exchange rates ([`RateLoader`]).

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use mno_events::http_auth::authorize;
use mno_events::idm::{Action, IdmRequest, Principal, PrincipalKind};
use mno_events::ApiError;

use crate::query::{orgs_param, parse_query};
use crate::widgets::{self, WIDGETS};
use crate::{rates, ImpacState};

/// A caller who may read each org the query's `org_ids[]` names.
pub struct OrgsReader {
    pub orgs: Vec<String>,
    pub principal: Principal,
}

impl FromRequestParts<ImpacState> for OrgsReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ImpacState) -> Result<Self, ApiError> {
        let orgs = orgs_param(&parse_query(parts.uri.query()))?;
        let mut principal = None;
        for org in &orgs {
            principal =
                Some(authorize(state.idm.as_ref(), &parts.headers, org, None, Action::Read).await?);
        }
        let principal = principal.ok_or_else(|| ApiError::unauthorized("no organisation named"))?;
        Ok(OrgsReader { orgs, principal })
    }
}

/// A caller who may read the path's widget over the query's orgs: read on
/// every collection the widget is made from, in every org.
pub struct WidgetReader {
    /// `category/name`, one of [`WIDGETS`].
    pub widget: String,
    /// Whether the path asked for the CSV export (`{name}.csv`).
    pub csv: bool,
    pub orgs: Vec<String>,
}

impl FromRequestParts<ImpacState> for WidgetReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ImpacState) -> Result<Self, ApiError> {
        let Path((category, name)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "invalid_parameter", e.body_text()))?;
        let (name, csv) = match name.strip_suffix(".csv") {
            Some(base) => (base.to_owned(), true),
            None => (name, false),
        };
        let widget = format!("{category}/{name}");
        if !WIDGETS.contains(&widget.as_str()) {
            return Err(ApiError::not_found(format!(
                "no widget {widget}; the widgets are: {}",
                WIDGETS.join(", ")
            )));
        }
        let orgs = orgs_param(&parse_query(parts.uri.query()))?;
        authorize_widget(state, &parts.headers, &widget, &orgs).await?;
        Ok(WidgetReader { widget, csv, orgs })
    }
}

/// The caller may read every collection `widget` is made from, in every org
/// (also asked of a KPI's widget, named in its body or stored with it).
pub async fn authorize_widget(
    state: &ImpacState,
    headers: &HeaderMap,
    widget: &str,
    orgs: &[String],
) -> Result<Principal, ApiError> {
    let mut principal = None;
    for org in orgs {
        for entity in widgets::entities_of(widget) {
            principal = Some(
                authorize(state.idm.as_ref(), headers, org, Some(entity), Action::Read).await?,
            );
        }
    }
    principal.ok_or_else(|| ApiError::unauthorized("no organisation named"))
}

/// A user with role admin or super_admin in an org the operator allowed to
/// load exchange rates (`mno impac rates allow-org`).
pub struct RateLoader(pub Principal);

impl FromRequestParts<ImpacState> for RateLoader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ImpacState) -> Result<Self, ApiError> {
        let credential = mno_events::http_auth::credential(&parts.headers)?;
        let orgs = rates::loader_orgs(&state.db)
            .await
            .map_err(ApiError::internal)?;
        if orgs.is_empty() {
            return Err(ApiError::forbidden(
                "no organisation may load exchange rates through the API yet; the operator allows one with `mno impac rates allow-org <org>`, or loads rates with `mno impac rates load <csv>`",
            ));
        }
        let mut known = None;
        for org in orgs {
            let decision = state
                .idm
                .check(&IdmRequest {
                    credential: credential.clone(),
                    org,
                    entity: None,
                    action: Action::Write,
                })
                .await
                .map_err(|e| ApiError::unavailable(e.to_string()))?;
            let Some(principal) = decision.principal else {
                return Err(ApiError::unauthorized(format!(
                    "the credentials were not accepted: {}",
                    decision.reason
                )));
            };
            let admin = matches!(principal.role.as_deref(), Some("admin" | "super_admin"));
            if decision.allow && principal.kind == PrincipalKind::User && admin {
                return Ok(RateLoader(principal));
            }
            known = Some(principal);
        }
        let who = known.map(|p| p.name).unwrap_or_default();
        Err(ApiError::forbidden(format!(
            "{who} may not load exchange rates: that needs a user with role admin or super_admin in an organisation the operator allowed (`mno impac rates allow-org <org>`)"
        )))
    }
}
