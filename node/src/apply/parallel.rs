//! Spreads work that needs no store over the machine's cores.
//!
//! Receiving is mostly automerge decoding and applying changes, which
//! depends only on the bytes; the checks that read the store stay
//! sequential, in the writer's transaction. [`map`] runs a pure function
//! over a slice on scoped threads (one per core, the calling thread
//! included), each taking the next item as it finishes one, and keeps the
//! order, so the results are the same as a plain `iter().map()`.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Most threads used, whatever the machine has.
const MAX_THREADS: usize = 8;

/// `items.iter().map(f).collect()`, on every core.
///
/// Items are handed out one at a time, so a thread that drew quick ones
/// takes more: a fixed share per thread left a core idle whenever one
/// share held the larger documents.
pub(super) fn map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    // Asking the system reads cgroup files: once is enough.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let threads = cores.min(MAX_THREADS).min(items.len());
    if threads < 2 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, f(item)));
        }
    };
    let mut done = std::thread::scope(|s| {
        let others: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut done = work();
        for h in others {
            match h.join() {
                Ok(part) => done.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    // Each index was handed out once: back in the items' order.
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, u)| u).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order() {
        let items: Vec<u32> = (0..1001).collect();
        let out = super::map(&items, |x| x * 2);
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        assert!(super::map(&[] as &[u32], |x| *x).is_empty());
    }

    #[test]
    fn a_slow_item_does_not_hold_up_the_items_after_it() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::{Duration, Instant};
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            return;
        }
        // Item 0 waits until every other item is done: with a fixed share
        // per thread, the items in its own share could not run meanwhile.
        let items: Vec<u32> = (0..100).collect();
        let done = AtomicUsize::new(0);
        let deadline = Instant::now() + Duration::from_secs(10);
        let out = super::map(&items, |&i| {
            if i == 0 {
                while done.load(Ordering::SeqCst) < items.len() - 1 && Instant::now() < deadline {
                    std::thread::yield_now();
                }
                return done.load(Ordering::SeqCst);
            }
            done.fetch_add(1, Ordering::SeqCst);
            0
        });
        assert_eq!(out[0], 99, "the other items ran while the first was slow");
    }
}
