//! What the exporters could not deliver, counted per signal.
//!
//! OpenTelemetry's batch processors log a failed export and go on; their `shutdown`
//! reports a timeout, but not a final flush that failed. Every exporter is wrapped in
//! [`Counted`], so a loss is a number the application can read
//! ([`crate::Telemetry::export_losses`]) and that `shutdown` reports as an error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::config::Signal;

/// What could not be exported since [`crate::Telemetry::init`]: each failed export
/// is also logged by OpenTelemetry (at most a few times, not once per item).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportLosses {
    /// Spans in exports that failed.
    pub spans: u64,
    /// Log records in exports that failed.
    pub log_records: u64,
    /// Metric exports that failed (each carries every instrument's current points).
    pub metric_exports: u64,
}

impl ExportLosses {
    /// Nothing was lost.
    pub fn is_empty(&self) -> bool {
        *self == ExportLosses::default()
    }

    /// The count for `signal`.
    pub(crate) fn of(&self, signal: Signal) -> u64 {
        match signal {
            Signal::Traces => self.spans,
            Signal::Metrics => self.metric_exports,
            Signal::Logs => self.log_records,
        }
    }
}

/// `n` of what `signal` counts, in words: `3 spans`, `1 metric collection`.
pub(crate) fn items(signal: Signal, n: u64) -> String {
    let (one, many) = match signal {
        Signal::Traces => ("span", "spans"),
        Signal::Metrics => ("metric collection", "metric collections"),
        Signal::Logs => ("log record", "log records"),
    };
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The shared tally, written by the exporter wrappers.
#[derive(Debug, Default)]
pub(crate) struct Losses {
    spans: AtomicU64,
    log_records: AtomicU64,
    metric_exports: AtomicU64,
    /// The text of each signal's latest failure, for the shutdown error.
    last: Mutex<[Option<String>; 3]>,
}

impl Losses {
    pub(crate) fn snapshot(&self) -> ExportLosses {
        ExportLosses {
            spans: self.spans.load(Ordering::Acquire),
            log_records: self.log_records.load(Ordering::Acquire),
            metric_exports: self.metric_exports.load(Ordering::Acquire),
        }
    }

    /// The text of `signal`'s latest failure, if any.
    pub(crate) fn last_error(&self, signal: Signal) -> Option<String> {
        self.last
            .lock()
            .ok()
            .and_then(|last| last.get(signal.index()).cloned().flatten())
    }

    fn record(&self, signal: Signal, n: u64, result: &OTelSdkResult) {
        if let Err(e) = result {
            let counter = match signal {
                Signal::Traces => &self.spans,
                Signal::Metrics => &self.metric_exports,
                Signal::Logs => &self.log_records,
            };
            counter.fetch_add(n, Ordering::AcqRel);
            if let Ok(mut last) = self.last.lock()
                && let Some(slot) = last.get_mut(signal.index())
            {
                *slot = Some(e.to_string());
            }
        }
    }
}

/// An exporter whose failed exports are counted in [`Losses`].
pub(crate) struct Counted<E> {
    inner: E,
    losses: Arc<Losses>,
}

impl<E> Counted<E> {
    pub(crate) fn new(inner: E, losses: &Arc<Losses>) -> Counted<E> {
        Counted {
            inner,
            losses: Arc::clone(losses),
        }
    }
}

impl<E> std::fmt::Debug for Counted<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted").finish_non_exhaustive()
    }
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let result = self.inner.export(batch).await;
        self.losses.record(Signal::Traces, n, &result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: LogExporter> LogExporter for Counted<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let n = batch.iter().count() as u64;
        let result = self.inner.export(batch).await;
        self.losses.record(Signal::Logs, n, &result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn event_enabled(
        &self,
        level: opentelemetry::logs::Severity,
        target: &str,
        name: Option<&str>,
    ) -> bool {
        self.inner.event_enabled(level, target, name)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: PushMetricExporter> PushMetricExporter for Counted<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        self.losses.record(Signal::Metrics, 1, &result);
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}
