//! What the integration tests share: telemetry that exports to a real collector, and
//! a bus on a real nats-server.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sdk_integration::sdk_bus::{Bus, BusConfig};
use sdk_integration::sdk_telemetry::{Exporter, LogFormat, Protocol, Telemetry, TelemetryConfig};
use sdk_testkit::{Collector, NatsServer};

/// Which signals go to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    /// Spans only.
    Traces,
    /// Metrics only, every 200 ms.
    Metrics,
    /// Spans, and metrics every 200 ms.
    Both,
}

/// Telemetry for one service, exporting to `collector` over gRPC, not installed
/// globally (several services share one test process), quiet on the console.
pub fn telemetry(service: &str, collector: &Collector, signals: Signals) -> Telemetry {
    let (traces, metrics) = match signals {
        Signals::Traces => (Exporter::Otlp, Exporter::None),
        Signals::Metrics => (Exporter::None, Exporter::Otlp),
        Signals::Both => (Exporter::Otlp, Exporter::Otlp),
    };
    Telemetry::init(
        TelemetryConfig::builder(service)
            .otlp(&collector.grpc_endpoint(), Protocol::Grpc)
            .exporters(traces, metrics, Exporter::None)
            .metric_interval(Duration::from_millis(200))
            .install_global(false)
            .log_format(LogFormat::Off)
            .build()
            .unwrap(),
    )
    .unwrap()
}

/// A bus on `server`.
pub async fn nats_bus(server: &NatsServer) -> Bus {
    Bus::connect(BusConfig::builder().servers(&server.url()).build().unwrap())
        .await
        .unwrap()
}
