//! Binned (plug-in) information estimators (SPEC §2).
//!
//! A sample's binned pattern is its row of bin indices. [`factorize_binned`] gives every row the
//! id of its pattern (ids `0..m`, in order of first appearance) without ever materialising the
//! N × d matrix of bin indices: rows are hashed in parallel, ids are assigned from the hashes,
//! and every row is then checked against its pattern's first row, so a hash collision can never
//! merge two different patterns. Plug-in entropies of ids (and of pairs of ids) follow, for the
//! whole sample or for many resamples at once ([`entropy_resamples`], [`mutual_info_resamples`]),
//! whose rows are drawn inside the parallel loop (`crate::info::resample::Draws`).

use crate::error::{CoreError, Result};
use crate::info::resample::{check_picked, map_resamples_with, Draws};
use crate::parallel::Ctl;
use crate::points::{Points, Real};
use rayon::prelude::*;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::LazyLock;

/// How values become bin indices.
#[derive(Clone, Debug, PartialEq)]
pub enum Binning {
    /// `n_bins` equal-width bins over [min, max] of the whole array (`per_unit = false`) or of each
    /// column: index = floor((v − lo) / w), w = (hi − lo) / n_bins, the maximum in the last bin.
    /// A constant range puts everything in bin 0.
    Uniform { n_bins: usize, per_unit: bool },
    /// Fixed-width bins anchored at 0 (Saxe et al. 2018): index = floor(v / bin_size).
    FixedWidth { bin_size: f64 },
    /// Equal-mass bins per column: the `n_bins − 1` edges are the column's quantiles at b/n_bins
    /// (numpy's default "linear" quantile); index = #{edges ≤ v}.
    Quantile { n_bins: usize },
}

/// ⌊q⌋ as an integer (saturating beyond the i64 range) without a call to libm's `floor`, which
/// the baseline x86-64 target cannot inline.
#[inline(always)]
fn floor_to_i64(q: f64) -> i64 {
    let t = q as i64; // truncation toward zero
    if (t as f64) > q {
        t.saturating_sub(1)
    } else {
        t
    }
}

/// The equal-width bin of v ≥ lo: ⌊(v − lo)/w⌋ (a non-negative quotient, so truncation is the
/// floor), the maximum (and anything above it) in the last bin.
#[inline(always)]
fn width_code(v: f64, lo: f64, width: f64, last: i64) -> i64 {
    let q = (v - lo) / width;
    // Clamped in floating point (a NaN would become `last` too), so the quotient is in
    // [0, last] ⊂ i32 when truncated: the unchecked conversion is sound and, unlike the
    // saturating `as`, compiles to a bare cvttsd2si.
    let last_f = last as f64;
    let q = if q < last_f { q } else { last_f };
    let q = if q > 0.0 { q } else { 0.0 };
    // SAFETY: 0 ≤ q ≤ last < 2^31 (`check_bins` caps n_bins at 2^31) and q is not NaN.
    unsafe { q.to_int_unchecked::<i32>() as i64 }
}

/// The fitted rule of one column.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnRule {
    Width { lo: f64, width: f64, last: i64 },
    Fixed { size: f64 },
    Edges(Vec<f64>),
}

impl ColumnRule {
    #[inline(always)]
    fn code(&self, v: f64) -> i64 {
        match self {
            ColumnRule::Width { lo, width, last } => {
                if *width > 0.0 {
                    width_code(v, *lo, *width, *last)
                } else {
                    0
                }
            }
            ColumnRule::Fixed { size } => floor_to_i64(v / size),
            ColumnRule::Edges(edges) => edges.partition_point(|&e| e <= v) as i64,
        }
    }
}

/// The binning fitted to an array: one rule per column.
#[derive(Clone, Debug, PartialEq)]
pub struct Binner {
    pub rules: Vec<ColumnRule>,
    /// Every column has the same rule.
    shared: bool,
}

/// Columns are read in groups of this many (one cache line of f64 per row), so that per-column
/// passes over a row-major array do not stride through memory once per column.
const COLUMN_GROUP: usize = 8;

/// Runs `f(first_column, columns)` for groups of adjacent columns, in parallel, where `columns[c]`
/// holds column `first_column + c` as f64.
fn map_column_groups<T: Real, R: Send>(
    x: &Points<'_, T>,
    ctl: &Ctl,
    f: impl Fn(usize, Vec<Vec<f64>>) -> Vec<R> + Sync,
) -> Vec<R> {
    use rayon::prelude::*;
    let (n, d) = (x.n(), x.d());
    let groups: Vec<Vec<R>> = ctl.install(|| {
        (0..d.div_ceil(COLUMN_GROUP))
            .into_par_iter()
            .map(|g| {
                let (j0, j1) = (g * COLUMN_GROUP, ((g + 1) * COLUMN_GROUP).min(d));
                let mut cols: Vec<Vec<f64>> = (j0..j1).map(|_| Vec::with_capacity(n)).collect();
                for i in 0..n {
                    for (c, &v) in cols.iter_mut().zip(&x.row(i)[j0..j1]) {
                        c.push(v.to_f64());
                    }
                }
                f(j0, cols)
            })
            .collect()
    });
    groups.into_iter().flatten().collect()
}

/// (min, max) of every column, and the first row holding NaN or inf (`usize::MAX`: none), in one
/// pass over the rows, parallel over row blocks.
fn column_ranges<T: Real>(x: &Points<'_, T>, ctl: &Ctl) -> (Vec<(f64, f64)>, usize) {
    use rayon::prelude::*;
    let (n, d) = (x.n(), x.d());
    let identity = || (vec![(f64::INFINITY, f64::NEG_INFINITY); d], usize::MAX);
    ctl.install(|| {
        (0..n)
            .into_par_iter()
            .with_min_len(4096)
            .fold(identity, |(mut acc, bad), i| {
                // Plain comparisons, which vectorise unlike f64::min (a NaN is caught by `finite`).
                let mut finite = true;
                for (r, &v) in acc.iter_mut().zip(x.row(i)) {
                    let v = v.to_f64();
                    finite &= v.is_finite();
                    r.0 = if v < r.0 { v } else { r.0 };
                    r.1 = if v > r.1 { v } else { r.1 };
                }
                (acc, if finite { bad } else { bad.min(i) })
            })
            .reduce(identity, |(mut a, bad_a), (b, bad_b)| {
                for (r, s) in a.iter_mut().zip(b) {
                    *r = (r.0.min(s.0), r.1.max(s.1));
                }
                (a, bad_a.min(bad_b))
            })
    })
}

impl Binner {
    /// Fits the binning to `x`, which may be unchecked: NaN or inf is reported here (the first bad
    /// row), from the same pass that finds the ranges.
    pub fn fit<T: Real>(x: &Points<'_, T>, binning: &Binning, ctl: &Ctl) -> Result<Binner> {
        let d = x.d();
        let (ranges, bad) = column_ranges(x, ctl);
        if bad != usize::MAX {
            return Err(CoreError::invalid(
                "x",
                format!("contains NaN or inf (first at row {bad})"),
            ));
        }
        let width_rule = |(lo, hi): (f64, f64), n_bins: usize| ColumnRule::Width {
            lo,
            width: (hi - lo) / n_bins as f64,
            last: n_bins as i64 - 1,
        };
        let rules = match *binning {
            Binning::Uniform { n_bins, per_unit } => {
                check_bins(n_bins)?;
                if per_unit {
                    ranges.into_iter().map(|r| width_rule(r, n_bins)).collect()
                } else {
                    let lo = ranges.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
                    let hi = ranges.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max);
                    vec![width_rule((lo, hi), n_bins); d]
                }
            }
            Binning::FixedWidth { bin_size } => {
                if !(bin_size > 0.0 && bin_size.is_finite()) {
                    return Err(CoreError::invalid(
                        "bin_size",
                        format!("must be positive and finite, got {bin_size}"),
                    ));
                }
                vec![ColumnRule::Fixed { size: bin_size }; d]
            }
            Binning::Quantile { n_bins } => {
                check_bins(n_bins)?;
                map_column_groups(x, ctl, |_, cols| {
                    cols.into_iter()
                        .map(|mut col| {
                            col.sort_unstable_by(f64::total_cmp);
                            ColumnRule::Edges(
                                (1..n_bins)
                                    .map(|b| numpy_linear_quantile(&col, b as f64 / n_bins as f64))
                                    .collect(),
                            )
                        })
                        .collect()
                })
            }
        };
        let shared = rules.windows(2).all(|w| w[0] == w[1]);
        Ok(Binner { rules, shared })
    }

    #[inline(always)]
    pub fn code(&self, j: usize, v: f64) -> i64 {
        self.rules[j].code(v)
    }

    /// The largest code any value can get, when bounded (equal-width and quantile bins).
    pub fn max_code(&self) -> Option<i64> {
        self.rules.iter().try_fold(0i64, |acc, r| match r {
            ColumnRule::Width { last, .. } => Some(acc.max(*last)),
            ColumnRule::Edges(e) => Some(acc.max(e.len() as i64)),
            ColumnRule::Fixed { .. } => None,
        })
    }

    /// The codes of one row. When every column shares one equal-width or fixed-width rule (the
    /// common "layer" binning) the rule is decided once per row, not once per value.
    #[inline]
    pub fn fill_codes<T: Real, C: Copy>(&self, row: &[T], out: &mut [C], to: impl Fn(i64) -> C) {
        match self.rules.first() {
            Some(&ColumnRule::Width { lo, width, last }) if self.shared => {
                if width > 0.0 {
                    for (o, &v) in out.iter_mut().zip(row) {
                        *o = to(width_code(v.to_f64(), lo, width, last));
                    }
                } else {
                    out.fill(to(0));
                }
            }
            Some(&ColumnRule::Fixed { size }) => {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = to(floor_to_i64(v.to_f64() / size));
                }
            }
            _ => {
                for ((o, &v), rule) in out.iter_mut().zip(row).zip(&self.rules) {
                    *o = to(rule.code(v.to_f64()));
                }
            }
        }
    }
}

fn check_bins(n_bins: usize) -> Result<()> {
    if n_bins < 1 {
        return Err(CoreError::invalid("n_bins", "must be at least 1, got 0"));
    }
    if n_bins > 1 << 31 {
        return Err(CoreError::invalid("n_bins", format!("at most 2^31, got {n_bins}")));
    }
    Ok(())
}

/// numpy.quantile(sorted, q) with its default method ("linear", Hyndman & Fan type 7), written
/// with numpy's own operation order so that the edges are the same floating-point numbers.
fn numpy_linear_quantile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let virtual_index = (n - 1) as f64 * q;
    if virtual_index >= (n - 1) as f64 {
        return sorted[n - 1];
    }
    let below = virtual_index.floor();
    let gamma = virtual_index - below;
    let (a, b) = (sorted[below as usize], sorted[below as usize + 1]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// Hashes already spread over 64 bits (see [`mix`]) need no further hashing.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type IdMap = HashMap<u64, u32, BuildHasherDefault<PassThrough>>;

#[inline(always)]
fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(23) ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[inline(always)]
fn finish_hash(mut h: u64) -> u64 {
    // splitmix64's finaliser: every input bit reaches every output bit.
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// Gives every row of an n-row table the id of its pattern of codes (ids in order of first
/// appearance); returns (ids, number of distinct patterns). `fill(i, buf)` writes the key of row i
/// (`d` words: its codes, or its codes packed several to a word) into `buf`.
pub fn factorize_rows(
    n: usize,
    d: usize,
    fill: impl Fn(usize, &mut [u64]) + Sync,
    ctl: &Ctl,
) -> Result<(Vec<u32>, usize)> {
    if n > u32::MAX as usize {
        return Err(CoreError::invalid("x", "more than 2^32 - 1 samples"));
    }
    let same_row = |a: usize, b: usize, buf_a: &mut [u64], buf_b: &mut [u64]| {
        fill(a, buf_a);
        fill(b, buf_b);
        buf_a == buf_b
    };

    // 1. Hashes, in parallel.
    let mut hashes = vec![0u64; n];
    ctl.fill_blocks(&mut hashes, 4096, |start, block| {
        let mut buf = vec![0u64; d];
        for (t, h) in block.iter_mut().enumerate() {
            fill(start + t, &mut buf);
            *h = hash_codes(&buf);
        }
    })?;

    // 2. Ids from hashes alone, in order of first appearance ([`number_hashes`]).
    let (map, mut first_row, mut ids) = number_hashes(&hashes, ctl)?;

    // 3. Every row must equal its pattern's first row; in parallel.
    let mut mismatch = vec![false; n];
    ctl.fill_blocks(&mut mismatch, 4096, |start, block| {
        let (mut a, mut b) = (vec![0u64; d], vec![0u64; d]);
        for (t, m) in block.iter_mut().enumerate() {
            let i = start + t;
            let r = first_row[ids[i] as usize] as usize;
            *m = r != i && !same_row(i, r, &mut a, &mut b);
        }
    })?;

    // 4. True collisions (different patterns, one 64-bit hash): settle them exactly. Ids of such
    //    patterns are appended; first-appearance order is restored by the final renumbering.
    if mismatch.iter().any(|&m| m) {
        let (mut a, mut b) = (vec![0u64; d], vec![0u64; d]);
        let mut by_hash: HashMap<u64, Vec<u32>> = HashMap::new(); // hash → ids sharing it
        for i in 0..n {
            if !mismatch[i] {
                continue;
            }
            let h = hashes[i];
            let candidates = by_hash.entry(h).or_insert_with(|| vec![map[&h]]);
            match candidates
                .iter()
                .find(|&&p| same_row(i, first_row[p as usize] as usize, &mut a, &mut b))
            {
                Some(&p) => ids[i] = p,
                None => {
                    let p = first_row.len() as u32;
                    first_row.push(i as u32);
                    candidates.push(p);
                    ids[i] = p;
                }
            }
        }
        renumber_by_first_appearance(&mut ids, first_row.len());
    }
    Ok((ids, first_row.len()))
}

/// A 64-bit hash of a row of codes: four independent lanes (no long dependency chain), then
/// splitmix64's finaliser. Only speed depends on its quality: equal hashes are always verified.
#[inline]
fn hash_codes(codes: &[u64]) -> u64 {
    let mut lanes = [
        0x243F_6A88_85A3_08D3u64,
        0x1319_8A2E_0370_7344,
        0xA409_3822_299F_31D0,
        0x082E_FA98_EC4E_6C89,
    ];
    let mut chunks = codes.chunks_exact(4);
    for c in &mut chunks {
        for l in 0..4 {
            lanes[l] = mix(lanes[l], c[l]);
        }
    }
    for (l, &c) in chunks.remainder().iter().enumerate() {
        lanes[l] = mix(lanes[l], c);
    }
    finish_hash(
        lanes[0] ^ lanes[1].rotate_left(16) ^ lanes[2].rotate_left(32) ^ lanes[3].rotate_left(48) ^ codes.len() as u64,
    )
}

/// The most keys [`number_small_keys`] gives a direct table for N rows: a table no longer than a
/// few times the data (and at most 2^26 counters).
fn small_key_limit(n: usize) -> u64 {
    (4 * n as u64).clamp(1 << 16, 1 << 26)
}

/// The number of possible keys of rows whose column k takes `ranges[k]` values, if at most
/// [`small_key_limit`].
fn small_key_range(ranges: impl IntoIterator<Item = u64>, n: usize) -> Option<u64> {
    ranges
        .into_iter()
        .try_fold(1u64, |acc, r| acc.checked_mul(r))
        .filter(|&r| r <= small_key_limit(n))
}

/// Ids in order of first appearance, like [`factorize_rows`], for rows whose words are small
/// integers: word k of row i (from `fill`) minus `offsets[k]` lies in `0..radices[k]`, so a row's
/// key is a mixed-radix number below Π radices (≤ [`small_key_limit`]) and a direct table numbers
/// the keys — no hashing. Keys are formed in parallel; numbering is one pass of table look-ups.
fn number_small_keys(
    n: usize,
    offsets: &[u64],
    radices: &[u64],
    fill: impl Fn(usize, &mut [u64]) + Sync,
    ctl: &Ctl,
) -> Result<(Vec<u32>, usize)> {
    let range = small_key_range(radices.iter().copied(), n)
        .ok_or_else(|| CoreError::Internal("too many keys for a table".into()))?;
    let mut ids = vec![0u32; n];
    ctl.fill_blocks(&mut ids, 4096, |start, block| {
        let mut buf = vec![0u64; radices.len()];
        for (t, id) in block.iter_mut().enumerate() {
            fill(start + t, &mut buf);
            let key = buf
                .iter()
                .zip(offsets)
                .zip(radices)
                .rev()
                .fold(0u64, |acc, ((&w, &o), &r)| acc * r + w.wrapping_sub(o));
            *id = key as u32;
        }
    })?;
    let m = renumber_by_first_appearance(&mut ids, range as usize);
    Ok((ids, m))
}

/// Numbers the distinct values of `hashes` in order of first appearance: (map hash → id, the
/// first row of each id, the id of every row). Each block of rows numbers its own hashes (blocks in
/// parallel); then the later blocks' hashes are numbered in block order on top of the first
/// block's, whose numbers are already final — the serial part is only the later blocks' distinct
/// hashes. The result does not depend on the blocks.
fn number_hashes(hashes: &[u64], ctl: &Ctl) -> Result<(IdMap, Vec<u32>, Vec<u32>)> {
    use rayon::prelude::*;
    struct Block {
        map: IdMap,
        first_row: Vec<u32>,
    }
    impl Block {
        /// The id of `hash`, a new one (with `row` as its first row) if it is new.
        fn number(&mut self, hash: u64, row: u32) -> u32 {
            let next = self.first_row.len() as u32;
            let id = *self.map.entry(hash).or_insert(next);
            if id == next {
                self.first_row.push(row);
            }
            id
        }
    }
    let n = hashes.len();
    let block = n.div_ceil(ctl.threads().max(1)).max(1 << 14);
    let mut ids = vec![0u32; n];
    let mut blocks: Vec<Block> = ctl.install(|| {
        ids.par_chunks_mut(block)
            .enumerate()
            .map(|(b, out)| {
                let start = b * block;
                let mut block = Block {
                    map: IdMap::with_capacity_and_hasher(1024, Default::default()),
                    first_row: Vec::new(),
                };
                for (t, id) in out.iter_mut().enumerate() {
                    *id = block.number(hashes[start + t], (start + t) as u32);
                }
                block
            })
            .collect()
    });
    ctl.check()?;
    let rest = blocks.split_off(1.min(blocks.len()));
    let Some(mut global) = blocks.pop() else {
        return Ok((IdMap::default(), Vec::new(), ids));
    };
    // Local id → global id for each later block.
    let to_global: Vec<Vec<u32>> = rest
        .into_iter()
        .map(|b| {
            b.first_row
                .iter()
                .map(|&i| global.number(hashes[i as usize], i))
                .collect()
        })
        .collect();
    ctl.install(|| {
        ids.par_chunks_mut(block)
            .skip(1)
            .zip(to_global.par_iter())
            .for_each(|(out, to_global)| {
                out.iter_mut().for_each(|id| *id = to_global[*id as usize]);
            })
    });
    Ok((global.map, global.first_row, ids))
}

/// Replaces ids below `m` by their order of first appearance; returns how many distinct ids there
/// were.
fn renumber_by_first_appearance(ids: &mut [u32], m: usize) -> usize {
    let mut new_id = vec![u32::MAX; m];
    let mut next = 0u32;
    for id in ids.iter_mut() {
        if new_id[*id as usize] == u32::MAX {
            new_id[*id as usize] = next;
            next += 1;
        }
        *id = new_id[*id as usize];
    }
    next as usize
}

/// Pattern ids of the binned rows of `x` (see [`factorize_rows`]) and the binning used.
pub fn factorize_binned<T: Real>(x: Points<'_, T>, binning: &Binning, ctl: &Ctl) -> Result<(Vec<u32>, usize, Binner)> {
    let binner = Binner::fit(&x, binning, ctl)?;
    let (n, d) = (x.n(), x.d());
    let radix = binner.max_code().map(|c| c as u64 + 1);
    if let Some(r) = radix.filter(|&r| small_key_range(std::iter::repeat(r).take(d), n).is_some()) {
        // Few possible patterns (few bins, few units): number them through a direct table.
        let (ids, m) = number_small_keys(
            n,
            &vec![0; d],
            &vec![r; d],
            |i, buf| binner.fill_codes(x.row(i), buf, |c| c as u64),
            ctl,
        )?;
        return Ok((ids, m, binner));
    }
    let (ids, m) = if radix.is_some_and(|r| r <= 256) {
        // Codes fit a byte: store them once, eight to a word (rows padded with zeros), then hash
        // and compare words.
        let w = d.div_ceil(8);
        let mut packed = vec![0u8; n * w * 8];
        ctl.fill_blocks(&mut packed, w * 8 * 1024, |start, block| {
            for (t, bytes) in block.chunks_exact_mut(w * 8).enumerate() {
                binner.fill_codes(x.row(start / (w * 8) + t), &mut bytes[..d], |c| c as u8);
            }
        })?;
        let word = |i: usize, k: usize| {
            let at = (i * w + k) * 8;
            u64::from_le_bytes(packed[at..at + 8].try_into().expect("8 bytes"))
        };
        factorize_rows(
            n,
            w,
            |i, buf| {
                for (k, o) in buf.iter_mut().enumerate() {
                    *o = word(i, k);
                }
            },
            ctl,
        )?
    } else {
        factorize_rows(n, d, |i, buf| binner.fill_codes(x.row(i), buf, |c| c as u64), ctl)?
    };
    Ok((ids, m, binner))
}

/// Pattern ids of the rows of an integer table (each distinct row is a category).
pub fn factorize_integers(values: &[i64], n: usize, d: usize, ctl: &Ctl) -> Result<(Vec<u32>, usize)> {
    if values.len() != n * d || n == 0 || d == 0 {
        return Err(CoreError::invalid(
            "x",
            format!("buffer of {} values for shape ({n}, {d})", values.len()),
        ));
    }
    let fill = |i: usize, buf: &mut [u64]| {
        for (o, &v) in buf.iter_mut().zip(&values[i * d..(i + 1) * d]) {
            *o = v as u64;
        }
    };
    // Columns of few distinct values (class labels): a direct table instead of hashing.
    let (mut lo, mut hi) = (vec![i64::MAX; d], vec![i64::MIN; d]);
    for row in values.chunks_exact(d) {
        for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
            *l = (*l).min(v);
            *h = (*h).max(v);
        }
    }
    let radices: Vec<u64> = lo
        .iter()
        .zip(&hi)
        .map(|(&l, &h)| (h as i128 - l as i128 + 1).min(u64::MAX as i128) as u64)
        .collect();
    if small_key_range(radices.iter().copied(), n).is_some() {
        let offsets: Vec<u64> = lo.iter().map(|&l| l as u64).collect();
        return number_small_keys(n, &offsets, &radices, fill, ctl);
    }
    factorize_rows(n, d, fill, ctl)
}

/// c·ln c for the counts c below 64, computed once: most counts of a resample are small, and the
/// table holds the very numbers the logarithm gives.
static C_LN_C: LazyLock<[f64; 64]> = LazyLock::new(|| std::array::from_fn(|c| c as f64 * (c as f64).ln()));

/// Plug-in entropy (nats) of a table of counts over `total` samples: log N − (1/N) Σ c log c,
/// summed with Neumaier compensation.
pub fn plugin_entropy(counts: impl IntoIterator<Item = u32>, total: usize) -> f64 {
    let small = &*C_LN_C;
    let terms = counts
        .into_iter()
        .filter(|&c| c > 1)
        .map(|c| match small.get(c as usize) {
            Some(&t) => t,
            None => c as f64 * (c as f64).ln(),
        });
    let n = total as f64;
    n.ln() - crate::special::neumaier_sum(terms) / n
}

/// Plug-in entropy and number of distinct values of `counts` (over `total` samples); zeroes them.
/// Scanning all counters costs no more than counting did: a table has at most N ids and a
/// resample at least N/2 rows.
fn take_entropy(counts: &mut [u32], total: usize) -> (f64, usize) {
    let out = entropy_and_distinct(counts, total);
    counts.fill(0);
    out
}

/// Plug-in entropy and number of distinct values of `counts` (over `total` samples).
fn entropy_and_distinct(counts: &[u32], total: usize) -> (f64, usize) {
    (
        plugin_entropy(counts.iter().copied(), total),
        counts.iter().filter(|&&c| c > 0).count(),
    )
}

/// Ids of the pairs (a[i], b[i]) and their number: the joint variable, so that the joint counts of
/// resamples that pick the same rows of both variables are plain counts of its ids. When the
/// n_a·n_b possible pairs are no more than the N rows the id is a·n_b + b (no search, and a table
/// of counters no longer than a resample); otherwise the pairs are factorised (ids in order of
/// first appearance, [`factorize_rows`]).
pub fn factorize_pairs(a: (&[u32], usize), b: (&[u32], usize), ctl: &Ctl) -> Result<(Vec<u32>, usize)> {
    let ((ids_a, n_a), (ids_b, n_b)) = (a, b);
    if ids_a.len() != ids_b.len() {
        return Err(CoreError::invalid(
            "y",
            format!("has {} samples but x has {}", ids_b.len(), ids_a.len()),
        ));
    }
    check_ids("x", ids_a, n_a)?;
    check_ids("y", ids_b, n_b)?;
    let n = ids_a.len();
    match n_a.checked_mul(n_b) {
        Some(grid) if grid <= n => {
            let mut ids = vec![0u32; n];
            ctl.fill_blocks(&mut ids, 4096, |start, block| {
                for (t, id) in block.iter_mut().enumerate() {
                    *id = ids_a[start + t] * n_b as u32 + ids_b[start + t];
                }
            })?;
            Ok((ids, grid))
        }
        _ => factorize_rows(n, 1, |i, buf| buf[0] = (ids_a[i] as u64) << 32 | ids_b[i] as u64, ctl),
    }
}

/// Joint entropy and number of distinct pairs of (a[i], b[pick(i)]), i = 0..m.
fn joint_entropy_of(a: &[u32], b: &[u32], n_b: usize, pick: impl Fn(usize) -> usize, m: usize) -> (f64, usize) {
    let mut keys: Vec<u64> = (0..m).map(|i| a[i] as u64 * n_b as u64 + b[pick(i)] as u64).collect();
    keys.sort_unstable();
    let mut counts = Vec::new();
    let mut run = 0u32;
    for t in 0..m {
        run += 1;
        if t + 1 == m || keys[t + 1] != keys[t] {
            counts.push(run);
            run = 0;
        }
    }
    let distinct = counts.len();
    (plugin_entropy(counts, m), distinct)
}

/// Plug-in entropies (nats) and distinct counts of several id tables over the same rows — `tables`
/// holds (ids, number of ids) — for the whole sample (`draws` None: one row of results) or for
/// the resamples numbered `resamples` of `draws` (one row each). One pass over a resample's rows
/// counts every table, and bootstrap rows are counted as they are drawn, never stored. The
/// entropies of x, y and of their pairs ([`factorize_pairs`]) give a mutual information.
pub fn entropy_resamples(
    tables: &[(&[u32], usize)],
    draws: Option<(&Draws, Range<usize>)>,
    ctl: &Ctl,
) -> Result<Vec<Vec<(f64, usize)>>> {
    const NAMES: [&str; 3] = ["x", "y", "pairs"];
    let n = tables.first().map_or(0, |t| t.0.len());
    for (t, &(ids, n_ids)) in tables.iter().enumerate() {
        let name = NAMES.get(t).copied().unwrap_or("ids");
        if ids.len() != n {
            return Err(CoreError::invalid(
                name,
                format!("has {} samples but the first table has {n}", ids.len()),
            ));
        }
        check_ids(name, ids, n_ids)?;
    }
    let (count, m) = match &draws {
        Some((d, r)) => {
            check_picked(d, &[true], n)?;
            (r.len(), d.m())
        }
        None => (1, n),
    };
    if tables.is_empty() {
        return Err(CoreError::invalid("tables", "no tables"));
    }
    // Only the finest table is counted row by row; the others' counts are sums of its counts.
    let finest = Finest::of(tables, ctl)?;
    if draws.is_none() {
        return Ok(vec![sample_entropies(tables.len(), &finest, ctl)]);
    }
    let ids_f = &finest.ids[..];
    let init = || {
        (
            vec![0u32; finest.n],
            finest
                .coarser
                .iter()
                .map(|(_, n_t, _)| vec![0u32; *n_t])
                .collect::<Vec<_>>(),
        )
    };
    map_resamples_with(count, ctl, init, |(counts, others), r, _| {
        if let Some((d, range)) = &draws {
            d.for_each_row(range.start + r, |i| counts[ids_f[i] as usize] += 1);
        }
        let mut out = vec![(0.0, 0); tables.len()];
        for ((t, _, to_t), counts_t) in finest.coarser.iter().zip(others.iter_mut()) {
            for (&c, &id) in counts.iter().zip(to_t) {
                counts_t[id as usize] += c;
            }
            out[*t] = take_entropy(counts_t, m);
        }
        let own = take_entropy(counts, m);
        if let Some(t) = finest.table {
            out[t] = own;
        }
        Ok(out)
    })
}

/// `entropy_resamples` on the whole sample, which is a single "resample": its work runs in
/// parallel inside it instead (the finest ids counted in blocks, each table's sums and entropy
/// apart). The counts, and so the entropies, are exactly those of the resample path.
fn sample_entropies(n_tables: usize, finest: &Finest<'_>, ctl: &Ctl) -> Vec<(f64, usize)> {
    let ids = &finest.ids[..];
    let n = ids.len();
    let add = |mut a: Vec<u32>, b: Vec<u32>| {
        a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
        a
    };
    ctl.install(|| {
        let counts = ids
            .par_chunks(1 << 15)
            .fold(
                || vec![0u32; finest.n],
                |mut c, chunk| {
                    chunk.iter().for_each(|&id| c[id as usize] += 1);
                    c
                },
            )
            .reduce(|| vec![0u32; finest.n], add);
        let (own, others): ((f64, usize), Vec<(usize, (f64, usize))>) = rayon::join(
            || entropy_and_distinct(&counts, n),
            || {
                finest
                    .coarser
                    .par_iter()
                    .map(|(t, n_t, to_t)| {
                        let mut counts_t = vec![0u32; *n_t];
                        counts.iter().zip(to_t).for_each(|(&c, &id)| counts_t[id as usize] += c);
                        (*t, take_entropy(&mut counts_t, n))
                    })
                    .collect()
            },
        );
        let mut out = vec![(0.0, 0); n_tables];
        for (t, e) in others {
            out[t] = e;
        }
        if let Some(t) = finest.table {
            out[t] = own;
        }
        out
    })
}

/// A table of ids whose id determines every given table's id, row by row: the given table with the
/// most ids when it does so (the pairs' ids determine x's and y's), else the ids of the rows'
/// combinations of ids. A resample's counts of every other table are sums of its counts, so
/// counting a resample bumps one counter per drawn row whatever the number of tables.
struct Finest<'a> {
    ids: std::borrow::Cow<'a, [u32]>,
    n: usize,
    /// Which given table it is, if one.
    table: Option<usize>,
    /// The other tables: (index, number of ids, map from the finest ids to theirs).
    coarser: Vec<(usize, usize, Vec<u32>)>,
}

impl<'a> Finest<'a> {
    fn of(tables: &[(&'a [u32], usize)], ctl: &Ctl) -> Result<Self> {
        let largest = (0..tables.len())
            .max_by_key(|&t| (tables[t].1, std::cmp::Reverse(t)))
            .unwrap_or(0);
        let (ids, n) = tables[largest];
        if let Some(coarser) = Self::maps(tables, ids, n, Some(largest), ctl) {
            return Ok(Finest {
                ids: ids.into(),
                n,
                table: Some(largest),
                coarser,
            });
        }
        let width = tables.len();
        let (joint, n_joint) = factorize_rows(
            ids.len(),
            width,
            |i, buf| buf.iter_mut().zip(tables).for_each(|(o, (t, _))| *o = t[i] as u64),
            ctl,
        )?;
        let coarser = Self::maps(tables, &joint, n_joint, None, ctl)
            .ok_or_else(|| CoreError::Internal("the combined ids do not determine a table's ids".into()))?;
        Ok(Finest {
            ids: joint.into(),
            n: n_joint,
            table: None,
            coarser,
        })
    }

    /// For each table but `skip`: (index, number of ids, map from `ids` to its ids), or None when
    /// some id of `ids` meets two ids of a table.
    /// The tables' maps are built in parallel.
    fn maps(
        tables: &[(&[u32], usize)],
        ids: &[u32],
        n: usize,
        skip: Option<usize>,
        ctl: &Ctl,
    ) -> Option<Vec<(usize, usize, Vec<u32>)>> {
        let map = |t: usize| -> Option<(usize, usize, Vec<u32>)> {
            let (ids_t, n_t) = tables[t];
            let mut to_t = vec![u32::MAX; n];
            for (&f, &id) in ids.iter().zip(ids_t) {
                let slot = &mut to_t[f as usize];
                if *slot == u32::MAX {
                    *slot = id;
                } else if *slot != id {
                    return None;
                }
            }
            // Ids that no row has (a grid of pairs has some) count nothing; any target will do.
            to_t.iter_mut().filter(|s| **s == u32::MAX).for_each(|s| *s = 0);
            Some((t, n_t, to_t))
        };
        let others: Vec<usize> = (0..tables.len()).filter(|&t| Some(t) != skip).collect();
        ctl.install(|| others.into_par_iter().map(map).collect())
    }
}

/// The three plug-in entropies H(A), H(B), H(A,B) (nats) with their distinct counts, for the whole
/// sample (`draws_b` None: one row) or with b's rows drawn and a's kept (a permutation test): the
/// pairs then change, and their counts are formed by sorting.
pub fn mutual_info_resamples(
    a: (&[u32], usize),
    b: (&[u32], usize),
    draws_b: Option<(&Draws, Range<usize>)>,
    ctl: &Ctl,
) -> Result<Vec<[(f64, usize); 3]>> {
    let (ids_a, n_a) = a;
    let (ids_b, n_b) = b;
    if ids_a.len() != ids_b.len() {
        return Err(CoreError::invalid(
            "y",
            format!("has {} samples but x has {}", ids_b.len(), ids_a.len()),
        ));
    }
    check_ids("x", ids_a, n_a)?;
    check_ids("y", ids_b, n_b)?;
    let n = ids_a.len();
    let count = match &draws_b {
        Some((d, r)) => {
            check_picked(d, &[false, true], n)?;
            r.len()
        }
        None => 1,
    };
    let entropy = |ids: &mut dyn Iterator<Item = u32>, counts: &mut [u32]| {
        ids.for_each(|id| counts[id as usize] += 1);
        take_entropy(counts, n)
    };
    let ha = entropy(&mut ids_a.iter().copied(), &mut vec![0u32; n_a]);
    map_resamples_with(
        count,
        ctl,
        || vec![0u32; n_b],
        |counts, r, _| match &draws_b {
            Some((d, range)) => {
                let mut rows = Vec::with_capacity(n);
                d.rows_into(range.start + r, &mut rows);
                let hb = entropy(&mut rows.iter().map(|&i| ids_b[i as usize]), counts);
                Ok([ha, hb, joint_entropy_of(ids_a, ids_b, n_b, |i| rows[i] as usize, n)])
            }
            None => Ok([
                ha,
                entropy(&mut ids_b.iter().copied(), counts),
                joint_entropy_of(ids_a, ids_b, n_b, |i| i, n),
            ]),
        },
    )
}

fn check_ids(arg: &'static str, ids: &[u32], n_ids: usize) -> Result<()> {
    if ids.is_empty() {
        return Err(CoreError::invalid(arg, "empty input"));
    }
    match ids.iter().find(|&&id| id as usize >= n_ids) {
        Some(id) => Err(CoreError::invalid(
            arg,
            format!("id {id} is not below the number of distinct values {n_ids}"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctl() -> Ctl<'static> {
        Ctl::uninterruptible().unwrap()
    }

    #[test]
    fn factorize_matches_a_sorted_reference() {
        // Rows of small integers with many repeats; compare with a BTreeMap reference.
        let (n, d) = (5000, 3);
        let mut state = 12345u64;
        let values: Vec<i64> = (0..n * d)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) % 4) as i64
            })
            .collect();
        let mut seen = std::collections::BTreeMap::new();
        let mut expect = Vec::new();
        for i in 0..n {
            let key = values[i * d..(i + 1) * d].to_vec();
            let next = seen.len() as u32;
            expect.push(*seen.entry(key).or_insert(next));
        }
        // Small codes (a direct table), negative ones, and codes spread too wide for a table
        // (hashed): the same ids.
        for (scale, shift) in [(1i64, 0i64), (1, -7), (1 << 40, 3), (-(1 << 61), 0)] {
            let values: Vec<i64> = values.iter().map(|&v| v * scale + shift).collect();
            let (ids, m) = factorize_integers(&values, n, d, &ctl()).unwrap();
            assert_eq!(m, seen.len(), "scale={scale} shift={shift}");
            assert_eq!(ids, expect, "scale={scale} shift={shift}");
        }
        // Extreme values: the range of a column does not fit 64 bits.
        let (ids, m) = factorize_integers(&[i64::MIN, i64::MAX, i64::MIN, 0], 4, 1, &ctl()).unwrap();
        assert_eq!((ids, m), (vec![0, 1, 0, 2], 3));
    }

    #[test]
    fn colliding_hashes_never_merge_patterns() {
        // A code function whose rows all hash alike would be hard to build; instead check that
        // renumbering after a forced split keeps first-appearance order.
        let mut ids = vec![2, 0, 2, 1, 0];
        renumber_by_first_appearance(&mut ids, 3);
        assert_eq!(ids, vec![0, 1, 0, 2, 1]);
    }

    #[test]
    fn floor_without_libm() {
        for q in [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            2.999,
            -2.999,
            1e18,
            -1e18,
            4.5e15 + 0.5,
            -(4.5e15 + 0.5),
        ] {
            assert_eq!(floor_to_i64(q), q.floor() as i64, "{q}");
        }
        assert_eq!(floor_to_i64(1e300), i64::MAX);
        assert_eq!(floor_to_i64(-1e300), i64::MIN);
    }

    #[test]
    fn uniform_binning_puts_the_maximum_in_the_last_bin() {
        let data = [0.0f64, 0.5, 1.0, 0.25];
        let x = Points::new("x", &data, 4, 1).unwrap();
        let b = Binner::fit(
            &x,
            &Binning::Uniform {
                n_bins: 2,
                per_unit: false,
            },
            &ctl(),
        )
        .unwrap();
        let codes: Vec<i64> = data.iter().map(|&v| b.code(0, v)).collect();
        assert_eq!(codes, vec![0, 1, 1, 0]);
    }

    #[test]
    fn quantile_edges_follow_numpy() {
        // numpy.quantile([1, 2, 3, 4, 10], [0.25, 0.5, 0.75]) == [2, 3, 4]
        let sorted = [1.0, 2.0, 3.0, 4.0, 10.0];
        let e: Vec<f64> = [0.25, 0.5, 0.75]
            .iter()
            .map(|&q| numpy_linear_quantile(&sorted, q))
            .collect();
        assert_eq!(e, vec![2.0, 3.0, 4.0]);
        // numpy.quantile([0, 1], 1/3) == 0.3333333333333333
        assert_eq!(numpy_linear_quantile(&[0.0, 1.0], 1.0 / 3.0), 1.0 / 3.0);
    }

    #[test]
    fn entropies_of_resamples() {
        use crate::info::resample::Scheme;
        let ids = [0u32, 0, 1, 1];
        let full = entropy_resamples(&[(&ids, 2)], None, &ctl()).unwrap();
        assert!((full[0][0].0 - 2f64.ln()).abs() < 1e-15 && full[0][0].1 == 2);
        let mi = mutual_info_resamples((&ids, 2), (&ids, 2), None, &ctl()).unwrap();
        let [ha, hb, hab] = mi[0];
        assert!((ha.0 + hb.0 - hab.0 - 2f64.ln()).abs() < 1e-15);

        // Resamples: the fused counts equal counting the stored rows, table by table, and the
        // joint counts of the pair ids equal the sorted pairs.
        let n = 500;
        let a: Vec<u32> = (0..n).map(|i| (i * i % 13) as u32).collect();
        let b: Vec<u32> = (0..n).map(|i| (i % 7) as u32).collect();
        let (ab, n_ab) = factorize_pairs((&a, 13), (&b, 7), &ctl()).unwrap();
        assert_eq!(n_ab, 13 * 7, "few possible pairs: a·n_b + b");
        // Many possible pairs: factorised, ids in order of first appearance.
        let wide: Vec<u32> = (0..n).map(|i| (i % 61) as u32).collect();
        let (f, n_f) = factorize_pairs((&a, 13), (&wide, 61), &ctl()).unwrap();
        let mut first_seen = std::collections::HashMap::new();
        let want: Vec<u32> = (0..n)
            .map(|i| {
                let next = first_seen.len() as u32;
                *first_seen.entry((a[i], wide[i])).or_insert(next)
            })
            .collect();
        assert_eq!((f, n_f), (want, first_seen.len()));
        for scheme in [Scheme::Bootstrap, Scheme::HalfSample] {
            let draws = Draws::new(scheme, n, 4).unwrap();
            let got = entropy_resamples(&[(&a, 13), (&b, 7), (&ab, n_ab)], Some((&draws, 3..9)), &ctl()).unwrap();
            let mut rows = Vec::new();
            for (r, row) in got.iter().enumerate() {
                draws.rows_into(3 + r, &mut rows);
                let m = rows.len();
                let ra: Vec<u32> = rows.iter().map(|&i| a[i as usize]).collect();
                let rb: Vec<u32> = rows.iter().map(|&i| b[i as usize]).collect();
                let h = |ids: &[u32], n_ids: usize| entropy_resamples(&[(ids, n_ids)], None, &ctl()).unwrap()[0][0];
                assert_eq!(row[0], h(&ra, 13));
                assert_eq!(row[1], h(&rb, 7));
                let joint = joint_entropy_of(&ra, &rb, 7, |i| i, m);
                assert!((row[2].0 - joint.0).abs() < 1e-13 && row[2].1 == joint.1);
            }
        }
        // Permuting b alone.
        let perms = Draws::new(Scheme::Permutation, n, 4).unwrap();
        let got = mutual_info_resamples((&a, 13), (&b, 7), Some((&perms, 0..2)), &ctl()).unwrap();
        let mut rows = Vec::new();
        perms.rows_into(1, &mut rows);
        let pb: Vec<u32> = rows.iter().map(|&i| b[i as usize]).collect();
        assert_eq!(
            got[1],
            mutual_info_resamples((&a, 13), (&pb, 7), None, &ctl()).unwrap()[0]
        );
    }

    #[test]
    fn factorize_over_several_blocks_keeps_first_appearance_order() {
        // Enough rows for several numbering blocks, with patterns that first appear in later
        // blocks, and a single-row table; compare with a BTreeMap reference.
        for (n, modulus) in [(70_000usize, 50_000u64), (100_000, 7), (1, 3)] {
            let mut state = n as u64;
            let values: Vec<i64> = (0..n)
                .map(|i| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) % (modulus + i as u64 / 1000)) as i64
                })
                .collect();
            let mut seen = std::collections::BTreeMap::new();
            let expect: Vec<u32> = values
                .iter()
                .map(|v| {
                    let next = seen.len() as u32;
                    *seen.entry(*v).or_insert(next)
                })
                .collect();
            // As they are (a direct table of keys) and spread out (hashed), same ids.
            for spread in [1i64, -1_000_003_000_000] {
                let values: Vec<i64> = values.iter().map(|&v| v * spread).collect();
                let (ids, m) = factorize_integers(&values, n, 1, &ctl()).unwrap();
                assert_eq!((m, &ids), (seen.len(), &expect), "n={n} spread={spread}");
            }
        }
    }

    #[test]
    fn entropies_of_tables_that_refine_none_another() {
        // Neither table's ids determine the other's: the resamples are counted through the ids of
        // the rows' combinations, and must equal counting each table on its own.
        use crate::info::resample::Scheme;
        let n = 300;
        let a: Vec<u32> = (0..n).map(|i| (i % 5) as u32).collect();
        let b: Vec<u32> = (0..n).map(|i| (i / 20) as u32 % 3).collect();
        let c: Vec<u32> = (0..n).map(|i| (i % 5) as u32).collect(); // as many ids as a, same table
        let draws = Draws::new(Scheme::Bootstrap, n, 9).unwrap();
        let got = entropy_resamples(&[(&a, 5), (&b, 3), (&c, 5)], Some((&draws, 0..4)), &ctl()).unwrap();
        let mut rows = Vec::new();
        for (r, row) in got.iter().enumerate() {
            draws.rows_into(r, &mut rows);
            for (t, (ids, n_ids)) in [(&a, 5), (&b, 3), (&c, 5)].into_iter().enumerate() {
                let drawn: Vec<u32> = rows.iter().map(|&i| ids[i as usize]).collect();
                let mut counts = vec![0u32; n_ids];
                drawn.iter().for_each(|&id| counts[id as usize] += 1);
                let want = (
                    plugin_entropy(counts.iter().copied(), n),
                    counts.iter().filter(|&&c| c > 0).count(),
                );
                assert_eq!(row[t], want, "resample {r} table {t}");
            }
        }
        let whole = entropy_resamples(&[(&a, 5), (&b, 3)], None, &ctl()).unwrap();
        assert!((whole[0][0].0 - 5f64.ln()).abs() < 1e-15 && (whole[0][1].0 - 3f64.ln()).abs() < 1e-15);
    }

    /// The whole sample's entropies (counted in parallel blocks, tables apart) equal counting
    /// each table on its own, exactly: with a table that refines the others (pairs) and without
    /// one, over several counting blocks.
    #[test]
    fn sample_entropies_equal_counting_each_table() {
        let n = 100_003;
        let a: Vec<u32> = (0..n).map(|i| ((i * 7919) % 97) as u32).collect();
        let b: Vec<u32> = (0..n).map(|i| ((i / 13) % 5) as u32).collect();
        let (ab, n_ab) = factorize_pairs((&a, 97), (&b, 5), &ctl()).unwrap();
        let alone = |ids: &[u32], n_ids: usize| {
            let mut counts = vec![0u32; n_ids];
            ids.iter().for_each(|&id| counts[id as usize] += 1);
            (
                plugin_entropy(counts.iter().copied(), n),
                counts.iter().filter(|&&c| c > 0).count(),
            )
        };
        let want = [alone(&a, 97), alone(&b, 5), alone(&ab, n_ab)];
        assert_eq!(
            entropy_resamples(&[(&a, 97), (&b, 5), (&ab, n_ab)], None, &ctl()).unwrap()[0],
            want.to_vec()
        );
        assert_eq!(
            entropy_resamples(&[(&a, 97), (&b, 5)], None, &ctl()).unwrap()[0],
            want[..2].to_vec()
        );
        assert_eq!(
            entropy_resamples(&[(&b, 5)], None, &ctl()).unwrap()[0],
            want[1..2].to_vec()
        );
    }

    /// Where a binned bootstrap spends its time, N = 10⁵, 200 resamples (run by hand:
    /// `cargo test --release -- --ignored --nocapture resample_timings`).
    #[test]
    #[ignore]
    fn resample_timings() {
        use crate::info::resample::Scheme;
        use std::time::Instant;
        let ctl = ctl();
        let n = 100_000;
        let mut state = 3u64;
        let mut next = |k: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % k) as u32
        };
        let a: Vec<u32> = (0..n).map(|_| next(30_000)).collect();
        let b: Vec<u32> = (0..n).map(|_| next(2)).collect();
        let (a, n_a) = factorize_integers(&a.iter().map(|&v| v as i64).collect::<Vec<_>>(), n, 1, &ctl).unwrap();
        let (ab, n_ab) = factorize_pairs((&a, n_a), (&b, 2), &ctl).unwrap();
        let draws = Draws::new(Scheme::Bootstrap, n, 1).unwrap();
        let t = Instant::now();
        let mut sink = 0usize;
        for r in 0..200 {
            draws.for_each_row(r, |i| sink ^= i);
        }
        eprintln!("draw 200 x 1e5 bootstrap rows (1 thread): {:?} ({sink})", t.elapsed());
        let t = Instant::now();
        let mut rows = Vec::new();
        for r in 0..200 {
            draws.rows_into(r, &mut rows);
        }
        eprintln!("draw and store them (1 thread): {:?}", t.elapsed());
        let t = Instant::now();
        entropy_resamples(&[(&a, n_a)], Some((&draws, 0..200)), &ctl).unwrap();
        eprintln!(
            "entropy of 1 table ({n_a} ids): {:?} on {} threads",
            t.elapsed(),
            ctl.threads()
        );
        let t = Instant::now();
        entropy_resamples(&[(&a, n_a), (&b, 2), (&ab, n_ab)], Some((&draws, 0..200)), &ctl).unwrap();
        eprintln!("entropies of x, y and pairs ({n_ab} ids): {:?}", t.elapsed());
        let before = crate::parallel::get_num_threads();
        for threads in [1, 2] {
            crate::parallel::set_num_threads(threads).unwrap();
            let ctl = Ctl::uninterruptible().unwrap();
            let best = (0..15)
                .map(|_| {
                    let t = Instant::now();
                    entropy_resamples(&[(&a, n_a), (&b, 2), (&ab, n_ab)], Some((&draws, 0..200)), &ctl).unwrap();
                    t.elapsed()
                })
                .min()
                .unwrap();
            eprintln!("  best of 15 on {threads} thread(s): {best:?}");
        }
        crate::parallel::set_num_threads(before).unwrap();
        let t = Instant::now();
        for r in 0..200 {
            draws.rows_into(r, &mut rows);
            std::hint::black_box(joint_entropy_of(&a, &b, 2, |i| rows[i] as usize, n));
        }
        eprintln!("joint entropy by sorting pairs instead (1 thread): {:?}", t.elapsed());
    }
}
