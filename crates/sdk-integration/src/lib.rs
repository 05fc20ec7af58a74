#![doc = include_str!("../README.md")]

pub use sdk_bus;
pub use sdk_codec;
pub use sdk_telemetry;

#[cfg(doctest)]
mod doc_tests;
mod traced;

pub use traced::{Extract, Inject};

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{Span as _, TraceContextExt as _};
use sdk_bus::{
    Bus, BusError, Delivery, Envelope, EventSource, PublishError, RequestError, ServeOptions,
    Service, ServiceCode, ServiceFailure, Subject, SubjectPattern, SubscribeError,
};
use sdk_codec::{Codec, CodecError, Payload, PayloadMeta};
use sdk_telemetry::semconv::{self, Operation};
use sdk_telemetry::{MessagingMetrics, Propagator, Telemetry};

/// A failure of either side of the wiring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Encoding or decoding failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
}

macro_rules! bus_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::Bus(e.into())
            }
        }
    )*};
}
bus_error_from!(PublishError, RequestError, SubscribeError);

/// A codec or bus failure inside a handler answers 500 (a request that cannot be
/// decoded is answered 400 before the handler runs).
impl From<Error> for ServiceFailure {
    fn from(e: Error) -> ServiceFailure {
        match e {
            Error::Bus(b) => ServiceFailure::from(b),
            Error::Codec(c) => ServiceFailure::new(ServiceCode::HandlerFailed, c.to_string()),
        }
    }
}

/// A process span in flight, with what ending it needs.
#[derive(Debug)]
struct Processing {
    span: opentelemetry_sdk::trace::Span,
    at: Instant,
    template: String,
}

#[derive(Debug)]
struct Tracing {
    tracer: opentelemetry_sdk::trace::SdkTracer,
    propagator: Arc<Propagator>,
    metrics: MessagingMetrics,
}

/// Typed, traced messaging: the codec's output goes into CloudEvents envelopes on the
/// bus; with telemetry, every publish, request and process gets its span, its
/// metrics, and W3C trace context in the headers, so one trace runs across services.
#[derive(Debug, Clone)]
pub struct Messenger {
    bus: Bus,
    codec: Codec,
    source: EventSource,
    tracing: Option<Arc<Tracing>>,
}

impl Messenger {
    /// Sends as `source` over `bus`, encoding with `codec`; no telemetry.
    pub fn new(bus: Bus, codec: Codec, source: EventSource) -> Messenger {
        Messenger {
            bus,
            codec,
            source,
            tracing: None,
        }
    }

    /// Adds spans, metrics and propagation from `telemetry`.
    pub fn with_telemetry(mut self, telemetry: &Telemetry) -> Messenger {
        self.tracing = Some(Arc::new(Tracing {
            tracer: telemetry.tracer("sdk-integration"),
            propagator: telemetry.shared_propagator(),
            metrics: telemetry.messaging_metrics(),
        }));
        self
    }

    /// The bus.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Encodes `value` into an envelope of `event_type`, with content type, content
    /// encoding and schema in the `ce-*` headers.
    ///
    /// # Errors
    /// [`Error::Codec`], or [`Error::Bus`] for an invalid header.
    pub fn envelope<T: Payload>(&self, event_type: &str, value: &T) -> Result<Envelope, Error> {
        let encoded = self.codec.encode(value)?;
        let mut builder = Envelope::builder(&self.source, event_type)
            .content_type(encoded.content_type)
            .payload(encoded.bytes);
        if let Some(encoding) = encoded.content_encoding {
            builder = builder.content_encoding(encoding);
        }
        if let Some(schema) = &encoded.schema {
            builder = builder.schema(&schema.to_string());
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
        Ok(self.codec.decode(envelope.payload().clone(), &meta)?)
    }

    /// Starts a span for `op` on `subject`, writes its context into the envelope's
    /// headers, and returns it.
    fn start(
        &self,
        op: Operation,
        subject: &Subject,
        envelope: &mut Envelope,
        parent: &Context,
    ) -> Option<(opentelemetry_sdk::trace::Span, Instant)> {
        let t = self.tracing.as_ref()?;
        let template = subject.template();
        let id = envelope.id().map(|c| c.into_owned());
        let corr = envelope.correlation_id().map(|c| c.into_owned());
        let kind = envelope.event_type().map(|c| c.into_owned());
        let info = semconv::MessageInfo {
            destination: subject.as_str(),
            template: &template,
            message_id: id.as_deref(),
            conversation_id: corr.as_deref(),
            body_size: Some(envelope.payload().len()),
            event_type: kind.as_deref(),
            event_source: Some(self.source.as_str()),
            tenant: Some(subject.tenant().as_str()),
            ..Default::default()
        };
        let span = semconv::start_span(&t.tracer, op, &info, parent);
        let cx = sdk_telemetry::with_tenant(
            &parent.with_remote_span_context(span.span_context().clone()),
            subject.tenant().as_str(),
        );
        let mut carrier = Inject::new(envelope.headers_mut());
        t.propagator.inject(&cx, &mut carrier);
        carrier.report(&self.bus);
        Some((span, Instant::now()))
    }

    fn finish<T, E: std::fmt::Display>(
        &self,
        op: Operation,
        subject: &Subject,
        started: Option<(opentelemetry_sdk::trace::Span, Instant)>,
        result: &Result<T, E>,
        kind: fn(&E) -> &'static str,
    ) {
        let (Some(t), Some((mut span, at))) = (self.tracing.as_ref(), started) else {
            return;
        };
        let template = subject.template();
        let error_type = result.as_ref().err().map(kind);
        if let (Some(kind), Err(e)) = (error_type, result) {
            semconv::record_error(&mut span, kind, &e.to_string());
        }
        let labels = sdk_telemetry::MessageLabels {
            operation: op.name(),
            template: &template,
            tenant: subject.tenant().as_str(),
            error_type,
        };
        match op {
            Operation::Publish => t.metrics.record_sent(&labels, at.elapsed().as_secs_f64()),
            _ => t
                .metrics
                .record_operation(&labels, at.elapsed().as_secs_f64()),
        }
        span.end();
    }

    /// Encodes and publishes `value` on `subject`, inside a PRODUCER span.
    ///
    /// # Errors
    /// As [`Messenger::envelope`] and [`Bus::publish`].
    pub async fn publish<T: Payload>(
        &self,
        subject: &Subject,
        event_type: &str,
        value: &T,
    ) -> Result<(), Error> {
        let mut envelope = self.envelope(event_type, value)?;
        let started = self.start(
            Operation::Publish,
            subject,
            &mut envelope,
            &Context::current(),
        );
        let result = self.bus.publish(subject, envelope).await;
        self.finish(
            Operation::Publish,
            subject,
            started,
            &result,
            PublishError::kind,
        );
        Ok(result?)
    }

    /// Sends `value` as a request inside a CLIENT span and decodes the reply as `R`.
    ///
    /// # Errors
    /// As [`Messenger::envelope`], [`Bus::request`] and [`Messenger::decode`].
    pub async fn request<T: Payload, R: Payload>(
        &self,
        subject: &Subject,
        event_type: &str,
        value: &T,
    ) -> Result<R, Error> {
        let mut envelope = self.envelope(event_type, value)?;
        let started = self.start(
            Operation::Request,
            subject,
            &mut envelope,
            &Context::current(),
        );
        let result = self.bus.request(subject, envelope).await;
        self.finish(
            Operation::Request,
            subject,
            started,
            &result,
            RequestError::kind,
        );
        self.decode(&result?)
    }

    /// Serves typed requests: each message is decoded as `T` (a bad payload gets a
    /// 400 reply), handled inside a CONSUMER `process` span that continues the
    /// sender's trace, and its `R` answer is encoded into the reply.
    ///
    /// # Errors
    /// As [`Bus::serve`].
    pub async fn serve<T, R, F, Fut>(
        &self,
        pattern: &SubjectPattern,
        options: ServeOptions,
        handler: F,
    ) -> Result<Service, SubscribeError>
    where
        T: Payload,
        R: Payload,
        F: Fn(T, Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ServiceFailure>> + Send + 'static,
    {
        let me = self.clone();
        let handler = Arc::new(handler);
        let group_name = options.group.clone();
        self.bus
            .serve(pattern, options, move |delivery| {
                let (me, handler, group_name) =
                    (me.clone(), Arc::clone(&handler), group_name.clone());
                async move {
                    let (cx, started) = me.process_span(&delivery, group_name.as_deref());
                    let subject = delivery.subject.clone();
                    let outcome = async {
                        let request: T = me.decode(&delivery.envelope).map_err(|e| {
                            ServiceFailure::new(ServiceCode::BadRequest, e.to_string())
                        })?;
                        // The handler runs inside the process span: its logs carry the
                        // trace id, and what it publishes continues the trace.
                        let answer = handler(request, delivery).with_context(cx.clone()).await?;
                        let mut reply = me.envelope("sdk.reply", &answer).map_err(|e| {
                            ServiceFailure::new(ServiceCode::HandlerFailed, e.to_string())
                        })?;
                        if let Some(t) = &me.tracing {
                            let mut carrier = Inject::new(reply.headers_mut());
                            t.propagator.inject(&cx, &mut carrier);
                            carrier.report(&me.bus);
                        }
                        Ok(reply)
                    }
                    .await;
                    me.end_process(&subject, started, &outcome);
                    outcome
                }
            })
            .await
    }

    fn process_span(
        &self,
        delivery: &Delivery,
        group: Option<&str>,
    ) -> (Context, Option<Processing>) {
        let Some(t) = self.tracing.as_ref() else {
            return (Context::current(), None);
        };
        let parent = t.propagator.extract(&Extract(delivery.envelope.headers()));
        let template = delivery.subject.template();
        let id = delivery.envelope.id().map(|c| c.into_owned());
        let corr = delivery.envelope.correlation_id().map(|c| c.into_owned());
        let info = semconv::MessageInfo {
            destination: delivery.subject.as_str(),
            template: &template,
            message_id: id.as_deref(),
            conversation_id: corr.as_deref(),
            body_size: Some(delivery.envelope.payload().len()),
            consumer_group: group,
            tenant: Some(delivery.subject.tenant().as_str()),
            ..Default::default()
        };
        let span = semconv::start_span(&t.tracer, Operation::Process, &info, &parent);
        let cx = parent.with_remote_span_context(span.span_context().clone());
        t.metrics.record_consumed(&sdk_telemetry::MessageLabels {
            operation: "process",
            template: &template,
            tenant: delivery.subject.tenant().as_str(),
            error_type: None,
        });
        (
            cx,
            Some(Processing {
                span,
                at: Instant::now(),
                template,
            }),
        )
    }

    fn end_process<R>(
        &self,
        subject: &Subject,
        started: Option<Processing>,
        outcome: &Result<R, ServiceFailure>,
    ) {
        let (
            Some(t),
            Some(Processing {
                mut span,
                at,
                template,
            }),
        ) = (self.tracing.as_ref(), started)
        else {
            return;
        };
        let code = outcome.as_ref().err().map(|f| f.code.to_string());
        if let (Err(f), Some(code)) = (outcome, &code) {
            semconv::record_error(&mut span, code, &f.message);
        }
        t.metrics.record_process(
            &sdk_telemetry::MessageLabels {
                operation: "process",
                template: &template,
                tenant: subject.tenant().as_str(),
                error_type: code.as_deref(),
            },
            at.elapsed().as_secs_f64(),
        );
        span.end();
    }
}
