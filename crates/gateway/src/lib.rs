//! The gateway: the one public edge of Mno, and the `mno` operator binary.
//!
//! Modules, one concern each:
//! - [`config`]: settings from flags and `MNO_*` variables, checked before anything starts.
//! - [`data_dir_lock`]: one platform per data dir.
//! - [`nats_child`]: finding a nats-server, or starting the installed one as a child.
//! - [`proc_stat`]: a process's state, parent and CPU time from `/proc`.
//! - [`platform`]: wiring Hub, Connec! and Impac! together in one process (`mno up`), or some roles (`mno serve`).
//! - [`roles`]: the parts a process runs (edge, projections, delivery, hub-jobs).
//! - [`edge_server`]: serving connections with a cap and header-read and idle timeouts.
//! - [`http`]: the edge router (the parts' routes, JSON 404s) and the operator's metrics listener.
//! - [`health`]: what the edge says of itself: health, readiness, metrics.
//! - [`cli`]: the operator subcommands (`mno up`, `mno streams`, `mno bench`, ...).

pub mod bus_owner;
pub mod cli;
pub mod config;
pub mod data_dir_lock;
pub mod edge_server;
pub mod health;
pub mod http;
pub mod nats_child;
pub mod openapi;
pub mod operator;
pub mod platform;
pub mod proc_stat;
pub mod roles;

pub use config::PlatformConfig;
pub use platform::{Platform, RunningPlatform};
