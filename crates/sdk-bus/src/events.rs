//! Connection events and counters: nothing is dropped without a trace.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::broadcast;

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusEvent {
    /// The first connection is up.
    Connected,
    /// The connection dropped; the client is reconnecting.
    Disconnected,
    /// The connection is back; subscriptions were restored.
    Reconnected,
    /// The server is shutting down (lame duck mode); the client will move.
    LameDuck,
    /// A subscriber fell behind and messages were dropped.
    SlowConsumer {
        /// The subscription (NATS sid, or the in-process pattern).
        subscription: String,
    },
    /// The server refused an operation under this connection's permissions.
    PermissionViolation {
        /// `publish to` or `subscribe to`.
        operation: &'static str,
        /// The subject.
        subject: String,
    },
    /// A message was refused before any handler saw it.
    Rejected {
        /// The subject it arrived on.
        subject: String,
        /// The error code sent back (403 for a tenant mismatch, 400 for a bad envelope).
        code: u16,
        /// Why.
        reason: String,
    },
    /// A handler failed on a message that had no reply subject; it was dead-lettered.
    DeadLettered {
        /// The original subject.
        subject: String,
        /// The handler's error.
        reason: String,
    },
    /// A reply, error reply or dead letter could not be sent.
    SettleFailed {
        /// The subject of the message being settled.
        subject: String,
        /// Why.
        reason: String,
    },
    /// Another error the server reported.
    ServerError(String),
    /// An error inside the client.
    ClientError(String),
    /// The connection is closed for good.
    Closed,
}

/// A snapshot of the bus counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusStats {
    /// Messages published.
    pub published: u64,
    /// Messages handed to subscribers.
    pub delivered: u64,
    /// Messages refused because `ce-tenantid` differed from the subject's tenant.
    pub tenant_mismatches: u64,
    /// Messages refused for another reason (bad envelope, bad subject).
    pub rejected: u64,
    /// Slow-consumer events (each means at least one dropped message).
    pub slow_consumers: u64,
    /// Reconnects after a disconnect.
    pub reconnects: u64,
    /// Operations the server refused for permissions.
    pub permission_violations: u64,
    /// Messages sent to a dead-letter subject.
    pub dead_lettered: u64,
    /// Replies, error replies or dead letters that could not be sent.
    pub settle_failures: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) tenant_mismatches: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) slow_consumers: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) permission_violations: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) settle_failures: AtomicU64,
    /// Publishes made since the connection dropped.
    pub(crate) buffered_while_down: AtomicUsize,
}

/// State shared by a bus, its transport and its subscriptions.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) events: broadcast::Sender<BusEvent>,
    pub(crate) counters: Counters,
}

impl Shared {
    pub(crate) fn new() -> Shared {
        Shared {
            events: broadcast::channel(1024).0,
            counters: Counters::default(),
        }
    }

    pub(crate) fn emit(&self, event: BusEvent) {
        // No receiver is fine: the counters still hold the fact.
        let _ = self.events.send(event);
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> BusStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BusStats {
            published: get(&c.published),
            delivered: get(&c.delivered),
            tenant_mismatches: get(&c.tenant_mismatches),
            rejected: get(&c.rejected),
            slow_consumers: get(&c.slow_consumers),
            reconnects: get(&c.reconnects),
            permission_violations: get(&c.permission_violations),
            dead_lettered: get(&c.dead_lettered),
            settle_failures: get(&c.settle_failures),
        }
    }
}

/// Parses the server's `Permissions Violation for Publish to "x"` text.
pub(crate) fn permission_violation(text: &str) -> Option<(&'static str, String)> {
    let lower = text.to_ascii_lowercase();
    let idx = lower.find("permissions violation for ")?;
    let rest = &lower[idx + "permissions violation for ".len()..];
    let operation = if rest.starts_with("publish") {
        "publish to"
    } else if rest.starts_with("subscription") {
        "subscribe to"
    } else {
        return None;
    };
    // Take the quoted subject from the original text (subjects are case-sensitive).
    let original = &text[idx..];
    let start = original.find('"')? + 1;
    let end = original[start..].find('"')? + start;
    Some((operation, original[start..end].to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_violations_are_parsed() {
        assert_eq!(
            permission_violation("Permissions Violation for Publish to \"sdk.Beta.x\""),
            Some(("publish to", "sdk.Beta.x".to_owned()))
        );
        assert_eq!(
            permission_violation(
                "permissions violation for subscription to \"sdk.b.>\" using queue \"q\""
            ),
            Some(("subscribe to", "sdk.b.>".to_owned()))
        );
        assert_eq!(permission_violation("authorization violation"), None);
    }
}
