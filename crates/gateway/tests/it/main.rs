//! The gateway's integration tests, one binary (one module a subject): the
//! `mno` binary, its operator commands and scale-out, against real servers.
//! Run a subject alone with a filter: `cargo test -p mno-gateway --test it scale_out::`.

mod connectors_cli;
mod impac_cli;
mod impac_crash;
mod mno_binary;
mod portal_browser;
mod readme_tour;
mod scale_out;
mod support;
mod users_cli;
