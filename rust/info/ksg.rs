//! The k-nearest-neighbour estimators of the Kraskov–Stögbauer–Grassberger family (docs/spec.md §1).
//!
//! Distances inside each variable are the max-norm ([`Norm::Chebyshev`], the default) or the
//! Euclidean norm ([`Norm::Euclidean`]); the joint distance is the max over variables (with the
//! max-norm, the max-norm on the concatenated columns). Neighbours of i never include i. Every
//! estimator asks the neighbour engine (`crate::knn`) for its distances and counts, in the norm's
//! comparison units: distances for the max-norm, squared distances for the Euclidean norm
//! (`knn::grouped`), so that no decision ever rests on a rounded square root. Results are in nats
//! and never clipped here; the arrays arrive already normalised/jittered (or not) by the caller.

use crate::choice::Choice;
use crate::error::{CoreError, Result};
use crate::knn::grouped::{self, reduced_distance, Grouped};
use crate::knn::metric::{Chebyshev, Euclidean, Metric};
use crate::knn::plane::StripPlane;
use crate::knn::{build_index, check_k, need_distances, queries_per_block, Method};
use crate::memory;
use crate::parallel::Ctl;
use crate::points::{concat_columns, Points, Real};
use crate::special::{digamma, ln_gamma_half_integer, mean_digamma_counts};
use std::ops::Range;

/// Which KSG estimator (Kraskov et al. 2004).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KsgVariant {
    /// Eq. 8: strict counts within the joint k-th-neighbour distance.
    Ksg1,
    /// Eq. 9: inclusive counts within the per-variable extents of the k joint neighbours.
    Ksg2,
}

impl Choice for KsgVariant {
    const ARG: &'static str = "estimator";
    const NAMES: &'static [(&'static str, Self)] = &[("ksg1", KsgVariant::Ksg1), ("ksg2", KsgVariant::Ksg2)];
}

/// The norm inside each variable: of the Kozachenko–Leonenko entropy, and of the KSG estimators
/// (whose joint distance is the max of the variables' norms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    Chebyshev,
    Euclidean,
}

impl Choice for Norm {
    const ARG: &'static str = "metric";
    const NAMES: &'static [(&'static str, Self)] = &[("chebyshev", Norm::Chebyshev), ("euclidean", Norm::Euclidean)];
}

fn same_length<T: Real>(first: &Points<'_, T>, others: &[(&'static str, &Points<'_, T>)]) -> Result<()> {
    for (name, p) in others {
        if p.n() != first.n() {
            return Err(CoreError::invalid(
                name,
                format!(
                    "has {} samples but x has {}; all arrays need the same number of rows",
                    p.n(),
                    first.n()
                ),
            ));
        }
    }
    Ok(())
}

/// The columns of each of `parts` in their concatenation.
fn column_groups<T: Real>(parts: &[Points<'_, T>]) -> Vec<Range<usize>> {
    let mut at = 0;
    parts
        .iter()
        .map(|p| {
            at += p.d();
            at - p.d()..at
        })
        .collect()
}

/// Runs `f` on the joint space of `parts` (their columns side by side; no copy for one part).
fn with_joint<T: Real, R>(parts: &[Points<'_, T>], ctl: &Ctl, f: impl FnOnce(Points<'_, T>) -> Result<R>) -> Result<R> {
    if let [one] = parts {
        return f(*one);
    }
    let n = parts[0].n();
    let data = concat_columns(parts, ctl)?;
    f(Points::trusted(&data, n, data.len() / n))
}

/// For every point, the distance to its k-th neighbour in the joint space of `parts`, in the
/// norm's comparison units (max-norm: the distance; Euclidean: the squared group distance).
fn joint_kth<T: Real>(parts: &[Points<'_, T>], k: usize, norm: Norm, method: Method, ctl: &Ctl) -> Result<Vec<T>> {
    with_joint(parts, ctl, |joint| match norm {
        Norm::Chebyshev => build_index::<T, Chebyshev>(joint, method, ctl)?.kth_distances(k, ctl),
        Norm::Euclidean => Grouped::new(joint, column_groups(parts), method, ctl)?.kth_reduced(k, ctl),
    })
}

/// The k nearest neighbours of every point in the joint space of `parts` (n × k, ordered by
/// distance in the norm's comparison units, then index).
fn joint_knn<T: Real>(parts: &[Points<'_, T>], k: usize, norm: Norm, method: Method, ctl: &Ctl) -> Result<Vec<u32>> {
    with_joint(parts, ctl, |joint| match norm {
        Norm::Chebyshev => build_index::<T, Chebyshev>(joint, method, ctl)?.knn_indices(k, ctl),
        Norm::Euclidean => Grouped::new(joint, column_groups(parts), method, ctl)?.knn_indices(k, ctl),
    })
}

/// #{j ≠ i : dist(p_j, p_i) < radii[i]} (or ≤) in the joint space of `parts`, radii in the
/// norm's comparison units.
fn counts_within<T: Real>(
    parts: &[Points<'_, T>],
    radii: &[T],
    strict: bool,
    norm: Norm,
    method: Method,
    ctl: &Ctl,
) -> Result<Vec<u32>> {
    with_joint(parts, ctl, |joint| match norm {
        Norm::Chebyshev => build_index::<T, Chebyshev>(joint, method, ctl)?.count_within(radii, strict, ctl),
        Norm::Euclidean => grouped::count_within_reduced(joint, column_groups(parts), radii, strict, method, ctl),
    })
}

/// The distance of rows i and j of one variable, in the norm's comparison units.
#[inline]
fn pair_distance<T: Real>(p: &Points<'_, T>, i: usize, j: usize, norm: Norm) -> T {
    match norm {
        Norm::Chebyshev => Chebyshev::dist::<T, 0>(p.row(i), p.row(j)),
        Norm::Euclidean => reduced_distance(std::slice::from_ref(&(0..p.d())), p.row(i), p.row(j)),
    }
}

/// KSG mutual information I(X;Y) in nats (Kraskov, Stögbauer & Grassberger 2004, eqs. 8 and 9).
///
/// KSG-1: I = ψ(k) + ψ(N) − ⟨ψ(n_x+1) + ψ(n_y+1)⟩, strict counts within the joint k-th distance.
/// KSG-2: I = ψ(k) − 1/k + ψ(N) − ⟨ψ(n_x) + ψ(n_y)⟩, inclusive counts within the x and y extents
/// of the k joint neighbours (ties in the neighbour set broken by the smaller index).
/// `norm` is the distance inside each variable; the joint distance is the max of the two.
pub fn mutual_info_ksg<T: Real>(
    x: Points<'_, T>,
    y: Points<'_, T>,
    k: usize,
    variant: KsgVariant,
    norm: Norm,
    method: Method,
    ctl: &Ctl,
) -> Result<f64> {
    same_length(&x, &[("y", &y)])?;
    let n = x.n();
    check_k(k, n)?;
    let ksg1 = |nx: &[u32], ny: &[u32]| {
        digamma(k as f64) + digamma(n as f64) - mean_digamma_counts(nx, 1.0) - mean_digamma_counts(ny, 1.0)
    };
    match variant {
        KsgVariant::Ksg1 if norm == Norm::Chebyshev && method == Method::Auto && x.d() == 1 && y.d() == 1 => {
            // One-dimensional x and y: the joint space is the plane, and the x and y sorts built
            // for the joint search are also the marginals' indices. Points are identified by their
            // x-sorted position throughout; the counts' order does not matter to their mean.
            let plane = StripPlane::new(x.data(), y.data(), k, ctl)?;
            let eps = plane.kth_distances_by_x_position(k, ctl)?;
            let (x_index, y_index) = plane.into_indices();
            let nx = x_index.count_within_by_position(&eps, true, ctl)?;
            let ny = y_index.count_within_in_sorted_order(&eps, true, ctl)?;
            Ok(ksg1(&nx, &ny))
        }
        KsgVariant::Ksg1 => {
            let eps = joint_kth(&[x, y], k, norm, method, ctl)?;
            let nx = counts_within(&[x], &eps, true, norm, method, ctl)?;
            let ny = counts_within(&[y], &eps, true, norm, method, ctl)?;
            Ok(ksg1(&nx, &ny))
        }
        KsgVariant::Ksg2 => {
            let neighbours = joint_knn(&[x, y], k, norm, method, ctl)?;
            let extent = |p: &Points<'_, T>| -> Result<Vec<T>> {
                let mut out = memory::filled(n, T::ZERO, need_distances(n))?;
                // k neighbours per point: fewer points per block for large k.
                ctl.fill_blocks(&mut out, queries_per_block(1024, k), |start, block| {
                    for (i, o) in (start..).zip(block.iter_mut()) {
                        *o = neighbours[i * k..(i + 1) * k]
                            .iter()
                            .map(|&m| pair_distance(p, i, m as usize, norm))
                            .fold(T::ZERO, T::max_of);
                    }
                })?;
                Ok(out)
            };
            let eps_x = extent(&x)?;
            let eps_y = extent(&y)?;
            drop(neighbours);
            let nx = counts_within(&[x], &eps_x, false, norm, method, ctl)?;
            let ny = counts_within(&[y], &eps_y, false, norm, method, ctl)?;
            Ok(digamma(k as f64) - 1.0 / k as f64 + digamma(n as f64)
                - mean_digamma_counts(&nx, 0.0)
                - mean_digamma_counts(&ny, 0.0))
        }
    }
}

/// Conditional mutual information I(X;Y|Z) for continuous Z (Frenzel & Pompe 2007):
/// I = ψ(k) − ⟨ψ(n_xz+1) + ψ(n_yz+1) − ψ(n_z+1)⟩, ε_i from the joint (x, y, z) space and
/// strict counts in the (x, z), (y, z) and z spaces; `norm` inside each variable, max over them.
pub fn conditional_mutual_info_ksg<T: Real>(
    x: Points<'_, T>,
    y: Points<'_, T>,
    z: Points<'_, T>,
    k: usize,
    norm: Norm,
    method: Method,
    ctl: &Ctl,
) -> Result<f64> {
    same_length(&x, &[("y", &y), ("z", &z)])?;
    let n = x.n();
    check_k(k, n)?;
    let eps = joint_kth(&[x, y, z], k, norm, method, ctl)?;
    let nxz = counts_within(&[x, z], &eps, true, norm, method, ctl)?;
    let nyz = counts_within(&[y, z], &eps, true, norm, method, ctl)?;
    let nz = counts_within(&[z], &eps, true, norm, method, ctl)?;
    Ok(
        digamma(k as f64) - mean_digamma_counts(&nxz, 1.0) - mean_digamma_counts(&nyz, 1.0)
            + mean_digamma_counts(&nz, 1.0),
    )
}

/// Kozachenko–Leonenko differential entropy in nats:
/// H = ψ(N) − ψ(k) + log c_d + (d/N) Σ_i log ε_i, with c_d the volume of the unit ball of the norm
/// (max-norm: 2^d; Euclidean: π^{d/2}/Γ(d/2 + 1)). A zero ε_i (k duplicates) gives −∞.
pub fn entropy_kl<T: Real>(x: Points<'_, T>, k: usize, metric: Norm, method: Method, ctl: &Ctl) -> Result<f64> {
    let (n, d) = (x.n(), x.d());
    check_k(k, n)?;
    let (eps, log_cd) = match metric {
        Norm::Chebyshev => (knn_distances::<T, Chebyshev>(x, k, method, ctl)?, d as f64 * 2f64.ln()),
        Norm::Euclidean => (
            knn_distances::<T, Euclidean>(x, k, method, ctl)?,
            0.5 * d as f64 * std::f64::consts::PI.ln() - ln_gamma_half_integer(d + 2),
        ),
    };
    let mut sum_log = 0.0;
    for e in &eps {
        sum_log += e.to_f64().ln();
    }
    Ok(digamma(n as f64) - digamma(k as f64) + log_cd + d as f64 * sum_log / n as f64)
}

fn knn_distances<T: Real, M: Metric>(x: Points<'_, T>, k: usize, method: Method, ctl: &Ctl) -> Result<Vec<T>> {
    build_index::<T, M>(x, method, ctl)?.kth_distances(k, ctl)
}

/// The classes `mutual_info_given_labels` had to skip: (class index, its size).
pub type SkippedClasses = Vec<(u32, usize)>;

/// Mutual information conditional on discrete labels, I(X;Y | L) = Σ_c p(c) I(X;Y | L = c), each
/// term by KSG within the class. Classes with at most k samples cannot be estimated: they are
/// skipped (and returned) and the weights renormalised over the classes kept.
#[allow(clippy::too_many_arguments)]
pub fn mutual_info_given_labels<T: Real>(
    x: Points<'_, T>,
    y: Points<'_, T>,
    labels: &[u32],
    k: usize,
    variant: KsgVariant,
    norm: Norm,
    method: Method,
    ctl: &Ctl,
) -> Result<(f64, SkippedClasses)> {
    same_length(&x, &[("y", &y)])?;
    let n = x.n();
    if labels.len() != n {
        return Err(CoreError::invalid(
            "labels",
            format!("has {} entries but x has {n} samples", labels.len()),
        ));
    }
    check_k(k, n)?;
    let members = class_members(labels);
    let (mut total, mut weight, mut skipped) = (0.0, 0usize, Vec::new());
    for (c, rows) in members.iter().enumerate().filter(|(_, m)| !m.is_empty()) {
        if rows.len() <= k {
            skipped.push((c as u32, rows.len()));
            continue;
        }
        let (xd, yd) = (x.gather(rows)?, y.gather(rows)?);
        let (xc, yc) = (
            Points::trusted(&xd, rows.len(), x.d()),
            Points::trusted(&yd, rows.len(), y.d()),
        );
        total += rows.len() as f64 * mutual_info_ksg(xc, yc, k, variant, norm, method, ctl)?;
        weight += rows.len();
    }
    if weight == 0 {
        return Err(CoreError::invalid(
            "labels",
            format!("every class has at most k = {k} samples; no class can be estimated"),
        ));
    }
    Ok((total / weight as f64, skipped))
}

/// The sample indices of every class `0..=max(labels)`, in order.
fn class_members(labels: &[u32]) -> Vec<Vec<u32>> {
    let n_classes = labels.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); n_classes];
    for (i, &c) in labels.iter().enumerate() {
        members[c as usize].push(i as u32);
    }
    members
}

/// Mutual information between a continuous (multivariate) X and discrete labels, Ross (2014):
/// points of singleton classes are dropped (N reduced accordingly); for the others
/// k_i = min(k, N_y − 1), r_i = distance to the k_i-th neighbour within the class and
/// m_i = #{j : ‖x_j − x_i‖ < r_i} counting i itself;
/// I = ψ(N) + ⟨ψ(k_i)⟩ − ⟨ψ(N_{y_i})⟩ − ⟨ψ(m_i)⟩.
///
/// `labels` are class indices `0..n_classes`; `norm` is the distance (radii in its comparison
/// units throughout).
pub fn mutual_info_ross<T: Real>(
    x: Points<'_, T>,
    labels: &[u32],
    k: usize,
    norm: Norm,
    method: Method,
    ctl: &Ctl,
) -> Result<f64> {
    let n = x.n();
    if labels.len() != n {
        return Err(CoreError::invalid(
            "labels",
            format!("has {} entries but x has {n} samples", labels.len()),
        ));
    }
    check_k(k, n)?;
    let members = class_members(labels);
    // Kept points (their class has more than one member), in original order.
    let kept: Vec<u32> = (0..n as u32)
        .filter(|&i| members[labels[i as usize] as usize].len() > 1)
        .collect();
    if kept.is_empty() {
        return Err(CoreError::invalid(
            "labels",
            "every class has a single sample; at least one class needs two",
        ));
    }
    let mut radius = vec![T::ZERO; n];
    let mut k_of = vec![0u32; n];
    for class in members.iter().filter(|m| m.len() > 1) {
        let kc = k.min(class.len() - 1);
        let data = x.gather(class)?;
        let pts = Points::trusted(&data, class.len(), x.d());
        let r = joint_kth(&[pts], kc, norm, method, ctl)?;
        for (&i, &ri) in class.iter().zip(&r) {
            radius[i as usize] = ri;
            k_of[i as usize] = kc as u32;
        }
    }
    let class_size: Vec<u32> = kept
        .iter()
        .map(|&i| members[labels[i as usize] as usize].len() as u32)
        .collect();
    let k_kept: Vec<u32> = kept.iter().map(|&i| k_of[i as usize]).collect();
    let m = if kept.len() == n {
        counts_within(&[x], &radius, true, norm, method, ctl)?
    } else {
        let data = x.gather(&kept)?;
        let r: Vec<T> = kept.iter().map(|&i| radius[i as usize]).collect();
        counts_within(
            &[Points::trusted(&data, kept.len(), x.d())],
            &r,
            true,
            norm,
            method,
            ctl,
        )?
    };
    // m_i counts i itself: ψ(m_i) = ψ(count + 1).
    Ok(digamma(kept.len() as f64) + mean_digamma_counts(&k_kept, 0.0)
        - mean_digamma_counts(&class_size, 0.0)
        - mean_digamma_counts(&m, 1.0))
}

#[cfg(test)]
#[path = "ksg_tests.rs"]
mod tests;
