//! One suite, two transports: every case runs against a real nats-server and against
//! the in-process transport, so the two cannot drift apart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::fixture::Fixture;
use common::*;
use sdk_bus::{
    Bus, BusConfig, BusError, BusEvent, PublishError, RequestError, ServeOptions, ServiceCode,
    ServiceFailure, Subject, SubjectPattern,
};
use sdk_testkit::NatsServer;

conformance!(
    pub_sub_keeps_headers_and_payload,
    wildcards_match_like_nats,
    queue_groups_share_work_without_loss_or_doubling,
    request_reply_round_trips,
    service_errors_come_back_typed,
    no_responders_is_reported_not_timed_out,
    requests_time_out,
    tenant_mismatch_is_refused_before_any_handler,
    oversized_messages_are_refused_with_both_sizes,
    agents_send_and_receive_messages,
    drain_loses_no_message_in_flight,
    slow_consumers_are_reported,
    status_and_server_details,
    a_failed_event_is_dead_lettered_with_its_headers,
);

async fn a_failed_event_is_dead_lettered_with_its_headers(mut f: Fixture) {
    let bus = f.bus(|b| b).await;
    let acme = tenant("acme").scope();
    let mut dlq = bus
        .subscribe(&acme.pattern(&["dlq", ">"]).unwrap())
        .await
        .unwrap();
    let service = bus
        .serve(
            &acme.pattern(&["events", ">"]).unwrap(),
            ServeOptions::new().concurrency(1),
            |_d| async move {
                Err(ServiceFailure::new(
                    ServiceCode::HandlerFailed,
                    "index is full",
                ))
            },
        )
        .await
        .unwrap();
    bus.flush().await.unwrap();
    let env = envelope("acme", "doc-7");
    let id = env.id().unwrap().into_owned();
    bus.publish(&acme.event("document.ingested").unwrap(), env)
        .await
        .unwrap();
    let letter = next(&mut dlq).await;
    assert_eq!(
        letter.subject.as_str(),
        "sdk.acme.dlq.events.document.ingested"
    );
    assert_eq!(
        letter.envelope.id().as_deref(),
        Some(id.as_str()),
        "original headers kept"
    );
    assert_eq!(body(&letter), "doc-7", "original payload kept");
    let h = |n: &str| letter.envelope.headers().get(n).map(str::to_owned);
    assert_eq!(h("sdk-dlq-reason").as_deref(), Some("500: index is full"));
    assert_eq!(
        h("sdk-dlq-subject").as_deref(),
        Some("sdk.acme.events.document.ingested")
    );
    assert_eq!(h("sdk-dlq-deliveries").as_deref(), Some("1"));
    assert_eq!(h("sdk-dlq-consumer").as_deref(), Some("serve"));
    assert!(h("sdk-dlq-time").is_some());
    // Counted right after the dead letter is sent, which the subscriber may beat.
    tokio::time::timeout(WAIT, async {
        while bus.stats().dead_lettered < 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the dead letter was counted");
    assert_eq!(bus.stats().dead_lettered, 1);
    service.abort();
}

async fn pub_sub_keeps_headers_and_payload(mut f: Fixture) {
    let bus = f.bus(|b| b).await;
    let acme = tenant("acme").scope();
    let mut sub = bus
        .subscribe(&acme.pattern(&["events", ">"]).unwrap())
        .await
        .unwrap();
    let source = sdk_bus::EventSource::new(&tenant("acme"), "rag", "r-1").unwrap();
    let env = sdk_bus::Envelope::builder(&source, "sdk.document.ingested")
        .content_type("application/json")
        .subject("naïve \"quoted\" 100%")
        .correlation_id("corr-1")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .payload(bytes::Bytes::from_static(b"{\"doc\":1}"))
        .build()
        .unwrap();
    let id = env.id().unwrap().into_owned();
    bus.publish(&acme.event("document.ingested").unwrap(), env)
        .await
        .unwrap();
    let got = next(&mut sub).await;
    assert_eq!(got.subject.as_str(), "sdk.acme.events.document.ingested");
    assert_eq!(got.envelope.id().as_deref(), Some(id.as_str()));
    assert_eq!(
        got.envelope.subject().as_deref(),
        Some("naïve \"quoted\" 100%")
    );
    assert_eq!(got.envelope.correlation_id().as_deref(), Some("corr-1"));
    assert_eq!(
        got.envelope.data_content_type().as_deref(),
        Some("application/json")
    );
    assert_eq!(
        got.envelope.attr("TRACEPARENT").as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(got.envelope.payload().as_ref(), b"{\"doc\":1}");
}

async fn wildcards_match_like_nats(mut f: Fixture) {
    let bus = f.bus(|b| b).await;
    let acme = tenant("acme").scope();
    let mut one = bus
        .subscribe(&SubjectPattern::new("sdk.acme.*.query").unwrap())
        .await
        .unwrap();
    let mut all = bus
        .subscribe(&SubjectPattern::all_tenants("rag", "query").unwrap())
        .await
        .unwrap();
    bus.publish(
        &acme.component("rag", "index").unwrap(),
        envelope("acme", "no"),
    )
    .await
    .unwrap();
    bus.publish(
        &tenant("beta").scope().component("rag", "query").unwrap(),
        envelope("beta", "beta"),
    )
    .await
    .unwrap();
    bus.publish(
        &acme.component("rag", "query").unwrap(),
        envelope("acme", "acme"),
    )
    .await
    .unwrap();
    assert_eq!(body(&next(&mut one).await), "acme");
    assert_eq!(body(&next(&mut all).await), "beta");
    assert_eq!(body(&next(&mut all).await), "acme");
}

async fn queue_groups_share_work_without_loss_or_doubling(mut f: Fixture) {
    let publisher = f.bus(|b| b).await;
    let pattern = SubjectPattern::all_tenants("rag", "query").unwrap();
    let mut members = Vec::new();
    for _ in 0..3 {
        let bus = f.bus(|b| b).await;
        members.push(bus.queue_subscribe(&pattern, "rag").await.unwrap());
    }
    // A plain subscriber next to the group gets every message, as in NATS.
    let mut watcher = publisher.subscribe(&pattern).await.unwrap();
    publisher.flush().await.unwrap();
    let subject = tenant("acme").scope().component("rag", "query").unwrap();
    let total = 300;
    for i in 0..total {
        publisher
            .publish(&subject, envelope("acme", &i.to_string()))
            .await
            .unwrap();
    }
    publisher.flush().await.unwrap();
    for _ in 0..total {
        next(&mut watcher).await;
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (m, mut sub) in members.into_iter().enumerate() {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(d)) = sub.next().await {
                tx.send((m, body(&d))).unwrap();
            }
        });
    }
    let mut seen = BTreeSet::new();
    let mut per_member = [0usize; 3];
    for _ in 0..total {
        let (m, b) = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(seen.insert(b.clone()), "message {b} delivered twice");
        per_member[m] += 1;
    }
    assert_eq!(seen.len(), total);
    assert!(
        per_member.iter().all(|n| *n > 0),
        "every member shares the work: {per_member:?}"
    );
    // Nothing more arrives: no duplicates after the count is reached.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_err()
    );
}

async fn request_reply_round_trips(mut f: Fixture) {
    let server_bus = f.bus(|b| b).await;
    let client = f.bus(|b| b).await;
    let service = server_bus
        .serve(
            &SubjectPattern::all_tenants("rag", "query").unwrap(),
            ServeOptions::new().group("rag").concurrency(4),
            |d| async move {
                let question = String::from_utf8_lossy(d.envelope.payload()).into_owned();
                let tenant = d.subject.tenant().as_str().to_owned();
                Ok(envelope(&tenant, &format!("answer to {question}")))
            },
        )
        .await
        .unwrap();
    server_bus.flush().await.unwrap();
    let reply = client
        .request(
            &tenant("acme").scope().component("rag", "query").unwrap(),
            envelope("acme", "q1"),
        )
        .await
        .unwrap();
    assert_eq!(reply.payload().as_ref(), b"answer to q1");
    assert_eq!(reply.tenant_id().as_deref(), Some("acme"));
    service.abort();
}

async fn service_errors_come_back_typed(mut f: Fixture) {
    let bus = f.bus(|b| b).await;
    let service = bus
        .serve(
            &SubjectPattern::all_tenants("ml", "predict").unwrap(),
            ServeOptions::new().concurrency(1),
            |_d| async move {
                Err(ServiceFailure::new(
                    ServiceCode::NotFound,
                    "no model named \"x\"",
                ))
            },
        )
        .await
        .unwrap();
    bus.flush().await.unwrap();
    let err = bus
        .request(
            &tenant("acme").scope().component("ml", "predict").unwrap(),
            envelope("acme", "x"),
        )
        .await
        .unwrap_err();
    match err {
        RequestError::ServiceError { code, message } => {
            assert_eq!(code, 404);
            assert_eq!(message, "no model named \"x\"");
        }
        other => panic!("expected a service error, got {other:?}"),
    }
    service.abort();
}

async fn no_responders_is_reported_not_timed_out(mut f: Fixture) {
    let bus = f.bus(|b| b.request_timeout(Duration::from_secs(30))).await;
    let err = bus
        .request(
            &tenant("acme").scope().component("nobody", "home").unwrap(),
            envelope("acme", "x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::NoResponders { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "no responders for sdk.acme.nobody.home: no service is subscribed to it"
    );
    // Not the timeout: `NoResponders` is the server's (or router's) own answer.
}

async fn requests_time_out(mut f: Fixture) {
    let bus = f.bus(|b| b).await;
    let subject = tenant("acme").scope().component("slow", "op").unwrap();
    // A subscriber that never answers.
    let _silent = bus
        .subscribe(&SubjectPattern::from(&subject))
        .await
        .unwrap();
    bus.flush().await.unwrap();
    let err = bus
        .request_with_timeout(&subject, envelope("acme", "x"), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::Timeout { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "request to sdk.acme.slow.op timed out after 200ms"
    );
}

async fn tenant_mismatch_is_refused_before_any_handler(mut f: Fixture) {
    let bus = f.bus(|b| b).await;
    let mut events = bus.events();
    let acme = tenant("acme").scope();
    let subject = acme.event("task.completed").unwrap();
    let mut sub = bus
        .subscribe(&SubjectPattern::from(&subject))
        .await
        .unwrap();
    // A beta envelope on an acme subject.
    bus.publish(&subject, envelope("beta", "intruder"))
        .await
        .unwrap();
    bus.publish(&subject, envelope("acme", "legit"))
        .await
        .unwrap();
    assert_eq!(body(&next(&mut sub).await), "legit");
    let (code, reason) = wait_event(&mut events, |e| match e {
        BusEvent::Rejected { code, reason, .. } => Some((*code, reason.clone())),
        _ => None,
    })
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        reason,
        "ce-tenantid \"beta\" does not match the tenant \"acme\" of subject sdk.acme.events.task.completed"
    );
    assert_eq!(bus.stats().tenant_mismatches, 1);

    // A request with a mismatched tenant gets a 403 reply, and the handler never runs.
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ran.clone();
    let service = bus
        .serve(
            &SubjectPattern::all_tenants("rag", "query").unwrap(),
            ServeOptions::new().concurrency(1),
            move |d| {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                async move { Ok(envelope(d.subject.tenant().as_str(), "ok")) }
            },
        )
        .await
        .unwrap();
    bus.flush().await.unwrap();
    let err = bus
        .request(
            &acme.component("rag", "query").unwrap(),
            envelope("beta", "x"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::ServiceError { code: 403, .. }),
        "{err:?}"
    );
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    service.abort();
}

async fn oversized_messages_are_refused_with_both_sizes(mut f: Fixture) {
    let bus = f.bus(|b| b).await;
    let big = "x".repeat(70 * 1024);
    let env = envelope("acme", &big);
    let size = env.wire_size();
    let subject = tenant("acme").scope().event("big").unwrap();
    let err = bus.publish(&subject, env.clone()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "message for sdk.acme.events.big is {size} bytes (headers and payload), over the server's max_payload of 65536 bytes"
        )
    );
    let PublishError::TooLarge(published) = err else {
        panic!("expected TooLarge, got {err:?}");
    };
    assert_eq!((published.size, published.max_payload), (size, 65536));
    // A request says the same in the same type, and so does the bus-wide error.
    let err = bus.request(&subject, env).await.unwrap_err();
    let RequestError::TooLarge(requested) = err else {
        panic!("expected TooLarge, got {err:?}");
    };
    assert_eq!(requested, published);
    assert!(
        matches!(BusError::from(RequestError::TooLarge(requested)), BusError::TooLarge(t) if t == published)
    );
}

async fn agents_send_and_receive_messages(mut f: Fixture) {
    let bus = f.bus(|b| b).await;
    let acme = tenant("acme");
    let mut inbox = bus.receive_messages(&acme, "researcher").await.unwrap();
    bus.send_message(&acme, "researcher", envelope("acme", "find papers"))
        .await
        .unwrap();
    let got = next(&mut inbox).await;
    assert_eq!(got.subject.as_str(), "sdk.acme.agent.researcher.inbox");
    assert_eq!(body(&got), "find papers");
    assert!(
        bus.send_message(&acme, "bad.agent", envelope("acme", "x"))
            .await
            .is_err()
    );
}

async fn drain_loses_no_message_in_flight(mut f: Fixture) {
    let bus = f.bus(|b| b).await;
    let processed = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (p, g, s) = (processed.clone(), gate.clone(), started.clone());
    let service = bus
        .serve(
            &tenant("acme").scope().pattern(&["events", ">"]).unwrap(),
            ServeOptions::new().concurrency(4),
            move |d| {
                let (p, g, s) = (p.clone(), g.clone(), s.clone());
                async move {
                    s.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    g.notified().await;
                    p.lock().unwrap().insert(body(&d));
                    Ok(envelope("acme", "done"))
                }
            },
        )
        .await
        .unwrap();
    let subject = tenant("acme").scope().event("work").unwrap();
    let total = 50;
    for i in 0..total {
        bus.publish(&subject, envelope("acme", &i.to_string()))
            .await
            .unwrap();
    }
    // Wait until four handlers are in flight and blocked; the rest are buffered.
    sdk_testkit::wait_until(WAIT, || {
        (started.load(std::sync::atomic::Ordering::SeqCst) >= 4).then_some(())
    })
    .expect("handlers started");
    let drain = tokio::spawn({
        let bus = bus.clone();
        async move { bus.drain().await }
    });
    // Let every handler through, now and later.
    let opener = tokio::spawn(async move {
        loop {
            gate.notify_waiters();
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    tokio::time::timeout(WAIT, service.wait())
        .await
        .expect("service ended after drain")
        .unwrap();
    drain.await.unwrap().unwrap();
    opener.abort();
    assert_eq!(
        processed.lock().unwrap().len(),
        total,
        "every message was processed"
    );
}

async fn slow_consumers_are_reported(mut f: Fixture) {
    let bus = f.bus(|b| b.subscription_capacity(4)).await;
    let publisher = f.bus(|b| b).await;
    let mut events = bus.events();
    let subject = tenant("acme").scope().status("agent", "a-1").unwrap();
    let _sub = bus
        .subscribe(&SubjectPattern::from(&subject))
        .await
        .unwrap();
    bus.flush().await.unwrap();
    for i in 0..500 {
        publisher
            .publish(&subject, envelope("acme", &i.to_string()))
            .await
            .unwrap();
    }
    publisher.flush().await.unwrap();
    wait_event(&mut events, |e| {
        matches!(e, BusEvent::SlowConsumer { .. }).then_some(())
    })
    .await;
    assert!(bus.stats().slow_consumers >= 1);
}

async fn status_and_server_details(mut f: Fixture) {
    let bus = f.bus(|b| b).await;
    assert_eq!(bus.status(), sdk_bus::ConnectionStatus::Connected);
    let details = bus.server_details();
    assert_eq!(details.max_payload, 64 * 1024);
    match bus.transport_name() {
        "nats" => assert!(details.version.starts_with("2."), "{details:?}"),
        other => assert_eq!(other, "in-process"),
    }
    let _ = Subject::parse("sdk.acme.rag.query").unwrap();
}

mod robustness {
    use super::*;

    /// Two different tenant headers on one message are refused, not resolved by order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conflicting_tenant_headers_are_refused() {
        let server = NatsServer::start();
        let bus = nats_bus(&server.url(), |b| b).await;
        let subject = tenant("acme").scope().event("x").unwrap();
        let mut sub = bus
            .subscribe(&SubjectPattern::from(&subject))
            .await
            .unwrap();
        let mut events = bus.events();
        let raw = async_nats::connect(server.url()).await.unwrap();
        let mut headers = async_nats::HeaderMap::new();
        for (k, v) in [
            ("ce-id", "1"),
            ("ce-source", "/acme/x/y"),
            ("ce-type", "t"),
            ("ce-specversion", "1.0"),
            ("ce-tenantid", "acme"),
            ("CE-TENANTID", "beta"),
        ] {
            headers.insert(k, v);
        }
        raw.publish_with_headers(subject.as_str().to_owned(), headers, "forged".into())
            .await
            .unwrap();
        // Pull from the subscription in the background; the forged one never comes out.
        let reader = tokio::spawn(async move { body(&next(&mut sub).await) });
        let reason = wait_event(&mut events, |e| match e {
            BusEvent::Rejected {
                code: 400, reason, ..
            } => Some(reason.clone()),
            _ => None,
        })
        .await;
        assert_eq!(
            reason,
            "header ce-tenantid appears more than once with different values"
        );
        bus.publish(&subject, envelope("acme", "genuine"))
            .await
            .unwrap();
        assert_eq!(reader.await.unwrap(), "genuine");
        assert_eq!(bus.stats().rejected, 1);
    }

    #[tokio::test]
    async fn send_message_refuses_an_envelope_of_another_tenant() {
        let bus = Bus::in_process(BusConfig::builder().build().unwrap());
        let err = bus
            .send_message(&tenant("acme"), "planner", envelope("beta", "x"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid ce-tenantid: \"beta\" does not match the tenant \"acme\" of the inbox"
        );
    }
}
