//! The configured codec: format, compression, limits, validation and upcasters.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{BufMut, Bytes, BytesMut};

use crate::upcast::Upcasters;
use crate::{CodecError, Format, Payload, SchemaId};

/// The only content encoding the codec writes.
pub const ZSTD: &str = "zstd";

/// Encoded bytes plus the three facts a receiver needs to decode them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Encoded {
    /// The payload, compressed when `content_encoding` says so.
    pub bytes: Bytes,
    /// The format it is in.
    pub format: Format,
    /// Its media type, for `ce-datacontenttype`.
    pub content_type: &'static str,
    /// `Some("zstd")` when the payload was compressed after encoding.
    pub content_encoding: Option<&'static str>,
    /// The schema, for `ce-dataschema`; `None` for types without one.
    pub schema: Option<SchemaId>,
}

impl Encoded {
    /// The facts to pass back to [`Codec::decode`].
    pub fn meta(&self) -> PayloadMeta<'_> {
        PayloadMeta {
            content_type: self.content_type,
            content_encoding: self.content_encoding,
            schema: None,
        }
        .with_schema_id(self.schema.as_ref())
    }
}

/// What a receiver knows about a payload: content type, content encoding, schema.
///
/// ```
/// use sdk_codec::PayloadMeta;
/// let meta = PayloadMeta::new("application/msgpack")
///     .with_encoding(Some("zstd"))
///     .with_schema(Some("urn:sdk:schema:sdk.v1.AgentMessage:v1"));
/// assert_eq!(meta.content_type(), "application/msgpack");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadMeta<'a> {
    content_type: &'a str,
    content_encoding: Option<&'a str>,
    schema: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> PayloadMeta<'a> {
    /// A payload of `content_type` (as in `ce-datacontenttype`).
    pub fn new(content_type: &'a str) -> PayloadMeta<'a> {
        PayloadMeta {
            content_type,
            content_encoding: None,
            schema: None,
        }
    }

    /// The `Content-Encoding`, if any.
    pub fn with_encoding(mut self, encoding: Option<&'a str>) -> Self {
        self.content_encoding = encoding;
        self
    }

    /// The `ce-dataschema` value, if any.
    pub fn with_schema(mut self, schema: Option<&'a str>) -> Self {
        self.schema = schema.map(std::borrow::Cow::Borrowed);
        self
    }

    fn with_schema_id(mut self, schema: Option<&SchemaId>) -> Self {
        self.schema = schema.map(|s| std::borrow::Cow::Owned(s.to_string()));
        self
    }

    /// The content type.
    pub fn content_type(&self) -> &str {
        self.content_type
    }

    /// The content encoding.
    pub fn content_encoding(&self) -> Option<&str> {
        self.content_encoding
    }

    /// The schema id text.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }
}

/// Compression settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// Payloads at least this large (encoded) are compressed.
    pub threshold: usize,
    /// zstd level, 1 (fast) to 22 (small); 3 is zstd's default.
    pub level: i32,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            threshold: 8 * 1024,
            level: 3,
        }
    }
}

/// Builds a [`Codec`]. Defaults: JSON; zstd level 3 at 8 KiB and up; 1 MiB maximum
/// encoded size (the NATS default `max_payload`); 16 MiB maximum decompressed size;
/// validation on; the built-in upcasters registered.
#[derive(Debug, Clone)]
pub struct CodecBuilder {
    format: Format,
    compression: Option<Compression>,
    max_encoded: usize,
    max_decoded: usize,
    validate: bool,
    upcasters: Upcasters,
    refused: Vec<String>,
}

impl CodecBuilder {
    /// The format `encode` uses.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Compression, or `None` to never compress.
    pub fn compression(mut self, compression: Option<Compression>) -> Self {
        self.compression = compression;
        self
    }

    /// The largest payload `encode` produces and `decode` accepts, in bytes.
    pub fn max_encoded_size(mut self, bytes: usize) -> Self {
        self.max_encoded = bytes;
        self
    }

    /// The largest payload decompression may produce, in bytes.
    pub fn max_decoded_size(mut self, bytes: usize) -> Self {
        self.max_decoded = bytes;
        self
    }

    /// Whether `decode` checks each type's semantic rules.
    pub fn validate(mut self, on: bool) -> Self {
        self.validate = on;
        self
    }

    /// Registers an upcaster from schema version `Old` to `New` (usually the next).
    /// Both types must carry a schema of the same name; [`CodecBuilder::build`]
    /// reports one that does not.
    pub fn upcaster<Old: Payload, New: Payload>(mut self, convert: fn(Old) -> New) -> Self {
        if let Err(e) = self.upcasters.register(convert) {
            self.refused.push(e);
        }
        self
    }

    /// Finishes the codec.
    ///
    /// # Errors
    /// [`CodecError::UnknownSchemaVersion`] when an upcaster was refused.
    pub fn build(self) -> Result<Codec, CodecError> {
        if let Some(reason) = self.refused.into_iter().next() {
            return Err(CodecError::UnknownSchemaVersion {
                schema: "upcaster".into(),
                version: 0,
                reason,
            });
        }
        Ok(Codec {
            inner: Arc::new(Inner {
                format: self.format,
                compression: self.compression,
                max_encoded: self.max_encoded,
                max_decoded: self.max_decoded,
                validate: self.validate,
                upcasters: self.upcasters,
                size_hint: AtomicUsize::new(256),
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    format: Format,
    compression: Option<Compression>,
    max_encoded: usize,
    max_decoded: usize,
    validate: bool,
    upcasters: Upcasters,
    /// The size of the last encoding, so the next buffer starts big enough.
    size_hint: AtomicUsize,
}

/// Encodes and decodes payloads. Configure once, clone freely (clones share settings).
///
/// ```
/// use sdk_codec::{Codec, Format, v1::AgentMessage};
/// let codec = Codec::builder().format(Format::Protobuf).build()?;
/// let msg = AgentMessage {
///     message_id: "m-1".into(),
///     sender_id: "planner".into(),
///     receiver_id: "researcher".into(),
///     content: "find three papers".into(),
///     ..Default::default()
/// };
/// let encoded = codec.encode(&msg)?;
/// assert_eq!(encoded.content_type, "application/protobuf");
/// assert_eq!(
///     encoded.schema.as_ref().map(|s| s.to_string()).as_deref(),
///     Some("urn:sdk:schema:sdk.v1.AgentMessage:v1")
/// );
/// let back: AgentMessage = codec.decode(encoded.bytes.clone(), &encoded.meta())?;
/// assert_eq!(back, msg);
/// # Ok::<(), sdk_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Codec {
    inner: Arc<Inner>,
}

impl Default for Codec {
    fn default() -> Self {
        Codec {
            inner: Arc::new(Inner {
                format: Format::Json,
                compression: Some(Compression::default()),
                max_encoded: 1024 * 1024,
                max_decoded: 16 * 1024 * 1024,
                validate: true,
                upcasters: default_upcasters(),
                size_hint: AtomicUsize::new(256),
            }),
        }
    }
}

fn default_upcasters() -> Upcasters {
    let mut upcasters = Upcasters::default();
    // Both types carry the same schema name, versions 1 and 2: registration cannot fail.
    let _ = upcasters.register(crate::legacy::status_update_v1_to_v2);
    upcasters
}

impl Codec {
    /// A builder with the defaults listed on [`CodecBuilder`].
    pub fn builder() -> CodecBuilder {
        let defaults = Codec::default();
        CodecBuilder {
            format: defaults.inner.format,
            compression: defaults.inner.compression,
            max_encoded: defaults.inner.max_encoded,
            max_decoded: defaults.inner.max_decoded,
            validate: defaults.inner.validate,
            upcasters: default_upcasters(),
            refused: Vec::new(),
        }
    }

    /// The default format.
    pub fn format(&self) -> Format {
        self.inner.format
    }

    /// Encodes `value` in the default format.
    ///
    /// # Errors
    /// [`CodecError::NoProtobufSchema`], [`CodecError::Encode`] or
    /// [`CodecError::TooLarge`].
    pub fn encode<T: Payload>(&self, value: &T) -> Result<Encoded, CodecError> {
        self.encode_as(value, self.inner.format)
    }

    /// Encodes `value` in `format`.
    ///
    /// # Errors
    /// As [`Codec::encode`].
    pub fn encode_as<T: Payload>(&self, value: &T, format: Format) -> Result<Encoded, CodecError> {
        // Protobuf knows its exact size up front; the serde formats start from the size
        // of the previous encoding so they rarely grow.
        let capacity = match format {
            Format::Protobuf => 0,
            _ => self
                .inner
                .size_hint
                .load(Ordering::Relaxed)
                .min(self.inner.max_encoded),
        };
        let mut buf = Vec::with_capacity(capacity);
        encode_to_vec(value, format, &mut buf)?;
        self.inner
            .size_hint
            .store(buf.len().max(64), Ordering::Relaxed);
        self.finish::<T>(Bytes::from(buf), format)
    }

    /// Encodes `value` in `format` into `buf`, which is reused across calls: the
    /// returned bytes are split off it, and its spare capacity stays for the next call.
    ///
    /// # Errors
    /// As [`Codec::encode`].
    pub fn encode_into<T: Payload>(
        &self,
        value: &T,
        format: Format,
        buf: &mut BytesMut,
    ) -> Result<Encoded, CodecError> {
        buf.clear();
        match format {
            Format::Json => {
                serde_json::to_writer(buf.writer(), value).map_err(|e| encode_error(format, e))?
            }
            Format::MessagePack => rmp_serde::encode::write_named(&mut buf.writer(), value)
                .map_err(|e| encode_error(format, e))?,
            Format::Protobuf => {
                let mut tmp = Vec::new();
                value.encode_protobuf(&mut tmp)?;
                buf.extend_from_slice(&tmp);
            }
        }
        let bytes = buf.split().freeze();
        self.finish::<T>(bytes, format)
    }

    fn finish<T: Payload>(&self, bytes: Bytes, format: Format) -> Result<Encoded, CodecError> {
        let (bytes, content_encoding) = match self.inner.compression {
            Some(c) if bytes.len() >= c.threshold => {
                let packed =
                    zstd::bulk::compress(&bytes, c.level).map_err(|e| CodecError::Encode {
                        format: "zstd",
                        message: e.to_string(),
                    })?;
                if packed.len() < bytes.len() {
                    (Bytes::from(packed), Some(ZSTD))
                } else {
                    (bytes, None)
                }
            }
            _ => (bytes, None),
        };
        if bytes.len() > self.inner.max_encoded {
            return Err(CodecError::TooLarge {
                what: "encoded",
                limit: self.inner.max_encoded,
                actual: bytes.len(),
            });
        }
        Ok(Encoded {
            bytes,
            format,
            content_type: format.content_type(),
            content_encoding,
            schema: T::SCHEMA,
        })
    }

    /// Decodes a payload described by `meta`: checks its size, decompresses it,
    /// checks its schema (upcasting an older version), decodes, and validates.
    ///
    /// # Errors
    /// Every [`CodecError`] that says what was wrong with the payload and where.
    pub fn decode<T: Payload>(
        &self,
        bytes: Bytes,
        meta: &PayloadMeta<'_>,
    ) -> Result<T, CodecError> {
        if bytes.len() > self.inner.max_encoded {
            return Err(CodecError::TooLarge {
                what: "encoded",
                limit: self.inner.max_encoded,
                actual: bytes.len(),
            });
        }
        let format: Format = meta.content_type.parse()?;
        let bytes = match meta.content_encoding.map(str::trim) {
            None | Some("") => bytes,
            Some(e) if e.eq_ignore_ascii_case("identity") => bytes,
            Some(e) if e.eq_ignore_ascii_case(ZSTD) => decompress(&bytes, self.inner.max_decoded)?,
            Some(other) => {
                return Err(CodecError::UnsupportedEncoding {
                    encoding: other.to_owned(),
                });
            }
        };
        let value: T = match (meta.schema.as_deref(), T::SCHEMA) {
            (Some(text), Some(expected)) if expected.matches(text) => decode_format(bytes, format)?,
            (Some(text), Some(expected)) => {
                let (name, version) = SchemaId::parse_parts(text)?;
                if name != expected.name() {
                    return Err(CodecError::SchemaMismatch {
                        expected: expected.to_string(),
                        found: text.trim().to_owned(),
                    });
                }
                if version == expected.version() {
                    decode_format(bytes, format)?
                } else if version > expected.version() {
                    return Err(CodecError::UnknownSchemaVersion {
                        schema: name.to_owned(),
                        version,
                        reason: format!(
                            "newer than this reader, which reads up to v{}; upgrade the reader",
                            expected.version()
                        ),
                    });
                } else {
                    self.inner
                        .upcasters
                        .upcast::<T>(name, version, bytes, format)?
                }
            }
            _ => decode_format(bytes, format)?,
        };
        if self.inner.validate {
            value.validate().map_err(|v| CodecError::Validation {
                schema: T::SCHEMA
                    .map(|s| s.name().to_owned())
                    .unwrap_or_else(|| std::any::type_name::<T>().to_owned()),
                path: v.path,
                reason: v.reason,
            })?;
        }
        Ok(value)
    }
}

fn encode_to_vec<T: Payload>(
    value: &T,
    format: Format,
    buf: &mut Vec<u8>,
) -> Result<(), CodecError> {
    match format {
        Format::Json => serde_json::to_writer(buf, value).map_err(|e| encode_error(format, e)),
        Format::MessagePack => {
            rmp_serde::encode::write_named(buf, value).map_err(|e| encode_error(format, e))
        }
        Format::Protobuf => value.encode_protobuf(buf),
    }
}

fn encode_error(format: Format, e: impl std::fmt::Display) -> CodecError {
    CodecError::Encode {
        format: format.name(),
        message: e.to_string(),
    }
}

/// Decompresses zstd, stopping with [`CodecError::TooLarge`] once `limit` is passed.
///
/// A frame's header declares the window a decoder must keep, and zstd allocates it
/// before producing any output: twelve bytes can ask for 2 GiB. Every frame is
/// checked first ([`check_frames`]), and the decoder itself is held to the same
/// window, so the memory decoding takes stays near `limit`.
fn decompress(bytes: &[u8], limit: usize) -> Result<Bytes, CodecError> {
    let fail = |e: std::io::Error| CodecError::Decompression {
        message: e.to_string(),
    };
    let window_log = window_log_for(limit);
    check_frames(bytes, 1u64 << window_log, limit)?;
    let mut decoder = zstd::stream::read::Decoder::with_buffer(bytes).map_err(fail)?;
    decoder.window_log_max(window_log).map_err(fail)?;
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    decoder.take(cap).read_to_end(&mut out).map_err(fail)?;
    if out.len() > limit {
        return Err(CodecError::TooLarge {
            what: "decompressed",
            limit,
            actual: out.len(),
        });
    }
    Ok(Bytes::from(out))
}

/// zstd's smallest and (on 64-bit targets) largest window logs.
const WINDOW_LOG_MIN: u32 = 10;
const WINDOW_LOG_MAX: u32 = 31;

/// The smallest window log whose window holds `limit` bytes: no frame whose output
/// fits the limit needs a longer history.
fn window_log_for(limit: usize) -> u32 {
    let log = limit.max(1).next_power_of_two().trailing_zeros();
    log.clamp(WINDOW_LOG_MIN, WINDOW_LOG_MAX)
}

const ZSTD_MAGIC: u32 = 0xFD2F_B528;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;

/// Walks the frames of `bytes` (headers and block headers only; nothing is
/// decompressed) and refuses a frame that declares a window over `max_window`, one
/// in a legacy format, whose decoders ignore the window limit, and frames whose
/// declared content sizes add up to more than `limit` (a bomb that says so is
/// refused before any of it is decompressed). Anything else wrong is left for the
/// decoder to report.
fn check_frames(bytes: &[u8], max_window: u64, limit: usize) -> Result<(), CodecError> {
    let mut at = 0usize;
    let mut declared = 0u64;
    while let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) {
        let Some(magic) = le(rest, 0, 4) else {
            return Ok(());
        };
        let magic = magic as u32;
        let size = if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
            match le(rest, 4, 4).and_then(|n| usize::try_from(n).ok()) {
                Some(n) => n.saturating_add(8),
                None => return Ok(()),
            }
        } else if magic == ZSTD_MAGIC {
            if let Some(window) = declared_window(rest)
                && window > max_window
            {
                return Err(CodecError::WindowTooLarge {
                    window,
                    limit: max_window,
                });
            }
            if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(rest) {
                declared = declared.saturating_add(size);
                if declared > u64::try_from(limit).unwrap_or(u64::MAX) {
                    return Err(CodecError::TooLarge {
                        what: "decompressed",
                        limit,
                        actual: usize::try_from(declared).unwrap_or(usize::MAX),
                    });
                }
            }
            match zstd::zstd_safe::find_frame_compressed_size(rest) {
                Ok(n) => n,
                Err(_) => return Ok(()),
            }
        } else if let Some(version) = legacy_version(magic) {
            return Err(CodecError::Decompression {
                message: format!(
                    "the frame at byte {at} is in a legacy zstd format (v0.{version}); \
                     only the standard zstd format (RFC 8878) is accepted"
                ),
            });
        } else {
            return Ok(());
        };
        at = at.saturating_add(size.max(1));
    }
    Ok(())
}

/// The format version of a legacy zstd frame's magic number (v0.1 to v0.7).
fn legacy_version(magic: u32) -> Option<u32> {
    match magic {
        0xFD2F_B51E => Some(1),
        0xFD2F_B522..=0xFD2F_B527 => Some(magic - 0xFD2F_B520),
        _ => None,
    }
}

/// The window a standard zstd frame declares (RFC 8878, 3.1.1.1): the window
/// descriptor, or for a single-segment frame the content size. `None` when the
/// header is cut short.
fn declared_window(frame: &[u8]) -> Option<u64> {
    let descriptor = *frame.get(4)?;
    let single_segment = descriptor & 0x20 != 0;
    if !single_segment {
        let w = *frame.get(5)?;
        let log = 10 + u32::from(w >> 3);
        let base = 1u64 << log;
        return Some(base + (base >> 3) * u64::from(w & 7));
    }
    let dictionary_id_len = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let at = 5 + dictionary_id_len;
    match descriptor >> 6 {
        0 => le(frame, at, 1),
        1 => le(frame, at, 2).map(|n| n + 256),
        2 => le(frame, at, 4),
        _ => le(frame, at, 8),
    }
}

/// `n` bytes little-endian at `at`.
fn le(bytes: &[u8], at: usize, n: usize) -> Option<u64> {
    let slice = bytes.get(at..at.checked_add(n)?)?;
    Some(
        slice
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
    )
}

/// Decodes `bytes` in `format`, with no compression, schema or validation step.
pub(crate) fn decode_format<T: Payload>(bytes: Bytes, format: Format) -> Result<T, CodecError> {
    match format {
        Format::Json => crate::json::decode(&bytes),
        Format::MessagePack => crate::msgpack::decode(&bytes),
        Format::Protobuf => T::decode_protobuf(bytes),
    }
}
