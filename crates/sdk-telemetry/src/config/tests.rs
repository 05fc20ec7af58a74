//! Tests of the configuration: variables, precedence, errors and secrets.
#![cfg(test)]

use super::*;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> Result<TelemetryConfig, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    TelemetryConfig::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn the_standard_variables_are_read() {
    let c = env(&[
        ("OTEL_SERVICE_NAME", "rag"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.version=1.2,deployment.environment.name=prod%20eu",
        ),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20s3cret",
        ),
        ("OTEL_METRICS_EXPORTER", "none"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ("OTEL_PROPAGATORS", "tracecontext"),
    ])
    .unwrap();
    assert_eq!(c.service_name, "rag");
    assert_eq!(c.resource["deployment.environment.name"], "prod eu");
    assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:4318"));
    assert_eq!(c.protocol, Protocol::HttpProtobuf);
    assert_eq!(
        (c.traces, c.metrics, c.logs),
        (Exporter::Otlp, Exporter::None, Exporter::Otlp)
    );
    assert_eq!(
        c.sampling,
        Sampling::ParentBased(Box::new(Sampling::Ratio(0.25)))
    );
    assert_eq!(c.propagators, vec!["tracecontext".to_owned()]);
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[test]
fn without_an_endpoint_the_console_is_the_default() {
    let c = env(&[]).unwrap();
    assert_eq!(
        (c.traces, c.metrics, c.logs),
        (Exporter::Console, Exporter::Console, Exporter::Console)
    );
    assert!(env(&[("OTEL_SDK_DISABLED", "true")]).unwrap().disabled);
}

#[test]
fn every_bad_variable_is_named() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        // OpenTelemetry allocates the whole queue at init: this aborted the process.
        (
            &[("OTEL_BSP_MAX_QUEUE_SIZE", "10000000000")],
            "invalid telemetry setting max_queue_size: 10000000000 is over the limit of 1048576",
        ),
        (
            &[("OTEL_TRACES_EXPORTER", "jaeger")],
            "invalid telemetry setting OTEL_TRACES_EXPORTER: \"jaeger\" is not otlp, console or none",
        ),
        (
            &[("OTEL_TRACES_EXPORTER", "otlp")],
            "invalid telemetry setting OTEL_EXPORTER_OTLP_ENDPOINT: an OTLP exporter is selected \
                 for traces but no endpoint is set (neither OTEL_EXPORTER_OTLP_ENDPOINT nor \
                 OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4317")],
            "invalid telemetry setting OTEL_EXPORTER_OTLP_ENDPOINT: \"127.0.0.1:4317\" must start with http:// or https://",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ],
            "invalid telemetry setting OTEL_EXPORTER_OTLP_PROTOCOL: \"http/json\" is not supported; use grpc or http/protobuf",
        ),
        (
            &[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
            ],
            "invalid telemetry setting OTEL_TRACES_SAMPLER_ARG: \"1.5\" is not a ratio within 0..=1",
        ),
        (
            &[("OTEL_TRACES_SAMPLER", "sometimes")],
            "invalid telemetry setting OTEL_TRACES_SAMPLER: \"sometimes\" is not a supported sampler",
        ),
        (
            &[("OTEL_PROPAGATORS", "b3")],
            "invalid telemetry setting OTEL_PROPAGATORS: \"b3\" is not supported; use tracecontext, baggage or none",
        ),
        (
            &[("OTEL_RESOURCE_ATTRIBUTES", "novalue")],
            "invalid telemetry setting OTEL_RESOURCE_ATTRIBUTES: \"novalue\" is not key=value",
        ),
        (
            &[("OTEL_METRIC_EXPORT_INTERVAL", "0")],
            "invalid telemetry setting metric_interval: must be longer than zero",
        ),
        (
            &[("OTEL_SDK_DISABLED", "yes please")],
            "invalid telemetry setting OTEL_SDK_DISABLED: \"yes please\" is not true or false",
        ),
    ];
    for (vars, message) in cases {
        assert_eq!(env(vars).unwrap_err().to_string(), *message, "{vars:?}");
    }
}

fn target(c: &TelemetryConfig, signal: Signal) -> OtlpTarget<'_> {
    c.otlp_target(signal)
        .unwrap_or_else(|| panic!("{signal} has no target in {c:?}"))
}

#[test]
fn a_per_signal_variable_wins_over_the_general_one_for_its_signal_only() {
    let c = env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=general,x-tenant=acme",
        ),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000"),
        // Traces: every setting of their own.
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://127.0.0.1:14318/custom/traces",
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "authorization=traces%20only",
        ),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "NONE"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "250"),
        // Metrics: their own endpoint and protocol (gRPC, as given).
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "http://127.0.0.1:4317",
        ),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "GRPC"),
        // Logs: only the protocol of their own, so the general base URL over gRPC.
        ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc"),
    ])
    .unwrap();
    let general = OtlpHeaders(
        [("authorization", "general"), ("x-tenant", "acme")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
    );
    let traces_only = OtlpHeaders([("authorization".to_owned(), "traces only".to_owned())].into());
    // The per-signal URL is used as it is: nothing appended.
    assert_eq!(
        target(&c, Signal::Traces),
        OtlpTarget {
            endpoint: "http://127.0.0.1:14318/custom/traces".into(),
            protocol: Protocol::HttpProtobuf,
            headers: &traces_only,
            gzip: false,
            timeout: Duration::from_millis(250),
        }
    );
    assert_eq!(
        target(&c, Signal::Metrics),
        OtlpTarget {
            endpoint: "http://127.0.0.1:4317".into(),
            protocol: Protocol::Grpc,
            headers: &general,
            gzip: true,
            timeout: Duration::from_secs(5),
        }
    );
    // The general URL over gRPC: no path.
    assert_eq!(target(&c, Signal::Logs).endpoint, "http://127.0.0.1:4318");
    assert_eq!(target(&c, Signal::Logs).protocol, Protocol::Grpc);

    // Without per-signal variables, HTTP appends each signal's path to the base.
    let c = env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ])
    .unwrap();
    for (signal, url) in [
        (Signal::Traces, "http://127.0.0.1:4318/v1/traces"),
        (Signal::Metrics, "http://127.0.0.1:4318/v1/metrics"),
        (Signal::Logs, "http://127.0.0.1:4318/v1/logs"),
    ] {
        assert_eq!(target(&c, signal).endpoint, url);
    }
}

#[test]
fn a_per_signal_endpoint_alone_turns_on_otlp_for_that_signal_only() {
    let c = env(&[(
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "http://127.0.0.1:4317",
    )])
    .unwrap();
    assert_eq!(
        (c.traces, c.metrics, c.logs),
        (Exporter::Console, Exporter::Otlp, Exporter::Console)
    );
    assert!(c.otlp_target(Signal::Traces).is_none());
    // An exporter variable still decides, in any order with the endpoint.
    let c = env(&[
        ("OTEL_METRICS_EXPORTER", "none"),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "http://127.0.0.1:4317",
        ),
    ])
    .unwrap();
    assert_eq!(c.metrics, Exporter::None);
}

#[test]
fn the_builder_has_the_same_precedence() {
    let c = TelemetryConfig::builder("svc")
        .otlp_for(
            Signal::Traces,
            "http://127.0.0.1:14318/v1/traces",
            Protocol::HttpProtobuf,
        )
        .otlp_header_for(Signal::Traces, "authorization", "traces")
        .gzip_for(Signal::Traces, false)
        .timeout_for(Signal::Traces, Duration::from_millis(300))
        // The general settings, after: they do not override the traces' own.
        .otlp("http://127.0.0.1:4317/", Protocol::Grpc)
        .otlp_header("authorization", "general")
        .gzip(true)
        .timeout(Duration::from_secs(3))
        .exporter_for(Signal::Logs, Exporter::None)
        .build()
        .unwrap();
    let t = target(&c, Signal::Traces);
    assert_eq!(t.endpoint, "http://127.0.0.1:14318/v1/traces");
    assert_eq!(t.protocol, Protocol::HttpProtobuf);
    assert_eq!(t.headers.0["authorization"], "traces");
    assert_eq!((t.gzip, t.timeout), (false, Duration::from_millis(300)));
    let m = target(&c, Signal::Metrics);
    assert_eq!(m.endpoint, "http://127.0.0.1:4317");
    assert_eq!(m.headers.0["authorization"], "general");
    assert_eq!((m.gzip, m.timeout), (true, Duration::from_secs(3)));
    assert_eq!(
        (c.traces, c.metrics, c.logs),
        (Exporter::Otlp, Exporter::Otlp, Exporter::None)
    );
}

#[test]
fn a_bad_per_signal_variable_is_named() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "127.0.0.1:4318/v1/traces",
            )],
            "invalid telemetry setting OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: \
                 \"127.0.0.1:4318/v1/traces\" must start with http:// or https://",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http:///v1/logs")],
            "invalid telemetry setting OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: \
                 \"http:///v1/logs\" has no host",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
                ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json"),
            ],
            "invalid telemetry setting OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: \
                 \"http/json\" is not supported; use grpc or http/protobuf",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "zstd")],
            "invalid telemetry setting OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: \
                 \"zstd\" is not gzip or none",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "5s")],
            "invalid telemetry setting OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: \
                 \"5s\" is not a whole number",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "0")],
            "invalid telemetry setting OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: \
                 must be longer than zero",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=acme,s3cret")],
            "invalid telemetry setting OTEL_EXPORTER_OTLP_TRACES_HEADERS: entry 2 is \
                 not name=value (it is not shown: it may be a secret)",
        ),
        (
            // A control character, found when the headers are checked.
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
                    "authorization=s3cret%0A",
                ),
            ],
            "invalid telemetry setting OTEL_EXPORTER_OTLP_METRICS_HEADERS: the value of \
                 header \"authorization\" contains a control character (the value is not \
                 shown)",
        ),
        (
            // -bin is refused where that signal speaks gRPC, and only there.
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-token-bin=s3cret"),
            ],
            "invalid telemetry setting OTEL_EXPORTER_OTLP_LOGS_HEADERS: header \
                 \"x-token-bin\" ends in -bin, which gRPC reserves for binary metadata; \
                 rename it, or use http/protobuf",
        ),
        (
            &[("OTEL_METRICS_EXPORTER", "otlp")],
            "invalid telemetry setting OTEL_EXPORTER_OTLP_ENDPOINT: an OTLP exporter is \
                 selected for metrics but no endpoint is set (neither \
                 OTEL_EXPORTER_OTLP_ENDPOINT nor OTEL_EXPORTER_OTLP_METRICS_ENDPOINT)",
        ),
    ];
    for (vars, message) in cases {
        let e = env(vars).unwrap_err();
        assert_eq!(e.to_string(), *message, "{vars:?}");
        assert!(!format!("{e:?}").contains("s3cret"), "{e:?}");
    }
    // The same -bin header over HTTP is fine.
    env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-token-bin=s3cret"),
    ])
    .unwrap();
    // Builder values are named by their method.
    let e = TelemetryConfig::builder("svc")
        .timeout_for(Signal::Logs, Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.field, "timeout_for(Signal::Logs)");
    let e = TelemetryConfig::builder("svc")
        .otlp_for(Signal::Metrics, "http://127.0.0.1:4317", Protocol::Grpc)
        .otlp_header_for(Signal::Metrics, "authorization: Bearer s3cret", "")
        .build()
        .unwrap_err();
    assert_eq!(e.field, "OTEL_EXPORTER_OTLP_METRICS_HEADERS");
    assert!(!e.to_string().contains("s3cret"), "{e}");
}

#[test]
fn per_signal_secrets_are_hidden_from_debug_and_scrubbed_from_errors() {
    let c = env(&[
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://user:s3cretpw@127.0.0.1:4318/v1/traces",
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "authorization=Bearer%20s3cret",
        ),
    ])
    .unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("***@127.0.0.1:4318/v1/traces"), "{debug}");
    let scrubbed =
        c.scrub("refused http://user:s3cretpw@127.0.0.1:4318/v1/traces with Bearer s3cret");
    assert!(!scrubbed.contains("s3cret"), "{scrubbed}");
}

#[test]
fn the_default_log_filter_quiets_the_client_libraries_and_rust_log_replaces_it() {
    assert_eq!(
        TelemetryConfig::DEFAULT_LOG_FILTER,
        "info,async_nats=warn,h2=warn,hyper=warn,tonic=warn,tower=warn,reqwest=warn,\
             rustls=warn,opentelemetry=warn"
    );
    assert_eq!(
        env(&[]).unwrap().log_filter(),
        TelemetryConfig::DEFAULT_LOG_FILTER
    );
    assert_eq!(
        TelemetryConfig::builder("svc")
            .build()
            .unwrap()
            .log_filter(),
        TelemetryConfig::DEFAULT_LOG_FILTER
    );
    assert_eq!(env(&[("RUST_LOG", "debug")]).unwrap().log_filter(), "debug");
    assert_eq!(
        TelemetryConfig::builder("svc")
            .log_filter("info,sdk_bus=debug")
            .build()
            .unwrap()
            .log_filter(),
        "info,sdk_bus=debug"
    );
}
