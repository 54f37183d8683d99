//! The distances of the neighbour engine ([`Metric`]: [`Chebyshev`], [`Euclidean`]) and the
//! [`with_dim!`](crate::with_dim) dispatch that compiles hot loops for small fixed dimensions.

use crate::points::Real;

/// A distance, expressed through a per-coordinate term and a combination rule.
/// Distances are compared in the metric's *reduced* scale (Euclidean: squared).
pub trait Metric: Copy + Send + Sync + 'static {
    /// Whether the distance is the largest coordinate gap (the max-norm).
    const MAX_NORM: bool;
    /// Per-coordinate contribution of a non-negative coordinate gap.
    fn term<T: Real>(gap: T) -> T;
    /// Combines an accumulated value with a new term (max or +). Monotone in both arguments.
    fn combine<T: Real>(acc: T, term: T) -> T;
    /// Reduced value → distance.
    fn finish<T: Real>(reduced: T) -> T;
    /// Distance → reduced value (Euclidean radius counts compare squared distances to r·r).
    fn reduce_radius<T: Real>(r: T) -> T;

    /// Reduced distance between two rows of length `D` (or `a.len()` when `D == 0`).
    #[inline(always)]
    fn dist<T: Real, const D: usize>(a: &[T], b: &[T]) -> T {
        let dim = if D == 0 { a.len() } else { D };
        let (a, b) = (&a[..dim], &b[..dim]);
        let mut acc = T::ZERO;
        for k in 0..dim {
            acc = Self::combine(acc, Self::term((a[k] - b[k]).abs()));
        }
        acc
    }

    /// Like `dist`, but may stop early and return any value `> bound` once the result is known
    /// to exceed `bound` (checked every 8 coordinates).
    #[inline(always)]
    fn dist_bounded<T: Real, const D: usize>(a: &[T], b: &[T], bound: T) -> T {
        let dim = if D == 0 { a.len() } else { D };
        if dim <= 8 {
            return Self::dist::<T, D>(a, b);
        }
        let (a, b) = (&a[..dim], &b[..dim]);
        let mut acc = T::ZERO;
        let mut k = 0;
        while k < dim {
            let stop = dim.min(k + 8);
            while k < stop {
                acc = Self::combine(acc, Self::term((a[k] - b[k]).abs()));
                k += 1;
            }
            if acc > bound {
                return acc;
            }
        }
        acc
    }

    /// Smallest reduced distance between any point of box `[alo, ahi]` and any of `[blo, bhi]`.
    /// Rounding is monotone, so this never exceeds the computed distance of any such pair.
    #[inline(always)]
    fn box_min_dist<T: Real, const D: usize>(alo: &[T], ahi: &[T], blo: &[T], bhi: &[T]) -> T {
        let dim = if D == 0 { alo.len() } else { D };
        let (alo, ahi, blo, bhi) = (&alo[..dim], &ahi[..dim], &blo[..dim], &bhi[..dim]);
        let mut acc = T::ZERO;
        for k in 0..dim {
            let gap = (blo[k] - ahi[k]).max_of(alo[k] - bhi[k]).max_of(T::ZERO);
            acc = Self::combine(acc, Self::term(gap));
        }
        acc
    }

    /// Largest reduced distance between any point of box `[alo, ahi]` and any of `[blo, bhi]`.
    #[inline(always)]
    fn box_max_dist<T: Real, const D: usize>(alo: &[T], ahi: &[T], blo: &[T], bhi: &[T]) -> T {
        let dim = if D == 0 { alo.len() } else { D };
        let (alo, ahi, blo, bhi) = (&alo[..dim], &ahi[..dim], &blo[..dim], &bhi[..dim]);
        let mut acc = T::ZERO;
        for k in 0..dim {
            let far = (bhi[k] - alo[k]).abs().max_of((ahi[k] - blo[k]).abs());
            acc = Self::combine(acc, Self::term(far));
        }
        acc
    }

    /// Smallest reduced distance from the point `q` to the box `[lo, hi]`.
    #[inline(always)]
    fn min_to_box<T: Real, const D: usize>(q: &[T], lo: &[T], hi: &[T]) -> T {
        Self::box_min_dist::<T, D>(q, q, lo, hi)
    }

    /// Largest reduced distance from the point `q` to the box `[lo, hi]`.
    #[inline(always)]
    fn max_to_box<T: Real, const D: usize>(q: &[T], lo: &[T], hi: &[T]) -> T {
        Self::box_max_dist::<T, D>(q, q, lo, hi)
    }
}

/// The max-norm (L∞): the KSG estimators' distance.
#[derive(Clone, Copy, Debug, Default)]
pub struct Chebyshev;

impl Metric for Chebyshev {
    const MAX_NORM: bool = true;
    #[inline(always)]
    fn term<T: Real>(gap: T) -> T {
        gap
    }
    #[inline(always)]
    fn combine<T: Real>(acc: T, term: T) -> T {
        acc.max_of(term)
    }
    fn finish<T: Real>(reduced: T) -> T {
        reduced
    }
    fn reduce_radius<T: Real>(r: T) -> T {
        r
    }
}

/// The Euclidean norm (L2), compared as squared distances.
#[derive(Clone, Copy, Debug, Default)]
pub struct Euclidean;

impl Metric for Euclidean {
    const MAX_NORM: bool = false;
    #[inline(always)]
    fn term<T: Real>(gap: T) -> T {
        gap * gap
    }
    #[inline(always)]
    fn combine<T: Real>(acc: T, term: T) -> T {
        acc + term
    }
    fn finish<T: Real>(reduced: T) -> T {
        reduced.sqrt()
    }
    fn reduce_radius<T: Real>(r: T) -> T {
        r * r
    }
}

/// Runs `$body` with `$C` bound to a compile-time constant equal to `$v` when `$v` is one of the
/// listed values, and to `$other` otherwise: one monomorphised copy of `$body` per listed value, so
/// list only the values the body is written for (every copy is compiled, in every build).
#[macro_export]
macro_rules! with_const {
    ($v:expr, $C:ident in [$($n:literal),+] else $other:expr => $body:expr) => {
        match $v {
            $(
                $n => {
                    const $C: usize = $n;
                    $body
                }
            )+
            _ => {
                const $C: usize = $other;
                $body
            }
        }
    };
}

/// Runs `$body` with `$D` bound to a compile-time dimension for small `d` (1–16) and to 0
/// (meaning "runtime dimension") otherwise, so that hot loops are unrolled for small d.
#[macro_export]
macro_rules! with_dim {
    ($d:expr, $D:ident => $body:expr) => {
        $crate::with_const!($d, $D in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16] else 0 => $body)
    };
}
