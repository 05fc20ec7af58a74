//! The bus: one API over NATS and over the in-process transport.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use std::panic::AssertUnwindSafe;

use futures::{FutureExt as _, StreamExt};
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;

use crate::envelope::names;
use crate::events::{BusEvent, BusStats, Shared};
use crate::memory::{MemorySubscription, MemoryTransport};
use crate::{BusConfig, BusError, Envelope, Headers, Subject, SubjectPattern};

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
    /// The largest message (headers plus payload) the server accepts.
    pub max_payload: usize,
}

/// The error codes of the contract, for `Nats-Service-Error-Code`.
pub mod codes {
    /// The request could not be read.
    pub const BAD_REQUEST: u16 = 400;
    /// Tenant mismatch, or not allowed.
    pub const FORBIDDEN: u16 = 403;
    /// No such handler.
    pub const NOT_FOUND: u16 = 404;
    /// The handler ran out of time.
    pub const TIMEOUT: u16 = 408;
    /// The request or its answer is too large.
    pub const TOO_LARGE: u16 = 413;
    /// The handler failed.
    pub const HANDLER_FAILED: u16 = 500;
    /// The service is unavailable.
    pub const UNAVAILABLE: u16 = 503;
}

/// A failed request, as a handler returns it; it becomes the `Nats-Service-Error`
/// headers of the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ServiceFailure {
    /// One of [`codes`].
    pub code: u16,
    /// The text.
    pub message: String,
}

impl ServiceFailure {
    /// A failure with `code` and `message`.
    pub fn new(code: u16, message: impl Into<String>) -> ServiceFailure {
        ServiceFailure {
            code,
            message: message.into(),
        }
    }
}

#[derive(Debug)]
pub(crate) enum Transport {
    Nats(async_nats::Client),
    Memory(Arc<MemoryTransport>),
}

#[derive(Debug)]
struct Inner {
    transport: Transport,
    shared: Arc<Shared>,
    config: BusConfig,
}

/// A connection to the bus. Clones share it.
#[derive(Debug, Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

impl Bus {
    /// Connects to the NATS servers in `config`.
    ///
    /// # Errors
    /// [`BusError::Config`] when `config` has no servers, [`BusError::Connect`] when
    /// none answers.
    pub async fn connect(config: BusConfig) -> Result<Bus, BusError> {
        let shared = Arc::new(Shared::new());
        let client = crate::nats::connect(&config, Arc::clone(&shared)).await?;
        Ok(Bus {
            inner: Arc::new(Inner {
                transport: Transport::Nats(client),
                shared,
                config,
            }),
        })
    }

    /// A bus inside this process: no server, the same API and semantics as core NATS.
    pub fn in_process(config: BusConfig) -> Bus {
        Bus {
            inner: Arc::new(Inner {
                transport: Transport::Memory(Arc::new(MemoryTransport::default())),
                shared: Arc::new(Shared::new()),
                config,
            }),
        }
    }

    /// Reads [`BusConfig::from_env`]: NATS when `NATS_URL` is set, otherwise the
    /// in-process transport.
    ///
    /// # Errors
    /// As [`BusConfig::from_env`] and [`Bus::connect`].
    pub async fn from_env() -> Result<Bus, BusError> {
        let config = BusConfig::from_env()?;
        if config.has_servers() {
            Bus::connect(config).await
        } else {
            Ok(Bus::in_process(config))
        }
    }

    /// `nats` or `in-process`.
    pub fn transport_name(&self) -> &'static str {
        match self.inner.transport {
            Transport::Nats(_) => "nats",
            Transport::Memory(_) => "in-process",
        }
    }

    /// The configuration the bus was made with.
    pub fn config(&self) -> &BusConfig {
        &self.inner.config
    }

    /// Connection events: connected, disconnected, reconnected, slow consumers, lame
    /// duck, permission violations, rejected messages.
    pub fn events(&self) -> broadcast::Receiver<BusEvent> {
        self.inner.shared.events.subscribe()
    }

    /// The counters.
    pub fn stats(&self) -> BusStats {
        self.inner.shared.stats()
    }

    /// The state of the connection.
    pub fn status(&self) -> ConnectionStatus {
        match &self.inner.transport {
            Transport::Nats(c) => match c.connection_state() {
                async_nats::connection::State::Connected => ConnectionStatus::Connected,
                async_nats::connection::State::Pending => ConnectionStatus::Connecting,
                async_nats::connection::State::Disconnected => ConnectionStatus::Disconnected,
            },
            Transport::Memory(m) if m.is_closed() => ConnectionStatus::Closed,
            Transport::Memory(_) => ConnectionStatus::Connected,
        }
    }

    /// What the server said about itself: version and `max_payload`.
    pub fn server_details(&self) -> ServerDetails {
        match &self.inner.transport {
            Transport::Nats(c) => {
                let info = c.server_info();
                ServerDetails {
                    transport: "nats",
                    version: info.version,
                    name: info.server_name,
                    max_payload: c.max_payload(),
                }
            }
            Transport::Memory(_) => ServerDetails {
                transport: "in-process",
                version: env!("CARGO_PKG_VERSION").to_owned(),
                name: "in-process".to_owned(),
                max_payload: self.inner.config.max_payload,
            },
        }
    }

    pub(crate) fn max_payload(&self) -> usize {
        match &self.inner.transport {
            Transport::Nats(c) => c.max_payload(),
            Transport::Memory(_) => self.inner.config.max_payload,
        }
    }

    /// Publishes `envelope` on `subject`. Headers plus payload are checked against
    /// the server's `max_payload` first. While disconnected, up to the configured
    /// reconnect buffer is queued; past it, publishing fails.
    ///
    /// # Errors
    /// [`BusError::TooLarge`], [`BusError::ReconnectBufferFull`],
    /// [`BusError::Publish`], [`BusError::Closed`].
    pub async fn publish(&self, subject: &Subject, envelope: Envelope) -> Result<(), BusError> {
        let (headers, payload) = envelope.into_parts();
        self.send(subject.as_str(), None, headers, payload).await
    }

    /// Publishes and then waits until the connection has written it out.
    ///
    /// # Errors
    /// As [`Bus::publish`] and [`Bus::flush`].
    pub async fn publish_and_flush(
        &self,
        subject: &Subject,
        envelope: Envelope,
    ) -> Result<(), BusError> {
        self.publish(subject, envelope).await?;
        self.flush().await
    }

    pub(crate) async fn send(
        &self,
        subject: &str,
        reply: Option<String>,
        headers: Headers,
        payload: Bytes,
    ) -> Result<(), BusError> {
        let size = headers.wire_size() + payload.len();
        let max_payload = self.max_payload();
        if size > max_payload {
            return Err(BusError::TooLarge {
                subject: subject.to_owned(),
                size,
                max_payload,
            });
        }
        let shared = &self.inner.shared;
        match &self.inner.transport {
            Transport::Nats(client) => {
                if client.connection_state() != async_nats::connection::State::Connected {
                    let limit = self.inner.config.reconnect_buffer;
                    let queued = shared
                        .counters
                        .buffered_while_down
                        .fetch_add(1, Ordering::Relaxed);
                    if queued >= limit {
                        shared
                            .counters
                            .buffered_while_down
                            .fetch_sub(1, Ordering::Relaxed);
                        return Err(BusError::ReconnectBufferFull {
                            subject: subject.to_owned(),
                            limit,
                        });
                    }
                }
                crate::nats::publish(client, subject, reply, headers, payload).await?;
            }
            Transport::Memory(router) => {
                if router.is_closed() {
                    return Err(BusError::Closed);
                }
                router.publish(
                    RawMessage {
                        subject: subject.to_owned(),
                        reply,
                        headers,
                        payload,
                    },
                    shared,
                );
            }
        }
        Shared::bump(&shared.counters.published);
        Ok(())
    }

    /// Waits until everything published so far has been written to the server.
    ///
    /// # Errors
    /// [`BusError::Connection`].
    pub async fn flush(&self) -> Result<(), BusError> {
        match &self.inner.transport {
            Transport::Nats(c) => c.flush().await.map_err(|e| BusError::Connection {
                operation: "flush",
                reason: e.to_string(),
            }),
            Transport::Memory(_) => Ok(()),
        }
    }

    /// Subscribes to `pattern` (`*` and `>` allowed).
    ///
    /// # Errors
    /// [`BusError::Subscribe`].
    pub async fn subscribe(&self, pattern: &SubjectPattern) -> Result<Subscription, BusError> {
        self.subscribe_inner(pattern, None).await
    }

    /// Subscribes to `pattern` as a member of queue `group`: each message goes to one
    /// member of the group.
    ///
    /// # Errors
    /// [`BusError::Subscribe`], or an invalid group name.
    pub async fn queue_subscribe(
        &self,
        pattern: &SubjectPattern,
        group: &str,
    ) -> Result<Subscription, BusError> {
        crate::Token::new("queue group", group)?;
        self.subscribe_inner(pattern, Some(group)).await
    }

    async fn subscribe_inner(
        &self,
        pattern: &SubjectPattern,
        group: Option<&str>,
    ) -> Result<Subscription, BusError> {
        let events = self.events();
        let source = match &self.inner.transport {
            Transport::Nats(c) => {
                let fail = |e: async_nats::SubscribeError| BusError::Subscribe {
                    subject: pattern.to_string(),
                    reason: e.to_string(),
                };
                let sub = match group {
                    Some(g) => c
                        .queue_subscribe(pattern.as_str().to_owned(), g.to_owned())
                        .await
                        .map_err(fail)?,
                    None => c
                        .subscribe(pattern.as_str().to_owned())
                        .await
                        .map_err(fail)?,
                };
                // Return only once the server has the subscription: a request sent
                // right after `subscribe` (or `serve`) from another connection must
                // not get "no responders".
                round_trip(
                    c,
                    self.inner
                        .config
                        .request_timeout
                        .min(Duration::from_secs(2)),
                )
                .await;
                Source::Nats(sub)
            }
            Transport::Memory(router) => {
                if router.is_closed() {
                    return Err(BusError::Closed);
                }
                Source::Memory(router.subscribe(
                    pattern.as_str(),
                    group,
                    self.inner.config.subscription_capacity,
                ))
            }
        };
        Ok(Subscription {
            source,
            pattern: pattern.clone(),
            bus: self.clone(),
            events,
        })
    }

    /// Sends `envelope` to `subject` and waits for one reply, up to the configured
    /// request timeout.
    ///
    /// # Errors
    /// [`BusError::Timeout`], [`BusError::NoResponders`], [`BusError::ServiceError`]
    /// (from the reply's `Nats-Service-Error` headers), [`BusError::PermissionDenied`].
    pub async fn request(
        &self,
        subject: &Subject,
        envelope: Envelope,
    ) -> Result<Envelope, BusError> {
        self.request_with_timeout(subject, envelope, self.inner.config.request_timeout)
            .await
    }

    /// As [`Bus::request`], with its own timeout.
    ///
    /// # Errors
    /// As [`Bus::request`].
    pub async fn request_with_timeout(
        &self,
        subject: &Subject,
        envelope: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, BusError> {
        let size = envelope.wire_size();
        let max_payload = self.max_payload();
        if size > max_payload {
            return Err(BusError::TooLarge {
                subject: subject.to_string(),
                size,
                max_payload,
            });
        }
        let (headers, payload) = envelope.into_parts();
        let reply = match &self.inner.transport {
            Transport::Nats(c) => {
                let mut events = self.events();
                let request = crate::nats::request(c, subject.as_str(), headers, payload, timeout);
                tokio::pin!(request);
                loop {
                    tokio::select! {
                        r = &mut request => break r?,
                        e = events.recv() => {
                            if let Ok(BusEvent::PermissionViolation { operation, subject: s }) = e
                                && operation == "publish to"
                                && s == subject.as_str()
                            {
                                return Err(BusError::PermissionDenied { operation, subject: s });
                            }
                        }
                    }
                }
            }
            Transport::Memory(router) => {
                self.memory_request(router, subject, headers, payload, timeout)
                    .await?
            }
        };
        Shared::bump(&self.inner.shared.counters.published);
        reply_to_result(reply)
    }

    async fn memory_request(
        &self,
        router: &Arc<MemoryTransport>,
        subject: &Subject,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<RawMessage, BusError> {
        if router.is_closed() {
            return Err(BusError::Closed);
        }
        let prefix = match &self.inner.config.inbox_tenant {
            Some(t) => t.inbox_prefix(),
            None => "_INBOX".to_owned(),
        };
        let inbox = format!("{prefix}.{}", crate::envelope::new_id());
        let mut sub = router.subscribe(&inbox, None, 1);
        let delivered = router.publish(
            RawMessage {
                subject: subject.to_string(),
                reply: Some(inbox),
                headers,
                payload,
            },
            &self.inner.shared,
        );
        if delivered == 0 {
            return Err(BusError::NoResponders {
                subject: subject.to_string(),
            });
        }
        match tokio::time::timeout(timeout, sub.rx.recv()).await {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(BusError::Closed),
            Err(_) => Err(BusError::Timeout {
                subject: subject.to_string(),
                after: timeout,
            }),
        }
    }

    /// Sends `envelope` to agent `to`'s inbox of `tenant`, `sdk.<t>.agent.<to>.inbox`.
    ///
    /// # Errors
    /// An invalid agent id; an envelope of another tenant (every receiver would refuse
    /// it); or as [`Bus::publish`].
    pub async fn send_message(
        &self,
        tenant: &crate::TenantId,
        to: &str,
        envelope: Envelope,
    ) -> Result<(), BusError> {
        let inbox = Subject::agent_inbox(tenant, to)?;
        let own = envelope.tenant_id().unwrap_or_default();
        if own != tenant.as_str() {
            return Err(crate::EnvelopeError::Invalid {
                name: names::TENANT_ID,
                reason: format!(
                    "{own:?} does not match the tenant {:?} of the inbox",
                    tenant.as_str()
                ),
            }
            .into());
        }
        self.publish(&inbox, envelope).await
    }

    /// Subscribes to agent `agent_id`'s inbox; each message arrives as a [`Delivery`].
    ///
    /// # Errors
    /// An invalid agent id, or as [`Bus::subscribe`].
    pub async fn receive_messages(
        &self,
        tenant: &crate::TenantId,
        agent_id: &str,
    ) -> Result<Subscription, BusError> {
        let inbox = Subject::agent_inbox(tenant, agent_id)?;
        self.subscribe(&SubjectPattern::from(&inbox)).await
    }

    /// Serves requests on `pattern`, in queue `group` when given, running at most
    /// `concurrency` handlers at once. A handler's `Ok` becomes the reply; its `Err`
    /// becomes an error reply with `Nats-Service-Error` headers, or, for a message
    /// without a reply subject, a dead letter.
    ///
    /// # Errors
    /// As [`Bus::subscribe`].
    pub async fn serve<F, Fut>(
        &self,
        pattern: &SubjectPattern,
        group: Option<&str>,
        concurrency: usize,
        handler: F,
    ) -> Result<Service, BusError>
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Envelope, ServiceFailure>> + Send + 'static,
    {
        let mut sub = match group {
            Some(g) => self.queue_subscribe(pattern, g).await?,
            None => self.subscribe(pattern).await?,
        };
        let limit = Arc::new(Semaphore::new(concurrency.max(1)));
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            let mut running = JoinSet::new();
            let mut ended = Ok(());
            while let Some(item) = sub.next().await {
                let delivery = match item {
                    Ok(d) => d,
                    Err(e) => {
                        ended = Err(e);
                        break;
                    }
                };
                // Backpressure: no new message is taken while `concurrency` run.
                let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
                    break;
                };
                let handler = Arc::clone(&handler);
                running.spawn(async move {
                    let _permit = permit;
                    // A panicking handler still answers: 500, never silence.
                    // What settling needs, without copying the envelope of a request
                    // (only a message without a reply subject may be dead-lettered).
                    let settler = delivery.settler();
                    let outcome = AssertUnwindSafe(handler(delivery))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| {
                            Err(ServiceFailure::new(
                                codes::HANDLER_FAILED,
                                "the handler panicked",
                            ))
                        });
                    settler.settle(outcome).await;
                });
                while running.try_join_next().is_some() {}
            }
            while running.join_next().await.is_some() {}
            ended
        });
        Ok(Service { task })
    }

    /// Graceful shutdown: stops taking new messages, lets subscriptions hand out what
    /// they already hold, flushes what was published, then closes. Services end when
    /// their last handler has finished.
    ///
    /// Every message the server routed to this connection before `drain` was called is
    /// delivered: a probe message through the server proves they have all been read
    /// before the subscriptions are closed (async-nats alone closes them one poll after
    /// sending UNSUB, without that round trip).
    ///
    /// # Errors
    /// [`BusError::Connection`].
    pub async fn drain(&self) -> Result<(), BusError> {
        match &self.inner.transport {
            Transport::Nats(c) => {
                let fail = |e: &dyn std::fmt::Display| BusError::Connection {
                    operation: "drain",
                    reason: e.to_string(),
                };
                round_trip(c, self.inner.config.request_timeout).await;
                c.drain().await.map_err(|e| fail(&e))
            }
            Transport::Memory(router) => {
                router.close();
                self.inner.shared.emit(BusEvent::Closed);
                Ok(())
            }
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    pub(crate) fn nats_client(&self) -> Option<&async_nats::Client> {
        match &self.inner.transport {
            Transport::Nats(c) => Some(c),
            Transport::Memory(_) => None,
        }
    }
}

/// A message through the server and back on this connection. The server handles a
/// connection's commands in order, so once it returns, everything sent before it has
/// been processed, and everything the server sent before it has been read. It rides
/// the reply-inbox prefix, which every tenant may use; if it cannot (no permission),
/// it gives up after `limit`.
async fn round_trip(client: &async_nats::Client, limit: Duration) {
    let probe = client.new_inbox();
    if let Ok(mut sub) = client.subscribe(probe.clone()).await
        && client.publish(probe, Bytes::new()).await.is_ok()
        && client.flush().await.is_ok()
    {
        let _ = tokio::time::timeout(limit, sub.next()).await;
    }
}

/// Turns a reply's error headers into [`BusError::ServiceError`].
fn reply_to_result(reply: RawMessage) -> Result<Envelope, BusError> {
    if let Some(code) = reply.headers.get(names::SERVICE_ERROR_CODE) {
        let message = reply
            .headers
            .get(names::SERVICE_ERROR)
            .unwrap_or_default()
            .to_owned();
        return Err(BusError::ServiceError {
            code: code.trim().parse().unwrap_or(codes::HANDLER_FAILED),
            message,
        });
    }
    Ok(Envelope::from_parts(reply.headers, reply.payload)?)
}

/// A running service; [`Service::wait`] returns once it has stopped (after a drain)
/// and every handler it started has finished.
#[derive(Debug)]
pub struct Service {
    task: tokio::task::JoinHandle<Result<(), BusError>>,
}

impl Service {
    /// Waits for the service to end.
    ///
    /// # Errors
    /// [`BusError::PermissionDenied`] when the server refused its subscription.
    pub async fn wait(self) -> Result<(), BusError> {
        self.task.await.unwrap_or(Err(BusError::Closed))
    }

    /// Stops at once: no new messages, running handlers are cancelled.
    pub fn abort(&self) {
        self.task.abort();
    }
}

#[derive(Debug)]
enum Source {
    Nats(async_nats::Subscriber),
    Memory(MemorySubscription),
}

/// A subscription. Each message is checked before it is handed out: a bad envelope
/// or a `ce-tenantid` that differs from the subject's tenant is refused (counted,
/// reported as an event, and answered with an error reply when it has a reply subject).
#[derive(Debug)]
pub struct Subscription {
    source: Source,
    pattern: SubjectPattern,
    bus: Bus,
    events: broadcast::Receiver<BusEvent>,
}

impl Subscription {
    /// The next message; `None` once the subscription has ended (after a drain), or
    /// `Some(Err(BusError::PermissionDenied))` when the server refused it.
    pub async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        loop {
            let raw = tokio::select! {
                raw = next_raw(&mut self.source) => raw?,
                event = self.events.recv() => {
                    if let Ok(BusEvent::PermissionViolation { operation: "subscribe to", subject }) = event
                        && subject == self.pattern.as_str()
                    {
                        return Some(Err(BusError::PermissionDenied { operation: "subscribe to", subject }));
                    }
                    continue;
                }
            };
            match admit(&self.bus, raw).await {
                Some(delivery) => return Some(Ok(delivery)),
                None => continue,
            }
        }
    }

    /// The pattern.
    pub fn pattern(&self) -> &SubjectPattern {
        &self.pattern
    }
}

async fn next_raw(source: &mut Source) -> Option<RawMessage> {
    match source {
        Source::Nats(sub) => sub.next().await.map(|m| RawMessage {
            subject: m.subject.to_string(),
            reply: m.reply.map(|r| r.to_string()),
            headers: Headers::from_nats(m.headers.as_ref()),
            payload: m.payload,
        }),
        Source::Memory(sub) => sub.rx.recv().await,
    }
}

/// The checks every message passes before a handler sees it.
async fn admit(bus: &Bus, raw: RawMessage) -> Option<Delivery> {
    let shared = bus.shared();
    let RawMessage {
        subject: raw_subject,
        reply,
        headers,
        payload,
    } = raw;
    let checked = check(&raw_subject, headers, payload);
    match checked {
        Ok((subject, envelope)) => {
            Shared::bump(&shared.counters.delivered);
            Some(Delivery {
                subject,
                envelope,
                reply,
                bus: bus.clone(),
            })
        }
        Err((code, reason)) => {
            let counter = if code == codes::FORBIDDEN {
                &shared.counters.tenant_mismatches
            } else {
                &shared.counters.rejected
            };
            Shared::bump(counter);
            shared.emit(BusEvent::Rejected {
                subject: raw_subject,
                code,
                reason: reason.clone(),
            });
            if let Some(reply) = reply {
                let _ = bus
                    .send(&reply, None, error_headers(code, &reason), Bytes::new())
                    .await;
            }
            None
        }
    }
}

/// Subject grammar, envelope, required attributes, and the tenant rule.
pub(crate) fn check(
    raw_subject: &str,
    headers: Headers,
    payload: Bytes,
) -> Result<(Subject, Envelope), (u16, String)> {
    let bad = |e: &dyn std::fmt::Display| (codes::BAD_REQUEST, e.to_string());
    let subject = Subject::parse(raw_subject).map_err(|e| bad(&e))?;
    for name in [
        names::TENANT_ID,
        names::ID,
        names::TYPE,
        names::SOURCE,
        names::DATA_CONTENT_TYPE,
    ] {
        if headers.has_conflicting(name) {
            return Err((
                codes::BAD_REQUEST,
                format!("header {name} appears more than once with different values"),
            ));
        }
    }
    let envelope = Envelope::from_parts(headers, payload).map_err(|e| bad(&e))?;
    envelope.check_required().map_err(|e| bad(&e))?;
    let tenant = envelope.tenant_id().unwrap_or_default();
    if tenant != subject.tenant() {
        return Err((
            codes::FORBIDDEN,
            format!(
                "ce-tenantid {tenant:?} does not match the tenant {:?} of subject {}",
                subject.tenant(),
                subject
            ),
        ));
    }
    Ok((subject, envelope))
}

/// The longest `Nats-Service-Error` text we send, in bytes.
const MAX_ERROR_TEXT: usize = 1024;

fn error_headers(code: u16, message: &str) -> Headers {
    let mut h = Headers::with_capacity(2);
    // The message may hold anything; keep it on one line.
    // One line, and short enough that the error reply itself always fits.
    let clean: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .scan(0usize, |len, c| {
            *len += c.len_utf8();
            (*len <= MAX_ERROR_TEXT).then_some(c)
        })
        .collect();
    h.push_trusted(names::SERVICE_ERROR, clean);
    h.push_trusted(names::SERVICE_ERROR_CODE, code.to_string());
    h
}

/// A message that passed the checks.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The subject it arrived on.
    pub subject: Subject,
    /// Its envelope.
    pub envelope: Envelope,
    /// Where to send a reply, for a request.
    pub reply: Option<String>,
    bus: Bus,
}

impl Delivery {
    /// Replies to a request. Does nothing for a message without a reply subject.
    ///
    /// # Errors
    /// As [`Bus::publish`].
    pub async fn respond(&self, envelope: Envelope) -> Result<(), BusError> {
        match &self.reply {
            Some(reply) => {
                let (headers, payload) = envelope.into_parts();
                self.bus.send(reply, None, headers, payload).await
            }
            None => Ok(()),
        }
    }

    /// Replies with an error: `Nats-Service-Error` and `Nats-Service-Error-Code`.
    ///
    /// # Errors
    /// As [`Bus::publish`].
    pub async fn respond_error(&self, code: u16, message: &str) -> Result<(), BusError> {
        match &self.reply {
            Some(reply) => {
                self.bus
                    .send(reply, None, error_headers(code, message), Bytes::new())
                    .await
            }
            None => Ok(()),
        }
    }

    /// Publishes this message to its dead-letter subject, `sdk.<t>.dlq.<...>`, with
    /// the original headers and payload plus the contract's `sdk-dlq-*` headers.
    ///
    /// # Errors
    /// As [`Bus::publish`].
    pub async fn dead_letter(
        &self,
        reason: &str,
        consumer: &str,
        deliveries: u64,
    ) -> Result<(), BusError> {
        let mut headers = self.envelope.headers().clone();
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        };
        headers.insert("sdk-dlq-reason", &clean(reason)).ok();
        headers
            .insert("sdk-dlq-subject", self.subject.as_str())
            .ok();
        headers
            .insert("sdk-dlq-deliveries", &deliveries.to_string())
            .ok();
        headers.insert("sdk-dlq-consumer", &clean(consumer)).ok();
        headers
            .insert("sdk-dlq-time", &crate::envelope::new_time())
            .ok();
        let dlq = self.subject.dead_letter();
        self.bus
            .send(dlq.as_str(), None, headers, self.envelope.payload().clone())
            .await?;
        let shared = self.bus.shared();
        Shared::bump(&shared.counters.dead_lettered);
        shared.emit(BusEvent::DeadLettered {
            subject: self.subject.to_string(),
            reason: reason.to_owned(),
        });
        Ok(())
    }

    /// Applies a handler's outcome: the reply, an error reply, or a dead letter. A
    /// reply that cannot be sent (too large, say) becomes an error reply; anything
    /// that still fails is counted and reported, never dropped silently.
    fn settler(&self) -> Delivery {
        Delivery {
            subject: self.subject.clone(),
            envelope: if self.reply.is_some() {
                Envelope::empty()
            } else {
                self.envelope.clone()
            },
            reply: self.reply.clone(),
            bus: self.bus.clone(),
        }
    }

    async fn settle(&self, outcome: Result<Envelope, ServiceFailure>) {
        let result = match (outcome, self.reply.is_some()) {
            (Ok(reply), true) => match self.respond(reply).await {
                Err(BusError::TooLarge {
                    size, max_payload, ..
                }) => {
                    let text = format!(
                        "the reply is {size} bytes, over the server's max_payload of {max_payload}"
                    );
                    self.respond_error(codes::TOO_LARGE, &text).await
                }
                other => other,
            },
            (Ok(_), false) => Ok(()),
            (Err(f), true) => self.respond_error(f.code, &f.message).await,
            (Err(f), false) => self.dead_letter(&f.to_string(), "serve", 1).await,
        };
        if let Err(e) = result {
            let shared = self.bus.shared();
            Shared::bump(&shared.counters.settle_failures);
            shared.emit(BusEvent::SettleFailed {
                subject: self.subject.to_string(),
                reason: e.to_string(),
            });
        }
    }
}
