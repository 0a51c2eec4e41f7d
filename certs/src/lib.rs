//! `yrd-pki`: the exchange's certificate authority (证书颁发机构).
//!
//! Partner systems reach the exchange over mutual TLS; the certificate they present says
//! which agency they are and in which profile (`system`, `admin`, `auditor`), in one
//! SPIFFE-style URI SAN `spiffe://yrd-exchange/agency/<agency id>/<profile>`. This crate makes
//! and reads those certificates. It does no I/O except for the dev PKI folder, holds no state
//! beyond the CA key, and knows nothing of gRPC: the admin service decides *whether* to issue
//! or revoke, this crate does it correctly.
//!
//! All certificates, CSRs and CRLs are written by `rcgen` and read by `x509-parser`; no ASN.1
//! is assembled by hand.
//!
//! # Layout
//!
//! | module | what lives there |
//! |---|---|
//! | [`ca`] | [`CertificateAuthority`]: create/load the root, issue the server and agency certificates; [`Validity`], [`IssuedKeyPair`] |
//! | [`csr`] | the partner side [`make_csr`] and the exchange side [`CertificateAuthority::sign_csr`] under a [`CsrPolicy`] |
//! | [`crl`] | [`CertificateAuthority::crl`]: signed CRLs from [`RevokedCert`]s with RFC 5280 [`RevocationReason`]s |
//! | [`ec_key`] | [`Es256Key`]: bare ES256 keys (the exchange log's), their JWK thumbprint [`ec_thumbprint`], [`verify_es256`] |
//! | [`log_keys`] | [`LogKeyRing`]: the log's receipt and tree-head keys with their validity windows, [`SharedLogKeys`] |
//! | [`receipt`] | [`ReceiptSigner`]: the log's signed promises that a call's leaf will be in a tree head |
//! | [`inspect`] | [`CertInfo`], [`fingerprint_sha256`] (RFC 8705 `x5t#S256`), [`agency_identity`] for the gateway |
//! | [`dev`] | [`DevPki`]: the zero-configuration PKI folder of `yrd serve` |
//! | [`error`] | [`PkiError`], the caller's fault separated from ours |

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod ca;
pub mod crl;
pub mod csr;
pub mod dev;
pub mod ec_key;
pub mod error;
pub mod inspect;
pub mod log_keys;
pub mod receipt;
pub mod untrusted;

pub use ca::{CertificateAuthority, IssuedKeyPair, SERVER_DEFAULT_NAMES, Validity};
pub use crl::{Crl, RevocationReason, RevokedCert};
pub use csr::{CsrPolicy, DEFAULT_MAX_CSR_VALIDITY, IssuedCertificate, KeyAlgorithm, make_csr};
pub use dev::{DEV_AGENCY_LIFETIME, DEV_CA_LIFETIME, DEV_SERVER_LIFETIME, DevPki};
pub use ec_key::{Es256Key, ec_thumbprint, verify_es256};
pub use error::PkiError;
pub use inspect::{CertInfo, agency_identity, fingerprint_sha256};
pub use log_keys::{LogKey, LogKeyPurpose, LogKeyRing, LogKeyRingError, SharedLogKeys};
pub use receipt::{ReceiptSigner, SignedReceipt};
