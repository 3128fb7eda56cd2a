//! The streams of the platform and their idempotent provisioning.
//!
//! | stream  | subjects | what it holds |
//! |---------|----------|---------------|
//! | RECORDS | `rec.>`  | every record change; the source of truth, never deleted or purged |
//! | HUB     | `hub.>`  | Hub domain events from the outbox |
//! | DLQ     | `dlq.>`  | dead letters of delivery, kept 30 days |
//!
//! `deploy/nats/streams/*.json` holds the same definitions (a test keeps them equal).
//! Provisioning creates a missing stream, updates one whose mutable settings
//! drifted, and refuses one whose immutable settings (storage, retention) differ.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    stream::{Config, DiscardPolicy, RetentionPolicy, StorageType},
};

pub const RECORDS: &str = "RECORDS";
pub const HUB: &str = "HUB";
pub const DLQ: &str = "DLQ";

/// How long JetStream remembers a Nats-Msg-Id for de-duplication.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

pub fn records(replicas: usize) -> Config {
    Config {
        name: RECORDS.into(),
        description: Some(
            "Every change to a shared business record, one subject per record (rec.<org>.<entity>.<id>)"
                .into(),
        ),
        subjects: vec!["rec.>".into()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        allow_direct: true,
        deny_delete: true,
        deny_purge: true,
        allow_atomic_publish: true,
        ..Default::default()
    }
}

pub fn hub(replicas: usize) -> Config {
    Config {
        name: HUB.into(),
        description: Some("Hub domain events from the SQL outbox (hub.<org>.<kind>)".into()),
        subjects: vec!["hub.>".into()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        allow_direct: true,
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    }
}

pub fn dlq(replicas: usize) -> Config {
    Config {
        name: DLQ.into(),
        description: Some("Dead letters of delivery (dlq.<app>.<org>), kept 30 days".into()),
        subjects: vec!["dlq.>".into()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: Duration::from_secs(30 * 24 * 3600),
        allow_direct: true,
        ..Default::default()
    }
}

/// Every stream of the platform.
pub fn all(replicas: usize) -> Vec<Config> {
    vec![records(replicas), hub(replicas), dlq(replicas)]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("stream {stream} exists with {field} = {existing}, but Mno needs {wanted}; JetStream cannot change {field} in place: back the stream up and recreate it, or point Mno at another server")]
    Incompatible {
        stream: String,
        field: &'static str,
        existing: String,
        wanted: String,
    },
    #[error(
        "stream {stream} keeps {existing} copies on the bus, but this process is set to {wanted} \
         (MNO_STREAM_REPLICAS): starting would lower the streams and buckets to {wanted}, and losing \
         a node could then lose acknowledged writes; set MNO_STREAM_REPLICAS={existing}, as the \
         deployment's other processes have it"
    )]
    FewerReplicas {
        stream: String,
        existing: usize,
        wanted: usize,
    },
    #[error("could not {action} stream {stream}: {reason}")]
    Bus {
        stream: String,
        action: &'static str,
        reason: String,
    },
}

/// Create or update `wanted` so that the server's stream matches it.
pub async fn provision(
    js: &jetstream::Context,
    wanted: &Config,
) -> Result<Provisioned, ProvisionError> {
    let bus = |action: &'static str| {
        let stream = wanted.name.clone();
        move |e: &dyn std::fmt::Display| ProvisionError::Bus {
            stream,
            action,
            reason: e.to_string(),
        }
    };
    let existing = match js.get_stream(&wanted.name).await {
        Ok(mut stream) => stream
            .info()
            .await
            .map_err(|e| bus("read")(&e))?
            .config
            .clone(),
        Err(e) => match e.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(api)
                if api.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                js.create_stream(wanted.clone())
                    .await
                    .map_err(|e| bus("create")(&e))?;
                return Ok(Provisioned::Created);
            }
            _ => return Err(bus("read")(&e)),
        },
    };
    check_compatible(&existing, wanted)?;
    refuse_fewer_replicas(&existing, wanted)?;
    if differs(&existing, wanted) {
        js.update_stream(wanted.clone())
            .await
            .map_err(|e| bus("update")(&e))?;
        return Ok(Provisioned::Updated);
    }
    Ok(Provisioned::Unchanged)
}

/// The last sequence `stream` holds: where a client's stream position (a
/// change-feed cursor, a `min_seq`) must not go past, or it names no write.
pub async fn last_sequence(js: &jetstream::Context, stream: &str) -> Result<u64, crate::ApiError> {
    Ok(js
        .get_stream(stream)
        .await
        .map_err(|e| crate::ApiError::unavailable(format!("stream {stream} did not answer: {e}")))?
        .cached_info()
        .state
        .last_sequence)
}

/// Refuse a process set to fewer replicas than the platform's streams keep,
/// before it opens anything: every stream and bucket is created or updated to
/// the process's count, so one mis-set process would quietly lower them all.
/// Raising the count is allowed (each stream then follows).
pub async fn check_replicas(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<(), ProvisionError> {
    for wanted in all(replicas) {
        match js.get_stream(&wanted.name).await {
            Ok(stream) => refuse_fewer_replicas(&stream.cached_info().config, &wanted)?,
            Err(e) => match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(api)
                    if api.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND => {}
                _ => {
                    return Err(ProvisionError::Bus {
                        stream: wanted.name.clone(),
                        action: "read",
                        reason: e.to_string(),
                    })
                }
            },
        }
    }
    Ok(())
}

fn refuse_fewer_replicas(existing: &Config, wanted: &Config) -> Result<(), ProvisionError> {
    if existing.num_replicas > wanted.num_replicas.max(1) {
        return Err(ProvisionError::FewerReplicas {
            stream: wanted.name.clone(),
            existing: existing.num_replicas,
            wanted: wanted.num_replicas.max(1),
        });
    }
    Ok(())
}

/// Provision every stream of the platform.
pub async fn provision_all(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<Vec<(String, Provisioned)>, ProvisionError> {
    let mut out = Vec::new();
    for config in all(replicas) {
        let outcome = provision(js, &config).await?;
        out.push((config.name.clone(), outcome));
    }
    Ok(out)
}

fn check_compatible(existing: &Config, wanted: &Config) -> Result<(), ProvisionError> {
    let incompatible = |field, old: String, new: String| ProvisionError::Incompatible {
        stream: wanted.name.clone(),
        field,
        existing: old,
        wanted: new,
    };
    if existing.storage != wanted.storage {
        return Err(incompatible(
            "storage",
            format!("{:?}", existing.storage),
            format!("{:?}", wanted.storage),
        ));
    }
    if existing.retention != wanted.retention {
        return Err(incompatible(
            "retention",
            format!("{:?}", existing.retention),
            format!("{:?}", wanted.retention),
        ));
    }
    Ok(())
}

/// Whether a setting we own differs; the server fills in the rest with its own defaults.
fn differs(existing: &Config, wanted: &Config) -> bool {
    existing.subjects != wanted.subjects
        || existing.description != wanted.description
        || existing.discard != wanted.discard
        || existing.num_replicas != wanted.num_replicas
        || existing.duplicate_window != wanted.duplicate_window
        || existing.max_age != wanted.max_age
        || existing.allow_direct != wanted.allow_direct
        || existing.deny_delete != wanted.deny_delete
        || existing.deny_purge != wanted.deny_purge
        || existing.allow_atomic_publish != wanted.allow_atomic_publish
}
