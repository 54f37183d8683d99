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
        let mut counts = vec![0usize; n_classes];
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
        let mut compact = vec![u32::MAX; n_classes];
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
        let mut order = vec![0u32; n];
        let mut of_row = vec![0u32; n];
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

#[cfg(test)]
mod tests;
