//! The fused pass: one sweep over the samples of a bridge (or of one head) that computes, for a
//! query `x`, the distances, the logits, their shifted exponentials and the weighted sums of the
//! requested target coordinates together, without writing a row of `M` values.
//!
//! ```text
//! s_j = Σ_c w_c (x_c − x^(j)_c)^2                   (w_c = 1/s_c^2; the product is skipped when w ≡ 1)
//! a_j = g_j − s_j κ_j                                (κ_j = 1/(4ε), or (1/(2ε)) / (ρ(x) + ρ_j))
//! e_j = exp(a_j − G)                                 (crate::exp_poly)
//! S   = Σ_j e_j,    A_t = Σ_j e_j x^(j)_t            (t in the target coordinates)
//! ```
//!
//! so that `LSE_j a_j = G + ln S` and the weighted mean of coordinate `t` is `A_t / S`.
//!
//! **The shift `G`.** Any `G` works mathematically; the caller passes an upper bound of the
//! logits (for the bridge `max_j g_j`, since `a_j ≤ g_j`; for Sinkhorn row `i`, `−g_i`, which makes
//! `e_j = P_ij ≤ 1`). Then nothing overflows, and [`weighted_sums`] accepts the result when
//! `S ≥ Real::FUSED_MIN_SUM` (`2^−900` in `f64`, `2^−60` in `f32`): every term the exponential
//! flushed to zero is then below `2^−(1022−900)` (`2^−(126−60)` in `f32`) of `S` per sample.
//! Otherwise (a query far from every sample) it computes the exact maximum `max_j a_j` in a
//! second pass and sums again with `G = max_j a_j`, so `S ≥ 1`. The choice depends on the data
//! and the query only, never on the CPU.
//!
//! **The order of operations** is fixed and documented so that every target computes the same
//! bits, whatever its vector width: samples go in chunks of [`LANES`] consecutive indices
//! (`j = LANES·q + l`); lane `l` accumulates its terms over `q` in increasing order (the lanes of a
//! last, partial chunk beyond `M` add `+0`); then the lanes are combined pairwise,
//! `v_l ← v_l + v_{l+h}` for `h = 8, 4, 2, 1`, and the result is `v_0`. No operation is fused into
//! an FMA (Rust never contracts `a * b + c`), so a scalar Cortex-M4F and a 512-bit host agree.
//!
//! Samples are read either as sample-major rows (`x[j d + c]`, the layout of the API and of
//! format-1.0 images) or as coordinate-major columns (`x[c M + j]`, so that lanes run over
//! samples with contiguous loads); both give the same bits.

use crate::kernel::InvBandwidth;
use crate::layout::MAX_HEAD_DIM;
use crate::real::Real;

/// Compiles the function it wraps for every vector build the host chooses from at run time: with
/// the `std` feature on x86-64, AVX-512 and AVX2 builds beside the baseline one, picked by the
/// `multiversion` crate when the function is called. Elsewhere (`no_std`, firmware, other
/// architectures) and in the crate's own unit-test build (see `tests.rs`) there is one build, for
/// the build target's own features.
macro_rules! vector_builds {
    ($item:item) => {
        #[cfg_attr(
            all(feature = "std", target_arch = "x86_64", not(test)),
            multiversion::multiversion(targets(
                "x86_64+avx512f+avx512vl+avx512dq+avx512bw+avx2+avx+fma+bmi1+bmi2+lzcnt+popcnt",
                "x86_64+avx2+avx+fma+bmi1+bmi2+lzcnt+popcnt"
            ))
        )]
        $item
    };
}

pub mod symmetric;
pub mod truncated;

/// Samples per chunk: the number of partial sums of every accumulation (see the module docs).
pub const LANES: usize = 16;

/// The largest dimension (and number of targets) the fused pass takes: [`MAX_HEAD_DIM`].
pub const MAX_FUSED_DIM: usize = MAX_HEAD_DIM;

/// Where the pass reads the samples' coordinates.
#[derive(Clone, Copy, Debug)]
pub enum Samples<'a, T> {
    /// Sample-major rows: coordinate `c` of sample `j` is `data[j d + c]`.
    Rows {
        /// `M × d` values.
        data: &'a [T],
        /// `d`.
        d: usize,
    },
    /// Coordinate-major columns: coordinate `c` of sample `j` is `data[c m + j]`.
    Columns {
        /// `d × M` values.
        data: &'a [T],
        /// `M`.
        m: usize,
    },
    /// A run of samples of coordinate-major columns: coordinate `c` of sample `j < m` is
    /// `data[c stride + j]` (`data = &columns[start..]` and `stride` the columns' own `M`).
    Strided {
        /// At least `(d − 1) stride + m` values.
        data: &'a [T],
        /// Distance between two coordinates of a sample.
        stride: usize,
        /// Samples in the run.
        m: usize,
        /// `d`.
        d: usize,
    },
}

impl<T: Real> Samples<'_, T> {
    /// Number of samples `M`.
    pub fn m(&self) -> usize {
        match *self {
            Samples::Rows { data, d } => data.len() / d.max(1),
            Samples::Columns { m, .. } | Samples::Strided { m, .. } => m,
        }
    }
    /// Dimension `d`.
    pub fn d(&self) -> usize {
        match *self {
            Samples::Rows { d, .. } => d,
            Samples::Columns { data, m } => data.len() / m.max(1),
            Samples::Strided { d, .. } => d,
        }
    }
}

/// One query of the fused pass. Lengths are the caller's to check (every public entry point
/// does): `x.len() = d ≤ MAX_FUSED_DIM`, `metric` of length `d`, `offsets` and a variable
/// bandwidth's `rho` of length `M`.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a, T> {
    /// The samples.
    pub samples: Samples<'a, T>,
    /// The query point `x` (length `d`).
    pub x: &'a [T],
    /// Metric weights `w_c = 1/s_c^2` (`None`: the Euclidean metric).
    pub metric: Option<&'a [T]>,
    /// Offsets `g_j` (length `M`).
    pub offsets: &'a [T],
    /// The inverse bandwidth `κ_j`.
    pub inv_bw: InvBandwidth<'a, T>,
}

/// What one pass accumulated: `S = Σ_j exp(a_j − G)` and `A_t = Σ_j exp(a_j − G) x^(j)_t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sums<T> {
    /// The shift `G` used.
    pub shift: T,
    /// `S`.
    pub sum: T,
    /// `A_t` for the requested targets, in their order (the rest zero).
    pub targets: [T; MAX_FUSED_DIM],
}

impl<T: Real> Sums<T> {
    /// `LSE_j a_j = G + ln S`.
    pub fn log_sum_exp(&self) -> T {
        self.shift + self.sum.ln()
    }
    /// The weighted mean of the `k`-th requested target, `A_k / S`.
    pub fn mean(&self, k: usize) -> T {
        self.targets[k] / self.sum
    }
}

/// The pass with the shift `G = shift_bound` and, when its sum is below
/// [`Real::FUSED_MIN_SUM`] or not finite, again with `G = max_j a_j` (see the module docs).
/// Returns `None` when the logits have no finite maximum (non-finite inputs).
pub fn weighted_sums<T: Real>(
    q: &Query<'_, T>,
    targets: &[usize],
    shift_bound: T,
) -> Option<Sums<T>> {
    let first = shifted_sums(q, targets, shift_bound);
    if first.sum >= T::FUSED_MIN_SUM && first.sum.is_finite() {
        return Some(first);
    }
    let mx = max_logit(q);
    if !mx.is_finite() {
        return None;
    }
    let second = shifted_sums(q, targets, mx);
    if second.sum.is_finite() && second.sum >= T::ONE {
        Some(second)
    } else {
        None
    }
}

/// `S` and `A_t` with the shift `G = shift` exactly (no fallback).
pub fn shifted_sums<T: Real>(q: &Query<'_, T>, targets: &[usize], shift: T) -> Sums<T> {
    T::fused_sums(q, targets, shift)
}

/// `max_j a_j`, the exact maximum of the logits (the same `a_j` bits as the sums use).
pub fn max_logit<T: Real>(q: &Query<'_, T>) -> T {
    T::fused_max(q)
}

/// The fused pass over precomputed kernel logits `L_j` (a row of a cached `log T`): with
/// offsets `a_j = g_j + L_j` (`L_j = −(s_j κ_j)`, so `a_j` has the same bits as the pass's
/// `g_j − s_j κ_j`), without `a_j = L_j`; then `S = Σ_j exp(a_j − G)` in the pass's order, with the
/// same fallback as [`weighted_sums`]. `None` when the logits have no finite maximum.
pub fn logit_row_sums<T: Real>(
    row: &[T],
    offsets: Option<&[T]>,
    shift_bound: T,
) -> Option<Sums<T>> {
    let first = T::fused_logit_sum(row, offsets, shift_bound);
    let done = |sum: T, shift: T| Sums {
        shift,
        sum,
        targets: [T::ZERO; MAX_FUSED_DIM],
    };
    if first >= T::FUSED_MIN_SUM && first.is_finite() {
        return Some(done(first, shift_bound));
    }
    let mx = match offsets {
        Some(g) => row
            .iter()
            .zip(g)
            .fold(T::NEG_INFINITY, |m, (&l, &gj)| m.max(gj + l)),
        None => row.iter().fold(T::NEG_INFINITY, |m, &l| m.max(l)),
    };
    if !mx.is_finite() {
        return None;
    }
    let second = T::fused_logit_sum(row, offsets, mx);
    (second.is_finite() && second >= T::ONE).then(|| done(second, mx))
}

/// Writes `e_j = exp(a_j − G)` into `out` (length `M`) and returns `S = Σ_j e_j` in the fused
/// pass's order, with `G = shift`.
pub fn shifted_row<T: Real>(q: &Query<'_, T>, shift: T, out: &mut [T]) -> T {
    T::fused_row(q, shift, out)
}

// ---------------------------------------------------------------------------------------------
// One compiled pass per precision.

/// The fused and symmetric passes' compiled entry points for one precision, a supertrait of
/// [`Real`] implemented for `f32` and `f64` only (call the functions of this module and of
/// [`symmetric`] instead).
///
/// Every method is a plain, non-generic function of this crate marked `#[inline(never)]`, so
/// the passes (each layout × metric × bandwidth variant, in an AVX-512, an AVX2 and a baseline
/// build) are compiled once, into this crate. A generic entry point would be compiled again in
/// every crate that calls a generic routine of sbridge with a concrete type, because optimised
/// builds do not share generic instances between crates: each test program, example, doctest
/// and user crate paid ~100 s of compile time on the 2-core development machine for its own copy.
/// The call costs one function call per pass over `M` samples.
pub trait FusedPass: Sized {
    /// [`shifted_sums`].
    fn fused_sums(q: &Query<'_, Self>, targets: &[usize], shift: Self) -> Sums<Self>;
    /// [`max_logit`].
    fn fused_max(q: &Query<'_, Self>) -> Self;
    /// [`shifted_row`].
    fn fused_row(q: &Query<'_, Self>, shift: Self, out: &mut [Self]) -> Self;
    /// `S = Σ_j exp(a_j − G)` over precomputed logits (the first pass of [`logit_row_sums`]).
    fn fused_logit_sum(row: &[Self], offsets: Option<&[Self]>, shift: Self) -> Self;
    /// [`symmetric::tile_blocks`].
    fn symmetric_blocks(
        k: &symmetric::SymmetricKernel<'_, Self>,
        g: &[Self],
        ti: usize,
        tiles: core::ops::Range<usize>,
        row_parts: &mut [Self],
        col_sums: &mut [Self],
    );
}

macro_rules! impl_fused_pass {
    ($t:ty) => {
        impl FusedPass for $t {
            #[inline(never)]
            fn fused_sums(q: &Query<'_, $t>, targets: &[usize], shift: $t) -> Sums<$t> {
                dispatch_sums(q, targets, shift)
            }
            #[inline(never)]
            fn fused_max(q: &Query<'_, $t>) -> $t {
                dispatch_max(q)
            }
            #[inline(never)]
            fn fused_row(q: &Query<'_, $t>, shift: $t, out: &mut [$t]) -> $t {
                dispatch_row(q, shift, out)
            }
            #[inline(never)]
            fn fused_logit_sum(row: &[$t], offsets: Option<&[$t]>, shift: $t) -> $t {
                dispatch_logit_sum(row, offsets, shift)
            }
            #[inline(never)]
            fn symmetric_blocks(
                k: &symmetric::SymmetricKernel<'_, $t>,
                g: &[$t],
                ti: usize,
                tiles: core::ops::Range<usize>,
                row_parts: &mut [$t],
                col_sums: &mut [$t],
            ) {
                symmetric::dispatch_blocks(k, g, ti, tiles, row_parts, col_sums)
            }
        }
    };
}
impl_fused_pass!(f32);
impl_fused_pass!(f64);

// ---------------------------------------------------------------------------------------------
// Dispatch: the generic bodies below are `#[inline(always)]`, so each entry point compiles them
// for the target features it is built with. With the `std` feature an x86-64 host picks an
// AVX-512 or AVX2 build at run time (the `multiversion` crate); without it (`no_std`, firmware)
// the build target's own features are used. The arithmetic is the same in every build.
//
// The crate's own unit-test build (`cfg(test)`) compiles only the portable build: the unit tests
// then check the code a CPU without AVX2 (or a firmware) runs against the documented scalar order,
// and `tests/fused_builds.rs` checks the run-time-selected build against the same order. One
// vector build instead of three also takes about a third of the test build's time off.

/// Expands `$body` once for every combination of layout, metric and bandwidth, with `$ld`, `$w`
/// and `$bw` bound to compile-time variants.
macro_rules! with_variants {
    ($q:expr, |$ld:ident, $w:ident, $bw:ident| $body:expr) => {{
        let q = $q;
        macro_rules! bw_arm {
            ($ld2:expr, $w2:expr) => {
                match q.inv_bw {
                    InvBandwidth::Uniform(k) => {
                        let $ld = $ld2;
                        let $w = $w2;
                        let $bw = Uniform(k);
                        $body
                    }
                    InvBandwidth::Variable {
                        half_inv_eps,
                        rho_x,
                        rho,
                    } => {
                        let $ld = $ld2;
                        let $w = $w2;
                        let $bw = Variable {
                            half_inv_eps,
                            rho_x,
                            rho,
                        };
                        $body
                    }
                }
            };
        }
        macro_rules! metric_arm {
            ($ld2:expr) => {
                match q.metric {
                    Some(w) => bw_arm!($ld2, Weighted(w)),
                    None => bw_arm!($ld2, Unweighted),
                }
            };
        }
        match q.samples {
            Samples::Rows { data, d } => metric_arm!(Rows { data, d }),
            Samples::Columns { data, m } => metric_arm!(Columns {
                data,
                m,
                d: data.len() / m.max(1),
                stride: m,
            }),
            Samples::Strided { data, stride, m, d } => metric_arm!(Columns { data, m, d, stride }),
        }
    }};
}

vector_builds! {
fn dispatch_sums<T: Real>(q: &Query<'_, T>, targets: &[usize], shift: T) -> Sums<T> {
    with_variants!(q, |ld, w, bw| body_sums(
        ld, q.x, w, q.offsets, bw, targets, shift
    ))
}
}

vector_builds! {
fn dispatch_max<T: Real>(q: &Query<'_, T>) -> T {
    with_variants!(q, |ld, w, bw| body_max(ld, q.x, w, q.offsets, bw))
}
}

vector_builds! {
fn dispatch_row<T: Real>(q: &Query<'_, T>, shift: T, out: &mut [T]) -> T {
    with_variants!(q, |ld, w, bw| body_row(
        ld, q.x, w, q.offsets, bw, shift, out
    ))
}
}

vector_builds! {
fn dispatch_logit_sum<T: Real>(row: &[T], offsets: Option<&[T]>, shift: T) -> T {
    let m = row.len();
    let mut sum = [T::ZERO; LANES];
    let mut j0 = 0;
    while j0 < m {
        let valid = (m - j0).min(LANES);
        let l = lane_of(row, j0, valid);
        let mut a = [T::ZERO; LANES];
        match offsets {
            Some(g) => {
                let gl = lane_of(g, j0, valid);
                for k in 0..LANES {
                    a[k] = gl[k] + l[k];
                }
            }
            None => a = l,
        }
        let e = chunk_exp(&a, shift, valid);
        for k in 0..LANES {
            sum[k] += e[k];
        }
        j0 += LANES;
    }
    reduce_lanes(sum)
}
}

// ---------------------------------------------------------------------------------------------
// Compile-time variants.

/// A chunk of `LANES` values of one coordinate.
type Lane<T> = [T; LANES];

/// Reads chunks of samples. `fill` prepares chunk `j0..j0 + valid` in `buf` where the layout
/// needs it (rows are transposed; a partial last chunk is zero-padded); `col` then returns
/// coordinate `c` of the chunk.
trait Load<T: Real>: Copy {
    fn m(&self) -> usize;
    fn fill(&self, j0: usize, valid: usize, buf: &mut [Lane<T>; MAX_FUSED_DIM]);
    fn col<'b>(
        &'b self,
        buf: &'b [Lane<T>; MAX_FUSED_DIM],
        c: usize,
        j0: usize,
        valid: usize,
    ) -> &'b Lane<T>;
}

#[derive(Clone, Copy)]
struct Rows<'a, T> {
    data: &'a [T],
    d: usize,
}

impl<T: Real> Load<T> for Rows<'_, T> {
    #[inline(always)]
    fn m(&self) -> usize {
        self.data.len() / self.d
    }
    #[inline(always)]
    fn fill(&self, j0: usize, valid: usize, buf: &mut [Lane<T>; MAX_FUSED_DIM]) {
        let d = self.d;
        let rows = &self.data[j0 * d..(j0 + valid) * d];
        for (l, row) in rows.chunks_exact(d).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                buf[c][l] = v;
            }
        }
        if valid < LANES {
            for b in buf[..d].iter_mut() {
                b[valid..].fill(T::ZERO);
            }
        }
    }
    #[inline(always)]
    fn col<'b>(
        &'b self,
        buf: &'b [Lane<T>; MAX_FUSED_DIM],
        c: usize,
        _: usize,
        _: usize,
    ) -> &'b Lane<T> {
        &buf[c]
    }
}

#[derive(Clone, Copy)]
struct Columns<'a, T> {
    data: &'a [T],
    m: usize,
    d: usize,
    /// Distance between coordinates of a sample (`m` for a whole array of columns).
    stride: usize,
}

impl<T: Real> Load<T> for Columns<'_, T> {
    #[inline(always)]
    fn m(&self) -> usize {
        self.m
    }
    #[inline(always)]
    fn fill(&self, j0: usize, valid: usize, buf: &mut [Lane<T>; MAX_FUSED_DIM]) {
        if valid < LANES {
            for (c, b) in buf[..self.d].iter_mut().enumerate() {
                let start = c * self.stride + j0;
                b[..valid].copy_from_slice(&self.data[start..start + valid]);
                b[valid..].fill(T::ZERO);
            }
        }
    }
    #[inline(always)]
    fn col<'b>(
        &'b self,
        buf: &'b [Lane<T>; MAX_FUSED_DIM],
        c: usize,
        j0: usize,
        valid: usize,
    ) -> &'b Lane<T> {
        if valid < LANES {
            &buf[c]
        } else {
            let start = c * self.stride + j0;
            lane(&self.data[start..start + LANES])
        }
    }
}

/// A slice of exactly `LANES` values as an array reference.
#[inline(always)]
fn lane<T>(s: &[T]) -> &Lane<T> {
    match s.try_into() {
        Ok(a) => a,
        Err(_) => unreachable!("a lane is LANES values"),
    }
}

/// Chunk `j0..j0 + valid` of a per-sample array, zero-padded.
#[inline(always)]
fn lane_of<T: Real>(v: &[T], j0: usize, valid: usize) -> Lane<T> {
    let mut out = [T::ZERO; LANES];
    out[..valid].copy_from_slice(&v[j0..j0 + valid]);
    out
}

/// The metric: `s += w_c t^2` or `s += t^2`.
trait Metric<T: Real>: Copy {
    fn add_sq(&self, s: &mut Lane<T>, xc: T, col: &Lane<T>, c: usize);
}

#[derive(Clone, Copy)]
struct Weighted<'a, T>(&'a [T]);
#[derive(Clone, Copy)]
struct Unweighted;

impl<T: Real> Metric<T> for Weighted<'_, T> {
    #[inline(always)]
    fn add_sq(&self, s: &mut Lane<T>, xc: T, col: &Lane<T>, c: usize) {
        let wc = self.0[c];
        for l in 0..LANES {
            let t = xc - col[l];
            s[l] += t * t * wc;
        }
    }
}

impl<T: Real> Metric<T> for Unweighted {
    #[inline(always)]
    fn add_sq(&self, s: &mut Lane<T>, xc: T, col: &Lane<T>, _: usize) {
        for l in 0..LANES {
            let t = xc - col[l];
            s[l] += t * t;
        }
    }
}

/// The bandwidth: `a = g − s κ_j`.
trait Kappa<T: Real>: Copy {
    fn logits(&self, g: &Lane<T>, s: &Lane<T>, j0: usize, valid: usize, out: &mut Lane<T>);
}

#[derive(Clone, Copy)]
struct Uniform<T>(T);
#[derive(Clone, Copy)]
struct Variable<'a, T> {
    half_inv_eps: T,
    rho_x: T,
    rho: &'a [T],
}

impl<T: Real> Kappa<T> for Uniform<T> {
    #[inline(always)]
    fn logits(&self, g: &Lane<T>, s: &Lane<T>, _: usize, _: usize, out: &mut Lane<T>) {
        for l in 0..LANES {
            out[l] = g[l] - s[l] * self.0;
        }
    }
}

impl<T: Real> Kappa<T> for Variable<'_, T> {
    #[inline(always)]
    fn logits(&self, g: &Lane<T>, s: &Lane<T>, j0: usize, valid: usize, out: &mut Lane<T>) {
        let rho = if valid == LANES {
            *lane(&self.rho[j0..j0 + LANES])
        } else {
            // Padding lanes get ρ = 1 (their result is discarded).
            let mut r = [T::ONE; LANES];
            r[..valid].copy_from_slice(&self.rho[j0..j0 + valid]);
            r
        };
        for l in 0..LANES {
            out[l] = g[l] - s[l] * self.half_inv_eps / (self.rho_x + rho[l]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The bodies.

/// The logits `a_j` of chunk `j0..j0 + valid` (the chunk is in `buf` after `fill`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn chunk_logits<T: Real, L: Load<T>, W: Metric<T>, B: Kappa<T>>(
    ld: &L,
    buf: &[Lane<T>; MAX_FUSED_DIM],
    x: &[T],
    w: &W,
    g: &[T],
    bw: &B,
    j0: usize,
    valid: usize,
) -> Lane<T> {
    let mut s = [T::ZERO; LANES];
    if x.len() == 6 {
        // The closure heads' d_α: a loop of known length, unrolled (same operations).
        for (c, &xc) in x[..6].iter().enumerate() {
            w.add_sq(&mut s, xc, ld.col(buf, c, j0, valid), c);
        }
    } else {
        for (c, &xc) in x.iter().enumerate() {
            w.add_sq(&mut s, xc, ld.col(buf, c, j0, valid), c);
        }
    }
    let gl = if valid == LANES {
        *lane(&g[j0..j0 + LANES])
    } else {
        lane_of(g, j0, valid)
    };
    let mut a = [T::ZERO; LANES];
    bw.logits(&gl, &s, j0, valid, &mut a);
    a
}

/// `e_l = exp(a_l − G)`, with `+0` in the lanes past `valid`.
#[inline(always)]
fn chunk_exp<T: Real>(a: &Lane<T>, shift: T, valid: usize) -> Lane<T> {
    let mut shifted = [[T::ZERO; LANES]; 1];
    for l in 0..LANES {
        shifted[0][l] = a[l] - shift;
    }
    let [mut e] = T::exp_poly_block(&shifted);
    if valid < LANES {
        e[valid..].fill(T::ZERO);
    }
    e
}

/// The documented lane reduction: `v_l ← v_l + v_{l+h}` for `h = 8, 4, 2, 1`.
#[inline(always)]
pub(crate) fn reduce_lanes<T: Real>(mut v: Lane<T>) -> T {
    let mut h = LANES / 2;
    while h > 0 {
        for l in 0..h {
            v[l] += v[l + h];
        }
        h /= 2;
    }
    v[0]
}

/// Accumulates chunk `j0..j0 + valid` into the lane sums: `sum += e`, `acc_k += e · x_t(k)`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn sums_chunk<T: Real, L: Load<T>, W: Metric<T>, B: Kappa<T>, const NT: usize>(
    ld: &L,
    buf: &mut [Lane<T>; MAX_FUSED_DIM],
    x: &[T],
    w: &W,
    g: &[T],
    bw: &B,
    targets: &[usize],
    shift: T,
    j0: usize,
    valid: usize,
    sum: &mut Lane<T>,
    acc: &mut [Lane<T>],
) {
    ld.fill(j0, valid, buf);
    let a = chunk_logits(ld, buf, x, w, g, bw, j0, valid);
    let e = chunk_exp(&a, shift, valid);
    for l in 0..LANES {
        sum[l] += e[l];
    }
    // NT > 0: exactly NT targets, unrolled; NT = 0: `targets.len()` of them.
    let nt = if NT > 0 { NT } else { targets.len() };
    for k in 0..nt {
        let col = ld.col(buf, targets[k], j0, valid);
        let acck = &mut acc[k];
        for l in 0..LANES {
            acck[l] += e[l] * col[l];
        }
    }
}

#[inline(always)]
fn body_sums<T: Real, L: Load<T>, W: Metric<T>, B: Kappa<T>>(
    ld: L,
    x: &[T],
    w: W,
    g: &[T],
    bw: B,
    targets: &[usize],
    shift: T,
) -> Sums<T> {
    match targets.len() {
        1 => body_sums_n::<T, L, W, B, 1>(ld, x, w, g, bw, targets, shift),
        _ => body_sums_n::<T, L, W, B, 0>(ld, x, w, g, bw, targets, shift),
    }
}

/// Chunks per block: two chunks in flight hide the latency of the exponential (measured: one
/// chunk is 1.4× slower, and blocks of more than 32 lanes fall off a code-generation cliff, 2–6×
/// slower, on AVX-512). The order of accumulation is unchanged: chunk by chunk.
const BLOCK_CHUNKS: usize = 2;

/// Accumulates the `K` full chunks from `j0` in order; their distances, logits and exponentials
/// are computed step by step across the block, so the vector unit has `K` chunks of independent
/// work at every step (the order of accumulation is unchanged: chunk by chunk).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn sums_block<T: Real, L: Load<T>, W: Metric<T>, B: Kappa<T>, const NT: usize, const K: usize>(
    ld: &L,
    bufs: &mut [[Lane<T>; MAX_FUSED_DIM]; K],
    x: &[T],
    w: &W,
    g: &[T],
    bw: &B,
    targets: &[usize],
    shift: T,
    j0: usize,
    sum: &mut Lane<T>,
    acc: &mut [Lane<T>],
) {
    for (k, buf) in bufs.iter_mut().enumerate() {
        ld.fill(j0 + k * LANES, LANES, buf);
    }
    let mut s = [[T::ZERO; LANES]; K];
    if x.len() == 6 {
        for (c, &xc) in x[..6].iter().enumerate() {
            for (k, sk) in s.iter_mut().enumerate() {
                w.add_sq(sk, xc, ld.col(&bufs[k], c, j0 + k * LANES, LANES), c);
            }
        }
    } else {
        for (c, &xc) in x.iter().enumerate() {
            for (k, sk) in s.iter_mut().enumerate() {
                w.add_sq(sk, xc, ld.col(&bufs[k], c, j0 + k * LANES, LANES), c);
            }
        }
    }
    let mut shifted = [[T::ZERO; LANES]; K];
    for (k, sh) in shifted.iter_mut().enumerate() {
        let jk = j0 + k * LANES;
        let mut a = [T::ZERO; LANES];
        bw.logits(lane(&g[jk..jk + LANES]), &s[k], jk, LANES, &mut a);
        for l in 0..LANES {
            sh[l] = a[l] - shift;
        }
    }
    let e = T::exp_poly_block(&shifted);
    let nt = if NT > 0 { NT } else { targets.len() };
    for (k, ek) in e.iter().enumerate() {
        for l in 0..LANES {
            sum[l] += ek[l];
        }
        for (t, acct) in targets[..nt].iter().zip(acc.iter_mut()) {
            let col = ld.col(&bufs[k], *t, j0 + k * LANES, LANES);
            for l in 0..LANES {
                acct[l] += ek[l] * col[l];
            }
        }
    }
}

#[inline(always)]
fn body_sums_n<T: Real, L: Load<T>, W: Metric<T>, B: Kappa<T>, const NT: usize>(
    ld: L,
    x: &[T],
    w: W,
    g: &[T],
    bw: B,
    targets: &[usize],
    shift: T,
) -> Sums<T> {
    body_sums_k::<T, L, W, B, NT, BLOCK_CHUNKS>(ld, x, w, g, bw, targets, shift)
}

#[inline(always)]
fn body_sums_k<T: Real, L: Load<T>, W: Metric<T>, B: Kappa<T>, const NT: usize, const K: usize>(
    ld: L,
    x: &[T],
    w: W,
    g: &[T],
    bw: B,
    targets: &[usize],
    shift: T,
) -> Sums<T> {
    let nt = targets.len().min(MAX_FUSED_DIM);
    let targets = &targets[..nt];
    let mut bufs = [[[T::ZERO; LANES]; MAX_FUSED_DIM]; K];
    let mut sum = [T::ZERO; LANES];
    let mut acc = [[T::ZERO; LANES]; MAX_FUSED_DIM];
    let m = ld.m();
    let full = m / LANES;
    let blocks = full / K;
    for b in 0..blocks {
        sums_block::<T, L, W, B, NT, K>(
            &ld,
            &mut bufs,
            x,
            &w,
            g,
            &bw,
            targets,
            shift,
            b * K * LANES,
            &mut sum,
            &mut acc,
        );
    }
    for q in blocks * K..full {
        sums_chunk::<T, L, W, B, NT>(
            &ld,
            &mut bufs[0],
            x,
            &w,
            g,
            &bw,
            targets,
            shift,
            q * LANES,
            LANES,
            &mut sum,
            &mut acc,
        );
    }
    if m % LANES != 0 {
        sums_chunk::<T, L, W, B, NT>(
            &ld,
            &mut bufs[0],
            x,
            &w,
            g,
            &bw,
            targets,
            shift,
            full * LANES,
            m % LANES,
            &mut sum,
            &mut acc,
        );
    }
    let mut out = Sums {
        shift,
        sum: reduce_lanes(sum),
        targets: [T::ZERO; MAX_FUSED_DIM],
    };
    for (o, a) in out.targets[..nt].iter_mut().zip(acc) {
        *o = reduce_lanes(a);
    }
    out
}

#[inline(always)]
fn body_max<T: Real, L: Load<T>, W: Metric<T>, B: Kappa<T>>(
    ld: L,
    x: &[T],
    w: W,
    g: &[T],
    bw: B,
) -> T {
    let mut buf = [[T::ZERO; LANES]; MAX_FUSED_DIM];
    let mut mx = [T::NEG_INFINITY; LANES];
    let m = ld.m();
    let mut j0 = 0;
    while j0 < m {
        let valid = (m - j0).min(LANES);
        ld.fill(j0, valid, &mut buf);
        let a = chunk_logits(&ld, &buf, x, &w, g, &bw, j0, valid);
        for l in 0..valid {
            mx[l] = mx[l].max(a[l]);
        }
        j0 += LANES;
    }
    mx.iter().fold(T::NEG_INFINITY, |m, &v| m.max(v))
}

#[inline(always)]
fn body_row<T: Real, L: Load<T>, W: Metric<T>, B: Kappa<T>>(
    ld: L,
    x: &[T],
    w: W,
    g: &[T],
    bw: B,
    shift: T,
    out: &mut [T],
) -> T {
    let mut buf = [[T::ZERO; LANES]; MAX_FUSED_DIM];
    let mut sum = [T::ZERO; LANES];
    let m = ld.m();
    let mut j0 = 0;
    while j0 < m {
        let valid = (m - j0).min(LANES);
        ld.fill(j0, valid, &mut buf);
        let a = chunk_logits(&ld, &buf, x, &w, g, &bw, j0, valid);
        let e = chunk_exp(&a, shift, valid);
        for l in 0..LANES {
            sum[l] += e[l];
        }
        out[j0..j0 + valid].copy_from_slice(&e[..valid]);
        j0 += LANES;
    }
    reduce_lanes(sum)
}

#[cfg(test)]
mod symmetric_tests;
#[cfg(test)]
mod tests;
