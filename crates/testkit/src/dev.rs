//! `scripts/dev` as a developer runs it: nats-server with JetStream and the collector,
//! the variables it prints, and the spans the collector prints after them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::collector::Received;
use crate::tools::{wait_until, workspace_root};

/// How long `scripts/dev` may take to print its variables (it runs
/// `scripts/install-tools` first, which does nothing when the tools are present).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `scripts/dev`. Dropping it sends SIGTERM (the script stops both servers),
/// and SIGKILL if it has not exited 15 s later.
#[derive(Debug)]
pub struct DevStack {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// Where the printed block ends and the collector's output begins.
    block_end: usize,
    exports: HashMap<String, String>,
    comments: Vec<String>,
}

impl DevStack {
    /// The script, at `<workspace>/scripts/dev`.
    pub fn script() -> PathBuf {
        workspace_root().join("scripts").join("dev")
    }

    /// Starts `scripts/dev` with `SDK_DEV_COLLECTOR_VERBOSITY=detailed`, and waits
    /// until it has printed its variables.
    pub fn start() -> DevStack {
        let mut cmd = Command::new("bash");
        cmd.arg(DevStack::script())
            .env("SDK_DEV_COLLECTOR_VERBOSITY", "detailed")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // A test runner started in the background inherits SIGINT ignored, and bash
        // cannot trap a signal ignored at entry: reset it, so the script sees Ctrl-C
        // as it would from a terminal.
        // SAFETY: signal(2) is async-signal-safe, and this runs in the child between
        // fork and exec, touching no memory of the parent.
        #[allow(unsafe_code)]
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn scripts/dev");
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Ok(mut l) = lines.lock() {
                        l.push(line);
                    }
                }
            });
        }
        let mut dev = DevStack {
            child,
            lines,
            block_end: 0,
            exports: HashMap::new(),
            comments: Vec::new(),
        };
        let end = wait_until(START_TIMEOUT, || {
            if !matches!(dev.child.try_wait(), Ok(None)) {
                return Some(None);
            }
            let lines = dev.lines.lock().ok()?;
            lines
                .iter()
                .position(|l| l.starts_with("# pids:"))
                .map(|i| Some(i + 1))
        });
        let Some(Some(end)) = end else {
            panic!(
                "scripts/dev printed no `# pids:` line within {START_TIMEOUT:?}; it printed:\n{}",
                dev.output().join("\n")
            );
        };
        dev.block_end = end;
        let block: Vec<String> = dev.output()[..end].to_vec();
        for line in block {
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|e| e.split_once('=')) {
                dev.exports.insert(k.to_owned(), v.to_owned());
            } else if let Some(comment) = line.strip_prefix("# ") {
                dev.comments.push(comment.to_owned());
            }
        }
        dev
    }

    /// A variable from an `export NAME=value` line.
    pub fn var(&self, name: &str) -> &str {
        self.exports
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("scripts/dev printed no {name}: {:?}", self.exports))
    }

    /// Every `export` line, as a map.
    pub fn exports(&self) -> &HashMap<String, String> {
        &self.exports
    }

    /// The rest of the `# <label>...` comment line, trimmed.
    pub fn comment(&self, label: &str) -> &str {
        self.comments
            .iter()
            .find_map(|c| c.strip_prefix(label))
            .unwrap_or_else(|| panic!("no comment {label:?} in {:?}", self.comments))
            .trim()
    }

    /// The process id of the script.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the script (not to its children).
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on the child this process spawned; no memory is touched.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// Waits until the script exits, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || self.child.try_wait().ok().flatten())
    }

    /// Everything the script printed to stdout so far.
    pub fn output(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// What the collector printed after the variables, parsed.
    pub fn received(&self) -> Received {
        let lines = self.output();
        Received::parse(&lines[self.block_end.min(lines.len())..])
    }

    /// Polls what the collector received until `condition` returns `Some`; panics with
    /// the script's output after `timeout`.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut(&Received) -> Option<T>,
    ) -> T {
        match wait_until(timeout, || condition(&self.received())) {
            Some(value) => value,
            None => panic!(
                "the dev collector did not receive {what} within {timeout:?}; scripts/dev printed:\n{}",
                self.output().join("\n")
            ),
        }
    }

    /// The directory of the JetStream store and the server log (removed on exit).
    pub fn state_dir(&self) -> PathBuf {
        Path::new(self.comment("nats-server log:"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
}

impl Drop for DevStack {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal(libc::SIGTERM);
            let _ = self.wait_exit(Duration::from_secs(15));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
