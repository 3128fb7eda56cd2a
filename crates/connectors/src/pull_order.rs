//! The order in which a sync pulls its entities: an entity referenced by
//! another comes first (people before the invoices naming them), so that a
//! reference names a record already in Connec! (the record API refuses one
//! that names no record). Which entity references which is Connec!'s schema.

use std::collections::BTreeSet;

/// `entities` reordered so that each comes after those it references (among
/// them); otherwise alphabetical. A cycle is broken alphabetically.
pub fn referenced_first(mut entities: Vec<String>) -> Vec<String> {
    entities.sort();
    let targets = |entity: &str| -> BTreeSet<&'static str> {
        mno_events::entities::references(entity)
            .into_iter()
            .map(|r| r.entity)
            .filter(|target| *target != entity)
            .collect()
    };
    let mut ordered: Vec<String> = Vec::new();
    let mut left = entities;
    while !left.is_empty() {
        let ready = left.iter().position(|e| {
            targets(e)
                .iter()
                .all(|t| !left.iter().any(|other| other == t))
        });
        // A cycle: take the first left (alphabetical).
        ordered.push(left.remove(ready.unwrap_or(0)));
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referenced_entities_come_first() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            referenced_first(names(&["invoices", "items", "people"])),
            names(&["items", "people", "invoices"])
        );
        assert_eq!(
            referenced_first(names(&["people", "organizations"])),
            names(&["organizations", "people"])
        );
    }
}
