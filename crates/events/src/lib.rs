//! The event contract of Mno and the helpers every part uses to speak it.
//!
//! Modules, one concern each:
//! - [`proto`]: the protobuf envelopes generated from `proto/mno/events/v1` (record and hub events).
//! - [`envelope`]: building, encoding and decoding envelopes; canonical JSON for record state.
//! - [`subject`]: typed subject builders and parsers (`rec.<org>.<entity>.<id>`, `hub.<org>.<kind>`).
//! - [`streams`]: the stream definitions (RECORDS, HUB, DLQ) and idempotent provisioning.
//! - [`bus`]: connecting to NATS, refusing a nats-server older than 2.10.
//! - [`publish`]: publishing with dedup ids and optimistic concurrency, one at a time or pipelined.
//! - [`consume`]: durable pull consumers (batch fetch, explicit ack, multi-filter) and ordered replay.
//! - [`idm`]: the IDM check contract that every part asks before serving data.
//! - [`directory`]: what delivery needs to know about apps and installs, asked of the Hub.
//! - [`api_error`]: the JSON error shape every HTTP answer uses.
//! - [`unique_json`]: JSON bodies whose objects name each member once.
//! - [`money`]: amounts in minor units written in each currency's own decimals.
//! - [`http_auth`]: credentials from HTTP requests, decided by the IDM check.
//! - [`db`]: opening the SQL database (SQLite by default, PostgreSQL by URL).
//! - [`lease`]: leases on the bus (one process at a time per job) and the fencing tokens commits check.
//! - [`projection`]: the checkpointed runner every projection folds a stream with (consumer, batches,
//!   lease and fence, retry, ack, stop, the "applied" watch).
//! - [`webhook`]: outbound webhooks: Standard Webhooks signing, the SSRF guard, one signed POST.

pub mod api_error;
pub mod bus;
pub mod consume;
pub mod db;
pub mod directory;
pub mod entities;
pub mod envelope;
pub mod http_auth;
pub mod idm;
pub mod lease;
pub mod money;
pub mod openapi;
pub mod projection;
pub mod proto;
pub mod publish;
pub mod streams;
pub mod subject;
pub mod text;
pub mod unique_json;
pub mod webhook;

pub use api_error::ApiError;
pub use bus::{connect, BusError, MIN_SERVER_VERSION};
pub use subject::{HubSubject, RecordSubject, SubjectError, Token};
