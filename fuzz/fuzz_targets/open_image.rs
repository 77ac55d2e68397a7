//! Fuzz target for the model-image reader: `ModelView::open` must reject every bad image with an
//! error, never panic or read out of bounds, and every view it accepts must be usable (all heads,
//! work-space queries, a step of each scheme, a closure call) without a panic.
//!
//! Each input is tried three ways: the raw fuzzer bytes (arbitrary alignment), a 16-byte aligned
//! copy, and the aligned copy with its checksum recomputed. Without the last, almost every
//! mutation would stop at the checksum and the structural checks behind it would go unfuzzed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sbridge::model::{checksum, ImageFloat};
use sbridge::{
    closure, closure_workspace_len, model_step, model_workspace_len, ClosureConfig, ClosureInit,
    ModelView, NoiseMode, Rng, Scheme,
};

/// Largest work space (values) the harness allocates; larger accepted models are only sized.
const MAX_WORK: usize = 1 << 20;

fn exercise<T: ImageFloat>(view: &ModelView<'_, T>) {
    for h in 0..view.n_heads() {
        let head = view.head(h);
        assert_eq!(head.bridge.m(), view.m());
        assert!(head.targets.iter().all(|t| head.local_index(*t).is_some()));
        let _ = view.head_fit(h);
    }
    assert!(view.try_head(view.n_heads()).is_err());
    let _ = view.max_head_dim();
    let _ = view.is_single_full_head();
    // Sizing the work space is what every caller does first with an accepted view.
    let len = closure_workspace_len(view);
    assert!(model_workspace_len(view) <= len);
    let d = view.d();
    if len > MAX_WORK || d > MAX_WORK {
        return;
    }
    let mut work = vec![T::ZERO; len];
    let mut x: Vec<T> = (0..d as u32)
        .map(|c| view.sample_value(0, c).unwrap_or(T::ZERO))
        .collect();
    let mut half = vec![T::ZERO; d];
    let mut rng = Rng::new(0x5eed, 1);
    for covariance in [false, true] {
        for noise in [NoiseMode::Global, NoiseMode::PerHead] {
            let mut scheme = if covariance {
                Scheme::Covariance
            } else {
                Scheme::Isotropic
            };
            let _ = model_step(
                view,
                &mut scheme,
                noise,
                None,
                &mut x,
                &mut half,
                &mut rng,
                &mut work,
            );
        }
    }
    let mut psi = vec![T::ZERO; d - 1];
    let cfg = ClosureConfig {
        sweeps: 2,
        init: ClosureInit::RandomSample,
        ..ClosureConfig::default()
    };
    let _ = closure(view, &cfg, &[0], &[T::ZERO], &mut psi, &mut rng, &mut work);
}

fn check(bytes: &[u8]) {
    if let Ok(v) = ModelView::<f64>::open(bytes) {
        exercise(&v);
    }
    if let Ok(v) = ModelView::<f32>::open(bytes) {
        exercise(&v);
    }
}

/// A copy of `data` starting on a 16-byte boundary (the storage is `u128`s, 16-byte aligned on
/// x86-64), as an application's aligned model buffer would hold it.
fn aligned_copy(data: &[u8]) -> Vec<u128> {
    let mut words = vec![0u128; data.len().div_ceil(16)];
    bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..data.len()].copy_from_slice(data);
    words
}

/// The first `n` bytes of `words`.
fn first_bytes(words: &[u128], n: usize) -> &[u8] {
    &bytemuck::cast_slice::<u128, u8>(words)[..n]
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut words = aligned_copy(data);
    let n = data.len();
    check(first_bytes(&words, n));
    if n >= 128 {
        let b = &mut bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..n];
        let declared = u64::from_le_bytes(b[24..32].try_into().unwrap());
        let total = declared.min(b.len() as u64) as usize;
        let sum = checksum(&b[..total]);
        b[120..128].copy_from_slice(&sum.to_le_bytes());
        check(first_bytes(&words, n));
    }
});
