//! What redrives and recoveries come to, and why one is refused: answered
//! alike by the process that delivers to the app and by one that asked it
//! over NATS ([`super::remote`]).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::dlq::DlqError;

/// From where a recovery re-sends.
#[derive(Debug, Clone, Copy)]
pub enum Since {
    Sequence(u64),
    Time(DateTime<Utc>),
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Recovered {
    pub app_id: String,
    /// The RECORDS sequence the app's consumer now starts from (`None`: from the time given).
    pub from_sequence: Option<u64>,
    pub from_time: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("there is no app {0}")]
    NoApp(String),
    #[error("app {0} receives nothing by webhook: it needs a webhook URL and at least one shared entity with read on")]
    NotSubscribed(String),
    #[error("app {0}'s webhook is disabled (its receiver answered 410); update the app in the Hub to enable it, then retry")]
    Disabled(String),
    #[error("{0}")]
    Dlq(#[from] DlqError),
    #[error("{0}")]
    Unavailable(String),
}

/// What became of a redrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redriven {
    /// Handed to the app's worker: it leaves the DLQ once delivered.
    Sent { seq: u64 },
    /// Removed without sending: the app has passed a later version of the record.
    Superseded { seq: u64, by_version: u64 },
}

impl Redriven {
    /// `{"redriven": [seq]}` or `{"superseded": [{"seq", "by_version"}]}`, as the API and `mno dlq redrive` answer.
    pub fn answer(outcomes: &[Redriven]) -> serde_json::Value {
        let mut redriven = Vec::new();
        let mut superseded = Vec::new();
        for outcome in outcomes {
            match *outcome {
                Redriven::Sent { seq } => redriven.push(serde_json::json!(seq)),
                Redriven::Superseded { seq, by_version } => {
                    superseded.push(serde_json::json!({"seq": seq, "by_version": by_version}))
                }
            }
        }
        serde_json::json!({"redriven": redriven, "superseded": superseded})
    }
}
