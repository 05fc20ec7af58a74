//! Console output carries the active trace and span ids, in plain and JSON form.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use sdk_telemetry::TraceFormat;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Logs one event inside a span with `format`; returns the output and the span's ids.
fn log_in_span(format: TraceFormat) -> (String, String, String) {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("console")))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .event_format(format),
        );
    let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("work");
        let _entered = span.enter();
        tracing::info!(tenant = "acme", "hello console");
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        (sc.trace_id().to_string(), sc.span_id().to_string())
    });
    let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (out, trace_id, span_id)
}

#[test]
fn plain_lines_carry_the_ids() {
    let (out, trace_id, span_id) = log_in_span(TraceFormat::plain());
    let line = out
        .lines()
        .find(|l| l.contains("hello console"))
        .expect("the line");
    assert!(
        line.contains(&format!("trace_id={trace_id} span_id={span_id}")),
        "{line}"
    );
    assert!(
        line.contains(" INFO ") && line.contains("tenant=acme"),
        "{line}"
    );
}

#[test]
fn json_lines_carry_the_ids() {
    let (out, trace_id, span_id) = log_in_span(TraceFormat::json());
    let line = out
        .lines()
        .find(|l| l.contains("hello console"))
        .expect("the line");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["trace_id"], trace_id.as_str());
    assert_eq!(v["span_id"], span_id.as_str());
    assert_eq!(v["message"], "hello console");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["tenant"], "acme");
}
