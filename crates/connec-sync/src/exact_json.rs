//! Reading a JSON body without losing the digits of its numbers.
//!
//! serde_json parses numbers into f64, which would round money. Here every
//! value is parsed as usual, and the exact text of each number with a
//! fraction or an exponent is kept beside it, by JSON pointer, so that
//! decimal fields can be read from the text (see `entities::schema`).

use std::collections::{HashMap, HashSet};

use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use mno_events::ApiError;
use serde_json::Value;

/// Exact number texts by JSON pointer (from the root of the parsed document).
pub type NumberTexts = HashMap<String, String>;

/// Why a body is not the JSON a record route takes.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// serde_json's message ends "at line L column C".
    #[error("the body is not valid JSON: {0}; fix it there and send it again")]
    Syntax(#[from] serde_json::Error),
    /// Parsers disagree on which of two equal names wins (a proxy or a
    /// signature check may read the first where the platform would keep the
    /// last), so the body is refused rather than guessed at.
    #[error("the member name {name:?} appears twice in the object at {at:?}; send each name once")]
    DuplicateName { name: String, at: String },
}

/// Parse `text`, returning the value and the exact text of its non-integer numbers.
pub fn parse(text: &str) -> Result<(Value, NumberTexts), BodyError> {
    let value: Value = serde_json::from_str(text)?;
    let mut numbers = NumberTexts::new();
    scan_numbers(text.as_bytes(), &mut numbers)?;
    Ok((value, numbers))
}

/// Where the scan is: inside an object (at this member, with the names seen
/// so far, kept from the second on) or an array (at this item).
enum Frame {
    Object(String, Option<HashSet<String>>),
    Array(usize),
}

/// One pass over text serde_json has already accepted, noting the text of
/// every number with a fraction or an exponent by its JSON pointer, and
/// refusing an object that names a member twice.
fn scan_numbers(bytes: &[u8], numbers: &mut NumberTexts) -> Result<(), BodyError> {
    let mut stack: Vec<Frame> = Vec::new();
    // The next string of an object is a member name (after `{` or `,`).
    let mut expect_key = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                stack.push(Frame::Object(String::new(), None));
                expect_key = true;
                i += 1;
            }
            b'[' => {
                stack.push(Frame::Array(0));
                expect_key = false;
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                i += 1;
            }
            b',' => {
                match stack.last_mut() {
                    Some(Frame::Array(index)) => *index += 1,
                    Some(Frame::Object(..)) => expect_key = true,
                    None => {}
                }
                i += 1;
            }
            b':' => {
                expect_key = false;
                i += 1;
            }
            b'"' => {
                let end = string_end(bytes, i);
                if expect_key {
                    let mut duplicate = None;
                    if let Some(Frame::Object(key, seen)) = stack.last_mut() {
                        let first = seen.is_none() && key.is_empty();
                        // The previous name goes into the set once a second one comes.
                        let set = seen.get_or_insert_with(HashSet::new);
                        if !first {
                            set.insert(std::mem::take(key));
                        }
                        let quoted = &bytes[i..end];
                        let plain = &quoted[1..quoted.len().saturating_sub(1).max(1)];
                        key.clear();
                        match std::str::from_utf8(plain) {
                            // Most names have no escapes: copy them into the frame's buffer.
                            Ok(text) if !plain.contains(&b'\\') => key.push_str(text),
                            _ => *key = serde_json::from_slice(quoted).unwrap_or_default(),
                        }
                        if set.contains(key.as_str()) {
                            duplicate = Some(key.clone());
                        }
                    }
                    if let Some(name) = duplicate {
                        stack.pop();
                        return Err(BodyError::DuplicateName {
                            name,
                            at: pointer(&stack),
                        });
                    }
                }
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let number = &bytes[start..i];
                if number.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
                    numbers.insert(
                        pointer(&stack),
                        String::from_utf8_lossy(number).into_owned(),
                    );
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// The index just past the string starting with the quote at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn pointer(stack: &[Frame]) -> String {
    let mut pointer = String::new();
    for frame in stack {
        pointer.push('/');
        match frame {
            Frame::Object(key, _) => pointer.push_str(&escape(key)),
            Frame::Array(index) => pointer.push_str(&index.to_string()),
        }
    }
    pointer
}

/// JSON pointer escaping (RFC 6901).
pub(crate) fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
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
        let (value, numbers) = parse(text).map_err(|e| match &e {
            BodyError::Syntax(_) => ApiError::bad_request("malformed_json", e.to_string()),
            BodyError::DuplicateName { at, .. } => {
                ApiError::bad_request("duplicate_name", e.to_string()).at_pointer(at.clone())
            }
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
    fn pointers_follow_nesting_escapes_and_strings_that_look_like_numbers() {
        let text = r#"{"ops": [{"url": "/a,b:{[", "params": {"x\"y": {"v": -1.5E-3, "n": [1, 2.0, {"z": 3}]}}},
            {"params": {"w": 0.25, "s": "1.5"}}], "k~": 7.0}"#;
        let (_, numbers) = parse(text).unwrap();
        assert_eq!(numbers["/ops/0/params/x\"y/v"], "-1.5E-3");
        assert_eq!(numbers["/ops/0/params/x\"y/n/1"], "2.0");
        assert_eq!(numbers["/ops/1/params/w"], "0.25");
        assert_eq!(numbers["/k~0"], "7.0");
        assert_eq!(numbers.len(), 4, "{numbers:?}");
    }

    #[test]
    fn empty_and_unicode_escaped_member_names_are_read_like_any_other() {
        let (_, numbers) = parse(r#"{"": 1.5, "\u00e9t\u00e9": {"": 2.5}, "hiver": 3.5}"#).unwrap();
        assert_eq!(numbers["/"], "1.5");
        assert_eq!(numbers["/été/"], "2.5");
        assert_eq!(numbers["/hiver"], "3.5");
        assert_eq!(numbers.len(), 3, "{numbers:?}");
    }

    #[test]
    fn a_name_given_twice_in_one_object_is_refused_wherever_it_is() {
        for (text, name, at) in [
            (
                r#"{"invoices": {"title": "x"}, "invoices": {"title": "y"}}"#,
                "invoices",
                "",
            ),
            (
                r#"{"invoices": {"title": "x", "total": 1, "title": "y"}}"#,
                "title",
                "/invoices",
            ),
            // Equal once unescaped.
            (r#"{"a": [{"\u00e9": 1, "é": 2}]}"#, "é", "/a/0"),
        ] {
            match parse(text) {
                Err(BodyError::DuplicateName { name: n, at: a }) => {
                    assert_eq!((n.as_str(), a.as_str()), (name, at), "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        // The same name in sibling objects is no duplicate.
        parse(r#"{"lines": [{"q": 1}, {"q": 2}], "q": {"q": 3}}"#).unwrap();
    }

    #[test]
    fn reports_syntax_errors_with_a_position() {
        match parse("{\"a\": [1, 2,, 3]}").unwrap_err() {
            BodyError::Syntax(err) => {
                assert_eq!(err.line(), 1);
                assert!(err.column() > 0);
            }
            other => panic!("{other:?}"),
        }
    }
}
