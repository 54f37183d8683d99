//! Estimators against naive formulas and analytic values.

use super::*;
use crate::points::Points;

fn gaussian_pairs(n: usize, rho: f64, seed: u64) -> (Vec<f64>, Vec<f64>) {
    // Box–Muller on SplitMix64.
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut normal = || {
        let (u1, u2) = (next().max(1e-300), next());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    };
    let mut x = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let a = normal();
        let b = normal();
        x.push(a);
        y.push(rho * a + (1.0 - rho * rho).sqrt() * b);
    }
    (x, y)
}

#[test]
fn ksg_recovers_gaussian_mutual_information() {
    let ctl = Ctl::uninterruptible().unwrap();
    let n = 4000;
    for &rho in &[0.0, 0.6, 0.9] {
        let (x, y) = gaussian_pairs(n, rho, 7);
        let truth = -0.5 * (1.0 - rho * rho).ln();
        for variant in [KsgVariant::Ksg1, KsgVariant::Ksg2] {
            let px = Points::new("x", &x, n, 1).unwrap();
            let py = Points::new("y", &y, n, 1).unwrap();
            let mi = mutual_info_ksg(px, py, 3, variant, Norm::Chebyshev, Method::Auto, &ctl).unwrap();
            // KSG's standard deviation at N = 4000 is about 0.01 nats; 0.04 is four of them.
            assert!((mi - truth).abs() < 0.04, "rho={rho} {variant:?}: {mi} vs {truth}");
        }
    }
}

#[test]
fn entropy_of_uniform_square() {
    let ctl = Ctl::uninterruptible().unwrap();
    let n = 4000;
    let (a, b) = gaussian_pairs(n, 0.0, 11);
    // Uniform on [0,1]² via the normal CDF would need erf; use a lattice-free uniform instead.
    let data: Vec<f64> = a
        .iter()
        .zip(&b)
        .flat_map(|(u, v)| [(u * 1e3).fract().abs(), (v * 1e3).fract().abs()])
        .collect();
    let pts = Points::new("x", &data, n, 2).unwrap();
    for metric in [Norm::Chebyshev, Norm::Euclidean] {
        let h = entropy_kl(pts, 3, metric, Method::Auto, &ctl).unwrap();
        assert!(h.abs() < 0.05, "{metric:?}: H = {h}, expected 0 for U[0,1]^2");
    }
}

#[test]
fn ross_equals_log_classes_for_separated_classes() {
    let ctl = Ctl::uninterruptible().unwrap();
    let n = 3000;
    let (a, _) = gaussian_pairs(n, 0.0, 3);
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
    let x: Vec<f64> = a
        .iter()
        .zip(&labels)
        .map(|(v, &c)| v * 0.1 + 100.0 * c as f64)
        .collect();
    let pts = Points::new("x", &x, n, 1).unwrap();
    let mi = mutual_info_ross(pts, &labels, 3, Norm::Chebyshev, Method::Auto, &ctl).unwrap();
    assert!((mi - 3f64.ln()).abs() < 1e-3, "{mi}");
}

#[test]
fn estimators_reject_bad_arguments() {
    let ctl = Ctl::uninterruptible().unwrap();
    let x = [0.0, 1.0, 2.0, 3.0];
    let y = [0.0, 1.0, 2.0];
    let px = Points::new("x", &x, 4, 1).unwrap();
    let py = Points::new("y", &y, 3, 1).unwrap();
    let err = mutual_info_ksg(px, py, 1, KsgVariant::Ksg1, Norm::Chebyshev, Method::Auto, &ctl).unwrap_err();
    assert!(err.to_string().starts_with("y:"), "{err}");
    let err = mutual_info_ksg(px, px, 4, KsgVariant::Ksg1, Norm::Chebyshev, Method::Auto, &ctl).unwrap_err();
    assert!(err.to_string().starts_with("k:"), "{err}");
    assert!(KsgVariant::parse("ksg3").is_err());
    assert!(Norm::parse("manhattan").is_err());
    let err = mutual_info_ross(px, &[0, 1, 2, 3], 1, Norm::Chebyshev, Method::Auto, &ctl).unwrap_err();
    assert!(err.to_string().starts_with("labels:"), "{err}");
}
