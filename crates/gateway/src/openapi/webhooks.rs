//! The document's `webhooks`: what the platform POSTs to apps (OpenAPI 3.1),
//! so that a receiver's types can be generated like a client's. utoipa has
//! no webhooks yet, so they are written here, beside the prose of
//! docs/api/delivery.md, docs/api/account-webhooks.md and docs/api/impac.md;
//! end-to-end tests check real POSTs against these schemas.

use serde_json::{json, Value};

/// The Standard Webhooks headers every POST carries.
fn signed_headers() -> Value {
    json!([
        {"name": "webhook-id", "in": "header", "required": true, "schema": {"type": "string"},
         "description": "Names the content: a change's event id, `batch_<digest>` for several, the Hub event id, or the alert id; a retry repeats it"},
        {"name": "webhook-timestamp", "in": "header", "required": true, "schema": {"type": "string"},
         "description": "Unix seconds of this attempt"},
        {"name": "webhook-signature", "in": "header", "required": true, "schema": {"type": "string"},
         "description": "`v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>`, one per live signing secret (two during a rotation), space-separated"}
    ])
}

/// An id in the external-ids array form: Connec!'s, and the receiving app's once known.
fn external_ids() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["realm", "provider", "id"],
            "properties": {
                "realm": {"type": "string", "description": "The organisation"},
                "provider": {"type": "string", "description": "`connec`, or the app's id for its own id"},
                "id": {"type": "string"}
            }
        }
    })
}

/// A changed record in the receiving app's view.
fn record_change() -> Value {
    json!({
        "type": "object",
        "required": ["id", "group_id", "resource_type", "op", "version"],
        "properties": {
            "id": external_ids(),
            "group_id": {"type": "string", "description": "The organisation"},
            "resource_type": {"type": "string", "description": "The collection, e.g. `invoices`"},
            "op": {"enum": ["created", "updated", "deleted", "merged"]},
            "version": {"type": "integer", "minimum": 1}
        },
        "additionalProperties": {
            "description": "The record's fields, as Connec! answers them; every reference field (`*_id`, also in arrays such as `lines[].item_id`) in the external-ids array form"
        }
    })
}

fn post(summary: &str, description: &str, schema: Value, answers: Value) -> Value {
    json!({
        "post": {
            "summary": summary,
            "description": description,
            "parameters": signed_headers(),
            "requestBody": {"required": true, "content": {"application/json": {"schema": schema}}},
            "responses": answers
        }
    })
}

/// `webhooks` of the document: records (delivery), account events, KPI alerts.
pub fn all() -> Value {
    let org = json!({
        "type": "object",
        "required": ["id", "name"],
        "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "currency": {"type": "string"},
            "timezone": {"type": "string"}, "country": {"type": ["string", "null"]},
            "created_at": {"type": "string"}, "updated_at": {"type": "string"}
        }
    });
    let member = json!({
        "type": "object",
        "required": ["user_id", "email", "name", "role"],
        "properties": {
            "user_id": {"type": "string"}, "email": {"type": "string"}, "name": {"type": "string"},
            "role": {"type": "string"}, "previous_role": {"type": "string"}
        }
    });
    json!({
        "records": post(
            "Record changes an app subscribes to (Connec! delivery)",
            "To the app's webhook_url, one organisation's changes per POST keyed by collection, in order within a collection and in version order per record (docs/api/delivery.md).",
            json!({
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "array", "minItems": 1, "items": record_change()}
            }),
            json!({
                "2XX": {"description": "Taken. The body may carry the app's ids of the records: {\"id_map\": [{\"entity\", \"id\", \"local_id\"}]}"},
                "410": {"description": "Disables the app's webhook; nothing is lost (docs/api/delivery.md)"},
                "429": {"description": "Retried, no sooner than Retry-After"},
                "503": {"description": "Retried, no sooner than Retry-After"},
                "default": {"description": "Retried on the schedule, then dead-lettered"}
            }),
        ),
        "account": post(
            "Installs and members of the app's organisations (the Hub)",
            "To the app's account_webhook_url (docs/api/account-webhooks.md).",
            json!({
                "type": "object",
                "required": ["type", "event_id", "timestamp", "data"],
                "properties": {
                    "type": {"enum": ["app.installed", "app.uninstalled", "member.added", "member.role_changed", "member.removed"]},
                    "event_id": {"type": "string"},
                    "timestamp": {"type": "string"},
                    "data": {
                        "type": "object",
                        "required": ["org"],
                        "properties": {"org": org, "app_id": {"type": "string"}, "member": member}
                    }
                }
            }),
            json!({
                "2XX": {"description": "Taken"},
                "410": {"description": "Not sent again"},
                "default": {"description": "Retried on the schedule"}
            }),
        ),
        "kpi_alert": post(
            "A KPI left its target (Impac!)",
            "To the KPI's alert webhook, signed with the KPI's own whsec_ secret, while its creator still reads its organisations (docs/api/impac.md).",
            json!({
                "type": "object",
                "required": ["type", "alert"],
                "properties": {
                    "type": {"const": "kpi.alert"},
                    "alert": {
                        "type": "object",
                        "required": ["id", "kpi_id", "org_ids", "widget", "element", "value", "target", "currency", "raised_at"],
                        "properties": {
                            "id": {"type": "string"}, "kpi_id": {"type": "string"},
                            "org_ids": {"type": "array", "items": {"type": "string"}},
                            "widget": {"type": "string"}, "element": {"type": "string"},
                            "value": {"type": "string", "description": "A decimal, as text"},
                            "target": {"type": "object", "properties": {"min": {"type": "string"}, "max": {"type": "string"}}},
                            "currency": {"type": "string"}, "raised_at": {"type": "string"}
                        }
                    }
                }
            }),
            json!({
                "2XX": {"description": "Taken"},
                "default": {"description": "Tried again after 1 s and 5 s, then recorded as failed on the alert"}
            }),
        )
    })
}
