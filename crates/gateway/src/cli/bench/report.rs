//! What every benchmark shares: a private bus to measure on, latency
//! summaries, and the one-JSON-line-per-figure output.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::nats_child::{self, ChildNats, NatsSync};
use crate::proc_stat;

/// A bus to measure on: `--nats-url`, or a private nats-server in a temp dir.
pub struct BenchBus {
    pub bus: mno_events::bus::Bus,
    pub url: String,
    child: Option<ChildNats>,
    /// Other mno processes of the platform measured (`mno serve` edges), counted with this one.
    others: std::sync::Mutex<Vec<u32>>,
    _dir: Option<tempfile_dir::TempDir>,
}

/// Options every scenario takes.
#[derive(Debug, Clone, clap::Args)]
pub struct BusChoice {
    /// Measure against this server instead of a private one (its streams are left as they were).
    #[arg(long)]
    pub nats_url: Option<String>,
    /// The nats-server binary for the private server.
    #[arg(long, env = "MNO_NATS_SERVER_BIN")]
    pub nats_server_bin: Option<PathBuf>,
    /// The private server's file-store sync, as `mno up`'s child (MNO_NATS_SYNC).
    #[arg(long, env = "MNO_NATS_SYNC", value_enum, default_value_t = NatsSync::Always)]
    pub nats_sync: NatsSync,
}

/// How long publishes on the bench's connection (the raw baselines' fills, and
/// a platform's writes where a bench shares the connection) wait for an ack. The client's 5 s default ended whole runs on a loaded machine, where a
/// window of 1 000 pipelined publishes can take longer to be stored: a bench
/// waits and reports the slower figure instead.
const BENCH_ACK_TIMEOUT: Duration = Duration::from_secs(60);

impl BenchBus {
    pub async fn open(choice: &BusChoice) -> Result<BenchBus> {
        let mut bench = BenchBus::connect(choice).await?;
        bench.bus.js.set_timeout(BENCH_ACK_TIMEOUT);
        Ok(bench)
    }

    async fn connect(choice: &BusChoice) -> Result<BenchBus> {
        if let Some(url) = &choice.nats_url {
            let bus = mno_events::bus::connect_named(url, "mno-bench").await?;
            return Ok(BenchBus {
                bus,
                url: url.clone(),
                child: None,
                others: Default::default(),
                _dir: None,
            });
        }
        let dir = tempfile_dir::TempDir::new("mno-bench")?;
        let binary = nats_child::find_binary(choice.nats_server_bin.as_deref())?;
        let child = ChildNats::start(&binary, dir.path(), false, choice.nats_sync).await?;
        let bus = mno_events::bus::connect_named(&child.url, "mno-bench").await?;
        Ok(BenchBus {
            bus,
            url: child.url.clone(),
            child: Some(child),
            others: Default::default(),
            _dir: Some(dir),
        })
    }

    /// Count process `pid` (another mno process of the platform) with this one.
    pub fn measure_also(&self, pid: u32) {
        self.others.lock().expect("not poisoned").push(pid);
    }

    /// CPU time used so far by this process (and the other mno processes
    /// measured) and by the private server.
    pub fn cpu(&self) -> CpuTimes {
        let others = self.others.lock().expect("not poisoned").clone();
        CpuTimes {
            mno: others.iter().fold(process_cpu("self"), |sum, pid| {
                Some(sum? + process_cpu(&pid.to_string())?)
            }),
            nats_server: self
                .child
                .as_ref()
                .and_then(ChildNats::pid)
                .and_then(|pid| process_cpu(&pid.to_string())),
        }
    }

    pub async fn close(self) -> Result<()> {
        if let Some(child) = self.child {
            child.stop().await?;
        }
        Ok(())
    }
}

/// CPU time (user + system) of the bench process and of its private
/// nats-server at one moment. The difference over a phase, per record, is the
/// cost of a record: unlike a rate, it hardly moves with other load on the machine.
#[derive(Debug, Clone, Copy)]
pub struct CpuTimes {
    mno: Option<Duration>,
    nats_server: Option<Duration>,
}

impl CpuTimes {
    /// Microseconds of CPU per item since `earlier`, for each process measured.
    pub fn per_item_since(&self, earlier: &CpuTimes, items: u64) -> Value {
        let per = |now: Option<Duration>, then: Option<Duration>| {
            let (now, then) = (now?, then?);
            Some(round(
                now.saturating_sub(then).as_secs_f64() * 1e6 / items.max(1) as f64,
            ))
        };
        json!({
            "mno": per(self.mno, earlier.mno),
            "nats_server": per(self.nats_server, earlier.nats_server),
        })
    }
}

/// User plus system CPU time of a process, from `/proc/<pid>/stat` (Linux; `None` elsewhere).
fn process_cpu(pid: &str) -> Option<Duration> {
    let ticks = proc_stat::cpu_ticks(&proc_stat::read(pid)?)?;
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)? as u64;
    Some(Duration::from_micros(ticks * 1_000_000 / per_second))
}

/// A temp dir removed on drop, without another dependency.
pub mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(prefix: &str) -> std::io::Result<TempDir> {
            let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::now_v7()));
            std::fs::create_dir_all(&path)?;
            Ok(TempDir(path))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Microsecond latency recorder.
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Latencies {
    pub fn record(&mut self, elapsed: Duration) {
        let _ = self.0.record((elapsed.as_micros() as u64).max(1));
    }

    pub fn merge(&mut self, other: &Latencies) {
        let _ = self.0.add(&other.0);
    }

    /// p50 in milliseconds.
    pub fn p50_ms(&self) -> f64 {
        self.0.value_at_quantile(0.50) as f64 / 1000.0
    }

    /// p99 in milliseconds.
    pub fn p99_ms(&self) -> f64 {
        self.0.value_at_quantile(0.99) as f64 / 1000.0
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }
}

/// Messages per second.
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// How many times a raw-bus baseline is measured in one run; figures divide
/// by the median, so one slow pass (another process took the cores) does not
/// make the ratio.
pub const BASELINE_RUNS: usize = 3;

/// Slowest to fastest pass of a baseline beyond which the run is called noisy.
const NOISY_SPREAD: f64 = 1.5;

/// A raw-bus baseline measured several times in one run.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub samples: Vec<f64>,
}

impl Baseline {
    /// Measure `once` [`BASELINE_RUNS`] times; warns on stderr when the
    /// passes disagree by more than [`NOISY_SPREAD`].
    pub async fn measure<F, Fut>(what: &str, mut once: F) -> Result<Baseline>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<f64>>,
    {
        let mut samples = Vec::with_capacity(BASELINE_RUNS);
        for _ in 0..BASELINE_RUNS {
            samples.push(once().await?);
        }
        let baseline = Baseline { samples };
        if baseline.noisy() {
            eprintln!(
                "warning: the baseline {what} measured {:?} over {} passes (spread over {NOISY_SPREAD}x): \
                 the machine was busy, so this run's ratios are not to be trusted; run it again on a quiet machine",
                baseline.rounded(),
                baseline.samples.len()
            );
        }
        Ok(baseline)
    }

    pub fn median(&self) -> f64 {
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    /// Whether the slowest and fastest passes differ by more than [`NOISY_SPREAD`].
    pub fn noisy(&self) -> bool {
        let min = self.samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.samples.iter().copied().fold(0.0, f64::max);
        min <= 0.0 || max / min > NOISY_SPREAD
    }

    fn rounded(&self) -> Vec<f64> {
        self.samples.iter().map(|x| round(*x)).collect()
    }

    /// What a figure line says of its baseline: every pass, and whether the run was noisy.
    pub fn describe(&self) -> Value {
        json!({"baseline_runs": self.rounded(), "noisy": self.noisy()})
    }
}

/// `extra` with the baseline's description added.
pub fn with_baseline(mut extra: Value, baseline: &Baseline) -> Value {
    if let (Some(extra), Value::Object(description)) = (extra.as_object_mut(), baseline.describe())
    {
        extra.extend(description);
    }
    extra
}

/// One figure: `value` measured against `baseline` in the same run.
pub fn figure(scenario: &str, unit: &str, value: f64, baseline: f64, extra: Value) -> Value {
    let mut line = json!({
        "scenario": scenario,
        "unit": unit,
        "value": round(value),
        "baseline": round(baseline),
        "ratio": if baseline > 0.0 { (value / baseline * 1000.0).round() / 1000.0 } else { 0.0 },
    });
    if let (Some(line), Value::Object(extra)) = (line.as_object_mut(), extra) {
        line.extend(extra);
    }
    line
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Print the figures, one JSON line each, after a human-readable header.
pub fn print_figures(figures: &[Value]) {
    for figure in figures {
        println!("{figure}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_item_cpu_is_the_difference_over_the_items() {
        let before = CpuTimes {
            mno: Some(Duration::from_millis(100)),
            nats_server: None,
        };
        let after = CpuTimes {
            mno: Some(Duration::from_millis(400)),
            nats_server: None,
        };
        let per = after.per_item_since(&before, 1000);
        assert_eq!(per["mno"], json!(300.0));
        assert_eq!(per["nats_server"], Value::Null);
    }

    #[test]
    fn a_baseline_is_the_median_of_its_passes_and_a_wide_spread_is_noisy() {
        // One pass at 8 000 msg/s beside two near 180 000: the median ignores it, the spread reports it.
        let busy = Baseline {
            samples: vec![189_000.0, 8_000.0, 176_000.0],
        };
        assert_eq!(busy.median(), 176_000.0);
        assert!(busy.noisy());
        assert_eq!(busy.describe()["noisy"], json!(true));
        let quiet = Baseline {
            samples: vec![100.0, 110.0, 104.0, 120.0],
        };
        assert_eq!(quiet.median(), 107.0);
        assert!(!quiet.noisy());
        let extra = with_baseline(json!({"apps": 10}), &quiet);
        assert_eq!(extra["apps"], 10);
        assert_eq!(extra["baseline_runs"], json!([100.0, 110.0, 104.0, 120.0]));
    }
}
