//! Telemetry settings: a builder, and `from_env()` for the `OTEL_*` variables.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// A setting that is missing or wrong; `field` names it (a builder method or an
/// environment variable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid telemetry setting {field}: {reason}")]
pub struct ConfigError {
    /// The setting.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

fn err(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP over gRPC (port 4317 by convention).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318 by convention).
    HttpProtobuf,
}

/// Where one signal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exporter {
    /// OTLP to the configured endpoint.
    Otlp,
    /// Pretty-printed to stdout: the development default when no endpoint is set.
    Console,
    /// Nowhere.
    None,
}

/// Which traces are kept.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Sampling {
    /// Every trace.
    AlwaysOn,
    /// No trace.
    AlwaysOff,
    /// This fraction of traces, decided from the trace id.
    Ratio(f64),
    /// Follow the parent's decision; use the inner rule for root spans.
    ParentBased(Box<Sampling>),
}

/// Console log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// One human-readable line per event, with `trace_id` and `span_id`.
    Plain,
    /// One JSON object per event, with `trace_id` and `span_id`.
    Json,
    /// No console output.
    Off,
}

/// Headers for collector authentication; values print as `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OtlpHeaders(pub BTreeMap<String, String>);

impl fmt::Debug for OtlpHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "***")))
            .finish()
    }
}

/// Everything telemetry needs. Build with [`TelemetryConfig::builder`] or
/// [`TelemetryConfig::from_env`]. Its `Debug` output shows header names but not their
/// values, and an endpoint's `user:password@` as `***@`.
#[derive(Clone)]
pub struct TelemetryConfig {
    pub(crate) disabled: bool,
    pub(crate) service_name: String,
    pub(crate) resource: BTreeMap<String, String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Protocol,
    pub(crate) headers: OtlpHeaders,
    pub(crate) gzip: bool,
    pub(crate) timeout: Duration,
    pub(crate) traces: Exporter,
    pub(crate) metrics: Exporter,
    pub(crate) logs: Exporter,
    pub(crate) sampling: Sampling,
    pub(crate) component_sampling: BTreeMap<String, Sampling>,
    pub(crate) metric_interval: Duration,
    pub(crate) max_queue_size: usize,
    pub(crate) log_format: LogFormat,
    pub(crate) log_filter: String,
    pub(crate) propagators: Vec<String>,
    pub(crate) install_global: bool,
    pub(crate) tenant_cap: usize,
    pub(crate) prometheus: Option<std::net::SocketAddr>,
}

impl fmt::Debug for TelemetryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryConfig")
            .field("disabled", &self.disabled)
            .field("service_name", &self.service_name)
            .field("resource", &self.resource)
            .field("endpoint", &self.endpoint.as_deref().map(redact_endpoint))
            .field("protocol", &self.protocol)
            .field("headers", &self.headers)
            .field("gzip", &self.gzip)
            .field("timeout", &self.timeout)
            .field("traces", &self.traces)
            .field("metrics", &self.metrics)
            .field("logs", &self.logs)
            .field("sampling", &self.sampling)
            .field("component_sampling", &self.component_sampling)
            .field("metric_interval", &self.metric_interval)
            .field("max_queue_size", &self.max_queue_size)
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .field("propagators", &self.propagators)
            .field("install_global", &self.install_global)
            .field("tenant_cap", &self.tenant_cap)
            .field("prometheus", &self.prometheus)
            .finish()
    }
}

/// `endpoint` with any `user:password@` in its authority shown as `***@`.
pub(crate) fn redact_endpoint(endpoint: &str) -> String {
    let (scheme, rest) = match endpoint.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, endpoint),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some(at) = authority.rfind('@') else {
        return endpoint.to_owned();
    };
    let host = &authority[at + 1..];
    match scheme {
        Some(scheme) => format!("{scheme}://***@{host}{tail}"),
        None => format!("***@{host}{tail}"),
    }
}

impl TelemetryConfig {
    /// `text` (an error from an exporter, say) with the secrets of this configuration
    /// taken out: header values, and the endpoint's `user:password`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        if let Some(endpoint) = &self.endpoint {
            let redacted = redact_endpoint(endpoint);
            if redacted != *endpoint {
                text = text.replace(endpoint.as_str(), &redacted);
                // The user info alone, wherever else it was quoted.
                let rest = endpoint
                    .split_once("://")
                    .map_or(endpoint.as_str(), |(_, r)| r);
                if let Some((userinfo, _)) = rest.split_once('@') {
                    text = text.replace(&format!("{userinfo}@"), "***@");
                }
            }
        }
        for value in self.headers.0.values() {
            // Short values (`1`, `yes`) would only garble the text; secrets are longer.
            if value.len() >= 4 {
                text = text.replace(value.as_str(), "***");
            }
        }
        text
    }
}

/// Builds a [`TelemetryConfig`].
#[derive(Debug, Clone)]
pub struct TelemetryConfigBuilder {
    config: TelemetryConfig,
    exporters_set: bool,
}

/// The resource keys the builder fills in.
pub mod resource_keys {
    /// `service.name`
    pub const SERVICE_NAME: &str = "service.name";
    /// `service.version`
    pub const SERVICE_VERSION: &str = "service.version";
    /// `service.namespace`
    pub const SERVICE_NAMESPACE: &str = "service.namespace";
    /// `service.instance.id`
    pub const SERVICE_INSTANCE_ID: &str = "service.instance.id";
    /// `deployment.environment.name`
    pub const DEPLOYMENT_ENVIRONMENT: &str = "deployment.environment.name";
}

impl TelemetryConfig {
    /// A builder for `service_name`. Defaults: console exporters when no endpoint is
    /// set (OTLP once one is), OTLP over gRPC, parent-based always-on sampling, 10 s
    /// export timeout, 60 s metric interval, 2048-item queues, plain console logs at
    /// `info`, W3C trace context and baggage, globals installed, 100 tenants on
    /// metrics before folding into `_other`.
    pub fn builder(service_name: &str) -> TelemetryConfigBuilder {
        TelemetryConfigBuilder {
            config: TelemetryConfig {
                disabled: false,
                service_name: service_name.to_owned(),
                resource: BTreeMap::new(),
                endpoint: None,
                protocol: Protocol::Grpc,
                headers: OtlpHeaders::default(),
                gzip: false,
                timeout: Duration::from_secs(10),
                traces: Exporter::Console,
                metrics: Exporter::Console,
                logs: Exporter::Console,
                sampling: Sampling::ParentBased(Box::new(Sampling::AlwaysOn)),
                component_sampling: BTreeMap::new(),
                metric_interval: Duration::from_secs(60),
                max_queue_size: 2048,
                log_format: LogFormat::Plain,
                log_filter: "info".into(),
                propagators: vec!["tracecontext".into(), "baggage".into()],
                install_global: true,
                tenant_cap: 100,
                prometheus: None,
            },
            exporters_set: false,
        }
    }

    /// Reads the standard variables. Those the Rust SDK already honours are handled
    /// the same way here; those it ignores are handled by us:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `OTEL_SDK_DISABLED` | `true` turns every signal off |
    /// | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | resource (`k=v,k=v`) |
    /// | `OTEL_EXPORTER_OTLP_ENDPOINT` | collector base URL |
    /// | `OTEL_EXPORTER_OTLP_PROTOCOL` | `grpc` or `http/protobuf` |
    /// | `OTEL_EXPORTER_OTLP_HEADERS` | `k=v,k=v`, for collector authentication |
    /// | `OTEL_EXPORTER_OTLP_COMPRESSION` | `gzip` or `none` |
    /// | `OTEL_EXPORTER_OTLP_TIMEOUT` | milliseconds |
    /// | `OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER`, `OTEL_LOGS_EXPORTER` | `otlp`, `console`, `none` |
    /// | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | `always_on`, `always_off`, `traceidratio`, `parentbased_*` |
    /// | `OTEL_METRIC_EXPORT_INTERVAL` | milliseconds |
    /// | `OTEL_BSP_MAX_QUEUE_SIZE` | spans (and log records) held before dropping |
    /// | `OTEL_PROPAGATORS` | `tracecontext`, `baggage`, `none` |
    /// | `RUST_LOG` | log filter, e.g. `info,sdk_bus=debug` |
    /// | `SDK_LOG_FORMAT` | `plain`, `json` or `off` |
    /// | `SDK_PROMETHEUS_LISTEN` | serve `GET /metrics` here (feature `prometheus`) |
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable that is wrong.
    pub fn from_env() -> Result<TelemetryConfig, ConfigError> {
        TelemetryConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// As [`TelemetryConfig::from_env`], reading from `lookup`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable that is wrong.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<TelemetryConfig, ConfigError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let name = get("OTEL_SERVICE_NAME").unwrap_or_else(|| "unknown_service".into());
        let mut b = TelemetryConfig::builder(&name);
        if let Some(v) = get("OTEL_SDK_DISABLED") {
            b.config.disabled = parse_bool("OTEL_SDK_DISABLED", &v)?;
        }
        if let Some(v) = get("OTEL_RESOURCE_ATTRIBUTES") {
            for (k, val) in parse_pairs("OTEL_RESOURCE_ATTRIBUTES", &v)? {
                b.config.resource.insert(k, val);
            }
        }
        if let Some(endpoint) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            let protocol = match get("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
                None | Some("grpc") => Protocol::Grpc,
                Some("http/protobuf") => Protocol::HttpProtobuf,
                Some(other) => {
                    return Err(err(
                        "OTEL_EXPORTER_OTLP_PROTOCOL",
                        format!("{other:?} is not supported; use grpc or http/protobuf"),
                    ));
                }
            };
            b = b.otlp(&endpoint, protocol);
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_HEADERS") {
            b.config.headers = OtlpHeaders(parse_headers(&v)?.into_iter().collect());
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_COMPRESSION") {
            b.config.gzip = match v.as_str() {
                "gzip" => true,
                "none" => false,
                other => {
                    return Err(err(
                        "OTEL_EXPORTER_OTLP_COMPRESSION",
                        format!("{other:?} is not gzip or none"),
                    ));
                }
            };
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_TIMEOUT") {
            b.config.timeout = Duration::from_millis(parse_num("OTEL_EXPORTER_OTLP_TIMEOUT", &v)?);
        }
        for (var, slot) in [
            ("OTEL_TRACES_EXPORTER", 0),
            ("OTEL_METRICS_EXPORTER", 1),
            ("OTEL_LOGS_EXPORTER", 2),
        ] {
            if let Some(v) = get(var) {
                let e = match v.as_str() {
                    "otlp" => Exporter::Otlp,
                    "console" => Exporter::Console,
                    "none" => Exporter::None,
                    other => {
                        return Err(err(var, format!("{other:?} is not otlp, console or none")));
                    }
                };
                match slot {
                    0 => b.config.traces = e,
                    1 => b.config.metrics = e,
                    _ => b.config.logs = e,
                }
                b.exporters_set = true;
            }
        }
        if let Some(v) = get("OTEL_TRACES_SAMPLER") {
            let arg = get("OTEL_TRACES_SAMPLER_ARG");
            let ratio = || -> Result<f64, ConfigError> {
                match &arg {
                    None => Ok(1.0),
                    Some(a) => a
                        .parse::<f64>()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .ok_or_else(|| {
                            err(
                                "OTEL_TRACES_SAMPLER_ARG",
                                format!("{a:?} is not a ratio within 0..=1"),
                            )
                        }),
                }
            };
            b.config.sampling = match v.as_str() {
                "always_on" => Sampling::AlwaysOn,
                "always_off" => Sampling::AlwaysOff,
                "traceidratio" => Sampling::Ratio(ratio()?),
                "parentbased_always_on" => Sampling::ParentBased(Box::new(Sampling::AlwaysOn)),
                "parentbased_always_off" => Sampling::ParentBased(Box::new(Sampling::AlwaysOff)),
                "parentbased_traceidratio" => {
                    Sampling::ParentBased(Box::new(Sampling::Ratio(ratio()?)))
                }
                other => {
                    return Err(err(
                        "OTEL_TRACES_SAMPLER",
                        format!("{other:?} is not a supported sampler"),
                    ));
                }
            };
        }
        if let Some(v) = get("OTEL_METRIC_EXPORT_INTERVAL") {
            b.config.metric_interval =
                Duration::from_millis(parse_num("OTEL_METRIC_EXPORT_INTERVAL", &v)?);
        }
        if let Some(v) = get("OTEL_BSP_MAX_QUEUE_SIZE") {
            b.config.max_queue_size =
                usize::try_from(parse_num("OTEL_BSP_MAX_QUEUE_SIZE", &v)?).unwrap_or(usize::MAX);
        }
        if let Some(v) = get("OTEL_PROPAGATORS") {
            let list: Vec<String> = v
                .split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect();
            for p in &list {
                if !matches!(p.as_str(), "tracecontext" | "baggage" | "none") {
                    return Err(err(
                        "OTEL_PROPAGATORS",
                        format!("{p:?} is not supported; use tracecontext, baggage or none"),
                    ));
                }
            }
            b.config.propagators = list.into_iter().filter(|p| p != "none").collect();
        }
        if let Some(v) = get("SDK_PROMETHEUS_LISTEN") {
            b.config.prometheus = Some(v.parse().map_err(|_| {
                err(
                    "SDK_PROMETHEUS_LISTEN",
                    format!("{v:?} is not an address like 127.0.0.1:9464"),
                )
            })?);
        }
        if let Some(v) = get("RUST_LOG") {
            b.config.log_filter = v;
        }
        if let Some(v) = get("SDK_LOG_FORMAT") {
            b.config.log_format = match v.as_str() {
                "plain" => LogFormat::Plain,
                "json" => LogFormat::Json,
                "off" => LogFormat::Off,
                other => {
                    return Err(err(
                        "SDK_LOG_FORMAT",
                        format!("{other:?} is not plain, json or off"),
                    ));
                }
            };
        }
        b.build()
    }

    /// The service name.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }
}

fn parse_bool(field: &str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(err(field, format!("{v:?} is not true or false"))),
    }
}

fn parse_num(field: &str, v: &str) -> Result<u64, ConfigError> {
    v.parse()
        .map_err(|_| err(field, format!("{v:?} is not a whole number")))
}

/// `k=v,k=v`, with percent-decoding of values as the spec asks.
fn parse_pairs(field: &str, v: &str) -> Result<Vec<(String, String)>, ConfigError> {
    v.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (k, val) = pair
                .split_once('=')
                .ok_or_else(|| err(field, format!("{pair:?} is not key=value")))?;
            let k = k.trim();
            if k.is_empty() {
                return Err(err(field, format!("{pair:?} has an empty key")));
            }
            Ok((k.to_owned(), percent_decode(val.trim())))
        })
        .collect()
}

const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";

/// `name=value,name=value` with percent-encoded values. An entry that does not parse
/// is named by its position and, when one can be told apart, by its header name;
/// nothing that may be part of a value is quoted: a mistyped `Authorization: Bearer
/// ...` must not print the token into a log.
fn parse_headers(v: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut headers = Vec::new();
    for (i, pair) in v.split(',').filter(|p| !p.trim().is_empty()).enumerate() {
        let entry = i + 1;
        let Some((name, value)) = pair.split_once('=') else {
            return Err(match name_before_separator(pair) {
                Some(name) => err(
                    HEADERS,
                    format!(
                        "entry {entry}, for header {name:?}, is not name=value (the value \
                         is not shown); write {name}=<value>, with the value percent-encoded"
                    ),
                ),
                None => err(
                    HEADERS,
                    format!(
                        "entry {entry} is not name=value (it is not shown: it may be a secret)"
                    ),
                ),
            });
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(err(
                HEADERS,
                format!("entry {entry} has an empty header name (the value is not shown)"),
            ));
        }
        if !valid_header_name(name) {
            return Err(invalid_header_name(&format!("entry {entry}"), name, true));
        }
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8()
            .map_err(|_| {
                err(
                    HEADERS,
                    format!(
                        "the value of header {name:?} is not valid UTF-8 once percent-decoded \
                         (the value is not shown)"
                    ),
                )
            })?;
        headers.push((name.to_owned(), value.into_owned()));
    }
    Ok(headers)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.".contains(&b)
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_name_byte)
}

/// The header name at the start of `entry`, when a separator (`:` or a space) follows
/// it, as in `Authorization: Bearer ...`.
fn name_before_separator(entry: &str) -> Option<&str> {
    let entry = entry.trim_start();
    let end = entry.bytes().position(|b| !is_name_byte(b))?;
    let separator = entry.as_bytes()[end];
    (end > 0 && (separator == b':' || separator.is_ascii_whitespace())).then(|| &entry[..end])
}

/// The error for an invalid header name: only its valid beginning is quoted, since
/// the rest may be a value typed in the wrong place. `from_env` adds how to write the
/// variable.
fn invalid_header_name(which: &str, name: &str, from_env: bool) -> ConfigError {
    let end = name
        .bytes()
        .position(|b| !is_name_byte(b))
        .unwrap_or(name.len());
    let start = &name[..end];
    if start.is_empty() {
        err(
            HEADERS,
            format!("{which} has an invalid header name (not shown: it may hold the value)"),
        )
    } else {
        let hint = if from_env {
            format!("; write {start}=<value>, with the value percent-encoded")
        } else {
            "; a name has letters, digits, '-', '_' and '.' only".to_owned()
        };
        err(
            HEADERS,
            format!(
                "{which} has an invalid header name starting {start:?} (the rest is not \
                 shown: it may hold the value){hint}"
            ),
        )
    }
}

fn percent_decode(v: &str) -> String {
    percent_encoding::percent_decode_str(v)
        .decode_utf8()
        .map(|s| s.into_owned())
        .unwrap_or_else(|_| v.to_owned())
}

impl TelemetryConfigBuilder {
    /// Exports every signal over OTLP to `endpoint` (the collector's base URL).
    pub fn otlp(mut self, endpoint: &str, protocol: Protocol) -> Self {
        self.config.endpoint = Some(endpoint.trim_end_matches('/').to_owned());
        self.config.protocol = protocol;
        if !self.exporters_set {
            self.config.traces = Exporter::Otlp;
            self.config.metrics = Exporter::Otlp;
            self.config.logs = Exporter::Otlp;
        }
        self
    }
    /// Headers sent with every export (collector authentication).
    pub fn otlp_header(mut self, name: &str, value: &str) -> Self {
        self.config
            .headers
            .0
            .insert(name.to_owned(), value.to_owned());
        self
    }
    /// gzip the exports.
    pub fn gzip(mut self, on: bool) -> Self {
        self.config.gzip = on;
        self
    }
    /// The export timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }
    /// Exporters per signal: traces, metrics, logs.
    pub fn exporters(mut self, traces: Exporter, metrics: Exporter, logs: Exporter) -> Self {
        self.config.traces = traces;
        self.config.metrics = metrics;
        self.config.logs = logs;
        self.exporters_set = true;
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
    pub fn build(self) -> Result<TelemetryConfig, ConfigError> {
        let c = &self.config;
        if c.service_name.trim().is_empty() {
            return Err(err("service_name", "must not be empty"));
        }
        let wants_otlp = [c.traces, c.metrics, c.logs].contains(&Exporter::Otlp);
        if wants_otlp && c.endpoint.is_none() {
            return Err(err(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "an OTLP exporter is selected but no endpoint is set",
            ));
        }
        if let Some(e) = &c.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(err(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!(
                    "{:?} must start with http:// or https://",
                    redact_endpoint(e)
                ),
            ));
        }
        if let Some(e) = &c.endpoint {
            let authority = e.split_once("://").map(|(_, r)| r).unwrap_or_default();
            if authority.is_empty() || authority.starts_with('/') {
                return Err(err(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    format!("{:?} has no host", redact_endpoint(e)),
                ));
            }
        }
        for (k, v) in &c.headers.0 {
            if !valid_header_name(k) {
                return Err(invalid_header_name(
                    "a header set with otlp_header",
                    k,
                    false,
                ));
            }
            if c.protocol == Protocol::Grpc && k.to_ascii_lowercase().ends_with("-bin") {
                return Err(err(
                    HEADERS,
                    format!(
                        "header {k:?} ends in -bin, which gRPC reserves for binary metadata; \
                         rename it, or use http/protobuf"
                    ),
                ));
            }
            if v.bytes().any(|b| b.is_ascii_control()) {
                return Err(err(
                    HEADERS,
                    format!(
                        "the value of header {k:?} contains a control character (the value \
                         is not shown)"
                    ),
                ));
            }
            if !v.is_ascii() {
                return Err(err(
                    HEADERS,
                    format!(
                        "the value of header {k:?} contains a character that is not visible \
                         ASCII (the value is not shown); header values must be ASCII"
                    ),
                ));
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
        if c.max_queue_size == 0 {
            return Err(err("max_queue_size", "must be at least 1"));
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

fn check_sampling(s: &Sampling) -> Result<(), ConfigError> {
    match s {
        Sampling::Ratio(r) if !(0.0..=1.0).contains(r) => {
            Err(err("sampling", format!("ratio {r} is not within 0..=1")))
        }
        Sampling::ParentBased(inner) => check_sampling(inner),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
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
            (
                &[("OTEL_TRACES_EXPORTER", "jaeger")],
                "invalid telemetry setting OTEL_TRACES_EXPORTER: \"jaeger\" is not otlp, console or none",
            ),
            (
                &[("OTEL_TRACES_EXPORTER", "otlp")],
                "invalid telemetry setting OTEL_EXPORTER_OTLP_ENDPOINT: an OTLP exporter is selected but no endpoint is set",
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
}
