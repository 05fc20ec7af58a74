//! Reading the configuration from `OTEL_*` and the other standard variables.

use super::*;

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

pub(super) const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";

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

pub(super) fn valid_header_name(name: &str) -> bool {
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
pub(super) fn invalid_header_name(
    field: &str,
    which: &str,
    name: &str,
    from_env: bool,
) -> ConfigError {
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
