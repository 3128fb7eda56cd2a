//! Reading a JSON body without losing the digits of its numbers.
//!
//! serde_json parses numbers into f64, which would round money. Here every
//! value is parsed as usual, and the exact text of each number with a
//! fraction or an exponent is kept beside it, by JSON pointer, so that
//! decimal fields can be read from the text (see `entities::schema`).

use std::collections::HashMap;

use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use mno_events::ApiError;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Exact number texts by JSON pointer (from the root of the parsed document).
pub type NumberTexts = HashMap<String, String>;

/// Parse `text`, returning the value and the exact text of its non-integer numbers.
pub fn parse(text: &str) -> Result<(Value, NumberTexts), serde_json::Error> {
    let raw: Box<RawValue> = serde_json::from_str(text)?;
    let mut numbers = NumberTexts::new();
    let value = walk(&raw, String::new(), &mut numbers)?;
    Ok((value, numbers))
}

fn walk(
    raw: &RawValue,
    pointer: String,
    numbers: &mut NumberTexts,
) -> Result<Value, serde_json::Error> {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'{') => {
            let members: Vec<(String, Box<RawValue>)> = serde_json::from_str::<RawObject>(text)?.0;
            let mut object = Map::new();
            for (key, value) in members {
                let child = format!("{pointer}/{}", escape(&key));
                object.insert(key, walk(&value, child, numbers)?);
            }
            Ok(Value::Object(object))
        }
        Some(b'[') => {
            let items: Vec<Box<RawValue>> = serde_json::from_str(text)?;
            let mut array = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                array.push(walk(item, format!("{pointer}/{i}"), numbers)?);
            }
            Ok(Value::Array(array))
        }
        Some(b'-' | b'0'..=b'9') => {
            if text.contains(['.', 'e', 'E']) {
                numbers.insert(pointer, text.to_owned());
            }
            serde_json::from_str(text)
        }
        _ => serde_json::from_str(text),
    }
}

/// JSON pointer escaping (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// An object's members in order, each kept raw.
struct RawObject(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for RawObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = RawObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawObject, A::Error> {
                let mut members = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push((key, value));
                }
                Ok(RawObject(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// A JSON request body with exact number texts; rejections speak the platform's error shape.
pub struct ExactJson {
    pub value: Value,
    pub numbers: NumberTexts,
}

impl<S: Send + Sync> FromRequest<S> for ExactJson {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let mime = v
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON: send Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "the body is larger than the 1 MiB limit; split it into smaller requests",
                    )
                } else {
                    ApiError::bad_request("unreadable_body", e.body_text())
                }
            })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            ApiError::bad_request("malformed_json", format!("the body is not UTF-8: {e}"))
        })?;
        let (value, numbers) = parse(text).map_err(|e| {
            ApiError::bad_request(
                "malformed_json",
                format!(
                    "the body is not valid JSON: {e} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        Ok(ExactJson { value, numbers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_text_of_fractional_numbers_by_pointer() {
        let (value, numbers) =
            parse(r#"{"invoices": {"total_amount": 12345678901234567.89, "lines": [{"q": 2, "p": 0.10}], "a/b": 1e3}}"#)
                .unwrap();
        assert_eq!(numbers["/invoices/total_amount"], "12345678901234567.89");
        assert_eq!(numbers["/invoices/lines/0/p"], "0.10");
        assert_eq!(numbers["/invoices/a~1b"], "1e3");
        assert!(!numbers.contains_key("/invoices/lines/0/q"));
        assert_eq!(value["invoices"]["lines"][0]["q"], 2);
    }

    #[test]
    fn reports_syntax_errors_with_a_position() {
        let err = parse("{\"a\": [1, 2,, 3]}").unwrap_err();
        assert_eq!(err.line(), 1);
        assert!(err.column() > 0);
    }
}
