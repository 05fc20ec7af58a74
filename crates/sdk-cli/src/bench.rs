//! `sdk bench`: pub/sub throughput and request-reply latency on a real server, raw
//! async-nats next to each SDK layer (envelope, codec, tracing) and JetStream, in the
//! same run. The ratio to raw is what counts; the absolute numbers are this machine's.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt as _;
use sdk_bus::jetstream::stream::{Storage, StreamSpec};
use sdk_bus::{Envelope, EventSource, ServeOptions, Subject, SubjectPattern, TenantId};
use sdk_codec::v1::AgentMessage;
use sdk_codec::{Codec, Format};
use sdk_integration::{MessageContext, Messenger};
use sdk_telemetry::{Exporter, LogFormat, Telemetry, TelemetryConfig};

use crate::cli::{BenchArgs, Global};
use crate::connect;
use crate::error::CliError;
use crate::out;

/// One measured layer.
#[derive(Debug)]
struct Row {
    test: &'static str,
    layer: &'static str,
    messages: usize,
    seconds: f64,
    /// Request latencies, sorted, for request-reply rows.
    latencies: Vec<Duration>,
}

impl Row {
    fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.messages as f64 / self.seconds
        } else {
            0.0
        }
    }

    fn percentile(&self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let last = self.latencies.len() - 1;
        let i = ((last as f64) * p).round() as usize;
        self.latencies.get(i.min(last)).copied()
    }
}

/// A progress bar on stderr, one step per layer.
struct Progress {
    total: usize,
    done: usize,
    quiet: bool,
}

impl Progress {
    fn step(&mut self, what: &str) {
        self.done += 1;
        if self.quiet {
            return;
        }
        let width = 30;
        let filled = width * self.done / self.total.max(1);
        out::status(&format!(
            "[{}{}] {}/{} {what}",
            "#".repeat(filled),
            " ".repeat(width - filled),
            self.done,
            self.total
        ));
    }
}

/// The most messages or requests one bench sends.
const MAX_COUNT: usize = 100_000_000;
/// The largest payload: NATS' own ceiling for `max_payload`.
const MAX_SIZE: usize = 64 << 20;

pub(crate) async fn run(global: &Global, args: BenchArgs) -> Result<(), CliError> {
    connect::need_server(
        global,
        "bench",
        "it measures a real server against raw async-nats",
    )?;
    if args.messages == 0 || args.requests == 0 {
        return Err(
            CliError::usage("--messages and --requests must be at least 1")
                .hint("for example --messages 10000 --requests 1000"),
        );
    }
    if args.messages > MAX_COUNT || args.requests > MAX_COUNT || args.size > MAX_SIZE {
        return Err(CliError::usage(format!(
            "--messages and --requests may be at most {MAX_COUNT}, --size at most {MAX_SIZE} bytes"
        ))
        .hint("a bench this large measures the machine's memory, not the bus"));
    }
    let bus = connect::bus(global, Some(Duration::from_secs(10))).await?;
    let raw = connect::client(&bus)?;
    let tenant = TenantId::new("bench").map_err(sdk_bus::BusError::from)?;
    let source = EventSource::new(&tenant, "bench", "b-1").map_err(sdk_bus::BusError::from)?;
    let codec = Codec::builder()
        .format(Format::MessagePack)
        .build()
        .map_err(crate::error::codec)?;
    let plain = Messenger::new(bus.clone(), codec.clone(), source.clone());
    let telemetry = Telemetry::init(
        TelemetryConfig::builder("sdk-bench")
            .exporters(Exporter::None, Exporter::None, Exporter::None)
            .install_global(false)
            .log_format(LogFormat::Off)
            .build()
            .map_err(|e| CliError::new(format!("cannot set up telemetry: {e}")))?,
    )
    .map_err(|e| CliError::new(format!("cannot set up telemetry: {e}")))?;
    let traced = plain.clone().with_telemetry(&telemetry);
    let payload = Bytes::from(vec![b'x'; args.size]);
    let message = AgentMessage {
        message_id: "m-1".into(),
        sender_id: "bench".into(),
        receiver_id: "bench".into(),
        content: "x".repeat(args.size),
        ..Default::default()
    };
    let mut progress = Progress {
        total: 8 + usize::from(args.jetstream) * 2,
        done: 0,
        quiet: args.json,
    };
    let n = args.messages;
    let subject = tenant
        .scope()
        .event("bench")
        .map_err(sdk_bus::BusError::from)?;
    let mut rows = Vec::new();

    // Pub/sub: one publisher, one subscriber on its own connection, until all arrive.
    // The subscriber buffers a whole run, so a fast publisher never makes it drop.
    let url = connect::server_url(global);
    let capacity = (n + 1024).to_string();
    let consumer_config = sdk_bus::BusConfig::from_lookup(|key| match key {
        "NATS_URL" => Some(url.clone()),
        "NATS_SUBSCRIPTION_CAPACITY" => Some(capacity.clone()),
        other => std::env::var(other).ok(),
    })
    .map_err(|e| CliError::usage(e.to_string()).hint("fix NATS_URL or --server"))?;
    let consumer = sdk_bus::Bus::connect(consumer_config).await?;
    let raw_consumer = connect::client(&consumer)?;
    let envelope = || {
        Envelope::builder(&source, "sdk.bench")
            .payload(payload.clone())
            .build()
    };
    rows.push(
        pubsub("raw", n, &raw_consumer, &subject, || async {
            raw.publish(subject.to_string(), payload.clone())
                .await
                .map_err(|e| e.to_string())
        })
        .await?,
    );
    progress.step("pub/sub raw");
    rows.push(
        pubsub("envelope", n, &raw_consumer, &subject, || async {
            let env = envelope().map_err(|e| e.to_string())?;
            bus.publish(&subject, env).await.map_err(|e| e.to_string())
        })
        .await?,
    );
    progress.step("pub/sub envelope");
    rows.push(
        pubsub("codec", n, &raw_consumer, &subject, || async {
            plain
                .publish(&subject, "sdk.bench", &message)
                .await
                .map_err(|e| e.to_string())
        })
        .await?,
    );
    progress.step("pub/sub codec");
    rows.push(
        pubsub("tracing", n, &raw_consumer, &subject, || async {
            traced
                .publish(&subject, "sdk.bench", &message)
                .await
                .map_err(|e| e.to_string())
        })
        .await?,
    );
    progress.step("pub/sub tracing");

    // Request-reply, one requester: latency percentiles.
    let r = args.requests;
    let echo_subject = tenant
        .scope()
        .component("bench", "echo")
        .map_err(sdk_bus::BusError::from)?;
    let raw_echo = raw_echo(&raw_consumer, &format!("{}.raw", echo_subject)).await?;
    rows.push(
        request_reply("raw", r, || async {
            raw.request(format!("{echo_subject}.raw"), payload.clone())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await?,
    );
    raw_echo.abort();
    progress.step("request raw");
    let service = consumer
        .serve(
            &SubjectPattern::from(&echo_subject),
            ServeOptions::new(),
            |d| async move { Ok(d.envelope) },
        )
        .await?;
    rows.push(
        request_reply("envelope", r, || async {
            let env = envelope().map_err(|e| e.to_string())?;
            bus.request(&echo_subject, env)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await?,
    );
    service.abort();
    progress.step("request envelope");
    let typed_service = Messenger::new(consumer.clone(), codec.clone(), source.clone())
        .serve(
            &SubjectPattern::from(&echo_subject),
            ServeOptions::new(),
            |m: AgentMessage, _cx: MessageContext| async move { Ok(m) },
        )
        .await?;
    rows.push(
        request_reply("codec", r, || async {
            plain
                .request::<_, AgentMessage>(&echo_subject, "sdk.bench", &message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await?,
    );
    progress.step("request codec");
    rows.push(
        request_reply("tracing", r, || async {
            traced
                .request::<_, AgentMessage>(&echo_subject, "sdk.bench", &message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await?,
    );
    typed_service.abort();
    progress.step("request tracing");

    if args.jetstream {
        let js = bus.jetstream()?;
        let spec = StreamSpec::events()
            .for_tenant(&tenant)
            .storage(Storage::Memory);
        js.ensure_stream(&spec).await.map_err(|e| {
            CliError::from(e).hint("run against a server with JetStream (nats-server -js)")
        })?;
        let raw_js = async_nats::jetstream::new(raw.clone());
        rows.push(
            durable("raw", n, || async {
                let ack = raw_js
                    .publish(subject.to_string(), payload.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                let ack: Ack =
                    Box::pin(async move { ack.await.map(|_| ()).map_err(|e| e.to_string()) });
                Ok(ack)
            })
            .await?,
        );
        progress.step("jetstream raw");
        rows.push(
            durable("envelope", n, || async {
                let env = envelope().map_err(|e| e.to_string())?;
                let pending = js
                    .publish_async(&subject, env)
                    .await
                    .map_err(|e| e.to_string())?;
                let ack: Ack =
                    Box::pin(
                        async move { pending.ack().await.map(|_| ()).map_err(|e| e.to_string()) },
                    );
                Ok(ack)
            })
            .await?,
        );
        progress.step("jetstream envelope");
        // The bench's stream is its own; removing it leaves the server as it was.
        raw_js.delete_stream(&spec.name).await.ok();
    }
    print(&rows, args.json)?;
    telemetry.shutdown(Duration::from_secs(2)).ok();
    Ok(())
}

/// Publishes `n` messages with `send` and times until the subscriber has them all.
async fn pubsub<F, Fut>(
    layer: &'static str,
    n: usize,
    consumer: &async_nats::Client,
    subject: &Subject,
    send: F,
) -> Result<Row, CliError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut sub = consumer
        .subscribe(subject.to_string())
        .await
        .map_err(|e| CliError::new(format!("cannot subscribe to {subject}: {e}")))?;
    // Make sure the server has the subscription before the clock starts.
    round_trip(consumer).await?;
    let started = Instant::now();
    let receiver = async {
        let mut got = 0;
        while got < n {
            match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
                Ok(Some(_)) => got += 1,
                _ => break,
            }
        }
        got
    };
    let sender = async {
        for _ in 0..n {
            send().await?;
        }
        Ok::<(), String>(())
    };
    let (got, sent) = tokio::join!(receiver, sender);
    sent.map_err(|e| CliError::new(format!("publishing failed: {e}")))?;
    if got < n {
        return Err(CliError::new(format!(
            "only {got} of {n} messages arrived ({layer}): the subscriber was too slow for the server"
        ))
        .hint("use fewer --messages, or a larger subscription buffer"));
    }
    Ok(Row {
        test: "pub/sub",
        layer,
        messages: n,
        seconds: started.elapsed().as_secs_f64(),
        latencies: Vec::new(),
    })
}

/// `r` requests one after another, each timed.
async fn request_reply<F, Fut>(layer: &'static str, r: usize, call: F) -> Result<Row, CliError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut latencies = Vec::with_capacity(r);
    let started = Instant::now();
    for _ in 0..r {
        let t = Instant::now();
        call()
            .await
            .map_err(|e| CliError::new(format!("a request failed ({layer}): {e}")))?;
        latencies.push(t.elapsed());
    }
    latencies.sort();
    Ok(Row {
        test: "request-reply",
        layer,
        messages: r,
        seconds: started.elapsed().as_secs_f64(),
        latencies,
    })
}

/// A JetStream ack still to come.
type Ack = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

/// `n` JetStream publishes with up to 256 acks in flight.
async fn durable<F, Fut>(layer: &'static str, n: usize, send: F) -> Result<Row, CliError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Ack, String>>,
{
    let failed = |e: String| CliError::new(format!("a JetStream publish failed ({layer}): {e}"));
    let started = Instant::now();
    let mut window: futures::stream::FuturesUnordered<Ack> =
        futures::stream::FuturesUnordered::new();
    for _ in 0..n {
        if window.len() >= 256
            && let Some(ack) = window.next().await
        {
            ack.map_err(failed)?;
        }
        window.push(send().await.map_err(failed)?);
    }
    while let Some(ack) = window.next().await {
        ack.map_err(failed)?;
    }
    Ok(Row {
        test: "jetstream publish",
        layer,
        messages: n,
        seconds: started.elapsed().as_secs_f64(),
        latencies: Vec::new(),
    })
}

/// A message through the server and back on `client`: once it is back, the server
/// has every subscription the client made before it (a flush alone does not wait).
async fn round_trip(client: &async_nats::Client) -> Result<(), CliError> {
    let probe = format!("_INBOX.bench.{}", nuid::next());
    let failed =
        |e: &dyn std::fmt::Display| CliError::new(format!("the server did not answer: {e}"));
    let mut sub = client
        .subscribe(probe.clone())
        .await
        .map_err(|e| failed(&e))?;
    client
        .publish(probe, Bytes::new())
        .await
        .map_err(|e| failed(&e))?;
    client.flush().await.map_err(|e| failed(&e))?;
    match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
        Ok(Some(_)) => Ok(()),
        _ => Err(failed(&"no round trip within 10 s")),
    }
}

/// A raw async-nats responder that echoes the payload.
async fn raw_echo(
    client: &async_nats::Client,
    subject: &str,
) -> Result<tokio::task::JoinHandle<()>, CliError> {
    let mut sub = client
        .subscribe(subject.to_owned())
        .await
        .map_err(|e| CliError::new(format!("cannot subscribe to {subject}: {e}")))?;
    round_trip(client).await?;
    let client = client.clone();
    Ok(tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(reply) = m.reply {
                // A failed echo shows as a timed-out request in the bench.
                client.publish(reply, m.payload).await.ok();
            }
        }
    }))
}

fn micros(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.0}", d.as_secs_f64() * 1e6),
    )
}

fn print(rows: &[Row], json: bool) -> Result<(), CliError> {
    let raw_of = |test: &str| rows.iter().find(|r| r.test == test && r.layer == "raw");
    if json {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let ratio = raw_of(r.test)
                    .map(|raw| r.per_second() / raw.per_second().max(f64::MIN_POSITIVE));
                serde_json::json!({
                    "test": r.test,
                    "layer": r.layer,
                    "messages": r.messages,
                    "seconds": r.seconds,
                    "per_second": r.per_second(),
                    "vs_raw": ratio,
                    "p50_us": r.percentile(0.5).map(|d| d.as_secs_f64() * 1e6),
                    "p99_us": r.percentile(0.99).map(|d| d.as_secs_f64() * 1e6),
                })
            })
            .collect();
        return out::json(&serde_json::Value::Array(items));
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let ratio =
                raw_of(r.test).map(|raw| r.per_second() / raw.per_second().max(f64::MIN_POSITIVE));
            vec![
                r.test.to_owned(),
                r.layer.to_owned(),
                format!("{:.0}", r.per_second()),
                ratio.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}")),
                micros(r.percentile(0.5)),
                micros(r.percentile(0.99)),
            ]
        })
        .collect();
    out::line(&out::table(
        &["test", "layer", "msg/s", "vs raw", "p50 µs", "p99 µs"],
        &table,
    ))
}
