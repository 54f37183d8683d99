//! Binned (plug-in) information estimators (docs/spec.md §2.1–§2.2): how values become bin indices.
//!
//! A sample's binned pattern is its row of bin indices. [`Binner::fit`] fits the bin edges of
//! every column (equal-width, fixed-width or quantile bins); [`factorize_binned`] gives every row
//! the id of its pattern (ids `0..m`, in order of first appearance) through a direct table when few
//! patterns are possible, else by hashing rows (the N × d codes are stored only when they fit a byte,
//! packed eight to a word), through the row factorisation of [`crate::factorize`]. The
//! plug-in entropies of the ids are counted in [`super::plugin`].

use crate::choice::Choice;
use crate::error::{CoreError, Result};
use crate::factorize::{factorize_rows, number_small_keys, small_key_range};
use crate::parallel::Ctl;
use crate::points::{Points, Real};

/// How values become bin indices.
#[derive(Clone, Debug, PartialEq)]
pub enum Binning {
    /// `n_bins` equal-width bins over [min, max] of the whole array (`per_unit = false`) or of each
    /// column: index = floor((v − lo) / w), w = (hi − lo) / n_bins, the maximum in the last bin.
    /// A constant range puts everything in bin 0.
    Uniform { n_bins: usize, per_unit: bool },
    /// Fixed-width bins anchored at 0 (Saxe et al. 2018): index = floor(v / bin_size).
    FixedWidth { bin_size: f64 },
    /// Equal-mass bins per column: the `n_bins − 1` edges are the column's quantiles at b/n_bins
    /// (numpy's default "linear" quantile); index = #{edges ≤ v}.
    Quantile { n_bins: usize },
}

/// The binning strategy, by name: equal-width bins (or fixed-width ones, given a bin size) or
/// equal-mass bins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Uniform,
    Quantile,
}

impl Choice for Strategy {
    const ARG: &'static str = "strategy";
    const NAMES: &'static [(&'static str, Self)] = &[("uniform", Strategy::Uniform), ("quantile", Strategy::Quantile)];
}

impl Binning {
    /// The binning of `strategy`: with a `bin_size`, fixed-width bins (uniform strategy only);
    /// otherwise `n_bins` bins over the whole array's range or, with `per_unit`, each column's.
    pub fn new(strategy: Strategy, n_bins: usize, bin_size: Option<f64>, per_unit: bool) -> Result<Binning> {
        match (strategy, bin_size) {
            (Strategy::Uniform, None) => Ok(Binning::Uniform { n_bins, per_unit }),
            (Strategy::Uniform, Some(bin_size)) => Ok(Binning::FixedWidth { bin_size }),
            (Strategy::Quantile, None) => Ok(Binning::Quantile { n_bins }),
            (Strategy::Quantile, Some(_)) => Err(CoreError::invalid("bin_size", "only applies to strategy='uniform'")),
        }
    }
}

/// ⌊q⌋ as an integer (saturating beyond the i64 range) without a call to libm's `floor`, which
/// the baseline x86-64 target cannot inline.
#[inline(always)]
fn floor_to_i64(q: f64) -> i64 {
    let t = q as i64; // truncation toward zero
    if (t as f64) > q {
        t.saturating_sub(1)
    } else {
        t
    }
}

/// The equal-width bin of v ≥ lo: ⌊(v − lo)/w⌋ (a non-negative quotient, so truncation is the
/// floor), the maximum (and anything above it) in the last bin.
#[inline(always)]
fn width_code(v: f64, lo: f64, width: f64, last: i64) -> i64 {
    let q = (v - lo) / width;
    // Clamped in floating point (a NaN would become `last` too), so the quotient is in
    // [0, last] ⊂ i32 when truncated: the unchecked conversion is sound and, unlike the
    // saturating `as`, compiles to a bare cvttsd2si.
    let last_f = last as f64;
    let q = if q < last_f { q } else { last_f };
    let q = if q > 0.0 { q } else { 0.0 };
    // SAFETY: 0 ≤ q ≤ last < 2^31 (`check_bins` caps n_bins at 2^31) and q is not NaN.
    unsafe { q.to_int_unchecked::<i32>() as i64 }
}

/// The fixed-width bin ⌊v/size⌋ as a key: the index itself while |v/size| < 2^62; beyond, where
/// the quotient is already an integer, ±the bits of |v/size|, which lie beyond ±2^62. Distinct
/// bins get distinct keys at any magnitude (converting to i64 would merge every bin past 2^63);
/// the fit has checked that v/size does not overflow.
#[inline(always)]
fn fixed_code(v: f64, size: f64) -> i64 {
    const TWO_62: f64 = (1u64 << 62) as f64;
    let q = v / size;
    if q.abs() < TWO_62 {
        floor_to_i64(q)
    } else {
        let bits = q.abs().to_bits() as i64; // in (2^62, 2^63) for a finite |q| ≥ 2^62
        if q < 0.0 {
            -bits
        } else {
            bits
        }
    }
}

/// 2^-900 and 2^200 (see [`column_scale`]).
const TWO_M900: f64 = f64::from_bits((1023 - 900) << 52);
const TWO_200: f64 = f64::from_bits((1023 + 200) << 52);

/// The power of two by which a column's values are multiplied before binning (docs/spec.md
/// §2.1), so that its arithmetic neither overflows nor loses bits in the subnormal range: ½ when
/// its range hi − lo overflows, 2^200 when the range is not empty and `small` (the bin width, or
/// the largest magnitude for quantile bins) is below 2^-900, else 1 (the values as given). Powers of two scale
/// normal numbers exactly, so the bins are those of exact arithmetic: a column times 2^k gets the
/// bins of the column itself.
fn column_scale(lo: f64, hi: f64, small: f64) -> f64 {
    if (hi - lo).is_infinite() {
        0.5
    } else if hi > lo && small < TWO_M900 {
        TWO_200
    } else {
        1.0
    }
}

/// The fitted rule of one column. `lo`, `width` and the edges are in units of the column's values
/// times `scale` (a power of two, 1 unless [`column_scale`] says otherwise).
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnRule {
    Width { lo: f64, width: f64, last: i64, scale: f64 },
    Fixed { size: f64 },
    Edges { edges: Vec<f64>, scale: f64 },
}

impl ColumnRule {
    #[inline(always)]
    fn code(&self, v: f64) -> i64 {
        match self {
            ColumnRule::Width { lo, width, last, scale } => {
                if *width > 0.0 {
                    width_code(v * scale, *lo, *width, *last)
                } else {
                    0
                }
            }
            ColumnRule::Fixed { size } => fixed_code(v, *size),
            ColumnRule::Edges { edges, scale } => {
                let v = v * scale;
                edges.partition_point(|&e| e <= v) as i64
            }
        }
    }

    /// (lo, width) of equal-width bins, the edges of quantile bins or the bin size, in the units
    /// of the values (a width beyond float64, possible only with one bin over a range that
    /// overflows, is reported as inf).
    pub fn describe(&self) -> Vec<f64> {
        match self {
            ColumnRule::Width { lo, width, scale, .. } => vec![lo / scale, width / scale],
            ColumnRule::Fixed { size } => vec![*size],
            ColumnRule::Edges { edges, scale } => edges.iter().map(|e| e / scale).collect(),
        }
    }
}

/// The binning fitted to an array: one rule per column.
#[derive(Clone, Debug, PartialEq)]
pub struct Binner {
    pub rules: Vec<ColumnRule>,
    /// Every column has the same rule.
    shared: bool,
}

/// Columns are read in groups of this many (one cache line of f64 per row), so that per-column
/// passes over a row-major array do not stride through memory once per column.
const COLUMN_GROUP: usize = 8;

/// Runs `f(first_column, columns)` for groups of adjacent columns, in parallel, where `columns[c]`
/// holds column `first_column + c` as f64.
fn map_column_groups<T: Real, R: Send>(
    x: &Points<'_, T>,
    ctl: &Ctl,
    f: impl Fn(usize, Vec<Vec<f64>>) -> Vec<R> + Sync,
) -> Vec<R> {
    use rayon::prelude::*;
    let (n, d) = (x.n(), x.d());
    let groups: Vec<Vec<R>> = ctl.install(|| {
        (0..d.div_ceil(COLUMN_GROUP))
            .into_par_iter()
            .map(|g| {
                let (j0, j1) = (g * COLUMN_GROUP, ((g + 1) * COLUMN_GROUP).min(d));
                let mut cols: Vec<Vec<f64>> = (j0..j1).map(|_| Vec::with_capacity(n)).collect();
                for i in 0..n {
                    for (c, &v) in cols.iter_mut().zip(&x.row(i)[j0..j1]) {
                        c.push(v.to_f64());
                    }
                }
                f(j0, cols)
            })
            .collect()
    });
    groups.into_iter().flatten().collect()
}

/// (min, max) of every column, and the first row holding NaN or inf (`usize::MAX`: none), in one
/// pass over the rows, parallel over row blocks.
fn column_ranges<T: Real>(x: &Points<'_, T>, ctl: &Ctl) -> (Vec<(f64, f64)>, usize) {
    use rayon::prelude::*;
    let (n, d) = (x.n(), x.d());
    let identity = || (vec![(f64::INFINITY, f64::NEG_INFINITY); d], usize::MAX);
    ctl.install(|| {
        (0..n)
            .into_par_iter()
            .with_min_len(4096)
            .fold(identity, |(mut acc, bad), i| {
                // Plain comparisons, which vectorise unlike f64::min (a NaN is caught by `finite`).
                let mut finite = true;
                for (r, &v) in acc.iter_mut().zip(x.row(i)) {
                    let v = v.to_f64();
                    finite &= v.is_finite();
                    r.0 = if v < r.0 { v } else { r.0 };
                    r.1 = if v > r.1 { v } else { r.1 };
                }
                (acc, if finite { bad } else { bad.min(i) })
            })
            .reduce(identity, |(mut a, bad_a), (b, bad_b)| {
                for (r, s) in a.iter_mut().zip(b) {
                    *r = (r.0.min(s.0), r.1.max(s.1));
                }
                (a, bad_a.min(bad_b))
            })
    })
}

impl Binner {
    /// Fits the binning to `x`, which may be unchecked: NaN or inf is reported here (the first bad
    /// row), from the same pass that finds the ranges.
    pub fn fit<T: Real>(x: &Points<'_, T>, binning: &Binning, ctl: &Ctl) -> Result<Binner> {
        let d = x.d();
        let (ranges, bad) = column_ranges(x, ctl);
        if bad != usize::MAX {
            return Err(CoreError::invalid(
                "x",
                format!("contains NaN or inf (first at row {bad})"),
            ));
        }
        let width_rule = |(lo, hi): (f64, f64), n_bins: usize| {
            let scale = column_scale(lo, hi, (hi - lo) / n_bins as f64);
            let (lo, hi) = (lo * scale, hi * scale);
            ColumnRule::Width {
                lo,
                width: (hi - lo) / n_bins as f64,
                last: n_bins as i64 - 1,
                scale,
            }
        };
        let rules = match *binning {
            Binning::Uniform { n_bins, per_unit } => {
                check_bins(n_bins)?;
                if per_unit {
                    ranges.into_iter().map(|r| width_rule(r, n_bins)).collect()
                } else {
                    let lo = ranges.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
                    let hi = ranges.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max);
                    vec![width_rule((lo, hi), n_bins); d]
                }
            }
            Binning::FixedWidth { bin_size } => {
                if !(bin_size > 0.0 && bin_size.is_finite()) {
                    return Err(CoreError::invalid(
                        "bin_size",
                        format!("must be positive and finite, got {bin_size}"),
                    ));
                }
                let top = ranges.iter().map(|r| r.0.abs().max(r.1.abs())).fold(0.0, f64::max);
                if (top / bin_size).is_infinite() {
                    return Err(CoreError::invalid(
                        "bin_size",
                        format!(
                            "{bin_size:e} is too small for values up to {top:e}: the bin indices v/bin_size \
                             overflow float64"
                        ),
                    ));
                }
                vec![ColumnRule::Fixed { size: bin_size }; d]
            }
            Binning::Quantile { n_bins } => {
                check_bins(n_bins)?;
                let n = x.n();
                if n_bins > n.max(MAX_QUANTILE_BINS_ANY_N) {
                    return Err(CoreError::invalid(
                        "n_bins",
                        format!(
                            "quantile bins store n_bins - 1 edges per column: at most the number of samples ({n}) \
                             or {MAX_QUANTILE_BINS_ANY_N}, got {n_bins}"
                        ),
                    ));
                }
                map_column_groups(x, ctl, |_, cols| {
                    cols.into_iter()
                        .map(|mut col| {
                            col.sort_unstable_by(f64::total_cmp);
                            let (lo, hi) = (col[0], col[col.len() - 1]);
                            let scale = column_scale(lo, hi, lo.abs().max(hi.abs()));
                            if scale != 1.0 {
                                col.iter_mut().for_each(|v| *v *= scale);
                            }
                            let edges = (1..n_bins)
                                .map(|b| numpy_linear_quantile(&col, b as f64 / n_bins as f64))
                                .collect();
                            ColumnRule::Edges { edges, scale }
                        })
                        .collect()
                })
            }
        };
        let shared = rules.windows(2).all(|w| w[0] == w[1]);
        Ok(Binner { rules, shared })
    }

    #[inline(always)]
    pub fn code(&self, j: usize, v: f64) -> i64 {
        self.rules[j].code(v)
    }

    /// The largest code any value can get, when bounded (equal-width and quantile bins).
    pub fn max_code(&self) -> Option<i64> {
        self.rules.iter().try_fold(0i64, |acc, r| match r {
            ColumnRule::Width { last, .. } => Some(acc.max(*last)),
            ColumnRule::Edges { edges, .. } => Some(acc.max(edges.len() as i64)),
            ColumnRule::Fixed { .. } => None,
        })
    }

    /// The codes of one row. When every column shares one equal-width or fixed-width rule (the
    /// common "layer" binning) the rule is decided once per row, not once per value.
    #[inline]
    pub fn fill_codes<T: Real, C: Copy>(&self, row: &[T], out: &mut [C], to: impl Fn(i64) -> C) {
        match self.rules.first() {
            Some(&ColumnRule::Width { lo, width, last, scale }) if self.shared => {
                if width > 0.0 {
                    for (o, &v) in out.iter_mut().zip(row) {
                        *o = to(width_code(v.to_f64() * scale, lo, width, last));
                    }
                } else {
                    out.fill(to(0));
                }
            }
            Some(&ColumnRule::Fixed { size }) => {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = to(fixed_code(v.to_f64(), size));
                }
            }
            _ => {
                for ((o, &v), rule) in out.iter_mut().zip(row).zip(&self.rules) {
                    *o = to(rule.code(v.to_f64()));
                }
            }
        }
    }
}

/// Quantile bins may number up to max(N, this): their n_bins − 1 edges per column are stored and
/// reported, so they take at most the memory of the input, or 8 KiB per column.
pub const MAX_QUANTILE_BINS_ANY_N: usize = 1024;

fn check_bins(n_bins: usize) -> Result<()> {
    if n_bins < 1 {
        return Err(CoreError::invalid("n_bins", "must be at least 1, got 0"));
    }
    if n_bins > 1 << 31 {
        return Err(CoreError::invalid("n_bins", format!("at most 2^31, got {n_bins}")));
    }
    Ok(())
}

/// numpy.quantile(sorted, q) with its default method ("linear", Hyndman & Fan type 7), written
/// with numpy's own operation order so that the edges are the same floating-point numbers.
fn numpy_linear_quantile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let virtual_index = (n - 1) as f64 * q;
    if virtual_index >= (n - 1) as f64 {
        return sorted[n - 1];
    }
    let below = virtual_index.floor();
    let gamma = virtual_index - below;
    let (a, b) = (sorted[below as usize], sorted[below as usize + 1]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// Pattern ids of the binned rows of `x` (see [`factorize_rows`]) and the binning used.
pub fn factorize_binned<T: Real>(x: Points<'_, T>, binning: &Binning, ctl: &Ctl) -> Result<(Vec<u32>, usize, Binner)> {
    let binner = Binner::fit(&x, binning, ctl)?;
    let (n, d) = (x.n(), x.d());
    let radix = binner.max_code().map(|c| c as u64 + 1);
    if let Some(r) = radix.filter(|&r| small_key_range(std::iter::repeat_n(r, d), n).is_some()) {
        // Few possible patterns (few bins, few units): number them through a direct table.
        let (ids, m) = number_small_keys(
            n,
            &vec![0; d],
            &vec![r; d],
            |i, buf| binner.fill_codes(x.row(i), buf, |c| c as u64),
            ctl,
        )?;
        return Ok((ids, m, binner));
    }
    let (ids, m) = if radix.is_some_and(|r| r <= 256) {
        // Codes fit a byte: store them once, eight to a word (rows padded with zeros), then hash
        // and compare words.
        let w = d.div_ceil(8);
        let mut packed = vec![0u8; n * w * 8];
        ctl.fill_blocks(&mut packed, w * 8 * 1024, |start, block| {
            for (t, bytes) in block.chunks_exact_mut(w * 8).enumerate() {
                binner.fill_codes(x.row(start / (w * 8) + t), &mut bytes[..d], |c| c as u8);
            }
        })?;
        let word = |i: usize, k: usize| {
            let at = (i * w + k) * 8;
            u64::from_le_bytes(packed[at..at + 8].try_into().expect("8 bytes"))
        };
        factorize_rows(
            n,
            w,
            |i, buf| {
                for (k, o) in buf.iter_mut().enumerate() {
                    *o = word(i, k);
                }
            },
            ctl,
        )?
    } else {
        factorize_rows(n, d, |i, buf| binner.fill_codes(x.row(i), buf, |c| c as u64), ctl)?
    };
    Ok((ids, m, binner))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctl() -> Ctl<'static> {
        Ctl::uninterruptible().unwrap()
    }

    #[test]
    fn floor_without_libm() {
        for q in [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            2.999,
            -2.999,
            1e18,
            -1e18,
            4.5e15 + 0.5,
            -(4.5e15 + 0.5),
        ] {
            assert_eq!(floor_to_i64(q), q.floor() as i64, "{q}");
        }
        assert_eq!(floor_to_i64(1e300), i64::MAX);
        assert_eq!(floor_to_i64(-1e300), i64::MIN);
    }

    #[test]
    fn uniform_binning_puts_the_maximum_in_the_last_bin() {
        let data = [0.0f64, 0.5, 1.0, 0.25];
        let x = Points::new("x", &data, 4, 1).unwrap();
        let b = Binner::fit(
            &x,
            &Binning::Uniform {
                n_bins: 2,
                per_unit: false,
            },
            &ctl(),
        )
        .unwrap();
        let codes: Vec<i64> = data.iter().map(|&v| b.code(0, v)).collect();
        assert_eq!(codes, vec![0, 1, 1, 0]);
    }

    fn codes_of(data: &[f64], binning: Binning) -> Vec<i64> {
        let x = Points::new("x", data, data.len(), 1).unwrap();
        let b = Binner::fit(&x, &binning, &ctl()).unwrap();
        data.iter().map(|&v| b.code(0, v)).collect()
    }

    /// Bins at the ends of the float64 range are those of exact arithmetic: a range that
    /// overflows, a width in the subnormal range, fixed-width indices past 2^63.
    #[test]
    fn bins_at_extreme_magnitudes() {
        let uniform = |n_bins| Binning::Uniform {
            n_bins,
            per_unit: false,
        };
        assert_eq!(codes_of(&[-1e308, 0.0, 1e308], uniform(3)), vec![0, 1, 2]);
        assert_eq!(codes_of(&[-f64::MAX, f64::MAX], uniform(1)), vec![0, 0]);
        let tiny = f64::from_bits(1); // 2^-1074: (hi − lo)/n underflows to 0 unscaled
        assert_eq!(
            codes_of(&[0.0, tiny, 2.0 * tiny, 3.0 * tiny], uniform(4)),
            vec![0, 1, 2, 3]
        );
        let fixed = Binning::FixedWidth { bin_size: 1e-12 };
        let keys = codes_of(&[1e7, 2e7, 3e7, 4e7, -1e7, 1e7], fixed.clone());
        assert_eq!((keys[0], keys[5]), (keys[5], keys[0]));
        let mut distinct = keys[..5].to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 5, "{keys:?}");
        // Below 2^62 the key is the index; beyond, keys stay apart from those indices.
        assert_eq!(fixed_code(-3.5, 1.0), -4);
        assert!(fixed_code(2f64.powi(62), 1.0) > (1i64 << 62));
        assert!(fixed_code(-(2f64.powi(62)), 1.0) < -(1i64 << 62));
        let x = Points::new("x", &[1e300, 1.0], 2, 1).unwrap();
        let err = Binner::fit(&x, &Binning::FixedWidth { bin_size: 1e-10 }, &ctl()).unwrap_err();
        assert!(err.to_string().starts_with("bin_size:"), "{err}");
        let quantile = Binning::Quantile { n_bins: 3 };
        assert_eq!(codes_of(&[-1e308, 0.0, 1e308], quantile.clone()), vec![0, 1, 2]);
        let small: Vec<f64> = [0.0, 1.0, 2.0, 3.0].iter().map(|v| v * tiny).collect();
        assert_eq!(
            codes_of(&small, quantile),
            codes_of(&[0.0, 1.0, 2.0, 3.0], Binning::Quantile { n_bins: 3 })
        );
        let x = Points::new("x", &[0.0; 4], 4, 1).unwrap();
        let err = Binner::fit(&x, &Binning::Quantile { n_bins: 1025 }, &ctl()).unwrap_err();
        assert!(err.to_string().starts_with("n_bins:"), "{err}");
    }

    #[test]
    fn quantile_edges_follow_numpy() {
        // numpy.quantile([1, 2, 3, 4, 10], [0.25, 0.5, 0.75]) == [2, 3, 4]
        let sorted = [1.0, 2.0, 3.0, 4.0, 10.0];
        let e: Vec<f64> = [0.25, 0.5, 0.75]
            .iter()
            .map(|&q| numpy_linear_quantile(&sorted, q))
            .collect();
        assert_eq!(e, vec![2.0, 3.0, 4.0]);
        // numpy.quantile([0, 1], 1/3) == 0.3333333333333333
        assert_eq!(numpy_linear_quantile(&[0.0, 1.0], 1.0 / 3.0), 1.0 / 3.0);
    }
}
