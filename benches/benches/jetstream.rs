//! JetStream through sdk-bus (and the typed, traced `Messenger`) next to raw
//! async-nats JetStream, on the same real nats-server (127.0.0.1, file storage), all
//! in ONE run, interleaved by rounds (each round runs every variant once, in a
//! rotating order):
//!
//! - publish with async acks: 1000 in flight, then every ack awaited; raw with only
//!   `Nats-Msg-Id`, raw with the same eight headers ours sends (built by hand, and
//!   through async-nats' cheapest path), ours.
//! - consume: the messages are stored BEFORE the clock starts (each variant of each
//!   round has its own subject and its own new durable consumer); the clock covers
//!   creating the consumer and reading and acking them all. Raw runs with one reader
//!   (serial) and with 64 handlers at once, as ours does; each raw pull stream is
//!   dropped before the next variant runs.
//!
//! Tables go to `target/bench-reports/jetstream.md`.
//! Run: `cargo bench -p sdk-benches --bench jetstream` (needs `scripts/install-tools`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures::StreamExt;
use sdk_benches::{
    Export, OtlpSink, OurConsumer, PAYLOAD, ce, consume_n, fmt_duration, fmt_rate, median, quick,
    runtime, telemetry, write_report,
};
use sdk_bus::jetstream::JetStream;
use sdk_bus::{Bus, BusConfig, Envelope, EventSource, StreamSpec, Subject, TenantId};
use sdk_codec::v1::AgentMessage;
use sdk_codec::{Codec, Format, samples};
use sdk_integration::Messenger;
use sdk_testkit::NatsServer;

const BATCH: usize = 1000;

/// The eight headers our JetStream publish sends, by hand.
fn raw_js_headers(source: &str, cheap: bool) -> async_nats::HeaderMap {
    use async_nats::header::{HeaderName, HeaderValue};
    let id = nuid::next().to_string();
    let msg_id = format!("acme:{id}");
    let pairs: [(&'static str, String); 8] = [
        (ce::SPEC_VERSION, "1.0".to_owned()),
        (ce::ID, id),
        (ce::TIME, sdk_bus::new_time()),
        (ce::SOURCE, source.to_owned()),
        (ce::TYPE, "sdk.bench.message".to_owned()),
        (ce::TENANT_ID, "acme".to_owned()),
        (ce::DATA_CONTENT_TYPE, "application/msgpack".to_owned()),
        ("Nats-Msg-Id", msg_id),
    ];
    let mut h = async_nats::HeaderMap::new();
    for (name, value) in pairs {
        if cheap {
            h.append(HeaderName::from_static(name), HeaderValue::from(value));
        } else {
            h.insert(name, value.as_str());
        }
    }
    h
}

fn main() {
    let rt = runtime();
    let server = NatsServer::builder().jetstream().start();
    let url = server.url();
    let sink = OtlpSink::start();
    let otel = telemetry(Export::Otlp, Some(&sink));
    let bus = rt
        .block_on(Bus::connect(
            BusConfig::builder().servers(&url).build().unwrap(),
        ))
        .unwrap();
    let js = rt.block_on(async { bus.jetstream() }).unwrap();
    rt.block_on(js.ensure_stream(&StreamSpec::events().duplicate_window(Duration::from_secs(1))))
        .unwrap();
    let raw = rt.block_on(async { jetstream::new(async_nats::connect(&url).await.unwrap()) });
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
    let mut report = String::from(
        "<!-- written by `cargo bench -p sdk-benches --bench jetstream` -->\n## JetStream, one run, interleaved\n\n",
    );

    // Publish.
    let names = [
        "raw, only `Nats-Msg-Id`",
        "raw, the same 8 headers as ours, by hand (insert &str)",
        "raw, the same 8 headers, cheapest path",
        "sdk `publish_async` (envelope + `Nats-Msg-Id` = `<tenant>:<ce-id>`)",
    ];
    let n_rounds = if quick() { 6 } else { 20 };
    let mut samples = vec![Vec::new(); names.len()];
    rt.block_on(async {
        for r in 0..n_rounds + 1 {
            for k in 0..names.len() {
                let v = (k + r) % names.len();
                let start = Instant::now();
                if v == 3 {
                    let mut acks = Vec::with_capacity(BATCH);
                    for _ in 0..BATCH {
                        acks.push(js.publish_async(&subject, envelope()).await.unwrap());
                    }
                    for a in acks {
                        a.ack().await.unwrap();
                    }
                } else {
                    let mut acks = Vec::with_capacity(BATCH);
                    for _ in 0..BATCH {
                        let h = match v {
                            0 => {
                                let mut h = async_nats::HeaderMap::new();
                                h.insert("Nats-Msg-Id", nuid::next().as_str());
                                h
                            }
                            1 => raw_js_headers(source.as_str(), false),
                            _ => raw_js_headers(source.as_str(), true),
                        };
                        acks.push(
                            raw.publish_with_headers(
                                subject.to_string(),
                                h,
                                Bytes::from_static(PAYLOAD),
                            )
                            .await
                            .unwrap(),
                        );
                    }
                    for a in acks {
                        a.await.unwrap();
                    }
                }
                // Round 0 warms up.
                if r > 0 {
                    samples[v].push(start.elapsed());
                }
            }
        }
    });
    let med: Vec<Duration> = samples.into_iter().map(|mut s| median(&mut s)).collect();
    let tput = |i: usize| BATCH as f64 / med[i].as_secs_f64();
    report.push_str(&format!(
        "### Publish with async acks, 256 B, {BATCH} in flight then every ack awaited, {n_rounds} rounds, median\n\n| # | publish | per {BATCH} | messages/s | throughput vs |\n|---|---|---:|---:|---|\n"
    ));
    let refs = [
        "—".to_owned(),
        format!("{:.2}× #0", tput(1) / tput(0)),
        format!("{:.2}× #1", tput(2) / tput(1)),
        format!(
            "{:.2}× #1; {:.2}× #2; {:.2}× #0",
            tput(3) / tput(1),
            tput(3) / tput(2),
            tput(3) / tput(0)
        ),
    ];
    for (i, name) in names.iter().enumerate() {
        report.push_str(&format!(
            "| {i} | {name} | {} | {} | {} |\n",
            fmt_duration(med[i]),
            fmt_rate(tput(i)),
            refs[i]
        ));
    }

    // Consume.
    let codec = Codec::builder()
        .format(Format::MessagePack)
        .build()
        .unwrap();
    let typed = Messenger::new(bus.clone(), codec.clone(), source.clone());
    let traced = Messenger::new(bus.clone(), codec, source.clone()).with_telemetry(&otel);
    let value = samples::agent_message();
    let names = [
        "raw, one reader: read, ack, next",
        "raw, 64 at once (`for_each_concurrent(64)`), ack",
        "raw, 64 at once, MessagePack decode of `AgentMessage`, ack",
        "sdk `consume`, 64 handlers (envelope checks, progress timer, task per message), ack",
        "sdk typed `Messenger::consume`, 64 handlers, decode, ack",
        "sdk typed + traced `Messenger::consume` (OTLP export), 64 handlers",
    ];
    let n = if quick() { 1000 } else { 2000 };
    let c_rounds = if quick() { 3 } else { 6 };
    let mut samples = vec![Vec::new(); names.len()];
    let raw_stream = rt.block_on(raw.get_stream("SDK_EVENTS")).unwrap();
    let consumers = Consumers {
        raw_stream: &raw_stream,
        js: &js,
        typed: &typed,
        traced: &traced,
    };
    // `SDK_BENCH_ONLY=<#>`: that consumer alone, on 100 000 stored messages, for a
    // profiler: it says on stderr when the messages are stored and waits 3 s, time for
    // `perf record -p <this pid>,<nats-server pid>` to attach, so that storing them is
    // not in the profile.
    if let Some(v) = std::env::var("SDK_BENCH_ONLY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|v| *v < names.len())
    {
        let n = 100_000;
        let subject = acme.scope().event("only").unwrap();
        store(&rt, &traced, &js, std::slice::from_ref(&subject), &value, n);
        eprintln!(
            "jetstream: {n} stored; consuming in 3 s (pid {})",
            std::process::id()
        );
        std::thread::sleep(Duration::from_secs(3));
        let t = consumers.run(&rt, v, subject.to_string(), "bench-only", n);
        eprintln!("jetstream: consumed {n} in {t:?}");
        return;
    }
    for r in 0..c_rounds {
        // Store every variant's messages first, each on its own subject, through the
        // traced messenger so that they carry trace context (unused by raw). Their
        // payloads are MessagePack `AgentMessage`s.
        let subjects: Vec<_> = (0..names.len())
            .map(|v| acme.scope().event(&format!("c{r}v{v}")).unwrap())
            .collect();
        store(&rt, &traced, &js, &subjects, &value, n);
        for k in 0..names.len() {
            let v = (k + r) % names.len();
            let filter = subjects[v].to_string();
            let durable = format!("bench-c{r}v{v}");
            let elapsed = consumers.run(&rt, v, filter, &durable, n);
            rt.block_on(raw_stream.delete_consumer(&durable)).ok();
            samples[v].push(elapsed);
        }
    }
    let med: Vec<Duration> = samples.into_iter().map(|mut s| median(&mut s)).collect();
    let tput = |i: usize| n as f64 / med[i].as_secs_f64();
    report.push_str(&format!(
        "\n### Consume and ack, {n} stored messages per variant (MessagePack `AgentMessage`, stored before the clock starts), {c_rounds} rounds, median\n\n| # | consume | per {n} | messages/s | throughput vs |\n|---|---|---:|---:|---|\n"
    ));
    let x = |i: usize, j: usize| format!("{:.2}× #{j}", tput(i) / tput(j));
    let refs = [
        "—".to_owned(),
        x(1, 0),
        x(2, 1),
        format!("{}; {}", x(3, 1), x(3, 0)),
        format!("{}; {}", x(4, 2), x(4, 3)),
        format!("{}; {}", x(5, 2), x(5, 4)),
    ];
    for (i, name) in names.iter().enumerate() {
        report.push_str(&format!(
            "| {i} | {name} | {} | {} | {} |\n",
            fmt_duration(med[i]),
            fmt_rate(tput(i)),
            refs[i]
        ));
    }
    report.push('\n');
    write_report("jetstream", &report);
    drop(otel);
    drop(server);
}

/// Stores `n` typed messages on each of `subjects` through the traced messenger (16
/// publishers at once), so that they carry trace context as production traffic does.
fn store(
    rt: &tokio::runtime::Runtime,
    traced: &Messenger,
    js: &JetStream,
    subjects: &[Subject],
    value: &AgentMessage,
    n: usize,
) {
    rt.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let (traced, js, subjects, value) =
                    (traced.clone(), js.clone(), subjects.to_vec(), value.clone());
                tokio::spawn(async move {
                    for s in &subjects {
                        for _ in 0..n / 16 + usize::from(t < n % 16) {
                            traced
                                .publish_durable(&js, s, "sdk.bench.message", &value)
                                .await
                                .unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// What the consume variants need: raw's stream, and ours.
struct Consumers<'a> {
    raw_stream: &'a jetstream::stream::Stream,
    js: &'a JetStream,
    typed: &'a Messenger,
    traced: &'a Messenger,
}

impl Consumers<'_> {
    /// Consumes `n` stored messages of `filter` with variant `v` on a new durable
    /// consumer, whose creation is inside the clock.
    fn run(
        &self,
        rt: &tokio::runtime::Runtime,
        v: usize,
        filter: String,
        durable: &str,
        n: usize,
    ) -> Duration {
        let Consumers {
            raw_stream,
            js,
            typed,
            traced,
        } = *self;
        let durable = durable.to_owned();
        rt.block_on(async {
            let start = Instant::now();
            match v {
                0..=2 => {
                    let consumer: consumer::PullConsumer = raw_stream
                        .create_consumer(consumer::pull::Config {
                            durable_name: Some(durable.clone()),
                            filter_subject: filter,
                            ack_policy: consumer::AckPolicy::Explicit,
                            max_ack_pending: 1000,
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                    let messages = consumer
                        .stream()
                        .max_messages_per_batch(256)
                        .messages()
                        .await
                        .unwrap()
                        .take(n);
                    if v == 0 {
                        let mut messages = messages;
                        while let Some(m) = messages.next().await {
                            m.unwrap().ack().await.unwrap();
                        }
                    } else {
                        messages
                            .for_each_concurrent(64, |m| async move {
                                let m = m.unwrap();
                                if v == 2 {
                                    let _: AgentMessage =
                                        rmp_serde::from_slice(&m.payload).unwrap();
                                }
                                m.ack().await.unwrap();
                            })
                            .await;
                    }
                    // The pull stream is dropped here, before anything else runs.
                    start.elapsed()
                }
                _ => {
                    let which = match v {
                        3 => OurConsumer::Envelope,
                        4 => OurConsumer::Typed,
                        _ => OurConsumer::Traced,
                    };
                    consume_n(js, typed, traced, which, &durable, &filter, n).await;
                    start.elapsed()
                }
            }
        })
    }
}
