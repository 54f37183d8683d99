//! Binned (plug-in) information estimators (docs/spec.md §2.3–§2.5): plug-in entropies of pattern ids (and of
//! pairs of ids), for the whole sample or for many resamples at once ([`entropy_resamples`],
//! [`mutual_info_resamples`]), whose rows are drawn inside the parallel loop
//! (`crate::info::resample::Draws`). The ids come from [`super::binning::factorize_binned`] or
//! [`crate::factorize::factorize_integers`].

use crate::error::{CoreError, Result};
use crate::factorize::factorize_rows;
use crate::info::resample::{check_picked, map_resamples_with, Draws};
use crate::parallel::Ctl;
use rayon::prelude::*;
use std::ops::Range;
use std::sync::LazyLock;

/// c·ln c for the counts c below 64, computed once: most counts of a resample are small, and the
/// table holds the very numbers the logarithm gives.
static C_LN_C: LazyLock<[f64; 64]> = LazyLock::new(|| std::array::from_fn(|c| c as f64 * (c as f64).ln()));

/// Plug-in entropy (nats) of a table of counts over `total` samples: log N − (1/N) Σ c log c,
/// summed with Neumaier compensation.
pub fn plugin_entropy(counts: impl IntoIterator<Item = u32>, total: usize) -> f64 {
    let small = &*C_LN_C;
    let terms = counts
        .into_iter()
        .filter(|&c| c > 1)
        .map(|c| match small.get(c as usize) {
            Some(&t) => t,
            None => c as f64 * (c as f64).ln(),
        });
    let n = total as f64;
    n.ln() - crate::special::neumaier_sum(terms) / n
}

/// Plug-in entropy and number of distinct values of `counts` (over `total` samples); zeroes them.
/// Scanning all counters costs no more than counting did: a table has at most N ids and a
/// resample at least N/2 rows.
fn take_entropy(counts: &mut [u32], total: usize) -> (f64, usize) {
    let out = entropy_and_distinct(counts, total);
    counts.fill(0);
    out
}

/// Plug-in entropy and number of distinct values of `counts` (over `total` samples).
fn entropy_and_distinct(counts: &[u32], total: usize) -> (f64, usize) {
    (
        plugin_entropy(counts.iter().copied(), total),
        counts.iter().filter(|&&c| c > 0).count(),
    )
}

/// Ids of the pairs (a[i], b[i]) and their number: the joint variable, so that the joint counts of
/// resamples that pick the same rows of both variables are plain counts of its ids. When the
/// n_a·n_b possible pairs are no more than the N rows the id is a·n_b + b (no search, and a table
/// of counters no longer than a resample); otherwise the pairs are factorised (ids in order of
/// first appearance, [`factorize_rows`]).
pub fn factorize_pairs(a: (&[u32], usize), b: (&[u32], usize), ctl: &Ctl) -> Result<(Vec<u32>, usize)> {
    let ((ids_a, n_a), (ids_b, n_b)) = (a, b);
    if ids_a.len() != ids_b.len() {
        return Err(CoreError::invalid(
            "y",
            format!("has {} samples but x has {}", ids_b.len(), ids_a.len()),
        ));
    }
    check_ids("x", ids_a, n_a)?;
    check_ids("y", ids_b, n_b)?;
    let n = ids_a.len();
    match n_a.checked_mul(n_b) {
        Some(grid) if grid <= n => {
            let mut ids = vec![0u32; n];
            ctl.fill_blocks(&mut ids, 4096, |start, block| {
                for (t, id) in block.iter_mut().enumerate() {
                    *id = ids_a[start + t] * n_b as u32 + ids_b[start + t];
                }
            })?;
            Ok((ids, grid))
        }
        _ => factorize_rows(n, 1, |i, buf| buf[0] = (ids_a[i] as u64) << 32 | ids_b[i] as u64, ctl),
    }
}

/// Joint entropy and number of distinct pairs of (a[i], b[pick(i)]), i = 0..m.
fn joint_entropy_of(a: &[u32], b: &[u32], n_b: usize, pick: impl Fn(usize) -> usize, m: usize) -> (f64, usize) {
    let mut keys: Vec<u64> = (0..m).map(|i| a[i] as u64 * n_b as u64 + b[pick(i)] as u64).collect();
    keys.sort_unstable();
    let mut counts = Vec::new();
    let mut run = 0u32;
    for t in 0..m {
        run += 1;
        if t + 1 == m || keys[t + 1] != keys[t] {
            counts.push(run);
            run = 0;
        }
    }
    let distinct = counts.len();
    (plugin_entropy(counts, m), distinct)
}

/// Plug-in entropies (nats) and distinct counts of several id tables over the same rows — `tables`
/// holds (ids, number of ids) — for the whole sample (`draws` None: one row of results) or for
/// the resamples numbered `resamples` of `draws` (one row each). One pass over a resample's rows
/// counts every table, and bootstrap rows are counted as they are drawn, never stored. The
/// entropies of x, y and of their pairs ([`factorize_pairs`]) give a mutual information.
pub fn entropy_resamples(
    tables: &[(&[u32], usize)],
    draws: Option<(&Draws, Range<usize>)>,
    ctl: &Ctl,
) -> Result<Vec<Vec<(f64, usize)>>> {
    const NAMES: [&str; 3] = ["x", "y", "pairs"];
    let n = tables.first().map_or(0, |t| t.0.len());
    for (t, &(ids, n_ids)) in tables.iter().enumerate() {
        let name = NAMES.get(t).copied().unwrap_or("ids");
        if ids.len() != n {
            return Err(CoreError::invalid(
                name,
                format!("has {} samples but the first table has {n}", ids.len()),
            ));
        }
        check_ids(name, ids, n_ids)?;
    }
    let (count, m) = match &draws {
        Some((d, r)) => {
            check_picked(d, &[true], n)?;
            (r.len(), d.m())
        }
        None => (1, n),
    };
    if tables.is_empty() {
        return Err(CoreError::invalid("tables", "no tables"));
    }
    // Only the finest table is counted row by row; the others' counts are sums of its counts.
    let finest = Finest::of(tables, ctl)?;
    if draws.is_none() {
        return Ok(vec![sample_entropies(tables.len(), &finest, ctl)]);
    }
    let ids_f = &finest.ids[..];
    let init = || {
        (
            vec![0u32; finest.n],
            finest
                .coarser
                .iter()
                .map(|(_, n_t, _)| vec![0u32; *n_t])
                .collect::<Vec<_>>(),
        )
    };
    map_resamples_with(count, ctl, init, |(counts, others), r, _| {
        if let Some((d, range)) = &draws {
            d.for_each_row(range.start + r, |i| counts[ids_f[i] as usize] += 1);
        }
        let mut out = vec![(0.0, 0); tables.len()];
        for ((t, _, to_t), counts_t) in finest.coarser.iter().zip(others.iter_mut()) {
            for (&c, &id) in counts.iter().zip(to_t) {
                counts_t[id as usize] += c;
            }
            out[*t] = take_entropy(counts_t, m);
        }
        let own = take_entropy(counts, m);
        if let Some(t) = finest.table {
            out[t] = own;
        }
        Ok(out)
    })
}

/// `entropy_resamples` on the whole sample, which is a single "resample": its work runs in
/// parallel inside it instead (the finest ids counted in blocks, each table's sums and entropy
/// apart). The counts, and so the entropies, are exactly those of the resample path.
fn sample_entropies(n_tables: usize, finest: &Finest<'_>, ctl: &Ctl) -> Vec<(f64, usize)> {
    let ids = &finest.ids[..];
    let n = ids.len();
    let add = |mut a: Vec<u32>, b: Vec<u32>| {
        a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
        a
    };
    ctl.install(|| {
        let counts = ids
            .par_chunks(1 << 15)
            .fold(
                || vec![0u32; finest.n],
                |mut c, chunk| {
                    chunk.iter().for_each(|&id| c[id as usize] += 1);
                    c
                },
            )
            .reduce(|| vec![0u32; finest.n], add);
        let (own, others) = rayon::join(
            || entropy_and_distinct(&counts, n),
            || {
                finest
                    .coarser
                    .par_iter()
                    .map(|(t, n_t, to_t)| {
                        let mut counts_t = vec![0u32; *n_t];
                        counts.iter().zip(to_t).for_each(|(&c, &id)| counts_t[id as usize] += c);
                        (*t, take_entropy(&mut counts_t, n))
                    })
                    .collect::<Vec<_>>()
            },
        );
        let mut out = vec![(0.0, 0); n_tables];
        for (t, e) in others {
            out[t] = e;
        }
        if let Some(t) = finest.table {
            out[t] = own;
        }
        out
    })
}

/// A table of ids whose id determines every given table's id, row by row: the given table with the
/// most ids when it does so (the pairs' ids determine x's and y's), else the ids of the rows'
/// combinations of ids. A resample's counts of every other table are sums of its counts, so
/// counting a resample bumps one counter per drawn row whatever the number of tables.
struct Finest<'a> {
    ids: std::borrow::Cow<'a, [u32]>,
    n: usize,
    /// Which given table it is, if one.
    table: Option<usize>,
    /// The other tables: (index, number of ids, map from the finest ids to theirs).
    coarser: Vec<(usize, usize, Vec<u32>)>,
}

impl<'a> Finest<'a> {
    fn of(tables: &[(&'a [u32], usize)], ctl: &Ctl) -> Result<Self> {
        let largest = (0..tables.len())
            .max_by_key(|&t| (tables[t].1, std::cmp::Reverse(t)))
            .unwrap_or(0);
        let (ids, n) = tables[largest];
        if let Some(coarser) = Self::maps(tables, ids, n, Some(largest), ctl) {
            return Ok(Finest {
                ids: ids.into(),
                n,
                table: Some(largest),
                coarser,
            });
        }
        let width = tables.len();
        let (joint, n_joint) = factorize_rows(
            ids.len(),
            width,
            |i, buf| buf.iter_mut().zip(tables).for_each(|(o, (t, _))| *o = t[i] as u64),
            ctl,
        )?;
        let coarser = Self::maps(tables, &joint, n_joint, None, ctl)
            .ok_or_else(|| CoreError::Internal("the combined ids do not determine a table's ids".into()))?;
        Ok(Finest {
            ids: joint.into(),
            n: n_joint,
            table: None,
            coarser,
        })
    }

    /// For each table but `skip`: (index, number of ids, map from `ids` to its ids), or None when
    /// some id of `ids` meets two ids of a table.
    /// The tables' maps are built in parallel.
    fn maps(
        tables: &[(&[u32], usize)],
        ids: &[u32],
        n: usize,
        skip: Option<usize>,
        ctl: &Ctl,
    ) -> Option<Vec<(usize, usize, Vec<u32>)>> {
        let map = |t: usize| -> Option<(usize, usize, Vec<u32>)> {
            let (ids_t, n_t) = tables[t];
            let mut to_t = vec![u32::MAX; n];
            for (&f, &id) in ids.iter().zip(ids_t) {
                let slot = &mut to_t[f as usize];
                if *slot == u32::MAX {
                    *slot = id;
                } else if *slot != id {
                    return None;
                }
            }
            // Ids that no row has (a grid of pairs has some) count nothing; any target will do.
            to_t.iter_mut().filter(|s| **s == u32::MAX).for_each(|s| *s = 0);
            Some((t, n_t, to_t))
        };
        let others: Vec<usize> = (0..tables.len()).filter(|&t| Some(t) != skip).collect();
        ctl.install(|| others.into_par_iter().map(map).collect())
    }
}

/// The three plug-in entropies H(A), H(B), H(A,B) (nats) with their distinct counts, for the whole
/// sample (`draws_b` None: one row) or with b's rows drawn and a's kept (a permutation test): the
/// pairs then change, and their counts are formed by sorting.
pub fn mutual_info_resamples(
    a: (&[u32], usize),
    b: (&[u32], usize),
    draws_b: Option<(&Draws, Range<usize>)>,
    ctl: &Ctl,
) -> Result<Vec<[(f64, usize); 3]>> {
    let (ids_a, n_a) = a;
    let (ids_b, n_b) = b;
    if ids_a.len() != ids_b.len() {
        return Err(CoreError::invalid(
            "y",
            format!("has {} samples but x has {}", ids_b.len(), ids_a.len()),
        ));
    }
    check_ids("x", ids_a, n_a)?;
    check_ids("y", ids_b, n_b)?;
    let n = ids_a.len();
    let count = match &draws_b {
        Some((d, r)) => {
            check_picked(d, &[false, true], n)?;
            r.len()
        }
        None => 1,
    };
    let entropy = |ids: &mut dyn Iterator<Item = u32>, counts: &mut [u32]| {
        ids.for_each(|id| counts[id as usize] += 1);
        take_entropy(counts, n)
    };
    let ha = entropy(&mut ids_a.iter().copied(), &mut vec![0u32; n_a]);
    map_resamples_with(
        count,
        ctl,
        || vec![0u32; n_b],
        |counts, r, _| match &draws_b {
            Some((d, range)) => {
                let mut rows = Vec::with_capacity(n);
                d.rows_into(range.start + r, &mut rows);
                let hb = entropy(&mut rows.iter().map(|&i| ids_b[i as usize]), counts);
                Ok([ha, hb, joint_entropy_of(ids_a, ids_b, n_b, |i| rows[i] as usize, n)])
            }
            None => Ok([
                ha,
                entropy(&mut ids_b.iter().copied(), counts),
                joint_entropy_of(ids_a, ids_b, n_b, |i| i, n),
            ]),
        },
    )
}

fn check_ids(arg: &'static str, ids: &[u32], n_ids: usize) -> Result<()> {
    if ids.is_empty() {
        return Err(CoreError::invalid(arg, "empty input"));
    }
    match ids.iter().find(|&&id| id as usize >= n_ids) {
        Some(id) => Err(CoreError::invalid(
            arg,
            format!("id {id} is not below the number of distinct values {n_ids}"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctl() -> Ctl<'static> {
        Ctl::uninterruptible().unwrap()
    }

    #[test]
    fn entropies_of_resamples() {
        use crate::info::resample::Scheme;
        let ids = [0u32, 0, 1, 1];
        let full = entropy_resamples(&[(&ids, 2)], None, &ctl()).unwrap();
        assert!((full[0][0].0 - 2f64.ln()).abs() < 1e-15 && full[0][0].1 == 2);
        let mi = mutual_info_resamples((&ids, 2), (&ids, 2), None, &ctl()).unwrap();
        let [ha, hb, hab] = mi[0];
        assert!((ha.0 + hb.0 - hab.0 - 2f64.ln()).abs() < 1e-15);

        // Resamples: the fused counts equal counting the stored rows, table by table, and the
        // joint counts of the pair ids equal the sorted pairs.
        let n = 500;
        let a: Vec<u32> = (0..n).map(|i| (i * i % 13) as u32).collect();
        let b: Vec<u32> = (0..n).map(|i| (i % 7) as u32).collect();
        let (ab, n_ab) = factorize_pairs((&a, 13), (&b, 7), &ctl()).unwrap();
        assert_eq!(n_ab, 13 * 7, "few possible pairs: a·n_b + b");
        // Many possible pairs: factorised, ids in order of first appearance.
        let wide: Vec<u32> = (0..n).map(|i| (i % 61) as u32).collect();
        let (f, n_f) = factorize_pairs((&a, 13), (&wide, 61), &ctl()).unwrap();
        let mut first_seen = std::collections::HashMap::new();
        let want: Vec<u32> = (0..n)
            .map(|i| {
                let next = first_seen.len() as u32;
                *first_seen.entry((a[i], wide[i])).or_insert(next)
            })
            .collect();
        assert_eq!((f, n_f), (want, first_seen.len()));
        for scheme in [Scheme::Bootstrap, Scheme::HalfSample] {
            let draws = Draws::new(scheme, n, 4).unwrap();
            let got = entropy_resamples(&[(&a, 13), (&b, 7), (&ab, n_ab)], Some((&draws, 3..9)), &ctl()).unwrap();
            let mut rows = Vec::new();
            for (r, row) in got.iter().enumerate() {
                draws.rows_into(3 + r, &mut rows);
                let m = rows.len();
                let ra: Vec<u32> = rows.iter().map(|&i| a[i as usize]).collect();
                let rb: Vec<u32> = rows.iter().map(|&i| b[i as usize]).collect();
                let h = |ids: &[u32], n_ids: usize| entropy_resamples(&[(ids, n_ids)], None, &ctl()).unwrap()[0][0];
                assert_eq!(row[0], h(&ra, 13));
                assert_eq!(row[1], h(&rb, 7));
                let joint = joint_entropy_of(&ra, &rb, 7, |i| i, m);
                assert!((row[2].0 - joint.0).abs() < 1e-13 && row[2].1 == joint.1);
            }
        }
        // Permuting b alone.
        let perms = Draws::new(Scheme::Permutation, n, 4).unwrap();
        let got = mutual_info_resamples((&a, 13), (&b, 7), Some((&perms, 0..2)), &ctl()).unwrap();
        let mut rows = Vec::new();
        perms.rows_into(1, &mut rows);
        let pb: Vec<u32> = rows.iter().map(|&i| b[i as usize]).collect();
        assert_eq!(
            got[1],
            mutual_info_resamples((&a, 13), (&pb, 7), None, &ctl()).unwrap()[0]
        );
    }

    #[test]
    fn entropies_of_tables_that_refine_none_another() {
        // Neither table's ids determine the other's: the resamples are counted through the ids of
        // the rows' combinations, and must equal counting each table on its own.
        use crate::info::resample::Scheme;
        let n = 300;
        let a: Vec<u32> = (0..n).map(|i| (i % 5) as u32).collect();
        let b: Vec<u32> = (0..n).map(|i| (i / 20) as u32 % 3).collect();
        let c: Vec<u32> = (0..n).map(|i| (i % 5) as u32).collect(); // as many ids as a, same table
        let draws = Draws::new(Scheme::Bootstrap, n, 9).unwrap();
        let got = entropy_resamples(&[(&a, 5), (&b, 3), (&c, 5)], Some((&draws, 0..4)), &ctl()).unwrap();
        let mut rows = Vec::new();
        for (r, row) in got.iter().enumerate() {
            draws.rows_into(r, &mut rows);
            for (t, (ids, n_ids)) in [(&a, 5), (&b, 3), (&c, 5)].into_iter().enumerate() {
                let drawn: Vec<u32> = rows.iter().map(|&i| ids[i as usize]).collect();
                let mut counts = vec![0u32; n_ids];
                drawn.iter().for_each(|&id| counts[id as usize] += 1);
                let want = (
                    plugin_entropy(counts.iter().copied(), n),
                    counts.iter().filter(|&&c| c > 0).count(),
                );
                assert_eq!(row[t], want, "resample {r} table {t}");
            }
        }
        let whole = entropy_resamples(&[(&a, 5), (&b, 3)], None, &ctl()).unwrap();
        assert!((whole[0][0].0 - 5f64.ln()).abs() < 1e-15 && (whole[0][1].0 - 3f64.ln()).abs() < 1e-15);
    }

    /// The whole sample's entropies (counted in parallel blocks, tables apart) equal counting
    /// each table on its own, exactly: with a table that refines the others (pairs) and without
    /// one, over several counting blocks.
    #[test]
    fn sample_entropies_equal_counting_each_table() {
        let n = 100_003;
        let a: Vec<u32> = (0..n).map(|i| ((i * 7919) % 97) as u32).collect();
        let b: Vec<u32> = (0..n).map(|i| ((i / 13) % 5) as u32).collect();
        let (ab, n_ab) = factorize_pairs((&a, 97), (&b, 5), &ctl()).unwrap();
        let alone = |ids: &[u32], n_ids: usize| {
            let mut counts = vec![0u32; n_ids];
            ids.iter().for_each(|&id| counts[id as usize] += 1);
            (
                plugin_entropy(counts.iter().copied(), n),
                counts.iter().filter(|&&c| c > 0).count(),
            )
        };
        let want = [alone(&a, 97), alone(&b, 5), alone(&ab, n_ab)];
        assert_eq!(
            entropy_resamples(&[(&a, 97), (&b, 5), (&ab, n_ab)], None, &ctl()).unwrap()[0],
            want.to_vec()
        );
        assert_eq!(
            entropy_resamples(&[(&a, 97), (&b, 5)], None, &ctl()).unwrap()[0],
            want[..2].to_vec()
        );
        assert_eq!(
            entropy_resamples(&[(&b, 5)], None, &ctl()).unwrap()[0],
            want[1..2].to_vec()
        );
    }

    /// Where a binned bootstrap spends its time, N = 10⁵, 200 resamples (run by hand:
    /// `cargo test --release -- --ignored --nocapture resample_timings`).
    #[test]
    #[ignore]
    fn resample_timings() {
        use crate::factorize::factorize_integers;
        use crate::info::resample::Scheme;
        use std::time::Instant;
        let ctl = ctl();
        let n = 100_000;
        let mut state = 3u64;
        let mut next = |k: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % k) as u32
        };
        let a: Vec<u32> = (0..n).map(|_| next(30_000)).collect();
        let b: Vec<u32> = (0..n).map(|_| next(2)).collect();
        let (a, n_a) = factorize_integers(&a.iter().map(|&v| v as i64).collect::<Vec<_>>(), n, 1, &ctl).unwrap();
        let (ab, n_ab) = factorize_pairs((&a, n_a), (&b, 2), &ctl).unwrap();
        let draws = Draws::new(Scheme::Bootstrap, n, 1).unwrap();
        let t = Instant::now();
        let mut sink = 0usize;
        for r in 0..200 {
            draws.for_each_row(r, |i| sink ^= i);
        }
        eprintln!("draw 200 x 1e5 bootstrap rows (1 thread): {:?} ({sink})", t.elapsed());
        let t = Instant::now();
        let mut rows = Vec::new();
        for r in 0..200 {
            draws.rows_into(r, &mut rows);
        }
        eprintln!("draw and store them (1 thread): {:?}", t.elapsed());
        let t = Instant::now();
        entropy_resamples(&[(&a, n_a)], Some((&draws, 0..200)), &ctl).unwrap();
        eprintln!(
            "entropy of 1 table ({n_a} ids): {:?} on {} threads",
            t.elapsed(),
            ctl.threads()
        );
        let t = Instant::now();
        entropy_resamples(&[(&a, n_a), (&b, 2), (&ab, n_ab)], Some((&draws, 0..200)), &ctl).unwrap();
        eprintln!("entropies of x, y and pairs ({n_ab} ids): {:?}", t.elapsed());
        let before = crate::parallel::get_num_threads();
        for threads in [1, 2] {
            crate::parallel::set_num_threads(threads).unwrap();
            let ctl = Ctl::uninterruptible().unwrap();
            let best = (0..15)
                .map(|_| {
                    let t = Instant::now();
                    entropy_resamples(&[(&a, n_a), (&b, 2), (&ab, n_ab)], Some((&draws, 0..200)), &ctl).unwrap();
                    t.elapsed()
                })
                .min()
                .unwrap();
            eprintln!("  best of 15 on {threads} thread(s): {best:?}");
        }
        crate::parallel::set_num_threads(before).unwrap();
        let t = Instant::now();
        for r in 0..200 {
            draws.rows_into(r, &mut rows);
            std::hint::black_box(joint_entropy_of(&a, &b, 2, |i| rows[i] as usize, n));
        }
        eprintln!("joint entropy by sorting pairs instead (1 thread): {:?}", t.elapsed());
    }
}
