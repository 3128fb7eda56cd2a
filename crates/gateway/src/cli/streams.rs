//! `mno streams`: the operator's view of every stream and consumer.

use anyhow::Result;
use async_nats::jetstream;
use futures::TryStreamExt;
use serde::Serialize;

use super::BusArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bus: BusArgs,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StreamRow {
    pub name: String,
    pub subjects: Vec<String>,
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub consumers: usize,
    pub replicas: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConsumerRow {
    pub stream: String,
    pub name: String,
    pub filters: Vec<String>,
    /// Messages not yet delivered to it.
    pub pending: u64,
    /// Delivered but not yet acknowledged.
    pub ack_pending: usize,
    pub redelivered: usize,
    /// Stream sequence of the last message delivered.
    pub delivered_seq: u64,
    /// Durable (a part's or an app's, kept across restarts); the others are
    /// short-lived (KV watchers, replays) and come and go under random names.
    pub durable: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub streams: Vec<StreamRow>,
    pub consumers: Vec<ConsumerRow>,
}

/// Read every stream and consumer from the server.
pub async fn collect(js: &jetstream::Context) -> Result<Report> {
    let infos: Vec<jetstream::stream::Info> = js.streams().try_collect().await?;
    let mut streams = Vec::new();
    let mut consumers = Vec::new();
    for info in infos {
        let name = info.config.name.clone();
        streams.push(StreamRow {
            name: name.clone(),
            subjects: info.config.subjects.clone(),
            messages: info.state.messages,
            bytes: info.state.bytes,
            first_seq: info.state.first_sequence,
            last_seq: info.state.last_sequence,
            consumers: info.state.consumer_count,
            replicas: info.config.num_replicas,
        });
        let stream = js.get_stream_no_info(&name).await?;
        let mut list: Vec<jetstream::consumer::Info> = stream.consumers().try_collect().await?;
        list.sort_by(|a, b| a.name.cmp(&b.name));
        for c in list {
            let mut filters = c.config.filter_subjects.clone();
            if !c.config.filter_subject.is_empty() {
                filters.insert(0, c.config.filter_subject.clone());
            }
            consumers.push(ConsumerRow {
                stream: name.clone(),
                name: c.name.clone(),
                filters,
                pending: c.num_pending,
                ack_pending: c.num_ack_pending,
                redelivered: c.num_redelivered,
                delivered_seq: c.delivered.stream_sequence,
                durable: c.config.durable_name.is_some(),
            });
        }
    }
    streams.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Report { streams, consumers })
}

pub async fn run(args: Args) -> Result<()> {
    let bus = args.bus.connect().await?;
    let report = collect(&bus.js).await?;
    if args.json {
        crate::reportln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        crate::report!("{}", render_tables(&report));
    }
    Ok(())
}

/// Two aligned text tables.
pub fn render_tables(report: &Report) -> String {
    let mut rows = vec![vec![
        "STREAM".to_owned(),
        "MESSAGES".into(),
        "BYTES".into(),
        "FIRST".into(),
        "LAST".into(),
        "CONSUMERS".into(),
        "REPLICAS".into(),
        "SUBJECTS".into(),
    ]];
    for s in &report.streams {
        rows.push(vec![
            s.name.clone(),
            s.messages.to_string(),
            s.bytes.to_string(),
            s.first_seq.to_string(),
            s.last_seq.to_string(),
            s.consumers.to_string(),
            s.replicas.to_string(),
            s.subjects.join(","),
        ]);
    }
    let mut out = table(&rows);
    out.push('\n');
    let mut rows = vec![vec![
        "STREAM".to_owned(),
        "CONSUMER".into(),
        "PENDING".into(),
        "ACK PENDING".into(),
        "REDELIVERED".into(),
        "DELIVERED SEQ".into(),
        "FILTERS".into(),
    ]];
    for c in report.consumers.iter().filter(|c| c.durable) {
        rows.push(vec![
            c.stream.clone(),
            c.name.clone(),
            c.pending.to_string(),
            c.ack_pending.to_string(),
            c.redelivered.to_string(),
            c.delivered_seq.to_string(),
            c.filters.join(","),
        ]);
    }
    if !report.consumers.iter().any(|c| c.durable) {
        rows.push(vec!["(no durable consumers)".into()]);
    }
    out.push_str(&table(&rows));
    let short_lived = report.consumers.iter().filter(|c| !c.durable).count();
    if short_lived > 0 {
        out.push_str(&format!(
            "and {short_lived} short-lived consumers (KV watchers, replays; listed by --json)\n"
        ));
    }
    out
}

fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{cell:<width$}", width = widths[i]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(name: &str, durable: bool) -> ConsumerRow {
        ConsumerRow {
            stream: "RECORDS".into(),
            name: name.into(),
            filters: vec![],
            pending: 3,
            ack_pending: 0,
            redelivered: 0,
            delivered_seq: 7,
            durable,
        }
    }

    #[test]
    fn the_table_lists_durable_consumers_and_counts_the_short_lived_ones() {
        let report = Report {
            streams: vec![],
            consumers: vec![
                consumer("delivery-app1", true),
                consumer("Xq3kZ1", false),
                consumer("Hh8Pp0", false),
            ],
        };
        let text = render_tables(&report);
        assert!(text.contains("delivery-app1"), "{text}");
        assert!(!text.contains("Xq3kZ1"), "{text}");
        assert!(text.contains("and 2 short-lived consumers"), "{text}");
    }
}
