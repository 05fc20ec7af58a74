//! Thin wiring of the three core crates.
//!
//! `sdk-codec`, `sdk-bus` and `sdk-telemetry` know nothing of each other; this crate is
//! the only place that sees all three.
//!
//! ```
//! use sdk_integration::codec::{Codec, Format};
//! let codec = Codec::builder().format(Format::Json).build();
//! let encoded = codec.encode(&serde_json::json!({"hello": "world"}))?;
//! assert_eq!(encoded.content_type, "application/json");
//! # Ok::<(), sdk_integration::codec::CodecError>(())
//! ```

pub use sdk_bus as bus;
pub use sdk_codec as codec;
pub use sdk_telemetry as telemetry;
