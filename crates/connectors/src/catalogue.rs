//! The connectors the runtime knows, by the `connector` name an install
//! configures, and how each is built from its settings and credentials.

use std::sync::Arc;

use serde_json::Value;

use crate::carddav::{CardDav, CardDavCredentials, CardDavSettings};
use crate::outside::Outside;
use crate::rest::{Rest, RestSettings};

/// The connector names an install may configure.
pub const KINDS: &[&str] = &["carddav", "rest"];

/// What is wrong with a configuration: a JSON pointer into the request and why.
#[derive(Debug, Clone)]
pub struct Invalid {
    pub pointer: String,
    pub detail: String,
}

fn invalid(pointer: &str, detail: impl Into<String>) -> Invalid {
    Invalid {
        pointer: pointer.to_owned(),
        detail: detail.into(),
    }
}

/// Build the connector `kind` for one install.
pub fn build(
    kind: &str,
    app_id: &str,
    http: reqwest::Client,
    settings: &Value,
    credentials: &Value,
) -> Result<Arc<dyn Outside>, Invalid> {
    match kind {
        "carddav" => {
            let settings: CardDavSettings =
                serde_json::from_value(settings.clone()).map_err(|e| {
                    invalid(
                        "/settings",
                        format!("CardDAV settings: {e}; send {{\"url\": \"<address book URL>\"}}"),
                    )
                })?;
            let credentials: CardDavCredentials = serde_json::from_value(credentials.clone())
                .map_err(|e| {
                    invalid(
                        "/credentials",
                        format!("CardDAV credentials: {e}; send {{\"username\", \"password\"}}"),
                    )
                })?;
            let connector = CardDav::new(http, settings, credentials)
                .map_err(|e| invalid("/settings/url", e))?;
            Ok(Arc::new(connector))
        }
        "rest" => {
            let settings: RestSettings = serde_json::from_value(settings.clone()).map_err(|e| {
                invalid("/settings", format!("REST settings: {e}; send {{\"url\": \"<API base URL>\", \"mapping\": \"<mapping file text>\"}}"))
            })?;
            let connector = Rest::new(http, settings, credentials, app_id)
                .map_err(|(pointer, detail): (String, String)| invalid(&pointer, detail))?;
            Ok(Arc::new(connector))
        }
        other => Err(invalid(
            "/connector",
            format!(
                "connector {other:?} is unknown; use one of {}",
                KINDS.join(", ")
            ),
        )),
    }
}

/// The URL an install's settings point at, for the private-address check.
pub fn target_url(settings: &Value) -> Option<&str> {
    settings.get("url").and_then(Value::as_str)
}
