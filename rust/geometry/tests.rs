//! Pure-core tests against naive formulas on small data.

use super::clustering::{calinski_harabasz, davies_bouldin, silhouette_samples};
use super::collapse::{cdnv, cdnv_matrix, nc1, nc1_from_points, nc2};
use super::intrinsic::{effective_rank, twonn};
use super::*;
use crate::parallel::Ctl;
use crate::points::Points;

fn lcg(seed: &mut u64) -> f64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5
}

fn data(n: usize, d: usize, k: usize, seed: u64) -> (Vec<f64>, Vec<u32>) {
    let mut s = seed;
    let centres: Vec<f64> = (0..k * d).map(|_| 4.0 * lcg(&mut s)).collect();
    let codes: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
    let x = (0..n * d)
        .map(|t| centres[codes[t / d] as usize * d + t % d] + lcg(&mut s))
        .collect();
    (x, codes)
}

fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol * b.abs().max(1.0), "{a} vs {b}");
}

#[test]
fn stats_match_naive_means_and_variances() {
    let ctl = Ctl::uninterruptible().unwrap();
    let (n, d, k) = (301, 5, 4);
    let (x, codes) = data(n, d, k, 1);
    let p = Points::new("h", &x, n, d).unwrap();
    let st = ClassStats::from_points(p, &codes, k, true, &ctl).unwrap();
    let mut tw = 0.0;
    for c in 0..k {
        let rows: Vec<usize> = (0..n).filter(|&i| codes[i] as usize == c).collect();
        let mean: Vec<f64> = (0..d)
            .map(|j| rows.iter().map(|&i| x[i * d + j]).sum::<f64>() / rows.len() as f64)
            .collect();
        for (&got, &want) in st.mean(c).iter().zip(&mean) {
            close(got, want, 1e-12);
        }
        let m2: f64 = rows
            .iter()
            .map(|&i| (0..d).map(|j| (x[i * d + j] - mean[j]).powi(2)).sum::<f64>())
            .sum();
        close(st.m2(c), m2, 1e-12);
        tw += m2;
    }
    let w = st.within().unwrap();
    close((0..d).map(|j| w[j * d + j]).sum(), tw, 1e-12);
    // Naive CDNV.
    let mut sum = 0.0;
    for a in 0..k {
        for b in a + 1..k {
            let dist: f64 = (0..d).map(|j| (st.mean(a)[j] - st.mean(b)[j]).powi(2)).sum();
            let va = st.m2(a) / st.count(a) as f64;
            let vb = st.m2(b) / st.count(b) as f64;
            sum += (va + vb) / (2.0 * dist);
        }
    }
    close(cdnv(&st, 0, &ctl).unwrap(), sum / 6.0, 1e-12);
}

#[test]
fn streaming_equals_one_shot_and_nc1_paths_agree() {
    let ctl = Ctl::uninterruptible().unwrap();
    let (n, d, k) = (400, 6, 3);
    let (x, codes) = data(n, d, k, 2);
    let p = Points::new("h", &x, n, d).unwrap();
    let whole = ClassStats::from_points(p, &codes, k, true, &ctl).unwrap();
    let mut acc = ClassStats::new(d, true).unwrap();
    for (lo, hi) in [(0, 7), (7, 150), (150, 151), (151, 400)] {
        let part = Points::new("h", &x[lo * d..hi * d], hi - lo, d).unwrap();
        acc.update(part, &codes[lo..hi], k, &ctl).unwrap();
    }
    for c in 0..k {
        close(acc.m2(c), whole.m2(c), 1e-11);
    }
    for (a, b) in acc.within().unwrap().iter().zip(whole.within().unwrap()) {
        close(*a, *b, 1e-11);
    }
    let classes = Classes::new(&codes, n, k).unwrap();
    let fast = nc1_from_points(p, &classes, &whole, &ctl).unwrap();
    close(nc1(&acc, &ctl).unwrap(), fast, 1e-10);
    close(
        calinski_harabasz(&acc).unwrap(),
        calinski_harabasz(&whole).unwrap(),
        1e-11,
    );
}

#[test]
fn translation_by_a_large_offset_keeps_variances() {
    let ctl = Ctl::uninterruptible().unwrap();
    let (n, d, k) = (200, 3, 2);
    let (x, codes) = data(n, d, k, 3);
    let shifted: Vec<f64> = x.iter().map(|v| v + 1e8).collect();
    let a = ClassStats::from_points(Points::new("h", &x, n, d).unwrap(), &codes, k, false, &ctl).unwrap();
    let b = ClassStats::from_points(Points::new("h", &shifted, n, d).unwrap(), &codes, k, false, &ctl).unwrap();
    for c in 0..k {
        close(b.m2(c), a.m2(c), 1e-7);
    }
}

#[test]
fn silhouette_matches_naive() {
    let ctl = Ctl::uninterruptible().unwrap();
    let (n, d, k) = (150, 4, 3);
    let (x, mut codes) = data(n, d, k, 4);
    codes[7] = 3; // a singleton class
    let classes = Classes::new(&codes, n, 4).unwrap();
    let s = silhouette_samples(Points::new("h", &x, n, d).unwrap(), &classes, &ctl).unwrap();
    let dist = |i: usize, j: usize| {
        (0..d)
            .map(|t| (x[i * d + t] - x[j * d + t]).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    for i in 0..n {
        let own = codes[i];
        let size = |c: u32| codes.iter().filter(|&&v| v == c).count() as f64;
        if size(own) == 1.0 {
            assert_eq!(s[i], 0.0);
            continue;
        }
        let a = (0..n)
            .filter(|&j| codes[j] == own && j != i)
            .map(|j| dist(i, j))
            .sum::<f64>()
            / (size(own) - 1.0);
        let b = (0..4u32)
            .filter(|&c| c != own)
            .map(|c| (0..n).filter(|&j| codes[j] == c).map(|j| dist(i, j)).sum::<f64>() / size(c))
            .fold(f64::INFINITY, f64::min);
        close(s[i], (b - a) / a.max(b), 1e-10);
    }
}

#[test]
fn twonn_finds_the_dimension_of_a_plane_and_effective_rank_of_identity() {
    let ctl = Ctl::uninterruptible().unwrap();
    let mut s = 7u64;
    let n = 4000;
    let mut x = vec![0.0; n * 5];
    for i in 0..n {
        let (u, v) = (lcg(&mut s), lcg(&mut s));
        x[i * 5] = u;
        x[i * 5 + 1] = v;
        x[i * 5 + 3] = u - v;
    }
    x.extend_from_within(..50); // 10 duplicate rows
    let r = twonn(Points::new("h", &x, n + 10, 5).unwrap(), 0.1, &ctl).unwrap();
    assert_eq!(r.n_distinct, n);
    assert!((r.dimension - 2.0).abs() < 0.2, "{}", r.dimension);
    let eye: Vec<f64> = (0..9).map(|t| if t % 4 == 0 { 1.0 } else { 0.0 }).collect();
    close(
        effective_rank(Points::new("h", &eye, 3, 3).unwrap(), &ctl).unwrap(),
        3.0,
        1e-12,
    );
}

#[test]
fn fewer_than_two_classes_is_an_error() {
    let ctl = Ctl::uninterruptible().unwrap();
    let x = [0.0, 1.0, 2.0];
    let st = ClassStats::from_points(Points::new("h", &x, 3, 1).unwrap(), &[0, 0, 0], 1, false, &ctl).unwrap();
    assert!(matches!(
        cdnv(&st, 0, &ctl),
        Err(CoreError::InvalidArgument { arg: "labels", .. })
    ));
}

/// N × d points on a random `intrinsic`-dimensional linear subspace with standard Gaussian
/// coordinates (benches/bench_geometry.py's case 3 data, from this file's generator).
fn gaussian_subspace(n: usize, d: usize, intrinsic: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    let mut gauss = || {
        let (u, v) = (lcg(&mut s) + 0.5, lcg(&mut s) + 0.5);
        (-2.0 * (1.0 - u).ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    // An orthonormal frame (Gram–Schmidt on Gaussian vectors), `intrinsic` rows of length d.
    let mut frame: Vec<Vec<f64>> = Vec::new();
    while frame.len() < intrinsic {
        let mut v: Vec<f64> = (0..d).map(|_| gauss()).collect();
        for f in &frame {
            let dot: f64 = v.iter().zip(f).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(f).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        frame.push(v.into_iter().map(|a| a / norm).collect());
    }
    let mut x = vec![0.0; n * d];
    for row in x.chunks_mut(d) {
        for f in &frame {
            let c = gauss();
            row.iter_mut().zip(f).for_each(|(a, b)| *a += c * b);
        }
    }
    x
}

/// Where TwoNN spends its time on the benchmark's subspace case (N = 5·10⁴, d = 64, 10-D), by
/// phase (run by hand: `REPCOMPRESS_NUM_THREADS=1 cargo test --release -- --ignored --nocapture
/// twonn_timings`).
#[test]
#[ignore]
fn twonn_timings() {
    use crate::knn::metric::Euclidean;
    use crate::knn::{build_index, Method};
    use std::time::Instant;
    let ctl = Ctl::uninterruptible().unwrap();
    let (n, d) = (50_000, 64);
    let x = gaussian_subspace(n, d, 10, 3);
    let p = Points::new("h", &x, n, d).unwrap();
    for _ in 0..3 {
        let t0 = Instant::now();
        let distinct = super::intrinsic::distinct_rows(p, &ctl).unwrap();
        let t1 = Instant::now();
        let (rotated, kept) = super::intrinsic::principal_coordinates(p, &ctl).unwrap();
        let t2 = Instant::now();
        let r = Points::new("r", &rotated, n, kept).unwrap();
        let index = build_index::<f64, Euclidean>(r, Method::Auto, &ctl).unwrap();
        let t3 = Instant::now();
        let nn = index.knn_indices(2, &ctl).unwrap();
        let t4 = Instant::now();
        let full = twonn(p, 0.1, &ctl).unwrap();
        let t5 = Instant::now();
        eprintln!(
            "duplicates {:?} (none: {}), rotation {:?} ({kept} kept), tree {:?}, 2-NN {:?} ({}), whole TwoNN {:?} (d = {})",
            t1 - t0,
            distinct.is_none(),
            t2 - t1,
            t3 - t2,
            t4 - t3,
            nn[0],
            t5 - t4,
            full.dimension
        );
    }
}

/// The pass over pairs hands over every pair once, in row-major order, whatever the block size.
#[test]
fn pair_values_come_in_pair_order_in_blocks() {
    use crate::geometry::{for_pair_values, Pairs};
    let ctl = Ctl::uninterruptible().unwrap();
    let k = 37;
    for pairs in [Pairs::Upper, Pairs::Ordered] {
        let want: Vec<f64> = (0..k)
            .flat_map(|a| {
                (0..k)
                    .filter(move |&b| if pairs == Pairs::Upper { b > a } else { b != a })
                    .map(move |b| (a * 1000 + b) as f64)
            })
            .collect();
        for budget in [1, 36, 37, 100, 10_000] {
            let mut got = Vec::new();
            for_pair_values(
                k,
                pairs,
                budget,
                &ctl,
                |a, b| (a * 1000 + b) as f64,
                |v| got.extend_from_slice(v),
            )
            .unwrap();
            assert_eq!(got, want, "{pairs:?} budget {budget}");
        }
    }
}

/// CDNV, NC2 and Davies–Bouldin computed without a C × C table give the bits the table-based
/// versions gave (the same terms, added in the same order), also with C(C − 1) > 2²⁰ cosines,
/// where NC2 computes them twice.
#[test]
fn pair_sums_equal_the_table_versions_bit_for_bit() {
    let ctl = Ctl::uninterruptible().unwrap();
    for &(n, d, k) in &[(400usize, 5usize, 7usize), (2400, 2, 1100)] {
        let (x, mut codes) = data(n, d, k, 11);
        // Every class present (the generator may miss some of 1100).
        for (i, c) in codes.iter_mut().enumerate().take(k) {
            *c = i as u32;
        }
        let st = ClassStats::from_points(Points::new("h", &x, n, d).unwrap(), &codes, k, false, &ctl).unwrap();
        let present = st.present();
        let k = present.len();
        // CDNV: the C × C table, then its upper triangle summed row by row.
        let table = cdnv_matrix(&st, 0, &ctl).unwrap();
        let mut sum = 0.0;
        for a in 0..k {
            for b in a + 1..k {
                sum += table[a * k + b];
            }
        }
        assert_eq!(
            cdnv(&st, 0, &ctl).unwrap().to_bits(),
            (sum / (k * (k - 1) / 2) as f64).to_bits()
        );
        // NC2 from a table of the cosines.
        let m = st.centred_means().unwrap();
        let norms: Vec<f64> = m
            .chunks(d)
            .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
            .collect();
        let mut cos = Vec::new();
        for a in 0..k {
            for b in 0..k {
                if a != b {
                    let dot: f64 = m[a * d..(a + 1) * d]
                        .iter()
                        .zip(&m[b * d..(b + 1) * d])
                        .map(|(x, y)| x * y)
                        .sum();
                    cos.push(dot / (norms[a] * norms[b]));
                }
            }
        }
        let len = cos.len() as f64;
        let mean = cos.iter().sum::<f64>() / len;
        let std = (cos.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / len).sqrt();
        let shift = 1.0 / (k as f64 - 1.0);
        let max_angle = cos.iter().map(|c| (c + shift).abs()).sum::<f64>() / len;
        let (_, equiangular, got_max_angle) = nc2(&st, &ctl).unwrap();
        assert_eq!(
            (equiangular.to_bits(), got_max_angle.to_bits()),
            (std.to_bits(), max_angle.to_bits())
        );
        // Davies–Bouldin from the table of centroid distances.
        let intra: Vec<f64> = present
            .iter()
            .map(|&c| st.dist_sum(c).unwrap() / st.count(c) as f64)
            .collect();
        let mut cdist = vec![0.0; k * k];
        for a in 0..k {
            for b in a + 1..k {
                let v = st
                    .mean(present[a])
                    .iter()
                    .zip(st.mean(present[b]))
                    .map(|(x, y)| (x - y) * (x - y))
                    .sum::<f64>()
                    .sqrt();
                cdist[a * k + b] = v;
                cdist[b * k + a] = v;
            }
        }
        let mut total = 0.0;
        for a in 0..k {
            let mut worst = f64::NEG_INFINITY;
            for b in 0..k {
                let dist = if cdist[a * k + b] == 0.0 {
                    f64::INFINITY
                } else {
                    cdist[a * k + b]
                };
                worst = worst.max((intra[a] + intra[b]) / dist);
            }
            total += worst;
        }
        assert_eq!(
            davies_bouldin(&st, &ctl).unwrap().to_bits(),
            (total / k as f64).to_bits()
        );
    }
}
