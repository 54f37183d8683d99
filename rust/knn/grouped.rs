//! Exact neighbour queries under a product metric: the columns of a point set are split into
//! groups (the variables of a joint space), and the distance of two samples is the largest of
//! their Euclidean distances within each group. This is the joint distance of the KSG estimators
//! with `metric="euclidean"` (docs/spec.md §1.1); with one group it is the Euclidean distance.
//!
//! Every value here is *reduced*: the squared distance of a group, s_g = Σ_{c∈g} (a_c − b_c)²,
//! summed in column order with a separate multiply and add (the bits of `Euclidean::dist`), and
//! the joint reduced distance max_g s_g (the square of the largest group distance). The k-th
//! neighbour, the ties (to the smaller index, §1.3) and the strict or inclusive counts (§1.2)
//! are all decided on these computed values, never on square roots, so the two back-ends — a
//! k-d tree for low dimensions and a blocked scan — agree bit for bit with the direct evaluation.
//!
//! Pruning is exact because rounding is monotone: for a coordinate c of a box [lo, hi] and a
//! point p inside it, fl(lo_c − q_c) ≤ fl(p_c − q_c) when q_c < lo_c (and likewise above hi_c),
//! squares and sums of non-negative terms are monotone in each term, so the reduced distance to
//! the box computed the same way never exceeds that of any point in it; the far corner bounds it
//! from above.

use super::gram::GramSearch;
use super::kdtree::KdTree;
use super::metric::Euclidean;
use super::AUTO_TREE_MAX_DIM;
use super::{check_k, need_distances, need_neighbour_lists, new_bests, scatter_rows, within, KBest, Method};
use crate::error::{CoreError, Result};
use crate::memory;
use crate::parallel::Ctl;
use crate::points::{Points, Real};
use std::ops::Range;

/// Points per leaf of the tree.
const LEAF: usize = 32;
/// Queries per parallel block.
const QUERY_BLOCK: usize = 64;
/// Points per tile of the blocked scan (the tile is re-read from cache by a block of queries).
const SCAN_TILE_BYTES: usize = 64 * 1024;
/// Marks a leaf.
const NONE: u32 = u32::MAX;

/// A point set whose columns form groups, with the search that answers its queries.
pub struct Grouped<'a, T> {
    points: Points<'a, T>,
    groups: Vec<Range<usize>>,
    tree: Option<Tree<T>>,
}

/// A k-d tree over the points: boxes per node, points in tree order.
struct Tree<T> {
    /// Coordinates per row (kept: `row` runs in the innermost loops).
    d: usize,
    /// The points' rows in tree order, row-major.
    data: Vec<T>,
    /// Original index of each row of `data`.
    order: Vec<u32>,
    nodes: Vec<Node>,
    /// Per node: d lower bounds, then d upper bounds.
    bounds: Vec<T>,
}

#[derive(Clone, Copy)]
struct Node {
    start: u32,
    end: u32,
    /// Children (NONE for a leaf).
    left: u32,
    right: u32,
}

/// The reduced distance of two rows: the largest over groups of the ordered sum of squared gaps.
/// May stop early and return any value `> bound` once the result is known to exceed `bound`.
#[inline(always)]
fn reduced_bounded<T: Real>(groups: &[Range<usize>], a: &[T], b: &[T], bound: T) -> T {
    let mut worst = T::ZERO;
    for g in groups {
        let mut s = T::ZERO;
        for c in g.clone() {
            let gap = (a[c] - b[c]).abs();
            s = s + gap * gap;
        }
        if s > worst {
            worst = s;
            if worst > bound {
                return worst;
            }
        }
    }
    worst
}

/// The reduced distance of two rows (see the module docs).
#[inline(always)]
pub fn reduced_distance<T: Real>(groups: &[Range<usize>], a: &[T], b: &[T]) -> T {
    reduced_bounded(groups, a, b, T::INFINITY)
}

/// For every point i, #{j ≠ i : reduced(j, i) < radii[i]} (`strict`) or `<=`, radii reduced, on
/// the fastest exact back-end. One group of 2–16 columns is the plain Euclidean distance (the
/// same sum of squares in the same order), so the engine's k-d tree counts it; above 16 columns
/// (`Auto`) its Gram-form search (matrix-product candidates, the direct sum deciding), unless the
/// Gram form's error bound does not apply. Otherwise the grouped search. All give the same counts.
pub fn count_within_reduced<T: Real>(
    points: Points<'_, T>,
    groups: Vec<Range<usize>>,
    radii: &[T],
    strict: bool,
    method: Method,
    ctl: &Ctl,
) -> Result<Vec<u32>> {
    let (one_group, d) = (groups.len() == 1, points.d());
    if one_group && (2..=AUTO_TREE_MAX_DIM).contains(&d) && matches!(method, Method::Auto | Method::KdTree) {
        return KdTree::<T, Euclidean>::new(points, ctl)?.count_within_reduced(radii, strict, ctl);
    }
    if one_group && d > AUTO_TREE_MAX_DIM && method == Method::Auto {
        if let Some(gram) = GramSearch::new(points, ctl)? {
            return gram.count_within_reduced(radii, strict, ctl);
        }
    }
    Grouped::new(points, groups, method, ctl)?.count_within_reduced(radii, strict, ctl)
}

impl<'a, T: Real> Grouped<'a, T> {
    /// The search over `points`, whose columns `groups` split (consecutive, non-empty ranges that
    /// cover 0..d). `method`: `Auto` takes the tree up to [`AUTO_TREE_MAX_DIM`] columns and the
    /// scan above; `KdTree` and `Brute` force one of them.
    pub fn new(points: Points<'a, T>, groups: Vec<Range<usize>>, method: Method, ctl: &Ctl) -> Result<Self> {
        let mut next = 0;
        for g in &groups {
            if g.start != next || g.end <= g.start {
                return Err(CoreError::Internal(format!("bad column groups {groups:?}")));
            }
            next = g.end;
        }
        if next != points.d() {
            return Err(CoreError::Internal(format!(
                "column groups {groups:?} do not cover {} columns",
                points.d()
            )));
        }
        let use_tree = match method {
            Method::Auto => points.d() <= AUTO_TREE_MAX_DIM,
            Method::KdTree => true,
            Method::Brute => false,
        };
        let tree = if use_tree { Some(Tree::new(points, ctl)?) } else { None };
        Ok(Grouped { points, groups, tree })
    }

    pub fn n(&self) -> usize {
        self.points.n()
    }

    /// For every point, the reduced distance to its k-th nearest neighbour (excluding itself).
    pub fn kth_reduced(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        check_k(k, self.n())?;
        let n = self.n();
        let mut out = memory::zeros::<T>(n, need_distances(n))?;
        self.best_in_blocks(k, &mut out, 1, ctl, |o, best| o[0] = best.worst())?;
        self.to_original_order(out, 1)
    }

    /// For every point, its k nearest neighbours (excluding itself), ordered by (reduced distance,
    /// index): `n × k` original indices, row-major.
    pub fn knn_indices(&self, k: usize, ctl: &Ctl) -> Result<Vec<u32>> {
        check_k(k, self.n())?;
        let n = self.n();
        let mut out = memory::zeros::<u32>(n.saturating_mul(k), need_neighbour_lists(n, k))?;
        self.best_in_blocks(k, &mut out, k, ctl, |o, best| {
            for (slot, &(_, idx)) in o.iter_mut().zip(best.sorted()) {
                *slot = idx;
            }
        })?;
        self.to_original_order(out, k)
    }

    /// For every point i, #{j ≠ i : reduced(j, i) < radii[i]} (`strict`) or `<= radii[i]`, with
    /// `radii` reduced values (as [`Self::kth_reduced`] returns them).
    pub fn count_within_reduced(&self, radii: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        let n = self.n();
        if radii.len() != n {
            return Err(CoreError::Internal(format!("{} radii for {n} points", radii.len())));
        }
        let mut out = memory::zeros::<u32>(n, need_distances(n))?;
        match &self.tree {
            Some(tree) => ctl.fill_blocks(&mut out, QUERY_BLOCK, |start, block| {
                for (p, o) in (start..).zip(block.iter_mut()) {
                    let i = tree.order[p] as usize;
                    let r = radii[i];
                    // Every point is counted, the query too (distance 0), then the query is taken off.
                    *o = self.tree_count(tree, 0, tree.row(p), r, strict) - within(T::ZERO, r, strict) as u32;
                }
            })?,
            None => {
                let tile = self.scan_tile();
                ctl.fill_blocks(&mut out, QUERY_BLOCK, |start, block| {
                    let mut t0 = 0;
                    while t0 < n {
                        let t1 = n.min(t0 + tile);
                        for (i, o) in (start..).zip(block.iter_mut()) {
                            let (q, r) = (self.points.row(i), radii[i]);
                            for j in (t0..t1).filter(|&j| j != i) {
                                let dist = reduced_bounded(&self.groups, q, self.points.row(j), r);
                                *o += within(dist, r, strict) as u32;
                            }
                        }
                        t0 = t1;
                    }
                })?
            }
        }
        self.to_original_order(out, 1)
    }

    /// Results computed per query position (tree order with a tree, original order without) back
    /// in the original order.
    fn to_original_order<O: Copy + Default>(&self, by_pos: Vec<O>, width: usize) -> Result<Vec<O>> {
        match &self.tree {
            Some(tree) => scatter_rows(&tree.order, &by_pos, width),
            None => Ok(by_pos),
        }
    }

    fn scan_tile(&self) -> usize {
        (SCAN_TILE_BYTES / (self.points.d() * std::mem::size_of::<T>())).max(16)
    }

    /// Fills `out` (`width` values per query position) from each query's k best neighbours.
    fn best_in_blocks<O: Send + Copy>(
        &self,
        k: usize,
        out: &mut [O],
        width: usize,
        ctl: &Ctl,
        emit: impl Fn(&mut [O], &mut KBest<T>) + Sync,
    ) -> Result<()> {
        let n = self.n();
        ctl.try_fill_blocks(out, QUERY_BLOCK * width, |start, sl| {
            let first = start / width;
            let mut bests = new_bests(sl.len() / width, k)?;
            match &self.tree {
                Some(tree) => {
                    for (p, best) in (first..).zip(bests.iter_mut()) {
                        self.tree_knn(tree, 0, tree.row(p), tree.order[p], best);
                    }
                }
                None => {
                    let tile = self.scan_tile();
                    let mut t0 = 0;
                    while t0 < n {
                        let t1 = n.min(t0 + tile);
                        for (i, best) in (first..).zip(bests.iter_mut()) {
                            let q = self.points.row(i);
                            for j in (t0..t1).filter(|&j| j != i) {
                                let dist = reduced_bounded(&self.groups, q, self.points.row(j), best.worst());
                                best.consider(dist, j as u32);
                            }
                        }
                        t0 = t1;
                    }
                }
            }
            for (o, best) in sl.chunks_mut(width).zip(bests.iter_mut()) {
                emit(o, best);
            }
            Ok(())
        })
    }

    /// Reduced distance from `q` to the box of `node`: a lower bound (`far` false) or an upper
    /// bound (`far` true) of the reduced distance of every point in it.
    #[inline(always)]
    fn to_box(&self, tree: &Tree<T>, node: usize, q: &[T], far: bool) -> T {
        let (lo, hi) = tree.node_box(node, self.points.d());
        let mut worst = T::ZERO;
        for g in &self.groups {
            let mut s = T::ZERO;
            for c in g.clone() {
                let gap = if far {
                    (hi[c] - q[c]).abs().max_of((q[c] - lo[c]).abs())
                } else {
                    (lo[c] - q[c]).max_of(q[c] - hi[c]).max_of(T::ZERO)
                };
                s = s + gap * gap;
            }
            worst = worst.max_of(s);
        }
        worst
    }

    fn tree_knn(&self, tree: &Tree<T>, node: usize, q: &[T], me: u32, best: &mut KBest<T>) {
        let nd = tree.nodes[node];
        if nd.left == NONE {
            for p in nd.start as usize..nd.end as usize {
                let j = tree.order[p];
                if j != me {
                    let dist = reduced_bounded(&self.groups, q, tree.row(p), best.worst());
                    best.consider(dist, j);
                }
            }
            return;
        }
        let (l, r) = (nd.left as usize, nd.right as usize);
        let (dl, dr) = (self.to_box(tree, l, q, false), self.to_box(tree, r, q, false));
        let ((near, d_near), (far, d_far)) = if dl <= dr {
            ((l, dl), (r, dr))
        } else {
            ((r, dr), (l, dl))
        };
        // A box at exactly the k-th distance may hold a tie with a smaller index: visit it.
        if d_near <= best.worst() {
            self.tree_knn(tree, near, q, me, best);
        }
        if d_far <= best.worst() {
            self.tree_knn(tree, far, q, me, best);
        }
    }

    /// Points of `node`'s subtree within `r` of `q` (the query itself included).
    fn tree_count(&self, tree: &Tree<T>, node: usize, q: &[T], r: T, strict: bool) -> u32 {
        let nd = tree.nodes[node];
        if !within(self.to_box(tree, node, q, false), r, strict) {
            return 0;
        }
        if within(self.to_box(tree, node, q, true), r, strict) {
            return nd.end - nd.start;
        }
        if nd.left == NONE {
            let mut c = 0;
            for p in nd.start as usize..nd.end as usize {
                c += within(reduced_bounded(&self.groups, q, tree.row(p), r), r, strict) as u32;
            }
            return c;
        }
        self.tree_count(tree, nd.left as usize, q, r, strict) + self.tree_count(tree, nd.right as usize, q, r, strict)
    }
}

impl<T: Real> Tree<T> {
    fn new(points: Points<'_, T>, ctl: &Ctl) -> Result<Self> {
        let (n, d) = (points.n(), points.d());
        let mut order: Vec<u32> = memory::collect(0..n as u32, need_distances(n))?;
        let mut nodes = Vec::new();
        let mut bounds = Vec::new();
        // Depth-first, iteratively: (node index, range).
        nodes.push(Node {
            start: 0,
            end: n as u32,
            left: NONE,
            right: NONE,
        });
        let mut stack = vec![0usize];
        let (mut lo, mut hi) = (vec![T::ZERO; d], vec![T::ZERO; d]);
        while let Some(id) = stack.pop() {
            if id % 4096 == 0 {
                ctl.check()?;
            }
            let Node { start, end, .. } = nodes[id];
            let rows = &mut order[start as usize..end as usize];
            lo.copy_from_slice(points.row(rows[0] as usize));
            hi.copy_from_slice(points.row(rows[0] as usize));
            for &i in rows.iter() {
                for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(points.row(i as usize)) {
                    *l = l.min_of(v);
                    *h = h.max_of(v);
                }
            }
            if bounds.len() < (id + 1) * 2 * d {
                bounds.resize((id + 1) * 2 * d, T::ZERO);
            }
            bounds[id * 2 * d..id * 2 * d + d].copy_from_slice(&lo);
            bounds[id * 2 * d + d..(id + 1) * 2 * d].copy_from_slice(&hi);
            let (dim, extent) =
                (0..d)
                    .map(|c| (c, (hi[c] - lo[c]).to_f64()))
                    .fold((0, -1.0), |acc, x| if x.1 > acc.1 { x } else { acc });
            if rows.len() <= LEAF || extent <= 0.0 {
                continue;
            }
            let mid = rows.len() / 2;
            rows.select_nth_unstable_by(mid, |&a, &b| {
                points.row(a as usize)[dim].total_order(&points.row(b as usize)[dim])
            });
            let split = start + mid as u32;
            let (left, right) = (nodes.len() as u32, nodes.len() as u32 + 1);
            nodes.push(Node {
                start,
                end: split,
                left: NONE,
                right: NONE,
            });
            nodes.push(Node {
                start: split,
                end,
                left: NONE,
                right: NONE,
            });
            nodes[id].left = left;
            nodes[id].right = right;
            stack.push(right as usize);
            stack.push(left as usize);
        }
        bounds.resize(nodes.len() * 2 * d, T::ZERO);
        let data = points.gather(&order)?;
        Ok(Tree {
            d,
            data,
            order,
            nodes,
            bounds,
        })
    }

    #[inline(always)]
    fn row(&self, p: usize) -> &[T] {
        &self.data[p * self.d..(p + 1) * self.d]
    }

    #[inline(always)]
    fn node_box(&self, node: usize, d: usize) -> (&[T], &[T]) {
        let b = &self.bounds[node * 2 * d..(node + 1) * 2 * d];
        b.split_at(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Xoshiro256pp;

    fn ctl() -> Ctl<'static> {
        Ctl::uninterruptible().unwrap()
    }

    /// The definitions, pair by pair.
    fn naive_kth(points: &Points<'_, f64>, groups: &[Range<usize>], k: usize) -> Vec<(f64, Vec<u32>)> {
        (0..points.n())
            .map(|i| {
                let mut all: Vec<(f64, u32)> = (0..points.n())
                    .filter(|&j| j != i)
                    .map(|j| (reduced_distance(groups, points.row(i), points.row(j)), j as u32))
                    .collect();
                all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                (all[k - 1].0, all[..k].iter().map(|p| p.1).collect())
            })
            .collect()
    }

    fn data(n: usize, d: usize, seed: u64, levels: Option<f64>) -> Vec<f64> {
        let mut rng = Xoshiro256pp::for_stream(seed, 0);
        (0..n * d)
            .map(|_| {
                let u = (rng.next_u64() >> 11) as f64 * 2f64.powi(-53) * 4.0 - 2.0;
                match levels {
                    Some(step) => (u / step).round() * step,
                    None => u,
                }
            })
            .collect()
    }

    #[test]
    fn every_back_end_equals_the_definitions() {
        let cases: &[(usize, &[usize], Option<f64>)] = &[
            (300, &[2, 3], None),
            (300, &[1, 1], Some(0.5)),
            (257, &[3, 2, 1], Some(0.25)),
            (200, &[4], None),
            (150, &[9, 10], Some(1.0)),
        ];
        for (seed, &(n, sizes, levels)) in cases.iter().enumerate() {
            let d: usize = sizes.iter().sum();
            let raw = data(n, d, seed as u64, levels);
            let pts = Points::trusted(&raw, n, d);
            let mut groups = Vec::new();
            let mut at = 0;
            for &s in sizes {
                groups.push(at..at + s);
                at += s;
            }
            for k in [1, 3, 7] {
                let naive = naive_kth(&pts, &groups, k);
                let radii: Vec<f64> = naive.iter().map(|p| p.0).collect();
                for method in [Method::Auto, Method::KdTree, Method::Brute] {
                    let g = Grouped::new(pts, groups.clone(), method, &ctl()).unwrap();
                    assert_eq!(g.kth_reduced(k, &ctl()).unwrap(), radii, "{sizes:?} k={k} {method:?}");
                    let idx = g.knn_indices(k, &ctl()).unwrap();
                    for (i, p) in naive.iter().enumerate() {
                        assert_eq!(&idx[i * k..(i + 1) * k], &p.1[..], "{sizes:?} k={k} {method:?} row {i}");
                    }
                    for strict in [true, false] {
                        let counts = g.count_within_reduced(&radii, strict, &ctl()).unwrap();
                        for i in 0..n {
                            let want = (0..n)
                                .filter(|&j| j != i)
                                .filter(|&j| {
                                    within(reduced_distance(&groups, pts.row(i), pts.row(j)), radii[i], strict)
                                })
                                .count() as u32;
                            assert_eq!(counts[i], want, "{sizes:?} k={k} {method:?} strict={strict} row {i}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn one_group_is_the_engine_euclidean_distance() {
        use crate::knn::metric::{Euclidean, Metric};
        let raw = data(50, 7, 9, None);
        let pts = Points::trusted(&raw, 50, 7);
        for i in 0..50 {
            for j in 0..50 {
                let a = reduced_distance(std::slice::from_ref(&(0..7)), pts.row(i), pts.row(j));
                assert_eq!(a.to_bits(), Euclidean::dist::<f64, 0>(pts.row(i), pts.row(j)).to_bits());
            }
        }
    }

    /// KSG's Euclidean marginal counts of one variable run on the engine's k-d tree (up to 16
    /// columns) or its Gram-form search (above) with squared radii (`count_within_reduced`): the
    /// same counts as the one-group search, ties included, the radii exact k-th distances.
    #[test]
    fn one_group_counts_equal_the_engine_with_squared_radii() {
        use crate::knn::gram::GramSearch;
        use crate::knn::kdtree::KdTree;
        use crate::knn::metric::Euclidean;
        for (seed, &(n, d, levels)) in [
            (300, 2, Some(0.25)),
            (400, 4, None),
            (300, 4, Some(0.5)),
            (200, 9, Some(1.0)),
            (300, 17, None),
            (250, 40, Some(0.5)),
            (200, 70, Some(1.0)),
        ]
        .iter()
        .enumerate()
        {
            let raw = data(n, d, 40 + seed as u64, levels);
            let pts = Points::trusted(&raw, n, d);
            let groups: Vec<Range<usize>> = std::iter::once(0..d).collect();
            for k in [1, 3, 7] {
                let radii: Vec<f64> = naive_kth(&pts, &groups, k).iter().map(|p| p.0).collect();
                let grouped = Grouped::new(pts, groups.clone(), Method::Brute, &ctl()).unwrap();
                for strict in [true, false] {
                    let engine = if d <= AUTO_TREE_MAX_DIM {
                        KdTree::<f64, Euclidean>::new(pts, &ctl())
                            .unwrap()
                            .count_within_reduced(&radii, strict, &ctl())
                    } else {
                        let gram = GramSearch::new(pts, &ctl()).unwrap().expect("the Gram form applies");
                        gram.count_within_reduced(&radii, strict, &ctl())
                    };
                    assert_eq!(
                        engine.unwrap(),
                        grouped.count_within_reduced(&radii, strict, &ctl()).unwrap(),
                        "d={d} k={k} strict={strict}"
                    );
                }
            }
        }
    }

    #[test]
    fn groups_must_cover_the_columns() {
        let raw = data(10, 3, 1, None);
        let pts = Points::trusted(&raw, 10, 3);
        assert!(Grouped::new(pts, vec![0..1, 2..3], Method::Auto, &ctl()).is_err());
        assert!(Grouped::new(pts, std::iter::once(0..2).collect(), Method::Auto, &ctl()).is_err());
        assert!(Grouped::new(pts, vec![0..0, 0..3], Method::Auto, &ctl()).is_err());
    }
}
