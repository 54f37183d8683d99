//! Dense linear algebra of the core, all through faer: row-major matrix products ([`gemm_abt`],
//! [`gemm_atb`], [`gemm_abt_scaled`]), scatter matrices over gathered blocks of rows
//! ([`scatter_matrix`]), and the symmetric eigendecomposition, thin SVD and Cholesky factorisation
//! the estimators need.
//!
//! Every product runs sequentially (`Par::Seq`): callers parallelise over blocks themselves, in a
//! fixed partition, so results do not depend on the thread count.

use crate::error::{CoreError, Result};
use crate::parallel::Ctl;
use crate::points::{Points, Real};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};

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

/// `out (m × n) = alpha · a (m × k) · bᵀ (b is n × k)`, all row-major, sequential.
pub(crate) fn gemm_abt_scaled(out: &mut [f64], a: &[f64], b: &[f64], m: usize, n: usize, k: usize, alpha: f64) {
    let out = MatMut::from_row_major_slice_mut(out, m, n);
    let lhs = MatRef::from_row_major_slice(a, m, k);
    let rhs = MatRef::from_row_major_slice(b, n, k).transpose();
    matmul(out, Accum::Replace, lhs, rhs, alpha, Par::Seq);
}

/// Rows per gathered block in matrix products over samples.
pub(crate) const GATHER_ROWS: usize = 128;

/// The scatter matrix Σ over the rows listed in `order` of (h_i − centre_i)(h_i − centre_i)ᵀ, a
/// d × d matrix, where `centre(pos)` is the centre of the row at position `pos` of `order` (None:
/// the origin, giving the cross-product matrix HᵀH).
/// Computed in a fixed number of partial sums that depends only on (N, d), so the result does not
/// depend on the thread count; O(d²) memory per partial.
pub(crate) fn scatter_matrix<'c, T: Real>(
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

/// The thin SVD of the d × k matrix Mᵀ whose transpose M (k × d) is given row-major: the singular
/// values (in faer's order, non-increasing) and U (d × min(d, k), row-major).
pub(crate) fn thin_svd_of_transpose(m: &[f64], k: usize, d: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let mt = MatRef::from_row_major_slice(m, k, d).transpose(); // d × k
    let svd = mt
        .thin_svd()
        .map_err(|e| CoreError::Internal(format!("SVD failed: {e:?}")))?;
    let s = svd.S().column_vector();
    let u = svd.U();
    let r = s.nrows();
    let vals: Vec<f64> = (0..r).map(|j| s[j]).collect();
    let mut vecs = vec![0.0; d * r];
    for i in 0..d {
        for j in 0..r {
            vecs[i * r + j] = u[(i, j)];
        }
    }
    Ok((vals, vecs))
}

/// log det(I + XᵀX/m) for X (m × d, row-major), from its Cholesky factor; None when the matrix is
/// not numerically positive definite (the factorisation fails or the log determinant is not finite).
pub(crate) fn log_det_identity_plus_covariance(x: &[f64], m: usize, d: usize) -> Option<f64> {
    let x = MatRef::from_row_major_slice(x, m, d);
    let mut cov = Mat::<f64>::zeros(d, d);
    matmul(cov.as_mut(), Accum::Replace, x.transpose(), x, 1.0 / m as f64, Par::Seq);
    for k in 0..d {
        cov[(k, k)] += 1.0;
    }
    let llt = cov.llt(Side::Lower).ok()?;
    let l = llt.L();
    let log_det: f64 = (0..d).map(|k| 2.0 * l[(k, k)].ln()).sum();
    log_det.is_finite().then_some(log_det)
}
