//! GenAI spans and metrics, exported to a real OTLP collector (rotel) and read back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt as _};
use sdk_telemetry::genai::{GenAi, GenAiInstruments, GenAiMetrics};
use sdk_telemetry::semconv::{self, MessageInfo, Operation};
use sdk_telemetry::{Exporter, Protocol, Telemetry, TelemetryConfig, TenantLimiter};
use sdk_testkit::{Collector, Metric, MetricPoint, Span};

const WAIT: Duration = Duration::from_secs(15);

fn telemetry(collector: &Collector) -> Telemetry {
    Telemetry::init(
        TelemetryConfig::builder("genai-test")
            .otlp(&collector.grpc_endpoint(), Protocol::Grpc)
            .exporters(Exporter::Otlp, Exporter::Otlp, Exporter::None)
            .install_global(false)
            .log_format(sdk_telemetry::LogFormat::Off)
            .build()
            .unwrap(),
    )
    .unwrap()
}

fn span_id(span: &opentelemetry::Context) -> String {
    span.span().span_context().span_id().to_string()
}

fn trace_id(span: &opentelemetry::Context) -> String {
    span.span().span_context().trace_id().to_string()
}

fn attr<'a>(span: &'a Span, key: &str) -> &'a str {
    span.attributes.get(key).map_or_else(
        || panic!("{} has no {key}: {:?}", span.name, span.attributes),
        String::as_str,
    )
}

/// The one point of `metric` whose attributes include every pair of `want`.
fn point<'a>(metric: &'a Metric, want: &[(&str, &str)]) -> &'a MetricPoint {
    let found: Vec<&MetricPoint> = metric
        .points
        .iter()
        .filter(|p| {
            want.iter()
                .all(|(k, v)| p.attributes.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "points of {} matching {want:?}: {:#?}",
        metric.name,
        metric.points
    );
    found[0]
}

/// The explicit bucket bounds a histogram point was exported with.
fn bounds(p: &MetricPoint) -> Vec<f64> {
    let mut b: Vec<(usize, f64)> = p
        .fields
        .iter()
        .filter_map(|(k, v)| {
            let i = k.strip_prefix("ExplicitBounds #")?.parse().ok()?;
            Some((i, v.parse().ok()?))
        })
        .collect();
    b.sort_by_key(|(i, _)| *i);
    b.into_iter().map(|(_, v)| v).collect()
}

#[test]
fn the_five_operations_export_with_their_names_kinds_parents_and_attributes() {
    let collector = Collector::start();
    let telemetry = telemetry(&collector);
    let genai = GenAiInstruments::from_telemetry(&telemetry);
    let root = opentelemetry::Context::new();

    let agent = GenAi::invoke_agent(&genai, "planner")
        .agent_id("planner-v2")
        .provider("openai")
        .conversation_id("conv-42")
        .tenant("acme")
        .start(&root);
    let agent_cx = agent.context().clone();

    let retrieval = GenAi::retrieval(&genai, "kb-products")
        .provider("openai")
        .tenant("acme")
        .start(agent.context());
    let retrieval_cx = retrieval.context().clone();
    retrieval
        .span()
        .set_attribute(opentelemetry::KeyValue::new("gen_ai.request.top_k", 5.0));
    retrieval.end();

    let mut embeddings = GenAi::embeddings(&genai, "text-embedding-3-small")
        .provider("openai")
        .tenant("acme")
        .start(agent.context());
    let embeddings_cx = embeddings.context().clone();
    embeddings.record_input_tokens(12);
    embeddings.end();

    let mut chat = GenAi::chat(&genai, "gpt-4o")
        .provider("openai")
        .conversation_id("conv-42")
        .tenant("acme")
        .start(agent.context());
    let chat_cx = chat.context().clone();
    chat.record_usage(812, 64);
    chat.set_response_model("gpt-4o-2024-08-06");
    chat.end();

    let tool = GenAi::execute_tool(&genai, "search_flights")
        .tool_call_id("call_1")
        .tenant("acme")
        .start(agent.context());
    let tool_cx = tool.context().clone();
    // A NATS request made by the tool: a messaging span whose parent is the tool span.
    let tracer = telemetry.tracer("bus");
    let info = MessageInfo {
        destination: "sdk.acme.flights.search",
        template: "sdk.{tenant}.flights.search",
        tenant: Some("acme"),
        ..Default::default()
    };
    let mut request = semconv::start_span(&tracer, Operation::Request, &info, tool.context());
    let request_id = request.span_context().span_id().to_string();
    request.end();
    drop(tool);
    agent.end();

    telemetry.shutdown(Duration::from_secs(10)).unwrap();

    let trace = trace_id(&agent_cx);
    for cx in [&retrieval_cx, &embeddings_cx, &chat_cx, &tool_cx] {
        assert_eq!(trace_id(cx), trace, "one trace");
    }

    // invoke_agent
    let s = collector.wait_for_span("invoke_agent planner", WAIT);
    assert_eq!(s.kind, "SPAN_KIND_INTERNAL");
    assert_eq!(s.span_id, span_id(&agent_cx));
    assert_eq!(s.parent_id, "", "a root span");
    assert_eq!(attr(&s, "gen_ai.operation.name"), "invoke_agent");
    assert_eq!(attr(&s, "gen_ai.agent.name"), "planner");
    assert_eq!(attr(&s, "gen_ai.agent.id"), "planner-v2");
    assert_eq!(attr(&s, "gen_ai.provider.name"), "openai");
    assert_eq!(attr(&s, "gen_ai.conversation.id"), "conv-42");
    assert_eq!(attr(&s, "sdk.tenant.id"), "acme");
    assert_eq!(s.scope, "sdk.genai");
    assert!(!s.attributes.contains_key("error.type"));
    assert!(
        !s.attributes.contains_key("gen_ai.usage.input_tokens"),
        "nothing recorded, nothing reported"
    );

    // retrieval
    let s = collector.wait_for_span("retrieval kb-products", WAIT);
    assert_eq!(s.kind, "SPAN_KIND_CLIENT");
    assert_eq!(s.span_id, span_id(&retrieval_cx));
    assert_eq!(s.parent_id, span_id(&agent_cx));
    assert_eq!(s.trace_id, trace);
    assert_eq!(attr(&s, "gen_ai.operation.name"), "retrieval");
    assert_eq!(attr(&s, "gen_ai.data_source.id"), "kb-products");
    assert_eq!(attr(&s, "gen_ai.provider.name"), "openai");
    assert_eq!(attr(&s, "gen_ai.request.top_k"), "5");
    assert_eq!(attr(&s, "sdk.tenant.id"), "acme");

    // embeddings
    let s = collector.wait_for_span("embeddings text-embedding-3-small", WAIT);
    assert_eq!(s.kind, "SPAN_KIND_CLIENT");
    assert_eq!(s.span_id, span_id(&embeddings_cx));
    assert_eq!(s.parent_id, span_id(&agent_cx));
    assert_eq!(attr(&s, "gen_ai.operation.name"), "embeddings");
    assert_eq!(attr(&s, "gen_ai.request.model"), "text-embedding-3-small");
    assert_eq!(attr(&s, "gen_ai.provider.name"), "openai");
    assert_eq!(attr(&s, "gen_ai.usage.input_tokens"), "12");
    assert!(!s.attributes.contains_key("gen_ai.usage.output_tokens"));
    assert_eq!(attr(&s, "sdk.tenant.id"), "acme");

    // chat
    let s = collector.wait_for_span("chat gpt-4o", WAIT);
    assert_eq!(s.kind, "SPAN_KIND_CLIENT");
    assert_eq!(s.span_id, span_id(&chat_cx));
    assert_eq!(s.parent_id, span_id(&agent_cx));
    assert_eq!(attr(&s, "gen_ai.operation.name"), "chat");
    assert_eq!(attr(&s, "gen_ai.request.model"), "gpt-4o");
    assert_eq!(attr(&s, "gen_ai.response.model"), "gpt-4o-2024-08-06");
    assert_eq!(attr(&s, "gen_ai.provider.name"), "openai");
    assert_eq!(attr(&s, "gen_ai.usage.input_tokens"), "812");
    assert_eq!(attr(&s, "gen_ai.usage.output_tokens"), "64");
    assert_eq!(attr(&s, "gen_ai.conversation.id"), "conv-42");
    assert_eq!(attr(&s, "sdk.tenant.id"), "acme");
    assert_ne!(s.status, "STATUS_CODE_ERROR");

    // execute_tool, and the request made inside it
    let s = collector.wait_for_span("execute_tool search_flights", WAIT);
    assert_eq!(s.kind, "SPAN_KIND_INTERNAL");
    assert_eq!(s.span_id, span_id(&tool_cx));
    assert_eq!(s.parent_id, span_id(&agent_cx));
    assert_eq!(attr(&s, "gen_ai.operation.name"), "execute_tool");
    assert_eq!(attr(&s, "gen_ai.tool.name"), "search_flights");
    assert_eq!(attr(&s, "gen_ai.tool.call.id"), "call_1");
    assert_eq!(attr(&s, "sdk.tenant.id"), "acme");
    assert!(
        !s.attributes.contains_key("gen_ai.provider.name"),
        "not set, not invented"
    );
    let r = collector.wait_for_span("request sdk.{tenant}.flights.search", WAIT);
    assert_eq!(r.span_id, request_id);
    assert_eq!(
        r.parent_id,
        span_id(&tool_cx),
        "the NATS request is the tool's child"
    );
    assert_eq!(r.trace_id, trace);
}

#[test]
fn duration_token_usage_and_cost_points_carry_the_convention_attributes_and_buckets() {
    let collector = Collector::start();
    let telemetry = telemetry(&collector);
    let genai = GenAiInstruments::from_telemetry(&telemetry);

    let mut chat = GenAi::chat(&genai, "gpt-4o")
        .provider("openai")
        .tenant("acme")
        .conversation_id("conv-never-a-label")
        .start(&opentelemetry::Context::new());
    chat.record_usage(812, 64);
    chat.set_response_model("gpt-4o-2024-08-06");
    chat.record_cost(0.004);
    chat.record_cost(0.002);
    std::thread::sleep(Duration::from_millis(30));
    chat.end();

    let mut emb = GenAi::embeddings(&genai, "text-embedding-3-small")
        .provider("openai")
        .tenant("acme")
        .start(&opentelemetry::Context::new());
    emb.record_input_tokens(20);
    drop(emb); // ended by Drop: recorded all the same
    // The SDK's own cost counter, recorded directly: the same instrument.
    telemetry.sdk_metrics().record_cost("acme", "gpt-4o", 0.01);

    telemetry.shutdown(Duration::from_secs(10)).unwrap();

    let duration = collector.wait_for(WAIT, "the duration histogram", |r| {
        r.last_metric("gen_ai.client.operation.duration").cloned()
    });
    assert_eq!(duration.unit, "s");
    assert_eq!(duration.data_type, "Histogram");
    assert_eq!(duration.resource["service.name"], "genai-test");
    let p = point(&duration, &[("gen_ai.operation.name", "chat")]);
    let want: BTreeMap<&str, &str> = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.request.model", "gpt-4o"),
        ("gen_ai.response.model", "gpt-4o-2024-08-06"),
        ("sdk.tenant.id", "acme"),
    ]
    .into_iter()
    .collect();
    let got: BTreeMap<&str, &str> = p
        .attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        got, want,
        "exactly these labels: no conversation id, no error.type"
    );
    assert_eq!(p.fields["Count"], "1");
    let sum: f64 = p.fields["Sum"].parse().unwrap();
    assert!(sum >= 0.03, "the duration covers the 30 ms sleep: {sum}");
    assert_eq!(
        bounds(p),
        [
            0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92
        ]
    );
    let p = point(&duration, &[("gen_ai.operation.name", "embeddings")]);
    assert_eq!(
        p.attributes["gen_ai.request.model"],
        "text-embedding-3-small"
    );
    assert_eq!(p.fields["Count"], "1");

    let tokens = collector.wait_for(WAIT, "the token usage histogram", |r| {
        r.last_metric("gen_ai.client.token.usage").cloned()
    });
    assert_eq!(tokens.unit, "{token}");
    assert_eq!(tokens.data_type, "Histogram");
    let input = point(
        &tokens,
        &[
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.token.type", "input"),
        ],
    );
    assert_eq!(input.fields["Sum"], "812");
    assert_eq!(input.fields["Count"], "1");
    assert_eq!(input.attributes["gen_ai.provider.name"], "openai");
    assert_eq!(input.attributes["gen_ai.request.model"], "gpt-4o");
    assert_eq!(
        input.attributes["gen_ai.response.model"],
        "gpt-4o-2024-08-06"
    );
    assert_eq!(input.attributes["sdk.tenant.id"], "acme");
    assert!(!input.attributes.contains_key("error.type"));
    let output = point(
        &tokens,
        &[
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.token.type", "output"),
        ],
    );
    assert_eq!(output.fields["Sum"], "64");
    assert_eq!(
        bounds(output),
        [
            1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
            4194304.0, 16777216.0, 67108864.0
        ]
    );
    let emb_in = point(
        &tokens,
        &[
            ("gen_ai.operation.name", "embeddings"),
            ("gen_ai.token.type", "input"),
        ],
    );
    assert_eq!(emb_in.fields["Sum"], "20");
    assert!(
        !tokens.points.iter().any(|p| p
            .attributes
            .get("gen_ai.operation.name")
            .map(String::as_str)
            == Some("embeddings")
            && p.attributes["gen_ai.token.type"] == "output"),
        "no output tokens recorded, none reported"
    );

    let cost = collector.wait_for(WAIT, "the cost counter", |r| {
        r.last_metric("sdk.llm.cost").cloned()
    });
    assert_eq!(cost.unit, "USD");
    assert_eq!(cost.data_type, "Sum");
    let p = point(&cost, &[("gen_ai.operation.name", "chat")]);
    let usd: f64 = p.fields["Value"].parse().unwrap();
    assert!((usd - 0.006).abs() < 1e-9, "{usd}");
    assert_eq!(p.attributes["sdk.tenant.id"], "acme");
    assert_eq!(p.attributes["gen_ai.request.model"], "gpt-4o");
    assert_eq!(
        cost.points.len(),
        2,
        "SdkMetrics::record_cost and the GenAI spans feed one sdk.llm.cost: {:#?}",
        cost.points
    );
    let direct = cost
        .points
        .iter()
        .find(|p| !p.attributes.contains_key("gen_ai.operation.name"))
        .unwrap();
    assert_eq!(direct.fields["Value"], "0.01");
}

#[test]
fn a_failed_call_sets_error_type_and_an_error_status_and_labels_its_duration() {
    let collector = Collector::start();
    let telemetry = telemetry(&collector);
    let genai = GenAiInstruments::from_telemetry(&telemetry);

    let mut chat = GenAi::chat(&genai, "claude-sonnet")
        .provider("anthropic")
        .tenant("acme")
        .start(&opentelemetry::Context::new());
    chat.record_error("rate_limited", "429 Too Many Requests: retry after 20 s");
    let chat_cx = chat.context().clone();
    drop(chat);

    let mut tool = GenAi::execute_tool(&genai, "lookup")
        .tenant("acme")
        .start(&opentelemetry::Context::new());
    tool.record_error("timeout", "no answer within 10 s");
    tool.end();

    telemetry.shutdown(Duration::from_secs(10)).unwrap();

    let s = collector.wait_for_span("chat claude-sonnet", WAIT);
    assert_eq!(s.span_id, span_id(&chat_cx));
    assert_eq!(s.kind, "SPAN_KIND_CLIENT");
    assert_eq!(attr(&s, "error.type"), "rate_limited");
    assert_eq!(s.status, "STATUS_CODE_ERROR");
    let raw = collector.raw_output();
    assert!(
        raw.contains("429 Too Many Requests: retry after 20 s"),
        "the message is the status description:\n{raw}"
    );
    let s = collector.wait_for_span("execute_tool lookup", WAIT);
    assert_eq!(attr(&s, "error.type"), "timeout");
    assert_eq!(s.status, "STATUS_CODE_ERROR");

    let duration = collector.wait_for(WAIT, "the duration histogram", |r| {
        r.last_metric("gen_ai.client.operation.duration").cloned()
    });
    let p = point(&duration, &[("gen_ai.operation.name", "chat")]);
    assert_eq!(p.attributes["error.type"], "rate_limited");
    assert_eq!(p.attributes["gen_ai.provider.name"], "anthropic");
    assert!(
        p.attributes.values().all(|v| !v.contains("Too Many")),
        "the message never becomes a label: {:?}",
        p.attributes
    );
    let p = point(&duration, &[("gen_ai.operation.name", "execute_tool")]);
    assert_eq!(p.attributes["error.type"], "timeout");
    assert_eq!(p.attributes["sdk.tenant.id"], "acme");
}

#[test]
fn the_tenant_comes_from_baggage_and_is_capped_on_metrics_only() {
    let collector = Collector::start();
    let telemetry = telemetry(&collector);
    // One limiter shared by the caller, with room for a single tenant.
    let metrics = GenAiMetrics::new(
        &telemetry.meter("sdk"),
        std::sync::Arc::new(TenantLimiter::new(1)),
    );
    let genai = GenAiInstruments::new(telemetry.tracer("agents"), metrics);

    let first =
        GenAi::chat(&genai, "m-first")
            .provider("openai")
            .start(&sdk_telemetry::with_tenant(
                &opentelemetry::Context::new(),
                "acme",
            ));
    first.end();
    let second = GenAi::chat(&genai, "m-second")
        .provider("openai")
        .tenant("globex")
        .start(&opentelemetry::Context::new());
    second.end();
    let none = GenAi::chat(&genai, "m-none")
        .provider("openai")
        .span_kind(SpanKind::Internal)
        .start(&opentelemetry::Context::new());
    none.end();

    telemetry.shutdown(Duration::from_secs(10)).unwrap();

    let s = collector.wait_for_span("chat m-first", WAIT);
    assert_eq!(
        attr(&s, "sdk.tenant.id"),
        "acme",
        "taken from the parent's baggage"
    );
    assert_eq!(s.scope, "agents");
    let s = collector.wait_for_span("chat m-second", WAIT);
    assert_eq!(attr(&s, "sdk.tenant.id"), "globex", "spans are not capped");
    let s = collector.wait_for_span("chat m-none", WAIT);
    assert!(!s.attributes.contains_key("sdk.tenant.id"));
    assert_eq!(s.kind, "SPAN_KIND_INTERNAL", "the kind can be overridden");

    let duration = collector.wait_for(WAIT, "the duration histogram", |r| {
        r.last_metric("gen_ai.client.operation.duration").cloned()
    });
    let p = point(&duration, &[("gen_ai.request.model", "m-first")]);
    assert_eq!(p.attributes["sdk.tenant.id"], "acme");
    let p = point(&duration, &[("gen_ai.request.model", "m-second")]);
    assert_eq!(p.attributes["sdk.tenant.id"], sdk_telemetry::OTHER_TENANT);
    let p = point(&duration, &[("gen_ai.request.model", "m-none")]);
    assert!(!p.attributes.contains_key("sdk.tenant.id"));
}
