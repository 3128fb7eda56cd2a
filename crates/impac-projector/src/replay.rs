//! Reports as the stream stood at a past point: fold the orgs' record events
//! in memory up to a sequence or a time, then compute the widget on that
//! snapshot with the same code as the live report. The HTTP `as_of=` and
//! `mno impac replay` both come through here.

use chrono::{DateTime, NaiveDate, Utc};
use mno_events::consume::{self, ConsumeError, ReplayFrom};
use mno_events::proto::RecordEvent;
use serde_json::{json, Value};

use crate::records::{MemoryFold, Snapshot};
use crate::widgets::money::Converter;
use crate::widgets::ComputeError;
use crate::widgets::{self, Params};

/// A point of the stream: a sequence, or a time (everything published until then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Seq(u64),
    Time(DateTime<Utc>),
}

impl AsOf {
    /// A whole number is a stream sequence; else an RFC 3339 time, or a date (its end, UTC).
    pub fn parse(text: &str) -> Result<AsOf, String> {
        if let Ok(seq) = text.parse::<u64>() {
            return Ok(AsOf::Seq(seq));
        }
        if let Ok(time) = DateTime::parse_from_rfc3339(text) {
            return Ok(AsOf::Time(time.with_timezone(&Utc)));
        }
        if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            let end = day.and_hms_opt(23, 59, 59).expect("a valid time").and_utc();
            return Ok(AsOf::Time(end));
        }
        Err(format!(
            "as_of must be a stream sequence, an RFC 3339 time or a date, not {text:?}"
        ))
    }

    pub fn to_json(self) -> Value {
        match self {
            AsOf::Seq(seq) => json!(seq),
            AsOf::Time(time) => json!(time.to_rfc3339()),
        }
    }
}

/// The orgs' records as they stood at `point` (before the first event: empty).
pub async fn snapshot_as_of(
    js: &async_nats::jetstream::Context,
    orgs: &[String],
    point: AsOf,
) -> Result<Snapshot, ConsumeError> {
    // One filter per org (see `records::filters`); the fold skips other collections.
    let filters: Vec<String> = orgs.iter().map(|org| format!("rec.{org}.>")).collect();
    let mut fold = MemoryFold::default();
    let until = match point {
        AsOf::Seq(0) => return Ok(fold.snapshot(orgs)),
        AsOf::Seq(seq) => Some(seq),
        AsOf::Time(_) => None,
    };
    consume::replay_until_caught_up(
        js,
        mno_events::streams::RECORDS,
        &filters,
        ReplayFrom::Beginning,
        until,
        |m| {
            if let AsOf::Time(time) = point {
                if m.published > time {
                    return false;
                }
            }
            if let Ok(event) = RecordEvent::from_bytes(&m.payload) {
                fold.apply(&event);
            }
            true
        },
    )
    .await?;
    Ok(fold.snapshot(orgs))
}

/// A widget's answer, the shape of `GET /impac/api/v2/widgets/...`:
/// `{"widget", "org_ids", "currency", "as_of", "rates", "content"}`.
pub fn answer(
    widget: &str,
    orgs: &[String],
    point: Option<AsOf>,
    snapshot: &Snapshot,
    params: &Params,
    converter: &Converter,
) -> Result<Value, ComputeError> {
    let content = widgets::compute(widget, snapshot, params, converter)?;
    let rates = converter.used.borrow().clone();
    Ok(json!({
        "widget": widget,
        "org_ids": orgs,
        "currency": converter.target,
        "as_of": point.map_or(Value::Null, AsOf::to_json),
        "rates": rates,
        "content": content,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_reads_sequences_times_and_dates() {
        assert_eq!(AsOf::parse("42"), Ok(AsOf::Seq(42)));
        assert!(matches!(
            AsOf::parse("2026-11-28T10:00:00Z"),
            Ok(AsOf::Time(_))
        ));
        let Ok(AsOf::Time(end)) = AsOf::parse("2026-11-28") else {
            panic!("a date is a time")
        };
        assert_eq!(end.to_rfc3339(), "2026-11-28T23:59:59+00:00");
        assert!(AsOf::parse("yesterday").unwrap_err().contains("as_of"));
    }
}
