//! Dense linear algebra of the core, all through faer: row-major matrix products (`gemm_abt`,
//! `gemm_atb`, `gemm_abt_scaled`), scatter matrices over gathered blocks of rows
//! (`scatter_matrix`), and the symmetric eigendecomposition, thin SVD and Cholesky factorisation
//! the estimators need.
//!
//! Every faer call gets its parallelism explicitly, never faer's global setting (which is rayon's
//! global pool: it would start threads beyond `set_num_threads`). Products run sequentially
//! (`Par::Seq`): callers parallelise over blocks themselves, in a fixed partition, so results do
//! not depend on the thread count. Decompositions run sequentially too (`DECOMPOSITION_PAR`),
//! inside the crate's pool. Every faer call is followed by [`crate::simd::clear_upper_state`]:
//! faer's 512-bit kernels can leave the vector registers' upper halves in use, which slowed all
//! later baseline-compiled code on that thread several times over.

use crate::error::{CoreError, Result};
use crate::memory::{self, Need};
use crate::parallel::Ctl;
use crate::points::{Points, Real};
use faer::diag::Diag;
use faer::dyn_stack::MemStack;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use std::sync::Arc;

/// The parallelism of faer's decompositions: sequential, because faer's parallel ones give other
/// bits at other thread counts. Measured with faer 0.24.4 (Par::Seq against Par::rayon(2) and
/// Par::rayon(4), random matrices): the symmetric eigendecomposition differs from n = 320 on (up
/// to 2·10⁻¹² in the eigenvalues at n = 1024; equal at n ≤ 256); the thin SVD's U differs already
/// at 100 × 100 and 128 × 16 (4 threads), its values from 256 × 16 (4 threads) or 512 × 64
/// (2 threads) on (equal at 16 × 7, 64 × 64, 200 × 200); the Cholesky factor was equal up to
/// n = 1024, and runs sequentially as well so that no decomposition depends on the thread count.
const DECOMPOSITION_PAR: Par = Par::Seq;

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
    crate::simd::clear_upper_state();
}

/// [`gemm_abt`] in single precision (`out = a · bᵀ`): twice the lanes per instruction, for the
/// Gram-form candidate selection, whose error bound is derived for it (`knn/gram.rs`).
pub(crate) fn gemm_abt_f32(out: &mut [f32], a: &[f32], b: &[f32], m: usize, n: usize, k: usize) {
    let a = MatRef::from_row_major_slice(&a[..m * k], m, k);
    let b = MatRef::from_row_major_slice(&b[..n * k], n, k);
    let out = MatMut::from_row_major_slice_mut(&mut out[..m * n], m, n);
    matmul(out, Accum::Replace, a, b.transpose(), 1.0f32, Par::Seq);
    crate::simd::clear_upper_state();
}

/// `out (m × n) += aᵀ · b` with a (k × m) and b (k × n) row-major.
pub(crate) fn gemm_atb(out: &mut [f64], a: &[f64], b: &[f64], m: usize, n: usize, k: usize, accumulate: bool) {
    let a = MatRef::from_row_major_slice(&a[..k * m], k, m);
    let b = MatRef::from_row_major_slice(&b[..k * n], k, n);
    let out = MatMut::from_row_major_slice_mut(&mut out[..m * n], m, n);
    let beta = if accumulate { Accum::Add } else { Accum::Replace };
    matmul(out, beta, a.transpose(), b, 1.0, Par::Seq);
    crate::simd::clear_upper_state();
}

/// `out (m × n) = alpha · a (m × k) · bᵀ (b is n × k)`, all row-major, sequential.
pub(crate) fn gemm_abt_scaled(out: &mut [f64], a: &[f64], b: &[f64], m: usize, n: usize, k: usize, alpha: f64) {
    let out = MatMut::from_row_major_slice_mut(out, m, n);
    let lhs = MatRef::from_row_major_slice(a, m, k);
    let rhs = MatRef::from_row_major_slice(b, n, k).transpose();
    matmul(out, Accum::Replace, lhs, rhs, alpha, Par::Seq);
    crate::simd::clear_upper_state();
}

/// Rows per gathered block in matrix products over samples.
pub(crate) const GATHER_ROWS: usize = 128;

/// The scatter matrix Σ over the rows listed in `order` of (h_i − centre_i)(h_i − centre_i)ᵀ, a
/// d × d matrix, where `centre(pos)` is the centre of the row at position `pos` of `order` (None:
/// the origin, giving the cross-product matrix HᵀH).
/// Computed in a fixed number of partial sums that depends only on (N, d), so the result does not
/// depend on the thread count; O(d²) memory per partial. The partials advance in rounds of whole
/// blocks of rows (each partial adds the same blocks in the same order whatever the rounds), with
/// the interrupt check between rounds. `arg` names the data and `what` the matrix (e.g. "the
/// within-class scatter matrix S_W") in an out-of-memory error.
pub(crate) fn scatter_matrix<'c, T: Real>(
    arg: &'static str,
    what: &'static str,
    p: Points<'_, T>,
    order: &[u32],
    centre: &(dyn Fn(usize) -> Option<&'c [f64]> + Sync),
    ctl: &Ctl,
) -> Result<Vec<f64>> {
    let (n, d) = (order.len(), p.d());
    let budget = (64usize << 20) / (d * d * 8).max(1);
    let parts = n.div_ceil(4 * GATHER_ROWS).clamp(1, 8).min(budget.max(1));
    let per = n.div_ceil(parts).max(1);
    let need = || {
        Need::new(
            arg,
            format!("{what} ({d} × {d})"),
            "reduce the number of dimensions (columns) first, e.g. by PCA or a random projection",
        )
    };
    struct Partial {
        acc: Vec<f64>,
        buf: Vec<f64>,
        /// The next row position and the end of this partial's rows.
        next: usize,
        end: usize,
    }
    let mut partials: Vec<Partial> = Vec::with_capacity(parts);
    for part in 0..parts {
        partials.push(Partial {
            acc: memory::zeros(d.saturating_mul(d), need)?,
            buf: memory::zeros(GATHER_ROWS.saturating_mul(d), need)?,
            next: (part * per).min(n),
            end: ((part + 1) * per).min(n),
        });
    }
    ctl.run_resumable(&mut partials, |_, part, blocks| {
        for _ in 0..blocks {
            let (s, hi) = (part.next, part.end);
            if s >= hi {
                break;
            }
            // A block never straddles two centres, so it can be centred in one go.
            let mut e = (s + GATHER_ROWS).min(hi);
            let c0 = centre(s);
            for q in s + 1..e {
                if !same_centre(centre(q), c0) {
                    e = q;
                    break;
                }
            }
            gather_rows(p, &order[s..e], c0, &mut part.buf);
            gemm_atb(&mut part.acc, &part.buf, &part.buf, d, d, e - s, true);
            part.next = e;
        }
        Ok(part.next >= part.end)
    })?;
    let mut partials: Vec<Vec<f64>> = partials.into_iter().map(|p| p.acc).collect();
    let mut total = match partials.pop() {
        Some(t) => t,
        None => memory::zeros(d.saturating_mul(d), need)?,
    };
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
/// symmetric matrix (its lower triangle is read). Runs on one thread ([`DECOMPOSITION_PAR`]) of
/// its own, so that an interrupt returns at once (`Ctl::run_detached`); `m` is shared with it for
/// that reason. `arg` names the data in an out-of-memory error.
pub(crate) fn sym_eigen(
    arg: &'static str,
    m: Arc<Vec<f64>>,
    d: usize,
    vectors: bool,
    ctl: &Ctl,
) -> Result<(Vec<f64>, Vec<f64>)> {
    use faer::linalg::evd::{self_adjoint_evd, self_adjoint_evd_scratch, ComputeEigenvectors};
    let par = DECOMPOSITION_PAR;
    let compute = if vectors {
        ComputeEigenvectors::Yes
    } else {
        ComputeEigenvectors::No
    };
    let need = || {
        Need::new(
            arg,
            format!("the eigendecomposition of a {d} × {d} matrix"),
            "reduce the number of dimensions (columns) first, e.g. by PCA or a random projection",
        )
    };
    let mut u = if vectors {
        Some(memory::matrix(d, d, need)?)
    } else {
        None
    };
    let mut scratch = memory::scratch(
        self_adjoint_evd_scratch::<f64>(d, compute, par, Default::default()),
        need,
    )?;
    let mut vecs = if vectors {
        memory::zeros::<f64>(d.saturating_mul(d), need)?
    } else {
        Vec::new()
    };
    let (s, u) = ctl
        .run_detached(move || {
            let a = MatRef::from_row_major_slice(&m[..], d, d);
            let mut s = Diag::<f64>::zeros(d);
            let stack = MemStack::new(&mut scratch);
            let done = self_adjoint_evd(
                a,
                s.as_mut(),
                u.as_mut().map(|u| u.as_mut()),
                par,
                stack,
                Default::default(),
            );
            crate::simd::clear_upper_state();
            done.map(|()| (s, u))
        })?
        .map_err(|e| CoreError::Internal(format!("symmetric eigendecomposition failed: {e:?}")))?;
    let s = s.column_vector();
    let vals: Vec<f64> = (0..d).map(|i| s[i]).collect();
    let Some(u) = u else {
        return Ok((vals, Vec::new()));
    };
    for i in 0..d {
        for j in 0..d {
            vecs[i * d + j] = u[(i, j)];
        }
    }
    Ok((vals, vecs))
}

/// The thin SVD of the d × k matrix Mᵀ whose transpose M (k × d) is given row-major: the singular
/// values (in faer's order, non-increasing) and U (d × min(d, k), row-major). Runs on one thread
/// ([`DECOMPOSITION_PAR`]) of its own, so that an interrupt returns at once (`Ctl::run_detached`).
pub(crate) fn thin_svd_of_transpose(m: Vec<f64>, k: usize, d: usize, ctl: &Ctl) -> Result<(Vec<f64>, Vec<f64>)> {
    use faer::linalg::svd::{svd, svd_scratch, ComputeSvdVectors};
    let par = DECOMPOSITION_PAR;
    let r = d.min(k);
    let need = || {
        Need::new(
            "h",
            format!("the SVD of the {k} centred class means in {d} dimensions"),
            "use fewer classes or fewer dimensions",
        )
    };
    let (mut u, mut v) = (memory::matrix(d, r, need)?, memory::matrix(k, r, need)?);
    // V is computed too, as faer's `thin_svd` does: the same algorithm, the same U and S.
    let thin = ComputeSvdVectors::Thin;
    let mut scratch = memory::scratch(svd_scratch::<f64>(d, k, thin, thin, par, Default::default()), need)?;
    let mut vecs = memory::zeros::<f64>(d.saturating_mul(r), need)?;
    let (s, u) = ctl
        .run_detached(move || {
            let mt = MatRef::from_row_major_slice(&m, k, d).transpose(); // d × k
            let mut s = Diag::<f64>::zeros(r);
            let stack = MemStack::new(&mut scratch);
            let done = svd(
                mt,
                s.as_mut(),
                Some(u.as_mut()),
                Some(v.as_mut()),
                par,
                stack,
                Default::default(),
            );
            crate::simd::clear_upper_state();
            done.map(|()| (s, u))
        })?
        .map_err(|e| CoreError::Internal(format!("SVD failed: {e:?}")))?;
    let s = s.column_vector();
    let vals: Vec<f64> = (0..r).map(|j| s[j]).collect();
    for i in 0..d {
        for j in 0..r {
            vecs[i * r + j] = u[(i, j)];
        }
    }
    Ok((vals, vecs))
}

/// log det(I + XᵀX/m) for X (m × d, row-major), from a Cholesky factor; `Ok(None)` when the
/// matrix is not numerically positive definite (the factorisation fails or the log determinant is
/// not finite). With more columns than rows it is log det(I + XXᵀ/m) (Sylvester's determinant
/// identity), so the matrix factored is min(m, d) square. Sequential ([`DECOMPOSITION_PAR`]), where
/// it is called (callers run it inside the pool); `arg` names the data in an out-of-memory error.
pub(crate) fn log_det_identity_plus_covariance(
    arg: &'static str,
    x: &[f64],
    m: usize,
    d: usize,
) -> Result<Option<f64>> {
    use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
    let x = MatRef::from_row_major_slice(x, m, d);
    let (x, k) = if d > m { (x.transpose(), m) } else { (x, d) };
    let need = || {
        Need::new(
            arg,
            format!("the {k} × {k} covariance of {m} samples in {d} dimensions and its Cholesky factor"),
            "use fewer samples (a random subset) or fewer dimensions",
        )
    };
    let mut cov = memory::matrix(k, k, need)?;
    matmul(cov.as_mut(), Accum::Replace, x.transpose(), x, 1.0 / m as f64, Par::Seq);
    crate::simd::clear_upper_state();
    for i in 0..k {
        cov[(i, i)] += 1.0;
    }
    // As faer's `Mat::llt(Side::Lower)`: the lower triangle into a fresh matrix, factored in place.
    let par = DECOMPOSITION_PAR;
    let mut l = memory::matrix(k, k, need)?;
    l.copy_from_triangular_lower(cov.as_ref());
    drop(cov);
    let mut scratch = memory::scratch(cholesky_in_place_scratch::<f64>(k, par, Default::default()), need)?;
    let stack = MemStack::new(&mut scratch);
    let factored = cholesky_in_place(l.as_mut(), Default::default(), par, stack, Default::default());
    crate::simd::clear_upper_state();
    if factored.is_err() {
        return Ok(None);
    }
    let log_det: f64 = (0..k).map(|i| 2.0 * l[(i, i)].ln()).sum();
    Ok(log_det.is_finite().then_some(log_det))
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    fn uniform(len: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
            })
            .collect()
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// log det(I + XᵀX/m) of a wide X (m < d) comes from the m × m form I + XXᵀ/m; it equals the
    /// d × d form (computed here directly) to rounding, and is the value of a tall X's transpose
    /// scaled to the same 1/m.
    #[test]
    fn log_det_of_a_wide_matrix_uses_the_small_side() {
        let (m, d) = (7, 40);
        let x = uniform(m * d, 3);
        let wide = log_det_identity_plus_covariance("x", &x, m, d).unwrap().unwrap();
        let mut full = vec![0.0; d * d];
        gemm_atb(&mut full, &x, &x, d, d, m, false);
        let mut a = Mat::<f64>::zeros(d, d);
        for i in 0..d {
            for j in 0..d {
                a[(i, j)] = full[i * d + j] / m as f64 + if i == j { 1.0 } else { 0.0 };
            }
        }
        let direct: f64 = a
            .llt(faer::Side::Lower)
            .unwrap()
            .L()
            .diagonal()
            .column_vector()
            .iter()
            .map(|v| 2.0 * v.ln())
            .sum();
        assert!(
            (wide - direct).abs() < 1e-12 * direct.abs().max(1.0),
            "{wide} vs {direct}"
        );
    }

    /// The decompositions give the same bits on pools of 1, 2 and 4 threads, at sizes where
    /// faer's own parallel versions do not (n = 400 eigendecomposition, 512 × 64 thin SVD).
    #[test]
    fn decompositions_do_not_depend_on_the_thread_count() {
        let (n, rows) = (400, 800);
        let x = uniform(rows * n, 1);
        let mut a = vec![0.0; n * n];
        gemm_atb(&mut a, &x, &x, n, n, rows, false);
        symmetrize(&mut a, n);
        let m = uniform(64 * 512, 2); // Mᵀ is 512 × 64
        let run = |threads: usize| {
            let ctl = Ctl::with_threads(threads);
            let (vals, vecs) = sym_eigen("a", Arc::new(a.clone()), n, true, &ctl).unwrap();
            let (only_vals, _) = sym_eigen("a", Arc::new(a.clone()), n, false, &ctl).unwrap();
            let (s, u) = thin_svd_of_transpose(m.clone(), 64, 512, &ctl).unwrap();
            let log_det = ctl
                .install(|| log_det_identity_plus_covariance("x", &x, rows, n))
                .unwrap()
                .unwrap();
            [
                bits(&vals),
                bits(&vecs),
                bits(&only_vals),
                bits(&s),
                bits(&u),
                bits(&[log_det]),
            ]
        };
        let one = run(1);
        assert_eq!(run(2), one);
        assert_eq!(run(4), one);
        // Sanity: A·v = λ·v for the largest eigenpair.
        let (vals, vecs) = sym_eigen("a", Arc::new(a.clone()), n, true, &Ctl::with_threads(1)).unwrap();
        let (lambda, j) = (vals[n - 1], n - 1);
        for i in 0..n {
            let av: f64 = (0..n).map(|t| a[i * n + t] * vecs[t * n + j]).sum();
            assert!((av - lambda * vecs[i * n + j]).abs() < 1e-9 * lambda, "row {i}");
        }
    }
}
