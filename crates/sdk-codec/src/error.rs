//! The one error type of the codec.

/// Everything that can go wrong while encoding or decoding.
///
/// Each variant says what was wrong and where, so a caller can answer a bad message
/// with a precise error reply instead of "decode failed".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The content type is not one this codec speaks, or there is none (empty).
    #[error("{}", content_type_text(content_type))]
    UnsupportedContentType {
        /// The content type as received; empty when the message had none.
        content_type: String,
    },
    /// The content encoding is not one this codec speaks.
    #[error("unsupported content encoding {encoding:?}: expected zstd or none")]
    UnsupportedEncoding {
        /// The content encoding as received.
        encoding: String,
    },
    /// Protobuf was asked for a type that has no `.proto` schema.
    #[error("{type_name} has no protobuf schema; use JSON or MessagePack for it")]
    NoProtobufSchema {
        /// The Rust type.
        type_name: &'static str,
    },
    /// The bytes are not valid in the format at all.
    #[error("syntax error in {format} payload at {position}: {message}")]
    Syntax {
        /// The format being decoded: `json`, `msgpack` or `protobuf`.
        format: &'static str,
        /// Where: `line 3 column 7` for JSON, `byte 12` for MessagePack.
        position: String,
        /// What the parser said.
        message: String,
    },
    /// The bytes parse, but do not fit the type.
    #[error("data error in {format} payload at {}: {message}", shown_path(path))]
    Data {
        /// The format being decoded.
        format: &'static str,
        /// The field path, e.g. `metadata.tags[2]`; `.` for the root (shown as
        /// `(root)` in the message).
        path: String,
        /// What did not fit.
        message: String,
    },
    /// The payload declares a schema version this reader cannot read.
    #[error("unknown schema version: {schema} version {version} ({reason})")]
    UnknownSchemaVersion {
        /// The schema name.
        schema: String,
        /// The version the payload declares.
        version: u32,
        /// Why it cannot be read: newer than this reader, or no upcaster.
        reason: String,
    },
    /// The payload declares a different schema than the type asked for.
    #[error("schema mismatch: expected {expected}, the payload declares {found}")]
    SchemaMismatch {
        /// The schema of the requested type.
        expected: String,
        /// The schema the payload declares.
        found: String,
    },
    /// The `ce-dataschema` value cannot be parsed.
    #[error("invalid schema id {value:?}: expected urn:sdk:schema:<name>:v<version>")]
    InvalidSchemaId {
        /// The value as received.
        value: String,
    },
    /// The value decoded, but breaks a rule of its type.
    #[error("validation failed for {schema} at {}: {reason}", shown_path(path))]
    Validation {
        /// The schema (or Rust type) name.
        schema: String,
        /// The field path, e.g. `embedding`.
        path: String,
        /// The rule that was broken.
        reason: String,
    },
    /// A payload is larger than the configured limit.
    #[error("{what} payload is {actual} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// `encoded` or `decompressed`.
        what: &'static str,
        /// The limit.
        limit: usize,
        /// The actual size (for decompression: the content size the frames declare,
        /// or, when they declare none, the size at which decoding stopped).
        actual: usize,
    },
    /// A zstd frame declares a window (the history a decoder must keep) larger than
    /// the decompressed-size limit allows: decoding it would allocate that window.
    #[error(
        "zstd frame declares a {window}-byte window, over the limit of {limit} bytes \
         set by the decompressed-size limit; compress with a smaller window \
         (a lower level, or a known content size) or raise max_decoded_size"
    )]
    WindowTooLarge {
        /// The window the frame declares, in bytes.
        window: u64,
        /// The largest window accepted: the decompressed-size limit rounded up to a
        /// power of two (at least 1 KiB).
        limit: u64,
    },
    /// The compressed payload is corrupt.
    #[error("zstd decompression failed: {message}")]
    Decompression {
        /// What the decompressor said.
        message: String,
    },
    /// A complete value was followed by more bytes.
    #[error("{count} trailing bytes after a complete {format} value")]
    TrailingBytes {
        /// The format.
        format: &'static str,
        /// How many bytes were left over.
        count: usize,
    },
    /// Encoding failed (a map key that JSON cannot express, a NaN in JSON, ...).
    #[error("cannot encode as {format}: {message}")]
    Encode {
        /// The target format.
        format: &'static str,
        /// Why.
        message: String,
    },
}

/// The media types `decode` accepts, for messages.
const ACCEPTED: &str = "application/json, application/msgpack or application/protobuf";

fn content_type_text(content_type: &str) -> String {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.is_empty() {
        format!(
            "the message has no content type: set the ce-datacontenttype header \
             (or Content-Type) to {ACCEPTED}"
        )
    } else {
        format!("unsupported content type {content_type:?}: expected {ACCEPTED}")
    }
}

/// A field path for messages: `` `metadata.k` ``, or `(root)` for the value itself.
fn shown_path(path: &str) -> String {
    match path {
        "" | "." => "(root)".to_owned(),
        p => format!("`{p}`"),
    }
}

/// A broken rule found by a type's validation, before it is tied to a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field path.
    pub path: String,
    /// The rule that was broken.
    pub reason: String,
}

impl Violation {
    /// A violation at `path`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Violation {
        Violation {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
