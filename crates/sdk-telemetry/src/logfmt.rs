//! Console output that shows `trace_id` and `span_id` next to every event.

use std::fmt;

use opentelemetry::trace::TraceContextExt as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::LogFormat;

/// The console layer for `format`, or a layer that prints nothing for `Off`.
pub(crate) fn layer<S>(format: LogFormat) -> Option<impl tracing_subscriber::Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match format {
        LogFormat::Off => None,
        other => Some(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .event_format(TraceFormat {
                    json: other == LogFormat::Json,
                }),
        ),
    }
}

/// Formats events as plain text or JSON, with the active OpenTelemetry ids.
#[derive(Debug, Clone, Copy)]
pub struct TraceFormat {
    json: bool,
}

impl TraceFormat {
    /// One human-readable line per event: `time LEVEL target trace_id=… span_id=…: message fields`.
    pub fn plain() -> TraceFormat {
        TraceFormat { json: false }
    }

    /// One JSON object per event, with `trace_id` and `span_id` fields.
    pub fn json() -> TraceFormat {
        TraceFormat { json: true }
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.rest
                .push((field.name().to_owned(), format!("{value:?}")));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.rest.push((field.name().to_owned(), value.to_owned()));
        }
    }
}

impl<S, N> FormatEvent<S, N> for TraceFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The OpenTelemetry layer attaches the span's context on enter, so the
        // current context is the one the event belongs to.
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let sc = span.span_context();
        let (trace_id, span_id) = if sc.is_valid() {
            (sc.trace_id().to_string(), sc.span_id().to_string())
        } else {
            (String::new(), String::new())
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let time = humantime_now();
        if self.json {
            let mut obj = serde_json::Map::new();
            obj.insert("timestamp".into(), time.into());
            obj.insert("level".into(), meta.level().as_str().into());
            obj.insert("target".into(), meta.target().into());
            obj.insert("message".into(), fields.message.into());
            for (k, v) in fields.rest {
                obj.insert(k, v.into());
            }
            if !trace_id.is_empty() {
                obj.insert("trace_id".into(), trace_id.into());
                obj.insert("span_id".into(), span_id.into());
            }
            writeln!(writer, "{}", serde_json::Value::Object(obj))
        } else {
            write!(
                writer,
                "{time} {:>5} {}",
                meta.level().as_str(),
                meta.target()
            )?;
            if !trace_id.is_empty() {
                write!(writer, " trace_id={trace_id} span_id={span_id}")?;
            }
            write!(writer, ": {}", fields.message)?;
            for (k, v) in fields.rest {
                write!(writer, " {k}={v}")?;
            }
            writeln!(writer)
        }
    }
}

fn humantime_now() -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}
