//! The fused pass without the tiles that provably carry less than `τ` of the weight.
//!
//! A [`TileIndex`] holds, for every tile `J` of [`TILE`] consecutive samples, the bounding box
//! `[lo_J, hi_J]`, the largest offset `ĝ_J = max_{j ∈ J} g_j` and, for the variable bandwidth,
//! `ρ̂_J = max_{j ∈ J} ρ_j`. At a query `x` every logit of tile `J` is below
//!
//! ```text
//! a_j ≤ b_J = ĝ_J − ŝ_J κ̌_J,   ŝ_J = Σ_c w_c gap_c²,   gap_c = max(0, lo_J,c − x_c, x_c − hi_J,c)
//! κ̌_J = κ   or   (1/(2ε)) / (ρ(x) + ρ̂_J)                  (the variable bandwidth)
//! ```
//!
//! **The pass.** The tile `J*` with the largest `b_J` (the first on ties) is summed alone by the
//! fused pass, `Z₀ = Σ_{j ∈ J*} e^{a_j − G} ≤ S`. A tile `J ≠ J*` is skipped when
//! `b_J − G ≤ ln(τ Z₀ / M)`. The kept tiles are summed in runs of consecutive tiles, in increasing
//! order, each run by the fused pass in its own documented order, and the runs' `S` and `A_t` are
//! added in increasing order. The weight left out is at most `Σ_{J skipped} |J| e^{b_J − G} ≤ τ Z₀
//! ≤ τ S`, so every weighted mean moves by at most `τ` times the spread of its target over the
//! samples. A query whose `Z₀` or `S` is below [`Real::FUSED_MIN_SUM`] (far from every sample) is
//! summed exactly by [`weighted_sums`]. When no tile is skipped the one run is the whole pass: the
//! bits of [`weighted_sums`]. The choices depend on the data and the query only, never on the CPU.
//!
//! Tiles are consecutive samples, so the pass pays off only for samples in a spatial order
//! ([`crate::spatial::tile_order`]) of low dimension at small `ε`: in six dimensions at `ε = 0.1`
//! (the Lorenz-96 closure heads) the boxes of 256 samples are as wide as the data and nothing is
//! skipped.

use super::{weighted_sums, Query, Samples, Sums, MAX_FUSED_DIM};
use crate::fused::symmetric::{tile_range, tiles, TILE};
use crate::kernel::InvBandwidth;
use crate::real::Real;

/// Values a [`TileIndex`] of `m` samples in `d` dimensions takes: `2d + 2` per tile.
pub const fn tile_index_len(m: usize, d: usize) -> usize {
    tiles(m).saturating_mul(d.saturating_mul(2).saturating_add(2))
}

/// Boxes, largest offsets and largest bandwidths of the tiles of one set of samples, and the
/// bound `τ` (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct TileIndex<'a, T> {
    m: usize,
    d: usize,
    /// `lo` then `hi` (`d` each) per tile, then `ĝ`, then `ρ̂` (one each per tile).
    values: &'a [T],
    tau: T,
}

impl<'a, T: Real> TileIndex<'a, T> {
    /// Builds the index of `samples` with offsets `g` (length `M`) and bandwidths `rho` (length
    /// `M`, or `None`) into `storage` ([`tile_index_len`]`(M, d)` values) for the bound `τ > 0`.
    /// Lengths are the caller's to check.
    pub fn build(
        samples: &Samples<'_, T>,
        g: &[T],
        rho: Option<&[T]>,
        tau: T,
        storage: &'a mut [T],
    ) -> Self {
        let (m, d) = (samples.m(), samples.d());
        let nt = tiles(m);
        let (boxes, rest) = storage.split_at_mut(nt * 2 * d);
        let (g_max, rest) = rest.split_at_mut(nt);
        let rho_max = &mut rest[..nt];
        let coord = |j: usize, c: usize| match *samples {
            Samples::Rows { data, d } => data[j * d + c],
            Samples::Columns { data, m } => data[c * m + j],
            Samples::Strided { data, stride, .. } => data[c * stride + j],
        };
        let max = |v: &[T]| v.iter().fold(T::NEG_INFINITY, |a, &b| a.max(b));
        for t in 0..nt {
            let (lo, hi) = boxes[t * 2 * d..(t + 1) * 2 * d].split_at_mut(d);
            for c in 0..d {
                let (mut l, mut h) = (T::INFINITY, T::NEG_INFINITY);
                for j in tile_range(t, m) {
                    let v = coord(j, c);
                    l = l.min(v);
                    h = h.max(v);
                }
                (lo[c], hi[c]) = (l, h);
            }
            g_max[t] = max(&g[tile_range(t, m)]);
            rho_max[t] = rho.map_or(T::ONE, |r| max(&r[tile_range(t, m)]));
        }
        TileIndex::view(m, d, storage, tau)
    }

    /// The index [`TileIndex::build`] wrote into `values` for `m` samples in `d` dimensions.
    pub(crate) fn view(m: usize, d: usize, values: &'a [T], tau: T) -> Self {
        TileIndex { m, d, values, tau }
    }

    /// `τ`.
    pub fn tau(&self) -> T {
        self.tau
    }

    /// `b_J` at the query `x` with metric weights `w` (`None`: Euclidean) and bandwidth `inv_bw`.
    fn bound(&self, t: usize, x: &[T], w: Option<&[T]>, inv_bw: &InvBandwidth<'_, T>) -> T {
        let (d, nt) = (self.d, tiles(self.m));
        let (lo, hi) = self.values[t * 2 * d..(t + 1) * 2 * d].split_at(d);
        let mut s = T::ZERO;
        for c in 0..d {
            let gap = (lo[c] - x[c]).max(x[c] - hi[c]).max(T::ZERO);
            let sq = gap * gap;
            s += match w {
                Some(w) => sq * w[c],
                None => sq,
            };
        }
        let g_max = self.values[nt * 2 * d + t];
        let kappa = match *inv_bw {
            InvBandwidth::Uniform(k) => k,
            InvBandwidth::Variable {
                half_inv_eps,
                rho_x,
                ..
            } => half_inv_eps / (rho_x + self.values[nt * (2 * d + 1) + t]),
        };
        g_max - s * kappa
    }
}

/// The sums of [`weighted_sums`] over the kept tiles (see the module docs), with the shift
/// `G = shift_bound` (an upper bound of the logits, as for [`weighted_sums`]). `index` must be
/// built on the query's own samples, offsets and bandwidths. `None` as for [`weighted_sums`].
pub fn truncated_sums<T: Real>(
    q: &Query<'_, T>,
    index: &TileIndex<'_, T>,
    targets: &[usize],
    shift_bound: T,
) -> Option<Sums<T>> {
    let m = q.samples.m();
    let nt = tiles(m);
    let bound = |t: usize| index.bound(t, q.x, q.metric, &q.inv_bw);
    let mut best = 0;
    let mut best_bound = T::NEG_INFINITY;
    for t in 0..nt {
        let b = bound(t);
        if b > best_bound {
            (best, best_bound) = (t, b);
        }
    }
    let z0 = super::shifted_sums(&sub_query(q, tile_range(best, m)), &[], shift_bound).sum;
    if !(z0 >= T::FUSED_MIN_SUM && z0.is_finite()) {
        return weighted_sums(q, targets, shift_bound);
    }
    let cut = shift_bound + (index.tau * z0 / T::from_usize(m)).ln();
    let keep = |t: usize| t == best || bound(t) > cut;
    let mut total = Sums {
        shift: shift_bound,
        sum: T::ZERO,
        targets: [T::ZERO; MAX_FUSED_DIM],
    };
    let mut t = 0;
    while t < nt {
        if !keep(t) {
            t += 1;
            continue;
        }
        let mut end = t + 1;
        while end < nt && keep(end) {
            end += 1;
        }
        let run = t * TILE..tile_range(end - 1, m).end;
        if run.len() == m {
            // Nothing skipped: the whole pass, with its own fallback.
            return weighted_sums(q, targets, shift_bound);
        }
        let part = super::shifted_sums(&sub_query(q, run), targets, shift_bound);
        total.sum += part.sum;
        for (a, &p) in total.targets.iter_mut().zip(&part.targets) {
            *a += p;
        }
        t = end;
    }
    if total.sum >= T::FUSED_MIN_SUM && total.sum.is_finite() {
        Some(total)
    } else {
        weighted_sums(q, targets, shift_bound)
    }
}

/// The query restricted to the samples `run`.
fn sub_query<'q, T: Real>(q: &Query<'q, T>, run: core::ops::Range<usize>) -> Query<'q, T> {
    let samples = match q.samples {
        Samples::Rows { data, d } => Samples::Rows {
            data: &data[run.start * d..run.end * d],
            d,
        },
        Samples::Columns { data, m } => Samples::Strided {
            data: &data[run.start..],
            stride: m,
            m: run.len(),
            d: data.len() / m.max(1),
        },
        Samples::Strided {
            data, stride, d, ..
        } => Samples::Strided {
            data: &data[run.start..],
            stride,
            m: run.len(),
            d,
        },
    };
    let inv_bw = match q.inv_bw {
        InvBandwidth::Uniform(k) => InvBandwidth::Uniform(k),
        InvBandwidth::Variable {
            half_inv_eps,
            rho_x,
            rho,
        } => InvBandwidth::Variable {
            half_inv_eps,
            rho_x,
            rho: &rho[run.clone()],
        },
    };
    Query {
        samples,
        x: q.x,
        metric: q.metric,
        offsets: &q.offsets[run],
        inv_bw,
    }
}
