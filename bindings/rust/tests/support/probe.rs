//! A future that records its polls and drops, to count them from outside.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// Counters shared by a probe and its futures.
#[derive(Clone, Default)]
pub struct Probe {
    polls: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

impl Probe {
    pub fn new() -> Probe {
        Probe::default()
    }

    pub fn polls(&self) -> usize {
        self.polls.load(Ordering::SeqCst)
    }

    pub fn drops(&self) -> usize {
        self.drops.load(Ordering::SeqCst)
    }

    /// A future that is pending forever (it never arranges a wake) and
    /// counts its polls and its drop.
    pub fn pending_forever(&self) -> Forever {
        Forever { probe: self.clone() }
    }

    /// Counts one drop when dropped: put it inside an async block to count
    /// the block's drop.
    pub fn drop_guard(&self) -> DropGuard {
        DropGuard { probe: self.clone() }
    }
}

pub struct Forever {
    probe: Probe,
}

impl Future for Forever {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        self.probe.polls.fetch_add(1, Ordering::SeqCst);
        Poll::Pending
    }
}

impl Drop for Forever {
    fn drop(&mut self) {
        self.probe.drops.fetch_add(1, Ordering::SeqCst);
    }
}

pub struct DropGuard {
    probe: Probe,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.probe.drops.fetch_add(1, Ordering::SeqCst);
    }
}
