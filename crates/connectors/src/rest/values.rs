//! Value (enum) mapping of one field: the outside API's values and Connec!'s,
//! both ways, e.g. `status = { path = "state", values = { ACTIVE = "1",
//! INACTIVE = "0" } }`. A value the mapping does not name is refused by name
//! (the record is then reported, not written with a value nobody chose).

use std::collections::BTreeMap;

use serde_json::Value;

/// Connec! value → outside value (any JSON value but null: `"1"`, `1`, `true`).
#[derive(Debug, Clone)]
pub struct Values(pub BTreeMap<String, Value>);

impl Values {
    fn outside_list(&self) -> String {
        let values: Vec<String> = self.0.values().map(Value::to_string).collect();
        values.join(", ")
    }

    /// The Connec! value of an outside one.
    pub fn to_connec(&self, field: &str, path: &str, outside: &Value) -> Result<Value, String> {
        self.0
            .iter()
            .find(|(_, v)| *v == outside)
            .map(|(connec, _)| Value::String(connec.clone()))
            .ok_or_else(|| {
                format!(
                    "{field}: the outside value {outside} at {path:?} is none of the mapping's values ({})",
                    self.outside_list()
                )
            })
    }

    /// The outside value of a Connec! one.
    pub fn to_outside(&self, field: &str, connec: &Value) -> Result<Value, String> {
        connec
            .as_str()
            .and_then(|c| self.0.get(c))
            .cloned()
            .ok_or_else(|| {
                let known: Vec<&str> = self.0.keys().map(String::as_str).collect();
                format!(
                    "{field}: the Connec! value {connec} is none of the mapping's values ({})",
                    known.join(", ")
                )
            })
    }

    /// A mapping mistake, if any: no value, null, an outside value named
    /// twice (it could not be read back), a Connec! value its enum lacks.
    pub fn check(&self, field: &str, allowed: Option<&[&str]>) -> Result<(), String> {
        if self.0.is_empty() {
            return Err(format!("field {field}: values maps no value"));
        }
        for (connec, outside) in &self.0 {
            if outside.is_null() {
                return Err(format!("field {field}: values: {connec} maps to nothing"));
            }
            if self.0.values().filter(|o| *o == outside).count() > 1 {
                return Err(format!(
                    "field {field}: values: the outside value {outside} is named twice, so it could not be read back"
                ));
            }
            if let Some(allowed) = allowed.filter(|a| !a.contains(&connec.as_str())) {
                return Err(format!(
                    "field {field}: values: {connec:?} is not a value of {field}; its values are {}",
                    allowed.join(", ")
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn active() -> Values {
        Values(BTreeMap::from([
            ("ACTIVE".to_owned(), json!("1")),
            ("INACTIVE".to_owned(), json!("0")),
        ]))
    }

    #[test]
    fn values_map_both_ways_and_unknown_ones_are_named() {
        let v = active();
        assert_eq!(
            v.to_connec("status", "state", &json!("1")),
            Ok(json!("ACTIVE"))
        );
        assert_eq!(v.to_outside("status", &json!("INACTIVE")), Ok(json!("0")));
        assert_eq!(
            v.to_connec("status", "state", &json!("7")).unwrap_err(),
            "status: the outside value \"7\" at \"state\" is none of the mapping's values (\"1\", \"0\")"
        );
        assert_eq!(
            v.to_outside("status", &json!("ARCHIVED")).unwrap_err(),
            "status: the Connec! value \"ARCHIVED\" is none of the mapping's values (ACTIVE, INACTIVE)"
        );
        // A number is not its text.
        assert!(v.to_connec("status", "state", &json!(1)).is_err());
        assert!(v.check("status", Some(&["ACTIVE", "INACTIVE"])).is_ok());
        let error = v.check("status", Some(&["DRAFT"])).unwrap_err();
        assert!(
            error.contains("\"ACTIVE\" is not a value of status"),
            "{error}"
        );
        let twice = Values(BTreeMap::from([
            ("ACTIVE".to_owned(), json!("1")),
            ("INACTIVE".to_owned(), json!("1")),
        ]));
        assert!(twice
            .check("status", None)
            .unwrap_err()
            .contains("named twice"));
    }
}
