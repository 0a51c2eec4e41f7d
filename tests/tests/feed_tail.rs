//! `yrd feed tail` as a child process while the exchange is stopped and started again on its
//! address, and while the tail itself is killed and run again: no event is lost, none is
//! printed twice, except the one documented redelivery (an event printed by a tail killed
//! before it stored the event's cursor), which keeps its `event_id`.
//!
//! The child is this test binary re-executed with `YRD_FEED_TAIL_CHILD=1`: it parses its
//! arguments with the `yrd` command line and runs the command with the library function the
//! `yrd` binary calls (`yrd_gateway::cli::desk::feed::run`), writing to its real standard
//! output. (A test of another package cannot name the `yrd` binary, which Cargo builds only
//! for the gateway's own tests.) Both stores; `harness = false` in `tests/Cargo.toml`.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;
use serde_json::Value;
use tokio::sync::mpsc;
use yrd_domain::clock::SystemClock;
use yrd_e2e::fixtures::result_event;
use yrd_e2e::{JIANGSU, StoreKind, TestApp};
use yrd_gateway::cli::{Cli, Command, desk};
use yrd_proto::v1::GetFeedPositionRequest;

const CHILD: &str = "YRD_FEED_TAIL_CHILD";
/// How long an event may take to be printed (a reconnect after a restart included).
const PROMPT: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::var_os(CHILD).is_some() {
        return runtime.block_on(child());
    }
    for kind in [StoreKind::Sqlite, StoreKind::Postgres] {
        runtime.block_on(async {
            let configure = |s: &mut yrd_gateway::config::Settings| {
                // Events written behind the server's back reach the stream at the next tick.
                s.feed.heartbeat_interval_ms = 200;
            };
            if let Some(app) = TestApp::spawn_with(kind, configure, Arc::new(SystemClock)).await {
                eprintln!("feed tail across restarts on {kind:?}");
                restarts_lose_and_repeat_nothing(app).await;
            }
        });
    }
    eprintln!("test result: ok");
    ExitCode::SUCCESS
}

/// The child: `yrd <args>` for a `feed` command, as the binary runs it.
async fn child() -> ExitCode {
    let cli = Cli::parse();
    let Command::Feed(command) = cli.command else {
        eprintln!("the child runs `yrd feed …` only");
        return ExitCode::FAILURE;
    };
    let mut stdout = std::io::stdout();
    let stop = async {
        tokio::signal::ctrl_c().await.ok();
    };
    match desk::feed::run(command, &mut stdout, stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yrd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A running `yrd feed tail --json` and the lines it printed.
struct Tail {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Tail {
    fn start(app_addr: &str, data_dir: &Path, cursor_file: &Path) -> Tail {
        let mut child = std::process::Command::new(std::env::current_exe().expect("own path"))
            .env(CHILD, "1")
            .args(["feed", "tail", "--json", "--cursor-file"])
            .arg(cursor_file)
            .args(["--server", app_addr, "--data-dir"])
            .arg(data_dir)
            .args(["--agency-cert", JIANGSU])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the tail");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Tail { child, lines }
    }

    /// The `event_id`s of the next `n` lines, each of which must be an event as JSON.
    async fn next(&mut self, n: usize) -> Vec<(u64, String)> {
        let mut events = Vec::new();
        while events.len() < n {
            let line = tokio::time::timeout(PROMPT, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no event within {PROMPT:?}; got {events:?}"))
                .expect("the tail exited early");
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            events.push((
                event["cursor"].as_u64().expect("cursor"),
                event["event_id"].as_str().expect("event_id").to_owned(),
            ));
        }
        events
    }

    /// Whatever else it prints within `wait`.
    async fn rest(&mut self, wait: Duration) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(Some(line)) = tokio::time::timeout(wait, self.lines.recv()).await {
            lines.push(line);
        }
        lines
    }

    /// SIGKILL: no chance to store or acknowledge anything more.
    fn kill(mut self) {
        self.child.kill().expect("kill the tail");
        self.child.wait().expect("reap the tail");
    }
}

fn ids(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|n| format!("js-{n}")).collect()
}

async fn append(app: &TestApp, range: std::ops::RangeInclusive<u32>) {
    let events: Vec<_> = range
        .map(|n| result_event(JIANGSU, &format!("js-{n}"), &format!("r{n}"), 0))
        .collect();
    app.store
        .append_feed_events(&events)
        .await
        .expect("append feed events");
}

async fn restarts_lose_and_repeat_nothing(app: TestApp) {
    let scratch = tempfile::tempdir().expect("scratch");
    let cursor_file = scratch.path().join("jiangsu.cursor");
    let data_dir = app
        .pki_dir
        .parent()
        .expect("pki in the data folder")
        .to_owned();
    let addr = app.addr.to_string();
    append(&app, 1..=5).await;
    let mut tail = Tail::start(&addr, &data_dir, &cursor_file);
    let first = tail.next(5).await;
    assert_eq!(
        first.iter().map(|e| e.1.clone()).collect::<Vec<_>>(),
        ids(1..=5)
    );

    // The exchange stops under the tail and comes back on its address a second later; events
    // committed right after the restart and live ones both arrive, once each, in order.
    let stopped = app.stop().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let app = stopped.start().await;
    append(&app, 6..=8).await;
    append(&app, 9..=10).await;
    let second = tail.next(5).await;
    assert_eq!(
        second.iter().map(|e| e.1.clone()).collect::<Vec<_>>(),
        ids(6..=10)
    );
    let extra = tail.rest(Duration::from_secs(1)).await;
    assert!(
        extra.is_empty(),
        "printed again after the restart: {extra:?}"
    );

    // The tail acknowledged what it printed, so the exchange's position followed it.
    let mut feed = app
        .client(JIANGSU, yrd_domain::Profile::System)
        .await
        .feed();
    let position = feed
        .get_feed_position(GetFeedPositionRequest {})
        .await
        .expect("position")
        .into_inner();
    assert_eq!(position.acked_cursor, second[4].0, "{position:?}");
    assert_eq!(
        std::fs::read_to_string(&cursor_file)
            .expect("cursor file")
            .trim(),
        second[4].0.to_string()
    );

    // Killed and run again, the tail resumes after its cursor file: the events appended in
    // between, nothing before them.
    tail.kill();
    append(&app, 11..=12).await;
    let mut tail = Tail::start(&addr, &data_dir, &cursor_file);
    let third = tail.next(2).await;
    assert_eq!(
        third.iter().map(|e| e.1.clone()).collect::<Vec<_>>(),
        ids(11..=12)
    );
    let extra = tail.rest(Duration::from_secs(1)).await;
    assert!(extra.is_empty(), "printed again: {extra:?}");

    // The documented redelivery: a tail killed after printing an event but before storing its
    // cursor prints it again on the next run, with the same event_id. (Simulated by putting the
    // cursor file back by one, which is what such a kill leaves behind.)
    tail.kill();
    std::fs::write(&cursor_file, format!("{}\n", third[0].0)).expect("rewind the cursor");
    let mut tail = Tail::start(&addr, &data_dir, &cursor_file);
    let again = tail.next(1).await;
    assert_eq!(
        again,
        third[1..].to_vec(),
        "the same event, same cursor and id"
    );
    tail.kill();
    drop(app);
}
