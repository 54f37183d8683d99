//! Geometric compression of representations (docs/spec.md §4): class statistics and scatter matrices,
//! class-distance normalised variance, neural collapse NC1–NC4, clustering indices and intrinsic
//! dimension.
//!
//! Every quantity is computed in f64 whatever the input dtype; the input is read in place (rows
//! of class members are gathered into small f64 blocks when a matrix product needs them, never
//! into an N × d copy). Labels arrive as class codes `0..n_classes`; a code that no sample carries
//! is not a class.

pub mod clustering;
pub mod collapse;
pub mod intrinsic;
pub mod scatter;

use crate::error::{CoreError, Result};
use crate::memory::{self, Need};
use crate::parallel::Ctl;

pub use scatter::ClassStats;

/// The samples grouped by class: `order[bounds[c]..bounds[c + 1]]` are the rows of class `c`
/// (ascending), for the classes present; `ids[c]` is the code the caller used for class `c`.
#[derive(Clone, Debug)]
pub struct Classes {
    pub order: Vec<u32>,
    pub bounds: Vec<usize>,
    pub ids: Vec<u32>,
    /// For each row, its compact class (index into `ids`).
    pub of_row: Vec<u32>,
}

impl Classes {
    /// Groups `n` rows by their `codes` (each `< n_classes`); absent codes are dropped.
    pub fn new(codes: &[u32], n: usize, n_classes: usize) -> Result<Self> {
        if codes.len() != n {
            return Err(CoreError::invalid(
                "labels",
                format!("has {} entries but h has {n} samples", codes.len()),
            ));
        }
        let need = || {
            Need::new(
                "labels",
                format!("the class index of {n} samples in {n_classes} classes"),
                "use fewer samples",
            )
        };
        let mut counts = memory::zeros::<usize>(n_classes, need)?;
        for &c in codes {
            let c = c as usize;
            if c >= n_classes {
                return Err(CoreError::invalid(
                    "labels",
                    format!("class code {c} out of range 0..{n_classes}"),
                ));
            }
            counts[c] += 1;
        }
        let mut compact = memory::filled(n_classes, u32::MAX, need)?;
        let mut ids = Vec::new();
        let mut bounds = vec![0usize];
        for (c, &k) in counts.iter().enumerate() {
            if k > 0 {
                compact[c] = ids.len() as u32;
                ids.push(c as u32);
                bounds.push(bounds.last().unwrap() + k);
            }
        }
        let mut next: Vec<usize> = bounds[..ids.len()].to_vec();
        let mut order = memory::zeros::<u32>(n, need)?;
        let mut of_row = memory::zeros::<u32>(n, need)?;
        for (i, &c) in codes.iter().enumerate() {
            let k = compact[c as usize];
            of_row[i] = k;
            order[next[k as usize]] = i as u32;
            next[k as usize] += 1;
        }
        Ok(Classes {
            order,
            bounds,
            ids,
            of_row,
        })
    }

    pub fn n_classes(&self) -> usize {
        self.ids.len()
    }

    pub fn rows(&self, c: usize) -> &[u32] {
        &self.order[self.bounds[c]..self.bounds[c + 1]]
    }

    pub fn size(&self, c: usize) -> usize {
        self.bounds[c + 1] - self.bounds[c]
    }
}

/// Fails unless there are at least two classes (`arg` names the labels argument).
pub(crate) fn need_two_classes(n_classes: usize) -> Result<()> {
    if n_classes < 2 {
        return Err(CoreError::invalid(
            "labels",
            format!("need at least 2 classes, got {n_classes}"),
        ));
    }
    Ok(())
}

/// Which pairs (a, b) of C classes a pass over pairs visits, row by row: b > a, or every b ≠ a.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pairs {
    Upper,
    Ordered,
}

impl Pairs {
    fn row_len(self, k: usize, a: usize) -> usize {
        match self {
            Pairs::Upper => k - 1 - a,
            Pairs::Ordered => k - 1,
        }
    }

    /// The b of the `j`-th pair of row `a`.
    #[inline]
    fn column(self, a: usize, j: usize) -> usize {
        match self {
            Pairs::Upper => a + 1 + j,
            Pairs::Ordered if j < a => j,
            Pairs::Ordered => j + 1,
        }
    }
}

/// Values a pass over the pairs of C classes in d dimensions holds at once: O(C·d), the size of
/// the class means, and at least 2²⁰ (8 MB).
pub(crate) fn pair_budget(k: usize, d: usize) -> usize {
    k.saturating_mul(d).max(1 << 20)
}

/// Hands `consume` the values `value(a, b)` of the pairs, in row-major order (a ascending, then b
/// ascending) and in consecutive pieces, without a C × C table: the values are computed in
/// parallel, a block of whole rows at a time, into a buffer of about `budget` values (at least one
/// row). Sums that `consume` runs over the pieces in order therefore add the same terms in the
/// same order as a loop over the pairs. Interruptible between chunks of rows.
pub(crate) fn for_pair_values(
    k: usize,
    pairs: Pairs,
    budget: usize,
    ctl: &Ctl,
    value: impl Fn(usize, usize) -> f64 + Sync,
    mut consume: impl FnMut(&[f64]),
) -> Result<()> {
    let total = (0..k).map(|a| pairs.row_len(k, a)).sum::<usize>();
    let room = budget.max(k).min(total);
    let mut buf = memory::zeros::<f64>(room, || {
        Need::new(
            "labels",
            format!("a pass over the pairs of {k} classes ({room} values at a time)"),
            "use fewer classes",
        )
    })?;
    let mut a0 = 0;
    while a0 < k {
        // Whole rows a0..a1 that fit in the buffer (at least one).
        let mut bounds = vec![0usize];
        let mut a1 = a0;
        while a1 < k && (a1 == a0 || bounds.last().unwrap() + pairs.row_len(k, a1) <= room) {
            bounds.push(bounds.last().unwrap() + pairs.row_len(k, a1));
            a1 += 1;
        }
        let len = *bounds.last().unwrap();
        ctl.fill_segments(&mut buf[..len], &bounds, |i, _, row| {
            let a = a0 + i;
            for (j, v) in row.iter_mut().enumerate() {
                *v = value(a, pairs.column(a, j));
            }
        })?;
        consume(&buf[..len]);
        a0 = a1;
    }
    Ok(())
}

/// The start of a sum as `Iterator::sum` starts it for f64 (so that a running sum over pieces
/// gives the bits `.sum()` over all the terms gives).
pub(crate) fn sum_start() -> f64 {
    std::iter::empty::<f64>().sum()
}

#[cfg(test)]
mod tests;
