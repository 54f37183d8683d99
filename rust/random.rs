//! Reproducible random numbers for resampling (docs/spec.md §0.6: the same seed gives the same bits at any
//! thread count).
//!
//! A call takes one 64-bit seed. Stream b (resample b) has its own xoshiro256++ generator
//! (Blackman & Vigna 2021) whose 256-bit state is SplitMix64 outputs 4b + 1 … 4b + 4 of the
//! sequence started at the seed: exactly the states one gets by seeding the generators one after
//! another from a single SplitMix64, but computed for any b directly. Streams therefore never share
//! a state, and what resample b draws depends on (seed, b) alone, not on which thread draws it or
//! in which batch.

/// SplitMix64's golden-ratio increment.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function (Steele, Lea & Flood 2014): a bijection of u64 in which every
/// input bit reaches every output bit.
#[inline]
fn splitmix64_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The xoshiro256++ generator.
#[derive(Clone, Debug)]
pub struct Xoshiro256pp {
    s: [u64; 4],
}

impl Xoshiro256pp {
    /// The generator of stream `stream` under `seed` (see the module documentation). Output k of
    /// SplitMix64 started at `seed` is mix(seed + k·γ); the four state words are consecutive
    /// outputs, and as `mix` is a bijection at most one of them can be zero, so the state is never
    /// the all-zero state xoshiro must avoid.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        let base = seed.wrapping_add(stream.wrapping_mul(4).wrapping_mul(GAMMA));
        let word = |k: u64| splitmix64_mix(base.wrapping_add(k.wrapping_mul(GAMMA)));
        Xoshiro256pp {
            s: [word(1), word(2), word(3), word(4)],
        }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A standard normal number: the ziggurat method of Marsaglia & Tsang (2000), "The ziggurat
    /// method for generating random variables", J. Stat. Softw. 5(8), with 256 layers, the layer
    /// and the uniform taken from independent bits of one 64-bit word as Doornik (2005) advises.
    ///
    /// The density's right half, f(x) = exp(−x²/2), is covered by 256 pieces of equal area v:
    /// layer i ≥ 1 is the rectangle [0, x_i] × [f(x_i), f(x_{i+1})], and layer 0 is the rectangle
    /// [0, r] × [0, f(r)] with the tail beyond r (as one box of width x_0 = v/f(r)). A draw picks a
    /// layer i and u uniform in [−1, 1), and returns u·x_i at once when |u·x_i| < x_{i+1} (the point
    /// lies under the density in every case; about 99 % of draws). Otherwise, in layer 0 it draws
    /// from the tail (Marsaglia 1964: x = −ln U₁/r, y = −ln U₂ until 2y > x², giving r + x), and in
    /// the others it accepts u·x_i when a uniform height between f(x_i) and f(x_{i+1}) falls under
    /// f(u·x_i), else draws again. Every accepted value has exactly the normal density.
    #[inline]
    pub fn normal(&mut self) -> f64 {
        let t = ziggurat();
        loop {
            let w = self.next_u64();
            let i = (w & 0xFF) as usize;
            // 53 bits above the layer's 8: u in [−1, 1) in steps of 2⁻⁵².
            let u = (w >> 11) as f64 * (1.0 / (1u64 << 52) as f64) - 1.0;
            let x = u * t.x[i];
            if x.abs() < t.x[i + 1] {
                return x;
            }
            if i == 0 {
                return self.normal_tail(ZIGGURAT_R).copysign(u);
            }
            let height = t.f[i] + self.unit_open() * (t.f[i + 1] - t.f[i]);
            if height < (-0.5 * x * x).exp() {
                return x;
            }
        }
    }

    /// A uniform number in (0, 1] from 53 random bits.
    #[inline]
    fn unit_open(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// The standard normal conditioned on exceeding r > 0 (Marsaglia 1964).
    #[cold]
    fn normal_tail(&mut self, r: f64) -> f64 {
        loop {
            let x = -self.unit_open().ln() / r;
            let y = -self.unit_open().ln();
            if 2.0 * y > x * x {
                return r + x;
            }
        }
    }

    /// A uniform integer in [0, n), n ≥ 1, without modulo bias (see [`bounded`]).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        bounded::<64>(n, || self.next_u64())
    }

    /// Shuffles `v` in place, every order equally likely (Fisher–Yates, from the back).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }

    /// `m` distinct integers from [0, n), ascending, every m-subset equally likely. Floyd's
    /// algorithm (Bentley & Floyd 1987): for j = n − m, …, n − 1 draw t uniform in [0, j] and take
    /// t, or j when t is already taken; by induction every subset of size j + 1 − (n − m) of
    /// [0, j] is then equally likely. Taken integers are marked in a bit set, so m draws and one
    /// scan of n/64 words give them in order (no sort).
    pub fn sorted_sample(&mut self, n: usize, m: usize, out: &mut Vec<u32>) {
        assert!(m <= n && n <= u32::MAX as usize + 1, "sample of {m} from {n}");
        let mut taken = vec![0u64; n.div_ceil(64)];
        for j in n - m..n {
            let t = self.below(j as u64 + 1) as usize;
            let pick = if taken[t / 64] >> (t % 64) & 1 == 1 { j } else { t };
            taken[pick / 64] |= 1 << (pick % 64);
        }
        out.clear();
        out.reserve(m);
        for (w, &word) in taken.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                out.push((w * 64) as u32 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
    }
}

/// A uniform integer in [0, n) from uniform `BITS`-bit words (Lemire 2019, "Fast random integer
/// generation in an interval"). The high part of x·n, for x uniform over 2^BITS values, takes each
/// value j < n for either ⌊2^BITS/n⌋ or ⌈2^BITS/n⌉ values of x; rejecting the x whose low part lies
/// below 2^BITS mod n removes exactly one x from each j that has the extra one, so every j keeps
/// exactly ⌊2^BITS/n⌋ and the result carries no modulo bias. The division computing 2^BITS mod n
/// runs only when the low part is below n (probability n/2^BITS). Generic in `BITS` so that the
/// tests can check the counting argument exhaustively on 8-bit words; the generator uses 64.
#[inline]
pub fn bounded<const BITS: u32>(n: u64, mut word: impl FnMut() -> u64) -> u64 {
    debug_assert!(n >= 1 && (BITS == 64 || n <= 1 << BITS));
    let mask: u128 = (1u128 << BITS) - 1;
    let mut product = word() as u128 * n as u128;
    if ((product & mask) as u64) < n {
        let threshold = (((1u128 << BITS) - n as u128) % n as u128) as u64; // 2^BITS mod n
        while ((product & mask) as u64) < threshold {
            product = word() as u128 * n as u128;
        }
    }
    (product >> BITS) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pearson's χ² statistic of `counts` against equal expected counts.
    fn chi_square(counts: &[u64]) -> f64 {
        let total: u64 = counts.iter().sum();
        let expect = total as f64 / counts.len() as f64;
        counts.iter().map(|&c| (c as f64 - expect).powi(2) / expect).sum()
    }

    /// A χ² bound that a correct generator exceeds with probability about 1e-6 (Wilson–Hilferty).
    pub(super) fn chi_square_bound(dof: usize) -> f64 {
        let k = dof as f64;
        let z = 4.75; // one-sided normal quantile for 1e-6
        k * (1.0 - 2.0 / (9.0 * k) + z * (2.0 / (9.0 * k)).sqrt()).powi(3)
    }

    #[test]
    fn xoshiro_matches_the_reference_implementation() {
        // State {1, 2, 3, 4}: first outputs of the reference C code (prng.di.unimi.it/xoshiro256plusplus.c).
        let mut g = Xoshiro256pp { s: [1, 2, 3, 4] };
        let got: Vec<u64> = (0..4).map(|_| g.next_u64()).collect();
        assert_eq!(got, vec![41943041, 58720359, 3588806011781223, 3591011842654386]);
        // SplitMix64 from seed 0: first output 0xE220A8397B1DCDAF (reference splitmix64.c).
        assert_eq!(splitmix64_mix(GAMMA), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn streams_are_the_consecutive_seedings_of_one_splitmix64() {
        let seed = 0x1234_5678_9ABC_DEF0u64;
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_add(GAMMA);
            splitmix64_mix(state)
        };
        for b in 0..5 {
            let want = [next(), next(), next(), next()];
            assert_eq!(Xoshiro256pp::for_stream(seed, b).s, want, "stream {b}");
        }
        assert_ne!(
            Xoshiro256pp::for_stream(seed, 0).next_u64(),
            Xoshiro256pp::for_stream(seed + 1, 0).next_u64()
        );
    }

    #[test]
    fn bounded_has_no_modulo_bias_exhaustively_on_8_bit_words() {
        // Every 8-bit word once: each result j < n must come from exactly ⌊256/n⌋ accepted words,
        // and exactly 256 mod n words must be rejected.
        for n in 1..=256u64 {
            let mut hits = vec![0u64; n as usize];
            let mut rejected = 0;
            for x in 0..256u64 {
                let mut calls = 0;
                let mut fallback = 0..;
                let j = bounded::<8>(n, || {
                    calls += 1;
                    if calls == 1 {
                        x
                    } else {
                        fallback.next().unwrap() % 256
                    }
                });
                assert!(j < n);
                if calls == 1 {
                    hits[j as usize] += 1;
                } else {
                    rejected += 1;
                }
            }
            assert_eq!(rejected, 256 % n, "n = {n}");
            assert!(hits.iter().all(|&h| h == 256 / n), "n = {n}: {hits:?}");
        }
    }

    #[test]
    fn below_is_uniform() {
        let mut g = Xoshiro256pp::for_stream(42, 7);
        for n in [1u64, 2, 3, 7, 1000, (1 << 32) - 5] {
            let cells = n.min(1000) as usize;
            let mut counts = vec![0u64; cells];
            for _ in 0..200_000 {
                let v = g.below(n);
                assert!(v < n);
                // Large n: equal-width groups of values (the last one a little wider).
                counts[(v as u128 * cells as u128 / n as u128) as usize] += 1;
            }
            if cells > 1 {
                assert!(chi_square(&counts) < chi_square_bound(cells - 1), "n = {n}");
            }
        }
    }

    #[test]
    fn shuffle_gives_every_order_equally_often() {
        let mut g = Xoshiro256pp::for_stream(3, 0);
        let mut counts = [0u64; 24];
        for _ in 0..120_000 {
            let mut v = [0u8, 1, 2, 3];
            g.shuffle(&mut v);
            // Lehmer code of the order.
            let mut code = 0;
            for i in 0..4 {
                code = code * (4 - i) + v[i + 1..].iter().filter(|&&w| w < v[i]).count();
            }
            counts[code] += 1;
        }
        assert!(chi_square(&counts) < chi_square_bound(23));
    }

    #[test]
    fn sorted_samples_are_distinct_sorted_and_uniform_subsets() {
        let mut g = Xoshiro256pp::for_stream(11, 2);
        let mut out = Vec::new();
        // Every 2-subset of 0..6 equally often.
        let mut counts = [0u64; 36];
        for _ in 0..150_000 {
            g.sorted_sample(6, 2, &mut out);
            assert!(out.len() == 2 && out[0] < out[1]);
            counts[out[0] as usize * 6 + out[1] as usize] += 1;
        }
        let subsets: Vec<u64> = (0..6)
            .flat_map(|a| (a + 1..6).map(move |b| (a, b)))
            .map(|(a, b)| counts[a * 6 + b])
            .collect();
        assert_eq!(subsets.len(), 15);
        assert!(chi_square(&subsets) < chi_square_bound(14));
        // Larger samples: strictly ascending (so distinct), right size, in range, and each index
        // taken with probability m/n.
        let (n, m) = (1001, 500);
        let mut taken = vec![0u64; n];
        for _ in 0..2000 {
            g.sorted_sample(n, m, &mut out);
            assert_eq!(out.len(), m);
            assert!(out.windows(2).all(|w| w[0] < w[1]) && (*out.last().unwrap() as usize) < n);
            out.iter().for_each(|&i| taken[i as usize] += 1);
        }
        assert!(chi_square(&taken) < chi_square_bound(n - 1));
        for (n, m) in [(1, 0), (1, 1), (64, 64), (65, 64), (130, 1)] {
            g.sorted_sample(n, m, &mut out);
            assert_eq!(out.len(), m);
            assert!(out.windows(2).all(|w| w[0] < w[1]) && out.iter().all(|&i| (i as usize) < n));
        }
    }
}

/// The ziggurat's base: r, where the tail starts, and v, the area of each layer, for 256 layers
/// (Marsaglia & Tsang 2000, section on the normal distribution).
const ZIGGURAT_R: f64 = 3.654_152_885_361_009; // Marsaglia & Tsang's 3.6541528853610088
const ZIGGURAT_V: f64 = 4.928_673_233_99e-3;

/// The ziggurat's layer edges x_0 … x_256 (x_0 = v/f(r), x_1 = r, f(x_{i+1}) = f(x_i) + v/x_i,
/// x_256 = 0) and the density f(x) = exp(−x²/2) at each (f_0 = 0: below layer 0 lies nothing).
struct Ziggurat {
    x: [f64; 257],
    f: [f64; 257],
}

fn ziggurat() -> &'static Ziggurat {
    static TABLE: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let density = |x: f64| (-0.5 * x * x).exp();
        let mut x = [0.0; 257];
        x[0] = ZIGGURAT_V / density(ZIGGURAT_R);
        x[1] = ZIGGURAT_R;
        for i in 1..255 {
            // f(x_{i+1}) = f(x_i) + v/x_i, inverted.
            x[i + 1] = (-2.0 * (density(x[i]) + ZIGGURAT_V / x[i]).ln()).sqrt();
        }
        x[256] = 0.0;
        let mut f = x.map(density);
        f[0] = 0.0;
        Ziggurat { x, f }
    })
}

#[cfg(test)]
mod ziggurat_tests {
    use super::*;

    /// The ziggurat's top layer closes at the density's peak: f(x_255) + v/x_255 = f(0) = 1, so
    /// the 256 layers of area v cover the density exactly (the constants r and v belong together).
    #[test]
    fn ziggurat_layers_cover_the_density() {
        let t = ziggurat();
        let top = t.f[255] + ZIGGURAT_V / t.x[255];
        assert!((top - 1.0).abs() < 1e-9, "top layer reaches {top}");
        assert!(t.x.windows(2).skip(1).all(|w| w[0] > w[1]), "edges decrease");
        // Layer 0: the base box [0, r] × [0, f(r)] plus the tail, ∫_r^∞ f = √(π/2)·erfc(r/√2).
        let tail = simpson(|x| (-0.5 * x * x).exp(), ZIGGURAT_R, 40.0, 200_000);
        assert!((ZIGGURAT_R * t.f[1] + tail - ZIGGURAT_V).abs() < 1e-11, "base area");
    }

    fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, steps: usize) -> f64 {
        let h = (b - a) / steps as f64;
        let inner: f64 = (1..steps)
            .map(|i| f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 })
            .sum();
        (f(a) + inner + f(b)) * h / 3.0
    }

    /// Normals' histogram against the exact normal probabilities (Pearson χ² at the 1e-6 level),
    /// with bins around the ziggurat's tail start r and far out in the tails: 4·10⁶ draws, in
    /// which the tail beyond r (probability 2.6·10⁻⁴) and the wedges are both hit often.
    #[test]
    fn normals_follow_the_normal_distribution() {
        let n = 4_000_000usize;
        let mut edges = vec![f64::NEG_INFINITY, -4.5, -4.0, -ZIGGURAT_R];
        edges.extend((0..=70).map(|i| -3.5 + 0.1 * i as f64));
        edges.extend([ZIGGURAT_R, 4.0, 4.5, f64::INFINITY]);
        let mut counts = vec![0u64; edges.len() - 1];
        let mut g = Xoshiro256pp::for_stream(11, 0);
        for _ in 0..n {
            let z = g.normal();
            counts[edges.partition_point(|&e| e <= z) - 1] += 1;
        }
        let mass = |a: f64, b: f64| {
            simpson(|x| (-0.5 * x * x).exp(), a.max(-40.0), b.min(40.0), 20_000) / (2.0 * std::f64::consts::PI).sqrt()
        };
        let chi2: f64 = counts
            .iter()
            .zip(edges.windows(2))
            .map(|(&c, w)| {
                let expect = n as f64 * mass(w[0], w[1]);
                (c as f64 - expect).powi(2) / expect
            })
            .sum();
        let bound = super::tests::chi_square_bound(counts.len() - 1);
        assert!(chi2 < bound, "chi² {chi2} over {} bins (bound {bound})", counts.len());
        let beyond_r = counts[0]
            + counts[1]
            + counts[2]
            + counts[counts.len() - 3]
            + counts[counts.len() - 2]
            + counts[counts.len() - 1];
        assert!(beyond_r > 700, "tail draws: {beyond_r}");
    }
}
