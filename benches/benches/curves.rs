//! The cost curve as the work grows, raw async-nats beside ours at every point, on one
//! real nats-server, in one run (each point runs raw and sdk alternately, a few
//! rounds, median):
//!
//! - payload size 64 B … 1 MiB: publish throughput, request-reply p50/p99;
//! - request-reply vs concurrent requesters 1, 8, 64, 256;
//! - fan-out to 1, 10, 100 subscribers;
//! - tenants 1, 100, 10 000, each with its subscription on one connection: heap per
//!   tenant (counting allocator) and subscribe time per tenant;
//! - JetStream publish vs in-flight window 1, 16, 256, 1024.
//!
//! Writes `docs/benchmarks-curves.md` and `docs/curves/*.svg`.
//! Run: `cargo bench -p sdk-benches --bench curves` (needs `scripts/install-tools`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use plotters::prelude::*;
use sdk_benches::alloc_count::{Counting, snapshot};
use sdk_benches::{fmt_duration, fmt_rate, median, percentile, quick, runtime};
use sdk_bus::{
    Bus, BusConfig, Envelope, EventSource, ServeOptions, StreamSpec, SubjectPattern, TenantId,
};
use sdk_testkit::NatsServer;

#[global_allocator]
static ALLOC: Counting = Counting;

/// The eight `ce-*` headers, built by hand, the cheap way (static names).
fn headers(source: &str) -> async_nats::HeaderMap {
    sdk_benches::cheapest_headers(source)
}

fn envelope(source: &EventSource, payload: Bytes) -> Envelope {
    Envelope::builder(source, "sdk.bench.message")
        .content_type("application/msgpack")
        .correlation_id("corr-1")
        .payload(payload)
        .build()
        .unwrap()
}

/// One curve: x labels, and per series the y values.
struct Curve {
    file: &'static str,
    title: String,
    x_label: &'static str,
    y_label: &'static str,
    xs: Vec<String>,
    series: Vec<(String, Vec<f64>)>,
    log_y: bool,
}

fn plot(c: &Curve, dir: &std::path::Path) {
    let path = dir.join(format!("{}.svg", c.file));
    let root = SVGBackend::new(&path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).unwrap();
    let max = c
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        * 1.15;
    let min = c
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(f64::MAX, f64::min)
        .max(1e-9);
    let n = c.xs.len();
    let xs = c.xs.clone();
    let colors = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_labels(n)
                .x_label_formatter(&|x: &usize| xs.get(*x).cloned().unwrap_or_default())
                .x_desc(c.x_label)
                .y_desc(c.y_label)
                .draw()
                .unwrap();
            for (i, (name, ys)) in c.series.iter().enumerate() {
                let color = colors[i % colors.len()];
                chart
                    .draw_series(LineSeries::new(
                        ys.iter().enumerate().map(|(x, y)| (x, *y)),
                        color.stroke_width(2),
                    ))
                    .unwrap()
                    .label(name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(
                        ys.iter()
                            .enumerate()
                            .map(|(x, y)| Circle::new((x, *y), 3, color.filled())),
                    )
                    .unwrap();
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .unwrap();
        }};
    }
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(&c.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70);
    if c.log_y {
        draw!(
            builder
                .build_cartesian_2d(0usize..n.saturating_sub(1), (min * 0.8..max).log_scale())
                .unwrap()
        );
    } else {
        draw!(
            builder
                .build_cartesian_2d(0usize..n.saturating_sub(1), 0.0..max)
                .unwrap()
        );
    }
    root.present().unwrap();
}

fn main() {
    let quick = quick();
    let rounds = if quick { 1 } else { 5 };
    let rt = runtime();
    let server = NatsServer::builder()
        .jetstream()
        .max_payload(8 * 1024 * 1024)
        .start();
    let url = server.url();
    let acme = TenantId::new("acme").unwrap();
    let source = EventSource::new(&acme, "bench", "b-1").unwrap();
    let src = source.as_str().to_owned();
    let mut md = String::from(
        "<!-- written by `cargo bench -p sdk-benches --bench curves`; do not edit by hand -->\n# Cost curves\n\nOne run of `cargo bench -p sdk-benches --bench curves` on this project's 2-core machine, shared with other work: a real nats-server 2.15.1 on 127.0.0.1. At every point raw async-nats (with the eight `ce-*` headers built by hand through its cheapest path) and ours (envelope with the same eight headers) run alternately, a few rounds, and the median is shown. What the curves mean is in `docs/benchmarks.md`.\n",
    );
    let mut curves: Vec<Curve> = Vec::new();
    let (raw, bus, served) = rt.block_on(async {
        let raw = async_nats::ConnectOptions::new()
            .custom_inbox_prefix("_INBOX.acme")
            .connect(&url)
            .await
            .unwrap();
        let bus = Bus::connect(
            BusConfig::builder()
                .servers(&url)
                .inbox_tenant(&acme)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
        let served = Bus::connect(BusConfig::builder().servers(&url).build().unwrap())
            .await
            .unwrap();
        (raw, bus, served)
    });

    // Echo services: raw (8 headers back) and ours, 256 handlers so that concurrency
    // is the requesters' alone.
    let _services = rt.block_on(async {
        let server_raw = async_nats::connect(&url).await.unwrap();
        let mut ce_sub = server_raw.subscribe("sdk.acme.rawce.echo").await.unwrap();
        let responder = server_raw.clone();
        let reply_uri = src.clone();
        let raw_task = tokio::spawn(async move {
            while let Some(m) = ce_sub.next().await {
                if let Some(reply) = m.reply {
                    let (r, u) = (responder.clone(), reply_uri.clone());
                    // One task per request, as the sdk service does.
                    tokio::spawn(async move {
                        r.publish_with_headers(reply, headers(&u), m.payload)
                            .await
                            .unwrap();
                    });
                }
            }
        });
        server_raw.flush().await.unwrap();
        let reply_source = source.clone();
        let service = served
            .serve(
                &SubjectPattern::new("sdk.acme.sdk.echo").unwrap(),
                ServeOptions::new().concurrency(256).max_pending(1024),
                move |d| {
                    let s = reply_source.clone();
                    async move { Ok(envelope(&s, d.envelope.payload().clone())) }
                },
            )
            .await
            .unwrap();
        served.flush().await.unwrap();
        (raw_task, service, server_raw)
    });
    let sdk_subject = acme.scope().component("sdk", "echo").unwrap();
    let subject = acme.scope().event("payload").unwrap();
    let nsubj = async_nats::Subject::from(subject.as_str());

    // 1. Payload size.
    let sizes: [(usize, &str); 5] = [
        (64, "64 B"),
        (1024, "1 KiB"),
        (16 * 1024, "16 KiB"),
        (256 * 1024, "256 KiB"),
        (1024 * 1024, "1 MiB"),
    ];
    md.push_str("\n## 1. Payload size\n\nPublish: a batch, timed until one subscriber (another connection) has received all of it; the batch is 1000 messages up to 16 KiB, 200 at 256 KiB, 50 at 1 MiB. Request-reply: one requester, the echo answers with the same payload and eight headers.\n\n| payload | publish raw | publish sdk | sdk / raw | MB/s raw | MB/s sdk | req-reply p50 raw | p50 sdk | p99 raw | p99 sdk | p50 sdk / raw |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let sunk = Arc::new(AtomicUsize::new(0));
    let sink = rt.block_on(async {
        let c = async_nats::ConnectOptions::new()
            .subscription_capacity(1 << 16)
            .connect(&url)
            .await
            .unwrap();
        let mut sub = c.subscribe("sdk.acme.events.payload").await.unwrap();
        c.flush().await.unwrap();
        let sunk = Arc::clone(&sunk);
        tokio::spawn(async move {
            while sub.next().await.is_some() {
                sunk.fetch_add(1, Ordering::Release);
            }
        });
        c
    });
    let (mut pub_raw, mut pub_sdk, mut p50_raw, mut p50_sdk) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (size, label) in sizes {
        eprintln!("curves: payload {label}");
        let payload = Bytes::from(vec![b'x'; size]);
        let batch = match size {
            s if s <= 16 * 1024 => 1000,
            s if s <= 256 * 1024 => 200,
            _ => 50,
        };
        let (mut tr, mut ts) = (Vec::new(), Vec::new());
        let (mut lr, mut ls) = (Vec::new(), Vec::new());
        rt.block_on(async {
            for r in 0..rounds + 1 {
                for side in [r % 2, 1 - r % 2] {
                    let target = sunk.load(Ordering::Acquire) + batch;
                    let start = Instant::now();
                    for _ in 0..batch {
                        if side == 0 {
                            raw.publish_with_headers(nsubj.clone(), headers(&src), payload.clone())
                                .await
                                .unwrap();
                        } else {
                            bus.publish(&subject, envelope(&source, payload.clone()))
                                .await
                                .unwrap();
                        }
                    }
                    if side == 0 {
                        raw.flush().await.unwrap();
                    } else {
                        bus.flush().await.unwrap();
                    }
                    // Until the subscriber has them all: the next batch starts on an
                    // idle pipeline, whichever side it is.
                    let limit = Instant::now() + Duration::from_secs(20);
                    while sunk.load(Ordering::Acquire) < target && Instant::now() < limit {
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    }
                    if r > 0 {
                        [&mut tr, &mut ts][side].push(start.elapsed());
                    }
                }
                let n = if quick {
                    50
                } else {
                    300.min(20_000_000 / size.max(1)).max(40)
                };
                for k in 0..n {
                    for side in [k % 2, 1 - k % 2] {
                        let t = Instant::now();
                        if side == 0 {
                            let req = async_nats::Request::new()
                                .headers(headers(&src))
                                .payload(payload.clone());
                            raw.send_request("sdk.acme.rawce.echo", req).await.unwrap();
                        } else {
                            bus.request(&sdk_subject, envelope(&source, payload.clone()))
                                .await
                                .unwrap();
                        }
                        if r > 0 {
                            [&mut lr, &mut ls][side].push(t.elapsed());
                        }
                    }
                }
            }
        });
        let (mr, ms) = (median(&mut tr), median(&mut ts));
        let rate = |m: Duration| batch as f64 / m.as_secs_f64();
        lr.sort();
        ls.sort();
        let mb = |m: Duration| rate(m) * size as f64 / 1e6;
        md.push_str(&format!(
            "| {label} | {} | {} | {:.2} | {:.0} | {:.0} | {} | {} | {} | {} | {:.2} |\n",
            fmt_rate(rate(mr)),
            fmt_rate(rate(ms)),
            rate(ms) / rate(mr),
            mb(mr),
            mb(ms),
            fmt_duration(percentile(&lr, 0.5)),
            fmt_duration(percentile(&ls, 0.5)),
            fmt_duration(percentile(&lr, 0.99)),
            fmt_duration(percentile(&ls, 0.99)),
            percentile(&ls, 0.5).as_secs_f64() / percentile(&lr, 0.5).as_secs_f64(),
        ));
        pub_raw.push(mb(mr));
        pub_sdk.push(mb(ms));
        p50_raw.push(percentile(&lr, 0.5).as_secs_f64() * 1e6);
        p50_sdk.push(percentile(&ls, 0.5).as_secs_f64() * 1e6);
    }
    rt.block_on(sink.drain()).ok();
    let xs: Vec<String> = sizes.iter().map(|(_, l)| (*l).to_owned()).collect();
    curves.push(Curve {
        file: "payload-publish",
        title: "Publish throughput vs payload size".into(),
        x_label: "payload",
        y_label: "MB/s (payload bytes)",
        xs: xs.clone(),
        series: vec![("raw async-nats".into(), pub_raw), ("sdk".into(), pub_sdk)],
        log_y: true,
    });
    curves.push(Curve {
        file: "payload-request-reply",
        title: "Request-reply p50 vs payload size".into(),
        x_label: "payload",
        y_label: "p50 µs",
        xs,
        series: vec![("raw async-nats".into(), p50_raw), ("sdk".into(), p50_sdk)],
        log_y: true,
    });

    // 2. Concurrent requesters.
    md.push_str("\n## 2. Request-reply vs concurrent requesters (256 B)\n\nEach requester sends its requests one after another; both services answer each request in its own task.\n\n| requesters | p50 raw | p50 sdk | p99 raw | p99 sdk | p50 sdk / raw | requests/s raw | requests/s sdk |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let payload = Bytes::from_static(sdk_benches::PAYLOAD);
    let (mut cr, mut cs, mut tpr, mut tps) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let levels = [1usize, 8, 64, 256];
    for conc in levels {
        eprintln!("curves: {conc} requesters");
        let per = if quick {
            4
        } else {
            (2000 / conc).clamp(8, 400)
        };
        let (mut lr, mut ls) = (Vec::new(), Vec::new());
        let (mut wr, mut ws) = (Vec::new(), Vec::new());
        rt.block_on(async {
            for r in 0..rounds + 1 {
                for side in [r % 2, 1 - r % 2] {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..conc)
                        .map(|_| {
                            let (raw, bus, source, src, sdk_subject, payload) = (
                                raw.clone(),
                                bus.clone(),
                                source.clone(),
                                src.clone(),
                                sdk_subject.clone(),
                                payload.clone(),
                            );
                            tokio::spawn(async move {
                                let mut l = Vec::with_capacity(per);
                                for _ in 0..per {
                                    let t = Instant::now();
                                    if side == 0 {
                                        let req = async_nats::Request::new()
                                            .headers(headers(&src))
                                            .payload(payload.clone());
                                        raw.send_request("sdk.acme.rawce.echo", req).await.unwrap();
                                    } else {
                                        bus.request(
                                            &sdk_subject,
                                            envelope(&source, payload.clone()),
                                        )
                                        .await
                                        .unwrap();
                                    }
                                    l.push(t.elapsed());
                                }
                                l
                            })
                        })
                        .collect();
                    let mut l = Vec::new();
                    for t in tasks {
                        l.extend(t.await.unwrap());
                    }
                    if r > 0 {
                        [&mut lr, &mut ls][side].extend(l);
                        [&mut wr, &mut ws][side].push(start.elapsed());
                    }
                }
            }
        });
        lr.sort();
        ls.sort();
        let tp = |w: &mut Vec<Duration>| (conc * per) as f64 / median(w).as_secs_f64();
        let (a, b) = (tp(&mut wr), tp(&mut ws));
        md.push_str(&format!(
            "| {conc} | {} | {} | {} | {} | {:.2} | {} | {} |\n",
            fmt_duration(percentile(&lr, 0.5)),
            fmt_duration(percentile(&ls, 0.5)),
            fmt_duration(percentile(&lr, 0.99)),
            fmt_duration(percentile(&ls, 0.99)),
            percentile(&ls, 0.5).as_secs_f64() / percentile(&lr, 0.5).as_secs_f64(),
            fmt_rate(a),
            fmt_rate(b),
        ));
        cr.push(percentile(&lr, 0.5).as_secs_f64() * 1e6);
        cs.push(percentile(&ls, 0.5).as_secs_f64() * 1e6);
        tpr.push(a);
        tps.push(b);
    }
    let xs: Vec<String> = levels.iter().map(ToString::to_string).collect();
    curves.push(Curve {
        file: "concurrency-p50",
        title: "Request-reply p50 vs concurrent requesters".into(),
        x_label: "requesters",
        y_label: "p50 µs",
        xs: xs.clone(),
        series: vec![("raw async-nats".into(), cr), ("sdk".into(), cs)],
        log_y: true,
    });
    curves.push(Curve {
        file: "concurrency-throughput",
        title: "Request-reply throughput vs concurrent requesters".into(),
        x_label: "requesters",
        y_label: "requests/s",
        xs,
        series: vec![("raw async-nats".into(), tpr), ("sdk".into(), tps)],
        log_y: false,
    });

    // 3. Fan-out.
    md.push_str("\n## 3. Fan-out (256 B)\n\n`k` subscribers on one other connection each receive every message; the clock runs from the first publish until every subscriber has its last message. Raw subscribers read `async_nats::Message`; ours are `Bus::subscribe` (envelope checks, `Delivery`). The publisher is raw in the raw rows and `Bus::publish` in ours.\n\n| subscribers | deliveries/s raw | deliveries/s sdk | sdk / raw |\n|---:|---:|---:|---:|\n");
    let (mut fr, mut fs) = (Vec::new(), Vec::new());
    let fans = [1usize, 10, 100];
    for k in fans {
        eprintln!("curves: fan-out {k}");
        let msgs = if quick { 200 } else { (20_000 / k).max(200) };
        let (mut wr, mut ws) = (Vec::new(), Vec::new());
        rt.block_on(async {
            let subs_conn = async_nats::ConnectOptions::new()
                .subscription_capacity(1 << 16)
                .connect(&url)
                .await
                .unwrap();
            let subs_bus = Bus::connect(
                BusConfig::builder()
                    .servers(&url)
                    .subscription_capacity(1 << 16)
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
            for r in 0..rounds + 1 {
                for side in [r % 2, 1 - r % 2] {
                    let fan_subject = acme.scope().event(&format!("fan{k}r{r}s{side}")).unwrap();
                    let left = Arc::new(AtomicUsize::new(k * msgs));
                    let done = Arc::new(tokio::sync::Notify::new());
                    let mut tasks = Vec::new();
                    for _ in 0..k {
                        let (left, done) = (Arc::clone(&left), Arc::clone(&done));
                        if side == 0 {
                            let mut sub =
                                subs_conn.subscribe(fan_subject.to_string()).await.unwrap();
                            tasks.push(tokio::spawn(async move {
                                for _ in 0..msgs {
                                    std::hint::black_box(sub.next().await.unwrap());
                                    if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                                        done.notify_one();
                                    }
                                }
                            }));
                        } else {
                            let mut sub = subs_bus
                                .subscribe(&SubjectPattern::from(&fan_subject))
                                .await
                                .unwrap();
                            tasks.push(tokio::spawn(async move {
                                for _ in 0..msgs {
                                    std::hint::black_box(sub.next().await.unwrap().unwrap());
                                    if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                                        done.notify_one();
                                    }
                                }
                            }));
                        }
                    }
                    subs_conn.flush().await.unwrap();
                    let fan_n = async_nats::Subject::from(fan_subject.as_str());
                    let start = Instant::now();
                    let wait = done.notified();
                    for _ in 0..msgs {
                        if side == 0 {
                            raw.publish_with_headers(fan_n.clone(), headers(&src), payload.clone())
                                .await
                                .unwrap();
                        } else {
                            bus.publish(&fan_subject, envelope(&source, payload.clone()))
                                .await
                                .unwrap();
                        }
                    }
                    raw.flush().await.unwrap();
                    bus.flush().await.unwrap();
                    if tokio::time::timeout(Duration::from_secs(30), wait)
                        .await
                        .is_err()
                    {
                        eprintln!(
                            "curves: fan-out {k}: {} deliveries missing after 30 s",
                            left.load(Ordering::Acquire)
                        );
                    }
                    let t = start.elapsed();
                    for t in tasks {
                        t.abort();
                    }
                    if r > 0 {
                        [&mut wr, &mut ws][side].push(t);
                    }
                }
            }
        });
        let rate = |w: &mut Vec<Duration>| (k * msgs) as f64 / median(w).as_secs_f64();
        let (a, b) = (rate(&mut wr), rate(&mut ws));
        md.push_str(&format!(
            "| {k} | {} | {} | {:.2} |\n",
            fmt_rate(a),
            fmt_rate(b),
            b / a
        ));
        fr.push(a);
        fs.push(b);
    }
    curves.push(Curve {
        file: "fan-out",
        title: "Fan-out: deliveries/s vs subscribers".into(),
        x_label: "subscribers",
        y_label: "deliveries/s",
        xs: fans.iter().map(ToString::to_string).collect(),
        series: vec![("raw async-nats".into(), fr), ("sdk".into(), fs)],
        log_y: false,
    });

    // 4. Tenants.
    md.push_str("\n## 4. Tenants on one connection\n\nOne subscription per tenant (`sdk.<tenant>.agent.a.inbox`), all on one fresh connection: the heap that stays allocated afterwards per tenant (counting allocator, whole process, measured after the connection is up), and the time to subscribe them all, per tenant. Raw is `Client::subscribe`, which returns once the SUB is queued; ours is `Bus::subscribe` (here `receive_messages`), which returns once the server has the subscription (a round trip through the server per subscribe, the documented guarantee), and `Bus::subscribe_many`, which gives the same guarantee for all of them with one round trip.\n\n| tenants | heap / tenant raw | heap / tenant sdk | subscribe / tenant raw | subscribe / tenant sdk, one by one | subscribe / tenant sdk, `subscribe_many` |\n|---:|---:|---:|---:|---:|---:|\n");
    let (mut hr, mut hs, mut sr, mut ss, mut sm) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let tenant_counts = [1usize, 100, 10_000];
    for n in tenant_counts {
        eprintln!("curves: {n} tenants");
        let tenants: Vec<TenantId> = (0..n)
            .map(|i| TenantId::new(&format!("t{i}")).unwrap())
            .collect();
        let patterns: Vec<SubjectPattern> = tenants
            .iter()
            .map(|t| SubjectPattern::new(&format!("sdk.{t}.agent.a.inbox")).unwrap())
            .collect();
        for side in 0..3 {
            let (heap, time) = rt.block_on(async {
                // Connect first: the connection's own buffers are not the tenants'.
                let c = async_nats::connect(&url).await.unwrap();
                let b = Bus::connect(BusConfig::builder().servers(&url).build().unwrap())
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
                let before = snapshot();
                let start = Instant::now();
                let held: Box<dyn std::any::Any> = if side == 0 {
                    let mut subs = Vec::with_capacity(n);
                    for t in &tenants {
                        subs.push(c.subscribe(format!("sdk.{t}.agent.a.inbox")).await.unwrap());
                    }
                    c.flush().await.unwrap();
                    Box::new(subs)
                } else if side == 1 {
                    let mut subs = Vec::with_capacity(n);
                    for t in &tenants {
                        subs.push(b.receive_messages(t, "a").await.unwrap());
                    }
                    Box::new(subs)
                } else {
                    Box::new(b.subscribe_many(&patterns).await.unwrap())
                };
                let time = start.elapsed();
                tokio::time::sleep(Duration::from_millis(100)).await;
                let heap = snapshot().live - before.live;
                drop(held);
                drop((c, b));
                (heap, time)
            });
            #[allow(clippy::cast_precision_loss)]
            let per = heap as f64 / n as f64;
            #[allow(clippy::cast_precision_loss)]
            let per_us = time.as_secs_f64() * 1e6 / n as f64;
            match side {
                0 => {
                    hr.push(per);
                    sr.push(per_us);
                }
                1 => {
                    hs.push(per);
                    ss.push(per_us);
                }
                _ => sm.push(per_us),
            }
        }
        let i = hr.len() - 1;
        md.push_str(&format!(
            "| {n} | {:.1} KiB | {:.1} KiB | {:.1} µs | {:.1} µs | {:.1} µs |\n",
            hr[i] / 1024.0,
            hs[i] / 1024.0,
            sr[i],
            ss[i],
            sm[i]
        ));
    }
    let xs: Vec<String> = tenant_counts.iter().map(ToString::to_string).collect();
    curves.push(Curve {
        file: "tenants-heap",
        title: "Heap per tenant subscription vs tenants on one connection".into(),
        x_label: "tenants",
        y_label: "bytes / tenant",
        xs: xs.clone(),
        series: vec![("raw async-nats".into(), hr), ("sdk".into(), hs)],
        log_y: true,
    });
    curves.push(Curve {
        file: "tenants-subscribe",
        title: "Subscribe time per tenant vs tenants".into(),
        x_label: "tenants",
        y_label: "µs / tenant",
        xs,
        series: vec![
            ("raw async-nats".into(), sr),
            ("sdk, one by one".into(), ss),
            ("sdk, subscribe_many".into(), sm),
        ],
        log_y: true,
    });

    // 5. JetStream publish vs in-flight window.
    md.push_str("\n## 5. JetStream publish vs in-flight window (256 B, file storage)\n\nAt most `w` publishes wait for their ack; when the window is full the oldest ack is awaited. Raw sends the same eight headers (by hand, cheapest path, plus `Nats-Msg-Id`).\n\n| window | messages/s raw | messages/s sdk | sdk / raw |\n|---:|---:|---:|---:|\n");
    let js = rt.block_on(async { bus.jetstream() }).unwrap();
    rt.block_on(js.ensure_stream(&StreamSpec::events().duplicate_window(Duration::from_secs(1))))
        .unwrap();
    let rawjs = rt.block_on(async { async_nats::jetstream::new(raw.clone()) });
    let (mut jr, mut jsd) = (Vec::new(), Vec::new());
    let windows = [1usize, 16, 256, 1024];
    for w in windows {
        eprintln!("curves: window {w}");
        let msgs = if quick {
            200
        } else {
            (200 * w).clamp(500, 4000)
        };
        let (mut wr, mut ws) = (Vec::new(), Vec::new());
        rt.block_on(async {
            for r in 0..rounds + 1 {
                for side in [r % 2, 1 - r % 2] {
                    let start = Instant::now();
                    if side == 0 {
                        let mut q = VecDeque::with_capacity(w);
                        for _ in 0..msgs {
                            if q.len() == w {
                                let a: async_nats::jetstream::context::PublishAckFuture =
                                    q.pop_front().unwrap();
                                a.await.unwrap();
                            }
                            let mut h = headers(&src);
                            h.append(
                                async_nats::header::HeaderName::from_static("Nats-Msg-Id"),
                                async_nats::header::HeaderValue::from(format!(
                                    "acme:{}",
                                    nuid::next()
                                )),
                            );
                            q.push_back(
                                rawjs
                                    .publish_with_headers(nsubj.clone(), h, payload.clone())
                                    .await
                                    .unwrap(),
                            );
                        }
                        for a in q {
                            a.await.unwrap();
                        }
                    } else {
                        let mut q = VecDeque::with_capacity(w);
                        for _ in 0..msgs {
                            if q.len() == w {
                                let a: sdk_bus::jetstream::publish::PendingAck =
                                    q.pop_front().unwrap();
                                a.ack().await.unwrap();
                            }
                            q.push_back(
                                js.publish_async(&subject, envelope(&source, payload.clone()))
                                    .await
                                    .unwrap(),
                            );
                        }
                        for a in q {
                            a.ack().await.unwrap();
                        }
                    }
                    if r > 0 {
                        [&mut wr, &mut ws][side].push(start.elapsed());
                    }
                }
            }
        });
        let rate = |v: &mut Vec<Duration>| msgs as f64 / median(v).as_secs_f64();
        let (a, b) = (rate(&mut wr), rate(&mut ws));
        md.push_str(&format!(
            "| {w} | {} | {} | {:.2} |\n",
            fmt_rate(a),
            fmt_rate(b),
            b / a
        ));
        jr.push(a);
        jsd.push(b);
    }
    curves.push(Curve {
        file: "jetstream-window",
        title: "JetStream publish throughput vs in-flight window".into(),
        x_label: "acks in flight",
        y_label: "messages/s",
        xs: windows.iter().map(ToString::to_string).collect(),
        series: vec![("raw async-nats".into(), jr), ("sdk".into(), jsd)],
        log_y: true,
    });

    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let dir = docs.join("curves");
    std::fs::create_dir_all(&dir).unwrap();
    md.push_str("\n## Plots\n\n");
    for c in &curves {
        plot(c, &dir);
        md.push_str(&format!("![{}](curves/{}.svg)\n\n", c.title, c.file));
    }
    std::fs::write(docs.join("benchmarks-curves.md"), &md).unwrap();
    eprintln!("{md}");
    drop(server);
}
