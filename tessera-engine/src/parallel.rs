//! Work shared among threads for the length of one call: the first item on the calling thread,
//! every other on a scoped thread of its own, results in the items' order.

use crate::Result;

/// `work` on every item of `items` (at least one), side by side.
pub(crate) fn in_parallel<I: Sync, T: Send>(
    items: &[I],
    work: impl Fn(&I) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    std::thread::scope(|scope| {
        let work = &work;
        let others: Vec<_> = items[1..]
            .iter()
            .map(|item| scope.spawn(move || work(item)))
            .collect();
        let mut results = vec![work(&items[0])?];
        for handle in others {
            // A panic in a worker is the same bug it would be on this thread.
            results.push(
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
            );
        }
        Ok(results)
    })
}
