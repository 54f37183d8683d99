//! Mutual information between variables that may be discrete, continuous or a mixture of both:
//! the estimator of Gao, Kannan, Oh & Viswanath (2017) (docs/spec.md §1.14).
//!
//! A discrete variable puts probability on atoms: samples at distance exactly 0 of each other. KSG
//! assumes densities and goes wrong there (its k-th neighbour distance is 0 and its strict counts
//! are empty); this estimator counts the atom's other samples instead. Distances are max-norm, as
//! in `ksg`, and every distance and count comes from the neighbour engine (`crate::knn`).

use crate::error::{CoreError, Result};
use crate::knn::metric::Chebyshev;
use crate::knn::{build_index, check_k, Method};
use crate::parallel::Ctl;
use crate::points::{concat_columns, Points, Real};
use crate::special::{digamma, mean_digamma_counts};

/// The per-sample quantities of the estimator: (k̃_i, n_x,i, n_y,i).
///
/// ρ_i is the max-norm distance from (x_i, y_i) to its k-th joint neighbour. When ρ_i > 0 (i is in
/// the continuous part): k̃_i = k and n_x,i = #{j ≠ i : ‖x_j − x_i‖ < ρ_i}, strict as in KSG-1, n_y,i
/// likewise. When ρ_i = 0 (i sits on an atom with at least k others): k̃_i = #{j ≠ i : joint
/// distance 0}, n_x,i = #{j ≠ i : ‖x_j − x_i‖ = 0} and n_y,i likewise (inclusive counts within radius 0).
pub fn mixed_counts<T: Real>(
    x: Points<'_, T>,
    y: Points<'_, T>,
    k: usize,
    method: Method,
    ctl: &Ctl,
) -> Result<(Vec<u32>, Vec<u32>, Vec<u32>)> {
    if y.n() != x.n() {
        return Err(CoreError::invalid(
            "y",
            format!(
                "has {} samples but x has {}; all arrays need the same number of rows",
                y.n(),
                x.n()
            ),
        ));
    }
    let n = x.n();
    check_k(k, n)?;
    let (rho, k_tilde) = {
        let joint_data = concat_columns(&[x, y], ctl)?;
        let joint = Points::trusted(&joint_data, n, x.d() + y.d());
        let index = build_index::<T, Chebyshev>(joint, method, ctl)?;
        let rho = index.kth_distances(k, ctl)?;
        let k_tilde = if rho.contains(&T::ZERO) {
            // The samples on the same atom as i: an inclusive count within radius 0.
            let zeros = vec![T::ZERO; n];
            let ties = index.count_within(&zeros, false, ctl)?;
            rho.iter()
                .zip(ties)
                .map(|(&r, t)| if r == T::ZERO { t } else { k as u32 })
                .collect()
        } else {
            vec![k as u32; n]
        };
        (rho, k_tilde)
    };
    let on_atom: Vec<bool> = rho.iter().map(|&r| r == T::ZERO).collect();
    let marginal = |p: Points<'_, T>| -> Result<Vec<u32>> {
        let index = build_index::<T, Chebyshev>(p, method, ctl)?;
        let mut counts = index.count_within(&rho, true, ctl)?;
        if on_atom.iter().any(|&a| a) {
            let at_zero = index.count_within(&vec![T::ZERO; n], false, ctl)?;
            for ((c, z), &a) in counts.iter_mut().zip(at_zero).zip(&on_atom) {
                if a {
                    *c = z;
                }
            }
        }
        Ok(counts)
    };
    let nx = marginal(x)?;
    let ny = marginal(y)?;
    Ok((k_tilde, nx, ny))
}

/// Mutual information I(X;Y) in nats for discrete, continuous or mixed X and Y (Gao, Kannan, Oh &
/// Viswanath 2017), in the KSG-1 form:
///
///   I = ⟨ψ(k̃_i)⟩ + ψ(N) − ⟨ψ(n_x,i + 1)⟩ − ⟨ψ(n_y,i + 1)⟩,
///
/// with k̃_i, n_x,i, n_y,i of [`mixed_counts`]. On data without ties (every ρ_i > 0) this is KSG-1;
/// on atoms it is the paper's zero-distance rule. Why not the paper's log N − log(n + 1) with
/// inclusive counts: docs/spec.md §1.14.
pub fn mutual_info_mixed<T: Real>(
    x: Points<'_, T>,
    y: Points<'_, T>,
    k: usize,
    method: Method,
    ctl: &Ctl,
) -> Result<f64> {
    let (k_tilde, nx, ny) = mixed_counts(x, y, k, method, ctl)?;
    Ok(mean_digamma_counts(&k_tilde, 0.0) + digamma(x.n() as f64)
        - mean_digamma_counts(&nx, 1.0)
        - mean_digamma_counts(&ny, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctl() -> Ctl<'static> {
        Ctl::uninterruptible().unwrap()
    }

    /// The estimator straight from its definition, O(N²).
    fn brute(x: &[f64], y: &[f64], k: usize) -> f64 {
        let n = x.len();
        let mut total = 0.0;
        for i in 0..n {
            let mut d: Vec<f64> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (x[j] - x[i]).abs().max((y[j] - y[i]).abs()))
                .collect();
            d.sort_by(f64::total_cmp);
            let rho = d[k - 1];
            let atom = rho == 0.0;
            let kt = if atom {
                d.iter().filter(|&&v| v == 0.0).count()
            } else {
                k
            };
            // Strict within ρ_i > 0; on an atom, the others at distance 0.
            let near = |a: f64, b: f64| {
                if atom {
                    (a - b).abs() == 0.0
                } else {
                    (a - b).abs() < rho
                }
            };
            let nx = (0..n).filter(|&j| j != i && near(x[j], x[i])).count();
            let ny = (0..n).filter(|&j| j != i && near(y[j], y[i])).count();
            total += digamma(kt as f64) + digamma(n as f64) - digamma((nx + 1) as f64) - digamma((ny + 1) as f64);
        }
        total / n as f64
    }

    #[test]
    fn equals_the_definition_on_ties_and_atoms() {
        let n = 400;
        let mut s = 11u64;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        // x: a mixture of four atoms and a continuous part; y: half of it a function of x.
        let x: Vec<f64> = (0..n)
            .map(|_| {
                let u = next();
                if u < 0.6 {
                    (u * 6.0).floor()
                } else {
                    next() * 4.0
                }
            })
            .collect();
        let y: Vec<f64> = x
            .iter()
            .map(|&v| if next() < 0.5 { (v * 2.0).round() } else { next() })
            .collect();
        let (px, py) = (Points::new("x", &x, n, 1).unwrap(), Points::new("y", &y, n, 1).unwrap());
        for method in [Method::Auto, Method::KdTree, Method::Brute] {
            for k in [1, 3, 7] {
                let got = mutual_info_mixed(px, py, k, method, &ctl()).unwrap();
                let want = brute(&x, &y, k);
                assert!((got - want).abs() < 1e-12, "{method:?} k={k}: {got} vs {want}");
            }
        }
        assert!(mutual_info_mixed(px, Points::new("y", &y[..10], 10, 1).unwrap(), 3, Method::Auto, &ctl()).is_err());
        assert!(mutual_info_mixed(px, py, n, Method::Auto, &ctl()).is_err());
    }
}
