//! The brute-force scan (chunked, coordinate-major copies scanned in vector lanes) against the
//! naive reference: distances bit for bit, neighbour sets with ties by index, strict and
//! inclusive counts, at dimensions and sample sizes around the chunk and group boundaries.

use super::brute::{self, BruteForce, Chunked, LANES};
use super::metric::{Chebyshev, Euclidean, Metric};
use super::tests::{assert_chebyshev_matches_naive, assert_euclidean_matches_naive, tricky_points};
use crate::points::{Points, Real};
use crate::with_dim;

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

/// Dimensions around the group of eight coordinates and the unrolled sizes (1–16).
const DIMS: [usize; 14] = [1, 2, 4, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 96];

/// Tricky points (ties, duplicate rows, a constant column), scaled and shifted so that
/// differences round, in `T`.
fn data<T: FromF64>(n: usize, d: usize, seed: u64) -> Vec<T> {
    tricky_points(n, d, seed)
        .iter()
        .enumerate()
        .map(|(t, &v)| T::from_f64(v * 1.37 + (t % 3) as f64 * 10.0))
        .collect()
}

/// `chunk_distances` gives `Metric::dist` bit for bit in every lane, and gives up (`None`) only
/// when every lane's distance exceeds the bound.
#[test]
fn chunk_distances_equal_metric_dist_bit_for_bit() {
    fn check<T: FromF64, M: Metric>(d: usize) {
        let n = 3 * LANES - 3;
        let rows = data::<T>(n + 2, d, 50 + d as u64);
        let pts = Points::new("x", &rows[..n * d], n, d).unwrap();
        let chunked = Chunked::new(&pts).unwrap();
        for qi in [n, n + 1, 0, 5] {
            let q = &rows[qi * d..(qi + 1) * d];
            for c in 0..n.div_ceil(LANES) {
                let exact: Vec<T> = (0..LANES.min(n - c * LANES))
                    .map(|l| M::dist::<T, 0>(q, pts.row(c * LANES + l)))
                    .collect();
                let mut bounds = vec![T::INFINITY, T::ZERO];
                bounds.extend(exact.iter().copied());
                for bound in bounds {
                    let got = with_dim!(d, D => brute::chunk_distances::<T, M, D>(q, chunked.chunk(c), bound));
                    match got {
                        Some(got) => {
                            for (l, e) in exact.iter().enumerate() {
                                assert!(got[l].total_order(e).is_eq(), "d={d} c={c} l={l}");
                            }
                        }
                        None => assert!(exact.iter().all(|&e| e > bound), "gave up too early d={d} c={c}"),
                    }
                }
            }
        }
    }
    for d in DIMS {
        check::<f64, Chebyshev>(d);
        check::<f64, Euclidean>(d);
        check::<f32, Chebyshev>(d);
        check::<f32, Euclidean>(d);
    }
}

/// The brute-force back-end against the naive reference, max-norm and Euclidean, f64 and f32,
/// sample sizes below, at and above whole chunks, k up to N − 1.
#[test]
fn brute_force_equals_naive_around_chunk_boundaries() {
    for d in DIMS {
        for n in [2usize, 7, 8, 9, 17, 130] {
            let ks: Vec<usize> = [1, 3, n - 1].into_iter().filter(|&k| k < n).collect();
            // The Euclidean reference orders by the rounded square root (the engine by the squared
            // distance, docs/spec.md §1.2), which can merge two squared distances far down a
            // float32 list: small k only.
            let ks_euclid: Vec<usize> = [1, 3].into_iter().filter(|&k| k < n).collect();
            let x64 = data::<f64>(n, d, (n * 131 + d) as u64);
            let p64 = Points::new("x", &x64, n, d).unwrap();
            let what = format!("brute n={n} d={d}");
            assert_chebyshev_matches_naive::<f64>(&BruteForce::<f64, Chebyshev>::new(p64), &p64, &ks, &what);
            assert_euclidean_matches_naive::<f64>(&BruteForce::<f64, Euclidean>::new(p64), &p64, &ks_euclid, &what);
            let x32 = data::<f32>(n, d, (n * 17 + d) as u64);
            let p32 = Points::new("x", &x32, n, d).unwrap();
            let what = format!("brute f32 n={n} d={d}");
            assert_chebyshev_matches_naive::<f32>(&BruteForce::<f32, Chebyshev>::new(p32), &p32, &ks, &what);
            assert_euclidean_matches_naive::<f32>(&BruteForce::<f32, Euclidean>::new(p32), &p32, &ks_euclid, &what);
        }
    }
}

/// Many queries over many tiles and query blocks (the other tests fit in one): rows that are all
/// duplicates of a few, so that most distances tie.
#[test]
fn brute_force_equals_naive_with_many_ties_over_many_tiles() {
    let (n, d) = (700usize, 96usize);
    let base = data::<f64>(40, d, 9);
    let x: Vec<f64> = (0..n)
        .flat_map(|i| base[(i * 7 % 40) * d..(i * 7 % 40 + 1) * d].to_vec())
        .collect();
    let p = Points::new("x", &x, n, d).unwrap();
    assert_chebyshev_matches_naive::<f64>(
        &BruteForce::<f64, Chebyshev>::new(p),
        &p,
        &[1, 3, 20],
        "duplicates d=96",
    );
    let x = data::<f64>(n, 33, 4);
    let p = Points::new("x", &x, n, 33).unwrap();
    assert_chebyshev_matches_naive::<f64>(&BruteForce::<f64, Chebyshev>::new(p), &p, &[3], "tiles d=33");
}
