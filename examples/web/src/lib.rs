//! What the example apps (the CRM and Books) share besides `mno-sdk`: their
//! HTML helpers and signing users in through the Hub, with the app's sessions
//! kept in its own SQLite database.

mod html;
mod sign_in;

pub use html::{escape, page, PageError};
pub use sign_in::{Session, SignIn};
