//! Outbound webhooks, shared by the parts that send them (Connec!'s
//! delivery, Impac!'s KPI alerts) and the Hub that registers their URLs:
//! - [`sign`]: Standard Webhooks signatures;
//! - [`ssrf`]: keeping webhooks away from the platform's own network;
//! - [`send`]: one signed POST through the SSRF-safe resolver, its outcome classified.

pub mod send;
pub mod sign;
pub mod ssrf;
