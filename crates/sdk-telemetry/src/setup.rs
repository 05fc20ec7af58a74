//! Provider setup and shutdown.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, global};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};

use crate::config::{Exporter, OtlpTarget, Protocol, Signal, TelemetryConfig};
use crate::export_losses::{self, Counted, ExportLosses, Losses};
use crate::instrument::MessagingInstruments;
use crate::metrics::{MessagingMetrics, SdkMetrics, TenantLimiter};
use crate::propagation::Propagator;
use crate::sampler::ComponentSampler;

/// What can go wrong while setting telemetry up or down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// An exporter could not be built.
    #[error("cannot build the {signal} exporter: {reason}")]
    Exporter {
        /// `traces`, `metrics` or `logs`.
        signal: &'static str,
        /// Why.
        reason: String,
    },
    /// Flushing or shutting down failed (for example, the collector is unreachable).
    #[error("{signal} shutdown failed: {reason}")]
    Shutdown {
        /// `traces`, `metrics` or `logs`.
        signal: &'static str,
        /// Why.
        reason: String,
    },
}

/// Installed telemetry. Flushes and shuts down on drop; [`Telemetry::shutdown`] does
/// it explicitly with a timeout and reports failures.
#[derive(Debug)]
pub struct Telemetry {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    logger_provider: SdkLoggerProvider,
    propagator: Arc<Propagator>,
    /// One tenant cap for every instrument of this telemetry.
    tenants: Arc<TenantLimiter>,
    messaging: std::sync::OnceLock<Arc<MessagingInstruments>>,
    config: TelemetryConfig,
    /// Runs the gRPC exporters' I/O, so export never depends on (or blocks) the
    /// application's runtime, whatever its flavour.
    io_runtime: Option<tokio::runtime::Runtime>,
    #[cfg(feature = "prometheus")]
    prometheus: Option<crate::prometheus::PrometheusEndpoint>,
    /// What the exporters could not deliver.
    losses: Arc<Losses>,
    down: bool,
}

/// Log records from these targets never go to OTLP: the exporter's own stack, which
/// would otherwise feed back into itself.
pub const EXCLUDED_LOG_TARGETS: &[&str] =
    &["hyper", "h2", "tonic", "tower", "reqwest", "opentelemetry"];

impl Telemetry {
    /// Builds the providers from `config`; with `install_global` (the default) it also
    /// sets the global tracer, meter and propagator and the global `tracing`
    /// subscriber. Safe from synchronous code and from both tokio runtime flavours.
    ///
    /// # Errors
    /// [`TelemetryError::Exporter`] when an exporter cannot be built.
    pub fn init(config: TelemetryConfig) -> Result<Telemetry, TelemetryError> {
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attributes(
                config
                    .resource
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
            )
            .build();
        let needs_grpc = !config.disabled
            && Signal::ALL.into_iter().any(|s| {
                config.exporter_of(s) == Exporter::Otlp && config.protocol_of(s) == Protocol::Grpc
            });
        let io_runtime = if needs_grpc {
            Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("sdk-otel-io")
                    .enable_all()
                    .build()
                    .map_err(|e| TelemetryError::Exporter {
                        signal: "traces",
                        reason: format!("cannot start the exporter runtime: {e}"),
                    })?,
            )
        } else {
            None
        };
        // Exporters are built on a fresh thread: no caller runtime is in context (the
        // blocking HTTP client refuses to start inside one), and the gRPC ones bind to
        // our own runtime.
        let handle = io_runtime.as_ref().map(|rt| rt.handle().clone());
        let cfg = config.clone();
        let res = resource.clone();
        let losses = Arc::new(Losses::default());
        let built = std::thread::scope(|s| {
            s.spawn(|| {
                let _guard = handle.as_ref().map(tokio::runtime::Handle::enter);
                build_providers(&cfg, res, &losses)
            })
            .join()
        })
        .map_err(|_| TelemetryError::Exporter {
            signal: "traces",
            reason: "exporter construction panicked".into(),
        })??;
        let (tracer_provider, meter_provider, logger_provider, _registry) = built;
        #[cfg(feature = "prometheus")]
        let prometheus = match (config.prometheus, _registry) {
            (Some(listen), Some(registry)) => Some(
                crate::prometheus::PrometheusEndpoint::start(listen, registry).map_err(|e| {
                    TelemetryError::Exporter {
                        signal: "metrics",
                        reason: format!("cannot serve Prometheus metrics on {listen}: {e}"),
                    }
                })?,
            ),
            _ => None,
        };
        let propagator = Arc::new(Propagator::from_names(&config.propagators));
        let telemetry = Telemetry {
            tracer_provider,
            meter_provider,
            logger_provider,
            propagator,
            tenants: Arc::new(TenantLimiter::new(config.tenant_cap)),
            messaging: std::sync::OnceLock::new(),
            config,
            io_runtime,
            #[cfg(feature = "prometheus")]
            prometheus,
            losses,
            down: false,
        };
        if telemetry.config.install_global && !telemetry.config.disabled {
            global::set_tracer_provider(telemetry.tracer_provider.clone());
            global::set_meter_provider(telemetry.meter_provider.clone());
            global::set_text_map_propagator(
                Propagator::from_names(&telemetry.config.propagators).into_inner(),
            );
            // Another subscriber may already be installed (tests, host apps): keep it.
            let _ = tracing::subscriber::set_global_default(telemetry.subscriber());
        }
        Ok(telemetry)
    }

    /// [`TelemetryConfig::from_env`] then [`Telemetry::init`].
    ///
    /// # Errors
    /// As both.
    pub fn from_env() -> Result<Telemetry, TelemetryError> {
        Telemetry::init(TelemetryConfig::from_env()?)
    }

    /// A tracer for one component (`agent`, `rag`, ...).
    pub fn tracer(&self, component: &'static str) -> SdkTracer {
        self.tracer_provider.tracer(component)
    }

    /// A meter for one component.
    pub fn meter(&self, component: &'static str) -> opentelemetry::metrics::Meter {
        opentelemetry::metrics::MeterProvider::meter(&self.meter_provider, component)
    }

    /// The messaging instruments (tracer, metrics, propagator, transport counters),
    /// made once and shared by every caller.
    pub fn messaging(&self) -> Arc<MessagingInstruments> {
        Arc::clone(self.messaging.get_or_init(|| {
            let meter = self.meter("sdk.messaging");
            let metrics = Arc::new(MessagingMetrics::new(&meter, Arc::clone(&self.tenants)));
            Arc::new(MessagingInstruments::new(
                self.tracer("sdk.messaging"),
                &meter,
                metrics,
                Arc::clone(&self.propagator),
                self.metrics_exported(),
            ))
        }))
    }

    /// Whether any metric reader is configured (OTLP, console or Prometheus).
    fn metrics_exported(&self) -> bool {
        if self.config.disabled {
            return false;
        }
        #[cfg(feature = "prometheus")]
        if self.config.prometheus.is_some() {
            return true;
        }
        self.config.metrics != Exporter::None
    }

    /// The messaging metrics of the wire contract (`docs/wire-contract.md` §5), shared
    /// with [`Telemetry::messaging`].
    pub fn messaging_metrics(&self) -> Arc<MessagingMetrics> {
        self.messaging().metrics_arc()
    }

    /// Agent, RAG, token and cost instruments, with this telemetry's tenant cap.
    pub fn sdk_metrics(&self) -> SdkMetrics {
        SdkMetrics::new(&self.meter("sdk"), Arc::clone(&self.tenants))
    }

    /// The tenant limiter every instrument of this telemetry shares.
    pub fn tenant_limiter(&self) -> Arc<TenantLimiter> {
        Arc::clone(&self.tenants)
    }

    /// The GenAI instruments (`gen_ai.client.*`, `sdk.llm.cost`) on the meter `sdk`,
    /// with their own tenant limiter. Make one set and clone it.
    pub fn genai_metrics(&self) -> crate::genai::GenAiMetrics {
        crate::genai::GenAiMetrics::new(&self.meter("sdk"), Arc::clone(&self.tenants))
    }

    /// Where the Prometheus endpoint listens, when one was configured.
    #[cfg(feature = "prometheus")]
    pub fn prometheus_address(&self) -> Option<std::net::SocketAddr> {
        self.prometheus
            .as_ref()
            .map(crate::prometheus::PrometheusEndpoint::address)
    }

    /// How many Prometheus scrapes were not answered in full (turned away, cut off at
    /// the deadline, broken by the client, or unencodable metrics); each is also
    /// logged as a warning. `0` without an endpoint.
    #[cfg(feature = "prometheus")]
    pub fn prometheus_failed_scrapes(&self) -> u64 {
        self.prometheus
            .as_ref()
            .map_or(0, crate::prometheus::PrometheusEndpoint::failed_scrapes)
    }

    /// What the exporters could not deliver since `init`: spans and log records in
    /// failed exports, and failed metric exports. Each failure is also logged (by
    /// OpenTelemetry, a few times rather than once per item); a failure while
    /// shutting down makes [`Telemetry::shutdown`] fail.
    pub fn export_losses(&self) -> ExportLosses {
        self.losses.snapshot()
    }

    /// The propagator `OTEL_PROPAGATORS` selected.
    pub fn propagator(&self) -> &Propagator {
        &self.propagator
    }

    /// The same propagator, shareable with other components.
    pub fn shared_propagator(&self) -> Arc<Propagator> {
        Arc::clone(&self.propagator)
    }

    /// The tracer provider.
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    /// The logger provider.
    pub fn logger_provider(&self) -> &SdkLoggerProvider {
        &self.logger_provider
    }

    /// A `tracing` subscriber wired to these providers: `RUST_LOG` filter, spans into
    /// OpenTelemetry, events into OTLP logs (without the exporter's own stack), and
    /// console output with `trace_id` and `span_id`. [`Telemetry::init`] installs it
    /// globally; use it with `tracing::subscriber::with_default` otherwise.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        let filter = tracing_subscriber::EnvFilter::try_new(&self.config.log_filter)
            .unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(TelemetryConfig::DEFAULT_LOG_FILTER)
            });
        let otel = tracing_opentelemetry::layer().with_tracer(self.tracer("tracing"));
        let logs = opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(
            &self.logger_provider,
        )
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            !EXCLUDED_LOG_TARGETS
                .iter()
                .any(|p| meta.target().starts_with(p))
        }));
        let console = crate::logfmt::layer(self.config.log_format);
        tracing_subscriber::registry()
            .with(filter)
            .with(otel)
            .with(logs)
            .with(console)
    }

    /// Flushes every signal and shuts the providers down, waiting at most `timeout`
    /// for each. Reports the first failure; the rest still shut down.
    ///
    /// # Errors
    /// [`TelemetryError::Shutdown`] naming the signal: it timed out, or its final
    /// export failed (the collector is unreachable, say), so what it held is lost.
    pub fn shutdown(mut self, timeout: Duration) -> Result<(), TelemetryError> {
        self.shutdown_inner(timeout)
    }

    fn shutdown_inner(&mut self, timeout: Duration) -> Result<(), TelemetryError> {
        if self.down {
            return Ok(());
        }
        self.down = true;
        // Stop serving scrapes first: this closes the listener and open connections.
        #[cfg(feature = "prometheus")]
        drop(self.prometheus.take());
        let fail = |signal: &'static str| {
            move |e: opentelemetry_sdk::error::OTelSdkError| TelemetryError::Shutdown {
                signal,
                reason: e.to_string(),
            }
        };
        let before = self.losses.snapshot();
        let traces = self
            .tracer_provider
            .shutdown_with_timeout(timeout)
            .map_err(fail("traces"));
        let metrics = self
            .meter_provider
            .shutdown_with_timeout(timeout)
            .map_err(fail("metrics"));
        let logs = self
            .logger_provider
            .shutdown_with_timeout(timeout)
            .map_err(fail("logs"));
        if let Some(rt) = self.io_runtime.take() {
            rt.shutdown_background();
        }
        // The batch processors do not return a failed final export: the count does.
        let after = self.losses.snapshot();
        // A loss says more than the provider's own error: it comes first.
        let lost = |signal: Signal, provider: Result<(), TelemetryError>| {
            let n = after.of(signal).saturating_sub(before.of(signal));
            if n == 0 {
                return provider;
            }
            let cause = self.losses.last_error(signal).unwrap_or_default();
            let items = export_losses::items(signal, n);
            Err(TelemetryError::Shutdown {
                signal: signal.name(),
                reason: self
                    .config
                    .scrub(&format!("the final export of {items} failed: {cause}")),
            })
        };
        lost(Signal::Traces, traces)
            .and(lost(Signal::Metrics, metrics))
            .and(lost(Signal::Logs, logs))
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        // Spans, metrics or logs that could not be flushed are lost: say so. The
        // tracing subscriber may be part of what is shutting down, so stderr it is;
        // call `Telemetry::shutdown` to get the error as a value instead.
        if let Err(e) = self.shutdown_inner(Duration::from_secs(5)) {
            eprintln!("sdk-telemetry: shutdown on drop did not complete: {e}");
        }
    }
}

#[cfg(feature = "prometheus")]
type Registry = prometheus::Registry;
#[cfg(not(feature = "prometheus"))]
type Registry = ();

type Providers = (
    SdkTracerProvider,
    SdkMeterProvider,
    SdkLoggerProvider,
    Option<Registry>,
);

fn build_providers(
    c: &TelemetryConfig,
    resource: Resource,
    losses: &Arc<Losses>,
) -> Result<Providers, TelemetryError> {
    let on = |e: Exporter| if c.disabled { Exporter::None } else { e };
    let batch = || {
        BatchConfigBuilder::default()
            .with_max_queue_size(c.max_queue_size)
            .build()
    };

    let mut traces = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_sampler(ComponentSampler::new(&c.sampling, &c.component_sampling));
    match on(c.traces) {
        Exporter::Otlp => {
            let exporter = otlp_spans(c)?;
            traces = traces.with_span_processor(
                BatchSpanProcessor::builder(Counted::new(exporter, losses))
                    .with_batch_config(batch())
                    .build(),
            );
        }
        Exporter::Console => {
            traces = traces.with_span_processor(
                BatchSpanProcessor::builder(Counted::new(
                    opentelemetry_stdout::SpanExporter::default(),
                    losses,
                ))
                .with_batch_config(batch())
                .build(),
            );
        }
        Exporter::None => {}
    }

    let mut metrics = SdkMeterProvider::builder().with_resource(resource.clone());
    match on(c.metrics) {
        Exporter::Otlp => {
            let exporter = otlp_metrics(c)?;
            metrics = metrics.with_reader(
                PeriodicReader::builder(Counted::new(exporter, losses))
                    .with_interval(c.metric_interval)
                    .build(),
            );
        }
        Exporter::Console => {
            metrics = metrics.with_reader(
                PeriodicReader::builder(Counted::new(
                    opentelemetry_stdout::MetricExporter::default(),
                    losses,
                ))
                .with_interval(c.metric_interval)
                .build(),
            );
        }
        Exporter::None => {}
    }
    #[cfg(feature = "prometheus")]
    let registry = match c.prometheus {
        Some(_) if !c.disabled => {
            let registry = prometheus::Registry::new();
            let exporter = opentelemetry_prometheus::exporter()
                .with_registry(registry.clone())
                .build()
                .map_err(|e| TelemetryError::Exporter {
                    signal: "metrics",
                    reason: e.to_string(),
                })?;
            metrics = metrics.with_reader(exporter);
            Some(registry)
        }
        _ => None,
    };
    #[cfg(not(feature = "prometheus"))]
    let registry: Option<Registry> = None;

    let log_batch = || {
        opentelemetry_sdk::logs::BatchConfigBuilder::default()
            .with_max_queue_size(c.max_queue_size)
            .build()
    };
    let mut logs = SdkLoggerProvider::builder().with_resource(resource);
    match on(c.logs) {
        Exporter::Otlp => {
            let exporter = otlp_logs(c)?;
            logs = logs.with_log_processor(
                BatchLogProcessor::builder(Counted::new(exporter, losses))
                    .with_batch_config(log_batch())
                    .build(),
            );
        }
        // The console already shows every event through the fmt layer.
        Exporter::Console | Exporter::None => {}
    }
    Ok((traces.build(), metrics.build(), logs.build(), registry))
}

/// An exporter's build error, with the configuration's secrets taken out (the
/// exporter quotes the endpoint, user info and all).
fn exporter_error<'a>(
    signal: &'static str,
    c: &'a TelemetryConfig,
) -> impl Fn(opentelemetry_otlp::ExporterBuildError) -> TelemetryError + 'a {
    move |e| TelemetryError::Exporter {
        signal,
        reason: c.scrub(&e.to_string()),
    }
}

fn metadata(headers: &crate::OtlpHeaders) -> tonic::metadata::MetadataMap {
    let mut map = tonic::metadata::MetadataMap::new();
    for (k, v) in &headers.0 {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()),
            tonic::metadata::MetadataValue::try_from(v.as_str()),
        ) {
            map.insert(key, value);
        }
    }
    map
}

/// The headers for the HTTP exporter. It percent-decodes every value it is given,
/// and ours are decoded already (from `OTEL_EXPORTER_OTLP_HEADERS`) or were never
/// encoded (`otlp_header`): escaping `%` makes its decoding a no-op, so a token with
/// `%41` in it is sent as written.
fn http_headers(headers: &crate::OtlpHeaders) -> std::collections::HashMap<String, String> {
    headers
        .0
        .iter()
        .map(|(k, v)| (k.clone(), v.replace('%', "%25")))
        .collect()
}

/// The signal's resolved OTLP settings; `build` guarantees them for a signal whose
/// exporter is OTLP.
fn target(c: &TelemetryConfig, signal: Signal) -> Result<OtlpTarget<'_>, TelemetryError> {
    c.otlp_target(signal)
        .ok_or_else(|| TelemetryError::Exporter {
            signal: signal.name(),
            reason: "no OTLP endpoint is set".into(),
        })
}

// Every setting is passed explicitly, so what the exporter reads from the process
// environment on its own cannot contradict the configuration: `with_endpoint`,
// `with_protocol` and `with_timeout` override its own reading of the
// `OTEL_EXPORTER_OTLP_*` variables. Two things it still reads, on top, and
// docs/otel.md says so: the `..._HEADERS` variables (added over ours, the same name
// replaced; identical when the configuration came from `from_env`), and
// `..._COMPRESSION` when ours says none (there is no way to pass "none").
macro_rules! otlp_builder {
    ($name:ident, $exporter:ty, $signal:expr) => {
        fn $name(c: &TelemetryConfig) -> Result<$exporter, TelemetryError> {
            let t = target(c, $signal)?;
            let signal = $signal.name();
            match t.protocol {
                Protocol::Grpc => {
                    let mut b = <$exporter>::builder()
                        .with_tonic()
                        .with_endpoint(t.endpoint.clone())
                        .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                        .with_timeout(t.timeout)
                        .with_metadata(metadata(t.headers));
                    if t.gzip {
                        b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
                    }
                    b.build().map_err(exporter_error(signal, c))
                }
                Protocol::HttpProtobuf => {
                    let mut b = <$exporter>::builder()
                        .with_http()
                        .with_endpoint(t.endpoint.clone())
                        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                        .with_timeout(t.timeout)
                        .with_headers(http_headers(t.headers));
                    if t.gzip {
                        b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
                    }
                    b.build().map_err(exporter_error(signal, c))
                }
            }
        }
    };
}

otlp_builder!(otlp_spans, opentelemetry_otlp::SpanExporter, Signal::Traces);
otlp_builder!(
    otlp_metrics,
    opentelemetry_otlp::MetricExporter,
    Signal::Metrics
);
otlp_builder!(otlp_logs, opentelemetry_otlp::LogExporter, Signal::Logs);
