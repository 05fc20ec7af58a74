//! A received message, checked and decoded for people (text) and for programs (one
//! JSON object).

use std::fmt::Write as _;

use base64::Engine as _;
use bytes::Bytes;
use sdk_bus::{Envelope, Headers, Subject, TenantId};
use sdk_codec::{Codec, PayloadMeta};
use serde_json::{Map, Value, json};

use crate::payload::{self, TypeInfo};

/// Something wrong with a message, reported without stopping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flag {
    /// `service_error`, `tenant_mismatch`, `undecodable`, `invalid_envelope`,
    /// `invalid_subject`, `invalid_header`, `invalid_traceparent`, `unknown_schema`,
    /// `assumed_schema`.
    pub(crate) kind: &'static str,
    /// What is wrong.
    pub(crate) message: String,
}

/// A message as shown.
#[derive(Debug, Clone)]
pub(crate) struct Shown {
    /// Where it arrived, or the request's subject for a reply.
    pub(crate) subject: String,
    /// Its reply subject (a request).
    pub(crate) reply: Option<String>,
    /// Whether it is the reply to a request this process sent.
    pub(crate) is_reply: bool,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) id: Option<String>,
    pub(crate) event_type: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) time: Option<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) schema: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) content_encoding: Option<String>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) causation_id: Option<String>,
    pub(crate) trace_id: Option<String>,
    /// `Nats-Service-Error-Code` and `Nats-Service-Error`.
    pub(crate) error: Option<(u16, String)>,
    /// The decoded data.
    pub(crate) data: Option<Value>,
    /// The payload as base64, when it could not be decoded.
    pub(crate) raw: Option<String>,
    pub(crate) size: usize,
    pub(crate) flags: Vec<Flag>,
}

/// Headers from the async-nats map, in order. A header the SDK refuses (a control
/// character in its value, say) is left out of them and flagged `invalid_header`, so
/// it is seen, not dropped in silence.
pub(crate) fn headers_from_nats(map: Option<&async_nats::HeaderMap>) -> (Headers, Vec<Flag>) {
    let mut headers = Headers::new();
    let mut flags = Vec::new();
    if let Some(map) = map {
        for (name, values) in map.iter() {
            for value in values {
                if let Err(e) = headers.append(name.as_ref(), value.as_str()) {
                    flags.push(Flag {
                        kind: "invalid_header",
                        message: format!("left out: {e}"),
                    });
                }
            }
        }
    }
    (headers, flags)
}

/// The tenant a subject belongs to: `sdk.<t>.…` or `_INBOX.<t>.…`.
fn subject_tenant(subject: &str) -> Option<String> {
    let mut tokens = subject.split('.');
    match (tokens.next(), tokens.next()) {
        (Some("sdk" | "_INBOX"), Some(t)) => TenantId::new(t).ok().map(|t| t.to_string()),
        _ => None,
    }
}

/// The trace id of a W3C `traceparent`, or why it is malformed.
fn trace_of(traceparent: &str) -> Result<String, String> {
    let parts: Vec<&str> = traceparent.trim().split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    match parts.as_slice() {
        [version, trace, span, flags, ..]
            if hex(version, 2)
                && hex(trace, 32)
                && hex(span, 16)
                && hex(flags, 2)
                && trace.bytes().any(|b| b != b'0') =>
        {
            Ok((*trace).to_owned())
        }
        _ => Err(format!("malformed traceparent {traceparent:?}")),
    }
}

impl Shown {
    /// Checks and decodes a message as it arrived on `subject`: the contract's receive
    /// checks (subject, repeated identity headers, required attributes, tenant), the
    /// service error headers, the trace, and the payload.
    pub(crate) fn inspect(
        codec: &Codec,
        subject: &str,
        reply: Option<&str>,
        headers: Headers,
        payload: Bytes,
    ) -> Shown {
        let mut flags = Vec::new();
        let is_sdk = subject.starts_with("sdk.");
        if is_sdk && let Err(e) = Subject::parse(subject) {
            flags.push(Flag {
                kind: "invalid_subject",
                message: e.to_string(),
            });
        }
        for name in [
            "ce-tenantid",
            "ce-id",
            "ce-type",
            "ce-source",
            "ce-datacontenttype",
        ] {
            let mut values = headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v);
            if let Some(first) = values.next()
                && values.any(|v| v != first)
            {
                flags.push(Flag {
                    kind: "invalid_envelope",
                    message: format!("header {name} appears more than once with different values"),
                });
            }
        }
        let size = payload.len();
        let envelope = match Envelope::from_parts(headers.clone(), payload.clone()) {
            Ok(e) => e,
            Err(e) => {
                flags.push(Flag {
                    kind: "invalid_envelope",
                    message: e.to_string(),
                });
                // Still show what arrived.
                match Envelope::from_parts(without_content_type(&headers), payload.clone()) {
                    Ok(e) => e,
                    Err(_) => return Shown::bare(subject, reply, &headers, &payload, flags),
                }
            }
        };
        let error = envelope.attr("Nats-Service-Error-Code").map(|code| {
            (
                code.trim().parse::<u16>().unwrap_or(500),
                envelope
                    .attr("Nats-Service-Error")
                    .map(|m| m.into_owned())
                    .unwrap_or_default(),
            )
        });
        if let Some((code, message)) = &error {
            flags.push(Flag {
                kind: "service_error",
                message: format!("service error {code}: {message}"),
            });
        } else if is_sdk && let Err(e) = envelope.check_required() {
            flags.push(Flag {
                kind: "invalid_envelope",
                message: e.to_string(),
            });
        }
        let tenant = envelope.tenant_id().map(|t| t.into_owned());
        if let (Some(own), Some(of_subject)) = (&tenant, subject_tenant(subject))
            && *own != of_subject
        {
            flags.push(Flag {
                kind: "tenant_mismatch",
                message: format!(
                    "ce-tenantid {own:?} does not match the tenant {of_subject:?} of subject {subject}"
                ),
            });
        }
        let trace_id = envelope
            .attr("traceparent")
            .and_then(|tp| match trace_of(&tp) {
                Ok(id) => Some(id),
                Err(message) => {
                    flags.push(Flag {
                        kind: "invalid_traceparent",
                        message,
                    });
                    None
                }
            });
        let mut shown = Shown {
            subject: subject.to_owned(),
            reply: reply.map(str::to_owned),
            is_reply: false,
            headers: ordered(envelope.headers()),
            id: envelope.id().map(|c| c.into_owned()),
            event_type: envelope.event_type().map(|c| c.into_owned()),
            source: envelope.source().map(|c| c.into_owned()),
            time: envelope.time().map(|c| c.into_owned()),
            tenant,
            schema: envelope.data_schema().map(|c| c.into_owned()),
            content_type: envelope.data_content_type().map(|c| c.into_owned()),
            content_encoding: envelope.content_encoding().map(|c| c.into_owned()),
            correlation_id: envelope.correlation_id().map(|c| c.into_owned()),
            causation_id: envelope.causation_id().map(|c| c.into_owned()),
            trace_id,
            error,
            data: None,
            raw: None,
            size,
            flags,
        };
        shown.decode(codec, &envelope);
        shown
    }

    /// A reply to a request sent on `subject`. A reply that names no schema and cannot
    /// be read without one (Protobuf) is read as `request_type`, the type of the
    /// request, and says so.
    pub(crate) fn reply(
        codec: &Codec,
        subject: &str,
        envelope: Envelope,
        request_type: Option<&TypeInfo>,
    ) -> Shown {
        let (headers, payload) = envelope.into_parts();
        let mut shown = Shown::inspect(codec, subject, None, headers, payload.clone());
        shown.is_reply = true;
        // A reply is checked against the request's subject only for its tenant.
        shown.flags.retain(|f| f.kind != "invalid_envelope");
        if let Some(info) = request_type.filter(|t| t.schema.is_some())
            && shown.schema.is_none()
            && shown.data.is_none()
            && let Some(content_type) = shown.content_type.clone()
        {
            let meta =
                PayloadMeta::new(&content_type).with_encoding(shown.content_encoding.as_deref());
            if let Ok(value) = (info.to_json)(codec, payload, &meta) {
                shown.flags.retain(|f| f.kind != "undecodable");
                shown.raw = None;
                shown.data = Some(value);
                shown.flags.push(Flag {
                    kind: "assumed_schema",
                    message: format!(
                        "the reply names no schema; read as {}, the request's type",
                        info.full_name()
                    ),
                });
            }
        }
        shown
    }

    fn bare(
        subject: &str,
        reply: Option<&str>,
        headers: &Headers,
        payload: &Bytes,
        flags: Vec<Flag>,
    ) -> Shown {
        Shown {
            subject: subject.to_owned(),
            reply: reply.map(str::to_owned),
            is_reply: false,
            headers: ordered(headers),
            id: None,
            event_type: None,
            source: None,
            time: None,
            tenant: None,
            schema: None,
            content_type: headers.get("content-type").map(str::to_owned),
            content_encoding: None,
            correlation_id: None,
            causation_id: None,
            trace_id: None,
            error: None,
            data: None,
            raw: Some(base64::engine::general_purpose::STANDARD.encode(payload)),
            size: payload.len(),
            flags,
        }
    }

    /// Decodes the payload by its content type and schema.
    fn decode(&mut self, codec: &Codec, envelope: &Envelope) {
        let payload = envelope.payload().clone();
        if payload.is_empty() {
            return;
        }
        let content_type = self.content_type.clone().unwrap_or_default();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if content_type.parse::<sdk_codec::Format>().is_err() {
            // Error bodies are text; anything else readable is shown as text too.
            match std::str::from_utf8(&payload) {
                Ok(text) if essence.is_empty() || essence.starts_with("text/") => {
                    self.data = Some(
                        serde_json::from_str::<Value>(text)
                            .ok()
                            .filter(|_| essence.is_empty())
                            .unwrap_or_else(|| Value::String(text.to_owned())),
                    );
                }
                _ => self.undecodable(
                    &payload,
                    format!("unsupported content type {content_type:?}"),
                ),
            }
            return;
        }
        let meta = PayloadMeta::new(&content_type)
            .with_encoding(self.content_encoding.as_deref())
            .with_schema(self.schema.as_deref());
        let info = match self.schema.as_deref() {
            Some(schema) => match payload::by_schema(schema) {
                Some(info) => info,
                None => {
                    self.flags.push(Flag {
                        kind: "unknown_schema",
                        message: format!(
                            "schema {schema} is not one this build knows; shown without it"
                        ),
                    });
                    payload::any()
                }
            },
            None => payload::any(),
        };
        match (info.to_json)(codec, payload.clone(), &meta) {
            Ok(value) => self.data = Some(value),
            Err(e) => self.undecodable(&payload, e.to_string()),
        }
    }

    fn undecodable(&mut self, payload: &Bytes, message: String) {
        self.flags.push(Flag {
            kind: "undecodable",
            message,
        });
        self.raw = Some(base64::engine::general_purpose::STANDARD.encode(payload));
    }

    /// `sdk.v1.AgentTask v1`, from the schema id.
    fn schema_label(&self) -> Option<String> {
        let schema = self.schema.as_deref()?;
        Some(match sdk_codec::SchemaId::parse(schema) {
            Ok(id) => format!("{} v{}", id.name(), id.version()),
            Err(_) => schema.to_owned(),
        })
    }

    /// One JSON object.
    pub(crate) fn to_json(&self) -> Value {
        let mut headers = Map::new();
        for (k, v) in &self.headers {
            headers
                .entry(k.clone())
                .or_insert_with(|| Value::String(v.clone()));
        }
        json!({
            "subject": self.subject,
            "reply": self.reply,
            "is_reply": self.is_reply,
            "id": self.id,
            "type": self.event_type,
            "source": self.source,
            "time": self.time,
            "tenant": self.tenant,
            "schema": self.schema,
            "content_type": self.content_type,
            "content_encoding": self.content_encoding,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "trace_id": self.trace_id,
            "error": self.error.as_ref().map(|(code, message)| json!({"code": code, "message": message})),
            "flags": self.flags.iter().map(|f| json!({"kind": f.kind, "message": f.message})).collect::<Vec<_>>(),
            "size": self.size,
            "headers": headers,
            "data": self.data,
            "raw_base64": self.raw,
        })
    }

    /// Text for people: a title line, the facts, the flags, the headers (unless
    /// `with_headers` is false), the data.
    pub(crate) fn to_text(&self, with_headers: bool) -> String {
        // Written into a String, which cannot fail: the `fmt::Result`s are empty.
        let mut out = String::new();
        if self.is_reply {
            let _ = writeln!(out, "reply to {}", self.subject);
        } else {
            match &self.reply {
                Some(r) => {
                    let _ = writeln!(out, "{}  reply-to {r}", self.subject);
                }
                None => {
                    let _ = writeln!(out, "{}", self.subject);
                }
            }
        }
        let mut facts: Vec<String> = Vec::new();
        let mut fact = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                facts.push(format!("{name} {v}"));
            }
        };
        fact("schema", self.schema_label());
        fact("format", self.content_type.clone());
        fact("encoding", self.content_encoding.clone());
        fact("tenant", self.tenant.clone());
        fact("type", self.event_type.clone());
        fact("trace", self.trace_id.clone());
        fact("correlation", self.correlation_id.clone());
        fact("id", self.id.clone());
        facts.push(format!("{} bytes", self.size));
        let _ = writeln!(out, "  {}", facts.join("  "));
        for flag in &self.flags {
            let _ = writeln!(out, "  ! {}: {}", flag.kind.replace('_', " "), flag.message);
        }
        if with_headers && !self.headers.is_empty() {
            let _ = writeln!(out, "  headers:");
            for (k, v) in &self.headers {
                let _ = writeln!(out, "    {k}: {v}");
            }
        }
        if let Some(data) = &self.data {
            let _ = writeln!(out, "  data:");
            let pretty = serde_json::to_string_pretty(data).unwrap_or_else(|_| data.to_string());
            for line in pretty.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
        if let Some(raw) = &self.raw {
            let _ = writeln!(out, "  raw (base64): {raw}");
        }
        out
    }
}

/// The headers in a fixed order (the wire has none): the CloudEvents attributes as
/// the contract lists them, then the rest by name.
fn ordered(headers: &Headers) -> Vec<(String, String)> {
    const FIRST: [&str; 11] = [
        "ce-specversion",
        "ce-id",
        "ce-time",
        "ce-source",
        "ce-type",
        "ce-tenantid",
        "ce-datacontenttype",
        "ce-dataschema",
        "ce-subject",
        "ce-correlationid",
        "ce-causationid",
    ];
    let mut all: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    all.sort_by_key(|(k, _)| {
        let lower = k.to_ascii_lowercase();
        let rank = FIRST
            .iter()
            .position(|f| *f == lower)
            .unwrap_or(FIRST.len());
        (rank, lower)
    });
    all
}

/// The headers without their content type (for a structured-mode event that could not
/// be read, so that the rest is still shown).
fn without_content_type(headers: &Headers) -> Headers {
    let mut h = headers.clone();
    h.remove("content-type");
    h
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (k, v) in pairs {
            h.append(k, v).unwrap();
        }
        h
    }

    const GOOD: [(&str, &str); 6] = [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "/acme/x/y"),
        ("ce-type", "t"),
        ("ce-tenantid", "acme"),
        ("ce-datacontenttype", "application/json"),
    ];

    #[test]
    fn a_good_message_has_no_flags() {
        let mut h = headers(&GOOD);
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .unwrap();
        let s = Shown::inspect(
            &Codec::default(),
            "sdk.acme.a.b",
            None,
            h,
            Bytes::from_static(b"{\"k\":1}"),
        );
        assert!(s.flags.is_empty(), "{:?}", s.flags);
        assert_eq!(s.data, Some(json!({"k": 1})));
        assert_eq!(
            s.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }

    #[test]
    fn problems_are_flagged_not_fatal() {
        let mut h = headers(&GOOD);
        h.insert("ce-tenantid", "beta").unwrap();
        h.insert("ce-dataschema", "urn:sdk:schema:sdk.v1.AgentTask:v1")
            .unwrap();
        h.insert("traceparent", "nope").unwrap();
        let s = Shown::inspect(
            &Codec::default(),
            "sdk.acme.a.b",
            None,
            h,
            Bytes::from_static(b"{\"taskId\":\"\"}"),
        );
        let kinds: Vec<&str> = s.flags.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            ["tenant_mismatch", "invalid_traceparent", "undecodable"]
        );
        assert!(s.raw.is_some());
        let text = s.to_text(true);
        assert!(
            text.contains("! tenant mismatch: ce-tenantid \"beta\""),
            "{text}"
        );
    }

    #[test]
    fn an_error_reply_is_flagged_with_its_code() {
        let h = headers(&[
            ("Nats-Service-Error", "bad"),
            ("Nats-Service-Error-Code", "400"),
        ]);
        let s = Shown::inspect(
            &Codec::default(),
            "_INBOX.acme.x",
            None,
            h,
            Bytes::from_static(b"bad"),
        );
        assert_eq!(s.error, Some((400, "bad".into())));
        assert_eq!(s.flags[0].kind, "service_error");
        assert_eq!(s.data, Some(Value::String("bad".into())));
    }
}
