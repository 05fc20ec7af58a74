//! Interop with a Python peer (interop/python/peer.py: nats-py, protobuf, msgpack and
//! the OpenTelemetry SDK, at the versions pinned in interop/python/requirements.txt),
//! over a real nats-server and a real OTLP collector:
//!
//! 1. Python calls Rust services in JSON, MessagePack and Protobuf, in CloudEvents
//!    binary and structured mode, and gets typed replies and the 400, 403 and 413
//!    service errors;
//! 2. a Python span is the parent of the Rust process span;
//! 3. Rust calls a Python responder in all three formats;
//! 4. Python publishes into JetStream, a Rust durable consumer processes the messages
//!    and dead-letters a poison one, and Python reads the dead letter;
//! 5. every sdk.v1 type in every format is written by one side and read by the other.
//!
//! The Python peer gets the types from `sdk_codec::FILE_DESCRIPTOR_SET`, written to a
//! file here: no protoc, no generated Python. It exits non-zero naming any mismatch and
//! prints a JSON summary, which the tests check too. See docs/interop.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Signals, telemetry};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt::Debug;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sdk_integration::sdk_bus::jetstream::dead_letter::DeadLetterQuery;
use sdk_integration::sdk_bus::jetstream::stream::Storage;
use sdk_integration::sdk_bus::{
    Bus, BusConfig, BusError, ConsumerSpec, EventSource, JetStreamDelivery, Outcome, ServeOptions,
    Service, ServiceCode, ServiceFailure, StreamSpec, SubjectPattern, TenantId,
};
use sdk_integration::sdk_codec::v1::{
    AgentMessage, AgentTask, Document, DocumentChunk, ErrorInfo, EventMessage, StatusUpdate,
    TaskResult,
};
use sdk_integration::sdk_codec::{Codec, Format, Payload, PayloadMeta, samples};
use sdk_integration::{Error, MessageContext, Messenger};
use sdk_testkit::{Collector, NatsServer, wait_until};
use serde_json::{Value, json};

/// How long one run of the Python peer may take before the test gives up on it.
const PEER_TIMEOUT: Duration = Duration::from_secs(90);
/// How long to wait for something the other side does.
const WAIT: Duration = Duration::from_secs(30);
/// The server's `max_payload` in the service test: small, so that a reply can exceed it.
const MAX_PAYLOAD: u32 = 32 * 1024;
/// The DocumentChunk embedding both sides use, as f32 bit patterns (samples.py has
/// the same list): zero, negative zero, 1, -0.5, 0.1, -pi, the smallest subnormal,
/// and 16777218.
const EMBEDDING_BITS: [u32; 8] = [
    0x0000_0000,
    0x8000_0000,
    0x3F80_0000,
    0xBF00_0000,
    0x3DCC_CCCD,
    0xC049_0FDB,
    0x0000_0001,
    0x4B80_0001,
];
const FORMATS: [Format; 3] = [Format::Json, Format::MessagePack, Format::Protobuf];

// ---- the Python peer as a subprocess ------------------------------------------------

/// The interpreter, the pinned packages, the scripts, and the descriptor set.
struct Python {
    python: OsString,
    pythonpath: OsString,
    script: PathBuf,
    descriptors: PathBuf,
    _dir: tempfile::TempDir,
}

impl Python {
    fn new() -> Python {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let scripts = root.join("interop/python");
        let packages = std::env::var_os("SDK_PYTHONPATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".tools/py"));
        assert!(
            packages.join("nats").is_dir() && packages.join("google/protobuf").is_dir(),
            "the Python peer's packages are not in {} (set SDK_PYTHONPATH, or run \
             `scripts/install-tools`; `scripts/test` does both)",
            packages.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let descriptors = dir.path().join("sdk_v1.binpb");
        std::fs::write(
            &descriptors,
            sdk_integration::sdk_codec::FILE_DESCRIPTOR_SET,
        )
        .unwrap();
        Python {
            python: std::env::var_os("SDK_PYTHON").unwrap_or_else(|| "python3".into()),
            pythonpath: std::env::join_paths([packages, scripts.clone()]).unwrap(),
            script: scripts.join("peer.py"),
            descriptors,
            _dir: dir,
        }
    }

    fn spawn(&self, args: &[&str]) -> Peer {
        let mut command = Command::new(&self.python);
        command
            .arg("-u")
            .arg(&self.script)
            .arg("--descriptors")
            .arg(&self.descriptors)
            .args(args)
            .env("PYTHONPATH", &self.pythonpath)
            .env("PYTHONNOUSERSITE", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The OpenTelemetry SDK reads OTEL_* (OTEL_SDK_DISABLED, a sampler, ...); the
        // peer configures itself from its arguments only.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("OTEL_") {
                command.env_remove(name);
            }
        }
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {:?} (set SDK_PYTHON to a Python 3 interpreter): {e}",
                self.python
            )
        });
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            pump(child.stdout.take().unwrap(), Arc::clone(&stdout)),
            pump(child.stderr.take().unwrap(), Arc::clone(&stderr)),
        ];
        Peer {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            readers,
            what: args.first().copied().unwrap_or_default().to_owned(),
        }
    }

    /// Runs the peer to its end and returns its summary.
    fn run(&self, args: &[&str]) -> Value {
        self.spawn(args).finish()
    }
}

fn pump(stream: impl Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            lines.lock().unwrap().push(line);
        }
    })
}

/// A running peer; killed if dropped before it finished.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    what: String,
}

impl Peer {
    fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout.lock().unwrap().join("\n"),
            self.stderr.lock().unwrap().join("\n")
        )
    }

    /// Waits until the peer prints `line` on stdout.
    fn wait_for_line(&mut self, line: &str) {
        let printed = wait_until(PEER_TIMEOUT, || {
            if self.stdout.lock().unwrap().iter().any(|l| l == line) {
                return Some(true);
            }
            matches!(self.child.try_wait(), Ok(Some(_))).then_some(false)
        });
        if printed != Some(true) {
            panic!(
                "the Python peer ({}) did not print {line:?}\n{}",
                self.what,
                self.output()
            );
        }
    }

    /// Closes stdin, waits for the exit, and returns the summary (the last stdout
    /// line). Panics with the peer's output unless it exited 0.
    fn finish(mut self) -> Value {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let status = wait_until(PEER_TIMEOUT, || self.child.try_wait().ok().flatten());
        let Some(status) = status else {
            panic!(
                "the Python peer ({}) did not finish within {PEER_TIMEOUT:?}\n{}",
                self.what,
                self.output()
            );
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        assert!(
            status.success(),
            "the Python peer ({}) failed with {status}\n{}",
            self.what,
            self.output()
        );
        let last = self
            .stdout
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default();
        // Shown when a test fails (or with --nocapture).
        eprintln!("python peer ({}) summary: {last}", self.what);
        serde_json::from_str(&last).unwrap_or_else(|e| {
            panic!(
                "the Python peer's last line is not a JSON summary ({e})\n{}",
                self.output()
            )
        })
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the peer on a blocking thread, so the Rust services keep running meanwhile.
async fn run_peer(python: Arc<Python>, args: Vec<String>) -> Value {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        python.run(&args)
    })
    .await
    .unwrap()
}

// ---- Rust-side helpers ---------------------------------------------------------------

async fn connect(server: &NatsServer) -> Bus {
    Bus::connect(
        BusConfig::builder()
            .servers(&server.url())
            .request_timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
    )
    .await
    .unwrap()
}

/// The peer does not speak zstd (no pinned Python zstd package): compression off. The
/// samples are far below the codec's 8 KiB threshold anyway.
fn codec(format: Format) -> Codec {
    Codec::builder()
        .format(format)
        .compression(None)
        .build()
        .unwrap()
}

/// The only call of `Messenger::serve` in this file: adapt here when it takes options.
async fn serve<T, R, F, Fut>(messenger: &Messenger, pattern: &SubjectPattern, handler: F) -> Service
where
    T: Payload,
    R: Payload,
    F: Fn(T, MessageContext) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<R, ServiceFailure>> + Send + 'static,
{
    messenger
        .serve(pattern, ServeOptions::new().concurrency(4), handler)
        .await
        .unwrap()
}

fn document_chunk() -> DocumentChunk {
    let mut chunk = samples::document_chunk(EMBEDDING_BITS.len());
    chunk.embedding = EMBEDDING_BITS.iter().map(|b| f32::from_bits(*b)).collect();
    chunk
}

fn format_key(format: Format) -> &'static str {
    match format {
        Format::Json => "json",
        Format::MessagePack => "msgpack",
        _ => "protobuf",
    }
}

/// Text that zstd cannot shrink much: the 413 reply stays over `max_payload` even if
/// the service's codec compressed it.
fn noise(len: usize) -> String {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                    [(x % 62) as usize],
            )
        })
        .collect()
}

fn str_of<'a>(v: &'a Value, path: &str) -> &'a str {
    v.pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("the summary has no string at {path}: {v}"))
}

// ---- 1 and 2 ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_calls_rust_services_and_continues_its_trace() {
    let python = Arc::new(Python::new());
    let server = NatsServer::builder().max_payload(MAX_PAYLOAD).start();
    let collector = Collector::start();
    let otel = telemetry("rust-service", &collector, Signals::Traces);
    let acme = TenantId::new("acme").unwrap();

    // One service per reply format; each reads requests in any format.
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut services = Vec::new();
    let mut buses = Vec::new();
    for format in FORMATS {
        let key = format_key(format);
        let bus = connect(&server).await;
        let messenger = Messenger::new(
            bus.clone(),
            codec(format),
            EventSource::new(&acme, "interop", &format!("rust-{key}")).unwrap(),
        )
        .with_telemetry(&otel);
        let seen = Arc::clone(&seen);
        let pattern = SubjectPattern::all_tenants("interop", key).unwrap();
        services.push(
            serve(
                &messenger,
                &pattern,
                move |task: AgentTask, context: MessageContext| {
                    let seen = Arc::clone(&seen);
                    async move {
                        let content_type = context.content_type;
                        seen.lock()
                            .unwrap()
                            .push((task.task_id.clone(), content_type));
                        if task.task_type == "oversized" {
                            // Four times the server's max_payload: the bus must turn the
                            // reply into a 413 error reply.
                            return Ok(TaskResult {
                                task_id: task.task_id,
                                model: noise(4 * MAX_PAYLOAD as usize),
                                ..samples::task_result()
                            });
                        }
                        let expected = AgentTask {
                            task_id: task.task_id.clone(),
                            ..samples::agent_task()
                        };
                        if task != expected {
                            return Err(ServiceFailure::new(
                                ServiceCode::BadRequest,
                                format!("the request is not samples::agent_task(): {task:?}"),
                            ));
                        }
                        Ok(TaskResult {
                            task_id: task.task_id,
                            ..samples::task_result()
                        })
                    }
                },
            )
            .await,
        );
        buses.push(bus);
    }

    let summary = run_peer(
        Arc::clone(&python),
        vec![
            "client".into(),
            "--nats".into(),
            server.url(),
            "--otlp".into(),
            collector.http_endpoint(),
        ],
    )
    .await;

    // 1. Every request arrived in the format it was sent in, and got its typed reply
    //    in the format it used or, with `accept`, asked for.
    let mut expected_ids = BTreeSet::new();
    let mut expected_seen = BTreeSet::new();
    for service in ["json", "msgpack", "protobuf"] {
        for mode in ["binary", "structured", "accept"] {
            for format in FORMATS {
                let id = format!("t-{service}-{mode}-{}", format_key(format));
                expected_seen.insert((id.clone(), format.content_type().to_owned()));
                expected_ids.insert(id);
            }
        }
    }
    let replied: BTreeSet<String> = summary["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["task_id"].as_str().unwrap().to_owned())
        .collect();
    expected_ids.insert("t-traced".into());
    assert_eq!(replied, expected_ids, "the replies the peer checked");
    let seen: BTreeSet<(String, String)> = seen.lock().unwrap().iter().cloned().collect();
    expected_seen.insert(("t-traced".into(), "application/json".into()));
    expected_seen.insert(("t-oversized".into(), "application/json".into()));
    assert_eq!(seen, expected_seen, "what the Rust handlers were given");

    // The error replies, as the peer read them from the Nats-Service-Error headers.
    let errors = &summary["errors"];
    for (name, code) in [
        ("undecodable msgpack", 400),
        ("undecodable protobuf", 400),
        ("invalid task", 400),
        ("broken structured event", 400),
        ("tenant mismatch", 403),
        ("reply too large", 413),
    ] {
        assert_eq!(errors[name]["code"], json!(code), "{name}: {errors}");
    }
    assert!(
        str_of(errors, "/reply too large/message")
            .contains(&format!("max_payload of {MAX_PAYLOAD}")),
        "{errors}"
    );
    // The JSON service's connection saw the tenant mismatch and the broken envelope.
    let stats = buses[0].stats();
    assert_eq!(stats.tenant_mismatches, 1, "{stats:?}");
    assert_eq!(stats.rejected, 1, "{stats:?}");

    // 2. The Rust process span continues the Python span's trace.
    for service in &services {
        service.abort();
    }
    otel.shutdown(Duration::from_secs(10)).unwrap();
    let trace_id = str_of(&summary, "/trace/trace_id").to_owned();
    let python_span_id = str_of(&summary, "/trace/span_id").to_owned();
    let python_span = collector.wait_for(WAIT, "the Python span", |r| {
        r.spans
            .iter()
            .find(|s| s.span_id == python_span_id)
            .cloned()
    });
    assert_eq!(python_span.trace_id, trace_id);
    assert_eq!(python_span.kind, "SPAN_KIND_CLIENT");
    assert_eq!(python_span.resource["service.name"], "python-peer");
    let process = collector.wait_for(WAIT, "the Rust process span of the traced request", |r| {
        r.spans_named("process sdk.{tenant}.interop.json")
            .into_iter()
            .find(|s| s.trace_id == trace_id)
            .cloned()
    });
    assert_eq!(
        process.parent_id, python_span_id,
        "the Rust span's parent is the Python span"
    );
    assert_eq!(
        process.span_id,
        str_of(&summary, "/trace/reply_span_id"),
        "the reply's traceparent names the Rust process span"
    );
    assert_eq!(process.kind, "SPAN_KIND_CONSUMER");
    assert_eq!(process.resource["service.name"], "rust-service");
    assert_eq!(
        process.attributes["messaging.destination.name"],
        "sdk.acme.interop.json"
    );
    assert_eq!(process.attributes["sdk.tenant.id"], "acme");
}

// ---- 3 -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_calls_a_python_responder_in_every_format() {
    let python = Python::new();
    let server = NatsServer::start();
    let mut peer = python.spawn(&["responder", "--nats", &server.url()]);
    peer.wait_for_line("READY");

    let acme = TenantId::new("acme").unwrap();
    let subject = acme.scope().component("pyagent", "run").unwrap();
    let bus = connect(&server).await;
    for format in FORMATS {
        let messenger = Messenger::new(
            bus.clone(),
            codec(format),
            EventSource::new(&acme, "agent", &format!("rust-{}", format_key(format))).unwrap(),
        );
        let result: TaskResult = messenger
            .request(&subject, "sdk.pyagent.run", &samples::agent_task())
            .await
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(result, samples::task_result(), "{format:?}");
    }

    // The raw reply: a complete CloudEvent in binary mode.
    let messenger = Messenger::new(
        bus.clone(),
        codec(Format::Protobuf),
        EventSource::new(&acme, "agent", "rust-raw").unwrap(),
    );
    let request = messenger
        .envelope("sdk.pyagent.run", &samples::agent_task())
        .unwrap();
    let request_id = request.id().unwrap().into_owned();
    let reply = bus.request(&subject, request).await.unwrap();
    reply.check_required().unwrap();
    assert_eq!(reply.tenant_id().as_deref(), Some("acme"));
    assert_eq!(reply.source().as_deref(), Some("/acme/pyagent/py-1"));
    assert_eq!(
        reply.data_content_type().as_deref(),
        Some("application/protobuf")
    );
    assert_eq!(
        reply.data_schema().as_deref(),
        Some("urn:sdk:schema:sdk.v1.TaskResult:v1")
    );
    assert_eq!(reply.correlation_id().as_deref(), Some(request_id.as_str()));
    let decoded: TaskResult = messenger.decode(&reply).unwrap();
    assert_eq!(decoded, samples::task_result());

    // A Python error reply reaches Rust as a service error with its code and text.
    let refused = AgentTask {
        task_id: "t-fail".into(),
        task_type: "fail".into(),
        ..samples::agent_task()
    };
    let err = messenger
        .request::<_, TaskResult>(&subject, "sdk.pyagent.run", &refused)
        .await
        .unwrap_err();
    match err {
        Error::Bus(BusError::ServiceError { code, message }) => {
            assert_eq!(code, 503);
            assert_eq!(message, "the python peer refuses task t-fail");
        }
        other => panic!("expected a 503 service error, got {other:?}"),
    }

    let summary = tokio::task::spawn_blocking(move || peer.finish())
        .await
        .unwrap();
    assert_eq!(
        summary["answered"],
        json!({"application/json": 1, "application/msgpack": 1, "application/protobuf": 2})
    );
    assert_eq!(summary["refused"], json!(["t-fail"]));
}

// ---- 4 -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_publishes_to_jetstream_and_reads_the_rust_dead_letter() {
    let python = Arc::new(Python::new());
    let server = NatsServer::builder().jetstream().start();
    let acme = TenantId::new("acme").unwrap();
    let bus = connect(&server).await;
    let js = bus.jetstream().unwrap();
    let events = StreamSpec::events()
        .for_tenant(&acme)
        .storage(Storage::Memory);
    assert_eq!(events.name, "SDK_EVENTS_acme");
    js.ensure_stream(&events).await.unwrap();
    js.ensure_stream(&StreamSpec::dead_letters().storage(Storage::Memory))
        .await
        .unwrap();

    let messenger = Messenger::new(
        bus.clone(),
        Codec::default(),
        EventSource::new(&acme, "interop", "rust-worker").unwrap(),
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let spec = ConsumerSpec::new(&events.name, "interop-worker").concurrency(2);
    let worker = js
        .consume(spec, move |delivery: JetStreamDelivery| {
            let (messenger, tx) = (messenger.clone(), tx.clone());
            async move {
                match messenger.decode::<EventMessage>(&delivery.envelope) {
                    Ok(event) => {
                        let content_type = delivery
                            .envelope
                            .data_content_type()
                            .unwrap_or_default()
                            .into_owned();
                        let _ = tx.send((event, content_type, delivery.delivered));
                        Outcome::Ack
                    }
                    Err(e) => Outcome::Reject(format!("undecodable EventMessage: {e}")),
                }
            }
        })
        .await
        .unwrap();

    let summary = run_peer(
        Arc::clone(&python),
        vec!["jetstream".into(), "--nats".into(), server.url()],
    )
    .await;
    assert_eq!(
        summary["published"],
        json!(["e-json", "e-msgpack", "e-protobuf"])
    );
    assert_eq!(summary["duplicate"]["duplicate"], json!(true));
    assert_eq!(
        summary["stream_messages"],
        json!(4),
        "three events and the poison one; the duplicate was not stored"
    );
    assert_eq!(
        summary["dead_letter"]["subject"],
        json!("sdk.acme.dlq.events.interop.poison")
    );

    // The Rust consumer decoded each event once, in the format it was published in.
    let mut got = Vec::new();
    while got.len() < 3 {
        let next = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("the Rust consumer did not process the three events")
            .unwrap();
        got.push(next);
    }
    got.sort_by(|a, b| a.0.event_id.cmp(&b.0.event_id));
    for ((event, content_type, delivered), format) in got.iter().zip(FORMATS) {
        let key = format_key(format);
        let expected = EventMessage {
            event_id: format!("e-{key}"),
            ..samples::event_message()
        };
        assert_eq!(event, &expected);
        assert_eq!(content_type, format.content_type());
        assert_eq!(*delivered, 1);
    }

    // The dead letter, from the Rust side too.
    let letters = js
        .dead_letters("SDK_DLQ", &DeadLetterQuery::new().tenant(&acme))
        .await
        .unwrap()
        .letters;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(
        letter.original_subject.as_deref(),
        Some("sdk.acme.events.interop.poison")
    );
    assert_eq!(letter.consumer.as_deref(), Some("interop-worker"));
    assert_eq!(letter.deliveries, Some(1));
    let reason = letter.reason.clone().unwrap_or_default();
    assert!(reason.starts_with("undecodable EventMessage"), "{reason}");
    let original = letter.envelope().unwrap();
    assert_eq!(
        original.payload().as_ref(),
        br#"{"eventId": "e-poison", "eventType": "#
    );
    assert_eq!(
        original.id().as_deref(),
        summary["dead_letter"]["ce_id"].as_str()
    );
    worker.abort();
}

// ---- 5 ---------------------------------------------------------------------------------------

/// Writes `value` in every format into `dir`, listing each file in `entries`.
fn write_all<T: Payload>(
    codec: &Codec,
    dir: &Path,
    name: &str,
    value: &T,
    entries: &mut Vec<Value>,
) {
    for format in FORMATS {
        let encoded = codec.encode_as(value, format).unwrap();
        assert_eq!(encoded.content_encoding, None);
        let file = format!("{name}.{}", format_key(format));
        std::fs::write(dir.join(&file), &encoded.bytes).unwrap();
        entries.push(json!({
            "type": name,
            "format": format_key(format),
            "content_type": encoded.content_type,
            "schema": encoded.schema.unwrap().to_string(),
            "file": file,
        }));
    }
}

/// Decodes what the peer wrote and compares it with the Rust sample.
fn read_one<T: Payload + PartialEq + Debug>(
    codec: &Codec,
    bytes: Vec<u8>,
    meta: &PayloadMeta<'_>,
    expected: &T,
) -> T {
    let value: T = codec
        .decode(bytes.into(), meta)
        .unwrap_or_else(|e| panic!("{meta:?}: {e}"));
    assert_eq!(&value, expected, "{meta:?}");
    value
}

#[test]
fn every_sdk_v1_type_in_every_format_crosses_both_ways() {
    let python = Python::new();
    let dir = tempfile::tempdir().unwrap();
    let (rust_dir, python_dir) = (dir.path().join("rust"), dir.path().join("python"));
    std::fs::create_dir(&rust_dir).unwrap();
    let codec = codec(Format::Json);

    let mut entries = Vec::new();
    write_all(
        &codec,
        &rust_dir,
        "AgentMessage",
        &samples::agent_message(),
        &mut entries,
    );
    write_all(
        &codec,
        &rust_dir,
        "AgentTask",
        &samples::agent_task(),
        &mut entries,
    );
    write_all(
        &codec,
        &rust_dir,
        "TaskResult",
        &samples::task_result(),
        &mut entries,
    );
    write_all(
        &codec,
        &rust_dir,
        "EventMessage",
        &samples::event_message(),
        &mut entries,
    );
    write_all(
        &codec,
        &rust_dir,
        "Document",
        &samples::document(),
        &mut entries,
    );
    write_all(
        &codec,
        &rust_dir,
        "DocumentChunk",
        &document_chunk(),
        &mut entries,
    );
    write_all(
        &codec,
        &rust_dir,
        "StatusUpdate",
        &samples::status_update(),
        &mut entries,
    );
    write_all(
        &codec,
        &rust_dir,
        "ErrorInfo",
        &samples::error_info(),
        &mut entries,
    );
    assert_eq!(entries.len(), 24);
    std::fs::write(
        rust_dir.join("manifest.json"),
        json!({ "entries": entries }).to_string(),
    )
    .unwrap();

    let summary = python.run(&[
        "corpus",
        "--read",
        rust_dir.to_str().unwrap(),
        "--write",
        python_dir.to_str().unwrap(),
    ]);
    assert_eq!(summary["read"], json!(24), "{summary}");
    assert_eq!(summary["written"], json!(24), "{summary}");

    // What Python wrote, read by the Rust codec.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(python_dir.join("manifest.json")).unwrap()).unwrap();
    let mut seen = BTreeSet::new();
    for entry in manifest["entries"].as_array().unwrap() {
        let (name, format) = (str_of(entry, "/type"), str_of(entry, "/format"));
        let bytes = std::fs::read(python_dir.join(str_of(entry, "/file"))).unwrap();
        let content_type = str_of(entry, "/content_type");
        assert_eq!(
            content_type.parse::<Format>().ok().map(format_key),
            Some(format),
            "{entry}"
        );
        let meta = PayloadMeta::new(content_type).with_schema(Some(str_of(entry, "/schema")));
        match name {
            "AgentMessage" => {
                read_one::<AgentMessage>(&codec, bytes, &meta, &samples::agent_message());
            }
            "AgentTask" => {
                read_one::<AgentTask>(&codec, bytes, &meta, &samples::agent_task());
            }
            "TaskResult" => {
                read_one::<TaskResult>(&codec, bytes, &meta, &samples::task_result());
            }
            "EventMessage" => {
                read_one::<EventMessage>(&codec, bytes, &meta, &samples::event_message());
            }
            "Document" => {
                read_one::<Document>(&codec, bytes, &meta, &samples::document());
            }
            "DocumentChunk" => {
                let chunk = read_one::<DocumentChunk>(&codec, bytes, &meta, &document_chunk());
                // Bit for bit: `==` on f32 would let -0.0 pass for 0.0.
                let bits: Vec<u32> = chunk.embedding.iter().map(|f| f.to_bits()).collect();
                assert_eq!(bits, EMBEDDING_BITS, "{format}");
            }
            "StatusUpdate" => {
                read_one::<StatusUpdate>(&codec, bytes, &meta, &samples::status_update());
            }
            "ErrorInfo" => {
                read_one::<ErrorInfo>(&codec, bytes, &meta, &samples::error_info());
            }
            other => panic!("the peer wrote an unknown type {other}"),
        }
        seen.insert((name.to_owned(), format.to_owned()));
    }
    assert_eq!(seen.len(), 24, "{seen:?}");
}

// ---- 6 ---------------------------------------------------------------------------------------

/// A client we did not write, nats-py's `micro` module, discovers a Rust service and
/// reads its stats: requests, errors and the last error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_discovers_a_rust_service_with_the_micro_protocol() {
    let python = Arc::new(Python::new());
    let server = NatsServer::start();
    let acme = TenantId::new("acme").unwrap();
    let messenger = Messenger::new(
        connect(&server).await,
        Codec::builder().format(Format::Json).build().unwrap(),
        EventSource::new(&acme, "interop", "rust-micro").unwrap(),
    );
    let subject = "sdk.acme.interop.micro";
    let service = messenger
        .serve(
            &SubjectPattern::new(subject).unwrap(),
            ServeOptions::new().service(
                sdk_integration::sdk_bus::MicroService::new("interop-echo", "1.0.0")
                    .description("echoes for interop"),
            ),
            |task: AgentTask, _cx: MessageContext| async move { Ok(task) },
        )
        .await
        .unwrap();
    let summary = run_peer(
        Arc::clone(&python),
        vec![
            "micro".into(),
            "--nats".into(),
            server.url(),
            "--name".into(),
            "interop-echo".into(),
            "--subject".into(),
            subject.into(),
        ],
    )
    .await;
    assert_eq!(summary["ping"]["name"], json!("interop-echo"));
    assert_eq!(summary["endpoints"], json!([subject]));
    // Two answered, one that could not be decoded (400), which is the last error.
    assert_eq!(summary["stats"]["requests"], json!(3));
    assert_eq!(summary["stats"]["errors"], json!(1));
    let last = summary["stats"]["last_error"].as_str().unwrap();
    assert!(last.starts_with("400:"), "{last}");
    service.abort();
}
