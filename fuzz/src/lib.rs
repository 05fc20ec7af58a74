//! Shared body of the fuzz targets: decode the input as every `sdk.v1` type.

use bytes::Bytes;
use sdk_codec::v1::*;
use sdk_codec::{Codec, PayloadMeta};

/// Decodes `data` as every type with `content_type` and `encoding`; only a panic fails.
pub fn decode_everything(data: &[u8], content_type: &str, encoding: Option<&str>) {
    let Ok(codec) = Codec::builder().max_decoded_size(1 << 20).build() else {
        return;
    };
    let meta = PayloadMeta::new(content_type).with_encoding(encoding);
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
}
