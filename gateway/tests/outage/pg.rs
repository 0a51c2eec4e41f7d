//! A private PostgreSQL instance of the test: its own cluster (`initdb`) in a temporary folder,
//! started with `pg_ctl` on a free port, its Unix socket in that folder too, so that stopping
//! it (`pg_ctl stop -m immediate`) touches nobody else's database. As root the binaries run
//! as the `postgres` user (`runuser`), since PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// One PostgreSQL cluster of the test; stopped (immediately) when dropped.
pub(crate) struct PrivatePostgres {
    bin: PathBuf,
    /// The folder holding the cluster, its socket and its log; removed when dropped.
    dir: tempfile::TempDir,
    port: u16,
    /// `Some(user)`: run the binaries as this user (we are root).
    run_as: Option<&'static str>,
}

/// Where PostgreSQL's server binaries are: the newest `/usr/lib/postgresql/<version>/bin` with
/// `initdb` and `pg_ctl`, or the folder of `pg_ctl` on `PATH`.
pub(crate) fn find_binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

impl PrivatePostgres {
    /// A new cluster (trust authentication for `postgres` over TCP on 127.0.0.1), started.
    pub(crate) fn start(bin: &Path) -> anyhow::Result<PrivatePostgres> {
        let dir = tempfile::Builder::new()
            .prefix("yrd-outage-pg-")
            .tempdir()?;
        let root = running_as_root();
        if root {
            // The cluster's files belong to the user the server runs as.
            run(
                Command::new("chown").arg("postgres:").arg(dir.path()),
                "chown",
            )?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let pg = PrivatePostgres {
            bin: bin.to_owned(),
            dir,
            port,
            run_as: root.then_some("postgres"),
        };
        let data = pg.data();
        let mut initdb = pg.command("initdb");
        initdb
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--no-sync",
            ])
            .arg("--pgdata")
            .arg(&data);
        run(&mut initdb, "initdb")?;
        pg.start_again()?;
        Ok(pg)
    }

    /// The URL of its `postgres` database (the bench creates its own database beside it).
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the (stopped) cluster and waits until it accepts connections (`pg_ctl -w`).
    pub(crate) fn start_again(&self) -> anyhow::Result<()> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let mut start = self.pg_ctl();
        start
            .args(["start", "-w", "-t", "60", "-o", &options, "-l"])
            .arg(self.dir.path().join("postgres.log"));
        run(&mut start, "pg_ctl start")
    }

    /// `pg_ctl stop -m immediate`: every server process quits at once, without a checkpoint, as
    /// in a crash; open connections break.
    pub(crate) fn stop_immediate(&self) -> anyhow::Result<()> {
        let mut stop = self.pg_ctl();
        stop.args(["stop", "-w", "-m", "immediate"]);
        run(&mut stop, "pg_ctl stop -m immediate")
    }

    /// The last lines of its log, for a failure.
    pub(crate) fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(20).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self) -> Command {
        let mut command = self.command("pg_ctl");
        command.arg("-D").arg(self.data());
        command
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .pg_ctl()
            .args(["stop", "-w", "-m", "immediate"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Runs `command`; an error with its output when it fails.
fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = command
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Whether this process runs as root (`id -u` answers 0).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
