//! JSON Schemas of the collections, and validation with a JSON pointer to each bad field.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use super::{EntityDef, Field, FieldType, ENTITIES};
use crate::exact_json::NumberTexts;

/// The id of a record in the array form of `CONNEC-EXTERNAL-IDS`.
fn external_id_schema() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "realm": {"type": "string"},
                "provider": {"type": "string"},
                "id": {"type": "string", "minLength": 1, "maxLength": 128}
            },
            "required": ["provider", "id"]
        }
    })
}

fn field_schema(field: &Field) -> Value {
    match field.kind {
        FieldType::Text => json!({"type": ["string", "null"]}),
        FieldType::Integer => json!({"type": ["integer", "null"]}),
        FieldType::Decimal => json!({
            "description": "a decimal number, as a JSON number or a string such as \"1250.50\"",
            "anyOf": [
                {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"},
                {"type": "number"},
                {"type": "null"}
            ]
        }),
        FieldType::Date => json!({
            "type": ["string", "null"],
            "description": "YYYY-MM-DD or an RFC 3339 date-time",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?$"
        }),
        FieldType::Currency => {
            json!({"type": ["string", "null"], "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code"})
        }
        FieldType::Bool => json!({"type": ["boolean", "null"]}),
        FieldType::Enum(values) => {
            let mut allowed: Vec<Value> = values.iter().map(|v| json!(v)).collect();
            allowed.push(Value::Null);
            json!({"enum": allowed})
        }
        FieldType::Ref(target) => json!({
            "description": format!("the id of a record of {target} in the same organisation"),
            "x-references": target,
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": 128},
                external_id_schema(),
                {"type": "null"}
            ]
        }),
        FieldType::Object(fields) => {
            let mut schema = object_schema(fields, &[]);
            schema["type"] = json!(["object", "null"]);
            schema
        }
        FieldType::Lines(fields) => json!({
            "type": ["array", "null"],
            "items": object_schema(fields, &[])
        }),
    }
}

fn object_schema(fields: &[Field], required: &[&str]) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| (f.name.to_owned(), field_schema(f)))
        .collect();
    json!({"type": "object", "properties": properties, "required": required})
}

/// The JSON Schema of one collection's records (without the collection wrapper).
pub fn schema_of(def: &EntityDef) -> Value {
    let mut schema = object_schema(def.fields, def.required);
    schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    schema["title"] = json!(def.name);
    schema["description"] = json!(def.title);
    // Ids and platform fields are set by the platform; apps may add fields of their own.
    schema["additionalProperties"] = json!(true);
    schema
}

fn validators() -> &'static HashMap<&'static str, jsonschema::Validator> {
    static VALIDATORS: OnceLock<HashMap<&'static str, jsonschema::Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        ENTITIES
            .iter()
            .map(|def| {
                let validator = jsonschema::validator_for(&schema_of(def))
                    .expect("the catalogue's schemas are valid JSON Schemas");
                (def.name, validator)
            })
            .collect()
    })
}

/// One bad field: where (a JSON pointer into the record) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub pointer: String,
    pub message: String,
}

/// Check `record` against its collection's schema, then check decimals and
/// dates for meaning; on success, decimals are rewritten as decimal strings.
/// `numbers` holds the exact text of fractional numbers (see `exact_json`),
/// keyed by pointers that start with `root` (e.g. `/invoices`).
pub fn validate(
    def: &EntityDef,
    record: &mut Value,
    numbers: &NumberTexts,
    root: &str,
) -> Result<(), Vec<Violation>> {
    check(def, record, numbers, root, false)
}

/// As [`validate`], for the fields of a partial update: required fields may be absent.
pub fn validate_patch(
    def: &EntityDef,
    record: &mut Value,
    numbers: &NumberTexts,
    root: &str,
) -> Result<(), Vec<Violation>> {
    check(def, record, numbers, root, true)
}

fn check(
    def: &EntityDef,
    record: &mut Value,
    numbers: &NumberTexts,
    root: &str,
    partial: bool,
) -> Result<(), Vec<Violation>> {
    let validator = &validators()[def.name];
    // Most records are valid: the yes/no check is much cheaper than collecting errors.
    let schema_valid = validator.is_valid(record);
    let mut violations: Vec<Violation> = (!schema_valid)
        .then(|| validator.iter_errors(record))
        .into_iter()
        .flatten()
        .filter(|e| {
            let top_level_required = matches!(
                e.kind(),
                jsonschema::error::ValidationErrorKind::Required { .. }
            ) && e.instance_path().to_string().is_empty();
            !(partial && top_level_required)
        })
        .map(|e| Violation {
            pointer: e.instance_path().to_string(),
            message: e.to_string(),
        })
        .collect();
    if violations.is_empty() {
        let exact = Exact { numbers, root };
        normalise(def.fields, record, "", &exact, &mut violations);
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

struct Exact<'a> {
    numbers: &'a NumberTexts,
    root: &'a str,
}

/// Decimals become exact decimal strings; dates must be real calendar dates.
fn normalise(
    fields: &[Field],
    value: &mut Value,
    pointer: &str,
    exact: &Exact,
    out: &mut Vec<Violation>,
) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    for field in fields {
        let Some(inner) = object.get_mut(field.name) else {
            continue;
        };
        // Built only when needed: most fields of most records need no pointer.
        let here = || format!("{pointer}/{}", field.name);
        match field.kind {
            FieldType::Decimal => {
                let text = match inner {
                    Value::String(s) => s.clone(),
                    // The number's exact text as sent, never its f64.
                    Value::Number(n) => exact
                        .numbers
                        .get(&format!("{}{}", exact.root, here()))
                        .cloned()
                        .unwrap_or_else(|| n.to_string()),
                    _ => continue,
                };
                match rust_decimal::Decimal::from_str(&text)
                    .or_else(|_| rust_decimal::Decimal::from_scientific(&text))
                {
                    Ok(decimal) => *inner = Value::String(decimal.to_string()),
                    Err(_) => out.push(Violation {
                        pointer: here(),
                        message: format!("{text} is not a decimal within 28 significant digits"),
                    }),
                }
            }
            FieldType::Date => {
                if let Some(text) = inner.as_str() {
                    if !is_real_date(text) {
                        out.push(Violation {
                            pointer: here(),
                            message: format!(
                                "{text:?} is not a real date (YYYY-MM-DD or RFC 3339)"
                            ),
                        });
                    }
                }
            }
            FieldType::Object(sub) => normalise(sub, inner, &here(), exact, out),
            FieldType::Lines(sub) => {
                if let Some(lines) = inner.as_array_mut() {
                    let here = here();
                    for (i, line) in lines.iter_mut().enumerate() {
                        normalise(sub, line, &format!("{here}/{i}"), exact, out);
                    }
                }
            }
            _ => {}
        }
    }
}

fn is_real_date(text: &str) -> bool {
    if text.len() == 10 {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
    } else {
        chrono::DateTime::parse_from_rfc3339(text).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::lookup;

    #[test]
    fn every_schema_compiles() {
        for def in ENTITIES {
            jsonschema::validator_for(&schema_of(def)).unwrap();
        }
    }

    #[test]
    fn names_each_bad_field_with_a_pointer() {
        let def = lookup("invoices").unwrap();
        let mut record = json!({
            "type": "SOMETHING",
            "due_date": "next week",
            "currency": "usd",
            "lines": [{"quantity": "two"}]
        });
        let violations = validate(def, &mut record, &NumberTexts::new(), "").unwrap_err();
        let pointers: Vec<&str> = violations.iter().map(|v| v.pointer.as_str()).collect();
        for expected in ["/type", "/due_date", "/currency", "/lines/0/quantity"] {
            assert!(pointers.contains(&expected), "{expected} in {pointers:?}");
        }
    }

    #[test]
    fn decimals_are_exact_and_become_strings() {
        let def = lookup("invoices").unwrap();
        let (mut body, numbers) = crate::exact_json::parse(
            r#"{"invoices": {"total_amount": 12345678901234567.89, "tax_amount": 0.10, "balance": "0.10"}}"#,
        )
        .unwrap();
        let mut record = body["invoices"].take();
        validate(def, &mut record, &numbers, "/invoices").unwrap();
        assert_eq!(record["tax_amount"], "0.10");
        assert_eq!(record["total_amount"], "12345678901234567.89");
        assert_eq!(record["balance"], "0.10");
    }

    #[test]
    fn impossible_dates_and_missing_required_fields_are_refused() {
        let mut bad_date = json!({"transaction_date": "2025-02-30"});
        let none = NumberTexts::new();
        let violations =
            validate(lookup("invoices").unwrap(), &mut bad_date, &none, "").unwrap_err();
        assert_eq!(violations[0].pointer, "/transaction_date");
        let mut nameless = json!({"code": "X"});
        let violations = validate(lookup("items").unwrap(), &mut nameless, &none, "").unwrap_err();
        assert!(violations[0].message.contains("name"), "{violations:?}");
    }
}
