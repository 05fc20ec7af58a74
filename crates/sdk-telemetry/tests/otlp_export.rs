//! Export to a real OTLP collector (rotel, started by the test), read back from it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _};
use sdk_telemetry::semconv::{self, MessageInfo, Operation};
use sdk_telemetry::{Exporter, MessageLabels, Protocol, Sampling, Telemetry, TelemetryConfig};
use sdk_testkit::Collector;

const WAIT: Duration = Duration::from_secs(15);

fn config(collector: &Collector, protocol: Protocol) -> sdk_telemetry::TelemetryConfigBuilder {
    let endpoint = match protocol {
        Protocol::Grpc => collector.grpc_endpoint(),
        _ => collector.http_endpoint(),
    };
    TelemetryConfig::builder("export-test")
        .otlp(&endpoint, protocol)
        .service_version("1.2.3")
        .service_namespace("agents")
        .instance_id("i-42")
        .environment("test")
        .install_global(false)
        .log_format(sdk_telemetry::LogFormat::Off)
}

/// Emits one of each signal and checks each arrives with the resource.
fn all_signals_arrive(protocol: Protocol) {
    let collector = Collector::start();
    let telemetry = Telemetry::init(config(&collector, protocol).build().unwrap()).unwrap();

    // A messaging span.
    let tracer = telemetry.tracer("bus");
    let info = MessageInfo {
        destination: "sdk.acme.rag.query",
        template: "sdk.{tenant}.rag.query",
        message_id: Some("m-1"),
        tenant: Some("acme"),
        body_size: Some(42),
        ..Default::default()
    };
    let mut span = semconv::start_span(
        &tracer,
        Operation::Publish,
        &info,
        &opentelemetry::Context::new(),
    );
    span.end();

    // A log inside a tracing span, and one from the exporter's own stack.
    let work_trace = tracing::subscriber::with_default(telemetry.subscriber(), || {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let work = tracing::info_span!("work");
        let _entered = work.enter();
        tracing::info!(answer = 42, "hello log");
        tracing::warn!(target: "h2::proto", "exporter noise");
        work.context().span().span_context().trace_id().to_string()
    });

    // A metric.
    let metrics = telemetry.messaging_metrics();
    metrics.record_sent(
        &MessageLabels {
            operation: "publish",
            template: "sdk.{tenant}.rag.query",
            tenant: "acme",
            error_type: None,
        },
        0.003,
    );

    telemetry.shutdown(Duration::from_secs(10)).unwrap();

    let got = collector.wait_for_span("publish sdk.{tenant}.rag.query", WAIT);
    assert_eq!(got.kind, "SPAN_KIND_PRODUCER");
    assert_eq!(got.attributes["messaging.system"], "nats");
    assert_eq!(
        got.attributes["messaging.destination.name"],
        "sdk.acme.rag.query"
    );
    assert_eq!(got.attributes["messaging.message.body.size"], "42");
    assert_eq!(got.attributes["sdk.tenant.id"], "acme");
    for (k, v) in [
        ("service.name", "export-test"),
        ("service.version", "1.2.3"),
        ("service.namespace", "agents"),
        ("service.instance.id", "i-42"),
        ("deployment.environment.name", "test"),
    ] {
        assert_eq!(
            got.resource.get(k).map(String::as_str),
            Some(v),
            "resource {k}"
        );
    }

    let log = collector.wait_for(WAIT, "the log record", |r| {
        r.logs.iter().find(|l| l.body == "hello log").cloned()
    });
    assert_eq!(
        log.trace_id, work_trace,
        "the log carries the active trace id"
    );
    assert_eq!(log.attributes.get("answer").map(String::as_str), Some("42"));
    assert_eq!(log.resource["service.name"], "export-test");
    let received = collector.received();
    assert!(
        !received.logs.iter().any(|l| l.body == "exporter noise"),
        "the exporter stack is kept out of the export"
    );
    assert_eq!(
        received.spans_named("work").len(),
        1,
        "tracing spans join OpenTelemetry"
    );

    let metric = collector.wait_for(WAIT, "the sent-messages metric", |r| {
        r.last_metric("messaging.client.sent.messages").cloned()
    });
    assert_eq!(metric.resource["service.name"], "export-test");
    let point = &metric.points[0];
    assert_eq!(point.attributes["sdk.tenant.id"], "acme");
    assert_eq!(
        point.attributes["messaging.destination.template"],
        "sdk.{tenant}.rag.query"
    );
    collector.wait_for(WAIT, "the duration histogram", |r| {
        r.last_metric("messaging.client.operation.duration")
            .cloned()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_metrics_and_logs_arrive_over_grpc_from_a_multi_thread_runtime() {
    all_signals_arrive(Protocol::Grpc);
}

#[tokio::test(flavor = "current_thread")]
async fn traces_metrics_and_logs_arrive_over_grpc_from_a_current_thread_runtime() {
    all_signals_arrive(Protocol::Grpc);
}

#[tokio::test(flavor = "current_thread")]
async fn traces_metrics_and_logs_arrive_over_http_from_a_current_thread_runtime() {
    all_signals_arrive(Protocol::HttpProtobuf);
}

#[test]
fn traces_metrics_and_logs_arrive_over_http_from_synchronous_code() {
    all_signals_arrive(Protocol::HttpProtobuf);
}

#[test]
fn a_ratio_sampler_keeps_a_fraction_within_five_sigma() {
    let collector = Collector::start();
    let telemetry = Telemetry::init(
        config(&collector, Protocol::Grpc)
            .exporters(Exporter::Otlp, Exporter::None, Exporter::None)
            .sampling(Sampling::Ratio(0.3))
            .component_sampling("marker", Sampling::AlwaysOn)
            .build()
            .unwrap(),
    )
    .unwrap();
    let tracer = telemetry.tracer("sampling");
    let n = 1000u32;
    for _ in 0..n {
        tracer.start("sampled-root").end();
    }
    // A last span that is always kept: once the collector has printed it, it has
    // printed everything before it.
    let marker = MessageInfo {
        destination: "sdk.acme.m.m",
        template: "marker",
        component: Some("marker"),
        ..Default::default()
    };
    semconv::start_span(
        &tracer,
        Operation::Process,
        &marker,
        &opentelemetry::Context::new(),
    )
    .end();
    telemetry.shutdown(Duration::from_secs(10)).unwrap();
    collector.wait_for_span("process marker", WAIT);
    let kept = collector.received().spans_named("sampled-root").len();
    let (p, nf) = (0.3, f64::from(n));
    let (mean, sd) = (nf * p, (nf * p * (1.0 - p)).sqrt());
    #[allow(clippy::cast_precision_loss)]
    let kept_f = kept as f64;
    assert!(
        (kept_f - mean).abs() <= 5.0 * sd,
        "kept {kept} of {n}; expected {mean} ± {}",
        5.0 * sd
    );
}

#[test]
fn per_component_rules_override_the_default() {
    let collector = Collector::start();
    let telemetry = Telemetry::init(
        config(&collector, Protocol::Grpc)
            .exporters(Exporter::Otlp, Exporter::None, Exporter::None)
            .sampling(Sampling::AlwaysOn)
            .component_sampling("chatty", Sampling::AlwaysOff)
            .build()
            .unwrap(),
    )
    .unwrap();
    let tracer = telemetry.tracer("rules");
    for component in ["chatty", "rag"] {
        let info = MessageInfo {
            destination: "sdk.acme.x.y",
            template: "sdk.{tenant}.x.y",
            component: Some(component),
            ..Default::default()
        };
        let mut s = semconv::start_span(
            &tracer,
            Operation::Process,
            &info,
            &opentelemetry::Context::new(),
        );
        s.end();
    }
    telemetry.shutdown(Duration::from_secs(10)).unwrap();
    // Both spans end in the same batch; once one is printed, the batch is.
    collector.wait_for_span("process sdk.{tenant}.x.y", WAIT);
    let spans = collector
        .received()
        .spans_named("process sdk.{tenant}.x.y")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].attributes["sdk.component"], "rag");
}

#[test]
fn shutdown_flushes_everything() {
    let collector = Collector::start();
    let telemetry = Telemetry::init(
        config(&collector, Protocol::Grpc)
            .exporters(Exporter::Otlp, Exporter::None, Exporter::None)
            .build()
            .unwrap(),
    )
    .unwrap();
    let tracer = telemetry.tracer("flush");
    for _ in 0..1500 {
        tracer.start("flushed").end();
    }
    telemetry.shutdown(Duration::from_secs(10)).unwrap();
    let n = collector.wait_for(WAIT, "all 1500 spans", |r| {
        let n = r.spans_named("flushed").len();
        (n >= 1500).then_some(n)
    });
    assert_eq!(n, 1500, "nothing is lost at exit, nothing doubled");
}

#[test]
fn with_the_collector_down_spans_keep_ending_at_most_a_queue_is_held_and_export_recovers() {
    let mut collector = Collector::start();
    collector.kill();
    let telemetry = Telemetry::init(
        config(&collector, Protocol::Grpc)
            .exporters(Exporter::Otlp, Exporter::None, Exporter::None)
            .timeout(Duration::from_millis(500))
            .max_queue_size(256)
            .build()
            .unwrap(),
    )
    .unwrap();
    let tracer = telemetry.tracer("outage");
    // Ending spans never waits for the exporter: 20 000 of them end with nobody to
    // take them (the bounded queue drops what does not fit).
    for _ in 0..20_000 {
        tracer.start("during-outage").end();
    }
    collector.restart();
    // Recovery: keep sending and flushing until spans arrive again.
    let recovered = sdk_testkit::wait_until(WAIT, || {
        tracer.start("after-outage").end();
        let _ = telemetry.tracer_provider().force_flush();
        (!collector.received().spans_named("after-outage").is_empty()).then_some(())
    });
    assert!(
        recovered.is_some(),
        "export recovers once the collector is back:\n{}",
        collector.raw_output()
    );
    telemetry
        .shutdown(Duration::from_secs(5))
        .expect("shutdown flushes once the collector is back");
    let received = collector.received();
    let during = received.spans_named("during-outage").len();
    // The queue (256) plus at most one batch taken out of it for an export attempt:
    // of 20 000 spans, the rest were dropped, not held.
    assert!(
        during <= 2 * 256,
        "{during} spans were kept through the outage; the bound is 512"
    );
}

#[cfg(feature = "prometheus")]
#[test]
fn metrics_can_be_pulled_by_prometheus() {
    use std::io::{Read as _, Write as _};
    let telemetry = Telemetry::init(
        TelemetryConfig::builder("prom-test")
            .exporters(Exporter::None, Exporter::None, Exporter::None)
            .prometheus("127.0.0.1:0".parse().unwrap())
            .install_global(false)
            .log_format(sdk_telemetry::LogFormat::Off)
            .build()
            .unwrap(),
    )
    .unwrap();
    telemetry.messaging_metrics().record_sent(
        &MessageLabels {
            operation: "publish",
            template: "sdk.{tenant}.rag.query",
            tenant: "acme",
            error_type: None,
        },
        0.002,
    );
    let address = telemetry.prometheus_address().unwrap();
    assert!(address.ip().is_loopback());
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(body.contains("messaging_client_sent_messages"), "{body}");
    assert!(body.contains("sdk_tenant_id=\"acme\""), "{body}");
}
