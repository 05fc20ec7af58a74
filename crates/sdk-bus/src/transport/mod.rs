//! The one interface the bus talks to: publish, subscribe, request, flush, drain,
//! status and `max_payload`, over NATS or inside the process.

pub(crate) mod memory;
pub(crate) mod mux;
pub(crate) mod nats;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::events::Monitor;
use crate::{BusConfig, BusError, Headers, PublishError, RequestError, SubscribeError};

use memory::{MemorySubscription, MemoryTransport};

/// A message as a transport moves it: subject, optional reply subject, headers, payload.
#[derive(Debug, Clone)]
pub(crate) struct RawMessage {
    pub(crate) subject: String,
    pub(crate) reply: Option<String>,
    pub(crate) headers: Headers,
    pub(crate) payload: Bytes,
}

/// The state of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionStatus {
    /// Connected (always, for the in-process transport until it is drained).
    Connected,
    /// Connecting for the first time.
    Connecting,
    /// Disconnected and reconnecting.
    Disconnected,
    /// Drained or closed.
    Closed,
}

/// What the server said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerDetails {
    /// `nats` or `in-process`.
    pub transport: &'static str,
    /// The server version, e.g. `2.15.1`.
    pub version: String,
    /// The server name.
    pub name: String,
    /// The host the client is connected to (`127.0.0.1`), empty in-process.
    pub host: String,
    /// The port the client is connected to; 0 in-process.
    pub port: u16,
    /// The largest message (headers plus payload) the server accepts.
    pub max_payload: usize,
}

#[derive(Debug)]
pub(crate) enum Transport {
    Nats(async_nats::Client),
    Memory(MemoryTransport),
}

/// A subscription as the transport hands it out.
#[derive(Debug)]
pub(crate) enum RawSubscription {
    Nats(async_nats::Subscriber),
    Memory(MemorySubscription),
}

impl RawSubscription {
    pub(crate) async fn next(&mut self) -> Option<RawMessage> {
        match self {
            RawSubscription::Nats(sub) => {
                futures::StreamExt::next(sub).await.map(nats::raw_message)
            }
            RawSubscription::Memory(sub) => sub.next().await,
        }
    }

    /// Stops new messages; those already buffered are still handed out, then `None`.
    pub(crate) async fn stop(&mut self) {
        match self {
            RawSubscription::Nats(sub) => {
                // An error means the connection is gone: nothing more can arrive.
                sub.unsubscribe().await.ok();
            }
            RawSubscription::Memory(sub) => sub.stop(),
        }
    }
}

impl Transport {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Transport::Nats(_) => "nats",
            Transport::Memory(_) => "in-process",
        }
    }

    pub(crate) fn status(&self) -> ConnectionStatus {
        match self {
            Transport::Nats(c) => match c.connection_state() {
                async_nats::connection::State::Connected => ConnectionStatus::Connected,
                async_nats::connection::State::Pending => ConnectionStatus::Connecting,
                async_nats::connection::State::Disconnected => ConnectionStatus::Disconnected,
            },
            Transport::Memory(m) if m.is_closed() => ConnectionStatus::Closed,
            Transport::Memory(_) => ConnectionStatus::Connected,
        }
    }

    pub(crate) fn server_details(&self, config: &BusConfig) -> ServerDetails {
        match self {
            Transport::Nats(c) => {
                let info = c.server_info();
                ServerDetails {
                    transport: "nats",
                    version: info.version,
                    name: info.server_name,
                    host: info.host,
                    port: info.port,
                    max_payload: c.max_payload(),
                }
            }
            Transport::Memory(_) => ServerDetails {
                transport: "in-process",
                version: env!("CARGO_PKG_VERSION").to_owned(),
                name: "in-process".to_owned(),
                host: String::new(),
                port: 0,
                max_payload: config.max_payload,
            },
        }
    }

    pub(crate) fn max_payload(&self, config: &BusConfig) -> usize {
        match self {
            Transport::Nats(c) => c.max_payload(),
            Transport::Memory(_) => config.max_payload,
        }
    }

    /// Sends one message. The size was checked by the caller.
    pub(crate) async fn publish(
        &self,
        msg: RawMessage,
        config: &BusConfig,
        monitor: &Monitor,
    ) -> Result<(), PublishError> {
        match self {
            Transport::Nats(client) => nats::publish(client, msg, config, monitor).await,
            Transport::Memory(router) => {
                if router.is_closed() {
                    return Err(PublishError::Closed);
                }
                router.publish(msg);
                Ok(())
            }
        }
    }

    /// Subscribes; on NATS it returns once the server has the subscription, proven
    /// by a probe through `probe_inbox`.
    pub(crate) async fn subscribe(
        &self,
        pattern: &str,
        group: Option<&str>,
        config: &BusConfig,
        monitor: &Monitor,
        probe_inbox: &str,
    ) -> Result<RawSubscription, SubscribeError> {
        let mut subs = self
            .subscribe_many(&[(pattern, group)], config, monitor, probe_inbox)
            .await?;
        subs.pop().ok_or(SubscribeError::Closed)
    }

    /// Subscribes to every `(pattern, group)`, in order, then confirms them all with
    /// one probe: the server handles a connection's messages in order, so once the
    /// probe is back it holds every subscription (or has refused it). On the first
    /// failure the subscriptions made so far are dropped, which unsubscribes them.
    pub(crate) async fn subscribe_many(
        &self,
        wanted: &[(&str, Option<&str>)],
        config: &BusConfig,
        monitor: &Monitor,
        probe_inbox: &str,
    ) -> Result<Vec<RawSubscription>, SubscribeError> {
        let mut subs = Vec::with_capacity(wanted.len());
        match self {
            Transport::Nats(c) => {
                for (pattern, group) in wanted {
                    subs.push(RawSubscription::Nats(
                        nats::subscribe(c, pattern, *group).await?,
                    ));
                }
                let limit = config.request_timeout.min(PROBE_LIMIT);
                if !nats::round_trip(c, probe_inbox, limit).await {
                    let what = match wanted {
                        [(one, _)] => format!("the subscription to {one}"),
                        many => format!("{} subscriptions", many.len()),
                    };
                    unconfirmed(monitor, what, limit);
                }
            }
            Transport::Memory(router) => {
                for (pattern, group) in wanted {
                    if router.is_closed() {
                        return Err(SubscribeError::Closed);
                    }
                    subs.push(RawSubscription::Memory(router.subscribe(
                        pattern,
                        *group,
                        config.subscription_capacity,
                    )));
                }
            }
        }
        Ok(subs)
    }

    /// Sends a request whose reply comes back to a fresh inbox under `inbox_prefix`,
    /// and waits for one reply.
    pub(crate) async fn request(
        &self,
        msg: RawMessage,
        inbox_prefix: &str,
        timeout: Duration,
    ) -> Result<RawMessage, RequestError> {
        match self {
            Transport::Nats(c) => {
                let inbox = format!("{inbox_prefix}.{}", nuid::next());
                nats::request(c, msg, Some(inbox), timeout).await
            }
            Transport::Memory(router) => router.request(msg, inbox_prefix, timeout).await,
        }
    }

    pub(crate) async fn flush(&self) -> Result<(), BusError> {
        match self {
            Transport::Nats(c) => c.flush().await.map_err(|e| BusError::Connection {
                operation: "flush",
                source: Box::new(e),
            }),
            Transport::Memory(_) => Ok(()),
        }
    }

    /// A message through the server and back: once it returns, every message the
    /// server routed to this connection before it has been read.
    pub(crate) async fn probe(
        &self,
        inbox_prefix: &str,
        limit: Duration,
        monitor: &Monitor,
        what: &str,
    ) {
        if let Transport::Nats(c) = self
            && !nats::round_trip(c, inbox_prefix, limit).await
        {
            unconfirmed(monitor, what.to_owned(), limit);
        }
    }

    /// Flushes and closes the connection.
    pub(crate) async fn close(&self, monitor: &Monitor) -> Result<(), BusError> {
        match self {
            Transport::Nats(c) => c.drain().await.map_err(|e| BusError::Connection {
                operation: "drain",
                source: Box::new(e),
            }),
            Transport::Memory(router) => {
                router.close();
                monitor.emit(crate::BusEvent::Closed);
                Ok(())
            }
        }
    }

    pub(crate) fn memory_peer(&self, monitor: Arc<Monitor>) -> Option<MemoryTransport> {
        match self {
            Transport::Memory(m) => Some(m.peer(monitor)),
            Transport::Nats(_) => None,
        }
    }

    pub(crate) fn nats_client(&self) -> Option<&async_nats::Client> {
        match self {
            Transport::Nats(c) => Some(c),
            Transport::Memory(_) => None,
        }
    }
}

/// The longest a subscribe waits for its probe.
const PROBE_LIMIT: Duration = Duration::from_secs(2);

/// Reports a probe the server did not answer in time: what it guarded is not proven
/// (a subscription may not be in place yet; a drain may not have read everything).
fn unconfirmed(monitor: &Monitor, what: String, after: Duration) {
    tracing::warn!(
        what = %what,
        ?after,
        "the server did not confirm in time (disconnected?); messages published meanwhile may be missed"
    );
    monitor.emit(crate::BusEvent::Unconfirmed { what, after });
}
