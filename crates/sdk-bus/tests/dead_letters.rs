//! Nothing is lost on the way to the dead-letter stream: server conditions are not
//! copied, a failed dead letter is retried (the server never gives up first), a large
//! original keeps its payload in its stream, per-tenant dead-letter streams work,
//! listing survives foreign messages and pages, and a hung handler is retried.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use sdk_bus::jetstream::stream::StreamSpec;
use sdk_bus::{Bus, BusEvent, ConsumerSpec, JetStream, Outcome, PublishOptions, Subject};
use sdk_testkit::NatsServer;

async fn connect(server: &NatsServer, streams: &[StreamSpec]) -> (Bus, JetStream) {
    let bus = nats_bus(&server.url(), |b| b.request_timeout(Duration::from_secs(5))).await;
    let js = bus.jetstream().unwrap();
    for spec in streams {
        js.ensure_stream(spec).await.unwrap();
    }
    (bus, js)
}

fn event(t: &str, kind: &str) -> Subject {
    tenant(t).scope().event(kind).unwrap()
}

fn quick(durable: &str) -> ConsumerSpec {
    ConsumerSpec::new("SDK_EVENTS", durable)
        .ack_wait(Duration::from_secs(2))
        .max_deliver(2)
        .backoff(vec![Duration::from_millis(50)])
}

/// Rejects every message whose body starts with `poison`, acks the rest.
fn reject_poison(d: sdk_bus::JetStreamDelivery) -> impl Future<Output = Outcome> {
    let poison = d.envelope.payload().starts_with(b"poison");
    async move {
        if poison {
            Outcome::Reject("poison".into())
        } else {
            Outcome::Ack
        }
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_drop_server_conditions_and_replay_cleanly() {
    let server = NatsServer::builder().jetstream().start();
    let (bus, js) = connect(&server, &[StreamSpec::events(), StreamSpec::dead_letters()]).await;
    let ordered = event("acme", "order");
    let first = js
        .publish_with(
            &ordered,
            envelope("acme", "first"),
            PublishOptions::new().expected_last_subject_sequence(0),
        )
        .await
        .unwrap();
    js.publish_with(
        &ordered,
        envelope("acme", "poison-seq"),
        PublishOptions::new().expected_last_subject_sequence(first.sequence),
    )
    .await
    .unwrap();
    let short = js
        .publish_with(
            &event("acme", "short"),
            envelope("acme", "poison-ttl"),
            PublishOptions::new().ttl(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    let worker = js
        .consume(quick("conditions"), reject_poison)
        .await
        .unwrap();
    until("two dead letters", || bus.stats().dead_lettered >= 2).await;
    worker.abort();
    // Wait until the server has expired the original (its TTL is 1 s): the copy
    // must still be there after that.
    let events = async_nats::jetstream::new(bus.nats_client().unwrap().clone())
        .get_stream("SDK_EVENTS")
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        while events.get_raw_message(short.sequence).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the original expired at its TTL");
    let letters = js
        .dead_letters("SDK_DLQ", &DeadLetterQuery::new().tenant(&tenant("acme")))
        .await
        .unwrap()
        .letters;
    assert_eq!(letters.len(), 2, "{letters:?}");
    for letter in &letters {
        for gone in ["Nats-TTL", "Nats-Expected-Last-Subject-Sequence"] {
            assert_eq!(letter.headers.get(gone), None, "{gone} was copied");
        }
        // The original's de-duplication id moved aside; the copy has its own.
        let original_id = letter.headers.get("sdk-dlq-msg-id").unwrap();
        assert!(original_id.starts_with("acme:"), "{original_id}");
        assert!(
            letter
                .headers
                .get("Nats-Msg-Id")
                .unwrap()
                .starts_with("dlq-SDK_EVENTS-")
        );
        assert_eq!(letter.headers.get("sdk-dlq-stream"), Some("SDK_EVENTS"));
    }
    for letter in &letters {
        js.replay("SDK_DLQ", letter).await.unwrap();
    }
    let left = js
        .dead_letters("SDK_DLQ", &DeadLetterQuery::new())
        .await
        .unwrap();
    assert!(left.letters.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_that_cannot_be_stored_is_retried_until_it_is() {
    let server = NatsServer::builder().jetstream().start();
    // No dead-letter stream yet.
    let (bus, js) = connect(&server, &[StreamSpec::events()]).await;
    let mut events = bus.events();
    js.publish(&event("acme", "x"), envelope("acme", "poison"))
        .await
        .unwrap();
    let deliveries = Arc::new(AtomicUsize::new(0));
    let seen = deliveries.clone();
    let worker = js
        .consume(quick("keeps-it"), move |d| {
            seen.fetch_add(1, Ordering::SeqCst);
            reject_poison(d)
        })
        .await
        .unwrap();
    let reason = wait_event(&mut events, |e| match e {
        BusEvent::DeadLetterFailed { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(
        reason.contains("ensure_stream"),
        "the failure says what to do: {reason}"
    );
    // Past max_deliver (2) plus one: the server would have dropped it by now.
    until("four failed dead letters", || {
        bus.stats().dead_letter_failures >= 4
    })
    .await;
    assert_eq!(bus.stats().dead_lettered, 0);
    js.ensure_stream(&StreamSpec::dead_letters()).await.unwrap();
    until("the dead letter", || bus.stats().dead_lettered == 1).await;
    worker.abort();
    // The handler ran max_deliver times; later deliveries went straight to the DLQ.
    assert_eq!(deliveries.load(Ordering::SeqCst), 2);
    let letters = js
        .dead_letters("SDK_DLQ", &DeadLetterQuery::new())
        .await
        .unwrap()
        .letters;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].payload.as_ref(), b"poison");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_original_near_max_payload_keeps_its_payload_in_its_stream() {
    let max = 8 * 1024;
    let server = NatsServer::builder().jetstream().max_payload(max).start();
    let (bus, js) = connect(&server, &[StreamSpec::events(), StreamSpec::dead_letters()]).await;
    let probe = envelope("acme", "");
    // Room for the Nats-Msg-Id header the publish adds.
    let room = max as usize - probe.wire_size() - 128;
    let body = format!("poison{}", "p".repeat(room - 6));
    js.publish(&event("acme", "big"), envelope("acme", &body))
        .await
        .unwrap();
    let long_reason = "r".repeat(5000);
    let reason = long_reason.clone();
    let worker = js
        .consume(quick("big"), move |_d| {
            let reason = reason.clone();
            async move { Outcome::Reject(reason) }
        })
        .await
        .unwrap();
    until("the dead letter", || bus.stats().dead_lettered == 1).await;
    worker.abort();
    let letter = js
        .dead_letters("SDK_DLQ", &DeadLetterQuery::new())
        .await
        .unwrap()
        .letters
        .remove(0);
    assert!(letter.payload.is_empty());
    assert_eq!(
        letter.headers.get("sdk-dlq-payload-omitted"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(
        letter.reason.as_deref().map(str::len),
        Some(1024),
        "the reason is bounded"
    );
    // Replay takes the payload from the original stream.
    let ack = js.replay("SDK_DLQ", &letter).await.unwrap();
    let raw = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let replayed = raw
        .get_stream("SDK_EVENTS")
        .await
        .unwrap()
        .get_raw_message(ack.sequence)
        .await
        .unwrap();
    assert_eq!(replayed.payload, Bytes::from(body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_tenant_dead_letter_streams_get_their_tenants_letters() {
    let server = NatsServer::builder().jetstream().start();
    let (bus, js) = connect(
        &server,
        &[
            StreamSpec::events(),
            StreamSpec::dead_letters().for_tenant(&tenant("acme")),
            StreamSpec::dead_letters().for_tenant(&tenant("beta")),
        ],
    )
    .await;
    for t in ["acme", "beta"] {
        js.publish(&event(t, "x"), envelope(t, "poison"))
            .await
            .unwrap();
    }
    let worker = js
        .consume(quick("per-tenant"), reject_poison)
        .await
        .unwrap();
    until("two dead letters", || bus.stats().dead_lettered == 2).await;
    worker.abort();
    for t in ["acme", "beta"] {
        let letters = js
            .dead_letters(&format!("SDK_DLQ_{t}"), &DeadLetterQuery::new())
            .await
            .unwrap()
            .letters;
        assert_eq!(letters.len(), 1, "{t}");
        assert_eq!(letters[0].subject, format!("sdk.{t}.dlq.events.x"));
    }
    assert_eq!(bus.stats().dead_letter_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_survives_a_foreign_message_and_pages() {
    let server = NatsServer::builder().jetstream().start();
    let (bus, js) = connect(&server, &[StreamSpec::events(), StreamSpec::dead_letters()]).await;
    // Something that is not an SDK dead letter, stored in the dead-letter stream.
    let raw = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    raw.publish("sdk.acme.dlq.events.foreign", "\u{0}not an envelope".into())
        .await
        .unwrap()
        .await
        .unwrap();
    for i in 0..4 {
        js.publish(
            &event("acme", "x"),
            envelope("acme", &format!("poison-{i}")),
        )
        .await
        .unwrap();
    }
    let worker = js.consume(quick("pages"), reject_poison).await.unwrap();
    until("four dead letters", || bus.stats().dead_lettered == 4).await;
    worker.abort();
    let mut query = Some(DeadLetterQuery::new().limit(2));
    let mut pages = Vec::new();
    let mut all = Vec::new();
    while let Some(q) = query {
        let page = js.dead_letters("SDK_DLQ", &q).await.unwrap();
        pages.push(page.letters.len());
        all.extend(page.letters);
        query = page.next;
    }
    assert_eq!(pages, vec![2, 2, 1]);
    let foreign = &all[0];
    assert_eq!(foreign.subject, "sdk.acme.dlq.events.foreign");
    assert_eq!(foreign.original_subject, None);
    assert_eq!(foreign.reason, None);
    assert_eq!(foreign.deliveries, None);
    assert_eq!(foreign.payload.as_ref(), b"\0not an envelope");
    assert!(
        all[1..]
            .iter()
            .all(|l| l.reason.as_deref() == Some("poison"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_past_its_timeout_is_retried() {
    let server = NatsServer::builder().jetstream().start();
    let (bus, js) = connect(&server, &[StreamSpec::events(), StreamSpec::dead_letters()]).await;
    js.publish(&event("acme", "hang"), envelope("acme", "work"))
        .await
        .unwrap();
    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let seen = deliveries.clone();
    let spec = quick("hangs")
        .max_deliver(3)
        .handler_timeout(Some(Duration::from_millis(300)));
    let worker = js
        .consume(spec, move |d| {
            seen.lock().unwrap().push(d.delivered);
            async move {
                if d.delivered == 1 {
                    std::future::pending::<()>().await;
                }
                Outcome::Ack
            }
        })
        .await
        .unwrap();
    until("the second delivery", || {
        deliveries.lock().unwrap().len() == 2
    })
    .await;
    until("the timeout was counted", || {
        bus.stats().handler_timeouts == 1
    })
    .await;
    worker.abort();
    assert_eq!(*deliveries.lock().unwrap(), vec![1, 2]);
    assert_eq!(bus.stats().dead_lettered, 0);
}
