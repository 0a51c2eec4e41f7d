//! Roles: what a certificate profile is granted, and the one role each gRPC method requires.
//!
//! The handshake only says *who* calls; a role says *what* the caller may do. Roles travel in
//! the access token (`roles` claim, as scope names such as `results:publish`), and the
//! gateway's policy layer compares them with [`required_role`] of the method called. Keeping
//! the whole method → role mapping in **one table** ([`METHOD_ROLES`], plus [`PUBLIC_METHODS`]
//! for the few methods that need no token) means the policy layer, the README
//! ([`markdown_table`]) and the end-to-end role matrix all read the same data, and a test proves
//! that every rpc of the v1 contract appears in exactly one of the two lists.
//!
//! A method path found in neither list is [`RoleRequirement::Unknown`]: the gateway refuses it
//! (deny by default), so a method added to a `.proto` without a row here can never be called
//! unprotected.
//!
//! Fine-grained questions ("is this agency the handling agency of this referral?", "may it see
//! this application?") are not roles: the services answer them from the resource itself. A
//! role only opens the door to a family of methods.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::Profile;

/// Why a role name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    /// The text names no role of this exchange.
    #[error(
        "unknown role {0:?}: expected one of results:publish, results:read, referrals:handle, \
         applications:act, feed:read, exchange:admin, audit:read"
    )]
    Unknown(String),
}

/// A permission to call a family of methods, carried in the access token's `roles` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Publish, correct and withdraw spot-check results (监督抽查结果) as the sampling agency.
    PublishResults,
    /// Read and search the spot-check results shared on the exchange.
    ReadResults,
    /// Act on disposal referrals (不合格产品联动处置) as sampling or handling agency, open
    /// referrals by hand, and add reactions to other agencies' referrals.
    HandleReferrals,
    /// Act on Hu-Lu joint processing (沪鲁通办) licence applications and read licences
    /// (工业产品生产许可证), as accepting, issuing or verifying agency.
    ActOnApplications,
    /// Read the agency's own feed (消息订阅) and acknowledge its position.
    ReadFeed,
    /// Administer the exchange: agencies and their client certificates. Granted only to admin
    /// certificates of the exchange's operator agency.
    Admin,
    /// Read, export and verify the exchange log (交换日志): its entries. Auditors only.
    AuditRead,
    /// Fetch signed tree heads and inclusion and consistency proofs of the exchange log — hashes
    /// only, no entry — so that a partner holding a receipt can prove on its own that the
    /// exchange logged its call. Granted to `system` and `auditor` certificates.
    LogProof,
}

impl Role {
    /// Every role, in a stable order (the order of the README table's legend).
    pub const ALL: [Role; 8] = [
        Role::PublishResults,
        Role::ReadResults,
        Role::HandleReferrals,
        Role::ActOnApplications,
        Role::ReadFeed,
        Role::Admin,
        Role::AuditRead,
        Role::LogProof,
    ];

    /// The role's scope name as it appears in the token's `roles` claim, e.g. `results:publish`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::PublishResults => "results:publish",
            Role::ReadResults => "results:read",
            Role::HandleReferrals => "referrals:handle",
            Role::ActOnApplications => "applications:act",
            Role::ReadFeed => "feed:read",
            Role::Admin => "exchange:admin",
            Role::AuditRead => "audit:read",
            Role::LogProof => "log:proof",
        }
    }

    /// Parses a scope name (`results:publish`, …).
    pub fn parse(s: &str) -> Result<Self, RoleError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| RoleError::Unknown(s.to_owned()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = RoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Role::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The roles every `system` certificate gets: the business roles, and proofs of the log (for
/// its receipts).
const SYSTEM_ROLES: [Role; 6] = [
    Role::PublishResults,
    Role::ReadResults,
    Role::HandleReferrals,
    Role::ActOnApplications,
    Role::ReadFeed,
    Role::LogProof,
];

/// The roles a certificate of `profile` is granted.
///
/// * `system` → the business roles (publish and read results, referrals, applications, feed)
///   and [`Role::LogProof`] (tree heads and proofs, to check its receipts);
/// * `admin` → [`Role::Admin`] only, and only when the agency is the exchange's operator
///   (`is_operator`); an admin certificate of any other agency gets no role at all;
/// * `auditor` → [`Role::AuditRead`] and [`Role::LogProof`]: auditors read the exchange log and
///   nothing else.
///
/// Admins cannot publish results and auditors cannot administer: the profiles do not overlap.
pub fn granted_roles(profile: Profile, is_operator: bool) -> Vec<Role> {
    match profile {
        Profile::System => SYSTEM_ROLES.to_vec(),
        Profile::Admin if is_operator => vec![Role::Admin],
        Profile::Admin => Vec::new(),
        Profile::Auditor => vec![Role::AuditRead, Role::LogProof],
    }
}

/// Every method of the v1 contract that needs an access token, by full gRPC path, with the
/// role it requires. A test checks it against the `.proto` files.
pub const METHOD_ROLES: &[(&str, Role)] = &[
    // SpotCheckService: spot-check results (监督抽查结果).
    (
        "/yrd.exchange.v1.SpotCheckService/PublishResult",
        Role::PublishResults,
    ),
    (
        "/yrd.exchange.v1.SpotCheckService/CorrectResult",
        Role::PublishResults,
    ),
    (
        "/yrd.exchange.v1.SpotCheckService/WithdrawResult",
        Role::PublishResults,
    ),
    (
        "/yrd.exchange.v1.SpotCheckService/GetResult",
        Role::ReadResults,
    ),
    (
        "/yrd.exchange.v1.SpotCheckService/SearchResults",
        Role::ReadResults,
    ),
    // DisposalService: linked disposal (不合格产品联动处置).
    (
        "/yrd.exchange.v1.DisposalService/CreateReferral",
        Role::HandleReferrals,
    ),
    (
        "/yrd.exchange.v1.DisposalService/GetReferral",
        Role::HandleReferrals,
    ),
    (
        "/yrd.exchange.v1.DisposalService/ListReferrals",
        Role::HandleReferrals,
    ),
    (
        "/yrd.exchange.v1.DisposalService/AcknowledgeReferral",
        Role::HandleReferrals,
    ),
    (
        "/yrd.exchange.v1.DisposalService/StartHandling",
        Role::HandleReferrals,
    ),
    (
        "/yrd.exchange.v1.DisposalService/RecordMeasure",
        Role::HandleReferrals,
    ),
    (
        "/yrd.exchange.v1.DisposalService/FileObjection",
        Role::HandleReferrals,
    ),
    (
        "/yrd.exchange.v1.DisposalService/RecordReinspection",
        Role::HandleReferrals,
    ),
    (
        "/yrd.exchange.v1.DisposalService/ReturnReferral",
        Role::HandleReferrals,
    ),
    (
        "/yrd.exchange.v1.DisposalService/RerouteReferral",
        Role::HandleReferrals,
    ),
    (
        "/yrd.exchange.v1.DisposalService/CloseReferral",
        Role::HandleReferrals,
    ),
    (
        "/yrd.exchange.v1.DisposalService/AddReaction",
        Role::HandleReferrals,
    ),
    // CaseService: cases across agencies (串案), read and unlinked by the agencies that handle
    // referrals, as the referrals of a case are.
    (
        "/yrd.exchange.v1.CaseService/GetCase",
        Role::HandleReferrals,
    ),
    (
        "/yrd.exchange.v1.CaseService/ListCases",
        Role::HandleReferrals,
    ),
    (
        "/yrd.exchange.v1.CaseService/UnlinkResult",
        Role::HandleReferrals,
    ),
    // LicensingService: Hu-Lu joint processing (沪鲁通办).
    (
        "/yrd.exchange.v1.LicensingService/SubmitApplication",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/GetApplication",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/ListApplications",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/AcceptApplication",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/RequestSupplement",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/SupplementApplication",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/RejectApplication",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/StartReview",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/DelegateVerification",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/SubmitVerificationReport",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/RecordTesting",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/DecideApplication",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/ExtendTimeLimit",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/ConfirmConditions",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/IssueLicence",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/RecordPostIssueCheck",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/ChangeLicence",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/GetLicence",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/ListLicences",
        Role::ActOnApplications,
    ),
    (
        "/yrd.exchange.v1.LicensingService/ListCatalogueProducts",
        Role::ActOnApplications,
    ),
    // FeedService: the agency's own feed (消息订阅).
    ("/yrd.exchange.v1.FeedService/Subscribe", Role::ReadFeed),
    ("/yrd.exchange.v1.FeedService/Ack", Role::ReadFeed),
    (
        "/yrd.exchange.v1.FeedService/GetFeedPosition",
        Role::ReadFeed,
    ),
    // AdminService: agencies and certificates, operator admins only.
    ("/yrd.exchange.v1.AdminService/CreateAgency", Role::Admin),
    ("/yrd.exchange.v1.AdminService/UpdateAgency", Role::Admin),
    ("/yrd.exchange.v1.AdminService/GetAgency", Role::Admin),
    ("/yrd.exchange.v1.AdminService/ListAgencies", Role::Admin),
    (
        "/yrd.exchange.v1.AdminService/IssueCertificate",
        Role::Admin,
    ),
    ("/yrd.exchange.v1.AdminService/GetCertificate", Role::Admin),
    (
        "/yrd.exchange.v1.AdminService/ListCertificates",
        Role::Admin,
    ),
    (
        "/yrd.exchange.v1.AdminService/RevokeCertificate",
        Role::Admin,
    ),
    ("/yrd.exchange.v1.AdminService/GetCrl", Role::Admin),
    // AuditService: the exchange log (交换日志).
    (
        "/yrd.exchange.v1.AuditService/ListAuditEntries",
        Role::AuditRead,
    ),
    (
        "/yrd.exchange.v1.AuditService/GetAuditEntry",
        Role::AuditRead,
    ),
    ("/yrd.exchange.v1.AuditService/GetTreeHead", Role::LogProof),
    (
        "/yrd.exchange.v1.AuditService/ListTreeHeads",
        Role::AuditRead,
    ),
    (
        "/yrd.exchange.v1.AuditService/GetInclusionProof",
        Role::LogProof,
    ),
    (
        "/yrd.exchange.v1.AuditService/GetConsistencyProof",
        Role::LogProof,
    ),
    (
        "/yrd.exchange.v1.AuditService/ExportAuditEntries",
        Role::AuditRead,
    ),
];

/// Methods that need no access token, only the mTLS connection: getting a token in the first
/// place, the public keys to check one, and the standard health and reflection services.
pub const PUBLIC_METHODS: &[&str] = &[
    "/yrd.exchange.v1.TokenService/IssueToken",
    "/yrd.exchange.v1.TokenService/GetJwks",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// What a method path requires of the caller's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleRequirement {
    /// No token needed (the mTLS handshake still is).
    Public,
    /// A token whose `roles` contain this role; without it the call is `PERMISSION_DENIED`.
    Role(Role),
    /// The path is in neither table. The gateway refuses such a call (`UNIMPLEMENTED` or
    /// `PERMISSION_DENIED`) before any handler runs: deny by default.
    Unknown,
}

/// What calling the method at `path` (e.g. `/yrd.exchange.v1.SpotCheckService/PublishResult`)
/// requires. Unknown paths are [`RoleRequirement::Unknown`] and must be refused.
pub fn required_role(path: &str) -> RoleRequirement {
    if PUBLIC_METHODS.contains(&path) {
        return RoleRequirement::Public;
    }
    METHOD_ROLES
        .iter()
        .find(|(p, _)| *p == path)
        .map_or(RoleRequirement::Unknown, |(_, role)| {
            RoleRequirement::Role(*role)
        })
}

/// The profiles whose certificates are granted `role` (operator admins for [`Role::Admin`]).
fn granted_to(role: Role) -> &'static str {
    match role {
        Role::Admin => "`admin` of the operator agency",
        Role::AuditRead => "`auditor`",
        Role::LogProof => "`system`, `auditor`",
        _ => "`system`",
    }
}

/// The method → role table as Markdown, for the README: one row per method, public methods
/// last, then a legend of the roles and the profiles granted each.
pub fn markdown_table() -> String {
    let mut out = String::from("| method | required role | granted to |\n|---|---|---|\n");
    for (path, role) in METHOD_ROLES {
        out.push_str(&format!(
            "| `{path}` | `{}` | {} |\n",
            role.as_str(),
            granted_to(*role)
        ));
    }
    for path in PUBLIC_METHODS {
        out.push_str(&format!("| `{path}` | none (mTLS only) | any profile |\n"));
    }
    out.push_str("\n| role | granted to |\n|---|---|\n");
    for role in Role::ALL {
        out.push_str(&format!("| `{}` | {} |\n", role.as_str(), granted_to(role)));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;

    use super::*;

    /// Every rpc of `proto/yrd/exchange/v1/*.proto` as a full gRPC path, found by a line scan of
    /// `package`, `service X {` and `rpc Name(`.
    fn proto_methods() -> BTreeSet<String> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto/yrd/exchange/v1");
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        let mut methods = BTreeSet::new();
        let mut files = 0;
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("proto") {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path).expect("proto file readable");
            let mut package = None;
            let mut service = None;
            for line in text.lines().map(str::trim) {
                if let Some(rest) = line.strip_prefix("package ") {
                    package = Some(rest.trim_end_matches(';').trim().to_owned());
                } else if let Some(rest) = line.strip_prefix("service ") {
                    let name = rest.trim_end_matches('{').trim();
                    service = Some(name.to_owned());
                } else if let Some(rest) = line.strip_prefix("rpc ") {
                    let name = rest.split('(').next().expect("split").trim();
                    let (Some(pkg), Some(svc)) = (&package, &service) else {
                        panic!("rpc {name} outside a service in {}", path.display());
                    };
                    assert!(
                        methods.insert(format!("/{pkg}.{svc}/{name}")),
                        "rpc {name} twice"
                    );
                }
            }
        }
        assert!(
            files >= 7,
            "expected the v1 proto files in {}",
            dir.display()
        );
        methods
    }

    #[test]
    fn every_rpc_is_in_exactly_one_table() {
        let methods = proto_methods();
        assert!(
            methods.len() > 50,
            "the scan found too few rpcs: {methods:?}"
        );
        for method in &methods {
            let in_roles = METHOD_ROLES.iter().filter(|(p, _)| p == method).count();
            let in_public = PUBLIC_METHODS.iter().filter(|p| *p == method).count();
            assert_eq!(
                in_roles + in_public,
                1,
                "{method} must appear in exactly one of METHOD_ROLES and PUBLIC_METHODS"
            );
        }
    }

    #[test]
    fn no_table_row_names_a_method_the_contract_lacks() {
        let methods = proto_methods();
        let ours = METHOD_ROLES
            .iter()
            .map(|(p, _)| *p)
            .chain(PUBLIC_METHODS.iter().copied())
            .filter(|p| p.starts_with("/yrd.exchange.v1."));
        for path in ours {
            assert!(
                methods.contains(path),
                "{path} is not an rpc of the v1 protos"
            );
        }
        let mut seen = BTreeSet::new();
        for (path, _) in METHOD_ROLES {
            assert!(seen.insert(*path), "{path} listed twice in METHOD_ROLES");
        }
    }

    #[test]
    fn required_role_reads_the_tables() {
        assert_eq!(
            required_role("/yrd.exchange.v1.SpotCheckService/PublishResult"),
            RoleRequirement::Role(Role::PublishResults)
        );
        assert_eq!(
            required_role("/yrd.exchange.v1.AuditService/ExportAuditEntries"),
            RoleRequirement::Role(Role::AuditRead)
        );
        assert_eq!(
            required_role("/yrd.exchange.v1.TokenService/IssueToken"),
            RoleRequirement::Public
        );
        assert_eq!(
            required_role("/grpc.health.v1.Health/Check"),
            RoleRequirement::Public
        );
        assert_eq!(
            required_role("/yrd.exchange.v1.SpotCheckService/DeleteEverything"),
            RoleRequirement::Unknown
        );
        assert_eq!(required_role(""), RoleRequirement::Unknown);
    }

    #[test]
    fn profiles_get_their_roles() {
        assert_eq!(
            granted_roles(Profile::System, false),
            vec![
                Role::PublishResults,
                Role::ReadResults,
                Role::HandleReferrals,
                Role::ActOnApplications,
                Role::ReadFeed,
                Role::LogProof
            ]
        );
        // The operator flag changes nothing for a system certificate.
        assert_eq!(
            granted_roles(Profile::System, true),
            granted_roles(Profile::System, false)
        );
        assert_eq!(granted_roles(Profile::Admin, true), vec![Role::Admin]);
        assert_eq!(granted_roles(Profile::Admin, false), Vec::<Role>::new());
        assert_eq!(
            granted_roles(Profile::Auditor, true),
            vec![Role::AuditRead, Role::LogProof]
        );
        assert_eq!(
            granted_roles(Profile::Auditor, false),
            vec![Role::AuditRead, Role::LogProof]
        );
    }

    /// Which methods each profile can call, from the grants and the table together.
    fn callable(profile: Profile, is_operator: bool) -> BTreeMap<&'static str, bool> {
        let roles = granted_roles(profile, is_operator);
        METHOD_ROLES
            .iter()
            .map(|(path, role)| (*path, roles.contains(role)))
            .collect()
    }

    #[test]
    fn auditors_read_the_audit_log_and_nothing_else() {
        for (path, allowed) in callable(Profile::Auditor, true) {
            assert_eq!(
                allowed,
                path.starts_with("/yrd.exchange.v1.AuditService/"),
                "{path}"
            );
        }
    }

    #[test]
    fn admins_administer_and_cannot_publish() {
        for (path, allowed) in callable(Profile::Admin, true) {
            assert_eq!(
                allowed,
                path.starts_with("/yrd.exchange.v1.AdminService/"),
                "{path}"
            );
        }
        assert!(
            callable(Profile::Admin, false).values().all(|a| !a),
            "a non-operator admin must be able to call nothing"
        );
    }

    #[test]
    fn systems_cannot_administer_or_audit() {
        for (path, allowed) in callable(Profile::System, true) {
            let proof = required_role(path) == RoleRequirement::Role(Role::LogProof);
            let privileged = path.starts_with("/yrd.exchange.v1.AdminService/")
                || (path.starts_with("/yrd.exchange.v1.AuditService/") && !proof);
            assert_eq!(allowed, !privileged, "{path}");
        }
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            let json = serde_json::to_string(&role).expect("serialize");
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            let back: Role = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, role);
        }
        assert_eq!(
            "results:delete".parse::<Role>(),
            Err(RoleError::Unknown("results:delete".into()))
        );
        assert!(serde_json::from_str::<Role>("\"admin\"").is_err());
    }

    #[test]
    fn markdown_table_lists_every_method_once() {
        let table = markdown_table();
        for (path, role) in METHOD_ROLES {
            let row = format!("| `{path}` | `{}` |", role.as_str());
            assert_eq!(table.matches(&row).count(), 1, "{row}");
        }
        for path in PUBLIC_METHODS {
            assert_eq!(
                table.matches(&format!("| `{path}` | none")).count(),
                1,
                "{path}"
            );
        }
        assert!(table.starts_with("| method | required role | granted to |\n|---|---|---|\n"));
    }
}

/// The caller of a business call, as the gateway's token layer established it: the certificate
/// identity of the connection, the roles its bound token grants, and the officer the partner
/// named as acting (`act`). Handlers take it from the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who the connection's certificate names.
    pub identity: crate::AgencyIdentity,
    /// The roles the token grants.
    pub roles: Vec<Role>,
    /// The acting officer, when the partner named one.
    pub officer: Option<String>,
    /// The token's id (`jti`), for the audit log.
    pub token_id: String,
}

impl Caller {
    /// True when the token grants `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The calling agency.
    pub fn agency(&self) -> &crate::AgencyId {
        &self.identity.agency
    }
}
