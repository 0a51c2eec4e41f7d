//! `yrd`: sets up logging, reads the command line and configuration, and runs the command.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use yrd_client::{ClientFiles, connect};
use yrd_domain::{AgencyId, Profile};
use yrd_gateway::Application;
use yrd_gateway::cert_cli;
use yrd_gateway::cli::{Cli, Command, HealthArgs, ServeArgs, desk};
use yrd_gateway::config::{Overrides, Settings};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Configuration is loaded once and checked completely before anything starts: logging (and,
    // when an OTLP endpoint is configured for `serve`, span export) needs its `telemetry`
    // section, and a bad configuration is reported whole, before any socket is bound.
    let settings = match &cli.command {
        Command::Serve(args) => match load_settings(args) {
            Ok(settings) => Some(settings),
            Err(e) => {
                eprintln!("yrd: {e:#}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let telemetry = settings
        .as_ref()
        .map(|s| s.telemetry.clone())
        .unwrap_or_default();
    let log_format = settings.as_ref().map(|s| s.log.format).unwrap_or_default();
    // Held to the end of `main`: dropping it flushes the spans still queued.
    let _telemetry = match yrd_gateway::telemetry::init_with_log(&telemetry, log_format) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("yrd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match (cli.command, settings) {
        (Command::Serve(_), Some(settings)) => {
            runtime().and_then(|rt| rt.block_on(serve(settings)))
        }
        (Command::Serve(_), None) => Err(anyhow::anyhow!("the configuration was not loaded")),
        (Command::Health(args), _) => runtime().and_then(|rt| rt.block_on(health(args))),
        (Command::Cert(command), _) => runtime().and_then(|rt| {
            let mut stdout = std::io::stdout();
            Ok(rt.block_on(cert_cli::run(command, &mut stdout))?)
        }),
        (Command::Agency(command), _) => runtime().and_then(|rt| {
            let mut stdout = std::io::stdout();
            Ok(rt.block_on(yrd_gateway::cli::agency::run_agency(command, &mut stdout))?)
        }),
        (Command::Audit(command), _) => runtime().and_then(|rt| {
            let mut stdout = std::io::stdout();
            Ok(rt.block_on(yrd_gateway::audit_cli::run(command, &mut stdout))?)
        }),
        (Command::Results(command), _) => runtime().and_then(|rt| {
            let mut stdout = std::io::stdout();
            Ok(rt.block_on(yrd_gateway::cli::results::run(command, &mut stdout))?)
        }),
        (Command::Migrate(args), _) => runtime()
            .and_then(|rt| rt.block_on(yrd_gateway::ops::migrate(&args, &mut std::io::stdout()))),
        (Command::Backup(args), _) => runtime()
            .and_then(|rt| rt.block_on(yrd_gateway::ops::backup(&args, &mut std::io::stdout()))),
        (Command::Feed(command), _) => runtime().and_then(|rt| {
            let mut stdout = std::io::stdout();
            let stop = shutdown_signal();
            Ok(rt.block_on(desk::feed::run(command, &mut stdout, stop))?)
        }),
        (Command::Console(args), _) => runtime().and_then(|rt| {
            let mut stdout = std::io::stdout();
            rt.block_on(yrd_gateway::cli::console::run(
                args,
                &mut stdout,
                shutdown_signal(),
            ))
        }),
        (Command::Referral(command), _) => runtime().and_then(|rt| {
            let mut stdout = std::io::stdout();
            Ok(rt.block_on(desk::referral::run(command, &mut stdout))?)
        }),
        (Command::Application(command), _) => runtime().and_then(|rt| {
            let mut stdout = std::io::stdout();
            Ok(rt.block_on(desk::application::run(command, &mut stdout))?)
        }),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yrd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn load_settings(args: &ServeArgs) -> anyhow::Result<Settings> {
    let overrides = Overrides {
        data_dir: args.data_dir.clone(),
        listen: args.listen,
        database_url: args.database_url.clone(),
    };
    Ok(Settings::load(args.config.as_deref(), &overrides)?)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let grace = settings.shutdown_grace();
    let app = Application::build(settings).await?;
    let addr = app.local_addr();
    eprintln!(
        "yrd-exchange serving on {addr} (TLS 1.3, client certificate required; store: {})",
        app.store().backend().as_str()
    );
    if let Some(pki) = app.dev_pki() {
        let pki = pki.display();
        eprintln!(
            "dev PKI: CA {pki}/ca.pem; agency certificates {pki}/agencies/<agency id>/<system|admin|auditor>.pem and .key"
        );
        eprintln!(
            "try:     yrd health --server {addr}    (or: grpcurl -cacert {pki}/ca.pem -cert {pki}/agencies/310000-SAMR/system.pem -key {pki}/agencies/310000-SAMR/system.key {addr} grpc.health.v1.Health/Check)"
        );
    }
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
    let server_abort = server.abort_handle();
    tokio::pin!(server);
    tokio::select! {
        done = &mut server => return Ok(done??),
        () = shutdown_signal() => {}
    }
    stop.cancel();
    // A bounded drain: calls in flight get the grace period, then the process leaves.
    match tokio::time::timeout(grace, &mut server).await {
        Ok(done) => Ok(done??),
        Err(_) => {
            server_abort.abort();
            eprintln!("yrd: calls still in flight after {grace:?}; stopping anyway");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

async fn health(args: HealthArgs) -> anyhow::Result<()> {
    let files = match (args.ca, args.cert, args.key) {
        (Some(ca), Some(cert), Some(key)) => ClientFiles { ca, cert, key },
        _ => {
            let agency = AgencyId::parse(&args.agency)?;
            let profile: Profile = args.profile.parse()?;
            ClientFiles::dev(
                &args.data_dir.join("pki"),
                agency.as_str(),
                profile.as_str(),
            )
        }
    };
    let channel = connect(&args.server, &args.tls_name, &files).await?;
    let mut client = HealthClient::new(channel);
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        client.check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await??;
    let status = response.into_inner().status();
    println!("{}", status.as_str_name());
    anyhow::ensure!(
        status == tonic_health::pb::health_check_response::ServingStatus::Serving,
        "the exchange is not serving"
    );
    Ok(())
}
