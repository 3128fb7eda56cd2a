//! The collections and their JSON Schemas, and the path's names checked
//! against them (404 for what names nothing).

use axum::extract::Path;
use axum::Json;
use mno_events::openapi::NotFound;
use mno_events::subject::Token;
use mno_events::ApiError;
use serde_json::{json, Value};

use crate::entities::{self, schema, EntityDef};

/// `GET /connec/api/v2`: the collections.
#[utoipa::path(
    get,
    path = "/connec/api/v2",
    tag = "connec",
    responses((status = 200, description = "The collections", body = super::openapi::CollectionList))
)]
pub async fn collections() -> Json<Value> {
    let list: Vec<Value> = entities::ENTITIES
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "title": e.title,
                "singular": e.singular,
                "json_schema": format!("/connec/api/v2/json_schema/{}", e.name),
            })
        })
        .collect();
    Json(json!({ "collections": list }))
}

/// `GET /connec/api/v2/json_schema/{entity}`.
#[utoipa::path(
    get,
    path = "/connec/api/v2/json_schema/{entity}",
    tag = "connec",
    params(super::openapi::EntityPath),
    responses((status = 200, description = "The JSON Schema (draft 2020-12) of the collection's records", body = super::openapi::JsonSchema), NotFound)
)]
pub async fn json_schema(Path(entity): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(schema::schema_of(entity_or_404(&entity)?)))
}

/// The collection a path names.
pub fn entity_or_404(name: &str) -> Result<&'static EntityDef, ApiError> {
    entities::lookup(name).ok_or_else(|| {
        ApiError::not_found(format!(
            "there is no collection {name:?}; the collections are: {}",
            entities::names().join(", ")
        ))
        .at_parameter("entity")
    })
}

/// The org a path names, as a subject token.
pub fn org_or_404(org: &str) -> Result<Token, ApiError> {
    Token::parse("org", org)
        .map_err(|_| ApiError::not_found(format!("no organisation {org:?}")).at_parameter("org"))
}
