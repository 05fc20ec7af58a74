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

/// One of the three signals, for the settings that can differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Signal {
    /// Spans.
    Traces,
    /// Metric points.
    Metrics,
    /// Log records.
    Logs,
}

impl Signal {
    /// Every signal, in the order traces, metrics, logs.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// `traces`, `metrics` or `logs`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    fn index(self) -> usize {
        match self {
            Signal::Traces => 0,
            Signal::Metrics => 1,
            Signal::Logs => 2,
        }
    }

    /// The path OTLP/HTTP appends to the general endpoint for this signal.
    pub(crate) fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
        }
    }

    /// The per-signal variable for `setting` (`ENDPOINT`, `HEADERS`, ...), such as
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
    pub(crate) fn var(self, setting: &str) -> String {
        format!(
            "OTEL_EXPORTER_OTLP_{}_{setting}",
            self.name().to_ascii_uppercase()
        )
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
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

/// The OTLP settings of one signal that override the general ones; `None` means "as
/// the general setting".
#[derive(Clone, Default, PartialEq)]
pub(crate) struct SignalOtlp {
    /// The full URL, used as given (no `/v1/<signal>` appended).
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Option<Protocol>,
    /// Replaces the general headers for this signal, as
    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS` replaces `OTEL_EXPORTER_OTLP_HEADERS`.
    pub(crate) headers: Option<OtlpHeaders>,
    pub(crate) gzip: Option<bool>,
    pub(crate) timeout: Option<Duration>,
}

impl fmt::Debug for SignalOtlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalOtlp")
            .field("endpoint", &self.endpoint.as_deref().map(redact_endpoint))
            .field("protocol", &self.protocol)
            .field("headers", &self.headers)
            .field("gzip", &self.gzip)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Where and how one signal is exported over OTLP, every setting resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OtlpTarget<'a> {
    /// The URL the exporter is given: the per-signal endpoint as it is, or the
    /// general one with `/v1/<signal>` appended for HTTP.
    pub(crate) endpoint: String,
    pub(crate) protocol: Protocol,
    pub(crate) headers: &'a OtlpHeaders,
    pub(crate) gzip: bool,
    pub(crate) timeout: Duration,
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
    /// Per-signal overrides, indexed by [`Signal::index`].
    pub(crate) signals: [SignalOtlp; 3],
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
            .field("signals", &self.signals)
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
    /// taken out: header values, and the endpoints' `user:password`, general and
    /// per-signal.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        let endpoints = std::iter::once(&self.endpoint)
            .chain(self.signals.iter().map(|s| &s.endpoint))
            .flatten();
        for endpoint in endpoints {
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
        let headers = std::iter::once(&self.headers)
            .chain(self.signals.iter().filter_map(|s| s.headers.as_ref()));
        for value in headers.flat_map(|h| h.0.values()) {
            // Short values (`1`, `yes`) would only garble the text; secrets are longer.
            if value.len() >= 4 {
                text = text.replace(value.as_str(), "***");
            }
        }
        text
    }

    fn signal(&self, signal: Signal) -> &SignalOtlp {
        &self.signals[signal.index()]
    }

    /// The protocol `signal` uses: its own, or the general one.
    pub(crate) fn protocol_of(&self, signal: Signal) -> Protocol {
        self.signal(signal).protocol.unwrap_or(self.protocol)
    }

    /// Whether `signal` has somewhere to go over OTLP (its own endpoint or the
    /// general one).
    fn has_endpoint(&self, signal: Signal) -> bool {
        self.signal(signal).endpoint.is_some() || self.endpoint.is_some()
    }

    /// The resolved OTLP settings of `signal`, as the OpenTelemetry specification
    /// orders them: a per-signal value wins over the general one. `None` when the
    /// signal has no endpoint.
    pub(crate) fn otlp_target(&self, signal: Signal) -> Option<OtlpTarget<'_>> {
        let own = self.signal(signal);
        let protocol = self.protocol_of(signal);
        let endpoint = match (&own.endpoint, &self.endpoint) {
            (Some(own), _) => own.clone(),
            (None, Some(base)) => match protocol {
                Protocol::Grpc => base.clone(),
                Protocol::HttpProtobuf => format!("{base}{}", signal.http_path()),
            },
            (None, None) => return None,
        };
        Some(OtlpTarget {
            endpoint,
            protocol,
            headers: own.headers.as_ref().unwrap_or(&self.headers),
            gzip: own.gzip.unwrap_or(self.gzip),
            timeout: own.timeout.unwrap_or(self.timeout),
        })
    }

    /// The log filter when neither `RUST_LOG` nor [`TelemetryConfigBuilder::log_filter`]
    /// sets one: `info` for the application, `warn` for the client libraries underneath
    /// (NATS, HTTP/2, HTTP, gRPC, TLS, OpenTelemetry itself), whose `info` lines would
    /// otherwise flood the console at start-up and on every reconnect. A filter that is
    /// set replaces the whole of it. Targets match by prefix, as in any `RUST_LOG`
    /// filter: `hyper` also covers `hyper_util`, `opentelemetry` covers
    /// `opentelemetry_sdk` and `opentelemetry-otlp`.
    pub const DEFAULT_LOG_FILTER: &str = "info,async_nats=warn,h2=warn,hyper=warn,tonic=warn,\
                                          tower=warn,reqwest=warn,rustls=warn,opentelemetry=warn";

    /// The exporter selected for `signal`.
    pub(crate) fn exporter_of(&self, signal: Signal) -> Exporter {
        match signal {
            Signal::Traces => self.traces,
            Signal::Metrics => self.metrics,
            Signal::Logs => self.logs,
        }
    }

    /// The log filter `init` installs, in `RUST_LOG` syntax: `RUST_LOG` or
    /// [`TelemetryConfigBuilder::log_filter`] when set, else
    /// [`TelemetryConfig::DEFAULT_LOG_FILTER`].
    pub fn log_filter(&self) -> &str {
        &self.log_filter
    }
}

/// Builds a [`TelemetryConfig`].
#[derive(Debug, Clone)]
pub struct TelemetryConfigBuilder {
    config: TelemetryConfig,
    /// The exporters chosen per signal; `None` is OTLP when the signal has an
    /// endpoint, the console otherwise.
    exporters: [Option<Exporter>; 3],
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
    /// A builder for `service_name`. Defaults: for each signal, OTLP when it has an
    /// endpoint (its own or the general one) and the console otherwise; OTLP over
    /// gRPC, parent-based always-on sampling, 10 s export timeout, 60 s metric
    /// interval, 2048-item queues, plain console logs filtered by
    /// [`TelemetryConfig::DEFAULT_LOG_FILTER`] (`info`, and `warn` for the client
    /// libraries), W3C trace context and baggage, globals installed, 100 tenants on
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
                signals: Default::default(),
                traces: Exporter::Console,
                metrics: Exporter::Console,
                logs: Exporter::Console,
                sampling: Sampling::ParentBased(Box::new(Sampling::AlwaysOn)),
                component_sampling: BTreeMap::new(),
                metric_interval: Duration::from_secs(60),
                max_queue_size: 2048,
                log_format: LogFormat::Plain,
                log_filter: TelemetryConfig::DEFAULT_LOG_FILTER.into(),
                propagators: vec!["tracecontext".into(), "baggage".into()],
                install_global: true,
                tenant_cap: 100,
                prometheus: None,
            },
            exporters: [None; 3],
        }
    }

    /// Reads the standard variables. Those the Rust SDK already honours are handled
    /// the same way here (and passed to the exporter explicitly); those it ignores
    /// are handled by us:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `OTEL_SDK_DISABLED` | `true` turns every signal off |
    /// | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | resource (`k=v,k=v`) |
    /// | `OTEL_EXPORTER_OTLP_ENDPOINT` | collector base URL (HTTP appends `/v1/<signal>`) |
    /// | `OTEL_EXPORTER_OTLP_PROTOCOL` | `grpc` or `http/protobuf` |
    /// | `OTEL_EXPORTER_OTLP_HEADERS` | `k=v,k=v`, for collector authentication |
    /// | `OTEL_EXPORTER_OTLP_COMPRESSION` | `gzip` or `none` |
    /// | `OTEL_EXPORTER_OTLP_TIMEOUT` | milliseconds |
    /// | `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_{ENDPOINT,PROTOCOL,HEADERS,COMPRESSION,TIMEOUT}` | the same for one signal, winning over the general variable; the endpoint is used as given |
    /// | `OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER`, `OTEL_LOGS_EXPORTER` | `otlp`, `console`, `none` |
    /// | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | `always_on`, `always_off`, `traceidratio`, `parentbased_*` |
    /// | `OTEL_METRIC_EXPORT_INTERVAL` | milliseconds |
    /// | `OTEL_BSP_MAX_QUEUE_SIZE` | spans (and log records) held before dropping |
    /// | `OTEL_PROPAGATORS` | `tracecontext`, `baggage`, `none` |
    /// | `RUST_LOG` | log filter, e.g. `info,sdk_bus=debug`; replaces [`TelemetryConfig::DEFAULT_LOG_FILTER`] |
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
        // OTLP: the general variables, then each signal's, which win for that signal.
        if let Some(v) = get("OTEL_EXPORTER_OTLP_PROTOCOL") {
            b.config.protocol = parse_protocol("OTEL_EXPORTER_OTLP_PROTOCOL", &v)?;
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            b.config.endpoint = Some(v.trim_end_matches('/').to_owned());
        }
        if let Some(v) = get(HEADERS) {
            b.config.headers = OtlpHeaders(parse_headers(HEADERS, &v)?.into_iter().collect());
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_COMPRESSION") {
            b.config.gzip = parse_compression("OTEL_EXPORTER_OTLP_COMPRESSION", &v)?;
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_TIMEOUT") {
            b.config.timeout = parse_timeout("OTEL_EXPORTER_OTLP_TIMEOUT", &v)?;
        }
        for signal in Signal::ALL {
            let own = &mut b.config.signals[signal.index()];
            let var = |setting: &str| signal.var(setting);
            if let Some(v) = get(&var("PROTOCOL")) {
                own.protocol = Some(parse_protocol(&var("PROTOCOL"), &v)?);
            }
            if let Some(v) = get(&var("ENDPOINT")) {
                // Used as given: the specification appends nothing to a per-signal URL.
                own.endpoint = Some(v);
            }
            if let Some(v) = get(&var("HEADERS")) {
                let var = var("HEADERS");
                own.headers = Some(OtlpHeaders(parse_headers(&var, &v)?.into_iter().collect()));
            }
            if let Some(v) = get(&var("COMPRESSION")) {
                own.gzip = Some(parse_compression(&var("COMPRESSION"), &v)?);
            }
            if let Some(v) = get(&var("TIMEOUT")) {
                own.timeout = Some(parse_timeout(&var("TIMEOUT"), &v)?);
            }
        }
        for signal in Signal::ALL {
            let var = format!("OTEL_{}_EXPORTER", signal.name().to_ascii_uppercase());
            if let Some(v) = get(&var) {
                let e = match v.as_str() {
                    "otlp" => Exporter::Otlp,
                    "console" => Exporter::Console,
                    "none" => Exporter::None,
                    other => {
                        return Err(err(&var, format!("{other:?} is not otlp, console or none")));
                    }
                };
                b.exporters[signal.index()] = Some(e);
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

/// `grpc` or `http/protobuf`, in any case, as the OTLP exporter reads them.
fn parse_protocol(field: &str, v: &str) -> Result<Protocol, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        _ => Err(err(
            field,
            format!("{v:?} is not supported; use grpc or http/protobuf"),
        )),
    }
}

/// `gzip` or `none`, in any case, as the OTLP exporter reads them; `zstd` is not
/// compiled in.
fn parse_compression(field: &str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "gzip" => Ok(true),
        "none" => Ok(false),
        _ => Err(err(field, format!("{v:?} is not gzip or none"))),
    }
}

/// Milliseconds, more than zero.
fn parse_timeout(field: &str, v: &str) -> Result<Duration, ConfigError> {
    match parse_num(field, v)? {
        0 => Err(err(field, "must be longer than zero")),
        ms => Ok(Duration::from_millis(ms)),
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
fn parse_headers(field: &str, v: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut headers = Vec::new();
    for (i, pair) in v.split(',').filter(|p| !p.trim().is_empty()).enumerate() {
        let entry = i + 1;
        let Some((name, value)) = pair.split_once('=') else {
            return Err(match name_before_separator(pair) {
                Some(name) => err(
                    field,
                    format!(
                        "entry {entry}, for header {name:?}, is not name=value (the value \
                         is not shown); write {name}=<value>, with the value percent-encoded"
                    ),
                ),
                None => err(
                    field,
                    format!(
                        "entry {entry} is not name=value (it is not shown: it may be a secret)"
                    ),
                ),
            });
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(err(
                field,
                format!("entry {entry} has an empty header name (the value is not shown)"),
            ));
        }
        if !valid_header_name(name) {
            return Err(invalid_header_name(
                field,
                &format!("entry {entry}"),
                name,
                true,
            ));
        }
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8()
            .map_err(|_| {
                err(
                    field,
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
fn invalid_header_name(field: &str, which: &str, name: &str, from_env: bool) -> ConfigError {
    let end = name
        .bytes()
        .position(|b| !is_name_byte(b))
        .unwrap_or(name.len());
    let start = &name[..end];
    if start.is_empty() {
        err(
            field,
            format!("{which} has an invalid header name (not shown: it may hold the value)"),
        )
    } else {
        let hint = if from_env {
            format!("; write {start}=<value>, with the value percent-encoded")
        } else {
            "; a name has letters, digits, '-', '_' and '.' only".to_owned()
        };
        err(
            field,
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
        let traces_only =
            OtlpHeaders([("authorization".to_owned(), "traces only".to_owned())].into());
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
}
