//! A real OTLP collector (`rotel-agent`) whose debug output the tests read back.
//!
//! rotel prints every span, metric point and log record it receives in the same
//! "detailed" layout as the OpenTelemetry Collector's debug exporter. This module
//! parses that text into [`Received`], so a test can ask what arrived.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;

use crate::tools::{Tool, free_port, locate_or_panic, wait_until};

const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A span as the collector received it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Span {
    /// Span name.
    pub name: String,
    /// `SPAN_KIND_PRODUCER`, `SPAN_KIND_CONSUMER`, ...
    pub kind: String,
    /// Hex trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Hex parent span id; empty for a root span.
    pub parent_id: String,
    /// Status code line, if printed (`STATUS_CODE_ERROR`, ...).
    pub status: String,
    /// Span attributes, values without their type wrapper (`Str(x)` becomes `x`).
    pub attributes: BTreeMap<String, String>,
    /// Names of the span's events.
    pub events: Vec<String>,
    /// Attributes of the resource that sent it.
    pub resource: BTreeMap<String, String>,
    /// Instrumentation scope name.
    pub scope: String,
}

/// One data point of a metric.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricPoint {
    /// Data point attributes.
    pub attributes: BTreeMap<String, String>,
    /// The printed fields of the point: `Value`, `Count`, `Sum`, ...
    pub fields: BTreeMap<String, String>,
}

/// A metric as the collector received it (one export of it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metric {
    /// Instrument name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// `Sum`, `Gauge`, `Histogram`, ...
    pub data_type: String,
    /// Its data points.
    pub points: Vec<MetricPoint>,
    /// Attributes of the resource that sent it.
    pub resource: BTreeMap<String, String>,
}

/// A log record as the collector received it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogRecord {
    /// The body, without its type wrapper.
    pub body: String,
    /// `INFO`, `ERROR`, ...
    pub severity_text: String,
    /// Hex trace id; empty or zeros when the record had none.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Record attributes.
    pub attributes: BTreeMap<String, String>,
    /// Attributes of the resource that sent it.
    pub resource: BTreeMap<String, String>,
}

/// Everything the collector has printed so far, parsed.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Spans in arrival order.
    pub spans: Vec<Span>,
    /// Metric exports in arrival order (a metric exported twice appears twice).
    pub metrics: Vec<Metric>,
    /// Log records in arrival order.
    pub logs: Vec<LogRecord>,
}

impl Received {
    /// Spans with this name.
    pub fn spans_named(&self, name: &str) -> Vec<&Span> {
        self.spans.iter().filter(|s| s.name == name).collect()
    }

    /// The most recent export of the metric with this name.
    pub fn last_metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().rev().find(|m| m.name == name)
    }

    /// Parses the collector's detailed debug output.
    pub fn parse(lines: &[String]) -> Received {
        Parser::default().run(lines)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    None,
    Resource,
    Span,
    SpanEvent,
    Descriptor,
    Point,
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    None,
    Span,
    Metric,
    Point,
    Log,
}

#[derive(Debug, Default)]
struct Parser {
    out: Received,
    resource: BTreeMap<String, String>,
    scope: String,
}

impl Parser {
    fn run(mut self, lines: &[String]) -> Received {
        let mut target = Target::None;
        let mut item = Item::None;
        for raw in lines {
            let line = raw.trim();
            if line.starts_with("ResourceSpans #")
                || line.starts_with("ResourceMetrics #")
                || line.starts_with("ResourceLog")
            {
                self.resource.clear();
                target = Target::None;
                item = Item::None;
            } else if line == "Resource attributes:" {
                target = Target::Resource;
            } else if let Some(scope) = line.strip_prefix("InstrumentationScope") {
                self.scope = scope.trim().to_owned();
                target = Target::None;
            } else if line.starts_with("Span #") {
                self.out.spans.push(Span {
                    resource: self.resource.clone(),
                    scope: self.scope.clone(),
                    ..Span::default()
                });
                item = Item::Span;
                target = Target::None;
            } else if line.starts_with("Metric #") {
                self.out.metrics.push(Metric {
                    resource: self.resource.clone(),
                    ..Metric::default()
                });
                item = Item::Metric;
                target = Target::None;
            } else if line == "Descriptor:" {
                target = Target::Descriptor;
            } else if line.contains("DataPoints #") {
                if let Some(metric) = self.out.metrics.last_mut() {
                    metric.points.push(MetricPoint::default());
                }
                item = Item::Point;
                target = Target::None;
            } else if line == "Data point attributes:" {
                target = Target::Point;
            } else if line.starts_with("LogRecord #") {
                self.out.logs.push(LogRecord {
                    resource: self.resource.clone(),
                    ..LogRecord::default()
                });
                item = Item::Log;
                target = Target::None;
            } else if line == "Attributes:" {
                target = match item {
                    Item::Span => Target::Span,
                    Item::Log => Target::Log,
                    _ => Target::None,
                };
            } else if line.starts_with("SpanEvent #") {
                target = Target::SpanEvent;
            } else if line == "Events:" || line == "Links:" || line.starts_with("SpanLink #") {
                target = Target::None;
            } else if let Some(rest) = line.strip_prefix("-> ") {
                if let Some((key, value)) = rest.split_once(": ") {
                    self.arrow(target, key, value);
                }
            } else if let Some((key, value)) = line.split_once(':') {
                self.field(item, key.trim(), value.trim());
            }
        }
        self.out
    }

    fn arrow(&mut self, target: Target, key: &str, value: &str) {
        let value = unwrap_value(value);
        match target {
            Target::Resource => {
                self.resource.insert(key.to_owned(), value);
            }
            Target::Span => {
                if let Some(span) = self.out.spans.last_mut() {
                    span.attributes.insert(key.to_owned(), value);
                }
            }
            Target::SpanEvent => {
                if let ("Name", Some(span)) = (key, self.out.spans.last_mut()) {
                    span.events.push(value);
                }
            }
            Target::Descriptor => {
                if let Some(metric) = self.out.metrics.last_mut() {
                    match key {
                        "Name" => metric.name = value,
                        "Unit" => metric.unit = value,
                        "DataType" => metric.data_type = value,
                        _ => {}
                    }
                }
            }
            Target::Point => {
                if let Some(point) = self
                    .out
                    .metrics
                    .last_mut()
                    .and_then(|m| m.points.last_mut())
                {
                    point.attributes.insert(key.to_owned(), value);
                }
            }
            Target::Log => {
                if let Some(log) = self.out.logs.last_mut() {
                    log.attributes.insert(key.to_owned(), value);
                }
            }
            Target::None => {}
        }
    }

    fn field(&mut self, item: Item, key: &str, value: &str) {
        match item {
            Item::Span => {
                if let Some(span) = self.out.spans.last_mut() {
                    match key {
                        "Trace ID" => span.trace_id = value.to_owned(),
                        "Parent ID" => span.parent_id = value.to_owned(),
                        "ID" => span.span_id = value.to_owned(),
                        "Name" => span.name = value.to_owned(),
                        "Kind" => span.kind = value.to_owned(),
                        "Status code" => span.status = value.to_owned(),
                        _ => {}
                    }
                }
            }
            Item::Point => {
                if let Some(point) = self
                    .out
                    .metrics
                    .last_mut()
                    .and_then(|m| m.points.last_mut())
                {
                    point.fields.insert(key.to_owned(), value.to_owned());
                }
            }
            Item::Log => {
                if let Some(log) = self.out.logs.last_mut() {
                    match key {
                        "Body" => log.body = unwrap_value(value),
                        "SeverityText" => log.severity_text = value.to_owned(),
                        "Trace ID" => log.trace_id = value.to_owned(),
                        "Span ID" => log.span_id = value.to_owned(),
                        _ => {}
                    }
                }
            }
            Item::Metric | Item::None => {}
        }
    }
}

/// `Str(nats)` becomes `nats`, `Int(5)` becomes `5`; anything else is kept as it is.
fn unwrap_value(value: &str) -> String {
    if let Some(open) = value.find('(') {
        let tag = &value[..open];
        if !tag.is_empty() && tag.chars().all(|c| c.is_ascii_alphabetic()) && value.ends_with(')') {
            return value[open + 1..value.len() - 1].to_owned();
        }
    }
    value.to_owned()
}

/// A running `rotel-agent` with a blackhole exporter and detailed debug logging.
#[derive(Debug)]
pub struct Collector {
    child: Option<Child>,
    grpc_port: u16,
    http_port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    dir: TempDir,
}

impl Collector {
    /// Starts a collector on two free loopback ports and waits until both accept
    /// connections.
    pub fn start() -> Collector {
        let mut collector = Collector {
            child: None,
            grpc_port: free_port(),
            http_port: free_port(),
            lines: Arc::new(Mutex::new(Vec::new())),
            dir: TempDir::new().expect("temp dir"),
        };
        // A collector that loses a port race exits at once: start it on other ports.
        for _ in 0..5 {
            match collector.try_spawn() {
                Ok(()) => return collector,
                Err(_) => {
                    collector.kill();
                    collector.grpc_port = free_port();
                    collector.http_port = free_port();
                }
            }
        }
        collector.spawn();
        collector
    }

    fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        let bin = locate_or_panic(Tool::Rotel);
        let mut child = Command::new(bin)
            .arg("start")
            .args([
                "--otlp-grpc-endpoint",
                &format!("127.0.0.1:{}", self.grpc_port),
            ])
            .args([
                "--otlp-http-endpoint",
                &format!("127.0.0.1:{}", self.http_port),
            ])
            .args(["--exporter", "blackhole"])
            .args([
                "--debug-log",
                "traces",
                "--debug-log",
                "metrics",
                "--debug-log",
                "logs",
            ])
            .args(["--debug-log-verbosity", "detailed"])
            .arg("--pid-file")
            .arg(self.dir.path().join("rotel.pid"))
            .arg("--log-file")
            .arg(self.dir.path().join("rotel.log"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rotel-agent");
        if let Some(out) = child.stdout.take() {
            pump(out, Arc::clone(&self.lines));
        }
        if let Some(err) = child.stderr.take() {
            pump(err, Arc::clone(&self.lines));
        }
        self.child = Some(child);
        let ports = [self.grpc_port, self.http_port];
        let ready = wait_until(READY_TIMEOUT, || {
            if let Some(child) = self.child.as_mut()
                && !matches!(child.try_wait(), Ok(None))
            {
                return Some(false);
            }
            ports
                .iter()
                .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
                .then_some(true)
        });
        match ready {
            Some(true) => Ok(()),
            Some(false) => Err(format!(
                "rotel-agent exited during start-up; output:\n{}",
                self.raw_output()
            )),
            None => Err(format!(
                "rotel-agent did not listen within {READY_TIMEOUT:?}; output:\n{}",
                self.raw_output()
            )),
        }
    }

    /// `http://127.0.0.1:<grpc port>`, for an OTLP/gRPC exporter.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// `http://127.0.0.1:<http port>`, the base URL for an OTLP/HTTP exporter.
    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Everything the collector printed, as text.
    pub fn raw_output(&self) -> String {
        self.lines.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// What the collector has received so far.
    pub fn received(&self) -> Received {
        let lines = self.lines.lock().map(|l| l.clone()).unwrap_or_default();
        Received::parse(&lines)
    }

    /// Polls what arrived until `condition` returns `Some`; panics with the raw output
    /// after `timeout`.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut(&Received) -> Option<T>,
    ) -> T {
        match wait_until(timeout, || condition(&self.received())) {
            Some(value) => value,
            None => panic!(
                "collector did not receive {what} within {timeout:?}; it printed:\n{}",
                self.raw_output()
            ),
        }
    }

    /// Waits for a span with this name and returns it.
    pub fn wait_for_span(&self, name: &str, timeout: Duration) -> Span {
        self.wait_for(timeout, &format!("span {name:?}"), |r| {
            r.spans.iter().find(|s| s.name == name).cloned()
        })
    }

    /// Kills the collector (SIGKILL), as an outage would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pump(stream: impl Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut lines) = lines.lock() {
                lines.push(strip_ansi(&line));
            }
        }
    });
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for n in chars.by_ref() {
                if n.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_span_a_metric_and_a_log() {
        let text = "ResourceSpans #0
Resource attributes:
     -> service.name: Str(svc-x)
ScopeSpans #0
InstrumentationScope sdk 
Span #0
    Trace ID       : 5b8e
    Parent ID      : 
    ID             : eee1
    Name           : publish sdk.{tenant}.x
    Kind           : SPAN_KIND_PRODUCER
Attributes:
     -> messaging.system: Str(nats)
     -> n: Int(5)
ResourceMetrics #0
Resource attributes:
     -> service.name: Str(svc-m)
Metric #0
Descriptor:
     -> Name: messaging.client.sent.messages
     -> Unit: {message}
     -> DataType: Sum
NumberDataPoints #0
Data point attributes:
     -> sdk.tenant.id: Str(acme)
Value: 7
ResourceLog #0
Resource attributes:
     -> service.name: Str(svc-l)
LogRecord #0
SeverityText: INFO
Body: Str(hello: log)
Attributes:
     -> k: Str(v)
    Trace ID       : 5b8e
    Span ID        : eee1";
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let r = Received::parse(&lines);
        assert_eq!(r.spans.len(), 1);
        let span = &r.spans[0];
        assert_eq!(span.name, "publish sdk.{tenant}.x");
        assert_eq!(span.kind, "SPAN_KIND_PRODUCER");
        assert_eq!(span.parent_id, "");
        assert_eq!(span.attributes["n"], "5");
        assert_eq!(span.resource["service.name"], "svc-x");
        assert_eq!(span.scope, "sdk");
        let metric = r.last_metric("messaging.client.sent.messages").unwrap();
        assert_eq!(metric.data_type, "Sum");
        assert_eq!(metric.points[0].attributes["sdk.tenant.id"], "acme");
        assert_eq!(metric.points[0].fields["Value"], "7");
        assert_eq!(metric.resource["service.name"], "svc-m");
        assert_eq!(r.logs[0].body, "hello: log");
        assert_eq!(r.logs[0].trace_id, "5b8e");
        assert_eq!(r.logs[0].attributes["k"], "v");
    }

    #[test]
    fn strips_colour_codes() {
        assert_eq!(strip_ansi("\u{1b}[2mhi\u{1b}[0m"), "hi");
    }
}
