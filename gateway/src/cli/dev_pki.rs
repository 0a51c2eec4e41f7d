//! `yrd cert dev-pki`: issues the dev PKI `yrd serve` makes in its data folder, into any
//! folder, without a database — the one-shot step of the compose topology that fills the PKI
//! volume before the replicas start (README "Running the compose topology").

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use yrd_domain::AgencyId;
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_domain::ids::DELTA_AGENCIES;
use yrd_pki::DevPki;

use crate::cli::cert::CliError;

/// `yrd cert dev-pki`.
#[derive(Debug, Args)]
pub struct DevPkiArgs {
    /// Folder to write the dev PKI into (ca.pem, ca.key, server.pem, server.key,
    /// agencies/<agency id>/<profile>.pem and .key). What is there and still good is kept.
    #[arg(long)]
    pub out: PathBuf,
    /// A DNS name or IP address the server certificate must carry besides localhost, e.g. the
    /// load balancer's name. Repeat for several.
    #[arg(long = "server-name", value_name = "NAME")]
    pub server_names: Vec<String>,
}

/// Makes (or completes) the dev PKI under `args.out` for the five Delta province agencies
/// (`docs/domain.md` §"Parties"), as `yrd serve` does for its data folder.
pub fn dev_pki(args: &DevPkiArgs, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    // Constants the domain's own tests prove well-formed.
    let agencies: Vec<AgencyId> = DELTA_AGENCIES
        .iter()
        .filter_map(|(id, _, _)| AgencyId::parse(id).ok())
        .collect();
    // rustls checks certificates against the system clock, so the dev PKI is made by it too.
    let pki = DevPki::ensure(&args.out, &agencies, &args.server_names, SystemClock.now()).map_err(
        |source| CliError::Pki {
            action: "make the dev PKI",
            source,
        },
    )?;
    let dir = pki.dir().display();
    writeln!(out, "dev PKI in {dir}")?;
    writeln!(out, "  CA:      {dir}/ca.pem (key ca.key)")?;
    writeln!(
        out,
        "  server:  {dir}/server.pem for localhost, 127.0.0.1, ::1{}",
        args.server_names
            .iter()
            .map(|n| format!(", {n}"))
            .collect::<String>()
    )?;
    writeln!(
        out,
        "  clients: {dir}/agencies/<agency id>/<system|admin|auditor>.pem and .key"
    )?;
    Ok(())
}
