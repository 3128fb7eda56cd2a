//! The end-to-end tests, one binary (one module a subject): the platform is
//! linked once instead of once a file, and `cargo test` runs them together.
//! Run a subject alone with a filter: `cargo test -p mno-e2e --test it fanout::`.
//!
//! Each test's platform has a nats-server of its own (one bus serves one
//! platform: a second one is refused); on PostgreSQL it takes a fresh
//! database of the binary's shared cluster.
//!
//! `hub_logs` stays a binary of its own: it installs the process-wide logger
//! at TRACE level, which would capture every other test's logs here.

mod account_webhooks;
mod billing;
mod bus_owner;
mod cluster;
mod connec;
mod connec_query;
mod fanout;
mod fanout_api;
mod fanout_cli;
mod fanout_faults;
mod fanout_support;
mod fanout_sync;
mod hardening_edge;
mod hub;
mod hub_bench;
mod hub_input;
mod hub_invitations;
mod hub_security;
mod impac;
mod impac_dashboards;
mod impac_kpis;
mod impac_rates;
mod impac_widgets;
mod openapi;
mod operator_api;
mod portal_headers;
mod portal_signin_limits;
mod portal_sso;
mod revocation;
mod schemathesis;
mod sharing;
mod sso;
mod tenant_matrix;
