//! The safety nets of the closure call (issue "no silent wrong answers"), through the Rust API:
//! an RNG that was never seeded, conditioning coordinates that leave a free coordinate without a
//! head, values beyond the admissible magnitude, models whose kernel would overflow, and the
//! effective-sample-size diagnostic (checked against `1/Σ w_j²` from the head's own weights).
//! The C and Fortran sides are in tests/c_abi.rs (c_examples/silent_errors.*).
#![cfg(feature = "std")]

use sbridge::layout::{self, LayoutSizes, LayoutStorage};
use sbridge::{
    closure, closure_ess, closure_ess_workspace_len, closure_workspace_len, image_len, Error,
    FitConfig, HeadLayout, ModelView, Real, Rng,
};

/// Owned CSR arrays of a head layout.
struct OwnedLayout {
    d: usize,
    arrays: [Vec<u32>; 4],
}

impl OwnedLayout {
    fn build(
        s: LayoutSizes,
        f: impl FnOnce(LayoutStorage<'_>) -> Result<HeadLayout<'_>, Error>,
    ) -> Self {
        let mut a = [
            vec![0u32; s.heads + 1],
            vec![0u32; s.nb],
            vec![0u32; s.heads + 1],
            vec![0u32; s.tg],
        ];
        let [p, q, r, t] = &mut a;
        let d = f(LayoutStorage {
            nb_offsets: p,
            nb_coords: q,
            tg_offsets: r,
            tg_coords: t,
        })
        .unwrap()
        .d();
        OwnedLayout { d, arrays: a }
    }
    fn view(&self) -> HeadLayout<'_> {
        let [p, q, r, t] = &self.arrays;
        HeadLayout::new(self.d, p, q, r, t).unwrap()
    }
}

const K: usize = 3;
const M: usize = 150;

/// `M` samples of `(z, ψ)` with `z` in block 0 and `ψ = 0.5 z + noise` in block 1.
fn data<T: Real>() -> Vec<T> {
    let mut rng = Rng::new(5, 1);
    let mut x = Vec::with_capacity(M * 2 * K);
    for _ in 0..M {
        let z: Vec<f64> = (0..K).map(|_| rng.normal()).collect();
        x.extend(z.iter().map(|&v| T::from_f64(v)));
        x.extend(z.iter().map(|&v| T::from_f64(0.5 * v + 0.3 * rng.normal())));
    }
    x
}

fn closure_layout() -> OwnedLayout {
    OwnedLayout::build(layout::closure_layout_sizes(K, 2, 1), |st| {
        layout::closure_layout(K, 2, 1, st)
    })
}

/// Fits the closure model into `store` (fixed bandwidth `eps`, or variable with `beta`).
fn fit<'s, T: sbridge::ImageFloat>(
    store: &'s mut [u128],
    lay: &HeadLayout<'_>,
    x: &[T],
    eps: f64,
    beta: Option<f64>,
) -> Result<ModelView<'s, T>, Error> {
    let mut cfg = FitConfig::<T>::new(T::from_f64(eps));
    cfg.beta = beta.map(T::from_f64);
    sbridge::model::write_model_threaded(
        bytemuck::cast_slice_mut(store),
        x,
        lay.d(),
        None,
        lay,
        &cfg,
        2,
    )
    .map(|(v, _)| v)
}

fn store_for<T: sbridge::ImageFloat>(lay: &HeadLayout<'_>, variable: bool) -> Vec<u128> {
    vec![0u128; image_len::<T>(lay, M, variable, false).div_ceil(16)]
}

#[test]
fn unseeded_and_corrupt_rng_states_fail_before_anything_changes() {
    let lay = closure_layout();
    let x = data::<f64>();
    let mut store = store_for::<f64>(&lay.view(), false);
    let model = fit(&mut store, &lay.view(), &x, 0.2, None).unwrap();
    let mut work = vec![0.0; closure_workspace_len(&model)];
    let z: Vec<usize> = (0..K).collect();
    let zs = [0.2, -0.1, 0.4];
    let mut psi = [0.1, 0.0, -0.1];
    let cfg = sbridge::ClosureConfig::default();
    let zero = Rng {
        s: [0; 4],
        spare: 0,
        has_spare: 0,
    };
    let mut r = zero.clone();
    let e = closure(&model, &cfg, &z, &zs, &mut psi, &mut r, &mut work);
    assert_eq!(e, Err(Error::RngUnseeded));
    assert_eq!((psi, &r), ([0.1, 0.0, -0.1], &zero));
    let mut out = [7.0f64; 3];
    assert_eq!(
        sbridge::NormalSource::fill_normal(&mut r, &mut out),
        Err(Error::RngUnseeded)
    );
    assert_eq!(out, [7.0; 3]);
    for (has_spare, spare) in [
        (2, 0u64),
        (1, f64::NAN.to_bits()),
        (1, f64::INFINITY.to_bits()),
    ] {
        let mut bad = Rng::new(1, 2);
        (bad.has_spare, bad.spare) = (has_spare, spare);
        assert_eq!(bad.check(), Err(Error::RngCorrupt));
        let e = closure(&model, &cfg, &z, &zs, &mut psi, &mut bad, &mut work);
        assert_eq!(e, Err(Error::RngCorrupt));
    }
    let mut good = Rng::new(1, 2);
    assert_eq!(good.check(), Ok(()));
    good.normal(); // leaves a cached deviate: still a valid state
    assert_eq!(good.check(), Ok(()));
    closure(&model, &cfg, &z, &zs, &mut psi, &mut good, &mut work).unwrap();
}

#[test]
fn a_free_coordinate_without_a_head_is_an_error_of_its_own() {
    let lay = closure_layout();
    let x = data::<f64>();
    let mut store = store_for::<f64>(&lay.view(), false);
    let model = fit(&mut store, &lay.view(), &x, 0.2, None).unwrap();
    let mut work = vec![0.0; closure_workspace_len(&model)];
    let cfg = sbridge::ClosureConfig::default();
    let zs = [0.2, -0.1, 0.4];
    let mut rng = Rng::new(3, 0);
    for wrong in [[1usize, 2, 3], [3, 4, 5], [0, 1, 3]] {
        let mut psi = [0.0; K];
        let before = rng.clone();
        let e = closure(&model, &cfg, &wrong, &zs, &mut psi, &mut rng, &mut work);
        assert_eq!(e, Err(Error::UncoveredCoordinate), "z_coords {wrong:?}");
        assert_eq!((psi, &rng), ([0.0; K], &before));
    }
    // Clamping a target as well is allowed (it stays at z*): every free coordinate has a head.
    let mut psi = [0.0; 2];
    closure(
        &model,
        &cfg,
        &[0, 1, 2, 3],
        &[0.2, -0.1, 0.4, 0.0],
        &mut psi,
        &mut rng,
        &mut work,
    )
    .unwrap();
}

fn admissible_magnitude_is_checked<T: sbridge::ImageFloat + core::fmt::Debug>() {
    let lay = closure_layout();
    let x = data::<T>();
    let mut store = store_for::<T>(&lay.view(), false);
    let model = fit(&mut store, &lay.view(), &x, 0.2, None).unwrap();
    let mut work = vec![T::ZERO; closure_workspace_len(&model)];
    let cfg = sbridge::ClosureConfig::default();
    let z = [0usize, 1, 2];
    let mut rng = Rng::new(3, 0);
    let max = T::MAX_MAGNITUDE;
    let just_over = T::from_f64(max.to_f64() * (1.0 + 4.0 * T::EPSILON.to_f64()));
    for (zs0, want) in [
        (just_over, Err(Error::OutOfRange)),
        (T::from_f64(f64::NAN), Err(Error::NonFiniteState)),
        (T::INFINITY, Err(Error::NonFiniteState)),
        (max, Ok(())),
        (-max, Ok(())),
    ] {
        let mut psi = [T::ZERO; K];
        let zs = [zs0, T::ZERO, T::ZERO];
        let got = closure(&model, &cfg, &z, &zs, &mut psi, &mut rng, &mut work);
        assert_eq!(got, want, "{} z* = {zs0:?}", T::NAME);
        if got.is_ok() {
            assert!(psi.iter().all(|v| v.is_finite()));
        }
    }
    // The warm start is checked the same way.
    let mut psi = [just_over, T::ZERO, T::ZERO];
    let got = closure(
        &model,
        &cfg,
        &z,
        &[T::ZERO; 3],
        &mut psi,
        &mut rng,
        &mut work,
    );
    assert_eq!(got, Err(Error::OutOfRange));
    // Training data beyond the magnitude cannot be fitted.
    let mut big = x.clone();
    big[7] = just_over;
    let mut store2 = store_for::<T>(&lay.view(), false);
    assert_eq!(
        fit(&mut store2, &lay.view(), &big, 0.2, None).err(),
        Some(Error::OutOfRange)
    );
}

#[test]
fn values_beyond_the_admissible_magnitude_are_out_of_range() {
    admissible_magnitude_is_checked::<f64>();
    admissible_magnitude_is_checked::<f32>();
}

#[test]
fn models_whose_kernel_would_overflow_are_rejected() {
    let lay = closure_layout();
    // κ = 1/(4ε) ≤ 2^503 (f64) / 2^55 (f32): ε just inside and just outside the bound.
    let x = data::<f64>();
    let mut store = store_for::<f64>(&lay.view(), false);
    let eps_out = 2f64.powi(-505) / 1.5; // log2 κ = 503 + log2(1.5) > 503
    assert_eq!(
        fit(&mut store, &lay.view(), &x, eps_out, None).err(),
        Some(Error::OutOfRange)
    );
    let x32 = data::<f32>();
    let mut store32 = store_for::<f32>(&lay.view(), false);
    let eps_out32 = 2f64.powi(-57) / 1.5;
    assert_eq!(
        fit(&mut store32, &lay.view(), &x32, eps_out32, None).err(),
        Some(Error::OutOfRange)
    );
    let eps_in32 = 2f64.powi(-57) * 1.5; // log2 κ = 55 − log2(1.5) < 55: admitted (if it fits)
    let r = fit(&mut store32, &lay.view(), &x32, eps_in32, None);
    assert_ne!(r.err(), Some(Error::OutOfRange));
    // Per-coordinate scales enter as w_c = 1/s_c²: tiny scales are rejected too.
    let scales = [2f64.powi(-30); 2 * K];
    let mut cfg = FitConfig::<f32>::new(0.2);
    cfg.beta = None;
    let scales32: Vec<f32> = scales.iter().map(|&s| s as f32).collect();
    let mut s2 = vec![0u128; image_len::<f32>(&lay.view(), M, false, true).div_ceil(16)];
    let r = sbridge::model::write_model_threaded(
        bytemuck::cast_slice_mut(&mut s2),
        &x32,
        lay.view().d(),
        Some(&scales32),
        &lay.view(),
        &cfg,
        1,
    );
    assert_eq!(r.err(), Some(Error::OutOfRange));
}

/// `closure_ess` is `1/Σ_j w_j²` of each head's own weights, lies in [1, M], is near M for a
/// very wide kernel and falls to 1 far outside the data.
#[test]
fn effective_sample_size_matches_the_weights_and_flags_extrapolation() {
    let lay = closure_layout();
    let x = data::<f64>();
    for (eps, beta) in [(0.2, None), (0.2, Some(-0.5)), (50.0, None)] {
        let mut store = store_for::<f64>(&lay.view(), beta.is_some());
        let model = fit(&mut store, &lay.view(), &x, eps, beta).unwrap();
        let mut work = vec![0.0; closure_workspace_len(&model)];
        assert!(closure_ess_workspace_len(&model) + model.n_heads() <= work.len());
        let z = [0usize, 1, 2];
        let (zs, psi) = ([0.2, -0.1, 0.4], [0.1, 0.0, -0.2]);
        let mut ess = vec![0.0; model.n_heads()];
        closure_ess(&model, &z, &zs, &psi, &mut ess, &mut work).unwrap();
        let state = [zs[0], zs[1], zs[2], psi[0], psi[1], psi[2]];
        for (h, &e) in ess.iter().enumerate() {
            let head = model.head(h);
            let xa: Vec<f64> = head.coords.iter().map(|&c| state[c as usize]).collect();
            let mut w = vec![0.0; M];
            let mut qw = vec![0.0; head.bridge.workspace_len()];
            head.bridge.weights(&xa, &mut w, &mut qw).unwrap();
            let want = 1.0 / w.iter().map(|v| v * v).sum::<f64>();
            assert!(
                (e - want).abs() <= 1e-10 * want,
                "eps {eps} beta {beta:?} head {h}: {e} vs {want}"
            );
            assert!((1.0..=M as f64 * (1.0 + 1e-12)).contains(&e));
            if eps > 10.0 {
                assert!(e > 0.9 * M as f64, "a wide kernel spreads the weight: {e}");
            }
        }
        let far = [1e6, 1e6, 1e6];
        match closure_ess(&model, &z, &far, &psi, &mut ess, &mut work) {
            Ok(()) => assert!(ess.iter().all(|&e| e < 1.01), "{ess:?}"),
            // A variable bandwidth's ρ(x) overflows this far out: "beyond every kernel".
            Err(e) => assert_eq!((e, beta.is_some()), (Error::NonFiniteState, true)),
        }
        let mut short = vec![0.0; 1];
        assert!(matches!(
            closure_ess(&model, &z, &zs, &psi, &mut short, &mut work),
            Err(Error::LengthMismatch { .. })
        ));
    }
}
