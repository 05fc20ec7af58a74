//! Instrumenting messaging: one set of instruments per [`crate::Telemetry`], and a
//! guard per operation that starts the span and, when it ends, records its duration,
//! `error.type` and status in the span and the metrics. A messaging layer maps what
//! its message holds to a [`MessageInfo`] once and calls [`OperationGuard::start`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use opentelemetry::metrics::{Meter, ObservableCounter};
use opentelemetry::trace::{Span as _, SpanContext, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, Span};

use crate::metrics::{MessageLabels, MessagingMetrics};
use crate::propagation::Propagator;
use crate::semconv::{self, MessageInfo, Operation};

/// Counters a transport keeps about itself (reconnects, slow consumers, dead letters,
/// refusals and failures), read when metrics are collected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportCounters {
    /// Reconnects after a disconnect.
    pub reconnects: u64,
    /// Slow-consumer events (each means dropped messages).
    pub slow_consumers: u64,
    /// Messages stored as dead letters.
    pub dead_letters: u64,
    /// Dead letters that could not be stored yet.
    pub dead_letter_failures: u64,
    /// Operations the server refused for permissions.
    pub permission_violations: u64,
    /// Replies, error replies or dead letters that could not be sent.
    pub settle_failures: u64,
    /// Acks, naks, terms and progress acks that could not be sent.
    pub ack_failures: u64,
    /// Replies refused because the reply subject was not the request tenant's inbox.
    pub refused_replies: u64,
    /// Incoming messages refused before a handler (bad envelope, tenant mismatch).
    pub rejected: u64,
    /// Headers that could not be written to an outgoing message.
    pub header_failures: u64,
    /// Handlers that ran past their timeout.
    pub handler_timeouts: u64,
    /// Requests answered 503 (overloaded or draining).
    pub overloaded: u64,
}

impl TransportCounters {
    /// Every counter with its metric name.
    fn named(&self) -> [(&'static str, u64); 12] {
        [
            ("sdk.messaging.reconnects", self.reconnects),
            ("sdk.messaging.slow_consumer.drops", self.slow_consumers),
            ("sdk.messaging.dead_letters", self.dead_letters),
            (
                "sdk.messaging.dead_letter.failures",
                self.dead_letter_failures,
            ),
            (
                "sdk.messaging.permission_violations",
                self.permission_violations,
            ),
            ("sdk.messaging.settle.failures", self.settle_failures),
            ("sdk.messaging.ack.failures", self.ack_failures),
            ("sdk.messaging.replies.refused", self.refused_replies),
            ("sdk.messaging.rejected", self.rejected),
            ("sdk.messaging.header.failures", self.header_failures),
            ("sdk.messaging.handler.timeouts", self.handler_timeouts),
            ("sdk.messaging.overloaded", self.overloaded),
        ]
    }

    fn add(&mut self, other: &TransportCounters) {
        self.reconnects += other.reconnects;
        self.slow_consumers += other.slow_consumers;
        self.dead_letters += other.dead_letters;
        self.dead_letter_failures += other.dead_letter_failures;
        self.permission_violations += other.permission_violations;
        self.settle_failures += other.settle_failures;
        self.ack_failures += other.ack_failures;
        self.refused_replies += other.refused_replies;
        self.rejected += other.rejected;
        self.header_failures += other.header_failures;
        self.handler_timeouts += other.handler_timeouts;
        self.overloaded += other.overloaded;
    }
}

type CounterSource = Box<dyn Fn() -> TransportCounters + Send + Sync>;

/// The registered transports, summed when metrics are collected.
#[derive(Default)]
struct TransportSources {
    sources: Mutex<Vec<(u64, CounterSource)>>,
}

impl std::fmt::Debug for TransportSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.sources.lock().map(|s| s.len()).unwrap_or(0);
        f.debug_struct("TransportSources")
            .field("sources", &n)
            .finish()
    }
}

impl TransportSources {
    fn total(&self) -> TransportCounters {
        let mut sum = TransportCounters::default();
        if let Ok(sources) = self.sources.lock() {
            for (_, source) in sources.iter() {
                sum.add(&source());
            }
        }
        sum
    }
}

/// What a messaging layer needs to instrument its operations: a tracer, the
/// messaging metrics, the propagator, and the transport counters. One per
/// [`crate::Telemetry`] ([`crate::Telemetry::messaging`]), shared by every user.
#[derive(Debug)]
pub struct MessagingInstruments {
    tracer: SdkTracer,
    metrics: Arc<MessagingMetrics>,
    propagator: Arc<Propagator>,
    transports: Arc<TransportSources>,
    codec_spans: AtomicBool,
    _observers: Vec<ObservableCounter<u64>>,
}

impl MessagingInstruments {
    pub(crate) fn new(
        tracer: SdkTracer,
        meter: &Meter,
        metrics: Arc<MessagingMetrics>,
        propagator: Arc<Propagator>,
        metrics_on: bool,
    ) -> MessagingInstruments {
        let transports = Arc::new(TransportSources::default());
        // Observable instruments on a provider without a reader only produce errors.
        let names = if metrics_on {
            TransportCounters::default().named().to_vec()
        } else {
            Vec::new()
        };
        let observers = names
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                let sources = Arc::clone(&transports);
                meter
                    .u64_observable_counter(*name)
                    .with_unit("{event}")
                    .with_callback(move |observer| {
                        let total = sources.total().named();
                        if let Some((_, value)) = total.get(i) {
                            observer.observe(
                                *value,
                                &[KeyValue::new(
                                    opentelemetry_semantic_conventions::attribute::MESSAGING_SYSTEM,
                                    "nats",
                                )],
                            );
                        }
                    })
                    .build()
            })
            .collect();
        MessagingInstruments {
            tracer,
            metrics,
            propagator,
            transports,
            codec_spans: AtomicBool::new(true),
            _observers: observers,
        }
    }

    /// The tracer.
    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    /// The messaging metrics.
    pub fn metrics(&self) -> &MessagingMetrics {
        &self.metrics
    }

    pub(crate) fn metrics_arc(&self) -> Arc<MessagingMetrics> {
        Arc::clone(&self.metrics)
    }

    /// The propagator.
    pub fn propagator(&self) -> &Propagator {
        &self.propagator
    }

    /// Reads a transport's counters at every collection; a transport registers once
    /// under its `id` (a second registration with the same id is ignored), and the
    /// counters of all transports are summed.
    pub fn observe_transport(
        &self,
        id: u64,
        counters: impl Fn() -> TransportCounters + Send + Sync + 'static,
    ) {
        if let Ok(mut sources) = self.transports.sources.lock()
            && !sources.iter().any(|(existing, _)| *existing == id)
        {
            sources.push((id, Box::new(counters)));
        }
    }

    /// Whether encode and decode get spans of their own (metrics are always kept).
    /// Turn them off on hot paths.
    pub fn set_codec_spans(&self, on: bool) {
        self.codec_spans.store(on, Ordering::Relaxed);
    }

    /// See [`MessagingInstruments::set_codec_spans`].
    pub fn codec_spans(&self) -> bool {
        self.codec_spans.load(Ordering::Relaxed)
    }
}

/// One instrumented messaging operation. It starts the span (and, for `process`,
/// counts the message consumed); when it ends ([`OperationGuard::end`] or drop) it
/// records the duration, `error.type` and status in the span and the metrics.
///
/// After [`OperationGuard::fail_if_dropped`], only `end` is a normal end: a drop
/// records the operation failed, with `error.type` `panic` while the thread panics
/// and `cancelled` otherwise (its future was dropped: a timeout, a drain, an abort).
#[derive(Debug)]
pub struct OperationGuard {
    instruments: Arc<MessagingInstruments>,
    span: Option<Span>,
    op: Operation,
    started: Instant,
    template: String,
    tenant: String,
    error_type: Option<String>,
    /// A drop before `end` is a failure.
    fail_if_dropped: bool,
}

impl OperationGuard {
    /// Starts `op` described by `info`, as a child of `parent`.
    pub fn start(
        instruments: &Arc<MessagingInstruments>,
        op: Operation,
        info: &MessageInfo<'_>,
        parent: &Context,
    ) -> OperationGuard {
        let span = semconv::start_span(&instruments.tracer, op, info, parent);
        let tenant = info.tenant.unwrap_or_default().to_owned();
        if op == Operation::Process || op == Operation::Receive {
            instruments.metrics.record_consumed(&MessageLabels {
                operation: op.name(),
                template: info.template,
                tenant: &tenant,
                error_type: None,
            });
        }
        OperationGuard {
            instruments: Arc::clone(instruments),
            span: Some(span),
            op,
            started: Instant::now(),
            template: info.template.to_owned(),
            tenant,
            error_type: None,
            fail_if_dropped: false,
        }
    }

    /// From now on, a drop without [`OperationGuard::end`] marks the operation
    /// failed: for a guard that lives inside work that can be stopped from outside
    /// (a handler under a timeout, a caller's future), so that the stop is not
    /// recorded as a success.
    pub fn fail_if_dropped(&mut self) {
        self.fail_if_dropped = true;
    }

    /// `parent` with this operation's span as the current span: run a handler in
    /// it, inject it into outgoing headers.
    pub fn context(&self, parent: &Context) -> Context {
        parent.with_remote_span_context(self.span_context())
    }

    /// The span's context.
    pub fn span_context(&self) -> SpanContext {
        self.span
            .as_ref()
            .map(|s| s.span_context().clone())
            .unwrap_or_else(SpanContext::empty_context)
    }

    /// Marks the operation failed: `error.type` (a short, fixed name) and an error
    /// status with `message`.
    pub fn fail(&mut self, error_type: &str, message: &str) {
        if let Some(span) = self.span.as_mut() {
            semconv::record_error(span, error_type, message);
        }
        self.error_type = Some(error_type.to_owned());
    }

    /// Adds an attribute to the span.
    pub fn set_attribute(&mut self, attribute: KeyValue) {
        if let Some(span) = self.span.as_mut() {
            span.set_attribute(attribute);
        }
    }

    /// Records how the message was settled (`ack`, `nak`, `term`, `dead_letter`): a
    /// `settle` event on the span and the settled-messages counter.
    pub fn settled(&mut self, outcome: &'static str, reason: Option<&str>) {
        if let Some(span) = self.span.as_mut() {
            span.set_attribute(KeyValue::new("sdk.messaging.outcome", outcome));
            let mut attributes = vec![KeyValue::new("sdk.messaging.outcome", outcome)];
            if let Some(r) = reason {
                attributes.push(KeyValue::new("sdk.messaging.reason", r.to_owned()));
            }
            span.add_event("settle", attributes);
        }
        self.instruments.metrics.record_settled(
            &MessageLabels {
                operation: Operation::Settle.name(),
                template: &self.template,
                tenant: &self.tenant,
                error_type: None,
            },
            outcome,
        );
    }

    /// Ends the operation now.
    pub fn end(mut self) {
        self.fail_if_dropped = false;
        self.finish();
    }

    fn finish(&mut self) {
        let Some(mut span) = self.span.take() else {
            return;
        };
        let seconds = self.started.elapsed().as_secs_f64();
        let labels = MessageLabels {
            operation: self.op.name(),
            template: &self.template,
            tenant: &self.tenant,
            error_type: self.error_type.as_deref(),
        };
        let metrics = &self.instruments.metrics;
        match self.op {
            Operation::Publish | Operation::Request => metrics.record_sent(&labels, seconds),
            Operation::Process => metrics.record_process(&labels, seconds),
            Operation::Receive | Operation::Settle => metrics.record_operation(&labels, seconds),
        }
        span.end();
    }
}

impl Drop for OperationGuard {
    fn drop(&mut self) {
        if self.fail_if_dropped && self.span.is_some() {
            if std::thread::panicking() {
                self.fail("panic", "the operation panicked");
            } else {
                self.fail("cancelled", "the operation was stopped before it ended");
            }
        }
        self.finish();
    }
}

/// One encode or decode, measured: an INTERNAL span when codec spans are on, and
/// always the `sdk.codec.duration` and `sdk.codec.size` metrics.
#[derive(Debug)]
pub struct CodecGuard {
    instruments: Arc<MessagingInstruments>,
    span: Option<Span>,
    operation: &'static str,
    started: Instant,
}

impl CodecGuard {
    /// Starts `operation` (`encode` or `decode`) of `schema` as a child of `parent`.
    pub fn start(
        instruments: &Arc<MessagingInstruments>,
        operation: &'static str,
        schema: &str,
        parent: &Context,
    ) -> CodecGuard {
        let span = (instruments.codec_spans() && parent.has_active_span())
            .then(|| semconv::start_codec_span(&instruments.tracer, operation, schema, parent));
        CodecGuard {
            instruments: Arc::clone(instruments),
            span,
            operation,
            started: Instant::now(),
        }
    }

    /// Ends it: `format` and `bytes` (the encoded size), or the error.
    pub fn end(mut self, format: &'static str, schema: &str, result: Result<usize, &str>) {
        let seconds = self.started.elapsed().as_secs_f64();
        let bytes = *result.as_ref().unwrap_or(&0);
        if let Some(span) = self.span.as_mut() {
            span.set_attribute(KeyValue::new("sdk.codec.format", format));
            span.set_attribute(KeyValue::new(
                opentelemetry_semantic_conventions::attribute::MESSAGING_MESSAGE_BODY_SIZE,
                i64::try_from(bytes).unwrap_or(i64::MAX),
            ));
            if let Err(e) = result {
                semconv::record_error(span, "codec", e);
            }
            span.end();
        }
        self.instruments.metrics.record_codec(
            self.operation,
            format,
            schema,
            seconds,
            u64::try_from(bytes).unwrap_or(u64::MAX),
        );
    }
}
