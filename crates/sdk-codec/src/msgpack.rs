//! MessagePack decoding with precise errors.

use serde::de::DeserializeOwned;

use crate::CodecError;

const FORMAT: &str = "msgpack";

/// How deep arrays and maps may nest, as serde_json allows: each level is a level of
/// recursion in the decoder, and rmp-serde's own default (1024) overflows a 2 MiB
/// worker stack.
const MAX_DEPTH: usize = 128;

/// Decodes one MessagePack value and refuses trailing bytes. The fast path is the
/// borrowing deserializer; a marker walk then finds where the value ends.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_DEPTH);
    match T::deserialize(&mut de) {
        Ok(value) => match value_len(bytes) {
            Some(len) if len < bytes.len() => Err(CodecError::TrailingBytes {
                format: FORMAT,
                count: bytes.len() - len,
            }),
            _ => Ok(value),
        },
        Err(_) => Err(explain::<T>(bytes)),
    }
}

/// The length in bytes of the first MessagePack value in `bytes`, or `None` when it
/// is truncated or malformed. Walks markers only; no values are built.
pub(crate) fn value_len(bytes: &[u8]) -> Option<usize> {
    walk(bytes).ok()
}

/// Why [`walk`] stopped before the end of the first value.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// The reserved marker 0xc1 where a value starts, at this byte offset.
    Reserved(usize),
    /// Truncated, or a length that cannot fit.
    Malformed,
}

/// The length of the first MessagePack value in `bytes`, walking markers in the order
/// a deserializer reads them.
fn walk(bytes: &[u8]) -> Result<usize, Stop> {
    let mut pos = 0usize;
    // Values still to skip; each is at least one byte, so more than remain is malformed.
    let mut pending: u64 = 1;
    let be = |at: usize, n: usize| -> Result<u64, Stop> {
        let slice = at
            .checked_add(n)
            .and_then(|end| bytes.get(at..end))
            .ok_or(Stop::Malformed)?;
        Ok(slice.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    while pending > 0 {
        pending -= 1;
        let marker = *bytes.get(pos).ok_or(Stop::Malformed)?;
        // (bytes of header after the marker, payload bytes, child values)
        let (header, payload, children): (usize, u64, u64) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0, 0),
            0x80..=0x8f => (0, 0, 2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => (0, 0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (0, u64::from(marker & 0x1f), 0),
            0xc4 | 0xd9 => (1, be(pos + 1, 1)?, 0),
            0xc5 | 0xda => (2, be(pos + 1, 2)?, 0),
            0xc6 | 0xdb => (4, be(pos + 1, 4)?, 0),
            0xc7 => (2, be(pos + 1, 1)?, 0),
            0xc8 => (3, be(pos + 1, 2)?, 0),
            0xc9 => (5, be(pos + 1, 4)?, 0),
            0xca => (0, 4, 0),
            0xcb => (0, 8, 0),
            0xcc | 0xd0 => (0, 1, 0),
            0xcd | 0xd1 => (0, 2, 0),
            0xce | 0xd2 => (0, 4, 0),
            0xcf | 0xd3 => (0, 8, 0),
            0xd4 => (1, 1, 0),
            0xd5 => (1, 2, 0),
            0xd6 => (1, 4, 0),
            0xd7 => (1, 8, 0),
            0xd8 => (1, 16, 0),
            0xdc => (2, 0, be(pos + 1, 2)?),
            0xdd => (4, 0, be(pos + 1, 4)?),
            0xde => (2, 0, 2 * be(pos + 1, 2)?),
            0xdf => (4, 0, 2 * be(pos + 1, 4)?),
            0xc1 => return Err(Stop::Reserved(pos)),
        };
        pos = pos
            .checked_add(1 + header)
            .and_then(|p| p.checked_add(usize::try_from(payload).ok()?))
            .ok_or(Stop::Malformed)?;
        if pos > bytes.len() {
            return Err(Stop::Malformed);
        }
        pending = pending.checked_add(children).ok_or(Stop::Malformed)?;
        if pending > (bytes.len() - pos) as u64 {
            return Err(Stop::Malformed);
        }
    }
    Ok(pos)
}

/// What kind of value a marker byte starts, for messages.
fn kind_of(marker: u8) -> &'static str {
    match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => "an integer",
        0x80..=0x8f | 0xde | 0xdf => "a map",
        0x90..=0x9f | 0xdc | 0xdd => "an array",
        0xa0..=0xbf | 0xd9..=0xdb => "a string",
        0xc0 => "nil",
        0xc2 | 0xc3 => "a boolean",
        0xc4..=0xc6 => "binary data",
        0xc7..=0xc9 | 0xd4..=0xd8 => "an extension value",
        0xca | 0xcb => "a float",
        0xc1 => "the reserved marker",
    }
}

fn explain<T: DeserializeOwned>(bytes: &[u8]) -> CodecError {
    let mut rest: &[u8] = bytes;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    de.set_max_depth(MAX_DEPTH);
    let result = serde_path_to_error::deserialize::<_, T>(&mut de);
    drop(de);
    let offset = bytes.len() - rest.len();
    let syntax = |position: usize, path: &str, message: String| CodecError::Syntax {
        format: FORMAT,
        position: match path {
            "" | "." => format!("byte {position}"),
            p => format!("byte {position} (in `{p}`)"),
        },
        message,
    };
    match result {
        Ok(_) => syntax(
            offset,
            ".",
            "the value decoded only on a second attempt".into(),
        ),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            use rmp_serde::decode::Error as E;
            match inner {
                E::TypeMismatch(marker) if marker.to_u8() == 0xc1 => {
                    let at = match walk(bytes) {
                        Err(Stop::Reserved(at)) => at,
                        _ => offset.saturating_sub(1),
                    };
                    syntax(
                        at,
                        &path,
                        "the payload is not valid MessagePack: 0xc1 is a reserved marker \
                         that starts no value; check that the sender encodes MessagePack, \
                         or declare the content type it does encode"
                            .into(),
                    )
                }
                E::InvalidMarkerRead(ref io) | E::InvalidDataRead(ref io)
                    if io.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    syntax(
                        offset,
                        ".",
                        "the payload ends in the middle of a value; it was cut short \
                         (check the sender and any size limit on the way)"
                            .into(),
                    )
                }
                E::InvalidMarkerRead(_) | E::InvalidDataRead(_) => {
                    syntax(offset, ".", inner.to_string())
                }
                E::DepthLimitExceeded => syntax(
                    offset,
                    &path,
                    "values are nested too deeply for this reader".into(),
                ),
                E::TypeMismatch(marker) => CodecError::Data {
                    format: FORMAT,
                    path,
                    message: format!(
                        "invalid type: {} (marker 0x{:02x}), which this field cannot hold",
                        kind_of(marker.to_u8()),
                        marker.to_u8()
                    ),
                },
                // `Syntax` is what rmp-serde makes of serde's own errors: invalid
                // type, unknown variant, missing field. Those are data errors.
                E::Syntax(message) => CodecError::Data {
                    format: FORMAT,
                    path,
                    message,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_len_finds_the_end_of_nested_values() {
        #[derive(serde::Serialize)]
        struct S {
            a: Vec<u32>,
            b: std::collections::BTreeMap<String, f64>,
            c: Option<String>,
            d: serde_bytes_like::Bin,
            e: i64,
        }
        mod serde_bytes_like {
            pub(super) struct Bin(pub(super) Vec<u8>);
            impl serde::Serialize for Bin {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.serialize_bytes(&self.0)
                }
            }
        }
        let value = S {
            a: (0..300).collect(),
            b: [("x".to_owned(), 1.5), ("y".to_owned(), -2.0)].into(),
            c: Some("z".repeat(40)),
            d: serde_bytes_like::Bin(vec![7; 300]),
            e: -5_000_000_000,
        };
        let bytes = rmp_serde::to_vec_named(&value).unwrap();
        assert_eq!(value_len(&bytes), Some(bytes.len()));
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[1, 2, 3]);
        assert_eq!(value_len(&longer), Some(bytes.len()));
        assert_eq!(value_len(&bytes[..bytes.len() - 1]), None);
        assert_eq!(value_len(&[0xc1]), None);
        assert_eq!(walk(&[0x92, 0x01, 0xc1]), Err(Stop::Reserved(2)));
        assert_eq!(value_len(&[0xdf, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
