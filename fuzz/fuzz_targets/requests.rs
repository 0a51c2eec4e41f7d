//! Every step request of DisposalService: prost decoding, then the handler's field checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = yrd_gateway::fuzzing::request(data);
});
