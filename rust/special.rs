//! Special functions needed by the estimators.

/// Digamma ψ(x) for x > 0, accurate to a few ulps of f64.
///
/// Recurrence ψ(x) = ψ(x+1) − 1/x up to x ≥ 10, then the asymptotic series
/// ψ(x) = ln x − 1/(2x) − Σ B₂ₖ/(2k x²ᵏ) (Abramowitz & Stegun 6.3.18).
pub fn digamma(mut x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let inv2 = 1.0 / (x * x);
    // Bernoulli terms B2/2, B4/4, ..., B14/14.
    let series = inv2
        * (1.0 / 12.0
            - inv2
                * (1.0 / 120.0
                    - inv2
                        * (1.0 / 252.0
                            - inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0 - inv2 * (691.0 / 32760.0 - inv2 / 12.0))))));
    shift + x.ln() - 0.5 / x - series
}

/// ln Γ(m/2) for a positive integer m, exact up to rounding: Γ(n) = (n−1)! and
/// Γ(n + ½) = (2n)! √π / (4ⁿ n!).
pub fn ln_gamma_half_integer(m: usize) -> f64 {
    assert!(m > 0, "ln_gamma_half_integer needs m > 0");
    if m % 2 == 0 {
        (1..m / 2).map(|i| (i as f64).ln()).sum()
    } else {
        // Γ(1/2) = √π; Γ(j + 1/2) = Γ(j − 1/2)·(j − 1/2).
        let mut acc = 0.5 * std::f64::consts::PI.ln();
        for j in 1..=(m / 2) {
            acc += (j as f64 - 0.5).ln();
        }
        acc
    }
}

/// Mean of ψ(c + offset) over a slice of counts c, in deterministic bits: the counts are tallied
/// (Σ_c ψ(c + offset) = Σ_v #{c = v}·ψ(v + offset)), then the distinct values' terms are added in
/// ascending order with Neumaier compensation. One cheap pass over the counts and one ψ per
/// distinct value, instead of a compensated addition per count.
pub fn mean_digamma_counts(counts: &[u32], offset: f64) -> f64 {
    let Some(&max) = counts.iter().max() else {
        return f64::NAN;
    };
    let mut tally = vec![0u32; max as usize + 1];
    for &c in counts {
        tally[c as usize] += 1;
    }
    let terms = tally
        .iter()
        .enumerate()
        .filter(|&(_, &times)| times > 0)
        .map(|(v, &times)| times as f64 * digamma(v as f64 + offset));
    neumaier_sum(terms) / counts.len() as f64
}

/// The sum of `terms` in their order with Neumaier's compensation (each addition's rounding error
/// is carried apart and added at the end), so long sums stay exact to rounding; deterministic bits.
pub fn neumaier_sum(terms: impl IntoIterator<Item = f64>) -> f64 {
    let (mut sum, mut comp) = (0.0f64, 0.0f64);
    for term in terms {
        let t = sum + term;
        comp += if sum.abs() >= term.abs() {
            (sum - t) + term
        } else {
            (term - t) + sum
        };
        sum = t;
    }
    sum + comp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digamma_known_values() {
        let euler = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + euler).abs() < 1e-15);
        assert!((digamma(0.5) - (-euler - 2.0 * 2f64.ln())).abs() < 1e-14);
        // ψ(n) = −γ + H_{n−1}
        let mut h = 0.0;
        for n in 1..200 {
            let expected = -euler + h;
            assert!(
                (digamma(n as f64) - expected).abs() < 1e-13 * expected.abs().max(1.0),
                "n={n}"
            );
            h += 1.0 / n as f64;
        }
        // Large argument against the asymptotic leading terms.
        let x: f64 = 1e6;
        assert!((digamma(x) - (x.ln() - 0.5 / x - 1.0 / (12.0 * x * x))).abs() < 1e-15 * x.ln());
    }

    #[test]
    fn ln_gamma_half_integers() {
        assert!((ln_gamma_half_integer(2) - 0.0).abs() < 1e-15); // Γ(1)
        assert!((ln_gamma_half_integer(1) - 0.5 * std::f64::consts::PI.ln()).abs() < 1e-15);
        assert!((ln_gamma_half_integer(10) - 24f64.ln()).abs() < 1e-14); // Γ(5) = 24

        // Γ(7/2) = 15√π/8
        let expected = (15.0 / 8.0f64).ln() + 0.5 * std::f64::consts::PI.ln();
        assert!((ln_gamma_half_integer(7) - expected).abs() < 1e-14);
    }

    #[test]
    fn mean_digamma_matches_direct() {
        let counts: Vec<u32> = (0..10_000).map(|i| (i * 7919 % 5003) as u32).collect();
        let direct: f64 = counts.iter().map(|&c| digamma(c as f64 + 1.0)).sum::<f64>() / counts.len() as f64;
        assert!((mean_digamma_counts(&counts, 1.0) - direct).abs() < 1e-12);
    }
}
