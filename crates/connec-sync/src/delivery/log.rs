//! The delivery log: the most recent attempts, in memory, newest first.
//!
//! It answers "what happened to my webhooks lately"; the durable record of
//! what was given up on is the DLQ stream.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Delivered,
    Failed,
    DeadLettered,
    /// The receiver answered 410 Gone and the endpoint was disabled.
    Disabled,
}

impl AttemptStatus {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            "dead_lettered" => Some(Self::DeadLettered),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    pub at: DateTime<Utc>,
    pub app_id: String,
    pub org: String,
    pub webhook_id: String,
    pub event_ids: Vec<String>,
    /// 1 for a first attempt.
    pub attempt: u32,
    pub status: AttemptStatus,
    pub http_status: Option<u16>,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub struct DeliveryLog {
    entries: Mutex<VecDeque<LogEntry>>,
    capacity: usize,
}

impl DeliveryLog {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&self, entry: LogEntry) {
        let mut entries = self.entries.lock().expect("log lock");
        if entries.len() >= self.capacity {
            entries.pop_back();
        }
        entries.push_front(entry);
    }

    /// Newest first, filtered by app, the orgs the caller may see, and status.
    pub fn query(
        &self,
        app: &str,
        visible_org: impl Fn(&str) -> bool,
        status: Option<AttemptStatus>,
        limit: usize,
    ) -> Vec<LogEntry> {
        let entries = self.entries.lock().expect("log lock");
        entries
            .iter()
            .filter(|e| e.app_id == app && visible_org(&e.org))
            .filter(|e| status.is_none_or(|s| e.status == s))
            .take(limit)
            .cloned()
            .collect()
    }
}
