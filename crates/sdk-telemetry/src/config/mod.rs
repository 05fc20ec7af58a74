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

    /// 0, 1 or 2, in the order of [`Signal::ALL`].
    pub(crate) fn index(self) -> usize {
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

mod builder;
mod env;
#[cfg(test)]
mod tests;
