//! Spans and metrics for agent tasks, tool calls, retrievals, embeddings and model
//! calls, after the OpenTelemetry GenAI semantic conventions (v1.41, the version the
//! `opentelemetry-semantic-conventions` 0.33 constants document).
//!
//! A [`GenAiSpan`] is a guard: it starts the span, collects what the call reports
//! (tokens, response model, cost, an error), and when it ends, by
//! [`GenAiSpan::end`] or by being dropped, it sets the late attributes, ends the span
//! and records `gen_ai.client.operation.duration`, `gen_ai.client.token.usage` and
//! `sdk.llm.cost`. [`GenAiSpan::context`] is a [`Context`] holding the span: start
//! child spans (a tool call inside an agent task, a NATS request inside a tool) from it.
//!
//! | builder | `gen_ai.operation.name` | span name | kind |
//! |---|---|---|---|
//! | [`GenAi::invoke_agent`] | `invoke_agent` | `invoke_agent {gen_ai.agent.name}` | INTERNAL |
//! | [`GenAi::execute_tool`] | `execute_tool` | `execute_tool {gen_ai.tool.name}` | INTERNAL |
//! | [`GenAi::retrieval`] | `retrieval` | `retrieval {gen_ai.data_source.id}` | CLIENT |
//! | [`GenAi::embeddings`] | `embeddings` | `embeddings {gen_ai.request.model}` | CLIENT |
//! | [`GenAi::chat`] | `chat` | `chat {gen_ai.request.model}` | CLIENT |
//!
//! ```
//! use opentelemetry::trace::TraceContextExt as _;
//! use sdk_telemetry::genai::{GenAi, GenAiInstruments};
//! use sdk_telemetry::{Exporter, Telemetry, TelemetryConfig};
//!
//! let telemetry = Telemetry::init(
//!     TelemetryConfig::builder("doc-agent")
//!         .exporters(Exporter::None, Exporter::None, Exporter::None)
//!         .install_global(false)
//!         .build()?,
//! )?;
//! // Once per process; clone it where it is needed.
//! let genai = GenAiInstruments::from_telemetry(&telemetry);
//!
//! let agent = GenAi::invoke_agent(&genai, "planner")
//!     .agent_id("planner-v2")
//!     .provider("openai")
//!     .tenant("acme")
//!     .conversation_id("conv-42")
//!     .start(&opentelemetry::Context::new());
//!
//! // A model call inside the agent task: its parent is the agent span.
//! let mut chat = GenAi::chat(&genai, "gpt-4o")
//!     .provider("openai")
//!     .tenant("acme")
//!     .start(agent.context());
//! chat.record_usage(812, 64);
//! chat.set_response_model("gpt-4o-2024-08-06");
//! chat.record_cost(0.0042);
//! assert_eq!(
//!     chat.context().span().span_context().trace_id(),
//!     agent.context().span().span_context().trace_id(),
//! );
//! chat.end();
//!
//! // A tool that failed: `error.type` is a short class, the message goes to the status.
//! let mut tool = GenAi::execute_tool(&genai, "search_flights")
//!     .tenant("acme")
//!     .start(agent.context());
//! tool.record_error("timeout", "no answer from the flights API within 10 s");
//! drop(tool); // dropping ends it too
//!
//! agent.end();
//! telemetry.shutdown(std::time::Duration::from_secs(1))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Metric attributes are `gen_ai.operation.name`, `gen_ai.provider.name`,
//! `gen_ai.request.model`, `gen_ai.response.model`, `error.type` (duration only),
//! `gen_ai.token.type` (token usage only) and the capped `sdk.tenant.id`. Prompts,
//! error messages, conversation and call ids stay on spans and never become labels;
//! `error.type` must be a short class (`timeout`, `rate_limited`, `429`), not a message.

use std::sync::Arc;
use std::time::Instant;

use opentelemetry::global::BoxedTracer;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::trace::{SpanBuilder, SpanKind, SpanRef, Status, TraceContextExt as _, Tracer};
use opentelemetry::{Context, KeyValue};

use crate::metrics::{TENANT_KEY, TenantLimiter};
use crate::propagation::tenant_of;
use crate::sampler::COMPONENT_KEY;

/// The GenAI keys and metric names. `opentelemetry-semantic-conventions` 0.33 marks
/// every `gen_ai.*` constant deprecated, not because the names changed but because
/// the GenAI conventions moved to their own repository (`semantic-conventions-genai`).
/// The names are current, so they are taken from the crate here, in one place.
#[allow(deprecated)]
mod keys {
    use opentelemetry_semantic_conventions::{attribute, metric};

    pub(super) const OPERATION_NAME: &str = attribute::GEN_AI_OPERATION_NAME;
    pub(super) const PROVIDER_NAME: &str = attribute::GEN_AI_PROVIDER_NAME;
    pub(super) const REQUEST_MODEL: &str = attribute::GEN_AI_REQUEST_MODEL;
    pub(super) const RESPONSE_MODEL: &str = attribute::GEN_AI_RESPONSE_MODEL;
    pub(super) const AGENT_NAME: &str = attribute::GEN_AI_AGENT_NAME;
    pub(super) const AGENT_ID: &str = attribute::GEN_AI_AGENT_ID;
    pub(super) const TOOL_NAME: &str = attribute::GEN_AI_TOOL_NAME;
    pub(super) const TOOL_CALL_ID: &str = attribute::GEN_AI_TOOL_CALL_ID;
    pub(super) const CONVERSATION_ID: &str = attribute::GEN_AI_CONVERSATION_ID;
    pub(super) const DATA_SOURCE_ID: &str = attribute::GEN_AI_DATA_SOURCE_ID;
    pub(super) const INPUT_TOKENS: &str = attribute::GEN_AI_USAGE_INPUT_TOKENS;
    pub(super) const OUTPUT_TOKENS: &str = attribute::GEN_AI_USAGE_OUTPUT_TOKENS;
    pub(super) const TOKEN_TYPE: &str = attribute::GEN_AI_TOKEN_TYPE;
    pub(super) const ERROR_TYPE: &str = attribute::ERROR_TYPE;

    pub(super) const OPERATION_DURATION: &str = metric::GEN_AI_CLIENT_OPERATION_DURATION;
    pub(super) const TOKEN_USAGE: &str = metric::GEN_AI_CLIENT_TOKEN_USAGE;
}

/// The name of the SDK's cost counter, shared with [`crate::SdkMetrics::record_cost`].
pub const COST_METRIC: &str = "sdk.llm.cost";

/// The bucket boundaries the GenAI conventions give for
/// `gen_ai.client.operation.duration`, in seconds: 0.01 doubling to 81.92.
pub const GENAI_DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// The bucket boundaries the GenAI conventions give for `gen_ai.client.token.usage`:
/// 1 growing fourfold to 67 108 864 tokens.
pub const GENAI_TOKEN_BUCKETS: [f64; 14] = [
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16_384.0,
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];

/// A GenAI operation: its `gen_ai.operation.name`, span kind and span name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GenAiOperation {
    /// An agent task in this process: `invoke_agent`, INTERNAL (the conventions'
    /// "invoke agent internal span"; an agent behind a remote API is CLIENT, see
    /// [`GenAiSpanBuilder::span_kind`]).
    InvokeAgent,
    /// A tool call: `execute_tool`, INTERNAL.
    ExecuteTool,
    /// A RAG retrieval from a vector store or search system: `retrieval`, CLIENT.
    Retrieval,
    /// An embeddings request: `embeddings`, CLIENT.
    Embeddings,
    /// A model call (chat completion): `chat`, CLIENT.
    Chat,
}

impl GenAiOperation {
    /// `gen_ai.operation.name`: a well-known value of the conventions' registry.
    /// (The Rust crate has no constants for attribute values.)
    pub fn name(self) -> &'static str {
        match self {
            GenAiOperation::InvokeAgent => "invoke_agent",
            GenAiOperation::ExecuteTool => "execute_tool",
            GenAiOperation::Retrieval => "retrieval",
            GenAiOperation::Embeddings => "embeddings",
            GenAiOperation::Chat => "chat",
        }
    }

    /// The span kind the conventions give.
    pub fn kind(self) -> SpanKind {
        match self {
            GenAiOperation::InvokeAgent | GenAiOperation::ExecuteTool => SpanKind::Internal,
            GenAiOperation::Retrieval | GenAiOperation::Embeddings | GenAiOperation::Chat => {
                SpanKind::Client
            }
        }
    }
}

/// The span name: `{operation} {target}`, where the target is the request model
/// (chat, embeddings), the agent name, the tool name or the data source id. Without a
/// target (`None` or empty) it is the operation name alone, as the conventions say.
pub fn span_name(op: GenAiOperation, target: Option<&str>) -> String {
    match target {
        Some(t) if !t.is_empty() => {
            let mut name = String::with_capacity(op.name().len() + 1 + t.len());
            name.push_str(op.name());
            name.push(' ');
            name.push_str(t);
            name
        }
        _ => op.name().to_owned(),
    }
}

/// The GenAI client instruments: `gen_ai.client.operation.duration`,
/// `gen_ai.client.token.usage` and the SDK's `sdk.llm.cost`, with a tenant limiter.
/// Cheap to clone; clones share the instruments and the limiter.
#[derive(Debug, Clone)]
pub struct GenAiMetrics {
    duration: Histogram<f64>,
    tokens: Histogram<u64>,
    cost: Counter<f64>,
    tenants: Arc<TenantLimiter>,
}

impl GenAiMetrics {
    /// Creates the instruments on `meter`, capping tenants with `tenants` (pass the
    /// limiter other instrument sets use to share one cap). On the meter named `sdk`,
    /// as [`crate::Telemetry::genai_metrics`] does, the cost counter is the same
    /// instrument as [`crate::SdkMetrics`]'s.
    pub fn new(meter: &Meter, tenants: Arc<TenantLimiter>) -> GenAiMetrics {
        GenAiMetrics {
            duration: meter
                .f64_histogram(keys::OPERATION_DURATION)
                .with_unit("s")
                .with_description("GenAI operation duration")
                .with_boundaries(GENAI_DURATION_BUCKETS.to_vec())
                .build(),
            tokens: meter
                .u64_histogram(keys::TOKEN_USAGE)
                .with_unit("{token}")
                .with_description("Number of input and output tokens used")
                .with_boundaries(GENAI_TOKEN_BUCKETS.to_vec())
                .build(),
            // Name, unit and (no) description exactly as `SdkMetrics`, so both feed
            // one instrument.
            cost: meter.f64_counter(COST_METRIC).with_unit("USD").build(),
            tenants,
        }
    }

    /// The tenant limiter.
    pub fn tenants(&self) -> &Arc<TenantLimiter> {
        &self.tenants
    }
}

/// What GenAI spans are started with: a tracer and the metrics.
#[derive(Debug, Clone)]
pub struct GenAiInstruments {
    tracer: Arc<BoxedTracer>,
    metrics: GenAiMetrics,
}

impl GenAiInstruments {
    /// From any tracer (an `SdkTracer`, the global one) and a metric set.
    pub fn new<T>(tracer: T, metrics: GenAiMetrics) -> GenAiInstruments
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        GenAiInstruments {
            tracer: Arc::new(BoxedTracer::new(Box::new(tracer))),
            metrics,
        }
    }

    /// The tracer `sdk.genai` and [`crate::Telemetry::genai_metrics`] of `telemetry`.
    pub fn from_telemetry(telemetry: &crate::Telemetry) -> GenAiInstruments {
        GenAiInstruments::new(telemetry.tracer("sdk.genai"), telemetry.genai_metrics())
    }

    /// The metrics.
    pub fn metrics(&self) -> &GenAiMetrics {
        &self.metrics
    }
}

/// Where GenAI span builders come from: one constructor per operation.
#[derive(Debug)]
pub enum GenAi {}

impl GenAi {
    /// An agent task (`invoke_agent {agent_name}`, INTERNAL), with `gen_ai.agent.name`.
    pub fn invoke_agent<'a>(
        instruments: &'a GenAiInstruments,
        agent_name: &str,
    ) -> GenAiSpanBuilder<'a> {
        GenAiSpanBuilder::new(instruments, GenAiOperation::InvokeAgent).agent_name(agent_name)
    }

    /// A tool call (`execute_tool {tool_name}`, INTERNAL), with `gen_ai.tool.name`.
    pub fn execute_tool<'a>(
        instruments: &'a GenAiInstruments,
        tool_name: &str,
    ) -> GenAiSpanBuilder<'a> {
        let mut b = GenAiSpanBuilder::new(instruments, GenAiOperation::ExecuteTool);
        b.tool_name = Some(tool_name.to_owned());
        b
    }

    /// A retrieval (`retrieval {data_source_id}`, CLIENT), with `gen_ai.data_source.id`.
    pub fn retrieval<'a>(
        instruments: &'a GenAiInstruments,
        data_source_id: &str,
    ) -> GenAiSpanBuilder<'a> {
        GenAiSpanBuilder::new(instruments, GenAiOperation::Retrieval).data_source_id(data_source_id)
    }

    /// An embeddings request (`embeddings {model}`, CLIENT), with `gen_ai.request.model`.
    pub fn embeddings<'a>(instruments: &'a GenAiInstruments, model: &str) -> GenAiSpanBuilder<'a> {
        GenAiSpanBuilder::new(instruments, GenAiOperation::Embeddings).request_model(model)
    }

    /// A model call (`chat {model}`, CLIENT), with `gen_ai.request.model`.
    pub fn chat<'a>(instruments: &'a GenAiInstruments, model: &str) -> GenAiSpanBuilder<'a> {
        GenAiSpanBuilder::new(instruments, GenAiOperation::Chat).request_model(model)
    }
}

/// A GenAI span about to start. Everything set here is an attribute from the start,
/// so samplers see it.
#[derive(Debug)]
#[must_use = "nothing is recorded until `start`"]
pub struct GenAiSpanBuilder<'a> {
    instruments: &'a GenAiInstruments,
    operation: GenAiOperation,
    kind: SpanKind,
    provider: Option<String>,
    request_model: Option<String>,
    tenant: Option<String>,
    agent_name: Option<String>,
    agent_id: Option<String>,
    tool_name: Option<String>,
    tool_call_id: Option<String>,
    conversation_id: Option<String>,
    data_source_id: Option<String>,
    component: Option<String>,
}

impl<'a> GenAiSpanBuilder<'a> {
    fn new(instruments: &'a GenAiInstruments, operation: GenAiOperation) -> Self {
        GenAiSpanBuilder {
            instruments,
            operation,
            kind: operation.kind(),
            provider: None,
            request_model: None,
            tenant: None,
            agent_name: None,
            agent_id: None,
            tool_name: None,
            tool_call_id: None,
            conversation_id: None,
            data_source_id: None,
            component: None,
        }
    }

    /// `gen_ai.provider.name`: `openai`, `anthropic`, `aws.bedrock`, ... (the
    /// conventions' well-known values). Also a metric attribute.
    pub fn provider(mut self, provider: &str) -> Self {
        self.provider = Some(provider.to_owned());
        self
    }

    /// `gen_ai.request.model`. Also a metric attribute.
    pub fn request_model(mut self, model: &str) -> Self {
        self.request_model = Some(model.to_owned());
        self
    }

    /// `sdk.tenant.id`. Without it, the tenant in the parent context's baggage
    /// ([`crate::with_tenant`]) is used, if any. On metrics it is capped.
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.to_owned());
        self
    }

    /// `gen_ai.agent.name`; for `invoke_agent` it is also the span name's target.
    pub fn agent_name(mut self, name: &str) -> Self {
        self.agent_name = Some(name.to_owned());
        self
    }

    /// `gen_ai.agent.id`.
    pub fn agent_id(mut self, id: &str) -> Self {
        self.agent_id = Some(id.to_owned());
        self
    }

    /// `gen_ai.tool.call.id`, the id the model gave the call.
    pub fn tool_call_id(mut self, id: &str) -> Self {
        self.tool_call_id = Some(id.to_owned());
        self
    }

    /// `gen_ai.conversation.id`: the session or thread.
    pub fn conversation_id(mut self, id: &str) -> Self {
        self.conversation_id = Some(id.to_owned());
        self
    }

    /// `gen_ai.data_source.id`; for `retrieval` it is also the span name's target.
    pub fn data_source_id(mut self, id: &str) -> Self {
        self.data_source_id = Some(id.to_owned());
        self
    }

    /// `sdk.component`, which per-component sampling rules match on.
    pub fn component(mut self, component: &str) -> Self {
        self.component = Some(component.to_owned());
        self
    }

    /// Overrides the span kind: CLIENT for an agent behind a remote API, INTERNAL for
    /// a model running in this process (both allowed by the conventions).
    pub fn span_kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }

    /// The span name this builder will use.
    pub fn name(&self) -> String {
        let target = match self.operation {
            GenAiOperation::InvokeAgent => self.agent_name.as_deref(),
            GenAiOperation::ExecuteTool => self.tool_name.as_deref(),
            GenAiOperation::Retrieval => self.data_source_id.as_deref(),
            GenAiOperation::Embeddings | GenAiOperation::Chat => self.request_model.as_deref(),
        };
        span_name(self.operation, target)
    }

    /// The span's attributes at start. `tenant` is the resolved tenant.
    fn attributes(&self, tenant: Option<&str>) -> Vec<KeyValue> {
        let mut v = Vec::with_capacity(11);
        v.push(KeyValue::new(keys::OPERATION_NAME, self.operation.name()));
        let optional = [
            (keys::PROVIDER_NAME, &self.provider),
            (keys::REQUEST_MODEL, &self.request_model),
            (keys::AGENT_NAME, &self.agent_name),
            (keys::AGENT_ID, &self.agent_id),
            (keys::TOOL_NAME, &self.tool_name),
            (keys::TOOL_CALL_ID, &self.tool_call_id),
            (keys::CONVERSATION_ID, &self.conversation_id),
            (keys::DATA_SOURCE_ID, &self.data_source_id),
            (COMPONENT_KEY, &self.component),
        ];
        for (key, value) in optional {
            if let Some(value) = value
                && !value.is_empty()
            {
                v.push(KeyValue::new(key, value.clone()));
            }
        }
        if let Some(t) = tenant {
            v.push(KeyValue::new(TENANT_KEY, t.to_owned()));
        }
        v
    }

    /// Starts the span as a child of `parent`.
    pub fn start(self, parent: &Context) -> GenAiSpan {
        let tenant = self.tenant.clone().or_else(|| tenant_of(parent));
        let span = SpanBuilder::from_name(self.name())
            .with_kind(self.kind.clone())
            .with_attributes(self.attributes(tenant.as_deref()))
            .start_with_context(self.instruments.tracer.as_ref(), parent);
        GenAiSpan {
            cx: parent.with_span(span),
            metrics: self.instruments.metrics.clone(),
            operation: self.operation,
            provider: self.provider,
            request_model: self.request_model,
            tenant,
            response_model: None,
            input_tokens: None,
            output_tokens: None,
            cost: None,
            error_type: None,
            started: Instant::now(),
            ended: false,
        }
    }
}

/// A started GenAI span. Ends on [`GenAiSpan::end`] or on drop, and then records the
/// metrics, once.
#[derive(Debug)]
pub struct GenAiSpan {
    cx: Context,
    metrics: GenAiMetrics,
    operation: GenAiOperation,
    provider: Option<String>,
    request_model: Option<String>,
    tenant: Option<String>,
    response_model: Option<String>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cost: Option<f64>,
    error_type: Option<String>,
    started: Instant,
    ended: bool,
}

impl GenAiSpan {
    /// A context holding this span: the parent for child spans, for injection into
    /// message headers, or to `attach`.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// The span itself, for attributes and events these helpers do not cover.
    pub fn span(&self) -> SpanRef<'_> {
        self.cx.span()
    }

    /// The operation.
    pub fn operation(&self) -> GenAiOperation {
        self.operation
    }

    /// Adds input (prompt) and output (completion) tokens. Totals go to
    /// `gen_ai.usage.input_tokens` and `gen_ai.usage.output_tokens` and to one
    /// `gen_ai.client.token.usage` point each when the span ends. Nothing is reported
    /// for a count never recorded, as the conventions require.
    pub fn record_usage(&mut self, input_tokens: u64, output_tokens: u64) {
        self.record_input_tokens(input_tokens);
        self.record_output_tokens(output_tokens);
    }

    /// Adds input tokens only (an embeddings call has no output tokens).
    pub fn record_input_tokens(&mut self, tokens: u64) {
        self.input_tokens = Some(self.input_tokens.unwrap_or(0).saturating_add(tokens));
    }

    /// Adds output tokens only.
    pub fn record_output_tokens(&mut self, tokens: u64) {
        self.output_tokens = Some(self.output_tokens.unwrap_or(0).saturating_add(tokens));
    }

    /// `gen_ai.response.model`, the model that answered. Also a metric attribute.
    pub fn set_response_model(&mut self, model: &str) {
        self.response_model = Some(model.to_owned());
    }

    /// Adds a cost in US dollars, counted on `sdk.llm.cost` when the span ends. NaN,
    /// infinite and negative amounts are ignored.
    pub fn record_cost(&mut self, usd: f64) {
        if usd.is_finite() && usd >= 0.0 {
            self.cost = Some(self.cost.unwrap_or(0.0) + usd);
        }
    }

    /// Marks the operation failed: `error.type` on the span and the duration metric,
    /// and an error status with `message`. `error_type` is a label, so keep it to a
    /// short class (`timeout`, `rate_limited`, the provider's error code), never a
    /// message; `message` only goes on the span.
    pub fn record_error(&mut self, error_type: &str, message: &str) {
        self.error_type = Some(error_type.to_owned());
        self.cx.span().set_status(Status::error(message.to_owned()));
    }

    /// Ends the span and records the metrics.
    pub fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        let seconds = self.started.elapsed().as_secs_f64();
        let span = self.cx.span();
        let mut late = Vec::with_capacity(4);
        if let Some(m) = &self.response_model {
            late.push(KeyValue::new(keys::RESPONSE_MODEL, m.clone()));
        }
        if let Some(n) = self.input_tokens {
            late.push(KeyValue::new(keys::INPUT_TOKENS, to_i64(n)));
        }
        if let Some(n) = self.output_tokens {
            late.push(KeyValue::new(keys::OUTPUT_TOKENS, to_i64(n)));
        }
        if let Some(e) = &self.error_type {
            late.push(KeyValue::new(keys::ERROR_TYPE, e.clone()));
        }
        span.set_attributes(late);
        span.end();

        let labels = self.labels();
        let m = &self.metrics;
        if let Some(n) = self.input_tokens {
            m.tokens
                .record(n, &with(&labels, KeyValue::new(keys::TOKEN_TYPE, "input")));
        }
        if let Some(n) = self.output_tokens {
            m.tokens
                .record(n, &with(&labels, KeyValue::new(keys::TOKEN_TYPE, "output")));
        }
        if let Some(usd) = self.cost {
            m.cost.add(usd, &labels);
        }
        match &self.error_type {
            Some(e) => m.duration.record(
                seconds,
                &with(&labels, KeyValue::new(keys::ERROR_TYPE, e.clone())),
            ),
            None => m.duration.record(seconds, &labels),
        }
    }

    /// The low-cardinality labels shared by every metric of this span.
    fn labels(&self) -> Vec<KeyValue> {
        let mut v = Vec::with_capacity(6);
        v.push(KeyValue::new(keys::OPERATION_NAME, self.operation.name()));
        let optional = [
            (keys::PROVIDER_NAME, &self.provider),
            (keys::REQUEST_MODEL, &self.request_model),
            (keys::RESPONSE_MODEL, &self.response_model),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                v.push(KeyValue::new(key, value.clone()));
            }
        }
        if let Some(t) = &self.tenant {
            v.push(self.metrics.tenants.attribute(t));
        }
        v
    }
}

impl Drop for GenAiSpan {
    fn drop(&mut self) {
        self.finish();
    }
}

fn with(labels: &[KeyValue], extra: KeyValue) -> Vec<KeyValue> {
    let mut v = Vec::with_capacity(labels.len() + 1);
    v.extend_from_slice(labels);
    v.push(extra);
    v
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
