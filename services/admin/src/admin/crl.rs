//! `GetCrl`: the exchange's current certificate revocation list, signed by its CA.

use yrd_call::timestamp;
use yrd_pki::{PkiError, RevocationReason, RevokedCert};
use yrd_proto::v1::GetCrlResponse;

use super::AdminHandler;
use crate::error::AdminError;

/// How long a CRL handed out by `GetCrl` is valid.
const CRL_VALIDITY: time::Duration = time::Duration::days(2);

impl AdminHandler {
    pub(super) async fn get_crl_call(&self) -> Result<GetCrlResponse, AdminError> {
        let ca = self.ca()?;
        let seq = self.store.revocation_seq().await?;
        let revoked = self.store.revoked_certificates().await?;
        let entries: Vec<RevokedCert> = revoked
            .iter()
            .map(|r| RevokedCert {
                serial_hex: r.serial.clone(),
                revoked_at: r.revoked_at,
                reason: r.reason.parse().unwrap_or(RevocationReason::Unspecified),
            })
            .collect();
        let this_update = self.clock.now();
        let next_update = this_update + CRL_VALIDITY;
        let crl = ca
            .crl(
                &entries,
                this_update,
                next_update,
                u64::try_from(seq).unwrap_or(0),
            )
            .map_err(|e: PkiError| AdminError::internal("signing the CRL", e))?;
        Ok(GetCrlResponse {
            crl_der: crl.der.to_vec(),
            crl_pem: crl.pem,
            this_update: Some(timestamp(this_update)),
            next_update: Some(timestamp(next_update)),
            crl_number: u64::try_from(seq).unwrap_or(0),
        })
    }
}
