//! JetStream through sdk-bus next to raw async-nats JetStream, on the same real
//! nats-server (127.0.0.1, file storage), in the same run: publish with async acks
//! (1000 in flight, then every ack awaited), and consume-and-ack throughput.
//!
//! Run: `cargo bench -p sdk-benches --bench jetstream` (needs `scripts/install-tools`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use sdk_benches::{PAYLOAD, runtime};
use sdk_bus::{Bus, BusConfig, ConsumerSpec, Envelope, EventSource, Outcome, StreamSpec, TenantId};
use sdk_testkit::NatsServer;

const BATCH: usize = 1000;

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let server = NatsServer::builder().jetstream().start();
    let url = server.url();
    let bus = rt
        .block_on(Bus::connect(
            BusConfig::builder().servers(&url).build().unwrap(),
        ))
        .unwrap();
    let js = rt.block_on(async { bus.jetstream() }).unwrap();
    rt.block_on(js.ensure_stream(&StreamSpec::events().duplicate_window(Duration::from_secs(1))))
        .unwrap();
    let raw =
        rt.block_on(async { jetstream::new(async_nats::connect(url.as_str()).await.unwrap()) });
    let acme = TenantId::new("acme").unwrap();
    let source = EventSource::new(&acme, "bench", "b-1").unwrap();
    let subject = acme.scope().event("bench").unwrap();
    let envelope = || {
        Envelope::builder(&source, "sdk.bench.message")
            .content_type("application/msgpack")
            .payload(Bytes::from_static(PAYLOAD))
            .build()
            .unwrap()
    };

    let mut g = c.benchmark_group("jetstream-publish-async-acks-256B");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("raw", |b| {
        b.to_async(&rt).iter(|| async {
            let mut acks = Vec::with_capacity(BATCH);
            for _ in 0..BATCH {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", nuid::next().as_str());
                acks.push(
                    raw.publish_with_headers(
                        subject.to_string(),
                        headers,
                        Bytes::from_static(PAYLOAD),
                    )
                    .await
                    .unwrap(),
                );
            }
            for ack in acks {
                ack.await.unwrap();
            }
        })
    });
    g.bench_function("raw, CloudEvents headers built by hand", |b| {
        b.to_async(&rt).iter(|| async {
            let mut acks = Vec::with_capacity(BATCH);
            for _ in 0..BATCH {
                let id = nuid::next();
                let mut h = async_nats::HeaderMap::new();
                h.insert("ce-specversion", "1.0");
                h.insert("ce-id", id.as_str());
                h.insert("ce-source", source.as_str());
                h.insert("ce-type", "sdk.bench.message");
                h.insert("ce-time", sdk_bus::new_time().as_str());
                h.insert("ce-tenantid", "acme");
                h.insert("ce-datacontenttype", "application/msgpack");
                h.insert("Nats-Msg-Id", id.as_str());
                acks.push(
                    raw.publish_with_headers(subject.to_string(), h, Bytes::from_static(PAYLOAD))
                        .await
                        .unwrap(),
                );
            }
            for ack in acks {
                ack.await.unwrap();
            }
        })
    });
    g.bench_function("sdk", |b| {
        b.to_async(&rt).iter(|| async {
            let mut acks = Vec::with_capacity(BATCH);
            for _ in 0..BATCH {
                acks.push(js.publish_async(&subject, envelope()).await.unwrap());
            }
            for ack in acks {
                ack.ack().await.unwrap();
            }
        })
    });
    g.finish();

    // Consume: each measured iteration publishes BATCH messages (async acks) and then
    // reads and acks them all; the sdk worker consumes while they arrive, so both
    // sides are timed end to end, publish included.
    let fill = |n: usize| {
        rt.block_on(async {
            let mut acks = Vec::with_capacity(n);
            for _ in 0..n {
                acks.push(js.publish_async(&subject, envelope()).await.unwrap());
            }
            for a in acks {
                a.ack().await.unwrap();
            }
        })
    };
    let mut g = c.benchmark_group("jetstream-consume-ack-256B");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    let raw_consumer: consumer::PullConsumer = rt
        .block_on(async {
            let stream = raw.get_stream("SDK_EVENTS").await.unwrap();
            stream
                .get_or_create_consumer(
                    "raw-bench",
                    consumer::pull::Config {
                        durable_name: Some("raw-bench".into()),
                        deliver_policy: consumer::DeliverPolicy::New,
                        ..Default::default()
                    },
                )
                .await
        })
        .unwrap();
    let raw_messages = Arc::new(tokio::sync::Mutex::new(
        rt.block_on(async {
            raw_consumer
                .stream()
                .max_messages_per_batch(256)
                .messages()
                .await
        })
        .unwrap(),
    ));
    g.bench_function("raw", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Consume while publishing, as the sdk worker does.
                let messages = Arc::clone(&raw_messages);
                let start = Instant::now();
                let reader = rt.spawn(async move {
                    let mut messages = messages.lock().await;
                    for _ in 0..BATCH {
                        let m = messages.next().await.unwrap().unwrap();
                        m.ack().await.unwrap();
                    }
                });
                fill(BATCH);
                rt.block_on(reader).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    let count = Arc::new(AtomicUsize::new(0));
    let notify = Arc::new(tokio::sync::Notify::new());
    let mut spec = ConsumerSpec::new("SDK_EVENTS", "sdk-bench");
    spec.max_ack_pending = 1000;
    spec.concurrency = 64;
    let (c2, n2) = (count.clone(), notify.clone());
    // Only messages published from now on: start at the current end of the stream.
    let _ = rt.block_on(async {
        let stream = raw.get_stream("SDK_EVENTS").await.unwrap();
        stream
            .get_or_create_consumer(
                "sdk-bench",
                consumer::pull::Config {
                    durable_name: Some("sdk-bench".into()),
                    deliver_policy: consumer::DeliverPolicy::New,
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: spec.ack_wait,
                    max_deliver: i64::from(spec.max_deliver) + 1,
                    max_ack_pending: 1000,
                    ..Default::default()
                },
            )
            .await
    });
    let _worker = rt
        .block_on(js.consume(spec, move |_d| {
            let (c, n) = (c2.clone(), n2.clone());
            async move {
                if c.fetch_add(1, Ordering::SeqCst) + 1 >= BATCH {
                    n.notify_one();
                }
                Outcome::Ack
            }
        }))
        .unwrap();
    g.bench_function("sdk", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                count.store(0, Ordering::SeqCst);
                let start = Instant::now();
                fill(BATCH);
                rt.block_on(async {
                    while count.load(Ordering::SeqCst) < BATCH {
                        notify.notified().await;
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
    drop(server);
}

criterion_group!(benches, bench);
criterion_main!(benches);
