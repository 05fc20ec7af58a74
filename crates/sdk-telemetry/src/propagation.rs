//! W3C Trace Context and Baggage over any header map.

use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::BaggagePropagator;

/// A header map that trace context can be written into and read from. Implement it
/// for your transport's headers; `get` must match names case-insensitively.
pub trait HeaderCarrier {
    /// The value of `name`, matched case-insensitively.
    fn get_header(&self, name: &str) -> Option<&str>;
    /// Sets `name` to `value`, replacing any value under the same name.
    fn set_header(&mut self, name: &str, value: String);
    /// All header names.
    fn header_names(&self) -> Vec<&str>;
}

impl HeaderCarrier for Vec<(String, String)> {
    fn get_header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn set_header(&mut self, name: &str, value: String) {
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.push((name.to_owned(), value));
    }
    fn header_names(&self) -> Vec<&str> {
        self.iter().map(|(k, _)| k.as_str()).collect()
    }
}

impl HeaderCarrier for std::collections::HashMap<String, String> {
    fn get_header(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str).or_else(|| {
            self.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        })
    }
    fn set_header(&mut self, name: &str, value: String) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(name));
        self.insert(name.to_owned(), value);
    }
    fn header_names(&self) -> Vec<&str> {
        self.keys().map(String::as_str).collect()
    }
}

struct Inject<'a, C: ?Sized>(&'a mut C);
struct Extract<'a, C: ?Sized>(&'a C);

impl<C: HeaderCarrier + ?Sized> Injector for Inject<'_, C> {
    fn set(&mut self, key: &str, value: String) {
        self.0.set_header(key, value);
    }
}

impl<C: HeaderCarrier + ?Sized> Extractor for Extract<'_, C> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get_header(key)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.header_names()
    }
}

/// Trace Context plus Baggage (or the subset `OTEL_PROPAGATORS` names).
#[derive(Debug)]
pub struct Propagator {
    inner: TextMapCompositePropagator,
}

impl Default for Propagator {
    fn default() -> Self {
        Propagator::from_names(&["tracecontext", "baggage"])
    }
}

impl Propagator {
    /// From `OTEL_PROPAGATORS` names: `tracecontext`, `baggage`.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Propagator {
        let mut list: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
        for n in names {
            match n.as_ref() {
                "tracecontext" => list.push(Box::new(crate::traceparent::TraceContext::default())),
                "baggage" => list.push(Box::new(BaggagePropagator::new())),
                _ => {}
            }
        }
        Propagator {
            inner: TextMapCompositePropagator::new(list),
        }
    }

    /// Writes `cx` (trace context and baggage) into `carrier`.
    pub fn inject<C: HeaderCarrier + ?Sized>(&self, cx: &Context, carrier: &mut C) {
        self.inner.inject_context(cx, &mut Inject(carrier));
    }

    /// Reads a context from `carrier`; a missing or malformed header yields a context
    /// without a remote parent.
    pub fn extract<C: HeaderCarrier + ?Sized>(&self, carrier: &C) -> Context {
        self.inner.extract(&Extract(carrier))
    }

    /// As [`Propagator::extract`], on top of `cx`.
    pub fn extract_with<C: HeaderCarrier + ?Sized>(&self, cx: &Context, carrier: &C) -> Context {
        self.inner.extract_with_context(cx, &Extract(carrier))
    }

    pub(crate) fn into_inner(self) -> TextMapCompositePropagator {
        self.inner
    }
}

/// The baggage key that carries the tenant.
pub const TENANT_BAGGAGE_KEY: &str = "sdk.tenant.id";

/// `cx` with the tenant id in its baggage, so it travels with every hop.
pub fn with_tenant(cx: &Context, tenant: &str) -> Context {
    cx.with_baggage([KeyValue::new(TENANT_BAGGAGE_KEY, tenant.to_owned())])
}

/// The tenant id carried in `cx`'s baggage.
pub fn tenant_of(cx: &Context) -> Option<String> {
    cx.baggage()
        .get(TENANT_BAGGAGE_KEY)
        .map(|v| v.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };

    #[test]
    fn inject_then_extract_keeps_the_trace_and_the_tenant() {
        let span = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let cx = with_tenant(
            &Context::new().with_remote_span_context(span.clone()),
            "acme",
        );
        let p = Propagator::default();
        let mut headers: Vec<(String, String)> = Vec::new();
        p.inject(&cx, &mut headers);
        assert_eq!(
            headers.get_header("traceparent"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        // Names in another case still match.
        let upper: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_uppercase(), v.clone()))
            .collect();
        let back = p.extract(&upper);
        assert_eq!(back.span().span_context().trace_id(), span.trace_id());
        assert_eq!(tenant_of(&back).as_deref(), Some("acme"));
    }

    #[test]
    fn a_malformed_traceparent_yields_no_parent() {
        let headers = vec![("traceparent".to_owned(), "00-zz-00-01".to_owned())];
        let cx = Propagator::default().extract(&headers);
        assert!(!cx.span().span_context().is_valid());
    }
}
