//! sdk-telemetry helpers next to the bare OpenTelemetry calls, in the same run:
//! a messaging span started and ended (sampled and not sampled; and the bare span with
//! static attribute values), and inject+extract on the same carrier (traceparent and
//! tenant baggage).
//!
//! Run: `cargo bench -p sdk-benches --bench telemetry`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{
    Span as _, SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use sdk_telemetry::semconv::{self, MessageInfo, Operation};

fn info() -> MessageInfo<'static> {
    MessageInfo {
        destination: "sdk.acme.rag.query",
        template: "sdk.{tenant}.rag.query",
        message_id: Some("4bYhFfyLcdd6PZFk0yq3Hq"),
        conversation_id: Some("corr-1"),
        body_size: Some(256),
        tenant: Some("acme"),
        ..Default::default()
    }
}

/// The same span, written by hand with the bare API: constant keys and values are
/// static, per-message values (subject, ids, tenant) are owned, as they would be.
fn bare_span(tracer: &opentelemetry_sdk::trace::SdkTracer, m: &MessageInfo<'_>) {
    let mut span = tracer
        .span_builder(format!("publish {}", m.template))
        .with_kind(SpanKind::Producer)
        .with_attributes([
            KeyValue::new("messaging.system", "nats"),
            KeyValue::new("messaging.operation.name", "publish"),
            KeyValue::new("messaging.operation.type", "send"),
            KeyValue::new("messaging.destination.name", m.destination.to_owned()),
            KeyValue::new("messaging.destination.template", m.template.to_owned()),
            KeyValue::new(
                "messaging.message.id",
                m.message_id.unwrap_or_default().to_owned(),
            ),
            KeyValue::new(
                "cloudevents.event_id",
                m.message_id.unwrap_or_default().to_owned(),
            ),
            KeyValue::new(
                "messaging.message.conversation_id",
                m.conversation_id.unwrap_or_default().to_owned(),
            ),
            KeyValue::new("messaging.message.body.size", 256i64),
            KeyValue::new("sdk.tenant.id", m.tenant.unwrap_or_default().to_owned()),
        ])
        .start_with_context(tracer, &Context::new());
    span.end();
}

/// The same span with every attribute value a static string literal: the cheapest
/// the bare API can be, and not what a per-message span can do (its ids differ).
fn bare_span_static(tracer: &opentelemetry_sdk::trace::SdkTracer) {
    let mut span = tracer
        .span_builder("publish sdk.{tenant}.rag.query")
        .with_kind(SpanKind::Producer)
        .with_attributes([
            KeyValue::new("messaging.system", "nats"),
            KeyValue::new("messaging.operation.name", "publish"),
            KeyValue::new("messaging.operation.type", "send"),
            KeyValue::new("messaging.destination.name", "sdk.acme.rag.query"),
            KeyValue::new("messaging.destination.template", "sdk.{tenant}.rag.query"),
            KeyValue::new("messaging.message.id", "4bYhFfyLcdd6PZFk0yq3Hq"),
            KeyValue::new("cloudevents.event_id", "4bYhFfyLcdd6PZFk0yq3Hq"),
            KeyValue::new("messaging.message.conversation_id", "corr-1"),
            KeyValue::new("messaging.message.body.size", 256i64),
            KeyValue::new("sdk.tenant.id", "acme"),
        ])
        .start_with_context(tracer, &Context::new());
    span.end();
}

fn spans(c: &mut Criterion) {
    for (label, sampler) in [
        ("sampled", Sampler::AlwaysOn),
        ("not sampled", Sampler::AlwaysOff),
    ] {
        // No exporter: this measures the API and SDK work on the caller's thread.
        let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
        let tracer = provider.tracer("bench");
        let mut g = c.benchmark_group(format!("span-publish/{label}"));
        g.measurement_time(Duration::from_secs(2));
        g.bench_function("raw", |b| b.iter(|| bare_span(black_box(&tracer), &info())));
        g.bench_function("raw, static values", |b| {
            b.iter(|| bare_span_static(black_box(&tracer)))
        });
        g.bench_function("sdk", |b| {
            b.iter(|| {
                let mut span = semconv::start_span(
                    black_box(&tracer),
                    Operation::Publish,
                    &info(),
                    &Context::new(),
                );
                span.end();
            })
        });
        g.finish();
    }
}

/// The carrier both sides write into and read from: ordered name/value pairs, names
/// matched in any case (what message headers are). Ours goes through
/// `sdk_telemetry::HeaderCarrier` (implemented for this type); raw through the bare
/// `Injector`/`Extractor` traits on the same type, doing the same work.
struct Pairs(Vec<(String, String)>);

impl opentelemetry::propagation::Injector for Pairs {
    fn set(&mut self, key: &str, value: String) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        self.0.push((key.to_owned(), value));
    }
}

impl opentelemetry::propagation::Extractor for Pairs {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

fn propagation(c: &mut Criterion) {
    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer("bench");
    let cx = sdk_telemetry::with_tenant(&Context::new().with_span(tracer.start("parent")), "acme");
    let bare = opentelemetry::propagation::TextMapCompositePropagator::new(vec![
        Box::new(opentelemetry_sdk::propagation::TraceContextPropagator::new()),
        Box::new(opentelemetry_sdk::propagation::BaggagePropagator::new()),
    ]);
    let ours = sdk_telemetry::Propagator::default();
    let mut g = c.benchmark_group("inject+extract");
    g.measurement_time(Duration::from_secs(2));
    g.bench_function("raw", |b| {
        b.iter(|| {
            let mut carrier = Pairs(Vec::with_capacity(4));
            bare.inject_context(black_box(&cx), &mut carrier);
            black_box(bare.extract(&carrier))
        })
    });
    g.bench_function("sdk", |b| {
        b.iter(|| {
            let mut carrier: Vec<(String, String)> = Vec::with_capacity(4);
            ours.inject(black_box(&cx), &mut carrier);
            black_box(ours.extract(&carrier))
        })
    });
    g.finish();
}

/// Where a traced publish's telemetry time goes on the caller's thread: each piece the
/// `Messenger` runs per message, alone, with a telemetry that builds everything but
/// exports nothing (`no export`) and with the production set-up (a batch span
/// processor and a metric reader, exporting OTLP/HTTP to a local sink: `otlp`).
fn messaging_pieces(c: &mut Criterion) {
    use sdk_benches::{Export, OtlpSink, telemetry};
    use sdk_telemetry::{CodecGuard, OperationGuard};
    let sink = OtlpSink::start();
    for (label, otel) in [
        ("no export", telemetry(Export::Nothing, None)),
        ("otlp", telemetry(Export::Otlp, Some(&sink))),
    ] {
        let t = otel.messaging();
        let mut info = info();
        info.event_type = Some("sdk.bench.message");
        info.event_source = Some("/acme/bench/b-1");
        info.server_address = Some("127.0.0.1");
        info.server_port = Some(4222);
        let mut g = c.benchmark_group(format!("traced-publish-pieces/{label}"));
        g.measurement_time(Duration::from_secs(2));
        g.bench_function(
            "1 OperationGuard start + end (span, sent + duration metrics)",
            |b| {
                b.iter(|| {
                    OperationGuard::start(
                        &t,
                        Operation::Publish,
                        black_box(&info),
                        &Context::new(),
                    )
                    .end();
                })
            },
        );
        g.bench_function("2 metrics only: record_sent (labels, 2 instruments)", |b| {
            let m = t.metrics();
            b.iter(|| {
                m.record_sent(
                    &sdk_telemetry::MessageLabels {
                        operation: "publish",
                        template: black_box("sdk.{tenant}.events.bench"),
                        tenant: "acme",
                        error_type: None,
                    },
                    0.000_01,
                )
            })
        });
        g.bench_function(
            "3 context + tenant baggage + inject into bus headers",
            |b| {
                let guard = OperationGuard::start(&t, Operation::Publish, &info, &Context::new());
                b.iter(|| {
                    let cx = sdk_telemetry::with_tenant(&guard.context(&Context::new()), "acme");
                    let mut headers = sdk_bus::Headers::with_capacity(12);
                    let mut carrier = sdk_integration::Inject::new(&mut headers);
                    t.propagator().inject(&cx, &mut carrier);
                    black_box(headers)
                })
            },
        );
        // A codec span is a child: it starts only under an active span, as in a
        // traced publish.
        let parent = {
            use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
            Context::new().with_span(t.tracer().start("publish sdk.{tenant}.bench"))
        };
        g.bench_function("4 CodecGuard start + end, codec span on", |b| {
            b.iter(|| {
                CodecGuard::start(&t, "encode", "sdk.v1.AgentMessage", &parent).end(
                    "msgpack",
                    "sdk.v1.AgentMessage",
                    Ok(288),
                )
            })
        });
        g.bench_function(
            "5 CodecGuard start + end, codec span off (metrics only)",
            |b| {
                t.set_codec_spans(false);
                b.iter(|| {
                    CodecGuard::start(&t, "encode", "sdk.v1.AgentMessage", &parent).end(
                        "msgpack",
                        "sdk.v1.AgentMessage",
                        Ok(288),
                    )
                });
                t.set_codec_spans(true);
            },
        );
        g.finish();
    }
}

criterion_group!(benches, spans, propagation, messaging_pieces);
criterion_main!(benches);
