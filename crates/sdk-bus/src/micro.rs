//! Discovery: a service with a name answers the NATS micro protocol's `$SRV.PING`,
//! `$SRV.INFO` and `$SRV.STATS` (all, by name, and by name and id), so standard NATS
//! tooling can find and watch it. The answers follow the `io.nats.micro.v1.*`
//! schemas. A tenant's service answers only into that tenant's inbox, so only that
//! tenant discovers it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::events::{BusEvent, Monitor};
use crate::transport::RawMessage;
use crate::{Bus, Headers, SubjectPattern, SubscribeError, TenantId};

/// How a service presents itself to NATS micro tooling (`$SRV` discovery).
///
/// ```
/// use sdk_bus::{MicroService, ServeOptions};
/// let options = ServeOptions::new().service(
///     MicroService::new("rag", "1.2.0")
///         .description("answers RAG queries")
///         .metadata("schema", "urn:sdk:schema:sdk.v1.AgentTask:v1"),
/// );
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MicroService {
    /// The service name: `[A-Za-z0-9_-]+`.
    pub name: String,
    /// Its version: semantic versioning, `1.2.0`.
    pub version: String,
    /// What it does.
    pub description: String,
    /// Free metadata (the tenant, schema ids and formats are added by `serve`).
    pub metadata: BTreeMap<String, String>,
}

impl MicroService {
    /// A service `name` at `version`.
    pub fn new(name: &str, version: &str) -> MicroService {
        MicroService {
            name: name.to_owned(),
            version: version.to_owned(),
            description: String::new(),
            metadata: BTreeMap::new(),
        }
    }
    /// What it does.
    pub fn description(mut self, text: &str) -> Self {
        self.description = text.to_owned();
        self
    }
    /// One metadata entry.
    pub fn metadata(mut self, key: &str, value: &str) -> Self {
        self.metadata.insert(key.to_owned(), value.to_owned());
        self
    }

    fn check(&self) -> Result<(), SubscribeError> {
        let bad = |reason: String| Err(SubscribeError::InvalidService { reason });
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return bad(format!(
                "service name {:?} must be 1 or more of A-Z, a-z, 0-9, _ and -",
                self.name
            ));
        }
        let core = self.version.split(['-', '+']).next().unwrap_or_default();
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return bad(format!(
                "service version {:?} must be a semantic version such as 1.0.0",
                self.version
            ));
        }
        Ok(())
    }
}

/// What a shared service's `last_error` says instead of the failure's text.
pub(crate) const WITHHELD: &str = "withheld: the service serves every tenant";

/// What a service counts for `$SRV.STATS`.
#[derive(Debug, Default)]
pub(crate) struct EndpointStats {
    requests: AtomicU64,
    errors: AtomicU64,
    processing_nanos: AtomicU64,
    last_error: Mutex<String>,
    /// A shared service (every tenant's requests): `$SRV` is open to every tenant,
    /// so the text of one tenant's failure must not be shown to the others.
    withhold_text: bool,
}

impl EndpointStats {
    /// One handled request, how long it took, and its failure if it failed: kept as
    /// `code:text` (as micro clients parse `last_error`), the text withheld for a
    /// shared service.
    pub(crate) fn record(&self, took: Duration, failure: Option<(u16, &str)>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.processing_nanos.fetch_add(nanos, Ordering::Relaxed);
        if let Some((code, text)) = failure {
            self.errors.fetch_add(1, Ordering::Relaxed);
            let text = if self.withhold_text { WITHHELD } else { text };
            if let Ok(mut last) = self.last_error.lock() {
                *last = format!("{code}:{text}");
            }
        }
    }
}

/// A running registration: the facts the verbs answer with.
#[derive(Debug)]
pub(crate) struct Registration {
    service: MicroService,
    id: String,
    started: String,
    endpoint_subject: String,
    queue_group: String,
    /// The tenant of a tenant's service: it answers only into `_INBOX.<tenant>.`.
    tenant: Option<TenantId>,
    pub(crate) stats: Arc<EndpointStats>,
}

impl Registration {
    pub(crate) fn new(
        mut service: MicroService,
        pattern: &SubjectPattern,
        group: Option<&str>,
    ) -> Result<Registration, SubscribeError> {
        service.check()?;
        if let Some(t) = pattern.tenant() {
            service
                .metadata
                .entry("sdk.tenant".to_owned())
                .or_insert_with(|| t.as_str().to_owned());
        }
        Ok(Registration {
            id: nuid::next().to_string(),
            started: started_now(),
            endpoint_subject: pattern.as_str().to_owned(),
            queue_group: group.unwrap_or_default().to_owned(),
            tenant: pattern.tenant().cloned(),
            stats: Arc::new(EndpointStats {
                withhold_text: pattern.tenant().is_none(),
                ..EndpointStats::default()
            }),
            service,
        })
    }

    fn identity(&self, kind: &str) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("type".into(), json!(kind));
        m.insert("name".into(), json!(self.service.name));
        m.insert("id".into(), json!(self.id));
        m.insert("version".into(), json!(self.service.version));
        m.insert("metadata".into(), json!(self.service.metadata));
        m
    }

    fn endpoint_name(&self) -> &str {
        &self.service.name
    }

    /// The answer to one verb, as the `io.nats.micro.v1.*` schemas give it.
    pub(crate) fn answer(&self, verb: &str) -> Option<Value> {
        let m = match verb {
            "PING" => self.identity("io.nats.micro.v1.ping_response"),
            "INFO" => {
                let mut m = self.identity("io.nats.micro.v1.info_response");
                m.insert("description".into(), json!(self.service.description));
                m.insert(
                    "endpoints".into(),
                    json!([{
                        "name": self.endpoint_name(),
                        "subject": self.endpoint_subject,
                        "queue_group": self.queue_group,
                        "metadata": {},
                    }]),
                );
                m
            }
            "STATS" => {
                let s = &self.stats;
                let requests = s.requests.load(Ordering::Relaxed);
                let total = s.processing_nanos.load(Ordering::Relaxed);
                let last = s.last_error.lock().map(|e| e.clone()).unwrap_or_default();
                let mut m = self.identity("io.nats.micro.v1.stats_response");
                m.insert("started".into(), json!(self.started));
                m.insert(
                    "endpoints".into(),
                    json!([{
                        "name": self.endpoint_name(),
                        "subject": self.endpoint_subject,
                        "queue_group": self.queue_group,
                        "num_requests": requests,
                        "num_errors": s.errors.load(Ordering::Relaxed),
                        "processing_time": total,
                        "average_processing_time": total.checked_div(requests).unwrap_or(0),
                        "last_error": last,
                        "data": null,
                    }]),
                );
                m
            }
            _ => return None,
        };
        Some(Value::Object(m))
    }

    /// Whether a verb's reply may go to `reply`: an inbox, and for a tenant's service
    /// that tenant's inbox only.
    fn reply_allowed(&self, reply: &str) -> bool {
        match &self.tenant {
            Some(t) => crate::settle::reply_allowed(t, reply),
            None => reply.starts_with("_INBOX.") && !reply.contains(['*', '>']),
        }
    }

    /// The verb of a `$SRV` subject, when it is addressed to this service.
    fn verb_for<'a>(&self, subject: &'a str) -> Option<&'a str> {
        let mut tokens = subject.split('.');
        if tokens.next() != Some("$SRV") {
            return None;
        }
        let verb = tokens.next()?;
        match (tokens.next(), tokens.next(), tokens.next()) {
            (None, _, _) => Some(verb),
            (Some(name), None, _) if name == self.service.name => Some(verb),
            (Some(name), Some(id), None) if name == self.service.name && id == self.id => {
                Some(verb)
            }
            _ => None,
        }
    }
}

/// `2006-01-02T15:04:05.000000Z`: microseconds, as micro clients parse it.
fn started_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

/// Subscribes to the verbs and answers them until the returned task is aborted.
pub(crate) async fn answer_verbs(
    bus: &Bus,
    registration: Arc<Registration>,
) -> Result<tokio::task::JoinHandle<()>, SubscribeError> {
    let name = registration.service.name.clone();
    let id = registration.id.clone();
    let mut subscriptions = Vec::with_capacity(3);
    for pattern in [
        "$SRV.*".to_owned(),
        format!("$SRV.*.{name}"),
        format!("$SRV.*.{name}.{id}"),
    ] {
        subscriptions.push(bus.raw_subscribe(&pattern).await?);
    }
    let bus = bus.clone();
    Ok(tokio::spawn(async move {
        let mut merged = futures::stream::select_all(subscriptions.into_iter().map(|s| {
            Box::pin(futures::stream::unfold(s, |mut s| async move {
                s.next().await.map(|m| (m, s))
            }))
        }));
        while let Some(msg) = futures::StreamExt::next(&mut merged).await {
            answer_one(&bus, &registration, msg).await;
        }
    }))
}

async fn answer_one(bus: &Bus, registration: &Registration, msg: RawMessage) {
    let (Some(verb), Some(reply)) = (registration.verb_for(&msg.subject), msg.reply) else {
        return;
    };
    let Some(answer) = registration.answer(verb) else {
        return;
    };
    if !registration.reply_allowed(&reply) {
        let monitor = bus.monitor();
        Monitor::bump(&monitor.counters.refused_replies);
        monitor.emit(BusEvent::ReplyRefused {
            subject: msg.subject,
            reply,
        });
        return;
    }
    let body = Bytes::from(answer.to_string());
    if let Err(e) = bus.send(&reply, Headers::new(), body).await {
        bus.monitor()
            .settle_failed(&msg.subject, format!("cannot answer {verb}: {e}"));
    }
}
