//! The `yrd` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use yrd_domain::{AgencyId, Profile};
use yrd_pki::RevocationReason;

pub use crate::cli::connect::ConnectArgs;

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
    /// Client certificates (证书): make a CA, request, issue, list, revoke, fetch the CRL.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Agencies (市场监督管理部门) admitted to the exchange: onboard, list, suspend, resume.
    #[command(subcommand)]
    Agency(AgencyCommand),
    /// The exchange log (交换日志), for auditors: query, show, verify, export, tail.
    #[command(subcommand)]
    Audit(crate::cli::audit::command::AuditCommand),
    /// Spot-check results (监督抽查结果) in and out of spreadsheets: import, export.
    #[command(subcommand)]
    Results(crate::cli::results::ResultsCommand),
    /// Bring the store's schema up to date and exit (a one-shot step before replicas start).
    Migrate(crate::cli::ops::StoreArgs),
    /// Copy the embedded SQLite store while it serves, and verify the copy's exchange log.
    Backup(crate::cli::ops::BackupArgs),
    /// The agency's own feed of events (消息订阅): `tail` prints it as it comes.
    #[command(subcommand)]
    Feed(crate::cli::desk::command::FeedCommand),
    /// Referrals of non-conforming products (不合格产品联动处置): list, show, take a step.
    #[command(subcommand)]
    Referral(crate::cli::desk::command::ReferralCommand),
    /// Production-licence applications (沪鲁通办): list, show, take a step.
    #[command(subcommand)]
    Application(crate::cli::desk::command::ApplicationCommand),
    /// A local web console (loopback only) for auditors, officers and admins: the log verified
    /// here, referrals and applications with their deadlines, certificates and the CRL.
    Console(crate::cli::console::ConsoleArgs),
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

/// `yrd cert …`: the certificate lifecycle. `init-ca` and `request` work offline; the others
/// call `AdminService` with an admin certificate of the operator agency.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Make a new exchange CA (ca.pem, ca.key) for a production install.
    InitCa(InitCaArgs),
    /// Partner side: make a P-256 key and a certificate signing request. Only the CSR is sent.
    Request(RequestArgs),
    /// Admin: issue a certificate from a partner's CSR.
    Issue(IssueArgs),
    /// Admin: list certificates (all pages), as a table or JSON.
    List(ListArgs),
    /// Admin: revoke a certificate; it stops working at once.
    Revoke(RevokeArgs),
    /// Admin: fetch the current certificate revocation list.
    Crl(CrlArgs),
    /// Write the dev PKI (CA, server and agency certificates) into a folder, offline.
    DevPki(crate::cli::dev_pki::DevPkiArgs),
}

/// `yrd cert init-ca`.
#[derive(Debug, Args)]
pub struct InitCaArgs {
    /// Folder to write ca.pem and ca.key (mode 0600) into; existing files are never replaced.
    #[arg(long)]
    pub out: PathBuf,
    /// The CA's common name.
    #[arg(long, default_value = "yrd-exchange CA")]
    pub common_name: String,
    /// How long the CA is valid, in days.
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: u32,
}

/// `yrd cert request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The agency the certificate is for, e.g. 370000-AMR.
    #[arg(long)]
    pub agency: AgencyId,
    /// The certificate's profile: system, admin or auditor.
    #[arg(long)]
    pub profile: Profile,
    /// Folder to write <agency>-<profile>.key (mode 0600) and .csr into.
    #[arg(long)]
    pub out: PathBuf,
}

/// `yrd cert issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The partner's certificate signing request (PEM).
    #[arg(long)]
    pub csr: PathBuf,
    /// The agency the certificate is for; the CSR must name the same.
    #[arg(long)]
    pub agency: AgencyId,
    /// The profile to certify: system, admin or auditor; the CSR must ask for the same.
    #[arg(long)]
    pub profile: Profile,
    /// Validity in days (default: the exchange's maximum, 90 days unless configured).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: Option<u32>,
    /// Where to write the certificate (default: the CSR's path with `.pem`); the chain goes
    /// beside it as `<name>.chain.pem`. Existing files are never replaced.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// A certificate's lifecycle state, as `yrd cert list --state` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CertState {
    /// Valid now and not revoked.
    Active,
    /// Revoked.
    Revoked,
    /// Past its end of validity.
    Expired,
}

/// `yrd cert list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only certificates of this agency.
    #[arg(long)]
    pub agency: Option<AgencyId>,
    /// Only certificates of this profile: system, admin or auditor.
    #[arg(long)]
    pub profile: Option<Profile>,
    /// Only certificates in this state.
    #[arg(long, value_enum)]
    pub state: Option<CertState>,
    /// Only certificates that expire within this many days (due for rotation).
    #[arg(long, value_name = "DAYS")]
    pub expiring_within: Option<u32>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Certificates asked for per call (the listing always fetches every page).
    #[arg(long, default_value_t = 500, hide = true, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub page_size: u32,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd cert revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The certificate's serial (hex, as `yrd cert list` shows it) or `certificates/<serial>`.
    #[arg(value_parser = parse_serial)]
    pub serial: String,
    /// RFC 5280 reason: unspecified, key-compromise, ca-compromise, affiliation-changed,
    /// superseded, cessation-of-operation, certificate-hold, privilege-withdrawn, aa-compromise.
    #[arg(long, value_parser = parse_reason)]
    pub reason: RevocationReason,
    /// A note kept in the audit trail (not in the CRL).
    #[arg(long)]
    pub note: Option<String>,
    /// Print the revoked certificate as JSON.
    #[arg(long)]
    pub json: bool,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd cert crl`.
#[derive(Debug, Args)]
pub struct CrlArgs {
    /// Write the CRL to this file instead of standard output (replaced if it exists).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// DER instead of PEM.
    #[arg(long)]
    pub der: bool,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd agency …`: the agencies admitted to the exchange (operator admins only).
#[derive(Debug, Subcommand)]
pub enum AgencyCommand {
    /// Register a new agency (onboarding); it is active at once.
    Create(AgencyCreateArgs),
    /// List the registered agencies.
    List(AgencyListArgs),
    /// Suspend an agency: its calls are refused at once (tokens already issued included), it
    /// gets no tokens and no new certificate is issued.
    Suspend(AgencyStateArgs),
    /// Make a suspended agency active again.
    Resume(AgencyStateArgs),
}

/// `yrd agency create`.
#[derive(Debug, Args)]
pub struct AgencyCreateArgs {
    /// The agency id `<GB/T 2260 code>-<short code>`, e.g. 320500-AMR.
    pub agency: AgencyId,
    /// Name in English.
    #[arg(long)]
    pub name: String,
    /// Name in Chinese, e.g. 苏州市市场监督管理局.
    #[arg(long)]
    pub name_zh: String,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// An agency's state, as `yrd agency list --state` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AgencyStateArg {
    /// May use the exchange.
    Active,
    /// Refused until resumed.
    Suspended,
}

/// `yrd agency list`.
#[derive(Debug, Args)]
pub struct AgencyListArgs {
    /// Only agencies in this state.
    #[arg(long, value_enum)]
    pub state: Option<AgencyStateArg>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd agency suspend` and `yrd agency resume`.
#[derive(Debug, Args)]
pub struct AgencyStateArgs {
    /// The agency id, e.g. 320500-AMR.
    pub agency: AgencyId,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Reads a revocation reason in kebab-case (`key-compromise`), snake_case or RFC 5280
/// camelCase; `remove-from-crl` is refused (it belongs in delta CRLs only).
pub fn parse_reason(s: &str) -> Result<RevocationReason, String> {
    let accepted = || {
        RevocationReason::ALL
            .into_iter()
            .filter(|r| *r != RevocationReason::RemoveFromCrl)
            .map(|r| r.as_str().replace('_', "-"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match s.parse::<RevocationReason>() {
        Ok(RevocationReason::RemoveFromCrl) => Err(format!(
            "remove-from-crl is for delta CRLs only; expected one of {}",
            accepted()
        )),
        Ok(reason) => Ok(reason),
        Err(_) => Err(format!(
            "unknown revocation reason {s:?}; expected one of {}",
            accepted()
        )),
    }
}

/// Reads a certificate serial, bare (`3f9a…`) or as a resource name (`certificates/3f9a…`),
/// as lower-case hexadecimal.
pub fn parse_serial(s: &str) -> Result<String, String> {
    let bare = s.strip_prefix("certificates/").unwrap_or(s);
    if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "a serial is hexadecimal, as `yrd cert list` shows it, got {s:?}"
        ));
    }
    Ok(bare.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn reasons_and_serials() {
        assert_eq!(
            parse_reason("key-compromise"),
            Ok(RevocationReason::KeyCompromise)
        );
        assert_eq!(parse_reason("superseded"), Ok(RevocationReason::Superseded));
        assert_eq!(
            parse_reason("keyCompromise"),
            Ok(RevocationReason::KeyCompromise)
        );
        let err = parse_reason("lost-it").expect_err("unknown");
        assert!(
            err.contains("key-compromise") && err.contains("lost-it"),
            "{err}"
        );
        assert!(parse_reason("remove-from-crl").is_err());
        assert_eq!(parse_serial("certificates/3F9A"), Ok("3f9a".to_owned()));
        assert!(parse_serial("xyz").is_err());
        assert!(parse_serial("").is_err());
    }

    #[test]
    fn connection_defaults_to_the_operators_dev_admin_certificate() {
        let cli = Cli::try_parse_from(["yrd", "cert", "crl"]).expect("parses");
        let Command::Cert(CertCommand::Crl(args)) = cli.command else {
            panic!("not cert crl");
        };
        let target = args.connect.target(Profile::Admin);
        assert_eq!(target.server, "127.0.0.1:50051");
        assert_eq!(
            target.files.cert,
            PathBuf::from("yrd-data/pki/agencies/310000-SAMR/admin.pem")
        );
        let cli = Cli::try_parse_from([
            "yrd", "cert", "crl", "--ca", "a.pem", "--cert", "c.pem", "--key", "k.pem",
        ])
        .expect("parses");
        let Command::Cert(CertCommand::Crl(args)) = cli.command else {
            panic!("not cert crl");
        };
        assert_eq!(
            args.connect.target(Profile::Admin).files.key,
            PathBuf::from("k.pem")
        );
        assert!(Cli::try_parse_from(["yrd", "cert", "crl", "--ca", "a.pem"]).is_err());
    }
}
