//! docs/production.md: its NATS configuration blocks, read out of the page, run as a
//! 3-node cluster on loopback, and checked through the bus.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use sdk_bus::{
    Auth, Bus, BusConfig, BusEvent, ConsumerSpec, Outcome, Secret, StreamSpec, SubjectPattern,
    SubscribeError, Tls,
};
use sdk_testkit::{TlsMaterial, Tool, free_port, locate, wait_until};
use tempfile::TempDir;

const GUIDE: &str = include_str!("../../../docs/production.md");
const USERS: [&str; 4] = ["alpha", "beta", "rag", "platform"];

/// The fenced block that follows `<!-- test: <name> -->` in the guide.
fn block(name: &str) -> String {
    let marker = format!("<!-- test: {name} -->");
    let at = GUIDE
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/production.md has no {marker}"));
    let rest = &GUIDE[at + marker.len()..];
    let fence = rest.find("```").expect("a fenced block after the marker");
    let body = fence + rest[fence..].find('\n').expect("fence line") + 1;
    let end = body + rest[body..].find("\n```").expect("closing fence");
    rest[body..=end].to_owned()
}

/// Replaces `from` with `to`, and fails if the block no longer holds `from`: the test
/// would otherwise run something other than what the guide shows.
fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the guide's block no longer contains {from:?}:\n{text}"
    );
    text.replace(from, to)
}

fn password(user: &str) -> String {
    format!("{user}-pw")
}

struct Ports {
    client: u16,
    monitor: u16,
    cluster: u16,
}

/// One node of the guide's cluster. Dropping it kills the process.
struct Node {
    child: Child,
    log: PathBuf,
    ports: Ports,
}

impl Node {
    fn log(&self) -> String {
        let mut out = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut out);
        }
        out
    }

    fn monitor(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.ports.monitor)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, response.split_once("\r\n\r\n")?.1.to_owned()))
    }

    fn json(&self, path: &str) -> Option<serde_json::Value> {
        serde_json::from_str(&self.monitor(path)?.1).ok()
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The guide's two files for node `i`, with loopback ports and temporary paths.
fn write_config(dir: &Path, tls: &Path, i: usize, all: &[Ports]) -> PathBuf {
    let mut conf = block("nats-server.conf");
    for (j, ports) in all.iter().enumerate() {
        conf = swap(
            &conf,
            &format!("nats-route://nats-{}:6222", j + 1),
            &format!("nats-route://127.0.0.1:{}", ports.cluster),
        );
    }
    let me = &all[i - 1];
    conf = swap(
        &conf,
        "server_name: nats-1",
        &format!("server_name: nats-{i}"),
    );
    conf = swap(
        &conf,
        "listen: 0.0.0.0:4222",
        &format!("listen: 127.0.0.1:{}", me.client),
    );
    conf = swap(
        &conf,
        "http: 0.0.0.0:8222",
        &format!("http: 127.0.0.1:{}", me.monitor),
    );
    conf = swap(
        &conf,
        "listen: 0.0.0.0:6222",
        &format!("listen: 127.0.0.1:{}", me.cluster),
    );
    conf = swap(&conf, "/etc/nats/tls/", &format!("{}/", tls.display()));
    let node_dir = dir.join(format!("nats-{i}"));
    std::fs::create_dir_all(&node_dir).unwrap();
    conf = swap(
        &conf,
        "/var/lib/nats/jetstream",
        &node_dir.join("jetstream").display().to_string(),
    );
    std::fs::write(
        node_dir.join("authorization.conf"),
        block("authorization.conf"),
    )
    .unwrap();
    let path = node_dir.join("nats-server.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

fn start_node(config: &Path, ports: Ports) -> Node {
    let log = config.with_file_name("nats-server.log");
    let out = File::create(&log).unwrap();
    let mut command = Command::new(locate(Tool::NatsServer).unwrap_or_else(|e| panic!("{e}")));
    command
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    // The guide's passwords come from the server's environment.
    for user in USERS {
        command.env(format!("{}_PASSWORD", user.to_uppercase()), password(user));
    }
    Node {
        child: command.spawn().expect("spawn nats-server"),
        log,
        ports,
    }
}

/// Three nodes from the guide's files, healthy, routed, with a JetStream meta leader.
fn start_cluster(dir: &Path, tls: &Path) -> Vec<Node> {
    let mut last = String::new();
    for _ in 0..3 {
        let ports: Vec<Ports> = (0..3)
            .map(|_| Ports {
                client: free_port(),
                monitor: free_port(),
                cluster: free_port(),
            })
            .collect();
        let configs: Vec<PathBuf> = (1..=3).map(|i| write_config(dir, tls, i, &ports)).collect();
        let mut nodes: Vec<Node> = configs
            .iter()
            .zip(ports)
            .map(|(config, ports)| start_node(config, ports))
            .collect();
        let formed = wait_until(Duration::from_secs(60), || {
            if nodes.iter_mut().any(|n| !n.running()) {
                return Some(false);
            }
            let ready = nodes.iter().all(|n| {
                let healthy = n.monitor("/healthz").is_some_and(|(s, _)| s == 200);
                let routed = n
                    .json("/routez")
                    .and_then(|r| r["num_routes"].as_u64())
                    .is_some_and(|r| r >= 2);
                let meta = n.json("/jsz").is_some_and(|j| {
                    j["meta_cluster"]["cluster_size"].as_u64() == Some(3)
                        && j["meta_cluster"]["leader"]
                            .as_str()
                            .is_some_and(|l| !l.is_empty())
                });
                healthy && routed && meta
            });
            ready.then_some(true)
        });
        let logs: String = nodes
            .iter()
            .map(|n| format!("--- {}\n{}", n.log.display(), n.log()))
            .collect();
        match formed {
            Some(true) => return nodes,
            _ if logs.contains("address already in use") => last = logs,
            _ => panic!("the guide's cluster did not form; the logs:\n{logs}"),
        }
    }
    panic!("the cluster could not find free ports:\n{last}");
}

async fn connect(nodes: &[Node], tls: &TlsMaterial, user: &str) -> Bus {
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| format!("tls://127.0.0.1:{}", n.ports.client))
        .collect();
    let mut config = BusConfig::builder()
        .servers(&urls.join(","))
        .auth(Auth::UserPassword {
            user: user.into(),
            password: Secret::new(password(user)),
        })
        .tls(
            Tls::default()
                .required()
                .ca(tls.ca_cert.clone())
                .client_cert(tls.client_cert.clone(), tls.client_key.clone()),
        )
        .request_timeout(Duration::from_secs(5));
    if user == "rag" {
        config = config.inbox_tenant(&tenant("rag"));
    }
    Bus::connect(config.build().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_cluster_forms_and_keeps_tenants_apart() {
    let dir = TempDir::new().unwrap();
    let tls = TlsMaterial::generate(&dir.path().join("tls"));
    // The guide's file names: server.pem, server-key.pem and ca.pem.
    let nodes = start_cluster(dir.path(), &dir.path().join("tls"));
    for node in &nodes {
        let varz = node.json("/varz").unwrap();
        assert_eq!(varz["max_payload"], 1_048_576);
        assert_eq!(varz["cluster"]["name"], "sdk");
        assert!(varz["tls_required"].as_bool().unwrap_or(false), "{varz}");
        // The routes between the nodes: TLS, each side verifying the other.
        let cluster = &varz["cluster"];
        assert_eq!(cluster["tls_required"], true, "{cluster}");
        assert_eq!(cluster["tls_verify"], true, "{cluster}");
    }

    let alpha = connect(&nodes, &tls, "alpha").await;
    let beta = connect(&nodes, &tls, "beta").await;
    assert_eq!(alpha.server_details().max_payload, 1_048_576);

    // A tenant uses its own subjects.
    let mut own = alpha
        .subscribe(&tenant("alpha").scope().pattern(&["events", ">"]).unwrap())
        .await
        .unwrap();
    let own_subject = tenant("alpha").scope().event("task.completed").unwrap();
    alpha
        .publish_and_flush(&own_subject, envelope("alpha", "mine"))
        .await
        .unwrap();
    assert_eq!(body(&next(&mut own).await), "mine");

    // It cannot subscribe to another tenant.
    let mut foreign = alpha
        .subscribe(&SubjectPattern::new("sdk.beta.>").unwrap())
        .await
        .unwrap();
    let refused = tokio::time::timeout(WAIT, foreign.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(refused, SubscribeError::PermissionDenied { .. }),
        "{refused:?}"
    );

    // It cannot publish into another tenant; the other tenant never sees it.
    let mut beta_events = beta
        .subscribe(&tenant("beta").scope().pattern(&["events", ">"]).unwrap())
        .await
        .unwrap();
    beta.flush().await.unwrap();
    let mut alpha_events = alpha.events();
    let target = tenant("beta").scope().event("task.completed").unwrap();
    alpha
        .publish_and_flush(&target, envelope("beta", "forged"))
        .await
        .unwrap();
    let subject = wait_event(&mut alpha_events, |e| match e {
        BusEvent::PermissionViolation { subject, .. } => Some(subject.clone()),
        _ => None,
    })
    .await;
    assert_eq!(subject, "sdk.beta.events.task.completed");
    beta.publish_and_flush(&target, envelope("beta", "genuine"))
        .await
        .unwrap();
    assert_eq!(body(&next(&mut beta_events).await), "genuine");

    // The shared service answers each tenant.
    let rag = connect(&nodes, &tls, "rag").await;
    let service = rag
        .serve(
            &SubjectPattern::all_tenants("rag", "query").unwrap(),
            ServeOptions::new().group("rag"),
            |d| async move {
                let t = d.subject.tenant().as_str().to_owned();
                Ok(envelope(&t, &format!("results for {t}")))
            },
        )
        .await
        .unwrap();
    rag.flush().await.unwrap();
    for (t, bus) in [("alpha", &alpha), ("beta", &beta)] {
        // The service's interest reaches the other nodes over the routes a moment
        // after its own node has it: until then a request may find no responders.
        let reply = tokio::time::timeout(WAIT, async {
            loop {
                match bus
                    .request(
                        &tenant(t).scope().component("rag", "query").unwrap(),
                        envelope(t, "q"),
                    )
                    .await
                {
                    Err(sdk_bus::RequestError::NoResponders { .. }) => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    other => return other.unwrap(),
                }
            }
        })
        .await
        .expect("the service's interest reached every node");
        assert_eq!(body_of(&reply), format!("results for {t}"));
    }

    // The platform runs JetStream with 3 replicas: streams, an acked publish, a
    // durable consumer, and a KV bucket.
    let platform = connect(&nodes, &tls, "platform").await;
    let js = platform.jetstream().unwrap();
    for spec in [StreamSpec::events(), StreamSpec::dead_letters()] {
        js.ensure_stream(&spec.replicas(3)).await.unwrap();
    }
    let ack = js
        .publish(&own_subject, envelope("alpha", "stored"))
        .await
        .unwrap();
    assert_eq!(ack.stream, "SDK_EVENTS");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let worker = js
        .consume(ConsumerSpec::new("SDK_EVENTS", "auditor"), move |d| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(String::from_utf8_lossy(d.envelope.payload()).into_owned());
                Outcome::Ack
            }
        })
        .await
        .unwrap();
    let got = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, "stored");
    let state = js.state_store("sdk_workflow_state", 3).await.unwrap();
    state
        .create("wf-1", bytes::Bytes::from_static(b"started"))
        .await
        .unwrap();
    // Each of the three is replicated on all three nodes.
    let raw = async_nats::jetstream::new(platform.nats_client().unwrap().clone());
    for name in ["SDK_EVENTS", "SDK_DLQ", "KV_sdk_workflow_state"] {
        let mut stream = raw.get_stream(name).await.unwrap();
        let info = stream.info().await.unwrap();
        assert_eq!(info.config.num_replicas, 3, "{name}");
    }

    // A tenant cannot call the JetStream API.
    let refused = alpha
        .jetstream()
        .unwrap()
        .ensure_stream(&StreamSpec::events().for_tenant(&tenant("alpha")))
        .await;
    let err = refused.expect_err("a tenant created a stream");
    // Whatever the client made of the refusal, no node holds such a stream.
    for node in &nodes {
        let streams = node.json("/jsz?streams=true").unwrap().to_string();
        assert!(
            !streams.contains("SDK_EVENTS_alpha"),
            "the stream exists after {err}: {streams}"
        );
    }

    worker.abort();
    service.abort();
}
