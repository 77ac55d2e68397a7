//! Bridge queries on one head of a model: weights, conditional mean and covariance, score,
//! log-density and the variable bandwidth. `x` is in the head's coordinate order (`dim` values,
//! see `sb_head_info`; for a single-head model, the full state in order).

use super::args::{input, output, outputs_disjoint, Span};
use super::model::{view, SbModel};
use super::status::{guard, SbStatus};
use crate::bridge::Bridge;
use crate::model::ImageFloat;

/// Resolves the head, the query and the work space, checks the outputs are disjoint from them and
/// from each other, then runs `f`.
///
/// # Safety
/// Module contract for every pointer.
#[allow(clippy::too_many_arguments)]
unsafe fn query<T: ImageFloat, const K: usize>(
    model: *const SbModel,
    h: usize,
    x: *const T,
    x_len: usize,
    outs: [(*mut T, usize); K],
    work: *mut T,
    work_len: usize,
    f: impl FnOnce(&Bridge<'_, T>, &[T], [&mut [T]; K], &mut [T]) -> Result<(), crate::Error>,
) -> SbStatus {
    guard(|| {
        // SAFETY: module contract for `model`, `x`, the outputs and `work`; overlaps are checked
        // before `f` writes.
        let (v, xs, work) =
            unsafe { (view::<T>(model)?, input(x, x_len)?, output(work, work_len)?) };
        let mut slices: [&mut [T]; K] = core::array::from_fn(|_| &mut [][..]);
        for (s, (p, n)) in slices.iter_mut().zip(outs) {
            // SAFETY: module contract for each output pointer.
            *s = unsafe { output(p, n)? };
        }
        let mut spans = [Span(0, 0); 4];
        for (sp, s) in spans.iter_mut().zip(slices.iter()) {
            *sp = Span::of(s);
        }
        spans[K] = Span::of(&*work);
        outputs_disjoint(&spans[..=K], &[Span::of(xs), Span::of(v.bytes())])?;
        let head = v.try_head(h)?;
        f(&head.bridge, xs, slices, work)?;
        Ok(())
    })
}

/// Transition weights `w_j(x)` of head `h` (`w_len = M`; they sum to one).
/// `x` has `x_len = dim` values; `work` needs `SbWorkspaceLens.query` values.
#[no_mangle]
pub unsafe extern "C" fn sb_weights_f64(
    model: *const SbModel,
    h: usize,
    x: *const f64,
    x_len: usize,
    w: *mut f64,
    w_len: usize,
    work: *mut f64,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        query(
            model,
            h,
            x,
            x_len,
            [(w, w_len)],
            work,
            work_len,
            |b, x, [w], wk| b.weights(x, w, wk),
        )
    }
}

/// `log w_j(x)` of head `h` (`out_len = M`), finite where `w_j` underflows.
/// `x` has `x_len = dim` values; `work` needs `SbWorkspaceLens.query` values.
#[no_mangle]
pub unsafe extern "C" fn sb_log_weights_f64(
    model: *const SbModel,
    h: usize,
    x: *const f64,
    x_len: usize,
    out: *mut f64,
    out_len: usize,
    work: *mut f64,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        query(
            model,
            h,
            x,
            x_len,
            [(out, out_len)],
            work,
            work_len,
            |b, x, [o], wk| b.log_weights(x, o, wk),
        )
    }
}

/// Conditional mean `m(x) = sum_j w_j(x) x^(j)` of head `h` (`out_len = dim`).
/// `x` has `x_len = dim` values; `work` needs `SbWorkspaceLens.query` values.
#[no_mangle]
pub unsafe extern "C" fn sb_mean_f64(
    model: *const SbModel,
    h: usize,
    x: *const f64,
    x_len: usize,
    out: *mut f64,
    out_len: usize,
    work: *mut f64,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        query(
            model,
            h,
            x,
            x_len,
            [(out, out_len)],
            work,
            work_len,
            |b, x, [o], wk| b.mean(x, o, wk),
        )
    }
}

/// Conditional mean (`mean_len = dim`) and covariance `C(x)` (`cov_len = dim*dim`, row-major, divided by epsilon as in paper 001 eq. 16) of head `h`.
/// `x` has `x_len = dim` values; `work` needs `SbWorkspaceLens.query` values.
#[no_mangle]
pub unsafe extern "C" fn sb_mean_cov_f64(
    model: *const SbModel,
    h: usize,
    x: *const f64,
    x_len: usize,
    mean: *mut f64,
    mean_len: usize,
    cov: *mut f64,
    cov_len: usize,
    work: *mut f64,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        query(
            model,
            h,
            x,
            x_len,
            [(mean, mean_len), (cov, cov_len)],
            work,
            work_len,
            |b, x, [m, c], wk| b.mean_cov(x, m, c, wk),
        )
    }
}

/// Score `s(x) = (m(x) - x)/epsilon` of head `h` (`out_len = dim`).
/// `x` has `x_len = dim` values; `work` needs `SbWorkspaceLens.query` values.
#[no_mangle]
pub unsafe extern "C" fn sb_score_f64(
    model: *const SbModel,
    h: usize,
    x: *const f64,
    x_len: usize,
    out: *mut f64,
    out_len: usize,
    work: *mut f64,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        query(
            model,
            h,
            x,
            x_len,
            [(out, out_len)],
            work,
            work_len,
            |b, x, [o], wk| b.score(x, o, wk),
        )
    }
}

/// Unnormalised log-density `log Pi(x) = 2 log sum_j v_j t_j(x)` of head `h` into `*out`.
/// `x` has `x_len = dim` values; `work` needs `SbWorkspaceLens.query` values.
#[no_mangle]
pub unsafe extern "C" fn sb_log_density_f64(
    model: *const SbModel,
    h: usize,
    x: *const f64,
    x_len: usize,
    out: *mut f64,
    work: *mut f64,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        query(
            model,
            h,
            x,
            x_len,
            [(out, 1)],
            work,
            work_len,
            |b, x, [o], wk| {
                o[0] = b.log_density(x, wk)?;
                Ok(())
            },
        )
    }
}

/// Bandwidth factor `rho(x)` of head `h` into `*out` (1 for a fixed bandwidth).
/// `x` has `x_len = dim` values; `work` needs `SbWorkspaceLens.query` values.
#[no_mangle]
pub unsafe extern "C" fn sb_rho_f64(
    model: *const SbModel,
    h: usize,
    x: *const f64,
    x_len: usize,
    out: *mut f64,
    work: *mut f64,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        query(
            model,
            h,
            x,
            x_len,
            [(out, 1)],
            work,
            work_len,
            |b, x, [o], wk| {
                o[0] = b.rho_at(x, wk)?;
                Ok(())
            },
        )
    }
}

/// Single-precision `sb_weights_f64`.
/// `x` has `x_len = dim` values; `work` needs `SbWorkspaceLens.query` values.
#[no_mangle]
pub unsafe extern "C" fn sb_weights_f32(
    model: *const SbModel,
    h: usize,
    x: *const f32,
    x_len: usize,
    w: *mut f32,
    w_len: usize,
    work: *mut f32,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        query(
            model,
            h,
            x,
            x_len,
            [(w, w_len)],
            work,
            work_len,
            |b, x, [w], wk| b.weights(x, w, wk),
        )
    }
}

/// Single-precision `sb_log_weights_f64`.
/// `x` has `x_len = dim` values; `work` needs `SbWorkspaceLens.query` values.
#[no_mangle]
pub unsafe extern "C" fn sb_log_weights_f32(
    model: *const SbModel,
    h: usize,
    x: *const f32,
    x_len: usize,
    out: *mut f32,
    out_len: usize,
    work: *mut f32,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        query(
            model,
            h,
            x,
            x_len,
            [(out, out_len)],
            work,
            work_len,
            |b, x, [o], wk| b.log_weights(x, o, wk),
        )
    }
}

/// Single-precision `sb_mean_f64`.
/// `x` has `x_len = dim` values; `work` needs `SbWorkspaceLens.query` values.
#[no_mangle]
pub unsafe extern "C" fn sb_mean_f32(
    model: *const SbModel,
    h: usize,
    x: *const f32,
    x_len: usize,
    out: *mut f32,
    out_len: usize,
    work: *mut f32,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        query(
            model,
            h,
            x,
            x_len,
            [(out, out_len)],
            work,
            work_len,
            |b, x, [o], wk| b.mean(x, o, wk),
        )
    }
}

/// Single-precision `sb_mean_cov_f64`.
/// `x` has `x_len = dim` values; `work` needs `SbWorkspaceLens.query` values.
#[no_mangle]
pub unsafe extern "C" fn sb_mean_cov_f32(
    model: *const SbModel,
    h: usize,
    x: *const f32,
    x_len: usize,
    mean: *mut f32,
    mean_len: usize,
    cov: *mut f32,
    cov_len: usize,
    work: *mut f32,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        query(
            model,
            h,
            x,
            x_len,
            [(mean, mean_len), (cov, cov_len)],
            work,
            work_len,
            |b, x, [m, c], wk| b.mean_cov(x, m, c, wk),
        )
    }
}

/// Single-precision `sb_score_f64`.
/// `x` has `x_len = dim` values; `work` needs `SbWorkspaceLens.query` values.
#[no_mangle]
pub unsafe extern "C" fn sb_score_f32(
    model: *const SbModel,
    h: usize,
    x: *const f32,
    x_len: usize,
    out: *mut f32,
    out_len: usize,
    work: *mut f32,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        query(
            model,
            h,
            x,
            x_len,
            [(out, out_len)],
            work,
            work_len,
            |b, x, [o], wk| b.score(x, o, wk),
        )
    }
}

/// Single-precision `sb_log_density_f64`.
/// `x` has `x_len = dim` values; `work` needs `SbWorkspaceLens.query` values.
#[no_mangle]
pub unsafe extern "C" fn sb_log_density_f32(
    model: *const SbModel,
    h: usize,
    x: *const f32,
    x_len: usize,
    out: *mut f32,
    work: *mut f32,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        query(
            model,
            h,
            x,
            x_len,
            [(out, 1)],
            work,
            work_len,
            |b, x, [o], wk| {
                o[0] = b.log_density(x, wk)?;
                Ok(())
            },
        )
    }
}

/// Single-precision `sb_rho_f64`.
/// `x` has `x_len = dim` values; `work` needs `SbWorkspaceLens.query` values.
#[no_mangle]
pub unsafe extern "C" fn sb_rho_f32(
    model: *const SbModel,
    h: usize,
    x: *const f32,
    x_len: usize,
    out: *mut f32,
    work: *mut f32,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        query(
            model,
            h,
            x,
            x_len,
            [(out, 1)],
            work,
            work_len,
            |b, x, [o], wk| {
                o[0] = b.rho_at(x, wk)?;
                Ok(())
            },
        )
    }
}
