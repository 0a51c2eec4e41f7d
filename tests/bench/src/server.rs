//! The processes under test: `yrd serve` started from its built binary on a fresh data folder
//! (SQLite) or a fresh PostgreSQL database, and the echo baseline (this binary with
//! `--echo-serve`). Both are children of the bench, so their CPU time and memory can be read
//! from `/proc` apart from the load generator's.

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use sqlx::Connection as _;

use crate::cli::StoreKind;
use crate::connect::{AGENCIES, Target};

/// A child process the bench started; killed when dropped.
#[derive(Debug)]
pub struct Process {
    child: Child,
    what: &'static str,
}

impl Process {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks it to stop (SIGTERM through `kill`, so no `unsafe` here) and waits up to `grace`;
    /// kills it after that.
    pub fn stop(mut self, grace: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "yrd-bench: {} did not stop within {grace:?}; killing it",
            self.what
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A running `yrd serve` and what it was started on.
#[derive(Debug)]
pub struct YrdServer {
    /// The process.
    pub process: Process,
    /// Where it listens, with its dev PKI.
    pub target: Target,
    /// Its dev PKI folder (the echo server is served with the same certificates).
    pub pki: PathBuf,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
    /// The throw-away PostgreSQL database, dropped after the server stopped (the first server
    /// owns it; its replicas share it).
    database: Option<PgDatabase>,
    /// Where it was started: the database URL and, for a replica, the shared PKI.
    serve: Serve,
    /// The `yrd` binary, for a restart.
    binary: PathBuf,
    /// The data folder, for a restart.
    data_dir: PathBuf,
}

/// The settings the bench changes from the defaults, as `YRD_*` variables: the per-agency rate
/// and concurrency limits are lifted so the bench measures the server, not its limiter (at the
/// default 500 calls/s one agency's quota, not the server, would cap a fast path).
const LIFTED_LIMITS: [(&str, &str); 3] = [
    ("YRD_LIMITS__AGENCY_RATE_PER_SECOND", "1000000"),
    ("YRD_LIMITS__AGENCY_BURST", "1000000"),
    ("YRD_LIMITS__AGENCY_CONCURRENCY", "100000"),
];

impl YrdServer {
    /// Starts `yrd` (`binary`) serving on `store` with its data in `data_dir`, and waits until
    /// it answers a health check.
    pub async fn start(
        binary: &Path,
        store: StoreKind,
        postgres_url: &str,
        data_dir: &Path,
    ) -> anyhow::Result<YrdServer> {
        Self::start_with(binary, store, postgres_url, data_dir, &[]).await
    }

    /// [`Self::start`] with more settings, as `YRD_*` variables (`("YRD_STORE__ACQUIRE_TIMEOUT_MS",
    /// "1500")`); a restart or a replica keeps them.
    pub async fn start_with(
        binary: &Path,
        store: StoreKind,
        postgres_url: &str,
        data_dir: &Path,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<YrdServer> {
        let database = match store {
            StoreKind::Sqlite => None,
            StoreKind::Postgres => Some(PgDatabase::create(postgres_url).await?),
        };
        let log = data_dir.join("yrd.log");
        let pki = data_dir.join("pki");
        let serve = Serve {
            database_url: database.as_ref().map(|db| db.url.clone()),
            shared_pki: None,
            settings: settings
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        };
        let (process, target) = match spawn(binary, data_dir, &serve, &log) {
            Ok(started) => started,
            Err(e) => {
                if let Some(db) = database {
                    db.drop_database().await?;
                }
                return Err(e);
            }
        };
        let server = YrdServer {
            process,
            target,
            pki,
            log,
            database,
            serve,
            binary: binary.to_owned(),
            data_dir: data_dir.to_owned(),
        };
        let mut server = server;
        server.wait_ready().await?;
        Ok(server)
    }

    /// Starts another replica of this (PostgreSQL) server: `yrd serve` on the same database,
    /// serving the same PKI as an operator's replicas do, by naming its files
    /// (`YRD_TLS__CA_CERT`, `YRD_TLS__CA_KEY`, `YRD_TLS__SERVER_CERT`, `YRD_TLS__SERVER_KEY`)
    /// rather than making a dev PKI of its own; its log goes to `data_dir`. Waits until it
    /// answers a health check. The first server must outlive its replicas: it drops the
    /// database when stopped.
    pub async fn start_replica(&self, data_dir: &Path) -> anyhow::Result<YrdServer> {
        let Some(url) = self.serve.database_url.clone() else {
            anyhow::bail!("replicas share a PostgreSQL database; this server runs on SQLite");
        };
        let serve = Serve {
            database_url: Some(url),
            shared_pki: Some(self.pki.clone()),
            settings: self.serve.settings.clone(),
        };
        let log = data_dir.join("yrd.log");
        let (process, target) = spawn(&self.binary, data_dir, &serve, &log)?;
        let mut replica = YrdServer {
            process,
            target,
            pki: self.pki.clone(),
            log,
            database: None,
            serve,
            binary: self.binary.clone(),
            data_dir: data_dir.to_owned(),
        };
        replica.wait_ready().await?;
        Ok(replica)
    }

    /// Whether the process is still running (false after [`Self::crash`] or when it exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.process.child.try_wait(), Ok(None))
    }

    /// Kills the server with SIGKILL (`Child::kill`), as a power cut or the OOM killer would:
    /// no shutdown code runs, nothing is flushed. Waits until the process is gone.
    pub fn crash(&mut self) -> anyhow::Result<()> {
        self.process
            .child
            .kill()
            .context("sending SIGKILL to yrd serve")?;
        self.process
            .child
            .wait()
            .context("waiting for the killed yrd serve")?;
        Ok(())
    }

    /// Starts `yrd serve` again on the same data folder and database (after [`Self::crash`] or
    /// a stop), on a new free port, and waits until it answers a health check. Its output is
    /// appended to the same log.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if matches!(self.process.child.try_wait(), Ok(None)) {
            anyhow::bail!("yrd serve (pid {}) is still running", self.process.pid());
        }
        let (process, target) = spawn(&self.binary, &self.data_dir, &self.serve, &self.log)?;
        self.process = process;
        self.target = target;
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.process.child.try_wait() {
                anyhow::bail!(
                    "yrd serve exited ({status}) before it answered; its log: {}",
                    self.log.display()
                );
            }
            let outcome = async {
                let channel = self.target.channel(AGENCIES[0].0).await?;
                tonic_health::pb::health_client::HealthClient::new(channel)
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await?;
                anyhow::Ok(())
            }
            .await;
            match outcome {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() > deadline => {
                    return Err(e.context(format!(
                        "yrd serve did not answer within 60 s; its log: {}",
                        self.log.display()
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Stops the server gracefully, then drops its PostgreSQL database.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.process.stop(Duration::from_secs(20));
        if let Some(db) = self.database {
            db.drop_database().await?;
        }
        Ok(())
    }
}

/// What a `yrd serve` is started on besides its data folder.
#[derive(Debug, Clone)]
struct Serve {
    /// `--database-url` (none: the data folder's SQLite database).
    database_url: Option<String>,
    /// A replica: the PKI folder of the first server, whose files it is told to serve (none: the
    /// dev PKI under the data folder, made on first start).
    shared_pki: Option<PathBuf>,
    /// Settings beyond the bench's own, as `YRD_*` variables.
    settings: Vec<(String, String)>,
}

/// Starts `binary serve` on `data_dir` (and what `serve` names) on a free port, its stdout and
/// stderr appended to `log`; does not wait for it.
fn spawn(
    binary: &Path,
    data_dir: &Path,
    serve: &Serve,
    log: &Path,
) -> anyhow::Result<(Process, Target)> {
    let addr = free_port()?;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening the server log {}", log.display()))?;
    let mut command = Command::new(binary);
    // `yrd serve` reads `YRD_*` variables as settings and refuses unknown ones; the caller's
    // (the bench's own `YRD_BENCH_POSTGRES_URL`, a test's knobs, a developer's shell) must not
    // change or break the server under test, so it gets none of them but the log filter.
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("YRD_") && name != "YRD_LOG" {
            command.env_remove(&key);
        }
    }
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(addr.to_string())
        .envs(LIFTED_LIMITS)
        .envs(serve.settings.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    if let Some(url) = &serve.database_url {
        command.arg("--database-url").arg(url);
    }
    let pki = match &serve.shared_pki {
        Some(pki) => {
            command
                .env("YRD_TLS__CA_CERT", pki.join("ca.pem"))
                .env("YRD_TLS__CA_KEY", pki.join("ca.key"))
                .env("YRD_TLS__SERVER_CERT", pki.join("server.pem"))
                .env("YRD_TLS__SERVER_KEY", pki.join("server.key"));
            pki.clone()
        }
        None => data_dir.join("pki"),
    };
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let process = Process {
        child,
        what: "yrd serve",
    };
    Ok((process, Target::new(addr, &pki)))
}

/// The echo baseline: this binary serving `EchoService` behind the exchange's acceptor.
#[derive(Debug)]
pub struct EchoServer {
    /// The process.
    pub process: Process,
    /// Where it listens (with the same PKI as the `yrd serve` it is compared with).
    pub target: Target,
}

impl EchoServer {
    /// Starts `this_binary --echo-serve <pki>` and reads the address it prints.
    pub fn start(this_binary: &Path, pki: &Path) -> anyhow::Result<EchoServer> {
        let mut child = Command::new(this_binary)
            .arg("--echo-serve")
            .arg(pki)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the echo server")?;
        let stdout = child.stdout.take().context("the echo server's stdout")?;
        let process = Process {
            child,
            what: "the echo server",
        };
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening ")
            .with_context(|| format!("the echo server said {line:?}"))?
            .parse()?;
        Ok(EchoServer {
            process,
            target: Target::new(addr, pki),
        })
    }
}

/// A port free a moment ago on 127.0.0.1 (`yrd serve` is told where to listen).
fn free_port() -> anyhow::Result<SocketAddr> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(probe.local_addr()?)
}

/// A database the bench created on a PostgreSQL server, and drops afterwards.
#[derive(Debug)]
struct PgDatabase {
    /// The URL the bench was given (its database is where `CREATE DATABASE` runs).
    admin_url: String,
    /// The new database's name.
    name: String,
    /// The new database's URL.
    url: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> anyhow::Result<PgDatabase> {
        let stamp = yrd_domain::clock::Clock::now(&yrd_domain::clock::SystemClock).unix_timestamp();
        let name = format!("yrd_bench_{}_{stamp}", std::process::id());
        let url = with_database(admin_url, &name)?;
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {admin_url}"))?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        Ok(PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    async fn drop_database(self) -> anyhow::Result<()> {
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        Ok(())
    }
}

/// `url` with its database (the path) replaced by `name`, query kept.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|at| at + 3)
        .context("a postgres:// URL")?;
    let root = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    Ok(match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        let url = |u| with_database(u, "bench").expect("a URL");
        assert_eq!(
            url("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/bench"
        );
        assert_eq!(url("postgres://h"), "postgres://h/bench");
        assert_eq!(
            url("postgres://u:p@h/db?sslmode=disable"),
            "postgres://u:p@h/bench?sslmode=disable"
        );
    }
}
