//! Exact k-th-neighbour distances in the plane under the max-norm, for two one-dimensional
//! variables: the joint space of KSG mutual information between a 1-D x and a 1-D y.
//!
//! The points are sorted by x and cut into vertical strips of about √(kN)/2 consecutive points
//! (a run of equal x is never cut, so constant or quantised x gives fewer, wider strips); inside
//! a strip the points are sorted by y (the whole y sort, distributed stably into the strips; it
//! is also handed over as the y marginal's index, so KSG needs no further sort). A query scans
//! its own strip outwards in y from its own position, then the neighbouring strips outwards from
//! where its y falls, and stops in every direction as soon as the coordinate gap alone reaches the
//! current k-th distance. Queries of a strip run in ascending y, so the position of their y in a
//! neighbouring strip only moves forward (a galloping cursor per neighbouring strip instead of a
//! binary search per query).
//! Each scan takes its first few entries without stopping tests, and for k ≤ 6 the best k live in
//! fixed slots updated by compare-exchanges: the typical query then runs almost without
//! mispredicted jumps (k-th distances at N = 10⁵, k = 3: 26 → 17 ms on one thread).
//!
//! Exactness: a candidate's distance is max(|x_j − x_q|, |y_j − y_q|), the same computed values
//! as `Chebyshev::dist` on the concatenated row. The stopping tests compare computed gaps to the
//! current k-th distance; rounding is monotone, so the gap of every point further out is at least
//! as large, and a point whose distance is not below the current k-th distance cannot change it.

use super::sort::{sort_with_buckets, sort_with_buckets_in, Buckets};
use super::sorted1d::Sorted1D;
use super::{need_distances, queries_per_block, scatter_rows, KBEST_SORTED_MAX};
use crate::error::Result;
use crate::memory::{self, Need};
use crate::parallel::Ctl;
use crate::points::Real;
use rayon::prelude::*;

/// The k smallest distances seen so far, for the k-th distance search.
trait Best<T: Real> {
    fn clear(&mut self);
    /// True once k distances were seen and `gap` is at least the k-th: nothing at distance
    /// ≥ `gap` can lower the k-th distance any more.
    fn settled_by(&self, gap: T) -> bool;
    fn consider(&mut self, d: T);
    fn kth(&self) -> T;
}

/// Any k up to [`KBEST_SORTED_MAX`]: a sorted list, grown to k entries.
struct SmallestK<T> {
    k: usize,
    items: Vec<T>,
}

impl<T: Real> SmallestK<T> {
    fn new(k: usize) -> Self {
        SmallestK {
            k,
            items: Vec::with_capacity(k),
        }
    }
}

/// Larger k: a max-heap of the k smallest distances, so that an insertion costs O(log k), not
/// O(k) (with k near N a query would cost O(N·k)). It holds the same values as a sorted list.
struct HeapK<T> {
    k: usize,
    heap: std::collections::BinaryHeap<Dist<T>>,
}

/// A distance ordered for the heap (distances are never NaN; the order is the IEEE one, by which
/// `SmallestK` compares too, for non-negative values).
#[derive(Clone, Copy, PartialEq)]
struct Dist<T>(T);

impl<T: Real> Eq for Dist<T> {}

impl<T: Real> PartialOrd for Dist<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Real> Ord for Dist<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_order(&other.0)
    }
}

impl<T: Real> HeapK<T> {
    fn new(k: usize) -> Result<Self> {
        let mut items = Vec::new();
        memory::reserve(&mut items, k, || {
            Need::new("k", format!("the {k} nearest distances of a query"), "use a smaller k")
        })?;
        Ok(HeapK {
            k,
            heap: std::collections::BinaryHeap::from(items),
        })
    }
}

impl<T: Real> Best<T> for HeapK<T> {
    #[inline(always)]
    fn clear(&mut self) {
        self.heap.clear();
    }
    #[inline(always)]
    fn settled_by(&self, gap: T) -> bool {
        self.heap.len() == self.k && gap >= self.heap.peek().unwrap().0
    }
    #[inline(always)]
    // As `SmallestK::consider`: an incomparable distance is rejected too.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    fn consider(&mut self, d: T) {
        if self.heap.len() == self.k {
            let mut top = self.heap.peek_mut().unwrap();
            if !(d < top.0) {
                return;
            }
            *top = Dist(d);
        } else {
            self.heap.push(Dist(d));
        }
    }
    fn kth(&self) -> T {
        self.heap.peek().unwrap().0
    }
}

impl<T: Real> Best<T> for SmallestK<T> {
    #[inline(always)]
    fn clear(&mut self) {
        self.items.clear();
    }
    #[inline(always)]
    fn settled_by(&self, gap: T) -> bool {
        self.items.len() == self.k && gap >= self.items[self.k - 1]
    }
    #[inline(always)]
    // `!(d < worst)` rather than `d >= worst`: an incomparable distance must be rejected too.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    fn consider(&mut self, d: T) {
        if self.items.len() == self.k {
            if !(d < self.items[self.k - 1]) {
                return;
            }
            self.items.pop();
        }
        let mut pos = self.items.len();
        while pos > 0 && self.items[pos - 1] > d {
            pos -= 1;
        }
        self.items.insert(pos, d);
    }
    fn kth(&self) -> T {
        self.items[self.k - 1]
    }
}

/// k = K (small, fixed at compile time): K ascending slots that start at +∞, and an insertion
/// without branches (a chain of compare-exchanges), so that scanning a window of candidates
/// costs no mispredicted jumps. Distances are finite, so a slot still at +∞ has seen nothing.
struct FixedK<T, const K: usize> {
    slots: [T; K],
}

impl<T: Real, const K: usize> FixedK<T, K> {
    fn new() -> Self {
        FixedK {
            slots: [T::INFINITY; K],
        }
    }
}

impl<T: Real, const K: usize> Best<T> for FixedK<T, K> {
    #[inline(always)]
    fn clear(&mut self) {
        self.slots = [T::INFINITY; K];
    }
    #[inline(always)]
    fn settled_by(&self, gap: T) -> bool {
        gap >= self.slots[K - 1]
    }
    #[inline(always)]
    fn consider(&mut self, mut d: T) {
        for slot in self.slots.iter_mut() {
            let low = slot.min_of(d);
            d = slot.max_of(d);
            *slot = low;
        }
    }
    fn kth(&self) -> T {
        self.slots[K - 1]
    }
}

/// Queries per piece of a strip for k ≤ 16 (fewer above): see `kth_by_entry`.
const PIECE: usize = 4096;

/// Candidates per direction taken without stopping tests before the scan goes on one by one: the
/// k-th distance of a typical query is settled within a few entries of each strip.
const WINDOW: usize = 4;

/// Strips of the x-sorted points, each sorted by y; see the module documentation.
pub struct StripPlane<T> {
    /// x in ascending order (ties by original index) and the original index of each position.
    xs: Vec<T>,
    x_order: Vec<u32>,
    /// The x sort's buckets, kept as the x index's bucket index.
    x_buckets: Buckets,
    /// Strip s holds entries `bounds[s]..bounds[s + 1]` (also positions in the x-sorted order).
    bounds: Vec<usize>,
    /// Smallest and largest x of each strip.
    xmin: Vec<T>,
    xmax: Vec<T>,
    /// Entries, strip by strip, each strip in ascending y (ties by x position): y, x and the
    /// entry's position in the x-sorted order.
    ey: Vec<T>,
    ex: Vec<T>,
    epos: Vec<u32>,
    /// The y coordinates as a one-dimensional index over x positions (see [`Self::into_indices`]).
    y_index: Sorted1D<T>,
}

/// x sorted, and y sorted with its order given as x positions (ties by x position), as
/// [`StripPlane::new`] needs them: the two sorts run side by side, each on half the threads (a sort
/// scales poorly from one thread to two: every placement task scans all n bucket ids), then y's
/// order is mapped from indices to x positions, and runs of equal y values are put in x-position
/// order. The same arrays, bit for bit, as sorting y in x-sorted order (tested).
#[allow(clippy::type_complexity)]
pub(super) fn sort_both_side_by_side<T: Real>(
    x: &[T],
    y: &[T],
    ctl: &Ctl,
) -> Result<(Vec<T>, Vec<u32>, Buckets, Vec<T>, Vec<u32>, Buckets)> {
    let n = x.len();
    let groups = (ctl.threads() / 2).max(1);
    let make = ctl.nested();
    let (xr, yr) = ctl.install(|| {
        rayon::join(
            || sort_with_buckets_in(x, groups, &make()),
            || sort_with_buckets_in(y, groups, &make()),
        )
    });
    let (xs, x_order, x_buckets) = xr?;
    let (ys, mut y_order, y_buckets) = yr?;

    // Index → x position, then y's order in x positions.
    let need = need_distances(n);
    let mut pos_of = memory::zeros::<u32>(n, need)?;
    {
        let out = SyncSlice(pos_of.as_mut_ptr(), n);
        let block = n.div_ceil(ctl.threads() * 4).max(1 << 12);
        ctl.install(|| {
            x_order.par_chunks(block).enumerate().for_each(|(b, ids)| {
                for (j, &i) in ids.iter().enumerate() {
                    // SAFETY: x_order is a permutation of 0..n, so every index is written once,
                    // by one task, within bounds.
                    unsafe { out.write(i as usize, (b * block + j) as u32) };
                }
            })
        });
    }
    ctl.install(|| y_order.par_iter_mut().for_each(|o| *o = pos_of[*o as usize]));
    drop(pos_of);

    // Ties in y: the sort left them by index; put each run of equal values in x-position order.
    // The array is cut at run starts so that every run lies in one piece.
    let pieces = ctl.threads() * 4;
    let mut cuts = vec![0usize];
    for p in 1..pieces {
        let mut c = (p * n / pieces).max(*cuts.last().unwrap());
        while c > 0 && c < n && ys[c].total_order(&ys[c - 1]).is_eq() {
            c += 1;
        }
        if c > *cuts.last().unwrap() && c < n {
            cuts.push(c);
        }
    }
    cuts.push(n);
    let mut parts = crate::parallel::split_at_bounds(&mut y_order, &cuts);
    ctl.install(|| {
        parts.par_iter_mut().zip(cuts.par_windows(2)).for_each(|(part, w)| {
            let vals = &ys[w[0]..w[1]];
            let mut a = 0;
            while a < vals.len() {
                let mut b = a + 1;
                while b < vals.len() && vals[b].total_order(&vals[a]).is_eq() {
                    b += 1;
                }
                if b - a > 1 {
                    part[a..b].sort_unstable();
                }
                a = b;
            }
        })
    });
    drop(parts);
    Ok((xs, x_order, x_buckets, ys, y_order, y_buckets))
}

/// A raw view of a slice that parallel tasks write at distinct indices.
#[derive(Clone, Copy)]
struct SyncSlice<V>(*mut V, usize);
// SAFETY: used only for writes at indices that no two tasks share (see the call site).
unsafe impl<V: Send> Sync for SyncSlice<V> {}
unsafe impl<V: Send> Send for SyncSlice<V> {}
impl<V> SyncSlice<V> {
    /// # Safety
    /// `i` is in bounds and no other thread reads or writes index `i` meanwhile.
    unsafe fn write(&self, i: usize, v: V) {
        assert!(i < self.1);
        unsafe { self.0.add(i).write(v) };
    }
}

/// The entries of every strip (y, x, x position) in ascending y, ties by x position: the y order
/// of all points (`ys`, and `y_order` their x positions, ties by x position) distributed stably
/// into the strips, which cover the x positions `bounds[s]..bounds[s + 1]`. Each task takes a
/// group of whole strips, scans the whole y order and places its own points, so it writes only its
/// own range of the output.
fn strips_by_y<T: Real>(
    xs: &[T],
    ys: &[T],
    y_order: &[u32],
    bounds: &[usize],
    ctl: &Ctl,
) -> Result<(Vec<T>, Vec<T>, Vec<u32>)> {
    let n = xs.len();
    let need = need_distances(n);
    let n_strips = bounds.len() - 1;
    let mut strip_of = memory::zeros::<u32>(n, need)?;
    ctl.fill_segments(&mut strip_of, bounds, |s, _, seg| seg.fill(s as u32))?;
    let (mut ey, mut ex, mut epos) = (
        memory::filled(n, T::ZERO, need)?,
        memory::filled(n, T::ZERO, need)?,
        memory::zeros::<u32>(n, need)?,
    );
    let n_groups = ctl.threads().clamp(1, n_strips.max(1));
    let cuts: Vec<usize> = (0..=n_groups).map(|g| g * n_strips / n_groups).collect();
    let positions: Vec<usize> = cuts.iter().map(|&c| bounds[c]).collect();
    let mut groups: Vec<_> = crate::parallel::split_at_bounds(&mut ey, &positions)
        .into_iter()
        .zip(crate::parallel::split_at_bounds(&mut ex, &positions))
        .zip(crate::parallel::split_at_bounds(&mut epos, &positions))
        .zip(cuts.windows(2))
        .collect();
    let strip_of = &strip_of;
    ctl.install(|| {
        groups.par_iter_mut().for_each(|(((ey, ex), epos), w)| {
            let (s0, s1) = (w[0], w[1]);
            let mut next: Vec<usize> = bounds[s0..s1].iter().map(|&b| b - bounds[s0]).collect();
            for (&v, &p) in ys.iter().zip(y_order) {
                let s = (strip_of[p as usize] as usize).wrapping_sub(s0);
                if s < s1 - s0 {
                    let slot = next[s];
                    ey[slot] = v;
                    ex[slot] = xs[p as usize];
                    epos[slot] = p;
                    next[s] += 1;
                }
            }
        })
    });
    drop(groups);
    Ok((ey, ex, epos))
}

/// First position in `ey[cur..end]` whose value is not below `yq`, galloping forward from `cur`
/// (every value before `cur` is known to be below `yq`).
#[inline]
// `!(ey[cur] < yq)` is the negation of the loop invariant "ey[lo] < yq" as written (also for an
// incomparable value), not `ey[cur] >= yq`.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn advance<T: Real>(ey: &[T], cur: usize, end: usize, yq: T) -> usize {
    if cur >= end || !(ey[cur] < yq) {
        return cur;
    }
    // Invariant: ey[lo] < yq; hi == end or ey[hi] >= yq.
    let (mut lo, mut step) = (cur, 1);
    let mut hi = loop {
        let probe = lo + step;
        if probe >= end {
            break end;
        }
        if ey[probe] < yq {
            lo = probe;
            step *= 2;
        } else {
            break probe;
        }
    };
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if ey[mid] < yq {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

impl<T: Real> StripPlane<T> {
    /// `x` and `y` are the two coordinates of the same `n` points.
    pub fn new(x: &[T], y: &[T], k: usize, ctl: &Ctl) -> Result<Self> {
        debug_assert_eq!(x.len(), y.len());
        let n = x.len();
        let need = need_distances(n);
        let (xs, x_order, x_buckets, ys, y_order, y_buckets) = if ctl.threads() >= 2 {
            sort_both_side_by_side(x, y, ctl)?
        } else {
            // One thread gains nothing from running the sorts side by side, and sorting y in
            // x-sorted order gives its order as x positions, ties by x position, without the
            // mapping and the pass over ties.
            let (xs, x_order, x_buckets) = sort_with_buckets(x, ctl)?;
            let mut y_by_pos = memory::filled(n, T::ZERO, need)?;
            for (o, &i) in y_by_pos.iter_mut().zip(&x_order) {
                *o = y[i as usize];
            }
            let (ys, y_order, y_buckets) = sort_with_buckets(&y_by_pos, ctl)?;
            (xs, x_order, x_buckets, ys, y_order, y_buckets)
        };

        // About √(kN)/2 points per strip: for a smooth density the strips are then about as wide
        // as the typical k-th distance, so a query visits about three strips and scans about k
        // points in each.
        let target = ((((k * n) as f64).sqrt() / 2.0) as usize).max(2 * k + 2);
        let mut bounds = vec![0usize];
        while *bounds.last().unwrap() < n {
            let mut e = (bounds.last().unwrap() + target).min(n);
            while e < n && xs[e] == xs[e - 1] {
                e += 1;
            }
            bounds.push(e);
        }
        let n_strips = bounds.len() - 1;
        let xmin: Vec<T> = (0..n_strips).map(|s| xs[bounds[s]]).collect();
        let xmax: Vec<T> = (0..n_strips).map(|s| xs[bounds[s + 1] - 1]).collect();

        // The y index's order, distributed into the strips, sorts every strip by y.
        let (ey, ex, epos) = strips_by_y(&xs, &ys, &y_order, &bounds, ctl)?;
        let y_index = Sorted1D::from_sorted(ys, y_order, y_buckets);
        Ok(StripPlane {
            xs,
            x_order,
            x_buckets,
            bounds,
            xmin,
            xmax,
            ey,
            ex,
            epos,
            y_index,
        })
    }

    pub fn n(&self) -> usize {
        self.xs.len()
    }

    /// Scans entries `range` upwards (`up`, from its start) or downwards (from its end) from the
    /// query (xq, yq): the first [`WINDOW`] entries unconditionally, then one by one until the
    /// y gap alone settles the k-th distance.
    #[inline(always)]
    fn scan<B: Best<T>>(&self, best: &mut B, range: std::ops::Range<usize>, up: bool, xq: T, yq: T) {
        let (ey, ex) = (&self.ey[range.clone()], &self.ex[range]);
        let dist = |j: usize| (xq - ex[j]).abs().max_of((ey[j] - yq).abs());
        let len = ey.len();
        let w = len.min(WINDOW);
        // One by one: false once the y gap alone settles the k-th distance.
        let visit = |best: &mut B, j: usize| -> bool {
            let dy = (ey[j] - yq).abs();
            if best.settled_by(dy) {
                return false;
            }
            best.consider((xq - ex[j]).abs().max_of(dy));
            true
        };
        if up {
            for j in 0..w {
                best.consider(dist(j));
            }
            for j in w..len {
                if !visit(best, j) {
                    break;
                }
            }
        } else {
            for j in (len - w..len).rev() {
                best.consider(dist(j));
            }
            for j in (0..len - w).rev() {
                if !visit(best, j) {
                    break;
                }
            }
        }
    }

    /// For every point, the max-norm distance to its k-th nearest other point (original order).
    pub fn kth_distances(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        scatter_rows(&self.x_order, &self.kth_distances_by_x_position(k, ctl)?, 1)
    }

    /// Values given per entry (strip by strip, in y order), put in x-sorted order: entries of a
    /// strip are a permutation of the strip's own x positions, so strips are scattered in parallel.
    fn by_x_position<V: Copy + Default + Send + Sync>(&self, by_entry: &[V], ctl: &Ctl) -> Result<Vec<V>> {
        let mut out = memory::filled(self.n(), V::default(), need_distances(self.n()))?;
        ctl.fill_segments(&mut out, &self.bounds, |s, start, seg| {
            for e in self.bounds[s]..self.bounds[s + 1] {
                seg[self.epos[e] as usize - start] = by_entry[e];
            }
        })?;
        Ok(out)
    }

    /// Like `kth_distances`, indexed by position in the x-sorted order.
    pub fn kth_distances_by_x_position(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        super::check_k(k, self.n())?;
        let by_entry = match k {
            1 => self.kth_by_entry(k, || Ok(FixedK::<T, 1>::new()), ctl)?,
            2 => self.kth_by_entry(k, || Ok(FixedK::<T, 2>::new()), ctl)?,
            3 => self.kth_by_entry(k, || Ok(FixedK::<T, 3>::new()), ctl)?,
            4 => self.kth_by_entry(k, || Ok(FixedK::<T, 4>::new()), ctl)?,
            5 => self.kth_by_entry(k, || Ok(FixedK::<T, 5>::new()), ctl)?,
            6 => self.kth_by_entry(k, || Ok(FixedK::<T, 6>::new()), ctl)?,
            _ if k <= KBEST_SORTED_MAX => self.kth_by_entry(k, || Ok(SmallestK::new(k)), ctl)?,
            _ => self.kth_by_entry(k, || HeapK::new(k), ctl)?,
        };
        self.by_x_position(&by_entry, ctl)
    }

    /// The k-th distances by entry, with best-k lists made by `new_best`.
    ///
    /// The queries of a strip run in pieces of at most `queries_per_block(PIECE, k)` (whole strips
    /// for small k): with k near N there is a single strip, and its queries would otherwise run
    /// as one uninterruptible task. A piece starts its cursors afresh from a binary search, which
    /// finds the position the cursor would have reached: the results do not depend on the pieces.
    fn kth_by_entry<B: Best<T>>(&self, k: usize, new_best: impl Fn() -> Result<B> + Sync, ctl: &Ctl) -> Result<Vec<T>> {
        let n_strips = self.bounds.len() - 1;
        let piece = queries_per_block(PIECE, k);
        // Piece p covers entries pieces[p]..pieces[p + 1] of strip strip_of[p].
        let (mut pieces, mut strip_of) = (vec![0usize], Vec::new());
        for s in 0..n_strips {
            let mut e = self.bounds[s];
            while e < self.bounds[s + 1] {
                e = (e + piece).min(self.bounds[s + 1]);
                pieces.push(e);
                strip_of.push(s);
            }
        }
        let mut by_entry = memory::filled(self.n(), T::ZERO, need_distances(self.n()))?;
        ctl.try_fill_segments(&mut by_entry, &pieces, |p, first, out| {
            let s = strip_of[p];
            let start = self.bounds[s];
            let mut best = new_best()?;
            // Cursors into strips s − t (index 2t − 2) and s + t (index 2t − 1); usize::MAX: not
            // placed yet. Far strips (rarely visited) start from a binary search.
            let mut cursors: Vec<usize> = Vec::new();
            let end_s = self.bounds[s + 1];
            for (e_off, o) in out.iter_mut().enumerate() {
                let e = first + e_off;
                let (xq, yq) = (self.ex[e], self.ey[e]);
                best.clear();
                self.scan(&mut best, e + 1..end_s, true, xq, yq);
                self.scan(&mut best, start..e, false, xq, yq);
                let (mut left, mut right) = (s > 0, s + 1 < n_strips);
                let mut t = 1;
                while left || right {
                    for side in 0..2 {
                        let alive = if side == 0 { &mut left } else { &mut right };
                        if !*alive {
                            continue;
                        }
                        let strip = if side == 0 { s - t } else { s + t };
                        // Every point of this strip and of the strips beyond is at least this far in x.
                        let gap = if side == 0 {
                            xq - self.xmax[strip]
                        } else {
                            self.xmin[strip] - xq
                        };
                        if best.settled_by(gap) {
                            *alive = false;
                            continue;
                        }
                        let (a, b) = (self.bounds[strip], self.bounds[strip + 1]);
                        let slot = 2 * t - 2 + side;
                        if cursors.len() <= slot {
                            cursors.resize(slot + 1, usize::MAX);
                        }
                        let cur = if cursors[slot] == usize::MAX {
                            a + self.ey[a..b].partition_point(|&v| v < yq)
                        } else {
                            advance(&self.ey, cursors[slot], b, yq)
                        };
                        cursors[slot] = cur;
                        self.scan(&mut best, cur..b, true, xq, yq);
                        self.scan(&mut best, a..cur, false, xq, yq);
                        if (side == 0 && strip == 0) || (side == 1 && strip + 1 == n_strips) {
                            *alive = false;
                        }
                    }
                    t += 1;
                }
                *o = best.kth();
            }
            Ok(())
        })?;
        Ok(by_entry)
    }

    /// The x and the y coordinates as one-dimensional indices, both already sorted here (no
    /// second sort). Their sorted positions and their order are x positions: the x index's
    /// sorted positions are the x positions of `kth_distances_by_x_position`, and the y index's
    /// order maps each of its sorted positions to one (`count_within_in_sorted_order` reads the
    /// radii by x position).
    pub fn into_indices(self) -> (Sorted1D<T>, Sorted1D<T>) {
        (
            Sorted1D::from_sorted(self.xs, self.x_order, self.x_buckets),
            self.y_index,
        )
    }
}
