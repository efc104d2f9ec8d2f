//! Where things go: a record's partition ([`partition_of`]) and a member's partitions under
//! each [`Assignor`] ([`assign`]). Pure functions of their arguments.

use super::Assignor;
use std::collections::BTreeMap;

/// The partition of `key` among `n`: FNV-1a, stable across builds and platforms.
pub fn partition_of(key: &str, n: u32) -> u32 {
    assert!(n > 0, "a topic has at least one partition");
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % n as u64) as u32
}

/// Assigns `partitions` partitions to `members` as Kafka's assignors do for one topic, members
/// sorted by id (as strings); every member gets an entry, maybe empty.
/// - `range`: with `n = partitions / members` and `extra = partitions % members`, the `i`-th
///   member gets the contiguous run of `n` partitions (one more for the first `extra`) that
///   starts at `i * n + min(i, extra)`. 3 members, 10 partitions: `[0..=3], [4..=6], [7..=9]`.
/// - `round_robin`: partition `p` goes to the `p % members`-th member.
pub fn assign(assignor: Assignor, members: &[String], partitions: u32) -> BTreeMap<String, Vec<u32>> {
    let mut sorted: Vec<&String> = members.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut out: BTreeMap<String, Vec<u32>> = sorted.iter().map(|m| ((*m).clone(), Vec::new())).collect();
    let count = sorted.len() as u32;
    if count == 0 {
        return out;
    }
    match assignor {
        Assignor::Range => {
            let (n, extra) = (partitions / count, partitions % count);
            for (i, m) in sorted.iter().enumerate() {
                let i = i as u32;
                let start = i * n + i.min(extra);
                let len = n + u32::from(i < extra);
                out.insert((*m).clone(), (start..start + len).collect());
            }
        }
        Assignor::RoundRobin => {
            for p in 0..partitions {
                out.get_mut(sorted[(p % count) as usize])
                    .expect("every member has an entry")
                    .push(p);
            }
        }
    }
    assert_eq!(out.values().map(Vec::len).sum::<usize>(), partitions as usize);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn names(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn range_matches_kafkas_examples() {
        // RangeAssignor javadoc: C0, C1 and a topic of 3 partitions: C0 [p0, p1], C1 [p2].
        let two = names(&["C0", "C1"]);
        assert_eq!(
            assign(Assignor::Range, &two, 3),
            BTreeMap::from([("C0".into(), vec![0, 1]), ("C1".into(), vec![2])])
        );
        // 10 partitions over 3 consumers: 4, 3, 3.
        let three = names(&["C2", "C0", "C1"]);
        assert_eq!(
            assign(Assignor::Range, &three, 10),
            BTreeMap::from([
                ("C0".into(), vec![0, 1, 2, 3]),
                ("C1".into(), vec![4, 5, 6]),
                ("C2".into(), vec![7, 8, 9])
            ])
        );
        // More members than partitions: the last ones get nothing.
        assert_eq!(
            assign(Assignor::Range, &three, 2),
            BTreeMap::from([
                ("C0".into(), vec![0]),
                ("C1".into(), vec![1]),
                ("C2".into(), vec![])
            ])
        );
    }

    #[test]
    fn round_robin_matches_kafkas_examples() {
        // RoundRobinAssignor javadoc: C0, C1, topics t0 and t1 of 3 partitions each, laid out in
        // order as 0..6 (t1pX is 3 + X): C0 [t0p0, t0p2, t1p1], C1 [t0p1, t1p0, t1p2].
        let two = names(&["C1", "C0"]);
        assert_eq!(
            assign(Assignor::RoundRobin, &two, 6),
            BTreeMap::from([("C0".into(), vec![0, 2, 4]), ("C1".into(), vec![1, 3, 5])])
        );
        let three = names(&["C0", "C1", "C2"]);
        assert_eq!(
            assign(Assignor::RoundRobin, &three, 7),
            BTreeMap::from([
                ("C0".into(), vec![0, 3, 6]),
                ("C1".into(), vec![1, 4]),
                ("C2".into(), vec![2, 5])
            ])
        );
    }

    #[test]
    fn members_are_sorted_as_strings_so_worker_10_comes_before_worker_2() {
        let members = names(&["worker-2-1", "worker-10-2"]);
        assert_eq!(
            assign(Assignor::Range, &members, 3),
            BTreeMap::from([("worker-10-2".into(), vec![0, 1]), ("worker-2-1".into(), vec![2])])
        );
    }

    #[test]
    fn both_assignors_give_every_member_a_balanced_disjoint_share_that_covers_every_partition() {
        for assignor in [Assignor::Range, Assignor::RoundRobin] {
            for m in 1..=7u32 {
                let members: Vec<String> = (0..m).map(|i| format!("m{i}")).collect();
                for partitions in 0..=13u32 {
                    let a = assign(assignor, &members, partitions);
                    assert_eq!(a.len(), m as usize);
                    let mut seen = BTreeSet::new();
                    for ps in a.values() {
                        assert!(ps.windows(2).all(|w| w[0] < w[1]), "ascending");
                        for p in ps {
                            assert!(seen.insert(*p), "{assignor:?} {m}x{partitions}: {p} twice");
                        }
                    }
                    assert_eq!(seen, (0..partitions).collect::<BTreeSet<u32>>());
                    let sizes: Vec<usize> = a.values().map(Vec::len).collect();
                    let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                    assert!(hi - lo <= 1, "{assignor:?} {m}x{partitions}: {sizes:?}");
                }
            }
        }
    }
}
