//! Telemetry that cannot be delivered is counted and reported, never lost in silence:
//! `export_losses` counts it, `shutdown` fails naming the signal, and a drop without
//! `shutdown` says so on stderr. The collector is a free loopback port that nothing
//! listens on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::trace::{Span as _, Tracer as _};
use sdk_telemetry::{Exporter, LogFormat, Protocol, Telemetry, TelemetryConfig, TelemetryError};

/// Telemetry exporting the given signals over gRPC to a port nobody listens on. The
/// endpoint carries a password, which no error may show.
fn unreachable(traces: Exporter, metrics: Exporter, logs: Exporter) -> Telemetry {
    let dead = format!("http://user:hunter2@127.0.0.1:{}", sdk_testkit::free_port());
    Telemetry::init(
        TelemetryConfig::builder("losses")
            .otlp(&dead, Protocol::Grpc)
            .exporters(traces, metrics, logs)
            .timeout(Duration::from_millis(300))
            .install_global(false)
            .log_format(LogFormat::Off)
            .build()
            .unwrap(),
    )
    .unwrap()
}

/// The shutdown error, checked to name `signal` and to keep the password out.
fn shutdown_error(telemetry: Telemetry, signal: &str) -> String {
    match telemetry.shutdown(Duration::from_secs(10)) {
        Err(e @ TelemetryError::Shutdown { signal: s, .. }) if s == signal => {
            let text = e.to_string();
            assert!(!text.contains("hunter2"), "the password leaked: {text}");
            text
        }
        other => panic!("expected a {signal} shutdown error, got {other:?}"),
    }
}

#[test]
fn spans_in_a_failed_export_are_counted() {
    let telemetry = unreachable(Exporter::Otlp, Exporter::None, Exporter::None);
    assert!(telemetry.export_losses().is_empty());
    let tracer = telemetry.tracer("losses");
    for _ in 0..5 {
        tracer.start("lost").end();
    }
    // The flush (or the batch timer, on a slow machine) exports the five, and fails;
    // the export thread handles one at a time, so the count is final when it returns.
    let flushed = telemetry.tracer_provider().force_flush();
    let losses = telemetry.export_losses();
    assert_eq!(losses.spans, 5, "flush: {flushed:?}");
    assert_eq!(
        (losses.log_records, losses.metric_exports),
        (0, 0),
        "only spans"
    );
    // Nothing was left for shutdown to lose: what was lost before was counted (and
    // logged) when it happened.
    telemetry.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn a_shutdown_whose_final_span_export_fails_says_how_many_spans() {
    let telemetry = unreachable(Exporter::Otlp, Exporter::None, Exporter::None);
    let tracer = telemetry.tracer("losses");
    for _ in 0..3 {
        tracer.start("lost").end();
    }
    let text = shutdown_error(telemetry, "traces");
    assert!(text.contains("final export of 3 spans failed"), "{text}");
}

#[test]
fn a_shutdown_whose_final_log_export_fails_names_logs() {
    let telemetry = unreachable(Exporter::None, Exporter::None, Exporter::Otlp);
    let logger = telemetry.logger_provider().logger("losses");
    let mut record = logger.create_log_record();
    record.set_body("lost".into());
    logger.emit(record);
    let text = shutdown_error(telemetry, "logs");
    assert!(
        text.contains("final export of 1 log record failed"),
        "{text}"
    );
}

#[test]
fn a_shutdown_whose_final_metric_export_fails_names_metrics() {
    let telemetry = unreachable(Exporter::None, Exporter::Otlp, Exporter::None);
    telemetry
        .meter("losses")
        .u64_counter("lost")
        .build()
        .add(1, &[]);
    let text = shutdown_error(telemetry, "metrics");
    assert!(
        text.contains("final export of 1 metric collection failed"),
        "{text}"
    );
}

/// Names the case a child process runs.
const CHILD: &str = "SDK_TELEMETRY_DROP_CASE";
const DROP_REPORT: &str = "sdk-telemetry: shutdown on drop did not complete: ";

/// Runs this binary's `dropping_child` test with `case`; returns its stderr.
fn run_child(case: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "dropping_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, case)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the child failed: {stderr}");
    stderr
}

/// The child process: a span, then a drop without `shutdown`. Not a test of its own
/// (ignored in a normal run); the two tests below start it with a case named.
#[test]
#[ignore = "the child process of the drop tests, which run it"]
fn dropping_child() {
    let case = std::env::var(CHILD).expect("run by the drop tests, with a case named");
    let telemetry = match case.as_str() {
        "unreachable" => unreachable(Exporter::Otlp, Exporter::None, Exporter::None),
        "no_export" => Telemetry::init(
            TelemetryConfig::builder("losses")
                .exporters(Exporter::None, Exporter::None, Exporter::None)
                .install_global(false)
                .log_format(LogFormat::Off)
                .build()
                .unwrap(),
        )
        .unwrap(),
        other => panic!("unknown case {other}"),
    };
    telemetry.tracer("losses").start("lost").end();
    drop(telemetry);
}

#[test]
fn a_drop_whose_flush_fails_says_so_on_stderr() {
    let stderr = run_child("unreachable");
    assert!(stderr.contains(DROP_REPORT), "stderr: {stderr}");
    assert!(
        stderr.contains("final export of 1 span failed"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}

#[test]
fn a_drop_with_nothing_lost_says_nothing() {
    let stderr = run_child("no_export");
    assert!(!stderr.contains(DROP_REPORT), "stderr: {stderr}");
}
