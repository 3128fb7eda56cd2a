//! What the example apps (the CRM and Books) share besides `mno-sdk`: their
//! HTML helpers, editing a record (a 409 resolved by re-reading), and
//! signing users in through the Hub, with the app's sessions kept in its own
//! SQLite database.

mod edit;
mod html;
mod sign_in;

pub use edit::{after_edit, name_row, record_row, resolved_notice, RecordEdit};
pub use html::{escape, page, PageError};
pub use sign_in::{Session, SignIn};
