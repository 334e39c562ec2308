//! Spreads work that needs no store over the machine's cores.
//!
//! Receiving is mostly automerge decoding and applying changes, which
//! depends only on the bytes; the checks that read the store stay
//! sequential, in the writer's transaction. [`map`] runs a pure function
//! over a slice on scoped threads (one per core, the calling thread
//! included) and keeps the order, so the results are the same as a plain
//! `iter().map()`.

/// Most threads used, whatever the machine has.
const MAX_THREADS: usize = 8;

/// `items.iter().map(f).collect()`, on every core.
pub(super) fn map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    // Asking the system reads cgroup files: once is enough.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let threads = cores.min(MAX_THREADS).min(items.len());
    if threads < 2 {
        return items.iter().map(f).collect();
    }
    let size = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let mut chunks = items.chunks(size);
        let first = chunks.next().unwrap_or_default();
        let others: Vec<_> = chunks
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<U>>()))
            .collect();
        let mut out: Vec<U> = first.iter().map(f).collect();
        for h in others {
            match h.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
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
}
