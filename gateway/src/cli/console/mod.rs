//! `yrd console`: a local web console over the exchange for the people behind the systems —
//! auditors, officers and admins — run on their own machine with their own certificate, as
//! `yrd audit` and `yrd referral` are (docs/console.md).
//!
//! # Why it is shaped so
//!
//! The console is a view of the exchange through the same client code the command line uses:
//! every page is one or a few calls through [`crate::cli::session::Session`] with the dev or
//! given certificate of the page's profile (auditor, system, admin), and every check an auditor
//! relies on is the `yrd audit` code itself ([`crate::cli::audit`]) — the console verifies tree
//! heads, inclusion and consistency proofs and exported files locally, never taking the
//! server's word. It is read-only but for the export.
//!
//! Because it holds a person's credentials, it serves on loopback only, behind a random session
//! token printed once at start (the first visit trades it for an `HttpOnly`, `SameSite=Strict`
//! cookie), checks Origin/Sec-Fetch-Site and a per-session CSRF token on every POST, pins the
//! Host header (against DNS rebinding) and marks every answer `Cache-Control: no-store`
//! ([`security`]).
//!
//! # Layout
//!
//! * [`security`] — the listen address check, the session and CSRF tokens, the guard every
//!   request passes.
//! * [`page`] — what every page shares: the language and labels (中文 by default), China
//!   Standard Time, deadlines, tables, rendering and errors.
//! * [`audit`], [`upload`] — the auditor's pages; [`officer`] — the officer's (system profile);
//!   [`cases`] — the officer's cases (串案) with each case's timeline from the log; [`admin`] —
//!   the admin's. Each area is one module with its own `routes()`, merged in [`router`].

pub mod admin;
pub mod audit;
pub mod cases;
pub mod officer;
pub mod page;
pub mod security;
pub mod upload;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use clap::Args;
use tokio::net::TcpListener;

use crate::cli::audit::verdict::VerifiedHead;
use crate::cli::connect::ConnectArgs;

use security::Secrets;

/// `yrd console`.
#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// The loopback address to serve on (127.0.0.1 or ::1; any other address is refused).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Certificates expiring within this many days are highlighted as due for rotation.
    #[arg(long, default_value_t = 30)]
    pub rotation_days: u32,
    /// Connection (each page presents the dev certificate of its profile unless `--cert` is
    /// given: auditor pages the auditor's, officer pages the system one, admin pages the
    /// admin's).
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The listen address is not a loopback socket address.
    #[error(
        "yrd console serves on loopback only, so that no one else on the network can reach a \
         session holding your certificate: --listen must be 127.0.0.1:PORT or [::1]:PORT, got \
         {given:?} ({why})"
    )]
    NotLoopback {
        /// The address given.
        given: String,
        /// Why it was refused.
        why: &'static str,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
    /// Serving failed.
    #[error("the console stopped: {0}")]
    Serve(std::io::Error),
}

/// What every handler shares: how to reach the exchange, the session's secrets, and the last
/// tree head this console verified (kept in memory only, for the consistency check).
pub struct Console {
    pub(crate) connect: ConnectArgs,
    pub(crate) secrets: Secrets,
    pub(crate) rotation_days: u32,
    pub(crate) last_head: Mutex<Option<VerifiedHead>>,
}

/// A bound console, ready to serve: its first URL (with the session token) and its address.
pub struct BoundConsole {
    listener: TcpListener,
    console: Arc<Console>,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The URL to open first: `http://ADDR/?token=…`.
    pub url: String,
}

impl BoundConsole {
    /// Checks the address is loopback, binds it and draws the session's secrets.
    pub async fn bind(args: ConsoleArgs) -> Result<BoundConsole, ConsoleError> {
        let addr = security::loopback(&args.listen)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ConsoleError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ConsoleError::Bind { addr, source })?;
        let secrets = Secrets::new(addr)?;
        let url = format!("http://{addr}/?token={}", secrets.token());
        let console = Arc::new(Console {
            connect: args.connect,
            secrets,
            rotation_days: args.rotation_days,
            last_head: Mutex::new(None),
        });
        Ok(BoundConsole {
            listener,
            console,
            addr,
            url,
        })
    }

    /// Serves until `stop` completes.
    pub async fn serve(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ConsoleError> {
        axum::serve(self.listener, router(self.console))
            .with_graceful_shutdown(stop)
            .await
            .map_err(ConsoleError::Serve)
    }
}

/// Runs `yrd console` until `stop`: prints the first URL to `out`, then serves.
pub async fn run(
    args: ConsoleArgs,
    out: &mut (dyn std::io::Write + Send),
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bound = BoundConsole::bind(args).await?;
    writeln!(
        out,
        "yrd console is serving on {} (loopback only)",
        bound.addr
    )?;
    writeln!(
        out,
        "open this URL in your browser (it holds the session token; do not share it):"
    )?;
    writeln!(out, "    {}", bound.url)?;
    out.flush()?;
    Ok(bound.serve(stop).await?)
}

/// The htmx release the pages use, embedded in the binary (never fetched from a CDN).
const HTMX: &str = include_str!("../../../static/console/htmx-2.0.11.min.js");
/// The console's style sheet.
const CSS: &str = include_str!("../../../static/console/console.css");

/// Every page, behind the guard.
pub fn router(console: Arc<Console>) -> Router {
    let assets = Router::new()
        .route(
            "/static/htmx.min.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], HTMX) }),
        )
        .route(
            "/static/console.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], CSS) }),
        );
    Router::new()
        .route("/", get(page::home))
        .route("/lang", post(page::switch_language))
        .merge(assets)
        .merge(audit::routes())
        .merge(upload::routes())
        .merge(officer::routes())
        .merge(cases::routes())
        .merge(admin::routes())
        .fallback(|| async { page::Failure::not_found().into_response() })
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            security::guard,
        ))
        .with_state(console)
}
