//! Fuzz target: every sdk.v1 type from arbitrary application/json bytes (encoding None).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sdk_codec_fuzz::decode_everything(data, "application/json", None);
});
