//! `mno consumers`: each app's delivery consumer and how far behind it is.

use anyhow::Result;
use futures::TryStreamExt;
use mno_connec_sync::delivery::CONSUMER_PREFIX;
use mno_events::streams::RECORDS;
use serde::Serialize;

use super::BusArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bus: BusArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppLag {
    pub app_id: String,
    /// Events not yet read by delivery.
    pub pending: u64,
    /// Read, not yet delivered (waiting behind a failing record, in flight, or retrying).
    pub ack_pending: usize,
    /// pending + ack_pending: events the app has yet to get.
    pub lag: u64,
    pub redelivered: usize,
    pub delivered_seq: u64,
    pub ack_floor_seq: u64,
    pub filters: Vec<String>,
}

/// Every app's delivery consumer on RECORDS.
pub async fn collect(js: &async_nats::jetstream::Context) -> Result<Vec<AppLag>> {
    let stream = js.get_stream_no_info(RECORDS).await?;
    let infos: Vec<async_nats::jetstream::consumer::Info> =
        stream.consumers().try_collect().await?;
    let mut out: Vec<AppLag> = infos
        .into_iter()
        .filter_map(|info| {
            let app_id = info.name.strip_prefix(CONSUMER_PREFIX)?.to_owned();
            let mut filters = info.config.filter_subjects.clone();
            if !info.config.filter_subject.is_empty() {
                filters.insert(0, info.config.filter_subject.clone());
            }
            Some(AppLag {
                app_id,
                pending: info.num_pending,
                ack_pending: info.num_ack_pending,
                lag: info.num_pending + info.num_ack_pending as u64,
                redelivered: info.num_redelivered,
                delivered_seq: info.delivered.stream_sequence,
                ack_floor_seq: info.ack_floor.stream_sequence,
                filters,
            })
        })
        .collect();
    out.sort_by(|a, b| b.lag.cmp(&a.lag).then(a.app_id.cmp(&b.app_id)));
    Ok(out)
}

/// A projection's consumer (Impac!'s reports, Connec!'s record store) and how far behind it is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectionLag {
    pub consumer: String,
    pub pending: u64,
    pub ack_pending: usize,
    pub lag: u64,
    pub delivered_seq: u64,
    pub ack_floor_seq: u64,
}

/// Consumers of RECORDS that fold it into SQL.
pub async fn collect_projections(
    js: &async_nats::jetstream::Context,
) -> Result<Vec<ProjectionLag>> {
    let stream = js.get_stream_no_info(RECORDS).await?;
    let infos: Vec<async_nats::jetstream::consumer::Info> =
        stream.consumers().try_collect().await?;
    let mut out: Vec<ProjectionLag> = infos
        .into_iter()
        .filter(|info| {
            info.name.starts_with("impac-") || info.name == mno_connec_sync::store::CONSUMER
        })
        .map(|info| ProjectionLag {
            lag: info.num_pending + info.num_ack_pending as u64,
            consumer: info.name,
            pending: info.num_pending,
            ack_pending: info.num_ack_pending,
            delivered_seq: info.delivered.stream_sequence,
            ack_floor_seq: info.ack_floor.stream_sequence,
        })
        .collect();
    out.sort_by(|a, b| a.consumer.cmp(&b.consumer));
    Ok(out)
}

pub async fn run(args: Args) -> Result<()> {
    let bus = args.bus.connect().await?;
    let lags = collect(&bus.js).await?;
    let projections = collect_projections(&bus.js).await?;
    if args.json {
        let report = serde_json::json!({"apps": lags, "projections": projections});
        crate::reportln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    if !projections.is_empty() {
        crate::reportln!(
            "{:<38} {:>8} {:>8} {:>11} {:>13} {:>13}",
            "PROJECTION",
            "LAG",
            "PENDING",
            "ACK PENDING",
            "DELIVERED SEQ",
            "ACK FLOOR"
        );
        for p in &projections {
            crate::reportln!(
                "{:<38} {:>8} {:>8} {:>11} {:>13} {:>13}",
                p.consumer,
                p.lag,
                p.pending,
                p.ack_pending,
                p.delivered_seq,
                p.ack_floor_seq
            );
        }
        crate::report!("\n");
    }
    if lags.is_empty() {
        crate::reportln!("(no app receives webhooks yet)");
        return Ok(());
    }
    crate::reportln!(
        "{:<38} {:>8} {:>8} {:>11} {:>11} {:>13} {:>13}  FILTERS",
        "APP",
        "LAG",
        "PENDING",
        "ACK PENDING",
        "REDELIVERED",
        "DELIVERED SEQ",
        "ACK FLOOR"
    );
    for l in &lags {
        crate::reportln!(
            "{:<38} {:>8} {:>8} {:>11} {:>11} {:>13} {:>13}  {}",
            l.app_id,
            l.lag,
            l.pending,
            l.ack_pending,
            l.redelivered,
            l.delivered_seq,
            l.ack_floor_seq,
            l.filters.join(",")
        );
    }
    Ok(())
}
