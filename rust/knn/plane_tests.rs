//! The strip plane (`plane.rs`) of the 1-D + 1-D KSG-1 against the naive reference, and the
//! timings of its phases (run by hand).

use super::sort::sort_with_indices;
use super::tests::{naive_sorted_neighbours, tricky_points, SplitMix};
use super::*;

/// The strip search of the plane against the naive k-th distances (k = 1–6: fixed best-k slots;
/// above: a growing list; above `KBEST_SORTED_MAX`: a heap, and strips cut into pieces of
/// queries), on points with tied and duplicated coordinates, constant or quantised columns, and
/// sizes that make one strip or many.
#[test]
fn plane_kth_distances_equal_naive() {
    use super::plane::StripPlane;
    let ctl = Ctl::uninterruptible().unwrap();
    let mut rng = SplitMix(17);
    for &n in &[2usize, 3, 9, 60, 400, 2500] {
        let tricky = tricky_points(n, 2, n as u64 * 7 + 1);
        let layouts: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
            (
                "tricky",
                tricky.iter().step_by(2).copied().collect(),
                tricky.iter().skip(1).step_by(2).copied().collect(),
            ),
            (
                "constant x",
                vec![0.25; n],
                (0..n).map(|_| (rng.next_u64() % 7) as f64).collect(),
            ),
            (
                "quantised",
                (0..n).map(|_| (rng.next_u64() % 3) as f64).collect(),
                (0..n).map(|_| (rng.next_u64() % 4) as f64 * 0.1).collect(),
            ),
            (
                "continuous",
                (0..n).map(|_| rng.uniform() * 10.0 - 5.0).collect(),
                (0..n).map(|_| rng.uniform().powi(3)).collect(),
            ),
            ("all equal", vec![-1.5; n], vec![2.0; n]),
        ];
        for (name, x, y) in layouts {
            let joint: Vec<f64> = x.iter().zip(&y).flat_map(|(&a, &b)| [a, b]).collect();
            let pts = Points::new("xy", &joint, n, 2).unwrap();
            let reference: Vec<Vec<(f64, u32)>> = (0..n).map(|i| naive_sorted_neighbours(&pts, i, false)).collect();
            for k in [1usize, 2, 3, 4, 5, 6, 7, 20, 64, 65, 300, n.saturating_sub(1)] {
                if k >= n || k == 0 {
                    continue;
                }
                let kth = StripPlane::new(&x, &y, k, &ctl)
                    .unwrap()
                    .kth_distances(k, &ctl)
                    .unwrap();
                for i in 0..n {
                    assert_eq!(kth[i], reference[i][k - 1].0, "{name} n={n} k={k} i={i}");
                }
            }
        }
    }
}

/// The x and y indices handed over by the plane count exactly like the naive scan, on 1, 2 and
/// 3 threads (the y index also orders the strips, distributed by groups of strips per thread):
/// the x index by x position, the y index by the x positions its order gives.
#[test]
fn plane_indices_count_equal_naive() {
    use super::plane::StripPlane;
    for n in [5usize, 700, 3000] {
        let data = tricky_points(n, 2, 3 + n as u64);
        let (x, y): (Vec<f64>, Vec<f64>) = data.chunks(2).map(|r| (r[0], r[1])).unzip();
        // x-sorted position → index, ties by index (stated here, not taken from the sort).
        let mut by_x: Vec<usize> = (0..n).collect();
        by_x.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(a.cmp(&b)));
        let naive = |v: &[f64], eps: &[f64], strict: bool| -> Vec<usize> {
            (0..n)
                .map(|i| {
                    (0..n)
                        .filter(|&j| j != i && within((v[j] - v[i]).abs(), eps[i], strict))
                        .count()
                })
                .collect()
        };
        for threads in [1, 2, 3] {
            let ctl = Ctl::with_threads(threads);
            let plane = StripPlane::new(&x, &y, 3, &ctl).unwrap();
            let eps = plane.kth_distances(3, &ctl).unwrap();
            let eps_by_pos = plane.kth_distances_by_x_position(3, &ctl).unwrap();
            let (x_index, y_index) = plane.into_indices();
            for strict in [true, false] {
                let (want_x, want_y) = (naive(&x, &eps, strict), naive(&y, &eps, strict));
                let got_x = x_index.count_within_by_position(&eps_by_pos, strict, &ctl).unwrap();
                let got_y = y_index.count_within(&eps_by_pos, strict, &ctl).unwrap();
                for (p, &i) in by_x.iter().enumerate() {
                    let at = format!("n={n} threads={threads} strict={strict} i={i}");
                    assert_eq!(got_x[p] as usize, want_x[i], "x {at}");
                    assert_eq!(got_y[p] as usize, want_y[i], "y {at}");
                }
            }
        }
    }
}

/// The two sorts the plane runs side by side on two or more threads give what sorting y in
/// x-sorted order gives: x ascending with ties by index, and y's order as x positions ascending
/// in y with ties by x position (stated here, not taken from the sort), on tied, quantised and
/// continuous values, below and above the bucket sort's 64 values, on 2, 3 and 4 threads.
#[test]
fn side_by_side_sorts_equal_sorting_y_in_x_order() {
    use super::plane::sort_both_side_by_side;
    let mut rng = SplitMix(29);
    for n in [5usize, 63, 64, 700, 5000, 40_000] {
        let tricky = tricky_points(n, 2, 11 + n as u64);
        let layouts: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
            (
                "tricky",
                tricky.iter().step_by(2).copied().collect(),
                tricky.iter().skip(1).step_by(2).copied().collect(),
            ),
            (
                "quantised",
                (0..n).map(|_| (rng.next_u64() % 3) as f64).collect(),
                (0..n).map(|_| (rng.next_u64() % 5) as f64 * 0.1 - 0.2).collect(),
            ),
            (
                "continuous",
                (0..n).map(|_| rng.uniform() * 10.0 - 5.0).collect(),
                (0..n).map(|_| rng.uniform().powi(3)).collect(),
            ),
            (
                "signed zeros",
                (0..n).map(|i| if i % 2 == 0 { 0.0 } else { -0.0 }).collect(),
                (0..n).map(|i| if i % 3 == 0 { -0.0 } else { 0.0 }).collect(),
            ),
        ];
        for (name, x, y) in layouts {
            let mut by_x: Vec<u32> = (0..n as u32).collect();
            by_x.sort_by(|&a, &b| x[a as usize].total_cmp(&x[b as usize]).then(a.cmp(&b)));
            let mut by_y: Vec<u32> = (0..n as u32).collect();
            let y_at = |p: u32| y[by_x[p as usize] as usize];
            by_y.sort_by(|&a, &b| y_at(a).total_cmp(&y_at(b)).then(a.cmp(&b)));
            for threads in [2, 3, 4] {
                let ctl = Ctl::with_threads(threads);
                let (xs, x_order, _, ys, y_order, _) = sort_both_side_by_side(&x, &y, &ctl).unwrap();
                let at = format!("{name} n={n} threads={threads}");
                assert_eq!(x_order, by_x, "x order {at}");
                assert_eq!(y_order, by_y, "y order {at}");
                let bits = |v: &[f64]| v.iter().map(|a| a.to_bits()).collect::<Vec<_>>();
                let want_xs: Vec<f64> = by_x.iter().map(|&i| x[i as usize]).collect();
                let want_ys: Vec<f64> = by_y.iter().map(|&p| y_at(p)).collect();
                assert_eq!(bits(&xs), bits(&want_xs), "xs {at}");
                assert_eq!(bits(&ys), bits(&want_ys), "ys {at}");
            }
        }
    }
}

/// Phases of KSG-1 on 1-D x and 1-D y at N = 10⁶ (env PHASE_N), on 1 and 2 threads (run by hand:
/// `cargo test --release -- --ignored --nocapture plane_phase_timings`).
#[test]
#[ignore]
fn plane_phase_timings() {
    use super::plane::StripPlane;
    use std::time::Instant;
    let n: usize = std::env::var("PHASE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = SplitMix(5);
    // PHASE_DIST=gauss: x standard normal, y = x + noise/2 (as in bench_knn's case 1); else uniform.
    let gauss = std::env::var("PHASE_DIST").is_ok_and(|v| v == "gauss");
    let mut noise = || {
        if gauss {
            let (u, v) = (1.0 - rng.uniform(), rng.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        } else {
            rng.uniform()
        }
    };
    let x: Vec<f64> = (0..n).map(|_| noise()).collect();
    let y: Vec<f64> = x.iter().map(|v| v + if gauss { 0.5 } else { 0.3 } * noise()).collect();
    let before = crate::parallel::get_num_threads();
    // Rounds alternate 1 and 2 threads (PHASE_ROUNDS of each); medians per phase.
    let rounds: usize = std::env::var("PHASE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    const PHASES: [&str; 8] = [
        "sort",
        "plane build (and y index)",
        "kth",
        "indices",
        "nx",
        "ny",
        "digamma",
        "total",
    ];
    let mut times: [[Vec<f64>; PHASES.len()]; 2] = Default::default();
    let mut m = 0.0;
    for round in 0..2 * rounds {
        let threads = 1 + round % 2;
        crate::parallel::set_num_threads(threads).unwrap();
        let ctl = Ctl::uninterruptible().unwrap();
        let mut lap = Vec::with_capacity(PHASES.len());
        let mut t = Instant::now();
        let mut mark = |lap: &mut Vec<f64>| {
            lap.push(t.elapsed().as_secs_f64() * 1e3);
            t = Instant::now();
        };
        let (xs, _) = sort_with_indices(&x, &ctl);
        mark(&mut lap);
        drop(xs);
        mark(&mut Vec::new());
        let plane = StripPlane::new(&x, &y, 3, &ctl).unwrap();
        mark(&mut lap);
        let eps = plane.kth_distances_by_x_position(3, &ctl).unwrap();
        mark(&mut lap);
        let (xi, yi) = plane.into_indices();
        mark(&mut lap);
        let nx = xi.count_within_by_position(&eps, true, &ctl).unwrap();
        mark(&mut lap);
        let ny = yi.count_within_in_sorted_order(&eps, true, &ctl).unwrap();
        mark(&mut lap);
        m = crate::special::mean_digamma_counts(&nx, 1.0) + crate::special::mean_digamma_counts(&ny, 1.0);
        mark(&mut lap);
        lap.push(lap[1..].iter().sum());
        for (slot, v) in times[threads - 1].iter_mut().zip(lap) {
            slot.push(v);
        }
    }
    for (threads, per_phase) in times.iter_mut().enumerate() {
        let medians: Vec<String> = PHASES
            .iter()
            .zip(per_phase.iter_mut())
            .map(|(name, v)| {
                v.sort_by(f64::total_cmp);
                format!("{name} {:.2}", v[v.len() / 2])
            })
            .collect();
        eprintln!(
            "{} thread(s), median ms of {rounds}: {} ({m:.4})",
            threads + 1,
            medians.join(", ")
        );
    }
    crate::parallel::set_num_threads(before).unwrap();
}
