//! Work sharing over threads with results in a fixed order, so that they never depend on the
//! number of threads: each work item carries its own index (and so its own random stream).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// `(0..n).map(f)`, evaluated by `threads` workers that take items dynamically; the result is
/// in index order whatever the thread count.
pub fn par_map<T, F>(n: usize, threads: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    let threads = threads.clamp(1, n.max(1));
    if threads == 1 {
        return (0..n).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<T>>> = (0..n).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let v = f(i);
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(v);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .expect("every work item was computed (a worker panicked otherwise)")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn order_is_independent_of_threads() {
        let a = super::par_map(37, 1, |i| i * i);
        let b = super::par_map(37, 4, |i| i * i);
        assert_eq!(a, b);
        assert!(super::par_map(0, 3, |i| i).is_empty());
    }
}
