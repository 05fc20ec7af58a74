//! Fuzz target: every sdk.v1 type from arbitrary application/msgpack bytes (encoding None).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sdk_codec_fuzz::decode_everything(data, "application/msgpack", None);
});
