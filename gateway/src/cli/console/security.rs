//! The console's security model (docs/console.md §"Security model"): loopback only, a random
//! session token traded for a cookie on the first visit, the Host header pinned, every POST
//! checked for its origin and its per-session CSRF token, and nothing cached.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

use crate::cli::console::page::Failure;
use crate::cli::console::{Console, ConsoleError};

/// The cookie that carries the language choice (not a secret).
pub const LANG_COOKIE: &str = "yrd_console_lang";

/// Reads `--listen`: a socket address on a loopback interface, else a clear refusal.
pub fn loopback(listen: &str) -> Result<SocketAddr, ConsoleError> {
    let addr: SocketAddr = listen.parse().map_err(|_| ConsoleError::NotLoopback {
        given: listen.to_owned(),
        why: "not an IP address and port",
    })?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(ConsoleError::NotLoopback {
            given: listen.to_owned(),
            why: "not a loopback address",
        })
    }
}

/// The session's secrets: the token of the first URL (and of the cookie), and the CSRF token
/// the pages embed in their forms. Drawn from the system CSPRNG at start, kept in memory only.
pub struct Secrets {
    token: String,
    csrf: String,
    cookie: String,
    hosts: [String; 2],
    origins: [String; 2],
}

impl Secrets {
    /// Draws new secrets for a console listening on `addr`.
    pub fn new(addr: SocketAddr) -> Result<Secrets, ConsoleError> {
        let hosts = [addr.to_string(), format!("localhost:{}", addr.port())];
        let origins = hosts.clone().map(|h| format!("http://{h}"));
        Ok(Secrets {
            token: random_hex()?,
            csrf: random_hex()?,
            // Cookies are not scoped by port: two consoles on one machine keep apart by name.
            cookie: format!("yrd_console_{}", addr.port()),
            hosts,
            origins,
        })
    }

    /// The session token of the first URL.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CSRF token every form carries.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether a form's CSRF token is this session's.
    pub fn csrf_ok(&self, given: &str) -> bool {
        same_secret(given, &self.csrf)
    }
}

/// 32 random bytes from the system CSPRNG, hex.
fn random_hex() -> Result<String, ConsoleError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ConsoleError::Random)?;
    Ok(hex::encode(bytes))
}

/// Compares secrets through their digests, so the time taken tells nothing of the secret.
fn same_secret(given: &str, secret: &str) -> bool {
    Sha256::digest(given.as_bytes()) == Sha256::digest(secret.as_bytes())
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The guard every request passes (docs/console.md §"Security model").
pub async fn guard(State(console): State<Arc<Console>>, request: Request, next: Next) -> Response {
    let secrets = &console.secrets;
    let mut response = match admit(secrets, &request) {
        Err(failure) => failure.into_response(),
        Ok(Admit::SetCookie(path)) => {
            let cookie = format!(
                "{}={}; HttpOnly; SameSite=Strict; Path=/",
                secrets.cookie, secrets.token
            );
            let mut r = Redirect::to(&path).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(Admit::Pass) => next.run(request).await,
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Not `no-referrer`: under it a browser sends `Origin: null` with a form POST, which the
        // origin check must refuse. The token never reaches a page's address (the first visit
        // redirects it away), and `same-origin` sends no referrer off the console.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

enum Admit {
    /// The request goes on to its page.
    Pass,
    /// The first visit with the right token: set the cookie, redirect to this path.
    SetCookie(String),
}

fn admit(secrets: &Secrets, request: &Request) -> Result<Admit, Failure> {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !secrets.hosts.iter().any(|h| h == host) {
        return Err(Failure::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this console answers only to {} (Host header {host:?} refused)",
                secrets.hosts.join(" or ")
            ),
        ));
    }
    let uri = request.uri();
    let query =
        axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(uri);
    if let Ok(axum::extract::Query(query)) = query {
        if let Some(token) = query.get("token") {
            return if same_secret(token, &secrets.token) {
                Ok(Admit::SetCookie(uri.path().to_owned()))
            } else {
                Err(Failure::new(
                    StatusCode::FORBIDDEN,
                    "the token in this URL is not this console's session token".to_owned(),
                ))
            };
        }
    }
    let signed_in =
        cookie(headers, &secrets.cookie).is_some_and(|c| same_secret(c, &secrets.token));
    if !signed_in {
        return Err(Failure::new(
            StatusCode::UNAUTHORIZED,
            "no session: open the URL `yrd console` printed when it started (it carries the \
             session token)"
                .to_owned(),
        ));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        check_origin(secrets, headers)?;
    }
    Ok(Admit::Pass)
}

/// A state-changing request must come from the console's own pages: `Sec-Fetch-Site`, when
/// the browser sends it, must be `same-origin`, and `Origin` must be present and the console's.
/// (The handler then checks the form's CSRF token.)
fn check_origin(secrets: &Secrets, headers: &HeaderMap) -> Result<(), Failure> {
    let refuse = |why: String| Err(Failure::new(StatusCode::FORBIDDEN, why));
    if let Some(site) = headers.get("sec-fetch-site") {
        if site.as_bytes() != b"same-origin" {
            return refuse(format!(
                "cross-site request refused (Sec-Fetch-Site: {})",
                site.to_str().unwrap_or("?")
            ));
        }
    }
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        Some(origin) if secrets.origins.iter().any(|o| o == origin) => Ok(()),
        Some(origin) => refuse(format!("request from another origin refused ({origin})")),
        None => refuse("a POST without an Origin header is refused".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        assert!(loopback("127.0.0.1:8080").is_ok());
        assert!(loopback("[::1]:8080").is_ok());
        let wide = loopback("0.0.0.0:8080").expect_err("all interfaces");
        assert!(wide.to_string().contains("loopback only"), "{wide}");
        assert!(loopback("192.168.1.5:8080").is_err());
        let name = loopback("localhost:8080").expect_err("a name");
        assert!(name.to_string().contains("not an IP address"), "{name}");
    }

    use std::sync::Mutex;

    use axum::body::Body;
    use clap::Parser as _;
    use tower::ServiceExt as _;

    use crate::cli::command::{Cli, Command};
    use crate::cli::console::router;

    /// A console on 127.0.0.1:8080 (never bound: requests go through the router directly).
    fn console() -> Arc<Console> {
        let Command::Console(args) = Cli::try_parse_from(["yrd", "console"])
            .expect("parses")
            .command
        else {
            panic!("not the console command");
        };
        let addr = loopback(&args.listen).expect("loopback");
        Arc::new(Console {
            connect: args.connect,
            secrets: Secrets::new(addr).expect("random"),
            rotation_days: args.rotation_days,
            last_head: Mutex::new(None),
        })
    }

    async fn send(console: &Arc<Console>, request: Request<Body>) -> Response {
        router(console.clone())
            .oneshot(request)
            .await
            .expect("infallible")
    }

    fn get(uri: &str) -> axum::http::request::Builder {
        axum::http::Request::builder()
            .uri(uri)
            .header(header::HOST, "127.0.0.1:8080")
    }

    fn session_cookie(c: &Console) -> String {
        format!("{}={}", c.secrets.cookie, c.secrets.token)
    }

    fn lang_form(c: &Console, csrf: &str) -> Request<Body> {
        let body = format!("csrf={csrf}&to=en&back=/audit");
        axum::http::Request::builder()
            .method(Method::POST)
            .uri("/lang")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::COOKIE, session_cookie(c))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, "http://127.0.0.1:8080")
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(body))
            .expect("request")
    }

    #[tokio::test]
    async fn the_token_is_traded_for_a_strict_http_only_cookie() {
        let c = console();
        let first = get(&format!("/audit?token={}", c.secrets.token))
            .body(Body::empty())
            .expect("request");
        let answer = send(&c, first).await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        assert_eq!(answer.headers()[header::LOCATION], "/audit");
        let cookie = answer.headers()[header::SET_COOKIE]
            .to_str()
            .expect("ASCII");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        assert_eq!(answer.headers()[header::CACHE_CONTROL], "no-store");

        let wrong = get("/?token=guess").body(Body::empty()).expect("request");
        assert_eq!(send(&c, wrong).await.status(), StatusCode::FORBIDDEN);
        let none = get("/").body(Body::empty()).expect("request");
        let refused = send(&c, none).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refused.headers()[header::CACHE_CONTROL], "no-store");

        let home = get("/")
            .header(header::COOKIE, session_cookie(&c))
            .body(Body::empty())
            .expect("request");
        let home = send(&c, home).await;
        assert_eq!(home.status(), StatusCode::OK);
        assert_eq!(home.headers()[header::CACHE_CONTROL], "no-store");
        // A page the DNS-rebinding trick would fetch under another name is refused.
        let rebound = axum::http::Request::builder()
            .uri("/")
            .header(header::HOST, "attacker.example:8080")
            .header(header::COOKIE, session_cookie(&c))
            .body(Body::empty())
            .expect("request");
        assert_eq!(
            send(&c, rebound).await.status(),
            StatusCode::MISDIRECTED_REQUEST
        );
    }

    #[tokio::test]
    async fn a_post_needs_the_session_origin_and_csrf_token() {
        let c = console();
        let ok = send(&c, lang_form(&c, &c.secrets.csrf.clone())).await;
        assert_eq!(ok.status(), StatusCode::SEE_OTHER);
        assert_eq!(ok.headers()[header::LOCATION], "/audit");

        assert_eq!(
            send(&c, lang_form(&c, "forged")).await.status(),
            StatusCode::FORBIDDEN
        );
        let mut cross = lang_form(&c, &c.secrets.csrf.clone());
        cross
            .headers_mut()
            .insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert_eq!(send(&c, cross).await.status(), StatusCode::FORBIDDEN);
        let mut other = lang_form(&c, &c.secrets.csrf.clone());
        other.headers_mut().remove("sec-fetch-site");
        other.headers_mut().insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert_eq!(send(&c, other).await.status(), StatusCode::FORBIDDEN);
        let mut bare = lang_form(&c, &c.secrets.csrf.clone());
        bare.headers_mut().remove(header::ORIGIN);
        assert_eq!(send(&c, bare).await.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn cookies_are_read_by_name_and_secrets_compare_whole() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; yrd_x=abc; b=2"),
        );
        assert_eq!(cookie(&headers, "yrd_x"), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("ab", "abc"));
    }
}
