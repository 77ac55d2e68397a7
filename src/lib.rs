//! # sbridge — Schrödinger-bridge samplers without a heap
//!
//! A `no_std` numerical core for the Sinkhorn-based Schrödinger-bridge sampler of Gottwald, Li,
//! Marzouk & Reich and its localized variant of Gottwald & Reich: symmetric Sinkhorn scaling,
//! the bridge step (weights, conditional mean and covariance, score, log-density) and the
//! split-step samplers. Every buffer sized by the data is the caller's; each operation has a
//! `*_workspace_len` query and checks what it is given. Everything is generic over `f32` and
//! `f64`.
//!
//! Layers (each only calls the ones below it): [`real`]/[`rng`], [`exp_poly`] → [`kernel`] (the
//! two-pass rows) and [`fused`] (the one hot loop: distances, logits, `exp` and weighted sums in
//! one pass) → [`mod@sinkhorn`], [`bandwidth`] → [`bridge`] → [`sampler`] → [`layout`],
//! [`model`], [`localized`]; [`fixed`] holds the fixed-capacity types for firmware. Data are
//! sample-major, `x[j*d + c]` (`X(d, M)` in Fortran, `double x[M][d]` in C).
//!
//! ```
//! use sbridge::{fit, Bridge, Dataset, FitConfig, FitStorage, Rng, Scheme, Record};
//!
//! // Training samples: M = 200 points on a noisy circle, d = 2, sample-major.
//! let (m, d) = (200, 2);
//! let mut data = vec![0.0f64; m * d];
//! for j in 0..m {
//!     let t = j as f64 * 0.0314;
//!     let r = 1.0 + 0.05 * ((j * 7919 % 101) as f64 / 101.0 - 0.5);
//!     data[2 * j] = r * t.cos();
//!     data[2 * j + 1] = r * t.sin();
//! }
//! let samples = Dataset::new(&data, d, None).unwrap();
//!
//! // Fit: Sinkhorn weights into caller storage, work space sized by the query.
//! let mut log_v = vec![0.0; m];
//! let mut work = vec![0.0; sbridge::fit_workspace_len(m, d)];
//! let storage = FitStorage { log_v: &mut log_v, bandwidth: None };
//! let (bridge, report) = fit(samples, &FitConfig::new(0.01), storage, &mut work, None).unwrap();
//! assert!(report.sinkhorn.residual <= 1e-12);
//!
//! // Sample: 50 steps of the data-aware split-step sampler (001 eq. 21) from the first sample.
//! let mut rng = Rng::new(2024, 0);
//! let mut x = data[..2].to_vec();
//! let mut half = vec![0.0; d];
//! let mut work = vec![0.0; sbridge::sampler_workspace_len(m, d)];
//! sbridge::run_chain(&bridge, &mut Scheme::Covariance, None, &mut x, &mut half, 50,
//!                    &mut rng, &mut work, Record::default()).unwrap();
//! assert!(x.iter().all(|v| v.is_finite()));
//! ```

#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_code)]
#[cfg(any(feature = "std", test))]
extern crate std;
// The shared test files (`src/fused/tests.rs`, also compiled by `tests/fused_builds.rs`) name
// the crate by its own name.
#[cfg(test)]
extern crate self as sbridge;

pub(crate) mod anderson;
pub mod bandwidth;
pub mod bridge;
pub mod dataset;
pub mod dense;
pub mod error;
pub mod exp_poly;
#[cfg(feature = "ffi")]
pub mod ffi;
pub mod fit;
pub mod fixed;
pub mod fused;
pub mod kernel;
pub mod layout;
pub mod localized;
pub mod model;
pub mod real;
pub mod rng;
pub mod sampler;
pub mod sinkhorn;
pub mod spatial;
pub(crate) mod tile_bounds;

#[cfg(feature = "std")]
pub mod lorenz96;
#[cfg(feature = "std")]
pub mod model_io;
#[cfg(feature = "std")]
pub mod stats;

/// Halts on panic in `no_std` static libraries (feature `panic-handler`). The core never panics
/// on bad input; this only makes a firmware link.
#[cfg(all(feature = "panic-handler", not(feature = "std"), not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// The README's Rust example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use bandwidth::{KdeReport, VariableBandwidth};
pub use bridge::{bridge_workspace_len, Bridge};
pub use dataset::Dataset;
pub use dense::MAX_DENSE_DIM;
pub use error::{Arg, Error};
pub use fit::{fit, fit_workspace_len, BandwidthStorage, FitConfig, FitReport, FitStorage};
pub use layout::{HeadLayout, LayoutSizes, LayoutStorage, MAX_HEAD_DIM};
pub use localized::{
    closure, closure_batch, closure_ess, closure_ess_workspace_len, closure_workspace_len,
    model_step, model_workspace_len, ClosureConfig, ClosureInit, NoiseMode, StepKind,
};
pub use model::{
    image_len, write_model, write_workspace_len, Head, ImageFloat, ModelFitReport, ModelView,
};
pub use real::Real;
pub use rng::{NormalSource, ReplayNormals, Rng};
pub use sampler::{run_chain, sampler_workspace_len, step, Clamp, Record, Scheme};
pub use sinkhorn::{
    kernel_cache_len, sinkhorn, sinkhorn_workspace_len, SinkhornOptions, SinkhornPath,
    SinkhornReport,
};
