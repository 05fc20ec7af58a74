//! The bus: one API over NATS and over the in-process transport.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, broadcast, watch};

use crate::events::{BusEvent, BusStats, Monitor, Operation};
use crate::subscription::Subscription;
use crate::transport::memory::MemoryTransport;
use crate::transport::{ConnectionStatus, RawMessage, ServerDetails, Transport};
use crate::{
    BusConfig, BusError, Envelope, EnvelopeError, PublishError, RequestError, Subject,
    SubjectPattern, SubscribeError, TenantId, TooLarge, names,
};

/// Services and consumers still running, so that `drain` can wait for them.
#[derive(Debug, Default)]
struct Activity {
    running: AtomicUsize,
    idle: Notify,
}

/// Held by a running service or consumer; dropping it tells `drain` it has ended.
#[derive(Debug)]
pub(crate) struct ActivityGuard(Arc<Activity>);

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Gives every bus a process-wide unique id.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

#[derive(Debug)]
struct Inner {
    id: u64,
    transport: Transport,
    monitor: Arc<Monitor>,
    config: BusConfig,
    draining: watch::Sender<bool>,
    activity: Arc<Activity>,
    /// A tenant this bus has subscribed for, whose inbox a drain probe may use.
    last_tenant: std::sync::OnceLock<TenantId>,
    /// One reply subscription per tenant for requests on NATS.
    muxes: crate::transport::mux::RequestMuxes,
}

/// A connection to the bus. Clones share it.
#[derive(Debug, Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

impl Bus {
    fn with_transport(transport: Transport, monitor: Arc<Monitor>, config: BusConfig) -> Bus {
        Bus {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                transport,
                monitor,
                config,
                draining: watch::channel(false).0,
                activity: Arc::default(),
                last_tenant: std::sync::OnceLock::new(),
                muxes: crate::transport::mux::RequestMuxes::default(),
            }),
        }
    }

    /// Connects to the NATS servers in `config`.
    ///
    /// # Errors
    /// [`BusError::Config`] when `config` has no servers, [`BusError::Connect`] when
    /// none answers (its text never holds a password or token).
    pub async fn connect(config: BusConfig) -> Result<Bus, BusError> {
        let monitor = Arc::new(Monitor::new());
        let client = crate::transport::nats::connect(&config, Arc::clone(&monitor)).await?;
        Ok(Bus::with_transport(
            Transport::Nats(client),
            monitor,
            config,
        ))
    }

    /// A bus inside this process: no server, the same API and semantics as core NATS.
    pub fn in_process(config: BusConfig) -> Bus {
        let monitor = Arc::new(Monitor::new());
        let transport = MemoryTransport::new(Arc::clone(&monitor));
        Bus::with_transport(Transport::Memory(transport), monitor, config)
    }

    /// Another in-process bus on the same router as this one, as a second connection
    /// to the same server: its own events, counters and drain. `None` when this bus
    /// is not in-process.
    pub fn in_process_peer(&self, config: BusConfig) -> Option<Bus> {
        let monitor = Arc::new(Monitor::new());
        let transport = self.inner.transport.memory_peer(Arc::clone(&monitor))?;
        Some(Bus::with_transport(
            Transport::Memory(transport),
            monitor,
            config,
        ))
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

    /// A process-wide unique id of this connection (clones share it).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// `nats` or `in-process`.
    pub fn transport_name(&self) -> &'static str {
        self.inner.transport.name()
    }

    /// The configuration the bus was made with.
    pub fn config(&self) -> &BusConfig {
        &self.inner.config
    }

    /// Connection events: connected, disconnected, reconnected, slow consumers, lame
    /// duck, permission violations, refused messages and replies, settle failures.
    pub fn events(&self) -> broadcast::Receiver<BusEvent> {
        self.inner.monitor.events.subscribe()
    }

    /// The counters.
    pub fn stats(&self) -> BusStats {
        self.inner.monitor.stats()
    }

    /// The state of the connection.
    pub fn status(&self) -> ConnectionStatus {
        self.inner.transport.status()
    }

    /// What the server said about itself: version, address and `max_payload`.
    pub fn server_details(&self) -> ServerDetails {
        self.inner.transport.server_details(&self.inner.config)
    }

    pub(crate) fn max_payload(&self) -> usize {
        self.inner.transport.max_payload(&self.inner.config)
    }

    /// Publishes `envelope` on `subject`. Headers plus payload are checked against
    /// the server's `max_payload` first. While disconnected, up to the configured
    /// reconnect buffer is queued; past it, publishing fails.
    ///
    /// # Errors
    /// [`PublishError::TooLarge`], [`PublishError::ReconnectBufferFull`],
    /// [`PublishError::Client`], [`PublishError::Closed`].
    pub async fn publish(&self, subject: &Subject, envelope: Envelope) -> Result<(), PublishError> {
        let (headers, payload) = envelope.into_parts();
        self.send(subject.as_str(), headers, payload).await
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

    /// Sends headers and payload to `subject`, after the size check.
    pub(crate) async fn send(
        &self,
        subject: &str,
        headers: crate::Headers,
        payload: Bytes,
    ) -> Result<(), PublishError> {
        self.check_size(subject, headers.wire_size() + payload.len())?;
        let msg = RawMessage {
            subject: subject.to_owned(),
            reply: None,
            headers,
            payload,
        };
        self.inner
            .transport
            .publish(msg, &self.inner.config, &self.inner.monitor)
            .await?;
        Monitor::bump(&self.inner.monitor.counters.published);
        Ok(())
    }

    /// Whether `size` bytes for `subject` fit in the server's `max_payload`.
    pub(crate) fn check_size(&self, subject: &str, size: usize) -> Result<(), TooLarge> {
        TooLarge::check(subject, size, self.max_payload())
    }

    /// Waits until everything published so far has been written to the server.
    ///
    /// # Errors
    /// [`BusError::Connection`].
    pub async fn flush(&self) -> Result<(), BusError> {
        self.inner.transport.flush().await
    }

    /// Subscribes to `pattern` (`*` and `>` allowed). On NATS it returns once the
    /// server has the subscription.
    ///
    /// # Errors
    /// [`SubscribeError::Client`], [`SubscribeError::Closed`].
    pub async fn subscribe(
        &self,
        pattern: &SubjectPattern,
    ) -> Result<Subscription, SubscribeError> {
        self.subscribe_inner(pattern, None).await
    }

    /// Subscribes to `pattern` as a member of queue `group`: each message goes to one
    /// member of the group.
    ///
    /// # Errors
    /// As [`Bus::subscribe`]; [`SubscribeError::InvalidGroup`].
    pub async fn queue_subscribe(
        &self,
        pattern: &SubjectPattern,
        group: &str,
    ) -> Result<Subscription, SubscribeError> {
        crate::Token::new("queue group", group)?;
        self.subscribe_inner(pattern, Some(group)).await
    }

    async fn subscribe_inner(
        &self,
        pattern: &SubjectPattern,
        group: Option<&str>,
    ) -> Result<Subscription, SubscribeError> {
        let mut subs = self
            .subscribe_all(std::slice::from_ref(pattern), group)
            .await?;
        subs.pop().ok_or(SubscribeError::Closed)
    }

    /// Subscribes to every pattern in `patterns` and confirms them all with **one**
    /// round trip to the server, where [`Bus::subscribe`] takes one each: thousands of
    /// tenants on one connection subscribe in milliseconds rather than seconds. The
    /// subscriptions come back in the order of `patterns`. If one fails, none is kept.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use sdk_bus::{Bus, BusConfig, SubjectPattern};
    /// let bus = Bus::in_process(BusConfig::default());
    /// let patterns = ["acme", "globex"]
    ///     .map(|t| SubjectPattern::new(&format!("sdk.{t}.agent.*.tasks")).unwrap());
    /// let subs = bus.subscribe_many(&patterns).await.unwrap();
    /// assert_eq!(subs.len(), 2);
    /// # });
    /// ```
    ///
    /// # Errors
    /// As [`Bus::subscribe`], for the first pattern that fails.
    pub async fn subscribe_many(
        &self,
        patterns: &[SubjectPattern],
    ) -> Result<Vec<Subscription>, SubscribeError> {
        self.subscribe_all(patterns, None).await
    }

    async fn subscribe_all(
        &self,
        patterns: &[SubjectPattern],
        group: Option<&str>,
    ) -> Result<Vec<Subscription>, SubscribeError> {
        if *self.inner.draining.borrow() {
            return Err(SubscribeError::Closed);
        }
        let Some(first) = patterns.first() else {
            return Ok(Vec::new());
        };
        if let Some(t) = first.tenant() {
            self.inner.last_tenant.get_or_init(|| t.clone());
        }
        // Listen before subscribing: a refusal may arrive while subscribing.
        let events: Vec<_> = patterns.iter().map(|_| self.events()).collect();
        let wanted: Vec<_> = patterns.iter().map(|p| (p.as_str(), group)).collect();
        let probe = self.probe_inbox(first.tenant());
        let raw = self
            .inner
            .transport
            .subscribe_many(&wanted, &self.inner.config, &self.inner.monitor, &probe)
            .await?;
        Ok(raw
            .into_iter()
            .zip(patterns)
            .zip(events)
            .map(|((raw, pattern), events)| {
                Subscription::new(raw, pattern.clone(), self.clone(), events)
            })
            .collect())
    }

    /// A subscription to any subject (the `$SRV` verbs), without the SDK's checks.
    pub(crate) async fn raw_subscribe(
        &self,
        subject: &str,
    ) -> Result<crate::transport::RawSubscription, SubscribeError> {
        let probe = self.probe_inbox(None);
        self.inner
            .transport
            .subscribe(
                subject,
                None,
                &self.inner.config,
                &self.inner.monitor,
                &probe,
            )
            .await
    }

    /// The inbox prefix a probe may use: the configured inbox tenant's, else the
    /// pattern's tenant's.
    fn probe_inbox(&self, tenant: Option<&TenantId>) -> String {
        match self.inner.config.inbox_tenant.as_ref().or(tenant) {
            Some(t) => t.inbox_prefix(),
            None => "_INBOX".to_owned(),
        }
    }

    /// Sends `envelope` to `subject` and waits for one reply, up to the configured
    /// request timeout. The reply comes back to an inbox of the subject's tenant,
    /// `_INBOX.<tenant>.…`, so tenant permissions need no other inbox.
    ///
    /// # Errors
    /// [`RequestError::Timeout`], [`RequestError::NoResponders`],
    /// [`RequestError::ServiceError`] (from the reply's `Nats-Service-Error` headers),
    /// [`RequestError::PermissionDenied`], [`RequestError::TooLarge`].
    pub async fn request(
        &self,
        subject: &Subject,
        envelope: Envelope,
    ) -> Result<Envelope, RequestError> {
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
    ) -> Result<Envelope, RequestError> {
        self.check_size(subject.as_str(), envelope.wire_size())?;
        let (headers, payload) = envelope.into_parts();
        let msg = RawMessage {
            subject: subject.to_string(),
            reply: None,
            headers,
            payload,
        };
        let tenant = subject.tenant();
        let prefix = tenant.inbox_prefix();
        let transport = &self.inner.transport;
        let reply = if let Some(client) = transport.nats_client() {
            // Listen before subscribing: a refused reply subscription is reported
            // while the request waits.
            let mut events = self.events();
            let mux = self.inner.muxes.get(client, tenant).await?;
            let inbox = mux.pattern();
            let request = crate::transport::mux::request(client, &mux, msg, timeout);
            tokio::pin!(request);
            loop {
                tokio::select! {
                    r = &mut request => break r?,
                    e = events.recv() => match e {
                        Ok(BusEvent::PermissionViolation { operation: Operation::Publish, subject: s })
                            if s == subject.as_str() =>
                        {
                            return Err(RequestError::PermissionDenied { operation: Operation::Publish, subject: s });
                        }
                        Ok(BusEvent::PermissionViolation { operation: Operation::Subscribe, subject: s })
                            if s == inbox =>
                        {
                            self.inner.muxes.forget(tenant).await;
                            return Err(RequestError::PermissionDenied { operation: Operation::Subscribe, subject: s });
                        }
                        _ => {}
                    }
                }
            }
        } else {
            transport.request(msg, &prefix, timeout).await?
        };
        Monitor::bump(&self.inner.monitor.counters.published);
        reply_to_result(reply, subject, &self.inner.monitor)
    }

    /// Sends `envelope` to agent `to`'s inbox of `tenant`, `sdk.<t>.agent.<to>.inbox`.
    ///
    /// # Errors
    /// An invalid agent id; an envelope of another tenant (every receiver would refuse
    /// it); or as [`Bus::publish`].
    pub async fn send_message(
        &self,
        tenant: &TenantId,
        to: &str,
        envelope: Envelope,
    ) -> Result<(), BusError> {
        let inbox = Subject::agent_inbox(tenant, to)?;
        let own = envelope.tenant_id().unwrap_or_default();
        if own != tenant.as_str() {
            return Err(EnvelopeError::Invalid {
                name: names::TENANT_ID,
                reason: format!(
                    "{own:?} does not match the tenant {:?} of the inbox",
                    tenant.as_str()
                ),
            }
            .into());
        }
        Ok(self.publish(&inbox, envelope).await?)
    }

    /// Subscribes to agent `agent_id`'s inbox; each message arrives as a
    /// [`crate::Delivery`].
    ///
    /// # Errors
    /// An invalid agent id, or as [`Bus::subscribe`].
    pub async fn receive_messages(
        &self,
        tenant: &TenantId,
        agent_id: &str,
    ) -> Result<Subscription, BusError> {
        let inbox = Subject::agent_inbox(tenant, agent_id)?;
        Ok(self.subscribe(&SubjectPattern::from(&inbox)).await?)
    }

    /// Graceful shutdown. Subscriptions stop taking new messages but hand out every
    /// message the server routed to them; services and consumers finish the handlers
    /// they started and send their replies, error replies, dead letters and acks;
    /// then what was published is flushed and the connection closes. Requests still
    /// waiting for a handler are answered 503. Waits at most the configured
    /// `drain_timeout` for running handlers.
    ///
    /// # Errors
    /// [`BusError::Connection`].
    pub async fn drain(&self) -> Result<(), BusError> {
        // async-nats forgets a drained subscription as soon as its UNSUB is written,
        // so what the server routed before then must be read first: a probe through
        // the server proves it has been.
        let probe = self.probe_inbox(self.inner.last_tenant.get());
        let config = &self.inner.config;
        self.inner
            .transport
            .probe(
                &probe,
                config.request_timeout.min(config.drain_timeout),
                &self.inner.monitor,
                "the drain's read of what the server routed before it",
            )
            .await;
        self.inner.draining.send_replace(true);
        let activity = &self.inner.activity;
        let all_done = async {
            loop {
                let idle = activity.idle.notified();
                if activity.running.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        };
        // Past the limit the connection closes anyway; what is still running then
        // fails to settle, and that is counted.
        let limit = self.inner.config.drain_timeout;
        tokio::time::timeout(limit, all_done).await.ok();
        // With the server gone, flushing and closing could wait for ever: they get
        // the same limit, and running out of it is an error.
        let close = async {
            // A failed flush shows again in the close, which reports it.
            self.inner.transport.flush().await.ok();
            self.inner.transport.close(&self.inner.monitor).await
        };
        match tokio::time::timeout(limit, close).await {
            Ok(closed) => closed,
            Err(_) => Err(BusError::Connection {
                operation: "drain",
                source: format!("the connection did not close within drain_timeout ({limit:?})")
                    .into(),
            }),
        }
    }

    /// Counts and reports a header that a layer above (trace propagation, say) could
    /// not write to an outgoing message: [`BusStats::header_failures`] and
    /// [`BusEvent::HeaderRefused`].
    pub fn report_header_failure(&self, name: &str, error: &crate::HeaderError) {
        let monitor = &self.inner.monitor;
        Monitor::bump(&monitor.counters.header_failures);
        monitor.emit(BusEvent::HeaderRefused {
            name: name.to_owned(),
            reason: error.to_string(),
        });
    }

    /// Whether [`Bus::drain`] has begun.
    pub fn is_draining(&self) -> bool {
        *self.inner.draining.borrow()
    }

    pub(crate) fn monitor(&self) -> &Monitor {
        &self.inner.monitor
    }

    /// Flips to `true` when the bus starts draining.
    pub(crate) fn draining_signal(&self) -> watch::Receiver<bool> {
        self.inner.draining.subscribe()
    }

    /// Marks a service or consumer as running until the guard is dropped.
    pub(crate) fn activity(&self) -> ActivityGuard {
        self.inner.activity.running.fetch_add(1, Ordering::AcqRel);
        ActivityGuard(Arc::clone(&self.inner.activity))
    }

    /// The async-nats client underneath, for what the bus does not wrap (service
    /// discovery through `$SRV`, stream state); `None` on the in-process transport.
    /// Whatever goes through it skips the bus's checks, counters and tenant rules.
    pub fn nats_client(&self) -> Option<&async_nats::Client> {
        self.inner.transport.nats_client()
    }
}

/// Turns a reply's error headers into [`RequestError::ServiceError`]. Any other reply
/// needs no `ce-*` headers (the wire contract), but one that names a tenant must name
/// the request subject's tenant: a mismatch is refused, counted and reported.
fn reply_to_result(
    reply: RawMessage,
    subject: &Subject,
    monitor: &Monitor,
) -> Result<Envelope, RequestError> {
    if let Some(code) = reply.headers.get(names::SERVICE_ERROR_CODE) {
        let message = reply
            .headers
            .get(names::SERVICE_ERROR)
            .unwrap_or_default()
            .to_owned();
        return Err(RequestError::ServiceError {
            code: code.trim().parse().unwrap_or(500),
            message,
        });
    }
    let envelope =
        Envelope::from_parts(reply.headers, reply.payload).map_err(RequestError::InvalidReply)?;
    let ours = subject.tenant().as_str();
    if let Some(theirs) = envelope.tenant_id()
        && theirs != ours
    {
        let reason = format!(
            "the reply's ce-tenantid {theirs:?} is not the tenant {ours:?} of the request to {subject}"
        );
        crate::subscription::report_refusal(
            monitor,
            subject.as_str(),
            &crate::subscription::Refusal {
                code: crate::ServiceCode::Forbidden,
                reason: reason.clone(),
            },
        );
        return Err(RequestError::InvalidReply(EnvelopeError::Invalid {
            name: names::TENANT_ID,
            reason,
        }));
    }
    Ok(envelope)
}
