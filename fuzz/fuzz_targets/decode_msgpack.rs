//! Fuzz target: every sdk.v1 type from arbitrary MessagePack bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sdk_codec::v1::*;
use sdk_codec::{Codec, PayloadMeta};

fuzz_target!(|data: &[u8]| {
    let codec = Codec::builder().max_decoded_size(1 << 20).build().unwrap();
    let meta = PayloadMeta::new("application/msgpack").with_encoding(None);
    let b = || Bytes::copy_from_slice(data);
    let _ = codec.decode::<AgentMessage>(b(), &meta);
    let _ = codec.decode::<AgentTask>(b(), &meta);
    let _ = codec.decode::<TaskResult>(b(), &meta);
    let _ = codec.decode::<EventMessage>(b(), &meta);
    let _ = codec.decode::<Document>(b(), &meta);
    let _ = codec.decode::<DocumentChunk>(b(), &meta);
    let _ = codec.decode::<StatusUpdate>(b(), &meta);
    let _ = codec.decode::<ErrorInfo>(b(), &meta);
    let v1 = meta.clone().with_schema(Some("urn:sdk:schema:sdk.v1.StatusUpdate:v1"));
    let _ = codec.decode::<StatusUpdate>(b(), &v1);
});
