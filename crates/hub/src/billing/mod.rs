//! Single billing (docs/api/billing.md): apps bill the orgs that installed
//! them, once or on a schedule; the billing run turns the bills of a month
//! into one invoice per (org, period, currency).
//!
//! - [`money`]: minor units, currencies, periods, the input rules;
//! - [`store`]: the tables and the write transactions (each emits its Hub event);
//! - [`ledger`]: the fold of stream HUB and the invoice it makes;
//! - [`run`]: the billing run and the rebuild of an invoice from the stream;
//! - [`schedule`]: the run on a timer inside the platform;
//! - [`html`]: the printable invoice.

pub mod html;
pub mod ledger;
pub mod money;
pub mod run;
pub mod schedule;
pub mod store;

pub use run::{rebuild, run, RunOptions, RunReport};
