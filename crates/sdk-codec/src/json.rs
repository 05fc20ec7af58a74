//! JSON decoding with precise errors: syntax with position, data with field path,
//! trailing bytes counted.

use serde::de::DeserializeOwned;

use crate::CodecError;

const FORMAT: &str = "json";

/// Decodes one JSON value. The fast path is plain `serde_json`; only a failure pays
/// for a second pass that finds the field path.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(_) => Err(explain::<T>(bytes)),
    }
}

fn explain<T: DeserializeOwned>(bytes: &[u8]) -> CodecError {
    // A complete value followed by more than whitespace?
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<serde_json::Value>();
    if let Some(Ok(_)) = stream.next() {
        let offset = stream.byte_offset();
        let rest = bytes.get(offset..).unwrap_or_default();
        let trailing = rest.iter().filter(|b| !b.is_ascii_whitespace()).count();
        if trailing > 0 {
            let first = rest
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(0);
            return CodecError::TrailingBytes {
                format: FORMAT,
                count: rest.len() - first,
            };
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(_) => CodecError::Syntax {
            format: FORMAT,
            position: "end of input".into(),
            message: "unexpected data after the value".into(),
        },
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_data() {
                CodecError::Data {
                    format: FORMAT,
                    path,
                    message: strip_position(&inner),
                }
            } else {
                CodecError::Syntax {
                    format: FORMAT,
                    position: format!("line {} column {}", inner.line(), inner.column()),
                    message: strip_position(&inner),
                }
            }
        }
    }
}

/// serde_json appends " at line L column C"; the variant carries it separately.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}
