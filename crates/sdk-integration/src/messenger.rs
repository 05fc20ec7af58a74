//! The `Messenger`: a bus, a codec and a source, with telemetry when given.

use std::sync::Arc;

use opentelemetry::Context;
use sdk_bus::{Bus, BusError, BusStats, Envelope, EventSource, Headers, TenantId};
use sdk_codec::{Codec, Format, Payload, PayloadMeta};
use sdk_telemetry::semconv::Operation;
use sdk_telemetry::{
    CodecGuard, MessagingInstruments, OperationGuard, Telemetry, TransportCounters,
};

use crate::Error;
use crate::context::Conversation;
use crate::describe::Described;
use crate::traced::{Extract, Inject};

/// Typed, traced messaging: the codec's output goes into CloudEvents envelopes on the
/// bus; with telemetry, every publish, request, process and encode or decode gets
/// its span and metrics, and W3C trace context travels in the headers, so one trace
/// runs across services. Inside a handler, what it sends joins the handled
/// message's conversation (`ce-correlationid`, `ce-causationid`) by itself.
#[derive(Debug, Clone)]
pub struct Messenger {
    pub(crate) bus: Bus,
    pub(crate) codec: Codec,
    pub(crate) source: EventSource,
    pub(crate) telemetry: Option<Arc<MessagingInstruments>>,
    /// `server.address` and `server.port`, read when telemetry was added.
    pub(crate) server: Option<(String, u16)>,
}

impl Messenger {
    /// Sends as `source` over `bus`, encoding with `codec`; no telemetry.
    pub fn new(bus: Bus, codec: Codec, source: EventSource) -> Messenger {
        Messenger {
            bus,
            codec,
            source,
            telemetry: None,
            server: None,
        }
    }

    /// Adds spans, metrics and propagation from `telemetry`, and turns the bus's
    /// counters (reconnects, slow consumers, dead letters, refusals, failures) into
    /// metrics.
    pub fn with_telemetry(mut self, telemetry: &Telemetry) -> Messenger {
        let instruments = telemetry.messaging();
        let bus = self.bus.clone();
        instruments.observe_transport(self.bus.id(), move || transport_counters(&bus.stats()));
        let details = self.bus.server_details();
        self.server = (details.port != 0).then_some((details.host, details.port));
        self.telemetry = Some(instruments);
        self
    }

    /// The bus.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The codec.
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// The source it sends as.
    pub fn source(&self) -> &EventSource {
        &self.source
    }

    /// Encodes `value` into an envelope of `event_type`, with content type, content
    /// encoding and schema in the `ce-*` headers. Inside a handler, the envelope
    /// joins the handled message's conversation.
    ///
    /// # Errors
    /// [`Error::Codec`], or [`Error::Bus`] for an invalid header.
    pub fn envelope<T: Payload>(&self, event_type: &str, value: &T) -> Result<Envelope, Error> {
        self.envelope_with(event_type, value, self.codec.format(), &self.source)
    }

    pub(crate) fn envelope_with<T: Payload>(
        &self,
        event_type: &str,
        value: &T,
        format: Format,
        source: &EventSource,
    ) -> Result<Envelope, Error> {
        let schema = T::SCHEMA.map(|s| s.to_string());
        let guard = self.codec_guard("encode", schema.as_deref());
        let encoded = match self.codec.encode_as(value, format) {
            Ok(e) => e,
            Err(e) => {
                finish_codec(guard, || format, schema.as_deref(), Err(&e.to_string()));
                return Err(e.into());
            }
        };
        finish_codec(guard, || format, schema.as_deref(), Ok(encoded.bytes.len()));
        let mut builder = Envelope::builder(source, event_type)
            .content_type(encoded.content_type)
            .payload(encoded.bytes);
        if let Some(encoding) = encoded.content_encoding {
            builder = builder.content_encoding(encoding);
        }
        if let Some(schema) = &schema {
            builder = builder.schema(schema);
        }
        if let Some(conversation) = Conversation::current() {
            builder = builder
                .correlation_id(&conversation.correlation_id)
                .causation_id(&conversation.causation_id);
        }
        Ok(builder.build().map_err(BusError::from)?)
    }

    /// Decodes an envelope's payload as `T`, using its content type, encoding and schema.
    ///
    /// # Errors
    /// [`Error::Codec`], including a missing content type.
    pub fn decode<T: Payload>(&self, envelope: &Envelope) -> Result<T, Error> {
        let content_type = envelope.data_content_type().unwrap_or_default();
        let encoding = envelope.content_encoding();
        let schema = envelope.data_schema();
        let meta = PayloadMeta::new(&content_type)
            .with_encoding(encoding.as_deref())
            .with_schema(schema.as_deref());
        // Spans and metrics name the type decoded into, never the sender's
        // `ce-dataschema`: a sender must not choose span names or label values.
        let label = self.schema_label::<T>();
        // The span's format label; parsed only when there is a span to label.
        let format = || {
            content_type
                .parse::<Format>()
                .unwrap_or(self.codec.format())
        };
        let guard = self.codec_guard("decode", label.as_deref());
        match self.codec.decode(envelope.payload().clone(), &meta) {
            Ok(value) => {
                finish_codec(
                    guard,
                    format,
                    label.as_deref(),
                    Ok(envelope.payload().len()),
                );
                Ok(value)
            }
            Err(e) => {
                finish_codec(guard, format, label.as_deref(), Err(&e.to_string()));
                Err(e.into())
            }
        }
    }

    /// `T`'s schema id as a span and metric label; only formatted when traced.
    fn schema_label<T: Payload>(&self) -> Option<String> {
        self.telemetry.as_ref()?;
        T::SCHEMA.map(|s| s.to_string())
    }

    fn codec_guard(&self, operation: &'static str, schema: Option<&str>) -> Option<CodecGuard> {
        let t = self.telemetry.as_ref()?;
        Some(CodecGuard::start(
            t,
            operation,
            schema.unwrap_or("unknown"),
            &Context::current(),
        ))
    }

    /// The answer to a request, for `tenant`: in the format the request asked for
    /// (`Accept`) or used, from this service acting for the request's tenant.
    pub(crate) fn reply_envelope<R: Payload>(
        &self,
        request: &Envelope,
        tenant: &TenantId,
        value: &R,
    ) -> Result<Envelope, Error> {
        let format = reply_format(request, self.codec.format());
        let source = self.source.for_tenant(tenant);
        self.envelope_with("sdk.reply", value, format, &source)
    }

    /// Starts `op`'s span for `envelope` as a child of `parent`, and writes its
    /// context into the envelope's headers.
    pub(crate) fn start_send(
        &self,
        op: Operation,
        subject: &sdk_bus::Subject,
        envelope: &mut Envelope,
        parent: &Context,
    ) -> Option<OperationGuard> {
        let t = self.telemetry.as_ref()?;
        let described = Described::new(subject, subject.template(), envelope);
        let mut guard =
            OperationGuard::start(t, op, &described.info(self.server.as_ref(), None), parent);
        // The caller may drop the send's future: that is not a success.
        guard.fail_if_dropped();
        let cx = sdk_telemetry::with_tenant(&guard.context(parent), subject.tenant().as_str());
        self.inject(&cx, envelope.headers_mut());
        Some(guard)
    }

    /// Starts the `process` span of a received message, continuing the sender's trace.
    /// Returns the guard and the context to handle it in.
    pub(crate) fn start_process(
        &self,
        subject: &sdk_bus::Subject,
        template: impl FnOnce() -> String,
        envelope: &Envelope,
        group: Option<&str>,
    ) -> (Option<OperationGuard>, Context) {
        let Some(t) = self.telemetry.as_ref() else {
            return (None, Context::current());
        };
        let parent = t.propagator().extract(&Extract(envelope.headers()));
        let described = Described::new(subject, template(), envelope);
        let guard = OperationGuard::start(
            t,
            Operation::Process,
            &described.info(self.server.as_ref(), group),
            &parent,
        );
        let cx = guard.context(&parent);
        (Some(guard), cx)
    }

    /// Writes `cx` into `headers`; refused header values are counted on the bus.
    pub(crate) fn inject(&self, cx: &Context, headers: &mut Headers) {
        if let Some(t) = self.telemetry.as_ref() {
            let mut carrier = Inject::new(headers);
            t.propagator().inject(cx, &mut carrier);
            carrier.report(&self.bus);
        }
    }
}

/// Ends an operation normally (after any `fail`): a guard armed with
/// `fail_if_dropped` that is dropped instead records a cancellation or a panic.
pub(crate) fn end_op(guard: Option<OperationGuard>) {
    if let Some(g) = guard {
        g.end();
    }
}

fn finish_codec(
    guard: Option<CodecGuard>,
    format: impl FnOnce() -> Format,
    schema: Option<&str>,
    result: Result<usize, &str>,
) {
    if let Some(g) = guard {
        g.end(format().name(), schema.unwrap_or("unknown"), result);
    }
}

/// The format of a reply: what the request's `Accept` asks for, else the request's
/// own format, else `default`. A peer never gets a format it did not send or ask for
/// (unless it sent neither a known format nor an `Accept`).
fn reply_format(request: &Envelope, default: Format) -> Format {
    if let Some(accept) = request.headers().get("accept")
        && let Some(f) = Format::negotiate(accept, &Format::ALL)
    {
        return f;
    }
    request
        .data_content_type()
        .and_then(|ct| ct.parse::<Format>().ok())
        .unwrap_or(default)
}

/// The bus counters that become metrics.
fn transport_counters(s: &BusStats) -> TransportCounters {
    let mut c = TransportCounters::default();
    c.reconnects = s.reconnects;
    c.slow_consumers = s.slow_consumers;
    c.dead_letters = s.dead_lettered;
    c.dead_letter_failures = s.dead_letter_failures;
    c.permission_violations = s.permission_violations;
    c.settle_failures = s.settle_failures;
    c.ack_failures = s.ack_failures;
    c.refused_replies = s.refused_replies;
    c.rejected = s.rejected + s.tenant_mismatches;
    c.header_failures = s.header_failures;
    c.handler_timeouts = s.handler_timeouts;
    c.overloaded = s.overloaded;
    c
}
