"""The sample values of crates/sdk-codec/src/samples.rs, written again in Python.

Both sides build these independently; each reads what the other wrote and compares
field by field. Keep the two files in step.

One deliberate difference from samples.rs: the DocumentChunk embedding is not
`sin(i)` (an f32 sine in Rust, whose last bit depends on the platform's libm) but the
fixed bit patterns of EMBEDDING_BITS, which python_interop.rs uses too. They cover
zero, negative zero, a subnormal, values that are not short decimals (0.1), and an
integer above 2^24.
"""

import struct

EMBEDDING_BITS = [
    0x00000000,  # 0.0
    0x80000000,  # -0.0
    0x3F800000,  # 1.0
    0xBF000000,  # -0.5
    0x3DCCCCCD,  # 0.1 (nearest f32)
    0xC0490FDB,  # -pi (nearest f32)
    0x00000001,  # the smallest subnormal, 1e-45
    0x4B800001,  # 16777218.0
]


def embedding():
    return [struct.unpack("<f", struct.pack("<I", b))[0] for b in EMBEDDING_BITS]


def _ts(field, seconds, nanos=0):
    field.seconds = seconds
    field.nanos = nanos


def agent_message(t):
    m = t.new(
        "AgentMessage",
        message_id="m-0001",
        sender_id="planner",
        receiver_id="researcher",
        conversation_id="c-42",
        correlation_id="r-7",
        reply_to="",
        role=t.enum("MessageRole", "MESSAGE_ROLE_ASSISTANT"),
        content="Find three papers on vector search and summarise them.",
        content_type="text/plain",
        metadata={"priority": "high", "locale": "en"},
    )
    _ts(m.created_at, 1_714_564_800, 250_000_000)
    return m


def agent_task(t):
    m = t.new(
        "AgentTask",
        task_id="t-1",
        agent_id="summarizer",
        task_type="summarize",
        conversation_id="c-42",
        correlation_id="r-7",
        priority=5,
        attempt=1,
        metadata={"team": "research"},
    )
    m.parameters.update(
        {"max_words": 200.0, "style": "brief", "sources": ["a", "b"], "strict": True, "extra": None}
    )
    _ts(m.deadline, 1_714_568_400)
    _ts(m.created_at, 1_714_564_800)
    return m


def task_result(t):
    m = t.new(
        "TaskResult",
        task_id="t-1",
        agent_id="summarizer",
        status=t.enum("TaskStatus", "TASK_STATUS_SUCCEEDED"),
        cost_usd=0.0123,
        model="gpt-4o",
        duration_ms=18_446_744_073_709_551_000,
    )
    m.output.update({"summary": "three papers", "score": 0.75})
    m.usage.prompt_tokens = 1200
    m.usage.completion_tokens = 300
    m.usage.total_tokens = 1500
    _ts(m.started_at, 1_714_564_800)
    _ts(m.completed_at, 1_714_564_812, 500_000_000)
    return m


def event_message(t):
    m = t.new(
        "EventMessage",
        event_id="e-1",
        event_type="sdk.task.completed",
        source="/acme/agent/summarizer-1",
        subject="t-1",
        sequence=42,
        correlation_id="r-7",
    )
    m.data.update({"taskId": "t-1", "ok": True})
    _ts(m.occurred_at, 1_714_564_812)
    return m


def document(t):
    m = t.new(
        "Document",
        document_id="d-1",
        source_uri="s3://bucket/papers/vector-search.pdf",
        title="Vector search at scale",
        mime_type="application/pdf",
        text="Approximate nearest neighbour search ...",
        metadata={"lang": "en"},
        chunk_count=12,
        checksum="sha256:00ff",
    )
    _ts(m.created_at, 1_714_000_000)
    return m


def document_chunk(t):
    values = embedding()
    return t.new(
        "DocumentChunk",
        chunk_id="d-1#3",
        document_id="d-1",
        chunk_index=3,
        text="HNSW builds a layered proximity graph ...",
        embedding=values,
        embedding_dimension=len(values),
        embedding_model="text-embedding-3-small",
        start_offset=1024,
        end_offset=2048,
        token_count=256,
    )


def status_update(t):
    m = t.new(
        "StatusUpdate",
        component="agent",
        instance_id="summarizer-1",
        state=t.enum("AgentState", "AGENT_STATE_BUSY"),
        task_id="t-1",
        progress=0.25,
        message="reading sources",
    )
    _ts(m.updated_at, 1_714_564_805)
    return m


def error_info(t):
    return t.new(
        "ErrorInfo",
        code="rate_limited",
        message="the model provider is rate limiting this key",
        retryable=True,
        details={"retry_after_ms": "1500"},
        component="gateway",
    )


ALL = {
    "AgentMessage": agent_message,
    "AgentTask": agent_task,
    "TaskResult": task_result,
    "EventMessage": event_message,
    "Document": document,
    "DocumentChunk": document_chunk,
    "StatusUpdate": status_update,
    "ErrorInfo": error_info,
}
