//! Quiet by default: the subscriber `init` builds lets the application log at `info`
//! but the client libraries underneath only at `warn`; `RUST_LOG` (or `log_filter`)
//! replaces all of it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use sdk_telemetry::{Exporter, LogFormat, Telemetry, TelemetryConfig, TelemetryConfigBuilder};
use tracing::Level;

/// The client libraries' targets, as their events carry them.
const LIBRARIES: &[&str] = &[
    "async_nats",
    "async_nats::connector",
    "h2::proto::connection",
    "hyper_util::client::legacy::pool",
    "tonic::transport::channel",
    "tower::buffer::worker",
    "reqwest::connect",
    "rustls::client::hs",
    "opentelemetry_sdk",
    "opentelemetry-otlp",
];
const APP: &str = "my_app::handler";

fn quiet_builder() -> TelemetryConfigBuilder {
    TelemetryConfig::builder("filter-test")
        .exporters(Exporter::None, Exporter::None, Exporter::None)
        .log_format(LogFormat::Off)
        .install_global(false)
}

/// Whether the subscriber of `config` lets an event of `level` from `target` through.
fn enabled(config: TelemetryConfig, asks: &[(&str, Level)]) -> Vec<bool> {
    let telemetry = Telemetry::init(config).unwrap();
    tracing::subscriber::with_default(telemetry.subscriber(), || {
        asks.iter()
            .map(|(target, level)| event_enabled(target, *level))
            .collect()
    })
}

/// `tracing::enabled!` takes its target as a constant: these are the ones asked.
fn event_enabled(target: &str, level: Level) -> bool {
    macro_rules! check {
        ($($t:literal),*) => {
            match target {
                $($t => match level {
                    Level::WARN => tracing::enabled!(target: $t, Level::WARN),
                    Level::INFO => tracing::enabled!(target: $t, Level::INFO),
                    Level::DEBUG => tracing::enabled!(target: $t, Level::DEBUG),
                    _ => panic!("level {level} is not asked"),
                },)*
                other => panic!("target {other} is not asked"),
            }
        };
    }
    check!(
        "my_app::handler",
        "async_nats",
        "async_nats::connector",
        "h2::proto::connection",
        "hyper_util::client::legacy::pool",
        "tonic::transport::channel",
        "tower::buffer::worker",
        "reqwest::connect",
        "rustls::client::hs",
        "opentelemetry_sdk",
        "opentelemetry-otlp"
    )
}

/// For each library: (info, warn) let through.
fn libraries(config: impl Fn() -> TelemetryConfig) -> Vec<(&'static str, bool, bool)> {
    LIBRARIES
        .iter()
        .map(|t| {
            let got = enabled(config(), &[(t, Level::INFO), (t, Level::WARN)]);
            (*t, got[0], got[1])
        })
        .collect()
}

#[test]
fn by_default_the_application_logs_at_info_and_the_client_libraries_at_warn() {
    let config = || quiet_builder().build().unwrap();
    assert_eq!(config().log_filter(), TelemetryConfig::DEFAULT_LOG_FILTER);
    assert_eq!(
        enabled(config(), &[(APP, Level::INFO), (APP, Level::DEBUG)]),
        [true, false]
    );
    for (target, info, warn) in libraries(config) {
        assert!(
            !info && warn,
            "{target}: info let through {info}, warn {warn}"
        );
    }
}

#[test]
fn rust_log_replaces_the_default_filter_entirely() {
    let from_env = |rust_log: &str| {
        let rust_log = rust_log.to_owned();
        let env =
            TelemetryConfig::from_lookup(|k| (k == "RUST_LOG").then(|| rust_log.clone())).unwrap();
        quiet_builder()
            .log_filter(env.log_filter())
            .build()
            .unwrap()
    };
    // `debug` for everything: the libraries included, as asked.
    for (target, info, _) in libraries(|| from_env("debug")) {
        assert!(info, "{target}: RUST_LOG=debug, yet info is filtered out");
    }
    // A filter that raises one library and lowers the application.
    let config = || from_env("warn,h2=debug");
    assert_eq!(
        enabled(
            config(),
            &[
                (APP, Level::INFO),
                (APP, Level::WARN),
                ("h2::proto::connection", Level::DEBUG),
                ("tonic::transport::channel", Level::INFO),
            ]
        ),
        [false, true, true, false]
    );
    let empty: HashMap<String, String> = HashMap::new();
    let unset = TelemetryConfig::from_lookup(|k| empty.get(k).cloned()).unwrap();
    assert_eq!(unset.log_filter(), TelemetryConfig::DEFAULT_LOG_FILTER);
}

#[test]
fn a_filter_that_does_not_parse_falls_back_to_the_quiet_default() {
    let config = || {
        quiet_builder()
            .log_filter("my_app=loudest")
            .build()
            .unwrap()
    };
    assert_eq!(
        enabled(
            config(),
            &[
                (APP, Level::INFO),
                (APP, Level::DEBUG),
                ("h2::proto::connection", Level::INFO),
                ("h2::proto::connection", Level::WARN),
            ]
        ),
        [true, false, false, true]
    );
}
