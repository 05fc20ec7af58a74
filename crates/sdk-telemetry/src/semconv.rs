//! Span names, kinds and attributes for messaging and codec operations, as the wire
//! contract (`docs/wire-contract.md` §5; OpenTelemetry messaging conventions v1.44)
//! gives them.

use opentelemetry::trace::{SpanBuilder, SpanKind, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute as attr;

use crate::sampler::COMPONENT_KEY;

/// Which delivery of a message a `process` span handles. The conventions name it per
/// system (`messaging.servicebus.message.delivery_count`, ...); NATS has none yet, so
/// the same shape is used under `messaging.nats`.
pub const NATS_DELIVERY_COUNT: &str = "messaging.nats.message.delivery_count";

/// A messaging operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Sending a message: PRODUCER.
    Publish,
    /// Handling a received message: CONSUMER.
    Process,
    /// Sending a request and waiting for the reply: CLIENT.
    Request,
    /// Fetching from JetStream: CLIENT.
    Receive,
    /// Ack, nak or term on JetStream: CLIENT.
    Settle,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 5] = [
        Operation::Publish,
        Operation::Process,
        Operation::Request,
        Operation::Receive,
        Operation::Settle,
    ];

    /// `messaging.operation.name`, and the first word of the span name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Publish => "publish",
            Operation::Process => "process",
            Operation::Request => "request",
            Operation::Receive => "receive",
            Operation::Settle => "settle",
        }
    }

    /// `messaging.operation.type`.
    pub fn operation_type(self) -> &'static str {
        match self {
            Operation::Publish | Operation::Request => "send",
            Operation::Process => "process",
            Operation::Receive => "receive",
            Operation::Settle => "settle",
        }
    }

    /// The span kind.
    pub fn kind(self) -> SpanKind {
        match self {
            Operation::Publish => SpanKind::Producer,
            Operation::Process => SpanKind::Consumer,
            Operation::Request | Operation::Receive | Operation::Settle => SpanKind::Client,
        }
    }
}

/// What a messaging span is about. Fields left `None` are not set.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessageInfo<'a> {
    /// The concrete subject: `messaging.destination.name`.
    pub destination: &'a str,
    /// The subject template: `messaging.destination.template`, and the span name.
    pub template: &'a str,
    /// `messaging.message.id` and `cloudevents.event_id` (the `ce-id`).
    pub message_id: Option<&'a str>,
    /// `messaging.message.conversation_id`, from the correlation id.
    pub conversation_id: Option<&'a str>,
    /// `messaging.message.body.size`.
    pub body_size: Option<usize>,
    /// `messaging.consumer.group.name`.
    pub consumer_group: Option<&'a str>,
    /// `cloudevents.event_type`.
    pub event_type: Option<&'a str>,
    /// `cloudevents.event_source`.
    pub event_source: Option<&'a str>,
    /// `sdk.tenant.id`.
    pub tenant: Option<&'a str>,
    /// `server.address`.
    pub server_address: Option<&'a str>,
    /// `server.port`.
    pub server_port: Option<u16>,
    /// `sdk.component`, which per-component sampling rules match on.
    pub component: Option<&'a str>,
}

/// The span name: `<operation> <template>`, e.g. `publish sdk.{tenant}.rag.query`.
pub fn span_name(op: Operation, template: &str) -> String {
    let mut name = String::with_capacity(op.name().len() + 1 + template.len());
    name.push_str(op.name());
    name.push(' ');
    name.push_str(template);
    name
}

/// The attributes of a messaging span.
pub fn attributes(op: Operation, m: &MessageInfo<'_>) -> Vec<KeyValue> {
    let mut v = Vec::with_capacity(14);
    v.push(KeyValue::new(attr::MESSAGING_SYSTEM, "nats"));
    v.push(KeyValue::new(attr::MESSAGING_OPERATION_NAME, op.name()));
    v.push(KeyValue::new(
        attr::MESSAGING_OPERATION_TYPE,
        op.operation_type(),
    ));
    v.push(KeyValue::new(
        attr::MESSAGING_DESTINATION_NAME,
        m.destination.to_owned(),
    ));
    v.push(KeyValue::new(
        attr::MESSAGING_DESTINATION_TEMPLATE,
        m.template.to_owned(),
    ));
    if let Some(id) = m.message_id {
        v.push(KeyValue::new(attr::MESSAGING_MESSAGE_ID, id.to_owned()));
        v.push(KeyValue::new("cloudevents.event_id", id.to_owned()));
    }
    if let Some(c) = m.conversation_id {
        v.push(KeyValue::new(
            attr::MESSAGING_MESSAGE_CONVERSATION_ID,
            c.to_owned(),
        ));
    }
    if let Some(n) = m.body_size {
        v.push(KeyValue::new(
            attr::MESSAGING_MESSAGE_BODY_SIZE,
            i64::try_from(n).unwrap_or(i64::MAX),
        ));
    }
    if let Some(g) = m.consumer_group {
        v.push(KeyValue::new(
            attr::MESSAGING_CONSUMER_GROUP_NAME,
            g.to_owned(),
        ));
    }
    if let Some(t) = m.event_type {
        v.push(KeyValue::new("cloudevents.event_type", t.to_owned()));
    }
    if let Some(s) = m.event_source {
        v.push(KeyValue::new("cloudevents.event_source", s.to_owned()));
    }
    if let Some(t) = m.tenant {
        v.push(KeyValue::new(crate::metrics::TENANT_KEY, t.to_owned()));
    }
    if let Some(a) = m.server_address {
        v.push(KeyValue::new(attr::SERVER_ADDRESS, a.to_owned()));
    }
    if let Some(p) = m.server_port {
        v.push(KeyValue::new(attr::SERVER_PORT, i64::from(p)));
    }
    if let Some(c) = m.component {
        v.push(KeyValue::new(COMPONENT_KEY, c.to_owned()));
    }
    v
}

/// Starts a messaging span as a child of `parent` (for a process span: the context
/// extracted from the message, so one trace runs producer to consumer).
pub fn start_span<T: Tracer>(
    tracer: &T,
    op: Operation,
    m: &MessageInfo<'_>,
    parent: &Context,
) -> T::Span {
    SpanBuilder::from_name(span_name(op, m.template))
        .with_kind(op.kind())
        .with_attributes(attributes(op, m))
        .start_with_context(tracer, parent)
}

/// Starts an INTERNAL `encode <schema>` or `decode <schema>` span (the format and
/// size are set when it ends: see [`crate::CodecGuard`]).
pub fn start_codec_span<T: Tracer>(
    tracer: &T,
    operation: &'static str,
    schema: &str,
    parent: &Context,
) -> T::Span {
    SpanBuilder::from_name(format!("{operation} {schema}"))
        .with_kind(SpanKind::Internal)
        .with_attributes([
            KeyValue::new("sdk.codec.operation", operation),
            KeyValue::new("sdk.codec.schema", schema.to_owned()),
        ])
        .start_with_context(tracer, parent)
}

/// Marks `span` failed with `error.type` and an error status.
pub fn record_error<S: opentelemetry::trace::Span>(span: &mut S, error_type: &str, message: &str) {
    span.set_attribute(KeyValue::new(attr::ERROR_TYPE, error_type.to_owned()));
    span.set_status(opentelemetry::trace::Status::error(message.to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds_follow_the_contract() {
        assert_eq!(
            span_name(Operation::Publish, "sdk.{tenant}.rag.query"),
            "publish sdk.{tenant}.rag.query"
        );
        assert_eq!(Operation::Process.kind(), SpanKind::Consumer);
        assert_eq!(Operation::Settle.kind(), SpanKind::Client);
        let attrs = attributes(
            Operation::Publish,
            &MessageInfo {
                destination: "sdk.acme.rag.query",
                template: "sdk.{tenant}.rag.query",
                tenant: Some("acme"),
                body_size: Some(12),
                ..Default::default()
            },
        );
        let get = |k: &str| {
            attrs
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(get("messaging.system").as_deref(), Some("nats"));
        assert_eq!(get("messaging.operation.type").as_deref(), Some("send"));
        assert_eq!(
            get("messaging.destination.name").as_deref(),
            Some("sdk.acme.rag.query")
        );
        assert_eq!(get("sdk.tenant.id").as_deref(), Some("acme"));
        assert_eq!(get("messaging.message.body.size").as_deref(), Some("12"));
    }
}
