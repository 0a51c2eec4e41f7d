//! `yrd cert dev-pki`: issues the dev PKI `yrd serve` makes in its data folder, into any
//! folder, without a database — the one-shot step of the compose topology that fills the PKI
//! volume before the replicas start (README "Running the compose topology").

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_domain::ids::DELTA_AGENCIES;
use yrd_domain::{AgencyId, Profile};
use yrd_pki::DevPki;

use crate::cli::cert::CliError;

/// The operator agency of the dev PKI (the default `operator_agency`).
const OPERATOR: &str = "310000-SAMR";

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
    /// Also write the operator's (310000-SAMR) system certificate followed by its key into
    /// this one PEM file (mode 0600, rewritten each run): what a load balancer presents in its
    /// TLS health checks (HAProxy's `crt`).
    #[arg(long, value_name = "FILE")]
    pub check_bundle: Option<PathBuf>,
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
    if let Some(bundle) = &args.check_bundle {
        write_bundle(&pki, bundle)?;
        writeln!(
            out,
            "bundle       {} (310000-SAMR system certificate and key)",
            bundle.display()
        )?;
    }
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

/// Writes the operator's system certificate and key, concatenated, to `path` (mode 0600).
fn write_bundle(pki: &DevPki, path: &Path) -> Result<(), CliError> {
    let operator = AgencyId::parse(OPERATOR).map_err(|e| CliError::Write {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
    })?;
    let mut pem = Vec::new();
    for file in [
        pki.agency_cert(&operator, Profile::System),
        pki.agency_key(&operator, Profile::System),
    ] {
        let bytes = std::fs::read(&file).map_err(|source| CliError::Read {
            path: file.clone(),
            source,
        })?;
        pem.extend_from_slice(&bytes);
        if !pem.ends_with(b"\n") {
            pem.push(b'\n');
        }
    }
    let write = |source| CliError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(write)?;
    file.write_all(&pem).map_err(write)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_pki_and_its_check_bundle_are_written_and_kept() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let pki_dir = dir.path().join("pki");
        let bundle = pki_dir.join("lb-check.pem");
        let args = DevPkiArgs {
            out: pki_dir.clone(),
            server_names: vec!["lb".to_owned()],
            check_bundle: Some(bundle.clone()),
        };
        let mut out = Vec::new();
        dev_pki(&args, &mut out).expect("the dev PKI is written");
        let text = String::from_utf8_lossy(&out).into_owned();
        assert!(text.contains(", lb"), "{text}");
        let ca = std::fs::read(pki_dir.join("ca.pem")).expect("ca.pem");
        assert!(pki_dir.join("server.key").is_file());

        let pem = std::fs::read_to_string(&bundle).expect("the bundle");
        let cert = std::fs::read_to_string(pki_dir.join("agencies/310000-SAMR/system.pem"))
            .expect("the operator's system certificate");
        let key = std::fs::read_to_string(pki_dir.join("agencies/310000-SAMR/system.key"))
            .expect("its key");
        assert!(pem.starts_with(&cert) && pem.ends_with(&key), "{pem}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&bundle)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "the bundle holds a private key");
        }

        // A second run keeps the CA (certificates handed out stay valid).
        dev_pki(&args, &mut Vec::new()).expect("the second run succeeds");
        assert_eq!(std::fs::read(pki_dir.join("ca.pem")).expect("ca.pem"), ca);
    }
}
