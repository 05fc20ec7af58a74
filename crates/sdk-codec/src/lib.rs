#![doc = include_str!("../README.md")]
mod codec;
mod error;
mod format;

pub use codec::{Codec, CodecBuilder, Encoded};
pub use error::CodecError;
pub use format::Format;
