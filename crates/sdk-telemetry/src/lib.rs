#![doc = include_str!("../README.md")]

mod config;
mod context;
mod export_losses;
pub mod genai;
mod instrument;
mod logfmt;
mod metrics;
#[cfg(feature = "prometheus")]
mod prometheus;
mod propagation;
mod sampler;
pub mod semconv;
mod setup;
mod traceparent;

pub use config::{
    ConfigError, Exporter, LogFormat, OtlpHeaders, Protocol, Sampling, Signal, TelemetryConfig,
    TelemetryConfigBuilder, resource_keys,
};
pub use context::spawn_in_context;
pub use export_losses::ExportLosses;
pub use instrument::{CodecGuard, MessagingInstruments, OperationGuard, TransportCounters};
pub use logfmt::TraceFormat;
pub use metrics::{
    DURATION_BUCKETS, MessageLabels, MessagingMetrics, OTHER_TENANT, SIZE_BUCKETS, SdkMetrics,
    TENANT_KEY, TenantLimiter,
};
pub use propagation::{HeaderCarrier, Propagator, TENANT_BAGGAGE_KEY, tenant_of, with_tenant};
pub use sampler::COMPONENT_KEY;
pub use setup::{EXCLUDED_LOG_TARGETS, Telemetry, TelemetryError};
