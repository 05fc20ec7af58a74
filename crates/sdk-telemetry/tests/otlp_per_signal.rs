//! The per-signal OTLP variables route each signal to its own collector: two real
//! collectors (rotel) on loopback ports, configured only through the variables
//! (`TelemetryConfig::from_lookup`, not the process environment).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::trace::{Span as _, Tracer as _};
use sdk_telemetry::{Telemetry, TelemetryConfig};
use sdk_testkit::Collector;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn traces_and_metrics_go_to_the_collectors_their_own_variables_name() {
    let a = Collector::start();
    let b = Collector::start();
    // The general endpoint leads nowhere (nothing listens there): a signal that fell
    // back to it, ignoring its own variables, would arrive at neither collector.
    let nowhere = format!("http://127.0.0.1:{}", sdk_testkit::free_port());
    let vars: HashMap<&str, String> = HashMap::from([
        ("OTEL_SERVICE_NAME", "per-signal".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", nowhere),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        // Traces: A, over HTTP (the general protocol, inherited), at a URL that is
        // used as given. Were /v1/traces appended to it, as to the general one, A
        // would refuse the path.
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("{}/v1/traces", a.http_endpoint()),
        ),
        // Metrics: B over gRPC; their protocol wins over the general http/protobuf.
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", b.grpc_endpoint()),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc".to_owned()),
        ("OTEL_LOGS_EXPORTER", "none".to_owned()),
        ("SDK_LOG_FORMAT", "off".to_owned()),
    ]);
    let config = TelemetryConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let telemetry = Telemetry::init(config).unwrap();

    telemetry.tracer("routing").start("routed span").end();
    telemetry
        .meter("routing")
        .u64_counter("routed.count")
        .build()
        .add(3, &[]);
    // Flushes every signal. A failed final export would fail it, so what arrived is
    // checked first, for a clearer message, and the result of shutdown last.
    let shutdown = telemetry.shutdown(Duration::from_secs(10));

    let span = a.wait_for_span("routed span", WAIT);
    assert_eq!(span.resource["service.name"], "per-signal");
    let metric = b.wait_for(WAIT, "the routed metric", |r| {
        r.last_metric("routed.count").cloned()
    });
    assert_eq!(
        metric.points[0].fields.get("Value").map(String::as_str),
        Some("3")
    );
    assert_eq!(metric.resource["service.name"], "per-signal");

    // Each export goes to one endpoint, so the arrivals above already say where each
    // signal went; this checks nothing else went anywhere. Shutdown has returned, so
    // every export has been answered by then.
    let at_a = a.received();
    let at_b = b.received();
    assert!(
        at_a.metrics.is_empty() && at_a.logs.is_empty(),
        "only spans go to A; it received:\n{}",
        a.raw_output()
    );
    assert!(
        at_b.spans.is_empty() && at_b.logs.is_empty(),
        "only metrics go to B; it received:\n{}",
        b.raw_output()
    );
    assert_eq!(at_a.spans_named("routed span").len(), 1, "sent once");
    shutdown.unwrap();
}
