//! The command line: which workloads, on which store, under which load.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// `yrd-bench`: drives `yrd serve` (a child process, over mTLS with bound tokens) and, in the
/// same run, a bare tonic echo server behind the same TLS acceptor; every row of the report
/// carries its ratio to the echo.
#[derive(Debug, Clone, Parser)]
#[command(name = "yrd-bench", version)]
pub struct Args {
    /// Instead of a run: another command (`load`).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The workloads to run, in order; `all` is every one of them.
    #[arg(value_enum, default_values_t = [Workload::All])]
    pub workloads: Vec<Workload>,
    /// The stores to run on, one server each (`--store sqlite --store postgres`, or
    /// `--store sqlite,postgres`).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [StoreKind::Sqlite])]
    pub store: Vec<StoreKind>,
    /// `yrd serve` replicas on the PostgreSQL store, one run per count given
    /// (`--replicas 1,2,3`): the first makes the database and PKI, the others serve its PKI
    /// files on the same database, and connections are spread over them round-robin. The
    /// SQLite store always runs one server.
    #[arg(long, value_delimiter = ',', default_values_t = [1u32],
          value_parser = clap::value_parser!(u32).range(1..=16))]
    pub replicas: Vec<u32>,
    /// A PostgreSQL URL where the bench may create (and afterwards drop) a database of its own.
    #[arg(
        long,
        env = "YRD_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres_url: String,
    /// The `yrd` binary to start; default: the one built next to this binary.
    #[arg(long)]
    pub yrd: Option<PathBuf>,
    /// Measured time per workload, e.g. `10s`, `500ms`.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Unmeasured time before each workload's window (connections warm, caches filled).
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub warmup: Duration,
    /// Connections (N), spread over the five agencies round-robin.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Calls in flight per connection (M); N × M calls are in flight in closed loop.
    #[arg(long, default_value_t = 4)]
    pub in_flight: usize,
    /// Open loop at this many calls per second (all connections together) instead of closed
    /// loop; latency is then measured from each call's scheduled start.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Feed subscribers (K) of the agencies other than the publisher, round-robin.
    #[arg(long, default_value_t = 4)]
    pub subscribers: usize,
    /// Results published before `get` and `search` when fewer exist (the corpus they read).
    #[arg(long, default_value_t = 1000)]
    pub seed: usize,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Exit non-zero unless every row completed calls without an error and has a ratio (the
    /// smoke test of `.ci/run`).
    #[arg(long)]
    pub check: bool,
    /// Soak instead of one pass: run the workloads (`all`: a mix of every call type) round
    /// after round, each round with `--duration` per workload, for this long, sampling the
    /// server's RSS and open file descriptors; fail on any failed call or on growth past the
    /// bound of `docs/reliability.md` §"Soak".
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub soak: Option<Duration>,
    /// How often a soak samples the server.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub sample_every: Duration,
    /// Record a CPU profile of the server during each workload's window (`perf record -g`,
    /// which must be installed) into `<DIR>/<store>-<workload>.perf.data`.
    #[arg(long, value_name = "DIR")]
    pub profile: Option<PathBuf>,
    /// Internal: serve the echo baseline with the PKI in this folder (the bench starts itself
    /// with it as a child process).
    #[arg(long, hide = true)]
    pub echo_serve: Option<PathBuf>,
}

/// Commands besides a bench run.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Fills a store with synthetic published results in bulk (the rows and search helpers a
    /// publish writes, through the store's bulk path, not through the API), then refreshes the
    /// planner's statistics. `yrd serve --database-url URL` serves them as published results.
    Load(LoadArgs),
}

/// `yrd-bench load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// How many results.
    #[arg(long, default_value_t = 1_000_000)]
    pub results: u64,
    /// The store: `sqlite://PATH` (created when missing) or `postgres://…/DATABASE` (an
    /// existing database; its schema is brought up to date first).
    #[arg(long)]
    pub database_url: String,
    /// Years the publication times spread over, up to 2026-12-01.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub years: u32,
}

/// A workload of the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Every workload below, in this order.
    All,
    /// `grpc.health.v1.Health/Check`: the middleware stack alone.
    Health,
    /// `PublishResult` of non-conforming results, each opening one referral.
    Publish,
    /// The same publishes in open loop at half of the closed-loop maximum (the `publish` row of
    /// the same run, or a closed-loop `publish-max` row run first): latency at a load the
    /// server keeps up with.
    PublishHalf,
    /// `GetResult` of a published result.
    Get,
    /// `SearchResults` by producer USCC, by agency and sampling-date range, and by product
    /// category (three rows).
    Search,
    /// Publishes of Delta joint results while K subscribers of the other agencies consume:
    /// publish-acknowledged → delivered latency.
    Feed,
    /// Publishes while an auditor reads the latest signed tree head: from each publish's answer
    /// (its leaf is durable) to the first signed tree head that covers its leaf.
    TreeHead,
    /// `RecordMeasure` on referrals in progress: one referral step per call.
    Disposal,
    /// A new connection (TCP + TLS 1.3 mTLS + HTTP/2) and one health call on it.
    Handshake,
}

impl Workload {
    /// The workloads `all` stands for.
    pub const EVERY: [Workload; 9] = [
        Workload::Health,
        Workload::Publish,
        Workload::PublishHalf,
        Workload::Get,
        Workload::Search,
        Workload::Feed,
        Workload::TreeHead,
        Workload::Disposal,
        Workload::Handshake,
    ];
}

/// The store `yrd serve` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// The embedded SQLite database in the server's data folder.
    Sqlite,
    /// A fresh database on the PostgreSQL server of `--postgres-url`.
    Postgres,
}

impl StoreKind {
    /// Its name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        }
    }
}

impl Args {
    /// The workloads to run, `all` expanded, each once, in the order given.
    pub fn expanded_workloads(&self) -> Vec<Workload> {
        let mut out = Vec::new();
        for w in &self.workloads {
            let expanded: &[Workload] = match w {
                Workload::All => &Workload::EVERY,
                one => std::slice::from_ref(one),
            };
            for w in expanded {
                if !out.contains(w) {
                    out.push(*w);
                }
            }
        }
        out
    }

    /// Calls in flight in closed loop (and the cap in open loop): N × M.
    pub fn concurrency(&self) -> usize {
        self.connections.max(1) * self.in_flight.max(1)
    }
}

/// `10s`, `1.5s`, `500ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (e.g. 10s, 500ms)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?} (ms, s, m)")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("not a duration: {text:?}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn load_is_a_command_and_workloads_stay_positional() {
        let args = Args::parse_from([
            "yrd-bench",
            "load",
            "--results",
            "1000",
            "--database-url",
            "sqlite:///tmp/x.db",
        ]);
        let Some(Command::Load(load)) = args.command else {
            panic!("load was not read as a command: {args:?}");
        };
        assert_eq!((load.results, load.years), (1000, 3));
        let args = Args::parse_from(["yrd-bench", "search", "get"]);
        assert!(args.command.is_none());
        assert_eq!(args.workloads, vec![Workload::Search, Workload::Get]);
        assert!(
            Args::try_parse_from(["yrd-bench", "load", "--results", "5"]).is_err(),
            "a load without a database must be refused"
        );
    }

    #[test]
    fn replica_counts_are_a_list_from_one_to_sixteen() {
        assert_eq!(Args::parse_from(["yrd-bench"]).replicas, vec![1]);
        let args = Args::parse_from(["yrd-bench", "--replicas", "1,2,3"]);
        assert_eq!(args.replicas, vec![1, 2, 3]);
        for bad in ["0", "17", "two"] {
            assert!(
                Args::try_parse_from(["yrd-bench", "--replicas", bad]).is_err(),
                "--replicas {bad} must be refused"
            );
        }
    }

    #[test]
    fn all_expands_once_in_order() {
        let args = Args::parse_from(["yrd-bench", "get", "all"]);
        let got = args.expanded_workloads();
        assert_eq!(got[0], Workload::Get);
        assert_eq!(got.len(), Workload::EVERY.len());
        let args = Args::parse_from(["yrd-bench", "--store", "sqlite,postgres"]);
        assert_eq!(args.store, vec![StoreKind::Sqlite, StoreKind::Postgres]);
        assert_eq!(args.expanded_workloads(), Workload::EVERY.to_vec());
    }
}
