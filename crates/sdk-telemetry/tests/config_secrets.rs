//! Collector credentials (OTLP header values, an endpoint's user:password) never show
//! in an error or a Debug print, however the setting is mistyped; the error still
//! names the variable and, where there is one, the header.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use sdk_telemetry::{
    ConfigError, Exporter, LogFormat, Protocol, Telemetry, TelemetryConfig, TelemetryError,
};

const SECRET: &str = "s3cret";

fn from_env(pairs: &[(&str, &str)]) -> Result<TelemetryConfig, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    TelemetryConfig::from_lookup(|k| map.get(k).cloned())
}

fn headers(value: &str) -> Result<TelemetryConfig, ConfigError> {
    from_env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        ("OTEL_EXPORTER_OTLP_HEADERS", value),
    ])
}

fn assert_hidden(what: &str, text: &str) {
    assert!(
        !text.contains(SECRET) && !text.contains("czNjcmV0"),
        "{what} shows the secret: {text}"
    );
}

/// The error for `value`, checked: no secret in Display or Debug, and it names the
/// variable and every one of `names`.
fn refused(value: &str, names: &[&str]) -> String {
    let err = match headers(value) {
        Ok(c) => panic!("{value:?} was accepted as {c:?}"),
        Err(e) => e,
    };
    let display = err.to_string();
    assert_hidden("Display", &display);
    assert_hidden("Debug", &format!("{err:?}"));
    assert_eq!(err.field, "OTEL_EXPORTER_OTLP_HEADERS", "{display}");
    for name in names {
        assert!(display.contains(name), "{display} does not name {name}");
    }
    display
}

#[test]
fn a_trailing_newline_is_trimmed_not_reported() {
    // The shell habit: the value ends in a newline.
    let c = headers("authorization=Bearer s3cret\n").unwrap();
    assert_hidden("Debug", &format!("{c:?}"));
}

#[test]
fn a_control_character_in_a_value_is_refused_by_name() {
    let text = refused("authorization=Bearer%20s3cret%0A", &["\"authorization\""]);
    assert_eq!(
        text,
        "invalid telemetry setting OTEL_EXPORTER_OTLP_HEADERS: the value of header \
         \"authorization\" contains a control character (the value is not shown)"
    );
}

#[test]
fn a_colon_instead_of_an_equals_sign_names_the_header_only() {
    let text = refused("Authorization: Bearer s3cret", &["\"Authorization\""]);
    assert_eq!(
        text,
        "invalid telemetry setting OTEL_EXPORTER_OTLP_HEADERS: entry 1, for header \
         \"Authorization\", is not name=value (the value is not shown); write \
         Authorization=<value>, with the value percent-encoded"
    );
    // A base64 token ends in '=': the first '=' is inside the value.
    let text = refused(
        "x-tenant=acme,Authorization: Basic czNjcmV0OnMzY3JldA==",
        &["entry 2", "\"Authorization\""],
    );
    assert_eq!(
        text,
        "invalid telemetry setting OTEL_EXPORTER_OTLP_HEADERS: entry 2 has an invalid \
         header name starting \"Authorization\" (the rest is not shown: it may hold the \
         value); write Authorization=<value>, with the value percent-encoded"
    );
}

#[test]
fn an_entry_without_a_name_shows_nothing_of_itself() {
    let text = refused("x-tenant=acme,s3cret", &["entry 2"]);
    assert_eq!(
        text,
        "invalid telemetry setting OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not name=value \
         (it is not shown: it may be a secret)"
    );
    let text = refused("=s3cret", &["entry 1"]);
    assert_eq!(
        text,
        "invalid telemetry setting OTEL_EXPORTER_OTLP_HEADERS: entry 1 has an empty \
         header name (the value is not shown)"
    );
}

#[test]
fn a_value_that_cannot_be_sent_is_refused_not_dropped() {
    // Not ASCII: gRPC metadata cannot carry it, and it used to be dropped silently.
    let text = refused("x-api-key=s3cr%C3%A9t", &["\"x-api-key\""]);
    assert_eq!(
        text,
        "invalid telemetry setting OTEL_EXPORTER_OTLP_HEADERS: the value of header \
         \"x-api-key\" contains a character that is not visible ASCII (the value is not \
         shown); header values must be ASCII"
    );
    // Not UTF-8 once percent-decoded.
    let text = refused("x-api-key=s3cret%FF", &["\"x-api-key\""]);
    assert_eq!(
        text,
        "invalid telemetry setting OTEL_EXPORTER_OTLP_HEADERS: the value of header \
         \"x-api-key\" is not valid UTF-8 once percent-decoded (the value is not shown)"
    );
}

#[test]
fn a_binary_metadata_name_is_refused_for_grpc() {
    let text = refused("x-token-bin=s3cret", &["\"x-token-bin\""]);
    assert_eq!(
        text,
        "invalid telemetry setting OTEL_EXPORTER_OTLP_HEADERS: header \"x-token-bin\" \
         ends in -bin, which gRPC reserves for binary metadata; rename it, or use \
         http/protobuf"
    );
}

#[test]
fn headers_set_in_code_are_checked_the_same_way() {
    let err = TelemetryConfig::builder("svc")
        .otlp("http://127.0.0.1:4317", Protocol::Grpc)
        .otlp_header("authorization", "Bearer s3cret\r\nInjected: yes")
        .build()
        .unwrap_err();
    assert_hidden("Display", &err.to_string());
    assert_hidden("Debug", &format!("{err:?}"));
    assert!(err.to_string().contains("\"authorization\""), "{err}");
    let err = TelemetryConfig::builder("svc")
        .otlp("http://127.0.0.1:4317", Protocol::Grpc)
        .otlp_header("Authorization: Bearer s3cret", "")
        .build()
        .unwrap_err();
    assert_hidden("Display", &err.to_string());
    assert!(err.to_string().contains("\"Authorization\""), "{err}");
}

#[test]
fn debug_prints_hide_header_values_and_endpoint_passwords() {
    let builder = TelemetryConfig::builder("svc")
        .otlp("http://collector:s3cret@127.0.0.1:4317", Protocol::Grpc)
        .otlp_header("authorization", "Bearer s3cret");
    assert_hidden("builder Debug", &format!("{builder:?}"));
    let config = builder.build().unwrap();
    let debug = format!("{config:?}");
    assert_hidden("config Debug", &debug);
    assert!(debug.contains("authorization"), "{debug}");
    assert!(debug.contains("127.0.0.1:4317"), "{debug}");
    let config = headers("authorization=Bearer%20s3cret").unwrap();
    assert_hidden("config Debug", &format!("{config:?}"));
    assert_hidden("config Debug", &format!("{config:#?}"));
}

#[test]
fn an_endpoint_password_is_not_in_config_errors() {
    let err = from_env(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "collector:s3cret@127.0.0.1:4317",
    )])
    .unwrap_err();
    assert_hidden("Display", &err.to_string());
    assert_hidden("Debug", &format!("{err:?}"));
    assert_eq!(
        err.to_string(),
        "invalid telemetry setting OTEL_EXPORTER_OTLP_ENDPOINT: \"***@127.0.0.1:4317\" \
         must start with http:// or https://"
    );
}

#[test]
fn an_endpoint_password_is_not_in_exporter_errors() {
    // https without a TLS feature: the exporter refuses, quoting the endpoint.
    let config = TelemetryConfig::builder("svc")
        .otlp("https://collector:s3cret@127.0.0.1:4317", Protocol::Grpc)
        .exporters(Exporter::Otlp, Exporter::None, Exporter::None)
        .install_global(false)
        .log_format(LogFormat::Off)
        .build()
        .unwrap();
    // No TLS backend is compiled in (decision O21), so the exporter must refuse.
    let Err(err) = Telemetry::init(config) else {
        panic!("https was accepted: a TLS backend is compiled in, find another refusal");
    };
    assert!(matches!(err, TelemetryError::Exporter { .. }), "{err:?}");
    assert_hidden("Display", &err.to_string());
    assert_hidden("Debug", &format!("{err:?}"));
    assert!(err.to_string().contains("127.0.0.1:4317"), "{err}");
}

#[test]
fn a_running_telemetry_hides_its_secrets_in_debug() {
    // A free port: nothing listens there, and nothing else is disturbed.
    let endpoint = format!(
        "http://collector:s3cret@127.0.0.1:{}",
        sdk_testkit::free_port()
    );
    let telemetry = Telemetry::init(
        TelemetryConfig::builder("svc")
            .otlp(&endpoint, Protocol::Grpc)
            .otlp_header("authorization", "Bearer s3cret")
            .install_global(false)
            .log_format(LogFormat::Off)
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_hidden("Telemetry Debug", &format!("{telemetry:?}"));
    assert_hidden("Telemetry Debug", &format!("{telemetry:#?}"));
    // Nothing was sent; dropping it without a collector may report a failed flush.
    drop(telemetry);
}
