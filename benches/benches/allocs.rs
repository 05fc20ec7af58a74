//! Allocations per message, raw async-nats next to ours, counted by a global
//! allocator (`sdk_benches::alloc_count`) over the whole process: what the caller's
//! code, async-nats' connection task and the runtime allocate for the work. Every row
//! runs `N` messages after a warm-up; the counts are per message.
//!
//! Subscribe rows receive from a publisher in a child process (this binary again),
//! so its allocations are not counted; request-reply rows count both ends, which run
//! here; JetStream consume rows count from stored messages.
//!
//! Table: `target/bench-reports/allocs.md`.
//! Run: `cargo bench -p sdk-benches --bench allocs` (needs `scripts/install-tools`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use sdk_benches::alloc_count::{Counting, snapshot};
use sdk_benches::{
    Export, OurConsumer, PAYLOAD, cheapest_headers, consume_n, hand_built_headers, quick, runtime,
    spawn_raw_echo, telemetry, write_report,
};
use sdk_bus::{
    Bus, BusConfig, Envelope, EventSource, ServeOptions, ServiceFailure, StreamSpec,
    SubjectPattern, TenantId,
};
use sdk_codec::v1::AgentMessage;
use sdk_codec::{Codec, Format, samples};
use sdk_integration::{MessageContext, Messenger};
use sdk_testkit::NatsServer;

#[global_allocator]
static ALLOC: Counting = Counting;

fn envelope(source: &EventSource) -> Envelope {
    Envelope::builder(source, "sdk.bench.message")
        .content_type("application/msgpack")
        .correlation_id("corr-1")
        .payload(Bytes::from_static(PAYLOAD))
        .build()
        .unwrap()
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

struct Table {
    text: String,
}

impl Table {
    fn section(&mut self, title: &str) {
        self.text.push_str(&format!(
            "\n### {title}\n\n| row | allocations / message | bytes / message |\n|---|---:|---:|\n"
        ));
    }
    fn row(&mut self, name: &str, (calls, bytes): (f64, f64)) {
        self.text
            .push_str(&format!("| {name} | {calls:.1} | {bytes:.0} |\n"));
        eprintln!("{name}: {calls:.1} allocations, {bytes:.0} bytes per message");
    }
}

/// Counts what `work(n)` allocates, per message, after `work(n / 10)` to warm up.
async fn count<F, Fut>(n: usize, mut work: F) -> (f64, f64)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    work(n / 10).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = snapshot();
    work(n).await;
    snapshot().per(before, n as u64)
}

/// The child: publishes `n` typed, traced messages (no exporter) on `subject`.
fn child(url: &str, subject: &str, n: usize) {
    let rt = runtime();
    rt.block_on(async {
        let otel = telemetry(Export::Nothing, None);
        let bus = Bus::connect(BusConfig::builder().servers(url).build().unwrap())
            .await
            .unwrap();
        let acme = TenantId::new("acme").unwrap();
        let source = EventSource::new(&acme, "bench", "child").unwrap();
        let m = messenger(&bus, &source, Some(&otel));
        let subject = sdk_bus::Subject::parse(subject).unwrap();
        let value = samples::agent_message();
        for _ in 0..n {
            m.publish(&subject, "sdk.bench.message", &value)
                .await
                .unwrap();
        }
        bus.flush().await.unwrap();
    });
}

fn main() {
    if let (Ok(url), Ok(subject), Ok(n)) = (
        std::env::var("SDK_ALLOC_CHILD_URL"),
        std::env::var("SDK_ALLOC_CHILD_SUBJECT"),
        std::env::var("SDK_ALLOC_CHILD_N"),
    ) {
        child(&url, &subject, n.parse().unwrap());
        return;
    }
    let n: usize = if quick() { 2000 } else { 10_000 };
    let rt = runtime();
    let server = NatsServer::builder().jetstream().start();
    let url = server.url();
    let acme = TenantId::new("acme").unwrap();
    let source = EventSource::new(&acme, "bench", "b-1").unwrap();
    let subject = acme.scope().event("bench").unwrap();
    // Raw publishes to a prepared subject: cloning it costs no allocation.
    let subj = &async_nats::Subject::from(subject.as_str());
    let value = samples::agent_message();
    let otel = telemetry(Export::Nothing, None);
    let mut t = Table {
        text: format!(
            "<!-- written by `cargo bench -p sdk-benches --bench allocs` -->\n## Allocations per message ({n} messages per row, whole process)\n"
        ),
    };

    rt.block_on(async {
        let raw = async_nats::ConnectOptions::new()
            .custom_inbox_prefix("_INBOX.acme")
            .connect(&url)
            .await
            .unwrap();
        // The subscribe rows receive a burst from another process: the same room for
        // it as raw's subscription has (async-nats' default, 65 536), or a slower
        // moment on this machine drops messages (a slow consumer) and the row waits
        // for them forever.
        let bus = Bus::connect(
            BusConfig::builder()
                .servers(&url)
                .inbox_tenant(&acme)
                .subscription_capacity(1 << 16)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
        let typed = messenger(&bus, &source, None);
        let traced = messenger(&bus, &source, Some(&otel));
        let codec = typed.codec().clone();

        t.section("Building one message, no I/O");
        let src = source.as_str();
        t.row(
            "raw: 8 `ce-*` headers by hand (`HeaderMap::insert(&str, &str)`)",
            count(n, |k| async move {
                for _ in 0..k {
                    std::hint::black_box(hand_built_headers(src));
                }
            })
            .await,
        );
        t.row(
            "raw: 8 `ce-*` headers, cheapest path (static names, owned values, `append`)",
            count(n, |k| async move {
                for _ in 0..k {
                    std::hint::black_box(cheapest_headers(src));
                }
            })
            .await,
        );
        let s = &source;
        t.row(
            "sdk: `Envelope::builder` + content type + correlation id + `build` (8 headers)",
            count(n, |k| async move {
                for _ in 0..k {
                    std::hint::black_box(envelope(s));
                }
            })
            .await,
        );
        let (v, c) = (&value, &codec);
        t.row(
            "raw: `rmp_serde::to_vec_named(AgentMessage)`",
            count(n, |k| async move {
                for _ in 0..k {
                    std::hint::black_box(rmp_serde::to_vec_named(v).unwrap());
                }
            })
            .await,
        );
        t.row(
            "sdk: `Codec::encode(AgentMessage)` (MessagePack)",
            count(n, |k| async move {
                for _ in 0..k {
                    std::hint::black_box(c.encode(v).unwrap());
                }
            })
            .await,
        );
        let m = &typed;
        t.row(
            "sdk: `Messenger::envelope(AgentMessage)` (encode + 8 headers)",
            count(n, |k| async move {
                for _ in 0..k {
                    std::hint::black_box(m.envelope("sdk.bench.message", v).unwrap());
                }
            })
            .await,
        );

        t.section("Publish (no subscriber; each message through the client to the socket)");
        let r = &raw;
        let flush = |c: async_nats::Client| async move { c.flush().await.unwrap() };
        t.row(
            "raw, no headers",
            count(n, |k| async move {
                for _ in 0..k {
                    r.publish(subj.clone(), Bytes::from_static(PAYLOAD))
                        .await
                        .unwrap();
                }
                flush(r.clone()).await;
            })
            .await,
        );
        t.row(
            "raw, 8 `ce-*` headers by hand",
            count(n, |k| async move {
                for _ in 0..k {
                    r.publish_with_headers(
                        subj.clone(),
                        hand_built_headers(src),
                        Bytes::from_static(PAYLOAD),
                    )
                    .await
                    .unwrap();
                }
                flush(r.clone()).await;
            })
            .await,
        );
        t.row(
            "raw, 8 `ce-*` headers, cheapest path",
            count(n, |k| async move {
                for _ in 0..k {
                    r.publish_with_headers(
                        subj.clone(),
                        cheapest_headers(src),
                        Bytes::from_static(PAYLOAD),
                    )
                    .await
                    .unwrap();
                }
                flush(r.clone()).await;
            })
            .await,
        );
        let (b, sj) = (&bus, &subject);
        t.row(
            "sdk envelope publish (8 `ce-*` headers)",
            count(n, |k| async move {
                for _ in 0..k {
                    b.publish(sj, envelope(s)).await.unwrap();
                }
                b.flush().await.unwrap();
            })
            .await,
        );
        t.row(
            "raw, msgpack encode + 8 headers by hand (what the typed publish sends)",
            count(n, |k| async move {
                for _ in 0..k {
                    let body = rmp_serde::to_vec_named(v).unwrap();
                    r.publish_with_headers(
                        subj.clone(),
                        hand_built_headers(src),
                        Bytes::from(body),
                    )
                    .await
                    .unwrap();
                }
                flush(r.clone()).await;
            })
            .await,
        );
        t.row(
            "sdk typed publish (Messenger)",
            count(n, |k| async move {
                for _ in 0..k {
                    m.publish(sj, "sdk.bench.message", v).await.unwrap();
                }
                b.flush().await.unwrap();
            })
            .await,
        );
        let tr = &traced;
        t.row(
            "sdk typed + traced publish (spans and metrics built, no exporter)",
            count(n, |k| async move {
                for _ in 0..k {
                    tr.publish(sj, "sdk.bench.message", v).await.unwrap();
                }
                b.flush().await.unwrap();
            })
            .await,
        );
        otel.messaging().set_codec_spans(false);
        t.row(
            "sdk typed + traced publish, codec spans off",
            count(n, |k| async move {
                for _ in 0..k {
                    tr.publish(sj, "sdk.bench.message", v).await.unwrap();
                }
                b.flush().await.unwrap();
            })
            .await,
        );
        otel.messaging().set_codec_spans(true);

        t.section(
            "Subscribe and receive (typed, traced messages from a publisher in another process)",
        );
        let exe = std::env::current_exe().unwrap();
        for variant in 0..5 {
            let sub_subject = acme.scope().event(&format!("sub{variant}")).unwrap();
            let received = Arc::new(AtomicUsize::new(0));
            let total = n + n / 10;
            // Subscribe first, then let the child publish; count from the first message.
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
            let pattern = SubjectPattern::from(&sub_subject);
            let rc = Arc::clone(&received);
            let warm = n / 10;
            let task = match variant {
                0 | 1 => {
                    let mut sub = raw.subscribe(sub_subject.to_string()).await.unwrap();
                    raw.flush().await.unwrap();
                    tokio::spawn(async move {
                        while let Some(msg) = sub.next().await {
                            if variant == 1 {
                                let _: AgentMessage = rmp_serde::from_slice(&msg.payload).unwrap();
                                let h = msg.headers.as_ref().unwrap();
                                std::hint::black_box((h.get("ce-type"), h.get("ce-tenantid")));
                            }
                            let k = rc.fetch_add(1, Ordering::SeqCst) + 1;
                            if k == warm || k == total {
                                tx.send(()).unwrap();
                            }
                            if k == total {
                                break;
                            }
                        }
                    })
                }
                2 => {
                    let mut sub = bus.subscribe(&pattern).await.unwrap();
                    tokio::spawn(async move {
                        while let Some(d) = sub.next().await {
                            std::hint::black_box(d.unwrap());
                            let k = rc.fetch_add(1, Ordering::SeqCst) + 1;
                            if k == warm || k == total {
                                tx.send(()).unwrap();
                            }
                            if k == total {
                                break;
                            }
                        }
                    })
                }
                _ => {
                    let m = if variant == 3 {
                        typed.clone()
                    } else {
                        traced.clone()
                    };
                    let mut sub = m.subscribe::<AgentMessage>(&pattern).await.unwrap();
                    tokio::spawn(async move {
                        while let Some(d) = sub.next().await {
                            drop(std::hint::black_box(d.unwrap().unwrap()));
                            let k = rc.fetch_add(1, Ordering::SeqCst) + 1;
                            if k == warm || k == total {
                                tx.send(()).unwrap();
                            }
                            if k == total {
                                break;
                            }
                        }
                    })
                }
            };
            let mut child = std::process::Command::new(&exe)
                .env("SDK_ALLOC_CHILD_URL", &url)
                .env("SDK_ALLOC_CHILD_SUBJECT", sub_subject.as_str())
                .env("SDK_ALLOC_CHILD_N", total.to_string())
                .spawn()
                .unwrap();
            rx.recv().await.unwrap();
            let before = snapshot();
            rx.recv().await.unwrap();
            let per = snapshot().per(before, n as u64);
            task.await.unwrap();
            tokio::task::spawn_blocking(move || child.wait().unwrap())
                .await
                .unwrap();
            let name = [
                "raw subscribe, payload only",
                "raw subscribe, MessagePack decode + read two headers",
                "sdk `Bus::subscribe` (envelope checks, `Delivery`)",
                "sdk typed subscribe (Messenger, decode)",
                "sdk typed + traced subscribe (process span, no exporter)",
            ][variant];
            t.row(name, per);
        }

        t.section("Request-reply, both ends in this process, per round trip");
        let server_raw = async_nats::connect(&url).await.unwrap();
        spawn_raw_echo(&server_raw, "sdk.acme.raw.echo", || None).await;
        let reply_uri = source.as_str().to_owned();
        spawn_raw_echo(&server_raw, "sdk.acme.rawce.echo", move || {
            Some(hand_built_headers(&reply_uri))
        })
        .await;
        server_raw.flush().await.unwrap();
        let served = Bus::connect(BusConfig::builder().servers(&url).build().unwrap())
            .await
            .unwrap();
        let reply_source = source.clone();
        let _s1 = served
            .serve(
                &SubjectPattern::new("sdk.acme.sdk.echo").unwrap(),
                ServeOptions::new(),
                move |d| {
                    let s = reply_source.clone();
                    async move {
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
        let _s2 = messenger(&served, &source, None)
            .serve(
                &SubjectPattern::new("sdk.acme.typed.echo").unwrap(),
                ServeOptions::new(),
                echo,
            )
            .await
            .unwrap();
        let _s3 = messenger(&served, &source, Some(&otel))
            .serve(
                &SubjectPattern::new("sdk.acme.traced.echo").unwrap(),
                ServeOptions::new(),
                echo,
            )
            .await
            .unwrap();
        served.flush().await.unwrap();
        let rn = n / 4;
        t.row(
            "raw, no headers",
            count(rn, |k| async move {
                for _ in 0..k {
                    r.request("sdk.acme.raw.echo", Bytes::from_static(PAYLOAD))
                        .await
                        .unwrap();
                }
            })
            .await,
        );
        t.row(
            "raw, 8 `ce-*` headers by hand both ways",
            count(rn, |k| async move {
                for _ in 0..k {
                    let req = async_nats::Request::new()
                        .headers(hand_built_headers(src))
                        .payload(Bytes::from_static(PAYLOAD));
                    r.send_request("sdk.acme.rawce.echo", req).await.unwrap();
                }
            })
            .await,
        );
        let sdk_subject = acme.scope().component("sdk", "echo").unwrap();
        let ss = &sdk_subject;
        t.row(
            "sdk request + serve (8 `ce-*` headers both ways)",
            count(rn, |k| async move {
                for _ in 0..k {
                    b.request(ss, envelope(s)).await.unwrap();
                }
            })
            .await,
        );
        let typed_subject = acme.scope().component("typed", "echo").unwrap();
        let ts = &typed_subject;
        t.row(
            "sdk typed request + serve",
            count(rn, |k| async move {
                for _ in 0..k {
                    let _: AgentMessage = m.request(ts, "sdk.bench.message", v).await.unwrap();
                }
            })
            .await,
        );
        let traced_subject = acme.scope().component("traced", "echo").unwrap();
        let trs = &traced_subject;
        t.row(
            "sdk typed + traced request + serve (no exporter)",
            count(rn, |k| async move {
                for _ in 0..k {
                    let _: AgentMessage = tr.request(trs, "sdk.bench.message", v).await.unwrap();
                }
            })
            .await,
        );

        t.section("JetStream");
        let js = bus.jetstream().unwrap();
        js.ensure_stream(&StreamSpec::events().duplicate_window(Duration::from_secs(1)))
            .await
            .unwrap();
        let rawjs = async_nats::jetstream::new(raw.clone());
        let (jsr, rj) = (&js, &rawjs);
        let jn = n / 2;
        t.row(
            "raw publish, async acks, only `Nats-Msg-Id`",
            count(jn, |k| async move {
                let mut acks = Vec::with_capacity(k);
                for _ in 0..k {
                    let mut h = async_nats::HeaderMap::new();
                    h.insert("Nats-Msg-Id", nuid::next().as_str());
                    acks.push(
                        rj.publish_with_headers(subj.clone(), h, Bytes::from_static(PAYLOAD))
                            .await
                            .unwrap(),
                    );
                }
                for a in acks {
                    a.await.unwrap();
                }
            })
            .await,
        );
        t.row(
            "raw publish, async acks, 8 `ce-*` headers by hand + `Nats-Msg-Id`",
            count(jn, |k| async move {
                let mut acks = Vec::with_capacity(k);
                for _ in 0..k {
                    let mut h = hand_built_headers(src);
                    h.insert("Nats-Msg-Id", format!("acme:{}", nuid::next()).as_str());
                    acks.push(
                        rj.publish_with_headers(subj.clone(), h, Bytes::from_static(PAYLOAD))
                            .await
                            .unwrap(),
                    );
                }
                for a in acks {
                    a.await.unwrap();
                }
            })
            .await,
        );
        t.row(
            "sdk `publish_async` (8 `ce-*` headers + `Nats-Msg-Id`)",
            count(jn, |k| async move {
                let mut acks = Vec::with_capacity(k);
                for _ in 0..k {
                    acks.push(jsr.publish_async(sj, envelope(s)).await.unwrap());
                }
                for a in acks {
                    a.ack().await.unwrap();
                }
            })
            .await,
        );
        // Consume: store first (not counted), then count reading and acking them.
        let stream = rawjs.get_stream("SDK_EVENTS").await.unwrap();
        for variant in 0..4 {
            let cs = acme.scope().event(&format!("consume{variant}")).unwrap();
            for _ in 0..jn {
                traced
                    .publish_durable(&js, &cs, "sdk.bench.message", &value)
                    .await
                    .unwrap();
            }
            let durable = format!("alloc-{variant}");
            let before = snapshot();
            if variant == 0 {
                let consumer: async_nats::jetstream::consumer::PullConsumer = stream
                    .create_consumer(async_nats::jetstream::consumer::pull::Config {
                        durable_name: Some(durable.clone()),
                        filter_subject: cs.to_string(),
                        ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                        max_ack_pending: 1000,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                consumer
                    .stream()
                    .max_messages_per_batch(256)
                    .messages()
                    .await
                    .unwrap()
                    .take(jn)
                    .for_each_concurrent(64, |m| async move {
                        let m = m.unwrap();
                        let _: AgentMessage = rmp_serde::from_slice(&m.payload).unwrap();
                        m.ack().await.unwrap();
                    })
                    .await;
            } else {
                let which = match variant {
                    1 => OurConsumer::Envelope,
                    2 => OurConsumer::Typed,
                    _ => OurConsumer::Traced,
                };
                consume_n(&js, &typed, &traced, which, &durable, cs.as_str(), jn).await;
            }
            let per = snapshot().per(before, jn as u64);
            let name = [
                "raw consume, 64 at once, MessagePack decode, ack",
                "sdk `consume`, 64 handlers, ack",
                "sdk typed `Messenger::consume`, 64 handlers, decode, ack",
                "sdk typed + traced `Messenger::consume` (no exporter)",
            ][variant];
            t.row(name, per);
            stream.delete_consumer(&durable).await.ok();
        }
    });
    write_report("allocs", &t.text);
    drop(server);
}
