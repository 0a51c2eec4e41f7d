//! `TokenService`: certificate-bound access tokens over mTLS (client-credentials style).
//!
//! The caller is the certificate of the connection: the token names that agency system
//! (`sub`), grants the roles of its profile, and is bound to the certificate's SHA-256
//! thumbprint (`cnf.x5t#S256`, RFC 8705), so it is worthless on any other connection.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use yrd_domain::AgencyId;
use yrd_domain::clock::Clock;
use yrd_domain::roles::granted_roles;
use yrd_proto::v1::token_service_server::TokenService;
use yrd_proto::v1::{
    GetJwksRequest, GetJwksResponse, IssueTokenRequest, IssueTokenResponse, Jwk, KeyPurpose,
};
use yrd_proto::wire::{FieldViolation, bad_request, timestamp};
use yrd_store::{AgencyState, Store};

use crate::keyring::TokenKeys;
use crate::status::{identity, internal, store_failure};
use crate::token::{IssueError, MAX_TOKEN_LIFETIME, TokenIssuer, TokenSettings};

/// The `TokenService` handler.
#[derive(Debug, Clone)]
pub struct TokenHandler {
    store: Store,
    keys: Arc<TokenKeys>,
    settings: TokenSettings,
    operator: AgencyId,
    lifetime: time::Duration,
    clock: Arc<dyn Clock>,
    /// The exchange log's public key, published beside the token keys so partners can check
    /// receipts and tree heads.
    log_key: Option<Jwk>,
}

impl TokenHandler {
    /// A handler issuing tokens of `lifetime` (capped at ten minutes).
    pub fn new(
        store: Store,
        keys: Arc<TokenKeys>,
        settings: TokenSettings,
        operator: AgencyId,
        lifetime: time::Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        TokenHandler {
            store,
            keys,
            settings,
            operator,
            lifetime: lifetime.min(MAX_TOKEN_LIFETIME),
            clock,
            log_key: None,
        }
    }

    /// Also publishes the exchange log's key (JWK coordinates `x`, `y`, id `kid`), which signs
    /// receipts and tree heads.
    pub fn with_log_key(mut self, kid: &str, x: &str, y: &str) -> Self {
        self.log_key = Some(Jwk {
            kty: "EC".to_owned(),
            crv: "P-256".to_owned(),
            x: x.to_owned(),
            y: y.to_owned(),
            kid: kid.to_owned(),
            alg: "ES256".to_owned(),
            r#use: "sig".to_owned(),
            purpose: KeyPurpose::TreeHead as i32,
        });
        self
    }
}

#[tonic::async_trait]
impl TokenService for TokenHandler {
    #[tracing::instrument(skip_all, fields(agency))]
    async fn issue_token(
        &self,
        request: Request<IssueTokenRequest>,
    ) -> Result<Response<IssueTokenResponse>, Status> {
        let caller = identity(&request)?;
        tracing::Span::current().record("agency", caller.agency.as_str());
        let body = request.into_inner();
        if !body.audience.is_empty() && body.audience != self.settings.audience {
            return Err(bad_request(&[FieldViolation::new(
                "audience",
                format!(
                    "the exchange issues tokens for audience {:?} only",
                    self.settings.audience
                ),
            )]));
        }
        let agency = self
            .store
            .get_agency(&caller.agency)
            .await
            .map_err(|e| store_failure(&e))?;
        match agency {
            Some(a) if a.state == AgencyState::Active => {}
            Some(_) => {
                return Err(Status::permission_denied(format!(
                    "agency {} is suspended",
                    caller.agency
                )));
            }
            None => {
                return Err(Status::permission_denied(format!(
                    "agency {} is not registered with the exchange",
                    caller.agency
                )));
            }
        }
        let roles = granted_roles(caller.profile, caller.agency == self.operator);
        let officer = (!body.officer.is_empty()).then_some(body.officer.as_str());
        let now = self.clock.now();
        let ring = self.keys.ring();
        let issued = TokenIssuer::new(&self.settings, &ring)
            .issue(&caller, &roles, officer, now, self.lifetime)
            .map_err(|e| match e {
                IssueError::Claim(claim) => {
                    bad_request(&[FieldViolation::new("officer", claim.to_string())])
                }
                IssueError::NoRoles(..) => Status::permission_denied(format!(
                    "{} of {} is granted no role at the exchange, so IssueToken has no token \
                     to issue",
                    caller.profile.certificate(),
                    caller.agency
                )),
                other => internal("token issuance", &other),
            })?;
        let expires_in_seconds = u32::try_from(issued.expires_in_seconds()).unwrap_or(0);
        Ok(Response::new(IssueTokenResponse {
            access_token: issued.token,
            token_type: "Bearer".to_owned(),
            expire_time: Some(timestamp(issued.expires_at)),
            expires_in_seconds,
            key_id: issued.kid,
            roles: issued.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            token_id: issued.jti.to_string(),
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        let ring = self.keys.ring();
        let jwks = ring.jwks();
        let mut keys: Vec<Jwk> = jwks
            .keys
            .into_iter()
            .map(|k| Jwk {
                kty: k.kty,
                crv: k.crv,
                x: k.x,
                y: k.y,
                kid: k.kid,
                alg: k.alg,
                r#use: k.key_use,
                purpose: KeyPurpose::AccessToken as i32,
            })
            .collect();
        keys.extend(self.log_key.clone());
        // RFC 7517 JSON of every key published: the members of each JWK, without `purpose`.
        let json_keys: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": k.kty, "crv": k.crv, "x": k.x, "y": k.y,
                    "kid": k.kid, "alg": k.alg, "use": k.r#use,
                })
            })
            .collect();
        let jwks_json = serde_json::json!({ "keys": json_keys }).to_string();
        Ok(Response::new(GetJwksResponse { keys, jwks_json }))
    }
}
