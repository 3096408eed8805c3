//! Work on many things at once, a thread for each.

/// `f` of every item, all at once, the results in the items' order. The first item
/// is done on this thread while the others have threads of their own: a list of one
/// (one window, one serve) starts no thread at all.
pub fn each<I: Send, R: Send>(
    items: impl IntoIterator<Item = I>,
    f: impl Fn(I) -> R + Sync,
) -> Vec<R> {
    let mut items = items.into_iter();
    let Some(first) = items.next() else {
        return Vec::new();
    };
    std::thread::scope(|scope| {
        let f = &f;
        let others: Vec<_> = items.map(|i| scope.spawn(move || f(i))).collect();
        let mut out = vec![f(first)];
        out.extend(
            others
                .into_iter()
                .map(|h| h.join().expect("a thread of each")),
        );
        out
    })
}
