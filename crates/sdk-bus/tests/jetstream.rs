//! JetStream against real servers: streams, dedup, TTL, optimistic concurrency,
//! at-least-once processing, dead letters, ordering, KV state, and the fault tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::StreamExt as _;
use sdk_bus::{
    Bus, BusError, ConsumerSpec, JetStream, Outcome, PublishOptions, StreamSpec, Subject,
};
use sdk_testkit::{NatsServer, wait_until};

async fn setup(server: &NatsServer) -> (Bus, JetStream) {
    let bus = nats_bus(&server.url(), |b| b.request_timeout(Duration::from_secs(5))).await;
    let js = bus.jetstream().unwrap();
    for spec in [
        StreamSpec::events(),
        StreamSpec::workflows(),
        StreamSpec::dead_letters(),
    ] {
        js.ensure_stream(&spec).await.unwrap();
    }
    (bus, js)
}

fn event(t: &str, kind: &str) -> Subject {
    tenant(t).scope().event(kind).unwrap()
}

/// Stream message count, read from the monitoring endpoint.
fn stream_messages(server: &NatsServer, stream: &str) -> Option<u64> {
    let jsz: serde_json::Value =
        serde_json::from_str(&server.monitor("/jsz?streams=true")?).ok()?;
    jsz["account_details"].as_array()?.iter().find_map(|acc| {
        acc["stream_detail"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == stream)
            .and_then(|s| s["state"]["messages"].as_u64())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_setup_is_idempotent_and_updates_settings() {
    let server = NatsServer::builder().jetstream().start();
    let (_bus, js) = setup(&server).await;
    // Again, unchanged: fine.
    js.ensure_stream(&StreamSpec::events()).await.unwrap();
    // Changed: updated in place.
    js.ensure_stream(&StreamSpec::events().max_age(Duration::from_secs(3600)))
        .await
        .unwrap();
    let raw = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let mut stream = raw.get_stream("SDK_EVENTS").await.unwrap();
    assert_eq!(
        stream.info().await.unwrap().config.max_age,
        Duration::from_secs(3600)
    );
    // A per-tenant stream next to the shared one would overlap its subjects: refused.
    let err = js
        .ensure_stream(&StreamSpec::events().for_tenant(&tenant("acme")))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "JetStream ensure stream failed");
    assert!(
        error_chain(&err).contains("subjects overlap"),
        "{}",
        error_chain(&err)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_publish_inside_the_window_is_stored_once() {
    let server = NatsServer::builder().jetstream().start();
    let (_bus, js) = setup(&server).await;
    let env = envelope("acme", "once");
    let first = js
        .publish(&event("acme", "task.completed"), env.clone())
        .await
        .unwrap();
    let again = js
        .publish(&event("acme", "task.completed"), env)
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(
        again.duplicate,
        "the second publish of the same ce-id is recognised"
    );
    assert_eq!(again.sequence, first.sequence);
    assert_eq!(stream_messages(&server, "SDK_EVENTS"), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_message_ttl_expires_the_message() {
    let server = NatsServer::builder().jetstream().start();
    let (_bus, js) = setup(&server).await;
    let opts = PublishOptions::new().ttl(Duration::from_secs(1));
    js.publish_with(
        &event("acme", "ephemeral"),
        envelope("acme", "short-lived"),
        opts,
    )
    .await
    .unwrap();
    js.publish(&event("acme", "durable"), envelope("acme", "kept"))
        .await
        .unwrap();
    assert_eq!(stream_messages(&server, "SDK_EVENTS"), Some(2));
    let expired = wait_until(Duration::from_secs(15), || {
        (stream_messages(&server, "SDK_EVENTS") == Some(1)).then_some(())
    });
    assert!(
        expired.is_some(),
        "the 1 s TTL message was removed, the other kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_last_sequence_gives_optimistic_concurrency() {
    let server = NatsServer::builder().jetstream().start();
    let (_bus, js) = setup(&server).await;
    let subject = tenant("acme").scope().workflow("wf-1", "state").unwrap();
    let first = js
        .publish_with(
            &subject,
            envelope("acme", "v1"),
            PublishOptions::new().expected_last_subject_sequence(0),
        )
        .await
        .unwrap();
    js.publish_with(
        &subject,
        envelope("acme", "v2"),
        PublishOptions::new().expected_last_subject_sequence(first.sequence),
    )
    .await
    .unwrap();
    // A writer that still believes v1 is the last one loses.
    let err = js
        .publish_with(
            &subject,
            envelope("acme", "v2-stale"),
            PublishOptions::new().expected_last_subject_sequence(first.sequence),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            sdk_bus::JetStreamPublishError::WrongLastSequence { .. }
        ),
        "{err:?}"
    );
}

fn fast_spec(durable: &str) -> ConsumerSpec {
    ConsumerSpec::new("SDK_EVENTS", durable)
        .ack_wait(Duration::from_secs(1))
        .max_deliver(3)
        .backoff(vec![Duration::from_millis(50)])
        .concurrency(4)
}

/// Waits until `bus` has stored `n` dead letters, then lists them.
async fn dead_letters_after(
    bus: &Bus,
    js: &JetStream,
    n: u64,
    query: DeadLetterQuery,
) -> Vec<DeadLetter> {
    tokio::time::timeout(WAIT, async {
        while bus.stats().dead_lettered < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the dead letters were stored");
    js.dead_letters("SDK_DLQ", &query).await.unwrap().letters
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_always_fails_ends_in_the_dead_letter_stream_intact() {
    let server = NatsServer::builder().jetstream().start();
    let (bus, js) = setup(&server).await;
    let env = envelope("acme", "poison");
    let id = env.id().unwrap().into_owned();
    js.publish(&event("acme", "task.completed"), env)
        .await
        .unwrap();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let seen = attempts.clone();
    let worker = js
        .consume(fast_spec("always-fails"), move |d| {
            seen.lock().unwrap().push(d.delivered);
            async move { Outcome::Retry("model provider returned 500".into()) }
        })
        .await
        .unwrap();
    let letters =
        dead_letters_after(&bus, &js, 1, DeadLetterQuery::new().tenant(&tenant("acme"))).await;
    worker.abort();
    assert_eq!(
        *attempts.lock().unwrap(),
        vec![1, 2, 3],
        "three deliveries, then dead-lettered"
    );
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(
        letter.original_subject.as_deref(),
        Some("sdk.acme.events.task.completed")
    );
    assert_eq!(
        letter.reason.as_deref(),
        Some("gave up after 3 deliveries: model provider returned 500")
    );
    assert_eq!(letter.deliveries, Some(3));
    assert_eq!(letter.consumer.as_deref(), Some("always-fails"));
    let original = letter.envelope().unwrap();
    assert_eq!(
        original.id().as_deref(),
        Some(id.as_str()),
        "the original headers are kept"
    );
    assert_eq!(
        original.payload().as_ref(),
        b"poison",
        "the payload is intact"
    );
    assert_eq!(bus.stats().dead_lettered, 1);

    // Replay puts it back on its subject and takes it out of the dead letters.
    js.replay("SDK_DLQ", letter).await.unwrap();
    assert!(
        js.dead_letters("SDK_DLQ", &DeadLetterQuery::new())
            .await
            .unwrap()
            .letters
            .is_empty()
    );
    assert_eq!(stream_messages(&server, "SDK_EVENTS"), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_message_is_dead_lettered_at_once() {
    let server = NatsServer::builder().jetstream().start();
    let (bus, js) = setup(&server).await;
    // A beta envelope on an acme subject: refused before the handler.
    js.publish(&event("acme", "task.completed"), envelope("beta", "forged"))
        .await
        .unwrap();
    let ran = Arc::new(Mutex::new(0));
    let r = ran.clone();
    let worker = js
        .consume(fast_spec("rejects"), move |_d| {
            *r.lock().unwrap() += 1;
            async { Outcome::Ack }
        })
        .await
        .unwrap();
    let letters = dead_letters_after(&bus, &js, 1, DeadLetterQuery::new()).await;
    worker.abort();
    assert_eq!(*ran.lock().unwrap(), 0);
    assert_eq!(letters[0].deliveries, Some(1));
    let reason = letters[0].reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("ce-tenantid \"beta\" does not match"),
        "{reason}"
    );
}

/// Two durables read every message of a stream; when both refuse the same message,
/// each stores its own dead letter. (With one id per stream sequence, the second
/// was taken for a duplicate and lost, yet counted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_durables_that_refuse_one_message_store_two_dead_letters() {
    let server = NatsServer::builder().jetstream().start();
    let (bus, js) = setup(&server).await;
    js.publish(&event("acme", "task.completed"), envelope("beta", "forged"))
        .await
        .unwrap();
    let mut workers = Vec::new();
    for durable in ["audit", "billing"] {
        workers.push(
            js.consume(fast_spec(durable), |_d| async { Outcome::Ack })
                .await
                .unwrap(),
        );
    }
    let letters = dead_letters_after(&bus, &js, 2, DeadLetterQuery::new()).await;
    for w in &workers {
        w.abort();
    }
    let consumers: BTreeSet<Option<String>> = letters.iter().map(|l| l.consumer.clone()).collect();
    assert_eq!(
        consumers,
        BTreeSet::from([Some("audit".to_owned()), Some("billing".to_owned())]),
        "{letters:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_dies_mid_processing_hands_the_message_to_another() {
    let server = NatsServer::builder().jetstream().start();
    let (_bus, js) = setup(&server).await;
    js.publish(
        &event("acme", "task.assigned"),
        envelope("acme", "long task"),
    )
    .await
    .unwrap();
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
    let first = js
        .consume(fast_spec("shared"), move |d| {
            let tx = started_tx.clone();
            async move {
                tx.send(d.delivered).unwrap();
                // Never finishes: the instance dies before acking.
                std::future::pending::<Outcome>().await
            }
        })
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(WAIT, started_rx.recv()).await.unwrap(),
        Some(1)
    );
    first.abort();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let second = js
        .consume(fast_spec("shared"), move |d| {
            let tx = done_tx.clone();
            async move {
                tx.send((d.delivered, body_of(&d.envelope))).unwrap();
                Outcome::Ack
            }
        })
        .await
        .unwrap();
    let (delivered, body) = tokio::time::timeout(WAIT, done_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivered, 2, "redelivered after the ack wait");
    assert_eq!(body, "long task");
    second.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_task_keeps_its_ack_wait_alive_with_progress() {
    let server = NatsServer::builder().jetstream().start();
    let (_bus, js) = setup(&server).await;
    js.publish(&event("acme", "slow"), envelope("acme", "slow"))
        .await
        .unwrap();
    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let d2 = deliveries.clone();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let worker = js
        .consume(fast_spec("slow"), move |d| {
            d2.lock().unwrap().push(d.delivered);
            let tx = done_tx.clone();
            async move {
                // Three ack-wait periods of work; progress heartbeats keep it ours.
                tokio::time::sleep(Duration::from_secs(3)).await;
                tx.send(()).unwrap();
                Outcome::Ack
            }
        })
        .await
        .unwrap();
    tokio::time::timeout(WAIT, done_rx.recv())
        .await
        .unwrap()
        .unwrap();
    worker.abort();
    assert_eq!(
        *deliveries.lock().unwrap(),
        vec![1],
        "never redelivered while in progress"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_workflow_is_processed_in_order_while_workflows_run_in_parallel() {
    let server = NatsServer::builder().jetstream().start();
    let (_bus, js) = setup(&server).await;
    let scope = tenant("acme").scope();
    let per = 20;
    for n in 0..per {
        for wf in ["wf-a", "wf-b", "wf-c"] {
            js.publish(
                &scope.workflow(wf, "step").unwrap(),
                envelope("acme", &format!("{wf}:{n}")),
            )
            .await
            .unwrap();
        }
    }
    let seen: Arc<Mutex<BTreeMap<String, Vec<u32>>>> = Arc::default();
    // The first events of wf-a and wf-b meet at a barrier: both must be in flight at
    // the same time, which only happens if different workflows run in parallel.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let met = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut spec = ConsumerSpec::new("SDK_WORKFLOWS", "ordered");
    spec.ordered_by_workflow = true;
    spec.concurrency = 8;
    let (s, b, m) = (seen.clone(), barrier.clone(), met.clone());
    let worker = js
        .consume(spec, move |d| {
            let (s, b, m) = (s.clone(), b.clone(), m.clone());
            async move {
                let body = body_of(&d.envelope);
                let (wf, n) = body.split_once(':').unwrap();
                if n == "0"
                    && (wf == "wf-a" || wf == "wf-b")
                    && tokio::time::timeout(Duration::from_secs(5), b.wait())
                        .await
                        .is_ok()
                {
                    m.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                s.lock()
                    .unwrap()
                    .entry(wf.to_owned())
                    .or_default()
                    .push(n.parse().unwrap());
                Outcome::Ack
            }
        })
        .await
        .unwrap();
    let all = tokio::time::timeout(WAIT, async {
        loop {
            let snapshot = seen.lock().unwrap().clone();
            if snapshot.values().map(Vec::len).sum::<usize>() == 3 * per as usize {
                return snapshot;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("every workflow event processed");
    worker.abort();
    for (wf, order) in &all {
        assert_eq!(
            order,
            &(0..per).collect::<Vec<_>>(),
            "{wf} processed out of order"
        );
    }
    assert_eq!(
        met.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "wf-a and wf-b were in flight together"
    );
}

/// A handler that panics before it returns its future is a failed delivery, retried:
/// its workflow's lane goes on. (Were the panic not caught there, the lane would
/// die, and every later event of the workflow would be nak'd for ever.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_lane_survives_a_handler_that_panics_before_its_future() {
    let server = NatsServer::builder().jetstream().start();
    let (_bus, js) = setup(&server).await;
    let step = tenant("acme").scope().workflow("wf-a", "step").unwrap();
    for n in 0..3 {
        js.publish(&step, envelope("acme", &format!("wf-a:{n}")))
            .await
            .unwrap();
    }
    let seen: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let mut spec = ConsumerSpec::new("SDK_WORKFLOWS", "lanes")
        .backoff(vec![Duration::from_millis(50)])
        .max_deliver(5);
    spec.ordered_by_workflow = true;
    let s = seen.clone();
    let worker = js
        .consume(spec, move |d| {
            let body = body_of(&d.envelope);
            assert!(
                !(body == "wf-a:0" && d.delivered == 1),
                "exploded before the future"
            );
            let s = s.clone();
            async move {
                s.lock().unwrap().push((body, d.delivered));
                Outcome::Ack
            }
        })
        .await
        .unwrap();
    let all = wait_until(WAIT, || {
        let seen = seen.lock().unwrap().clone();
        (seen.len() == 3).then_some(seen)
    })
    .unwrap_or_else(|| panic!("the lane stopped: {:?}", seen.lock().unwrap()));
    worker.abort();
    assert!(
        all.contains(&("wf-a:0".to_owned(), 2)),
        "the event that panicked was delivered again: {all:?}"
    );
    for n in 1..3 {
        assert!(
            all.iter().any(|(b, _)| *b == format!("wf-a:{n}")),
            "{all:?}"
        );
    }
}

/// A drain lets the running handler finish, but an event already queued behind it in
/// its workflow's lane is not started (the lane naks it), so nothing runs against a
/// closing connection; and it is not lost: the next worker gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_hands_back_what_waits_in_an_ordered_lane() {
    let server = NatsServer::builder().jetstream().start();
    let (bus, js) = setup(&server).await;
    let step = tenant("acme").scope().workflow("wf-a", "step").unwrap();
    for n in 0..2 {
        js.publish(&step, envelope("acme", &format!("wf-a:{n}")))
            .await
            .unwrap();
    }
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let spec = || {
        let mut spec = ConsumerSpec::new("SDK_WORKFLOWS", "lanes")
            .ack_wait(Duration::from_secs(5))
            .concurrency(2);
        spec.ordered_by_workflow = true;
        spec
    };
    let (s, g) = (seen.clone(), gate.clone());
    let _worker = js
        .consume(spec(), move |d| {
            let (s, g) = (s.clone(), g.clone());
            async move {
                s.lock().unwrap().push(body_of(&d.envelope));
                g.acquire().await.unwrap().forget();
                Outcome::Ack
            }
        })
        .await
        .unwrap();
    // The first event runs (held at the gate); the second waits in the same lane.
    wait_until(WAIT, || (seen.lock().unwrap().len() == 1).then_some(())).unwrap();
    let drain = tokio::spawn({
        let bus = bus.clone();
        async move { bus.drain().await }
    });
    until_draining(&bus).await;
    gate.add_permits(10);
    drain.await.unwrap().unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["wf-a:0"],
        "only the running event ran"
    );

    // The second comes back to the next worker: nak'd at once when it waited in the
    // lane, or after `ack_wait` if the drain came before it was handed to the lane.
    let (_bus2, js2) = setup(&server).await;
    let again: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let a = again.clone();
    let _worker2 = js2
        .consume(spec(), move |d| {
            a.lock().unwrap().push((body_of(&d.envelope), d.delivered));
            async { Outcome::Ack }
        })
        .await
        .unwrap();
    wait_until(Duration::from_secs(30), || {
        let got = again.lock().unwrap().clone();
        got.iter().any(|(body, _)| body == "wf-a:1").then_some(())
    })
    .unwrap_or_else(|| panic!("the queued event never came back: {again:?}"));
}

/// An ordered worker makes one task per lane up front: `concurrency(usize::MAX)` made
/// tasks until memory ran out. Lanes are capped, and the worker consumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_worker_with_a_huge_concurrency_still_consumes() {
    let server = NatsServer::builder().jetstream().start();
    let (_bus, js) = setup(&server).await;
    let step = tenant("acme").scope().workflow("wf-a", "step").unwrap();
    js.publish(&step, envelope("acme", "one")).await.unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut spec = ConsumerSpec::new("SDK_WORKFLOWS", "wide").concurrency(usize::MAX);
    spec.ordered_by_workflow = true;
    let s = seen.clone();
    let worker = js
        .consume(spec, move |d| {
            s.lock().unwrap().push(body_of(&d.envelope));
            async { Outcome::Ack }
        })
        .await
        .unwrap();
    wait_until(WAIT, || (!seen.lock().unwrap().is_empty()).then_some(()))
        .expect("the event was consumed");
    worker.abort();
    assert_eq!(*seen.lock().unwrap(), ["one"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_state_is_compare_and_set_and_watchable() {
    let server = NatsServer::builder().jetstream().start();
    let (_bus, js) = setup(&server).await;
    let state = js.state_store("sdk_workflow_state", 1).await.unwrap();
    let mut watch = state.watch("wf-1").await.unwrap().boxed();
    let r1 = state
        .create("wf-1", Bytes::from_static(b"started"))
        .await
        .unwrap();
    assert!(matches!(
        state
            .create("wf-1", Bytes::from_static(b"again"))
            .await
            .unwrap_err(),
        BusError::Conflict { .. }
    ));
    let r2 = state
        .update("wf-1", Bytes::from_static(b"step-2"), r1)
        .await
        .unwrap();
    let err = state
        .update("wf-1", Bytes::from_static(b"lost update"), r1)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("conflict on key wf-1: it is no longer at revision {r1}")
    );
    assert_eq!(
        state.get("wf-1").await.unwrap(),
        Some((Bytes::from_static(b"step-2"), r2))
    );
    let first = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap();
    let second = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.value.as_ref(), second.value.as_ref()),
        (b"started".as_ref(), b"step-2".as_ref())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_ids_are_remembered_for_effectively_once_handling() {
    let server = NatsServer::builder().jetstream().start();
    let (_bus, js) = setup(&server).await;
    let seen = js
        .idempotency("sdk_processed", Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(
        seen.first_time(&tenant("acme"), "4bYhFfyLcdd6PZFk0yq3Hq")
            .await
            .unwrap()
    );
    assert!(
        !seen
            .first_time(&tenant("acme"), "4bYhFfyLcdd6PZFk0yq3Hq")
            .await
            .unwrap()
    );
    assert!(
        seen.first_time(&tenant("acme"), "another id")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn jetstream_is_refused_on_the_in_process_transport() {
    let bus = Bus::in_process(sdk_bus::BusConfig::builder().build().unwrap());
    let err = bus.jetstream().unwrap_err();
    assert_eq!(
        err.to_string(),
        "JetStream is not available on the in-process transport"
    );
}
