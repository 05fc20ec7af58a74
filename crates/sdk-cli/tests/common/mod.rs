//! Running the built `sdk` binary as a subprocess against real servers, and waiting on
//! what it prints.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Generous: the machine running the tests may be slow and busy.
pub const WAIT: Duration = Duration::from_secs(60);

/// The variables the bus reads; the tests set their own.
const NATS_VARS: [&str; 16] = [
    "NATS_URL",
    "NATS_TOKEN",
    "NATS_USER",
    "NATS_PASSWORD",
    "NATS_NKEY_SEED",
    "NATS_CREDS",
    "NATS_CA",
    "NATS_CERT",
    "NATS_KEY",
    "NATS_TLS_REQUIRED",
    "NATS_CONNECTION_NAME",
    "NATS_PING_INTERVAL_MS",
    "NATS_REQUEST_TIMEOUT_MS",
    "NATS_MAX_RECONNECTS",
    "NATS_INBOX_TENANT",
    "NATS_SUBSCRIPTION_CAPACITY",
];

/// Lines a child printed, shared with the thread that reads them.
#[derive(Default)]
struct Lines {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

impl Lines {
    fn collect(stream: impl Read + Send + 'static) -> Arc<Lines> {
        let lines = Arc::new(Lines::default());
        let shared = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                shared.lines.lock().unwrap().push(line);
                shared.changed.notify_all();
            }
            // End of stream: wake waiters so they can see the process ended.
            shared.changed.notify_all();
        });
        lines
    }

    fn snapshot(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the lines so far, or `timeout` passes.
    fn wait(&self, timeout: Duration, done: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut lines = self.lines.lock().unwrap();
        loop {
            if done(&lines) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            lines = self.changed.wait_timeout(lines, left).unwrap().0;
        }
    }
}

/// A running `sdk` process. Dropping it kills it.
pub struct Sdk {
    child: Child,
    stdout: Arc<Lines>,
    stderr: Arc<Lines>,
    args: Vec<String>,
}

/// What a finished `sdk` process left.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Finished {
    /// Stdout as one string.
    pub fn out(&self) -> String {
        self.stdout.join("\n")
    }

    /// Stderr as one string.
    pub fn err(&self) -> String {
        self.stderr.join("\n")
    }

    /// Each stdout line parsed as JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// Asserts success and returns self.
    pub fn ok(self) -> Finished {
        assert!(self.status.success(), "sdk failed: {self:#?}");
        self
    }

    /// Asserts that it failed with `code` and printed exactly one stderr line: an
    /// `error: ` line with a hint after `; `, without any sign of a panic. Returns
    /// the line.
    pub fn one_line_error(&self, code: i32) -> String {
        assert_eq!(self.status.code(), Some(code), "{self:#?}");
        assert_eq!(self.stderr.len(), 1, "not one line: {self:#?}");
        let line = &self.stderr[0];
        assert!(line.starts_with("error: "), "{line}");
        assert!(line.contains("; "), "no hint of what to try: {line}");
        for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
            assert!(!line.contains(bad), "{line}");
        }
        line.clone()
    }
}

/// Runs `sdk args...` to its end with its stdout going to `stdout`.
pub fn run_with_stdout(args: &[&str], stdout: Stdio) -> std::process::Output {
    command(args, &[])
        .stdout(stdout)
        .output()
        .expect("run the sdk binary")
}

/// The `sdk` binary with the NATS variables cleared.
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sdk"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in NATS_VARS {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl Sdk {
    /// Starts `sdk args...` with `env`.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Sdk {
        let mut child = command(args, env).spawn().expect("run the sdk binary");
        let stdout = Lines::collect(child.stdout.take().unwrap());
        let stderr = Lines::collect(child.stderr.take().unwrap());
        Sdk {
            child,
            stdout,
            stderr,
            args: args.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Runs `sdk args...` to its end.
    pub fn run(args: &[&str], env: &[(&str, &str)]) -> Finished {
        Sdk::start(args, env).finish()
    }

    /// Runs `sdk args...` in directory `dir`.
    pub fn run_in(dir: &std::path::Path, args: &[&str]) -> Finished {
        let mut cmd = command(args, &[]);
        cmd.current_dir(dir);
        let mut child = cmd.spawn().expect("run the sdk binary");
        let stdout = Lines::collect(child.stdout.take().unwrap());
        let stderr = Lines::collect(child.stderr.take().unwrap());
        Sdk {
            child,
            stdout,
            stderr,
            args: args.iter().map(|s| (*s).to_owned()).collect(),
        }
        .finish()
    }

    /// Runs `sdk args...` with `input` on stdin.
    pub fn run_with_stdin(args: &[&str], env: &[(&str, &str)], input: &str) -> Finished {
        use std::io::Write as _;
        let mut cmd = command(args, env);
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().expect("run the sdk binary");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        let stdout = Lines::collect(child.stdout.take().unwrap());
        let stderr = Lines::collect(child.stderr.take().unwrap());
        Sdk {
            child,
            stdout,
            stderr,
            args: args.iter().map(|s| (*s).to_owned()).collect(),
        }
        .finish()
    }

    /// Waits until a stderr line contains `needle`; panics with everything printed
    /// so far if it does not come.
    pub fn wait_stderr(&self, needle: &str) {
        if !self
            .stderr
            .wait(WAIT, |lines| lines.iter().any(|l| l.contains(needle)))
        {
            panic!(
                "sdk {:?} never printed {needle:?} on stderr; stdout: {:?}, stderr: {:?}",
                self.args,
                self.stdout.snapshot(),
                self.stderr.snapshot()
            );
        }
    }

    /// Waits until stdout has at least `n` lines, and returns them all.
    pub fn wait_stdout_lines(&self, n: usize) -> Vec<String> {
        if !self.stdout.wait(WAIT, |lines| lines.len() >= n) {
            panic!(
                "sdk {:?} printed fewer than {n} lines; stdout: {:?}, stderr: {:?}",
                self.args,
                self.stdout.snapshot(),
                self.stderr.snapshot()
            );
        }
        self.stdout.snapshot()
    }

    /// Sends `signal` (`TERM`, `INT`) to this process, by its id.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to end by itself, and for its output to be read.
    pub fn finish(mut self) -> Finished {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                self.child.kill().ok();
                panic!(
                    "sdk {:?} did not end within {WAIT:?}; stdout: {:?}, stderr: {:?}",
                    self.args,
                    self.stdout.snapshot(),
                    self.stderr.snapshot()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The reader threads end at end of stream, which follows the exit; their last
        // lines may still be on the way. Both pipes close once the process is gone.
        let closed = |l: &Arc<Lines>| Arc::strong_count(l) == 1;
        let drained = sdk_testkit::wait_until(WAIT, || {
            (closed(&self.stdout) && closed(&self.stderr)).then_some(())
        });
        assert!(
            drained.is_some(),
            "the output of sdk {:?} never closed",
            self.args
        );
        Finished {
            status,
            stdout: self.stdout.snapshot(),
            stderr: self.stderr.snapshot(),
        }
    }
}

impl Drop for Sdk {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

/// The workspace root.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `NATS_URL` for `url`.
pub fn url_env(url: &str) -> [(&'static str, String); 1] {
    [("NATS_URL", url.to_owned())]
}

/// Borrowed pairs for [`Sdk::start`].
pub fn env_refs<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
