//! MessagePack decoding with precise errors.

use serde::de::DeserializeOwned;

use crate::CodecError;

const FORMAT: &str = "msgpack";

/// Decodes one MessagePack value and refuses trailing bytes.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let mut rest: &[u8] = bytes;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    match T::deserialize(&mut de) {
        Ok(value) => {
            drop(de);
            if rest.is_empty() {
                Ok(value)
            } else {
                Err(CodecError::TrailingBytes {
                    format: FORMAT,
                    count: rest.len(),
                })
            }
        }
        Err(_) => Err(explain::<T>(bytes)),
    }
}

fn explain<T: DeserializeOwned>(bytes: &[u8]) -> CodecError {
    let mut rest: &[u8] = bytes;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    let result = serde_path_to_error::deserialize::<_, T>(&mut de);
    drop(de);
    let offset = bytes.len() - rest.len();
    match result {
        Ok(_) => CodecError::Syntax {
            format: FORMAT,
            position: format!("byte {offset}"),
            message: "the value decoded only on a second attempt".into(),
        },
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            use rmp_serde::decode::Error as E;
            match inner {
                E::InvalidMarkerRead(_)
                | E::InvalidDataRead(_)
                | E::Syntax(_)
                | E::DepthLimitExceeded => CodecError::Syntax {
                    format: FORMAT,
                    position: format!("byte {offset}"),
                    message: inner.to_string(),
                },
                other => CodecError::Data {
                    format: FORMAT,
                    path,
                    message: other.to_string(),
                },
            }
        }
    }
}
