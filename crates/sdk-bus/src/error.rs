//! Errors of the bus.

/// What can go wrong on the bus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// Connecting to NATS failed.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// The server list that was tried.
        url: String,
        /// The client's error.
        #[source]
        source: async_nats::ConnectError,
    },
    /// A publish could not be handed to the client.
    #[error("publish to {subject} failed: {source}")]
    Publish {
        /// The subject.
        subject: String,
        /// The client's error.
        #[source]
        source: async_nats::PublishError,
    },
    /// Subscribing failed.
    #[error("subscribe to {subject} failed: {source}")]
    Subscribe {
        /// The subject or pattern.
        subject: String,
        /// The client's error.
        #[source]
        source: async_nats::SubscribeError,
    },
    /// Flushing the connection failed.
    #[error("flush failed: {0}")]
    Flush(#[source] async_nats::client::FlushError),
}
