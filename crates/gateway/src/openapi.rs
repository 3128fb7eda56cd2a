//! `GET /openapi.json`: the OpenAPI 3.1 document of every route the gateway
//! serves, merged from each part's annotations (kept beside the handlers) and
//! the edge's own, and the webhooks the platform sends ([`webhooks`]).

mod webhooks;

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use mno_events::openapi::SecuritySchemes;
use utoipa::OpenApi;

use crate::{health, operator};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Mno",
        description = "The platform's HTTP API: the Hub (/hub/v1, /idm/v1), its OpenID Connect provider (/sso/v1, \
/.well-known/openid-configuration), Connec! (/connec/api/v2, /connec/batch), Impac! (/impac/api/v2), the operator's \
view of the bus (/operator/v1) and the edge's health routes. The portal's HTML pages are not API and are not listed. Every error answers \
{\"errors\":[{\"status\",\"code\",\"title\",\"detail\"}]}. Apps authenticate with HTTP Basic (API key and secret), \
users with Authorization: Bearer <session token>. docs/api/ describes each part in prose.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(health::healthz, health::readyz, document, operator::bus),
    modifiers(&SecuritySchemes),
    tags(
        (name = "edge", description = "Health, readiness and this document (docs/operations.md)"),
        (name = "operator", description = "The bus as the platform's operators see it (docs/operations.md)")
    )
)]
struct EdgeApi;

/// The whole document: the edge's routes and each part's.
pub fn document_value() -> utoipa::openapi::OpenApi {
    let mut doc = EdgeApi::openapi();
    doc.merge(mno_hub::api::document::HubApi::openapi());
    doc.merge(mno_connec_sync::api::document::ConnecApi::openapi());
    doc.merge(mno_impac_projector::document::ImpacApi::openapi());
    doc.merge(mno_connectors::api::ConnectorsApi::openapi());
    doc
}

/// The document as served, built once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut doc =
            serde_json::to_value(document_value()).expect("the OpenAPI document serialises");
        doc["webhooks"] = webhooks::all();
        serde_json::to_string_pretty(&doc).expect("the OpenAPI document serialises")
    })
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "edge",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object))
)]
pub async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}
