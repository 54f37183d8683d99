//! Row factorisation: every row of an n-row table gets the id of its pattern (ids `0..m`, in order
//! of first appearance), for the binned estimators' patterns, integer tables, pairs of ids and
//! TwoNN's duplicate rows.
//!
//! Rows are hashed in parallel, ids are assigned from the hashes, and every row is then checked
//! against its pattern's first row, so a hash collision can never merge two different patterns
//! (`factorize_rows`). Rows of small integers skip the hashing: their mixed-radix key numbers a
//! direct table (`number_small_keys`).

use crate::error::{CoreError, Result};
use crate::parallel::Ctl;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

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
pub(crate) fn small_key_range(ranges: impl IntoIterator<Item = u64>, n: usize) -> Option<u64> {
    ranges
        .into_iter()
        .try_fold(1u64, |acc, r| acc.checked_mul(r))
        .filter(|&r| r <= small_key_limit(n))
}

/// Ids in order of first appearance, like [`factorize_rows`], for rows whose words are small
/// integers: word k of row i (from `fill`) minus `offsets[k]` lies in `0..radices[k]`, so a row's
/// key is a mixed-radix number below Π radices (≤ [`small_key_limit`]) and a direct table numbers
/// the keys — no hashing. Keys are formed in parallel; numbering is one pass of table look-ups.
pub(crate) fn number_small_keys(
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
}
