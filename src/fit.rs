//! Fitting a bridge into caller storage: the variable bandwidth (if asked for), then the Sinkhorn
//! scaling, then the [`Bridge`] view over the results.

use crate::bandwidth::{self, KdeReport, VariableBandwidth};
use crate::bridge::Bridge;
use crate::dataset::Dataset;
use crate::error::{check_room, Arg, Error};
use crate::real::Real;
use crate::sinkhorn::{sinkhorn, sinkhorn_workspace_len, SinkhornOptions, SinkhornReport};

/// What to fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitConfig<T> {
    /// Bandwidth / step size `ε > 0`.
    pub eps: T,
    /// `Some(β)` with `β ≤ 0` for the variable bandwidth `ρ = (π/Z)^β`; `None` for `ρ ≡ 1`.
    pub beta: Option<T>,
    /// Sinkhorn stopping rule.
    pub sinkhorn: SinkhornOptions<T>,
}

impl<T: Real> FitConfig<T> {
    /// Fixed bandwidth `ε` with the default Sinkhorn options.
    pub fn new(eps: T) -> Self {
        FitConfig {
            eps,
            beta: None,
            sinkhorn: SinkhornOptions::default(),
        }
    }
    /// The same with a variable bandwidth exponent `β ≤ 0`.
    pub fn with_beta(mut self, beta: T) -> Self {
        self.beta = Some(beta);
        self
    }
}

/// Where the variable-bandwidth fit goes: `L` (`d × d`), whitened samples (`M × d`), `ρ_i` (`M`).
#[derive(Debug)]
pub struct BandwidthStorage<'a, T> {
    /// Cholesky factor of the KDE bandwidth matrix, `d × d` row-major lower.
    pub chol: &'a mut [T],
    /// Whitened samples `L⁻¹ x^(j)`, `M × d`.
    pub whitened: &'a mut [T],
    /// `ρ_i`, `M`.
    pub rho: &'a mut [T],
}

/// Where a fit goes.
#[derive(Debug)]
pub struct FitStorage<'a, T> {
    /// `g = log v`, length `M`.
    pub log_v: &'a mut [T],
    /// Required exactly when [`FitConfig::beta`] is `Some`.
    pub bandwidth: Option<BandwidthStorage<'a, T>>,
}

/// What a fit did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitReport {
    /// The Sinkhorn run.
    pub sinkhorn: SinkhornReport,
    /// The KDE, when the bandwidth is variable.
    pub kde: Option<KdeReport>,
}

/// Work space of [`fit`]: [`sinkhorn_workspace_len`]`(M, d)` (which covers the KDE's row too).
pub const fn fit_workspace_len(m: usize, d: usize) -> usize {
    let s = sinkhorn_workspace_len(m, d);
    let b = bandwidth::fit_workspace_len(m);
    if s > b {
        s
    } else {
        b
    }
}

/// Fits `data` with `cfg` into `storage` and returns the bridge view and the report. `cache`
/// selects the cached-kernel Sinkhorn path (see [`crate::sinkhorn::sinkhorn`]).
///
/// A Sinkhorn run that misses the tolerance returns [`Error::NotConverged`]; the best scaling is
/// still in `storage.log_v` and can be wrapped with [`Bridge::new`] by a caller who accepts it.
pub fn fit<'a, T: Real>(
    data: Dataset<'a, T>,
    cfg: &FitConfig<T>,
    storage: FitStorage<'a, T>,
    work: &mut [T],
    cache: Option<&mut [T]>,
) -> Result<(Bridge<'a, T>, FitReport), Error> {
    let (m, d) = (data.m(), data.d());
    if !(cfg.eps.is_finite() && cfg.eps > T::ZERO) {
        return Err(Error::InvalidEpsilon);
    }
    if !(cfg.sinkhorn.tol.is_finite() && cfg.sinkhorn.tol > T::ZERO) {
        return Err(Error::InvalidTolerance);
    }
    if cfg.sinkhorn.max_iter == 0 {
        return Err(Error::ZeroIterations);
    }
    crate::error::check_len(Arg::LogV, m, storage.log_v.len())?;
    check_room(Arg::Workspace, fit_workspace_len(m, d), work.len())?;
    let FitStorage { log_v, bandwidth } = storage;
    let (bw, kde): (Option<VariableBandwidth<'a, T>>, _) = match (cfg.beta, bandwidth) {
        (None, None) => (None, None),
        (Some(beta), Some(st)) => {
            let rep = bandwidth::fit_variable_bandwidth(
                data.data(),
                d,
                beta,
                st.chol,
                st.whitened,
                st.rho,
                work,
            )?;
            let (chol, whitened, rho): (&'a [T], &'a [T], &'a [T]) = (st.chol, st.whitened, st.rho);
            let vb = VariableBandwidth::new(d, beta, T::from_f64(rep.log_z), chol, whitened, rho)?;
            (Some(vb), Some(rep))
        }
        (Some(_), None) => {
            return Err(Error::BufferTooSmall {
                arg: Arg::Bandwidth,
                needed: m,
                got: 0,
            })
        }
        (None, Some(_)) => {
            return Err(Error::LengthMismatch {
                arg: Arg::Bandwidth,
                expected: 0,
                got: m,
            })
        }
    };
    let rep = sinkhorn(
        &data,
        cfg.eps,
        bw.as_ref().map(|b| b.rho()),
        cfg.sinkhorn,
        log_v,
        work,
        cache,
    )?;
    let log_v: &'a [T] = log_v;
    let bridge = Bridge::new(data, cfg.eps, log_v, bw)?;
    Ok((bridge, FitReport { sinkhorn: rep, kde }))
}
