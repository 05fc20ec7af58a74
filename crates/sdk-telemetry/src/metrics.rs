//! Metric instruments: the messaging conventions, and SDK business metrics, with a
//! capped tenant attribute.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::{KeyValue, StringValue, Value};
use opentelemetry_semantic_conventions as semconv;

/// The bucket boundaries the messaging conventions give for durations, in seconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Byte-size buckets for encoded payloads.
pub const SIZE_BUCKETS: [f64; 12] = [
    64.0,
    256.0,
    1024.0,
    4096.0,
    16_384.0,
    65_536.0,
    262_144.0,
    524_288.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];

/// The tenant attribute key.
pub const TENANT_KEY: &str = "sdk.tenant.id";
/// What tenants past the cap are folded into.
pub const OTHER_TENANT: &str = OTHER_VALUE;
/// What any capped label (tenant, subject template, schema) folds into past its cap.
const OTHER_VALUE: &str = "_other";

/// Attribute values that repeat (tenants, subject templates, schema ids), each built
/// once and then shared: a value already seen costs a read lock and a reference
/// count, not an allocation and a copy. At most `cap` distinct values are kept.
#[derive(Debug)]
struct SharedValues {
    key: &'static str,
    cap: usize,
    seen: RwLock<HashMap<String, KeyValue>>,
}

impl SharedValues {
    fn new(key: &'static str, cap: usize) -> SharedValues {
        SharedValues {
            key,
            cap,
            seen: RwLock::new(HashMap::new()),
        }
    }

    /// The shared attribute for `value`, or `None` once `cap` other values are kept.
    fn get(&self, value: &str) -> Option<KeyValue> {
        if let Ok(seen) = self.seen.read() {
            if let Some(kv) = seen.get(value) {
                return Some(kv.clone());
            }
            // Full: no write lock per call for values past the cap.
            if seen.len() >= self.cap {
                return None;
            }
        }
        let mut seen = self.seen.write().ok()?;
        if let Some(kv) = seen.get(value) {
            return Some(kv.clone());
        }
        if seen.len() >= self.cap {
            return None;
        }
        let shared: Arc<str> = Arc::from(value);
        let kv = KeyValue::new(self.key, Value::String(StringValue::from(shared)));
        seen.insert(value.to_owned(), kv.clone());
        Some(kv)
    }

    /// As [`SharedValues::get`]; past the cap, `_other`, so that no input can add
    /// series without bound.
    fn get_or_other(&self, value: &str) -> KeyValue {
        self.get(value)
            .unwrap_or_else(|| KeyValue::new(self.key, OTHER_VALUE))
    }
}

/// Gives each tenant its own attribute value up to a cap; later tenants share
/// `_other`, so a flood of tenants cannot blow up metric cardinality. One limiter
/// serves a whole [`crate::Telemetry`]: every instrument folds the same tenants. A
/// tenant already seen costs a shared read lock and no allocation.
#[derive(Debug)]
pub struct TenantLimiter {
    values: SharedValues,
    other: KeyValue,
}

impl TenantLimiter {
    /// At most `cap` distinct tenants.
    pub fn new(cap: usize) -> TenantLimiter {
        TenantLimiter {
            values: SharedValues::new(TENANT_KEY, cap),
            other: KeyValue::new(TENANT_KEY, OTHER_TENANT),
        }
    }

    /// The attribute for `tenant`: itself while under the cap, `_other` after.
    pub fn attribute(&self, tenant: &str) -> KeyValue {
        self.values
            .get(tenant)
            .unwrap_or_else(|| self.other.clone())
    }
}

/// How many distinct subject templates and schema ids are kept; they come from code,
/// so more than this is unusual, and past it they fold into `_other`.
const SHARED_LABELS: usize = 4096;

/// The messaging instruments of the wire contract (`docs/wire-contract.md` §5).
#[derive(Debug)]
pub struct MessagingMetrics {
    sent: Counter<u64>,
    consumed: Counter<u64>,
    settled: Counter<u64>,
    operation_duration: Histogram<f64>,
    process_duration: Histogram<f64>,
    codec_duration: Histogram<f64>,
    codec_size: Histogram<u64>,
    tenants: Arc<TenantLimiter>,
    templates: SharedValues,
    schemas: SharedValues,
}

/// What one messaging operation was about.
#[derive(Debug, Clone, Copy)]
pub struct MessageLabels<'a> {
    /// `publish`, `process`, `request`, `receive`, `settle`.
    pub operation: &'a str,
    /// The low-cardinality subject template.
    pub template: &'a str,
    /// The tenant (capped).
    pub tenant: &'a str,
    /// The error type, when the operation failed.
    pub error_type: Option<&'a str>,
}

impl MessagingMetrics {
    /// Creates the instruments on `meter`, with tenants capped by `tenants` (share one
    /// limiter per process, so every instrument folds the same tenants).
    pub fn new(meter: &Meter, tenants: Arc<TenantLimiter>) -> MessagingMetrics {
        MessagingMetrics {
            sent: meter
                .u64_counter(semconv::metric::MESSAGING_CLIENT_SENT_MESSAGES)
                .with_unit("{message}")
                .with_description("Messages a producer sent")
                .build(),
            consumed: meter
                .u64_counter(semconv::metric::MESSAGING_CLIENT_CONSUMED_MESSAGES)
                .with_unit("{message}")
                .with_description("Messages a consumer received")
                .build(),
            settled: meter
                .u64_counter("sdk.messaging.settled")
                .with_unit("{message}")
                .with_description("Messages settled, by outcome: ack, nak, term, dead_letter")
                .build(),
            operation_duration: meter
                .f64_histogram(semconv::metric::MESSAGING_CLIENT_OPERATION_DURATION)
                .with_unit("s")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            process_duration: meter
                .f64_histogram(semconv::metric::MESSAGING_PROCESS_DURATION)
                .with_unit("s")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            codec_duration: meter
                .f64_histogram("sdk.codec.duration")
                .with_unit("s")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            codec_size: meter
                .u64_histogram("sdk.codec.size")
                .with_unit("By")
                .with_boundaries(SIZE_BUCKETS.to_vec())
                .build(),
            tenants,
            templates: SharedValues::new(
                semconv::attribute::MESSAGING_DESTINATION_TEMPLATE,
                SHARED_LABELS,
            ),
            schemas: SharedValues::new("sdk.codec.schema", SHARED_LABELS),
        }
    }

    fn labels(&self, l: &MessageLabels<'_>) -> Vec<KeyValue> {
        let mut v = Vec::with_capacity(5);
        v.push(KeyValue::new(semconv::attribute::MESSAGING_SYSTEM, "nats"));
        v.push(KeyValue::new(
            semconv::attribute::MESSAGING_OPERATION_NAME,
            static_operation(l.operation),
        ));
        v.push(self.templates.get_or_other(l.template));
        v.push(self.tenants.attribute(l.tenant));
        if let Some(e) = l.error_type {
            v.push(KeyValue::new(semconv::attribute::ERROR_TYPE, e.to_owned()));
        }
        v
    }

    /// One message sent (a publish or a request), and how long the send took.
    pub fn record_sent(&self, l: &MessageLabels<'_>, seconds: f64) {
        let attrs = self.labels(l);
        self.sent.add(1, &attrs);
        self.operation_duration.record(seconds, &attrs);
    }

    /// One message consumed.
    pub fn record_consumed(&self, l: &MessageLabels<'_>) {
        self.consumed.add(1, &self.labels(l));
    }

    /// How long processing one message took.
    pub fn record_process(&self, l: &MessageLabels<'_>, seconds: f64) {
        self.process_duration.record(seconds, &self.labels(l));
    }

    /// A client operation (receive, settle) and its duration.
    pub fn record_operation(&self, l: &MessageLabels<'_>, seconds: f64) {
        self.operation_duration.record(seconds, &self.labels(l));
    }

    /// One message settled with `outcome` (`ack`, `nak`, `term`, `dead_letter`).
    pub fn record_settled(&self, l: &MessageLabels<'_>, outcome: &'static str) {
        let mut attrs = self.labels(l);
        attrs.push(KeyValue::new("sdk.messaging.outcome", outcome));
        self.settled.add(1, &attrs);
    }

    /// One encode or decode: `operation` is `encode` or `decode`; `schema` is the
    /// schema id (a short, fixed list).
    pub fn record_codec(
        &self,
        operation: &'static str,
        format: &'static str,
        schema: &str,
        seconds: f64,
        bytes: u64,
    ) {
        let attrs = [
            KeyValue::new("sdk.codec.operation", operation),
            KeyValue::new("sdk.codec.format", format),
            self.schemas.get_or_other(schema),
        ];
        self.codec_duration.record(seconds, &attrs);
        self.codec_size.record(bytes, &attrs);
    }
}

/// Business metrics of the SDK: agent tasks, RAG queries, tokens and cost.
#[derive(Debug)]
pub struct SdkMetrics {
    agent_tasks: Counter<u64>,
    task_duration: Histogram<f64>,
    rag_queries: Counter<u64>,
    rag_duration: Histogram<f64>,
    tokens: Counter<u64>,
    cost: Counter<f64>,
    tenants: Arc<TenantLimiter>,
}

impl SdkMetrics {
    /// Creates the instruments on `meter`, with tenants capped by `tenants`.
    pub fn new(meter: &Meter, tenants: Arc<TenantLimiter>) -> SdkMetrics {
        SdkMetrics {
            agent_tasks: meter
                .u64_counter("sdk.agent.tasks")
                .with_unit("{task}")
                .build(),
            task_duration: meter
                .f64_histogram("sdk.agent.task.duration")
                .with_unit("s")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            rag_queries: meter
                .u64_counter("sdk.rag.queries")
                .with_unit("{query}")
                .build(),
            rag_duration: meter
                .f64_histogram("sdk.rag.query.duration")
                .with_unit("s")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            tokens: meter
                .u64_counter("sdk.llm.tokens")
                .with_unit("{token}")
                .build(),
            cost: meter.f64_counter("sdk.llm.cost").with_unit("USD").build(),
            tenants,
        }
    }

    /// One agent task finished with `status` after `seconds`.
    pub fn record_agent_task(&self, tenant: &str, agent: &str, status: &str, seconds: f64) {
        let attrs = [
            self.tenants.attribute(tenant),
            KeyValue::new("sdk.agent.id", agent.to_owned()),
            KeyValue::new("sdk.task.status", status.to_owned()),
        ];
        self.agent_tasks.add(1, &attrs);
        self.task_duration.record(seconds, &attrs);
    }

    /// One RAG query.
    pub fn record_rag_query(&self, tenant: &str, seconds: f64) {
        let attrs = [self.tenants.attribute(tenant)];
        self.rag_queries.add(1, &attrs);
        self.rag_duration.record(seconds, &attrs);
    }

    /// Tokens used by `model`; `kind` is `prompt` or `completion`.
    pub fn record_tokens(&self, tenant: &str, model: &str, kind: &'static str, tokens: u64) {
        self.tokens.add(
            tokens,
            &[
                self.tenants.attribute(tenant),
                KeyValue::new("gen_ai.request.model", model.to_owned()),
                KeyValue::new("gen_ai.token.type", kind),
            ],
        );
    }

    /// Cost in US dollars.
    pub fn record_cost(&self, tenant: &str, model: &str, usd: f64) {
        if usd.is_finite() && usd >= 0.0 {
            self.cost.add(
                usd,
                &[
                    self.tenants.attribute(tenant),
                    KeyValue::new("gen_ai.request.model", model.to_owned()),
                ],
            );
        }
    }
}

/// The operation name as a static value when it is one of the contract's (no copy).
fn static_operation(name: &str) -> Value {
    match crate::semconv::Operation::ALL
        .iter()
        .find(|op| op.name() == name)
    {
        Some(op) => Value::from(op.name()),
        None => Value::from(name.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_past_the_cap_fold_into_other() {
        let t = TenantLimiter::new(2);
        assert_eq!(t.attribute("a").value.as_str(), "a");
        assert_eq!(t.attribute("b").value.as_str(), "b");
        assert_eq!(t.attribute("c").value.as_str(), OTHER_TENANT);
        assert_eq!(t.attribute("a").value.as_str(), "a");
    }

    #[test]
    fn shared_values_are_shared_up_to_the_cap_then_fold_into_other() {
        let v = SharedValues::new("k", 1);
        let first = v.get_or_other("sdk.{tenant}.x");
        assert_eq!(first, v.get_or_other("sdk.{tenant}.x"));
        assert!(v.get("sdk.{tenant}.x").is_some());
        assert!(v.get("sdk.{tenant}.y").is_none(), "past the cap");
        assert_eq!(v.get_or_other("sdk.{tenant}.y").value.as_str(), "_other");
        assert_eq!(static_operation("publish"), Value::from("publish"));
        assert_eq!(static_operation("custom"), Value::from("custom".to_owned()));
    }
}
