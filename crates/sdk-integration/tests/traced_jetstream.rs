//! Durable agent work stays in the trace: a typed JetStream publish, a durable
//! consumer that fails once and then succeeds, and a poison message, over a real
//! nats-server, read back from a real collector.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sdk_integration::Messenger;
use sdk_integration::sdk_bus::jetstream::stream::StreamSpec;
use sdk_integration::sdk_bus::{Bus, ConsumerSpec, EventSource, JetStream, Outcome, TenantId};
use sdk_integration::sdk_codec::v1::EventMessage;
use sdk_integration::sdk_codec::{Codec, Format};
use sdk_integration::sdk_telemetry::Telemetry;
use sdk_testkit::{Collector, NatsServer};

mod common;

use common::{Signals, nats_bus, telemetry};

const WAIT: Duration = Duration::from_secs(20);

/// The gateway's messenger on `bus`, traced into `otel`.
fn gateway(bus: &Bus, codec: Codec, acme: &TenantId, otel: &Telemetry) -> Messenger {
    let source = EventSource::new(acme, "gateway", "g-1").unwrap();
    Messenger::new(bus.clone(), codec, source).with_telemetry(otel)
}

/// A bus on `server` with the events and dead-letter streams, tenant acme, and a JSON
/// codec.
async fn events_and_dead_letters(server: &NatsServer) -> (Bus, JetStream, TenantId, Codec) {
    let bus = nats_bus(server).await;
    let js = bus.jetstream().unwrap();
    js.ensure_stream(&StreamSpec::events()).await.unwrap();
    js.ensure_stream(&StreamSpec::dead_letters()).await.unwrap();
    let codec = Codec::builder().format(Format::Json).build().unwrap();
    (bus, js, TenantId::new("acme").unwrap(), codec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_task_and_its_redelivery_are_one_trace_with_settle_outcomes() {
    let server = NatsServer::builder().jetstream().start();
    let collector = Collector::start();
    let producer_otel = telemetry("producer", &collector, Signals::Both);
    let worker_otel = telemetry("worker", &collector, Signals::Both);
    let (bus, js, acme, codec) = events_and_dead_letters(&server).await;
    let producer = Messenger::new(
        bus.clone(),
        codec.clone(),
        EventSource::new(&acme, "agent", "planner").unwrap(),
    )
    .with_telemetry(&producer_otel);
    let worker = gateway(&bus, codec, &acme, &worker_otel);

    let seen: Arc<Mutex<Vec<(String, u64, String)>>> = Arc::default();
    let s = seen.clone();
    let spec = ConsumerSpec::new("SDK_EVENTS", "gateway")
        .max_deliver(2)
        .backoff(vec![Duration::from_millis(50)]);
    let running = worker
        .consume(&js, spec, move |event: EventMessage, cx| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push((
                    event.event_id.clone(),
                    cx.delivered,
                    cx.tenant.to_string(),
                ));
                match (event.event_id.as_str(), cx.delivered) {
                    ("e-flaky", 1) => Outcome::Retry("model timed out".into()),
                    ("e-poison", _) => Outcome::Reject("unknown tool".into()),
                    _ => Outcome::Ack,
                }
            }
        })
        .await
        .unwrap();

    let subject = acme.scope().event("task.completed").unwrap();
    for id in ["e-flaky", "e-poison"] {
        let event = EventMessage {
            event_id: id.into(),
            event_type: "sdk.task.completed".into(),
            source: "/acme/agent/planner".into(),
            ..Default::default()
        };
        let ack = producer
            .publish_durable(&js, &subject, "sdk.task.completed", &event)
            .await
            .unwrap();
        assert_eq!(ack.stream, "SDK_EVENTS");
    }
    tokio::time::timeout(WAIT, async {
        while seen.lock().unwrap().len() < 3 || bus.stats().dead_lettered < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "three deliveries and one dead letter: {:?} {:?}",
            seen.lock().unwrap(),
            bus.stats()
        )
    });
    running.abort();
    let deliveries = seen.lock().unwrap().clone();
    assert!(
        deliveries.contains(&("e-flaky".into(), 2, "acme".into())),
        "{deliveries:?}"
    );
    producer_otel.shutdown(Duration::from_secs(10)).unwrap();
    worker_otel.shutdown(Duration::from_secs(10)).unwrap();

    let name = "publish sdk.{tenant}.events.{event_type}";
    let publishes = collector.wait_for(WAIT, "both publish spans", |r| {
        let p = r.spans_named(name);
        (p.len() == 2).then(|| p.into_iter().cloned().collect::<Vec<_>>())
    });
    let process_name = "process sdk.{tenant}.events.{event_type}";
    let processes = collector.wait_for(WAIT, "three process spans", |r| {
        let p = r.spans_named(process_name);
        (p.len() == 3).then(|| p.into_iter().cloned().collect::<Vec<_>>())
    });
    for p in &publishes {
        assert_eq!(p.kind, "SPAN_KIND_PRODUCER");
        assert_eq!(p.resource["service.name"], "producer");
        assert_eq!(
            p.attributes["messaging.destination.name"],
            "sdk.acme.events.task.completed"
        );
        assert_eq!(p.attributes["server.address"], "127.0.0.1");
        assert!(p.attributes.contains_key("server.port"));
        assert_eq!(p.attributes["cloudevents.event_type"], "sdk.task.completed");
    }
    let flaky_publish = publishes
        .iter()
        .find(|p| {
            processes
                .iter()
                .filter(|c| c.trace_id == p.trace_id)
                .count()
                == 2
        })
        .expect("the flaky task's publish has two process spans in its trace");
    let mut flaky: Vec<_> = processes
        .iter()
        .filter(|c| c.trace_id == flaky_publish.trace_id)
        .collect();
    flaky.sort_by_key(|c| c.attributes["messaging.nats.message.delivery_count"].clone());
    for (process, (count, outcome)) in flaky.iter().zip([("1", "nak"), ("2", "ack")]) {
        assert_eq!(process.kind, "SPAN_KIND_CONSUMER");
        assert_eq!(
            process.parent_id, flaky_publish.span_id,
            "each delivery continues the producer"
        );
        assert_eq!(process.resource["service.name"], "worker");
        assert_eq!(
            process.attributes["messaging.nats.message.delivery_count"],
            count
        );
        assert_eq!(process.attributes["sdk.messaging.outcome"], outcome);
        assert_eq!(
            process.attributes["messaging.consumer.group.name"],
            "gateway"
        );
        assert_eq!(process.attributes["sdk.tenant.id"], "acme");
        assert_eq!(
            process.attributes["cloudevents.event_source"],
            "/acme/agent/planner"
        );
        assert!(
            process.events.iter().any(|e| e == "settle"),
            "{:?}",
            process.events
        );
    }
    assert_eq!(flaky[0].attributes["error.type"], "nak");
    let poison = processes
        .iter()
        .find(|c| {
            c.attributes
                .get("sdk.messaging.outcome")
                .map(String::as_str)
                == Some("dead_letter")
        })
        .expect("the poison message's process span");
    assert_eq!(poison.attributes["error.type"], "dead_letter");
    assert_eq!(poison.status, "STATUS_CODE_ERROR");
    assert_eq!(
        flaky[1].status, "STATUS_CODE_UNSET",
        "the acked delivery is not an error"
    );

    // The metrics: sent, consumed, settled by outcome, process duration, dead letters.
    let settled = collector.wait_for(WAIT, "the settled counter with all outcomes", |r| {
        let m = r.last_metric("sdk.messaging.settled")?;
        let outcomes: std::collections::BTreeSet<_> = m
            .points
            .iter()
            .filter_map(|p| p.attributes.get("sdk.messaging.outcome").cloned())
            .collect();
        (outcomes.len() == 3).then_some(outcomes)
    });
    assert_eq!(
        settled.into_iter().collect::<Vec<_>>(),
        vec!["ack".to_owned(), "dead_letter".to_owned(), "nak".to_owned()]
    );
    for name in [
        "messaging.client.sent.messages",
        "messaging.client.operation.duration",
        "messaging.client.consumed.messages",
        "messaging.process.duration",
        "sdk.codec.duration",
        "sdk.codec.size",
    ] {
        collector.wait_for(WAIT, name, |r| r.last_metric(name).cloned());
    }
    let dead = collector.wait_for(WAIT, "the dead-letter counter", |r| {
        r.last_metric("sdk.messaging.dead_letters")
            .filter(|m| {
                m.points
                    .iter()
                    .any(|p| p.fields.get("Value").map(String::as_str) == Some("1"))
            })
            .cloned()
    });
    assert!(
        dead.points
            .iter()
            .all(|p| !p.attributes.contains_key("error.type")),
        "no reason as a label"
    );
}

/// A stored message that cannot be decoded as the consumer's type never reaches the
/// handler and is not lost: it is dead-lettered at its first delivery, with the
/// reason, its payload intact, and its span failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_delivery_is_dead_lettered_not_handled() {
    use sdk_integration::sdk_bus::Envelope;
    use sdk_integration::sdk_bus::jetstream::dead_letter::DeadLetterQuery;

    let server = NatsServer::builder().jetstream().start();
    let collector = Collector::start();
    let otel = telemetry("worker", &collector, Signals::Traces);
    let (bus, js, acme, codec) = events_and_dead_letters(&server).await;
    let worker = gateway(&bus, codec, &acme, &otel);
    // A well-formed envelope whose JSON payload is cut short.
    let good = worker
        .envelope("sdk.event", &EventMessage::default())
        .unwrap();
    let (headers, _) = good.into_parts();
    let junk = Envelope::from_parts(headers, bytes::Bytes::from_static(b"{\"eventId\":")).unwrap();
    let subject = acme.scope().event("task.completed").unwrap();
    js.publish(&subject, junk).await.unwrap();

    let handled = Arc::new(Mutex::new(0));
    let h = handled.clone();
    let running = worker
        .consume(
            &js,
            ConsumerSpec::new("SDK_EVENTS", "strict"),
            move |_event: EventMessage, _cx| {
                *h.lock().unwrap() += 1;
                async { Outcome::Ack }
            },
        )
        .await
        .unwrap();
    let letters = tokio::time::timeout(WAIT, async {
        loop {
            let found = js
                .dead_letters("SDK_DLQ", &DeadLetterQuery::new())
                .await
                .unwrap()
                .letters;
            if !found.is_empty() {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the undecodable message was dead-lettered");
    running.abort();
    otel.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(*handled.lock().unwrap(), 0, "the handler never saw it");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].deliveries, Some(1), "at its first delivery");
    assert_eq!(letters[0].payload.as_ref(), b"{\"eventId\":");
    let reason = letters[0].reason.clone().unwrap_or_default();
    assert!(reason.starts_with("cannot be decoded"), "{reason}");
    let span = collector.wait_for_span("process sdk.{tenant}.events.{event_type}", WAIT);
    assert_eq!(span.status, "STATUS_CODE_ERROR");
}

/// A durable handler stopped at its timeout ends its span failed (`cancelled`), not as
/// a success; the bus retries the delivery, and the retry's span succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_handler_stopped_at_its_timeout_ends_its_span_failed() {
    let server = NatsServer::builder().jetstream().start();
    let collector = Collector::start();
    let otel = telemetry("worker", &collector, Signals::Traces);
    let (bus, js, acme, codec) = events_and_dead_letters(&server).await;
    let worker = gateway(&bus, codec, &acme, &otel);
    let subject = acme.scope().event("task.completed").unwrap();
    let event = EventMessage {
        event_id: "e-slow".into(),
        event_type: "sdk.task.completed".into(),
        source: "/acme/gateway/g-1".into(),
        ..Default::default()
    };
    worker
        .publish_durable(&js, &subject, "sdk.task.completed", &event)
        .await
        .unwrap();
    let mut spec = ConsumerSpec::new("SDK_EVENTS", "slow").backoff(vec![Duration::from_millis(50)]);
    // Only the first delivery waits on it; the retry returns at once.
    spec.handler_timeout = Some(Duration::from_secs(2));
    let done = Arc::new(Mutex::new(Vec::new()));
    let d = done.clone();
    let running = worker
        .consume(&js, spec, move |_event: EventMessage, cx| {
            let d = d.clone();
            async move {
                if cx.delivered == 1 {
                    std::future::pending::<()>().await;
                }
                d.lock().unwrap().push(cx.delivered);
                Outcome::Ack
            }
        })
        .await
        .unwrap();
    sdk_testkit::wait_until(WAIT, || (!done.lock().unwrap().is_empty()).then_some(()))
        .unwrap_or_else(|| panic!("the retry was not handled: {:?}", bus.stats()));
    running.abort();
    otel.shutdown(Duration::from_secs(10)).unwrap();
    let spans = collector.wait_for(WAIT, "the process spans", |r| {
        let p = r.spans_named("process sdk.{tenant}.events.{event_type}");
        (p.len() >= 2).then(|| p.into_iter().cloned().collect::<Vec<_>>())
    });
    let by_delivery = |n: &str| {
        spans
            .iter()
            .find(|s| {
                s.attributes
                    .get("messaging.nats.message.delivery_count")
                    .map(String::as_str)
                    == Some(n)
            })
            .unwrap_or_else(|| panic!("no span for delivery {n}: {spans:?}"))
    };
    let first = by_delivery("1");
    assert_eq!(first.status, "STATUS_CODE_ERROR");
    assert_eq!(first.attributes["error.type"], "cancelled");
    assert_ne!(by_delivery("2").status, "STATUS_CODE_ERROR");
}
