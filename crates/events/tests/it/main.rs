//! The events crate's integration tests, one binary (one module a subject),
//! against real nats-servers. Run a subject alone with a filter:
//! `cargo test -p mno-events --test it lease::`.

mod bus;
mod deploy_files;
mod lease;
mod projection;
