//! The `yrd` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// yrd-exchange: the product-quality data exchange of the Yangtze River Delta.
#[derive(Debug, Parser)]
#[command(name = "yrd", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exchange. With no configuration at all it keeps its data and a dev PKI in
    /// ./yrd-data and serves on 127.0.0.1:50051.
    Serve(ServeArgs),
    /// Ask a running exchange whether it is serving (grpc.health.v1 over mTLS).
    Health(HealthArgs),
}

/// `yrd serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file; `YRD_*` environment variables override its keys.
    #[arg(long, env = "YRD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the embedded database and the dev PKI live (default ./yrd-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:50051).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// sqlite://PATH or postgres://USER@HOST/DB (a postgres:// URL switches to PostgreSQL).
    #[arg(long)]
    pub database_url: Option<String>,
}

/// `yrd health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The exchange to ask.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub server: String,
    /// The name the server certificate must carry.
    #[arg(long, default_value = "localhost")]
    pub tls_name: String,
    /// Use the dev PKI of this data folder for the CA and the client certificate.
    #[arg(long, default_value = "yrd-data")]
    pub data_dir: PathBuf,
    /// The agency whose dev certificate to present.
    #[arg(long, default_value = "310000-SAMR")]
    pub agency: String,
    /// The profile of the dev certificate to present (system, admin, auditor).
    #[arg(long, default_value = "system")]
    pub profile: String,
    /// The exchange CA certificate (overrides the dev PKI's).
    #[arg(long, requires_all = ["cert", "key"])]
    pub ca: Option<PathBuf>,
    /// The client certificate (overrides the dev PKI's).
    #[arg(long, requires_all = ["ca", "key"])]
    pub cert: Option<PathBuf>,
    /// The client key (overrides the dev PKI's).
    #[arg(long, requires_all = ["ca", "cert"])]
    pub key: Option<PathBuf>,
}
