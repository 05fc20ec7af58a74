//! Shared setup of the benchmarks in `benches/`: the payload, the runtime, the
//! CloudEvents headers a careful raw user builds by hand, a counting allocator,
//! percentiles, and the report files the network benches write.

pub mod alloc_count;

use std::time::Duration;

/// The payload every bus and JetStream benchmark sends: 256 bytes.
pub const PAYLOAD: &[u8] = &[b'x'; 256];

/// A two-worker runtime, the size of this project's machines.
///
/// # Panics
/// If the OS refuses to start threads; a benchmark cannot go on without them.
#[allow(clippy::expect_used)]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The `p`-quantile (0.0..=1.0) of `sorted`, nearest rank. `Duration::ZERO` when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The median of `samples` (sorted in place).
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    percentile(samples, 0.5)
}

/// A duration for a table: ns, µs or ms with two decimals.
pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A rate for a table: messages per second, with K or M.
pub fn fmt_rate(per_second: f64) -> String {
    if per_second >= 1e6 {
        format!("{:.2} M/s", per_second / 1e6)
    } else if per_second >= 1e3 {
        format!("{:.0} K/s", per_second / 1e3)
    } else {
        format!("{per_second:.0}/s")
    }
}

/// Where the network benches write their tables: `target/bench-reports/<name>.md`
/// under the workspace (not the cargo target dir, which may live elsewhere).
pub fn write_report(name: &str, text: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-reports");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}.md")), text);
    eprintln!("{text}");
}

/// Whether cargo asked for a quick pass (`cargo bench -- --quick`): fewer rounds.
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick") || std::env::var_os("SDK_BENCH_QUICK").is_some()
}

/// The CloudEvents header names of the contract, for raw users who build them by hand.
pub mod ce {
    /// `ce-specversion`.
    pub const SPEC_VERSION: &str = "ce-specversion";
    /// `ce-id`.
    pub const ID: &str = "ce-id";
    /// `ce-source`.
    pub const SOURCE: &str = "ce-source";
    /// `ce-type`.
    pub const TYPE: &str = "ce-type";
    /// `ce-time`.
    pub const TIME: &str = "ce-time";
    /// `ce-tenantid`.
    pub const TENANT_ID: &str = "ce-tenantid";
    /// `ce-datacontenttype`.
    pub const DATA_CONTENT_TYPE: &str = "ce-datacontenttype";
    /// `ce-correlationid`.
    pub const CORRELATION_ID: &str = "ce-correlationid";
}

/// The eight CloudEvents headers a careful raw user builds by hand for each message,
/// the way async-nats' documentation shows it (`insert(&str, &str)`): each name and
/// value is parsed and copied.
pub fn hand_built_headers(source: &str) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    h.insert(ce::SPEC_VERSION, "1.0");
    h.insert(ce::ID, nuid::next().as_str());
    h.insert(ce::SOURCE, source);
    h.insert(ce::TYPE, "sdk.bench.message");
    h.insert(ce::TIME, sdk_bus::new_time().as_str());
    h.insert(ce::TENANT_ID, "acme");
    h.insert(ce::DATA_CONTENT_TYPE, "application/msgpack");
    h.insert(ce::CORRELATION_ID, "corr-1");
    h
}

/// The same eight headers through async-nats' cheapest public path: names from
/// `HeaderName::from_static` (no parse, no copy), values moved in from owned
/// `String`s (no copy), `append` (no search for an existing name).
pub fn cheapest_headers(source: &str) -> async_nats::HeaderMap {
    use async_nats::header::{HeaderName, HeaderValue};
    let mut h = async_nats::HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        h.append(HeaderName::from_static(name), HeaderValue::from(value));
    };
    put(ce::SPEC_VERSION, "1.0".to_owned());
    put(ce::ID, nuid::next().to_string());
    put(ce::SOURCE, source.to_owned());
    put(ce::TYPE, "sdk.bench.message".to_owned());
    put(ce::TIME, sdk_bus::new_time());
    put(ce::TENANT_ID, "acme".to_owned());
    put(ce::DATA_CONTENT_TYPE, "application/msgpack".to_owned());
    put(ce::CORRELATION_ID, "corr-1".to_owned());
    h
}

/// How a traced bench exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// Spans and metrics built on the caller's thread, but no span processor and no
    /// metric reader: nothing is queued or exported.
    Nothing,
    /// The production set-up: a batch span processor and a periodic metric reader,
    /// exporting OTLP over HTTP to [`OtlpSink`] on this machine, which reads each
    /// request and answers 200 without looking at it. The export work (protobuf
    /// encoding, HTTP) runs on the exporter's threads, on the same two cores.
    Otlp,
}

/// A telemetry with `export`, not installed globally, logs off.
///
/// # Panics
/// When the telemetry cannot be built.
#[allow(clippy::expect_used)]
pub fn telemetry(export: Export, sink: Option<&OtlpSink>) -> sdk_telemetry::Telemetry {
    telemetry_sampled(
        export,
        sink,
        sdk_telemetry::Sampling::ParentBased(Box::new(sdk_telemetry::Sampling::AlwaysOn)),
    )
}

/// As [`telemetry`], with `sampling` instead of every trace.
///
/// # Panics
/// When the telemetry cannot start.
#[allow(clippy::expect_used)]
pub fn telemetry_sampled(
    export: Export,
    sink: Option<&OtlpSink>,
    sampling: sdk_telemetry::Sampling,
) -> sdk_telemetry::Telemetry {
    use sdk_telemetry::{Exporter, LogFormat, Protocol, TelemetryConfig};
    let mut b = TelemetryConfig::builder("bench")
        .sampling(sampling)
        .install_global(false)
        .log_format(LogFormat::Off)
        .metric_interval(Duration::from_secs(5));
    b =
        match (export, sink) {
            (Export::Otlp, Some(sink)) => b
                .otlp(&sink.endpoint(), Protocol::HttpProtobuf)
                .exporters(Exporter::Otlp, Exporter::Otlp, Exporter::None),
            _ => b.exporters(Exporter::None, Exporter::None, Exporter::None),
        };
    sdk_telemetry::Telemetry::init(b.build().expect("telemetry config")).expect("telemetry")
}

/// An OTLP/HTTP endpoint that accepts every export and discards it: the cost of
/// exporting stays in the process, the collector's own cost does not come in.
#[derive(Debug)]
pub struct OtlpSink {
    port: u16,
    received: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl OtlpSink {
    /// Listens on a free loopback port, one thread per connection.
    ///
    /// # Panics
    /// When no port can be bound.
    #[allow(clippy::expect_used)]
    pub fn start() -> OtlpSink {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = std::sync::Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let count = std::sync::Arc::clone(&count);
                std::thread::spawn(move || {
                    let Ok(mut out) = stream.try_clone() else {
                        return;
                    };
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut length = 0usize;
                        let mut line = String::new();
                        loop {
                            line.clear();
                            match reader.read_line(&mut line) {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            if line == "\r\n" {
                                break;
                            }
                            if let Some((k, v)) = line.split_once(':')
                                && k.eq_ignore_ascii_case("content-length")
                            {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let reply = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                        if out.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        OtlpSink { port, received }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Export requests received so far.
    pub fn requests(&self) -> u64 {
        self.received.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A raw async-nats echo service: answers each request on `subject` in its receive
/// loop (no task per request) with the request's payload and, when `headers` gives
/// them, those reply headers.
///
/// # Panics
/// When the subscription or a reply cannot be sent.
#[allow(clippy::expect_used)]
pub async fn spawn_raw_echo(
    client: &async_nats::Client,
    subject: &'static str,
    headers: impl Fn() -> Option<async_nats::HeaderMap> + Send + 'static,
) {
    use futures::StreamExt as _;
    let mut requests = client.subscribe(subject).await.expect("subscribe");
    let responder = client.clone();
    tokio::spawn(async move {
        while let Some(m) = requests.next().await {
            let Some(reply) = m.reply else { continue };
            match headers() {
                Some(h) => responder.publish_with_headers(reply, h, m.payload).await,
                None => responder.publish(reply, m.payload).await,
            }
            .expect("reply");
        }
    });
}

/// Which of our JetStream consumers a bench runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OurConsumer {
    /// `JetStream::consume`, envelopes.
    Envelope,
    /// `Messenger::consume` of `AgentMessage`, no telemetry.
    Typed,
    /// `Messenger::consume` of `AgentMessage` with the `traced` messenger.
    Traced,
}

/// Runs `which` consumer on `filter` (stream `SDK_EVENTS`, durable `durable`, 64
/// handlers that ack at once) until it has handled `n` messages, then stops it.
///
/// # Panics
/// When the consumer cannot start.
#[allow(clippy::expect_used)]
pub async fn consume_n(
    js: &sdk_bus::JetStream,
    typed: &sdk_integration::Messenger,
    traced: &sdk_integration::Messenger,
    which: OurConsumer,
    durable: &str,
    filter: &str,
    n: usize,
) {
    use sdk_bus::{ConsumerSpec, Outcome};
    use sdk_codec::v1::AgentMessage;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let spec = ConsumerSpec::new("SDK_EVENTS", durable)
        .filter_subject(filter)
        .max_ack_pending(1000)
        .concurrency(64);
    let (c, d) = (Arc::clone(&count), Arc::clone(&done));
    let tick = move || {
        if c.fetch_add(1, Ordering::SeqCst) + 1 == n {
            d.notify_one();
        }
    };
    let worker = match which {
        OurConsumer::Envelope => js
            .consume(spec, move |_d| {
                tick();
                async { Outcome::Ack }
            })
            .await
            .expect("consume"),
        OurConsumer::Typed | OurConsumer::Traced => {
            let messenger = if which == OurConsumer::Typed {
                typed
            } else {
                traced
            };
            messenger
                .consume(js, spec, move |_m: AgentMessage, _cx| {
                    tick();
                    async { Outcome::Ack }
                })
                .await
                .expect("consume")
        }
    };
    while count.load(Ordering::SeqCst) < n {
        done.notified().await;
    }
    worker.abort();
}
