//! The entity catalogue (kept in `mno_events::entities`, which other parts
//! read too) and, here, its JSON Schemas and the validation of a record
//! against them.
//!
//! - [`catalogue`]: the collections and their fields (Connec!'s names).
//! - [`schema`]: JSON Schema generation and validation with JSON pointers to each bad field.

pub use mno_events::entities::*;

pub mod schema;
