//! What the OTLP/HTTP exporter actually sends as headers, read by a bare listener on
//! 127.0.0.1: a value is percent-decoded once, as the OTel spec says, not twice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use opentelemetry::trace::{Span as _, Tracer as _};
use sdk_telemetry::{Exporter, LogFormat, Protocol, Telemetry, TelemetryConfig};

#[test]
fn a_header_value_is_percent_decoded_once() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (tx, heads) = mpsc::channel();
    std::thread::spawn(move || {
        // One request is enough; answer it so the exporter does not wait.
        if let Ok((mut stream, _)) = listener.accept() {
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    // A token with a '%' in it, as the application holds it (OTEL_EXPORTER_OTLP_HEADERS
    // would carry it percent-encoded, x-token=a%2541%20b, and is decoded once on read).
    let config = TelemetryConfig::builder("headers")
        .otlp(&format!("http://{address}"), Protocol::HttpProtobuf)
        .exporters(Exporter::Otlp, Exporter::None, Exporter::None)
        .install_global(false)
        .log_format(LogFormat::Off)
        .otlp_header("x-token", "a%41 b")
        .build()
        .unwrap();
    let telemetry = Telemetry::init(config).unwrap();
    telemetry.tracer("headers").start("one").end();
    let _ = telemetry.tracer_provider().force_flush();
    let head = heads.recv_timeout(Duration::from_secs(20)).unwrap();
    let _ = telemetry.shutdown(Duration::from_secs(2));
    let sent = head
        .lines()
        .find_map(|l| l.strip_prefix("x-token: "))
        .unwrap_or_else(|| panic!("no x-token header in {head}"));
    assert_eq!(sent, "a%41 b", "{head}");
}
