//! One trace across two services over a real nats-server, exported to a real
//! collector: the request span of the caller is the parent of the process span of
//! the service.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use sdk_integration::Messenger;
use sdk_integration::sdk_bus::{
    Bus, BusConfig, BusError, Envelope, EventSource, RequestError, ServeOptions, SubjectPattern,
    TenantId,
};
use sdk_integration::sdk_codec::v1::{AgentTask, TaskResult, TaskStatus};
use sdk_integration::sdk_codec::{Codec, Format};
use sdk_integration::sdk_telemetry::Telemetry;
use sdk_testkit::{Collector, NatsServer};

use common::{Signals, nats_bus, telemetry};

/// A task for agent `x`.
fn task(id: &str, task_type: &str) -> AgentTask {
    AgentTask {
        task_id: id.into(),
        agent_id: "x".into(),
        task_type: task_type.into(),
        ..Default::default()
    }
}

/// Serves `pattern` with a handler that answers each task with its id.
async fn answer_tasks(m: &Messenger, pattern: &str) -> sdk_integration::sdk_bus::Service {
    m.serve(
        &SubjectPattern::new(pattern).unwrap(),
        ServeOptions::new(),
        |task: AgentTask, _cx| async move {
            Ok(TaskResult {
                task_id: task.task_id,
                ..Default::default()
            })
        },
    )
    .await
    .unwrap()
}

/// A JSON messenger of tenant acme's `tools` component on `server`, traced into `otel`.
async fn json_tools(server: &NatsServer, otel: &Telemetry) -> (Messenger, TenantId) {
    let acme = TenantId::new("acme").unwrap();
    let codec = Codec::builder().format(Format::Json).build().unwrap();
    let source = EventSource::new(&acme, "tools", "t-1").unwrap();
    let m = Messenger::new(nats_bus(server).await, codec, source).with_telemetry(otel);
    (m, acme)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_the_caller_through_the_service() {
    let server = NatsServer::start();
    let collector = Collector::start();
    let planner_otel = telemetry("planner", &collector, Signals::Traces);
    let rag_otel = telemetry("rag", &collector, Signals::Traces);
    let connect = || async {
        Bus::connect(BusConfig::builder().servers(&server.url()).build().unwrap())
            .await
            .unwrap()
    };
    let acme = TenantId::new("acme").unwrap();
    let codec = Codec::builder()
        .format(Format::MessagePack)
        .build()
        .unwrap();

    let rag = Messenger::new(
        connect().await,
        codec.clone(),
        EventSource::new(&acme, "rag", "r-1").unwrap(),
    )
    .with_telemetry(&rag_otel);
    let service = rag
        .serve(
            &SubjectPattern::all_tenants("rag", "query").unwrap(),
            ServeOptions::new().group("rag").concurrency(4),
            |task: AgentTask, _d| async move {
                Ok(TaskResult {
                    task_id: task.task_id,
                    status: TaskStatus::Succeeded as i32,
                    ..Default::default()
                })
            },
        )
        .await
        .unwrap();
    rag.bus().flush().await.unwrap();

    let planner = Messenger::new(
        connect().await,
        codec,
        EventSource::new(&acme, "agent", "planner").unwrap(),
    )
    .with_telemetry(&planner_otel);
    let subject = acme.scope().component("rag", "query").unwrap();
    let task = AgentTask {
        task_id: "t-9".into(),
        agent_id: "rag".into(),
        task_type: "query".into(),
        ..Default::default()
    };
    let result: TaskResult = planner
        .request(&subject, "sdk.rag.query", &task)
        .await
        .unwrap();
    assert_eq!(result.task_id, "t-9");

    // A payload that is not an AgentTask gets a 400, not silence.
    let source = EventSource::new(&acme, "agent", "planner").unwrap();
    let junk = Envelope::builder(&source, "sdk.rag.query")
        .content_type("application/msgpack")
        .payload("\u{c1}".into())
        .build()
        .unwrap();
    let err = planner.bus().request(&subject, junk).await.unwrap_err();
    assert!(
        matches!(err, RequestError::ServiceError { code: 400, .. }),
        "{err:?}"
    );

    service.abort();
    planner_otel.shutdown(Duration::from_secs(10)).unwrap();
    rag_otel.shutdown(Duration::from_secs(10)).unwrap();

    let request =
        collector.wait_for_span("request sdk.{tenant}.rag.query", Duration::from_secs(15));
    let process = collector.wait_for(
        Duration::from_secs(15),
        "the process span of t-9's request",
        |r| {
            r.spans_named("process sdk.{tenant}.rag.query")
                .into_iter()
                .find(|s| s.trace_id == request.trace_id)
                .cloned()
        },
    );
    assert_eq!(request.kind, "SPAN_KIND_CLIENT");
    assert_eq!(process.kind, "SPAN_KIND_CONSUMER");
    assert_eq!(
        process.parent_id, request.span_id,
        "the service's span continues the caller's trace"
    );
    assert_eq!(request.resource["service.name"], "planner");
    assert_eq!(process.resource["service.name"], "rag");
    assert_eq!(process.attributes["messaging.consumer.group.name"], "rag");
    assert_eq!(process.attributes["sdk.tenant.id"], "acme");
    assert_eq!(
        request.attributes["messaging.destination.name"],
        "sdk.acme.rag.query"
    );
    assert!(request.attributes.contains_key("messaging.message.id"));
}

/// Codec spans can be turned off on hot paths; the codec metrics stay. A wildcard
/// service names its spans after its pattern, whatever tokens a sender invents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codec_spans_switch_off_and_wildcard_services_keep_a_fixed_span_name() {
    let server = NatsServer::start();
    let collector = Collector::start();
    let otel = telemetry("codec-test", &collector, Signals::Both);
    let (m, acme) = json_tools(&server, &otel).await;
    let service = answer_tasks(&m, "sdk.*.tools.>").await;
    for invented in ["aaa", "bbb", "ccc"] {
        let subject = acme.scope().component("tools", invented).unwrap();
        let _: TaskResult = m
            .request(&subject, "sdk.tool", &task(invented, "y"))
            .await
            .unwrap();
    }
    otel.messaging().set_codec_spans(false);
    let subject = acme.scope().component("tools", "ddd").unwrap();
    let _: TaskResult = m
        .request(&subject, "sdk.tool", &task("quiet", "y"))
        .await
        .unwrap();
    service.abort();
    otel.shutdown(Duration::from_secs(10)).unwrap();

    let process = collector.wait_for(Duration::from_secs(15), "four process spans", |r| {
        let p = r.spans_named("process sdk.{tenant}.tools.{rest}");
        (p.len() == 4).then_some(p.len())
    });
    assert_eq!(process, 4);
    let received = collector.received();
    assert!(
        received
            .spans
            .iter()
            .filter(|s| s.kind == "SPAN_KIND_CONSUMER")
            .all(|s| !s.name.contains("aaa") && !s.name.contains("ddd")),
        "no token a sender invents names a service's span"
    );
    // Codec spans join the trace they run in: the service's decode of each request
    // and its encode of each reply are children of its process span, and the
    // caller's decode of each reply a child of its request span. None for the last
    // request, after they were switched off. (The caller's encode runs before any
    // span here, so it has none: it would be a trace of its own.)
    let process_ids: Vec<&str> = received
        .spans_named("process sdk.{tenant}.tools.{rest}")
        .iter()
        .map(|s| s.span_id.as_str())
        .collect();
    let decodes = received.spans_named("decode urn:sdk:schema:sdk.v1.AgentTask:v1");
    assert_eq!(decodes.len(), 3, "codec spans stop when switched off");
    assert!(
        decodes
            .iter()
            .all(|d| process_ids.contains(&d.parent_id.as_str()))
    );
    assert_eq!(decodes[0].attributes["sdk.codec.format"], "json");
    let encodes = received.spans_named("encode urn:sdk:schema:sdk.v1.TaskResult:v1");
    assert_eq!(encodes.len(), 3);
    assert!(
        encodes
            .iter()
            .all(|e| process_ids.contains(&e.parent_id.as_str()))
    );
    let request_ids: Vec<&str> = received
        .spans
        .iter()
        .filter(|s| s.name.starts_with("request "))
        .map(|s| s.span_id.as_str())
        .collect();
    let reply_decodes = received.spans_named("decode urn:sdk:schema:sdk.v1.TaskResult:v1");
    assert_eq!(reply_decodes.len(), 3);
    assert!(
        reply_decodes
            .iter()
            .all(|d| request_ids.contains(&d.parent_id.as_str()))
    );
    assert!(
        received
            .spans_named("encode urn:sdk:schema:sdk.v1.AgentTask:v1")
            .is_empty(),
        "no codec span outside a trace"
    );
    let size = collector.wait_for(Duration::from_secs(15), "the codec size metric", |r| {
        r.last_metric("sdk.codec.size").cloned()
    });
    let decode_points = size
        .points
        .iter()
        .filter(|p| p.attributes.get("sdk.codec.operation").map(String::as_str) == Some("decode"))
        .count();
    assert!(
        decode_points >= 1,
        "decodes are measured: {:?}",
        size.points
    );
    assert!(
        size.points
            .iter()
            .all(|p| p.attributes.contains_key("sdk.codec.schema")),
        "every point names its schema"
    );
}

/// An attacker's `ce-dataschema` values would each make a new span name and a new
/// metric series if the codec's telemetry took its label from the message: it takes
/// it from the type the service decodes into.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_cannot_name_codec_spans_or_metric_series() {
    let server = NatsServer::start();
    let collector = Collector::start();
    let otel = telemetry("schema-flood", &collector, Signals::Both);
    let (m, acme) = json_tools(&server, &otel).await;
    let subject = acme.scope().component("tools", "run").unwrap();
    let service = answer_tasks(&m, "sdk.*.tools.run").await;
    let task = task("t", "y");
    for i in 0..5 {
        let mut env = m.envelope("sdk.tool", &task).unwrap();
        env.headers_mut()
            .insert("ce-dataschema", &format!("urn:evil:{i}"))
            .unwrap();
        // Not the service's schema: refused as undecodable, and still traced.
        match m.bus().request(&subject, env).await {
            Err(RequestError::ServiceError { code: 400, .. }) => {}
            other => panic!("expected a 400, got {other:?}"),
        }
    }
    service.abort();
    otel.shutdown(Duration::from_secs(10)).unwrap();

    let decodes = collector.wait_for(Duration::from_secs(15), "five decode spans", |r| {
        let d = r.spans_named("decode urn:sdk:schema:sdk.v1.AgentTask:v1");
        (d.len() == 5).then_some(d.len())
    });
    assert_eq!(
        decodes, 5,
        "each refused decode is traced under the type's schema"
    );
    let received = collector.received();
    let named_by_sender: Vec<&str> = received
        .spans
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| n.contains("evil"))
        .collect();
    assert!(named_by_sender.is_empty(), "{named_by_sender:?}");
    let duration = collector.wait_for(Duration::from_secs(15), "the codec metric", |r| {
        r.last_metric("sdk.codec.duration").cloned()
    });
    assert!(
        duration
            .points
            .iter()
            .all(|p| !p.attributes.values().any(|v| v.contains("evil"))),
        "{:?}",
        duration.points
    );
}

/// A handler the bus stops, by its timeout or because it panicked, never returns to
/// the instrumentation: its span must still end failed, not as a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_times_out_or_panics_ends_its_span_failed() {
    let server = NatsServer::start();
    let collector = Collector::start();
    let otel = telemetry("stopped", &collector, Signals::Traces);
    let (m, acme) = json_tools(&server, &otel).await;
    let service = m
        .serve(
            &SubjectPattern::new("sdk.*.tools.*").unwrap(),
            ServeOptions::new().timeout(Duration::from_millis(300)),
            |task: AgentTask, _cx| async move {
                match task.task_type.as_str() {
                    "hang" => std::future::pending::<()>().await,
                    "explode" => panic!("the model exploded"),
                    _ => {}
                }
                Ok(TaskResult {
                    task_id: task.task_id,
                    ..Default::default()
                })
            },
        )
        .await
        .unwrap();
    for (kind, code) in [("hang", 408), ("explode", 500)] {
        let task = task(kind, kind);
        let subject = acme.scope().component("tools", kind).unwrap();
        match m
            .request::<_, TaskResult>(&subject, "sdk.tool", &task)
            .await
        {
            Err(sdk_integration::Error::Bus(BusError::ServiceError { code: c, .. }))
                if c == code => {}
            other => panic!("{kind}: expected {code}, got {other:?}"),
        }
    }
    service.abort();
    otel.shutdown(Duration::from_secs(10)).unwrap();

    let process = collector.wait_for(Duration::from_secs(15), "two process spans", |r| {
        let p = r.spans_named("process sdk.{tenant}.tools.{token}");
        (p.len() == 2).then(|| p.into_iter().cloned().collect::<Vec<_>>())
    });
    let error_types: BTreeSet<&str> = process
        .iter()
        .map(|s| {
            assert_eq!(s.status, "STATUS_CODE_ERROR", "{s:?}");
            s.attributes.get("error.type").map_or("", String::as_str)
        })
        .collect();
    assert_eq!(error_types, BTreeSet::from(["cancelled", "panic"]));
}

/// `Messenger::publish` makes a PRODUCER span, and each message a typed subscription
/// hands out is a CONSUMER `process` span continuing that trace; an undecodable one
/// is handed out too, its span marked failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_subscribe_are_one_trace_per_message() {
    let server = NatsServer::start();
    let collector = Collector::start();
    let otel = telemetry("pubsub", &collector, Signals::Traces);
    let connect = || async {
        Bus::connect(BusConfig::builder().servers(&server.url()).build().unwrap())
            .await
            .unwrap()
    };
    let acme = TenantId::new("acme").unwrap();
    let codec = Codec::builder().format(Format::Json).build().unwrap();
    let source = EventSource::new(&acme, "agent", "a-1").unwrap();
    let listener =
        Messenger::new(connect().await, codec.clone(), source.clone()).with_telemetry(&otel);
    let sender = Messenger::new(connect().await, codec, source).with_telemetry(&otel);
    let pattern = SubjectPattern::new("sdk.*.events.task.>").unwrap();
    let mut subscription = listener.subscribe::<AgentTask>(&pattern).await.unwrap();
    let subject = acme.scope().event("task.assigned").unwrap();
    let task = task("t-1", "y");
    sender
        .publish(&subject, "sdk.task.assigned", &task)
        .await
        .unwrap();
    let (headers, _) = sender
        .envelope("sdk.task.assigned", &task)
        .unwrap()
        .into_parts();
    let junk = Envelope::from_parts(headers, bytes::Bytes::from_static(b"{not json")).unwrap();
    sender.bus().publish(&subject, junk).await.unwrap();

    let first = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .expect("the task decodes");
    assert_eq!(first.value.task_id, "t-1");
    drop(first); // its span ends here
    let second = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(second.is_err(), "the junk is handed out as Undecodable");
    drop(second);
    drop(subscription);
    otel.shutdown(Duration::from_secs(10)).unwrap();

    let process = collector.wait_for(Duration::from_secs(15), "two process spans", |r| {
        let p = r.spans_named("process sdk.{tenant}.events.task.{rest}");
        (p.len() == 2).then(|| p.into_iter().cloned().collect::<Vec<_>>())
    });
    let received = collector.received();
    let names: Vec<&str> = received.spans.iter().map(|s| s.name.as_str()).collect();
    let publish = received.spans_named("publish sdk.{tenant}.events.{event_type}");
    assert_eq!(publish.len(), 1, "one publish span: {names:?}");
    assert_eq!(publish[0].kind, "SPAN_KIND_PRODUCER");
    let decoded = process
        .iter()
        .find(|s| s.status != "STATUS_CODE_ERROR")
        .expect("the good message's span");
    assert_eq!(decoded.kind, "SPAN_KIND_CONSUMER");
    assert_eq!(decoded.trace_id, publish[0].trace_id, "one trace");
    assert_eq!(decoded.parent_id, publish[0].span_id);
    let failed = process
        .iter()
        .find(|s| s.status == "STATUS_CODE_ERROR")
        .expect("the junk's span is failed");
    assert_eq!(failed.attributes["error.type"], "decode");
}

/// A caller that gives up on a request (drops its future) before the answer comes
/// ends the request's span failed, `cancelled`, not as a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_its_caller_drops_ends_its_span_cancelled() {
    let server = NatsServer::start();
    let collector = Collector::start();
    let otel = telemetry("impatient", &collector, Signals::Traces);
    let (m, acme) = json_tools(&server, &otel).await;
    // A service that never answers: the request's own timeout (10 s) is far away.
    let service = m
        .serve(
            &SubjectPattern::new("sdk.*.tools.slow").unwrap(),
            ServeOptions::new(),
            |_task: AgentTask, _cx| async move {
                std::future::pending::<Result<TaskResult, _>>().await
            },
        )
        .await
        .unwrap();
    let subject = acme.scope().component("tools", "slow").unwrap();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        m.request::<_, TaskResult>(&subject, "sdk.tool", &task("t-1", "y")),
    )
    .await;
    assert!(gave_up.is_err(), "the caller gave up first");
    service.abort();
    otel.shutdown(Duration::from_secs(10)).unwrap();
    let span = collector.wait_for_span("request sdk.{tenant}.tools.slow", Duration::from_secs(15));
    assert_eq!(span.status, "STATUS_CODE_ERROR");
    assert_eq!(span.attributes["error.type"], "cancelled");
}
