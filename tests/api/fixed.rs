//! The fixed-capacity layer (`sbridge::fixed`): the same bits as the slice API it wraps, capacity
//! errors that leave the instance unchanged, and a work-space bound that covers every model of
//! the stated sizes.

use crate::tools::{closure_layout_arrays, closure_layout_of};
use sbridge::fixed::{
    closure_workspace_bound, fit_and_sample_workspace_len, FixedBridge, FixedClosure,
};
use sbridge::{
    closure, closure_workspace_len, fit, fit_workspace_len, image_len, run_chain,
    sampler_workspace_len, write_model, write_workspace_len, BandwidthStorage, ClosureConfig,
    Dataset, Error, FitConfig, FitStorage, ModelView, Record, Rng, Scheme,
};

const M: usize = 48;
const D: usize = 3;
type Small = FixedBridge<f64, M, D, { fit_and_sample_workspace_len(M, D) }>;

/// `m × D` points near a twisted ring, from the library's generator.
fn ring(m: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed, 0);
    let mut x = Vec::with_capacity(m * D);
    for j in 0..m {
        let t = j as f64 * std::f64::consts::TAU / m as f64;
        x.extend([t.cos(), t.sin(), 0.3 * (2.0 * t).sin()].map(|v| v + 0.05 * rng.normal()));
    }
    x
}

#[test]
fn a_fixed_bridge_gives_the_slice_apis_bits_and_a_later_view_the_same_bridge() {
    let data = ring(M, 3);
    let scales = [1.0, 1.2, 0.5];
    let cfg = FitConfig::new(0.08).with_beta(-0.2);

    // The slice API.
    let mut log_v = vec![0.0; M];
    let (mut chol, mut wh, mut rho) = (vec![0.0; D * D], vec![0.0; M * D], vec![0.0; M]);
    let mut work = vec![0.0; fit_workspace_len(M, D).max(sampler_workspace_len(M, D))];
    let storage = FitStorage {
        log_v: &mut log_v,
        bandwidth: Some(BandwidthStorage {
            chol: &mut chol,
            whitened: &mut wh,
            rho: &mut rho,
        }),
    };
    let ds = Dataset::new(&data, D, Some(&scales)).unwrap();
    let (bridge, report) = fit(ds, &cfg, storage, &mut work, None).unwrap();
    let (mut x, mut half) = (data[..D].to_vec(), vec![0.0; D]);
    let mut rng = Rng::new(11, 4);
    run_chain(
        &bridge,
        &mut Scheme::Covariance,
        None,
        &mut x,
        &mut half,
        30,
        &mut rng,
        &mut work,
        Record::default(),
    )
    .unwrap();

    // The fixed layer, fed one sample at a time.
    let mut fixed = Box::new(Small::new());
    fixed.set_scales(Some(scales)).unwrap();
    for s in data.chunks(D) {
        fixed.push(s).unwrap();
    }
    assert_eq!((fixed.len(), fixed.samples()), (M, &data[..]));
    let (mut fitted, fixed_report) = fixed.fit(&cfg).unwrap();
    assert_eq!(fixed_report, report);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(fitted.bridge().log_v()), bits(&log_v));
    let (mut y, mut half_y) = (data[..D].to_vec(), vec![0.0; D]);
    let mut rng = Rng::new(11, 4);
    fitted
        .run_chain(&mut Scheme::Covariance, &mut y, &mut half_y, 30, &mut rng)
        .unwrap();
    assert_eq!((bits(&y), bits(&half_y)), (bits(&x), bits(&half)));

    // A later view is the same bridge: same mean at a query.
    let q = [0.3, -0.2, 0.1];
    let (mut m1, mut m2) = (vec![0.0; D], vec![0.0; D]);
    fitted.mean(&q, &mut m1).unwrap();
    let mut again = fixed.fitted().expect("the fit is kept");
    again.mean(&q, &mut m2).unwrap();
    assert_eq!(bits(&m1), bits(&m2));
    // Changing the samples forgets the fit.
    fixed.clear();
    assert!(fixed.fitted().is_none() && fixed.is_empty());
    assert_eq!(fixed.fit(&cfg).unwrap_err(), Error::EmptyData);
}

#[test]
fn a_full_fixed_bridge_is_a_capacity_error_and_bad_samples_change_nothing() {
    let mut fixed = Box::new(Small::new());
    let data = ring(M, 5);
    // More than fits: nothing is taken.
    let mut too_many = data.clone();
    too_many.extend_from_slice(&data[..D]);
    assert_eq!(
        fixed.extend_from(&too_many).unwrap_err(),
        Error::Capacity {
            limit: M,
            requested: M + 1
        }
    );
    assert!(fixed.is_empty());
    // A non-finite value anywhere: nothing is taken.
    let mut bad = data[..4 * D].to_vec();
    bad[7] = f64::NAN;
    assert_eq!(fixed.extend_from(&bad).unwrap_err(), Error::NonFiniteData);
    assert!(fixed.is_empty());
    assert!(matches!(
        fixed.push(&[0.0; D + 1]).unwrap_err(),
        Error::LengthMismatch { .. }
    ));
    assert_eq!(
        fixed.set_scales(Some([1.0, 0.0, 1.0])).unwrap_err(),
        Error::InvalidScale
    );
    fixed.extend_from(&data).unwrap();
    assert_eq!(
        fixed.push(&data[..D]).unwrap_err(),
        Error::Capacity {
            limit: M,
            requested: M + 1
        }
    );
    assert_eq!(fixed.samples(), &data[..]);
}

/// A closure-layout model of `k` heads over `m` samples of `(z, ψ)` (f32).
fn closure_model(k: usize, m: usize) -> Vec<u128> {
    let d = 2 * k;
    let mut rng = Rng::new(17, 0);
    let data: Vec<f32> = (0..m * d).map(|_| rng.normal() as f32).collect();
    let arrays = closure_layout_arrays(k);
    let layout = closure_layout_of(k, &arrays);
    let len = image_len::<f32>(&layout, m, false, false);
    let mut store = vec![0u128; len.div_ceil(16)];
    let buf = &mut bytemuck::cast_slice_mut::<u128, u8>(&mut store)[..len];
    let mut work = vec![0.0f32; write_workspace_len(m)];
    write_model(
        buf,
        &data,
        d,
        None,
        &layout,
        &FitConfig::new(0.5),
        &mut work,
    )
    .unwrap();
    store
}

#[test]
fn fixed_closure_gives_the_slice_apis_bits_and_its_bound_covers_the_model() {
    const K: usize = 5;
    const MM: usize = 300;
    let store = closure_model(K, MM);
    let model = ModelView::<f32>::open(bytemuck::cast_slice(&store)).unwrap();
    let bound = closure_workspace_bound(MM, 2 * K, K);
    assert!(closure_workspace_len(&model) <= bound);
    // The bound is tight but for the tile indexes' head dimension (6 here, not MAX_HEAD_DIM).
    assert!(bound - closure_workspace_len(&model) <= K * 2 * 24 * MM.div_ceil(256));

    let z_coords: Vec<usize> = (0..K).collect();
    let z: Vec<f32> = (0..K).map(|c| 0.1 * c as f32).collect();
    let cfg = ClosureConfig {
        sweeps: 7,
        ..ClosureConfig::default()
    };
    let mut work = vec![0.0f32; closure_workspace_len(&model)];
    let (mut psi, mut rng) = (vec![0.0f32; K], Rng::new(3, 9));
    closure(&model, &cfg, &z_coords, &z, &mut psi, &mut rng, &mut work).unwrap();

    let mut fixed = Box::new(FixedClosure::<f32, { closure_workspace_bound(MM, 2 * K, K) }>::new());
    let (mut psi2, mut rng2) = (vec![0.0f32; K], Rng::new(3, 9));
    fixed
        .closure(&model, &cfg, &z_coords, &z, &mut psi2, &mut rng2)
        .unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&psi2), bits(&psi));
    assert_eq!(rng2, rng);

    // Too small a work space: a capacity error before anything changes.
    let mut small = Box::new(FixedClosure::<f32, 100>::new());
    let (mut psi3, mut rng3) = (vec![0.5f32; K], Rng::new(3, 9));
    let needed = closure_workspace_len(&model);
    assert_eq!(
        small
            .closure(&model, &cfg, &z_coords, &z, &mut psi3, &mut rng3)
            .unwrap_err(),
        Error::Capacity {
            limit: 100,
            requested: needed
        }
    );
    assert_eq!((psi3, rng3), (vec![0.5f32; K], Rng::new(3, 9)));
}

#[test]
fn an_embedded_image_is_16_byte_aligned() {
    // The firmware's way of embedding an image: any file works for the alignment.
    let bytes: &[u8] = sbridge::include_model!("main.rs");
    assert_eq!(bytes.as_ptr() as usize % 16, 0);
    assert_eq!(bytes, include_bytes!("main.rs"));
}
