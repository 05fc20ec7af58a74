//! Request handling: `serve`, its options, the running [`Service`], and the error
//! codes a service answers with.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use crate::events::{BusEvent, Monitor};
use crate::settle;
use crate::worker_pool::{Stopped, WorkerPool, guarded};
use crate::{
    Bus, BusError, Delivery, Envelope, PublishError, RequestError, SubjectPattern, SubscribeError,
};

/// The error codes of the contract, for `Nats-Service-Error-Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServiceCode {
    /// 400: the request could not be read.
    BadRequest,
    /// 403: tenant mismatch, or not allowed.
    Forbidden,
    /// 404: no such handler.
    NotFound,
    /// 408: the handler ran out of time.
    Timeout,
    /// 413: the request or its answer is too large.
    TooLarge,
    /// 500: the handler failed.
    HandlerFailed,
    /// 503: the service is overloaded or draining; try again, or another instance.
    Unavailable,
}

impl ServiceCode {
    /// The numeric code.
    pub fn as_u16(self) -> u16 {
        match self {
            ServiceCode::BadRequest => 400,
            ServiceCode::Forbidden => 403,
            ServiceCode::NotFound => 404,
            ServiceCode::Timeout => 408,
            ServiceCode::TooLarge => 413,
            ServiceCode::HandlerFailed => 500,
            ServiceCode::Unavailable => 503,
        }
    }

    /// The code for a number, if the contract has one.
    pub fn from_u16(code: u16) -> Option<ServiceCode> {
        Some(match code {
            400 => ServiceCode::BadRequest,
            403 => ServiceCode::Forbidden,
            404 => ServiceCode::NotFound,
            408 => ServiceCode::Timeout,
            413 => ServiceCode::TooLarge,
            500 => ServiceCode::HandlerFailed,
            503 => ServiceCode::Unavailable,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ServiceCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_u16())
    }
}

/// A failed request, as a handler returns it; it becomes the `Nats-Service-Error`
/// headers of the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ServiceFailure {
    /// The code.
    pub code: ServiceCode,
    /// The text.
    pub message: String,
}

impl ServiceFailure {
    /// A failure with `code` and `message`.
    pub fn new(code: ServiceCode, message: impl Into<String>) -> ServiceFailure {
        ServiceFailure {
            code,
            message: message.into(),
        }
    }
}

/// A bus failure inside a handler answers 500, unless it is a service error whose
/// code the contract knows, which passes through.
impl From<BusError> for ServiceFailure {
    fn from(e: BusError) -> ServiceFailure {
        let code = match &e {
            BusError::ServiceError { code, .. } => {
                ServiceCode::from_u16(*code).unwrap_or(ServiceCode::HandlerFailed)
            }
            _ => ServiceCode::HandlerFailed,
        };
        ServiceFailure::new(code, e.to_string())
    }
}

/// A failed request inside a handler answers 500, unless the other service answered
/// with a code the contract knows, which passes through.
impl From<RequestError> for ServiceFailure {
    fn from(e: RequestError) -> ServiceFailure {
        let code = match &e {
            RequestError::ServiceError { code, .. } => {
                ServiceCode::from_u16(*code).unwrap_or(ServiceCode::HandlerFailed)
            }
            _ => ServiceCode::HandlerFailed,
        };
        ServiceFailure::new(code, e.to_string())
    }
}

/// A failed publish inside a handler answers 500.
impl From<PublishError> for ServiceFailure {
    fn from(e: PublishError) -> ServiceFailure {
        ServiceFailure::new(ServiceCode::HandlerFailed, e.to_string())
    }
}

/// A subject a handler could not build is the handler's failure: 500.
impl From<crate::SubjectError> for ServiceFailure {
    fn from(e: crate::SubjectError) -> ServiceFailure {
        ServiceFailure::new(ServiceCode::HandlerFailed, e.to_string())
    }
}

/// How a service runs: queue group, handlers at once, their timeout, and how many
/// requests may wait for a handler before the service answers 503.
///
/// ```
/// use std::time::Duration;
/// use sdk_bus::ServeOptions;
/// let options = ServeOptions::new()
///     .group("rag")
///     .concurrency(8)
///     .timeout(Duration::from_secs(5));
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The queue group: each request goes to one member. `None` for every instance.
    pub group: Option<String>,
    /// Handlers running at once (at least 1).
    pub concurrency: usize,
    /// How long a handler may run before the request is answered 408 (none: no limit).
    pub timeout: Option<Duration>,
    /// Requests waiting for a handler before new ones are answered 503.
    pub max_pending: usize,
    /// How the service presents itself to NATS micro tooling (`$SRV` discovery);
    /// `None` for a service nobody discovers.
    pub service: Option<crate::MicroService>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            group: None,
            concurrency: 16,
            timeout: Some(Duration::from_secs(30)),
            max_pending: 256,
            service: None,
        }
    }
}

impl ServeOptions {
    /// No queue group, 16 handlers, a 30 s timeout, 256 waiting requests.
    pub fn new() -> ServeOptions {
        ServeOptions::default()
    }
    /// Serve as a member of queue `group`.
    pub fn group(mut self, group: &str) -> Self {
        self.group = Some(group.to_owned());
        self
    }
    /// Handlers running at once.
    pub fn concurrency(mut self, handlers: usize) -> Self {
        self.concurrency = handlers.max(1);
        self
    }
    /// The handler timeout.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }
    /// No handler timeout.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }
    /// Requests that may wait for a handler.
    pub fn max_pending(mut self, requests: usize) -> Self {
        self.max_pending = requests;
        self
    }
    /// Make the service discoverable with the NATS micro protocol (`$SRV.PING`,
    /// `$SRV.INFO`, `$SRV.STATS`).
    pub fn service(mut self, service: crate::MicroService) -> Self {
        self.service = Some(service);
        self
    }
}

/// A running service; [`Service::wait`] returns once it has stopped (after a drain)
/// and every handler it started has finished and been settled.
#[derive(Debug)]
pub struct Service {
    task: tokio::task::JoinHandle<Result<(), SubscribeError>>,
    verbs: Option<tokio::task::JoinHandle<()>>,
}

impl Service {
    /// Waits for the service to end.
    ///
    /// # Errors
    /// [`SubscribeError::PermissionDenied`] when the server refused its subscription;
    /// [`SubscribeError::Closed`] when the service was aborted.
    pub async fn wait(self) -> Result<(), SubscribeError> {
        let ended = self.task.await.unwrap_or(Err(SubscribeError::Closed));
        if let Some(v) = &self.verbs {
            v.abort();
        }
        ended
    }

    /// Stops at once: no new messages, running handlers are cancelled.
    pub fn abort(&self) {
        self.task.abort();
        if let Some(v) = &self.verbs {
            v.abort();
        }
    }
}

impl Bus {
    /// Serves requests on `pattern`. A handler's `Ok` becomes the reply; its `Err`
    /// becomes an error reply with `Nats-Service-Error` headers, or, for a message
    /// without a reply subject, a dead letter. A panic answers 500, a handler past
    /// its timeout 408, a full queue 503. Replies go only to the request tenant's
    /// inbox.
    ///
    /// # Errors
    /// As [`Bus::subscribe`]; [`SubscribeError::InvalidGroup`].
    pub async fn serve<F, Fut>(
        &self,
        pattern: &SubjectPattern,
        options: ServeOptions,
        handler: F,
    ) -> Result<Service, SubscribeError>
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Envelope, ServiceFailure>> + Send + 'static,
    {
        let registration = match options.service.clone() {
            Some(service) => Some(Arc::new(crate::micro::Registration::new(
                service,
                pattern,
                options.group.as_deref(),
            )?)),
            None => None,
        };
        let mut sub = match &options.group {
            Some(g) => self.queue_subscribe(pattern, g).await?,
            None => self.subscribe(pattern).await?,
        };
        let verbs = match &registration {
            Some(r) => Some(crate::micro::answer_verbs(self, Arc::clone(r)).await?),
            None => None,
        };
        let stats = registration.as_ref().map(|r| Arc::clone(&r.stats));
        let active = self.activity();
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            let _active = active;
            let mut pool = WorkerPool::new(options.concurrency);
            // Past the semaphore's limit it would panic here, after `serve` returned.
            let admitted = Arc::new(Semaphore::new(
                options
                    .concurrency
                    .saturating_add(options.max_pending)
                    .min(Semaphore::MAX_PERMITS),
            ));
            let mut ended = Ok(());
            while let Some(item) = sub.next().await {
                let delivery = match item {
                    Ok(d) => d,
                    Err(e) => {
                        ended = Err(e);
                        break;
                    }
                };
                let handler = Arc::clone(&handler);
                let stats = stats.clone();
                if delivery.reply_subject().is_none() {
                    // An event: nobody waits for an answer, so wait for a handler
                    // (backpressure) rather than refuse it.
                    let slot = pool.slot().await;
                    pool.spawn(slot, handle(handler, delivery, options.timeout, stats));
                    continue;
                }
                let Ok(ticket) = Arc::clone(&admitted).try_acquire_owned() else {
                    unavailable(
                        &delivery,
                        "overloaded: every handler is busy and the queue is full",
                    )
                    .await;
                    continue;
                };
                if let Some(slot) = pool.try_slot() {
                    pool.spawn(Some(slot), async move {
                        handle(handler, delivery, options.timeout, stats).await;
                        drop(ticket);
                    });
                    continue;
                }
                let slots = pool.slots();
                let draining = delivery.bus().draining_signal();
                pool.spawn(None, async move {
                    let _ticket = ticket;
                    let slot = tokio::select! {
                        slot = slots.acquire_owned() => slot.ok(),
                        () = wait_draining(draining) => None,
                    };
                    match slot {
                        Some(slot) => {
                            handle(handler, delivery, options.timeout, stats).await;
                            drop(slot);
                        }
                        None => {
                            unavailable(
                                &delivery,
                                "draining: the service is shutting down; try again",
                            )
                            .await;
                        }
                    }
                });
            }
            pool.finish().await;
            ended
        });
        Ok(Service { task, verbs })
    }
}

async fn wait_draining(mut draining: watch::Receiver<bool>) {
    // An error means the bus is gone: treat it as draining.
    draining.wait_for(|d| *d).await.ok();
}

/// Answers 503 and counts it.
async fn unavailable(delivery: &Delivery, why: &str) {
    let bus = delivery.bus();
    Monitor::bump(&bus.monitor().counters.overloaded);
    bus.monitor().emit(BusEvent::Overloaded {
        subject: delivery.subject.to_string(),
    });
    let result = delivery.respond_error(ServiceCode::Unavailable, why).await;
    settle::report(bus, &delivery.subject, result);
}

/// Runs the handler on one delivery and settles the outcome.
async fn handle<F, Fut>(
    handler: Arc<F>,
    delivery: Delivery,
    timeout: Option<Duration>,
    stats: Option<Arc<crate::micro::EndpointStats>>,
) where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Envelope, ServiceFailure>> + Send + 'static,
{
    let kept = delivery.settle_handle();
    let started = std::time::Instant::now();
    let outcome = match guarded(|| handler(delivery), timeout).await {
        Ok(outcome) => outcome,
        Err(Stopped::Panicked) => Err(ServiceFailure::new(
            ServiceCode::HandlerFailed,
            "the handler panicked",
        )),
        Err(Stopped::TimedOut(limit)) => {
            let monitor = kept.bus().monitor();
            Monitor::bump(&monitor.counters.handler_timeouts);
            monitor.emit(BusEvent::HandlerTimedOut {
                subject: kept.subject.to_string(),
            });
            Err(ServiceFailure::new(
                ServiceCode::Timeout,
                format!("the handler ran past its timeout of {limit:?}"),
            ))
        }
    };
    if let Some(stats) = &stats {
        let failure = outcome
            .as_ref()
            .err()
            .map(|f| (f.code.as_u16(), f.message.as_str()));
        stats.record(started.elapsed(), failure);
    }
    settle::settle_core(
        kept.bus(),
        &kept.subject,
        &kept.envelope,
        kept.reply_subject(),
        outcome,
    )
    .await;
}
