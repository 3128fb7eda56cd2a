//! JSON Schemas of the collections, and validation with a JSON pointer to each bad field.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use super::{EntityDef, Field, FieldType, ENTITIES};
use crate::exact_json::NumberTexts;
use crate::idmap::MAX_LOCAL_ID_LEN;

/// The id of a record in the array form of `CONNEC-EXTERNAL-IDS`.
fn external_id_schema() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "realm": {"type": "string"},
                "provider": {"type": "string"},
                "id": {"type": "string", "minLength": 1, "maxLength": MAX_LOCAL_ID_LEN}
            },
            "required": ["provider", "id"]
        }
    })
}

/// Each field's schema carries a `description` that completes "send ...":
/// validation errors quote it, so that a refusal says what would be accepted.
fn field_schema(field: &Field) -> Value {
    match field.kind {
        FieldType::Text => {
            json!({"type": ["string", "null"], "description": "text (a JSON string)"})
        }
        FieldType::Integer => {
            json!({"type": ["integer", "null"], "description": "a whole number"})
        }
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
            "description": "a date as YYYY-MM-DD or an RFC 3339 date-time such as 2026-11-02T09:30:00Z",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?$"
        }),
        FieldType::Currency => json!({
            "type": ["string", "null"],
            "pattern": "^[A-Z]{3}$",
            "description": "an ISO 4217 currency code: three capital letters such as USD"
        }),
        FieldType::Bool => json!({"type": ["boolean", "null"], "description": "true or false"}),
        FieldType::Enum(values) => {
            let mut allowed: Vec<Value> = values.iter().map(|v| json!(v)).collect();
            allowed.push(Value::Null);
            json!({"enum": allowed, "description": format!("one of {}", values.join(", "))})
        }
        FieldType::Ref(target) => json!({
            "description": format!("the id of a record of {target} in the same organisation"),
            "x-references": target,
            "anyOf": [
                // A Connec! id or the app's own id: as long as a record's own id may be.
                {"type": "string", "minLength": 1, "maxLength": MAX_LOCAL_ID_LEN},
                external_id_schema(),
                {"type": "null"}
            ]
        }),
        FieldType::Object(fields) => {
            let mut schema = object_schema(fields, &[]);
            schema["type"] = json!(["object", "null"]);
            schema["description"] = json!("an object of the fields this schema lists");
            schema
        }
        FieldType::Lines(fields) => json!({
            "type": ["array", "null"],
            "description": "an array of line objects",
            "items": object_schema(fields, &[])
        }),
    }
}

/// A required field must hold a value: null is taken out of what it accepts.
fn refuse_null(schema: &mut Value) {
    if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|t| t != "null");
    }
    if let Some(any_of) = schema.get_mut("anyOf").and_then(Value::as_array_mut) {
        any_of.retain(|s| s.get("type").and_then(Value::as_str) != Some("null"));
    }
    if let Some(allowed) = schema.get_mut("enum").and_then(Value::as_array_mut) {
        allowed.retain(|v| !v.is_null());
    }
}

fn object_schema(fields: &[Field], required: &[&str]) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| {
            let mut schema = field_schema(f);
            if required.contains(&f.name) {
                refuse_null(&mut schema);
            }
            (f.name.to_owned(), schema)
        })
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

/// Each collection's compiled validator, beside its schema (whose field
/// descriptions explain errors).
fn validators() -> &'static HashMap<&'static str, (jsonschema::Validator, Value)> {
    static VALIDATORS: OnceLock<HashMap<&'static str, (jsonschema::Validator, Value)>> =
        OnceLock::new();
    VALIDATORS.get_or_init(|| {
        ENTITIES
            .iter()
            .map(|def| {
                let schema = schema_of(def);
                let validator = jsonschema::validator_for(&schema)
                    .expect("the catalogue's schemas are valid JSON Schemas");
                (def.name, (validator, schema))
            })
            .collect()
    })
}

/// A schema error in words that say what to send instead.
fn explain(schema: &Value, error: &jsonschema::ValidationError) -> Violation {
    let at = error.instance_path().to_string();
    if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind() {
        let name = property.as_str().unwrap_or_default();
        return Violation {
            pointer: format!("{at}/{name}"),
            message: format!("{name} is required; send it with a value"),
        };
    }
    let field = field_at(schema, &error.schema_path().to_string());
    let expected = field
        .and_then(|f| f.get("description"))
        .and_then(Value::as_str);
    let message = match (error.instance().as_ref(), expected) {
        (Value::Null, _) => "this field is required and may not be null".to_owned(),
        (value, Some(expected)) => format!("{value} is not accepted here; send {expected}"),
        (_, None) => error.to_string(),
    };
    Violation {
        pointer: at,
        message,
    }
}

/// The schema of the field an error's schema path runs through last
/// (`/properties/lines/items/properties/quantity/anyOf` → that of `quantity`).
fn field_at<'s>(schema: &'s Value, schema_path: &str) -> Option<&'s Value> {
    let segments: Vec<&str> = schema_path.split('/').collect();
    let last_property = segments.iter().rposition(|s| *s == "properties")?;
    let field_path = segments.get(..last_property + 2)?.join("/");
    schema.pointer(&field_path)
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
    let (validator, schema) = &validators()[def.name];
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
        .map(|e| explain(schema, &e))
        .collect();
    // Meaning (real dates, decimals in range) is checked even when the shape
    // was not, so that one answer names every bad field; once each.
    let mut meaning = Vec::new();
    normalise(
        def.fields,
        record,
        "",
        &Exact { numbers, root },
        &mut meaning,
    );
    nul_characters(record, "", &mut meaning);
    for violation in meaning {
        if !violations.iter().any(|v| v.pointer == violation.pointer) {
            violations.push(violation);
        }
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
                    Ok(decimal) if rounded(&text, &decimal) => out.push(Violation {
                        pointer: here(),
                        message: format!(
                            "{text} has more digits than are kept exactly (28 significant digits): \
                             round it yourself to the digits you mean"
                        ),
                    }),
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

/// Whether parsing `text` (plain decimal notation) dropped fractional digits:
/// rust_decimal rounds what does not fit in 28 digits instead of refusing it.
fn rounded(text: &str, decimal: &rust_decimal::Decimal) -> bool {
    if text.contains(['e', 'E']) {
        return false;
    }
    let fraction = text
        .split_once('.')
        .map_or("", |(_, f)| f.trim_end_matches('0'));
    fraction.len() > decimal.normalize().scale() as usize
}

/// Text anywhere in a record, names included, may not hold U+0000: PostgreSQL
/// cannot store it in text or query it in JSON, so one such record would make
/// every filtered list of its collection fail there.
fn nul_characters(value: &Value, pointer: &str, out: &mut Vec<Violation>) {
    // Pointers are built only for a record that has one: most have none.
    if !holds_nul(value) {
        return;
    }
    const WHY: &str = "holds the character U+0000 (NUL), which records may not contain: remove it";
    match value {
        Value::String(_) => out.push(Violation {
            pointer: pointer.to_owned(),
            message: format!("the text {WHY}"),
        }),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                nul_characters(item, &format!("{pointer}/{i}"), out);
            }
        }
        Value::Object(members) => {
            for (name, member) in members {
                let here = format!("{pointer}/{}", crate::exact_json::escape(name));
                if name.contains('\0') {
                    out.push(Violation {
                        pointer: here,
                        message: format!("the member's name {WHY}"),
                    });
                } else {
                    nul_characters(member, &here, out);
                }
            }
        }
        _ => {}
    }
}

fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(members) => members
            .iter()
            .any(|(name, member)| name.contains('\0') || holds_nul(member)),
        _ => false,
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
    fn each_refusal_says_what_to_send_instead() {
        let def = lookup("invoices").unwrap();
        let mut record = json!({
            "total_amount": "12,50",
            "currency": "usd",
            "due_date": "02/12/2026",
            "transaction_date": "2025-02-30",
            "type": "SOMETHING"
        });
        let violations = validate(def, &mut record, &NumberTexts::new(), "").unwrap_err();
        let message = |pointer: &str| {
            violations
                .iter()
                .find(|v| v.pointer == pointer)
                .map(|v| v.message.clone())
                .unwrap_or_else(|| panic!("no violation at {pointer}: {violations:?}"))
        };
        assert!(message("/total_amount").contains("send a decimal number"));
        assert!(message("/currency").contains("three capital letters such as USD"));
        assert!(message("/due_date").contains("send a date as YYYY-MM-DD"));
        assert!(message("/type").contains("one of CUSTOMER, SUPPLIER"));
        // A real-date check comes in the same answer as the shape errors.
        assert!(message("/transaction_date").contains("not a real date"));
    }

    #[test]
    fn a_decimal_with_more_digits_than_are_kept_is_refused_not_rounded() {
        let def = lookup("invoices").unwrap();
        let none = NumberTexts::new();
        for text in [
            "123456789012345678901234567.891",
            "0.00000000000000000000000000000001",
        ] {
            let mut record = json!({"type": "CUSTOMER", "total_amount": text});
            let violations = validate(def, &mut record, &none, "").unwrap_err();
            assert_eq!(violations[0].pointer, "/total_amount", "{violations:?}");
            assert!(
                violations[0].message.contains("28 significant digits"),
                "{violations:?}"
            );
        }
        for (text, kept) in [
            (
                "1234567890123456789012345.678",
                "1234567890123456789012345.678",
            ),
            ("1.500", "1.500"),
            (
                "-0.0000000000000000000000000001",
                "-0.0000000000000000000000000001",
            ),
        ] {
            let mut record = json!({"type": "CUSTOMER", "total_amount": text});
            validate(def, &mut record, &none, "").unwrap();
            assert_eq!(record["total_amount"], kept);
        }
    }

    #[test]
    fn a_nul_character_anywhere_is_refused_with_its_pointer() {
        let def = lookup("invoices").unwrap();
        let none = NumberTexts::new();
        let mut record = json!({
            "type": "CUSTOMER",
            "title": "a\u{0}b",
            "lines": [{"description": "ok"}, {"description": "x\u{0}"}],
            "extra": {"na\u{0}me/~": 1}
        });
        let violations = validate(def, &mut record, &none, "").unwrap_err();
        let pointers: Vec<&str> = violations.iter().map(|v| v.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/extra/na\u{0}me~1~0", "/lines/1/description", "/title"],
            "{violations:?}"
        );
        assert!(
            violations[1].message.contains("U+0000 (NUL)"),
            "{violations:?}"
        );
        let mut clean = json!({"type": "CUSTOMER", "title": "a b"});
        assert!(validate(def, &mut clean, &none, "").is_ok());
    }

    #[test]
    fn a_required_field_is_named_by_its_pointer_and_may_not_be_null() {
        let def = lookup("items").unwrap();
        let none = NumberTexts::new();
        let missing = validate(def, &mut json!({"code": "X"}), &none, "").unwrap_err();
        assert_eq!(missing[0].pointer, "/name", "{missing:?}");
        assert!(
            missing[0].message.contains("name is required"),
            "{missing:?}"
        );
        let null = validate(def, &mut json!({"name": null}), &none, "").unwrap_err();
        assert_eq!(null[0].pointer, "/name", "{null:?}");
        assert!(null[0].message.contains("may not be null"), "{null:?}");
        let patch = validate_patch(def, &mut json!({"name": null}), &none, "").unwrap_err();
        assert_eq!(
            patch[0].pointer, "/name",
            "a patch may not clear it either: {patch:?}"
        );
        // An optional field may still be null.
        validate(def, &mut json!({"name": "Bolt", "code": null}), &none, "").unwrap();
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
