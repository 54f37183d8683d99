//! Vectorised kernels and the run-time choice of instruction set.
//!
//! Hot loops are written so that the compiler vectorises them (`exp_nonpositive`, `ln_mantissa`,
//! the lane-wise `max_sum`) and compiled twice where it pays: for the baseline x86-64 target and
//! with AVX2, picked at run time by `has_avx2`. The two versions evaluate the same IEEE
//! operations in the same order (AVX2 brings no fused multiply-add), so they return the same bits.

/// Whether this processor runs AVX2 code (the check is cached by the standard library). The one
/// check behind every AVX2 dispatch (here and in the k-d tree's leaf scans).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Clears the upper halves of the vector registers (`vzeroupper`) where the processor has AVX.
/// Called after faer's kernels, which run 512-bit code and can return with those halves in use:
/// until they are cleared, every later SSE-encoded instruction on the thread, in code compiled
/// for the baseline target, ran several times slower (measured: the grouped scan's k-th distances
/// at N = 10⁴, 32 + 32 columns, 0.64 s before one Gram-form count and 3.06 s after it).
#[inline]
pub(crate) fn clear_upper_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the processor runs AVX (checked just above); vzeroupper touches no memory.
        unsafe { std::arch::x86_64::_mm256_zeroupper() };
    }
}

/// e^x for x ≤ 0, to a few ulp, written so that it vectorises (the log-sum-exps are the hot loop;
/// libm's scalar exp dominated the run time). Arguments below −700 give e^−700 ≈ 1e−304 instead
/// of 0: against the row maximum (e^0 = 1) that is invisible.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // 1.5·2^52: adding it rounds to an integer.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    // fdlibm's split of ln 2 (ln2_hi = 6.93147180369123816490e-01,
    // ln2_lo = 1.90821492927058770002e-10), written by its bits.
    const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
    let x = x.max(-700.0);
    let t = x * LOG2E + SHIFT;
    let k = t - SHIFT; // round(x / ln 2)
    let r = (x - k * LN2_HI) - k * LN2_LO; // |r| ≤ ½ ln 2

    // Taylor series of e^r to degree 12: remainder < 2e-16 relative for |r| ≤ 0.347.
    let mut p = 1.0 / 479_001_600.0;
    for c in [
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // 2^k from the low bits of t (k ∈ [−1010, 0]).
    p * f64::from_bits(t.to_bits().wrapping_add(1023) << 52)
}

/// ln m for m ∈ [1, 2), to a few ulp, vectorisable: ln m = 2 atanh((m−1)/(m+1)), after folding
/// m into [√½, √2].
#[inline(always)]
pub(crate) fn ln_mantissa(m: f64) -> f64 {
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t; // ≤ 0.0295: ten terms of Σ t^(2k)/(2k+1) leave < 1e-17
    let mut p = 1.0 / 21.0;
    for c in [
        1.0 / 19.0,
        1.0 / 17.0,
        1.0 / 15.0,
        1.0 / 13.0,
        1.0 / 11.0,
        1.0 / 9.0,
        1.0 / 7.0,
        1.0 / 5.0,
        1.0 / 3.0,
        1.0,
    ] {
        p = p * t2 + c;
    }
    2.0 * t * p + if big { std::f64::consts::LN_2 } else { 0.0 }
}

/// Independent accumulators of [`max_sum`] (a vector's worth of f64 twice over with AVX2).
const LANES: usize = 8;

#[inline(always)]
fn max_sum_generic(xs: &[f64], scale: f64) -> (f64, f64) {
    let mut mx = [f64::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            mx[l] = if c[l] > mx[l] { c[l] } else { mx[l] };
        }
    }
    let m = tail
        .iter()
        .chain(mx.iter())
        .fold(f64::NEG_INFINITY, |a, &b| if b > a { b } else { a })
        * scale;
    if !m.is_finite() {
        return (m, 0.0);
    }
    let mut acc = [0.0; LANES];
    let chunks = xs.chunks_exact(LANES);
    for c in chunks {
        for l in 0..LANES {
            acc[l] += exp_nonpositive(c[l] * scale - m);
        }
    }
    let s = tail.iter().map(|&x| exp_nonpositive(x * scale - m)).sum::<f64>() + acc.iter().sum::<f64>();
    (m, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn max_sum_avx2(xs: &[f64], scale: f64) -> (f64, f64) {
    max_sum_generic(xs, scale)
}

/// (max, Σ exp(scale·x − max)) of a slice, scale > 0; an empty slice gives (−inf, 0). The order
/// of operations is fixed (no fused multiply-add), so the wider instruction set gives the same bits.
#[inline]
pub(crate) fn max_sum(xs: &[f64], scale: f64) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { max_sum_avx2(xs, scale) };
    }
    max_sum_generic(xs, scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectorisable_exp_and_log_match_libm() {
        let mut worst_exp = 0.0f64;
        for i in 0..200_000 {
            let x = -700.0 * (i as f64 / 200_000.0).powi(3);
            let (got, want) = (exp_nonpositive(x), x.exp());
            worst_exp = worst_exp.max(((got - want) / want).abs());
        }
        assert!(worst_exp < 4e-16, "exp relative error {worst_exp}");
        let mut worst_ln = 0.0f64;
        for i in 0..200_000 {
            let m = 1.0 + i as f64 / 200_000.0;
            worst_ln = worst_ln.max((ln_mantissa(m) - m.ln()).abs());
        }
        assert!(worst_ln < 4e-16, "ln absolute error {worst_ln}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
    }
}
