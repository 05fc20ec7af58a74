//! Smoke test: one span reaches a real collector, and is read back from it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};
use sdk_telemetry::{Protocol, Telemetry, TelemetryConfig};
use sdk_testkit::Collector;

#[tokio::test(flavor = "multi_thread")]
async fn one_span_reaches_the_collector_over_grpc() {
    let collector = Collector::start();
    let telemetry = Telemetry::init(
        TelemetryConfig::builder("smoke-service")
            .otlp(&collector.grpc_endpoint(), Protocol::Grpc)
            .build(),
    )
    .unwrap();
    let tracer = telemetry.tracer("smoke");
    let mut span = tracer
        .span_builder("publish sdk.{tenant}.agent.{agent_id}.inbox")
        .with_kind(SpanKind::Producer)
        .with_attributes([KeyValue::new("messaging.system", "nats")])
        .start(&tracer);
    let trace_id = span.span_context().trace_id().to_string();
    span.end();
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap();

    let got = collector.wait_for_span(
        "publish sdk.{tenant}.agent.{agent_id}.inbox",
        Duration::from_secs(10),
    );
    assert_eq!(got.kind, "SPAN_KIND_PRODUCER");
    assert_eq!(got.trace_id, trace_id);
    assert_eq!(got.attributes["messaging.system"], "nats");
    assert_eq!(got.resource["service.name"], "smoke-service");
}
