//! `TokenService`: certificate-bound access tokens over mTLS (client-credentials style).
//!
//! The caller is the certificate of the connection: the token names that agency system
//! (`sub`), grants the roles of its profile, and is bound to the certificate's SHA-256
//! thumbprint (`cnf.x5t#S256`, RFC 8705), so it is worthless on any other connection.
//!
//! `GetJwks` publishes every key the exchange signs with, each with its purpose and validity
//! window: the access-token ring (which prunes keys once no token of theirs can be valid) and
//! the exchange log's receipt and tree-head keys (never pruned, so that old receipts and tree
//! heads stay verifiable).

use std::sync::Arc;

use yrd_call::{Call, timestamp};
use yrd_domain::AgencyId;
use yrd_domain::clock::Clock;
use yrd_domain::roles::granted_roles;
use yrd_pki::{LogKeyPurpose, SharedLogKeys};
use yrd_proto::v1::token_service_server::TokenService;
use yrd_proto::v1::{
    GetJwksRequest, GetJwksResponse, IssueTokenRequest, IssueTokenResponse, Jwk, KeyPurpose,
};
use yrd_store::{AgencyState, Store};

use crate::error::AdminError;
use crate::keyring::TokenKeys;
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
    /// The exchange log's keys, published beside the token keys so partners can check
    /// receipts and tree heads.
    log_keys: Option<Arc<SharedLogKeys>>,
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
            log_keys: None,
        }
    }

    /// Also publishes the exchange log's receipt and tree-head keys, retired ones included.
    pub fn with_log_keys(mut self, keys: Arc<SharedLogKeys>) -> Self {
        self.log_keys = Some(keys);
        self
    }

    /// The log keys as published: one entry per key and purpose, oldest first.
    fn log_jwks(&self, now: time::OffsetDateTime) -> Vec<Jwk> {
        let Some(shared) = &self.log_keys else {
            return Vec::new();
        };
        let ring = shared.ring();
        let mut published = Vec::new();
        for key in ring.keys() {
            let (x, y) = key.key().public_coordinates();
            for purpose in key.purposes() {
                published.push(Jwk {
                    kty: "EC".to_owned(),
                    crv: "P-256".to_owned(),
                    x: x.to_owned(),
                    y: y.to_owned(),
                    kid: key.kid().to_owned(),
                    alg: "ES256".to_owned(),
                    r#use: "sig".to_owned(),
                    purpose: match purpose {
                        LogKeyPurpose::Receipt => KeyPurpose::Receipt,
                        LogKeyPurpose::TreeHead => KeyPurpose::TreeHead,
                    } as i32,
                    not_before: Some(timestamp(key.not_before())),
                    not_after: key.not_after().map(timestamp),
                    retired: key.is_retired(now),
                });
            }
        }
        published
    }
}

/// The handlers, each given the context of its call.
impl TokenHandler {
    async fn issue_token_call(
        &self,
        call: &Call,
        body: IssueTokenRequest,
    ) -> Result<IssueTokenResponse, AdminError> {
        let caller = &call.identity;
        if !body.audience.is_empty() && body.audience != self.settings.audience {
            return Err(AdminError::field(
                "audience",
                format!(
                    "the exchange issues tokens for audience {:?} only",
                    self.settings.audience
                ),
            ));
        }
        let agency = self.store.get_agency(&caller.agency).await?;
        match agency {
            Some(a) if a.state == AgencyState::Active => {}
            Some(_) => return Err(AdminError::Suspended(caller.agency.clone())),
            None => return Err(AdminError::NotRegistered(caller.agency.clone())),
        }
        let roles = granted_roles(caller.profile, caller.agency == self.operator);
        let officer = (!body.officer.is_empty()).then_some(body.officer.as_str());
        let now = self.clock.now();
        let ring = self.keys.ring();
        let issued = TokenIssuer::new(&self.settings, &ring)
            .issue(caller, &roles, officer, now, self.lifetime)
            .map_err(|e| match e {
                IssueError::Claim(claim) => AdminError::field("officer", claim.to_string()),
                IssueError::NoRoles(..) => AdminError::NoRoles {
                    certificate: caller.profile.certificate(),
                    agency: caller.agency.clone(),
                },
                other => AdminError::internal("token issuance", other),
            })?;
        let expires_in_seconds = u32::try_from(issued.expires_in_seconds()).unwrap_or(0);
        Ok(IssueTokenResponse {
            access_token: issued.token,
            token_type: "Bearer".to_owned(),
            expire_time: Some(timestamp(issued.expires_at)),
            expires_in_seconds,
            key_id: issued.kid,
            roles: issued.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            token_id: issued.jti.to_string(),
        })
    }

    fn get_jwks_call(&self) -> GetJwksResponse {
        let now = self.clock.now();
        let ring = self.keys.ring();
        let mut keys: Vec<Jwk> = ring
            .keys()
            .iter()
            .map(|key| {
                let k = key.jwk().clone();
                Jwk {
                    kty: k.kty,
                    crv: k.crv,
                    x: k.x,
                    y: k.y,
                    kid: k.kid,
                    alg: k.alg,
                    r#use: k.key_use,
                    purpose: KeyPurpose::AccessToken as i32,
                    not_before: Some(timestamp(key.not_before())),
                    not_after: key.retire_after().map(timestamp),
                    retired: key.retire_after().is_some_and(|end| end <= now),
                }
            })
            .collect();
        keys.extend(self.log_jwks(now));
        // RFC 7517 JSON of every key published: the members of each JWK, without `purpose`
        // or window, each key once (the legacy log key is listed twice above).
        let mut seen = std::collections::HashSet::new();
        let json_keys: Vec<serde_json::Value> = keys
            .iter()
            .filter(|k| seen.insert(k.kid.clone()))
            .map(|k| {
                serde_json::json!({
                    "kty": k.kty, "crv": k.crv, "x": k.x, "y": k.y,
                    "kid": k.kid, "alg": k.alg, "use": k.r#use,
                })
            })
            .collect();
        let jwks_json = serde_json::json!({ "keys": json_keys }).to_string();
        GetJwksResponse { keys, jwks_json }
    }
}

yrd_call::serve_rpcs! {
    impl TokenService for TokenHandler {
        #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
        fn issue_token(&self, call, request: IssueTokenRequest) -> IssueTokenResponse {
            self.issue_token_call(call, request.into_inner()).await
        }

        /// Public: callable without a token, so the call has no roles (identity only).
        #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
        fn get_jwks(&self, _, _request: GetJwksRequest) -> GetJwksResponse {
            Ok::<_, AdminError>(self.get_jwks_call())
        }
    }
}
