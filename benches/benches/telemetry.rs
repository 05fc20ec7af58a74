//! sdk-telemetry helpers next to the bare OpenTelemetry calls, in the same run:
//! a messaging span started and ended (sampled and not sampled), and inject+extract.
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

fn propagation(c: &mut Criterion) {
    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer("bench");
    let cx = Context::new().with_span(tracer.start("parent"));
    let bare = opentelemetry::propagation::TextMapCompositePropagator::new(vec![
        Box::new(opentelemetry_sdk::propagation::TraceContextPropagator::new()),
        Box::new(opentelemetry_sdk::propagation::BaggagePropagator::new()),
    ]);
    let ours = sdk_telemetry::Propagator::default();
    let mut g = c.benchmark_group("inject+extract");
    g.measurement_time(Duration::from_secs(2));
    g.bench_function("raw", |b| {
        b.iter(|| {
            let mut map = std::collections::HashMap::new();
            bare.inject_context(black_box(&cx), &mut map);
            black_box(bare.extract(&map))
        })
    });
    g.bench_function("sdk", |b| {
        b.iter(|| {
            let mut map = std::collections::HashMap::new();
            ours.inject(black_box(&cx), &mut map);
            black_box(ours.extract(&map))
        })
    });
    g.finish();
}

criterion_group!(benches, spans, propagation);
criterion_main!(benches);
