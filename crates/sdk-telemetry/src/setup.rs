//! Provider setup and shutdown.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP over gRPC (port 4317 by convention).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318 by convention).
    HttpProtobuf,
}

/// What can go wrong while setting telemetry up or down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The exporter could not be built from the configuration.
    #[error("cannot build the {signal} exporter: {source}")]
    Exporter {
        /// `traces`, `metrics` or `logs`.
        signal: &'static str,
        /// The SDK's error.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// Flushing or shutting down failed.
    #[error("shutdown failed: {0}")]
    Shutdown(#[source] opentelemetry_sdk::error::OTelSdkError),
}

/// Telemetry settings.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    service_name: String,
    endpoint: Option<String>,
    protocol: Protocol,
}

/// Builds a [`TelemetryConfig`].
#[derive(Debug, Clone)]
pub struct TelemetryConfigBuilder {
    config: TelemetryConfig,
}

impl TelemetryConfig {
    /// A builder for `service_name`, with no exporter endpoint.
    pub fn builder(service_name: &str) -> TelemetryConfigBuilder {
        TelemetryConfigBuilder {
            config: TelemetryConfig {
                service_name: service_name.to_owned(),
                endpoint: None,
                protocol: Protocol::Grpc,
            },
        }
    }
}

impl TelemetryConfigBuilder {
    /// Exports over OTLP to `endpoint` with `protocol`.
    pub fn otlp(mut self, endpoint: &str, protocol: Protocol) -> Self {
        self.config.endpoint = Some(endpoint.to_owned());
        self.config.protocol = protocol;
        self
    }

    /// Finishes the configuration.
    pub fn build(self) -> TelemetryConfig {
        self.config
    }
}

/// Installed telemetry. Flushes and shuts down on drop.
#[derive(Debug)]
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Builds the providers.
    ///
    /// # Errors
    /// [`TelemetryError::Exporter`] when an exporter cannot be built.
    pub fn init(config: TelemetryConfig) -> Result<Telemetry, TelemetryError> {
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        let mut builder = SdkTracerProvider::builder().with_resource(resource);
        if let Some(endpoint) = &config.endpoint {
            let exporter = match config.protocol {
                Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint.clone())
                    .build(),
                Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                    .build(),
            }
            .map_err(|source| TelemetryError::Exporter {
                signal: "traces",
                source,
            })?;
            builder = builder.with_batch_exporter(exporter);
        }
        Ok(Telemetry {
            tracer_provider: Some(builder.build()),
        })
    }

    /// A tracer for one component (`agent`, `rag`, ...).
    pub fn tracer(&self, component: &'static str) -> SdkTracer {
        match &self.tracer_provider {
            Some(provider) => provider.tracer(component),
            None => SdkTracerProvider::builder().build().tracer(component),
        }
    }

    /// Flushes everything and shuts the providers down.
    ///
    /// # Errors
    /// [`TelemetryError::Shutdown`] when an exporter fails to flush.
    pub fn shutdown(mut self) -> Result<(), TelemetryError> {
        self.shutdown_inner()
    }

    fn shutdown_inner(&mut self) -> Result<(), TelemetryError> {
        if let Some(provider) = self.tracer_provider.take() {
            provider.shutdown().map_err(TelemetryError::Shutdown)?;
        }
        Ok(())
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let _ = self.shutdown_inner();
    }
}
