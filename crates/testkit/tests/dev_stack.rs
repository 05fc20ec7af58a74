//! `scripts/dev`: it starts nats-server with JetStream and the collector on free
//! loopback ports, prints the variables to export, and stops both on Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sdk_testkit::DevStack;

fn port_of(url: &str) -> u16 {
    url.split_whitespace()
        .next()
        .and_then(|u| u.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
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

/// Gone, or a zombie that will never run again.
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn the_dev_stack_starts_both_servers_prints_the_variables_and_stops_on_ctrl_c() {
    let mut dev = DevStack::start();

    // The three variables, on loopback ports.
    let nats_url = dev.var("NATS_URL").to_owned();
    let otlp = dev.var("OTEL_EXPORTER_OTLP_ENDPOINT").to_owned();
    assert!(nats_url.starts_with("nats://127.0.0.1:"), "{nats_url}");
    assert!(otlp.starts_with("http://127.0.0.1:"), "{otlp}");
    assert_eq!(dev.var("OTEL_EXPORTER_OTLP_PROTOCOL"), "grpc");
    assert_eq!(dev.exports().len(), 3, "{:?}", dev.exports());
    let nats_port = port_of(&nats_url);
    let grpc_port = port_of(&otlp);
    let monitor_port = port_of(dev.comment("NATS monitoring:"));
    let http_port = port_of(dev.comment("OTLP over HTTP:"));
    let pids: Vec<String> = dev
        .comment("pids:")
        .split_whitespace()
        .map(|w| w.trim_end_matches(',').to_owned())
        .collect();
    let (nats_pid, rotel_pid) = match &pids[..] {
        [a, n, b, r] if a == "nats-server" && b == "rotel-agent" => {
            (n.parse::<u32>().unwrap(), r.parse::<u32>().unwrap())
        }
        _ => panic!("unexpected pids line {pids:?}"),
    };
    let state_dir = dev.state_dir();

    // NATS answers: healthy, JetStream on in the script's directory, and the client
    // port speaks NATS.
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
    let status = dev
        .wait_exit(Duration::from_secs(30))
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
