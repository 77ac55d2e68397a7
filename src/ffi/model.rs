//! Layouts, fitting a model image, opening it, and what a model holds.

use super::args::{
    disjoint, input, input_opt, input_ref, output, output_ref, outputs_disjoint, Span,
};
use super::status::{guard, SbStatus, SbStatus::*};
use crate::fit::FitConfig;
use crate::layout::{self, HeadLayout, LayoutSizes, LayoutStorage};
use crate::model::{self, ImageFloat, ModelView};
use crate::sinkhorn::SinkhornOptions;

/// Largest neighbourhood of one head (the Rust `MAX_HEAD_DIM`).
pub const SB_MAX_HEAD_DIM: usize = 16;
const _: () = assert!(SB_MAX_HEAD_DIM == crate::layout::MAX_HEAD_DIM);

/// Alignment in bytes that a model image buffer must have.
pub const SB_IMAGE_ALIGN: usize = 16;
const _: () = assert!(SB_IMAGE_ALIGN == model::ALIGN);

/// A head layout in CSR form (see the Rust `layout` module): head `h` sees
/// `nb_coords[nb_offsets[h] .. nb_offsets[h+1]]` and writes
/// `tg_coords[tg_offsets[h] .. tg_offsets[h+1]]`. The arrays belong to the caller.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SbLayout {
    /// Full state dimension `d`.
    pub d: usize,
    /// Number of heads.
    pub n_heads: usize,
    /// `n_heads + 1` offsets into `nb_coords`.
    pub nb_offsets: *const u32,
    /// Neighbourhood coordinates (0-based).
    pub nb_coords: *const u32,
    /// Length of `nb_coords`.
    pub nb_len: usize,
    /// `n_heads + 1` offsets into `tg_coords`.
    pub tg_offsets: *const u32,
    /// Target coordinates (0-based).
    pub tg_coords: *const u32,
    /// Length of `tg_coords`.
    pub tg_len: usize,
}

/// Array sizes of a layout: `n_heads + 1` offsets each, `nb_len` and `tg_len` coordinates.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SbLayoutSizes {
    /// Number of heads.
    pub n_heads: usize,
    /// Neighbourhood entries.
    pub nb_len: usize,
    /// Target entries.
    pub tg_len: usize,
}

/// What to fit. `tol = 0` and `max_iter = 0` select the defaults (1e-12 for f64, 2e-5 for f32;
/// 1000 iterations).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SbFitConfig {
    /// Bandwidth / step size epsilon > 0.
    pub eps: f64,
    /// Variable-bandwidth exponent beta <= 0 (used when `variable_bandwidth` is non-zero).
    pub beta: f64,
    /// Non-zero for the variable bandwidth rho = (pi/Z)^beta.
    pub variable_bandwidth: i32,
    /// Sinkhorn tolerance on max_i |v_i (T v)_i - 1| (0: default).
    pub tol: f64,
    /// Sinkhorn iteration cap (0: default).
    pub max_iter: u32,
}

/// What a fit did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SbFitReport {
    /// Heads fitted.
    pub n_heads: usize,
    /// Largest Sinkhorn iteration count over the heads.
    pub max_iterations: u32,
    /// Largest final Sinkhorn residual over the heads.
    pub max_residual: f64,
    /// Bytes of the written image.
    pub image_len: usize,
}

/// An opened model: the image it was opened from (which must not change while in use), its
/// length, its float size and checksum. Plain data, safe to copy and share between threads.
///
/// A zeroed `SbModel` (`SbModel m = {0};`, or Fortran's default `sb_model_t`) is the empty
/// handle: every call on it returns `SB_NO_MODEL`, as after `sb_model_free`. Each call checks
/// the image's header, head table and stored checksum against the handle (O(heads)); it does not
/// re-read the values: `sb_model_verify` re-validates the whole image.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SbModel {
    /// The image (16-byte aligned); `NULL` in the empty handle.
    pub image: *const u8,
    /// Its length in bytes.
    pub image_len: usize,
    /// 8 for a double model, 4 for a float model.
    pub float_size: u32,
    /// 1 when the image was allocated by `sb_model_load` (and is released by `sb_model_free`),
    /// 0 when it is the caller's buffer.
    pub owned: u32,
    /// The image checksum seen when it was opened.
    pub checksum: u64,
}

impl SbModel {
    /// The empty handle.
    pub(crate) const EMPTY: SbModel = SbModel {
        image: core::ptr::null(),
        image_len: 0,
        float_size: 0,
        owned: 0,
        checksum: 0,
    };
}

/// What a model holds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SbModelInfo {
    /// State dimension d.
    pub d: usize,
    /// Samples per head M.
    pub m: usize,
    /// Number of heads.
    pub n_heads: usize,
    /// Largest neighbourhood.
    pub max_head_dim: usize,
    /// epsilon.
    pub eps: f64,
    /// beta (0 when the bandwidth is fixed).
    pub beta: f64,
    /// Non-zero when the bandwidth is variable.
    pub variable_bandwidth: i32,
    /// Non-zero when per-coordinate scales are stored.
    pub has_scales: i32,
    /// 8 (double) or 4 (float).
    pub float_size: u32,
}

/// One head of a model.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SbHeadInfo {
    /// Neighbourhood size d_alpha.
    pub dim: usize,
    /// Number of targets.
    pub n_targets: usize,
    /// The neighbourhood's coordinates (points into the image).
    pub coords: *const u32,
    /// The targets' coordinates (points into the image).
    pub targets: *const u32,
    /// Sinkhorn iterations of its fit.
    pub iterations: u32,
    /// Final Sinkhorn residual of its fit.
    pub residual: f64,
}

/// The Rust layout behind an `SbLayout`.
///
/// # Safety
/// The layout's pointers must satisfy the module contract.
pub(crate) unsafe fn layout_from<'a>(
    l: &'a SbLayout,
) -> Result<(HeadLayout<'a>, [Span; 4]), SbStatus> {
    let n1 = l.n_heads.checked_add(1).ok_or(SB_INVALID_ARGUMENT)?;
    // SAFETY: the caller's layout arrays have the lengths it states (module contract).
    let (a, b, c, d) = unsafe {
        (
            input(l.nb_offsets, n1)?,
            input(l.nb_coords, l.nb_len)?,
            input(l.tg_offsets, n1)?,
            input(l.tg_coords, l.tg_len)?,
        )
    };
    let spans = [Span::of(a), Span::of(b), Span::of(c), Span::of(d)];
    Ok((HeadLayout::new(l.d, a, b, c, d)?, spans))
}

fn write_sizes(s: LayoutSizes, out: *mut SbLayoutSizes) -> SbStatus {
    guard(|| {
        // The size functions saturate: a saturated (or u32-overflowing) size cannot be built.
        if s.heads >= u32::MAX as usize || s.nb >= u32::MAX as usize || s.tg >= u32::MAX as usize {
            return Err(SB_INVALID_ARGUMENT);
        }
        // SAFETY: `out` is one writable SbLayoutSizes (module contract).
        let o = unsafe { output_ref(out)? };
        *o = SbLayoutSizes {
            n_heads: s.heads,
            nb_len: s.nb,
            tg_len: s.tg,
        };
        Ok(())
    })
}

/// Sizes of the single-head layout over `d` coordinates (the plain bridge).
#[no_mangle]
pub unsafe extern "C" fn sb_layout_single_head_sizes(
    d: usize,
    out: *mut SbLayoutSizes,
) -> SbStatus {
    write_sizes(layout::single_head_sizes(d), out)
}

/// Sizes of the periodic stencil of radius `r` on a ring of `n` points.
#[no_mangle]
pub unsafe extern "C" fn sb_layout_periodic_stencil_sizes(
    n: usize,
    r: usize,
    out: *mut SbLayoutSizes,
) -> SbStatus {
    write_sizes(layout::periodic_stencil_sizes(n, r), out)
}

/// Sizes of the slow/closure layout: `blocks` blocks of `k` coordinates, heads for the last block,
/// periodic radius `r`.
#[no_mangle]
pub unsafe extern "C" fn sb_layout_closure_sizes(
    k: usize,
    blocks: usize,
    r: usize,
    out: *mut SbLayoutSizes,
) -> SbStatus {
    write_sizes(layout::closure_layout_sizes(k, blocks, r), out)
}

/// Sizes of the temporal Markov blocks (paper 000 eq. 57): `s` components at `k + 1` times.
#[no_mangle]
pub unsafe extern "C" fn sb_layout_temporal_sizes(
    s: usize,
    k: usize,
    out: *mut SbLayoutSizes,
) -> SbStatus {
    write_sizes(layout::temporal_blocks_sizes(s, k), out)
}

/// Fills the caller's four arrays (capacities in `room`) with a builder and describes the result
/// in `out`.
unsafe fn build_layout(
    room: *const SbLayoutSizes,
    nb_offsets: *mut u32,
    nb_coords: *mut u32,
    tg_offsets: *mut u32,
    tg_coords: *mut u32,
    out: *mut SbLayout,
    build: impl for<'s> FnOnce(LayoutStorage<'s>) -> Result<HeadLayout<'s>, crate::Error>,
) -> SbStatus {
    guard(|| {
        // SAFETY: module contract: `room` is readable; the arrays have the capacities it states;
        // `out` is writable. Overlaps are checked below before any write.
        let (room, a, b, c, d, o) = unsafe {
            let room = *input_ref(room)?;
            let n1 = room.n_heads.checked_add(1).ok_or(SB_INVALID_ARGUMENT)?;
            (
                room,
                output(nb_offsets, n1)?,
                output(nb_coords, room.nb_len)?,
                output(tg_offsets, n1)?,
                output(tg_coords, room.tg_len)?,
                output_ref(out)?,
            )
        };
        let _ = room;
        let outs = [
            Span::of(a),
            Span::of(b),
            Span::of(c),
            Span::of(d),
            Span::one(&*o),
        ];
        outputs_disjoint(&outs, &[])?;
        let l = build(LayoutStorage {
            nb_offsets: a,
            nb_coords: b,
            tg_offsets: c,
            tg_coords: d,
        })?;
        let (pa, pb, pc, pd) = l.arrays();
        *o = SbLayout {
            d: l.d(),
            n_heads: l.n_heads(),
            nb_offsets: pa.as_ptr(),
            nb_coords: pb.as_ptr(),
            nb_len: pb.len(),
            tg_offsets: pc.as_ptr(),
            tg_coords: pd.as_ptr(),
            tg_len: pd.len(),
        };
        Ok(())
    })
}

/// Builds the single-head layout over `d` coordinates into the caller's arrays.
#[no_mangle]
pub unsafe extern "C" fn sb_layout_single_head(
    d: usize,
    room: *const SbLayoutSizes,
    nb_offsets: *mut u32,
    nb_coords: *mut u32,
    tg_offsets: *mut u32,
    tg_coords: *mut u32,
    out: *mut SbLayout,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        build_layout(
            room,
            nb_offsets,
            nb_coords,
            tg_offsets,
            tg_coords,
            out,
            |st| layout::single_head(d, st),
        )
    }
}

/// Builds the periodic stencil of radius `r` on a ring of `n` points.
#[no_mangle]
pub unsafe extern "C" fn sb_layout_periodic_stencil(
    n: usize,
    r: usize,
    room: *const SbLayoutSizes,
    nb_offsets: *mut u32,
    nb_coords: *mut u32,
    tg_offsets: *mut u32,
    tg_coords: *mut u32,
    out: *mut SbLayout,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        build_layout(
            room,
            nb_offsets,
            nb_coords,
            tg_offsets,
            tg_coords,
            out,
            |st| layout::periodic_stencil(n, r, st),
        )
    }
}

/// Builds the slow/closure layout (`blocks` blocks of `k`, heads for the last block, radius `r`).
#[no_mangle]
pub unsafe extern "C" fn sb_layout_closure(
    k: usize,
    blocks: usize,
    r: usize,
    room: *const SbLayoutSizes,
    nb_offsets: *mut u32,
    nb_coords: *mut u32,
    tg_offsets: *mut u32,
    tg_coords: *mut u32,
    out: *mut SbLayout,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        build_layout(
            room,
            nb_offsets,
            nb_coords,
            tg_offsets,
            tg_coords,
            out,
            |st| layout::closure_layout(k, blocks, r, st),
        )
    }
}

/// Builds the temporal Markov blocks of paper 000 eq. 57 (`s` components at `k + 1` times).
#[no_mangle]
pub unsafe extern "C" fn sb_layout_temporal(
    s: usize,
    k: usize,
    room: *const SbLayoutSizes,
    nb_offsets: *mut u32,
    nb_coords: *mut u32,
    tg_offsets: *mut u32,
    tg_coords: *mut u32,
    out: *mut SbLayout,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        build_layout(
            room,
            nb_offsets,
            nb_coords,
            tg_offsets,
            tg_coords,
            out,
            |st| layout::temporal_blocks(s, k, st),
        )
    }
}

unsafe fn image_len_impl<T: ImageFloat>(
    layout: *const SbLayout,
    m: usize,
    variable: i32,
    scales: i32,
    out: *mut usize,
) -> SbStatus {
    guard(|| {
        // SAFETY: module contract for `layout` and `out`.
        let (l, o) = unsafe { (input_ref(layout)?, output_ref(out)?) };
        // SAFETY: module contract for the layout's arrays.
        let (hl, _) = unsafe { layout_from(l)? };
        let n = model::image_len::<T>(&hl, m, variable != 0, scales != 0);
        if n == usize::MAX {
            return Err(SB_INVALID_ARGUMENT);
        }
        *o = n;
        Ok(())
    })
}

/// Bytes of the double-precision image of `layout` with `m` samples (`variable`, `scales`:
/// non-zero when fitted with a variable bandwidth / per-coordinate scales).
#[no_mangle]
pub unsafe extern "C" fn sb_image_len_f64(
    layout: *const SbLayout,
    m: usize,
    variable: i32,
    scales: i32,
    out: *mut usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe { image_len_impl::<f64>(layout, m, variable, scales, out) }
}

/// Bytes of the single-precision image (see `sb_image_len_f64`).
#[no_mangle]
pub unsafe extern "C" fn sb_image_len_f32(
    layout: *const SbLayout,
    m: usize,
    variable: i32,
    scales: i32,
    out: *mut usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe { image_len_impl::<f32>(layout, m, variable, scales, out) }
}

/// Work space (in elements of the float type) that `sb_fit_model_*` needs for `m` samples.
#[no_mangle]
pub extern "C" fn sb_fit_workspace_len(m: usize) -> usize {
    model::write_workspace_len(m)
}

#[allow(clippy::too_many_arguments)]
unsafe fn fit_impl<T: ImageFloat>(
    data: *const T,
    m: usize,
    d: usize,
    scales: *const T,
    layout: *const SbLayout,
    cfg: *const SbFitConfig,
    image: *mut u8,
    image_len: usize,
    work: *mut T,
    work_len: usize,
    report: *mut SbFitReport,
) -> SbStatus {
    guard(|| {
        let n = m.checked_mul(d).ok_or(SB_INVALID_ARGUMENT)?;
        // SAFETY: module contract for every pointer; overlaps of the outputs are checked below
        // before anything is written.
        let (data, scales, l, cfg, img, work, rep) = unsafe {
            (
                input(data, n)?,
                input_opt(scales, d)?,
                input_ref(layout)?,
                *input_ref(cfg)?,
                output(image, image_len)?,
                output(work, work_len)?,
                super::args::output_opt(report, 1)?,
            )
        };
        // SAFETY: module contract for the layout's arrays.
        let (hl, lspans) = unsafe { layout_from(l)? };
        let ins = [
            Span::of(data),
            Span::of(scales.unwrap_or(&[])),
            lspans[0],
            lspans[1],
            lspans[2],
            lspans[3],
        ];
        let rep_span = rep.as_deref().map_or(Span(0, 0), Span::of);
        outputs_disjoint(&[Span::of(&*img), Span::of(&*work), rep_span], &ins)?;
        let mut fc = crate::fit::FitConfig::new(T::from_f64(cfg.eps));
        if cfg.variable_bandwidth != 0 {
            fc.beta = Some(T::from_f64(cfg.beta));
        }
        fc.sinkhorn = SinkhornOptions {
            tol: if cfg.tol == 0.0 {
                T::DEFAULT_SINKHORN_TOL
            } else {
                T::from_f64(cfg.tol)
            },
            max_iter: if cfg.max_iter == 0 {
                1000
            } else {
                cfg.max_iter
            },
            ..fc.sinkhorn
        };
        let fc: FitConfig<T> = fc;
        let (status, rpt) = match model::write_model(img, data, d, scales, &hl, &fc, work) {
            Ok((_, r)) => (Ok(()), r),
            Err(crate::Error::NotConverged {
                iterations,
                residual,
            }) => (
                Err(SB_NOT_CONVERGED),
                model::ModelFitReport {
                    heads: hl.n_heads(),
                    max_iterations: iterations,
                    max_residual: residual,
                    image_len: model::image_len::<T>(&hl, m, fc.beta.is_some(), scales.is_some()),
                    max_neglected: 0.0,
                },
            ),
            Err(e) => return Err(e.into()),
        };
        if let Some(r) = rep {
            r[0] = SbFitReport {
                n_heads: rpt.heads,
                max_iterations: rpt.max_iterations,
                max_residual: rpt.max_residual,
                image_len: rpt.image_len,
            };
        }
        status
    })
}

/// Fits every head of `layout` on `data` (`m × d` doubles, sample-major; `scales` nullable, `d`
/// values) and writes the model image into `image` (16-byte aligned, `image_len` ≥
/// `sb_image_len_f64`). `work` needs `sb_fit_workspace_len(m)` doubles; `report` is nullable.
/// `SB_NOT_CONVERGED` still completes the image with the best scalings and fills `report`.
#[no_mangle]
pub unsafe extern "C" fn sb_fit_model_f64(
    data: *const f64,
    m: usize,
    d: usize,
    scales: *const f64,
    layout: *const SbLayout,
    cfg: *const SbFitConfig,
    image: *mut u8,
    image_len: usize,
    work: *mut f64,
    work_len: usize,
    report: *mut SbFitReport,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        fit_impl(
            data, m, d, scales, layout, cfg, image, image_len, work, work_len, report,
        )
    }
}

/// Single-precision `sb_fit_model_f64`.
#[no_mangle]
pub unsafe extern "C" fn sb_fit_model_f32(
    data: *const f32,
    m: usize,
    d: usize,
    scales: *const f32,
    layout: *const SbLayout,
    cfg: *const SbFitConfig,
    image: *mut u8,
    image_len: usize,
    work: *mut f32,
    work_len: usize,
    report: *mut SbFitReport,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        fit_impl(
            data, m, d, scales, layout, cfg, image, image_len, work, work_len, report,
        )
    }
}

/// The handle of a validated image of float type `T` (`owned = 0`).
pub(crate) fn handle_of<T: ImageFloat>(bytes: &[u8]) -> Result<SbModel, SbStatus> {
    let v = ModelView::<T>::open(bytes)?;
    Ok(SbModel {
        image: bytes.as_ptr(),
        image_len: v.bytes().len(),
        float_size: core::mem::size_of::<T>() as u32,
        owned: 0,
        checksum: model::checksum(v.bytes()),
    })
}

/// The handle of a validated image of either float kind.
pub(crate) fn handle_of_any(bytes: &[u8]) -> Result<SbModel, SbStatus> {
    match handle_of::<f64>(bytes) {
        Err(SB_IMAGE_WRONG_FLOAT_KIND) => handle_of::<f32>(bytes),
        r => r,
    }
}

unsafe fn open_impl(
    image: *const u8,
    image_len: usize,
    out: *mut SbModel,
    open: fn(&[u8]) -> Result<SbModel, SbStatus>,
) -> SbStatus {
    guard(|| {
        // SAFETY: module contract for `image` and `out`.
        let (bytes, o) = unsafe { (input(image, image_len)?, output_ref(out)?) };
        disjoint(Span::one(&*o), &[Span::of(bytes)])?;
        *o = open(bytes)?;
        Ok(())
    })
}

/// Validates a double-precision model image (once: magic, version, kind, sizes, offsets,
/// checksum, values) and fills `model`. The image must stay unchanged while `model` is used.
#[no_mangle]
pub unsafe extern "C" fn sb_model_open_f64(
    image: *const u8,
    image_len: usize,
    model: *mut SbModel,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe { open_impl(image, image_len, model, handle_of::<f64>) }
}

/// Validates a single-precision model image (see `sb_model_open_f64`).
#[no_mangle]
pub unsafe extern "C" fn sb_model_open_f32(
    image: *const u8,
    image_len: usize,
    model: *mut SbModel,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe { open_impl(image, image_len, model, handle_of::<f32>) }
}

/// Validates a model image of either float kind (`sb_model_open_f64`, else `sb_model_open_f32`
/// when the image holds floats) and fills `model`.
#[no_mangle]
pub unsafe extern "C" fn sb_model_open(
    image: *const u8,
    image_len: usize,
    model: *mut SbModel,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe { open_impl(image, image_len, model, handle_of_any) }
}

/// Re-validates the whole image behind `model` as `sb_model_open_*` did (checksum over every
/// byte, every value) and checks it is the image the handle was opened from: `SB_OK`, or the
/// status that opening it now would give (`SB_IMAGE_CHECKSUM` for changed bytes). The per-call
/// check is O(heads) and reads no values; call this after restoring an image from a checkpoint
/// or when the memory it lives in may have been overwritten. Costs one pass over the image.
#[no_mangle]
pub unsafe extern "C" fn sb_model_verify(model: *const SbModel) -> SbStatus {
    guard(|| {
        // SAFETY: module contract for `model`.
        let mm = unsafe { *input_ref(model)? };
        if mm.image.is_null() {
            return Err(SB_NO_MODEL);
        }
        // SAFETY: the image an `SbModel` was opened from stays valid (module contract).
        let bytes = unsafe { input(mm.image, mm.image_len)? };
        let now = match mm.float_size {
            8 => handle_of::<f64>(bytes)?,
            4 => handle_of::<f32>(bytes)?,
            _ => return Err(SB_IMAGE_CORRUPT),
        };
        if now.checksum == mm.checksum {
            Ok(())
        } else {
            Err(SB_IMAGE_CHECKSUM)
        }
    })
}

/// Reads the model image file `path` (NUL-terminated) into a 16-byte aligned buffer that the
/// library allocates, opens it whatever its float kind, and fills `model` (with `owned = 1`).
/// Release it with `sb_model_free`. On failure `model` is unchanged, so a model loaded before
/// stays usable. File statuses: `SB_FILE_NOT_FOUND`, `SB_FILE_EMPTY`, `SB_NOT_A_FILE`,
/// `SB_FILE_UNREADABLE`, `SB_OUT_OF_MEMORY`; a file longer than the image it holds is
/// `SB_IMAGE_CORRUPT`; a build without `std` (firmware) returns `SB_UNSUPPORTED`.
#[no_mangle]
pub unsafe extern "C" fn sb_model_load(
    path: *const core::ffi::c_char,
    model: *mut SbModel,
) -> SbStatus {
    guard(|| {
        if path.is_null() {
            return Err(SB_NULL_POINTER);
        }
        // SAFETY: module contract for `model` (one writable SbModel).
        let o = unsafe { output_ref(model)? };
        // SAFETY: `path` is a NUL-terminated string (module contract).
        let path = unsafe { core::ffi::CStr::from_ptr(path) };
        let loaded = super::file::load(path)?;
        *o = loaded;
        Ok(())
    })
}

/// Releases an image that `sb_model_load` allocated (`owned = 1`) and sets `*model` to the empty
/// handle, so that later calls on it return `SB_NO_MODEL`; on a handle over the caller's own
/// buffer (`owned = 0`) it only empties the handle. Freeing the empty handle is `SB_OK`. Copies
/// of a loaded handle must not be used after it is freed.
#[no_mangle]
pub unsafe extern "C" fn sb_model_free(model: *mut SbModel) -> SbStatus {
    guard(|| {
        // SAFETY: module contract for `model`.
        let o = unsafe { output_ref(model)? };
        match o.owned {
            0 => {}
            // SAFETY: `owned = 1` handles come from `sb_model_load`, which allocated `image`
            // with `file::layout(image_len)`; the handle is emptied below so it is freed once.
            1 => unsafe { super::file::release(o.image, o.image_len) },
            _ => return Err(SB_INVALID_ARGUMENT),
        }
        *o = SbModel::EMPTY;
        Ok(())
    })
}

/// The view behind an `SbModel` of float type `T`, in O(1).
///
/// # Safety
/// `model` must satisfy the module contract, and its image must be unchanged since it was opened.
pub(crate) unsafe fn view<'a, T: ImageFloat>(
    model: *const SbModel,
) -> Result<ModelView<'a, T>, SbStatus> {
    // SAFETY: module contract for `model`.
    let mm: SbModel = unsafe { *input_ref(model)? };
    if mm.image.is_null() {
        return Err(SB_NO_MODEL);
    }
    if mm.float_size != 4 && mm.float_size != 8 {
        return Err(SB_IMAGE_CORRUPT);
    }
    if mm.float_size as usize != core::mem::size_of::<T>() {
        return Err(SB_IMAGE_WRONG_FLOAT_KIND);
    }
    // SAFETY: the image an `SbModel` was opened from stays valid and unchanged (module contract).
    let bytes: &'a [u8] = unsafe { input(mm.image, mm.image_len)? };
    let v = ModelView::<T>::reopen(bytes)?;
    let stored = u64::from_le_bytes(bytes[120..128].try_into().map_err(|_| SB_IMAGE_CORRUPT)?);
    if stored != mm.checksum {
        return Err(SB_IMAGE_CHECKSUM);
    }
    Ok(v)
}

/// Calls `f` with the model's view of the right float type.
///
/// # Safety
/// As [`view`].
pub(crate) unsafe fn with_any_view<R>(
    model: *const SbModel,
    f64_case: impl FnOnce(ModelView<'_, f64>) -> Result<R, SbStatus>,
    f32_case: impl FnOnce(ModelView<'_, f32>) -> Result<R, SbStatus>,
) -> Result<R, SbStatus> {
    // SAFETY: module contract for `model`.
    let mm = unsafe { *input_ref(model)? };
    if mm.image.is_null() {
        return Err(SB_NO_MODEL);
    }
    match mm.float_size {
        // SAFETY: forwarded contract of `view`.
        8 => f64_case(unsafe { view::<f64>(model)? }),
        // SAFETY: forwarded contract of `view`.
        4 => f32_case(unsafe { view::<f32>(model)? }),
        _ => Err(SB_IMAGE_CORRUPT),
    }
}

fn info_of<T: ImageFloat>(v: &ModelView<'_, T>) -> SbModelInfo {
    SbModelInfo {
        d: v.d(),
        m: v.m(),
        n_heads: v.n_heads(),
        max_head_dim: v.max_head_dim(),
        eps: v.eps().to_f64(),
        beta: v.beta().map_or(0.0, |b| b.to_f64()),
        variable_bandwidth: v.beta().is_some() as i32,
        has_scales: v.has_scales() as i32,
        float_size: core::mem::size_of::<T>() as u32,
    }
}

/// What the model holds (either float kind).
#[no_mangle]
pub unsafe extern "C" fn sb_model_info(model: *const SbModel, out: *mut SbModelInfo) -> SbStatus {
    guard(|| {
        // SAFETY: module contract for `out`.
        let o = unsafe { output_ref(out)? };
        // SAFETY: module contract for `model`.
        *o = unsafe { with_any_view(model, |v| Ok(info_of(&v)), |v| Ok(info_of(&v)))? };
        Ok(())
    })
}

fn head_info_of<T: ImageFloat>(v: &ModelView<'_, T>, h: usize) -> Result<SbHeadInfo, SbStatus> {
    let head = v.try_head(h)?;
    let (iterations, residual) = v.head_fit(h)?;
    Ok(SbHeadInfo {
        dim: head.coords.len(),
        n_targets: head.targets.len(),
        coords: head.coords.as_ptr(),
        targets: head.targets.as_ptr(),
        iterations,
        residual,
    })
}

/// Head `h` of the model: its neighbourhood and targets (pointers into the image) and its fit.
#[no_mangle]
pub unsafe extern "C" fn sb_head_info(
    model: *const SbModel,
    h: usize,
    out: *mut SbHeadInfo,
) -> SbStatus {
    guard(|| {
        // SAFETY: module contract for `out`.
        let o = unsafe { output_ref(out)? };
        // SAFETY: module contract for `model`.
        *o = unsafe { with_any_view(model, |v| head_info_of(&v, h), |v| head_info_of(&v, h))? };
        Ok(())
    })
}

/// Work-space lengths (in elements of the model's float type) for a model.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SbWorkspaceLens {
    /// For the bridge queries on any head (`sb_mean_*`, `sb_weights_*`, ...).
    pub query: usize,
    /// For `sb_chain_*`.
    pub chain: usize,
    /// For `sb_closure_*` and `sb_closure_batch_*`.
    pub closure: usize,
}

fn lens_of<T: ImageFloat>(v: &ModelView<'_, T>) -> SbWorkspaceLens {
    SbWorkspaceLens {
        query: crate::bridge::bridge_workspace_len(v.m(), v.max_head_dim()),
        chain: crate::localized::model_workspace_len(v) + 2 * v.d(),
        closure: crate::localized::closure_workspace_len(v),
    }
}

/// The work space each kind of call needs on this model.
#[no_mangle]
pub unsafe extern "C" fn sb_workspace_lens(
    model: *const SbModel,
    out: *mut SbWorkspaceLens,
) -> SbStatus {
    guard(|| {
        // SAFETY: module contract for `out`.
        let o = unsafe { output_ref(out)? };
        // SAFETY: module contract for `model`.
        *o = unsafe { with_any_view(model, |v| Ok(lens_of(&v)), |v| Ok(lens_of(&v)))? };
        Ok(())
    })
}

unsafe fn training_value_impl<T: ImageFloat>(
    model: *const SbModel,
    j: usize,
    c: usize,
    out: *mut T,
) -> SbStatus {
    guard(|| {
        // SAFETY: module contract for `model` and `out`.
        let (v, o) = unsafe { (view::<T>(model)?, output_ref(out)?) };
        disjoint(Span::one(&*o), &[Span::of(v.bytes())])?;
        let c = u32::try_from(c).map_err(|_| SB_INVALID_INDEX)?;
        *o = v.sample_value(j, c).ok_or(SB_INVALID_INDEX)?;
        Ok(())
    })
}

/// Training value of coordinate `c` in sample `j` (e.g. to start a chain from a training
/// sample); `SB_INVALID_INDEX` when `j >= M` or no head sees coordinate `c`.
#[no_mangle]
pub unsafe extern "C" fn sb_training_value_f64(
    model: *const SbModel,
    j: usize,
    c: usize,
    out: *mut f64,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe { training_value_impl(model, j, c, out) }
}

/// Single-precision `sb_training_value_f64`.
#[no_mangle]
pub unsafe extern "C" fn sb_training_value_f32(
    model: *const SbModel,
    j: usize,
    c: usize,
    out: *mut f32,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe { training_value_impl(model, j, c, out) }
}
