//! A partner's CSR through the admin's IssueCertificate signing path.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = yrd_pki::untrusted::sign_untrusted_csr(data);
});
