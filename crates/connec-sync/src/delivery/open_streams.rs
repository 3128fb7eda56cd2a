//! How many change streams (SSE) each caller holds open, and the limit.

use std::sync::Arc;

use axum::http::StatusCode;
use dashmap::DashMap;
use mno_events::idm::Principal;
use mno_events::ApiError;

/// Open SSE streams per caller (an app or a user, whatever credential it uses).
#[derive(Default)]
pub struct OpenStreams {
    open: DashMap<String, usize>,
}

/// One open stream of a caller; the count drops when the stream ends.
pub struct StreamSlot {
    streams: Arc<OpenStreams>,
    caller: String,
}

impl OpenStreams {
    pub fn take(
        self: &Arc<Self>,
        principal: &Principal,
        max: usize,
    ) -> Result<StreamSlot, ApiError> {
        let caller = format!("{:?}:{}", principal.kind, principal.id);
        let mut open = self.open.entry(caller.clone()).or_insert(0);
        if *open >= max {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "this caller has {max} change streams open, the limit; close one (or share one stream across collections with ?entities=) and retry"
                ),
            )
            .with_retry_after(5));
        }
        *open += 1;
        Ok(StreamSlot {
            streams: self.clone(),
            caller,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.streams.open.remove_if_mut(&self.caller, |_, open| {
            *open = open.saturating_sub(1);
            *open == 0
        });
    }
}

#[cfg(test)]
pub(super) mod tests {
    use mno_events::idm::PrincipalKind;

    use super::*;

    pub fn app(id: &str) -> Principal {
        Principal {
            kind: PrincipalKind::App,
            id: id.into(),
            name: id.into(),
            role: None,
        }
    }

    #[test]
    fn streams_are_counted_per_caller_and_freed_when_they_end() {
        let streams = Arc::new(OpenStreams::default());
        let first = streams.take(&app("a"), 2).unwrap();
        let _second = streams.take(&app("a"), 2).unwrap();
        let refused = streams.take(&app("a"), 2).err().unwrap();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.errors[0].code, "too_many_streams");
        let _other = streams.take(&app("b"), 2).unwrap();
        drop(first);
        assert!(streams.take(&app("a"), 2).is_ok());
    }
}
