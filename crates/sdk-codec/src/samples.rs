//! Realistic sample values of every `sdk.v1` type, for tests, benchmarks and docs.
//! Enabled by the `samples` feature.
#![allow(missing_docs)]

use std::collections::BTreeMap;

use crate::v1::*;

pub fn ts(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos })
}

pub fn object(json: serde_json::Value) -> Option<prost_types::Struct> {
    // Round-trip through the codec's own JSON form to build a Struct.
    let wrapper =
        serde_json::json!({ "taskId": "x", "agentId": "a", "taskType": "t", "parameters": json });
    serde_json::from_value::<AgentTask>(wrapper)
        .ok()
        .and_then(|t| t.parameters)
}

pub fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

pub fn agent_message() -> AgentMessage {
    AgentMessage {
        message_id: "m-0001".into(),
        sender_id: "planner".into(),
        receiver_id: "researcher".into(),
        conversation_id: "c-42".into(),
        correlation_id: "r-7".into(),
        reply_to: String::new(),
        role: MessageRole::Assistant as i32,
        content: "Find three papers on vector search and summarise them.".into(),
        content_type: "text/plain".into(),
        metadata: meta(&[("priority", "high"), ("locale", "en")]),
        created_at: ts(1_714_564_800, 250_000_000),
    }
}

pub fn agent_task() -> AgentTask {
    AgentTask {
        task_id: "t-1".into(),
        agent_id: "summarizer".into(),
        task_type: "summarize".into(),
        conversation_id: "c-42".into(),
        correlation_id: "r-7".into(),
        parameters: object(
            serde_json::json!({"max_words": 200.0, "style": "brief", "sources": ["a", "b"], "strict": true, "extra": null}),
        ),
        priority: 5,
        deadline: ts(1_714_568_400, 0),
        created_at: ts(1_714_564_800, 0),
        attempt: 1,
        metadata: meta(&[("team", "research")]),
    }
}

pub fn task_result() -> TaskResult {
    TaskResult {
        task_id: "t-1".into(),
        agent_id: "summarizer".into(),
        status: TaskStatus::Succeeded as i32,
        output: object(serde_json::json!({"summary": "three papers", "score": 0.75})),
        error: None,
        usage: Some(TokenUsage {
            prompt_tokens: 1200,
            completion_tokens: 300,
            total_tokens: 1500,
        }),
        cost_usd: 0.0123,
        model: "gpt-4o".into(),
        duration_ms: 18_446_744_073_709_551_000,
        started_at: ts(1_714_564_800, 0),
        completed_at: ts(1_714_564_812, 500_000_000),
        metadata: BTreeMap::new(),
    }
}

pub fn event_message() -> EventMessage {
    EventMessage {
        event_id: "e-1".into(),
        event_type: "sdk.task.completed".into(),
        source: "/acme/agent/summarizer-1".into(),
        subject: "t-1".into(),
        sequence: 42,
        data: object(serde_json::json!({"taskId": "t-1", "ok": true})),
        occurred_at: ts(1_714_564_812, 0),
        correlation_id: "r-7".into(),
        metadata: BTreeMap::new(),
    }
}

pub fn document() -> Document {
    Document {
        document_id: "d-1".into(),
        source_uri: "s3://bucket/papers/vector-search.pdf".into(),
        title: "Vector search at scale".into(),
        mime_type: "application/pdf".into(),
        text: "Approximate nearest neighbour search ...".into(),
        metadata: meta(&[("lang", "en")]),
        created_at: ts(1_714_000_000, 0),
        chunk_count: 12,
        checksum: "sha256:00ff".into(),
    }
}

pub fn document_chunk(dimension: usize) -> DocumentChunk {
    DocumentChunk {
        chunk_id: "d-1#3".into(),
        document_id: "d-1".into(),
        chunk_index: 3,
        text: "HNSW builds a layered proximity graph ...".into(),
        #[allow(clippy::cast_precision_loss)]
        embedding: (0..dimension).map(|i| (i as f32).sin()).collect(),
        embedding_dimension: u32::try_from(dimension).unwrap_or(u32::MAX),
        embedding_model: "text-embedding-3-small".into(),
        start_offset: 1024,
        end_offset: 2048,
        token_count: 256,
        metadata: BTreeMap::new(),
    }
}

pub fn status_update() -> StatusUpdate {
    StatusUpdate {
        component: "agent".into(),
        instance_id: "summarizer-1".into(),
        state: AgentState::Busy as i32,
        task_id: "t-1".into(),
        progress: 0.25,
        message: "reading sources".into(),
        updated_at: ts(1_714_564_805, 0),
        metadata: BTreeMap::new(),
    }
}

pub fn error_info() -> ErrorInfo {
    ErrorInfo {
        code: "rate_limited".into(),
        message: "the model provider is rate limiting this key".into(),
        retryable: true,
        details: meta(&[("retry_after_ms", "1500")]),
        component: "gateway".into(),
    }
}
