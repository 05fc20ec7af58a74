//! The one error type of the codec.

/// Everything that can go wrong while encoding or decoding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The content type is not one this codec speaks.
    #[error(
        "unsupported content type {content_type:?}: expected application/json, application/msgpack or application/protobuf"
    )]
    UnsupportedContentType {
        /// The content type as received.
        content_type: String,
    },
    /// The bytes are not valid in the format at all.
    #[error("syntax error in {format} payload at {position}: {message}")]
    Syntax {
        /// The format being decoded.
        format: &'static str,
        /// Where: `line 3 column 7` for JSON, a byte offset otherwise.
        position: String,
        /// What the parser said.
        message: String,
    },
    /// The bytes parse, but do not fit the type.
    #[error("data error in {format} payload at `{path}`: {message}")]
    Data {
        /// The format being decoded.
        format: &'static str,
        /// The field path, e.g. `metadata.tags[2]`; `.` for the root.
        path: String,
        /// What did not fit.
        message: String,
    },
    /// Encoding failed (a map key that JSON cannot express, for example).
    #[error("cannot encode as {format}: {message}")]
    Encode {
        /// The target format.
        format: &'static str,
        /// Why.
        message: String,
    },
}
