//! The neighbour engine: exact k-nearest-neighbour distances and radius counts over a point set,
//! for queries that are the set's own points ("neighbours of i" never include i itself).
//!
//! Exact back-ends that answer the same questions with identical results:
//! - [`sorted1d::Sorted1D`]: one-dimensional data, a sorted array and galloping search;
//! - [`kdtree::KdTree`]: a k-d tree with bounding boxes, for low dimensions;
//! - [`brute::BruteForce`]: a cache-blocked scan of direct coordinate differences in vector lanes,
//!   parallel over query blocks, memory the size of the points, for high dimensions where trees
//!   stop paying;
//! - [`gram::GramSearch`]: Euclidean only, for high dimensions: the Gram form through matrix
//!   products selects candidates under a proven rounding bound, exact distances decide.
//! - [`plane::StripPlane`]: max-norm k-th-neighbour distances of points in the plane (the joint
//!   space of a 1-D x and a 1-D y), by x-strips sorted by y; KSG-1 asks it for that case.
//!
//! Every boundary decision (strict `<` or inclusive `<=` a radius) is taken on the same computed
//! distance that defines the radius (|a − q|, max over coordinates), so all back-ends agree exactly.

pub mod brute;
pub mod gram;
pub mod grouped;
pub mod kdtree;
pub mod metric;
pub mod plane;
pub mod sort;
pub mod sorted1d;

use crate::choice::Choice;
use crate::error::{CoreError, Result};
use crate::memory::{self, Need};
use crate::parallel::Ctl;
use crate::points::{Points, Real};
use metric::{Euclidean, Metric};

/// The k best (distance, original index) pairs seen so far, ascending in that lexicographic
/// order; ties in distance go to the smaller index, so the neighbour *set* is well defined.
///
/// Up to [`KBEST_SORTED_MAX`] the pairs are kept sorted (an insertion shifts at most that many);
/// for larger k they form a max-heap on the same order, so that an insertion costs O(log k), not
/// O(k) (k near N made a query cost O(N·k)), and [`KBest::sorted`] sorts them at the end. Either
/// way the pairs held are the k smallest seen so far, so `worst()`, which every pruning test
/// reads, and the final set are the same.
#[derive(Clone, Debug)]
pub struct KBest<T> {
    k: usize,
    items: Vec<(T, u32)>,
    /// The k-th distance once full, ∞ before: cached because every pruning test reads it.
    worst: T,
}

/// The largest k whose best pairs are kept sorted (above, a heap).
pub const KBEST_SORTED_MAX: usize = 64;

/// Whether (distance, index) pair `a` comes before `b`.
#[inline(always)]
fn before<T: Real>(a: (T, u32), b: (T, u32)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}

impl<T: Real> KBest<T> {
    pub fn new(k: usize) -> Self {
        KBest {
            k,
            items: Vec::with_capacity((k + 1).min(KBEST_SORTED_MAX + 1)),
            worst: T::INFINITY,
        }
    }
    #[inline(always)]
    pub fn clear(&mut self) {
        self.items.clear();
        self.worst = T::INFINITY;
    }
    pub fn k(&self) -> usize {
        self.k
    }
    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.items.len() == self.k
    }
    #[inline(always)]
    fn is_heap(&self) -> bool {
        self.k > KBEST_SORTED_MAX
    }
    /// The k-th smallest distance so far (∞ until k candidates were seen).
    #[inline(always)]
    pub fn worst(&self) -> T {
        self.worst
    }
    #[inline(always)]
    pub fn consider(&mut self, dist: T, idx: u32) {
        if dist > self.worst {
            return;
        }
        if self.is_heap() {
            self.insert_heap(dist, idx);
        } else {
            self.insert(dist, idx);
        }
    }
    fn insert(&mut self, dist: T, idx: u32) {
        if self.is_full() {
            let (wd, wi) = self.items[self.k - 1];
            if dist > wd || (dist == wd && idx > wi) {
                return;
            }
            self.items.pop();
        }
        let mut pos = self.items.len();
        while pos > 0 {
            let (pd, pi) = self.items[pos - 1];
            if pd < dist || (pd == dist && pi < idx) {
                break;
            }
            pos -= 1;
        }
        self.items.insert(pos, (dist, idx));
        if self.is_full() {
            self.worst = self.items[self.k - 1].0;
        }
    }
    /// Max-heap insertion: the root is the last of the k best in (distance, index) order.
    fn insert_heap(&mut self, dist: T, idx: u32) {
        let new = (dist, idx);
        if self.is_full() {
            if !before(new, self.items[0]) {
                return;
            }
            // Replace the root and sift it down.
            let items = &mut self.items;
            let n = items.len();
            let mut i = 0;
            loop {
                let (l, r) = (2 * i + 1, 2 * i + 2);
                let mut big = i;
                let mut big_item = new;
                if l < n && before(big_item, items[l]) {
                    big = l;
                    big_item = items[l];
                }
                if r < n && before(big_item, items[r]) {
                    big = r;
                }
                if big == i {
                    break;
                }
                items[i] = items[big];
                i = big;
            }
            items[i] = new;
        } else {
            // Push and sift up.
            self.items.push(new);
            let items = &mut self.items;
            let mut i = items.len() - 1;
            while i > 0 {
                let parent = (i - 1) / 2;
                if !before(items[parent], new) {
                    break;
                }
                items[i] = items[parent];
                i = parent;
            }
            items[i] = new;
        }
        if self.is_full() {
            self.worst = self.items[0].0;
        }
    }
    /// The pairs in ascending (distance, index) order. For k above [`KBEST_SORTED_MAX`] this
    /// sorts the heap: call it once, after the last `consider` and before `clear`.
    pub fn sorted(&mut self) -> &[(T, u32)] {
        if self.is_heap() {
            self.items.sort_unstable_by(|&a, &b| {
                if before(a, b) {
                    std::cmp::Ordering::Less
                } else if before(b, a) {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            });
        }
        &self.items
    }
}

/// Queries per block for work whose cost per query grows with k (the one-dimensional back-end
/// walks k neighbours per query): `base` queries up to k = 16, fewer above (at least 1), so that
/// a block stays short whatever k.
pub(crate) fn queries_per_block(base: usize, k: usize) -> usize {
    (base.saturating_mul(16) / k.max(16)).max(1)
}

/// The radius rule every back-end applies: `dist < r` for strict counts, `dist <= r` otherwise.
#[inline(always)]
pub(crate) fn within<T: Real>(dist: T, r: T, strict: bool) -> bool {
    if strict {
        dist < r
    } else {
        dist <= r
    }
}

/// Which back-end answers neighbour queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Sorted array for d = 1, k-d tree while the dimension is small; above, the Gram-form search
    /// for the Euclidean metric and the direct scan for the others.
    Auto,
    KdTree,
    /// Always the direct blocked scan (`brute.rs`), whatever the metric: the plain reference path.
    Brute,
}

impl Choice for Method {
    const ARG: &'static str = "neighbors";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("auto", Method::Auto),
        ("kdtree", Method::KdTree),
        ("brute", Method::Brute),
    ];
}

/// Largest dimension for which `Auto` uses a k-d tree. Measured on i.i.d. Gaussian data (the
/// hardest case for trees; real activations have lower intrinsic dimension), one thread:
/// 3-NN at N = 5·10⁴: tree 3.0 s vs brute 23.5 s at d = 12, 7.7 vs 25.1 at d = 16, 25.1 vs 29.8
/// at d = 24; radius counts (~330 per point) at N = 2·10⁴: tree 3.5 s vs brute 4.2 s at d = 16,
/// 7.8 vs 7.4 at d = 20. So trees up to 16 dimensions, the blocked scan above (for the Euclidean
/// metric the Gram-form search, faster still there).
pub const AUTO_TREE_MAX_DIM: usize = 16;

/// Exact neighbour queries over a point set, for the set's own points.
/// Results are in the original order of the points; distances and radii are true distances
/// (not squared), whatever the metric.
pub trait NeighborSearch<T: Real>: Send + Sync {
    fn n(&self) -> usize;
    /// For every point i, the distance to its k-th nearest neighbour (excluding i).
    fn kth_distances(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>>;
    /// For every point i, its k nearest neighbours (excluding i), ordered by (distance, index);
    /// `n × k` original indices, row-major.
    fn knn_indices(&self, k: usize, ctl: &Ctl) -> Result<Vec<u32>>;
    /// For every point i, #{j ≠ i : dist(j, i) < radii[i]} (`strict`) or `<= radii[i]`.
    fn count_within(&self, radii: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>>;
}

pub(crate) fn check_k(k: usize, n: usize) -> Result<()> {
    if k < 1 {
        return Err(CoreError::invalid("k", format!("k must be at least 1, got {k}")));
    }
    if k >= n {
        return Err(CoreError::invalid(
            "k",
            format!("k must be smaller than the number of samples ({n}), got {k}"),
        ));
    }
    Ok(())
}

/// k-th-neighbour distances of all `n` points from a search that fills the k best neighbours of
/// `block` consecutive queries at a time (`search(first_query, bests)`), in parallel over blocks.
/// Shared by the scanning back-ends.
pub(crate) fn kth_distances_in_blocks<T: Real, M: Metric>(
    n: usize,
    k: usize,
    block: usize,
    ctl: &Ctl,
    search: impl Fn(usize, &mut [KBest<T>]) + Sync,
) -> Result<Vec<T>> {
    let mut out = memory::zeros::<T>(n, need_distances(n))?;
    ctl.try_fill_blocks(&mut out, block, |start, sl| {
        let mut bests = new_bests(sl.len(), k)?;
        search(start, &mut bests);
        for (o, b) in sl.iter_mut().zip(&bests) {
            *o = M::finish(b.worst());
        }
        Ok(())
    })?;
    Ok(out)
}

/// The k nearest neighbours of all `n` points (n × k, ordered by (distance, index)) from the same
/// kind of block search as [`kth_distances_in_blocks`].
pub(crate) fn knn_indices_in_blocks<T: Real>(
    n: usize,
    k: usize,
    block: usize,
    ctl: &Ctl,
    search: impl Fn(usize, &mut [KBest<T>]) + Sync,
) -> Result<Vec<u32>> {
    let mut out = memory::zeros::<u32>(n.saturating_mul(k), need_neighbour_lists(n, k))?;
    ctl.try_fill_blocks(&mut out, block * k, |start, sl| {
        let mut bests = new_bests(sl.len() / k, k)?;
        search(start / k, &mut bests);
        for (row, b) in sl.chunks_mut(k).zip(bests.iter_mut()) {
            for (o, &(_, idx)) in row.iter_mut().zip(b.sorted()) {
                *o = idx;
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// `count` empty best-k lists with room for k pairs each (allocated up front, fallibly: k is the
/// caller's choice).
pub(crate) fn new_bests<T: Real>(count: usize, k: usize) -> Result<Vec<KBest<T>>> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut b = KBest::new(k);
        memory::reserve(&mut b.items, k + 1, || {
            Need::new(
                "k",
                format!("the {k} nearest neighbours of {count} queries"),
                "use a smaller k",
            )
        })?;
        out.push(b);
    }
    Ok(out)
}

/// Out of memory for one value per sample.
pub(crate) fn need_distances(n: usize) -> impl Fn() -> Need + Copy {
    move || Need::new("x", format!("{n} neighbour distances or counts"), "use fewer samples")
}

/// Out of memory for k neighbours per sample.
pub(crate) fn need_neighbour_lists(n: usize, k: usize) -> impl Fn() -> Need + Copy {
    move || {
        Need::new(
            "k",
            format!("the lists of k = {k} neighbours of {n} samples"),
            "use a smaller k (k ≤ 10 is usual for these estimators)",
        )
    }
}

/// Builds the back-end `method` asks for (with `Auto`: by dimension) over `points` under metric `M`.
pub fn build_index<'a, T: Real, M: Metric>(
    points: Points<'a, T>,
    method: Method,
    ctl: &Ctl,
) -> Result<Box<dyn NeighborSearch<T> + 'a>> {
    Ok(match method {
        Method::Auto if points.d() == 1 => Box::new(sorted1d::Sorted1D::new(points, ctl)?),
        Method::Auto if points.d() <= AUTO_TREE_MAX_DIM => Box::new(kdtree::KdTree::<T, M>::new(points, ctl)?),
        Method::Auto if std::any::TypeId::of::<M>() == std::any::TypeId::of::<Euclidean>() => gram::build(points, ctl)?,
        Method::Auto | Method::Brute => Box::new(brute::BruteForce::<T, M>::new(points)),
        Method::KdTree => Box::new(kdtree::KdTree::<T, M>::new(points, ctl)?),
    })
}

/// Shared helper: runs one query per position of `order` (a permutation of 0..n in which queries
/// are cache-friendly), with a per-block scratch state from `init`, and scatters the results back
/// to the original order.
pub(crate) fn query_in_order<O, S>(
    order: &[u32],
    block: usize,
    ctl: &Ctl,
    init: impl Fn() -> S + Sync,
    query: impl Fn(&mut S, usize) -> O + Sync,
) -> Result<Vec<O>>
where
    O: Copy + Send + Sync + Default,
{
    let n = order.len();
    let mut by_pos = memory::filled(n, O::default(), need_distances(n))?;
    ctl.fill_blocks(&mut by_pos, block, |start, out| {
        let mut state = init();
        for (j, o) in out.iter_mut().enumerate() {
            *o = query(&mut state, start + j);
        }
    })?;
    scatter_rows(order, &by_pos, 1)
}

/// Moves rows of `width` values from query order (`by_pos`) back to the original order.
pub(crate) fn scatter_rows<O: Copy + Default>(order: &[u32], by_pos: &[O], width: usize) -> Result<Vec<O>> {
    let mut result = memory::filled(by_pos.len(), O::default(), || {
        Need::new(
            "x",
            format!("{} neighbour results", by_pos.len()),
            "use fewer samples or a smaller k",
        )
    })?;
    for (pos, &orig) in order.iter().enumerate() {
        let orig = orig as usize;
        result[orig * width..(orig + 1) * width].copy_from_slice(&by_pos[pos * width..(pos + 1) * width]);
    }
    Ok(result)
}

#[cfg(test)]
mod brute_tests;
#[cfg(test)]
mod gram_tests;
#[cfg(test)]
mod plane_tests;
#[cfg(test)]
pub(crate) mod tests;
