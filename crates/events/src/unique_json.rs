//! A JSON value read with every object's member names unique: `{"name": "a",
//! "name": "b"}` is refused instead of keeping the last. Parsers disagree on
//! which of two equal names wins (a proxy or a check in front of the platform
//! may read the first), so a body is refused rather than guessed at.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The start of the error a repeated name gives, to tell it from other shape errors.
pub const DUPLICATE_NAME: &str = "the member name";

/// A `serde_json::Value` whose objects name each member once.
pub struct UniqueNames(pub Value);

impl<'de> Deserialize<'de> for UniqueNames {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(UniqueNames)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueNames(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let UniqueNames(value) = map.next_value()?;
            if members.contains_key(&name) {
                return Err(de::Error::custom(format!(
                    "{DUPLICATE_NAME} {name:?} appears twice in one object; send each name once"
                )));
            }
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Value, serde_json::Error> {
        serde_json::from_str::<UniqueNames>(text).map(|u| u.0)
    }

    #[test]
    fn reads_like_serde_json_when_names_are_unique() {
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": {"a": 1}}"#;
        assert_eq!(
            read(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }

    #[test]
    fn refuses_a_name_given_twice_at_any_depth() {
        for text in [
            r#"{"name": "a", "name": "b"}"#,
            r#"{"org": {"x": 1, "y": 2, "x": 3}}"#,
            r#"[{"\u00e9": 1, "é": 2}]"#,
        ] {
            let error = read(text).unwrap_err();
            assert!(
                error.to_string().starts_with(DUPLICATE_NAME),
                "{text}: {error}"
            );
        }
    }
}
