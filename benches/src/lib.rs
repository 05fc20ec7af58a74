//! Shared setup of the criterion benchmarks in `benches/`.

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
