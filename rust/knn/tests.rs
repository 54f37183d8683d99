//! The back-ends against a naive O(N²) reference, with ties and duplicates on purpose.

use super::*;

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
fn tricky_points(n: usize, d: usize, seed: u64) -> Vec<f64> {
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
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).fold(0.0, |s, t| s + t).sqrt()
    } else {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
    }
}

fn naive_sorted_neighbours(p: &Points<'_, f64>, i: usize, euclid: bool) -> Vec<(f64, u32)> {
    let mut v: Vec<(f64, u32)> =
        (0..p.n()).filter(|&j| j != i).map(|j| (naive_dist(p.row(i), p.row(j), euclid), j as u32)).collect();
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
    for &(n, d) in &[(1usize, 1usize), (2, 1), (37, 1), (300, 1), (5, 2), (300, 2), (300, 3), (400, 5), (200, 14)] {
        let data = tricky_points(n, d, (n * 31 + d) as u64);
        let pts = Points::new("x", &data, n, d).unwrap();
        let k = 3.min(n.saturating_sub(1)).max(1);
        let reference: Vec<Vec<(f64, u32)>> = (0..n).map(|i| naive_sorted_neighbours(&pts, i, false)).collect();
        // Radii: exact neighbour distances (boundary cases on purpose) and some in between.
        let radii: Vec<f64> =
            (0..n).map(|i| if n > 1 { reference[i][(i * 7) % (n - 1)].0 + if i % 3 == 0 { 0.01 } else { 0.0 } } else { 0.5 }).collect();
        for method in all_methods(d) {
            let index = build_index::<f64, Chebyshev>(pts, method, &ctl).unwrap();
            if n > k {
                let kth = index.kth_distances(k, &ctl).unwrap();
                let ids = index.knn_indices(k, &ctl).unwrap();
                for i in 0..n {
                    assert_eq!(kth[i], reference[i][k - 1].0, "kth n={n} d={d} {method:?} i={i}");
                    let expected: Vec<u32> = reference[i][..k].iter().map(|p| p.1).collect();
                    assert_eq!(&ids[i * k..(i + 1) * k], &expected[..], "ids n={n} d={d} {method:?} i={i}");
                }
            }
            for strict in [true, false] {
                let counts = index.count_within(&radii, strict, &ctl).unwrap();
                for i in 0..n {
                    let expected = reference[i].iter().filter(|p| if strict { p.0 < radii[i] } else { p.0 <= radii[i] }).count();
                    assert_eq!(counts[i] as usize, expected, "count strict={strict} n={n} d={d} {method:?} i={i}");
                }
            }
        }
    }
}

#[test]
fn euclidean_kth_distances_equal_naive() {
    let ctl = Ctl::uninterruptible().unwrap();
    for &(n, d) in &[(300usize, 1usize), (300, 2), (250, 4), (150, 11)] {
        let data = tricky_points(n, d, 99 + d as u64);
        let pts = Points::new("x", &data, n, d).unwrap();
        for method in all_methods(d) {
            let kth = build_index::<f64, Euclidean>(pts, method, &ctl).unwrap().kth_distances(4, &ctl).unwrap();
            for i in 0..n {
                let expected = naive_sorted_neighbours(&pts, i, true)[3].0;
                assert!((kth[i] - expected).abs() <= 1e-15 * expected.max(1.0), "n={n} d={d} {method:?}");
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
        let counts = build_index::<f32, Chebyshev>(pts, method, &ctl).unwrap().count_within(&radii, true, &ctl).unwrap();
        for i in 0..n {
            let expected = (0..n)
                .filter(|&j| j != i)
                .filter(|&j| {
                    let dist = (0..d).map(|c| (pts.row(i)[c] - pts.row(j)[c]).abs()).fold(0f32, f32::max);
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
    let tree = kdtree::KdTree::<f64, Chebyshev>::new(Points::new("x", &joint, n, 2).unwrap(), &ctl);
    eprintln!("tree build 2-D: {:?}", t.elapsed());
    let t = Instant::now();
    let eps = tree.kth_distances(3, &ctl).unwrap();
    eprintln!("knn 2-D: {:?}", t.elapsed());
    let t = Instant::now();
    let s = sorted1d::Sorted1D::new(Points::new("x", &x, n, 1).unwrap(), &ctl);
    eprintln!("sort 1-D: {:?}", t.elapsed());
    let t = Instant::now();
    let c = s.count_within(&eps, true, &ctl).unwrap();
    eprintln!("count 1-D: {:?} (mean {})", t.elapsed(), c.iter().map(|&v| v as f64).sum::<f64>() / n as f64);
    let t = Instant::now();
    let m = crate::special::mean_digamma_counts(&c, 1.0);
    eprintln!("digamma mean: {:?} {m}", t.elapsed());
}
