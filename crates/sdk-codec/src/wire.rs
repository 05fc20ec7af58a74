//! serde adapters that give the generated types their proto3 JSON form.
//!
//! The generated `sdk.v1` types use these through `#[serde(with = ...)]` attributes
//! written by `build.rs`. Every adapter checks `is_human_readable()`: JSON gets the
//! proto3 JSON mapping, MessagePack gets the compact form where one exists (native
//! 64-bit integers, embeddings as a `bin` of little-endian f32).

use std::fmt;

/// A prost enumeration that can be named.
pub trait ProtoEnum {
    /// The enum's proto name, for messages.
    const NAME: &'static str;
    /// The proto name of a value (`TASK_STATUS_RUNNING`), if it is known.
    fn name_of(value: i32) -> Option<&'static str>;
    /// The value of a proto name.
    fn value_of(name: &str) -> Option<i32>;
}

/// `int64` fields: a decimal string in JSON, an integer in MessagePack.
// build.rs points every int64 field here; no sdk.v1 message has one yet.
#[allow(dead_code)]
pub(crate) mod int64 {
    use serde::{Deserializer, Serializer, de};

    pub(crate) fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(v)
        } else {
            s.serialize_i64(*v)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = i64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a 64-bit integer or a decimal string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
                Ok(v)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
                i64::try_from(v).map_err(|_| E::custom(format!("{v} is out of range for int64")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
                super::integral(v).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
                v.parse()
                    .map_err(|_| E::custom(format!("{v:?} is not a valid int64")))
            }
        }
        d.deserialize_any(V)
    }
}

/// `uint64` fields: a decimal string in JSON, an integer in MessagePack.
pub(crate) mod uint64 {
    use serde::{Deserializer, Serializer, de};

    pub(crate) fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(v)
        } else {
            s.serialize_u64(*v)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = u64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an unsigned 64-bit integer or a decimal string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
                u64::try_from(v).map_err(|_| E::custom(format!("{v} is out of range for uint64")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
                Ok(v)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
                let i = super::integral(v).map_err(E::custom)?;
                u64::try_from(i).map_err(|_| E::custom(format!("{v} is out of range for uint64")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
                v.parse()
                    .map_err(|_| E::custom(format!("{v:?} is not a valid uint64")))
            }
        }
        d.deserialize_any(V)
    }
}

fn integral(v: f64) -> Result<i64, String> {
    // 2^63 as f64; anything at or past it does not fit.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if v.fract() == 0.0 && v.abs() < LIMIT {
        #[allow(clippy::cast_possible_truncation)] // checked integral and in range above
        Ok(v as i64)
    } else {
        Err(format!("{v} is not an integer"))
    }
}

/// Enum fields (an `i32` in prost): the value's name in both formats; numbers are
/// accepted on input, and an unknown number is written as a number.
pub(crate) mod enum_name {
    use std::marker::PhantomData;

    use serde::{Deserializer, Serializer, de};

    use super::ProtoEnum;

    pub(crate) fn serialize<E: ProtoEnum, S: Serializer>(v: &i32, s: S) -> Result<S::Ok, S::Error> {
        match E::name_of(*v) {
            Some(name) => s.serialize_str(name),
            None => s.serialize_i32(*v),
        }
    }

    pub(crate) fn deserialize<'de, E: ProtoEnum, D: Deserializer<'de>>(
        d: D,
    ) -> Result<i32, D::Error> {
        struct V<E>(PhantomData<E>);
        impl<E: ProtoEnum> de::Visitor<'_> for V<E> {
            type Value = i32;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a {} name or number", E::NAME)
            }
            fn visit_i64<Er: de::Error>(self, v: i64) -> Result<i32, Er> {
                i32::try_from(v).map_err(|_| Er::custom(format!("{v} is out of range for an enum")))
            }
            fn visit_u64<Er: de::Error>(self, v: u64) -> Result<i32, Er> {
                i32::try_from(v).map_err(|_| Er::custom(format!("{v} is out of range for an enum")))
            }
            fn visit_str<Er: de::Error>(self, v: &str) -> Result<i32, Er> {
                E::value_of(v).ok_or_else(|| Er::custom(format!("unknown {} value {v:?}", E::NAME)))
            }
            fn visit_unit<Er: de::Error>(self) -> Result<i32, Er> {
                Ok(0)
            }
        }
        d.deserialize_any(V::<E>(PhantomData))
    }
}

/// `google.protobuf.Timestamp`: an RFC 3339 string in UTC (`2024-05-01T12:00:00.250Z`).
pub(crate) mod timestamp {
    use prost_types::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub(crate) fn serialize<S: Serializer>(v: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ts) if !super::in_range(ts) => Err(serde::ser::Error::custom(format!(
                "timestamp {}s {}ns is outside 0001-01-01..9999-12-31 or has invalid nanos",
                ts.seconds, ts.nanos
            ))),
            Some(ts) => s.collect_str(&super::Rfc3339(ts)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| super::parse_rfc3339(&t).map_err(de::Error::custom))
            .transpose()
    }
}

/// Seconds from 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z to the Unix epoch,
/// the range proto3 allows.
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

fn in_range(ts: &prost_types::Timestamp) -> bool {
    (MIN_SECONDS..=MAX_SECONDS).contains(&ts.seconds) && (0..=999_999_999).contains(&ts.nanos)
}

struct Rfc3339<'a>(&'a prost_types::Timestamp);

impl fmt::Display for Rfc3339<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.seconds.clamp(MIN_SECONDS, MAX_SECONDS);
        let nanos = self.0.nanos.clamp(0, 999_999_999);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60
        )?;
        if nanos == 0 {
        } else if nanos % 1_000_000 == 0 {
            write!(f, ".{:03}", nanos / 1_000_000)?;
        } else if nanos % 1_000 == 0 {
            write!(f, ".{:06}", nanos / 1_000)?;
        } else {
            write!(f, ".{nanos:09}")?;
        }
        f.write_str("Z")
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
pub(crate) fn parse_rfc3339(text: &str) -> Result<prost_types::Timestamp, String> {
    let bad = |why: &str| format!("{text:?} is not an RFC 3339 timestamp: {why}");
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad("expected YYYY-MM-DDTHH:MM:SS"));
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = text.get(range).ok_or_else(|| bad("truncated"))?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad("expected digits"));
        }
        part.parse::<i64>().map_err(|_| bad("expected digits"))
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if year < 1 || !(1..=12).contains(&month) {
        return Err(bad("date out of range"));
    }
    let max_day = month_days
        .get(usize::try_from(month - 1).map_err(|_| bad("month"))?)
        .copied()
        .unwrap_or(31);
    if day < 1 || day > max_day || hour > 23 || minute > 59 || second > 60 {
        return Err(bad("date or time out of range"));
    }
    let mut rest = &text[19..];
    let mut nanos: i64 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(bad("fraction must have 1 to 9 digits"));
        }
        let mut value: i64 = frac[..digits].parse().map_err(|_| bad("fraction"))?;
        for _ in digits..9 {
            value *= 10;
        }
        nanos = value;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || !matches!(ob[0], b'+' | b'-') || ob[3] != b':' {
                return Err(bad("expected Z or an offset like +02:00"));
            }
            let h = num_in(rest, 1..3).ok_or_else(|| bad("offset hours"))?;
            let m = num_in(rest, 4..6).ok_or_else(|| bad("offset minutes"))?;
            if h > 23 || m > 59 {
                return Err(bad("offset out of range"));
            }
            let sign = if ob[0] == b'-' { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second.min(59)
            - offset;
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&seconds) {
        return Err(bad("outside 0001-01-01..9999-12-31"));
    }
    Ok(prost_types::Timestamp {
        seconds,
        nanos: i32::try_from(nanos).map_err(|_| bad("fraction"))?,
    })
}

fn num_in(text: &str, range: std::ops::Range<usize>) -> Option<i64> {
    let part = text.get(range)?;
    part.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| part.parse().ok())?
}

/// `google.protobuf.Struct`: a JSON object in JSON, a map in MessagePack.
pub(crate) mod structure {
    use prost_types::value::Kind;
    use prost_types::{ListValue, Struct, Value};
    use serde::ser::{SerializeMap, SerializeSeq};
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

    pub(crate) fn serialize<S: Serializer>(v: &Option<Struct>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(st) => StructRef(st).serialize(s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Struct>, D::Error> {
        let value: Option<serde_json::Value> = Option::deserialize(d)?;
        match value {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Object(map)) => Ok(Some(from_json_map(map))),
            Some(other) => Err(de::Error::custom(format!(
                "expected a JSON object, found {}",
                kind_name(&other)
            ))),
        }
    }

    fn kind_name(v: &serde_json::Value) -> &'static str {
        match v {
            serde_json::Value::Null => "null",
            serde_json::Value::Bool(_) => "a boolean",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::Object(_) => "an object",
        }
    }

    /// Converts a JSON object into a `Struct`.
    pub(crate) fn from_json_map(map: serde_json::Map<String, serde_json::Value>) -> Struct {
        Struct {
            fields: map.into_iter().map(|(k, v)| (k, from_json(v))).collect(),
        }
    }

    fn from_json(v: serde_json::Value) -> Value {
        let kind = match v {
            serde_json::Value::Null => Kind::NullValue(0),
            serde_json::Value::Bool(b) => Kind::BoolValue(b),
            serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Kind::StringValue(s),
            serde_json::Value::Array(items) => Kind::ListValue(ListValue {
                values: items.into_iter().map(from_json).collect(),
            }),
            serde_json::Value::Object(map) => Kind::StructValue(from_json_map(map)),
        };
        Value { kind: Some(kind) }
    }

    struct StructRef<'a>(&'a Struct);
    struct ValueRef<'a>(&'a Value);

    impl Serialize for StructRef<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.fields.len()))?;
            for (k, v) in &self.0.fields {
                map.serialize_entry(k, &ValueRef(v))?;
            }
            map.end()
        }
    }

    impl Serialize for ValueRef<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match &self.0.kind {
                None | Some(Kind::NullValue(_)) => s.serialize_unit(),
                Some(Kind::NumberValue(n)) => s.serialize_f64(*n),
                Some(Kind::StringValue(v)) => s.serialize_str(v),
                Some(Kind::BoolValue(b)) => s.serialize_bool(*b),
                Some(Kind::StructValue(st)) => StructRef(st).serialize(s),
                Some(Kind::ListValue(list)) => {
                    let mut seq = s.serialize_seq(Some(list.values.len()))?;
                    for item in &list.values {
                        seq.serialize_element(&ValueRef(item))?;
                    }
                    seq.end()
                }
            }
        }
    }
}

/// Embedding vectors: an array of numbers in JSON; in MessagePack a `bin` of
/// little-endian f32, written and read without per-element work on little-endian
/// machines. Arrays of numbers are accepted in both.
pub(crate) mod embedding {
    use serde::{Deserializer, Serializer, de};

    /// Upper bound on what a length prefix may pre-allocate.
    const MAX_PREALLOC: usize = 1 << 16;

    pub(crate) fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_seq(v)
        } else {
            #[cfg(target_endian = "little")]
            {
                s.serialize_bytes(bytemuck::cast_slice(v))
            }
            #[cfg(target_endian = "big")]
            {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                s.serialize_bytes(&bytes)
            }
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Vec<f32>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of numbers or a bin of little-endian f32")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<f32>, E> {
                super::f32_from_le_bytes(v).map_err(E::custom)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f32>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOC));
                while let Some(x) = seq.next_element::<f32>()? {
                    out.push(x);
                }
                Ok(out)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Vec<f32>, E> {
                Ok(Vec::new())
            }
        }
        d.deserialize_any(V)
    }
}

/// Little-endian f32 bytes to a vector; one copy, no per-element work on
/// little-endian machines.
pub(crate) fn f32_from_le_bytes(bytes: &[u8]) -> Result<Vec<f32>, String> {
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "embedding bin is {} bytes, not a multiple of 4",
            bytes.len()
        ));
    }
    // One pass into uninitialised capacity: `pod_collect_to_vec` zero-filled the
    // vector first (a memset as long as the copy). The loop compiles to unaligned
    // vector loads and stores: the bytes come off the wire at any alignment.
    let mut out = Vec::with_capacity(bytes.len() / 4);
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(bytemuck::pod_read_unaligned(c))),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        for (secs, nanos, text) in [
            (0, 0, "1970-01-01T00:00:00Z"),
            (1_714_564_800, 250_000_000, "2024-05-01T12:00:00.250Z"),
            (951_782_400, 1_000, "2000-02-29T00:00:00.000001Z"),
            (MIN_SECONDS, 0, "0001-01-01T00:00:00Z"),
            (MAX_SECONDS, 999_999_999, "9999-12-31T23:59:59.999999999Z"),
        ] {
            let ts = prost_types::Timestamp {
                seconds: secs,
                nanos,
            };
            assert_eq!(Rfc3339(&ts).to_string(), text);
            assert_eq!(parse_rfc3339(text).unwrap(), ts);
        }
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let ts = parse_rfc3339("2024-05-01T14:00:00+02:00").unwrap();
        assert_eq!(Rfc3339(&ts).to_string(), "2024-05-01T12:00:00Z");
    }

    #[test]
    fn bad_timestamps_say_why() {
        for bad in [
            "",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01 12:00:00",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+2:00",
            "2024-05-01T12:00:00.1234567890Z",
            "20x4-05-01T12:00:00Z",
            "2024-05-01T12:00:00Zjunk",
        ] {
            let err = parse_rfc3339(bad).unwrap_err();
            assert!(err.contains("is not an RFC 3339 timestamp"), "{bad}: {err}");
        }
    }

    #[test]
    fn embedding_bytes_must_be_whole_floats() {
        assert_eq!(f32_from_le_bytes(&1.5f32.to_le_bytes()).unwrap(), vec![1.5]);
        assert!(
            f32_from_le_bytes(&[0, 0, 0])
                .unwrap_err()
                .contains("multiple of 4")
        );
    }
}
