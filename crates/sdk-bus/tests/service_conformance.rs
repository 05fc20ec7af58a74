//! Services under faults, on both transports: a panic, a reply too large, a handler
//! past its timeout, a full queue, and a drain with requests in flight. Every request
//! gets an answer; none is left to time out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::fixture::Fixture;
use common::*;
use sdk_bus::{Bus, Envelope, RequestError, SubjectPattern};
use tokio::sync::Semaphore;

conformance!(
    a_panicking_handler_answers_500,
    a_handler_that_panics_before_returning_its_future_answers_500,
    a_reply_for_another_tenant_is_refused,
    limits_too_large_to_make_still_serve,
    a_reply_without_ce_headers_is_taken_as_the_contract_allows,
    a_reply_too_large_becomes_413,
    a_handler_past_its_timeout_answers_408,
    an_overloaded_service_answers_503,
    drain_answers_every_request_in_flight,
);

fn query() -> sdk_bus::Subject {
    tenant("acme").scope().component("rag", "query").unwrap()
}

/// `handler` serving `query()`, with the default options.
async fn serve_query<F, Fut>(bus: &Bus, handler: F) -> sdk_bus::Service
where
    F: Fn(sdk_bus::Delivery) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Envelope, sdk_bus::ServiceFailure>> + Send + 'static,
{
    bus.serve(
        &SubjectPattern::from(&query()),
        ServeOptions::new(),
        handler,
    )
    .await
    .unwrap()
}

fn service_code(result: &Result<Envelope, RequestError>) -> Option<u16> {
    match result {
        Err(RequestError::ServiceError { code, .. }) => Some(*code),
        _ => None,
    }
}

/// Waits until `counter` reaches `n`.
async fn reached(counter: &AtomicUsize, n: usize) {
    tokio::time::timeout(WAIT, async {
        while counter.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the handlers started");
}

async fn a_panicking_handler_answers_500(mut f: Fixture) {
    let server = f.bus(|b| b).await;
    let client = f.bus(|b| b).await;
    let service = serve_query(&server, |_d| async move {
        if true {
            panic!("model exploded");
        }
        Ok(envelope("acme", "unreachable"))
    })
    .await;
    let err = client
        .request(&query(), envelope("acme", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "service error 500: the handler panicked");
    service.abort();
}

async fn a_handler_that_panics_before_returning_its_future_answers_500(mut f: Fixture) {
    let server = f.bus(|b| b).await;
    let client = f.bus(|b| b).await;
    let service = serve_query(&server, |d: sdk_bus::Delivery| {
        // The closure itself panics: there is no future to poll.
        assert!(body_of(&d.envelope) != "boom", "exploded before the future");
        async move { Ok(envelope("acme", "fine")) }
    })
    .await;
    let err = client
        .request(&query(), envelope("acme", "boom"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "service error 500: the handler panicked");
    // The service goes on answering.
    let answer = client
        .request(&query(), envelope("acme", "x"))
        .await
        .unwrap();
    assert_eq!(body_of(&answer), "fine");
    service.abort();
}

/// A shared service (it serves every tenant) that answers an acme request with a
/// beta envelope: the requester must not take beta's data for its answer.
async fn a_reply_for_another_tenant_is_refused(mut f: Fixture) {
    let server = f.bus(|b| b).await;
    let client = f.bus(|b| b).await;
    let service = server
        .serve(
            &SubjectPattern::all_tenants("rag", "query").unwrap(),
            ServeOptions::new(),
            |_d| async move { Ok(envelope("beta", "beta's documents")) },
        )
        .await
        .unwrap();
    let mut events = client.events();
    let err = client
        .request(&query(), envelope("acme", "x"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the reply was refused: invalid ce-tenantid: the reply's ce-tenantid \"beta\" is \
         not the tenant \"acme\" of the request to sdk.acme.rag.query"
    );
    assert_eq!(err.kind(), "invalid_envelope");
    assert!(
        matches!(
            sdk_bus::BusError::from(err),
            sdk_bus::BusError::InvalidReply(_)
        ),
        "the bus-wide error still says it was the reply"
    );
    assert_eq!(client.stats().tenant_mismatches, 1);
    let code = wait_event(&mut events, |e| match e {
        sdk_bus::BusEvent::Rejected { code, .. } => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(code, 403);
    service.abort();
}

/// The wire contract lets a reply carry no `ce-*` headers (a peer that is not an SDK
/// answers with a bare payload): such a reply is taken; only a tenant it names is
/// checked.
async fn a_reply_without_ce_headers_is_taken_as_the_contract_allows(mut f: Fixture) {
    let server = f.bus(|b| b).await;
    let client = f.bus(|b| b).await;
    let service = serve_query(&server, |_d| async move {
        let mut answer = envelope("acme", "anonymous");
        for name in [
            "ce-tenantid",
            "ce-id",
            "ce-source",
            "ce-type",
            "ce-specversion",
        ] {
            answer.headers_mut().remove(name);
        }
        Ok(answer)
    })
    .await;
    let answer = client
        .request(&query(), envelope("acme", "x"))
        .await
        .unwrap();
    assert_eq!(body_of(&answer), "anonymous");
    assert_eq!(client.stats().tenant_mismatches, 0);
    service.abort();
}

/// Limits past what the runtime can make (a semaphore of `usize::MAX` permits, a
/// deadline `Duration::MAX` away) are clamped: the service answers, instead of its
/// task panicking after `serve` returned.
async fn limits_too_large_to_make_still_serve(mut f: Fixture) {
    let server = f.bus(|b| b).await;
    let client = f.bus(|b| b).await;
    let service = server
        .serve(
            &SubjectPattern::from(&query()),
            ServeOptions::new()
                .concurrency(usize::MAX)
                .max_pending(usize::MAX)
                .timeout(Duration::MAX),
            |_d| async move { Ok(envelope("acme", "fine")) },
        )
        .await
        .unwrap();
    let answer = client
        .request(&query(), envelope("acme", "x"))
        .await
        .unwrap();
    assert_eq!(body_of(&answer), "fine");
    service.abort();
}

async fn a_reply_too_large_becomes_413(mut f: Fixture) {
    let server = f.bus(|b| b).await;
    let client = f.bus(|b| b).await;
    let service = serve_query(&server, |_d| async move {
        Ok(envelope("acme", &"x".repeat(128 * 1024)))
    })
    .await;
    let err = client
        .request(&query(), envelope("acme", "q"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::ServiceError { code: 413, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("over the server's max_payload of 65536"),
        "{err}"
    );
    service.abort();
}

async fn a_handler_past_its_timeout_answers_408(mut f: Fixture) {
    let server = f.bus(|b| b).await;
    let client = f.bus(|b| b).await;
    let service = server
        .serve(
            &SubjectPattern::from(&query()),
            ServeOptions::new().timeout(Duration::from_millis(100)),
            |_d| async move {
                std::future::pending::<()>().await;
                Ok(envelope("acme", "never"))
            },
        )
        .await
        .unwrap();
    let err = client
        .request(&query(), envelope("acme", "q"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "service error 408: the handler ran past its timeout of 100ms"
    );
    assert_eq!(server.stats().handler_timeouts, 1);
    service.abort();
}

async fn an_overloaded_service_answers_503(mut f: Fixture) {
    let server = f.bus(|b| b).await;
    let client = f.bus(|b| b).await;
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (g, s) = (gate.clone(), started.clone());
    let service = server
        .serve(
            &SubjectPattern::from(&query()),
            ServeOptions::new().concurrency(1).max_pending(0),
            move |_d| {
                let (g, s) = (g.clone(), s.clone());
                async move {
                    s.fetch_add(1, Ordering::SeqCst);
                    g.acquire().await.unwrap().forget();
                    Ok(envelope("acme", "done"))
                }
            },
        )
        .await
        .unwrap();
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.request(&query(), envelope("acme", "1")).await }
    });
    reached(&started, 1).await;
    // The only handler is busy and nothing may wait: refused at once, not queued.
    let second = client.request(&query(), envelope("acme", "2")).await;
    assert_eq!(service_code(&second), Some(503), "{second:?}");
    assert!(
        second.unwrap_err().to_string().contains("overloaded"),
        "the refusal says why"
    );
    gate.add_permits(1);
    assert_eq!(first.await.unwrap().unwrap().payload().as_ref(), b"done");
    assert_eq!(server.stats().overloaded, 1);
    service.abort();
}

async fn drain_answers_every_request_in_flight(mut f: Fixture) {
    let server = f.bus(|b| b).await;
    let client = f.bus(|b| b.request_timeout(Duration::from_secs(20))).await;
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (g, s) = (gate.clone(), started.clone());
    let service = server
        .serve(
            &SubjectPattern::from(&query()),
            ServeOptions::new().concurrency(2),
            move |d| {
                let (g, s) = (g.clone(), s.clone());
                async move {
                    s.fetch_add(1, Ordering::SeqCst);
                    g.acquire().await.unwrap().forget();
                    Ok(envelope("acme", &format!("answer {}", body(&d))))
                }
            },
        )
        .await
        .unwrap();
    let total = 6;
    let requests: Vec<_> = (0..total)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .request(&query(), envelope("acme", &i.to_string()))
                    .await
            })
        })
        .collect();
    // Two handlers run (and block); the other four wait for a handler.
    reached(&started, 2).await;
    let delivered = || server.stats().delivered;
    tokio::time::timeout(WAIT, async {
        while delivered() < total {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("every request reached the service");
    let drain = tokio::spawn({
        let server: Bus = server.clone();
        async move { server.drain().await }
    });
    until_draining(&server).await;
    // The two running handlers finish only now, after the drain began.
    gate.add_permits(total as usize);
    let mut answered = 0;
    let mut unavailable = 0;
    for r in requests {
        match r.await.unwrap() {
            Ok(reply) => {
                assert!(body_of(&reply).starts_with("answer "), "{reply:?}");
                answered += 1;
            }
            Err(RequestError::ServiceError { code: 503, message }) => {
                assert!(message.contains("draining"), "{message}");
                unavailable += 1;
            }
            Err(other) => panic!("a request was lost: {other:?}"),
        }
    }
    assert!(answered >= 2, "the handlers in flight replied: {answered}");
    assert_eq!(answered + unavailable, total as usize);
    tokio::time::timeout(WAIT, service.wait())
        .await
        .expect("the service ended after the drain")
        .unwrap();
    drain.await.unwrap().unwrap();
    assert_eq!(server.stats().settle_failures, 0);
}
