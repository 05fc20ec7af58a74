//! The payload types the CLI knows: the eight `sdk.v1` types by name, and `any`, data
//! without a schema.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use futures::future::BoxFuture;
use sdk_bus::{Envelope, ServeOptions, Service, SubjectPattern, SubscribeError};
use sdk_codec::v1::{
    AgentMessage, AgentTask, Document, DocumentChunk, ErrorInfo, EventMessage, StatusUpdate,
    TaskResult,
};
use sdk_codec::{Codec, CodecError, Payload, PayloadMeta, SchemaId, samples};
use sdk_integration::Messenger;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::{self, CliError};
use crate::serve::EchoLog;

/// Data without a schema: JSON and MessagePack as a generic value, Protobuf as bytes
/// (which only Protobuf can carry again).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Any {
    /// A JSON or MessagePack value.
    Value(rmpv::Value),
    /// Protobuf bytes of an unknown type.
    Protobuf(Bytes),
}

impl Serialize for Any {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Any::Value(v) => v.serialize(s),
            Any::Protobuf(_) => Err(serde::ser::Error::custom(
                "Protobuf data of an unknown type can only be sent as Protobuf",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Any {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Any, D::Error> {
        rmpv::Value::deserialize(d).map(Any::Value)
    }
}

impl Payload for Any {
    fn encode_protobuf(&self, buf: &mut Vec<u8>) -> Result<(), CodecError> {
        match self {
            Any::Protobuf(bytes) => {
                buf.extend_from_slice(bytes);
                Ok(())
            }
            Any::Value(_) => Err(CodecError::NoProtobufSchema {
                type_name: "data without --type",
            }),
        }
    }

    fn decode_protobuf(bytes: Bytes) -> Result<Any, CodecError> {
        Ok(Any::Protobuf(bytes))
    }
}

/// Starts an echo service of one type.
pub(crate) type ServeEcho = fn(
    Messenger,
    SubjectPattern,
    ServeOptions,
    Arc<EchoLog>,
) -> BoxFuture<'static, Result<Service, SubscribeError>>;

/// What the CLI can do with one type.
#[derive(Clone)]
pub(crate) struct TypeInfo {
    /// `AgentTask`, or `any`.
    pub(crate) name: &'static str,
    /// Its schema; `None` for `any`.
    pub(crate) schema: Option<SchemaId>,
    /// JSON text to an envelope, through the messenger's codec and format.
    pub(crate) envelope: fn(&Messenger, &str, &[u8]) -> Result<Envelope, CliError>,
    /// A payload to its JSON form (the proto3 JSON mapping for `sdk.v1` types).
    pub(crate) to_json: fn(&Codec, Bytes, &PayloadMeta<'_>) -> Result<Value, CodecError>,
    /// Serves an echo of this type.
    pub(crate) serve_echo: ServeEcho,
    /// An example value, as JSON.
    pub(crate) example: fn() -> Value,
}

impl std::fmt::Debug for TypeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypeInfo")
            .field("name", &self.name)
            .finish()
    }
}

impl TypeInfo {
    /// `sdk.v1.AgentTask`, or `any`.
    pub(crate) fn full_name(&self) -> String {
        self.schema
            .as_ref()
            .map_or_else(|| self.name.to_owned(), |s| s.name().to_owned())
    }
}

fn envelope_of<T: Payload>(
    m: &Messenger,
    event_type: &str,
    json: &[u8],
) -> Result<Envelope, CliError> {
    let value: T = m
        .codec()
        .decode(
            Bytes::copy_from_slice(json),
            &PayloadMeta::new("application/json"),
        )
        .map_err(error::codec)?;
    Ok(m.envelope(event_type, &value)?)
}

fn to_json_of<T: Payload>(
    c: &Codec,
    bytes: Bytes,
    meta: &PayloadMeta<'_>,
) -> Result<Value, CodecError> {
    let value: T = c.decode(bytes, meta)?;
    serde_json::to_value(&value).map_err(|e| CodecError::Encode {
        format: "json",
        message: e.to_string(),
    })
}

fn any_to_json(c: &Codec, bytes: Bytes, meta: &PayloadMeta<'_>) -> Result<Value, CodecError> {
    match c.decode::<Any>(bytes, meta)? {
        Any::Value(v) => Ok(rmpv_to_json(&v)),
        Any::Protobuf(_) => Err(CodecError::Data {
            format: "protobuf",
            path: ".".into(),
            message: "no ce-dataschema says which type it is".into(),
        }),
    }
}

/// A MessagePack value as JSON: binary as base64 text, non-text keys as their text.
pub(crate) fn rmpv_to_json(v: &rmpv::Value) -> Value {
    use rmpv::Value as M;
    let float = |f: f64| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    match v {
        M::Nil => Value::Null,
        M::Boolean(b) => Value::Bool(*b),
        M::Integer(i) => i
            .as_i64()
            .map(Value::from)
            .or_else(|| i.as_u64().map(Value::from))
            .unwrap_or(Value::Null),
        M::F32(f) => float(f64::from(*f)),
        M::F64(f) => float(*f),
        M::String(s) => Value::String(s.as_str().map_or_else(
            || String::from_utf8_lossy(s.as_bytes()).into_owned(),
            str::to_owned,
        )),
        M::Binary(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        M::Array(items) => Value::Array(items.iter().map(rmpv_to_json).collect()),
        M::Map(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        M::String(s) => s.as_str().map_or_else(
                            || String::from_utf8_lossy(s.as_bytes()).into_owned(),
                            str::to_owned,
                        ),
                        other => other.to_string(),
                    };
                    (key, rmpv_to_json(v))
                })
                .collect(),
        ),
        M::Ext(kind, data) => serde_json::json!({
            "ext": kind,
            "data": base64::engine::general_purpose::STANDARD.encode(data),
        }),
    }
}

macro_rules! entry {
    ($t:ident, $example:expr) => {
        TypeInfo {
            name: stringify!($t),
            schema: <$t as Payload>::SCHEMA,
            envelope: envelope_of::<$t>,
            to_json: to_json_of::<$t>,
            serve_echo: crate::serve::echo::<$t>,
            example: || serde_json::to_value($example).unwrap_or(Value::Null),
        }
    };
}

/// The eight `sdk.v1` types.
pub(crate) fn all() -> [TypeInfo; 8] {
    [
        entry!(AgentMessage, samples::agent_message()),
        entry!(AgentTask, samples::agent_task()),
        entry!(TaskResult, samples::task_result()),
        entry!(EventMessage, samples::event_message()),
        entry!(Document, samples::document()),
        entry!(DocumentChunk, samples::document_chunk(4)),
        entry!(StatusUpdate, samples::status_update()),
        entry!(ErrorInfo, samples::error_info()),
    ]
}

/// Data without a schema.
pub(crate) fn any() -> TypeInfo {
    TypeInfo {
        name: "any",
        schema: None,
        envelope: envelope_of::<Any>,
        to_json: any_to_json,
        serve_echo: crate::serve::echo::<Any>,
        example: || serde_json::json!({ "any": "JSON value" }),
    }
}

/// The names `--type` takes, for messages.
pub(crate) fn names() -> String {
    all().iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

/// A type by name: `AgentTask`, `sdk.v1.AgentTask` (any case), or its schema id
/// `urn:sdk:schema:sdk.v1.AgentTask:v1`. `any` only when `allow_any`.
pub(crate) fn find(name: &str, allow_any: bool) -> Result<TypeInfo, CliError> {
    let text = name.trim();
    if allow_any && text.eq_ignore_ascii_case("any") {
        return Ok(any());
    }
    let bare = match SchemaId::parse(text) {
        Ok(id) => id.name().to_owned(),
        Err(_) => text.to_owned(),
    };
    let short = bare
        .strip_prefix("sdk.v1.")
        .or_else(|| bare.strip_prefix("SDK.V1."))
        .unwrap_or(&bare)
        .to_owned();
    all()
        .into_iter()
        .find(|t| t.name.eq_ignore_ascii_case(&short))
        .ok_or_else(|| {
            CliError::usage(format!("unknown type {name:?}")).hint(format!(
                "use one of {}{} (see `sdk schema list`)",
                names(),
                if allow_any { ", any" } else { "" }
            ))
        })
}

/// The type a `ce-dataschema` names, if this build knows it (any version: older ones
/// are upcast, newer ones fail to decode with a clear error).
pub(crate) fn by_schema(text: &str) -> Option<TypeInfo> {
    let id = SchemaId::parse(text).ok()?;
    all()
        .into_iter()
        .find(|t| t.schema.as_ref().is_some_and(|s| s.name() == id.name()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn types_are_found_by_any_of_their_names() {
        for name in [
            "AgentTask",
            "agenttask",
            "sdk.v1.AgentTask",
            "urn:sdk:schema:sdk.v1.AgentTask:v1",
        ] {
            assert_eq!(find(name, false).unwrap().name, "AgentTask", "{name}");
        }
        assert!(find("any", false).is_err());
        assert_eq!(find("ANY", true).unwrap().name, "any");
        let err = find("Nope", false).unwrap_err();
        assert!(err.line().unwrap().contains("AgentMessage, AgentTask"));
        assert_eq!(
            by_schema("urn:sdk:schema:sdk.v1.StatusUpdate:v1").map(|t| t.name),
            Some("StatusUpdate")
        );
    }

    #[test]
    fn any_round_trips_json_and_msgpack() {
        let codec = Codec::default();
        let any: Any = serde_json::from_str(r#"{"a":[1,2.5,"x",null,true]}"#).unwrap();
        for format in [sdk_codec::Format::Json, sdk_codec::Format::MessagePack] {
            let encoded = codec.encode_as(&any, format).unwrap();
            let back = any_to_json(&codec, encoded.bytes.clone(), &encoded.meta()).unwrap();
            assert_eq!(back, serde_json::json!({"a":[1,2.5,"x",null,true]}));
        }
        assert!(codec.encode_as(&any, sdk_codec::Format::Protobuf).is_err());
    }
}
