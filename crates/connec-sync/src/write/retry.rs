//! Losing a race is not an error: a write whose expected sequence was taken by
//! another writer reads the record again and tries again, a bounded number of
//! times. The re-read decides whether the write still applies (with
//! `If-Match`, a moved version makes it stale; an `id_mapped` event moves only
//! the subject's sequence, and the write goes on).

use std::future::Future;

use super::WriteError;

/// How many times a write re-reads and retries after losing a race.
pub const MAX_ATTEMPTS: usize = 8;

/// What one attempt of a write came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt<T> {
    Done(T),
    /// Another writer appended first: read again and retry.
    Lost,
}

impl<T> Attempt<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Attempt<U> {
        match self {
            Attempt::Done(done) => Attempt::Done(f(done)),
            Attempt::Lost => Attempt::Lost,
        }
    }
}

/// Run `attempt` until it is done, fails, or has lost [`MAX_ATTEMPTS`] races
/// (then 503: the record is too busy to write now).
pub async fn until_done<T, F, Fut>(entity: &str, id: &str, mut attempt: F) -> Result<T, WriteError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, WriteError>>,
{
    for _ in 0..MAX_ATTEMPTS {
        if let Attempt::Done(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(WriteError::Unavailable(format!(
        "{entity} record {id} kept changing under {MAX_ATTEMPTS} attempts"
    )))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    async fn run(lose: usize, counted: &Cell<usize>) -> Result<&'static str, WriteError> {
        until_done("invoices", "r1", || {
            counted.set(counted.get() + 1);
            let n = counted.get();
            async move {
                Ok(if n > lose {
                    Attempt::Done("written")
                } else {
                    Attempt::Lost
                })
            }
        })
        .await
    }

    #[tokio::test]
    async fn a_lost_race_is_tried_again() {
        let attempts = Cell::new(0);
        assert_eq!(run(3, &attempts).await.unwrap(), "written");
        assert_eq!(attempts.get(), 4);
    }

    #[tokio::test]
    async fn a_won_race_is_tried_once() {
        let attempts = Cell::new(0);
        assert_eq!(run(0, &attempts).await.unwrap(), "written");
        assert_eq!(attempts.get(), 1);
    }

    #[tokio::test]
    async fn a_record_that_keeps_changing_is_given_up_as_unavailable() {
        let attempts = Cell::new(0);
        let error = run(usize::MAX, &attempts).await.unwrap_err();
        assert_eq!(attempts.get(), MAX_ATTEMPTS);
        assert!(
            matches!(error, WriteError::Unavailable(ref m) if m.contains("invoices record r1"))
        );
        // Answered as a bus that did not answer: the Idempotency-Key keeps its
        // event id, so the client's retry cannot write the change twice.
        assert!(error.may_have_been_stored());
    }

    #[tokio::test]
    async fn an_error_ends_the_attempts_at_once() {
        let attempts = Cell::new(0);
        let error = until_done::<(), _, _>("invoices", "r1", || {
            attempts.set(attempts.get() + 1);
            async {
                Err(WriteError::NotFound {
                    entity: "invoices".into(),
                    id: "r1".into(),
                })
            }
        })
        .await
        .unwrap_err();
        assert_eq!(attempts.get(), 1);
        assert!(matches!(error, WriteError::NotFound { .. }));
    }
}
