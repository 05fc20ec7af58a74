//! `sdk_bus::Headers` as a carrier for `sdk_telemetry` propagation. Neither crate
//! knows the other, so the adapter lives here.

use sdk_bus::{Bus, Headers};
use sdk_telemetry::HeaderCarrier;

/// Writes trace context into bus headers. An empty value is not written (an empty
/// `tracestate` says nothing); a value the headers refuse is kept in `refused` and
/// reported with [`Inject::report`], never dropped silently.
#[derive(Debug)]
pub struct Inject<'a> {
    headers: &'a mut Headers,
    refused: Vec<(String, sdk_bus::HeaderError)>,
}

impl<'a> Inject<'a> {
    /// A carrier that writes into `headers`.
    pub fn new(headers: &'a mut Headers) -> Inject<'a> {
        Inject {
            headers,
            refused: Vec::new(),
        }
    }

    /// Counts and reports each refused header on `bus`.
    pub fn report(self, bus: &Bus) {
        for (name, error) in &self.refused {
            bus.report_header_failure(name, error);
        }
    }
}

/// Reads trace context from bus headers (names matched in any case).
#[derive(Debug)]
pub struct Extract<'a>(pub &'a Headers);

impl HeaderCarrier for Inject<'_> {
    fn get_header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
    fn set_header(&mut self, name: &str, value: String) {
        if value.is_empty() {
            return;
        }
        // A value that cannot be sent is not sent broken: it is kept for the report.
        if let Err(e) = self.headers.insert_owned(name, value) {
            self.refused.push((name.to_owned(), e));
        }
    }
    fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(k, _)| k).collect()
    }
}

impl HeaderCarrier for Extract<'_> {
    fn get_header(&self, name: &str) -> Option<&str> {
        self.0.get(name)
    }
    /// Reading only: writes are ignored.
    fn set_header(&mut self, _name: &str, _value: String) {}
    fn header_names(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_and_empty_headers_are_never_sent_and_refusals_are_counted() {
        let bus = Bus::in_process(sdk_bus::BusConfig::default());
        let mut headers = Headers::new();
        let mut carrier = Inject::new(&mut headers);
        carrier.set_header("traceparent", "00-abc\r\nX-Evil: 1".into());
        carrier.set_header("tracestate", String::new());
        carrier.set_header("baggage", "sdk.tenant=acme".into());
        carrier.report(&bus);
        assert_eq!(headers.get("traceparent"), None);
        assert_eq!(headers.get("tracestate"), None);
        assert_eq!(headers.get("baggage"), Some("sdk.tenant=acme"));
        assert_eq!(bus.stats().header_failures, 1);
    }
}
