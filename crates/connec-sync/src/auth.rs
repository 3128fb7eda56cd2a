//! Who is calling, and may they: the platform's HTTP authentication through
//! the Hub's IDM check (shared by every part, in `mno_events::http_auth`).
//! Connec! keeps no ACLs of its own; decisions are cached and dropped on the
//! Hub events that revoke access.

pub use mno_events::http_auth::{authorize, credential};
