//! Random streams, sampler chains and the closure call.

use super::args::{input, input_opt, input_ref, output, output_opt, outputs_disjoint, Span};
use super::model::{view, SbModel};
use super::status::{check_count, guard, SbStatus, SbStatus::*};
use crate::localized::{self, ClosureConfig, ClosureInit, NoiseMode, StepKind};
use crate::model::ImageFloat;
use crate::rng::{NormalSource, Rng};
use crate::sampler::{Clamp, Scheme};
use core::ffi::c_void;

/// Split-step isotropic noise (paper 001 eq. 20; the localized sweep for localized models).
pub const SB_SCHEME_ISOTROPIC: u32 = 0;
/// Split-step data-aware covariance noise (001 eq. 21; single-head models).
pub const SB_SCHEME_COVARIANCE: u32 = 1;
/// Small step `dtau <= eps` with isotropic noise (001 eq. 13; single-head models).
pub const SB_SCHEME_SMALL_STEP_ISOTROPIC: u32 = 2;
/// Small step `dtau <= eps` with covariance noise (001 eq. 17; single-head models).
pub const SB_SCHEME_SMALL_STEP_COVARIANCE: u32 = 3;
/// Bayesian split step with the caller's gradient of V (001 section 5; single-head models).
pub const SB_SCHEME_BAYESIAN: u32 = 4;
/// Noiseless Bayesian step: the regularised optimiser of 001 Remark 5.1 (single-head models).
pub const SB_SCHEME_BAYESIAN_OPTIMISER: u32 = 5;
/// Localized sweep: one noise draw per sweep (the default).
pub const SB_NOISE_GLOBAL: u32 = 0;
/// Localized sweep: one noise draw per head (Algorithm 1 as printed).
pub const SB_NOISE_PER_HEAD: u32 = 1;
/// Closure call starts from the caller's psi.
pub const SB_INIT_WARM: u32 = 0;
/// Closure call starts from a random training sample.
pub const SB_INIT_RANDOM_SAMPLE: u32 = 1;

/// A step scheme: `scheme` is one of `SB_SCHEME_*`, `dtau` the small step (small-step schemes
/// only), `noise` one of `SB_NOISE_*` (localized models).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SbStepConfig {
    /// `SB_SCHEME_*`.
    pub scheme: u32,
    /// Small-step size, `0 < dtau <= eps`.
    pub dtau: f64,
    /// `SB_NOISE_*`.
    pub noise: u32,
}

/// The closure call's settings.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SbClosureConfig {
    /// n_c: sweeps (steps for a single-head model) per call, >= 1.
    pub sweeps: usize,
    /// `SB_INIT_*`.
    pub init: u32,
    /// `SB_SCHEME_ISOTROPIC` or `SB_SCHEME_COVARIANCE` (single-head models).
    pub scheme: u32,
    /// `SB_NOISE_*`.
    pub noise: u32,
}

/// The caller's gradient of the potential V for the Bayesian schemes: reads `x` (`d` doubles),
/// writes `grad` (`d` doubles), returns 0 on success (non-zero aborts the chain with
/// `SB_CALLBACK_FAILED`). `user` is passed through.
pub type SbGradientF64 =
    Option<unsafe extern "C" fn(x: *const f64, d: usize, grad: *mut f64, user: *mut c_void) -> i32>;
/// Single-precision `SbGradientF64`.
pub type SbGradientF32 =
    Option<unsafe extern "C" fn(x: *const f32, d: usize, grad: *mut f32, user: *mut c_void) -> i32>;

/// Seeds `rng` with the stream keyed by `(seed, stream)` (e.g. a global column index). The state
/// is plain data: copying it is a checkpoint that restarts bit for bit.
#[no_mangle]
pub unsafe extern "C" fn sb_rng_seed(seed: u64, stream: u64, rng: *mut Rng) -> SbStatus {
    guard(|| {
        // SAFETY: module contract for `rng`.
        let r = unsafe { super::args::output_ref(rng)? };
        *r = Rng::new(seed, stream);
        Ok(())
    })
}

/// `n` standard normal deviates from `rng` into `out` (`n <= SB_MAX_COUNT`). A state that was
/// never seeded is `SB_RNG_UNSEEDED`.
#[no_mangle]
pub unsafe extern "C" fn sb_rng_normals(rng: *mut Rng, out: *mut f64, n: usize) -> SbStatus {
    guard(|| {
        check_count(n)?;
        // SAFETY: module contract for `rng` and `out`, disjointness checked below.
        let (r, o) = unsafe { (super::args::output_ref(rng)?, output(out, n)?) };
        outputs_disjoint(&[Span::one(&*r), Span::of(&*o)], &[])?;
        r.fill_normal(o)?;
        Ok(())
    })
}

fn noise_mode(n: u32) -> Result<NoiseMode, SbStatus> {
    match n {
        SB_NOISE_GLOBAL => Ok(NoiseMode::Global),
        SB_NOISE_PER_HEAD => Ok(NoiseMode::PerHead),
        _ => Err(SB_INVALID_ARGUMENT),
    }
}

/// The gradient callback of one float type.
trait Gradient<T>: Copy {
    /// Calls it; `false` when it returned non-zero.
    fn call(self, x: &[T], g: &mut [T], user: *mut c_void) -> bool;
}

impl Gradient<f64> for unsafe extern "C" fn(*const f64, usize, *mut f64, *mut c_void) -> i32 {
    fn call(self, x: &[f64], g: &mut [f64], user: *mut c_void) -> bool {
        // SAFETY: the caller supplied this function for exactly this signature; it reads
        // `x.len()` values from `x` and writes as many to `g`, both valid slices.
        unsafe { self(x.as_ptr(), x.len(), g.as_mut_ptr(), user) == 0 }
    }
}

impl Gradient<f32> for unsafe extern "C" fn(*const f32, usize, *mut f32, *mut c_void) -> i32 {
    fn call(self, x: &[f32], g: &mut [f32], user: *mut c_void) -> bool {
        // SAFETY: as for the f64 callback.
        unsafe { self(x.as_ptr(), x.len(), g.as_mut_ptr(), user) == 0 }
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn chain_impl<T: ImageFloat, G: Gradient<T>>(
    model: *const SbModel,
    cfg: *const SbStepConfig,
    grad: Option<G>,
    user: *mut c_void,
    clamp_coords: *const usize,
    clamp_values: *const T,
    n_clamp: usize,
    x: *mut T,
    half: *mut T,
    d: usize,
    steps: usize,
    record_half: *mut T,
    record_proj: *mut T,
    rng: *mut Rng,
    work: *mut T,
    work_len: usize,
) -> SbStatus {
    guard(|| {
        if steps == 0 {
            return Err(SB_ZERO_ITERATIONS);
        }
        check_count(steps)?;
        let rec_len = steps.checked_mul(d).ok_or(SB_INVALID_ARGUMENT)?;
        // SAFETY: module contract for every pointer; outputs are checked disjoint below before
        // anything is written.
        let (v, cfg, cc, cv, xs, hs, rh, rp, rng, work) = unsafe {
            (
                view::<T>(model)?,
                *input_ref(cfg)?,
                if n_clamp == 0 {
                    None
                } else {
                    Some(input(clamp_coords, n_clamp)?)
                },
                if n_clamp == 0 {
                    None
                } else {
                    Some(input(clamp_values, n_clamp)?)
                },
                output(x, d)?,
                output(half, d)?,
                output_opt(record_half, rec_len)?,
                output_opt(record_proj, rec_len)?,
                super::args::output_ref(rng)?,
                output(work, work_len)?,
            )
        };
        let span_opt = |s: &Option<&mut [T]>| s.as_deref().map_or(Span(0, 0), Span::of);
        outputs_disjoint(
            &[
                Span::of(&*xs),
                Span::of(&*hs),
                span_opt(&rh),
                span_opt(&rp),
                Span::one(&*rng),
                Span::of(&*work),
            ],
            &[
                Span::of(v.bytes()),
                Span::of(cc.unwrap_or(&[])),
                Span::of(cv.unwrap_or(&[])),
            ],
        )?;
        if d != v.d() {
            return Err(SB_LENGTH_MISMATCH);
        }
        let clamp = match (cc, cv) {
            (Some(c), Some(val)) => Some(Clamp::new(d, c, val)?),
            _ => None,
        };
        let noise = noise_mode(cfg.noise)?;
        // Run on copies so that x, half and the RNG change only on success.
        crate::error::check_room(crate::Arg::Workspace, 2 * d, work.len())?;
        let (xw, rest) = work.split_at_mut(d);
        let (hw, rest) = rest.split_at_mut(d);
        xw.copy_from_slice(xs);
        let mut r = rng.clone();
        let failed_callback = core::cell::Cell::new(false);
        let mut grad_fn = |x: &[T], g: &mut [T]| match grad {
            Some(f) if f.call(x, g, user) => {}
            _ => {
                failed_callback.set(true);
                g.fill(T::from_f64(f64::NAN));
            }
        };
        let dtau = T::from_f64(cfg.dtau);
        let mut scheme = match cfg.scheme {
            SB_SCHEME_ISOTROPIC => Scheme::Isotropic,
            SB_SCHEME_COVARIANCE => Scheme::Covariance,
            SB_SCHEME_SMALL_STEP_ISOTROPIC => Scheme::SmallStepIsotropic { dtau },
            SB_SCHEME_SMALL_STEP_COVARIANCE => Scheme::SmallStepCovariance { dtau },
            SB_SCHEME_BAYESIAN | SB_SCHEME_BAYESIAN_OPTIMISER => {
                if grad.is_none() {
                    return Err(SB_NULL_POINTER);
                }
                Scheme::Bayesian {
                    grad: &mut grad_fn,
                    noise: cfg.scheme == SB_SCHEME_BAYESIAN,
                }
            }
            _ => return Err(SB_INVALID_ARGUMENT),
        };
        let (mut rh, mut rp) = (rh, rp);
        for n in 0..steps {
            let res =
                localized::model_step(&v, &mut scheme, noise, clamp.as_ref(), xw, hw, &mut r, rest);
            if let Err(e) = res {
                return Err(if failed_callback.get() {
                    SB_CALLBACK_FAILED
                } else {
                    e.into()
                });
            }
            if let Some(b) = rh.as_deref_mut() {
                b[n * d..(n + 1) * d].copy_from_slice(hw);
            }
            if let Some(b) = rp.as_deref_mut() {
                b[n * d..(n + 1) * d].copy_from_slice(xw);
            }
        }
        xs.copy_from_slice(xw);
        hs.copy_from_slice(hw);
        *rng = r;
        Ok(())
    })
}

/// Runs `steps` steps of the scheme in `cfg` on the state `x` (`d` doubles, in/out), writing the
/// last noisy half-step into `half`. `grad`/`user`: the gradient of V for the Bayesian schemes
/// (nullable otherwise). `clamp_coords`/`clamp_values`: `n_clamp` coordinates held at given values
/// before every noising step (nullable when `n_clamp = 0`). `record_half`/`record_proj`
/// (nullable, `steps * d`) receive every half-step / new state. `work` needs
/// `SbWorkspaceLens.chain` doubles. `x`, `half` and `rng` change only on success; the record
/// buffers hold the steps completed before a failure.
#[no_mangle]
pub unsafe extern "C" fn sb_chain_f64(
    model: *const SbModel,
    cfg: *const SbStepConfig,
    grad: SbGradientF64,
    user: *mut c_void,
    clamp_coords: *const usize,
    clamp_values: *const f64,
    n_clamp: usize,
    x: *mut f64,
    half: *mut f64,
    d: usize,
    steps: usize,
    record_half: *mut f64,
    record_proj: *mut f64,
    rng: *mut Rng,
    work: *mut f64,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        chain_impl(
            model,
            cfg,
            grad,
            user,
            clamp_coords,
            clamp_values,
            n_clamp,
            x,
            half,
            d,
            steps,
            record_half,
            record_proj,
            rng,
            work,
            work_len,
        )
    }
}

/// Single-precision `sb_chain_f64`.
#[no_mangle]
pub unsafe extern "C" fn sb_chain_f32(
    model: *const SbModel,
    cfg: *const SbStepConfig,
    grad: SbGradientF32,
    user: *mut c_void,
    clamp_coords: *const usize,
    clamp_values: *const f32,
    n_clamp: usize,
    x: *mut f32,
    half: *mut f32,
    d: usize,
    steps: usize,
    record_half: *mut f32,
    record_proj: *mut f32,
    rng: *mut Rng,
    work: *mut f32,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        chain_impl(
            model,
            cfg,
            grad,
            user,
            clamp_coords,
            clamp_values,
            n_clamp,
            x,
            half,
            d,
            steps,
            record_half,
            record_proj,
            rng,
            work,
            work_len,
        )
    }
}

fn closure_config(c: &SbClosureConfig) -> Result<ClosureConfig, SbStatus> {
    Ok(ClosureConfig {
        sweeps: c.sweeps,
        init: match c.init {
            SB_INIT_WARM => ClosureInit::Warm,
            SB_INIT_RANDOM_SAMPLE => ClosureInit::RandomSample,
            _ => return Err(SB_INVALID_ARGUMENT),
        },
        kind: match c.scheme {
            SB_SCHEME_ISOTROPIC => StepKind::Isotropic,
            SB_SCHEME_COVARIANCE => StepKind::Covariance,
            _ => return Err(SB_INVALID_ARGUMENT),
        },
        noise: noise_mode(c.noise)?,
        truncation: 0.0,
    })
}

#[allow(clippy::too_many_arguments)]
unsafe fn closure_impl<T: ImageFloat>(
    model: *const SbModel,
    cfg: *const SbClosureConfig,
    z_coords: *const usize,
    nz: usize,
    ncol: usize,
    z_star: *const T,
    psi: *mut T,
    npsi: usize,
    rngs: *mut Rng,
    work: *mut T,
    work_len: usize,
    failed_col: *mut usize,
) -> SbStatus {
    guard(|| {
        check_count(ncol)?;
        let zn = ncol.checked_mul(nz).ok_or(SB_INVALID_ARGUMENT)?;
        let pn = ncol.checked_mul(npsi).ok_or(SB_INVALID_ARGUMENT)?;
        // SAFETY: module contract for every pointer; disjointness checked below.
        let (v, cfg, zc, zs, ps, rs, work, fc) = unsafe {
            (
                view::<T>(model)?,
                *input_ref(cfg)?,
                input_opt(z_coords, nz)?.unwrap_or(&[]),
                input_opt(z_star, zn)?.unwrap_or(&[]),
                output(psi, pn)?,
                output(rngs, ncol)?,
                output(work, work_len)?,
                output_opt(failed_col, 1)?,
            )
        };
        if nz > 0 && ncol > 0 && (zc.is_empty() || zs.is_empty()) {
            return Err(SB_NULL_POINTER);
        }
        let fc_span = fc.as_deref().map_or(Span(0, 0), Span::of);
        outputs_disjoint(
            &[Span::of(&*ps), Span::of(&*rs), Span::of(&*work), fc_span],
            &[Span::of(v.bytes()), Span::of(zc), Span::of(zs)],
        )?;
        let cc = closure_config(&cfg)?;
        check_count(cc.sweeps)?;
        let mut result = Ok(());
        for i in 0..ncol {
            let mut r = rs[i].clone();
            let col = localized::closure(
                &v,
                &cc,
                zc,
                &zs[i * nz..(i + 1) * nz],
                &mut ps[i * npsi..(i + 1) * npsi],
                &mut r,
                work,
            );
            match col {
                Ok(()) => rs[i] = r,
                Err(e) => {
                    if let Some(f) = fc {
                        f[0] = i;
                    }
                    result = Err(e.into());
                    break;
                }
            }
        }
        result
    })
}

/// The closure call for one column: `z_coords` (`nz` 0-based coordinates) are clamped to `z_star`
/// (`nz` doubles); `psi` (`npsi = d - nz` doubles, the free coordinates in increasing order) is
/// the warm start (when `cfg.init = SB_INIT_WARM`) and receives the sample. `work` needs
/// `SbWorkspaceLens.closure` doubles. `psi` and `rng` change only on success.
#[no_mangle]
pub unsafe extern "C" fn sb_closure_f64(
    model: *const SbModel,
    cfg: *const SbClosureConfig,
    z_coords: *const usize,
    nz: usize,
    z_star: *const f64,
    psi: *mut f64,
    npsi: usize,
    rng: *mut Rng,
    work: *mut f64,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        closure_impl(
            model,
            cfg,
            z_coords,
            nz,
            1,
            z_star,
            psi,
            npsi,
            rng,
            work,
            work_len,
            core::ptr::null_mut(),
        )
    }
}

/// Single-precision `sb_closure_f64`.
#[no_mangle]
pub unsafe extern "C" fn sb_closure_f32(
    model: *const SbModel,
    cfg: *const SbClosureConfig,
    z_coords: *const usize,
    nz: usize,
    z_star: *const f32,
    psi: *mut f32,
    npsi: usize,
    rng: *mut Rng,
    work: *mut f32,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        closure_impl(
            model,
            cfg,
            z_coords,
            nz,
            1,
            z_star,
            psi,
            npsi,
            rng,
            work,
            work_len,
            core::ptr::null_mut(),
        )
    }
}

/// The closure call for `ncol` independent columns: `z_star` is `ncol * nz` doubles and `psi`
/// `ncol * npsi` (one row per column), column `i` uses `rngs[i]`, so results do not depend on how
/// columns are split over threads or ranks. Columns run in order; on a failure the columns before
/// it keep their new `psi` and RNG state, the failing one and those after are unchanged, and
/// `failed_col` (nullable) receives the failing column's index.
#[no_mangle]
pub unsafe extern "C" fn sb_closure_batch_f64(
    model: *const SbModel,
    cfg: *const SbClosureConfig,
    z_coords: *const usize,
    nz: usize,
    ncol: usize,
    z_star: *const f64,
    psi: *mut f64,
    npsi: usize,
    rngs: *mut Rng,
    work: *mut f64,
    work_len: usize,
    failed_col: *mut usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        closure_impl(
            model, cfg, z_coords, nz, ncol, z_star, psi, npsi, rngs, work, work_len, failed_col,
        )
    }
}

/// Single-precision `sb_closure_batch_f64`.
#[no_mangle]
pub unsafe extern "C" fn sb_closure_batch_f32(
    model: *const SbModel,
    cfg: *const SbClosureConfig,
    z_coords: *const usize,
    nz: usize,
    ncol: usize,
    z_star: *const f32,
    psi: *mut f32,
    npsi: usize,
    rngs: *mut Rng,
    work: *mut f32,
    work_len: usize,
    failed_col: *mut usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        closure_impl(
            model, cfg, z_coords, nz, ncol, z_star, psi, npsi, rngs, work, work_len, failed_col,
        )
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn closure_ess_impl<T: ImageFloat>(
    model: *const SbModel,
    z_coords: *const usize,
    nz: usize,
    z_star: *const T,
    psi: *const T,
    npsi: usize,
    ess: *mut T,
    n_ess: usize,
    work: *mut T,
    work_len: usize,
) -> SbStatus {
    guard(|| {
        // SAFETY: module contract for every pointer; disjointness checked below.
        let (v, zc, zs, ps, es, work) = unsafe {
            (
                view::<T>(model)?,
                input_opt(z_coords, nz)?.unwrap_or(&[]),
                input_opt(z_star, nz)?.unwrap_or(&[]),
                input(psi, npsi)?,
                output(ess, n_ess)?,
                output(work, work_len)?,
            )
        };
        if nz > 0 && (zc.is_empty() || zs.is_empty()) {
            return Err(SB_NULL_POINTER);
        }
        outputs_disjoint(
            &[Span::of(&*es), Span::of(&*work)],
            &[
                Span::of(v.bytes()),
                Span::of(zc),
                Span::of(zs),
                Span::of(ps),
            ],
        )?;
        if n_ess != v.n_heads() {
            return Err(SB_LENGTH_MISMATCH);
        }
        // Computed in the work space first, so that `ess` is written only on success.
        let n = v.n_heads();
        let lens = localized::closure_workspace_len(&v);
        crate::error::check_room(crate::Arg::Workspace, lens, work.len())?;
        // Every head has a target of its own, so n <= d, and the closure's work space holds the
        // n staged values and what `closure_ess` needs.
        debug_assert!(lens >= n + localized::closure_ess_workspace_len(&v));
        let (tmp, rest) = work.split_at_mut(n);
        localized::closure_ess(&v, zc, zs, ps, tmp, rest)?;
        es.copy_from_slice(tmp);
        Ok(())
    })
}

/// Extrapolation diagnostic for a closure state: the effective sample size
/// `ESS_h = 1 / sum_j w_j^2` of every head's transition weights at the state `(z_star, psi)`
/// (the arguments of `sb_closure_f64`; pass the new `psi` after a call) into `ess`
/// (`n_ess = n_heads`). `1 <= ESS_h <= M`: near 1 the state is beyond the training data and the
/// head copies its nearest training sample; log the minimum per call or per batch. Costs about
/// one sweep. `work` needs `SbWorkspaceLens.closure` doubles; `ess` is written only on success.
#[no_mangle]
pub unsafe extern "C" fn sb_closure_ess_f64(
    model: *const SbModel,
    z_coords: *const usize,
    nz: usize,
    z_star: *const f64,
    psi: *const f64,
    npsi: usize,
    ess: *mut f64,
    n_ess: usize,
    work: *mut f64,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        closure_ess_impl(
            model, z_coords, nz, z_star, psi, npsi, ess, n_ess, work, work_len,
        )
    }
}

/// Single-precision `sb_closure_ess_f64`.
#[no_mangle]
pub unsafe extern "C" fn sb_closure_ess_f32(
    model: *const SbModel,
    z_coords: *const usize,
    nz: usize,
    z_star: *const f32,
    psi: *const f32,
    npsi: usize,
    ess: *mut f32,
    n_ess: usize,
    work: *mut f32,
    work_len: usize,
) -> SbStatus {
    // SAFETY: forwarded module contract.
    unsafe {
        closure_ess_impl(
            model, z_coords, nz, z_star, psi, npsi, ess, n_ess, work, work_len,
        )
    }
}
