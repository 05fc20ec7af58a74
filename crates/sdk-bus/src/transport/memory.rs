//! The in-process transport: the same semantics as core NATS, inside one process.
//!
//! Wildcards, queue groups (one member per group gets each message), request-reply
//! with no-responders and timeouts, headers, and bounded subscriber buffers that drop
//! (and report) when full, as a NATS slow consumer does. Several buses can share one
//! router, as several connections share one server; closing one closes only its
//! own subscriptions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::RawMessage;
use crate::RequestError;
use crate::events::{BusEvent, Monitor};
use crate::subject::pattern_matches;

#[derive(Debug)]
struct Entry {
    id: u64,
    connection: u64,
    pattern: String,
    group: Option<String>,
    tx: mpsc::Sender<RawMessage>,
    monitor: Arc<Monitor>,
}

/// What all connections of one in-process "server" share.
#[derive(Debug, Default)]
struct Router {
    entries: Mutex<Vec<Entry>>,
    next_id: AtomicU64,
    round_robin: AtomicUsize,
}

/// One connection to an in-process router.
#[derive(Debug)]
pub(crate) struct MemoryTransport {
    router: Arc<Router>,
    connection: u64,
    monitor: Arc<Monitor>,
    closed: AtomicBool,
}

/// Removes its entry from the router when dropped.
#[derive(Debug)]
pub(crate) struct MemorySubscription {
    rx: mpsc::Receiver<RawMessage>,
    id: u64,
    router: Arc<Router>,
}

impl MemorySubscription {
    pub(crate) async fn next(&mut self) -> Option<RawMessage> {
        self.rx.recv().await
    }

    /// No new messages; the buffered ones are still handed out.
    pub(crate) fn stop(&mut self) {
        self.router.remove(|e| e.id == self.id);
        self.rx.close();
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        self.router.remove(|e| e.id == self.id);
    }
}

impl Router {
    fn remove(&self, which: impl Fn(&Entry) -> bool) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|e| !which(e));
        }
    }
}

impl MemoryTransport {
    /// A connection to a new router.
    pub(crate) fn new(monitor: Arc<Monitor>) -> MemoryTransport {
        MemoryTransport {
            router: Arc::default(),
            connection: 0,
            monitor,
            closed: AtomicBool::new(false),
        }
    }

    /// Another connection to the same router.
    pub(crate) fn peer(&self, monitor: Arc<Monitor>) -> MemoryTransport {
        MemoryTransport {
            router: Arc::clone(&self.router),
            connection: self.router.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            monitor,
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn subscribe(
        &self,
        pattern: &str,
        group: Option<&str>,
        capacity: usize,
    ) -> MemorySubscription {
        let (tx, rx) = mpsc::channel(capacity);
        let id = self.router.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut entries) = self.router.entries.lock() {
            entries.push(Entry {
                id,
                connection: self.connection,
                pattern: pattern.to_owned(),
                group: group.map(str::to_owned),
                tx,
                monitor: Arc::clone(&self.monitor),
            });
        }
        MemorySubscription {
            rx,
            id,
            router: Arc::clone(&self.router),
        }
    }

    /// Delivers `msg` to every plain subscriber whose pattern matches and to one member
    /// of each matching queue group. Returns how many subscribers took it. A full
    /// subscriber drops it and reports a slow consumer on its own bus.
    pub(crate) fn publish(&self, msg: RawMessage) -> usize {
        let Ok(mut entries) = self.router.entries.lock() else {
            return 0;
        };
        entries.retain(|e| !e.tx.is_closed());
        let mut groups: HashMap<&str, Vec<&Entry>> = HashMap::new();
        let mut targets: Vec<&Entry> = Vec::new();
        for e in entries
            .iter()
            .filter(|e| pattern_matches(&e.pattern, &msg.subject))
        {
            match &e.group {
                Some(g) => groups.entry(g.as_str()).or_default().push(e),
                None => targets.push(e),
            }
        }
        for members in groups.values() {
            let n = self.router.round_robin.fetch_add(1, Ordering::Relaxed);
            if let Some(member) = members.get(n % members.len()) {
                targets.push(member);
            }
        }
        let mut delivered = 0;
        for target in targets {
            match target.tx.try_send(msg.clone()) {
                Ok(()) => delivered += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // As a NATS slow consumer: the message is dropped, and reported.
                    delivered += 1;
                    Monitor::bump(&target.monitor.counters.slow_consumers);
                    target.monitor.emit(BusEvent::SlowConsumer {
                        subscription: target.pattern.clone(),
                    });
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        delivered
    }

    /// Publishes `msg` with a reply inbox `<inbox_prefix>.<id>` and waits for one reply.
    pub(crate) async fn request(
        &self,
        mut msg: RawMessage,
        inbox_prefix: &str,
        timeout: Duration,
    ) -> Result<RawMessage, RequestError> {
        if self.is_closed() {
            return Err(RequestError::Closed);
        }
        let inbox = format!("{inbox_prefix}.{}", nuid::next());
        let mut sub = self.subscribe(&inbox, None, 1);
        msg.reply = Some(inbox);
        let subject = msg.subject.clone();
        if self.publish(msg) == 0 {
            return Err(RequestError::NoResponders { subject });
        }
        match tokio::time::timeout(timeout, sub.next()).await {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(RequestError::Closed),
            Err(_) => Err(RequestError::Timeout {
                subject,
                after: timeout,
            }),
        }
    }

    /// Closes this connection: its subscriptions end once their buffers are read.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.router.remove(|e| e.connection == self.connection);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}
