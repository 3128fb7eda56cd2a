//! The periodic session check, made only when due: the Hub's `valid: true`
//! may be trusted until its `recheck_at`, so a page view in between needs no
//! call to the Hub.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::{SessionStatus, Sso};
use crate::error::Result;

/// Re-checks users' Hub sessions only once their `recheck_at` has passed,
/// answering the cached result before; a session found ended is asked
/// about again every time (it never comes back, and nothing is kept for it).
///
/// Call [`SessionChecks::is_live`] on every page of a signed-in user and sign
/// them out of the app when it answers `false`. A back-channel logout
/// ([`Sso::validate_logout_token`]) tells of an ended session at once:
/// [`SessionChecks::forget`] its `sid` so that the next page asks the Hub.
///
/// ```no_run
/// # async fn page(mno: mno_sdk::Mno, session_id: &str) -> mno_sdk::Result<()> {
/// use mno_sdk::sso::SessionChecks;
/// // One per process, shared by every request (it is cheap to clone).
/// let checks = SessionChecks::new(mno.sso("https://crm.example.com/auth/callback"));
/// if !checks.is_live(session_id).await? {
///     // Signed out of Mno: end the app's session and show the sign-in link.
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SessionChecks {
    sso: Sso,
    trusted: Arc<Mutex<Trusted>>,
}

impl SessionChecks {
    /// Checks made through `sso`, nothing cached yet.
    pub fn new(sso: Sso) -> SessionChecks {
        SessionChecks {
            sso,
            trusted: Arc::default(),
        }
    }

    /// Whether the Hub session `session_id` lives: the cached answer until
    /// its `recheck_at`, then the Hub's ([`Sso::session_check`]).
    pub async fn is_live(&self, session_id: &str) -> Result<bool> {
        if self.trusted().live_at(session_id, Utc::now()) {
            return Ok(true);
        }
        let status = self.sso.session_check(session_id).await?;
        self.trusted().remember(session_id, &status, Utc::now());
        Ok(status.valid)
    }

    /// Drops the cached answer of `session_id` (after a back-channel logout
    /// named it, or the user signed out of the app): the next check asks the Hub.
    pub fn forget(&self, session_id: &str) {
        self.trusted().sessions.remove(session_id);
    }

    fn trusted(&self) -> std::sync::MutexGuard<'_, Trusted> {
        // The map stays consistent whatever a panicking holder did.
        self.trusted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Sessions the Hub called live, each until its `recheck_at`.
#[derive(Debug, Default)]
struct Trusted {
    sessions: HashMap<String, DateTime<Utc>>,
}

impl Trusted {
    fn live_at(&self, session_id: &str, now: DateTime<Utc>) -> bool {
        self.sessions
            .get(session_id)
            .is_some_and(|until| now < *until)
    }

    fn remember(&mut self, session_id: &str, status: &SessionStatus, now: DateTime<Utc>) {
        // Answers past their time are of no use: dropping them keeps the map
        // to the sessions in use.
        self.sessions.retain(|_, until| now < *until);
        let until = status
            .recheck_at
            .as_deref()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok());
        match until {
            Some(until) if status.valid => {
                self.sessions
                    .insert(session_id.to_owned(), until.with_timezone(&Utc));
            }
            // Ended, or no time to trust it until: ask again next time.
            _ => {
                self.sessions.remove(session_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a time")
            .with_timezone(&Utc)
    }

    fn status(valid: bool, recheck_at: Option<&str>) -> SessionStatus {
        SessionStatus {
            valid,
            recheck_at: recheck_at.map(str::to_owned),
        }
    }

    #[test]
    fn a_live_session_is_trusted_until_its_recheck_time() {
        let mut trusted = Trusted::default();
        let now = at("2026-12-03T10:00:00Z");
        assert!(!trusted.live_at("s1", now), "never checked: ask the Hub");
        trusted.remember("s1", &status(true, Some("2026-12-03T10:05:00.000Z")), now);
        assert!(trusted.live_at("s1", at("2026-12-03T10:04:59Z")));
        assert!(!trusted.live_at("s1", at("2026-12-03T10:05:00Z")), "due");
        assert!(!trusted.live_at("s2", now), "another session is its own");
    }

    #[test]
    fn an_ended_or_undated_session_is_asked_about_every_time() {
        let mut trusted = Trusted::default();
        let now = at("2026-12-03T10:00:00Z");
        trusted.remember("s1", &status(true, Some("2026-12-03T10:05:00Z")), now);
        trusted.remember("s1", &status(false, None), now);
        assert!(!trusted.live_at("s1", now));
        trusted.remember("s2", &status(true, None), now);
        trusted.remember("s3", &status(true, Some("not a time")), now);
        assert!(!trusted.live_at("s2", now) && !trusted.live_at("s3", now));
    }

    #[test]
    fn answers_past_their_time_are_dropped() {
        let mut trusted = Trusted::default();
        let now = at("2026-12-03T10:00:00Z");
        trusted.remember("old", &status(true, Some("2026-12-03T10:01:00Z")), now);
        let later = at("2026-12-03T10:02:00Z");
        trusted.remember("new", &status(true, Some("2026-12-03T10:07:00Z")), later);
        assert_eq!(trusted.sessions.len(), 1);
        assert!(trusted.live_at("new", later));
    }
}
