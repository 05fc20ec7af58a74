//! `scripts/dev`: it starts nats-server with JetStream and the collector on free
//! loopback ports, prints the variables to export, and stops both on Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sdk_testkit::wait_until;

/// What `scripts/dev` printed before the collector's own output.
struct Printed {
    exports: HashMap<String, String>,
    comments: Vec<String>,
}

impl Printed {
    /// The value after `label` in a `# <label>...` comment line.
    fn comment_after(&self, label: &str) -> &str {
        self.comments
            .iter()
            .find_map(|c| c.strip_prefix(label))
            .unwrap_or_else(|| panic!("no comment {label:?} in {:?}", self.comments))
            .trim()
    }

    fn port_of(url: &str) -> u16 {
        url.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url}"))
    }
}

/// The script, its stdout lines (read on a thread), and a kill on drop.
struct Dev {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Dev {
    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on the child this test spawned; no memory is touched.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        // A failed test still stops the servers: SIGTERM runs the script's trap.
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal(libc::SIGTERM);
            let _ = wait_until(Duration::from_secs(15), || {
                self.child.try_wait().ok().flatten()
            });
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/dev")
}

fn start() -> Dev {
    let mut child = Command::new("bash")
        .arg(script())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn scripts/dev");
    let out = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Dev { child, lines }
}

/// Reads stdout until the `# pids:` line, which ends the printed block.
fn read_block(dev: &Dev) -> Printed {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut printed = Printed {
        exports: HashMap::new(),
        comments: Vec::new(),
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = dev
            .lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("scripts/dev printed no `# pids:` line ({e})"));
        if let Some(export) = line.strip_prefix("export ") {
            let (k, v) = export.split_once('=').expect("export K=V");
            printed.exports.insert(k.to_owned(), v.to_owned());
        } else if let Some(comment) = line.strip_prefix("# ") {
            printed.comments.push(comment.to_owned());
            if comment.starts_with("pids:") {
                return printed;
            }
        }
    }
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

fn process_gone(pid: u32) -> bool {
    // Gone, or a zombie that nobody will run again.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn the_dev_stack_starts_both_servers_prints_the_variables_and_stops_on_ctrl_c() {
    let mut dev = start();
    let printed = read_block(&dev);

    // The three variables, on loopback ports.
    let nats_url = &printed.exports["NATS_URL"];
    let otlp = &printed.exports["OTEL_EXPORTER_OTLP_ENDPOINT"];
    assert!(nats_url.starts_with("nats://127.0.0.1:"), "{nats_url}");
    assert!(otlp.starts_with("http://127.0.0.1:"), "{otlp}");
    assert_eq!(printed.exports["OTEL_EXPORTER_OTLP_PROTOCOL"], "grpc");
    let nats_port = Printed::port_of(nats_url);
    let grpc_port = Printed::port_of(otlp);
    let monitor_port = Printed::port_of(
        printed
            .comment_after("NATS monitoring:")
            .split(' ')
            .next()
            .unwrap(),
    );
    let http_port = Printed::port_of(
        printed
            .comment_after("OTLP over HTTP:")
            .split(' ')
            .next()
            .unwrap(),
    );
    let pids = printed.comment_after("pids:").to_owned();
    let (nats_pid, rotel_pid) = match pids.split_whitespace().collect::<Vec<_>>()[..] {
        ["nats-server", n, "rotel-agent", r] => (
            n.trim_end_matches(',').parse::<u32>().unwrap(),
            r.parse::<u32>().unwrap(),
        ),
        _ => panic!("unexpected pids line {pids:?}"),
    };
    let log = PathBuf::from(printed.comment_after("nats-server log:"));
    let state_dir = log.parent().unwrap().to_owned();

    // NATS answers: healthy, JetStream on, and the client port speaks NATS.
    let (status, _) = http_get(monitor_port, "/healthz").expect("healthz");
    assert_eq!(status, 200);
    let (_, jsz) = http_get(monitor_port, "/jsz").expect("jsz");
    let jsz: serde_json::Value = serde_json::from_str(&jsz).unwrap();
    assert!(
        jsz["config"]["store_dir"]
            .as_str()
            .is_some_and(|d| d.starts_with(state_dir.to_str().unwrap())),
        "{jsz}"
    );
    let mut client = TcpStream::connect(("127.0.0.1", nats_port)).expect("nats port");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut info = String::new();
    BufReader::new(&mut client).read_line(&mut info).unwrap();
    assert!(info.starts_with("INFO {"), "{info}");
    assert!(info.contains("\"jetstream\":true"), "{info}");
    drop(client);
    // The collector listens on both OTLP ports.
    for port in [grpc_port, http_port] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "collector port {port}"
        );
    }

    // Ctrl-C: the script stops both servers, waits for them, and exits 0.
    dev.signal(libc::SIGINT);
    let status = wait_until(Duration::from_secs(30), || dev.child.try_wait().unwrap())
        .expect("scripts/dev did not exit within 30 s of SIGINT");
    assert!(status.success(), "scripts/dev exited with {status}");
    for (name, pid) in [("nats-server", nats_pid), ("rotel-agent", rotel_pid)] {
        assert!(process_gone(pid), "{name} (pid {pid}) still runs");
    }
    for port in [nats_port, monitor_port, grpc_port, http_port] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still answers"
        );
    }
    assert!(
        !state_dir.exists(),
        "{} was not removed",
        state_dir.display()
    );
}
