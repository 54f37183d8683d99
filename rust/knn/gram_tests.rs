//! The Gram-form search (`gram.rs`) against the naive reference: ties, duplicates, cancellation,
//! float32 and the fall-back near overflow.

use super::tests::{assert_euclidean_matches_naive, tricky_points, SplitMix};
use super::*;
use crate::points::{Points, Real};

/// `index` answers as the direct scan over the same points does, for every k in `ks`: the same
/// neighbour lists (ties by the smaller index) and the same k-th distances.
fn assert_same_as_direct_scan<T: Real>(
    index: &dyn NeighborSearch<T>,
    pts: Points<'_, T>,
    ks: &[usize],
    ctl: &Ctl,
    what: &str,
) {
    let brute = build_index::<T, Euclidean>(pts, Method::Brute, ctl).unwrap();
    for &k in ks {
        assert_eq!(
            index.knn_indices(k, ctl).unwrap(),
            brute.knn_indices(k, ctl).unwrap(),
            "{what} k={k}"
        );
        assert_eq!(
            index.kth_distances(k, ctl).unwrap(),
            brute.kth_distances(k, ctl).unwrap(),
            "{what} k={k}"
        );
    }
}

#[test]
fn gram_search_equals_naive_with_ties_and_duplicates() {
    let ctl = Ctl::uninterruptible().unwrap();
    // Small d too (the Gram path works for any d; Auto uses it above 16), and n > 512 so the
    // points span several tiles and queries several blocks.
    for &(n, d) in &[(60usize, 3usize), (200, 17), (700, 24), (300, 65)] {
        let data = tricky_points(n, d, 7 + (n * d) as u64);
        let pts = Points::new("x", &data, n, d).unwrap();
        let gram = gram::GramSearch::new(pts, &ctl).unwrap().expect("bound applies");
        assert_euclidean_matches_naive::<f64>(&gram, &pts, &[1, 2, 3, 7], &format!("gram n={n} d={d}"));
        if d > AUTO_TREE_MAX_DIM {
            let auto = build_index::<f64, Euclidean>(pts, Method::Auto, &ctl).unwrap();
            assert_same_as_direct_scan(&*auto, pts, &[4], &ctl, &format!("auto n={n} d={d}"));
        }
    }
}

/// The symmetric k-NN sweep over tile counts that exercise the round-robin schedule: one tile,
/// a last tile of one point, an even number of tiles (a sitting-out slot that is not a tile) and
/// an odd one; and the same answers from 1 and 3 threads (the schedule's rounds run in parallel,
/// so the order in which a list is fed varies, the result must not).
#[test]
fn gram_symmetric_tiles_equal_naive_at_any_thread_count() {
    for &(n, d) in &[(256usize, 18usize), (257, 20), (1024, 19), (1290, 21)] {
        let data = tricky_points(n, d, 31 + n as u64);
        let pts = Points::new("x", &data, n, d).unwrap();
        let ctl = Ctl::uninterruptible().unwrap();
        let gram = gram::GramSearch::new(pts, &ctl).unwrap().expect("bound applies");
        assert_euclidean_matches_naive::<f64>(&gram, &pts, &[1, 2, 5], &format!("symmetric n={n} d={d}"));
        for threads in [1, 3] {
            let ctl = Ctl::with_threads(threads);
            assert_same_as_direct_scan(&gram, pts, &[2, 9], &ctl, &format!("n={n} threads={threads}"));
        }
    }
}

/// k at the symmetric sweep's limit, and above it (the query-by-point sweep; the best-k lists
/// become heaps) up to k = N − 1.
#[test]
fn gram_large_k_equals_brute() {
    let ctl = Ctl::uninterruptible().unwrap();
    let (n, d) = (600, 24);
    let data = tricky_points(n, d, 77);
    let pts = Points::new("x", &data, n, d).unwrap();
    let gram = gram::GramSearch::new(pts, &ctl).unwrap().expect("bound applies");
    assert_same_as_direct_scan(
        &gram,
        pts,
        &[KBEST_SORTED_MAX, KBEST_SORTED_MAX + 3, n - 1],
        &ctl,
        "large k",
    );
}

/// The k-NN sweep scales the shifted rows by a power of two before its float32 products: data far
/// below and far above 1 (the scale's clamp at 2⁵⁰⁰ included, where the scaled rows are small and
/// f32 products underflow), in f64 and f32, with ties and duplicates, equal the direct scan.
#[test]
fn gram_scaled_products_equal_brute_at_any_magnitude() {
    let ctl = Ctl::uninterruptible().unwrap();
    let (n, d) = (300, 24);
    let base = tricky_points(n, d, 5);
    for e in [-540i32, -400, -60, 0, 70, 450] {
        let data: Vec<f64> = base.iter().map(|&v| v * 2f64.powi(e)).collect();
        let pts = Points::new("x", &data, n, d).unwrap();
        let gram = gram::GramSearch::new(pts, &ctl).unwrap().expect("bound applies");
        assert_same_as_direct_scan(&gram, pts, &[1, 3, 8], &ctl, &format!("2^{e}"));
    }
    for e in [-50i32, 0, 40] {
        let data: Vec<f32> = base.iter().map(|&v| (v * 2f64.powi(e)) as f32).collect();
        let pts = Points::new("x", &data, n, d).unwrap();
        let gram = gram::GramSearch::new(pts, &ctl).unwrap().expect("bound applies");
        assert_same_as_direct_scan(&gram, pts, &[1, 4], &ctl, &format!("f32 2^{e}"));
    }
}

/// Above 2¹⁴ dimensions d·u₃₂ > 2⁻¹⁰: the k-NN sweep keeps its products in f64.
#[test]
fn gram_products_in_f64_above_f32_range() {
    let ctl = Ctl::uninterruptible().unwrap();
    let (n, d) = (40, 16_400);
    let data = tricky_points(n, d, 9);
    let pts = Points::new("x", &data, n, d).unwrap();
    let gram = gram::GramSearch::new(pts, &ctl).unwrap().expect("bound applies");
    assert_same_as_direct_scan(&gram, pts, &[1, 5], &ctl, "f64 products");
}

/// Far from the origin and with neighbour distances far below the spread the Gram form cancels
/// badly; the candidates grow, the answers stay exact.
#[test]
fn gram_search_is_exact_under_cancellation() {
    let ctl = Ctl::uninterruptible().unwrap();
    let (n, d) = (300, 20);
    let mut rng = SplitMix(11);
    let mut data = Vec::with_capacity(n * d);
    for i in 0..n {
        // Pairs of near-duplicates (1e-7 apart) in a cloud of spread 1e3 around an offset of 1e8,
        // plus a few points far away on the other side (they pull the shift off-centre).
        let base: Vec<f64> = if i % 2 == 1 {
            data[(i - 1) * d..i * d].to_vec()
        } else {
            (0..d).map(|_| 1e8 + 1e3 * (rng.uniform() - 0.5)).collect()
        };
        for (c, &b) in base.iter().enumerate() {
            let v = if i % 50 == 7 {
                -3e8 + c as f64
            } else if i % 2 == 1 {
                b + 1e-7 * rng.uniform()
            } else {
                b
            };
            data.push(v);
        }
    }
    let pts = Points::new("x", &data, n, d).unwrap();
    let gram = gram::GramSearch::new(pts, &ctl).unwrap().expect("bound applies");
    assert_euclidean_matches_naive::<f64>(&gram, &pts, &[1, 2, 5], "cancellation");
}

#[test]
fn gram_search_equals_naive_in_float32() {
    let ctl = Ctl::uninterruptible().unwrap();
    for &(n, d, offset) in &[(400usize, 33usize, 0.0f64), (250, 18, 3e3)] {
        let data: Vec<f32> = tricky_points(n, d, 3 + d as u64)
            .iter()
            .map(|&v| (v * 1.1 + offset) as f32)
            .collect();
        let pts = Points::new("x", &data, n, d).unwrap();
        let gram = gram::GramSearch::new(pts, &ctl).unwrap().expect("bound applies");
        assert_euclidean_matches_naive::<f32>(&gram, &pts, &[1, 3, 6], &format!("f32 n={n} d={d}"));
        let auto = build_index::<f32, Euclidean>(pts, Method::Auto, &ctl).unwrap();
        assert_euclidean_matches_naive::<f32>(&*auto, &pts, &[2], &format!("f32 auto n={n} d={d}"));
    }
}

#[test]
fn gram_search_falls_back_near_overflow() {
    let ctl = Ctl::uninterruptible().unwrap();
    let (n, d) = (40, 20);
    let data: Vec<f32> = tricky_points(n, d, 1).iter().map(|&v| (v as f32) * 1e19).collect();
    let pts = Points::new("x", &data, n, d).unwrap();
    assert!(gram::GramSearch::new(pts, &ctl).unwrap().is_none());
    let auto = build_index::<f32, Euclidean>(pts, Method::Auto, &ctl).unwrap();
    assert_euclidean_matches_naive::<f32>(&*auto, &pts, &[1, 3], "near overflow");
}

/// Where the Gram-form search spends its time at N = 10⁴, d = 64, and baseline-compiled code
/// after faer's products: the grouped scan's k-th distances (32 + 32 columns) before the first
/// product and after the last (run by hand: `REPCOMPRESS_NUM_THREADS=1 cargo test --release --
/// --ignored --nocapture gram_timings`). Without `simd::clear_upper_state` after every faer call,
/// the scan took 3.06 s after a Gram-form count against 0.64 s before (2 threads); with it, 0.63 s
/// both times.
#[test]
#[ignore]
fn gram_timings() {
    use std::time::Instant;
    let ctl = Ctl::uninterruptible().unwrap();
    let (n, d) = (10_000, 64);
    let mut rng = SplitMix(5);
    let data: Vec<f64> = (0..n * d).map(|_| rng.uniform() - 0.5).collect();
    let pts = Points::new("x", &data, n, d).unwrap();
    let time_grouped = |label: &str| {
        let g = crate::knn::grouped::Grouped::new(pts, vec![0..32, 32..64], Method::Brute, &ctl).unwrap();
        let t = Instant::now();
        let k = g.kth_reduced(3, &ctl).unwrap();
        eprintln!("grouped 3-NN {label}: {:?} ({})", t.elapsed(), k[0]);
    };
    time_grouped("before the products");
    let g = gram::GramSearch::new(pts, &ctl).unwrap().unwrap();
    let t = Instant::now();
    let kth = g.kth_distances(2, &ctl).unwrap();
    eprintln!("gram 2-NN: {:?} ({})", t.elapsed(), kth[0]);
    let t = Instant::now();
    let counts = g.count_within(&kth, false, &ctl).unwrap();
    eprintln!("gram counts: {:?} ({})", t.elapsed(), counts[0]);
    let t = Instant::now();
    let sum = g.products_only(&ctl);
    eprintln!("products only: {:?} ({sum})", t.elapsed());
    time_grouped("after them");
}
