//! Analytic values of docs/spec.md §3.12, checked on the pure core (no Python).

use super::*;

/// Standard normal draws from splitmix64 + Box–Muller: deterministic, no dependency.
pub(super) fn normals(seed: u64, count: usize) -> Vec<f64> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..count)
        .map(|_| {
            let (u, v) = (next(), next());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        })
        .collect()
}

fn run(means: &[f64], d: usize, noise: Noise<'_>, n_draws: usize, labels: Option<&[u32]>) -> ChannelMi {
    let n = means.len() / d;
    let draws = normals(7, n_draws * n * d);
    let ch = Channel { means, n, d, noise };
    let req = Request {
        draws: Some(&draws),
        n_draws,
        bounds: true,
        labels,
    };
    gaussian_channel_mi(&ch, &req, &Ctl::uninterruptible().unwrap()).unwrap()
}

pub(super) fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    assert!((got - want).abs() <= tol, "{what}: got {got}, want {want} ± {tol}");
}

fn assert_mc(e: &Estimate, want: f64, what: &str) {
    let mc = e.mc.unwrap();
    assert!(mc.stderr > 0.0 && mc.stderr < 0.01, "{what}: stderr {}", mc.stderr);
    assert_close(mc.mi, want, 4.0 * mc.stderr, what);
}

#[test]
fn two_points_binary_input_gaussian_channel() {
    // I = log 2 − E log(1 + e^{−2aZ'/σ²}), Z' ~ N(a, σ²); σ = 1.
    for (a, want) in [(0.25, 0.030311), (1.0, 0.336831), (2.0, 0.632720)] {
        let means = [-a, a];
        let r = run(&means, 1, Noise::Shared(&[1.0]), 40_000, None);
        assert_mc(&r.total, want, &format!("a = {a}"));
        assert!(r.total.bd.unwrap() <= want && want <= r.total.kl.unwrap());
    }
    // D = 2a, D/σ = 2: KL and Bhattacharyya bounds.
    let r = run(&[-1.0, 1.0], 1, Noise::Shared(&[1.0]), 1, None);
    assert_close(r.total.bd.unwrap(), 0.219070, 1e-6, "BD bound");
    assert_close(r.total.kl.unwrap(), 0.566219, 1e-6, "KL bound");
    // Same channel through the per-sample path (non-separable Bhattacharyya loop).
    let r = run(&[-1.0, 1.0], 1, Noise::PerSample(&[1.0, 1.0]), 1, None);
    assert_close(r.total.bd.unwrap(), 0.219070, 1e-6, "BD bound, per-sample");
    assert_close(r.total.kl.unwrap(), 0.566219, 1e-6, "KL bound, per-sample");
}

#[test]
fn hypercube_is_d_times_one_dimension() {
    // {±a}^3 with σ = 1, a = 1: every quantity is 3× the 1-D value (the mixture factorises).
    let d = 3;
    let mut means = Vec::new();
    for c in 0..8u32 {
        means.extend((0..d).map(|k| if c >> k & 1 == 1 { 1.0 } else { -1.0 }));
    }
    let r = run(&means, d, Noise::Shared(&[1.0; 3]), 4_000, None);
    assert_close(r.total.bd.unwrap(), 3.0 * 0.219070, 3e-6, "BD");
    assert_close(r.total.kl.unwrap(), 3.0 * 0.566219, 3e-6, "KL");
    assert_mc(&r.total, 3.0 * 0.336831, "MC");
    let vars = vec![1.0; 8 * d];
    let p = run(&means, d, Noise::PerSample(&vars), 4_000, None);
    assert_close(
        p.total.bd.unwrap(),
        r.total.bd.unwrap(),
        1e-12,
        "BD per-sample = shared",
    );
    assert_close(
        p.total.kl.unwrap(),
        r.total.kl.unwrap(),
        1e-12,
        "KL per-sample = shared",
    );
    assert_close(
        p.total.mc.unwrap().mi,
        r.total.mc.unwrap().mi,
        1e-12,
        "MC per-sample = shared",
    );
}

#[test]
fn heteroscedastic_two_variances() {
    // X uniform on {1, 2}, Z | x ~ N(0, v_x), v = (1, 4).
    let r = run(&[0.0, 0.0], 1, Noise::PerSample(&[1.0, 4.0]), 40_000, None);
    assert_close(r.total.kl.unwrap(), 0.235320, 1e-6, "KL");
    assert_close(r.total.bd.unwrap(), 0.054231, 1e-6, "BD");
    assert_mc(&r.total, 0.092733, "MC");
}

#[test]
fn identical_means_give_zero_and_far_means_give_log_n() {
    let same = vec![3.0; 10 * 2];
    let r = run(&same, 2, Noise::Shared(&[0.5, 2.0]), 3, None);
    for v in [
        r.total.mc.unwrap().mi,
        r.total.kl.unwrap(),
        r.total.bd.unwrap(),
        r.total.maxent.unwrap(),
    ] {
        assert_close(v, 0.0, 1e-12, "identical means");
    }
    let far: Vec<f64> = (0..10).flat_map(|i| [1e3 * i as f64, -2e3 * i as f64]).collect();
    let vars = vec![0.7; 20];
    for noise in [Noise::Shared(&[0.7, 0.7]), Noise::PerSample(&vars)] {
        let r = run(&far, 2, noise, 3, None);
        let log_n = 10f64.ln();
        for v in [r.total.mc.unwrap().mi, r.total.kl.unwrap(), r.total.bd.unwrap()] {
            assert_close(v, log_n, 1e-12, "far means");
        }
        assert!(r.total.maxent.unwrap() >= log_n);
    }
}

#[test]
fn labels_restrict_the_mixture_to_the_class() {
    // Two classes far apart, two close points within each: I(X;Z|Y) is the two-point value,
    // I(X;Z) = log 2 + I(X;Z|Y), I(Y;Z) = log 2.
    let means = [-1.0, 1.0, 1e4 - 1.0, 1e4 + 1.0];
    let labels = [0u32, 0, 1, 1];
    let r = run(&means, 1, Noise::Shared(&[1.0]), 1, Some(&labels));
    let c = r.given_labels.unwrap();
    assert_close(c.bd.unwrap(), 0.219070, 1e-6, "conditional BD");
    assert_close(c.kl.unwrap(), 0.566219, 1e-6, "conditional KL");
    assert_close(r.total.kl.unwrap(), 2f64.ln() + 0.566219, 1e-6, "total KL");
    assert_close(c.ceiling, 2f64.ln(), 1e-15, "ceiling");
    let y = r.labels_mc.unwrap();
    assert_close(y.mi, 2f64.ln(), 1e-12, "I(Y;Z)");
    // Labels given in another order: identical results up to summation order.
    let means2 = [1e4 - 1.0, -1.0, 1e4 + 1.0, 1.0];
    let labels2 = [5u32, 0, 5, 0].map(|l| if l == 5 { 1 } else { 0 });
    let r2 = run(&means2, 1, Noise::Shared(&[1.0]), 1, Some(&labels2));
    assert_close(r2.given_labels.unwrap().kl.unwrap(), c.kl.unwrap(), 1e-12, "permuted");
}

#[test]
fn maxent_bound_of_a_gaussian_cloud() {
    // Two points ±1 in 1-D with σ² = 1: Cov Z = 1 + 1 = 2, bound = ½ log 2.
    let r = run(&[-1.0, 1.0], 1, Noise::Shared(&[1.0]), 1, None);
    assert_close(r.total.maxent.unwrap(), 0.5 * 2f64.ln(), 1e-12, "maxent shared");
    let r = run(&[-1.0, 1.0], 1, Noise::PerSample(&[1.0, 1.0]), 1, None);
    assert_close(r.total.maxent.unwrap(), 0.5 * 2f64.ln(), 1e-12, "maxent per-sample");
    assert_close(r.h_z_given_x, 0.5 * LN_2PI_E, 1e-12, "h(Z|X)");
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let ctl = Ctl::uninterruptible().unwrap();
    let req = Request {
        draws: None,
        n_draws: 1,
        bounds: true,
        labels: None,
    };
    let bad_var = Channel {
        means: &[0.0, 1.0],
        n: 2,
        d: 1,
        noise: Noise::PerSample(&[1.0, 0.0]),
    };
    assert!(matches!(
        gaussian_channel_mi(&bad_var, &req, &ctl),
        Err(CoreError::InvalidArgument { arg: "variances", .. })
    ));
    let bad_mean = Channel {
        means: &[0.0, f64::NAN],
        n: 2,
        d: 1,
        noise: Noise::Shared(&[1.0]),
    };
    assert!(matches!(
        gaussian_channel_mi(&bad_mean, &req, &ctl),
        Err(CoreError::InvalidArgument { arg: "means", .. })
    ));
    let ok = Channel {
        means: &[0.0, 1.0],
        n: 2,
        d: 1,
        noise: Noise::Shared(&[1.0]),
    };
    let short = Request {
        draws: Some(&[0.0]),
        n_draws: 1,
        bounds: false,
        labels: None,
    };
    assert!(matches!(
        gaussian_channel_mi(&ok, &short, &ctl),
        Err(CoreError::InvalidArgument { arg: "draws", .. })
    ));
    let gap = Request {
        draws: None,
        n_draws: 1,
        bounds: true,
        labels: Some(&[0, 2]),
    };
    assert!(matches!(
        gaussian_channel_mi(&ok, &gap, &ctl),
        Err(CoreError::InvalidArgument { arg: "labels", .. })
    ));
}

/// −(1/N) Σ_i log (1/N) Σ_j exp(−KL_ij), KL in the difference form, literally (docs/spec.md §3.7).
fn kl_bound_direct(means: &[f64], vars: &[f64], d: usize) -> f64 {
    let n = means.len() / d;
    let kl = |i: usize, j: usize| {
        (0..d)
            .map(|k| {
                let (vi, vj) = (vars[i * d + k], vars[j * d + k]);
                let dm = means[i * d + k] - means[j * d + k];
                0.5 * ((vj / vi).ln() + vi / vj + dm * dm / vj - 1.0)
            })
            .sum::<f64>()
    };
    let mut total = 0.0;
    for i in 0..n {
        let terms: Vec<f64> = (0..n).map(|j| -kl(i, j)).collect();
        let m = terms.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        total += (n as f64).ln() - (m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln());
    }
    total / n as f64
}

#[test]
fn product_form_does_not_cancel_when_variances_span_many_decades() {
    // Dropout on ReLU units (v = f², zeros floored at 1e-12) at scale c: the centred zeros sit
    // −μ̄/1e-6 standard deviations from the origin and the product form alone cancelled (at c = 10⁴
    // the KL bound fell below the Bhattacharyya one). The KL bound must equal the difference form,
    // and scaling the means by c with the variances by c² (the floor too) must change nothing.
    let (n, d) = (120, 4);
    let base: Vec<f64> = normals(3, n * d).into_iter().map(|x| x.max(0.0)).collect();
    let mut at_one = None;
    for c in [1.0, 1e2, 1e4, 1e6] {
        let means: Vec<f64> = base.iter().map(|x| x * c).collect();
        let vars: Vec<f64> = base.iter().map(|x| (x * x).max(1e-12) * c * c).collect();
        let r = run(&means, d, Noise::PerSample(&vars), 4, None);
        let (kl, bd, mc) = (r.total.kl.unwrap(), r.total.bd.unwrap(), r.total.mc.unwrap());
        assert_close(kl, kl_bound_direct(&means, &vars, d), 1e-9 * kl, "KL bound");
        assert!(bd <= kl && bd <= mc.mi + 4.0 * mc.stderr && mc.mi - 4.0 * mc.stderr <= kl);
        let (kl1, bd1, mi1) = *at_one.get_or_insert((kl, bd, mc.mi));
        assert_close(kl, kl1, 1e-9 * kl1, "KL bound against c = 1");
        assert_close(bd, bd1, 1e-9 * bd1, "BD bound against c = 1");
        assert_close(mc.mi, mi1, 1e-9 * mi1, "Monte Carlo against c = 1 (same draws)");
    }
}
