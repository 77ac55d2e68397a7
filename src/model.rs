//! The trained-model image: one little-endian byte layout that is the same in memory, in a file
//! and in a microcontroller's flash, written from a fit without a heap and read back zero-copy.
//!
//! # Layout (format 1.1; 1.0 is read too)
//!
//! All integers and floats are little-endian; `F` is the float size (4 for `f32`, 8 for `f64`).
//! Every section starts at a multiple of 16 bytes (zero padding), so a 16-byte aligned image can
//! be used in place as `&[f32]`/`&[f64]`.
//!
//! | bytes | header field |
//! | --- | --- |
//! | 0..8 | magic `SBRIDGE\0` |
//! | 8..10, 10..12 | format version major (1), minor (1; images of minor 0 are read too) |
//! | 12..16 | header length `H` (≥ 128; a newer minor version may append fields) |
//! | 16..20 | float size `F` (4 or 8) |
//! | 20..24 | flags: bit 0 variable bandwidth, bit 1 per-coordinate scales; other bits zero |
//! | 24..32 | total image length in bytes |
//! | 32..36 | `d`, the full state dimension |
//! | 36..40 | number of heads `n` |
//! | 40..48 | `M`, samples per head |
//! | 48..56 | `ε` (f64) |
//! | 56..64 | `β` (f64; 0 when the bandwidth is fixed) |
//! | 64..68 | head entry length `E` (≥ 96; ≥ 112 from minor 1) |
//! | 68..120 | reserved, zero |
//! | 120..128 | FNV-1a-64 checksum of the whole image with these 8 bytes taken as zero |
//!
//! Then `n` head entries of `E` bytes at offset `H` (the first 112 bytes defined — 96 in minor 0 —,
//! the rest zero):
//!
//! | bytes | head entry field |
//! | --- | --- |
//! | 0..4, 4..8 | `d_α` (1..=16), number of targets `n_t` (1..=`d_α`) |
//! | 8..16 | `log Z'` of the head's KDE (f64; 0 when fixed bandwidth) |
//! | 16..80 | byte offsets of the sections: coords, targets, data, log_v, scales, chol, whitened, rho (u64 each; 0 when absent) |
//! | 80..84 | Sinkhorn iterations of the fit (u32) |
//! | 88..96 | final Sinkhorn residual (f64) |
//! | 96..104 | minor ≥ 1: `max_j g_j` (f64, exactly the head's float value): the fused pass's shift |
//! | 104..112 | minor ≥ 1: byte offset of the columns section (u64) |
//!
//! Then, head by head and in this order, the sections: neighbourhood coordinates (`d_α` u32),
//! target coordinates (`n_t` u32, global indices), restricted samples (`M × d_α` F), `g = log v`
//! (`M` F), and when flagged the restricted scales (`d_α` F), the KDE Cholesky factor
//! (`d_α × d_α` F), whitened samples (`M × d_α` F) and `ρ_i` (`M` F), and from minor 1 the
//! restricted samples again, coordinate-major (`d_α × M` F, `x[c M + j]`), so that the fused
//! pass's lanes load contiguously ([`crate::fused`]). A minor-1 image is about `M d_α F` bytes per
//! head larger than a minor-0 one; opening checks that the copy and `max_j g_j` are exact, and a
//! minor-0 image gives the same numbers through the slower row-major loads.
//!
//! A reader accepts any minor version of its major version and ignores header and entry bytes
//! past the ones it knows; section offsets must be exactly the canonical ones above, so a lying
//! offset or size is rejected. The checksum detects every single-byte corruption (each FNV-1a
//! step is a bijection of the running hash for a fixed byte sequence).

use crate::bandwidth::{self, VariableBandwidth};
use crate::bridge::{max_of, transpose_samples, Bridge};
use crate::dataset::Dataset;
use crate::error::{check_room, Arg, Error};
use crate::fit::FitConfig;
use crate::layout::{HeadLayout, MAX_HEAD_DIM};
use crate::real::{all_finite, Real};
#[cfg(not(feature = "std"))]
use crate::sinkhorn::sinkhorn;
use crate::sinkhorn::sinkhorn_workspace_len;
use core::marker::PhantomData;

/// Magic bytes at the start of every image.
pub const MAGIC: [u8; 8] = *b"SBRIDGE\0";
/// Major format version written and read.
pub const FORMAT_MAJOR: u16 = 1;
/// Minor format version written (1: coordinate-major samples and `max_j g_j` per head).
pub const FORMAT_MINOR: u16 = 1;
/// Header length written by this version.
pub const HEADER_LEN: usize = 128;
/// Head entry length written by this version.
pub const HEAD_ENTRY_LEN: usize = 112;
/// Head entry length of minor version 0.
const HEAD_ENTRY_LEN_1_0: usize = 96;
/// Alignment of the image and of every section.
pub const ALIGN: usize = 16;

const FLAG_VARIABLE: u32 = 1;
const FLAG_SCALES: u32 = 2;
const CHECKSUM_AT: usize = 120;

/// A float type that can live in a model image.
pub trait ImageFloat: Real + bytemuck::Pod {}
impl ImageFloat for f32 {}
impl ImageFloat for f64 {}

/// FNV-1a 64 of `bytes`, with the checksum field (bytes 120..128) taken as zero.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, &b) in bytes.iter().enumerate() {
        let b = if (CHECKSUM_AT..CHECKSUM_AT + 8).contains(&i) {
            0
        } else {
            b
        };
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `x` rounded up to a multiple of [`ALIGN`]; `None` on overflow.
const fn align_up(x: usize) -> Option<usize> {
    match x.checked_add(ALIGN - 1) {
        Some(v) => Some(v / ALIGN * ALIGN),
        None => None,
    }
}

/// Byte offsets of one head's sections (0 for absent ones) and where the next head starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Sections {
    coords: usize,
    targets: usize,
    data: usize,
    log_v: usize,
    scales: usize,
    chol: usize,
    whitened: usize,
    rho: usize,
    columns: usize,
    end: usize,
}

/// Lays out one head's sections from `at` (`columns`: minor ≥ 1); `None` on arithmetic overflow.
fn head_sections(
    at: usize,
    fs: usize,
    m: usize,
    da: usize,
    nt: usize,
    flags: u32,
    columns: bool,
) -> Option<Sections> {
    let mut pos = at;
    let mut take = |bytes: usize| -> Option<usize> {
        let here = pos;
        pos = align_up(pos.checked_add(bytes)?)?;
        Some(here)
    };
    let coords = take(4 * da)?;
    let targets = take(4 * nt)?;
    let data = take(fs.checked_mul(m)?.checked_mul(da)?)?;
    let log_v = take(fs.checked_mul(m)?)?;
    let scales = if flags & FLAG_SCALES != 0 {
        take(fs * da)?
    } else {
        0
    };
    let (chol, whitened, rho) = if flags & FLAG_VARIABLE != 0 {
        (
            take(fs * da * da)?,
            take(fs.checked_mul(m)?.checked_mul(da)?)?,
            take(fs.checked_mul(m)?)?,
        )
    } else {
        (0, 0, 0)
    };
    let columns = if columns {
        take(fs.checked_mul(m)?.checked_mul(da)?)?
    } else {
        0
    };
    Some(Sections {
        coords,
        targets,
        data,
        log_v,
        scales,
        chol,
        whitened,
        rho,
        columns,
        end: pos,
    })
}

fn flags_for(variable: bool, scales: bool) -> u32 {
    (if variable { FLAG_VARIABLE } else { 0 }) | (if scales { FLAG_SCALES } else { 0 })
}

/// Bytes needed for the image of `layout` with `m` samples of float size `size_of::<T>()`.
pub fn image_len<T: ImageFloat>(
    layout: &HeadLayout<'_>,
    m: usize,
    variable_bandwidth: bool,
    scales: bool,
) -> usize {
    let flags = flags_for(variable_bandwidth, scales);
    let fs = core::mem::size_of::<T>();
    let table = layout
        .n_heads()
        .checked_mul(HEAD_ENTRY_LEN)
        .and_then(|t| align_up(t.checked_add(HEADER_LEN)?));
    let Some(mut at) = table else {
        return usize::MAX;
    };
    for h in 0..layout.n_heads() {
        match head_sections(
            at,
            fs,
            m,
            layout.neighbourhood(h).len(),
            layout.targets(h).len(),
            flags,
            true,
        ) {
            Some(s) => at = s.end,
            None => return usize::MAX,
        }
    }
    at
}

/// Work space of [`write_model`] in values of `T`.
pub const fn write_workspace_len(m: usize) -> usize {
    sinkhorn_workspace_len(m, MAX_HEAD_DIM)
}

/// What fitting the heads of a model did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelFitReport {
    /// Number of heads fitted.
    pub heads: usize,
    /// Largest Sinkhorn iteration count over the heads.
    pub max_iterations: u32,
    /// Largest final Sinkhorn residual over the heads.
    pub max_residual: f64,
    /// Image length in bytes.
    pub image_len: usize,
    /// Largest kernel mass a row of a head's truncated Sinkhorn run left out
    /// ([`SinkhornReport::neglected`](crate::SinkhornReport::neglected); `0` without
    /// [`SinkhornOptions::truncation`](crate::SinkhornOptions::truncation), and the bound `τ`
    /// itself for a head that did not converge). Not stored in the image.
    pub max_neglected: f64,
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}
fn get_f64(b: &[u8], at: usize) -> f64 {
    f64::from_bits(get_u64(b, at))
}

fn check_platform() -> Result<(), Error> {
    if cfg!(target_endian = "big") {
        Err(Error::Unsupported)
    } else {
        Ok(())
    }
}

fn cast<T: ImageFloat>(b: &[u8]) -> Result<&[T], Error> {
    bytemuck::try_cast_slice(b).map_err(|_| Error::ImageMisaligned)
}
fn cast_mut<T: ImageFloat>(b: &mut [u8]) -> Result<&mut [T], Error> {
    bytemuck::try_cast_slice_mut(b).map_err(|_| Error::ImageMisaligned)
}
fn cast_u32(b: &[u8]) -> Result<&[u32], Error> {
    bytemuck::try_cast_slice(b).map_err(|_| Error::ImageMisaligned)
}

/// The outcome of fitting one head in place.
#[derive(Clone, Copy, Debug, PartialEq)]
struct HeadFit {
    log_z: f64,
    log_v_max: f64,
    iterations: u32,
    residual: f64,
    neglected: f64,
    converged: bool,
}

/// Splits `region` into the byte ranges `(start, len)` given in increasing, disjoint order.
fn carve<const N: usize>(region: &mut [u8], ranges: [(usize, usize); N]) -> [&mut [u8]; N] {
    let mut rest = region;
    let mut cursor = 0;
    let mut out: [&mut [u8]; N] = core::array::from_fn(|_| &mut [][..]);
    for (k, (start, len)) in ranges.into_iter().enumerate() {
        let start = start.max(cursor);
        let (_, tail) = core::mem::take(&mut rest).split_at_mut(start - cursor);
        let (piece, tail) = tail.split_at_mut(len);
        out[k] = piece;
        rest = tail;
        cursor = start + len;
    }
    out
}

/// Writes head `(nb, tg)` into its image region (`s` relative to the region's start): coordinates,
/// restricted samples and scales, then fits its variable bandwidth and Sinkhorn scaling in place
/// (its rows split over `sinkhorn_threads` host threads with the `std` feature).
#[allow(clippy::too_many_arguments)]
fn fill_head<T: ImageFloat>(
    region: &mut [u8],
    s: &Sections,
    full: &Dataset<'_, T>,
    nb: &[u32],
    tg: &[u32],
    cfg: &FitConfig<T>,
    work: &mut [T],
    sinkhorn_threads: usize,
) -> Result<HeadFit, Error> {
    let (fs, m, da, d) = (core::mem::size_of::<T>(), full.m(), nb.len(), full.d());
    for (k, &c) in nb.iter().enumerate() {
        put_u32(region, s.coords + 4 * k, c);
    }
    for (k, &c) in tg.iter().enumerate() {
        put_u32(region, s.targets + 4 * k, c);
    }
    let has_scales = full.scales().is_some();
    let variable = cfg.beta.is_some();
    let len_if = |on: bool, n: usize| if on { fs * n } else { 0 };
    let [data_b, logv_b, scales_b, chol_b, wh_b, rho_b, cols_b] = carve(
        region,
        [
            (s.data, fs * m * da),
            (s.log_v, fs * m),
            (s.scales, len_if(has_scales, da)),
            (s.chol, len_if(variable, da * da)),
            (s.whitened, len_if(variable, m * da)),
            (s.rho, len_if(variable, m)),
            (s.columns, fs * m * da),
        ],
    );
    let rdata: &mut [T] = cast_mut(data_b)?;
    for (row, out) in full.data().chunks_exact(d).zip(rdata.chunks_exact_mut(da)) {
        for (o, &c) in out.iter_mut().zip(nb) {
            *o = row[c as usize];
        }
    }
    let rscales: Option<&[T]> = match full.scales() {
        Some(sc) => {
            let out: &mut [T] = cast_mut(scales_b)?;
            for (o, &c) in out.iter_mut().zip(nb) {
                *o = sc[c as usize];
            }
            Some(out)
        }
        None => None,
    };
    let rdata: &[T] = rdata;
    let (rho, log_z): (Option<&[T]>, f64) = match cfg.beta {
        Some(beta) => {
            let (chol, wh, rho) = (cast_mut(chol_b)?, cast_mut(wh_b)?, cast_mut(rho_b)?);
            let rep = bandwidth::fit_variable_bandwidth(rdata, da, beta, chol, wh, rho, work)?;
            (Some(&*rho), rep.log_z)
        }
        None => (None, 0.0),
    };
    transpose_samples(rdata, da, cast_mut(cols_b)?);
    let head_data = Dataset::from_validated(rdata, da, rscales);
    let log_v: &mut [T] = cast_mut(logv_b)?;
    #[cfg(feature = "std")]
    let result = crate::sinkhorn::sinkhorn_threaded(
        &head_data,
        cfg.eps,
        rho,
        cfg.sinkhorn,
        log_v,
        work,
        None,
        sinkhorn_threads,
    );
    #[cfg(not(feature = "std"))]
    let result = {
        let _ = sinkhorn_threads;
        sinkhorn(&head_data, cfg.eps, rho, cfg.sinkhorn, log_v, work, None)
    };
    let (iterations, residual, neglected, converged) = match result {
        Ok(r) => (r.iterations, r.residual, r.neglected, true),
        Err(Error::NotConverged {
            iterations,
            residual,
        }) => (
            iterations,
            residual,
            cfg.sinkhorn.truncation.to_f64(),
            false,
        ),
        Err(e) => return Err(e),
    };
    Ok(HeadFit {
        log_z,
        log_v_max: max_of(log_v).to_f64(),
        iterations,
        residual,
        neglected,
        converged,
    })
}

/// Everything [`write_model`] checks before it writes a byte; returns `(M, flags, total length)`.
fn check_write_args<T: ImageFloat>(
    buf: &[u8],
    full: &Dataset<'_, T>,
    layout: &HeadLayout<'_>,
    cfg: &FitConfig<T>,
) -> Result<(usize, u32, usize), Error> {
    check_platform()?;
    if layout.d() != full.d() {
        return Err(Error::LengthMismatch {
            arg: Arg::State,
            expected: full.d(),
            got: layout.d(),
        });
    }
    if !(cfg.eps.is_finite() && cfg.eps > T::ZERO) {
        return Err(Error::InvalidEpsilon);
    }
    if let Some(b) = cfg.beta {
        if !(b.is_finite() && b <= T::ZERO) {
            return Err(Error::InvalidBeta);
        }
    }
    if !(cfg.sinkhorn.tol.is_finite() && cfg.sinkhorn.tol > T::ZERO) {
        return Err(Error::InvalidTolerance);
    }
    if cfg.sinkhorn.max_iter == 0 {
        return Err(Error::ZeroIterations);
    }
    // The overflow rule's fixed-bandwidth part, before any fitting (opening the written image
    // checks all of it, the variable bandwidth's `ρ_min` and whitening included).
    let log2_kappa = -libm::log2(4.0 * cfg.eps.to_f64());
    let log2_w = full.scales().map_or(0.0, |s| {
        s.iter()
            .map(|&v| -2.0 * libm::log2(v.to_f64()))
            .fold(0.0, f64::max)
    });
    if log2_kappa.max(0.0) + log2_w.max(0.0) > T::MAX_LOG2_KAPPA {
        return Err(Error::OutOfRange);
    }
    let m = full.m();
    if m > u32::MAX as usize || full.d() > u32::MAX as usize {
        return Err(Error::Capacity {
            limit: u32::MAX as usize,
            requested: m.max(full.d()),
        });
    }
    let (variable, has_scales) = (cfg.beta.is_some(), full.scales().is_some());
    let total = image_len::<T>(layout, m, variable, has_scales);
    check_room(Arg::Output, total, buf.len())?;
    if !(buf.as_ptr() as usize).is_multiple_of(ALIGN) {
        return Err(Error::ImageMisaligned);
    }
    Ok((m, flags_for(variable, has_scales), total))
}

/// Fits every head of `layout` on `data` (`M × d`, sample-major; `scales` optional, length `d`)
/// and writes the model image into the start of `buf` (16-byte aligned, at least
/// [`image_len`] bytes); `work` needs [`write_workspace_len`]`(M)` values. Each head gets its
/// restricted samples `x^(j)_[α]`, restricted scales, its own variable bandwidth (if `cfg.beta`
/// is set) and its own Sinkhorn scaling.
///
/// Returns the opened view of the written image and a report. If a head's Sinkhorn run misses the
/// tolerance, the image is still completed (with that head's best scaling) and
/// [`Error::NotConverged`] with the worst residual is returned; [`ModelView::head_fit`] tells
/// which heads. Argument errors are returned before anything is written.
pub fn write_model<'b, T: ImageFloat>(
    buf: &'b mut [u8],
    data: &[T],
    d: usize,
    scales: Option<&[T]>,
    layout: &HeadLayout<'_>,
    cfg: &FitConfig<T>,
    work: &mut [T],
) -> Result<(ModelView<'b, T>, ModelFitReport), Error> {
    let full = Dataset::new(data, d, scales)?;
    let (m, flags, total) = check_write_args(buf, &full, layout, cfg)?;
    check_room(Arg::Workspace, write_workspace_len(m), work.len())?;
    let img = &mut buf[..total];
    write_header(img, &full, layout.n_heads(), flags, total, cfg);
    let mut report = ModelFitReport {
        heads: layout.n_heads(),
        max_iterations: 0,
        max_residual: 0.0,
        image_len: total,
        max_neglected: 0.0,
    };
    let mut all_converged = true;
    let mut places = HeadPlaces::new(layout, m, core::mem::size_of::<T>(), flags)?;
    for h in 0..layout.n_heads() {
        let s = places.next_head(h)?;
        let (nb, tg) = (layout.neighbourhood(h), layout.targets(h));
        let fit = fill_head(
            &mut img[s.coords..s.end],
            &relative(&s),
            &full,
            nb,
            tg,
            cfg,
            work,
            1,
        )?;
        write_entry(img, h, nb.len(), tg.len(), &s, &fit);
        report.max_iterations = report.max_iterations.max(fit.iterations);
        report.max_residual = report.max_residual.max(fit.residual);
        report.max_neglected = report.max_neglected.max(fit.neglected);
        all_converged &= fit.converged;
    }
    seal(buf, total, report, all_converged)
}

/// [`write_model`] with the heads fitted on up to `threads` host threads (heads are independent;
/// each thread fits a contiguous run of heads into its own disjoint region of the image with its
/// own work space); with fewer heads than threads, each head's Sinkhorn iteration splits its rows
/// over the spare threads ([`crate::sinkhorn::sinkhorn_threaded`]). The bytes written are
/// identical to [`write_model`]'s for any thread count.
#[cfg(feature = "std")]
pub fn write_model_threaded<'b, T: ImageFloat>(
    buf: &'b mut [u8],
    data: &[T],
    d: usize,
    scales: Option<&[T]>,
    layout: &HeadLayout<'_>,
    cfg: &FitConfig<T>,
    threads: usize,
) -> Result<(ModelView<'b, T>, ModelFitReport), Error> {
    use std::vec::Vec;
    let full = Dataset::new(data, d, scales)?;
    let (m, flags, total) = check_write_args(buf, &full, layout, cfg)?;
    let n = layout.n_heads();
    let img = &mut buf[..total];
    write_header(img, &full, n, flags, total, cfg);
    let mut places = HeadPlaces::new(layout, m, core::mem::size_of::<T>(), flags)?;
    let mut sections = Vec::with_capacity(n);
    for h in 0..n {
        sections.push(places.next_head(h)?);
    }
    // Split the image after the head table into one region per head (they are contiguous).
    let first = sections.first().map_or(total, |s| s.coords);
    let (table, mut rest) = img.split_at_mut(first);
    let mut regions = Vec::with_capacity(n);
    for s in &sections {
        let (r, tail) = rest.split_at_mut(s.end - s.coords);
        regions.push(r);
        rest = tail;
    }
    let row_threads = (threads / n.max(1)).max(1);
    let threads = threads.clamp(1, n.max(1));
    let per = n.div_ceil(threads);
    let mut fits: Vec<Result<HeadFit, Error>> = Vec::with_capacity(n);
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        let mut first_head = 0;
        let mut regions = regions.into_iter();
        while first_head < n {
            let count = per.min(n - first_head);
            let chunk: Vec<&mut [u8]> = regions.by_ref().take(count).collect();
            let secs = &sections[first_head..first_head + count];
            let full = &full;
            let h0 = first_head;
            handles.push(scope.spawn(move || {
                let mut work = std::vec![T::ZERO; write_workspace_len(m)];
                chunk
                    .into_iter()
                    .zip(secs)
                    .enumerate()
                    .map(|(k, (region, s))| {
                        let h = h0 + k;
                        let (nb, tg) = (layout.neighbourhood(h), layout.targets(h));
                        fill_head(
                            region,
                            &relative(s),
                            full,
                            nb,
                            tg,
                            cfg,
                            &mut work,
                            row_threads,
                        )
                    })
                    .collect::<Vec<_>>()
            }));
            first_head += count;
        }
        for handle in handles {
            match handle.join() {
                Ok(v) => fits.extend(v),
                Err(_) => fits.push(Err(Error::Unsupported)),
            }
        }
    });
    let _ = table;
    let mut report = ModelFitReport {
        heads: n,
        max_iterations: 0,
        max_residual: 0.0,
        image_len: total,
        max_neglected: 0.0,
    };
    let mut all_converged = true;
    for (h, (fit, s)) in fits.into_iter().zip(&sections).enumerate() {
        let fit = fit?;
        write_entry(
            img,
            h,
            layout.neighbourhood(h).len(),
            layout.targets(h).len(),
            s,
            &fit,
        );
        report.max_iterations = report.max_iterations.max(fit.iterations);
        report.max_residual = report.max_residual.max(fit.residual);
        report.max_neglected = report.max_neglected.max(fit.neglected);
        all_converged &= fit.converged;
    }
    seal(buf, total, report, all_converged)
}

/// Writes the header fields (the head table and sections are written per head).
fn write_header<T: ImageFloat>(
    img: &mut [u8],
    full: &Dataset<'_, T>,
    n: usize,
    flags: u32,
    total: usize,
    cfg: &FitConfig<T>,
) {
    img.fill(0);
    img[..8].copy_from_slice(&MAGIC);
    img[8..10].copy_from_slice(&FORMAT_MAJOR.to_le_bytes());
    img[10..12].copy_from_slice(&FORMAT_MINOR.to_le_bytes());
    put_u32(img, 12, HEADER_LEN as u32);
    put_u32(img, 16, core::mem::size_of::<T>() as u32);
    put_u32(img, 20, flags);
    put_u64(img, 24, total as u64);
    put_u32(img, 32, full.d() as u32);
    put_u32(img, 36, n as u32);
    put_u64(img, 40, full.m() as u64);
    put_u64(img, 48, cfg.eps.to_f64().to_bits());
    put_u64(img, 56, cfg.beta.map_or(0.0, |b| b.to_f64()).to_bits());
    put_u32(img, 64, HEAD_ENTRY_LEN as u32);
}

/// The canonical places of the heads' sections, head after head.
struct HeadPlaces<'l> {
    layout: &'l HeadLayout<'l>,
    m: usize,
    fs: usize,
    flags: u32,
    at: usize,
}

impl<'l> HeadPlaces<'l> {
    fn new(layout: &'l HeadLayout<'l>, m: usize, fs: usize, flags: u32) -> Result<Self, Error> {
        let at =
            align_up(HEADER_LEN + layout.n_heads() * HEAD_ENTRY_LEN).ok_or(Error::ImageCorrupt)?;
        Ok(HeadPlaces {
            layout,
            m,
            fs,
            flags,
            at,
        })
    }
    /// Sections of head `h` (call for `h = 0, 1, …` in order).
    fn next_head(&mut self, h: usize) -> Result<Sections, Error> {
        let (nb, tg) = (self.layout.neighbourhood(h), self.layout.targets(h));
        let s = head_sections(
            self.at,
            self.fs,
            self.m,
            nb.len(),
            tg.len(),
            self.flags,
            true,
        )
        .ok_or(Error::ImageCorrupt)?;
        self.at = s.end;
        Ok(s)
    }
}

/// Section offsets relative to the head's first byte (`s.coords`).
fn relative(s: &Sections) -> Sections {
    let at = s.coords;
    Sections {
        coords: 0,
        targets: s.targets - at,
        data: s.data - at,
        log_v: s.log_v - at,
        scales: s.scales.saturating_sub(at),
        chol: s.chol.saturating_sub(at),
        whitened: s.whitened.saturating_sub(at),
        rho: s.rho.saturating_sub(at),
        columns: s.columns.saturating_sub(at),
        end: s.end - at,
    }
}

/// Writes head `h`'s table entry.
fn write_entry(img: &mut [u8], h: usize, da: usize, nt: usize, s: &Sections, fit: &HeadFit) {
    let e = HEADER_LEN + h * HEAD_ENTRY_LEN;
    put_u32(img, e, da as u32);
    put_u32(img, e + 4, nt as u32);
    put_u64(img, e + 8, fit.log_z.to_bits());
    for (k, off) in [
        s.coords, s.targets, s.data, s.log_v, s.scales, s.chol, s.whitened, s.rho,
    ]
    .into_iter()
    .enumerate()
    {
        put_u64(img, e + 16 + 8 * k, off as u64);
    }
    put_u32(img, e + 80, fit.iterations);
    put_u64(img, e + 88, fit.residual.to_bits());
    put_u64(img, e + 96, fit.log_v_max.to_bits());
    put_u64(img, e + 104, s.columns as u64);
}

/// Writes the checksum, opens the image and reports (NotConverged when a head missed `tol`).
fn seal<T: ImageFloat>(
    buf: &mut [u8],
    total: usize,
    report: ModelFitReport,
    all_converged: bool,
) -> Result<(ModelView<'_, T>, ModelFitReport), Error> {
    let sum = checksum(&buf[..total]);
    put_u64(buf, CHECKSUM_AT, sum);
    let view = ModelView::open(&buf[..total])?;
    if all_converged {
        Ok((view, report))
    } else {
        Err(Error::NotConverged {
            iterations: report.max_iterations,
            residual: report.max_residual,
        })
    }
}

/// A validated model image: a cheap `Copy` view borrowing the bytes, `Send + Sync`.
#[derive(Clone, Copy, Debug)]
pub struct ModelView<'a, T> {
    bytes: &'a [u8],
    d: usize,
    m: usize,
    n_heads: usize,
    eps: T,
    beta: Option<T>,
    header_len: usize,
    entry_len: usize,
    flags: u32,
    /// Minor version ≥ 1: coordinate-major samples and `max_j g_j` in every head.
    columns: bool,
    _t: PhantomData<T>,
}

/// One head of a model: the coordinates it sees and writes and its bridge on the restricted data.
#[derive(Clone, Copy, Debug)]
pub struct Head<'a, T> {
    /// `Λ(α)`: global coordinates of the head's local dimensions.
    pub coords: &'a [u32],
    /// Global coordinates the head writes (each inside `coords`).
    pub targets: &'a [u32],
    /// The bridge on `x^(j)_[α]` (`M × d_α`).
    pub bridge: Bridge<'a, T>,
}

impl<T> Head<'_, T> {
    /// Position of global coordinate `c` within the neighbourhood.
    pub fn local_index(&self, c: u32) -> Option<usize> {
        self.coords.iter().position(|&k| k == c)
    }
}

impl<'a, T: ImageFloat> ModelView<'a, T> {
    /// Validates an image once — magic, version, float kind, sizes, canonical offsets, checksum,
    /// finite values, `v > 0`, `ρ > 0`, index ranges — and returns the view. `bytes` must be
    /// 16-byte aligned; bytes past the declared length are ignored. Costs one pass over the image.
    pub fn open(bytes: &'a [u8]) -> Result<Self, Error> {
        let view = Self::parse_header(bytes, true)?;
        view.validate_heads(view.first_section(), true)?;
        Ok(view)
    }

    /// Re-creates the view of an image that [`Self::open`] accepted (the C ABI keeps only the
    /// pointer between calls). Checks the header and the structure — sizes, canonical offsets,
    /// coordinate ranges — in `O(Σ_α d_α)`, but neither the checksum nor the values, so it costs
    /// nothing next to a bridge step. If the bytes changed after `open`, calls on the view may
    /// give wrong numbers or errors, but never panic or read out of bounds.
    pub fn reopen(bytes: &'a [u8]) -> Result<Self, Error> {
        let view = Self::parse_header(bytes, false)?;
        view.validate_heads(view.first_section(), false)?;
        Ok(view)
    }

    fn first_section(&self) -> usize {
        // parse_header checked that the table ends inside the image, so this cannot overflow.
        align_up(self.header_len + self.n_heads * self.entry_len).unwrap_or(usize::MAX)
    }

    fn parse_header(bytes: &'a [u8], verify_checksum: bool) -> Result<Self, Error> {
        check_platform()?;
        if bytes.len() < HEADER_LEN {
            return Err(Error::ImageTruncated);
        }
        if !(bytes.as_ptr() as usize).is_multiple_of(ALIGN) {
            return Err(Error::ImageMisaligned);
        }
        if bytes[..8] != MAGIC {
            return Err(Error::ImageBadMagic);
        }
        if get_u16(bytes, 8) != FORMAT_MAJOR {
            return Err(Error::ImageUnsupportedVersion);
        }
        let columns = get_u16(bytes, 10) >= 1;
        let fs = get_u32(bytes, 16) as usize;
        if fs != 4 && fs != 8 {
            return Err(Error::ImageCorrupt);
        }
        if fs != core::mem::size_of::<T>() {
            return Err(Error::ImageWrongFloatKind);
        }
        let total = get_u64(bytes, 24);
        if total > bytes.len() as u64 {
            return Err(Error::ImageTruncated);
        }
        let total = total as usize;
        if total < HEADER_LEN {
            return Err(Error::ImageCorrupt);
        }
        let bytes = &bytes[..total];
        if verify_checksum && checksum(bytes) != get_u64(bytes, CHECKSUM_AT) {
            return Err(Error::ImageChecksum);
        }
        let header_len = get_u32(bytes, 12) as usize;
        let entry_len = get_u32(bytes, 64) as usize;
        let flags = get_u32(bytes, 20);
        let d = get_u32(bytes, 32) as usize;
        let n_heads = get_u32(bytes, 36) as usize;
        let m = get_u64(bytes, 40);
        let eps = get_f64(bytes, 48);
        let beta = get_f64(bytes, 56);
        let structural = header_len >= HEADER_LEN
            && header_len.is_multiple_of(4)
            && entry_len
                >= if columns {
                    HEAD_ENTRY_LEN
                } else {
                    HEAD_ENTRY_LEN_1_0
                }
            && entry_len.is_multiple_of(8)
            && flags & !(FLAG_VARIABLE | FLAG_SCALES) == 0
            && d > 0
            && n_heads > 0
            && m > 0
            && m <= total as u64;
        if !structural {
            return Err(Error::ImageCorrupt);
        }
        // The values as the model's float type sees them (an f32 image cannot hold 1e-60).
        let (eps_t, beta_t) = (T::from_f64(eps), T::from_f64(beta));
        if !(eps_t.is_finite() && eps_t > T::ZERO) {
            return Err(Error::InvalidEpsilon);
        }
        let variable = flags & FLAG_VARIABLE != 0;
        if !(beta_t.is_finite() && beta_t <= T::ZERO) || (!variable && beta != 0.0) {
            return Err(Error::InvalidBeta);
        }
        let table_end = n_heads
            .checked_mul(entry_len)
            .and_then(|t| t.checked_add(header_len))
            .ok_or(Error::ImageCorrupt)?;
        if table_end > total {
            return Err(Error::ImageCorrupt);
        }
        Ok(ModelView {
            bytes,
            d,
            m: m as usize,
            n_heads,
            eps: eps_t,
            beta: variable.then_some(beta_t),
            header_len,
            entry_len,
            flags,
            columns,
            _t: PhantomData,
        })
    }

    /// `d_α` of head `h`, read from its entry (without building the head's views).
    pub(crate) fn head_dim(&self, h: usize) -> usize {
        get_u32(self.entry(h), 0) as usize
    }

    fn entry(&self, h: usize) -> &'a [u8] {
        let e = self.header_len + h * self.entry_len;
        let known = if self.columns {
            HEAD_ENTRY_LEN
        } else {
            HEAD_ENTRY_LEN_1_0
        };
        &self.bytes[e..e + known]
    }

    fn sections(&self, h: usize) -> Sections {
        let e = self.entry(h);
        let o = |k: usize| get_u64(e, 16 + 8 * k) as usize;
        Sections {
            coords: o(0),
            targets: o(1),
            data: o(2),
            log_v: o(3),
            scales: o(4),
            chol: o(5),
            whitened: o(6),
            rho: o(7),
            columns: if self.columns {
                get_u64(e, 104) as usize
            } else {
                0
            },
            end: 0,
        }
    }

    /// Structure of every head (dims, canonical offsets, coordinates); with `values`, also target
    /// uniqueness across heads and every value (finite data and weights, scales, bandwidth).
    fn validate_heads(&self, mut at: usize, values: bool) -> Result<(), Error> {
        let fs = core::mem::size_of::<T>();
        let total = self.bytes.len();
        for h in 0..self.n_heads {
            let e = self.entry(h);
            if e[84..88].iter().any(|&b| b != 0) {
                return Err(Error::ImageCorrupt);
            }
            let (da, nt) = (get_u32(e, 0) as usize, get_u32(e, 4) as usize);
            if da == 0 || da > MAX_HEAD_DIM || nt == 0 || nt > da {
                return Err(Error::ImageCorrupt);
            }
            let want = head_sections(at, fs, self.m, da, nt, self.flags, self.columns)
                .ok_or(Error::ImageCorrupt)?;
            let mut got = self.sections(h);
            got.end = want.end;
            if got != want || want.end > total {
                return Err(Error::ImageCorrupt);
            }
            at = want.end;
            let coords = cast_u32(&self.bytes[want.coords..want.coords + 4 * da])?;
            let targets = cast_u32(&self.bytes[want.targets..want.targets + 4 * nt])?;
            crate::layout::check_coords(self.d, coords)?;
            if !targets.iter().all(|t| coords.contains(t)) {
                return Err(Error::InvalidLayout);
            }
            if !values {
                continue;
            }
            for g in 0..h {
                let other = self.targets_of(g);
                if targets.iter().any(|t| other.contains(t)) {
                    return Err(Error::InvalidLayout);
                }
            }
            let head = self.head(h);
            let b = &head.bridge;
            crate::real::check_data(b.dataset().data())?;
            if !all_finite(b.log_v()) {
                return Err(Error::NonFiniteWeights);
            }
            if let Some(cols) = b.columns() {
                // The copy and the stored maximum must be exact: the fused pass relies on both.
                let data = b.dataset().data();
                let same = |a: T, b: T| a.to_f64().to_bits() == b.to_f64().to_bits();
                for (j, row) in data.chunks_exact(da).enumerate() {
                    for (c, &v) in row.iter().enumerate() {
                        if !same(cols[c * self.m + j], v) {
                            return Err(Error::ImageCorrupt);
                        }
                    }
                }
                if !same(b.log_v_max(), max_of(b.log_v())) {
                    return Err(Error::ImageCorrupt);
                }
            }
            if let Some(sc) = b.dataset().scales() {
                if !sc.iter().all(|&v| v.is_finite() && v > T::ZERO) {
                    return Err(Error::InvalidScale);
                }
            }
            if let Some(vb) = b.bandwidth() {
                let log_z = T::from_f64(get_f64(e, 8));
                VariableBandwidth::new(da, vb.beta(), log_z, vb.chol(), vb.whitened(), vb.rho())?;
            } else if get_u64(e, 8) != 0 {
                return Err(Error::ImageCorrupt);
            }
            check_kernel_range(b)?;
        }
        if at != total {
            return Err(Error::ImageCorrupt);
        }
        Ok(())
    }

    /// Whether a free coordinate `c` is the target of some head (so that a sweep changes it).
    pub fn is_target(&self, c: usize) -> bool {
        (0..self.n_heads).any(|h| self.targets_of(h).iter().any(|&t| t as usize == c))
    }

    fn targets_of(&self, h: usize) -> &'a [u32] {
        let s = self.sections(h);
        let nt = get_u32(self.entry(h), 4) as usize;
        cast_u32(&self.bytes[s.targets..s.targets + 4 * nt]).unwrap_or(&[])
    }

    /// Head `h` (`h < n_heads()`; out of range is [`Error::InvalidIndex`] through [`Self::try_head`]).
    ///
    /// # Panics
    /// Never for `h < n_heads()` on a view from [`Self::open`]; use [`Self::try_head`] for
    /// untrusted indices.
    pub fn head(&self, h: usize) -> Head<'a, T> {
        let e = self.entry(h);
        let s = self.sections(h);
        let (da, nt, m) = (get_u32(e, 0) as usize, get_u32(e, 4) as usize, self.m);
        let fs = core::mem::size_of::<T>();
        let slice = |off: usize, n: usize| -> &'a [T] {
            cast::<T>(&self.bytes[off..off + fs * n]).unwrap_or(&[])
        };
        let coords = cast_u32(&self.bytes[s.coords..s.coords + 4 * da]).unwrap_or(&[]);
        let targets = cast_u32(&self.bytes[s.targets..s.targets + 4 * nt]).unwrap_or(&[]);
        let scales = (self.flags & FLAG_SCALES != 0).then(|| slice(s.scales, da));
        let bw = self.beta.map(|beta| {
            VariableBandwidth::from_validated(
                beta,
                T::from_f64(get_f64(e, 8)),
                slice(s.chol, da * da),
                slice(s.whitened, m * da),
                slice(s.rho, m),
            )
        });
        let data = Dataset::from_validated(slice(s.data, m * da), da, scales);
        let log_v = slice(s.log_v, m);
        let (log_v_max, columns) = if self.columns {
            (T::from_f64(get_f64(e, 96)), Some(slice(s.columns, m * da)))
        } else {
            (max_of(log_v), None)
        };
        Head {
            coords,
            targets,
            bridge: Bridge::from_validated(data, self.eps, log_v, log_v_max, bw, columns),
        }
    }

    /// Head `h`, or [`Error::InvalidIndex`].
    pub fn try_head(&self, h: usize) -> Result<Head<'a, T>, Error> {
        if h < self.n_heads {
            Ok(self.head(h))
        } else {
            Err(Error::InvalidIndex)
        }
    }

    /// Sinkhorn iterations and final residual of head `h`'s fit.
    pub fn head_fit(&self, h: usize) -> Result<(u32, f64), Error> {
        if h >= self.n_heads {
            return Err(Error::InvalidIndex);
        }
        let e = self.entry(h);
        Ok((get_u32(e, 80), get_f64(e, 88)))
    }

    /// Full state dimension `d`.
    pub fn d(&self) -> usize {
        self.d
    }
    /// Samples per head `M`.
    pub fn m(&self) -> usize {
        self.m
    }
    /// Number of heads.
    pub fn n_heads(&self) -> usize {
        self.n_heads
    }
    /// `ε`.
    pub fn eps(&self) -> T {
        self.eps
    }
    /// `β` when the bandwidth is variable.
    pub fn beta(&self) -> Option<T> {
        self.beta
    }
    /// Whether per-coordinate scales are stored.
    pub fn has_scales(&self) -> bool {
        self.flags & FLAG_SCALES != 0
    }
    /// The image bytes (exactly the declared length).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// `true` when the model is one head seeing and writing all coordinates (the plain bridge).
    pub fn is_single_full_head(&self) -> bool {
        self.n_heads == 1 && {
            let h = self.head(0);
            h.coords.len() == self.d && h.targets.len() == self.d
        }
    }
    /// Largest neighbourhood `max_α d_α`.
    pub fn max_head_dim(&self) -> usize {
        (0..self.n_heads)
            .map(|h| get_u32(self.entry(h), 0) as usize)
            .max()
            .unwrap_or(0)
    }
    /// Training value of global coordinate `c` in sample `j`, read from the first head that sees
    /// `c`; `None` when no head sees it or `j ≥ M`.
    pub fn sample_value(&self, j: usize, c: u32) -> Option<T> {
        if j >= self.m {
            return None;
        }
        (0..self.n_heads).find_map(|h| {
            let head = self.head(h);
            head.local_index(c)
                .map(|l| head.bridge.dataset().sample(j)[l])
        })
    }
}

/// The model side of the overflow rule ([`Real::MAX_MAGNITUDE`]): the head's largest inverse
/// bandwidth `κ` (`1/(4ε)`, or `1/(2ε ρ_min)` for a variable bandwidth), its largest metric
/// weight `w_c = 1/s_c^2` and their product stay below `2^MAX_LOG2_KAPPA`, and a variable
/// bandwidth's whitening `L⁻¹` grows no admissible value past the same bound. Evaluated with
/// logarithms, so that checking cannot overflow. [`Error::OutOfRange`] otherwise.
fn check_kernel_range<T: Real>(b: &Bridge<'_, T>) -> Result<(), Error> {
    let lg = |v: f64| libm::log2(v);
    let eps = b.eps().to_f64();
    let log2_w = b.dataset().scales().map_or(0.0, |s| {
        s.iter().map(|&v| -2.0 * lg(v.to_f64())).fold(0.0, f64::max)
    });
    let log2_kappa = match b.bandwidth() {
        None => -lg(4.0 * eps),
        Some(vb) => {
            let rho_min = vb
                .rho()
                .iter()
                .fold(f64::INFINITY, |a, &r| a.min(r.to_f64()));
            -lg(2.0 * eps) - lg(rho_min)
        }
    };
    let gain = b.bandwidth().map_or(0.0, |vb| vb.log2_whitening_gain());
    let bound = T::MAX_LOG2_KAPPA;
    let ok = log2_kappa <= bound
        && log2_w <= bound
        && log2_kappa.max(0.0) + log2_w.max(0.0) <= bound
        && 2.0 * gain.max(0.0) <= bound;
    if ok {
        Ok(())
    } else {
        Err(Error::OutOfRange)
    }
}
