//! Geometric compression of representations (SPEC §4): class statistics and scatter matrices,
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
use crate::parallel::Ctl;
use crate::points::{Points, Real};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

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

/// Copies rows `rows` of `p`, minus `centre` (if any), into `buf` (row-major, `rows.len() × d`).
#[inline]
pub(crate) fn gather_rows<T: Real>(p: Points<'_, T>, rows: &[u32], centre: Option<&[f64]>, buf: &mut [f64]) {
    let d = p.d();
    for (r, &i) in rows.iter().enumerate() {
        let src = p.row(i as usize);
        let dst = &mut buf[r * d..(r + 1) * d];
        match centre {
            Some(m) => {
                for ((o, &x), &mu) in dst.iter_mut().zip(src).zip(m) {
                    *o = x.to_f64() - mu;
                }
            }
            None => {
                for (o, &x) in dst.iter_mut().zip(src) {
                    *o = x.to_f64();
                }
            }
        }
    }
}

/// `out (m × n) += a (m × k) · bᵀ (b is n × k)`, all row-major, sequential (callers parallelise
/// over blocks themselves, which keeps results independent of the thread count).
pub(crate) fn gemm_abt(out: &mut [f64], a: &[f64], b: &[f64], m: usize, n: usize, k: usize, accumulate: bool) {
    let a = MatRef::from_row_major_slice(&a[..m * k], m, k);
    let b = MatRef::from_row_major_slice(&b[..n * k], n, k);
    let out = MatMut::from_row_major_slice_mut(&mut out[..m * n], m, n);
    let beta = if accumulate { Accum::Add } else { Accum::Replace };
    matmul(out, beta, a, b.transpose(), 1.0, Par::Seq);
}

/// `out (m × n) += aᵀ · b` with a (k × m) and b (k × n) row-major.
pub(crate) fn gemm_atb(out: &mut [f64], a: &[f64], b: &[f64], m: usize, n: usize, k: usize, accumulate: bool) {
    let a = MatRef::from_row_major_slice(&a[..k * m], k, m);
    let b = MatRef::from_row_major_slice(&b[..k * n], k, n);
    let out = MatMut::from_row_major_slice_mut(&mut out[..m * n], m, n);
    let beta = if accumulate { Accum::Add } else { Accum::Replace };
    matmul(out, beta, a.transpose(), b, 1.0, Par::Seq);
}

/// Rows per gathered block in matrix products over samples.
pub(crate) const GATHER_ROWS: usize = 128;

/// Σ over the rows listed in `order` of (h_i − centre_i)(h_i − centre_i)ᵀ, a d × d matrix, where
/// `centre(pos)` is the centre of the row at position `pos` of `order` (None: the origin).
/// Computed in a fixed number of partial sums that depends only on (N, d), so the result does not
/// depend on the thread count; O(d²) memory per partial.
pub(crate) fn gram<'c, T: Real>(
    p: Points<'_, T>,
    order: &[u32],
    centre: &(dyn Fn(usize) -> Option<&'c [f64]> + Sync),
    ctl: &Ctl,
) -> Result<Vec<f64>> {
    let (n, d) = (order.len(), p.d());
    let budget = (64usize << 20) / (d * d * 8).max(1);
    let parts = n.div_ceil(4 * GATHER_ROWS).clamp(1, 8).min(budget.max(1));
    let per = n.div_ceil(parts).max(1);
    let mut partials: Vec<Vec<f64>> = vec![Vec::new(); parts];
    ctl.fill_blocks(&mut partials, 1, |part, slot| {
        let mut acc = vec![0.0f64; d * d];
        let mut buf = vec![0.0f64; GATHER_ROWS * d];
        let (lo, hi) = ((part * per).min(n), ((part + 1) * per).min(n));
        let mut s = lo;
        while s < hi {
            // A block never straddles two centres, so it can be centred in one go.
            let mut e = (s + GATHER_ROWS).min(hi);
            let c0 = centre(s);
            for q in s + 1..e {
                if !same_centre(centre(q), c0) {
                    e = q;
                    break;
                }
            }
            gather_rows(p, &order[s..e], c0, &mut buf);
            gemm_atb(&mut acc, &buf, &buf, d, d, e - s, true);
            s = e;
        }
        slot[0] = acc;
    })?;
    let mut total = partials.pop().unwrap_or_else(|| vec![0.0; d * d]);
    for part in partials.iter().rev() {
        for (t, v) in total.iter_mut().zip(part) {
            *t += v;
        }
    }
    symmetrize(&mut total, d);
    Ok(total)
}

fn same_centre(a: Option<&[f64]>, b: Option<&[f64]>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => std::ptr::eq(x.as_ptr(), y.as_ptr()),
        _ => false,
    }
}

/// Makes a d × d matrix exactly symmetric (mean of the two triangles).
pub(crate) fn symmetrize(m: &mut [f64], d: usize) {
    for i in 0..d {
        for j in i + 1..d {
            let v = 0.5 * (m[i * d + j] + m[j * d + i]);
            m[i * d + j] = v;
            m[j * d + i] = v;
        }
    }
}

/// Eigenvalues (ascending) and, if asked, eigenvectors (columns of a row-major d × d matrix) of a
/// symmetric matrix.
pub(crate) fn sym_eigen(m: &[f64], d: usize, vectors: bool) -> Result<(Vec<f64>, Vec<f64>)> {
    let a = MatRef::from_row_major_slice(m, d, d);
    let fail = |e| CoreError::Internal(format!("symmetric eigendecomposition failed: {e:?}"));
    if !vectors {
        let vals = a.self_adjoint_eigenvalues(faer::Side::Lower).map_err(fail)?;
        return Ok((vals, Vec::new()));
    }
    let evd = a.self_adjoint_eigen(faer::Side::Lower).map_err(fail)?;
    let s = evd.S().column_vector();
    let u = evd.U();
    let vals: Vec<f64> = (0..d).map(|i| s[i]).collect();
    let mut vecs = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            vecs[i * d + j] = u[(i, j)];
        }
    }
    Ok((vals, vecs))
}

#[cfg(test)]
mod tests;
