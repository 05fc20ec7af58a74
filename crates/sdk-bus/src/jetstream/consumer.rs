//! Durable consumers: at-least-once processing with retries, backoff, progress acks,
//! a handler timeout, dead letters, and per-workflow lanes.

use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::dead_letter::DeadLetterTarget;
use super::{JetStream, js_error};
use crate::events::{AckOperation, BusEvent, Monitor};
use crate::subscription::{inspect, report_refusal};
use crate::worker_pool::{Stopped, WorkerPool, guarded};
use crate::{BusError, Envelope, Headers, Subject};

/// How messages are consumed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerSpec {
    /// The stream.
    pub stream: String,
    /// The durable name: instances with the same name share the work.
    pub durable: String,
    /// Only messages on this subject pattern.
    pub filter_subject: Option<String>,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Deliveries before a failing message is dead-lettered. The SDK counts them:
    /// the server is told to redeliver without limit, so it never drops a message
    /// whose dead letter could not be stored yet.
    pub max_deliver: u32,
    /// Delays between attempts (the last one repeats).
    pub backoff: Vec<Duration>,
    /// Unacknowledged messages in flight, across instances.
    pub max_ack_pending: usize,
    /// Handlers running at once in this instance.
    pub concurrency: usize,
    /// How long a handler may run; past it the handler is cancelled, its progress
    /// acks stop, and the message is retried. `None`: no limit.
    pub handler_timeout: Option<Duration>,
    /// Process messages of one workflow in order (by the `<workflow_id>` token of
    /// `sdk.<t>.workflow.<workflow_id>.<event>`); different workflows in parallel.
    pub ordered_by_workflow: bool,
    /// The stream dead letters must land in. `None` (the default): whichever stream
    /// captures the dead-letter subject `sdk.<t>.dlq.…`, found per tenant, so
    /// per-tenant dead-letter streams work. Either way the dead letter counts only
    /// once that stream has stored it.
    pub dead_letter_stream: Option<String>,
}

impl ConsumerSpec {
    /// Defaults: ack wait 30 s, 5 deliveries, backoff 1 s, 5 s, 30 s, 1000 in flight,
    /// 16 handlers, a 5-minute handler timeout, dead letters to the stream that
    /// captures `sdk.<t>.dlq.>`.
    pub fn new(stream: &str, durable: &str) -> ConsumerSpec {
        ConsumerSpec {
            stream: stream.to_owned(),
            durable: durable.to_owned(),
            filter_subject: None,
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            backoff: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            max_ack_pending: 1000,
            concurrency: 16,
            handler_timeout: Some(Duration::from_secs(300)),
            ordered_by_workflow: false,
            dead_letter_stream: None,
        }
    }

    /// Only messages on `pattern`.
    pub fn filter_subject(mut self, pattern: &str) -> Self {
        self.filter_subject = Some(pattern.to_owned());
        self
    }
    /// The ack wait.
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }
    /// Deliveries before dead-lettering.
    pub fn max_deliver(mut self, deliveries: u32) -> Self {
        self.max_deliver = deliveries.max(1);
        self
    }
    /// Delays between attempts.
    pub fn backoff(mut self, delays: Vec<Duration>) -> Self {
        self.backoff = delays;
        self
    }
    /// Messages in flight across instances.
    pub fn max_ack_pending(mut self, messages: usize) -> Self {
        self.max_ack_pending = messages;
        self
    }
    /// Handlers at once.
    pub fn concurrency(mut self, handlers: usize) -> Self {
        self.concurrency = handlers.max(1);
        self
    }
    /// The handler timeout.
    pub fn handler_timeout(mut self, limit: Option<Duration>) -> Self {
        self.handler_timeout = limit;
        self
    }
    /// One workflow in order, workflows in parallel.
    pub fn ordered_by_workflow(mut self, ordered: bool) -> Self {
        self.ordered_by_workflow = ordered;
        self
    }
    /// The stream dead letters must land in.
    pub fn dead_letter_stream(mut self, stream: &str) -> Self {
        self.dead_letter_stream = Some(stream.to_owned());
        self
    }

    fn delay(&self, delivered: u64) -> Duration {
        let i = usize::try_from(delivered.saturating_sub(1)).unwrap_or(usize::MAX);
        self.backoff
            .get(i)
            .or_else(|| self.backoff.last())
            .copied()
            .unwrap_or(Duration::ZERO)
    }
}

/// What a handler decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Done: ack.
    Ack,
    /// Failed, may work later: nak with the backoff delay; dead-lettered once
    /// `max_deliver` is reached.
    Retry(String),
    /// Will never work: dead-letter now, then term.
    Reject(String),
}

/// How a handler's [`Outcome`] is settled with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settlement {
    /// Acked: done.
    Ack,
    /// Nak'd with the backoff delay: delivered again later.
    Nak,
    /// Stored as a dead letter, then terminated.
    DeadLetter,
}

impl Settlement {
    /// `ack`, `nak` or `dead_letter`.
    pub fn as_str(self) -> &'static str {
        match self {
            Settlement::Ack => "ack",
            Settlement::Nak => "nak",
            Settlement::DeadLetter => "dead_letter",
        }
    }
}

impl ConsumerSpec {
    /// How `outcome` on delivery `delivered` is settled: a retry is nak'd until
    /// `max_deliver` deliveries, then dead-lettered; a rejection is dead-lettered.
    pub fn settlement(&self, outcome: &Outcome, delivered: u64) -> Settlement {
        match outcome {
            Outcome::Ack => Settlement::Ack,
            Outcome::Retry(_) if delivered < u64::from(self.max_deliver) => Settlement::Nak,
            Outcome::Retry(_) | Outcome::Reject(_) => Settlement::DeadLetter,
        }
    }
}

/// One JetStream message, checked like a core delivery.
#[derive(Debug)]
#[non_exhaustive]
pub struct JetStreamDelivery {
    /// The subject.
    pub subject: Subject,
    /// The envelope.
    pub envelope: Envelope,
    /// Which delivery this is, from 1.
    pub delivered: u64,
    /// Its sequence in the stream.
    pub stream_sequence: u64,
}

/// A running consumer; it ends when aborted, or when its bus drains (after the
/// handlers it started have finished and been settled).
#[derive(Debug)]
pub struct Worker {
    task: tokio::task::JoinHandle<Result<(), BusError>>,
}

impl Worker {
    /// Stops taking messages; unacknowledged ones are redelivered elsewhere after
    /// `ack_wait`.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Waits for the worker to end.
    ///
    /// # Errors
    /// [`BusError::Closed`] when it was aborted or its task failed.
    pub async fn wait(self) -> Result<(), BusError> {
        self.task.await.unwrap_or(Err(BusError::Closed))
    }
}

impl JetStream {
    /// Starts a durable pull consumer that runs `handler` on each message; instances
    /// with the same `spec.durable` share the work.
    ///
    /// # Errors
    /// [`BusError::JetStream`] when the stream or consumer cannot be found or created.
    pub async fn consume<F, Fut>(&self, spec: ConsumerSpec, handler: F) -> Result<Worker, BusError>
    where
        F: Fn(JetStreamDelivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let stream = self
            .context
            .get_stream(&spec.stream)
            .await
            .map_err(|e| js_error("get stream", e))?;
        let config = consumer::pull::Config {
            durable_name: Some(spec.durable.clone()),
            filter_subject: spec.filter_subject.clone().unwrap_or_default(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            // The SDK counts deliveries and dead-letters at `max_deliver`; the server
            // must not give up first, or a message whose dead letter failed is lost.
            max_deliver: -1,
            max_ack_pending: i64::try_from(spec.max_ack_pending).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(&spec.durable, config)
            .await
            .map_err(|e| js_error("create consumer", e))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(spec.max_ack_pending.clamp(1, 256))
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| js_error("consume", e))?;
        let context = Arc::new(Consuming {
            js: self.clone(),
            dead_letters: DeadLetterTarget::new(spec.dead_letter_stream.clone()),
            spec,
        });
        let active = self.bus.activity();
        let task = tokio::spawn(async move {
            let _active = active;
            run(context, messages, Arc::new(handler)).await;
            Ok(())
        });
        Ok(Worker { task })
    }
}

/// What every handled message of one consumer needs.
#[derive(Debug)]
pub(crate) struct Consuming {
    pub(crate) js: JetStream,
    pub(crate) spec: ConsumerSpec,
    pub(crate) dead_letters: DeadLetterTarget,
}

type Lane = mpsc::UnboundedSender<(jetstream::Message, OwnedSemaphorePermit)>;

/// The most lanes an ordered worker runs: one task each, made up front.
const MAX_LANES: usize = 1024;

async fn run<F, Fut>(cx: Arc<Consuming>, mut messages: consumer::pull::Stream, handler: Arc<F>)
where
    F: Fn(JetStreamDelivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let monitor_bus = cx.js.bus.clone();
    let monitor = monitor_bus.monitor();
    let mut pool = WorkerPool::new(cx.spec.concurrency);
    // Per-workflow lanes: each runs its messages one after another. Their number is
    // fixed, so idle workflows hold no memory.
    let lanes: Vec<Lane> = if cx.spec.ordered_by_workflow {
        (0..cx.spec.concurrency.clamp(1, MAX_LANES))
            .map(|_| {
                let (tx, mut rx) =
                    mpsc::unbounded_channel::<(jetstream::Message, OwnedSemaphorePermit)>();
                let (cx, handler) = (Arc::clone(&cx), Arc::clone(&handler));
                let draining = cx.js.bus.draining_signal();
                pool.spawn(None, async move {
                    while let Some((msg, slot)) = rx.recv().await {
                        if *draining.borrow() {
                            // Queued but not started: back to the server at once,
                            // for the next worker, instead of running while the
                            // connection closes.
                            nak(&cx, &msg, Duration::ZERO).await;
                        } else {
                            handle(&cx, &*handler, msg).await;
                        }
                        drop(slot);
                    }
                });
                tx
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut draining = cx.js.bus.draining_signal();
    loop {
        let next = tokio::select! {
            next = messages.next() => next,
            // Stop pulling; what was fetched but not started is redelivered after
            // `ack_wait`, since it was never acked.
            _ = draining.wait_for(|d| *d) => break,
        };
        let msg = match next {
            None => break,
            Some(Ok(msg)) => msg,
            Some(Err(e)) => {
                // Heartbeat gaps and transient errors: counted, and the stream goes on.
                Monitor::bump(&monitor.counters.pull_failures);
                monitor.emit(BusEvent::PullFailed {
                    consumer: cx.spec.durable.clone(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let Some(slot) = pool.slot().await else {
            break;
        };
        if cx.spec.ordered_by_workflow {
            let lane = lane_of(&msg.subject, lanes.len());
            if let Some(tx) = lanes.get(lane)
                && let Err(mpsc::error::SendError((msg, _slot))) = tx.send((msg, slot))
            {
                // The lane has ended (only while shutting down): let it come back.
                nak(&cx, &msg, Duration::ZERO).await;
            }
        } else {
            let (cx, handler) = (Arc::clone(&cx), Arc::clone(&handler));
            pool.spawn(Some(slot), async move { handle(&cx, &*handler, msg).await });
        }
    }
    drop(lanes);
    pool.finish().await;
}

/// The lane of a workflow subject: the same workflow id always maps to the same lane.
fn lane_of(subject: &str, lanes: usize) -> usize {
    let workflow_id = subject.split('.').nth(3).unwrap_or(subject);
    let mut h = DefaultHasher::new();
    workflow_id.hash(&mut h);
    usize::try_from(h.finish() % u64::try_from(lanes.max(1)).unwrap_or(1)).unwrap_or(0)
}

async fn handle<F, Fut>(cx: &Consuming, handler: &F, msg: jetstream::Message)
where
    F: Fn(JetStreamDelivery) -> Fut + Send + Sync,
    Fut: Future<Output = Outcome> + Send,
{
    let (delivered, stream_sequence) = match msg.info() {
        Ok(info) => (
            u64::try_from(info.delivered).unwrap_or(1),
            info.stream_sequence,
        ),
        Err(_) => (1, 0),
    };
    let max = u64::from(cx.spec.max_deliver);
    let headers = Headers::from_nats(msg.headers.as_ref());
    let outcome = if delivered > max {
        // The handler had its `max_deliver` attempts; an earlier dead letter failed.
        Outcome::Retry(format!(
            "delivered {delivered} times, past max_deliver ({max}): an earlier attempt was not settled (its dead letter failed, or the process stopped)"
        ))
    } else {
        match inspect(msg.subject.as_str(), headers, msg.payload.clone()) {
            Err(refusal) => {
                report_refusal(cx.js.bus.monitor(), msg.subject.as_str(), &refusal);
                Outcome::Reject(refusal.reason)
            }
            Ok((subject, envelope)) => {
                Monitor::bump(&cx.js.bus.monitor().counters.delivered);
                let work = guarded(
                    || {
                        handler(JetStreamDelivery {
                            subject,
                            envelope,
                            delivered,
                            stream_sequence,
                        })
                    },
                    cx.spec.handler_timeout,
                );
                // Keep a long task's ack wait alive until it ends or times out.
                let outcome = tokio::select! {
                    outcome = work => outcome,
                    () = progress(cx, &msg) => Ok(Outcome::Retry("progress loop ended".into())),
                };
                match outcome {
                    Ok(outcome) => outcome,
                    Err(Stopped::Panicked) => Outcome::Retry("the handler panicked".into()),
                    Err(Stopped::TimedOut(limit)) => {
                        let monitor = cx.js.bus.monitor();
                        Monitor::bump(&monitor.counters.handler_timeouts);
                        monitor.emit(BusEvent::HandlerTimedOut {
                            subject: msg.subject.to_string(),
                        });
                        Outcome::Retry(format!("the handler ran past its timeout of {limit:?}"))
                    }
                }
            }
        }
    };
    settle(cx, &msg, delivered, outcome).await;
}

/// Sends a progress ack every half ack wait, forever; a failed one is counted.
async fn progress(cx: &Consuming, msg: &jetstream::Message) {
    let every = (cx.spec.ack_wait / 2).max(Duration::from_millis(100));
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = msg.ack_with(AckKind::Progress).await {
            cx.js.bus.monitor().ack_failed(
                msg.subject.as_str(),
                AckOperation::Progress,
                e.to_string(),
            );
        }
    }
}

async fn settle(cx: &Consuming, msg: &jetstream::Message, delivered: u64, outcome: Outcome) {
    let reason = match (cx.spec.settlement(&outcome, delivered), outcome) {
        (Settlement::Ack, _) => {
            acknowledge(cx, msg, AckKind::Ack, AckOperation::Ack).await;
            return;
        }
        (Settlement::Nak, _) => {
            nak(cx, msg, cx.spec.delay(delivered)).await;
            return;
        }
        (_, Outcome::Retry(reason)) => format!("gave up after {delivered} deliveries: {reason}"),
        (_, Outcome::Reject(reason)) => reason,
        // An ack is settled above; nothing else dead-letters.
        (_, Outcome::Ack) => return,
    };
    // Dead-letter first; only once the dead-letter stream has stored it is the
    // original terminated. If that fails, nak: the message comes back (the server
    // redelivers without limit) and the dead letter is tried again.
    match super::dead_letter::store(cx, msg, delivered, &reason).await {
        Ok(()) => acknowledge(cx, msg, AckKind::Term, AckOperation::Term).await,
        Err(e) => {
            let monitor = cx.js.bus.monitor();
            Monitor::bump(&monitor.counters.dead_letter_failures);
            monitor.emit(BusEvent::DeadLetterFailed {
                subject: msg.subject.to_string(),
                reason: e.to_string(),
            });
            nak(cx, msg, cx.spec.delay(delivered)).await;
        }
    }
}

async fn nak(cx: &Consuming, msg: &jetstream::Message, delay: Duration) {
    acknowledge(cx, msg, AckKind::Nak(Some(delay)), AckOperation::Nak).await;
}

async fn acknowledge(cx: &Consuming, msg: &jetstream::Message, kind: AckKind, op: AckOperation) {
    if let Err(e) = msg.ack_with(kind).await {
        cx.js
            .bus
            .monitor()
            .ack_failed(msg.subject.as_str(), op, e.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_always_maps_to_the_same_lane() {
        let a = lane_of("sdk.acme.workflow.wf-1.step1", 8);
        assert_eq!(a, lane_of("sdk.acme.workflow.wf-1.step2", 8));
        assert!(a < 8);
    }

    #[test]
    fn a_retry_is_nakd_until_max_deliver_then_dead_lettered() {
        let spec = ConsumerSpec::new("S", "d").max_deliver(3);
        let retry = Outcome::Retry("x".into());
        assert_eq!(spec.settlement(&retry, 1), Settlement::Nak);
        assert_eq!(spec.settlement(&retry, 2), Settlement::Nak);
        assert_eq!(spec.settlement(&retry, 3), Settlement::DeadLetter);
        assert_eq!(
            spec.settlement(&Outcome::Reject("y".into()), 1),
            Settlement::DeadLetter
        );
        assert_eq!(spec.settlement(&Outcome::Ack, 9), Settlement::Ack);
    }

    #[test]
    fn backoff_repeats_its_last_step() {
        let spec = ConsumerSpec::new("S", "d")
            .backoff(vec![Duration::from_millis(10), Duration::from_millis(20)]);
        assert_eq!(spec.delay(1), Duration::from_millis(10));
        assert_eq!(spec.delay(2), Duration::from_millis(20));
        assert_eq!(spec.delay(9), Duration::from_millis(20));
    }
}
