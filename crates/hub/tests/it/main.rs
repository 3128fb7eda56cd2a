//! The Hub's integration tests, one binary (one module a subject), against a
//! real nats-server and real databases. Run a subject alone with a filter:
//! `cargo test -p mno-hub --test it outbox::`.

mod account;
mod account_webhooks;
mod billing_kill;
mod common;
mod idm;
mod kill;
mod outbox;
mod sessions;
mod signin_limits;
