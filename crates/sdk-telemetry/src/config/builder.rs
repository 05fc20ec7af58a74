//! The builder's setters, and the checks `build` runs.

use super::env::{HEADERS, invalid_header_name, valid_header_name};
use super::*;

/// The largest batch queue per signal: 1 Mi items, allocated up front.
const MAX_QUEUE_SIZE: usize = 1 << 20;

impl TelemetryConfigBuilder {
    /// Exports every signal over OTLP to `endpoint`, the collector's base URL (as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`): gRPC uses it as given, HTTP appends
    /// `/v1/traces`, `/v1/metrics` or `/v1/logs`. A signal's own settings
    /// ([`otlp_for`](Self::otlp_for) and the other `_for` setters) win over these.
    pub fn otlp(mut self, endpoint: &str, protocol: Protocol) -> Self {
        self.config.endpoint = Some(endpoint.trim_end_matches('/').to_owned());
        self.config.protocol = protocol;
        self
    }
    /// Exports `signal` over OTLP to `endpoint`, used as given, as
    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT` is: for HTTP it is the whole URL, path
    /// included (`http://collector:4318/v1/traces`), and nothing is appended. It
    /// wins over [`otlp`](Self::otlp) for this signal, in whichever order they are
    /// called.
    pub fn otlp_for(mut self, signal: Signal, endpoint: &str, protocol: Protocol) -> Self {
        let own = &mut self.config.signals[signal.index()];
        own.endpoint = Some(endpoint.to_owned());
        own.protocol = Some(protocol);
        self
    }
    /// A header sent with every export (collector authentication), except to a
    /// signal that has headers of its own.
    pub fn otlp_header(mut self, name: &str, value: &str) -> Self {
        self.config
            .headers
            .0
            .insert(name.to_owned(), value.to_owned());
        self
    }
    /// A header sent with the exports of `signal` only. Once a signal has one, the
    /// headers of [`otlp_header`](Self::otlp_header) are no longer sent with it: its
    /// own set replaces the general one, as `OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS`
    /// replaces `OTEL_EXPORTER_OTLP_HEADERS`, so a credential meant for one backend
    /// does not go to another.
    pub fn otlp_header_for(mut self, signal: Signal, name: &str, value: &str) -> Self {
        self.config.signals[signal.index()]
            .headers
            .get_or_insert_with(OtlpHeaders::default)
            .0
            .insert(name.to_owned(), value.to_owned());
        self
    }
    /// gzip the exports.
    pub fn gzip(mut self, on: bool) -> Self {
        self.config.gzip = on;
        self
    }
    /// gzip the exports of `signal` (or not), whatever [`gzip`](Self::gzip) says.
    pub fn gzip_for(mut self, signal: Signal, on: bool) -> Self {
        self.config.signals[signal.index()].gzip = Some(on);
        self
    }
    /// The export timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }
    /// The export timeout of `signal`, whatever [`timeout`](Self::timeout) says.
    pub fn timeout_for(mut self, signal: Signal, timeout: Duration) -> Self {
        self.config.signals[signal.index()].timeout = Some(timeout);
        self
    }
    /// Exporters per signal: traces, metrics, logs.
    pub fn exporters(mut self, traces: Exporter, metrics: Exporter, logs: Exporter) -> Self {
        self.exporters = [Some(traces), Some(metrics), Some(logs)];
        self
    }
    /// The exporter of one signal; the others keep theirs.
    pub fn exporter_for(mut self, signal: Signal, exporter: Exporter) -> Self {
        self.exporters[signal.index()] = Some(exporter);
        self
    }
    /// A resource attribute (`service.version`, `deployment.environment.name`, ...).
    pub fn resource(mut self, key: &str, value: &str) -> Self {
        self.config
            .resource
            .insert(key.to_owned(), value.to_owned());
        self
    }
    /// `service.version`.
    pub fn service_version(self, version: &str) -> Self {
        self.resource(resource_keys::SERVICE_VERSION, version)
    }
    /// `service.namespace`.
    pub fn service_namespace(self, namespace: &str) -> Self {
        self.resource(resource_keys::SERVICE_NAMESPACE, namespace)
    }
    /// `service.instance.id`.
    pub fn instance_id(self, id: &str) -> Self {
        self.resource(resource_keys::SERVICE_INSTANCE_ID, id)
    }
    /// `deployment.environment.name`.
    pub fn environment(self, env: &str) -> Self {
        self.resource(resource_keys::DEPLOYMENT_ENVIRONMENT, env)
    }
    /// The default sampling rule.
    pub fn sampling(mut self, sampling: Sampling) -> Self {
        self.config.sampling = sampling;
        self
    }
    /// A different rule for spans whose `sdk.component` attribute is `component`.
    pub fn component_sampling(mut self, component: &str, sampling: Sampling) -> Self {
        self.config
            .component_sampling
            .insert(component.to_owned(), sampling);
        self
    }
    /// How often metrics are exported.
    pub fn metric_interval(mut self, every: Duration) -> Self {
        self.config.metric_interval = every;
        self
    }
    /// How many spans (and log records) wait for export before new ones are dropped.
    pub fn max_queue_size(mut self, items: usize) -> Self {
        self.config.max_queue_size = items;
        self
    }
    /// Console log format.
    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.config.log_format = format;
        self
    }
    /// The log filter, in `RUST_LOG` syntax.
    pub fn log_filter(mut self, filter: &str) -> Self {
        self.config.log_filter = filter.to_owned();
        self
    }
    /// Whether `init` sets the global tracer, meter and propagator and the global
    /// `tracing` subscriber. Off for libraries and tests that hold their own.
    pub fn install_global(mut self, on: bool) -> Self {
        self.config.install_global = on;
        self
    }
    /// How many distinct tenants metrics carry before the rest fold into `_other`.
    pub fn tenant_cap(mut self, tenants: usize) -> Self {
        self.config.tenant_cap = tenants;
        self
    }
    /// Also serves metrics for Prometheus to pull, on `GET /metrics` at `listen`
    /// (needs the `prometheus` feature; port 0 picks a free port).
    pub fn prometheus(mut self, listen: std::net::SocketAddr) -> Self {
        self.config.prometheus = Some(listen);
        self
    }

    /// Turns everything off (as `OTEL_SDK_DISABLED=true`).
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.config.disabled = disabled;
        self
    }

    /// Checks and finishes.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad field.
    pub fn build(mut self) -> Result<TelemetryConfig, ConfigError> {
        for signal in Signal::ALL {
            let exporter =
                self.exporters[signal.index()].unwrap_or(if self.config.has_endpoint(signal) {
                    Exporter::Otlp
                } else {
                    Exporter::Console
                });
            match signal {
                Signal::Traces => self.config.traces = exporter,
                Signal::Metrics => self.config.metrics = exporter,
                Signal::Logs => self.config.logs = exporter,
            }
        }
        let c = &self.config;
        if c.service_name.trim().is_empty() {
            return Err(err("service_name", "must not be empty"));
        }
        for signal in Signal::ALL {
            if c.exporter_of(signal) == Exporter::Otlp && !c.has_endpoint(signal) {
                return Err(err(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    format!(
                        "an OTLP exporter is selected for {signal} but no endpoint is set \
                         (neither OTEL_EXPORTER_OTLP_ENDPOINT nor {})",
                        signal.var("ENDPOINT")
                    ),
                ));
            }
        }
        if let Some(e) = &c.endpoint {
            check_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", e)?;
        }
        for signal in Signal::ALL {
            if let Some(e) = &c.signal(signal).endpoint {
                check_endpoint(&signal.var("ENDPOINT"), e)?;
            }
        }
        // The general headers go to every signal without headers of its own.
        let general_over_grpc = Signal::ALL
            .into_iter()
            .any(|s| c.signal(s).headers.is_none() && c.protocol_of(s) == Protocol::Grpc);
        check_headers(HEADERS, &c.headers, general_over_grpc, "otlp_header")?;
        for signal in Signal::ALL {
            if let Some(headers) = &c.signal(signal).headers {
                let grpc = c.protocol_of(signal) == Protocol::Grpc;
                check_headers(&signal.var("HEADERS"), headers, grpc, "otlp_header_for")?;
            }
        }
        check_sampling(&c.sampling)?;
        for s in c.component_sampling.values() {
            check_sampling(s)?;
        }
        if c.metric_interval.is_zero() {
            return Err(err("metric_interval", "must be longer than zero"));
        }
        if c.timeout.is_zero() {
            return Err(err("timeout", "must be longer than zero"));
        }
        for signal in Signal::ALL {
            if c.signal(signal).timeout.is_some_and(|t| t.is_zero()) {
                return Err(err(
                    &format!("timeout_for(Signal::{signal:?})"),
                    "must be longer than zero",
                ));
            }
        }
        if c.max_queue_size == 0 {
            return Err(err("max_queue_size", "must be at least 1"));
        }
        // OpenTelemetry allocates every slot of the queue up front: a mistyped size
        // would abort the process at init.
        if c.max_queue_size > MAX_QUEUE_SIZE {
            return Err(err(
                "max_queue_size",
                format!("{} is over the limit of {MAX_QUEUE_SIZE}", c.max_queue_size),
            ));
        }
        if c.prometheus.is_some() && !cfg!(feature = "prometheus") {
            return Err(err(
                "prometheus",
                "this build has no Prometheus endpoint; enable the `prometheus` feature of sdk-telemetry",
            ));
        }
        if c.tenant_cap == 0 {
            return Err(err("tenant_cap", "must be at least 1"));
        }
        Ok(self.config)
    }
}

/// An endpoint from the variable (or its builder method) `field`: `http(s)://` and a
/// host. The error shows it with any password hidden.
fn check_endpoint(field: &str, e: &str) -> Result<(), ConfigError> {
    if !(e.starts_with("http://") || e.starts_with("https://")) {
        return Err(err(
            field,
            format!(
                "{:?} must start with http:// or https://",
                redact_endpoint(e)
            ),
        ));
    }
    let authority = e.split_once("://").map(|(_, r)| r).unwrap_or_default();
    if authority.is_empty() || authority.starts_with('/') {
        return Err(err(field, format!("{:?} has no host", redact_endpoint(e))));
    }
    Ok(())
}

/// Headers that can be sent: names of letters, digits, `-`, `_`, `.`; visible ASCII
/// values; over gRPC, no `-bin` name. Errors name `field` and the header, never
/// the value. `method` is the builder method that would have set a bad name.
fn check_headers(
    field: &str,
    headers: &OtlpHeaders,
    grpc: bool,
    method: &str,
) -> Result<(), ConfigError> {
    for (k, v) in &headers.0 {
        if !valid_header_name(k) {
            return Err(invalid_header_name(
                field,
                &format!("a header set with {method}"),
                k,
                false,
            ));
        }
        if grpc && k.to_ascii_lowercase().ends_with("-bin") {
            return Err(err(
                field,
                format!(
                    "header {k:?} ends in -bin, which gRPC reserves for binary metadata; \
                     rename it, or use http/protobuf"
                ),
            ));
        }
        if v.bytes().any(|b| b.is_ascii_control()) {
            return Err(err(
                field,
                format!(
                    "the value of header {k:?} contains a control character (the value \
                     is not shown)"
                ),
            ));
        }
        if !v.is_ascii() {
            return Err(err(
                field,
                format!(
                    "the value of header {k:?} contains a character that is not visible \
                     ASCII (the value is not shown); header values must be ASCII"
                ),
            ));
        }
    }
    Ok(())
}

fn check_sampling(s: &Sampling) -> Result<(), ConfigError> {
    match s {
        Sampling::Ratio(r) if !(0.0..=1.0).contains(r) => {
            Err(err("sampling", format!("ratio {r} is not within 0..=1")))
        }
        Sampling::ParentBased(inner) => check_sampling(inner),
        _ => Ok(()),
    }
}
