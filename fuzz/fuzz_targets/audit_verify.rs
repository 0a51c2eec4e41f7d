//! Exported audit files through `yrd audit verify`'s offline check.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = yrd_gateway::fuzzing::audit_export(data);
});
