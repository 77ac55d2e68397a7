//! The symmetric pass of Sinkhorn: every row sum `S_i = Σ_j P_ij` of
//!
//! ```text
//! a_ij = (g_i + g_j) − s_ij κ_ij         (s_ij = Σ_c w_c (x^(i)_c − x^(j)_c)^2, κ_ij as in the fused pass;
//!                                         with a cached log T: a_ij = (g_i + g_j) + L_ij, L_ij = −(s_ij κ_ij))
//! P_ij = exp(a_ij)                       (crate::exp_poly)
//! ```
//!
//! with each kernel entry of the upper triangle computed once: the symmetric kernel
//! (`s_ij = s_ji`, `ρ_i + ρ_j = ρ_j + ρ_i`) gives `P_ij = P_ji`, so one evaluation serves row `i`
//! and row `j`. That halves the exponentials of a Sinkhorn update compared with a fused pass per
//! row.
//!
//! **Tiles.** The samples are cut into tiles of [`TILE`] consecutive indices (the last one may be
//! shorter); `n_T = ⌈M / TILE⌉`. Block `(I, J)` with `I ≤ J` holds the entries of the rows of tile
//! `I` and the columns of tile `J`; it is computed once, row by row, with lanes over the columns in
//! chunks of [`LANES`] from the tile's start (lanes past `M` add `+0`).
//!
//! **The order of operations** is fixed, so the bits depend neither on the vector width nor on the
//! number of threads that share the blocks:
//! - row part `R_IJ(i) = Σ_{j ∈ J} P_ij` (`J ≥ I`, `i` in tile `I`): lane `l` accumulates its
//!   chunks of tile `J` in increasing order from `+0`, then the lanes are combined pairwise as in
//!   the fused pass (`v_l ← v_l + v_{l+h}`, `h = 8, 4, 2, 1`);
//! - column part `C_IJ(j) = Σ_{i ∈ I} P_ij` (`J > I`, `j` in tile `J`): one running sum over the
//!   rows `i` of tile `I` in increasing order, from `+0`;
//! - `S_i` (`i` in tile `I`): `+0`, plus `C_JI(i)` for `J = 0, …, I−1`, then plus `R_IJ(i)` for
//!   `J = I, …, n_T−1`, in that order.
//!
//! A driver processes the tiles `I` in increasing order; for one `I` the blocks `(I, J)`,
//! `J = I … n_T−1`, are independent (each writes its own row parts and the sums of its own
//! column tile), which is what a threaded caller splits.

use core::ops::Range;

use super::{
    lane, lane_of, reduce_lanes, Columns, Kappa, Lane, Load, Metric, Uniform, Unweighted, Variable,
    Weighted, LANES,
};
use crate::kernel::InvBandwidth;
use crate::layout::MAX_HEAD_DIM;
use crate::real::Real;

/// Samples per tile (a multiple of [`LANES`]): one column tile, `TILE · d` coordinates with its
/// offsets and column sums, stays in the first-level cache while the rows of a tile pass over it.
pub const TILE: usize = 256;

/// Number of tiles of `m` samples, `⌈m / TILE⌉`.
pub const fn tiles(m: usize) -> usize {
    m.div_ceil(TILE)
}

/// The index range of tile `t` of `m` samples.
pub fn tile_range(t: usize, m: usize) -> Range<usize> {
    t * TILE..((t + 1) * TILE).min(m)
}

/// Where the pass takes its logits from.
#[derive(Clone, Copy, Debug)]
pub enum KernelSource<'a, T> {
    /// Computed from the samples.
    Computed {
        /// Sample-major rows (`M × d`): the row points `x^(i)`.
        rows: &'a [T],
        /// Coordinate-major columns (`d × M`): the same samples, read in lanes.
        columns: &'a [T],
        /// `d ≤` [`MAX_HEAD_DIM`].
        d: usize,
        /// Metric weights `w_c` (`None`: Euclidean).
        metric: Option<&'a [T]>,
        /// `κ`: uniform, or variable with `ρ` (its `rho_x` is ignored: row `i` uses `ρ_i`).
        inv_bw: InvBandwidth<'a, T>,
    },
    /// A cached `log T` (`M × M`, row-major), as `crate::kernel::log_kernel_row` writes it.
    Cached {
        /// `L_ij` at `log_t[i M + j]`.
        log_t: &'a [T],
    },
}

/// One Sinkhorn kernel as the symmetric pass reads it. Lengths are the caller's to check.
#[derive(Clone, Copy, Debug)]
pub struct SymmetricKernel<'a, T> {
    /// Number of samples `M`.
    pub m: usize,
    /// The logits' source.
    pub source: KernelSource<'a, T>,
}

/// Blocks `(ti, J)` for `J` in `tiles` (every `J ≥ ti`, in increasing order): writes the row
/// parts `R_{ti J}(i)` of the rows of tile `ti` into `row_parts[(J − tiles.start)·TILE + r]`
/// (`r` the row's place in its tile) and adds the column parts `C_{ti J}(j)` of `J > ti` into
/// `col_sums[(J − tiles.start)·TILE + c]` (`c` the column's place in its tile), for offsets `g`.
///
/// `row_parts` and `col_sums` need `(tiles.end − tiles.start)·TILE` values (or up to `M` for the
/// last tile's sums).
pub fn tile_blocks<T: Real>(
    k: &SymmetricKernel<'_, T>,
    g: &[T],
    ti: usize,
    tiles: Range<usize>,
    row_parts: &mut [T],
    col_sums: &mut [T],
) {
    T::symmetric_blocks(k, g, ti, tiles, row_parts, col_sums)
}

/// Computes the blocks of one tile row, [`tile_blocks`]-style: `(ti, J-range, row_parts,
/// col_sums)`.
pub type TileRow<'s, T> = dyn FnMut(usize, Range<usize>, &mut [T], &mut [T]) + 's;

/// All row sums `S_i` (into `sums`, length `M`) in the documented order. `parts` is work space of
/// `tiles(M)·TILE` values; `split(ti, J-range, row_parts, col_sums)` computes blocks
/// [`tile_blocks`]-style for one tile row (sequentially or spread over threads: the bits are the
/// same).
pub fn row_sums_with<T: Real>(
    m: usize,
    sums: &mut [T],
    parts: &mut [T],
    split: &mut TileRow<'_, T>,
) {
    let nt = tiles(m);
    sums.fill(T::ZERO);
    for ti in 0..nt {
        let first = ti * TILE;
        split(
            ti,
            ti..nt,
            &mut parts[first..nt * TILE],
            &mut sums[first..m],
        );
        let rows = tile_range(ti, m).len();
        for tj in ti..nt {
            let part = &parts[tj * TILE..tj * TILE + rows];
            for (s, &p) in sums[first..first + rows].iter_mut().zip(part) {
                *s += p;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch (as in the fused pass: `multiversion` picks an AVX-512 or AVX2 build on an x86-64
// `std` host; otherwise the build target's features).

vector_builds! {
pub(super) fn dispatch_blocks<T: Real>(
    k: &SymmetricKernel<'_, T>,
    g: &[T],
    ti: usize,
    tiles: Range<usize>,
    row_parts: &mut [T],
    col_sums: &mut [T],
) {
    let m = k.m;
    match k.source {
        KernelSource::Cached { log_t } => body_blocks(
            &CachedLogits { log_t, g, m },
            m,
            ti,
            tiles,
            row_parts,
            col_sums,
        ),
        KernelSource::Computed {
            rows,
            columns,
            d,
            metric,
            inv_bw,
        } => {
            let ld = Columns {
                data: columns,
                m,
                d,
                stride: m,
            };
            macro_rules! go {
                ($w:expr, $bw:expr) => {
                    body_blocks(
                        &ComputedLogits {
                            ld,
                            rows,
                            w: $w,
                            bw: $bw,
                            g,
                        },
                        m,
                        ti,
                        tiles,
                        row_parts,
                        col_sums,
                    )
                };
            }
            match (metric, inv_bw) {
                (Some(w), InvBandwidth::Uniform(kappa)) => go!(Weighted(w), UniformRows(kappa)),
                (None, InvBandwidth::Uniform(kappa)) => go!(Unweighted, UniformRows(kappa)),
                (
                    Some(w),
                    InvBandwidth::Variable {
                        half_inv_eps, rho, ..
                    },
                ) => go!(Weighted(w), VariableRows { half_inv_eps, rho }),
                (
                    None,
                    InvBandwidth::Variable {
                        half_inv_eps, rho, ..
                    },
                ) => go!(Unweighted, VariableRows { half_inv_eps, rho }),
            }
        }
    }
}
}

// ---------------------------------------------------------------------------------------------
// Logits of one row against chunks of columns.

/// The logits `a_ij` of row `i` for `K` chunks from `j0` (the last one `valid` lanes long).
trait RowLogits<T: Real> {
    /// What a row needs, prepared once per row.
    type Row: Copy;
    fn row(&self, i: usize) -> Self::Row;
    #[allow(clippy::too_many_arguments)]
    fn logits<const K: usize>(
        &self,
        row: &Self::Row,
        i: usize,
        j0: usize,
        valid: usize,
        bufs: &mut [[Lane<T>; MAX_HEAD_DIM]; K],
        out: &mut [Lane<T>; K],
    );
}

/// `κ` for row `i`.
trait RowKappa<T: Real>: Copy {
    type K: Kappa<T> + Copy;
    fn for_row(&self, i: usize) -> Self::K;
}

#[derive(Clone, Copy)]
struct UniformRows<T>(T);
#[derive(Clone, Copy)]
struct VariableRows<'a, T> {
    half_inv_eps: T,
    rho: &'a [T],
}

impl<T: Real> RowKappa<T> for UniformRows<T> {
    type K = Uniform<T>;
    #[inline(always)]
    fn for_row(&self, _: usize) -> Uniform<T> {
        Uniform(self.0)
    }
}

impl<'a, T: Real> RowKappa<T> for VariableRows<'a, T> {
    type K = Variable<'a, T>;
    #[inline(always)]
    fn for_row(&self, i: usize) -> Variable<'a, T> {
        Variable {
            half_inv_eps: self.half_inv_eps,
            rho_x: self.rho[i],
            rho: self.rho,
        }
    }
}

/// The offsets `g_i + g_j` of chunk `j0..j0 + valid` (padding lanes `g_i + 0`).
#[inline(always)]
fn pair_offsets<T: Real>(g: &[T], gi: T, j0: usize, valid: usize) -> Lane<T> {
    let gj = if valid == LANES {
        *lane(&g[j0..j0 + LANES])
    } else {
        lane_of(g, j0, valid)
    };
    let mut out = [T::ZERO; LANES];
    for l in 0..LANES {
        out[l] = gi + gj[l];
    }
    out
}

struct ComputedLogits<'a, T, W, B> {
    ld: Columns<'a, T>,
    rows: &'a [T],
    w: W,
    bw: B,
    g: &'a [T],
}

impl<T: Real, W: Metric<T>, B: RowKappa<T>> RowLogits<T> for ComputedLogits<'_, T, W, B> {
    type Row = ([T; MAX_HEAD_DIM], T, B::K);
    #[inline(always)]
    fn row(&self, i: usize) -> Self::Row {
        let d = self.ld.d;
        let mut x = [T::ZERO; MAX_HEAD_DIM];
        x[..d].copy_from_slice(&self.rows[i * d..(i + 1) * d]);
        (x, self.g[i], self.bw.for_row(i))
    }
    #[inline(always)]
    fn logits<const K: usize>(
        &self,
        row: &Self::Row,
        _: usize,
        j0: usize,
        valid: usize,
        bufs: &mut [[Lane<T>; MAX_HEAD_DIM]; K],
        out: &mut [Lane<T>; K],
    ) {
        let (x, gi, kappa) = row;
        let d = self.ld.d;
        // `valid` concerns the last chunk of the K (the others are full).
        let valid_of = |k: usize| if k + 1 == K { valid } else { LANES };
        for (k, buf) in bufs.iter_mut().enumerate() {
            self.ld.fill(j0 + k * LANES, valid_of(k), buf);
        }
        let mut s = [[T::ZERO; LANES]; K];
        if d == 6 {
            // The closure heads' d_α: a loop of known length, unrolled (same operations).
            for (c, &xc) in x[..6].iter().enumerate() {
                for (k, sk) in s.iter_mut().enumerate() {
                    let col = self.ld.col(&bufs[k], c, j0 + k * LANES, valid_of(k));
                    self.w.add_sq(sk, xc, col, c);
                }
            }
        } else {
            for (c, &xc) in x[..d].iter().enumerate() {
                for (k, sk) in s.iter_mut().enumerate() {
                    let col = self.ld.col(&bufs[k], c, j0 + k * LANES, valid_of(k));
                    self.w.add_sq(sk, xc, col, c);
                }
            }
        }
        for (k, (o, sk)) in out.iter_mut().zip(&s).enumerate() {
            let jk = j0 + k * LANES;
            let gl = pair_offsets(self.g, *gi, jk, valid_of(k));
            kappa.logits(&gl, sk, jk, valid_of(k), o);
        }
    }
}

struct CachedLogits<'a, T> {
    log_t: &'a [T],
    g: &'a [T],
    m: usize,
}

impl<T: Real> RowLogits<T> for CachedLogits<'_, T> {
    type Row = T;
    #[inline(always)]
    fn row(&self, i: usize) -> T {
        self.g[i]
    }
    #[inline(always)]
    fn logits<const K: usize>(
        &self,
        gi: &T,
        i: usize,
        j0: usize,
        valid: usize,
        _: &mut [[Lane<T>; MAX_HEAD_DIM]; K],
        out: &mut [Lane<T>; K],
    ) {
        let row = &self.log_t[i * self.m..(i + 1) * self.m];
        for (k, o) in out.iter_mut().enumerate() {
            let jk = j0 + k * LANES;
            let v = if k + 1 == K { valid } else { LANES };
            let gl = pair_offsets(self.g, *gi, jk, v);
            let l = lane_of(row, jk, v);
            for q in 0..LANES {
                o[q] = gl[q] + l[q];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The bodies.

/// `K` chunks of row `i` from `j0` (the last `valid` lanes long): `P_ij` into the row's lane
/// sums and, for an off-diagonal block, into the column sums `col[j − j_lo]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn row_chunks<T: Real, R: RowLogits<T>, const K: usize>(
    r: &R,
    row: &R::Row,
    i: usize,
    j0: usize,
    valid: usize,
    bufs: &mut [[Lane<T>; MAX_HEAD_DIM]; K],
    racc: &mut Lane<T>,
    col: Option<&mut [T]>,
) {
    let mut a = [[T::ZERO; LANES]; K];
    r.logits(row, i, j0, valid, bufs, &mut a);
    let mut e = T::exp_poly_block(&a);
    if valid < LANES {
        e[K - 1][valid..].fill(T::ZERO);
    }
    for ek in &e {
        for l in 0..LANES {
            racc[l] += ek[l];
        }
    }
    if let Some(col) = col {
        for (k, ek) in e.iter().enumerate() {
            let v = if k + 1 == K { valid } else { LANES };
            let c = &mut col[k * LANES..k * LANES + v];
            for (cl, &el) in c.iter_mut().zip(ek) {
                *cl += el;
            }
        }
    }
}

/// Chunks per step: two chunks in flight hide the latency of the exponential (as in the fused
/// pass); the order of accumulation is unchanged, chunk by chunk. Measured at M = 8000, d = 6
/// (AVX-512): one chunk per step is as fast in f64 and ~12 % slower in f32; four fall off the
/// same code-generation cliff as the fused pass (3–6× slower).
const STEP_CHUNKS: usize = 2;

/// Row `i` against the columns `j_lo..j_lo + n` of one tile: returns `R(i)` and, with `col`,
/// adds each `P_ij` to `col[j − j_lo]`. `bufs` is scratch for partial chunks.
#[inline(always)]
fn row_block<T: Real, R: RowLogits<T>>(
    r: &R,
    i: usize,
    j_lo: usize,
    n: usize,
    bufs: &mut [[Lane<T>; MAX_HEAD_DIM]; STEP_CHUNKS],
    mut col: Option<&mut [T]>,
) -> T {
    let row = r.row(i);
    let mut racc = [T::ZERO; LANES];
    let full = n / LANES;
    let steps = full / STEP_CHUNKS;
    for s in 0..steps {
        let off = s * STEP_CHUNKS * LANES;
        row_chunks::<T, R, STEP_CHUNKS>(
            r,
            &row,
            i,
            j_lo + off,
            LANES,
            bufs,
            &mut racc,
            col.as_deref_mut().map(|c| &mut c[off..]),
        );
    }
    let (one, _) = bufs.split_at_mut(1);
    let one: &mut [[Lane<T>; MAX_HEAD_DIM]; 1] = match one.try_into() {
        Ok(b) => b,
        Err(_) => unreachable!("one buffer"),
    };
    for q in steps * STEP_CHUNKS..full {
        let off = q * LANES;
        row_chunks::<T, R, 1>(
            r,
            &row,
            i,
            j_lo + off,
            LANES,
            one,
            &mut racc,
            col.as_deref_mut().map(|c| &mut c[off..]),
        );
    }
    if !n.is_multiple_of(LANES) {
        let off = full * LANES;
        row_chunks::<T, R, 1>(
            r,
            &row,
            i,
            j_lo + off,
            n % LANES,
            one,
            &mut racc,
            col.map(|c| &mut c[off..]),
        );
    }
    reduce_lanes(racc)
}

#[inline(always)]
fn body_blocks<T: Real, R: RowLogits<T>>(
    r: &R,
    m: usize,
    ti: usize,
    tiles: Range<usize>,
    row_parts: &mut [T],
    col_sums: &mut [T],
) {
    let rows = tile_range(ti, m);
    // Scratch for partial chunks (zeroed once per call, not per row).
    let mut bufs = [[[T::ZERO; LANES]; MAX_HEAD_DIM]; STEP_CHUNKS];
    for (b, tj) in tiles.clone().enumerate() {
        let cols = tile_range(tj, m);
        let parts = &mut row_parts[b * TILE..b * TILE + rows.len()];
        if tj == ti {
            for (p, i) in parts.iter_mut().zip(rows.clone()) {
                *p = row_block(r, i, cols.start, cols.len(), &mut bufs, None);
            }
        } else {
            let mut col = [T::ZERO; TILE];
            for (p, i) in parts.iter_mut().zip(rows.clone()) {
                *p = row_block(r, i, cols.start, cols.len(), &mut bufs, Some(&mut col[..]));
            }
            let sums = &mut col_sums[b * TILE..b * TILE + cols.len()];
            for (s, &c) in sums.iter_mut().zip(&col) {
                *s += c;
            }
        }
    }
}

// Tests: `super::symmetric_tests` (src/fused/symmetric_tests.rs).
