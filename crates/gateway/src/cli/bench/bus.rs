//! `mno bench bus`: the raw-bus baselines every other figure is divided by.
//!
//! Each baseline uses a stream of its own (BENCH_*) with file storage on one
//! node, like RECORDS, and is deleted afterwards.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_nats::jetstream::{self, consumer::pull, message::PublishMessage, stream};
use bytes::Bytes;
use futures::stream::{FuturesOrdered, StreamExt};
use serde_json::json;

use super::report::{figure, print_figures, rate, BenchBus, BusChoice, Latencies};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bus: BusChoice,
    /// Messages per pipelined, consume and replay baseline.
    #[arg(long, default_value_t = 200_000)]
    pub messages: u64,
    /// Messages for the publish-awaiting-each-ack baseline (it is slow by nature).
    #[arg(long, default_value_t = 20_000)]
    pub sync_messages: u64,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Acks in flight for the pipelined publish.
    #[arg(long, default_value_t = 1000)]
    pub window: usize,
}

/// The four baselines, measured on `js`.
#[derive(Debug, Clone, Copy)]
pub struct Baselines {
    pub publish_pipelined: f64,
    pub publish_sync: f64,
    pub publish_sync_p50_ms: f64,
    pub durable_consume: f64,
    pub ordered_replay: f64,
}

pub async fn run(args: Args) -> Result<()> {
    let bench = BenchBus::open(&args.bus).await?;
    let payload = Bytes::from(vec![b'x'; args.size]);
    let js = &bench.bus.js;
    eprintln!(
        "measuring the raw bus at {} ({} messages of {} B)",
        bench.url, args.messages, args.size
    );

    let pipelined =
        publish_pipelined(js, "BENCH_PUB", args.messages, payload.clone(), args.window).await?;
    let (sync_rate, sync_lat) =
        publish_sync(js, "BENCH_SYNC", args.sync_messages, payload.clone()).await?;
    let consume = durable_consume(
        js,
        "BENCH_CONSUME",
        args.messages,
        payload.clone(),
        args.window,
    )
    .await?;
    let replay = ordered_replay(js, "BENCH_REPLAY", args.messages, payload, args.window).await?;

    let extra = |n: u64| json!({"messages": n, "size": args.size});
    print_figures(&[
        figure(
            "bus.publish_pipelined",
            "msg/s",
            pipelined,
            pipelined,
            extra(args.messages),
        ),
        figure(
            "bus.publish_sync",
            "msg/s",
            sync_rate,
            sync_rate,
            json!({"messages": args.sync_messages, "size": args.size, "p50_ms": sync_lat.p50_ms(), "p99_ms": sync_lat.p99_ms()}),
        ),
        figure(
            "bus.durable_consume",
            "msg/s",
            consume,
            consume,
            extra(args.messages),
        ),
        figure(
            "bus.ordered_replay",
            "msg/s",
            replay,
            replay,
            extra(args.messages),
        ),
    ]);
    bench.close().await
}

/// A fresh file-storage stream named `name` on subject `name.>`.
pub async fn fresh_stream(js: &jetstream::Context, name: &str) -> Result<stream::Stream> {
    let _ = js.delete_stream(name).await;
    js.create_stream(stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{name}.>")],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .with_context(|| format!("create bench stream {name}"))
}

/// Publish `count` messages of `payload`, keeping `window` acks in flight; msg/s.
pub async fn publish_pipelined(
    js: &jetstream::Context,
    stream: &str,
    count: u64,
    payload: Bytes,
    window: usize,
) -> Result<f64> {
    fresh_stream(js, stream).await?;
    let elapsed = fill(js, stream, count, payload, window).await?;
    let _ = js.delete_stream(stream).await;
    Ok(rate(count, elapsed))
}

/// Publish `count` messages pipelined into an existing stream; how long it took.
pub async fn fill(
    js: &jetstream::Context,
    stream: &str,
    count: u64,
    payload: Bytes,
    window: usize,
) -> Result<Duration> {
    let subject = format!("{stream}.m");
    publish_windowed(js, count, window, |_| {
        (
            subject.clone(),
            PublishMessage::build().payload(payload.clone()),
        )
    })
    .await
}

/// Publish `count` messages of `payload` the way the record write path does:
/// each on a subject of its own, with `Nats-Msg-Id` and an expected last
/// subject sequence of 0 (a create), keeping `window` acks in flight; msg/s.
/// It shows what the write path's headers and one-subject-per-record cost
/// the bus; the figures are still divided by plain pipelined publish.
pub async fn publish_pipelined_as_creates(
    js: &jetstream::Context,
    stream: &str,
    count: u64,
    payload: Bytes,
    window: usize,
) -> Result<f64> {
    fresh_stream(js, stream).await?;
    let elapsed = publish_windowed(js, count, window, |i| {
        let message = PublishMessage::build()
            .payload(payload.clone())
            .message_id(uuid::Uuid::now_v7().to_string())
            .expected_last_subject_sequence(0);
        (format!("{stream}.r{i}"), message)
    })
    .await?;
    let _ = js.delete_stream(stream).await;
    Ok(rate(count, elapsed))
}

/// Publish message `i` of `message(i)` for `i` in `0..count`, keeping `window`
/// acks in flight; how long it took until the last ack.
async fn publish_windowed(
    js: &jetstream::Context,
    count: u64,
    window: usize,
    mut message: impl FnMut(u64) -> (String, PublishMessage),
) -> Result<Duration> {
    let started = Instant::now();
    let mut in_flight = FuturesOrdered::new();
    for i in 0..count {
        if in_flight.len() >= window {
            in_flight.next().await.expect("window is not empty")?;
        }
        let (subject, message) = message(i);
        let ack = js.send_publish(subject, message).await?;
        in_flight.push_back(std::future::IntoFuture::into_future(ack));
    }
    while let Some(ack) = in_flight.next().await {
        ack?;
    }
    Ok(started.elapsed())
}

/// Publish awaiting each ack; msg/s and the latency of each round trip.
pub async fn publish_sync(
    js: &jetstream::Context,
    stream: &str,
    count: u64,
    payload: Bytes,
) -> Result<(f64, Latencies)> {
    fresh_stream(js, stream).await?;
    let subject = format!("{stream}.m");
    let mut latencies = Latencies::default();
    let started = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        js.publish(subject.clone(), payload.clone()).await?.await?;
        latencies.record(t.elapsed());
    }
    let elapsed = started.elapsed();
    let _ = js.delete_stream(stream).await;
    Ok((rate(count, elapsed), latencies))
}

/// Fill a stream, then read it with a durable pull consumer acking each message; msg/s.
pub async fn durable_consume(
    js: &jetstream::Context,
    stream: &str,
    count: u64,
    payload: Bytes,
    window: usize,
) -> Result<f64> {
    let handle = fresh_stream(js, stream).await?;
    fill(js, stream, count, payload, window).await?;
    let consumer = handle
        .create_consumer(pull::Config {
            durable_name: Some("bench".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1000)
        .messages()
        .await?;
    let mut seen = 0;
    while seen < count {
        let message = messages.next().await.context("consumer ended early")??;
        message
            .ack()
            .await
            .map_err(|e| anyhow::anyhow!("ack: {e}"))?;
        seen += 1;
    }
    let elapsed = started.elapsed();
    let _ = js.delete_stream(stream).await;
    Ok(rate(count, elapsed))
}

/// Fill a stream, then read it with an ordered consumer from sequence 1; msg/s.
pub async fn ordered_replay(
    js: &jetstream::Context,
    stream: &str,
    count: u64,
    payload: Bytes,
    window: usize,
) -> Result<f64> {
    let handle = fresh_stream(js, stream).await?;
    fill(js, stream, count, payload, window).await?;
    let consumer = handle
        .create_consumer(pull::OrderedConfig::default())
        .await?;
    let started = Instant::now();
    let mut messages = consumer.messages().await?;
    let mut seen = 0;
    while seen < count {
        messages.next().await.context("replay ended early")??;
        seen += 1;
    }
    let elapsed = started.elapsed();
    let _ = js.delete_stream(stream).await;
    Ok(rate(count, elapsed))
}

/// All four baselines with default sizes scaled by `messages`.
pub async fn measure(js: &jetstream::Context, messages: u64, payload: Bytes) -> Result<Baselines> {
    let publish_pipelined =
        publish_pipelined(js, "BENCH_PUB", messages, payload.clone(), 1000).await?;
    let (publish_sync, lat) =
        publish_sync(js, "BENCH_SYNC", (messages / 10).max(1000), payload.clone()).await?;
    let durable_consume =
        durable_consume(js, "BENCH_CONSUME", messages, payload.clone(), 1000).await?;
    let ordered_replay = ordered_replay(js, "BENCH_REPLAY", messages, payload, 1000).await?;
    Ok(Baselines {
        publish_pipelined,
        publish_sync,
        publish_sync_p50_ms: lat.p50_ms(),
        durable_consume,
        ordered_replay,
    })
}
