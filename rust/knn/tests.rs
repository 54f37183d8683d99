//! The back-ends against a naive O(N²) reference, with ties and duplicates on purpose.

use super::metric::{Chebyshev, Euclidean, Metric};
use super::sort::sort_with_indices;
use super::*;
use crate::choice::Choice;
use crate::points::{Points, Real};
use crate::with_dim;

/// A small deterministic generator (SplitMix64) so the core's tests need no extra crates.
pub(crate) struct SplitMix(pub u64);
impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Points with a mix of continuous values, values on a coarse grid (ties) and duplicated rows.
pub(super) fn tricky_points(n: usize, d: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix(seed);
    let mut data = Vec::with_capacity(n * d);
    for i in 0..n {
        if i > 0 && rng.uniform() < 0.1 {
            let j = (rng.next_u64() % i as u64) as usize;
            let row: Vec<f64> = data[j * d..(j + 1) * d].to_vec();
            data.extend_from_slice(&row);
            continue;
        }
        for c in 0..d {
            let v = if c == d - 1 && d > 2 {
                1.5 // a constant column
            } else if rng.uniform() < 0.5 {
                (rng.next_u64() % 5) as f64 * 0.5
            } else {
                rng.uniform() * 2.0
            };
            data.push(v);
        }
    }
    data
}

fn naive_dist(a: &[f64], b: &[f64], euclid: bool) -> f64 {
    if euclid {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .fold(0.0, |s, t| s + t)
            .sqrt()
    } else {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
    }
}

pub(super) fn naive_sorted_neighbours(p: &Points<'_, f64>, i: usize, euclid: bool) -> Vec<(f64, u32)> {
    let mut v: Vec<(f64, u32)> = (0..p.n())
        .filter(|&j| j != i)
        .map(|j| (naive_dist(p.row(i), p.row(j), euclid), j as u32))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    v
}

fn all_methods(d: usize) -> Vec<Method> {
    let _ = d;
    vec![Method::Auto, Method::KdTree, Method::Brute]
}

#[test]
fn chebyshev_backends_equal_naive() {
    let ctl = Ctl::uninterruptible().unwrap();
    for &(n, d) in &[
        (1usize, 1usize),
        (2, 1),
        (37, 1),
        (300, 1),
        (5, 2),
        (300, 2),
        (300, 3),
        (400, 5),
        (200, 14),
    ] {
        let data = tricky_points(n, d, (n * 31 + d) as u64);
        let pts = Points::new("x", &data, n, d).unwrap();
        let k = 3.min(n.saturating_sub(1)).max(1);
        let reference: Vec<Vec<(f64, u32)>> = (0..n).map(|i| naive_sorted_neighbours(&pts, i, false)).collect();
        // Radii: exact neighbour distances (boundary cases on purpose) and some in between.
        let radii: Vec<f64> = (0..n)
            .map(|i| {
                if n > 1 {
                    reference[i][(i * 7) % (n - 1)].0 + if i % 3 == 0 { 0.01 } else { 0.0 }
                } else {
                    0.5
                }
            })
            .collect();
        for method in all_methods(d) {
            let index = build_index::<f64, Chebyshev>(pts, method, &ctl).unwrap();
            if n > k {
                let kth = index.kth_distances(k, &ctl).unwrap();
                let ids = index.knn_indices(k, &ctl).unwrap();
                for i in 0..n {
                    assert_eq!(kth[i], reference[i][k - 1].0, "kth n={n} d={d} {method:?} i={i}");
                    let expected: Vec<u32> = reference[i][..k].iter().map(|p| p.1).collect();
                    assert_eq!(
                        &ids[i * k..(i + 1) * k],
                        &expected[..],
                        "ids n={n} d={d} {method:?} i={i}"
                    );
                }
            }
            for strict in [true, false] {
                let counts = index.count_within(&radii, strict, &ctl).unwrap();
                for i in 0..n {
                    let expected = reference[i]
                        .iter()
                        .filter(|p| if strict { p.0 < radii[i] } else { p.0 <= radii[i] })
                        .count();
                    assert_eq!(
                        counts[i] as usize, expected,
                        "count strict={strict} n={n} d={d} {method:?} i={i}"
                    );
                }
            }
        }
    }
}

/// k above `KBEST_SORTED_MAX` (a heap of the best pairs; fewer queries per block in one
/// dimension), up to k = N − 1: every back-end still equals the naive neighbours, ties included.
#[test]
fn large_k_backends_equal_naive() {
    let ctl = Ctl::uninterruptible().unwrap();
    for &(n, d) in &[(300usize, 1usize), (300, 2), (260, 5), (200, 20)] {
        let data = tricky_points(n, d, (n * 7 + d) as u64);
        let pts = Points::new("x", &data, n, d).unwrap();
        let reference: Vec<Vec<(f64, u32)>> = (0..n).map(|i| naive_sorted_neighbours(&pts, i, false)).collect();
        let euclid: Vec<Vec<(f64, u32)>> = (0..n).map(|i| naive_sorted_neighbours(&pts, i, true)).collect();
        for k in [KBEST_SORTED_MAX, KBEST_SORTED_MAX + 1, 150, n - 1] {
            for method in all_methods(d) {
                let index = build_index::<f64, Chebyshev>(pts, method, &ctl).unwrap();
                let kth = index.kth_distances(k, &ctl).unwrap();
                let ids = index.knn_indices(k, &ctl).unwrap();
                for i in 0..n {
                    assert_eq!(kth[i], reference[i][k - 1].0, "kth n={n} d={d} k={k} {method:?} i={i}");
                    let expected: Vec<u32> = reference[i][..k].iter().map(|p| p.1).collect();
                    assert_eq!(
                        &ids[i * k..(i + 1) * k],
                        &expected[..],
                        "ids n={n} d={d} k={k} {method:?}"
                    );
                }
                // Euclidean (the Gram-form search at d = 20 under Auto).
                let kth = build_index::<f64, Euclidean>(pts, method, &ctl)
                    .unwrap()
                    .kth_distances(k, &ctl)
                    .unwrap();
                for (i, &got) in kth.iter().enumerate() {
                    let expected = euclid[i][k - 1].0;
                    assert!((got - expected).abs() <= 1e-15 * expected.max(1.0), "n={n} d={d} k={k}");
                }
            }
        }
    }
}

/// The heap of `KBest` (k > `KBEST_SORTED_MAX`) holds the same pairs, and reports the same
/// `worst()` after every candidate, as the sorted list (k ≤ `KBEST_SORTED_MAX`) would.
#[test]
fn kbest_heap_equals_sorted_list() {
    let mut rng = SplitMix(3);
    let k = KBEST_SORTED_MAX + 37;
    let mut heap = KBest::<f64>::new(k);
    // The reference: all candidates so far, sorted, cut at k.
    let mut seen: Vec<(f64, u32)> = Vec::new();
    for round in 0..3 {
        heap.clear();
        seen.clear();
        for idx in 0..2000u32 {
            let dist = (rng.next_u64() % 300) as f64 * 0.5; // many ties
            heap.consider(dist, idx);
            seen.push((dist, idx));
            seen.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            seen.truncate(k);
            let want = if seen.len() == k { seen[k - 1].0 } else { f64::INFINITY };
            assert_eq!(heap.worst(), want, "round {round} after {idx}");
        }
        assert_eq!(heap.sorted(), &seen[..]);
    }
}

#[test]
fn euclidean_kth_distances_equal_naive() {
    let ctl = Ctl::uninterruptible().unwrap();
    for &(n, d) in &[(300usize, 1usize), (300, 2), (250, 4), (150, 11)] {
        let data = tricky_points(n, d, 99 + d as u64);
        let pts = Points::new("x", &data, n, d).unwrap();
        for method in all_methods(d) {
            let kth = build_index::<f64, Euclidean>(pts, method, &ctl)
                .unwrap()
                .kth_distances(4, &ctl)
                .unwrap();
            for (i, &got) in kth.iter().enumerate() {
                let expected = naive_sorted_neighbours(&pts, i, true)[3].0;
                assert!(
                    (got - expected).abs() <= 1e-15 * expected.max(1.0),
                    "n={n} d={d} {method:?}"
                );
            }
        }
    }
}

#[test]
fn float32_counts_equal_naive_in_float32() {
    let ctl = Ctl::uninterruptible().unwrap();
    let (n, d) = (500, 2);
    let data: Vec<f32> = tricky_points(n, d, 5).iter().map(|&v| (v * 1.1) as f32).collect();
    let pts = Points::new("x", &data, n, d).unwrap();
    let radii: Vec<f32> = (0..n).map(|i| 0.05 + (i % 10) as f32 * 0.05).collect();
    for method in all_methods(d) {
        let counts = build_index::<f32, Chebyshev>(pts, method, &ctl)
            .unwrap()
            .count_within(&radii, true, &ctl)
            .unwrap();
        for i in 0..n {
            let expected = (0..n)
                .filter(|&j| j != i)
                .filter(|&j| {
                    let dist = (0..d)
                        .map(|c| (pts.row(i)[c] - pts.row(j)[c]).abs())
                        .fold(0f32, f32::max);
                    dist < radii[i]
                })
                .count();
            assert_eq!(counts[i] as usize, expected);
        }
    }
}

#[test]
fn invalid_input_is_an_error_not_a_panic() {
    let ctl = Ctl::uninterruptible().unwrap();
    let data = [0.0, 1.0, f64::NAN, 3.0];
    let err = Points::new("x", &data, 2, 2).unwrap_err();
    assert!(err.to_string().contains("row 1"), "{err}");
    let data = [0.0, 1.0, 2.0];
    let pts = Points::new("x", &data, 3, 1).unwrap();
    for method in all_methods(1) {
        let index = build_index::<f64, Chebyshev>(pts, method, &ctl).unwrap();
        assert!(index.kth_distances(3, &ctl).is_err());
        assert!(index.kth_distances(0, &ctl).is_err());
    }
    assert!(Points::<f64>::new("x", &[], 0, 1).is_err());
    assert!(Method::parse("ball").is_err());
}

/// Phase timings at N = 10⁶ (run by hand: `cargo test --release -- --ignored --nocapture phase_timings`).
#[test]
#[ignore]
fn phase_timings() {
    use std::time::Instant;
    let ctl = Ctl::uninterruptible().unwrap();
    let n = 1_000_000;
    let mut rng = SplitMix(1);
    let x: Vec<f64> = (0..n).map(|_| rng.uniform()).collect();
    let y: Vec<f64> = x.iter().map(|v| v + rng.uniform()).collect();
    let joint: Vec<f64> = x.iter().zip(&y).flat_map(|(a, b)| [*a, *b]).collect();
    let t = Instant::now();
    let tree = kdtree::KdTree::<f64, Chebyshev>::new(Points::new("x", &joint, n, 2).unwrap(), &ctl).unwrap();
    eprintln!("tree build 2-D: {:?}", t.elapsed());
    let t = Instant::now();
    let eps = tree.kth_distances(3, &ctl).unwrap();
    eprintln!("knn 2-D: {:?}", t.elapsed());
    let t = Instant::now();
    let s = sorted1d::Sorted1D::new(Points::new("x", &x, n, 1).unwrap(), &ctl).unwrap();
    eprintln!("sort 1-D: {:?}", t.elapsed());
    let t = Instant::now();
    let c = s.count_within(&eps, true, &ctl).unwrap();
    eprintln!(
        "count 1-D: {:?} (mean {})",
        t.elapsed(),
        c.iter().map(|&v| v as f64).sum::<f64>() / n as f64
    );
    let t = Instant::now();
    let m = crate::special::mean_digamma_counts(&c, 1.0);
    eprintln!("digamma mean: {:?} {m}", t.elapsed());
}

/// Every neighbour answer of `index` equals the naive reference exactly: k-th distances, k-NN
/// indices (ties by smaller index) and strict / inclusive counts at radii that are exact
/// neighbour distances (boundary cases) or in between. The reference is stated here, not taken
/// from [`Metric`]: `reduced` is the norm's value of a pair (the max of the gaps, or the sum of
/// squares in column order), `finish` turns it into the distance and `reduce_radius` a radius
/// into the value counts compare with.
fn assert_matches_naive<T: Real>(
    index: &dyn NeighborSearch<T>,
    p: &Points<'_, T>,
    ks: &[usize],
    what: &str,
    norm: (impl Fn(&[T], &[T]) -> T, impl Fn(T) -> T, impl Fn(T) -> T),
) {
    let (reduced, finish, reduce_radius) = norm;
    let ctl = Ctl::uninterruptible().unwrap();
    let n = p.n();
    let reference: Vec<Vec<(T, u32)>> = (0..n)
        .map(|i| {
            let mut v: Vec<(T, u32)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (finish(reduced(p.row(i), p.row(j))), j as u32))
                .collect();
            v.sort_by(|a, b| a.0.total_order(&b.0).then(a.1.cmp(&b.1)));
            v
        })
        .collect();
    for &k in ks {
        let kth = index.kth_distances(k, &ctl).unwrap();
        let ids = index.knn_indices(k, &ctl).unwrap();
        for i in 0..n {
            assert!(
                kth[i].total_order(&reference[i][k - 1].0).is_eq(),
                "{what} kth k={k} i={i}"
            );
            let expected: Vec<u32> = reference[i][..k].iter().map(|q| q.1).collect();
            assert_eq!(&ids[i * k..(i + 1) * k], &expected[..], "{what} ids k={k} i={i}");
        }
    }
    let radii: Vec<T> = (0..n)
        .map(|i| {
            let r = reference[i][(i * 7) % (n - 1)].0;
            if i % 3 == 0 {
                r + r * r
            } else {
                r
            }
        })
        .collect();
    for strict in [true, false] {
        let counts = index.count_within(&radii, strict, &ctl).unwrap();
        for i in 0..n {
            let bound = reduce_radius(radii[i]);
            let expected = (0..n)
                .filter(|&j| j != i && within(reduced(p.row(i), p.row(j)), bound, strict))
                .count();
            assert_eq!(counts[i] as usize, expected, "{what} count strict={strict} i={i}");
        }
    }
}

/// [`assert_matches_naive`] for the Euclidean norm: the engine compares the sum of squares (in
/// column order) with r·r.
pub(super) fn assert_euclidean_matches_naive<T: Real>(
    index: &dyn NeighborSearch<T>,
    p: &Points<'_, T>,
    ks: &[usize],
    what: &str,
) {
    let sum_of_squares = |a: &[T], b: &[T]| {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (x - y) * (x - y))
            .fold(T::ZERO, |s, t| s + t)
    };
    assert_matches_naive(index, p, ks, what, (sum_of_squares, |v: T| v.sqrt(), |r: T| r * r));
}

/// [`assert_matches_naive`] for the max-norm.
pub(super) fn assert_chebyshev_matches_naive<T: Real>(
    index: &dyn NeighborSearch<T>,
    p: &Points<'_, T>,
    ks: &[usize],
    what: &str,
) {
    let largest_gap = |a: &[T], b: &[T]| a.iter().zip(b).map(|(&x, &y)| (x - y).abs()).fold(T::ZERO, T::max_of);
    assert_matches_naive(index, p, ks, what, (largest_gap, |v: T| v, |r: T| r));
}

/// The leaf scan (chunked, coordinate-major leaves) returns `Metric::dist` bit for bit, in the
/// baseline build and in the version `leaf_scan` picks for this processor (AVX2 where present),
/// for full and partial chunks, f32 and f64, both metrics, every unrolled dimension and a runtime
/// one; and its second result is the smallest distance.
#[test]
fn leaf_scan_equals_metric_dist_bit_for_bit() {
    trait FromF64: Real {
        fn from_f64(v: f64) -> Self;
    }
    impl FromF64 for f64 {
        fn from_f64(v: f64) -> Self {
            v
        }
    }
    impl FromF64 for f32 {
        fn from_f64(v: f64) -> Self {
            v as f32
        }
    }
    fn check<T: FromF64, M: Metric>(data: &[f64], d: usize) {
        let rows: Vec<T> = data.iter().map(|&v| T::from_f64(v)).collect();
        for m in [1usize, 5, 8, 9, 16, 23, 24, 31, 40, 64] {
            let mut block = vec![T::ZERO; m * d];
            for j in 0..m {
                for k in 0..d {
                    block[kdtree::leaf_offset(m, d, j, k)] = rows[(j + 1) * d + k];
                }
            }
            for qi in [0usize, 3] {
                let q = &rows[qi * d..(qi + 1) * d];
                let mut plain = vec![T::ZERO; m];
                let mut picked = vec![T::ZERO; m];
                let (near_plain, near_picked) = with_dim!(d, D => {
                    let a = kdtree::leaf_distances::<T, M, D>(q, &block, m, &mut plain);
                    // SAFETY: `leaf_scan` picks a version this processor runs.
                    let b = unsafe { kdtree::leaf_scan::<T, M, D>()(q, &block, m, &mut picked) };
                    (a, b)
                });
                let mut nearest = T::INFINITY;
                for j in 0..m {
                    let expected = M::dist::<T, 0>(q, &rows[(j + 1) * d..(j + 2) * d]);
                    assert!(plain[j].total_order(&expected).is_eq(), "baseline d={d} m={m} j={j}");
                    assert!(picked[j].total_order(&expected).is_eq(), "picked d={d} m={m} j={j}");
                    nearest = nearest.min_of(expected);
                }
                assert!(near_plain.total_order(&nearest).is_eq() && near_picked.total_order(&nearest).is_eq());
            }
        }
    }
    for d in (1..=17).chain([24]) {
        let data = tricky_points(65, d, 40 + d as u64);
        // Offsets far from zero make the differences round.
        let shifted: Vec<f64> = data
            .iter()
            .enumerate()
            .map(|(t, &v)| v * 1.37 + (t % 3) as f64 * 1e3)
            .collect();
        for x in [&data, &shifted] {
            check::<f64, Euclidean>(x, d);
            check::<f64, Chebyshev>(x, d);
            check::<f32, Euclidean>(x, d);
            check::<f32, Chebyshev>(x, d);
        }
    }
}

/// The k-d tree on trees several levels deep (the other tests' point sets fit in one or two
/// leaves above three dimensions): k-NN distances and sets and radius counts equal the naive
/// reference, Euclidean (f64 and f32) and Chebyshev, with ties and duplicates.
#[test]
fn kdtree_equals_naive_on_deep_trees() {
    let ctl = Ctl::uninterruptible().unwrap();
    for &(n, d) in &[
        (3000usize, 2usize),
        (2000, 3),
        (2500, 5),
        (2500, 10),
        (1500, 16),
        (1200, 17),
    ] {
        let data = tricky_points(n, d, 1000 + d as u64);
        let pts = Points::new("x", &data, n, d).unwrap();
        let tree = kdtree::KdTree::<f64, Euclidean>::new(pts, &ctl).unwrap();
        assert_euclidean_matches_naive::<f64>(&tree, &pts, &[1, 2, 3], &format!("kd-tree n={n} d={d}"));
        let data32: Vec<f32> = data.iter().map(|&v| (v * 1.1) as f32).collect();
        let pts32 = Points::new("x", &data32, n, d).unwrap();
        let tree32 = kdtree::KdTree::<f32, Euclidean>::new(pts32, &ctl).unwrap();
        assert_euclidean_matches_naive::<f32>(&tree32, &pts32, &[2], &format!("kd-tree f32 n={n} d={d}"));

        let tree = kdtree::KdTree::<f64, Chebyshev>::new(pts, &ctl).unwrap();
        let k = 3;
        let reference: Vec<Vec<(f64, u32)>> = (0..n).map(|i| naive_sorted_neighbours(&pts, i, false)).collect();
        let kth = tree.kth_distances(k, &ctl).unwrap();
        let ids = tree.knn_indices(k, &ctl).unwrap();
        let radii: Vec<f64> = (0..n)
            .map(|i| reference[i][(i * 7) % 40].0 + if i % 3 == 0 { 0.01 } else { 0.0 })
            .collect();
        let counts = [true, false].map(|strict| tree.count_within(&radii, strict, &ctl).unwrap());
        for i in 0..n {
            assert_eq!(kth[i], reference[i][k - 1].0, "chebyshev kth n={n} d={d} i={i}");
            let expected: Vec<u32> = reference[i][..k].iter().map(|p| p.1).collect();
            assert_eq!(
                &ids[i * k..(i + 1) * k],
                &expected[..],
                "chebyshev ids n={n} d={d} i={i}"
            );
            for (strict, c) in [true, false].iter().zip(&counts) {
                let expected = reference[i]
                    .iter()
                    .filter(|p| if *strict { p.0 < radii[i] } else { p.0 <= radii[i] })
                    .count();
                assert_eq!(
                    c[i] as usize, expected,
                    "chebyshev count strict={strict} n={n} d={d} i={i}"
                );
            }
        }
    }
}

/// The bucket sort orders exactly like a comparison sort on (value in total order, index):
/// ties, signed zeros, a skewed distribution (crowded buckets), huge spans, f32 and f64.
#[test]
fn sort_with_indices_equals_comparison_sort() {
    // The sort splits its buckets into one group per thread: 1, 2 and 3 threads.
    let ctls: Vec<Ctl> = (1..=3).map(Ctl::with_threads).collect();
    let check = |values: &[f64], what: &str| {
        fn one<T: Real>(values: &[T], ctl: &Ctl, what: &str) {
            let (sorted, order) = sort_with_indices(values, ctl);
            let mut pairs: Vec<(T, u32)> = values.iter().enumerate().map(|(i, &v)| (v, i as u32)).collect();
            pairs.sort_by(|a, b| a.0.total_order(&b.0).then(a.1.cmp(&b.1)));
            let expected_order: Vec<u32> = pairs.iter().map(|p| p.1).collect();
            let threads = ctl.threads();
            assert_eq!(order, expected_order, "{what}, {threads} threads");
            assert!(
                sorted.iter().zip(&pairs).all(|(a, p)| a.total_order(&p.0).is_eq()),
                "{what}, {threads} threads"
            );
        }
        let v32: Vec<f32> = values.iter().map(|&a| a as f32).filter(|a| a.is_finite()).collect();
        for ctl in &ctls {
            one(values, ctl, what);
            one(&v32, ctl, what);
        }
    };
    let mut rng = SplitMix(8);
    for &n in &[1usize, 5, 63, 64, 65, 1000, 20_000, 70_001] {
        let continuous: Vec<f64> = (0..n).map(|_| rng.uniform() * 2.0 - 1.0).collect();
        let skewed: Vec<f64> = (0..n)
            .map(|_| rng.uniform().powi(12) * if rng.uniform() < 0.5 { -1.0 } else { 1.0 })
            .collect();
        let zeros: Vec<f64> = (0..n)
            .map(|i| [0.0, -0.0, 1.0, -1.0, 0.5][(rng.next_u64() % 5) as usize] * (1 + i % 2) as f64)
            .collect();
        let huge: Vec<f64> = (0..n).map(|_| (rng.uniform() * 2.0 - 1.0) * f64::MAX).collect();
        let grid: Vec<f64> = (0..n).map(|_| (rng.next_u64() % 7) as f64 * 0.25).collect();
        for (what, v) in [
            ("continuous", continuous),
            ("skewed", skewed),
            ("zeros", zeros),
            ("huge", huge),
            ("grid", grid),
        ] {
            check(&v, what);
        }
    }
}

/// Phases of a 4-D max-norm entropy at N = 10⁵ and of the KSG-1 brute-force path at N = 10⁴,
/// 96-D joint (run by hand: `cargo test --profile dev-fast -- --ignored --nocapture
/// chebyshev_phase_timings`).
#[test]
#[ignore]
fn chebyshev_phase_timings() {
    use std::time::Instant;
    let ctl = Ctl::uninterruptible().unwrap();
    let mut rng = SplitMix(4);
    let normal = |rng: &mut SplitMix| {
        let (u, v) = (rng.uniform().max(1e-300), rng.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    let (n, d) = (100_000, 4);
    let x: Vec<f64> = (0..n * d).map(|_| normal(&mut rng)).collect();
    for _ in 0..3 {
        let t = Instant::now();
        let tree = kdtree::KdTree::<f64, Chebyshev>::new(Points::new("x", &x, n, d).unwrap(), &ctl).unwrap();
        let build = t.elapsed();
        let t = Instant::now();
        let eps = tree.kth_distances(3, &ctl).unwrap();
        eprintln!("4-D N=1e5: build {build:?}, 3-NN {:?} ({})", t.elapsed(), eps[0]);
    }
    let (n, dx, dy) = (10_000, 64, 32);
    let joint: Vec<f64> = (0..n * (dx + dy)).map(|_| normal(&mut rng)).collect();
    let xs: Vec<f64> = joint.chunks(dx + dy).flat_map(|r| r[..dx].to_vec()).collect();
    for _ in 0..2 {
        let t = Instant::now();
        let eps = brute::BruteForce::<f64, Chebyshev>::new(Points::new("x", &joint, n, dx + dy).unwrap())
            .kth_distances(3, &ctl)
            .unwrap();
        let knn = t.elapsed();
        let t = Instant::now();
        let c = brute::BruteForce::<f64, Chebyshev>::new(Points::new("x", &xs, n, dx).unwrap())
            .count_within(&eps, true, &ctl)
            .unwrap();
        eprintln!(
            "96-D N=1e4: 3-NN {knn:?}, 64-D counts {:?} (mean {})",
            t.elapsed(),
            c.iter().map(|&v| v as f64).sum::<f64>() / n as f64
        );
    }
}

/// The flat k-th-distance search of the k-d tree (k ≤ 8, up to 6 dimensions) returns the group
/// walk's distances bit for bit, and the naive k-th distances, for every k it serves: tied and
/// duplicated rows and a constant column (`tricky_points`), untied Gaussian-like rows, a single
/// leaf holding fewer than k + 1 other points of some query's box, both metrics, f64 and f32.
#[test]
fn flat_kth_distances_equal_the_walk_and_naive() {
    let ctl = Ctl::uninterruptible().unwrap();
    fn both<T: Real, M: Metric>(tree: &kdtree::KdTree<T, M>, k: usize, ctl: &Ctl, what: &str) -> Vec<T> {
        let flat = tree.kth_distances_flat(k, ctl).unwrap();
        let walk = tree.kth_distances_walk(k, ctl).unwrap();
        let bits = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<u64>>();
        assert_eq!(bits(&flat), bits(&walk), "{what} k={k}: flat against walk");
        assert_eq!(tree.kth_distances(k, ctl).unwrap(), flat, "{what} k={k}: the dispatch");
        flat
    }
    for d in 1..=6usize {
        for &n in &[2usize, 5, 9, 40, 130, 700, 2500] {
            let mut rng = SplitMix(77 + (n * 7 + d) as u64);
            let untied: Vec<f64> = (0..n * d)
                .map(|_| (0..4).map(|_| rng.uniform()).sum::<f64>() - 2.0)
                .collect();
            let tricky = tricky_points(n, d, (n * 13 + d) as u64);
            for (data, kind) in [(&tricky, "tricky"), (&untied, "untied")] {
                let pts = Points::new("x", data, n, d).unwrap();
                let naive = (n <= 700).then(|| {
                    [false, true].map(|euclid| {
                        (0..n)
                            .map(|i| naive_sorted_neighbours(&pts, i, euclid))
                            .collect::<Vec<_>>()
                    })
                });
                let cheb = kdtree::KdTree::<f64, Chebyshev>::new(pts, &ctl).unwrap();
                let eucl = kdtree::KdTree::<f64, Euclidean>::new(pts, &ctl).unwrap();
                let data32: Vec<f32> = data.iter().map(|&v| v as f32).collect();
                let pts32 = Points::new("x", &data32, n, d).unwrap();
                let cheb32 = kdtree::KdTree::<f32, Chebyshev>::new(pts32, &ctl).unwrap();
                let eucl32 = kdtree::KdTree::<f32, Euclidean>::new(pts32, &ctl).unwrap();
                for k in 1..=8.min(n - 1) {
                    let what = format!("{kind} n={n} d={d}");
                    let kc = both(&cheb, k, &ctl, &format!("chebyshev {what}"));
                    let ke = both(&eucl, k, &ctl, &format!("euclidean {what}"));
                    both(&cheb32, k, &ctl, &format!("chebyshev f32 {what}"));
                    both(&eucl32, k, &ctl, &format!("euclidean f32 {what}"));
                    if let Some([rc, re]) = &naive {
                        for i in 0..n {
                            assert_eq!(kc[i], rc[i][k - 1].0, "chebyshev {what} k={k} i={i}: naive");
                            assert_eq!(ke[i], re[i][k - 1].0, "euclidean {what} k={k} i={i}: naive");
                        }
                    }
                }
            }
        }
    }
}
