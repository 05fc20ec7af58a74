//! The handler pool that core services and JetStream consumers share: at most
//! `concurrency` handlers at once, a panic caught as a failure, and a timeout.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// Why a handler gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// It panicked.
    Panicked,
    /// It ran past the timeout and was cancelled.
    TimedOut(Duration),
}

/// Makes the handler's future with `start` and runs it, catching a panic in either
/// (a handler may panic before it returns its future), and cancelling it after
/// `timeout`.
pub(crate) async fn guarded<S, F>(start: S, timeout: Option<Duration>) -> Result<F::Output, Stopped>
where
    S: FnOnce() -> F,
    F: Future,
{
    let Ok(work) = std::panic::catch_unwind(AssertUnwindSafe(start)) else {
        return Err(Stopped::Panicked);
    };
    let caught = AssertUnwindSafe(work).catch_unwind();
    let result = match timeout {
        Some(limit) => match tokio::time::timeout(limit, caught).await {
            Ok(r) => r,
            Err(_) => return Err(Stopped::TimedOut(limit)),
        },
        None => caught.await,
    };
    result.map_err(|_| Stopped::Panicked)
}

/// A bounded set of running handlers.
#[derive(Debug)]
pub(crate) struct WorkerPool {
    slots: Arc<Semaphore>,
    running: JoinSet<()>,
}

impl WorkerPool {
    pub(crate) fn new(concurrency: usize) -> WorkerPool {
        WorkerPool {
            slots: Arc::new(Semaphore::new(concurrency.clamp(1, Semaphore::MAX_PERMITS))),
            running: JoinSet::new(),
        }
    }

    /// Waits for a free slot.
    pub(crate) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).acquire_owned().await.ok()
    }

    /// A free slot, if there is one now.
    pub(crate) fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }

    /// The semaphore, for tasks that wait for a slot themselves.
    pub(crate) fn slots(&self) -> Arc<Semaphore> {
        Arc::clone(&self.slots)
    }

    /// Runs `task`, holding `slot` until it ends.
    pub(crate) fn spawn<F>(&mut self, slot: Option<OwnedSemaphorePermit>, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Boxed once here, the handler's future (often kilobytes: the message, its
        // context, the handler's state) is not copied again by each layer of the
        // spawn; a profile of the typed consumer had those copies at 10 % of its CPU.
        let task = Box::pin(task);
        self.running.spawn(async move {
            task.await;
            drop(slot);
        });
        // Reap what has finished, so the set stays as small as the work in flight.
        while self.running.try_join_next().is_some() {}
    }

    /// Waits for every running task to finish.
    pub(crate) async fn finish(&mut self) {
        while self.running.join_next().await.is_some() {}
    }
}
