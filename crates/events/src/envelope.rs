//! Building, encoding and decoding the envelopes.
//!
//! Record state travels as canonical JSON: UTF-8, object keys sorted, no
//! insignificant whitespace. Two equal states are byte-equal, so a consumer may
//! hash or compare them directly. (`serde_json` without `preserve_order` keeps
//! object keys in a `BTreeMap`, which is exactly that order.)

use chrono::{DateTime, TimeZone, Utc};
use prost::Message;

use crate::proto::{HubEvent, RecordEvent, Timestamp};

/// Header naming the protobuf message type of a payload, for tooling.
pub const SCHEMA_HEADER: &str = "Mno-Schema";
pub const RECORD_EVENT_SCHEMA: &str = "mno.events.v1.RecordEvent";
pub const HUB_EVENT_SCHEMA: &str = "mno.events.v1.HubEvent";

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the payload is not a {schema} protobuf message: {source}")]
    Decode {
        schema: &'static str,
        #[source]
        source: prost::DecodeError,
    },
    #[error("the record state is not valid JSON: {0}")]
    State(#[from] serde_json::Error),
}

/// A new event id: a UUIDv7, so ids sort by creation time.
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Serialise a JSON value canonically (sorted keys, compact).
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    // Keys are sorted by serde_json's BTreeMap-backed Map; compact is the default.
    serde_json::to_vec(value).expect("a serde_json::Value always serialises")
}

pub fn to_timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

pub fn from_timestamp(ts: &Timestamp) -> DateTime<Utc> {
    Utc.timestamp_opt(ts.seconds, ts.nanos.max(0) as u32)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

impl RecordEvent {
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        RecordEvent::decode(bytes).map_err(|source| EnvelopeError::Decode {
            schema: RECORD_EVENT_SCHEMA,
            source,
        })
    }

    /// The record's state after the change, parsed.
    pub fn state_json(&self) -> Result<serde_json::Value, EnvelopeError> {
        Ok(serde_json::from_slice(&self.state)?)
    }

    pub fn occurred_at(&self) -> Option<DateTime<Utc>> {
        self.occurred_at.as_ref().map(from_timestamp)
    }

    pub fn recorded_at(&self) -> Option<DateTime<Utc>> {
        self.recorded_at.as_ref().map(from_timestamp)
    }

    /// The op as an enum, `Unspecified` for a value this version does not know.
    pub fn op_kind(&self) -> crate::proto::Op {
        crate::proto::Op::try_from(self.op).unwrap_or(crate::proto::Op::Unspecified)
    }
}

impl HubEvent {
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        HubEvent::decode(bytes).map_err(|source| EnvelopeError::Decode {
            schema: HUB_EVENT_SCHEMA,
            source,
        })
    }

    pub fn payload_json(&self) -> Result<serde_json::Value, EnvelopeError> {
        Ok(serde_json::from_slice(&self.payload)?)
    }
}

impl crate::proto::Op {
    /// The lower-case name used in JSON APIs: created, updated, deleted, id_mapped, merged.
    pub fn api_name(self) -> &'static str {
        use crate::proto::Op;
        match self {
            Op::Unspecified => "unspecified",
            Op::Created => "created",
            Op::Updated => "updated",
            Op::Deleted => "deleted",
            Op::IdMapped => "id_mapped",
            Op::Merged => "merged",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Actor, Op, Source};
    use serde_json::json;

    fn sample() -> RecordEvent {
        RecordEvent {
            event_id: new_event_id(),
            org: "org-1".into(),
            entity: "invoices".into(),
            record_id: "r-1".into(),
            op: Op::Updated as i32,
            version: 3,
            source: Some(Source {
                app_id: "app-1".into(),
                local_id: "47".into(),
            }),
            actor: Some(Actor {
                kind: "app".into(),
                id: "app-1".into(),
            }),
            occurred_at: Some(to_timestamp(Utc::now())),
            recorded_at: Some(to_timestamp(Utc::now())),
            changed_fields: vec!["amount".into()],
            correlation_id: "c-1".into(),
            state: canonical_json(&json!({"b": 1, "a": {"y": 2, "x": "1.10"}})),
            merged_record_ids: vec![],
        }
    }

    #[test]
    fn record_event_round_trips() {
        let event = sample();
        let decoded = RecordEvent::from_bytes(&event.to_bytes()).unwrap();
        assert_eq!(decoded, event);
        assert_eq!(decoded.op_kind(), Op::Updated);
        assert_eq!(decoded.state_json().unwrap()["a"]["x"], "1.10");
    }

    #[test]
    fn canonical_json_sorts_keys_and_is_compact() {
        let bytes = canonical_json(&json!({"b": 1, "a": {"y": 2, "x": [3, {"d": 0, "c": 1}]}}));
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"a":{"x":[3,{"c":1,"d":0}],"y":2},"b":1}"#
        );
    }

    #[test]
    fn unknown_fields_are_ignored_by_an_older_reader() {
        // A newer producer adds field 99 (a string) and field 100 (a varint).
        let mut bytes = sample().to_bytes();
        prost::encoding::string::encode(99, &"from the future".to_string(), &mut bytes);
        prost::encoding::uint64::encode(100, &7, &mut bytes);
        let decoded = RecordEvent::from_bytes(&bytes).unwrap();
        assert_eq!(decoded.record_id, "r-1");
        assert_eq!(decoded.version, 3);
    }

    #[test]
    fn an_unknown_op_reads_as_unspecified() {
        let mut event = sample();
        event.op = 42;
        let decoded = RecordEvent::from_bytes(&event.to_bytes()).unwrap();
        assert_eq!(decoded.op, 42);
        assert_eq!(decoded.op_kind(), Op::Unspecified);
    }

    #[test]
    fn garbage_is_a_clear_decode_error() {
        let err = RecordEvent::from_bytes(&[0xff, 0xff, 0xff]).unwrap_err();
        assert!(
            err.to_string().contains("mno.events.v1.RecordEvent"),
            "{err}"
        );
    }

    #[test]
    fn hub_event_round_trips() {
        let event = HubEvent {
            event_id: new_event_id(),
            outbox_id: 12,
            org: "org-1".into(),
            kind: "member_removed".into(),
            actor: None,
            occurred_at: Some(to_timestamp(Utc::now())),
            user_id: "u-1".into(),
            app_id: String::new(),
            payload: canonical_json(&json!({"role": "admin"})),
        };
        let decoded = HubEvent::from_bytes(&event.to_bytes()).unwrap();
        assert_eq!(decoded, event);
        assert_eq!(decoded.payload_json().unwrap()["role"], "admin");
    }
}
