//! An optional Prometheus pull endpoint (feature `prometheus`): `GET /metrics` on a
//! small HTTP listener, serving the same instruments the OTLP reader exports.
//!
//! Each connection runs on its own thread under one overall deadline for reading the
//! request and writing the response, so a client that trickles bytes is cut off and
//! never delays another. Connections beyond [`MAX_CONNECTIONS`] are turned away with
//! `503`. Dropping the endpoint closes the listener and every open connection.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus::{Encoder, Registry, TextEncoder};

/// How long one connection may take to send its request and receive the response.
pub(crate) const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
/// Connections served at once; a scraper needs one.
pub(crate) const MAX_CONNECTIONS: usize = 32;
/// The request line and headers; a scrape needs far less.
const MAX_REQUEST: usize = 8 * 1024;
/// How long `drop` waits for connection threads after closing their sockets.
const DRAIN: Duration = Duration::from_secs(2);

/// A running `/metrics` endpoint; stops when dropped.
#[derive(Debug)]
pub(crate) struct PrometheusEndpoint {
    address: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What the accept thread, the connection threads and `drop` share.
#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    /// Open connections (a handle to each socket, to close it on shutdown).
    open: Mutex<HashMap<u64, TcpStream>>,
    /// Signalled whenever a connection ends.
    ended: Condvar,
    /// Scrapes that were not answered in full: turned away (`503`), cut off at the
    /// deadline, broken by the client, or with metrics that could not be encoded.
    failed: AtomicU64,
}

impl Shared {
    fn open(&self) -> MutexGuard<'_, HashMap<u64, TcpStream>> {
        // A connection thread never panics while holding the lock; if one did, the
        // map is still consistent.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PrometheusEndpoint {
    /// Binds `listen` and serves `registry` on `GET /metrics`.
    pub(crate) fn start(
        listen: SocketAddr,
        registry: Registry,
    ) -> std::io::Result<PrometheusEndpoint> {
        Self::start_with(listen, registry, DEFAULT_DEADLINE)
    }

    /// As [`PrometheusEndpoint::start`], with the per-connection deadline.
    pub(crate) fn start_with(
        listen: SocketAddr,
        registry: Registry,
        deadline: Duration,
    ) -> std::io::Result<PrometheusEndpoint> {
        let listener = TcpListener::bind(listen)?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            open: Mutex::new(HashMap::new()),
            ended: Condvar::new(),
            failed: AtomicU64::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sdk-prometheus".into())
            .spawn(move || accept_loop(&listener, &registry, &accept_shared, deadline))?;
        Ok(PrometheusEndpoint {
            address,
            shared,
            thread: Some(thread),
        })
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// How many scrapes were not answered in full.
    pub(crate) fn failed_scrapes(&self) -> u64 {
        self.shared.failed.load(Ordering::Relaxed)
    }
}

impl Drop for PrometheusEndpoint {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag; then it ends and the
        // listener closes with it.
        let woken = TcpStream::connect_timeout(&wake_address(self.address), DRAIN).is_ok();
        if let Some(t) = self.thread.take()
            && woken
        {
            let _ = t.join();
        }
        // Close every open connection: their reads and writes return at once.
        let mut open = self.shared.open();
        for stream in open.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let until = Instant::now() + DRAIN;
        while !open.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            open = match self.shared.ended.wait_timeout(open, left) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// Where to connect to reach a listener bound to `address` (an unspecified address
/// is reached through loopback).
fn wake_address(address: SocketAddr) -> SocketAddr {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, address.port())
}

fn accept_loop(
    listener: &TcpListener,
    registry: &Registry,
    shared: &Arc<Shared>,
    deadline: Duration,
) {
    let mut next_id = 0u64;
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(_) => {
                // Out of descriptors, or a connection reset before accept: do not spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let handle = match stream.try_clone() {
            Ok(h) => h,
            Err(e) => {
                // Out of descriptors: the scrape cannot be tracked, so it is not served.
                shared.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "a Prometheus scrape was turned away with 503");
                turn_away(stream);
                continue;
            }
        };
        {
            let mut open = shared.open();
            if open.len() >= MAX_CONNECTIONS {
                drop(open);
                shared.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    limit = MAX_CONNECTIONS,
                    "a Prometheus scrape was turned away with 503: too many open connections"
                );
                turn_away(stream);
                continue;
            }
            next_id += 1;
            open.insert(next_id, handle);
        }
        let id = next_id;
        let conn_shared = Arc::clone(shared);
        let registry = registry.clone();
        let spawned = std::thread::Builder::new()
            .name("sdk-prometheus-conn".into())
            .spawn(move || {
                if let Err(e) = serve(stream, &registry, Instant::now() + deadline) {
                    conn_shared.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "a Prometheus scrape was not answered");
                }
                conn_shared.open().remove(&id);
                conn_shared.ended.notify_all();
            });
        if let Err(e) = spawned {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "a Prometheus scrape was not answered: no thread");
            if let Some(s) = shared.open().remove(&id) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Answers `503` without waiting on the client, and closes. Best effort: the caller
/// has already counted the scrape as failed, and a client gone by now changes nothing.
fn turn_away(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let _ = stream.shutdown(Shutdown::Both);
}

/// The time left before `deadline`, or a `TimedOut` error once it has passed.
fn remaining(deadline: Instant) -> std::io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(std::io::Error::new(
            ErrorKind::TimedOut,
            "connection deadline passed",
        ))
    } else {
        Ok(left)
    }
}

/// Reads the request head (up to the blank line), every read bounded by what is
/// left of `deadline`.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        let n = match stream.read(&mut buf) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let searched_from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        let tail = &head[searched_from..];
        if tail.windows(4).any(|w| w == b"\r\n\r\n") || tail.windows(2).any(|w| w == b"\n\n") {
            return Ok(head);
        }
        if head.len() > MAX_REQUEST {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                "request head too large",
            ));
        }
    }
}

/// Writes `bytes`, every write bounded by what is left of `deadline`.
fn write_by(stream: &mut TcpStream, bytes: &[u8], deadline: Instant) -> std::io::Result<()> {
    for chunk in bytes.chunks(16 * 1024) {
        stream.set_write_timeout(Some(remaining(deadline)?))?;
        stream.write_all(chunk)?;
    }
    Ok(())
}

fn serve(mut stream: TcpStream, registry: &Registry, deadline: Instant) -> std::io::Result<()> {
    let head = read_head(&mut stream, deadline)?;
    let request_line = head
        .split(|b| *b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .unwrap_or_default();
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let response = if request_line.starts_with("GET ")
        && (path == "/metrics" || path.starts_with("/metrics?"))
    {
        let encoder = TextEncoder::new();
        let mut body = Vec::new();
        if let Err(e) = encoder.encode(&registry.gather(), &mut body) {
            // Answered, and still reported: the scraper sees a 500, not empty metrics.
            write_by(
                &mut stream,
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                deadline,
            )?;
            return Err(std::io::Error::other(format!(
                "the metrics could not be encoded: {e}"
            )));
        }
        let mut response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            encoder.format_type(),
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(&body);
        response
    } else {
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
    };
    write_by(&mut stream, &response, deadline)?;
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::io::{ErrorKind, Read, Write};
    use std::net::{Shutdown, TcpStream};
    use std::time::{Duration, Instant};

    use super::*;

    const REQUEST: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

    fn endpoint(deadline: Duration) -> PrometheusEndpoint {
        let registry = Registry::new();
        let counter = prometheus::IntCounter::new("scrapes_seen", "a test counter").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc();
        PrometheusEndpoint::start_with("127.0.0.1:0".parse().unwrap(), registry, deadline).unwrap()
    }

    /// A client that sends `REQUEST` one byte at a time, one every `every`, until the
    /// server closes the connection or `give_up` passes. Between bytes it waits for
    /// the server to close (a read with a timeout), so it notices at once. Returns how
    /// long after connecting the server closed, or `None` if it never did.
    fn trickle(
        address: SocketAddr,
        every: Duration,
        give_up: Duration,
        connected: Option<std::sync::mpsc::Sender<()>>,
    ) -> Option<Duration> {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(every)).unwrap();
        let started = Instant::now();
        let mut byte = 0usize;
        while started.elapsed() < give_up {
            // Never completes the request: the last byte is held back.
            let b = REQUEST[byte % (REQUEST.len() - 1)];
            byte += 1;
            if stream.write_all(&[b]).is_err() {
                return Some(started.elapsed());
            }
            if let Some(tx) = &connected {
                let _ = tx.send(());
            }
            let mut buf = [0u8; 256];
            match stream.read(&mut buf) {
                Ok(0) => return Some(started.elapsed()),
                Ok(_) => panic!("the server answered an incomplete request"),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return Some(started.elapsed()),
            }
        }
        None
    }

    /// One complete scrape; the response, or the error that stopped it.
    fn scrape(address: SocketAddr, timeout: Duration) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(REQUEST)?;
        let mut body = String::new();
        stream.read_to_string(&mut body)?;
        Ok(body)
    }

    /// Waits until `stream`'s peer has closed it, or `within` passes; how long it took.
    fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        stream.set_read_timeout(Some(within)).unwrap();
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return Some(started.elapsed()),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None;
                }
                Err(_) => return Some(started.elapsed()),
            }
            if started.elapsed() >= within {
                return None;
            }
        }
    }

    /// Waits, up to `within`, until `endpoint` has counted `n` failed scrapes.
    fn failures_reach(endpoint: &PrometheusEndpoint, n: u64, within: Duration) -> u64 {
        let until = Instant::now() + within;
        while endpoint.failed_scrapes() < n && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        endpoint.failed_scrapes()
    }

    #[test]
    fn a_scrape_the_client_breaks_off_is_counted_and_a_full_one_is_not() {
        let endpoint = endpoint(Duration::from_secs(10));
        let response = scrape(endpoint.address(), Duration::from_secs(5)).unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        // Half a request, then the client goes away.
        let mut broken = TcpStream::connect(endpoint.address()).unwrap();
        broken.write_all(b"GET /met").unwrap();
        drop(broken);
        assert_eq!(failures_reach(&endpoint, 1, Duration::from_secs(10)), 1);
        // A later full scrape still counts nothing.
        let response = scrape(endpoint.address(), Duration::from_secs(5)).unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert_eq!(endpoint.failed_scrapes(), 1);
    }

    #[test]
    fn a_trickling_client_does_not_block_another() {
        let endpoint = endpoint(Duration::from_secs(10));
        let address = endpoint.address();
        let (tx, connected) = std::sync::mpsc::channel();
        let trickler = std::thread::spawn(move || {
            trickle(
                address,
                Duration::from_millis(200),
                Duration::from_secs(12),
                Some(tx),
            )
        });
        // The trickler connects (and sends its first byte) before the scrape does, so
        // it is ahead of the scrape in the listener's queue.
        connected.recv_timeout(Duration::from_secs(10)).unwrap();
        let started = Instant::now();
        let response = scrape(address, Duration::from_secs(5));
        let took = started.elapsed();
        drop(endpoint);
        let _ = trickler.join();
        let response = response.unwrap_or_else(|e| {
            panic!("the second client got no response in {took:?} ({e}): the trickler holds the endpoint")
        });
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(response.contains("scrapes_seen 1"), "{response}");
    }

    #[test]
    fn a_trickling_client_is_cut_off_at_the_deadline() {
        let deadline = Duration::from_secs(1);
        let endpoint = endpoint(deadline);
        let closed = trickle(
            endpoint.address(),
            Duration::from_millis(200),
            Duration::from_secs(20),
            None,
        );
        let closed = closed.expect("the trickler was never cut off (gave up after 20 s)");
        assert!(
            closed >= deadline.mul_f32(0.9),
            "closed after {closed:?}, before the {deadline:?} deadline"
        );
        // The endpoint still serves, and counted the cut-off scrape.
        let response = scrape(endpoint.address(), Duration::from_secs(5)).unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert_eq!(failures_reach(&endpoint, 1, Duration::from_secs(10)), 1);
    }

    #[test]
    fn connections_over_the_cap_are_turned_away_not_queued() {
        let endpoint = endpoint(Duration::from_secs(10));
        let address = endpoint.address();
        let mut slow = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut s = TcpStream::connect(address).unwrap();
            s.write_all(b"GET /met").unwrap();
            slow.push(s);
        }
        // Once all of them are accepted, the next one is answered 503 at once. Until
        // then a scrape may still be served (200): retry while it is.
        let started = Instant::now();
        loop {
            let response = scrape(address, Duration::from_secs(5)).unwrap();
            if response.starts_with("HTTP/1.1 503") {
                break;
            }
            assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never turned away"
            );
        }
        assert!(
            endpoint.failed_scrapes() >= 1,
            "a scrape turned away with 503 is counted"
        );
        drop(slow);
    }

    #[test]
    fn shutdown_is_prompt_with_a_slow_client_connected() {
        let endpoint = endpoint(Duration::from_secs(10));
        let address = endpoint.address();
        // Half a request, then silence.
        let mut slow = TcpStream::connect(address).unwrap();
        slow.write_all(b"GET /met").unwrap();
        // A scrape from another client succeeds meanwhile, so the slow client, ahead
        // of it in the queue, has been accepted; and it is still connected.
        let response = scrape(address, Duration::from_secs(5)).unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(
            closed_within(&mut slow, Duration::from_millis(100)).is_none(),
            "the slow client was closed before the shutdown"
        );
        let started = Instant::now();
        drop(endpoint);
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(2500),
            "dropping the endpoint took {took:?} with a slow client connected"
        );
        // The slow client's connection was closed, not left open.
        let closed = closed_within(&mut slow, Duration::from_secs(2));
        assert!(
            closed.is_some(),
            "the slow client's connection is still open"
        );
        // And the port no longer accepts.
        let refused = TcpStream::connect_timeout(&address, Duration::from_secs(1));
        if let Ok(mut s) = refused {
            let _ = s.shutdown(Shutdown::Write);
            assert!(
                closed_within(&mut s, Duration::from_secs(2)).is_some(),
                "a connection after shutdown was held open"
            );
        }
    }
}
