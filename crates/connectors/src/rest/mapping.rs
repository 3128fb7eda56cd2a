//! The mapping file of connector 2: how a plain JSON REST API's collections
//! become Connec! entities. TOML; read whole at load, and refused there with
//! the line and the field of the first mistake.
//!
//! ```toml
//! [auth]                         # optional: one header, {name} from the install's credentials
//! header = "Authorization"
//! value = "Bearer {token}"
//!
//! [[collections]]
//! entity = "invoices"            # the Connec! entity
//! path = "/invoices"             # under the install's settings.url
//! id_field = "id"
//! updated_at_field = "updatedAt" # optional; without it, changes are found by hash
//! pagination = { style = "page", page_param = "_page", size_param = "_limit", size = 50 }
//!
//! [collections.fields]           # Connec! field = outside path (dots for nesting)
//! transaction_number = "number"
//! total_amount = { path = "amount", convert = "decimal" }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::values::Values;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(default)]
    pub auth: Option<Auth>,
    pub collections: Vec<Collection>,
}

/// One header sent with every call; `{name}` placeholders are filled from the credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub header: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collection {
    pub entity: String,
    pub path: String,
    #[serde(default = "default_id_field")]
    pub id_field: String,
    /// The record's last-change time; `None`: changes are found by hash.
    #[serde(default)]
    pub updated_at_field: Option<String>,
    #[serde(default)]
    pub pagination: Pagination,
    /// `PATCH` (default: only the mapped fields are sent) or `PUT`.
    #[serde(default)]
    pub update_method: UpdateMethod,
    /// A header sent with each create, its value the same on a retry of the
    /// same create (`Idempotency-Key`), for APIs that answer a repeated key
    /// with the record made the first time.
    #[serde(default)]
    pub idempotency_header: Option<String>,
    /// An outside field the runtime sets to the Connec! id on create, and
    /// looks a record up by before creating again after a lost answer.
    #[serde(default)]
    pub marker_field: Option<String>,
    pub fields: BTreeMap<String, FieldMap>,
}

fn default_id_field() -> String {
    "id".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum UpdateMethod {
    #[default]
    Patch,
    Put,
}

/// How the collection's list is paged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One answer holds the whole list.
    #[default]
    None,
    /// `?<page_param>=1,2,...&<size_param>=<size>` until an empty page.
    Page {
        page_param: String,
        size_param: String,
        #[serde(default = "default_size")]
        size: u32,
    },
    /// `?<offset_param>=0,n,...&<limit_param>=<size>` (n: the records received
    /// so far) until an empty page.
    Offset {
        offset_param: String,
        limit_param: String,
        #[serde(default = "default_size")]
        size: u32,
    },
}

impl Pagination {
    /// The records asked for per page (`None`: not paged).
    pub fn size(&self) -> Option<u32> {
        match self {
            Pagination::None => None,
            Pagination::Page { size, .. } | Pagination::Offset { size, .. } => Some(*size),
        }
    }
}

fn default_size() -> u32 {
    100
}

/// A Connec! field from an outside path, with a conversion, and what an
/// empty Connec! field is sent out as.
#[derive(Debug, Clone)]
pub struct FieldMap {
    pub path: String,
    pub convert: Convert,
    /// Sent outside when the Connec! field is empty (null, "" or absent), so
    /// that a value cleared in Connec! is cleared outside too; `None`: JSON null.
    pub clear: Option<Value>,
    /// Connec! value → outside value, both ways; others are refused.
    pub values: Option<Values>,
}

/// The table form of a field: `{ path = "...", convert = "...", clear = ... }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConvertedField {
    path: String,
    #[serde(default)]
    convert: Convert,
    #[serde(default)]
    clear: Option<Value>,
    #[serde(default)]
    values: Option<BTreeMap<String, Value>>,
}

/// By hand rather than untagged, so that a mistake says what is wrong (an
/// unknown conversion, a number for a path) instead of "did not match any variant".
impl<'de> Deserialize<'de> for FieldMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = FieldMap;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "an outside path as text (\"number\", dots reaching into objects) or \
                     { path = \"...\", convert = \"none\" | \"decimal\" | \"date\" | \"upper\" | \"reference\" }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, path: &str) -> Result<FieldMap, E> {
                Ok(FieldMap {
                    path: path.to_owned(),
                    convert: Convert::None,
                    clear: None,
                    values: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<FieldMap, A::Error> {
                let field =
                    ConvertedField::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(FieldMap {
                    path: field.path,
                    convert: field.convert,
                    clear: field.clear,
                    values: field.values.map(Values),
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Convert {
    /// As is.
    #[default]
    None,
    /// A number or numeric text, as decimal text in Connec! (a JSON number outside).
    Decimal,
    /// The first ten characters of a time: `YYYY-MM-DD`.
    Date,
    /// Upper-cased text in Connec!, lower-cased outside.
    Upper,
    /// The outside id of another record: a reference in Connec!, in the app's own ids.
    Reference,
}

impl FieldMap {
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn convert(&self) -> Convert {
        self.convert
    }
    /// What an empty Connec! field is sent out as.
    pub fn cleared(&self) -> Value {
        self.clear.clone().unwrap_or(Value::Null)
    }
}

/// The key a line sets (`first_name = 42` → `first_name`), if it sets one.
fn key_of_line(text: &str, line: usize) -> Option<String> {
    let content = text.lines().nth(line.checked_sub(1)?)?;
    let (key, _) = content.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('#') && !key.starts_with('[')).then(|| key.to_owned())
}

/// Read a mapping; `Err` names the line and the field of the mistake.
pub fn parse(text: &str) -> Result<Mapping, String> {
    let mapping: Mapping = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let message = e.message().trim().to_owned();
        match line {
            // The key the line sets (a Connec! field, or a setting), unless the message names it.
            Some(line) => {
                match key_of_line(text, line).filter(|key| !message.contains(key.as_str())) {
                    Some(key) => format!("mapping line {line}: field {key}: {message}"),
                    None => format!("mapping line {line}: {message}"),
                }
            }
            None => format!("mapping: {message}"),
        }
    })?;
    if mapping.collections.is_empty() {
        return Err("mapping: name at least one [[collections]]".into());
    }
    for (i, c) in mapping.collections.iter().enumerate() {
        let line = line_of(text, &format!("entity = \"{}\"", c.entity)).unwrap_or(0);
        let at = format!(
            "mapping line {line} (collections[{i}], entity {:?})",
            c.entity
        );
        // A misspelt entity or Connec! field would sync nothing, or store the
        // value under the typo and clear the real field: refused here.
        let Some(def) = mno_events::entities::lookup(&c.entity) else {
            return Err(format!(
                "{at}: there is no Connec! entity {:?}; the entities are {}",
                c.entity,
                mno_events::entities::names().join(", ")
            ));
        };
        for field in c.fields.keys().filter(|f| f.as_str() != "id") {
            let top = field.split(['.', '[']).next().unwrap_or(field);
            if !def.fields.iter().any(|f| f.name == top) {
                let line = line_after(text, line, &format!("{field} =")).unwrap_or(line);
                let known: Vec<&str> = def.fields.iter().map(|f| f.name).collect();
                return Err(format!(
                    "mapping line {line} (collections[{i}], entity {:?}): field {field:?} is not a field of {}; its fields are {}",
                    c.entity,
                    c.entity,
                    known.join(", ")
                ));
            }
        }
        if !c.path.starts_with('/') {
            return Err(format!("{at}: path {:?} must start with /", c.path));
        }
        if c.fields.is_empty() {
            return Err(format!("{at}: [collections.fields] maps no field"));
        }
        if mapping.collections[..i]
            .iter()
            .any(|o| o.entity == c.entity)
        {
            return Err(format!("{at}: entity {:?} is mapped twice", c.entity));
        }
        if c.pagination.size() == Some(0) {
            let line = line_after(text, line, "pagination").unwrap_or(line);
            return Err(format!(
                "mapping line {line} (collections[{i}], entity {:?}): pagination size must be at least 1 \
                 (the records asked for per page; 100 when left out)",
                c.entity
            ));
        }
        if let Some(marker) = &c.marker_field {
            let mapped = c.fields.values().any(|m| m.path() == marker);
            if marker.is_empty() || *marker == c.id_field || mapped {
                let line = line_after(text, line, "marker_field").unwrap_or(line);
                return Err(format!(
                    "mapping line {line} (collections[{i}], entity {:?}): marker_field {marker:?} must be an outside field of its own, neither the id_field nor a mapped path",
                    c.entity
                ));
            }
        }
        for (field, map) in &c.fields {
            let Some(values) = &map.values else {
                continue;
            };
            let line = line_after(text, line, &format!("{field} =")).unwrap_or(line);
            let at = format!(
                "mapping line {line} (collections[{i}], entity {:?})",
                c.entity
            );
            if map.convert != Convert::None {
                return Err(format!(
                    "{at}: field {field}: values and convert do not go together (values say each value)"
                ));
            }
            let allowed = def
                .fields
                .iter()
                .find(|f| f.name == field)
                .and_then(|f| match f.kind {
                    mno_events::entities::FieldType::Enum(allowed) => Some(allowed),
                    _ => None,
                });
            values
                .check(field, allowed)
                .map_err(|e| format!("{at}: {e}"))?;
        }
        for (field, map) in &c.fields {
            if field == "id" || map.path().is_empty() {
                return Err(format!("{at}: field {field:?}: the id is id_field's; map other fields to non-empty paths"));
            }
        }
    }
    Ok(mapping)
}

/// The line of the first `needle` at or after line `from` (1-based).
fn line_after(text: &str, from: usize, needle: &str) -> Option<usize> {
    let start: usize = text
        .split_inclusive('\n')
        .take(from.saturating_sub(1))
        .map(str::len)
        .sum();
    text[start..]
        .find(needle)
        .map(|at| text[..start + at].matches('\n').count() + 1)
}

fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.find(needle)
        .map(|at| text[..at].matches('\n').count() + 1)
}

/// Whether a Connec! value stands for an empty field: null, "", or a reference to nothing.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The value at a dotted path of a JSON object.
pub fn get<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

/// Set the value at a dotted path, making objects on the way.
pub fn set(target: &mut Value, path: &str, value: Value) {
    let mut at = target;
    let keys: Vec<&str> = path.split('.').collect();
    for key in &keys[..keys.len() - 1] {
        if !at.get(*key).is_some_and(Value::is_object) {
            at[*key] = json!({});
        }
        at = &mut at[*key];
    }
    at[keys[keys.len() - 1]] = value;
}

impl Collection {
    /// An outside record in Connec!'s fields.
    /// `Err` names each value the mapping's `values` do not know.
    pub fn to_connec(&self, outside: &Value) -> Result<Value, String> {
        let mut fields = Map::new();
        let mut unknown = Vec::new();
        for (field, map) in &self.fields {
            // The mapping's `clear` value outside is an empty field in Connec!.
            let Some(value) =
                get(outside, map.path()).filter(|v| !v.is_null() && map.clear.as_ref() != Some(*v))
            else {
                continue;
            };
            if let Some(values) = &map.values {
                match values.to_connec(field, map.path(), value) {
                    Ok(v) => {
                        fields.insert(field.clone(), v);
                    }
                    Err(e) => unknown.push(e),
                }
                continue;
            }
            let converted = match (map.convert(), value) {
                (Convert::Decimal, Value::Number(n)) => json!(n.to_string()),
                (Convert::Date, Value::String(s)) => json!(s.chars().take(10).collect::<String>()),
                (Convert::Upper, Value::String(s)) => json!(s.to_uppercase()),
                (Convert::Reference, Value::Number(n)) => json!(n.to_string()),
                (_, v) => v.clone(),
            };
            fields.insert(field.clone(), converted);
        }
        match unknown.is_empty() {
            true => Ok(Value::Object(fields)),
            false => Err(unknown.join("; ")),
        }
    }

    /// A Connec! record (in the connector app's view) in the outside API's
    /// fields, for a create: empty fields are left out.
    pub fn to_outside(&self, record: &Value, app_id: &str) -> Result<Value, String> {
        self.outside_fields(record, app_id, false)
    }

    /// The same for an update of an existing outside record: every mapped
    /// field empty in Connec! (null, "" or absent) is sent as its `clear`
    /// value (null by default), so a value cleared in Connec! is cleared
    /// outside too rather than kept there.
    pub fn to_outside_update(&self, record: &Value, app_id: &str) -> Result<Value, String> {
        self.outside_fields(record, app_id, true)
    }

    /// `Err` names each value the mapping's `values` do not know.
    fn outside_fields(
        &self,
        record: &Value,
        app_id: &str,
        clearing: bool,
    ) -> Result<Value, String> {
        let mut out = json!({});
        let mut unknown = Vec::new();
        for (field, map) in &self.fields {
            let value = record.get(field).filter(|v| !is_empty(v));
            let Some(value) = value else {
                if clearing {
                    set(&mut out, map.path(), map.cleared());
                }
                continue;
            };
            if let Some(values) = &map.values {
                match values.to_outside(field, value) {
                    Ok(v) => set(&mut out, map.path(), v),
                    Err(e) => unknown.push(e),
                }
                continue;
            }
            let converted = match (map.convert(), value) {
                (Convert::Decimal, Value::String(s)) => s
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or_else(|| value.clone()),
                (Convert::Upper, Value::String(s)) => json!(s.to_lowercase()),
                (Convert::Reference, Value::Array(ids)) => {
                    match ids.iter().find(|e| e["provider"] == app_id) {
                        Some(own) => own["id"].clone(),
                        // A record the outside API does not know (yet): leave the field out.
                        None => continue,
                    }
                }
                (_, v) => v.clone(),
            };
            set(&mut out, map.path(), converted);
        }
        match unknown.is_empty() {
            true => Ok(out),
            false => Err(unknown.join("; ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[auth]
header = "Authorization"
value = "Bearer {token}"

[[collections]]
entity = "invoices"
path = "/invoices"
pagination = { style = "page", page_param = "_page", size_param = "_limit", size = 2 }

[collections.fields]
transaction_number = "number"
total_amount = { path = "totals.amount", convert = "decimal" }
transaction_date = { path = "date", convert = "date" }
status = { path = "status", convert = "upper" }
person_id = { path = "customerId", convert = "reference" }
"#;

    #[test]
    fn fields_convert_both_ways() {
        let mapping = parse(GOOD).unwrap();
        let invoices = &mapping.collections[0];
        let outside = json!({"id": 3, "number": "INV-3", "totals": {"amount": 120.5},
            "date": "2026-11-02T10:00:00Z", "status": "paid", "customerId": 7});
        let connec = invoices.to_connec(&outside).unwrap();
        assert_eq!(
            connec,
            json!({"transaction_number": "INV-3", "total_amount": "120.5", "transaction_date": "2026-11-02",
                "status": "PAID", "person_id": "7"})
        );
        let mut view = connec.clone();
        view["person_id"] =
            json!([{"provider": "connec", "id": "g"}, {"provider": "app1", "id": "7"}]);
        assert_eq!(
            invoices.to_outside(&view, "app1").unwrap(),
            json!({"number": "INV-3", "totals": {"amount": 120.5}, "date": "2026-11-02", "status": "paid", "customerId": "7"})
        );
    }

    #[test]
    fn the_documented_example_is_a_valid_mapping() {
        let docs = include_str!("../../../../docs/connectors.md");
        let start = docs.find("```toml\n[auth]").expect("the example") + "```toml\n".len();
        let example = &docs[start..start + docs[start..].find("```").unwrap()];
        let mapping = parse(example).unwrap_or_else(|e| panic!("{e}"));
        let invoices = &mapping.collections[0];
        let connec = invoices
            .to_connec(&json!({"kind": "1", "note": ""}))
            .unwrap();
        assert_eq!(connec, json!({"type": "CUSTOMER"}));
    }

    #[test]
    fn mistakes_are_refused_with_their_line_and_field() {
        let typo = GOOD.replace("convert = \"date\"", "convert = \"dat\"");
        let error = parse(&typo).unwrap_err();
        assert!(error.starts_with("mapping line 14:"), "{error}");
        assert!(error.contains("unknown variant `dat`"), "{error}");
        let unknown = GOOD.replace("id_field", "x").replace(
            "path = \"/invoices\"",
            "path = \"/invoices\"\nid_feild = \"id\"",
        );
        let error = parse(&unknown).unwrap_err();
        assert!(
            error.starts_with("mapping line 9:") && error.contains("id_feild"),
            "{error}"
        );
        let relative = GOOD.replace("path = \"/invoices\"", "path = \"invoices\"");
        let error = parse(&relative).unwrap_err();
        assert!(
            error.contains("line 7") && error.contains("must start with /"),
            "{error}"
        );
        let zero = GOOD.replace("size = 2", "size = 0");
        let error = parse(&zero).unwrap_err();
        assert!(
            error.starts_with("mapping line 9 ") && error.contains("size must be at least 1"),
            "{error}"
        );
        assert!(parse("collections = []")
            .unwrap_err()
            .contains("at least one"));
        // An unknown conversion names the line, the field and the conversions there are.
        let lower = GOOD.replace("convert = \"upper\"", "convert = \"lower\"");
        let error = parse(&lower).unwrap_err();
        assert_eq!(
            error,
            "mapping line 15: field status: unknown variant `lower`, expected one of `none`, `decimal`, `date`, `upper`, `reference`"
        );
        // A number is no path.
        let number = GOOD.replace("transaction_number = \"number\"", "transaction_number = 42");
        let error = parse(&number).unwrap_err();
        assert!(
            error.starts_with("mapping line 12: field transaction_number: invalid type: integer `42`, expected an outside path as text"),
            "{error}"
        );
        assert!(
            error.contains("convert = \"none\" | \"decimal\""),
            "{error}"
        );
        // A table without a path, or with a key of its own.
        let no_path = GOOD.replace("{ path = \"date\", convert", "{ convert");
        let error = parse(&no_path).unwrap_err();
        assert!(
            error.starts_with("mapping line 14: field transaction_date: missing field `path`"),
            "{error}"
        );
        // Values: not with a conversion, only the values of an enum, each outside value once.
        let both = GOOD.replace(
            "convert = \"upper\" }",
            "convert = \"upper\", values = { PAID = \"p\" } }",
        );
        let error = parse(&both).unwrap_err();
        assert!(
            error.contains("values and convert do not go together"),
            "{error}"
        );
        let not_enum = GOOD.replace(
            "{ path = \"status\", convert = \"upper\" }",
            "{ path = \"status\", values = { SETTLED = \"s\" } }",
        );
        let error = parse(&not_enum).unwrap_err();
        assert!(
            error.starts_with("mapping line 15 ")
                && error.contains("\"SETTLED\" is not a value of status"),
            "{error}"
        );
        let mapped = GOOD.replace(
            "{ path = \"status\", convert = \"upper\" }",
            "{ path = \"status\", values = { PAID = 1, DRAFT = 0 } }",
        );
        let invoices = &parse(&mapped).unwrap().collections[0];
        let connec = invoices.to_connec(&json!({"status": 1})).unwrap();
        assert_eq!(connec["status"], "PAID");
        let error = invoices.to_connec(&json!({"status": 2})).unwrap_err();
        assert!(error.starts_with("status: the outside value 2"), "{error}");
        // The marker is a field of its own: a mapped path would be overwritten by it.
        let marker = GOOD.replace(
            "path = \"/invoices\"",
            "path = \"/invoices\"\nmarker_field = \"number\"",
        );
        let error = parse(&marker).unwrap_err();
        assert!(
            error.starts_with("mapping line 9 ") && error.contains("marker_field \"number\""),
            "{error}"
        );
        let extra = GOOD.replace("convert = \"date\"", "convert = \"date\", format = \"iso\"");
        let error = parse(&extra).unwrap_err();
        assert!(
            error.starts_with("mapping line 14:") && error.contains("unknown field `format`"),
            "{error}"
        );
    }
}
