//! sdk-bus and the typed, traced `Messenger` next to raw async-nats on the same real
//! nats-server (127.0.0.1), all in ONE run, interleaved: every round runs each
//! variant once, in a rotating order, so drift on the shared machine hits them all
//! alike; the tables give medians over the rounds and the ratios between neighbours.
//!
//! - publish: batches of 1000 then a flush, a subscriber draining everything; raw with
//!   no headers, raw with the eight `ce-*` headers built by hand and through
//!   async-nats' cheapest public path, our envelope, typed, typed + traced, and raw
//!   with exactly the headers the traced publish sends.
//! - request-reply: 1 requester (interleaved single requests, p50/p99) and 64
//!   concurrent requesters; raw and ours carry the same eight headers both ways.
//!
//! Tables go to `target/bench-reports/bus.md`.
//! Run: `cargo bench -p sdk-benches --bench bus` (needs `scripts/install-tools`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use sdk_benches::{
    Export, OtlpSink, PAYLOAD, cheapest_headers, fmt_duration, fmt_rate, hand_built_headers,
    median, percentile, quick, runtime, spawn_raw_echo, telemetry, write_report,
};
use sdk_bus::{
    Bus, BusConfig, Envelope, EventSource, ServeOptions, ServiceFailure, SubjectPattern, TenantId,
};
use sdk_codec::v1::AgentMessage;
use sdk_codec::{Codec, Format, samples};
use sdk_integration::{MessageContext, Messenger};
use sdk_testkit::NatsServer;

const BATCH: usize = 1000;

fn envelope(source: &EventSource) -> Envelope {
    Envelope::builder(source, "sdk.bench.message")
        .content_type("application/msgpack")
        .correlation_id("corr-1")
        .payload(Bytes::from_static(PAYLOAD))
        .build()
        .unwrap()
}

/// A fresh W3C traceparent, as the OpenTelemetry propagator formats one.
fn traceparent() -> String {
    let n = nuid::next();
    let b = n.as_str().as_bytes();
    let mut t: u128 = 0;
    for x in b {
        t = t.wrapping_mul(131).wrapping_add(u128::from(*x));
    }
    #[allow(clippy::cast_possible_truncation)]
    let s = t as u64 ^ 0x9e37_79b9;
    format!("{:02x}-{:032x}-{:016x}-{:02x}", 0, t, s, 1)
}

/// The eight `ce-*` headers by hand plus what a traced message adds: a fresh
/// `traceparent` and the tenant `baggage` (ten, as the traced request and reply carry).
fn traced_hand_built_headers(source: &str) -> async_nats::HeaderMap {
    let mut h = hand_built_headers(source);
    h.insert("traceparent", traceparent().as_str());
    h.insert("baggage", "sdk.tenant.id=acme");
    h
}

/// The headers a captured message carried, rebuilt by hand for each message: fresh
/// `ce-id`, `ce-time` and `traceparent`, the rest copied. `cheap` uses async-nats'
/// cheapest path (static names, owned values, append).
fn same_headers(template: &[(&'static str, String)], cheap: bool) -> async_nats::HeaderMap {
    use async_nats::header::{HeaderName, HeaderValue};
    let mut h = async_nats::HeaderMap::new();
    for (name, value) in template {
        let value = match *name {
            "ce-id" => nuid::next().to_string(),
            "ce-time" => sdk_bus::new_time(),
            "traceparent" => traceparent(),
            _ if cheap => value.clone(),
            _ => {
                h.insert(*name, value.as_str());
                continue;
            }
        };
        if cheap {
            h.append(HeaderName::from_static(name), HeaderValue::from(value));
        } else {
            h.insert(*name, value.as_str());
        }
    }
    h
}

/// Runs `variants` for `rounds`, each round every variant once in a rotating order;
/// returns each variant's samples.
async fn rounds<F, Fut>(names: &[&str], rounds: usize, mut run: F) -> Vec<Vec<Duration>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let mut samples = vec![Vec::with_capacity(rounds); names.len()];
    // `SDK_BENCH_ONLY=<#>`: that variant alone, 20 times as long (for a profiler).
    if let Some(only) = std::env::var("SDK_BENCH_ONLY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|v| *v < names.len())
    {
        for _ in 0..rounds * 20 {
            samples[only].push(run(only).await);
        }
        for (v, s) in samples.iter_mut().enumerate() {
            if v != only {
                s.push(Duration::from_secs(1));
            }
        }
        return samples;
    }
    for r in 0..rounds {
        for k in 0..names.len() {
            let v = (k + r) % names.len();
            samples[v].push(run(v).await);
        }
    }
    samples
}

struct Side {
    raw: async_nats::Client,
    bus: Bus,
    typed: Messenger,
    traced: Messenger,
    traced_nothing: Messenger,
}

fn messenger(bus: &Bus, source: &EventSource, t: Option<&sdk_telemetry::Telemetry>) -> Messenger {
    let codec = Codec::builder()
        .format(Format::MessagePack)
        .build()
        .unwrap();
    let m = Messenger::new(bus.clone(), codec, source.clone());
    match t {
        Some(t) => m.with_telemetry(t),
        None => m,
    }
}

fn publish(rt: &tokio::runtime::Runtime, url: &str, report: &mut String) {
    let sink = OtlpSink::start();
    let otel = telemetry(Export::Otlp, Some(&sink));
    let otel_nothing = telemetry(Export::Nothing, None);
    let acme = TenantId::new("acme").unwrap();
    let source = EventSource::new(&acme, "bench", "b-1").unwrap();
    let subject = acme.scope().event("bench").unwrap();
    let side = rt.block_on(async {
        let bus = Bus::connect(BusConfig::builder().servers(url).build().unwrap())
            .await
            .unwrap();
        Side {
            raw: async_nats::connect(url).await.unwrap(),
            typed: messenger(&bus, &source, None),
            traced: messenger(&bus, &source, Some(&otel)),
            traced_nothing: messenger(&bus, &source, Some(&otel_nothing)),
            bus,
        }
    });
    // Codec spans on one messenger and off on another need two telemetries: the
    // switch is per telemetry.
    let otel_nocodec = telemetry(Export::Otlp, Some(&sink));
    otel_nocodec.messaging().set_codec_spans(false);
    let traced_nocodec = messenger(&side.bus, &source, Some(&otel_nocodec));
    // One trace in ten sampled: the other messages carry an unsampled `traceparent`
    // and their spans are neither recorded nor exported; metrics are kept.
    let otel_sampled = sdk_benches::telemetry_sampled(
        Export::Otlp,
        Some(&sink),
        sdk_telemetry::Sampling::ParentBased(Box::new(sdk_telemetry::Sampling::Ratio(0.1))),
    );
    let traced_sampled = messenger(&side.bus, &source, Some(&otel_sampled));
    let in_process = Bus::in_process(
        BusConfig::builder()
            .subscription_capacity(1 << 16)
            .build()
            .unwrap(),
    );
    let value: AgentMessage = samples::agent_message();

    // A subscriber drains everything, so the server does real fan-out work; the first
    // traced message's headers are kept as the template for raw.
    let (template, _sinks) = rt.block_on(async {
        let sink = async_nats::connect(url).await.unwrap();
        let mut sub = sink.subscribe("sdk.acme.events.>").await.unwrap();
        sink.flush().await.unwrap();
        side.traced
            .publish(&subject, "sdk.bench.message", &value)
            .await
            .unwrap();
        let first = sub.next().await.unwrap();
        let mut template: Vec<(&'static str, String)> = Vec::new();
        for (name, values) in first.headers.as_ref().unwrap().iter() {
            let name: &'static str = Box::leak(name.to_string().into_boxed_str());
            for v in values {
                template.push((name, v.as_str().to_owned()));
            }
        }
        tokio::spawn(async move { while sub.next().await.is_some() {} });
        let mut mem = in_process
            .subscribe(&acme.scope().pattern(&["events", ">"]).unwrap())
            .await
            .unwrap();
        tokio::spawn(async move { while let Some(Ok(_)) = mem.next().await {} });
        (template, sink)
    });
    let names = [
        "raw async-nats, no headers",
        "raw, 8 ce-* headers built by hand (insert &str)",
        "raw, 8 ce-* headers, cheapest path (static names, owned values)",
        "sdk envelope publish (8 ce-* headers)",
        "raw, msgpack encode + the typed publish's headers by hand",
        "sdk typed publish (Messenger, no telemetry)",
        "raw, msgpack encode + the traced publish's headers by hand",
        "raw, msgpack encode + the traced publish's headers, cheapest path",
        "sdk typed + traced, OTLP export (codec spans on)",
        "sdk typed + traced, OTLP export, codec spans off",
        "sdk typed + traced, no exporter (spans built, nothing queued)",
        "sdk envelope publish, in-process transport",
        "sdk typed + traced, OTLP export, 1 trace in 10 sampled (parent-based ratio 0.1)",
    ];
    // Headers of the untraced typed publish: the traced ones without trace context.
    let typed_template: Vec<(&'static str, String)> = template
        .iter()
        .filter(|(n, _)| !matches!(*n, "traceparent" | "tracestate" | "baggage"))
        .cloned()
        .collect();
    let n_rounds = if quick() { 8 } else { 30 };
    // Raw publishes to a prepared subject: cloning it costs no allocation.
    let subj = &async_nats::Subject::from(subject.as_str());
    let samples = rt.block_on(rounds(&names, n_rounds, |v| {
        let (side, source, subject, value) = (&side, &source, &subject, &value);
        let (template, typed_template, traced_nocodec, in_process) =
            (&template, &typed_template, &traced_nocodec, &in_process);
        let traced_sampled = &traced_sampled;
        async move {
            let start = Instant::now();
            for _ in 0..BATCH {
                match v {
                    0 => side
                        .raw
                        .publish(subj.clone(), Bytes::from_static(PAYLOAD))
                        .await
                        .unwrap(),
                    1 => side
                        .raw
                        .publish_with_headers(
                            subj.clone(),
                            hand_built_headers(source.as_str()),
                            Bytes::from_static(PAYLOAD),
                        )
                        .await
                        .unwrap(),
                    2 => side
                        .raw
                        .publish_with_headers(
                            subj.clone(),
                            cheapest_headers(source.as_str()),
                            Bytes::from_static(PAYLOAD),
                        )
                        .await
                        .unwrap(),
                    3 => side.bus.publish(subject, envelope(source)).await.unwrap(),
                    4 | 6 | 7 => {
                        let body = rmp_serde::to_vec_named(value).unwrap();
                        let h = match v {
                            4 => same_headers(typed_template, false),
                            6 => same_headers(template, false),
                            _ => same_headers(template, true),
                        };
                        side.raw
                            .publish_with_headers(subj.clone(), h, Bytes::from(body))
                            .await
                            .unwrap();
                    }
                    5 => side
                        .typed
                        .publish(subject, "sdk.bench.message", value)
                        .await
                        .unwrap(),
                    8 => side
                        .traced
                        .publish(subject, "sdk.bench.message", value)
                        .await
                        .unwrap(),
                    9 => traced_nocodec
                        .publish(subject, "sdk.bench.message", value)
                        .await
                        .unwrap(),
                    10 => side
                        .traced_nothing
                        .publish(subject, "sdk.bench.message", value)
                        .await
                        .unwrap(),
                    11 => in_process.publish(subject, envelope(source)).await.unwrap(),
                    _ => traced_sampled
                        .publish(subject, "sdk.bench.message", value)
                        .await
                        .unwrap(),
                }
            }
            if v == 11 {
                return start.elapsed();
            }
            side.raw.flush().await.unwrap();
            side.bus.flush().await.unwrap();
            start.elapsed()
        }
    }));
    let med: Vec<Duration> = samples.into_iter().map(|mut s| median(&mut s)).collect();
    let tput = |i: usize| BATCH as f64 / med[i].as_secs_f64();
    report.push_str(&format!(
        "### Publish, 256 B (typed: `AgentMessage`, MessagePack, {} B), batches of {BATCH} then a flush, {n_rounds} interleaved rounds, median\n\n",
        rmp_serde::to_vec_named(&value).unwrap().len()
    ));
    report.push_str(
        "| # | publish | per message | messages/s | throughput vs |\n|---|---|---:|---:|---|\n",
    );
    let vs = |i: usize, j: usize| format!("{:.2}× #{j}", tput(i) / tput(j));
    let refs = [
        String::from("—"),
        vs(1, 0),
        vs(2, 1),
        format!("{}; {}", vs(3, 1), vs(3, 2)),
        String::from("—"),
        vs(5, 4),
        String::from("—"),
        vs(7, 6),
        format!("{}; {}; {}", vs(8, 5), vs(8, 6), vs(8, 7)),
        format!("{}; {}", vs(9, 5), vs(9, 6)),
        vs(10, 5),
        String::from("—"),
        format!("{}; {}", vs(12, 5), vs(12, 8)),
    ];
    for (i, name) in names.iter().enumerate() {
        report.push_str(&format!(
            "| {i} | {name} | {} | {} | {} |\n",
            fmt_duration(med[i] / BATCH as u32),
            fmt_rate(tput(i)),
            refs[i]
        ));
    }
    report.push_str(&format!(
        "\nHeaders of the traced publish ({}): {}\n\nOTLP export requests the sink received: {}\n\n",
        template.len(),
        template
            .iter()
            .map(|(n, _)| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", "),
        sink.requests()
    ));
    drop(otel);
}

/// Serves on one connection: raw echo, raw echo with the eight `ce-*` headers, the sdk
/// envelope echo (eight headers back too), typed and traced typed echoes.
fn request_reply(rt: &tokio::runtime::Runtime, url: &str, report: &mut String) {
    let sink = OtlpSink::start();
    let otel = telemetry(Export::Otlp, Some(&sink));
    let otel_nothing = telemetry(Export::Nothing, None);
    let acme = TenantId::new("acme").unwrap();
    let source = EventSource::new(&acme, "bench", "b-1").unwrap();
    let config = |tenant: Option<&TenantId>| {
        let mut b = BusConfig::builder().servers(url);
        if let Some(t) = tenant {
            b = b.inbox_tenant(t);
        }
        b.build().unwrap()
    };
    let (raw, bus, typed, traced, traced_nothing, _services) = rt.block_on(async {
        let server_raw = async_nats::connect(url).await.unwrap();
        spawn_raw_echo(&server_raw, "sdk.acme.raw.echo", || None).await;
        let reply_uri = source.as_str().to_owned();
        spawn_raw_echo(&server_raw, "sdk.acme.rawce.echo", move || {
            Some(hand_built_headers(&reply_uri))
        })
        .await;
        let reply_uri = source.as_str().to_owned();
        spawn_raw_echo(&server_raw, "sdk.acme.rawtr.echo", move || {
            Some(traced_hand_built_headers(&reply_uri))
        })
        .await;
        server_raw.flush().await.unwrap();

        let served = Bus::connect(config(None)).await.unwrap();
        let reply_source = source.clone();
        let options = || ServeOptions::new().concurrency(64);
        let s1 = served
            .serve(
                &SubjectPattern::new("sdk.acme.sdk.echo").unwrap(),
                options(),
                move |d| {
                    let s = reply_source.clone();
                    async move {
                        // The same eight headers the raw responder sends.
                        Ok(Envelope::builder(&s, "sdk.bench.message")
                            .content_type("application/msgpack")
                            .correlation_id("corr-1")
                            .payload(d.envelope.payload().clone())
                            .build()
                            .unwrap())
                    }
                },
            )
            .await
            .unwrap();
        let echo = |m: AgentMessage, _cx: MessageContext| async move { Ok::<_, ServiceFailure>(m) };
        let s2 = messenger(&served, &source, None)
            .serve(
                &SubjectPattern::new("sdk.acme.typed.echo").unwrap(),
                options(),
                echo,
            )
            .await
            .unwrap();
        let s3 = messenger(&served, &source, Some(&otel))
            .serve(
                &SubjectPattern::new("sdk.acme.traced.echo").unwrap(),
                options(),
                echo,
            )
            .await
            .unwrap();
        let s4 = messenger(&served, &source, Some(&otel_nothing))
            .serve(
                &SubjectPattern::new("sdk.acme.tracednx.echo").unwrap(),
                options(),
                echo,
            )
            .await
            .unwrap();
        served.flush().await.unwrap();
        // A raw requester's replies must come back to `_INBOX.acme.…`, or the sdk
        // refuses to answer: the same client serves every raw row.
        let raw = async_nats::ConnectOptions::new()
            .custom_inbox_prefix("_INBOX.acme")
            .connect(url)
            .await
            .unwrap();
        let bus = Bus::connect(config(Some(&acme))).await.unwrap();
        let typed = messenger(&bus, &source, None);
        let traced = messenger(&bus, &source, Some(&otel));
        let traced_nothing = messenger(&bus, &source, Some(&otel_nothing));
        (
            raw,
            bus,
            typed,
            traced,
            traced_nothing,
            (s1, s2, s3, s4, served),
        )
    });
    let sdk_subject = acme.scope().component("sdk", "echo").unwrap();
    let typed_subject = acme.scope().component("typed", "echo").unwrap();
    let traced_subject = acme.scope().component("traced", "echo").unwrap();
    let tracednx_subject = acme.scope().component("tracednx", "echo").unwrap();
    let value = samples::agent_message();
    let one = |v: usize| {
        let (raw, bus, typed, traced, source) = (&raw, &bus, &typed, &traced, &source);
        let (sdk_subject, typed_subject, traced_subject, value) =
            (&sdk_subject, &typed_subject, &traced_subject, &value);
        let (traced_nothing, tracednx_subject) = (&traced_nothing, &tracednx_subject);
        async move {
            let t = Instant::now();
            match v {
                0 => {
                    raw.request("sdk.acme.raw.echo", Bytes::from_static(PAYLOAD))
                        .await
                        .unwrap();
                }
                1 => {
                    let req = async_nats::Request::new()
                        .headers(hand_built_headers(source.as_str()))
                        .payload(Bytes::from_static(PAYLOAD));
                    raw.send_request("sdk.acme.rawce.echo", req).await.unwrap();
                }
                2 => {
                    bus.request(sdk_subject, envelope(source)).await.unwrap();
                }
                3 => {
                    let _: AgentMessage = typed
                        .request(typed_subject, "sdk.bench.message", value)
                        .await
                        .unwrap();
                }
                4 => {
                    let _: AgentMessage = traced
                        .request(traced_subject, "sdk.bench.message", value)
                        .await
                        .unwrap();
                }
                5 => {
                    let _: AgentMessage = traced_nothing
                        .request(tracednx_subject, "sdk.bench.message", value)
                        .await
                        .unwrap();
                }
                _ => {
                    let req = async_nats::Request::new()
                        .headers(traced_hand_built_headers(source.as_str()))
                        .payload(Bytes::from_static(PAYLOAD));
                    raw.send_request("sdk.acme.rawtr.echo", req).await.unwrap();
                }
            }
            t.elapsed()
        }
    };
    let names = [
        "raw async-nats, no headers",
        "raw async-nats, 8 ce-* headers by hand both ways",
        "sdk request + serve (envelope, 8 ce-* headers both ways, checks)",
        "sdk typed request + serve (Messenger, MessagePack `AgentMessage`)",
        "sdk typed + traced request + serve (OTLP export, codec spans on)",
        "sdk typed + traced request + serve (no exporter: spans and metrics built, nothing queued)",
        "raw async-nats, the traced round trip's 10 headers by hand both ways (8 ce-*, a fresh traceparent, baggage)",
    ];
    // Warm up every path.
    rt.block_on(async {
        for v in 0..names.len() {
            for _ in 0..200 {
                one(v).await;
            }
        }
    });
    let n = if quick() { 500 } else { 3000 };
    let mut lat = rt.block_on(rounds(&names, n, one));
    for l in &mut lat {
        l.sort();
    }
    let p50 = |i: usize| percentile(&lat[i], 0.5);
    report.push_str(&format!(
        "### Request-reply, 1 requester, 256 B, {n} interleaved requests each\n\n| # | request-reply | p50 | p99 | p50 vs |\n|---|---|---:|---:|---|\n"
    ));
    let r =
        |i: usize, j: usize| format!("{:.2}× #{j}", p50(i).as_secs_f64() / p50(j).as_secs_f64());
    let refs = [
        "—".to_owned(),
        r(1, 0),
        format!("{}; {}", r(2, 1), r(2, 0)),
        r(3, 2),
        format!(
            "{}; telemetry adds {}",
            r(4, 3),
            fmt_duration(p50(4).saturating_sub(p50(3)))
        ),
        format!(
            "{}; telemetry adds {}",
            r(5, 3),
            fmt_duration(p50(5).saturating_sub(p50(3)))
        ),
        format!(
            "{}; the two trace headers add {}",
            r(6, 1),
            fmt_duration(p50(6).saturating_sub(p50(1)))
        ),
    ];
    for (i, name) in names.iter().enumerate() {
        report.push_str(&format!(
            "| {i} | {name} | {} | {} | {} |\n",
            fmt_duration(p50(i)),
            fmt_duration(percentile(&lat[i], 0.99)),
            refs[i]
        ));
    }

    // 64 requesters at once, each sending its share; rounds rotate the variants.
    let concurrent = 64usize;
    let per_task = if quick() { 10 } else { 25 };
    let c_rounds = if quick() { 3 } else { 8 };
    let shared = Arc::new((
        raw.clone(),
        bus.clone(),
        typed.clone(),
        traced.clone(),
        source.clone(),
        value.clone(),
        [
            sdk_subject.clone(),
            typed_subject.clone(),
            traced_subject.clone(),
            tracednx_subject.clone(),
        ],
        traced_nothing.clone(),
    ));
    let mut all: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    let mut wall: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    // `SDK_BENCH_ONLY=<#>`: that variant alone, 20 times as many rounds (for a profiler).
    let only = std::env::var("SDK_BENCH_ONLY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|v| *v < names.len());
    let schedule: Vec<usize> = match only {
        Some(v) => vec![v; c_rounds * 20],
        None => (0..c_rounds)
            .flat_map(|round| (0..names.len()).map(move |k| (k + round) % names.len()))
            .collect(),
    };
    rt.block_on(async {
        {
            for v in schedule {
                let start = Instant::now();
                let tasks: Vec<_> = (0..concurrent)
                    .map(|_| {
                        let s = Arc::clone(&shared);
                        tokio::spawn(async move {
                            let (raw, bus, typed, traced, source, value, subjects, tnx) = &*s;
                            let mut l = Vec::with_capacity(per_task);
                            for _ in 0..per_task {
                                let t = Instant::now();
                                match v {
                                    0 => {
                                        raw.request(
                                            "sdk.acme.raw.echo",
                                            Bytes::from_static(PAYLOAD),
                                        )
                                        .await
                                        .unwrap();
                                    }
                                    1 => {
                                        let req = async_nats::Request::new()
                                            .headers(hand_built_headers(source.as_str()))
                                            .payload(Bytes::from_static(PAYLOAD));
                                        raw.send_request("sdk.acme.rawce.echo", req).await.unwrap();
                                    }
                                    2 => {
                                        bus.request(&subjects[0], envelope(source)).await.unwrap();
                                    }
                                    3 => {
                                        let _: AgentMessage = typed
                                            .request(&subjects[1], "sdk.bench.message", value)
                                            .await
                                            .unwrap();
                                    }
                                    4 => {
                                        let _: AgentMessage = traced
                                            .request(&subjects[2], "sdk.bench.message", value)
                                            .await
                                            .unwrap();
                                    }
                                    5 => {
                                        let _: AgentMessage = tnx
                                            .request(&subjects[3], "sdk.bench.message", value)
                                            .await
                                            .unwrap();
                                    }
                                    _ => {
                                        let req = async_nats::Request::new()
                                            .headers(traced_hand_built_headers(source.as_str()))
                                            .payload(Bytes::from_static(PAYLOAD));
                                        raw.send_request("sdk.acme.rawtr.echo", req).await.unwrap();
                                    }
                                }
                                l.push(t.elapsed());
                            }
                            l
                        })
                    })
                    .collect();
                for t in tasks {
                    all[v].extend(t.await.unwrap());
                }
                wall[v].push(start.elapsed());
            }
        }
    });
    for l in &mut all {
        l.sort();
    }
    let cp50 = |i: usize| percentile(&all[i], 0.5);
    report.push_str(&format!(
        "\n### Request-reply, {concurrent} concurrent requesters × {per_task} requests, {c_rounds} interleaved rounds\n\n| # | request-reply | p50 | p99 | requests/s (median round) | p50 vs |\n|---|---|---:|---:|---:|---|\n"
    ));
    let cr =
        |i: usize, j: usize| format!("{:.2}× #{j}", cp50(i).as_secs_f64() / cp50(j).as_secs_f64());
    let crefs = [
        "—".to_owned(),
        cr(1, 0),
        format!("{}; {}", cr(2, 1), cr(2, 0)),
        cr(3, 2),
        format!(
            "{}; telemetry adds {}",
            cr(4, 3),
            fmt_duration(cp50(4).saturating_sub(cp50(3)))
        ),
        format!(
            "{}; telemetry adds {}",
            cr(5, 3),
            fmt_duration(cp50(5).saturating_sub(cp50(3)))
        ),
        format!(
            "{}; the two trace headers add {}",
            cr(6, 1),
            fmt_duration(cp50(6).saturating_sub(cp50(1)))
        ),
    ];
    for (i, name) in names.iter().enumerate() {
        let m = median(&mut wall[i]);
        report.push_str(&format!(
            "| {i} | {name} | {} | {} | {} | {} |\n",
            fmt_duration(cp50(i)),
            fmt_duration(percentile(&all[i], 0.99)),
            fmt_rate((concurrent * per_task) as f64 / m.as_secs_f64()),
            crefs[i]
        ));
    }
    report.push('\n');
    drop(otel);
    drop(otel_nothing);
}

fn main() {
    let rt = runtime();
    let server = NatsServer::start();
    let url = server.url();
    let mut report = String::from(
        "<!-- written by `cargo bench -p sdk-benches --bench bus` -->\n## Bus, one run, interleaved\n\n",
    );
    // `SDK_BENCH_SECTION=publish` or `request-reply`: only that one.
    let section = std::env::var("SDK_BENCH_SECTION").unwrap_or_default();
    if section.is_empty() || section == "publish" {
        publish(&rt, &url, &mut report);
    }
    if section.is_empty() || section == "request-reply" {
        request_reply(&rt, &url, &mut report);
    }
    write_report("bus", &report);
    drop(server);
}
