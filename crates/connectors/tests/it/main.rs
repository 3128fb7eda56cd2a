//! The connectors' integration tests, one binary (one module a subject), against
//! real outside services (Radicale, json-server) and a real nats-server. Run a
//! subject alone with a filter: `cargo test -p mno-connectors --test it carddav::`.

mod carddav;
mod rest;
mod support;
