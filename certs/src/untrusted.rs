//! CSR signing on untrusted bytes: the entry point of the fuzz target `csr` and of its corpus
//! regression test (docs/reliability.md). The admin's `IssueCertificate` path: a fixed CA, a
//! policy approving agency `310000-SAMR`'s `system` profile for a day, then the issued
//! certificate read back as the handler reads it.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use time::{Duration, OffsetDateTime};
use yrd_domain::{AgencyId, Profile};

use crate::{CertInfo, CertificateAuthority, CsrPolicy, IssuedCertificate, PkiError, Validity};

/// The instant certificates are issued at (2023-11-14T22:13:20Z).
const ISSUED_AT: i64 = 1_700_000_000;

static CA: LazyLock<CertificateAuthority> = LazyLock::new(|| {
    let at = OffsetDateTime::from_unix_timestamp(ISSUED_AT).expect("a time in range");
    let validity = Validity::new(at - Duration::days(1), at + Duration::days(365))
        .expect("a valid CA validity");
    CertificateAuthority::create("fuzz CA", validity).expect("a CA")
});

/// Signs `data` as a partner's CSR under the admin's policy. Its first byte picks what the
/// rest is: even, the PEM text as the request carries it (lossily decoded: the contract's
/// field is a string); odd, DER, wrapped in a `CERTIFICATE REQUEST` PEM block, so the PKCS#10
/// parser sees hostile structure directly. A refusal must be the caller's fault, with a reason;
/// an issued certificate must read back; nothing may panic.
pub fn sign_untrusted_csr(data: &[u8]) -> Result<IssuedCertificate, PkiError> {
    let (mode, rest) = data.split_first().unwrap_or((&0, &[]));
    let pem = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            STANDARD.encode(rest)
        )
    };
    let agency = AgencyId::parse("310000-SAMR").expect("a valid agency id");
    let known = |id: &AgencyId| *id == agency;
    let at = OffsetDateTime::from_unix_timestamp(ISSUED_AT).expect("a time in range");
    let validity = Validity::starting(at, Duration::days(1)).expect("a day's validity");
    let policy = CsrPolicy::new(&known, validity)
        .approved_agency(&agency)
        .approved_profile(Profile::System);
    let issued = CA.sign_csr(&pem, policy);
    match &issued {
        Ok(cert) => {
            CertInfo::from_pem(&cert.cert_pem).expect("an issued certificate reads back");
        }
        Err(e) => {
            assert!(
                e.is_caller_fault(),
                "a hostile CSR caused an internal fault: {e}"
            );
            assert!(
                !e.to_string().trim().is_empty(),
                "a refusal without a reason"
            );
        }
    }
    issued
}
