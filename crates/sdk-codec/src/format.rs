//! Wire formats, their media types, and negotiation.

use std::fmt;
use std::str::FromStr;

use crate::CodecError;

/// A payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// JSON, `application/json`; proto3 JSON mapping for `proto/` types.
    Json,
    /// MessagePack with named fields, `application/msgpack`.
    MessagePack,
    /// Protocol Buffers, `application/protobuf`.
    Protobuf,
}

impl Format {
    /// Every format, in the codec's order of preference when a peer accepts several
    /// equally: the most compact first.
    pub const ALL: [Format; 3] = [Format::Protobuf, Format::MessagePack, Format::Json];

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

    /// Picks the best format from a peer's list of accepted media types, written as in
    /// an HTTP `Accept` header: `application/msgpack, application/json;q=0.5`.
    ///
    /// The highest `q` wins; ties go to the peer's order. `*/*` and `application/*`
    /// match every format, taking the codec's preference from `supported`. Entries the
    /// codec does not speak are skipped. Only formats in `supported` are chosen (pass
    /// [`Format::ALL`], or leave out Protobuf for a type without a schema).
    ///
    /// ```
    /// use sdk_codec::Format;
    /// let accept = "application/x-msgpack;q=0.9, application/json";
    /// assert_eq!(Format::negotiate(accept, &Format::ALL), Some(Format::Json));
    /// assert_eq!(Format::negotiate("text/html", &Format::ALL), None);
    /// ```
    pub fn negotiate(accept: &str, supported: &[Format]) -> Option<Format> {
        let mut best: Option<(f32, usize, Format)> = None;
        for (position, entry) in accept.split(',').enumerate() {
            let mut parts = entry.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .filter_map(|q| q.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            if q.is_nan() || q <= 0.0 {
                continue;
            }
            let candidate = if media == "*/*" || media == "application/*" {
                supported.first().copied()
            } else {
                media
                    .parse::<Format>()
                    .ok()
                    .filter(|f| supported.contains(f))
            };
            if let Some(format) = candidate {
                let better = match best {
                    None => true,
                    Some((bq, _, _)) => q > bq,
                };
                if better {
                    best = Some((q, position, format));
                }
            }
        }
        best.map(|(_, _, f)| f)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.content_type())
    }
}

impl FromStr for Format {
    type Err = CodecError;

    /// Parses a media type: case-insensitive, `x-` variants and parameters
    /// (`; charset=utf-8`) accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The canonical forms first: no allocation on the common path.
        match s {
            "application/json" => return Ok(Format::Json),
            "application/msgpack" => return Ok(Format::MessagePack),
            "application/protobuf" => return Ok(Format::Protobuf),
            _ => {}
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_parse_leniently() {
        for (text, format) in [
            ("application/json", Format::Json),
            ("Application/JSON; charset=utf-8", Format::Json),
            ("application/x-msgpack", Format::MessagePack),
            ("application/msgpack", Format::MessagePack),
            (" application/x-protobuf ", Format::Protobuf),
            (
                "application/protobuf;proto=sdk.v1.AgentMessage",
                Format::Protobuf,
            ),
        ] {
            assert_eq!(text.parse::<Format>().unwrap(), format, "{text}");
        }
    }

    #[test]
    fn other_media_types_are_refused_by_name() {
        for text in ["text/plain", "application/xml", "json", "application/x-"] {
            let err = text.parse::<Format>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "unsupported content type {text:?}: expected application/json, \
                     application/msgpack or application/protobuf"
                )
            );
        }
    }

    #[test]
    fn negotiation_takes_the_highest_quality_then_the_peer_order() {
        let all = &Format::ALL;
        assert_eq!(
            Format::negotiate("application/json", all),
            Some(Format::Json)
        );
        assert_eq!(
            Format::negotiate("application/json;q=0.5, application/msgpack", all),
            Some(Format::MessagePack)
        );
        assert_eq!(
            Format::negotiate("application/msgpack, application/json", all),
            Some(Format::MessagePack)
        );
        assert_eq!(Format::negotiate("*/*", all), Some(Format::Protobuf));
        assert_eq!(
            Format::negotiate("application/protobuf", &[Format::Json, Format::MessagePack]),
            None
        );
        assert_eq!(Format::negotiate("application/json;q=0", all), None);
        assert_eq!(Format::negotiate("text/html, image/png", all), None);
    }
}
