//! The connection flags every client subcommand shares: which exchange, which CA, whose
//! certificate, which officer.
//!
//! Its own module because the top-level command line (`command`) and each subcommand family
//! (`cert`, `audit`) flatten it in; none of them has to import another for it.

use std::path::PathBuf;

use clap::Args;
use yrd_domain::{AgencyId, Profile};

use yrd_client::ClientFiles;

use crate::cli::session::ConnectTarget;

/// How the client subcommands reach the exchange and whose certificate they present.
///
/// Either the explicit `--ca`/`--cert`/`--key` files, or the dev PKI under `--data-dir` for
/// `--agency-cert` and `--cert-profile`. (The latter is not called `--profile`, which the
/// `cert` subcommands use for the profile of the certificate they work on.)
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// The exchange to call.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub server: String,
    /// The name the server certificate must carry.
    #[arg(long, default_value = "localhost")]
    pub tls_name: String,
    /// The acting officer to name in the access token; it appears in the audit log.
    #[arg(long)]
    pub officer: Option<String>,
    /// Use the dev PKI of this data folder for the CA and the client certificate.
    #[arg(long, default_value = "yrd-data", conflicts_with = "cert")]
    pub data_dir: PathBuf,
    /// The agency whose dev certificate to present (the operator agency by default).
    #[arg(long, default_value = "310000-SAMR", conflicts_with = "cert")]
    pub agency_cert: AgencyId,
    /// The profile of the dev certificate to present (default: admin for `cert` and `agency`).
    #[arg(long, conflicts_with = "cert")]
    pub cert_profile: Option<Profile>,
    /// The exchange CA certificate (PEM), instead of the dev PKI's.
    #[arg(long, requires_all = ["cert", "key"])]
    pub ca: Option<PathBuf>,
    /// The client certificate (PEM), instead of the dev PKI's.
    #[arg(long, requires_all = ["ca", "key"])]
    pub cert: Option<PathBuf>,
    /// The client key (PKCS#8 PEM), instead of the dev PKI's.
    #[arg(long, requires_all = ["ca", "cert"])]
    pub key: Option<PathBuf>,
}

impl ConnectArgs {
    /// Where to connect and with which files; `default_profile` is the dev certificate's
    /// profile when `--cert-profile` is not given.
    pub fn target(&self, default_profile: Profile) -> ConnectTarget {
        let files = match (&self.ca, &self.cert, &self.key) {
            (Some(ca), Some(cert), Some(key)) => ClientFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => ClientFiles::dev(
                &self.data_dir.join("pki"),
                self.agency_cert.as_str(),
                self.cert_profile.unwrap_or(default_profile).as_str(),
            ),
        };
        ConnectTarget {
            server: self.server.clone(),
            tls_name: self.tls_name.clone(),
            files,
            officer: self.officer.clone(),
        }
    }
}
