//! Carrying the trace context into spawned tasks: the Rust answer to contextvars and
//! thread-locals. A tokio task does not inherit the spawner's context, so a task
//! spawned plainly starts a new trace; `spawn_in_context` carries both the
//! OpenTelemetry context and the `tracing` span along.

use std::future::Future;

use opentelemetry::context::FutureExt as _;
use tracing::Instrument as _;

/// `tokio::spawn` that keeps the caller's OpenTelemetry context and `tracing` span.
pub fn spawn_in_context<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let cx = opentelemetry::Context::current();
    let span = tracing::Span::current();
    tokio::spawn(future.instrument(span).with_context(cx))
}
