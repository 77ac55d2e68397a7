//! What the firmware computes and prints, in one place for both sides: the firmware runs it on the
//! Cortex-M4F, and `tests/firmware.rs` compiles this same file into a host test and runs it on the
//! host's build of the library (with its AVX-512 or AVX2 passes). The two printouts must agree
//! byte for byte: every number is printed as the hex of its bits (and decimally beside some), so
//! any difference in the arithmetic (exp, reductions, normal deviates, Sinkhorn) shows.
//!
//! 1. Closure calls on the embedded model image (a Lorenz-96 closure fitted on the host in f32:
//!    `K = 8` heads of `d_α = 6`, `M = 512`, `d = 16`): three time steps of four columns through
//!    [`FixedClosure::closure_batch`] with warm starts, and one call from a random training sample.
//! 2. A fit on the device: `M = 256` samples of `d = 4` (a noisy closed curve drawn with the
//!    library's generator) into a [`FixedBridge`] with a variable bandwidth, every weight
//!    `g_j = log v_j` printed, then two chains (covariance and isotropic noise) from it.

use core::fmt::{self, Write};
use sbridge::fixed::{
    closure_workspace_bound, fit_and_sample_workspace_len, FixedBridge, FixedClosure,
};
use sbridge::{ClosureConfig, ClosureInit, Error, FitConfig, ModelView, Rng, Scheme};

/// Slow variables `K` of the closure model (one head each).
pub const CLOSURE_K: usize = 8;
/// State dimension of the closure model: `z` (coordinates `0..K`) then `ψ` (`K..2K`).
pub const CLOSURE_D: usize = 2 * CLOSURE_K;
/// Training samples of the closure model.
pub const CLOSURE_M: usize = 512;
/// Columns per closure time step.
pub const COLUMNS: usize = 4;
/// Sweeps `n_c` per closure call.
pub const SWEEPS: usize = 20;

/// Samples of the on-device fit.
pub const FIT_M: usize = 256;
/// Dimension of the on-device fit.
pub const FIT_D: usize = 4;

/// Seed of every generator in the demo (streams differ).
pub const SEED: u64 = 20_261_203;

/// The on-device fit's storage: `FIT_M` samples of `FIT_D`, fitted and sampled in place.
pub type DeviceBridge =
    FixedBridge<f32, FIT_M, FIT_D, { fit_and_sample_workspace_len(FIT_M, FIT_D) }>;
/// The closure calls' work space, sized at compile time for the embedded model.
pub type DeviceClosure =
    FixedClosure<f32, { closure_workspace_bound(CLOSURE_M, CLOSURE_D, CLOSURE_K) }>;

/// Why the demo stopped.
#[derive(Debug)]
pub enum DemoError {
    /// A library call failed.
    Sbridge(Error),
    /// The output could not be written.
    Output,
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemoError::Sbridge(e) => write!(f, "{e} ({e:?})"),
            DemoError::Output => f.write_str("the output could not be written"),
        }
    }
}

impl From<Error> for DemoError {
    fn from(e: Error) -> Self {
        DemoError::Sbridge(e)
    }
}

impl From<fmt::Error> for DemoError {
    fn from(_: fmt::Error) -> Self {
        DemoError::Output
    }
}

/// Runs both parts, printing into `out`.
pub fn run(
    image: &[u8],
    closure: &mut DeviceClosure,
    bridge: &mut DeviceBridge,
    out: &mut impl Write,
) -> Result<(), DemoError> {
    closure_calls(image, closure, out)?;
    fit_and_sample(bridge, out)?;
    Ok(())
}

/// Prints `values` as `label` then the hex bits of each value.
fn bits(out: &mut impl Write, label: fmt::Arguments<'_>, values: &[f32]) -> fmt::Result {
    write!(out, "{label}")?;
    for v in values {
        write!(out, " {:08x}", v.to_bits())?;
    }
    writeln!(out)
}

/// The conditioning values `z` of training sample `j` of `model`.
pub fn sample_z(model: &ModelView<'_, f32>, j: usize, z: &mut [f32]) {
    for (c, v) in z.iter_mut().enumerate() {
        *v = model.sample_value(j, c as u32).unwrap_or(0.0);
    }
}

/// Part 1: closure calls on the embedded image.
pub fn closure_calls(
    image: &[u8],
    work: &mut DeviceClosure,
    out: &mut impl Write,
) -> Result<(), DemoError> {
    let model = ModelView::<f32>::open(image)?;
    writeln!(
        out,
        "closure model: {} bytes, checksum {:016x}, M = {}, d = {}, {} heads, eps = {}",
        image.len(),
        sbridge::model::checksum(image),
        model.m(),
        model.d(),
        model.n_heads(),
        model.eps()
    )?;
    work.check(&model)?;
    let z_coords: [usize; CLOSURE_K] = core::array::from_fn(|c| c);
    let mut z_star = [0.0f32; COLUMNS * CLOSURE_K];
    let mut psi = [0.0f32; COLUMNS * CLOSURE_K];
    let mut rngs: [Rng; COLUMNS] = core::array::from_fn(|i| Rng::new(SEED, i as u64));
    let cfg = ClosureConfig {
        sweeps: SWEEPS,
        ..ClosureConfig::default()
    };
    // Column i follows training trajectory i from its sample 40 i: consecutive samples are one
    // sampling interval apart, so each step's z is the next sample's.
    for n in 0..3 {
        for i in 0..COLUMNS {
            let j = (40 * i + n) % model.m();
            sample_z(&model, j, &mut z_star[i * CLOSURE_K..(i + 1) * CLOSURE_K]);
        }
        work.closure_batch(&model, &cfg, &z_coords, &z_star, &mut psi, &mut rngs)?;
        for i in 0..COLUMNS {
            let p = &psi[i * CLOSURE_K..(i + 1) * CLOSURE_K];
            bits(out, format_args!("step {n} column {i} psi"), p)?;
        }
    }
    writeln!(out, "step 2 column 0 psi = {:?}", &psi[..CLOSURE_K])?;
    let random = ClosureConfig {
        init: ClosureInit::RandomSample,
        ..cfg
    };
    let mut one = [0.0f32; CLOSURE_K];
    let mut rng = Rng::new(SEED, 99);
    work.closure(
        &model,
        &random,
        &z_coords,
        &z_star[..CLOSURE_K],
        &mut one,
        &mut rng,
    )?;
    bits(out, format_args!("random-start psi"), &one)?;
    Ok(())
}

/// Part 2: fit `FIT_M` samples on the device and sample from the fit.
pub fn fit_and_sample(bridge: &mut DeviceBridge, out: &mut impl Write) -> Result<(), DemoError> {
    // A noisy closed curve in R^4: (cos t, sin t, cos 2t / 2, sin 2t / 2) + 0.05 N(0, I).
    let mut rng = Rng::new(SEED, 100);
    bridge.clear();
    for j in 0..FIT_M {
        let t = 2.0 * core::f64::consts::PI * j as f64 / FIT_M as f64;
        let curve = [
            libm::cos(t),
            libm::sin(t),
            0.5 * libm::cos(2.0 * t),
            0.5 * libm::sin(2.0 * t),
        ];
        let x: [f32; FIT_D] = core::array::from_fn(|c| (curve[c] + 0.05 * rng.normal()) as f32);
        bridge.push(&x)?;
    }
    let cfg = FitConfig::new(0.05f32).with_beta(-0.2);
    let (mut fitted, report) = bridge.fit(&cfg)?;
    writeln!(
        out,
        "device fit: M = {FIT_M}, d = {FIT_D}, eps = 0.05, beta = -0.2: {} iterations, residual {:016x} ({:e})",
        report.sinkhorn.iterations,
        report.sinkhorn.residual.to_bits(),
        report.sinkhorn.residual
    )?;
    for (row, g) in fitted.bridge().log_v().chunks(8).enumerate() {
        bits(out, format_args!("log_v[{:3}..]", row * 8), g)?;
    }
    let start: [f32; FIT_D] = {
        let s = fitted.bridge().dataset().sample(0);
        core::array::from_fn(|c| s[c])
    };
    for (name, mut scheme, stream) in [
        ("covariance", Scheme::Covariance, 200),
        ("isotropic", Scheme::Isotropic, 201),
    ] {
        let mut x = start;
        let mut half = [0.0f32; FIT_D];
        let mut noise = Rng::new(SEED, stream);
        fitted.run_chain(&mut scheme, &mut x, &mut half, 100, &mut noise)?;
        writeln!(out, "{name} chain, 100 steps: x = {x:?}")?;
        bits(out, format_args!("  x"), &x)?;
        bits(out, format_args!("  half-step"), &half)?;
    }
    Ok(())
}
