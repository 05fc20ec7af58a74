//! An optional Prometheus pull endpoint (feature `prometheus`): `GET /metrics` on a
//! small HTTP listener, serving the same instruments the OTLP reader exports.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use prometheus::{Encoder, Registry, TextEncoder};

/// A running `/metrics` endpoint; stops when dropped.
#[derive(Debug)]
pub(crate) struct PrometheusEndpoint {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PrometheusEndpoint {
    /// Binds `listen` and serves `registry` on `GET /metrics`.
    pub(crate) fn start(
        listen: SocketAddr,
        registry: Registry,
    ) -> std::io::Result<PrometheusEndpoint> {
        let listener = TcpListener::bind(listen)?;
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("sdk-prometheus".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let _ = serve(stream, &registry);
                    }
                }
            })?;
        Ok(PrometheusEndpoint {
            address,
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for PrometheusEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(std::time::Duration::from_secs(5)))?;
    // A request line and headers of at most 8 KiB; a scrape needs far less.
    let mut reader = BufReader::new(std::io::Read::take(stream.try_clone()?, 8 * 1024));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Drain the request headers.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut stream = stream;
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    if request_line.starts_with("GET ") && (path == "/metrics" || path.starts_with("/metrics?")) {
        let encoder = TextEncoder::new();
        let mut body = Vec::new();
        if encoder.encode(&registry.gather(), &mut body).is_err() {
            body.clear();
        }
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            encoder.format_type(),
            body.len()
        )?;
        stream.write_all(&body)
    } else {
        stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    }
}
