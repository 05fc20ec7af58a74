//! `sdk_bus::Headers` as a carrier for `sdk_telemetry` propagation. Neither crate
//! knows the other, so the adapter lives here.

use sdk_bus::Headers;
use sdk_telemetry::HeaderCarrier;

/// Writes trace context into bus headers.
#[derive(Debug)]
pub struct Inject<'a>(pub &'a mut Headers);

/// Reads trace context from bus headers (names matched in any case).
#[derive(Debug)]
pub struct Extract<'a>(pub &'a Headers);

impl HeaderCarrier for Inject<'_> {
    fn get_header(&self, name: &str) -> Option<&str> {
        self.0.get(name)
    }
    fn set_header(&mut self, name: &str, value: String) {
        // Propagators write `traceparent`, `tracestate` and `baggage`, whose values
        // are printable ASCII; a value that is not is skipped rather than sent broken.
        let _ = self.0.insert(name, &value);
    }
    fn header_names(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k).collect()
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
