//! The context of one call, taken once from the request: who calls (agency, certificate
//! profile, acting officer, token id), under which trace, and the audit record the gateway's
//! audit layer put in. Every handler of every service builds one with [`Call::of`] and answers
//! through [`Call::respond`], which carries what the handler reports for the exchange log
//! (resources touched, request digest, [`Written`] when it committed the leaf itself) back to
//! the audit layer in the response — no state is shared with the layers (docs/architecture.md, "The exchange log").

use std::sync::Arc;

use tonic::{Request, Response, Status};
use yrd_domain::audit::{CallNote, CallRecord, LeafData, TokenNote, Written};
use yrd_domain::roles::{Caller, Role};
use yrd_domain::{AgencyId, AgencyIdentity, Profile};

use crate::digest::request_sha256;
use crate::error::{CallError, into_status};

/// The context of one call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Who the connection's certificate names.
    pub identity: AgencyIdentity,
    /// The acting officer the token names ("" when none, or on a method without a token).
    pub officer: String,
    /// The token's id ("" on a method without a token).
    pub token_id: String,
    /// The roles the token grants (none on a method without a token).
    pub roles: Vec<Role>,
    /// The W3C trace id of the call ("" when no audit layer recorded it).
    pub trace_id: String,
    /// SHA-256 of the request message as decoded, lowercase hex.
    pub request_sha256: String,
    /// The audit layer's record of the call (none when a handler is called directly).
    record: Option<CallRecord>,
    /// What the handler reports of the call.
    note: CallNote,
    /// The handler committed the call's leaf in the transaction of its write.
    written: bool,
}

/// What a handler's work ends with, answered through its [`Call`]: a message or our error
/// ([`Call::respond`]), or a response or status the handler built itself ([`Call::answer`]).
pub trait Outcome {
    /// The response's message.
    type Message;
    /// The answer of the call.
    fn answer(self, call: Call) -> Result<Response<Self::Message>, Status>;
}

impl<M, E: CallError> Outcome for Result<M, E> {
    type Message = M;
    fn answer(self, call: Call) -> Result<Response<M>, Status> {
        call.respond(self)
    }
}

impl<M> Outcome for Result<Response<M>, Status> {
    type Message = M;
    fn answer(self, call: Call) -> Result<Response<M>, Status> {
        call.answer(self)
    }
}

/// Why no [`Call`] could be taken from a request.
const NO_IDENTITY: &str = "no client certificate identity on this call";

impl Call {
    /// The context of `request`, from the extensions the gateway's layers put in: the
    /// identity layer's [`AgencyIdentity`] (required: `UNAUTHENTICATED` without it), the token
    /// layer's [`Caller`] and the audit layer's [`CallRecord`] (both optional).
    pub fn of<T: prost::Message>(request: &Request<T>) -> Result<Call, Status> {
        let extensions = request.extensions();
        let caller = extensions.get::<Caller>();
        let identity = caller
            .map(|c| c.identity.clone())
            .or_else(|| extensions.get::<AgencyIdentity>().cloned())
            .ok_or_else(|| Status::unauthenticated(NO_IDENTITY))?;
        let record = extensions.get::<CallRecord>().cloned();
        Ok(Call {
            identity,
            officer: caller.and_then(|c| c.officer.clone()).unwrap_or_default(),
            token_id: caller.map(|c| c.token_id.clone()).unwrap_or_default(),
            roles: caller.map(|c| c.roles.clone()).unwrap_or_default(),
            trace_id: record
                .as_ref()
                .map(|r| r.trace_id.clone())
                .unwrap_or_default(),
            request_sha256: request_sha256(request.get_ref()),
            record,
            note: CallNote::default(),
            written: false,
        })
    }

    /// The span id of the call's server span ("" when no audit layer recorded it): with
    /// [`Call::trace_id`], what a later call links to (docs/cases.md, "One trace per case").
    pub fn span_id(&self) -> &str {
        self.record.as_ref().map_or("", |r| r.span_id.as_str())
    }

    /// The calling agency.
    pub fn agency(&self) -> &AgencyId {
        &self.identity.agency
    }

    /// The profile of the certificate presented.
    pub fn profile(&self) -> Profile {
        self.identity.profile
    }

    /// True when the call's token grants `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// True when the audit layer recorded the call (always in the server).
    pub fn is_audited(&self) -> bool {
        self.record.is_some()
    }

    /// Records the resources the call touches, with the request digest, for its leaf.
    pub fn note(&mut self, resources: Vec<String>) {
        self.note = CallNote {
            resources,
            request_sha256: self.request_sha256.clone(),
        };
    }

    /// The leaf of the call as a success, to commit with its write (none when the call is not
    /// audited). After committing it, the handler calls [`Call::mark_written`].
    pub fn success_leaf(&self) -> Option<LeafData> {
        let token = TokenNote {
            officer: self.officer.clone(),
            token_id: self.token_id.clone(),
        };
        self.record
            .as_ref()
            .map(|record| record.leaf(&token, &self.note, 0, ""))
    }

    /// The handler committed [`Call::success_leaf`] in the transaction of its write: the
    /// answer carries [`Written`], so the audit layer appends no second leaf.
    pub fn mark_written(&mut self) {
        self.written = true;
    }

    /// The one path of a handler's call: its context from `request` ([`Call::of`], the calling
    /// agency recorded in the current span's `agency` field), the method's `work`, then its
    /// answer or refusal through [`Call::respond`] (or [`Call::answer`], see [`Outcome`]).
    pub async fn serve<T: prost::Message, O: Outcome>(
        request: Request<T>,
        work: impl AsyncFnOnce(&mut Call, Request<T>) -> O,
    ) -> Result<Response<O::Message>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let outcome = work(&mut call, request).await;
        outcome.answer(call)
    }

    /// The handler's answer, carrying what it reports for the exchange log: the note (and the
    /// [`Written`] marker) in the response's extensions, or the note with the error's status
    /// (see [`reported_note`]), which [`into_status`] makes (logging our own failures).
    pub fn respond<M, E: CallError>(self, result: Result<M, E>) -> Result<Response<M>, Status> {
        match result {
            Ok(message) => {
                let mut response = Response::new(message);
                let extensions = response.extensions_mut();
                if self.written {
                    extensions.insert(Written);
                }
                extensions.insert(self.note);
                Ok(response)
            }
            Err(e) => Err(self.refuse(into_status(&e))),
        }
    }

    /// The answer of a handler that builds its response and status itself, carrying what it
    /// reports for the exchange log as [`Call::respond`] does.
    pub fn answer<M>(self, result: Result<Response<M>, Status>) -> Result<Response<M>, Status> {
        match result {
            Ok(mut response) => {
                let extensions = response.extensions_mut();
                if self.written {
                    extensions.insert(Written);
                }
                extensions.insert(self.note);
                Ok(response)
            }
            Err(status) => Err(self.refuse(status)),
        }
    }

    /// `status` as the answer of this call, carrying the call's note.
    pub fn refuse(self, mut status: Status) -> Status {
        if self.note != CallNote::default() {
            status.set_source(Arc::new(NotedStatus(self.note)));
        }
        status
    }
}

/// The note of a call that failed, carried as the source of its status (tonic keeps the
/// handler's [`Status`] in the extensions of the response it makes of it).
#[derive(Debug)]
struct NotedStatus(CallNote);

impl std::fmt::Display for NotedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call touching {:?}", self.0.resources)
    }
}

impl std::error::Error for NotedStatus {}

/// What the handler reported of its call, read from the extensions of its HTTP response: the
/// note of a success, or the one its error status carries; empty when it reported none.
pub fn reported_note(extensions: &http::Extensions) -> CallNote {
    if let Some(note) = extensions.get::<CallNote>() {
        return note.clone();
    }
    extensions
        .get::<Status>()
        .and_then(|s| std::error::Error::source(s))
        .and_then(|e| e.downcast_ref::<NotedStatus>())
        .map(|n| n.0.clone())
        .unwrap_or_default()
}

/// True when the handler committed the call's leaf itself (its response carries [`Written`]).
pub fn leaf_written(extensions: &http::Extensions) -> bool {
    extensions.get::<Written>().is_some()
}

/// Implements a service trait of the contract (tonic's generated `…Service`) whose every method
/// is one call through [`Call::serve`]: the service writes, per RPC, only its span attributes
/// and the body that does the work, with the [`Call`] and the request bound to the names it
/// gives them (`&self` is written too, so that the body may use `self`). The trait's associated
/// types (a streaming RPC's stream) come first, as in the impl.
///
/// ```ignore
/// yrd_call::serve_rpcs! {
///     impl AdminService for AdminHandler {
///         #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
///         fn list_agencies(&self, _, request: ListAgenciesRequest) -> ListAgenciesResponse {
///             self.list_agencies_call(request).await
///         }
///     }
/// }
/// ```
#[macro_export]
macro_rules! serve_rpcs {
    (
        impl $service:ident for $handler:ty {
            $(type $assoc:ident = $assoc_ty:ty;)*
            $(
                $(#[$attr:meta])*
                fn $rpc:ident(
                    &$self:ident, $call:pat_param, $request:ident: $req:ty $(,)?
                ) -> $resp:ty
                $body:block
            )*
        }
    ) => {
        #[$crate::__tonic::async_trait]
        impl $service for $handler {
            $(type $assoc = $assoc_ty;)*
            $(
                $(#[$attr])*
                async fn $rpc(
                    &$self,
                    $request: $crate::__tonic::Request<$req>,
                ) -> ::std::result::Result<
                    $crate::__tonic::Response<$resp>,
                    $crate::__tonic::Status,
                > {
                    $crate::Call::serve($request, async |$call, $request| $body).await
                }
            )*
        }
    };
}
