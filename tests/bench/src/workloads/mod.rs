//! The workloads: each builds its clients, hands the shared generator ([`crate::load`]) one
//! call, and turns what it measured into report rows compared with an echo row.
//!
//! Connections are spread over the five agencies round-robin, each with its own bound token,
//! so the load looks like several partner systems, not one.

pub mod disposal;
pub mod feed;
pub mod results;
pub mod tree_head;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use futures::{FutureExt as _, StreamExt as _};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use yrd_proto::v1 as pb;
use yrd_proto::v1::spot_check_service_client::SpotCheckServiceClient;

use crate::cli::{Args, Workload};
use crate::connect::{AGENCIES, Target, failure};
use crate::echo;
use crate::echo::pb::echo_service_client::EchoServiceClient;
use crate::load::{self, CallFn, Plan, Slot, Watched};
use crate::report::Row;
use results::{Corpus, Search};

/// The echo row unary workloads are compared with.
pub const ECHO: &str = "echo";
/// The echo row the handshake workload is compared with.
pub const ECHO_HANDSHAKE: &str = "echo-handshake";

/// One store's run: the server, its echo, and what the workloads share.
#[derive(Debug)]
pub struct Context {
    /// The command line.
    pub args: Args,
    /// `sqlite` or `postgres`.
    pub store: &'static str,
    /// `yrd serve`.
    pub yrd: Target,
    /// Its process, watched for CPU and memory.
    pub yrd_watch: Watched,
    /// The echo baseline.
    pub echo: Target,
    /// Its process.
    pub echo_watch: Watched,
    /// Results published so far in this run.
    pub corpus: Corpus,
    /// Distinguishes this run's request ids from any earlier run's.
    pub run_id: String,
    /// Numbers the seed publications (so their request ids never repeat).
    seeded: AtomicU64,
    /// Numbers the windows of this run that write (so their request ids never repeat, even
    /// when a soak runs a workload many times).
    windows: AtomicU64,
    /// Calls per second of this run's closed-loop publish row, once it ran.
    publish_max: Mutex<Option<f64>>,
}

impl Context {
    /// A context for one store's run.
    pub fn new(
        args: Args,
        store: &'static str,
        (yrd, yrd_watch): (Target, Watched),
        (echo, echo_watch): (Target, Watched),
    ) -> Context {
        Context {
            args,
            store,
            yrd,
            yrd_watch,
            echo,
            echo_watch,
            corpus: Corpus::default(),
            run_id: format!(
                "{}-{}",
                std::process::id(),
                yrd_domain::clock::Clock::now(&yrd_domain::clock::SystemClock).unix_timestamp()
            ),
            seeded: AtomicU64::new(0),
            windows: AtomicU64::new(0),
            publish_max: Mutex::new(None),
        }
    }

    /// The `yrd serve` process for the generator to watch in workload `name`'s window (and
    /// profile, with `--profile`).
    pub fn watch_yrd(&self, name: &str) -> Watched {
        self.watched(&self.yrd_watch, name)
    }

    /// The echo process, watched as [`Context::watch_yrd`] watches the server.
    pub fn watch_echo(&self, name: &str) -> Watched {
        self.watched(&self.echo_watch, name)
    }

    fn watched(&self, base: &Watched, name: &str) -> Watched {
        Watched {
            profile: self
                .args
                .profile
                .as_ref()
                .map(|dir| dir.join(format!("{}-{name}.perf.data", self.store))),
            ..base.clone()
        }
    }

    /// The generator plan of the command line.
    pub fn plan(&self) -> Plan {
        Plan {
            connections: self.args.connections.max(1),
            concurrency: self.args.concurrency(),
            warmup: self.args.warmup,
            duration: self.args.duration,
            rate: self.args.rate,
        }
    }

    /// How the plan reads in the report.
    pub fn load_label(&self) -> String {
        self.plan_label(&self.plan())
    }

    fn row(&self, workload: &str, baseline: &str, m: &load::Measured) -> Row {
        Row::new(workload, self.store, &self.load_label(), baseline, m)
    }

    /// The request-id prefix of a window of workload `what`: this run's, numbered, so that no
    /// two windows send the same request id (a repeated one would be answered from the store).
    pub fn request_prefix(&self, what: &str) -> String {
        let window = self.windows.fetch_add(1, Ordering::Relaxed);
        format!("{}-{what}-{window}", self.run_id)
    }

    /// How `plan` reads in the report.
    fn plan_label(&self, plan: &Plan) -> String {
        let shape = format!("{}x{}", self.args.connections, self.args.in_flight);
        match plan.rate {
            Some(rate) => format!("open {}/s {shape}", (rate * 10.0).round() / 10.0),
            None => format!("closed {shape}"),
        }
    }

    /// Runs `workload` and answers its rows.
    pub async fn run(&self, workload: Workload) -> anyhow::Result<Vec<Row>> {
        match workload {
            Workload::All => Ok(Vec::new()),
            Workload::Health => self.health().await,
            Workload::Publish => self.publish().await,
            Workload::PublishHalf => self.publish_half().await,
            Workload::Get => self.get().await,
            Workload::Search => self.search().await,
            Workload::Feed => feed::run(self).await,
            Workload::TreeHead => tree_head::run(self).await,
            Workload::Disposal => disposal::run(self).await,
            Workload::Handshake => self.handshake().await,
        }
    }

    /// The baselines: echo calls on N connections, and a new connection per echo call.
    pub async fn echo_baselines(&self) -> anyhow::Result<Vec<Row>> {
        let mut clients = Vec::new();
        for i in 0..self.args.connections.max(1) {
            clients.push(EchoServiceClient::new(
                self.echo.channel(AGENCIES[i % AGENCIES.len()].0).await?,
            ));
        }
        let message = echo::message();
        let call: CallFn = Arc::new(move |slot: Slot| {
            let mut client = clients[slot.conn].clone();
            let message = message.clone();
            async move {
                let answer = client.echo(message).await.map_err(|s| failure(&s))?;
                if answer.get_ref().payload.len() == echo::PAYLOAD_BYTES {
                    Ok(())
                } else {
                    Err("the echo answered another message".to_owned())
                }
            }
            .boxed()
        });
        let unary = load::drive(self.plan(), Some(self.watch_echo(ECHO)), call).await;

        let endpoints = (0..AGENCIES.len())
            .map(|i| self.echo.endpoint(AGENCIES[i].0))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let message = echo::message();
        let call: CallFn = Arc::new(move |slot: Slot| {
            let endpoint = endpoints[slot.conn % endpoints.len()].clone();
            let message = message.clone();
            async move {
                let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
                EchoServiceClient::new(channel)
                    .echo(message)
                    .await
                    .map_err(|s| failure(&s))?;
                Ok(())
            }
            .boxed()
        });
        let handshake = load::drive(self.plan(), Some(self.watch_echo(ECHO_HANDSHAKE)), call).await;
        Ok(vec![
            self.row(ECHO, ECHO, &unary),
            self.row(ECHO_HANDSHAKE, ECHO_HANDSHAKE, &handshake),
        ])
    }

    /// `Health/Check` on N connections: every layer of the exchange, no handler work.
    async fn health(&self) -> anyhow::Result<Vec<Row>> {
        let mut clients = Vec::new();
        for i in 0..self.args.connections.max(1) {
            clients.push(HealthClient::new(
                self.yrd.channel(AGENCIES[i % AGENCIES.len()].0).await?,
            ));
        }
        let call: CallFn = Arc::new(move |slot: Slot| {
            let mut client = clients[slot.conn].clone();
            async move {
                client
                    .check(HealthCheckRequest::default())
                    .await
                    .map_err(|s| failure(&s))?;
                Ok(())
            }
            .boxed()
        });
        let m = load::drive(self.plan(), Some(self.watch_yrd("health")), call).await;
        Ok(vec![self.row("health", ECHO, &m)])
    }

    /// `PublishResult`: non-conforming results, each opening a referral. In closed loop its
    /// rate is the maximum `publish-half` halves.
    async fn publish(&self) -> anyhow::Result<Vec<Row>> {
        let plan = self.plan();
        let m = self.publish_window("publish", plan).await?;
        if plan.rate.is_none() {
            *self.publish_max.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(m.ok as f64 / m.window.as_secs_f64().max(1e-9));
        }
        Ok(vec![self.row("publish", ECHO, &m)])
    }

    /// The publishes of `publish` in open loop at half of their closed-loop maximum: the
    /// latency of a server that keeps up. The maximum is the `publish` row of this run when it
    /// ran in closed loop, or else a closed-loop `publish-max` row measured first.
    async fn publish_half(&self) -> anyhow::Result<Vec<Row>> {
        let mut rows = Vec::new();
        let known = *self.publish_max.lock().unwrap_or_else(|p| p.into_inner());
        let max = match known {
            Some(max) => max,
            None => {
                let plan = Plan {
                    rate: None,
                    ..self.plan()
                };
                let m = self.publish_window("publish-max", plan).await?;
                rows.push(Row::new(
                    "publish-max",
                    self.store,
                    &self.plan_label(&plan),
                    ECHO,
                    &m,
                ));
                m.ok as f64 / m.window.as_secs_f64().max(1e-9)
            }
        };
        anyhow::ensure!(
            max >= 1.0,
            "publish-half: the closed-loop publish rate was {max:.1}/s, nothing to halve"
        );
        let plan = Plan {
            rate: Some(max / 2.0),
            ..self.plan()
        };
        let m = self.publish_window("publish-half", plan).await?;
        rows.push(Row::new(
            "publish-half",
            self.store,
            &self.plan_label(&plan),
            ECHO,
            &m,
        ));
        Ok(rows)
    }

    /// Publishes under `plan`, measured as workload `name`.
    async fn publish_window(&self, name: &str, plan: Plan) -> anyhow::Result<load::Measured> {
        let sessions = self
            .yrd
            .sessions(self.args.connections.max(1), |i| i)
            .await?;
        let call = results::publish_call(
            sessions,
            self.corpus.clone(),
            self.request_prefix("publish"),
            false,
            |conn| conn % AGENCIES.len(),
            |_, _| Ok(()),
        );
        Ok(load::drive(plan, Some(self.watch_yrd(name)), call).await)
    }

    /// Publishes results until each agency with a connection has published `--seed / 5` (at
    /// least one), N × M at a time: the corpus `get` and `search` read.
    pub async fn seed(&self) -> anyhow::Result<()> {
        let agencies = self.args.connections.clamp(1, AGENCIES.len());
        let per_agency = (self.args.seed / AGENCIES.len()).max(1);
        let sessions = self.yrd.sessions(agencies, |i| i).await?;
        let run = format!("{}-seed", self.run_id);
        let mut wanted = Vec::new();
        for (agency, _) in sessions.iter().enumerate() {
            for _ in self.corpus.count(agency)..per_agency {
                wanted.push(agency);
            }
        }
        let failures: Vec<String> = futures::stream::iter(wanted)
            .map(|agency| {
                let seq = self.seeded.fetch_add(1, Ordering::Relaxed);
                let client = sessions[agency].clone();
                let run = &run;
                async move {
                    results::publish(client, run, agency, seq, false, &self.corpus)
                        .await
                        .err()
                }
            })
            .buffer_unordered(self.args.concurrency())
            .filter_map(|failed| async move { failed })
            .collect()
            .await;
        match failures.first() {
            None => Ok(()),
            Some(first) => anyhow::bail!("seeding failed {} times: {first}", failures.len()),
        }
    }

    /// `GetResult` of results the caller's agency published.
    async fn get(&self) -> anyhow::Result<Vec<Row>> {
        self.seed().await.context("seeding the corpus for get")?;
        let sessions = self
            .yrd
            .sessions(self.args.connections.max(1), |i| i)
            .await?;
        let corpus = self.corpus.clone();
        let call: CallFn = Arc::new(move |slot: Slot| {
            let mut client = SpotCheckServiceClient::new(sessions[slot.conn].clone());
            let picked = corpus.pick(slot.conn % AGENCIES.len(), slot.seq.wrapping_mul(7919));
            async move {
                let name = picked.ok_or("no result to get")?.name;
                let got = client
                    .get_result(pb::GetResultRequest { name: name.clone() })
                    .await
                    .map_err(|s| failure(&s))?;
                match got.into_inner().result {
                    Some(r) if r.name == name => Ok(()),
                    other => Err(format!("asked for {name}, got {other:?}")),
                }
            }
            .boxed()
        });
        let m = load::drive(self.plan(), Some(self.watch_yrd("get")), call).await;
        Ok(vec![self.row("get", ECHO, &m)])
    }

    /// `SearchResults`, one row per kind of search; every search must find something.
    async fn search(&self) -> anyhow::Result<Vec<Row>> {
        self.seed().await.context("seeding the corpus for search")?;
        let sessions = Arc::new(
            self.yrd
                .sessions(self.args.connections.max(1), |i| i)
                .await?,
        );
        let mut rows = Vec::new();
        for search in Search::EVERY {
            let corpus = self.corpus.clone();
            let sessions = sessions.clone();
            let call: CallFn = Arc::new(move |slot: Slot| {
                let mut client = SpotCheckServiceClient::new(sessions[slot.conn].clone());
                let request = search.request(slot.conn % AGENCIES.len(), slot.seq, &corpus);
                async move {
                    let found = client
                        .search_results(request.clone())
                        .await
                        .map_err(|s| failure(&s))?;
                    if found.get_ref().results.is_empty() {
                        return Err(format!("{} found nothing for {request:?}", search.row()));
                    }
                    Ok(())
                }
                .boxed()
            });
            let m = load::drive(self.plan(), Some(self.watch_yrd(search.row())), call).await;
            rows.push(self.row(search.row(), ECHO, &m));
        }
        Ok(rows)
    }

    /// A new connection per call (TCP, TLS 1.3 with the client certificate, HTTP/2) and one
    /// `Health/Check` on it.
    async fn handshake(&self) -> anyhow::Result<Vec<Row>> {
        let endpoints = (0..AGENCIES.len())
            .map(|i| self.yrd.endpoint(AGENCIES[i].0))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let call: CallFn = Arc::new(move |slot: Slot| {
            let endpoint = endpoints[slot.conn % endpoints.len()].clone();
            async move {
                let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
                HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await
                    .map_err(|s| failure(&s))?;
                Ok(())
            }
            .boxed()
        });
        let m = load::drive(self.plan(), Some(self.watch_yrd("handshake")), call).await;
        Ok(vec![self.row("handshake", ECHO_HANDSHAKE, &m)])
    }
}
