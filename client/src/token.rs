//! The access token bound to the client certificate, fetched and renewed on demand.
//!
//! The exchange authorizes a business call only with `authorization: Bearer <token>`, and
//! only on a connection presenting the certificate the token was issued for (RFC 8705). So the
//! token is issued over the client's own channel (`TokenService.IssueToken`, which needs the
//! mTLS connection alone) and renewed before it expires: once 80 % of its lifetime
//! (`expires_in_seconds`) has passed, by the client's clock, the next call fetches a new one
//! first. A call the exchange refuses with `UNAUTHENTICATED` anyway (a clock that drifted, a
//! restarted exchange that rotated its key) renews the token and is sent once more.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use tokio::sync::Mutex;
use tonic::Status;
use tonic::transport::Channel;
use yrd_proto::v1::token_service_client::TokenServiceClient;
use yrd_proto::v1::{IssueTokenRequest, IssueTokenResponse};

/// The part of a token's lifetime after which it is renewed.
const RENEW_AT: f64 = 0.8;
/// The lifetime assumed when the response states none (the exchange's maximum is 600 s).
const FALLBACK_LIFETIME: Duration = Duration::from_secs(60);

/// What the client reads the time from; the system clock unless a test moves its own.
pub type ClockFn = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> ClockFn {
    // The client's one reading of the wall clock (`.clippy.toml` bans it elsewhere); it cannot
    // use the exchange's injected clock, being independent of the exchange's crates.
    #[allow(clippy::disallowed_methods)]
    Arc::new(SystemTime::now)
}

/// An issued access token.
pub struct Token {
    /// The JWT.
    pub access_token: String,
    /// Its `jti`.
    pub token_id: String,
    /// The roles it grants, e.g. `results:publish`.
    pub roles: Vec<String>,
    /// When the client received it, by the client's clock.
    pub obtained_at: SystemTime,
    /// Its lifetime from issue.
    pub lifetime: Duration,
    header: HeaderValue,
}

impl std::fmt::Debug for Token {
    /// Never the token itself: it is a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("token_id", &self.token_id)
            .field("roles", &self.roles)
            .field("obtained_at", &self.obtained_at)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// The token from an `IssueToken` answer received at `now`; `None` when it cannot be sent
    /// as a header (not printable ASCII).
    pub fn from_response(response: IssueTokenResponse, now: SystemTime) -> Option<Token> {
        let header = HeaderValue::from_str(&format!("Bearer {}", response.access_token)).ok()?;
        let lifetime = match response.expires_in_seconds {
            0 => FALLBACK_LIFETIME,
            seconds => Duration::from_secs(u64::from(seconds)),
        };
        Some(Token {
            access_token: response.access_token,
            token_id: response.token_id,
            roles: response.roles,
            obtained_at: now,
            lifetime,
            header,
        })
    }

    /// When the client renews it: after 80 % of its lifetime.
    pub fn renew_at(&self) -> SystemTime {
        self.obtained_at + self.lifetime.mul_f64(RENEW_AT)
    }

    /// The `authorization` header value, `Bearer <token>`.
    pub fn header(&self) -> &HeaderValue {
        &self.header
    }
}

/// Issues a token over `channel` (so bound to the certificate it presents), naming `officer`
/// as acting when not empty (the token's `act` claim).
pub async fn issue_token(channel: &Channel, officer: &str) -> Result<IssueTokenResponse, Status> {
    Ok(TokenServiceClient::new(channel.clone())
        .issue_token(IssueTokenRequest {
            officer: officer.to_owned(),
            audience: String::new(),
        })
        .await?
        .into_inner())
}

/// Fetches the token when first needed and renews it when due; shared by every clone of a
/// client. Renewals are single-flight: concurrent calls wait for one `IssueToken`.
pub struct TokenSource {
    channel: Channel,
    officer: String,
    clock: ClockFn,
    current: Mutex<Option<Arc<Token>>>,
    issued: AtomicU64,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("officer", &self.officer)
            .field("issued", &self.issued)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source issuing tokens over `channel` for `officer` (empty: none), reading the time
    /// from `clock`.
    pub fn new(channel: Channel, officer: String, clock: ClockFn) -> TokenSource {
        TokenSource {
            channel,
            officer,
            clock,
            current: Mutex::new(None),
            issued: AtomicU64::new(0),
        }
    }

    /// A token that is not due for renewal, fetching one first when needed.
    pub async fn token(&self) -> Result<Arc<Token>, Status> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref() {
            if (self.clock)() < token.renew_at() {
                return Ok(token.clone());
            }
        }
        let token = self.issue().await?;
        *current = Some(token.clone());
        Ok(token)
    }

    /// A token other than `refused`, which the exchange answered `UNAUTHENTICATED` to: a new
    /// one, unless another call renewed it meanwhile.
    pub async fn renew_after_refusal(&self, refused: &Arc<Token>) -> Result<Arc<Token>, Status> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref() {
            if !Arc::ptr_eq(token, refused) {
                return Ok(token.clone());
            }
        }
        let token = self.issue().await?;
        *current = Some(token.clone());
        Ok(token)
    }

    /// How many tokens this source has been issued so far.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    async fn issue(&self) -> Result<Arc<Token>, Status> {
        let response = issue_token(&self.channel, &self.officer).await?;
        let token = Token::from_response(response, (self.clock)()).ok_or_else(|| {
            Status::internal("the access token the exchange returned is not printable ASCII")
        })?;
        self.issued.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(token_id = %token.token_id, lifetime = ?token.lifetime, "access token issued");
        Ok(Arc::new(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(token: &str, seconds: u32) -> IssueTokenResponse {
        IssueTokenResponse {
            access_token: token.to_owned(),
            token_type: "Bearer".to_owned(),
            expires_in_seconds: seconds,
            token_id: "jti-1".to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn a_token_is_renewed_after_four_fifths_of_its_life() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let token = Token::from_response(response("a.b.c", 600), now).expect("ascii");
        assert_eq!(token.renew_at(), now + Duration::from_secs(480));
        assert_eq!(token.header().to_str().ok(), Some("Bearer a.b.c"));
        let unknown = Token::from_response(response("a.b.c", 0), now).expect("ascii");
        assert_eq!(unknown.lifetime, FALLBACK_LIFETIME);
        assert!(Token::from_response(response("bad\ntoken", 600), now).is_none());
        assert!(!format!("{token:?}").contains("a.b.c"), "never printed");
    }
}
