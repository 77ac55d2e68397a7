//! Symmetric Sinkhorn scaling of the kernel matrix, in the log domain.
//!
//! Kernel `log T_ij = −|x^(i) − x^(j)|_S^2 / (2ε(ρ_i + ρ_j))` (`ρ ≡ 1`: `−|·|^2/(4ε)`), diagonal
//! `T_ii = 1` included. We seek `v > 0` with `v_i (T v)_i = 1` for all `i`, so that
//! `P = D(v) T D(v)` is symmetric and row-stochastic (not bistochastic/M). With `g = log v`, the
//! row sums of `P` at the current `g` are
//!
//! ```text
//! S_i = v_i (T v)_i = Σ_j exp(g_i + g_j + log T_ij)         (the symmetric pass, below)
//! start      g_i = −½ ln Σ_j T_ij                          (v0 = (T 1)^(−1/2))
//! residual   r   = max_i |S_i − 1|
//! update     g_i ← g_i + f_i,  f_i = −(ω/2) ln S_i         (ω = 1: the reference iteration
//!                                                           g ← ½(g − LSE_j(log T_ij + g_j)))
//! accelerated g ← g + f − Σ_k γ_k (Δg_k + Δf_k)            (Anderson, depth ≤ 4, crate::anderson)
//! ```
//!
//! **Convergence and over-relaxation.** Near the solution the error maps as `I − (ω/2)(I + P)`.
//! For the fixed bandwidth `T` is a Gaussian kernel matrix, so `P` is positive semi-definite with
//! eigenvalues in `[0, 1]`: the reference iteration (`ω = 1`) contracts by `½` per update, and
//! `ω = 4/3` (the default, [`SinkhornOptions::relaxation`]) by `⅓` — the best bound over
//! `[0, 1]` — so about 35 % fewer updates reach the same tolerance. For any eigenvalue in
//! `[−1, 1]` (a variable bandwidth's kernel need not be semi-definite) `ω = 4/3` contracts at least
//! as fast as `ω = 1`. As a guard against the non-linear regime, a residual that grows switches
//! the run to `ω = 1` for its remaining updates. The fixed point is the same for every `ω`.
//!
//! **Anderson acceleration** ([`SinkhornOptions::anderson`], depth 4 by default) mixes the last
//! updates: `γ` minimises `|f − ΔF γ|₂` over the differences of the last steps `f` and scalings
//! `g` (for a linear map, GMRES on the error equation). P's spectrum fills `[0, 1]`, so no single
//! `ω` does better than `⅓`; the mixing needs ~25 % fewer updates again (the fixtures: 17–19
//! instead of 22–25 at `ω = 4/3`, 35–39 at `ω = 1`). `f = 0` exactly at the fixed point, so the
//! solution is the same. A growing residual also restarts the history; a step that leaves the
//! range (a non-finite residual) returns to the best scaling seen and goes on unaccelerated.
//!
//! With the shift `−g_i` the pass sums `P_ij = v_i T_ij v_j` itself, and `S_i ≥ P_ii = v_i²`
//! keeps the sum far from underflow. With `ω = 1`, `g ≤ 0` after the start and every update
//! (`ln S_i ≥ 2 g_i`), so `P_ij ≤ 1`; over-relaxation can lift a `g_i` above 0 by at most
//! `(ω − 1)|g_i|` per update, so `P_ij` stays of order one. Either way the pass falls back to the
//! exact row maximum if its sum would be tiny or not finite. Nothing underflows for small `ε`.
//!
//! **The row sums** come from the symmetric pass (`crate::fused::symmetric`): the kernel is
//! symmetric (`log T_ij = log T_ji`, for the variable bandwidth too), so `P_ij = P_ji` is computed
//! once for both rows, in tiles of 256 samples whose order of accumulation is fixed: half the
//! exponentials of a pass per row. A row whose sum is below [`Real::FUSED_MIN_SUM`] or not finite
//! (only for extreme offsets: `S_i ≥ P_ii = v_i²`) is summed again by the fused pass of that row
//! alone, with the shift `−g_i` and its exact-maximum fallback.
//!
//! Two paths give the same numbers, bit for bit: matrix-free (recomputes the kernel from the
//! data, `O(M d)` work space, `O(M² d / 2)` per iteration, lanes over a coordinate-major copy of
//! the samples) and cached (the caller lends `M²` values to hold `log T`, `O(M²/2)` per
//! iteration). [`sinkhorn_threaded`] (feature `std`) splits each tile row's blocks over threads;
//! the order of accumulation does not depend on that split, so neither does the result.
//!
//! **Truncation** ([`SinkhornOptions::truncation`] `= τ > 0`). At small `ε` almost every entry
//! of the kernel is negligible. Each sweep bounds the entries of every block of two tiles from the
//! tiles' bounding boxes and largest offsets (`crate::tile_bounds`: `b_IJ ≥ a_ij` for all `i ∈ I`,
//! `j ∈ J`) and skips block `(I, J ≠ I)` when `b_IJ ≤ ln(τ / M)`, so that no row loses more than
//! `τ` of its sum; the run solves the scaling of the kernel with those entries set to zero, whose
//! bits do not depend on the threads either (a skipped block adds nothing in the documented order).
//! The report states the bound met ([`SinkhornReport::neglected`]) and the fraction of the
//! kernel computed ([`SinkhornReport::kernel_fraction`]). Tiles are consecutive samples, so only
//! samples in a spatial order ([`crate::spatial::tile_order`]) have small boxes: 2-D bimodal data
//! at `ε = 0.001`, `M = 120 000`, `τ = 1e-10`, compute 20 % of the kernel.

use crate::anderson::{self, Anderson};
use crate::bridge::transpose_samples;
use crate::dataset::Dataset;
use crate::error::{check_len, check_room, Arg, Error};
use crate::fused::symmetric::{self, KernelSource, SymmetricKernel, TILE};
use crate::fused::{self, Samples};
use crate::kernel::{log_kernel_row, metric_weights_into, InvBandwidth};
use crate::real::Real;
use crate::tile_bounds::{self, TileBounds};
use core::ops::Range;

/// Stopping rule and relaxation of the Sinkhorn iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SinkhornOptions<T> {
    /// Tolerance on `max_i |v_i (T v)_i − 1|`; finite and `> 0`.
    pub tol: T,
    /// Cap on the number of updates `g ← g − (ω/2) ln S`; `> 0`.
    pub max_iter: u32,
    /// The over-relaxation `ω ∈ [1, 2)` of the update (`1`: the reference iteration; default
    /// `4/3`, see the module docs). Outside that range the call is [`Error::InvalidTolerance`].
    pub relaxation: T,
    /// Depth of the Anderson acceleration of the update, `0..=`[`MAX_ANDERSON_DEPTH`] (`0`: the
    /// plain relaxed update; default `4`, see the module docs). Larger is
    /// [`Error::InvalidTolerance`].
    pub anderson: u32,
    /// Bound `τ ∈ [0, 1)` on the kernel mass each row may leave out (`0`, the default: every
    /// entry is computed). With `τ > 0` the blocks of two tiles whose entries are provably below
    /// `τ / M` each are skipped (see the module docs); the run then solves the truncated kernel's
    /// scaling, [`SinkhornReport::neglected`] states the bound it met, and the exact kernel's row
    /// sums at the result are within `tol + neglected` of 1. Only spatially ordered samples
    /// ([`crate::spatial::tile_order`]) have tiles small enough to skip. Outside `[0, 1)` the call
    /// is [`Error::InvalidTolerance`].
    pub truncation: T,
}

impl<T: Real> SinkhornOptions<T> {
    /// `tol` and `max_iter` with the default relaxation `ω = 4/3` and Anderson depth `4`.
    pub fn new(tol: T, max_iter: u32) -> Self {
        SinkhornOptions {
            tol,
            max_iter,
            relaxation: T::from_f64(4.0 / 3.0),
            anderson: MAX_ANDERSON_DEPTH as u32,
            truncation: T::ZERO,
        }
    }

    /// The reference iteration of the fixtures: `ω = 1`, no acceleration.
    pub fn reference(tol: T, max_iter: u32) -> Self {
        SinkhornOptions {
            relaxation: T::ONE,
            anderson: 0,
            ..SinkhornOptions::new(tol, max_iter)
        }
    }
}

impl<T: Real> Default for SinkhornOptions<T> {
    /// `tol` = [`Real::DEFAULT_SINKHORN_TOL`] (`1e-12` for `f64`, `2e-5` for `f32`), 1000
    /// iterations, `ω = 4/3`, Anderson depth `4`.
    fn default() -> Self {
        SinkhornOptions::new(T::DEFAULT_SINKHORN_TOL, 1000)
    }
}

/// Which implementation ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkhornPath {
    /// Kernel rows recomputed from the data every iteration.
    MatrixFree,
    /// `log T` held in a caller buffer of `M²` values.
    CachedKernel,
}

/// What a converged Sinkhorn run did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SinkhornReport {
    /// Updates of `g` applied after the start `v0` (the residual is checked before each and once
    /// after the last, so `iterations + 1` products `T v` were computed).
    pub iterations: u32,
    /// Final residual `max_i |v_i (T v)_i − 1|`.
    pub residual: f64,
    /// The path taken.
    pub path: SinkhornPath,
    /// With [`SinkhornOptions::truncation`]: the largest kernel mass a row left out at the result,
    /// `max_I Σ_{J skipped} |J| e^{b_IJ}` (`≤ τ`; `0` for the exact run).
    pub neglected: f64,
    /// The fraction of the `M²` kernel entries in the blocks computed by the last sweep (`1` for
    /// the exact run, which computes each entry of the symmetric kernel once for both rows).
    pub kernel_fraction: f64,
}

/// The largest [`SinkhornOptions::anderson`] depth.
pub const MAX_ANDERSON_DEPTH: usize = anderson::MAX_DEPTH;

/// Work space of [`sinkhorn`] in values of `T`: three rows of `M`, the metric weights (`d`), a
/// coordinate-major copy of the samples (`M d`), the symmetric pass's row parts
/// (`⌈M / 256⌉ · 256`), the Anderson history (`(2·4 + 2) M`) and the truncation's tile bounds
/// (`⌈M / 256⌉ · (2d + 2)`).
pub const fn sinkhorn_workspace_len(m: usize, d: usize) -> usize {
    tile_bounds::workspace_len(m, d)
        .saturating_add(m.saturating_mul(3))
        .saturating_add(d)
        .saturating_add(m.saturating_mul(d))
        .saturating_add(symmetric::tiles(m).saturating_mul(TILE))
        .saturating_add(anderson::workspace_len(MAX_ANDERSON_DEPTH, m))
}

/// Room for the cached-kernel path: `M²` values.
pub const fn kernel_cache_len(m: usize) -> usize {
    m.saturating_mul(m)
}

/// Everything one row's fused pass needs.
struct Rows<'a, T> {
    columns: &'a [T],
    data: &'a [T],
    d: usize,
    m: usize,
    metric: Option<&'a [T]>,
    eps: T,
    rho: Option<&'a [T]>,
}

impl<T: Real> Rows<'_, T> {
    /// `S_i` for row `i` alone, by the fused pass with the shift `−g_i`.
    fn sum(&self, i: usize, g: &[T]) -> T {
        let x = &self.data[i * self.d..(i + 1) * self.d];
        let inv_bw = InvBandwidth::for_eps(self.eps, self.rho.map_or(T::ONE, |r| r[i]), self.rho);
        let q = fused::Query {
            samples: Samples::Columns {
                data: self.columns,
                m: self.m,
            },
            x,
            metric: self.metric,
            offsets: g,
            inv_bw,
        };
        let shift = -g[i];
        row_sum_from(fused::weighted_sums(&q, &[], shift), shift)
    }
}

/// The cached path's stored `log T` (`M × M`).
struct Cached<'a, T> {
    cache: &'a [T],
    m: usize,
}

impl<T: Real> Cached<'_, T> {
    /// `S_i` for row `i` alone from its stored `log T` row, with the same shift and fallback as
    /// [`Rows::sum`].
    fn sum(&self, i: usize, g: &[T]) -> T {
        let row = &self.cache[i * self.m..(i + 1) * self.m];
        let shift = -g[i];
        row_sum_from(fused::logit_row_sums(row, Some(g), shift), shift)
    }
}

/// `S_i` from a pass's sums with shift `−g_i` (or `0` at the start): the sum itself, or, when the
/// pass fell back to the row's exact maximum, `exp(LSE_j a_j + g_i)`; `+∞` when it failed.
fn row_sum_from<T: Real>(sums: Option<fused::Sums<T>>, shift: T) -> T {
    match sums {
        Some(s) if s.shift == shift => s.sum,
        Some(s) => (s.log_sum_exp() - shift).exp(),
        None => T::INFINITY,
    }
}

/// Solves for `g = log v` on `data` with bandwidth `ε` and optional training-point bandwidths
/// `rho` (`ρ_i`, length `M`; `None` is `ρ ≡ 1`), writing `g` into `log_v_out` (length `M`).
///
/// `work` needs [`sinkhorn_workspace_len`]`(M, d)` values. With `cache = Some(buf)` of at least
/// [`kernel_cache_len`]`(M)` values the kernel is computed once and kept there.
///
/// On [`Error::NotConverged`] the best `g` seen (lowest residual) is in `log_v_out`. Errors that
/// concern the arguments are returned before anything is written.
pub fn sinkhorn<T: Real>(
    data: &Dataset<'_, T>,
    eps: T,
    rho: Option<&[T]>,
    opts: SinkhornOptions<T>,
    log_v_out: &mut [T],
    work: &mut [T],
    cache: Option<&mut [T]>,
) -> Result<SinkhornReport, Error> {
    run(
        data,
        eps,
        rho,
        opts,
        log_v_out,
        work,
        cache,
        &|kernel, g, ti, tiles, row_parts, col_sums, keep| {
            kept_runs(tiles, keep, row_parts, col_sums, &mut |run, rp, cs| {
                symmetric::tile_blocks(kernel, g, ti, run, rp, cs)
            })
        },
    )
}

/// [`sinkhorn`] with every tile row's blocks of the symmetric pass split over up to `threads`
/// host threads (contiguous runs of column tiles; the order of accumulation does not depend on the
/// split, so the result is bit-identical to [`sinkhorn`]'s for any thread count).
#[cfg(feature = "std")]
#[allow(clippy::too_many_arguments)]
pub fn sinkhorn_threaded<T: Real>(
    data: &Dataset<'_, T>,
    eps: T,
    rho: Option<&[T]>,
    opts: SinkhornOptions<T>,
    log_v_out: &mut [T],
    work: &mut [T],
    cache: Option<&mut [T]>,
    threads: usize,
) -> Result<SinkhornReport, Error> {
    let threads = threads.max(1);
    run(
        data,
        eps,
        rho,
        opts,
        log_v_out,
        work,
        cache,
        &|kernel, g, ti, tiles, row_parts, col_sums, keep| {
            let blocks = |run: Range<usize>, rp: &mut [T], cs: &mut [T]| {
                kept_runs(run, keep, rp, cs, &mut |r, rp, cs| {
                    symmetric::tile_blocks(kernel, g, ti, r, rp, cs)
                })
            };
            // Contiguous pieces of the column tiles with about the same number of kept blocks.
            let kept = tiles.clone().filter(|&j| keep(j)).count();
            if threads == 1 || kept < 2 {
                return blocks(tiles, row_parts, col_sums);
            }
            let per = kept.div_ceil(threads);
            std::thread::scope(|scope| {
                let (mut rp, mut cs) = (row_parts, col_sums);
                let (mut start, mut done) = (tiles.start, 0);
                while start < tiles.end {
                    let mut end = start;
                    let mut n = 0;
                    while end < tiles.end && n < per {
                        n += usize::from(keep(end));
                        end += 1;
                    }
                    done += n;
                    if done == kept {
                        // Nothing kept beyond: this piece takes the rest, on this thread.
                        end = tiles.end;
                    }
                    let take = (end - start) * TILE;
                    let (rp_now, rp_rest) = rp.split_at_mut(take.min(rp.len()));
                    let (cs_now, cs_rest) = cs.split_at_mut(take.min(cs.len()));
                    if end == tiles.end {
                        // The last piece, on this thread.
                        blocks(start..end, rp_now, cs_now);
                    } else {
                        scope.spawn(move || blocks(start..end, rp_now, cs_now));
                    }
                    (rp, cs, start) = (rp_rest, cs_rest, end);
                }
            });
        },
    )
}

/// Computes the blocks of one run of kept column tiles: `(run, row parts, column sums)`.
type RunBlocks<'s, T> = dyn FnMut(Range<usize>, &mut [T], &mut [T]) + 's;

/// Calls `f(run, row parts, column sums)` for each maximal run of column tiles of `tiles` that
/// `keep` names, with the slices of `row_parts` and `col_sums` (both indexed from `tiles.start`,
/// `TILE` values per tile) that belong to the run; the row parts of a skipped tile are set to
/// `+0` and its column sums are left alone.
fn kept_runs<T: Real>(
    tiles: Range<usize>,
    keep: &Keep<'_>,
    row_parts: &mut [T],
    col_sums: &mut [T],
    f: &mut RunBlocks<'_, T>,
) {
    let first = tiles.start;
    let mut j = first;
    while j < tiles.end {
        let at = (j - first) * TILE;
        if !keep(j) {
            let upto = (at + TILE).min(row_parts.len());
            row_parts[at..upto].fill(T::ZERO);
            j += 1;
            continue;
        }
        let mut end = j + 1;
        while end < tiles.end && keep(end) {
            end += 1;
        }
        let upto = (end - first) * TILE;
        let (nr, nc) = (row_parts.len(), col_sums.len());
        f(
            j..end,
            &mut row_parts[at..upto.min(nr)],
            &mut col_sums[at.min(nc)..upto.min(nc)],
        );
        j = end;
    }
}

/// The single-row pass of one of the two paths (for rows the symmetric pass cannot sum).
enum SingleRows<'a, T> {
    Free(Rows<'a, T>),
    Cached(Cached<'a, T>),
}

/// Everything a sweep reads: the kernel for the symmetric pass and the single-row fallback.
struct Source<'a, T> {
    kernel: SymmetricKernel<'a, T>,
    single: SingleRows<'a, T>,
}

/// Computes the symmetric pass's blocks `(ti, J)`, `J` in a range, for offsets `g`
/// (`kernel, g, ti, J-range, row parts, column sums`; see `fused::symmetric::tile_blocks`), on
/// the calling thread or split over threads.
type Blocks<'s, T> = dyn Fn(&SymmetricKernel<'_, T>, &[T], usize, Range<usize>, &mut [T], &mut [T], &Keep<'_>)
    + Sync
    + 's;

/// Whether the block of the current tile row and column tile `J` is computed.
type Keep<'s> = dyn Fn(usize) -> bool + Sync + 's;

impl<T: Real> Source<'_, T> {
    /// All row sums `S_i` at offsets `g` into `sums`; `parts` is the symmetric pass's work space.
    /// With `bounds` (a truncated run) only the blocks [`TileBounds::keep`] names are computed,
    /// as contiguous runs of column tiles; a skipped block's row parts are `+0` and its column
    /// parts are not added, so the order of accumulation of the kept entries is unchanged.
    fn sweep(
        &self,
        blocks: &Blocks<'_, T>,
        g: &[T],
        sums: &mut [T],
        parts: &mut [T],
        bounds: Option<&mut TileBounds<'_, T>>,
    ) {
        let m = self.kernel.m;
        match bounds {
            None => symmetric::row_sums_with(m, sums, parts, &mut |ti, tj, rp, cs| {
                blocks(&self.kernel, g, ti, tj, rp, cs, &|_| true)
            }),
            Some(b) => {
                b.set_offsets(g);
                let b = &*b;
                symmetric::row_sums_with(m, sums, parts, &mut |ti, tj, rp, cs| {
                    blocks(&self.kernel, g, ti, tj, rp, cs, &|j| b.keep(ti, j))
                })
            }
        }
        for (i, s) in sums.iter_mut().enumerate() {
            if !(*s >= T::FUSED_MIN_SUM && s.is_finite()) {
                *s = match &self.single {
                    SingleRows::Free(r) => r.sum(i, g),
                    SingleRows::Cached(c) => c.sum(i, g),
                };
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run<T: Real>(
    data: &Dataset<'_, T>,
    eps: T,
    rho: Option<&[T]>,
    opts: SinkhornOptions<T>,
    log_v_out: &mut [T],
    work: &mut [T],
    cache: Option<&mut [T]>,
    blocks: &Blocks<'_, T>,
) -> Result<SinkhornReport, Error> {
    let (m, d) = (data.m(), data.d());
    if !(eps.is_finite() && eps > T::ZERO) {
        return Err(Error::InvalidEpsilon);
    }
    if !(opts.tol.is_finite() && opts.tol > T::ZERO) {
        return Err(Error::InvalidTolerance);
    }
    if opts.max_iter == 0 {
        return Err(Error::ZeroIterations);
    }
    if !(opts.relaxation.is_finite()
        && opts.relaxation >= T::ONE
        && opts.relaxation < T::from_f64(2.0))
        || opts.anderson as usize > MAX_ANDERSON_DEPTH
        || !(opts.truncation >= T::ZERO && opts.truncation < T::ONE)
    {
        return Err(Error::InvalidTolerance);
    }
    if d > fused::MAX_FUSED_DIM {
        return Err(Error::Capacity {
            limit: fused::MAX_FUSED_DIM,
            requested: d,
        });
    }
    if let Some(r) = rho {
        check_len(Arg::Bandwidth, m, r.len())?;
        if !r.iter().all(|&v| v.is_finite() && v > T::ZERO) {
            return Err(Error::DegenerateKde);
        }
    }
    check_len(Arg::LogV, m, log_v_out.len())?;
    check_room(Arg::Workspace, sinkhorn_workspace_len(m, d), work.len())?;
    if let Some(c) = &cache {
        check_room(Arg::Workspace, kernel_cache_len(m), c.len())?;
    }

    let (sums, rest) = work.split_at_mut(m);
    let (zeros, rest) = rest.split_at_mut(m);
    let (best, rest) = rest.split_at_mut(m);
    let (w, rest) = rest.split_at_mut(d);
    let (columns, rest) = rest.split_at_mut(m * d);
    let (parts, rest) = rest.split_at_mut(symmetric::tiles(m) * TILE);
    let (bounds_work, rest) = rest.split_at_mut(tile_bounds::workspace_len(m, d));
    let mut accel = Anderson::new(
        opts.anderson as usize,
        m,
        &mut rest[..anderson::workspace_len(MAX_ANDERSON_DEPTH, m)],
    );
    zeros.fill(T::ZERO);
    metric_weights_into(data.scales(), w);
    let g = log_v_out;

    let source = match cache {
        Some(c) if c.len() >= m * m => {
            // log T row by row, as the row pass computes it (−(s κ_ij)).
            for i in 0..m {
                let inv_bw = InvBandwidth::for_eps(eps, rho.map_or(T::ONE, |r| r[i]), rho);
                log_kernel_row(
                    data.data(),
                    d,
                    data.sample(i),
                    w,
                    None,
                    inv_bw,
                    &mut c[i * m..(i + 1) * m],
                );
            }
            let c = &*c;
            Source {
                kernel: SymmetricKernel {
                    m,
                    source: KernelSource::Cached { log_t: c },
                },
                single: SingleRows::Cached(Cached { cache: c, m }),
            }
        }
        _ => {
            transpose_samples(data.data(), d, columns);
            let (columns, w) = (&*columns, &*w);
            let metric = data.scales().map(|_| w);
            Source {
                kernel: SymmetricKernel {
                    m,
                    source: KernelSource::Computed {
                        rows: data.data(),
                        columns,
                        d,
                        metric,
                        inv_bw: InvBandwidth::for_eps(eps, T::ONE, rho),
                    },
                },
                single: SingleRows::Free(Rows {
                    columns,
                    data: data.data(),
                    d,
                    m,
                    metric,
                    eps,
                    rho,
                }),
            }
        }
    };
    let path = match source.single {
        SingleRows::Free(_) => SinkhornPath::MatrixFree,
        SingleRows::Cached(_) => SinkhornPath::CachedKernel,
    };

    let w = &*w;
    let mut bounds = (opts.truncation > T::ZERO)
        .then(|| TileBounds::new(data.data(), d, w, eps, rho, opts.truncation, bounds_work));

    // The start v0 = (T 1)^(−1/2): the sums at offsets g = 0.
    source.sweep(blocks, zeros, sums, parts, bounds.as_mut());
    for (gi, &si) in g.iter_mut().zip(sums.iter()) {
        *gi = -T::from_f64(0.5) * si.ln();
    }

    let mut omega_half = opts.relaxation * T::from_f64(0.5);
    let mut best_res = T::INFINITY;
    let mut last_res = T::INFINITY;
    let mut updates: u32 = 0;
    loop {
        source.sweep(blocks, g, sums, parts, bounds.as_mut());
        let mut res = T::ZERO;
        for &si in sums.iter() {
            let r = (si - T::ONE).abs();
            res = if r.is_finite() {
                res.max(r)
            } else {
                T::INFINITY
            };
        }
        if res < best_res {
            best_res = res;
            best.copy_from_slice(g);
        }
        if res <= opts.tol {
            let (neglected, kernel_fraction) = bounds
                .as_ref()
                .map_or((0.0, 1.0), |b| b.neglected_and_kept());
            return Ok(SinkhornReport {
                iterations: updates,
                residual: res.to_f64(),
                path,
                neglected,
                kernel_fraction,
            });
        }
        if updates == opts.max_iter {
            break;
        }
        if !res.is_finite() {
            if !accel.has_history() {
                break;
            }
            // An accelerated step left the range: go on from the best scaling, unaccelerated.
            accel.disable();
            omega_half = T::from_f64(0.5);
            g.copy_from_slice(best);
            last_res = best_res;
            updates += 1;
            continue;
        }
        if res > last_res {
            // Leave the over-relaxation and restart the acceleration: the plain update contracts
            // wherever these may not.
            omega_half = T::from_f64(0.5);
            accel.reset();
        }
        last_res = res;
        // The plain update's step f = −(ω/2) ln S, in place of S, then the accelerated update.
        for si in sums.iter_mut() {
            *si = -(omega_half * si.ln());
        }
        accel.step(g, sums);
        updates += 1;
    }
    if best_res.is_finite() {
        g.copy_from_slice(best);
    }
    Err(Error::NotConverged {
        iterations: updates,
        residual: best_res.to_f64(),
    })
}
