//! Access tokens through the verifier every call runs (and hostile claims under a good signature).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = yrd_admin::token::untrusted::verify_untrusted(data);
});
