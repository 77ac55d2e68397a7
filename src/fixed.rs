//! The fixed-capacity layer for firmware: types whose capacities are compile-time parameters and
//! which hold their own storage, so that a `static` instance needs neither an allocator nor any
//! work-space arithmetic. Every call runs the core's no-heap code underneath, so the results are
//! the same bits as the slice API's.
//!
//! - [`FixedBridge`]`<T, M, D, W>`: collects up to `M` samples of dimension `D`, fits them on
//!   the device ([`FixedBridge::fit`]) and samples from the fit
//!   through the returned [`FittedBridge`]. `W` is its work space in values of `T`; write it as
//!   `{ `[`fit_and_sample_workspace_len`]`(M, D) }`.
//! - [`FixedClosure`]`<T, W>`: the work space of closure calls on a model image (in flash, in
//!   RAM): write `W` as `{ `[`closure_workspace_bound`]`(M, d, heads) }` with the sizes of the
//!   models it will run.
//! - [`Aligned16`] and [`include_model!`](crate::include_model): a model image embedded in the
//!   program at the 16-byte alignment [`ModelView::open`] requires.
//!
//! Capacities that the type fixes are checked when the program is compiled: a `W` below the
//! bound, `M < 1` or `D < 1` stop the build (the first use of `new` evaluates a `const`
//! assertion). What only a run can know — a sample pushed into a full [`FixedBridge`], a model
//! bigger than a [`FixedClosure`]'s `W` — is [`Error::Capacity`].
//!
//! A work space below the bound does not compile:
//!
//! ```compile_fail
//! let too_small = sbridge::fixed::FixedBridge::<f32, 64, 2, 10>::new();
//! ```
//!
//! ```
//! use sbridge::fixed::{fit_and_sample_workspace_len, FixedBridge};
//! use sbridge::{FitConfig, Rng, Scheme};
//!
//! const M: usize = 64;
//! const D: usize = 2;
//! // A `static mut` in a firmware's `#[entry]` (cortex-m-rt makes it a `&'static mut`), or here
//! // a local: `new` is a `const fn`.
//! let mut bridge = FixedBridge::<f32, M, D, { fit_and_sample_workspace_len(M, D) }>::new();
//! for j in 0..M {
//!     let t = j as f32 * 0.098;
//!     bridge.push(&[libm::cosf(t), libm::sinf(t)]).unwrap();
//! }
//! assert!(bridge.push(&[0.0, 0.0]).is_err()); // full: Error::Capacity
//! let (mut fitted, report) = bridge.fit(&FitConfig::new(0.05)).unwrap();
//! assert!(report.sinkhorn.residual <= 1e-4);
//! let (mut x, mut half) = ([1.0f32, 0.0], [0.0f32; D]);
//! let mut rng = Rng::new(7, 0);
//! fitted.run_chain(&mut Scheme::Isotropic, &mut x, &mut half, 20, &mut rng).unwrap();
//! assert!(x.iter().all(|v| v.is_finite()));
//! ```

use crate::bandwidth::VariableBandwidth;
use crate::bridge::Bridge;
use crate::dataset::Dataset;
use crate::error::{check_len, Arg, Error};
use crate::fit::{fit, fit_workspace_len, BandwidthStorage, FitConfig, FitReport, FitStorage};
use crate::fused::truncated::tile_index_len;
use crate::layout::MAX_HEAD_DIM;
use crate::localized::{
    closure, closure_batch, closure_workspace_len, closure_workspace_len_for, ClosureConfig,
};
use crate::model::{ImageFloat, ModelView};
use crate::real::{check_data, Real};
use crate::rng::{NormalSource, Rng};
use crate::sampler::{run_chain, sampler_workspace_len, step, Clamp, Record, Scheme};

/// Bytes at the model image's alignment (16, [`crate::model::ALIGN`]). `Aligned16<[u8]>` is
/// what a `&Aligned16([u8; N])` coerces to, which is how [`include_model!`](crate::include_model)
/// embeds an image file.
#[repr(C, align(16))]
#[derive(Debug)]
pub struct Aligned16<B: ?Sized>(pub B);

impl Aligned16<[u8]> {
    /// The bytes, starting at a 16-byte boundary.
    pub const fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Embeds the model image file at `path` (relative to the file that calls it, as in
/// `include_bytes!`) as a 16-byte-aligned `&'static [u8]`, ready for
/// [`ModelView::open`](crate::ModelView::open). On a microcontroller it lives in flash.
#[macro_export]
macro_rules! include_model {
    ($path:expr) => {{
        static IMAGE: &$crate::fixed::Aligned16<[u8]> =
            &$crate::fixed::Aligned16(*::core::include_bytes!($path));
        IMAGE.bytes()
    }};
}

/// Work space of a [`FixedBridge`] with `m` samples of dimension `d`, in values: what
/// [`crate::fit()`] needs ([`fit_workspace_len`]) and what [`crate::run_chain`] needs
/// ([`sampler_workspace_len`]), whichever is larger.
pub const fn fit_and_sample_workspace_len(m: usize, d: usize) -> usize {
    let (f, s) = (fit_workspace_len(m, d), sampler_workspace_len(m, d));
    if f > s {
        f
    } else {
        s
    }
}

/// An upper bound of [`closure_workspace_len`] for every model with `m` samples, dimension `d`
/// and `heads` heads (each of at most [`MAX_HEAD_DIM`] coordinates), in values. It is exact but
/// for the heads' tile indexes, which it counts at `MAX_HEAD_DIM` coordinates each.
pub const fn closure_workspace_bound(m: usize, d: usize, heads: usize) -> usize {
    closure_workspace_len_for(m, d, heads.saturating_mul(tile_index_len(m, MAX_HEAD_DIM)))
}

/// The parameters of the last successful fit, which a new view of the bridge needs. Plain
/// fields rather than `Option`s: an `Option::None` leaves its payload bytes uninitialised, which
/// (like a `MaybeUninit`) moves a `static` holding it from `.bss` to `.data`.
#[derive(Clone, Copy, Debug)]
struct FitParams<T> {
    /// [`Self::NONE`], [`Self::FIXED`] or [`Self::VARIABLE`].
    kind: usize,
    eps: T,
    /// `β` and `log Z'` of a variable bandwidth.
    beta: T,
    log_z: T,
}

impl<T: Real> FitParams<T> {
    const NONE: usize = 0;
    const FIXED: usize = 1;
    const VARIABLE: usize = 2;
    const UNFITTED: Self = FitParams {
        kind: Self::NONE,
        eps: T::ZERO,
        beta: T::ZERO,
        log_z: T::ZERO,
    };
}

/// The first `m` of `samples` as a checked [`Dataset`], with the scales unless they are unset
/// (`s_0 = 0`; a valid scale is `> 0`).
fn dataset_of<'a, T: Real, const D: usize>(
    samples: &'a [[T; D]],
    m: usize,
    scales: &'a [T; D],
) -> Result<Dataset<'a, T>, Error> {
    let scales = (scales[0] > T::ZERO).then_some(&scales[..]);
    Dataset::new(&samples.as_flattened()[..m * D], D, scales)
}

/// Up to `M` training samples of dimension `D`, their fit and the work space to fit and sample,
/// all in one value (`M (5 + 2D) + D + D² + W` values of `T` and a few words). See the
/// [module docs](self) for an example.
///
/// `W` must be at least [`fit_and_sample_workspace_len`]`(M, D)`, `M ≥ 1` and `D ≥ 1`: otherwise
/// the program does not compile.
///
/// Every field starts as zero bytes, so that a `static` instance goes to `.bss` and costs no
/// flash: the samples are a zeroed `[[T; D]; M]` and a count rather than a [`heapless::Vec`]
/// (whose `MaybeUninit` buffer, like an `Option::None`'s payload, puts the whole `static` in
/// `.data`, copied from flash at start-up: 28 832 bytes of flash for the firmware example's
/// instance).
#[derive(Debug)]
pub struct FixedBridge<T, const M: usize, const D: usize, const W: usize> {
    samples: [[T; D]; M],
    len: usize,
    /// `s_c`; all zero for none.
    scales: [T; D],
    log_v: [T; M],
    chol: [[T; D]; D],
    whitened: [[T; D]; M],
    rho: [T; M],
    work: [T; W],
    fitted: FitParams<T>,
}

impl<T: Real, const M: usize, const D: usize, const W: usize> Default for FixedBridge<T, M, D, W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Real, const M: usize, const D: usize, const W: usize> FixedBridge<T, M, D, W> {
    /// The compile-time capacity checks (evaluated by [`Self::new`]).
    const CAPACITY_CHECK: () = {
        assert!(M >= 1, "FixedBridge: M must be at least 1");
        assert!(D >= 1, "FixedBridge: D must be at least 1");
        assert!(
            W >= fit_and_sample_workspace_len(M, D),
            "FixedBridge: W must be at least fit_and_sample_workspace_len(M, D)"
        );
    };

    /// An empty instance (no samples, no scales, not fitted); a `const fn`, so it can initialise
    /// a `static`.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_CHECK;
        FixedBridge {
            samples: [[T::ZERO; D]; M],
            len: 0,
            scales: [T::ZERO; D],
            log_v: [T::ZERO; M],
            chol: [[T::ZERO; D]; D],
            whitened: [[T::ZERO; D]; M],
            rho: [T::ZERO; M],
            work: [T::ZERO; W],
            fitted: FitParams::UNFITTED,
        }
    }

    /// Appends one sample (`x.len() = D`, finite). A full instance is [`Error::Capacity`] with
    /// `limit = M`; a wrong length [`Error::LengthMismatch`] on [`Arg::Data`]; a non-finite
    /// value [`Error::NonFiniteData`]. Nothing changes on error. Forgets the last fit.
    pub fn push(&mut self, x: &[T]) -> Result<(), Error> {
        check_len(Arg::Data, D, x.len())?;
        check_data(x)?;
        if self.len == M {
            return Err(Error::Capacity {
                limit: M,
                requested: M + 1,
            });
        }
        self.samples[self.len].copy_from_slice(x);
        self.len += 1;
        self.fitted = FitParams::UNFITTED;
        Ok(())
    }

    /// Appends the samples of `data` (`k × D`, sample-major): all of them or, on error, none.
    /// Errors as [`Self::push`]; more than the room left is [`Error::Capacity`].
    pub fn extend_from(&mut self, data: &[T]) -> Result<(), Error> {
        if !data.len().is_multiple_of(D) {
            return Err(Error::LengthMismatch {
                arg: Arg::Data,
                expected: (data.len() / D + 1) * D,
                got: data.len(),
            });
        }
        let k = data.len() / D;
        if k > M - self.len {
            return Err(Error::Capacity {
                limit: M,
                requested: self.len + k,
            });
        }
        check_data(data)?;
        for x in data.chunks_exact(D) {
            self.push(x)?;
        }
        Ok(())
    }

    /// Removes every sample and forgets the fit.
    pub fn clear(&mut self) {
        self.len = 0;
        self.fitted = FitParams::UNFITTED;
    }

    /// Sets (or with `None` removes) the per-coordinate scales `s_c > 0` of the metric
    /// `|u|_S^2 = Σ_c (u_c / s_c)^2`; a non-positive or non-finite scale is
    /// [`Error::InvalidScale`]. Forgets the last fit.
    pub fn set_scales(&mut self, scales: Option<[T; D]>) -> Result<(), Error> {
        if let Some(s) = &scales {
            if !s.iter().all(|&v| v.is_finite() && v > T::ZERO) {
                return Err(Error::InvalidScale);
            }
        }
        self.scales = scales.unwrap_or([T::ZERO; D]);
        self.fitted = FitParams::UNFITTED;
        Ok(())
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No samples held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The samples held, `len() × D` sample-major.
    pub fn samples(&self) -> &[T] {
        &self.samples.as_flattened()[..self.len * D]
    }

    /// Fits the samples held with `cfg` ([`crate::fit()`], without a kernel cache) and returns
    /// the fitted bridge with its report. Errors as [`crate::fit()`]; no samples is
    /// [`Error::EmptyData`]. After an error the instance has no fit.
    pub fn fit(&mut self, cfg: &FitConfig<T>) -> Result<(FittedBridge<'_, T>, FitReport), Error> {
        let m = self.len;
        let FixedBridge {
            samples,
            scales,
            log_v,
            chol,
            whitened,
            rho,
            work,
            fitted,
            ..
        } = self;
        *fitted = FitParams::UNFITTED;
        let data = dataset_of(&samples[..], m, scales)?;
        let bandwidth = cfg.beta.map(|_| BandwidthStorage {
            chol: chol.as_flattened_mut(),
            whitened: &mut whitened.as_flattened_mut()[..m * D],
            rho: &mut rho[..m],
        });
        let storage = FitStorage {
            log_v: &mut log_v[..m],
            bandwidth,
        };
        let (bridge, report) = fit(data, cfg, storage, &mut work[..], None)?;
        let (kind, beta, log_z) = match bridge.bandwidth() {
            None => (FitParams::<T>::FIXED, T::ZERO, T::ZERO),
            Some(b) => (FitParams::<T>::VARIABLE, b.beta(), b.log_z()),
        };
        *fitted = FitParams {
            kind,
            eps: cfg.eps,
            beta,
            log_z,
        };
        Ok((FittedBridge { bridge, work }, report))
    }

    /// The bridge of the last successful fit (`None` if the samples or scales changed since, or
    /// there was none): for a `static` instance fitted once and sampled from later.
    pub fn fitted(&mut self) -> Option<FittedBridge<'_, T>> {
        let params = self.fitted;
        if params.kind == FitParams::<T>::NONE {
            return None;
        }
        let m = self.len;
        let FixedBridge {
            samples,
            scales,
            log_v,
            chol,
            whitened,
            rho,
            work,
            ..
        } = self;
        let data = dataset_of(&samples[..], m, scales).ok()?;
        let bandwidth = match params.kind {
            FitParams::<T>::VARIABLE => Some(
                VariableBandwidth::new(
                    D,
                    params.beta,
                    params.log_z,
                    chol.as_flattened(),
                    &whitened.as_flattened()[..m * D],
                    &rho[..m],
                )
                .ok()?,
            ),
            _ => None,
        };
        let bridge = Bridge::new(data, params.eps, &log_v[..m], bandwidth).ok()?;
        Some(FittedBridge { bridge, work })
    }
}

/// A fitted bridge and the work space of its owner ([`FixedBridge::fit`],
/// [`FixedBridge::fitted`]): every call needs only its own arguments.
#[derive(Debug)]
pub struct FittedBridge<'a, T> {
    bridge: Bridge<'a, T>,
    work: &'a mut [T],
}

impl<'a, T: Real> FittedBridge<'a, T> {
    /// The bridge view (weights `g = log v`, `ε`, the bandwidth).
    pub fn bridge(&self) -> &Bridge<'a, T> {
        &self.bridge
    }

    /// One step of `scheme` from `x` ([`crate::step`]): the half-step into `half`, the new state
    /// into `x`; on error neither changes.
    pub fn step<N: NormalSource>(
        &mut self,
        scheme: &mut Scheme<'_, T>,
        clamp: Option<&Clamp<'_, T>>,
        x: &mut [T],
        half: &mut [T],
        noise: &mut N,
    ) -> Result<(), Error> {
        step(&self.bridge, scheme, clamp, x, half, noise, self.work)
    }

    /// `steps` steps of `scheme` in place on `x` ([`crate::run_chain`] without a record).
    pub fn run_chain<N: NormalSource>(
        &mut self,
        scheme: &mut Scheme<'_, T>,
        x: &mut [T],
        half: &mut [T],
        steps: usize,
        noise: &mut N,
    ) -> Result<(), Error> {
        run_chain(
            &self.bridge,
            scheme,
            None,
            x,
            half,
            steps,
            noise,
            self.work,
            Record::default(),
        )
    }

    /// The transition weights `w_j(x)` into `out` (length `M`; [`Bridge::weights`]).
    pub fn weights(&mut self, x: &[T], out: &mut [T]) -> Result<(), Error> {
        self.bridge.weights(x, out, self.work)
    }

    /// The conditional mean `m(x)` into `out` (length `D`; [`Bridge::mean`]).
    pub fn mean(&mut self, x: &[T], out: &mut [T]) -> Result<(), Error> {
        self.bridge.mean(x, out, self.work)
    }
}

/// The work space of closure calls, `W` values of `T`, in one value; the model is the caller's
/// (a [`ModelView`] of an image in flash or RAM). `W ≥ 1` is checked at compile time; a model
/// whose [`closure_workspace_len`] exceeds `W` is [`Error::Capacity`] (size `W` with
/// [`closure_workspace_bound`]).
#[derive(Debug)]
pub struct FixedClosure<T, const W: usize> {
    work: [T; W],
}

impl<T: ImageFloat, const W: usize> Default for FixedClosure<T, W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ImageFloat, const W: usize> FixedClosure<T, W> {
    const CAPACITY_CHECK: () = assert!(W >= 1, "FixedClosure: W must be at least 1");

    /// Zeroed work space; a `const fn`, so it can initialise a `static`.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_CHECK;
        FixedClosure { work: [T::ZERO; W] }
    }

    /// `Ok` when `model`'s closure calls fit in `W`, else [`Error::Capacity`] (`limit = W`,
    /// `requested` the model's [`closure_workspace_len`]).
    pub fn check(&self, model: &ModelView<'_, T>) -> Result<(), Error> {
        let needed = closure_workspace_len(model);
        if needed > W {
            return Err(Error::Capacity {
                limit: W,
                requested: needed,
            });
        }
        Ok(())
    }

    /// [`crate::closure`] with this work space: `cfg.sweeps` conditional sweeps from `psi` (or
    /// a random training sample) with `z_coords` clamped to `z_star`; the new free coordinates
    /// into `psi`, unchanged on error.
    pub fn closure(
        &mut self,
        model: &ModelView<'_, T>,
        cfg: &ClosureConfig,
        z_coords: &[usize],
        z_star: &[T],
        psi: &mut [T],
        rng: &mut Rng,
    ) -> Result<(), Error> {
        self.check(model)?;
        closure(model, cfg, z_coords, z_star, psi, rng, &mut self.work)
    }

    /// [`crate::closure_batch`] with this work space: column `i` reads row `i` of `z_star`,
    /// updates row `i` of `psi` and uses `rngs[i]`.
    pub fn closure_batch(
        &mut self,
        model: &ModelView<'_, T>,
        cfg: &ClosureConfig,
        z_coords: &[usize],
        z_star: &[T],
        psi: &mut [T],
        rngs: &mut [Rng],
    ) -> Result<(), Error> {
        self.check(model)?;
        closure_batch(model, cfg, z_coords, z_star, psi, rngs, &mut self.work)
    }
}
