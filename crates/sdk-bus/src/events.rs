//! Connection events and counters: nothing is dropped without a trace.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::broadcast;

/// What the server refused under the connection's permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Publishing to a subject.
    Publish,
    /// Subscribing to a subject or pattern.
    Subscribe,
}

impl Operation {
    /// `publish to` or `subscribe to`, as the error messages say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Publish => "publish to",
            Operation::Subscribe => "subscribe to",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A JetStream acknowledgement sent to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AckOperation {
    /// Done.
    Ack,
    /// Redeliver later.
    Nak,
    /// Never redeliver.
    Term,
    /// Still working: reset the ack wait.
    Progress,
}

impl AckOperation {
    /// `ack`, `nak`, `term` or `progress`.
    pub fn as_str(self) -> &'static str {
        match self {
            AckOperation::Ack => "ack",
            AckOperation::Nak => "nak",
            AckOperation::Term => "term",
            AckOperation::Progress => "progress",
        }
    }
}

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
        /// What was refused.
        operation: Operation,
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
    /// A reply was not sent because its reply subject is not an inbox of the
    /// request's tenant (`_INBOX.<tenant>.…`).
    ReplyRefused {
        /// The subject of the request.
        subject: String,
        /// The reply subject it named.
        reply: String,
    },
    /// A message was dead-lettered.
    DeadLettered {
        /// The original subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// A dead letter could not be stored; the message stays with its consumer and is
    /// tried again.
    DeadLetterFailed {
        /// The original subject.
        subject: String,
        /// Why the dead letter failed.
        reason: String,
    },
    /// A reply, error reply or dead letter could not be sent.
    SettleFailed {
        /// The subject of the message being settled.
        subject: String,
        /// Why.
        reason: String,
    },
    /// A JetStream ack, nak, term or progress could not be sent.
    AckFailed {
        /// The subject of the message.
        subject: String,
        /// Which acknowledgement.
        operation: AckOperation,
        /// Why.
        reason: String,
    },
    /// Pulling the next batch of a JetStream consumer failed; the consumer goes on.
    PullFailed {
        /// The durable name.
        consumer: String,
        /// Why.
        reason: String,
    },
    /// A header could not be written to an outgoing message, so it went without it.
    HeaderRefused {
        /// The header name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A handler ran past its timeout.
    HandlerTimedOut {
        /// The subject of the message.
        subject: String,
    },
    /// A request was answered 503 because every handler was busy and the queue full.
    Overloaded {
        /// The subject of the request.
        subject: String,
    },
    /// The server did not confirm, within `after`, what a probe guards: that it holds
    /// a new subscription, or, for a drain, that everything it routed here has been
    /// read. Disconnected, most likely; messages published meanwhile may be missed.
    Unconfirmed {
        /// What was not confirmed.
        what: String,
        /// How long the probe waited.
        after: std::time::Duration,
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
    /// Replies not sent because the reply subject was not the request tenant's inbox.
    pub refused_replies: u64,
    /// Messages stored as dead letters.
    pub dead_lettered: u64,
    /// Dead letters that could not be stored (the message was kept and retried).
    pub dead_letter_failures: u64,
    /// Replies, error replies or dead letters that could not be sent.
    pub settle_failures: u64,
    /// JetStream acks, naks, terms and progress acks that could not be sent.
    pub ack_failures: u64,
    /// Failed pulls of a JetStream consumer.
    pub pull_failures: u64,
    /// Headers that could not be written to an outgoing message.
    pub header_failures: u64,
    /// Handlers that ran past their timeout.
    pub handler_timeouts: u64,
    /// Requests answered 503 because the service was overloaded or draining.
    pub overloaded: u64,
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
    pub(crate) refused_replies: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) dead_letter_failures: AtomicU64,
    pub(crate) settle_failures: AtomicU64,
    pub(crate) ack_failures: AtomicU64,
    pub(crate) pull_failures: AtomicU64,
    pub(crate) header_failures: AtomicU64,
    pub(crate) handler_timeouts: AtomicU64,
    pub(crate) overloaded: AtomicU64,
    /// Publishes made since the connection dropped.
    pub(crate) buffered_while_down: AtomicUsize,
}

/// The events and counters of one bus, shared by its transport, subscriptions,
/// services and consumers.
#[derive(Debug)]
pub(crate) struct Monitor {
    pub(crate) events: broadcast::Sender<BusEvent>,
    pub(crate) counters: Counters,
}

impl Monitor {
    pub(crate) fn new() -> Monitor {
        Monitor {
            events: broadcast::channel(1024).0,
            counters: Counters::default(),
        }
    }

    /// Sends `event` to every listener. No listener is fine: the counters still hold
    /// the fact, so the send result carries nothing to report.
    pub(crate) fn emit(&self, event: BusEvent) {
        if self.events.receiver_count() > 0 {
            self.events.send(event).ok();
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts and reports a failed ack, nak, term or progress.
    pub(crate) fn ack_failed(&self, subject: &str, operation: AckOperation, reason: String) {
        Monitor::bump(&self.counters.ack_failures);
        self.emit(BusEvent::AckFailed {
            subject: subject.to_owned(),
            operation,
            reason,
        });
    }

    /// Counts and reports a reply, error reply or dead letter that could not be sent.
    pub(crate) fn settle_failed(&self, subject: &str, reason: String) {
        Monitor::bump(&self.counters.settle_failures);
        self.emit(BusEvent::SettleFailed {
            subject: subject.to_owned(),
            reason,
        });
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
            refused_replies: get(&c.refused_replies),
            dead_lettered: get(&c.dead_lettered),
            dead_letter_failures: get(&c.dead_letter_failures),
            settle_failures: get(&c.settle_failures),
            ack_failures: get(&c.ack_failures),
            pull_failures: get(&c.pull_failures),
            header_failures: get(&c.header_failures),
            handler_timeouts: get(&c.handler_timeouts),
            overloaded: get(&c.overloaded),
        }
    }
}

/// Parses the server's `Permissions Violation for Publish to "x"` text.
pub(crate) fn permission_violation(text: &str) -> Option<(Operation, String)> {
    let lower = text.to_ascii_lowercase();
    let idx = lower.find("permissions violation for ")?;
    let rest = &lower[idx + "permissions violation for ".len()..];
    let operation = if rest.starts_with("publish") {
        Operation::Publish
    } else if rest.starts_with("subscription") {
        Operation::Subscribe
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
            Some((Operation::Publish, "sdk.Beta.x".to_owned()))
        );
        assert_eq!(
            permission_violation(
                "permissions violation for subscription to \"sdk.b.>\" using queue \"q\""
            ),
            Some((Operation::Subscribe, "sdk.b.>".to_owned()))
        );
        assert_eq!(permission_violation("authorization violation"), None);
    }
}
