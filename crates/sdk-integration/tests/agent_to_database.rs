//! The end-to-end trace: an agent asks a RAG service (request-reply), which hands the
//! result to a gateway (JetStream durable consumer), which calls a model and writes
//! to a database. Four services, each with its own `service.name`, over a real
//! nats-server, read back from a real collector as ONE trace.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use sdk_integration::sdk_bus::jetstream::stream::StreamSpec;
use sdk_integration::sdk_bus::{
    ConsumerSpec, EventSource, Outcome, ServeOptions, SubjectPattern, TenantId,
};
use sdk_integration::sdk_codec::v1::{AgentTask, EventMessage, TaskResult, TaskStatus};
use sdk_integration::sdk_codec::{Codec, Format};
use sdk_integration::sdk_telemetry::genai::{GenAi, GenAiInstruments};
use sdk_integration::{MessageContext, Messenger};
use sdk_testkit::{Collector, NatsServer, Span};

mod common;

use common::{Signals, nats_bus, telemetry};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_rag_gateway_and_database_are_one_trace() {
    let server = NatsServer::builder().jetstream().start();
    let collector = Collector::start();
    let acme = TenantId::new("acme").unwrap();
    let codec = Codec::builder()
        .format(Format::MessagePack)
        .build()
        .unwrap();
    let [agent_otel, rag_otel, gateway_otel] =
        ["agent", "rag", "gateway"].map(|s| telemetry(s, &collector, Signals::Traces));
    let db_otel = telemetry("database", &collector, Signals::Traces);

    // The gateway: a durable consumer that calls a model and writes to the database.
    let gateway_bus = nats_bus(&server).await;
    let js = gateway_bus.jetstream().unwrap();
    js.ensure_stream(&StreamSpec::workflows()).await.unwrap();
    let gateway = Messenger::new(
        gateway_bus.clone(),
        codec.clone(),
        EventSource::new(&acme, "gateway", "g-1").unwrap(),
    )
    .with_telemetry(&gateway_otel);
    let gateway_genai = GenAiInstruments::from_telemetry(&gateway_otel);
    let db_tracer = db_otel.tracer("db");
    let conversations: Arc<Mutex<Vec<MessageContext>>> = Arc::default();
    let seen = conversations.clone();
    let worker = gateway
        .consume(
            &js,
            ConsumerSpec::new("SDK_WORKFLOWS", "gateway"),
            move |event: EventMessage, cx: MessageContext| {
                let (genai, db, seen) = (gateway_genai.clone(), db_tracer.clone(), seen.clone());
                async move {
                    let parent = Context::current();
                    let mut chat = GenAi::chat(&genai, "gpt-4o")
                        .provider("openai")
                        .start(&parent);
                    chat.record_usage(120, 30);
                    chat.end();
                    let mut write = db
                        .span_builder("INSERT task_results")
                        .with_kind(SpanKind::Client)
                        .with_attributes([
                            KeyValue::new("db.system.name", "postgresql"),
                            KeyValue::new("db.operation.name", "INSERT"),
                            KeyValue::new("db.collection.name", "task_results"),
                            KeyValue::new("sdk.tenant.id", cx.tenant.to_string()),
                        ])
                        .start_with_context(&db, &parent);
                    opentelemetry::trace::Span::set_attribute(
                        &mut write,
                        KeyValue::new("sdk.task.id", event.subject.clone()),
                    );
                    opentelemetry::trace::Span::end(&mut write);
                    seen.lock().unwrap().push(cx);
                    Outcome::Ack
                }
            },
        )
        .await
        .unwrap();

    // The RAG service: retrieves, embeds, answers, and hands the result on durably.
    let rag = Messenger::new(
        nats_bus(&server).await,
        codec.clone(),
        EventSource::new(&acme, "rag", "r-1").unwrap(),
    )
    .with_telemetry(&rag_otel);
    let rag_genai = GenAiInstruments::from_telemetry(&rag_otel);
    let rag_js = rag.bus().jetstream().unwrap();
    let me = rag.clone();
    let service = rag
        .serve(
            &SubjectPattern::all_tenants("rag", "query").unwrap(),
            ServeOptions::new().group("rag"),
            move |task: AgentTask, cx: MessageContext| {
                let (me, genai, js) = (me.clone(), rag_genai.clone(), rag_js.clone());
                async move {
                    let parent = Context::current();
                    GenAi::retrieval(&genai, "papers-index")
                        .start(&parent)
                        .end();
                    GenAi::embeddings(&genai, "text-embedding-3-small")
                        .provider("openai")
                        .start(&parent)
                        .end();
                    let done = EventMessage {
                        event_id: format!("done-{}", task.task_id),
                        event_type: "sdk.task.completed".into(),
                        source: "/acme/rag/r-1".into(),
                        subject: task.task_id.clone(),
                        ..Default::default()
                    };
                    let subject = cx.tenant.scope().workflow(&task.task_id, "completed")?;
                    me.publish_durable(&js, &subject, "sdk.task.completed", &done)
                        .await?;
                    Ok(TaskResult {
                        task_id: task.task_id,
                        status: TaskStatus::Succeeded as i32,
                        ..Default::default()
                    })
                }
            },
        )
        .await
        .unwrap();

    // The agent: one agent task, which asks the RAG service.
    let agent = Messenger::new(
        nats_bus(&server).await,
        codec,
        EventSource::new(&acme, "agent", "planner").unwrap(),
    )
    .with_telemetry(&agent_otel);
    let agent_genai = GenAiInstruments::from_telemetry(&agent_otel);
    let task_span = GenAi::invoke_agent(&agent_genai, "planner")
        .tenant("acme")
        .start(&Context::new());
    let task = AgentTask {
        task_id: "t-42".into(),
        agent_id: "planner".into(),
        task_type: "research".into(),
        ..Default::default()
    };
    let subject = acme.scope().component("rag", "query").unwrap();
    let result: TaskResult = {
        use opentelemetry::context::FutureExt as _;
        agent
            .request(&subject, "sdk.rag.query", &task)
            .with_context(task_span.context().clone())
            .await
            .unwrap()
    };
    assert_eq!(result.task_id, "t-42");
    let trace_id = task_span
        .context()
        .span()
        .span_context()
        .trace_id()
        .to_string();
    task_span.end();
    tokio::time::timeout(WAIT, async {
        while conversations.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the gateway handled the result");
    service.abort();
    worker.abort();
    for t in [agent_otel, rag_otel, gateway_otel, db_otel] {
        t.shutdown(Duration::from_secs(10)).unwrap();
    }

    // The gateway's message joined the agent's conversation.
    let gateway_cx = conversations.lock().unwrap()[0].clone();
    assert_eq!(gateway_cx.tenant.as_str(), "acme");
    assert!(
        gateway_cx.causation_id.is_some(),
        "the RAG request caused it"
    );

    let names = [
        "invoke_agent planner",
        "request sdk.{tenant}.rag.query",
        "process sdk.{tenant}.rag.query",
        "retrieval papers-index",
        "embeddings text-embedding-3-small",
        "publish sdk.{tenant}.workflow.{workflow_id}.{event}",
        "process sdk.{tenant}.workflow.{workflow_id}.{event}",
        "chat gpt-4o",
        "INSERT task_results",
    ];
    let spans: BTreeMap<&str, Span> =
        collector.wait_for(WAIT, "all nine spans of the trace", |r| {
            let found: BTreeMap<&str, Span> = names
                .iter()
                .filter_map(|n| {
                    r.spans_named(n)
                        .into_iter()
                        .find(|s| s.trace_id == trace_id)
                        .map(|s| (*n, s.clone()))
                })
                .collect();
            (found.len() == names.len()).then_some(found)
        });
    let s = |n: &str| &spans[n];
    // Every parent link.
    for (child, parent) in [
        ("request sdk.{tenant}.rag.query", "invoke_agent planner"),
        (
            "process sdk.{tenant}.rag.query",
            "request sdk.{tenant}.rag.query",
        ),
        ("retrieval papers-index", "process sdk.{tenant}.rag.query"),
        (
            "embeddings text-embedding-3-small",
            "process sdk.{tenant}.rag.query",
        ),
        (
            "publish sdk.{tenant}.workflow.{workflow_id}.{event}",
            "process sdk.{tenant}.rag.query",
        ),
        (
            "process sdk.{tenant}.workflow.{workflow_id}.{event}",
            "publish sdk.{tenant}.workflow.{workflow_id}.{event}",
        ),
        (
            "chat gpt-4o",
            "process sdk.{tenant}.workflow.{workflow_id}.{event}",
        ),
        (
            "INSERT task_results",
            "process sdk.{tenant}.workflow.{workflow_id}.{event}",
        ),
    ] {
        assert_eq!(
            s(child).parent_id,
            s(parent).span_id,
            "{child} is a child of {parent}"
        );
    }
    assert_eq!(
        s("invoke_agent planner").parent_id,
        "",
        "the agent task is the root"
    );
    // Every span carries the tenant.
    for n in names {
        assert_eq!(
            s(n).attributes.get("sdk.tenant.id").map(String::as_str),
            Some("acme"),
            "{n}"
        );
    }
    // Each service reported as itself.
    for (n, service) in [
        ("invoke_agent planner", "agent"),
        ("request sdk.{tenant}.rag.query", "agent"),
        ("process sdk.{tenant}.rag.query", "rag"),
        ("publish sdk.{tenant}.workflow.{workflow_id}.{event}", "rag"),
        (
            "process sdk.{tenant}.workflow.{workflow_id}.{event}",
            "gateway",
        ),
        ("chat gpt-4o", "gateway"),
        ("INSERT task_results", "database"),
    ] {
        assert_eq!(s(n).resource["service.name"], service, "{n}");
    }
    // The contract's attributes, one by one.
    let request = s("request sdk.{tenant}.rag.query");
    for (k, v) in [
        ("messaging.system", "nats"),
        ("messaging.operation.name", "request"),
        ("messaging.operation.type", "send"),
        ("messaging.destination.name", "sdk.acme.rag.query"),
        ("messaging.destination.template", "sdk.{tenant}.rag.query"),
        ("cloudevents.event_type", "sdk.rag.query"),
        ("cloudevents.event_source", "/acme/agent/planner"),
        ("server.address", "127.0.0.1"),
    ] {
        assert_eq!(
            request.attributes.get(k).map(String::as_str),
            Some(v),
            "request {k}"
        );
    }
    assert_eq!(request.kind, "SPAN_KIND_CLIENT");
    for k in [
        "messaging.message.id",
        "cloudevents.event_id",
        "messaging.message.body.size",
        "server.port",
    ] {
        assert!(request.attributes.contains_key(k), "request {k}");
    }
    let process = s("process sdk.{tenant}.rag.query");
    assert_eq!(process.kind, "SPAN_KIND_CONSUMER");
    assert_eq!(process.attributes["messaging.consumer.group.name"], "rag");
    assert_eq!(process.attributes["messaging.operation.type"], "process");
    assert_eq!(
        process.attributes["messaging.message.id"], request.attributes["messaging.message.id"],
        "the process span names the request it handles"
    );
    let publish = s("publish sdk.{tenant}.workflow.{workflow_id}.{event}");
    assert_eq!(publish.kind, "SPAN_KIND_PRODUCER");
    assert_eq!(
        publish.attributes["messaging.destination.name"],
        "sdk.acme.workflow.t-42.completed"
    );
    assert_eq!(
        publish.attributes["messaging.message.conversation_id"],
        request.attributes["messaging.message.id"],
        "the durable result joins the agent's conversation"
    );
    let consumed = s("process sdk.{tenant}.workflow.{workflow_id}.{event}");
    assert_eq!(
        consumed.attributes["messaging.consumer.group.name"],
        "gateway"
    );
    assert_eq!(
        consumed.attributes["messaging.nats.message.delivery_count"],
        "1"
    );
    assert_eq!(consumed.attributes["sdk.messaging.outcome"], "ack");
    assert_eq!(s("chat gpt-4o").attributes["gen_ai.operation.name"], "chat");
    assert_eq!(
        s("chat gpt-4o").attributes["gen_ai.usage.input_tokens"],
        "120"
    );
    assert_eq!(
        s("INSERT task_results").attributes["db.system.name"],
        "postgresql"
    );
    assert_eq!(
        s("invoke_agent planner").attributes["gen_ai.agent.name"],
        "planner"
    );
}
