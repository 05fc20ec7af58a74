//! JetStream: durable streams, at-least-once processing with retries, backoff and
//! dead letters, per-workflow ordering, workflow state in a key-value bucket, and
//! publish-side de-duplication scoped by tenant.
//!
//! The modules: [`stream`] declares streams, [`publish`] stores messages,
//! [`consumer`] processes them, [`dead_letter`] lists and replays what failed, and
//! [`kv`] keeps workflow state and processed ids.

pub mod consumer;
pub mod dead_letter;
pub mod kv;
pub mod publish;
pub mod stream;

use async_nats::jetstream;

use crate::{Bus, BusError};

/// JetStream on a bus connection.
#[derive(Debug, Clone)]
pub struct JetStream {
    bus: Bus,
    context: jetstream::Context,
}

impl Bus {
    /// JetStream on this connection. Call it inside a tokio runtime (the context
    /// starts a task that collects publish acks).
    ///
    /// # Errors
    /// [`BusError::Unsupported`] on the in-process transport or outside a tokio
    /// runtime.
    pub fn jetstream(&self) -> Result<JetStream, BusError> {
        let client = self.nats_client().ok_or(BusError::Unsupported {
            feature: "JetStream",
            transport: "in-process",
        })?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(BusError::Unsupported {
                feature: "JetStream outside a tokio runtime",
                transport: "nats",
            });
        }
        let context = jetstream::ContextBuilder::new()
            .timeout(self.config().request_timeout())
            .build(client.clone());
        Ok(JetStream {
            bus: self.clone(),
            context,
        })
    }
}

impl JetStream {
    /// The bus this runs on.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }
}

/// A JetStream failure, with the client's error as its source.
pub(crate) fn js_error(operation: &'static str, e: impl Into<crate::Cause>) -> BusError {
    BusError::JetStream {
        operation,
        source: e.into(),
    }
}
