//! Fault tests: a publisher with acks in flight and a consumer both run through a
//! SIGKILL of the server, and through killing the stream leader of a 3-node cluster.
//! Every acknowledged message must be consumed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use sdk_bus::jetstream::stream::StreamSpec;
use sdk_bus::{ConsumerSpec, Envelope, EventSource, JetStream, Outcome};
use sdk_testkit::{NatsCluster, NatsServer};

/// How long recovery may take on a slow, busy machine.
const RECOVERY: Duration = Duration::from_secs(90);

fn message(n: usize) -> Envelope {
    let source = EventSource::new(&tenant("acme"), "test", "p-1").unwrap();
    Envelope::builder(&source, "sdk.test.message")
        .id(&format!("m-{n}"))
        .payload(Bytes::from(format!("m-{n}")))
        .build()
        .unwrap()
}

/// Starts a durable consumer that records every payload it acks, retrying while the
/// cluster elects leaders.
async fn start_consumer(js: &JetStream, got: Arc<Mutex<BTreeSet<String>>>) -> sdk_bus::Worker {
    tokio::time::timeout(RECOVERY, async {
        loop {
            let g = got.clone();
            let spec = ConsumerSpec::new("SDK_EVENTS", "audit").ack_wait(Duration::from_secs(5));
            match js
                .consume(spec, move |d| {
                    g.lock()
                        .unwrap()
                        .insert(String::from_utf8_lossy(d.envelope.payload()).into_owned());
                    async { Outcome::Ack }
                })
                .await
            {
                Ok(w) => return w,
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    })
    .await
    .expect("the consumer could be created")
}

/// Publishes `total` messages with up to 16 acks in flight, retrying each until it
/// is acknowledged (its fixed id keeps a retry single). `kill` runs in its own task
/// once `kill_at` are acked, while publishing and consuming go on. Returns the acked
/// and the consumed payloads once every acked one was consumed (or recovery ran out).
async fn publish_and_consume_through<F>(
    js: &JetStream,
    total: usize,
    kill_at: usize,
    kill: impl FnOnce() -> F + Send + 'static,
) -> (BTreeSet<String>, BTreeSet<String>)
where
    F: Future<Output = ()> + Send + 'static,
{
    let consumed: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let worker = start_consumer(js, consumed.clone()).await;
    let acked_count = Arc::new(AtomicUsize::new(0));
    let killer = tokio::spawn({
        let acked_count = acked_count.clone();
        async move {
            while acked_count.load(Ordering::SeqCst) < kill_at {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            kill().await;
        }
    });
    let subject = tenant("acme").scope().event("order.placed").unwrap();
    let mut todo: VecDeque<usize> = (0..total).collect();
    let mut in_flight = FuturesUnordered::new();
    let mut acked = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + RECOVERY;
    while acked.len() < total {
        assert!(
            tokio::time::Instant::now() < deadline,
            "publishing never recovered: {} of {total} acked",
            acked.len()
        );
        while in_flight.len() < 16
            && let Some(n) = todo.pop_front()
        {
            match js.publish_async(&subject, message(n)).await {
                Ok(pending) => in_flight.push(async move { (n, pending.ack().await) }),
                Err(_) => {
                    todo.push_back(n);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    break;
                }
            }
        }
        if let Some((n, result)) = in_flight.next().await {
            match result {
                Ok(_) => {
                    acked.insert(format!("m-{n}"));
                    acked_count.fetch_add(1, Ordering::SeqCst);
                }
                Err(_) => todo.push_back(n),
            }
        }
    }
    killer.await.unwrap();
    let caught_up = tokio::time::timeout(RECOVERY, async {
        while !consumed.lock().unwrap().is_superset(&acked) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    worker.abort();
    let consumed = consumed.lock().unwrap().clone();
    if caught_up.is_err() {
        eprintln!("the consumer did not catch up within {RECOVERY:?}");
    }
    (acked, consumed)
}

/// Every payload the stream holds now, read back by sequence after the recovery: an
/// acked message consumed before the fault and lost from the store after it would
/// pass the consumer check, but not this one.
async fn stored_payloads(client: async_nats::Client) -> BTreeSet<String> {
    let raw = async_nats::jetstream::new(client);
    tokio::time::timeout(RECOVERY, async {
        loop {
            if let Ok(mut stream) = raw.get_stream("SDK_EVENTS").await
                && let Ok(info) = stream.info().await
            {
                let (first, last) = (info.state.first_sequence, info.state.last_sequence);
                let mut payloads = BTreeSet::new();
                let mut complete = true;
                for seq in first..=last {
                    match stream.get_raw_message(seq).await {
                        Ok(m) => {
                            payloads.insert(String::from_utf8_lossy(&m.payload).into_owned());
                        }
                        Err(_) => {
                            complete = false;
                            break;
                        }
                    }
                }
                if complete {
                    return payloads;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the stream could be read back")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_publish_survives_a_sigkill_of_the_server() {
    let server = Arc::new(Mutex::new(NatsServer::builder().jetstream().start()));
    let url = server.lock().unwrap().url();
    let bus = nats_bus(&url, |b| b.request_timeout(Duration::from_secs(2))).await;
    let js = bus.jetstream().unwrap();
    js.ensure_stream(&StreamSpec::events()).await.unwrap();
    let s = server.clone();
    let (acked, consumed) = publish_and_consume_through(&js, 400, 150, move || async move {
        // Kill -9 with acks in flight, and bring it back on the same port and store.
        tokio::task::spawn_blocking(move || {
            let mut guard = s.lock().unwrap();
            guard.kill();
            guard.restart();
        })
        .await
        .unwrap();
    })
    .await;
    assert_eq!(acked.len(), 400);
    let lost: Vec<_> = acked.difference(&consumed).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let stored = stored_payloads(bus.nats_client().unwrap().clone()).await;
    let gone: Vec<_> = acked.difference(&stored).collect();
    assert!(
        gone.is_empty(),
        "acknowledged but not in the store: {gone:?}"
    );
    assert!(bus.stats().reconnects >= 1, "the kill happened mid-run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_publish_survives_killing_the_stream_leader_in_a_cluster() {
    let cluster = Arc::new(Mutex::new(NatsCluster::start(3)));
    let urls = cluster.lock().unwrap().urls();
    let bus = nats_bus(&urls, |b| b.request_timeout(Duration::from_secs(3))).await;
    let js = bus.jetstream().unwrap();
    // The meta leader may still be in election right after start: retry until ready.
    tokio::time::timeout(RECOVERY, async {
        while js
            .ensure_stream(&StreamSpec::events().replicas(3))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the R3 stream could be created");
    let addrs: Vec<async_nats::ServerAddr> = urls.split(',').map(|u| u.parse().unwrap()).collect();
    let raw_js = async_nats::jetstream::new(async_nats::connect(addrs).await.unwrap());
    let c = cluster.clone();
    let (acked, consumed) = publish_and_consume_through(&js, 300, 100, move || async move {
        // Ask until a leader answers: on a busy machine one lookup may time out.
        let leader = tokio::time::timeout(RECOVERY, async {
            loop {
                if let Ok(mut stream) = raw_js.get_stream("SDK_EVENTS").await
                    && let Ok(info) = stream.info().await
                    && let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.clone())
                {
                    return leader;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .expect("the stream leader is known");
        tokio::task::spawn_blocking(move || {
            c.lock()
                .unwrap()
                .server_mut(&leader)
                .expect("leader is a cluster node")
                .kill();
        })
        .await
        .unwrap();
    })
    .await;
    assert_eq!(acked.len(), 300);
    let lost: Vec<_> = acked.difference(&consumed).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after failover: {lost:?}"
    );
    let stored = stored_payloads(bus.nats_client().unwrap().clone()).await;
    let gone: Vec<_> = acked.difference(&stored).collect();
    assert!(
        gone.is_empty(),
        "acknowledged but not in the store after failover: {gone:?}"
    );
}
