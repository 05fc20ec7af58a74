//! CloudEvents 1.0 envelopes in binary mode: attributes as `ce-*` headers, the
//! encoded data as the payload.

use std::borrow::Cow;

use bytes::Bytes;

use crate::headers::{HeaderError, Headers};
use crate::subject::{SubjectError, TenantId, Token};

/// Header names of the contract.
pub(crate) mod names {
    /// `ce-specversion`, always `1.0` when we write.
    pub(crate) const SPEC_VERSION: &str = "ce-specversion";
    /// `ce-id`, unique per message.
    pub(crate) const ID: &str = "ce-id";
    /// `ce-source`, `/<tenant>/<component>/<instance>`.
    pub(crate) const SOURCE: &str = "ce-source";
    /// `ce-type`, a dotted type name.
    pub(crate) const TYPE: &str = "ce-type";
    /// `ce-time`, RFC 3339 UTC.
    pub(crate) const TIME: &str = "ce-time";
    /// `ce-datacontenttype`.
    pub(crate) const DATA_CONTENT_TYPE: &str = "ce-datacontenttype";
    /// `ce-dataschema`.
    pub(crate) const DATA_SCHEMA: &str = "ce-dataschema";
    /// `ce-subject`.
    pub(crate) const SUBJECT: &str = "ce-subject";
    /// `ce-tenantid`.
    pub(crate) const TENANT_ID: &str = "ce-tenantid";
    /// `ce-correlationid`.
    pub(crate) const CORRELATION_ID: &str = "ce-correlationid";
    /// `ce-causationid`.
    pub(crate) const CAUSATION_ID: &str = "ce-causationid";
    /// `Content-Type`, the fallback for `ce-datacontenttype`.
    pub(crate) const CONTENT_TYPE: &str = "content-type";
    /// `Content-Encoding`: `zstd` when the payload was compressed after encoding.
    pub(crate) const CONTENT_ENCODING: &str = "Content-Encoding";
    /// `Nats-Service-Error`: the text of a failed request.
    pub(crate) const SERVICE_ERROR: &str = "Nats-Service-Error";
    /// `Nats-Service-Error-Code`: the numeric code of a failed request.
    pub(crate) const SERVICE_ERROR_CODE: &str = "Nats-Service-Error-Code";
    /// `Nats-Msg-Id`: JetStream de-duplication id.
    pub(crate) const NATS_MSG_ID: &str = "Nats-Msg-Id";
}

/// The CloudEvents spec version we write.
pub const SPEC_VERSION: &str = "1.0";
const STRUCTURED: &str = "application/cloudevents+json";

/// An envelope that cannot be built or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// A header name or value is not allowed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A required CloudEvents attribute is missing.
    #[error("missing required header {name}")]
    Missing {
        /// The header.
        name: &'static str,
    },
    /// An attribute has a value the contract does not allow.
    #[error("invalid {name}: {reason}")]
    Invalid {
        /// The header.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A structured-mode (`application/cloudevents+json`) payload cannot be read.
    #[error("invalid structured-mode CloudEvent: {reason}")]
    Structured {
        /// Why.
        reason: String,
    },
    /// A subject token in the source is invalid.
    #[error(transparent)]
    Subject(#[from] SubjectError),
}

/// The producer of a message: `/<tenant>/<component>/<instance>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSource {
    tenant: TenantId,
    uri: String,
}

impl EventSource {
    /// A source for one instance of a component of a tenant.
    ///
    /// # Errors
    /// [`SubjectError::InvalidToken`] for a bad component or instance.
    pub fn new(
        tenant: &TenantId,
        component: &str,
        instance: &str,
    ) -> Result<EventSource, SubjectError> {
        let c = Token::new("component", component)?;
        let i = Token::new("instance id", instance)?;
        Ok(EventSource {
            tenant: tenant.clone(),
            uri: format!("/{tenant}/{c}/{i}"),
        })
    }

    /// The tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The same component and instance, acting for `tenant`: a shared service
    /// answers each tenant as that tenant, `/<tenant>/<component>/<instance>`.
    pub fn for_tenant(&self, tenant: &TenantId) -> EventSource {
        // `uri` is `/<tenant>/<component>/<instance>`, built in `new`.
        let rest = self
            .uri
            .strip_prefix('/')
            .and_then(|u| u.strip_prefix(self.tenant.as_str()))
            .unwrap_or_default();
        EventSource {
            tenant: tenant.clone(),
            uri: format!("/{tenant}{rest}"),
        }
    }

    /// The URI-reference, `/<tenant>/<component>/<instance>`.
    pub fn as_str(&self) -> &str {
        &self.uri
    }
}

/// Headers plus payload: one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    headers: Headers,
    payload: Bytes,
}

/// Builds an [`Envelope`], filling in `ce-specversion`, `ce-id`, `ce-time`,
/// `ce-source`, `ce-type` and `ce-tenantid`.
#[derive(Debug)]
pub struct EnvelopeBuilder {
    headers: Headers,
    payload: Bytes,
    error: Option<EnvelopeError>,
}

impl Envelope {
    /// Starts an envelope of `event_type` from `source`.
    ///
    /// ```
    /// use sdk_bus::{Envelope, EventSource, TenantId};
    /// let source = EventSource::new(&TenantId::new("acme")?, "agent", "planner-1")?;
    /// let env = Envelope::builder(&source, "sdk.agent.message")
    ///     .content_type("application/json")
    ///     .correlation_id("r-7")
    ///     .payload(b"{}".as_slice().into())
    ///     .build()?;
    /// assert_eq!(env.tenant_id().as_deref(), Some("acme"));
    /// assert_eq!(env.source().as_deref(), Some("/acme/agent/planner-1"));
    /// assert_eq!(env.id().map(|id| id.len()), Some(22));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(source: &EventSource, event_type: &str) -> EnvelopeBuilder {
        let mut headers = Headers::with_capacity(10);
        headers.push_trusted(names::SPEC_VERSION, SPEC_VERSION.to_owned());
        headers.push_trusted(names::ID, new_id());
        headers.push_trusted(names::TIME, now_rfc3339());
        headers.push_trusted(names::SOURCE, percent_encode(source.as_str()).into_owned());
        headers.push_trusted(names::TYPE, percent_encode(event_type).into_owned());
        headers.push_trusted(names::TENANT_ID, source.tenant().as_str().to_owned());
        let error = event_type.is_empty().then(|| EnvelopeError::Invalid {
            name: names::TYPE,
            reason: "must not be empty".into(),
        });
        EnvelopeBuilder {
            headers,
            payload: Bytes::new(),
            error,
        }
    }

    /// An envelope from headers and payload as they arrived. A structured-mode
    /// CloudEvent (`Content-Type: application/cloudevents+json`) is turned into binary
    /// mode here.
    ///
    /// # Errors
    /// [`EnvelopeError::Structured`] for a structured event that cannot be read.
    pub fn from_parts(headers: Headers, payload: Bytes) -> Result<Envelope, EnvelopeError> {
        let structured = headers.get(names::CONTENT_TYPE).is_some_and(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(STRUCTURED)
        });
        if structured {
            return from_structured(headers, &payload);
        }
        Ok(Envelope { headers, payload })
    }

    /// What an error reply to this request reads (`ce-id`, `ce-tenantid`,
    /// `ce-correlationid`: see `settle::error_headers`), without the payload or any
    /// other header: kept for every request while its handler runs, so it copies no
    /// more than that.
    pub(crate) fn attributes_only(&self) -> Envelope {
        Envelope {
            headers: self
                .headers
                .only(&[names::ID, names::TENANT_ID, names::CORRELATION_ID]),
            payload: Bytes::new(),
        }
    }

    /// Checks that the attributes every SDK message carries are present and sane.
    ///
    /// # Errors
    /// [`EnvelopeError::Missing`] or [`EnvelopeError::Invalid`] naming the header.
    pub fn check_required(&self) -> Result<(), EnvelopeError> {
        for name in [names::ID, names::SOURCE, names::TYPE, names::TENANT_ID] {
            if self.attr(name).is_none_or(|v| v.is_empty()) {
                return Err(EnvelopeError::Missing { name });
            }
        }
        match self.attr(names::SPEC_VERSION) {
            None => Err(EnvelopeError::Missing {
                name: names::SPEC_VERSION,
            }),
            Some(v) if v.starts_with("1.") => Ok(()),
            Some(v) => Err(EnvelopeError::Invalid {
                name: names::SPEC_VERSION,
                reason: format!("{v:?} is not a CloudEvents 1.x version"),
            }),
        }
    }

    /// A header value, matched case-insensitively and percent-decoded.
    pub fn attr(&self, name: &str) -> Option<Cow<'_, str>> {
        self.headers.get(name).map(percent_decode)
    }

    /// `ce-id`.
    pub fn id(&self) -> Option<Cow<'_, str>> {
        self.attr(names::ID)
    }
    /// `ce-type`.
    pub fn event_type(&self) -> Option<Cow<'_, str>> {
        self.attr(names::TYPE)
    }
    /// `ce-source`.
    pub fn source(&self) -> Option<Cow<'_, str>> {
        self.attr(names::SOURCE)
    }
    /// `ce-time`.
    pub fn time(&self) -> Option<Cow<'_, str>> {
        self.attr(names::TIME)
    }
    /// `ce-tenantid`.
    pub fn tenant_id(&self) -> Option<Cow<'_, str>> {
        self.attr(names::TENANT_ID)
    }
    /// `ce-subject`.
    pub fn subject(&self) -> Option<Cow<'_, str>> {
        self.attr(names::SUBJECT)
    }
    /// `ce-dataschema`.
    pub fn data_schema(&self) -> Option<Cow<'_, str>> {
        self.attr(names::DATA_SCHEMA)
    }
    /// `ce-correlationid`.
    pub fn correlation_id(&self) -> Option<Cow<'_, str>> {
        self.attr(names::CORRELATION_ID)
    }
    /// `ce-causationid`.
    pub fn causation_id(&self) -> Option<Cow<'_, str>> {
        self.attr(names::CAUSATION_ID)
    }
    /// `ce-datacontenttype`, falling back to `content-type`.
    pub fn data_content_type(&self) -> Option<Cow<'_, str>> {
        self.attr(names::DATA_CONTENT_TYPE)
            .or_else(|| self.attr(names::CONTENT_TYPE))
    }
    /// `Content-Encoding`.
    pub fn content_encoding(&self) -> Option<Cow<'_, str>> {
        self.attr(names::CONTENT_ENCODING)
    }

    /// All headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Headers, for adding more (trace context, for example).
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// The payload.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Headers and payload.
    pub fn into_parts(self) -> (Headers, Bytes) {
        (self.headers, self.payload)
    }

    /// Header block plus payload, as the server counts them against `max_payload`.
    pub fn wire_size(&self) -> usize {
        self.headers.wire_size() + self.payload.len()
    }
}

impl EnvelopeBuilder {
    fn set(mut self, name: &'static str, value: &str) -> Self {
        if self.error.is_none()
            && let Err(e) = self
                .headers
                .insert_static(name, percent_encode(value).into_owned())
        {
            self.error = Some(e.into());
        }
        self
    }

    /// Overrides the generated `ce-id`.
    pub fn id(self, id: &str) -> Self {
        self.set(names::ID, id)
    }
    /// `ce-datacontenttype`.
    pub fn content_type(self, content_type: &str) -> Self {
        self.set(names::DATA_CONTENT_TYPE, content_type)
    }
    /// `ce-dataschema`.
    pub fn schema(self, schema: &str) -> Self {
        self.set(names::DATA_SCHEMA, schema)
    }
    /// `ce-subject`.
    pub fn subject(self, subject: &str) -> Self {
        self.set(names::SUBJECT, subject)
    }
    /// `ce-correlationid`.
    pub fn correlation_id(self, id: &str) -> Self {
        self.set(names::CORRELATION_ID, id)
    }
    /// `ce-causationid`.
    pub fn causation_id(self, id: &str) -> Self {
        self.set(names::CAUSATION_ID, id)
    }
    /// `Content-Encoding` (`zstd` when the payload was compressed after encoding).
    pub fn content_encoding(self, encoding: &str) -> Self {
        self.set(names::CONTENT_ENCODING, encoding)
    }

    /// Any other header, written as given (not percent-encoded).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if self.error.is_none()
            && let Err(e) = self.headers.insert(name, value)
        {
            self.error = Some(e.into());
        }
        self
    }

    /// The payload.
    pub fn payload(mut self, payload: Bytes) -> Self {
        self.payload = payload;
        self
    }

    /// Finishes the envelope.
    ///
    /// # Errors
    /// The first invalid header given to the builder.
    pub fn build(self) -> Result<Envelope, EnvelopeError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(Envelope {
                headers: self.headers,
                payload: self.payload,
            }),
        }
    }
}

/// A fresh, unique message id (a NUID: 22 characters, base62).
pub fn new_id() -> String {
    nuid::next().to_string()
}

/// The current time as RFC 3339 UTC, as `ce-time` carries it.
pub fn new_time() -> String {
    now_rfc3339()
}

fn now_rfc3339() -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Percent-encodes what the CloudEvents binding requires: space, `"`, `%`, and
/// anything outside printable ASCII.
pub(crate) fn percent_encode(value: &str) -> Cow<'_, str> {
    let needs = |b: u8| !(0x21..=0x7e).contains(&b) || b == b'"' || b == b'%';
    if !value.bytes().any(needs) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for b in value.bytes() {
        if needs(b) {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        } else {
            out.push(char::from(b));
        }
    }
    Cow::Owned(out)
}

/// Decodes `%XX` sequences leniently: a value that is not percent-encoded, or whose
/// sequences are broken or not UTF-8, is returned as it is.
pub(crate) fn percent_decode(value: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .unwrap_or(Cow::Borrowed(value))
}

/// The most attributes (data included) a structured-mode event may carry.
const MAX_STRUCTURED_ATTRIBUTES: usize = 64;

fn from_structured(mut headers: Headers, payload: &[u8]) -> Result<Envelope, EnvelopeError> {
    let bad = |reason: String| EnvelopeError::Structured { reason };
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| bad(format!("not JSON: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(bad("the event must be a JSON object".into()));
    };
    // Each attribute becomes a header, and each header insert checks the ones before:
    // an event with 100 000 attributes would cost seconds of CPU. A CloudEvent has a
    // handful, plus a few extensions.
    if map.len() > MAX_STRUCTURED_ATTRIBUTES {
        return Err(bad(format!(
            "{} attributes, over the limit of {MAX_STRUCTURED_ATTRIBUTES}",
            map.len()
        )));
    }
    headers.remove(names::CONTENT_TYPE);
    if map.contains_key("data") && map.contains_key("data_base64") {
        return Err(bad(
            "an event may carry data or data_base64, not both".into()
        ));
    }
    let mut data = Bytes::new();
    let mut content_type: Option<String> = None;
    for (key, value) in map {
        match key.as_str() {
            "data" => {
                data = match &value {
                    serde_json::Value::String(s) => Bytes::from(s.clone().into_bytes()),
                    other => {
                        Bytes::from(serde_json::to_vec(other).map_err(|e| bad(e.to_string()))?)
                    }
                };
                if !value.is_string() && content_type.is_none() {
                    content_type = Some("application/json".into());
                }
            }
            "data_base64" => {
                use base64::Engine as _;
                let text = value
                    .as_str()
                    .ok_or_else(|| bad("data_base64 must be a string".into()))?;
                data = Bytes::from(
                    base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .map_err(|e| bad(format!("data_base64: {e}")))?,
                );
            }
            attr => {
                if !attr
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                {
                    return Err(bad(format!(
                        "attribute name {attr:?} is not lowercase alphanumeric"
                    )));
                }
                let text = match value {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                if attr == "datacontenttype" {
                    content_type = Some(text.clone());
                }
                headers.insert(&format!("ce-{attr}"), &percent_encode(&text))?;
            }
        }
    }
    if let Some(ct) = content_type {
        headers.insert(names::DATA_CONTENT_TYPE, &percent_encode(&ct))?;
    }
    Ok(Envelope {
        headers,
        payload: data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> EventSource {
        EventSource::new(&TenantId::new("acme").unwrap(), "agent", "planner-1").unwrap()
    }

    #[test]
    fn the_builder_fills_the_required_attributes() {
        let env = Envelope::builder(&source(), "sdk.agent.message")
            .build()
            .unwrap();
        env.check_required().unwrap();
        assert_eq!(env.attr("CE-SPECVERSION").as_deref(), Some("1.0"));
        let time = env.time().unwrap();
        assert!(time.ends_with('Z') && time.len() >= 20, "{time}");
        let other = Envelope::builder(&source(), "sdk.agent.message")
            .build()
            .unwrap();
        assert_ne!(env.id(), other.id());
    }

    #[test]
    fn values_are_percent_encoded_and_decoded() {
        let env = Envelope::builder(&source(), "sdk.agent.message")
            .subject("naïve 100% \"quoted\"")
            .build()
            .unwrap();
        assert_eq!(
            env.headers().get("ce-subject"),
            Some("na%C3%AFve%20100%25%20%22quoted%22")
        );
        assert_eq!(env.subject().as_deref(), Some("naïve 100% \"quoted\""));
        // Lenient: a raw value, and a broken sequence, come back as they are.
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn cr_lf_in_a_value_is_an_error() {
        let err = Envelope::builder(&source(), "t")
            .header("x-note", "a\nb")
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid value for header \"x-note\""),
            "{err}"
        );
        // Through a ce- attribute it is percent-encoded instead, so it cannot break out.
        let env = Envelope::builder(&source(), "t")
            .subject("a\r\nb")
            .build()
            .unwrap();
        assert_eq!(env.headers().get("ce-subject"), Some("a%0D%0Ab"));
    }

    #[test]
    fn readers_are_lenient() {
        let mut h = Headers::new();
        h.insert("CE-ID", "1").unwrap();
        h.insert("Ce-Source", "/acme/x/y").unwrap();
        h.insert("ce-type", "t").unwrap();
        h.insert("ce-specversion", "1.0").unwrap();
        h.insert("CE-TENANTID", "acme").unwrap();
        h.insert("Content-Type", "application/msgpack").unwrap();
        let env = Envelope::from_parts(h, Bytes::new()).unwrap();
        env.check_required().unwrap();
        assert_eq!(
            env.data_content_type().as_deref(),
            Some("application/msgpack")
        );
    }

    #[test]
    fn structured_mode_becomes_binary_mode() {
        let mut h = Headers::new();
        h.insert(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )
        .unwrap();
        let body =
            br#"{"specversion":"1.0","id":"e-1","source":"/acme/py/1","type":"sdk.task.completed",
            "tenantid":"acme","datacontenttype":"application/json","data":{"taskId":"t-1"}}"#;
        let env = Envelope::from_parts(h, Bytes::from_static(body)).unwrap();
        env.check_required().unwrap();
        assert_eq!(env.id().as_deref(), Some("e-1"));
        assert_eq!(env.data_content_type().as_deref(), Some("application/json"));
        assert_eq!(env.payload().as_ref(), br#"{"taskId":"t-1"}"#);
        let mut h = Headers::new();
        h.insert("content-type", "application/cloudevents+json")
            .unwrap();
        assert!(Envelope::from_parts(h, Bytes::from_static(b"[1]")).is_err());
    }

    #[test]
    fn a_structured_event_with_too_many_attributes_is_refused_at_once() {
        let mut h = Headers::new();
        h.insert("content-type", "application/cloudevents+json")
            .unwrap();
        let attrs: Vec<String> = (0..100_000).map(|i| format!("\"a{i}\":0")).collect();
        let body = format!("{{{}}}", attrs.join(","));
        let err = Envelope::from_parts(h, Bytes::from(body)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid structured-mode CloudEvent: 100000 attributes, over the limit of 64"
        );
    }

    #[test]
    fn missing_attributes_are_named() {
        let mut h = Headers::new();
        h.insert("ce-id", "1").unwrap();
        let env = Envelope::from_parts(h, Bytes::new()).unwrap();
        assert_eq!(
            env.check_required().unwrap_err().to_string(),
            "missing required header ce-source"
        );
    }
}
