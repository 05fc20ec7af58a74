//! What a handler gets, and what it sends: the conversation follows by itself, a
//! typed subscription hands out what it cannot decode, and a shared service answers
//! each tenant as that tenant, in the requester's format. In-process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sdk_integration::sdk_bus::{
    Bus, BusConfig, Envelope, EventSource, ServeOptions, SubjectPattern, TenantId,
};
use sdk_integration::sdk_codec::v1::{AgentTask, EventMessage, TaskResult};
use sdk_integration::sdk_codec::{Codec, Format};
use sdk_integration::{MessageContext, Messenger};

const WAIT: Duration = Duration::from_secs(10);

fn codec(format: Format) -> Codec {
    Codec::builder().format(format).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_from_a_handler_joins_the_conversation() {
    let bus = Bus::in_process(BusConfig::builder().build().unwrap());
    let acme = TenantId::new("acme").unwrap();
    let researcher = Messenger::new(
        bus.clone(),
        codec(Format::Json),
        EventSource::new(&acme, "agent", "researcher").unwrap(),
    );
    let mut observer = researcher
        .subscribe::<EventMessage>(&acme.scope().pattern(&["events", ">"]).unwrap())
        .await
        .unwrap();
    let handled: Arc<Mutex<Option<MessageContext>>> = Arc::default();
    let (me, h) = (researcher.clone(), handled.clone());
    let inbox = acme.scope().agent_inbox("researcher").unwrap();
    let service = researcher
        .serve(
            &SubjectPattern::from(&inbox),
            ServeOptions::new(),
            move |task: AgentTask, cx: MessageContext| {
                let (me, h) = (me.clone(), h.clone());
                async move {
                    let done = EventMessage {
                        event_id: "e-1".into(),
                        event_type: "sdk.task.completed".into(),
                        source: "/acme/agent/researcher".into(),
                        subject: task.task_id.clone(),
                        ..Default::default()
                    };
                    // No ids passed by hand: the event joins the conversation.
                    me.publish(
                        &cx.tenant.scope().event("task.completed")?,
                        "sdk.task.completed",
                        &done,
                    )
                    .await?;
                    *h.lock().unwrap() = Some(cx);
                    Ok(TaskResult {
                        task_id: task.task_id,
                        ..Default::default()
                    })
                }
            },
        )
        .await
        .unwrap();
    let planner = Messenger::new(
        bus.clone(),
        codec(Format::Json),
        EventSource::new(&acme, "agent", "planner").unwrap(),
    );
    let task = AgentTask {
        task_id: "t-1".into(),
        agent_id: "researcher".into(),
        task_type: "find".into(),
        ..Default::default()
    };
    let _: TaskResult = planner
        .request(&inbox, "sdk.task.assigned", &task)
        .await
        .unwrap();
    let cx = handled.lock().unwrap().clone().unwrap();
    assert_eq!(cx.tenant, acme);
    assert_eq!(cx.event_type, "sdk.task.assigned");
    assert_eq!(
        cx.correlation_id, cx.message_id,
        "a request with no conversation starts one"
    );
    assert!(
        cx.deadline.is_some(),
        "the service's timeout is the handler's deadline"
    );

    let event = tokio::time::timeout(WAIT, observer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.value.subject, "t-1");
    assert_eq!(event.context.correlation_id, cx.correlation_id);
    assert_eq!(
        event.context.causation_id.as_deref(),
        Some(cx.message_id.as_str())
    );
    service.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_subscription_hands_out_what_it_cannot_decode_and_goes_on() {
    let bus = Bus::in_process(BusConfig::builder().build().unwrap());
    let acme = TenantId::new("acme").unwrap();
    let m = Messenger::new(
        bus.clone(),
        codec(Format::MessagePack),
        EventSource::new(&acme, "agent", "a").unwrap(),
    );
    let subject = acme.scope().event("x").unwrap();
    let mut sub = m
        .subscribe::<EventMessage>(&SubjectPattern::from(&subject))
        .await
        .unwrap();
    let junk = Envelope::builder(m.source(), "sdk.x")
        .content_type("application/msgpack")
        .payload(bytes::Bytes::from_static(&[0xc1]))
        .build()
        .unwrap();
    bus.publish(&subject, junk).await.unwrap();
    let good = EventMessage {
        event_id: "e-2".into(),
        event_type: "sdk.x".into(),
        source: "/acme/agent/a".into(),
        ..Default::default()
    };
    m.publish(&subject, "sdk.x", &good).await.unwrap();
    let first = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let bad = first.expect_err("the junk comes out as undecodable");
    assert_eq!(bad.subject, subject);
    assert!(
        bad.error.to_string().contains("reserved marker"),
        "{}",
        bad.error
    );
    let second = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.unwrap().value, good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_service_answers_each_tenant_as_that_tenant_in_its_format() {
    let bus = Bus::in_process(BusConfig::builder().build().unwrap());
    let ops = TenantId::new("ops").unwrap();
    let rag = Messenger::new(
        bus.clone(),
        codec(Format::Json),
        EventSource::new(&ops, "rag", "r-1").unwrap(),
    );
    let service = rag
        .serve(
            &SubjectPattern::all_tenants("rag", "query").unwrap(),
            ServeOptions::new(),
            |task: AgentTask, _cx: MessageContext| async move {
                Ok(TaskResult {
                    task_id: task.task_id,
                    ..Default::default()
                })
            },
        )
        .await
        .unwrap();
    let beta = TenantId::new("beta").unwrap();
    let caller = Messenger::new(
        bus.clone(),
        codec(Format::MessagePack),
        EventSource::new(&beta, "agent", "b").unwrap(),
    );
    let request = caller
        .envelope(
            "sdk.rag.query",
            &AgentTask {
                task_id: "q-1".into(),
                agent_id: "rag".into(),
                task_type: "q".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let reply = bus
        .request(&beta.scope().component("rag", "query").unwrap(), request)
        .await
        .unwrap();
    assert_eq!(reply.tenant_id().as_deref(), Some("beta"));
    assert_eq!(reply.source().as_deref(), Some("/beta/rag/r-1"));
    assert_eq!(
        reply.data_content_type().as_deref(),
        Some("application/msgpack")
    );
    let answer: TaskResult = caller.decode(&reply).unwrap();
    assert_eq!(answer.task_id, "q-1");
    service.abort();
}

/// A handler timeout too long to add to the clock (`Duration::MAX`) means no deadline:
/// the typed service answers, and the handler sees none, instead of every request
/// panicking on the deadline's arithmetic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_too_long_to_add_means_no_deadline() {
    let bus = Bus::in_process(BusConfig::builder().build().unwrap());
    let acme = TenantId::new("acme").unwrap();
    let m = Messenger::new(
        bus,
        codec(Format::Json),
        EventSource::new(&acme, "agent", "patient").unwrap(),
    );
    let inbox = acme.scope().agent_inbox("patient").unwrap();
    let service = m
        .serve(
            &SubjectPattern::from(&inbox),
            ServeOptions::new().timeout(Duration::MAX),
            |task: AgentTask, cx: MessageContext| async move {
                assert!(cx.deadline.is_none(), "{:?}", cx.deadline);
                Ok(TaskResult {
                    task_id: task.task_id,
                    ..Default::default()
                })
            },
        )
        .await
        .unwrap();
    let task = AgentTask {
        task_id: "t-1".into(),
        agent_id: "patient".into(),
        task_type: "wait".into(),
        ..Default::default()
    };
    let result: TaskResult = tokio::time::timeout(WAIT, m.request(&inbox, "sdk.task", &task))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.task_id, "t-1");
    service.abort();
}
