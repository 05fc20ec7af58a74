//! sdk-bus next to raw async-nats on the same real nats-server (127.0.0.1), in the
//! same run: publish throughput with no headers, with the CloudEvents header set built
//! by hand for every message, and with our envelope; request-reply latency (p50 and
//! p99 printed, and written to target/bus-latency.md); the in-process transport.
//!
//! Run: `cargo bench -p sdk-benches --bench bus` (needs `scripts/install-tools`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use sdk_benches::{PAYLOAD, runtime};
use sdk_bus::{Bus, BusConfig, Envelope, EventSource, ServeOptions, SubjectPattern, TenantId};
use sdk_testkit::NatsServer;

const BATCH: u64 = 1000;

/// The CloudEvents header set a careful raw user builds by hand for each message.
fn hand_built_headers(source: &str) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    h.insert("ce-specversion", "1.0");
    h.insert("ce-id", nuid::next().as_str());
    h.insert("ce-source", source);
    h.insert("ce-type", "sdk.bench.message");
    h.insert("ce-time", sdk_bus::new_time().as_str());
    h.insert("ce-tenantid", "acme");
    h.insert("ce-datacontenttype", "application/msgpack");
    h.insert("ce-correlationid", "corr-1");
    h
}

fn envelope(source: &EventSource) -> Envelope {
    Envelope::builder(source, "sdk.bench.message")
        .content_type("application/msgpack")
        .correlation_id("corr-1")
        .payload(Bytes::from_static(PAYLOAD))
        .build()
        .unwrap()
}

fn publish(c: &mut Criterion) {
    let rt = runtime();
    let server = NatsServer::start();
    let url = server.url();
    let raw = rt.block_on(async_nats::connect(url.as_str())).unwrap();
    let bus = rt
        .block_on(Bus::connect(
            BusConfig::builder().servers(&url).build().unwrap(),
        ))
        .unwrap();
    let acme = TenantId::new("acme").unwrap();
    let source = EventSource::new(&acme, "bench", "b-1").unwrap();
    let subject = acme.scope().event("bench").unwrap();
    // A subscriber drains everything, so the server does real fan-out work.
    let sink = rt.block_on(async_nats::connect(url.as_str())).unwrap();
    let mut sub = rt.block_on(sink.subscribe("sdk.acme.events.>")).unwrap();
    rt.spawn(async move { while sub.next().await.is_some() {} });

    let mut g = c.benchmark_group("publish-256B");
    g.throughput(Throughput::Elements(BATCH));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("raw async-nats, no headers", |b| {
        b.to_async(&rt).iter(|| async {
            for _ in 0..BATCH {
                raw.publish(subject.as_str().to_owned(), Bytes::from_static(PAYLOAD))
                    .await
                    .unwrap();
            }
            raw.flush().await.unwrap();
        })
    });
    g.bench_function("raw async-nats, 8 CloudEvents headers built by hand", |b| {
        b.to_async(&rt).iter(|| async {
            for _ in 0..BATCH {
                let headers = hand_built_headers(source.as_str());
                raw.publish_with_headers(
                    subject.as_str().to_owned(),
                    headers,
                    Bytes::from_static(PAYLOAD),
                )
                .await
                .unwrap();
            }
            raw.flush().await.unwrap();
        })
    });
    g.bench_function("sdk envelope publish", |b| {
        b.to_async(&rt).iter(|| async {
            for _ in 0..BATCH {
                bus.publish(&subject, envelope(&source)).await.unwrap();
            }
            bus.flush().await.unwrap();
        })
    });
    g.finish();
    drop(server);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn request_reply(c: &mut Criterion) {
    let rt = runtime();
    let server = NatsServer::start();
    let url = server.url();
    let acme = TenantId::new("acme").unwrap();
    let source = EventSource::new(&acme, "bench", "b-1").unwrap();

    // Raw responder and requester.
    let raw_server = rt.block_on(async_nats::connect(url.as_str())).unwrap();
    let mut raw_sub = rt
        .block_on(raw_server.subscribe("sdk.acme.raw.echo"))
        .unwrap();
    let responder = raw_server.clone();
    rt.spawn(async move {
        while let Some(m) = raw_sub.next().await {
            if let Some(reply) = m.reply {
                responder.publish(reply, m.payload).await.unwrap();
            }
        }
    });
    // A raw responder that answers with the CloudEvents header set, built by hand.
    let mut raw_ce_sub = rt
        .block_on(raw_server.subscribe("sdk.acme.rawce.echo"))
        .unwrap();
    let responder = raw_server.clone();
    let reply_uri = source.as_str().to_owned();
    rt.spawn(async move {
        while let Some(m) = raw_ce_sub.next().await {
            if let Some(reply) = m.reply {
                let headers = hand_built_headers(&reply_uri);
                responder
                    .publish_with_headers(reply, headers, m.payload)
                    .await
                    .unwrap();
            }
        }
    });
    let raw = rt.block_on(async_nats::connect(url.as_str())).unwrap();

    // Our responder and requester.
    let config = || BusConfig::builder().servers(&url).build().unwrap();
    let served = rt.block_on(Bus::connect(config())).unwrap();
    let reply_source = source.clone();
    let _service = rt
        .block_on(served.serve(
            &SubjectPattern::new("sdk.acme.sdk.echo").unwrap(),
            ServeOptions::new(),
            move |d| {
                let s = reply_source.clone();
                async move {
                    Ok(Envelope::builder(&s, "sdk.bench.reply")
                        .payload(d.envelope.payload().clone())
                        .build()
                        .unwrap())
                }
            },
        ))
        .unwrap();
    let bus = rt.block_on(Bus::connect(config())).unwrap();
    let sdk_subject = acme.scope().component("sdk", "echo").unwrap();
    rt.block_on(async {
        raw_server.flush().await.unwrap();
        served.flush().await.unwrap();
    });

    let mut g = c.benchmark_group("request-reply-256B");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("raw async-nats", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                raw.request("sdk.acme.raw.echo", Bytes::from_static(PAYLOAD))
                    .await
                    .unwrap(),
            )
        })
    });
    g.bench_function(
        "raw async-nats, CloudEvents headers built by hand both ways",
        |b| {
            b.to_async(&rt).iter(|| async {
                let req = async_nats::Request::new()
                    .headers(hand_built_headers(source.as_str()))
                    .payload(Bytes::from_static(PAYLOAD));
                black_box(raw.send_request("sdk.acme.rawce.echo", req).await.unwrap())
            })
        },
    );
    g.bench_function("sdk request", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(bus.request(&sdk_subject, envelope(&source)).await.unwrap())
        })
    });
    g.finish();

    // Latency percentiles, measured the same way for both, interleaved.
    let n = 3000;
    let (mut raw_lat, mut ce_lat, mut sdk_lat) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    rt.block_on(async {
        for _ in 0..n {
            let t = Instant::now();
            raw.request("sdk.acme.raw.echo", Bytes::from_static(PAYLOAD))
                .await
                .unwrap();
            raw_lat.push(t.elapsed());
            let t = Instant::now();
            let req = async_nats::Request::new()
                .headers(hand_built_headers(source.as_str()))
                .payload(Bytes::from_static(PAYLOAD));
            raw.send_request("sdk.acme.rawce.echo", req).await.unwrap();
            ce_lat.push(t.elapsed());
            let t = Instant::now();
            bus.request(&sdk_subject, envelope(&source)).await.unwrap();
            sdk_lat.push(t.elapsed());
        }
    });
    raw_lat.sort();
    ce_lat.sort();
    sdk_lat.sort();
    let mut table =
        String::from("| request-reply (256 B, loopback) | p50 | p99 |\n|---|---:|---:|\n");
    for (name, lat) in [
        ("raw async-nats, no headers", &raw_lat),
        (
            "raw async-nats, CloudEvents headers by hand both ways",
            &ce_lat,
        ),
        ("sdk request (envelope both ways, checks, serve)", &sdk_lat),
    ] {
        table.push_str(&format!(
            "| {name} | {:?} | {:?} |\n",
            percentile(lat, 0.5),
            percentile(lat, 0.99)
        ));
    }
    let p50 = |l: &[Duration]| percentile(l, 0.5).as_secs_f64();
    table.push_str(&format!(
        "\np50 ratio sdk / raw no headers: {:.2}; sdk / raw with headers: {:.2}\n",
        p50(&sdk_lat) / p50(&raw_lat),
        p50(&sdk_lat) / p50(&ce_lat)
    ));
    eprintln!("{table}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bus-latency.md");
    let _ = std::fs::write(out, table);
    drop(server);
}

fn in_process(c: &mut Criterion) {
    let rt = runtime();
    let bus = Bus::in_process(
        BusConfig::builder()
            .subscription_capacity(1 << 16)
            .build()
            .unwrap(),
    );
    let acme = TenantId::new("acme").unwrap();
    let source = EventSource::new(&acme, "bench", "b-1").unwrap();
    let subject = acme.scope().event("bench").unwrap();
    let mut sub = rt
        .block_on(bus.subscribe(&acme.scope().pattern(&["events", ">"]).unwrap()))
        .unwrap();
    rt.spawn(async move { while let Some(Ok(_)) = sub.next().await {} });
    let mut g = c.benchmark_group("in-process-256B");
    g.throughput(Throughput::Elements(BATCH));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("sdk envelope publish", |b| {
        b.to_async(&rt).iter(|| async {
            for _ in 0..BATCH {
                bus.publish(&subject, envelope(&source)).await.unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, publish, request_reply, in_process);
criterion_main!(benches);
