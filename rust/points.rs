//! The point sets the whole core reads: [`Real`], the element types it computes in (f32 or f64, as
//! the caller's arrays are), and [`Points`], a borrowed row-major `n × d` array; [`concat_columns`]
//! builds joint spaces from several of them.

use crate::error::{CoreError, Result};
use crate::memory::{self, Need};
use crate::parallel::Ctl;
use std::cmp::Ordering;

/// The floating-point types the engine computes in (f32 or f64, as the caller's arrays are).
pub trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + PartialEq
    + Default
    + std::fmt::Debug
    + 'static
    + std::ops::Sub<Output = Self>
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + crate::memory::Zero
{
    const ZERO: Self;
    const INFINITY: Self;
    /// Unit roundoff u (half the machine epsilon), as f64: every correctly rounded operation
    /// has relative error at most u.
    const UNIT_ROUNDOFF: f64;
    /// The smallest positive normal value, as f64 (absolute error bound once results underflow).
    const MIN_NORMAL: f64;
    /// The largest finite value, as f64.
    const MAX_FINITE: f64;
    fn abs(self) -> Self;
    fn to_f64(self) -> f64;
    fn is_finite(self) -> bool;
    fn sqrt(self) -> Self;
    fn total_order(&self, other: &Self) -> Ordering;
    #[inline(always)]
    fn max_of(self, other: Self) -> Self {
        if other > self {
            other
        } else {
            self
        }
    }
    #[inline(always)]
    fn min_of(self, other: Self) -> Self {
        if other < self {
            other
        } else {
            self
        }
    }
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const INFINITY: Self = <$t>::INFINITY;
            const UNIT_ROUNDOFF: f64 = <$t>::EPSILON as f64 / 2.0;
            const MIN_NORMAL: f64 = <$t>::MIN_POSITIVE as f64;
            const MAX_FINITE: f64 = <$t>::MAX as f64;
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn total_order(&self, other: &Self) -> Ordering {
                <$t>::total_cmp(self, other)
            }
        }
    };
}
impl_real!(f32);
impl_real!(f64);

/// A borrowed, row-major `n × d` point set.
#[derive(Clone, Copy, Debug)]
pub struct Points<'a, T> {
    data: &'a [T],
    n: usize,
    d: usize,
}

impl<'a, T: Real> Points<'a, T> {
    /// `arg` names the array in error messages.
    /// Wraps points the core made itself from already validated input (no finiteness scan).
    pub(crate) fn trusted(data: &'a [T], n: usize, d: usize) -> Self {
        debug_assert_eq!(data.len(), n * d);
        Points { data, n, d }
    }

    pub fn new(arg: &'static str, data: &'a [T], n: usize, d: usize) -> Result<Self> {
        if n == 0 || d == 0 {
            return Err(CoreError::invalid(arg, format!("empty input (shape ({n}, {d}))")));
        }
        if data.len() != n * d {
            return Err(CoreError::invalid(
                arg,
                format!("buffer of {} values for shape ({n}, {d})", data.len()),
            ));
        }
        if n > u32::MAX as usize {
            return Err(CoreError::invalid(arg, "more than 2^32 - 1 samples"));
        }
        // Whole chunks are checked without an early exit (which vectorises); the exact position
        // is looked up only when a chunk fails.
        for (c, chunk) in data.chunks(4096).enumerate() {
            if !chunk.iter().fold(true, |ok, v| ok & v.is_finite()) {
                let pos = c * 4096 + chunk.iter().position(|v| !v.is_finite()).unwrap_or(0);
                return Err(CoreError::invalid(
                    arg,
                    format!("contains NaN or inf (first at row {})", pos / d),
                ));
            }
        }
        Ok(Points { data, n, d })
    }

    #[inline(always)]
    pub fn n(&self) -> usize {
        self.n
    }
    #[inline(always)]
    pub fn d(&self) -> usize {
        self.d
    }
    #[inline(always)]
    pub fn data(&self) -> &'a [T] {
        self.data
    }
    #[inline(always)]
    pub fn row(&self, i: usize) -> &'a [T] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    /// Copies the rows `rows` (in that order, repeats allowed) into a new row-major buffer.
    pub fn gather(&self, rows: &[u32]) -> Result<Vec<T>> {
        let (m, d) = (rows.len(), self.d);
        let mut out = memory::with_capacity(m * d, || {
            Need::new("x", format!("a copy of {m} rows of {d} values"), "use fewer samples")
        })?;
        for &i in rows {
            out.extend_from_slice(self.row(i as usize));
        }
        Ok(out)
    }
}

/// Concatenates the columns of several point sets with the same number of rows (the joint space).
pub fn concat_columns<T: Real>(parts: &[Points<'_, T>], ctl: &Ctl) -> Result<Vec<T>> {
    let n = parts[0].n();
    let d: usize = parts.iter().map(|p| p.d()).sum();
    let mut out = memory::filled(n * d, T::ZERO, || {
        Need::new(
            "x",
            format!("the joint space of the variables ({n} × {d} values)"),
            "use fewer samples or fewer dimensions",
        )
    })?;
    ctl.install(|| {
        use rayon::prelude::*;
        out.par_chunks_mut(d * 1024).enumerate().for_each(|(b, chunk)| {
            for (r, row) in chunk.chunks_mut(d).enumerate() {
                let i = b * 1024 + r;
                let mut off = 0;
                for p in parts {
                    row[off..off + p.d()].copy_from_slice(p.row(i));
                    off += p.d();
                }
            }
        });
    });
    Ok(out)
}
