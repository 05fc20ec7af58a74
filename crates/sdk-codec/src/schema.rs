//! Schema identity and the [`Payload`] trait.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{CodecError, Violation};

const PREFIX: &str = "urn:sdk:schema:";

/// A schema name and an integer version, carried in `ce-dataschema` as
/// `urn:sdk:schema:<name>:v<version>`.
///
/// ```
/// use sdk_codec::SchemaId;
/// let id = SchemaId::new("sdk.v1.AgentMessage", 1);
/// assert_eq!(id.to_string(), "urn:sdk:schema:sdk.v1.AgentMessage:v1");
/// assert_eq!(SchemaId::parse(&id.to_string())?, id);
/// # Ok::<(), sdk_codec::CodecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaId {
    name: Cow<'static, str>,
    version: u32,
}

impl SchemaId {
    /// A schema id; `name` is the fully qualified proto name for `proto/` types.
    pub const fn new(name: &'static str, version: u32) -> SchemaId {
        SchemaId {
            name: Cow::Borrowed(name),
            version,
        }
    }

    /// Parses the `ce-dataschema` form.
    ///
    /// # Errors
    /// [`CodecError::InvalidSchemaId`] for anything but `urn:sdk:schema:<name>:v<n>`.
    pub fn parse(value: &str) -> Result<SchemaId, CodecError> {
        let (name, version) = SchemaId::parse_parts(value)?;
        Ok(SchemaId {
            name: Cow::Owned(name.to_owned()),
            version,
        })
    }

    /// Parses the `ce-dataschema` form into borrowed parts, without allocating.
    pub(crate) fn parse_parts(value: &str) -> Result<(&str, u32), CodecError> {
        let invalid = || CodecError::InvalidSchemaId {
            value: value.to_owned(),
        };
        let rest = value.trim().strip_prefix(PREFIX).ok_or_else(invalid)?;
        let (name, version) = rest.rsplit_once(":v").ok_or_else(invalid)?;
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
        let version: u32 = version.parse().map_err(|_| invalid())?;
        if !name_ok || version == 0 {
            return Err(invalid());
        }
        Ok((name, version))
    }

    /// Whether `text` is exactly this id in its `ce-dataschema` form; the fast path
    /// of every decode, without parsing or allocating.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let Some(rest) = text.strip_prefix(PREFIX) else {
            return false;
        };
        let Some(rest) = rest.strip_prefix(self.name.as_ref()) else {
            return false;
        };
        let Some(digits) = rest.strip_prefix(":v") else {
            return false;
        };
        let mut value: u64 = 0;
        for b in digits.bytes() {
            if !b.is_ascii_digit() || value > u64::from(u32::MAX) {
                return false;
            }
            value = value * 10 + u64::from(b - b'0');
        }
        !digits.is_empty() && value == u64::from(self.version)
    }

    /// The schema name, e.g. `sdk.v1.AgentMessage`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version, from 1.
    pub fn version(&self) -> u32 {
        self.version
    }
}

impl fmt::Display for SchemaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}:v{}", self.name, self.version)
    }
}

/// A value the codec can carry.
///
/// The generated `sdk.v1` types implement it with their schema, Protobuf support and
/// validation rules. A user's own serde type opts in with an empty impl and then works
/// with JSON and MessagePack; asking for Protobuf on it returns
/// [`CodecError::NoProtobufSchema`].
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Note { text: String }
/// impl sdk_codec::Payload for Note {}
/// ```
pub trait Payload: Serialize + DeserializeOwned + Send + 'static {
    /// The schema identity; `None` for ad-hoc types.
    const SCHEMA: Option<SchemaId> = None;

    /// Appends the Protobuf encoding of `self` to `buf`.
    ///
    /// # Errors
    /// [`CodecError::NoProtobufSchema`] unless the type has a `.proto` schema.
    fn encode_protobuf(&self, buf: &mut Vec<u8>) -> Result<(), CodecError> {
        let _ = buf;
        Err(CodecError::NoProtobufSchema {
            type_name: std::any::type_name::<Self>(),
        })
    }

    /// Decodes the Protobuf form; reads `bytes` without copying where the type allows.
    ///
    /// # Errors
    /// [`CodecError::NoProtobufSchema`] unless the type has a `.proto` schema.
    fn decode_protobuf(bytes: Bytes) -> Result<Self, CodecError>
    where
        Self: Sized,
    {
        let _ = bytes;
        Err(CodecError::NoProtobufSchema {
            type_name: std::any::type_name::<Self>(),
        })
    }

    /// Checks the type's semantic rules (required ids, ranges, lengths).
    ///
    /// # Errors
    /// The first [`Violation`] found.
    fn validate(&self) -> Result<(), Violation> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_match_agrees_with_parsing() {
        let id = SchemaId::new("sdk.v1.AgentMessage", 12);
        assert!(id.matches("urn:sdk:schema:sdk.v1.AgentMessage:v12"));
        for other in [
            "urn:sdk:schema:sdk.v1.AgentMessage:v1",
            "urn:sdk:schema:sdk.v1.AgentMessage:v120",
            "urn:sdk:schema:sdk.v1.AgentMessageX:v12",
            "urn:sdk:schema:sdk.v1.AgentMessage:v",
            "urn:sdk:schema:sdk.v1.AgentMessage:v12 ",
            "sdk.v1.AgentMessage:v12",
        ] {
            assert!(!id.matches(other), "{other}");
        }
    }

    #[test]
    fn bad_schema_ids_are_refused() {
        for bad in [
            "",
            "sdk.v1.AgentMessage",
            "urn:sdk:schema:sdk.v1.AgentMessage",
            "urn:sdk:schema:sdk.v1.AgentMessage:v",
            "urn:sdk:schema:sdk.v1.AgentMessage:v0",
            "urn:sdk:schema::v1",
            "urn:sdk:schema:a b:v1",
            "urn:sdk:schema:x:v99999999999",
        ] {
            let err = SchemaId::parse(bad).unwrap_err();
            assert!(matches!(err, CodecError::InvalidSchemaId { .. }), "{bad}");
        }
    }
}
