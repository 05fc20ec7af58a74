//! With the collector unreachable, export failures are reported, a few times, not
//! once per span. Own test binary: it installs a global `tracing` subscriber, because
//! the SDK reports from its own export threads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::trace::{Span as _, Tracer as _};
use sdk_telemetry::{Exporter, LogFormat, Protocol, Telemetry, TelemetryConfig};
use tracing_subscriber::layer::SubscriberExt as _;

/// Counts WARN and ERROR events from the OpenTelemetry SDK and exporter.
struct Count(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let m = event.metadata();
        if m.target().starts_with("opentelemetry") && *m.level() <= tracing::Level::WARN {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn export_failures_are_reported_without_flooding() {
    let reports = Arc::new(AtomicUsize::new(0));
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(Count(reports.clone())),
    )
    .unwrap();
    let dead = format!("http://127.0.0.1:{}", sdk_testkit::free_port());
    let telemetry = Telemetry::init(
        TelemetryConfig::builder("outage")
            .otlp(&dead, Protocol::Grpc)
            .exporters(Exporter::Otlp, Exporter::None, Exporter::None)
            .timeout(Duration::from_millis(300))
            .max_queue_size(512)
            .install_global(false)
            .log_format(LogFormat::Off)
            .build()
            .unwrap(),
    )
    .unwrap();
    let tracer = telemetry.tracer("outage");
    let spans = 20_000;
    for _ in 0..spans {
        tracer.start("lost").end();
    }
    // Force a few export attempts. A flush reports only its own last batch, and the
    // queue may already have gone out (and failed) on its own, so the flushes'
    // results vary; the count of lost spans does not.
    let flush_failed: Vec<bool> = (0..3)
        .map(|_| telemetry.tracer_provider().force_flush().is_err())
        .collect();
    let lost = telemetry.export_losses().spans;
    assert!(
        lost >= 1,
        "no span counted as lost (flushes failed: {flush_failed:?})"
    );
    // Whether anything was left for the final flush depends on timing; if something
    // was, shutdown says how much was lost.
    if let Err(e) = telemetry.shutdown(Duration::from_secs(2)) {
        assert!(e.to_string().contains("final export of"), "{e}");
    }
    let n = reports.load(Ordering::SeqCst);
    assert!(n >= 1, "the failure was reported");
    assert!(n <= 50, "{n} reports for {spans} spans: that is flooding");
}
