//! Writing records as JSON without parsing their stored state into a tree.
//!
//! A stored state is canonical JSON (compact, keys sorted). Views of it (the
//! API's, each receiving app's) add or replace a few top-level fields and
//! copy the rest. Building a `serde_json::Value` of the whole record and
//! serialising it again costs more than the rest of a write; copying each
//! field's text as it is does not.

use std::borrow::Cow;

use serde::de::{MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The top-level fields of a state, in their stored order, values unparsed;
/// empty when the state is not a JSON object.
pub fn top_level_fields(state: &[u8]) -> Vec<(Cow<'_, str>, &RawValue)> {
    serde_json::from_slice::<Fields>(state)
        .map(|f| f.0)
        .unwrap_or_default()
}

/// Write one JSON object holding the `copied` fields (their text as it is)
/// and the `set` fields (serialised), keys in sorted order. A key in both is
/// the caller's mistake: keep `copied` free of the keys `set` holds.
pub fn write_object(
    out: &mut Vec<u8>,
    mut copied: Vec<(&str, &RawValue)>,
    set: &Map<String, Value>,
) {
    // Canonical states are stored sorted; sort anyway (cheap on sorted input) so the merge holds.
    copied.sort_by(|a, b| a.0.cmp(b.0));
    let mut copied = copied.into_iter().peekable();
    let mut set = set.iter().peekable();
    out.push(b'{');
    let mut first = true;
    loop {
        let take_copied = match (copied.peek(), set.peek()) {
            (Some((a, _)), Some((b, _))) => *a < b.as_str(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if !first {
            out.push(b',');
        }
        first = false;
        if take_copied {
            let (key, raw) = copied.next().expect("peeked");
            write_key(out, key);
            out.extend_from_slice(raw.get().as_bytes());
        } else {
            let (key, value) = set.next().expect("peeked");
            write_key(out, key);
            serde_json::to_writer(&mut *out, value).expect("a Value always serialises");
        }
    }
    out.push(b'}');
}

fn write_key(out: &mut Vec<u8>, key: &str) {
    serde_json::to_writer(&mut *out, key).expect("a str always serialises");
    out.push(b':');
}

struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    fields.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// A field name, borrowed from the input unless it had escapes.
#[derive(Deserialize)]
#[serde(transparent)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn copied_and_set_fields_merge_in_key_order() {
        let state = br#"{"a":1,"c":{"x":[1,2]},"e":"text"}"#;
        let fields = top_level_fields(state);
        let copied: Vec<(&str, &RawValue)> = fields
            .iter()
            .filter(|(k, _)| k != "e")
            .map(|(k, v)| (k.as_ref(), *v))
            .collect();
        let mut set = Map::new();
        set.insert("b".into(), json!(true));
        set.insert("e".into(), json!("replaced"));
        set.insert("z".into(), json!(null));
        let mut out = Vec::new();
        write_object(&mut out, copied, &set);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"a":1,"b":true,"c":{"x":[1,2]},"e":"replaced","z":null}"#
        );
    }

    #[test]
    fn a_state_that_is_not_an_object_has_no_fields() {
        assert!(top_level_fields(b"[1,2]").is_empty());
        assert!(top_level_fields(b"not json").is_empty());
        let mut out = Vec::new();
        write_object(&mut out, vec![], &Map::new());
        assert_eq!(out, b"{}");
    }

    #[test]
    fn escaped_keys_are_kept_and_written_escaped() {
        let fields = top_level_fields(br#"{"a\"b":1}"#);
        assert_eq!(fields[0].0, "a\"b");
        let copied = fields.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
        let mut out = Vec::new();
        write_object(&mut out, copied, &Map::new());
        assert_eq!(out, br#"{"a\"b":1}"#);
    }
}
