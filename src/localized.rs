//! Sampling over the heads of a model: the localized Schrödinger-bridge sweep (paper 000 §3,
//! Algorithm 1), conditioning, and the closure call (000 §5.1, 001 §6.3).
//!
//! One localized sweep from `X(n)`, with `ξ ~ N(0, I)`:
//!
//! ```text
//! X(n+½)   = X(n) + sqrt(2ε) ξ                         (000 eqs. 14a, 42: one draw per sweep)
//! X_a(n+1) = Σ_j x^(j)_a w_α,j(X_[α](n+½))              for every head α and target a of α
//! X_c(n+1) = X_c(n)                                    for coordinates no head targets
//! ```
//!
//! Every head reads the same noisy state (Jacobi). [`NoiseMode::PerHead`] is Algorithm 1 as
//! printed: each head draws its own `ξ_α` for its neighbourhood. With a [`Clamp`] the
//! conditioning coordinates are set to `z*` at the start and after every sweep (they still
//! receive noise before the weights are evaluated). The same rule holds for a single-head model:
//! [`model_step`] returns `z*` in the clamped coordinates of the new state, whatever the scheme.
//!
//! Each head's update is one fused pass over its samples ([`crate::fused`]): the weighted means
//! of all its targets come out of the pass that computes the weights.
//!
//! A model that is one head seeing and writing all coordinates is the plain bridge; its steps are
//! the split-step schemes of [`crate::sampler`] (isotropic with `sqrt(2ερ(X))`, or covariance
//! noise), so the closure call below serves the localized and the unlocalized closure alike.

use crate::bridge::bridge_workspace_len;
use crate::error::{check_len, check_room, Arg, Error};
use crate::fused::truncated::{tile_index_len, TileIndex};
use crate::layout::MAX_HEAD_DIM;
use crate::model::Head;
use crate::model::{ImageFloat, ModelView};
use crate::real::{all_finite, check_state};

use crate::rng::{NormalSource, Rng};
use crate::sampler::{self, sampler_workspace_len, Clamp, Scheme};

/// How a localized sweep draws its noise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NoiseMode {
    /// One draw of `ξ ∈ R^d` per sweep, shared by all heads (000 eqs. 14a, 42; the default).
    #[default]
    Global,
    /// Each head draws its own `ξ_α ∈ R^{d_α}` (Algorithm 1 as printed).
    PerHead,
}

/// The noise of the closure call's steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StepKind {
    /// Isotropic noise: the localized sweep (multi-head), or 001 eq. 20 (single full head).
    #[default]
    Isotropic,
    /// Data-aware noise, 001 eq. 21: single-full-head models only.
    Covariance,
}

/// Work space of [`model_step`] and [`closure`] in values of `T`.
pub fn model_workspace_len<T: ImageFloat>(model: &ModelView<'_, T>) -> usize {
    step_workspace_len(model.m(), model.d())
}

/// [`model_workspace_len`] of a model with `m` samples of dimension `d`: the state three times
/// and the larger of the single-head step's and the localized sweep's work spaces.
pub(crate) const fn step_workspace_len(m: usize, d: usize) -> usize {
    let plain = sampler_workspace_len(m, d);
    let local = d
        .saturating_mul(4)
        .saturating_add(bridge_workspace_len(m, MAX_HEAD_DIM))
        .saturating_add(MAX_HEAD_DIM);
    d.saturating_mul(3)
        .saturating_add(if plain > local { plain } else { local })
}

/// [`closure_workspace_len`] of a model with `m` samples of dimension `d` whose heads' tile
/// indexes take `tiles` values.
pub(crate) const fn closure_workspace_len_for(m: usize, d: usize, tiles: usize) -> usize {
    step_workspace_len(m, d)
        .saturating_add(d.saturating_mul(2))
        .saturating_add(tiles)
}

/// One step of `scheme` on a model (see the module docs): reads `x` (length `d`), writes the
/// noisy half-step into `half` and the new state into `x`. On error neither is changed.
///
/// A single-full-head model takes every [`Scheme`] of [`crate::sampler`] (the gradient of a
/// Bayesian scheme sees the state in the head's coordinate order, which is `0..d` for layouts
/// built by [`crate::layout::single_head`]); a localized model takes [`Scheme::Isotropic`] (the
/// sweep) and returns [`Error::Unsupported`] for the others.
#[allow(clippy::too_many_arguments)]
pub fn model_step<T: ImageFloat, N: NormalSource>(
    model: &ModelView<'_, T>,
    scheme: &mut Scheme<'_, T>,
    noise_mode: NoiseMode,
    clamp: Option<&Clamp<'_, T>>,
    x: &mut [T],
    half: &mut [T],
    noise: &mut N,
    work: &mut [T],
) -> Result<(), Error> {
    model_step_with(model, scheme, noise_mode, clamp, x, half, noise, work, None)
}

/// The tile indexes of every head of a model (the truncated fused pass, [`ClosureConfig::truncation`]),
/// one after another in head order.
struct ModelTiles<'t, T> {
    values: &'t [T],
    tau: T,
}

impl<'t, T: ImageFloat> ModelTiles<'t, T> {
    /// Values the indexes of every head take.
    fn len(model: &ModelView<'_, T>) -> usize {
        Self::offset(model, model.n_heads())
    }

    /// Where head `h`'s index starts: the lengths of the heads before it.
    fn offset(model: &ModelView<'_, T>, h: usize) -> usize {
        (0..h).fold(0usize, |n, k| {
            n.saturating_add(tile_index_len(model.m(), model.head_dim(k)))
        })
    }

    /// Builds every head's index into `storage` (at least [`ModelTiles::len`] values).
    fn build(model: &ModelView<'_, T>, tau: T, storage: &'t mut [T]) -> Result<Self, Error> {
        let mut at = 0;
        for h in 0..model.n_heads() {
            let head = model.head(h);
            let len = tile_index_len(model.m(), head.coords.len());
            head.bridge
                .with_truncation(tau, &mut storage[at..at + len])?;
            at += len;
        }
        Ok(ModelTiles {
            values: &storage[..at],
            tau,
        })
    }

    /// `head`, the `h`-th head of `model`, with its index.
    fn attach<'s>(&'s self, model: &ModelView<'_, T>, h: usize, head: Head<'s, T>) -> Head<'s, T> {
        let at = Self::offset(model, h);
        let (m, da) = (model.m(), head.coords.len());
        let index = TileIndex::view(
            m,
            da,
            &self.values[at..at + tile_index_len(m, da)],
            self.tau,
        );
        Head {
            bridge: head.bridge.with_tile_index(Some(index)),
            ..head
        }
    }
}

/// [`model_step`] with the heads' tile indexes of a truncated closure call.
#[allow(clippy::too_many_arguments)]
fn model_step_with<T: ImageFloat, N: NormalSource>(
    model: &ModelView<'_, T>,
    scheme: &mut Scheme<'_, T>,
    noise_mode: NoiseMode,
    clamp: Option<&Clamp<'_, T>>,
    x: &mut [T],
    half: &mut [T],
    noise: &mut N,
    work: &mut [T],
    tiles: Option<&ModelTiles<'_, T>>,
) -> Result<(), Error> {
    let d = model.d();
    check_len(Arg::State, d, x.len())?;
    check_len(Arg::State, d, half.len())?;
    check_room(Arg::Workspace, model_workspace_len(model), work.len())?;
    if let Some(c) = clamp {
        if c.min_dim() > d {
            return Err(Error::InvalidIndex);
        }
    }
    check_state(x)?;
    noise.check()?;
    let head_of = |h: usize| {
        let head = model.head(h);
        match tiles {
            Some(t) => t.attach(model, h, head),
            None => head,
        }
    };
    if model.is_single_full_head() {
        let head = head_of(0);
        // Clamp in global coordinates, then map the state into the head's order and back.
        let (xl, rest) = work.split_at_mut(d);
        let (hl, rest) = rest.split_at_mut(d);
        let (xg, rest) = rest.split_at_mut(d);
        xg.copy_from_slice(x);
        if let Some(c) = clamp {
            c.apply(xg);
        }
        for (k, &c) in head.coords.iter().enumerate() {
            xl[k] = xg[c as usize];
        }
        // The projection only where the new state is not clamped back to z* (the same bits there).
        let mut free = [0usize; MAX_HEAD_DIM];
        let mut n_free = 0;
        if let Some(c) = clamp {
            for (k, &g) in head.coords.iter().enumerate().take(MAX_HEAD_DIM) {
                if !c.coords().contains(&(g as usize)) {
                    free[n_free] = k;
                    n_free += 1;
                }
            }
        }
        let kept = (clamp.is_some() && d <= MAX_HEAD_DIM).then_some(&free[..n_free]);
        sampler::step_projecting(&head.bridge, scheme, None, xl, hl, noise, rest, kept)?;
        for (k, &c) in head.coords.iter().enumerate() {
            x[c as usize] = xl[k];
            half[c as usize] = hl[k];
        }
        // The one clamp rule of every model: the new state holds z* in the clamped coordinates
        // (the half-step keeps the noisy values the weights were evaluated at).
        if let Some(c) = clamp {
            c.apply(x);
        }
        return Ok(());
    }
    if !matches!(scheme, Scheme::Isotropic) {
        return Err(Error::Unsupported);
    }
    localized_sweep(model, noise_mode, clamp, x, half, noise, work, &head_of)
}

#[allow(clippy::too_many_arguments)]
fn localized_sweep<'h, T: ImageFloat, N: NormalSource>(
    model: &ModelView<'_, T>,
    noise_mode: NoiseMode,
    clamp: Option<&Clamp<'_, T>>,
    x: &mut [T],
    half: &mut [T],
    noise: &mut N,
    work: &mut [T],
    head_of: &dyn Fn(usize) -> Head<'h, T>,
) -> Result<(), Error> {
    let d = model.d();
    let (xc, rest) = work.split_at_mut(d);
    let (xh, rest) = rest.split_at_mut(d);
    let (xn, rest) = rest.split_at_mut(d);
    let (xi, rest) = rest.split_at_mut(d);
    let (y, bw) = rest.split_at_mut(MAX_HEAD_DIM);
    let s = (T::from_f64(2.0) * model.eps()).sqrt();

    xc.copy_from_slice(x);
    if let Some(c) = clamp {
        c.apply(xc);
    }
    if noise_mode == NoiseMode::Global {
        noise.fill_normal(xi)?;
        for ((h, &a), &z) in xh.iter_mut().zip(xc.iter()).zip(xi.iter()) {
            *h = a + s * z;
        }
    } else {
        xh.copy_from_slice(xc);
    }
    xn.copy_from_slice(xc);
    for h in 0..model.n_heads() {
        let head = head_of(h);
        let da = head.coords.len();
        let y = &mut y[..da];
        match noise_mode {
            NoiseMode::Global => {
                for (yk, &c) in y.iter_mut().zip(head.coords) {
                    *yk = xh[c as usize];
                }
            }
            NoiseMode::PerHead => {
                let xa = &mut xi[..da];
                noise.fill_normal(xa)?;
                for ((yk, &c), &z) in y.iter_mut().zip(head.coords).zip(xa.iter()) {
                    *yk = xc[c as usize] + s * z;
                }
                // The half-step reports what each head saw at its own targets.
                for &t in head.targets {
                    if let Some(l) = head.local_index(t) {
                        xh[t as usize] = y[l];
                    }
                }
            }
        }
        if !all_finite(y) {
            return Err(Error::NonFiniteState);
        }
        // One fused pass per head: the weighted means of all its targets together.
        let mut local = [0usize; MAX_HEAD_DIM];
        let nt = head.targets.len();
        for (l, &t) in local.iter_mut().zip(head.targets) {
            *l = head.local_index(t).ok_or(Error::InvalidLayout)?;
        }
        let (sums, _) = head.bridge.fused_sums(y, &local[..nt], bw)?;
        for (k, &t) in head.targets.iter().enumerate() {
            xn[t as usize] = sums.mean(k);
        }
    }
    if let Some(c) = clamp {
        c.apply(xn);
    }
    x.copy_from_slice(xn);
    half.copy_from_slice(xh);
    Ok(())
}

/// How the closure call starts its chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClosureInit {
    /// From the caller's `ψ` (e.g. the previous time step's value).
    #[default]
    Warm,
    /// From the free coordinates of a random training sample (Algorithm 1, line 10).
    RandomSample,
}

/// Settings of the closure call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClosureConfig {
    /// `n_c`: sweeps (or steps, for a single-head model) per call; ≥ 1.
    pub sweeps: usize,
    /// Warm start or a random training sample.
    pub init: ClosureInit,
    /// Isotropic (default) or covariance noise (single-head models).
    pub kind: StepKind,
    /// Noise draws of the localized sweep.
    pub noise: NoiseMode,
    /// `τ ∈ [0, 1)`: each head's weighted means leave out the tiles of samples whose weight is
    /// provably below `τ` of the whole ([`crate::fused::truncated`]; `0`, the default: every
    /// sample). Pays off only for models fitted on samples in a spatial order
    /// (`sbridge fit --spatial-order`), in low dimension at small `ε`. Outside `[0, 1)` the call
    /// is [`Error::InvalidTolerance`].
    pub truncation: f64,
}

impl Default for ClosureConfig {
    /// `n_c = 100` sweeps (paper 000 §5.1), warm start, isotropic noise, one draw per sweep.
    fn default() -> Self {
        ClosureConfig {
            sweeps: 100,
            init: ClosureInit::Warm,
            kind: StepKind::Isotropic,
            noise: NoiseMode::Global,
            truncation: 0.0,
        }
    }
}

/// The closure call (000 §5.1, 001 §6.3): the state is `x ∈ R^d` with the conditioning
/// coordinates `z_coords` clamped to `z_star`; `ψ` are the remaining (free) coordinates in
/// increasing order (`psi.len() = d − z_coords.len()`). Runs `cfg.sweeps` conditional steps from
/// `ψ` (warm start) or from a random training sample, and writes the free coordinates of the last
/// projected state into `psi`. On error `psi` is unchanged.
#[allow(clippy::too_many_arguments)]
pub fn closure<T: ImageFloat>(
    model: &ModelView<'_, T>,
    cfg: &ClosureConfig,
    z_coords: &[usize],
    z_star: &[T],
    psi: &mut [T],
    rng: &mut Rng,
    work: &mut [T],
) -> Result<(), Error> {
    let d = model.d();
    let clamp = Clamp::new(d, z_coords, z_star)?;
    check_len(Arg::Output, d - z_coords.len(), psi.len())?;
    if cfg.sweeps == 0 {
        return Err(Error::ZeroIterations);
    }
    rng.check()?;
    if (0..d).any(|c| !z_coords.contains(&c) && !model.is_target(c)) {
        return Err(Error::UncoveredCoordinate);
    }
    if cfg.init == ClosureInit::Warm {
        check_state(psi)?;
    }
    if !(0.0..1.0).contains(&cfg.truncation) {
        return Err(Error::InvalidTolerance);
    }
    check_room(Arg::Workspace, closure_workspace_len(model), work.len())?;
    let (x, rest) = work.split_at_mut(d);
    let (half, rest) = rest.split_at_mut(d);
    let (tile_values, rest) = rest.split_at_mut(ModelTiles::len(model));
    let tiles = if cfg.truncation > 0.0 {
        Some(ModelTiles::build(
            model,
            T::from_f64(cfg.truncation),
            tile_values,
        )?)
    } else {
        None
    };
    let is_free = |c: usize| !z_coords.contains(&c);
    match cfg.init {
        ClosureInit::Warm => {
            let mut k = 0;
            for (c, xc) in x.iter_mut().enumerate() {
                if is_free(c) {
                    *xc = psi[k];
                    k += 1;
                }
            }
        }
        ClosureInit::RandomSample => {
            let j = (rng.next_u64() % model.m() as u64) as usize;
            for (c, xc) in x.iter_mut().enumerate() {
                *xc = if is_free(c) {
                    model.sample_value(j, c as u32).unwrap_or(T::ZERO)
                } else {
                    T::ZERO
                };
            }
        }
    }
    clamp.apply(x);
    let mut scheme = match cfg.kind {
        StepKind::Isotropic => Scheme::Isotropic,
        StepKind::Covariance => Scheme::Covariance,
    };
    for _ in 0..cfg.sweeps {
        model_step_with(
            model,
            &mut scheme,
            cfg.noise,
            Some(&clamp),
            x,
            half,
            rng,
            rest,
            tiles.as_ref(),
        )?;
    }
    let mut k = 0;
    for (c, &xc) in x.iter().enumerate() {
        if is_free(c) {
            psi[k] = xc;
            k += 1;
        }
    }
    Ok(())
}

/// [`closure`] for `ncol` independent columns: `z_star` is `ncol × nz` and `psi` is
/// `ncol × (d − nz)` (column-major in the sense of one row per column), and column `i` uses
/// `rngs[i]`, so results do not depend on how columns are split over threads or ranks. Stops at
/// the first failing column and returns its error; earlier columns keep their new `ψ`.
#[allow(clippy::too_many_arguments)]
pub fn closure_batch<T: ImageFloat>(
    model: &ModelView<'_, T>,
    cfg: &ClosureConfig,
    z_coords: &[usize],
    z_star: &[T],
    psi: &mut [T],
    rngs: &mut [Rng],
    work: &mut [T],
) -> Result<(), Error> {
    let ncol = rngs.len();
    let nz = z_coords.len();
    let nf = model.d().checked_sub(nz).ok_or(Error::InvalidIndex)?;
    check_len(Arg::Conditioning, ncol * nz, z_star.len())?;
    check_len(Arg::Output, ncol * nf, psi.len())?;
    for (i, rng) in rngs.iter_mut().enumerate() {
        closure(
            model,
            cfg,
            z_coords,
            &z_star[i * nz..(i + 1) * nz],
            &mut psi[i * nf..(i + 1) * nf],
            rng,
            work,
        )?;
    }
    Ok(())
}

/// The effective sample size `ESS_α = (Σ_j w_j)^2 / Σ_j w_j^2 = 1 / Σ_j w_j^2` of every head's
/// transition weights `w_j(x_[α])` at the closure state `x = (z*, ψ)` (the arguments of
/// [`closure`]), into `ess` (length `n_heads`): a per-call diagnostic of extrapolation. It lies
/// in `[1, M]`; near 1 one training sample carries all the weight, i.e. the state is beyond the
/// training data and the head copies its nearest sample. Costs one pass over each head's samples
/// (about one sweep of the closure call); uses [`closure_ess_workspace_len`] of `work` (less
/// than [`closure_workspace_len`] by more than `n_heads`).
pub fn closure_ess<T: ImageFloat>(
    model: &ModelView<'_, T>,
    z_coords: &[usize],
    z_star: &[T],
    psi: &[T],
    ess: &mut [T],
    work: &mut [T],
) -> Result<(), Error> {
    let d = model.d();
    let clamp = Clamp::new(d, z_coords, z_star)?;
    check_len(Arg::State, d - z_coords.len(), psi.len())?;
    check_len(Arg::Output, model.n_heads(), ess.len())?;
    check_room(Arg::Workspace, closure_ess_workspace_len(model), work.len())?;
    check_state(psi)?;
    let (x, rest) = work.split_at_mut(d);
    let mut free = psi.iter();
    for (c, xc) in x.iter_mut().enumerate() {
        if !z_coords.contains(&c) {
            *xc = free.next().copied().unwrap_or(T::ZERO);
        }
    }
    clamp.apply(x);
    let (local, rest) = rest.split_at_mut(MAX_HEAD_DIM);
    for (h, e) in ess.iter_mut().enumerate().take(model.n_heads()) {
        let head = model.head(h);
        let xa = &mut local[..head.coords.len()];
        for (v, &c) in xa.iter_mut().zip(head.coords) {
            *v = x[c as usize];
        }
        *e = head.bridge.effective_sample_size(xa, rest)?;
    }
    Ok(())
}

/// Work space of [`closure_ess`]: the state, one neighbourhood and one head's query.
pub fn closure_ess_workspace_len<T: ImageFloat>(model: &ModelView<'_, T>) -> usize {
    model
        .d()
        .saturating_add(MAX_HEAD_DIM)
        .saturating_add(bridge_workspace_len(model.m(), MAX_HEAD_DIM))
}

/// Work space of [`closure`] and [`closure_batch`]: [`model_workspace_len`], the state twice and
/// the heads' tile indexes of [`ClosureConfig::truncation`] (`⌈M/256⌉ (2 d_α + 2)` per head).
pub fn closure_workspace_len<T: ImageFloat>(model: &ModelView<'_, T>) -> usize {
    closure_workspace_len_for(model.m(), model.d(), ModelTiles::len(model))
}
