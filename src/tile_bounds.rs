//! Upper bounds on the Sinkhorn kernel's entries between two tiles, for the truncated run
//! ([`SinkhornOptions::truncation`](crate::sinkhorn::SinkhornOptions::truncation)).
//!
//! For tiles `I`, `J` of [`TILE`](crate::fused::symmetric::TILE) samples with bounding boxes `[lo_I, hi_I]`, `[lo_J, hi_J]`, the
//! largest offsets `ĝ_I = max_{i ∈ I} g_i` and, for the variable bandwidth, `ρ̂_I = max_{i ∈ I} ρ_i`,
//! every logit of block `(I, J)` is below
//!
//! ```text
//! a_ij = g_i + g_j − s_ij κ_ij  ≤  b_IJ = (ĝ_I + ĝ_J) − ŝ_IJ κ̌_IJ
//! ŝ_IJ = Σ_c w_c gap_c²,   gap_c = max(0, lo_J,c − hi_I,c, lo_I,c − hi_J,c)
//! κ̌_IJ = 1/(4ε)   or   (1/(2ε)) / (ρ̂_I + ρ̂_J)            (the variable bandwidth)
//! ```
//!
//! Each operation is monotone in floating point as well (larger offsets, smaller squared gaps and
//! a smaller `κ` than the pass's operands), so the computed `a_ij` exceed the computed `b_IJ` by
//! at most the rounding of the last place.
//! A block `(I, J)`, `J ≠ I`, is skipped when `b_IJ ≤ ln(τ / M)`; then each row `i` of `I` misses
//! `Σ_{J skipped} Σ_{j ∈ J} P_ij ≤ Σ_{J skipped} |J| e^{b_IJ} ≤ τ` of its sum (`|J| ≤ TILE` samples
//! of `M`), and by the symmetry of `b` the rows of `J` miss the same entries. The diagonal block
//! is always computed. The bound is `O(d)` per block, `O(M² d / TILE²)` per sweep.

use crate::fused::symmetric::{tile_range, tiles};
use crate::real::Real;

/// Values of work space the bounds take: boxes (`2 d` per tile), `ρ̂` and `ĝ` (one each).
pub const fn workspace_len(m: usize, d: usize) -> usize {
    tiles(m).saturating_mul(d.saturating_mul(2).saturating_add(2))
}

/// The bandwidth as the bound reads it.
#[derive(Clone, Copy, Debug)]
pub enum BoundKappa {
    /// `κ = 1/(4ε)` for every pair.
    Uniform,
    /// `κ_ij = (1/(2ε)) / (ρ_i + ρ_j)`.
    Variable,
}

/// Tile bounds over caller work space.
#[derive(Debug)]
pub struct TileBounds<'a, T> {
    m: usize,
    d: usize,
    /// `lo` then `hi` (`d` each) per tile.
    boxes: &'a mut [T],
    /// `ρ̂` per tile (unused for the uniform bandwidth).
    rho_max: &'a mut [T],
    /// `ĝ` per tile, set by [`TileBounds::set_offsets`].
    g_max: &'a mut [T],
    /// `w_c`.
    metric: &'a [T],
    kappa: BoundKappa,
    half_inv_eps: T,
    log_cut: T,
}

impl<'a, T: Real> TileBounds<'a, T> {
    /// Boxes of the `M` sample-major rows `data` (`M × d`), `ρ̂` of `rho`, and the cut `ln(τ/M)`
    /// for `tau > 0`; `work` holds [`workspace_len`]`(M, d)` values, `metric` the `d` weights.
    pub fn new(
        data: &[T],
        d: usize,
        metric: &'a [T],
        eps: T,
        rho: Option<&[T]>,
        tau: T,
        work: &'a mut [T],
    ) -> Self {
        let m = data.len() / d;
        let nt = tiles(m);
        let (boxes, rest) = work.split_at_mut(nt * 2 * d);
        let (rho_max, rest) = rest.split_at_mut(nt);
        let g_max = &mut rest[..nt];
        for t in 0..nt {
            let (lo, hi) = boxes[t * 2 * d..(t + 1) * 2 * d].split_at_mut(d);
            lo.fill(T::INFINITY);
            hi.fill(T::NEG_INFINITY);
            for row in data[tile_range(t, m).start * d..tile_range(t, m).end * d].chunks_exact(d) {
                for c in 0..d {
                    lo[c] = lo[c].min(row[c]);
                    hi[c] = hi[c].max(row[c]);
                }
            }
            rho_max[t] = match rho {
                Some(r) => r[tile_range(t, m)]
                    .iter()
                    .fold(T::NEG_INFINITY, |a, &b| a.max(b)),
                None => T::ONE,
            };
        }
        g_max.fill(T::ZERO);
        TileBounds {
            m,
            d,
            boxes,
            rho_max,
            g_max,
            metric,
            kappa: if rho.is_some() {
                BoundKappa::Variable
            } else {
                BoundKappa::Uniform
            },
            half_inv_eps: T::ONE / (T::from_f64(2.0) * eps),
            log_cut: (tau / T::from_usize(m)).ln(),
        }
    }

    /// Number of tiles.
    pub fn tiles(&self) -> usize {
        tiles(self.m)
    }

    /// `ĝ_I` for the offsets `g` (length `M`) of the next sweep.
    pub fn set_offsets(&mut self, g: &[T]) {
        for (t, gm) in self.g_max.iter_mut().enumerate() {
            *gm = g[tile_range(t, self.m)]
                .iter()
                .fold(T::NEG_INFINITY, |a, &b| a.max(b));
        }
    }

    /// `b_IJ` (see the module docs).
    pub fn bound(&self, ti: usize, tj: usize) -> T {
        let d = self.d;
        let (lo_i, hi_i) = self.boxes[ti * 2 * d..(ti + 1) * 2 * d].split_at(d);
        let (lo_j, hi_j) = self.boxes[tj * 2 * d..(tj + 1) * 2 * d].split_at(d);
        let mut s = T::ZERO;
        for c in 0..d {
            let gap = (lo_j[c] - hi_i[c]).max(lo_i[c] - hi_j[c]).max(T::ZERO);
            s += self.metric[c] * (gap * gap);
        }
        let kappa = match self.kappa {
            BoundKappa::Uniform => self.half_inv_eps / T::from_f64(2.0),
            BoundKappa::Variable => self.half_inv_eps / (self.rho_max[ti] + self.rho_max[tj]),
        };
        (self.g_max[ti] + self.g_max[tj]) - s * kappa
    }

    /// Whether block `(I, J)` is computed: always on the diagonal, elsewhere when
    /// `b_IJ > ln(τ / M)`. Symmetric in `I` and `J`.
    pub fn keep(&self, ti: usize, tj: usize) -> bool {
        ti == tj || self.bound(ti, tj) > self.log_cut
    }

    /// `max_I Σ_{J skipped} |J| e^{b_IJ}`: a bound on the kernel mass any row misses (`≤ τ`), and
    /// the fraction of the `M²` entries the kept blocks hold.
    pub fn neglected_and_kept(&self) -> (f64, f64) {
        let nt = self.tiles();
        let (mut worst, mut kept) = (0.0f64, 0.0f64);
        for ti in 0..nt {
            let mut lost = 0.0f64;
            let rows = tile_range(ti, self.m).len() as f64;
            for tj in 0..nt {
                let cols = tile_range(tj, self.m).len() as f64;
                if self.keep(ti, tj) {
                    kept += rows * cols;
                } else {
                    lost += cols * self.bound(ti, tj).exp().to_f64();
                }
            }
            worst = worst.max(lost);
        }
        (worst, kept / (self.m as f64 * self.m as f64))
    }
}
