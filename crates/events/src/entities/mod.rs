//! The entity catalogue: which collections exist, their fields and their
//! reference fields. Here, at the bottom, because more than one part reads
//! it: Connec! validates records against it (its JSON Schemas are made from
//! it in `mno_connec_sync::entities::schema`), the connectors runtime orders
//! its pulls and holds its pushes by its references.
//!
//! - [`catalogue`]: the collections and their fields (Connec!'s names).
//!
//! Money and other decimals are parsed as `rust_decimal` from the JSON text
//! (serde_json keeps number text exactly: `arbitrary_precision`), never
//! through f64, and stored as decimal strings ("1250.50").

pub mod catalogue;

pub use catalogue::{EntityDef, ENTITIES};

/// What a declared field holds.
#[derive(Debug, Clone, Copy)]
pub enum FieldType {
    Text,
    Integer,
    /// A decimal: money, quantities, rates. A JSON string or number; stored as a string.
    Decimal,
    /// `YYYY-MM-DD` or an RFC 3339 date-time.
    Date,
    /// ISO 4217 code, three capitals.
    Currency,
    Bool,
    Enum(&'static [&'static str]),
    /// The id of a record of the named collection in the same organisation.
    Ref(&'static str),
    /// A nested object with these fields.
    Object(&'static [Field]),
    /// An array of line objects with these fields.
    Lines(&'static [Field]),
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldType,
}

/// The collection named `name`, if it exists.
pub fn lookup(name: &str) -> Option<&'static EntityDef> {
    ENTITIES.iter().find(|e| e.name == name)
}

/// Every collection name, for "unknown entity" answers and `GET /connec/api/v2/`.
pub fn names() -> Vec<&'static str> {
    ENTITIES.iter().map(|e| e.name).collect()
}

/// A reference field: where it is and what it points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `field`, `parent.field` (nested object) or `lines[].field` (array of lines).
    pub path: String,
    /// The referenced collection.
    pub entity: &'static str,
}

/// The reference fields of a collection (empty for an unknown one).
pub fn references(entity: &str) -> Vec<Reference> {
    let mut out = Vec::new();
    if let Some(def) = lookup(entity) {
        collect_references(def.fields, "", &mut out);
    }
    out
}

fn collect_references(fields: &[Field], prefix: &str, out: &mut Vec<Reference>) {
    for field in fields {
        match field.kind {
            FieldType::Ref(target) => out.push(Reference {
                path: format!("{prefix}{}", field.name),
                entity: target,
            }),
            FieldType::Object(inner) => {
                collect_references(inner, &format!("{prefix}{}.", field.name), out)
            }
            FieldType::Lines(inner) => {
                collect_references(inner, &format!("{prefix}{}[].", field.name), out)
            }
            _ => {}
        }
    }
}

/// Visit every reference value present in `record` (a record's fields, unwrapped):
/// `visit(json_pointer, referenced_entity, value)`.
pub fn visit_references_mut(
    entity: &str,
    record: &mut serde_json::Value,
    visit: &mut dyn FnMut(&str, &'static str, &mut serde_json::Value),
) {
    if let Some(def) = lookup(entity) {
        walk_refs(def.fields, record, "", visit);
    }
}

/// Whether `fields` declare a reference, at any depth.
fn holds_references(fields: &[Field]) -> bool {
    fields.iter().any(|field| match field.kind {
        FieldType::Ref(_) => true,
        FieldType::Object(sub) | FieldType::Lines(sub) => holds_references(sub),
        _ => false,
    })
}

fn walk_refs(
    fields: &[Field],
    value: &mut serde_json::Value,
    pointer: &str,
    visit: &mut dyn FnMut(&str, &'static str, &mut serde_json::Value),
) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    for field in fields {
        let Some(inner) = object.get_mut(field.name) else {
            continue;
        };
        // Pointers are built only on the way to a reference: most fields hold none.
        let here = || format!("{pointer}/{}", field.name);
        match field.kind {
            FieldType::Ref(target) if !inner.is_null() => visit(&here(), target, inner),
            FieldType::Object(sub) if holds_references(sub) => {
                walk_refs(sub, inner, &here(), visit)
            }
            FieldType::Lines(sub) if holds_references(sub) => {
                if let Some(lines) = inner.as_array_mut() {
                    let here = here();
                    for (i, line) in lines.iter_mut().enumerate() {
                        walk_refs(sub, line, &format!("{here}/{i}"), visit);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_every_collection_of_the_design() {
        for name in [
            "company",
            "organizations",
            "people",
            "items",
            "accounts",
            "tax_codes",
            "tax_rates",
            "journals",
            "invoices",
            "credit_notes",
            "sales_orders",
            "purchase_orders",
            "quotes",
            "payments",
            "opportunities",
            "projects",
            "employees",
            "work_locations",
            "pay_items",
            "pay_schedules",
            "pay_runs",
            "pay_stubs",
            "time_sheets",
            "time_activities",
            "leave_applications",
            "warehouses",
            "stock_adjustments",
        ] {
            assert!(lookup(name).is_some(), "{name}");
        }
        assert!(lookup("company").unwrap().singular);
    }

    #[test]
    fn every_reference_points_to_a_known_collection() {
        for def in ENTITIES {
            for reference in references(def.name) {
                assert!(
                    lookup(reference.entity).is_some(),
                    "{}.{}",
                    def.name,
                    reference.path
                );
            }
        }
        let invoice_refs = references("invoices");
        assert!(invoice_refs.contains(&Reference {
            path: "organization_id".into(),
            entity: "organizations"
        }));
        assert!(invoice_refs.contains(&Reference {
            path: "lines[].item_id".into(),
            entity: "items"
        }));
    }

    #[test]
    fn visits_references_with_their_pointers() {
        let mut record = serde_json::json!({
            "organization_id": "o1",
            "person_id": null,
            "lines": [{"item_id": "i1"}, {"account_id": "a2"}]
        });
        let mut seen = Vec::new();
        visit_references_mut("invoices", &mut record, &mut |pointer, entity, value| {
            seen.push((
                pointer.to_owned(),
                entity,
                value.as_str().unwrap().to_owned(),
            ));
        });
        assert_eq!(
            seen,
            [
                (
                    "/organization_id".to_owned(),
                    "organizations",
                    "o1".to_owned()
                ),
                ("/lines/0/item_id".to_owned(), "items", "i1".to_owned()),
                (
                    "/lines/1/account_id".to_owned(),
                    "accounts",
                    "a2".to_owned()
                ),
            ]
        );
    }
}
