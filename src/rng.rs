//! Random numbers: a plain-data xoshiro256++ state keyed by `(seed, stream)`, and standard normal
//! deviates computed by our own code on `libm`, so the same seed gives the same numbers on every
//! platform and a copy of the state is a bit-for-bit checkpoint.
//!
//! The state is seeded through `rand_xoshiro`'s SplitMix64 and stepped by the xoshiro256++
//! recurrence written out here, because the sampler must be able to read and write the state as
//! plain data (for checkpoints and the C ABI) and `rand_xoshiro` keeps it private; a test checks
//! that our recurrence gives the same bits as `rand_xoshiro::Xoshiro256PlusPlus`.

use crate::real::Real;
use rand_core::{Infallible, SeedableRng, TryRng};
use rand_xoshiro::SplitMix64;

/// xoshiro256++ state plus one cached normal deviate (Box–Muller makes them in pairs).
///
/// `#[repr(C)]` plain data: 48 bytes that can be copied, stored in a checkpoint and restored.
#[repr(C)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    /// The four xoshiro256++ state words (never all zero).
    pub s: [u64; 4],
    /// Bits of the cached second Box–Muller deviate (an `f64`), valid when `has_spare == 1`.
    pub spare: u64,
    /// `1` when `spare` holds an unused deviate, else `0`.
    pub has_spare: u64,
}

/// The SplitMix64 finaliser: a bijection of `u64` that mixes every input bit into every output bit.
#[inline]
const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// The stream keyed by `(seed, stream)`. A climate model keys streams by global column index so
    /// results do not depend on domain decomposition or thread count.
    ///
    /// The key `mix64(mix64(seed) ^ stream)` is a bijection of `stream` for a fixed `seed`, so two
    /// streams of one seed never share a key; the four state words are the first four outputs of
    /// SplitMix64 started at that key.
    pub fn new(seed: u64, stream: u64) -> Self {
        let key = mix64(mix64(seed) ^ stream);
        let mut sm = SplitMix64::from_seed(key.to_le_bytes());
        let mut s = [0u64; 4];
        for w in &mut s {
            *w = match sm.try_next_u64() {
                Ok(v) => v,
                Err(never) => match never {},
            };
        }
        if s == [0; 4] {
            s[0] = 0x9e37_79b9_7f4a_7c15; // unreachable in practice: SplitMix64 outputs are a bijection
        }
        Rng {
            s,
            spare: 0,
            has_spare: 0,
        }
    }

    /// A state this library can have produced: [`crate::Error::RngUnseeded`] when the four
    /// xoshiro256++ words are all zero (a zeroed struct that was never seeded, which would give
    /// the same deviate forever), [`crate::Error::RngCorrupt`] when `has_spare` is neither 0 nor
    /// 1 or a cached normal is not finite.
    pub fn check(&self) -> Result<(), crate::Error> {
        if self.s == [0; 4] {
            return Err(crate::Error::RngUnseeded);
        }
        let spare_ok = match self.has_spare {
            0 => true,
            1 => f64::from_bits(self.spare).is_finite(),
            _ => false,
        };
        if spare_ok {
            Ok(())
        } else {
            Err(crate::Error::RngCorrupt)
        }
    }

    /// The next 64 random bits (xoshiro256++).
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

    /// A uniform deviate in `(0, 1]` with 53 random bits (never 0, so `ln` is finite).
    #[inline]
    pub fn uniform_open0(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A standard normal deviate (Box–Muller on `libm`: `r = sqrt(−2 ln u₁)`, `θ = 2π u₂`,
    /// deviates `r cos θ` and `r sin θ`, the second cached in the state).
    pub fn normal(&mut self) -> f64 {
        if self.has_spare == 1 {
            self.has_spare = 0;
            return f64::from_bits(self.spare);
        }
        let u1 = self.uniform_open0();
        let u2 = self.uniform_open0();
        let r = libm::sqrt(-2.0 * libm::log(u1));
        let theta = core::f64::consts::TAU * u2;
        self.spare = (r * libm::sin(theta)).to_bits();
        self.has_spare = 1;
        r * libm::cos(theta)
    }
}

/// A source of standard normal deviates for the samplers: the crate's [`Rng`], or replayed normals
/// supplied by the caller (reproducing a reference run, or variance-reduction schemes).
pub trait NormalSource {
    /// Fills `out` with independent standard normal deviates.
    fn fill_normal<T: Real>(&mut self, out: &mut [T]) -> Result<(), crate::Error>;
    /// Whether the source can produce deviates at all; the samplers ask before touching any
    /// state, so that a bad source fails a call without side effects.
    fn check(&self) -> Result<(), crate::Error> {
        Ok(())
    }
}

impl NormalSource for Rng {
    /// [`Rng::check`].
    fn check(&self) -> Result<(), crate::Error> {
        Rng::check(self)
    }
    fn fill_normal<T: Real>(&mut self, out: &mut [T]) -> Result<(), crate::Error> {
        self.check()?;
        for o in out.iter_mut() {
            *o = T::from_f64(self.normal());
        }
        Ok(())
    }
}

/// Normals read in order from a caller slice (`f64`), e.g. the `sampler_xi.csv` of a fixture.
/// Running out is a [`crate::Error::BufferTooSmall`] on [`crate::Arg::Noise`].
#[derive(Debug)]
pub struct ReplayNormals<'a> {
    normals: &'a [f64],
    next: usize,
}

impl<'a> ReplayNormals<'a> {
    /// Replays `normals` from the start.
    pub fn new(normals: &'a [f64]) -> Self {
        ReplayNormals { normals, next: 0 }
    }
    /// How many deviates have been consumed.
    pub fn consumed(&self) -> usize {
        self.next
    }
}

impl NormalSource for ReplayNormals<'_> {
    fn fill_normal<T: Real>(&mut self, out: &mut [T]) -> Result<(), crate::Error> {
        let end = self.next + out.len();
        crate::error::check_room(crate::Arg::Noise, end, self.normals.len())?;
        for (o, &z) in out.iter_mut().zip(&self.normals[self.next..end]) {
            *o = T::from_f64(z);
        }
        self.next = end;
        Ok(())
    }
}

impl TryRng for Rng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.next_u64() >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let w = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recurrence_matches_rand_xoshiro() {
        let mut ours = Rng::new(42, 7);
        let mut bytes = [0u8; 32];
        for (i, w) in ours.s.iter().enumerate() {
            bytes[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
        }
        let mut theirs = rand_xoshiro::Xoshiro256PlusPlus::from_seed(bytes);
        for _ in 0..1000 {
            let a = ours.next_u64();
            let b = match theirs.try_next_u64() {
                Ok(v) => v,
                Err(never) => match never {},
            };
            assert_eq!(a, b);
        }
    }

    #[test]
    fn streams_differ_and_restart_bit_for_bit() {
        let mut a = Rng::new(1, 0);
        let mut b = Rng::new(1, 1);
        let mut c = Rng::new(2, 0);
        let (x, y, z) = (a.next_u64(), b.next_u64(), c.next_u64());
        assert!(x != y && x != z && y != z);
        let mut r = Rng::new(9, 3);
        let _ = r.normal(); // leaves a cached spare in the state
        let mut checkpoint = r.clone();
        let seq: [f64; 5] = core::array::from_fn(|_| r.normal());
        let again: [f64; 5] = core::array::from_fn(|_| checkpoint.normal());
        assert_eq!(seq, again);
    }

    #[test]
    fn normal_moments() {
        let mut r = Rng::new(123, 0);
        let n = 200_000;
        let (mut s1, mut s2, mut s4) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let z = r.normal();
            s1 += z;
            s2 += z * z;
            s4 += z * z * z * z;
        }
        let nf = n as f64;
        // standard errors: mean 1/sqrt(n) = 0.0022, var sqrt(2/n) = 0.0032, 4th moment sqrt(96/n) = 0.022
        assert!((s1 / nf).abs() < 0.011);
        assert!((s2 / nf - 1.0).abs() < 0.016);
        assert!((s4 / nf - 3.0).abs() < 0.11);
    }

    #[test]
    fn replay_runs_out_cleanly() {
        let xs = [0.5, -1.0, 2.0];
        let mut rep = ReplayNormals::new(&xs);
        let mut out = [0.0f32; 2];
        rep.fill_normal(&mut out).unwrap();
        assert_eq!(out, [0.5, -1.0]);
        assert!(rep.fill_normal(&mut out).is_err());
        assert_eq!(rep.consumed(), 2);
    }
}
