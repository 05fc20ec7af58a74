//! Wire formats and their media types.

use std::fmt;
use std::str::FromStr;

use crate::CodecError;

/// A payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// JSON, `application/json`.
    Json,
    /// MessagePack with named fields, `application/msgpack`.
    MessagePack,
    /// Protocol Buffers, `application/protobuf`.
    Protobuf,
}

impl Format {
    /// The canonical media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::MessagePack => "application/msgpack",
            Format::Protobuf => "application/protobuf",
        }
    }

    /// A short name for messages and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::MessagePack => "msgpack",
            Format::Protobuf => "protobuf",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.content_type())
    }
}

impl FromStr for Format {
    type Err = CodecError;

    /// Parses a media type; case-insensitive, `x-` variants and parameters accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let essence = s.split(';').next().unwrap_or_default().trim();
        let lower = essence.to_ascii_lowercase();
        let subtype = lower
            .strip_prefix("application/")
            .map(|t| t.strip_prefix("x-").unwrap_or(t));
        match subtype {
            Some("json") => Ok(Format::Json),
            Some("msgpack") => Ok(Format::MessagePack),
            Some("protobuf") => Ok(Format::Protobuf),
            _ => Err(CodecError::UnsupportedContentType {
                content_type: s.to_owned(),
            }),
        }
    }
}
