//! Types generated from `proto/mno/events/v1/*.proto` (package `mno.events.v1`).
//!
//! prost decoding skips unknown fields, so an older consumer reads a newer
//! envelope; see `docs/events.md` for the compatibility rules.

#![allow(clippy::doc_lazy_continuation)]

include!(concat!(env!("OUT_DIR"), "/mno.events.v1.rs"));

pub use prost_types::Timestamp;
