use super::*;

fn instruments() -> GenAiInstruments {
    let meter = opentelemetry::global::meter("genai-unit");
    let tracer = opentelemetry::global::tracer("genai-unit");
    GenAiInstruments::new(
        tracer,
        GenAiMetrics::new(&meter, Arc::new(TenantLimiter::new(2))),
    )
}

fn get(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[test]
fn operation_names_are_the_well_known_values() {
    assert_eq!(GenAiOperation::InvokeAgent.name(), "invoke_agent");
    assert_eq!(GenAiOperation::ExecuteTool.name(), "execute_tool");
    assert_eq!(GenAiOperation::Retrieval.name(), "retrieval");
    assert_eq!(GenAiOperation::Embeddings.name(), "embeddings");
    assert_eq!(GenAiOperation::Chat.name(), "chat");
}

#[test]
fn kinds_follow_the_conventions() {
    assert_eq!(GenAiOperation::InvokeAgent.kind(), SpanKind::Internal);
    assert_eq!(GenAiOperation::ExecuteTool.kind(), SpanKind::Internal);
    assert_eq!(GenAiOperation::Retrieval.kind(), SpanKind::Client);
    assert_eq!(GenAiOperation::Embeddings.kind(), SpanKind::Client);
    assert_eq!(GenAiOperation::Chat.kind(), SpanKind::Client);
}

#[test]
fn span_names_are_operation_then_target() {
    assert_eq!(
        span_name(GenAiOperation::Chat, Some("gpt-4o")),
        "chat gpt-4o"
    );
    assert_eq!(
        span_name(GenAiOperation::InvokeAgent, Some("Math Tutor")),
        "invoke_agent Math Tutor"
    );
    assert_eq!(span_name(GenAiOperation::InvokeAgent, None), "invoke_agent");
    assert_eq!(
        span_name(GenAiOperation::Embeddings, Some("")),
        "embeddings"
    );
    let i = instruments();
    assert_eq!(GenAi::chat(&i, "gpt-4o").name(), "chat gpt-4o");
    assert_eq!(
        GenAi::embeddings(&i, "text-embedding-3-small").name(),
        "embeddings text-embedding-3-small"
    );
    assert_eq!(
        GenAi::invoke_agent(&i, "planner").name(),
        "invoke_agent planner"
    );
    assert_eq!(
        GenAi::execute_tool(&i, "search_flights").name(),
        "execute_tool search_flights"
    );
    assert_eq!(
        GenAi::retrieval(&i, "H7STPQYOND").name(),
        "retrieval H7STPQYOND"
    );
    // A retrieval named by a model rather than a data source still names the
    // data source, or nothing.
    assert_eq!(
        GenAi::retrieval(&i, "").request_model("rerank-1").name(),
        "retrieval"
    );
}

#[test]
fn the_keys_are_the_convention_names() {
    assert_eq!(keys::OPERATION_NAME, "gen_ai.operation.name");
    assert_eq!(keys::PROVIDER_NAME, "gen_ai.provider.name");
    assert_eq!(keys::OPERATION_DURATION, "gen_ai.client.operation.duration");
    assert_eq!(keys::TOKEN_USAGE, "gen_ai.client.token.usage");
    assert_eq!(keys::INPUT_TOKENS, "gen_ai.usage.input_tokens");
    assert_eq!(keys::DATA_SOURCE_ID, "gen_ai.data_source.id");
}

#[test]
fn start_attributes_hold_what_was_set_and_nothing_else() {
    let i = instruments();
    let b = GenAi::execute_tool(&i, "search_flights")
        .tool_call_id("call_1")
        .agent_name("planner")
        .conversation_id("conv-1");
    let attrs = b.attributes(Some("acme"));
    assert_eq!(
        get(&attrs, "gen_ai.operation.name").as_deref(),
        Some("execute_tool")
    );
    assert_eq!(
        get(&attrs, "gen_ai.tool.name").as_deref(),
        Some("search_flights")
    );
    assert_eq!(
        get(&attrs, "gen_ai.tool.call.id").as_deref(),
        Some("call_1")
    );
    assert_eq!(get(&attrs, "gen_ai.agent.name").as_deref(), Some("planner"));
    assert_eq!(
        get(&attrs, "gen_ai.conversation.id").as_deref(),
        Some("conv-1")
    );
    assert_eq!(get(&attrs, "sdk.tenant.id").as_deref(), Some("acme"));
    assert_eq!(get(&attrs, "gen_ai.provider.name"), None);
    assert_eq!(get(&attrs, "gen_ai.request.model"), None);
    assert_eq!(attrs.len(), 6);
}

#[test]
fn metric_labels_are_capped_and_carry_no_free_text() {
    let i = instruments();
    let mut spans = Vec::new();
    for tenant in ["a", "b", "c"] {
        let mut s = GenAi::chat(&i, "gpt-4o")
            .provider("openai")
            .tenant(tenant)
            .conversation_id("conv-unbounded")
            .start(&Context::new());
        s.set_response_model("gpt-4o-2024-08-06");
        s.record_error("timeout", "a free-text message with ids 1234");
        spans.push(s);
    }
    let labels: Vec<Vec<KeyValue>> = spans.iter().map(GenAiSpan::labels).collect();
    assert_eq!(get(&labels[0], "sdk.tenant.id").as_deref(), Some("a"));
    assert_eq!(get(&labels[1], "sdk.tenant.id").as_deref(), Some("b"));
    assert_eq!(
        get(&labels[2], "sdk.tenant.id").as_deref(),
        Some(crate::OTHER_TENANT)
    );
    let keys: Vec<&str> = labels[0].iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "gen_ai.operation.name",
            "gen_ai.provider.name",
            "gen_ai.request.model",
            "gen_ai.response.model",
            "sdk.tenant.id"
        ]
    );
}

#[test]
fn usage_and_cost_accumulate_and_bad_costs_are_ignored() {
    let i = instruments();
    let mut s = GenAi::invoke_agent(&i, "planner").start(&Context::new());
    s.record_usage(10, 1);
    s.record_usage(5, 2);
    s.record_input_tokens(u64::MAX);
    s.record_cost(0.5);
    s.record_cost(f64::NAN);
    s.record_cost(-1.0);
    s.record_cost(0.25);
    assert_eq!(s.input_tokens, Some(u64::MAX));
    assert_eq!(s.output_tokens, Some(3));
    assert_eq!(s.cost, Some(0.75));
    assert_eq!(to_i64(u64::MAX), i64::MAX);
}

#[test]
fn buckets_are_the_conventions() {
    let mut d = 0.01_f64;
    for b in GENAI_DURATION_BUCKETS {
        assert!((b - d).abs() < 1e-9, "{b} != {d}");
        d *= 2.0;
    }
    let mut t = 1.0_f64;
    for b in GENAI_TOKEN_BUCKETS {
        assert_eq!(b, t);
        t *= 4.0;
    }
}
