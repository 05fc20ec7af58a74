//! The configured codec.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{CodecError, Format};

/// Encoded bytes plus the facts a receiver needs to decode them.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// The payload.
    pub bytes: Bytes,
    /// The format it is in.
    pub format: Format,
    /// Its media type, for `ce-datacontenttype`.
    pub content_type: &'static str,
}

/// Builds a [`Codec`].
#[derive(Debug, Clone)]
pub struct CodecBuilder {
    format: Format,
}

impl CodecBuilder {
    /// The format `encode` uses.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Finishes the codec.
    pub fn build(self) -> Codec {
        Codec {
            format: self.format,
        }
    }
}

/// Encodes and decodes values; configure once, share everywhere.
#[derive(Debug, Clone)]
pub struct Codec {
    format: Format,
}

impl Default for Codec {
    fn default() -> Self {
        Codec::builder().build()
    }
}

impl Codec {
    /// A builder with JSON as the default format.
    pub fn builder() -> CodecBuilder {
        CodecBuilder {
            format: Format::Json,
        }
    }

    /// Encodes `value` in the default format.
    ///
    /// # Errors
    /// [`CodecError::Encode`] when the value cannot be expressed in the format.
    pub fn encode<T: Serialize>(&self, value: &T) -> Result<Encoded, CodecError> {
        let format = self.format;
        let bytes = match format {
            Format::Json => serde_json::to_vec(value).map_err(|e| encode_error(format, e))?,
            Format::MessagePack => {
                rmp_serde::to_vec_named(value).map_err(|e| encode_error(format, e))?
            }
            Format::Protobuf => {
                return Err(CodecError::Encode {
                    format: format.name(),
                    message: "this type has no protobuf schema".into(),
                });
            }
        };
        Ok(Encoded {
            bytes: Bytes::from(bytes),
            format,
            content_type: format.content_type(),
        })
    }

    /// Decodes `bytes` that are in `format`.
    ///
    /// # Errors
    /// [`CodecError::Syntax`] or [`CodecError::Data`], with position or field path.
    pub fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        format: Format,
    ) -> Result<T, CodecError> {
        match format {
            Format::Json => {
                let mut de = serde_json::Deserializer::from_slice(bytes);
                let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    if inner.is_data() {
                        CodecError::Data {
                            format: format.name(),
                            path,
                            message: inner.to_string(),
                        }
                    } else {
                        CodecError::Syntax {
                            format: format.name(),
                            position: format!("line {} column {}", inner.line(), inner.column()),
                            message: inner.to_string(),
                        }
                    }
                })?;
                de.end().map_err(|e| CodecError::Syntax {
                    format: format.name(),
                    position: format!("line {} column {}", e.line(), e.column()),
                    message: e.to_string(),
                })?;
                Ok(value)
            }
            Format::MessagePack => {
                let mut de = rmp_serde::Deserializer::new(bytes);
                serde_path_to_error::deserialize(&mut de).map_err(|e| CodecError::Data {
                    format: format.name(),
                    path: e.path().to_string(),
                    message: e.into_inner().to_string(),
                })
            }
            Format::Protobuf => Err(CodecError::UnsupportedContentType {
                content_type: format.content_type().into(),
            }),
        }
    }
}

fn encode_error(format: Format, e: impl std::fmt::Display) -> CodecError {
    CodecError::Encode {
        format: format.name(),
        message: e.to_string(),
    }
}
