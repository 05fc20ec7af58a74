//! One codec for everything the agent SDK serializes.
//!
//! ```
//! use sdk_codec::{Codec, Format};
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct Greeting { text: String }
//!
//! let codec = Codec::builder().format(Format::MessagePack).build();
//! let encoded = codec.encode(&Greeting { text: "hi".into() })?;
//! assert_eq!(encoded.content_type, "application/msgpack");
//! let back: Greeting = codec.decode(&encoded.bytes, encoded.format)?;
//! assert_eq!(back.text, "hi");
//! # Ok::<(), sdk_codec::CodecError>(())
//! ```

mod codec;
mod error;
mod format;

pub use codec::{Codec, CodecBuilder, Encoded};
pub use error::CodecError;
pub use format::Format;
