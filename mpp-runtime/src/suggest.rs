//! "Did you mean …?" hints for names that are almost right.

/// The candidate closest to `input` by edit distance (case-insensitive), if
/// it is close enough to be a plausible typo.
///
/// ```
/// let known = ["currency", "amount", "grants"];
/// assert_eq!(mpp_runtime::suggest::closest("curency", known), Some("currency"));
/// assert_eq!(mpp_runtime::suggest::closest("zzz", known), None);
/// ```
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let input = input.to_ascii_lowercase();
    let limit = match input.chars().count() {
        0..=2 => 1,
        3..=5 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .map(|c| {
            let lower = c.to_ascii_lowercase();
            let shared_prefix = input
                .chars()
                .zip(lower.chars())
                .take_while(|(a, b)| a == b)
                .count();
            (
                distance(&input, &lower),
                std::cmp::Reverse(shared_prefix),
                c,
            )
        })
        .filter(|&(d, _, _)| d <= limit)
        .min_by_key(|&(d, p, _)| (d, p))
        .map(|(_, _, c)| c)
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}
