#![doc = include_str!("../README.md")]

mod codec;
pub mod compat;
mod error;
mod format;
mod json;
pub mod legacy;
mod msgpack;
mod proto;
#[cfg(feature = "samples")]
pub mod samples;
mod schema;
mod upcast;
mod wire;

pub use codec::{Codec, CodecBuilder, Compression, Encoded, PayloadMeta, ZSTD};
pub use error::{CodecError, Violation};
pub use format::Format;
pub use proto::{FILE_DESCRIPTOR_SET, v1};
pub use schema::{Payload, SchemaId};
pub use wire::ProtoEnum;
