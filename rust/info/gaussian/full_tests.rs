//! The full-covariance channel (full.rs) against the diagonal one where they must agree: A = I,
//! an invertible A (every quantity but h(Z|X) is invariant), and shared noise through both paths.

use super::super::tests::{assert_close, normals};
use super::*;

fn spd(rho: usize, seed: u64) -> Vec<f64> {
    let g = normals(seed, rho * rho);
    let mut s = vec![0.0; tri(rho, 0)];
    for a in 0..rho {
        for b in 0..=a {
            s[tri(a, b)] =
                (0..rho).map(|k| g[a * rho + k] * g[b * rho + k]).sum::<f64>() + if a == b { 0.5 } else { 0.0 };
        }
    }
    s
}

#[test]
fn packed_cholesky_and_inverse() {
    for rho in [1, 2, 5, 9] {
        let s = spd(rho, rho as u64);
        let t = tri(rho, 0);
        let (mut l, mut k) = (vec![0.0; t], vec![0.0; t]);
        assert!(cholesky_packed(&s, &mut l, rho));
        invert_lower_packed(&l, &mut k, rho);
        let at = |m: &[f64], a: usize, b: usize| if b <= a { m[tri(a, b)] } else { 0.0 };
        for a in 0..rho {
            for b in 0..=a {
                let llt: f64 = (0..rho).map(|c| at(&l, a, c) * at(&l, b, c)).sum();
                assert_close(llt, s[tri(a, b)], 1e-12 * (1.0 + s[tri(a, b)].abs()), "L Lᵀ = S");
                let kl: f64 = (0..rho).map(|c| at(&k, a, c) * at(&l, c, b)).sum();
                assert_close(kl, if a == b { 1.0 } else { 0.0 }, 1e-12, "K L = I");
            }
        }
    }
    let mut l = vec![0.0; 3];
    assert!(!cholesky_packed(&[1.0, 1.0, 1.0], &mut l, 2), "singular");
}

struct Case {
    means: Vec<f64>,
    vars: Vec<f64>,
    n: usize,
    d: usize,
    labels: Vec<u32>,
}

fn case(n: usize, d: usize, seed: u64) -> Case {
    let g = normals(seed, 2 * n * d);
    let means = g[..n * d].to_vec();
    let vars = g[n * d..].iter().map(|x| 0.3 + 0.5 * x * x).collect();
    let labels = (0..n).map(|i| (i * 7 % 3) as u32).collect();
    Case {
        means,
        vars,
        n,
        d,
        labels,
    }
}

fn both(c: &Case, noise: Noise<'_>, a: Option<(&[f64], usize)>, n_draws: usize, ctl: &Ctl) -> ChannelMi {
    let draws = normals(11, n_draws * c.n * c.d);
    let ch = Channel {
        means: &c.means,
        n: c.n,
        d: c.d,
        noise,
    };
    let req = Request {
        draws: Some(&draws),
        n_draws,
        bounds: true,
        labels: Some(&c.labels),
    };
    match a {
        Some((a, rho)) => linear_channel_mi(&ch, a, rho, &req, ctl).unwrap(),
        None => gaussian_channel_mi(&ch, &req, ctl).unwrap(),
    }
}

fn assert_same(got: &ChannelMi, want: &ChannelMi, tol: f64, h_shift: f64) {
    let pairs = [
        (got.total, want.total),
        (got.given_labels.unwrap(), want.given_labels.unwrap()),
    ];
    for (g, w) in pairs {
        assert_close(g.kl.unwrap(), w.kl.unwrap(), tol, "KL bound");
        assert_close(g.bd.unwrap(), w.bd.unwrap(), tol, "Bhattacharyya bound");
        assert_close(g.maxent.unwrap(), w.maxent.unwrap(), tol, "max-entropy bound");
        assert_close(g.mc.unwrap().mi, w.mc.unwrap().mi, tol, "Monte Carlo");
        assert_close(g.mc.unwrap().stderr, w.mc.unwrap().stderr, tol, "stderr");
        assert_eq!(g.ceiling, w.ceiling);
    }
    assert_close(got.labels_mc.unwrap().mi, want.labels_mc.unwrap().mi, tol, "I(Y;Z)");
    assert_close(got.h_z_given_x, want.h_z_given_x + h_shift, tol, "h(Z|X)");
}

#[test]
fn identity_and_invertible_transforms_give_the_diagonal_channel() {
    let ctl = Ctl::uninterruptible().unwrap();
    // 37 samples: not a multiple of the lanes (padding columns).
    let c = case(37, 3, 1);
    let diag = both(&c, Noise::PerSample(&c.vars), None, 3, &ctl);
    let eye = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    let r = both(&c, Noise::PerSample(&c.vars), Some((&eye, 3)), 3, &ctl);
    assert_same(&r, &diag, 1e-12, 0.0);
    // An invertible A: h(Z|X) moves by log |det A|; everything else is unchanged.
    let a = [1.0, 0.5, -0.2, 0.3, 2.0, 0.1, -0.4, 0.2, 0.7];
    let det =
        a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) + a[2] * (a[3] * a[7] - a[4] * a[6]);
    let r = both(&c, Noise::PerSample(&c.vars), Some((&a, 3)), 3, &ctl);
    assert_same(&r, &diag, 1e-10, det.abs().ln());
    // Shared noise, through the whitened diagonal channel.
    let v = [0.5, 1.5, 0.8];
    let diag = both(&c, Noise::Shared(&v), None, 3, &ctl);
    let r = both(&c, Noise::Shared(&v), Some((&a, 3)), 3, &ctl);
    assert_same(&r, &diag, 1e-10, det.abs().ln());
}

#[test]
fn shared_noise_equals_the_full_covariance_path() {
    // A rank-2 map of 4 dimensions; constant variances given per sample take the full path.
    let ctl = Ctl::uninterruptible().unwrap();
    let c = case(41, 4, 2);
    let v = [0.5, 1.5, 0.8, 1.1];
    let per: Vec<f64> = (0..c.n).flat_map(|_| v).collect();
    let a = [1.0, 0.5, -0.2, 0.3, 0.3, 2.0, 0.1, -1.0];
    let shared = both(&c, Noise::Shared(&v), Some((&a, 2)), 2, &ctl);
    let full = both(&c, Noise::PerSample(&per), Some((&a, 2)), 2, &ctl);
    assert_same(&full, &shared, 1e-10, 0.0);
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let c = case(300, 5, 3);
    let a: Vec<f64> = normals(5, 3 * 5);
    let one = both(&c, Noise::PerSample(&c.vars), Some((&a, 3)), 2, &Ctl::with_threads(1));
    let three = both(&c, Noise::PerSample(&c.vars), Some((&a, 3)), 2, &Ctl::with_threads(3));
    assert_eq!(one, three);
}

#[test]
fn bad_transforms_are_named() {
    let c = case(5, 2, 4);
    let ch = Channel {
        means: &c.means,
        n: c.n,
        d: c.d,
        noise: Noise::PerSample(&c.vars),
    };
    let req = Request {
        draws: None,
        n_draws: 1,
        bounds: true,
        labels: None,
    };
    let ctl = Ctl::uninterruptible().unwrap();
    for (a, rho) in [
        (vec![1.0; 3], 2),
        (vec![f64::NAN, 1.0], 1),
        (vec![], 0),
        (vec![1.0, 1.0, 1.0, 1.0], 2),
    ] {
        let e = linear_channel_mi(&ch, &a, rho, &req, &ctl).unwrap_err();
        assert!(e.to_string().starts_with("transform"), "{e}");
    }
}
