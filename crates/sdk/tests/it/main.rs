//! The SDK against a real platform: each module starts one (nats-server,
//! SQLite, the gateway on a free port) and drives it only through the SDK,
//! with real HTTP servers as the app's webhook endpoints.

mod billing;
mod connec;
mod sso;
mod support;
mod webhooks;
