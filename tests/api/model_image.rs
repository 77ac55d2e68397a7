//! The trained-model image (issue #3): round trips through bytes, files and fresh buffers give
//! bit-identical samples; every single-byte corruption of a small image is rejected; each kind of
//! bad input gets its own error; random mutations never panic. Both float kinds.
//!
//! Field offsets used below are those of the layout table in `src/model.rs` (format 1.0):
//! header 0..128 (float size at 16, total length at 24, `d` at 32, heads at 36, `M` at 40, `ε` at
//! 48, `β` at 56, entry length at 64, checksum at 120), head entries of 96 bytes from 128
//! (`d_α` at +0, `n_t` at +4, `log Z'` at +8, section offsets at +16 + 8k for coords, targets,
//! data, log_v, scales, chol, whitened, rho).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sbridge::layout::{periodic_stencil, periodic_stencil_sizes, single_head, single_head_sizes};
use sbridge::model::{checksum, image_len, write_model, write_workspace_len, ImageFloat};
use sbridge::model_io::{fit_model, ModelImage, ModelIoError};
use sbridge::{
    closure, closure_workspace_len, fit, fit_workspace_len, model_step, model_workspace_len,
    sampler_workspace_len, step, BandwidthStorage, ClosureConfig, ClosureInit, Dataset, Error,
    FitConfig, FitStorage, HeadLayout, LayoutStorage, ModelView, NoiseMode, Real, Rng, Scheme,
    StepKind,
};

// ---------------------------------------------------------------------------------------------
// Helpers: layouts, data, byte editing.

/// A head layout with owned CSR arrays.
struct OwnedLayout {
    d: usize,
    nb_off: Vec<u32>,
    nb: Vec<u32>,
    tg_off: Vec<u32>,
    tg: Vec<u32>,
}

impl OwnedLayout {
    /// Explicit heads `(neighbourhood, targets)`.
    fn explicit(d: usize, heads: &[(&[u32], &[u32])]) -> Self {
        let mut l = OwnedLayout {
            d,
            nb_off: vec![0],
            nb: vec![],
            tg_off: vec![0],
            tg: vec![],
        };
        for (nb, tg) in heads {
            l.nb.extend_from_slice(nb);
            l.tg.extend_from_slice(tg);
            l.nb_off.push(l.nb.len() as u32);
            l.tg_off.push(l.tg.len() as u32);
        }
        l.get();
        l
    }

    /// [`single_head`]`(d)`: the plain bridge.
    fn single(d: usize) -> Self {
        let s = single_head_sizes(d);
        let (mut a, mut b, mut c, mut e) = (
            vec![0; s.heads + 1],
            vec![0; s.nb],
            vec![0; s.heads + 1],
            vec![0; s.tg],
        );
        let st = LayoutStorage {
            nb_offsets: &mut a,
            nb_coords: &mut b,
            tg_offsets: &mut c,
            tg_coords: &mut e,
        };
        assert!(single_head(d, st).unwrap().is_single_full_head());
        OwnedLayout {
            d,
            nb_off: a,
            nb: b,
            tg_off: c,
            tg: e,
        }
    }

    /// [`periodic_stencil`]`(n, r)`: one head per coordinate of a ring.
    fn stencil(n: usize, r: usize) -> Self {
        let s = periodic_stencil_sizes(n, r);
        let (mut a, mut b, mut c, mut e) = (
            vec![0; s.heads + 1],
            vec![0; s.nb],
            vec![0; s.heads + 1],
            vec![0; s.tg],
        );
        let st = LayoutStorage {
            nb_offsets: &mut a,
            nb_coords: &mut b,
            tg_offsets: &mut c,
            tg_coords: &mut e,
        };
        assert_eq!(periodic_stencil(n, r, st).unwrap().n_heads(), n);
        OwnedLayout {
            d: n,
            nb_off: a,
            nb: b,
            tg_off: c,
            tg: e,
        }
    }

    fn get(&self) -> HeadLayout<'_> {
        HeadLayout::new(self.d, &self.nb_off, &self.nb, &self.tg_off, &self.tg).unwrap()
    }
}

/// `M × d` correlated Gaussian samples (AR(1) along the coordinates), sample-major.
fn sample_data<T: Real>(m: usize, d: usize, seed: u64) -> Vec<T> {
    let mut rng = Rng::new(seed, 0);
    let mut out = Vec::with_capacity(m * d);
    for _ in 0..m {
        let mut prev = 0.0;
        for _ in 0..d {
            let v = 0.6 * prev + rng.normal();
            out.push(T::from_f64(v));
            prev = v;
        }
    }
    out
}

fn scales_for<T: Real>(d: usize) -> Vec<T> {
    (0..d)
        .map(|c| T::from_f64(0.75 + 0.25 * c as f64))
        .collect()
}

/// A zeroed 16-byte aligned buffer of at least `len` bytes.
fn aligned(len: usize) -> Vec<u128> {
    vec![0u128; len.div_ceil(16)]
}

fn bits<T: ImageFloat>(v: &[T]) -> Vec<u8> {
    bytemuck::cast_slice::<T, u8>(v).to_vec()
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn get_f64(b: &[u8], at: usize) -> f64 {
    f64::from_bits(get_u64(b, at))
}
fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn put_f64(b: &mut [u8], at: usize, v: f64) {
    put_u64(b, at, v.to_bits());
}
/// Writes one value of the image's float kind.
fn put_t<T: ImageFloat>(b: &mut [u8], at: usize, v: T) {
    let n = core::mem::size_of::<T>();
    b[at..at + n].copy_from_slice(bytemuck::bytes_of(&v));
}

const ENTRY0: usize = 128;
/// The head entry length of format 1.1 (1.0 had 96).
const ENTRY_LEN: usize = 112;
/// Section indices in a head entry's offset table.
const COORDS: usize = 0;
const TARGETS: usize = 1;
const DATA: usize = 2;
const LOG_V: usize = 3;
const SCALES: usize = 4;
const CHOL: usize = 5;
const RHO: usize = 7;
/// The columns section's offset (1.1) sits at entry byte 104 = 16 + 8 · 11.
const COLUMNS: usize = 11;
/// `max_j g_j` (f64) at entry byte 96 (1.1).
const LOG_V_MAX_AT: usize = 96;

fn entry(h: usize) -> usize {
    ENTRY0 + h * ENTRY_LEN
}
/// Byte offset of section `k` of head `h` (read from the entry).
fn section(b: &[u8], h: usize, k: usize) -> usize {
    get_u64(b, entry(h) + 16 + 8 * k) as usize
}

/// Recomputes the checksum (bytes 120..128) over the declared length (clipped to the buffer),
/// so that a deliberately edited field is what `open` sees, not a checksum mismatch.
fn reseal(b: &mut [u8]) {
    if b.len() < 128 {
        return;
    }
    let total = (get_u64(b, 24).min(b.len() as u64)) as usize;
    let sum = checksum(&b[..total]);
    put_u64(b, 120, sum);
}

/// A copy of `img` with `edit` applied and the checksum recomputed.
fn edited(img: &ModelImage, edit: impl FnOnce(&mut [u8])) -> ModelImage {
    let mut c = img.clone();
    edit(c.as_mut_bytes());
    reseal(c.as_mut_bytes());
    c
}

fn err_of<T: ImageFloat>(bytes: &[u8]) -> Option<Error> {
    ModelView::<T>::open(bytes).err()
}

/// The error variant's name (fields dropped), for histograms.
fn variant(e: &Error) -> String {
    let s = format!("{e:?}");
    s.split([' ', '{', '(']).next().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// Sampling signature: everything a model produces for fixed seeds, as raw bits.

/// Runs chains and closure calls on `view` with fixed `(seed, stream)` RNGs and returns the raw
/// bytes of every state and half-step, so that two views can be compared bit for bit.
fn signature<T: ImageFloat>(view: &ModelView<'_, T>) -> Vec<u8> {
    let d = view.d();
    let mut out = Vec::new();
    let mut work = vec![T::ZERO; closure_workspace_len(view)];
    let x0: Vec<T> = (0..d as u32)
        .map(|c| view.sample_value(0, c).unwrap())
        .collect();
    let mut schemes: Vec<(StepKind, NoiseMode)> = vec![(StepKind::Isotropic, NoiseMode::Global)];
    if view.is_single_full_head() {
        schemes.push((StepKind::Covariance, NoiseMode::Global));
    } else {
        schemes.push((StepKind::Isotropic, NoiseMode::PerHead));
    }
    for (k, &(kind, noise)) in schemes.iter().enumerate() {
        let mut rng = Rng::new(2024, k as u64);
        let mut x = x0.clone();
        let mut half = vec![T::ZERO; d];
        for _ in 0..12 {
            let mut scheme = match kind {
                StepKind::Isotropic => Scheme::Isotropic,
                StepKind::Covariance => Scheme::Covariance,
            };
            model_step(
                view,
                &mut scheme,
                noise,
                None,
                &mut x,
                &mut half,
                &mut rng,
                &mut work,
            )
            .unwrap();
            assert!(x.iter().chain(&half).all(|v| v.is_finite()));
            out.extend(bits(&x));
            out.extend(bits(&half));
        }
        assert_ne!(bits(&x), bits(&x0), "the chain moved");
    }
    let z = [0usize];
    let z_star = [view.sample_value(1, 0).unwrap()];
    for init in [ClosureInit::Warm, ClosureInit::RandomSample] {
        let cfg = ClosureConfig {
            sweeps: 6,
            init,
            ..ClosureConfig::default()
        };
        let mut psi: Vec<T> = (1..d as u32)
            .map(|c| view.sample_value(2, c).unwrap())
            .collect();
        let mut rng = Rng::new(99, 3);
        closure(view, &cfg, &z, &z_star, &mut psi, &mut rng, &mut work).unwrap();
        out.extend(bits(&psi));
        out.extend(bytemuck::bytes_of(&rng.s).iter().copied());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// (a) Round trips.

/// One model configuration for the round-trip tests.
struct Case {
    name: &'static str,
    layout: OwnedLayout,
    m: usize,
    eps: f64,
    beta: Option<f64>,
    scales: bool,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "plain",
            layout: OwnedLayout::single(3),
            m: 60,
            eps: 0.2,
            beta: None,
            scales: false,
        },
        Case {
            name: "plain-variable-scaled",
            layout: OwnedLayout::single(3),
            m: 60,
            eps: 0.2,
            beta: Some(-0.3),
            scales: true,
        },
        Case {
            name: "localized",
            layout: OwnedLayout::stencil(6, 1),
            m: 50,
            eps: 0.1,
            beta: None,
            scales: false,
        },
        Case {
            name: "localized-variable-scaled",
            layout: OwnedLayout::stencil(6, 1),
            m: 50,
            eps: 0.1,
            beta: Some(-0.2),
            scales: true,
        },
    ]
}

fn round_trip<T: ImageFloat>(case: &Case) {
    let lay = case.layout.get();
    let d = lay.d();
    let m = case.m;
    let data = sample_data::<T>(m, d, 11);
    let scales = scales_for::<T>(d);
    let scales = case.scales.then_some(&scales[..]);
    let mut cfg = FitConfig::new(T::from_f64(case.eps));
    if let Some(b) = case.beta {
        cfg = cfg.with_beta(T::from_f64(b));
    }

    // The original: written in place into a caller buffer, as firmware or a C caller would.
    let len = image_len::<T>(&lay, m, case.beta.is_some(), case.scales);
    let mut store = aligned(len);
    let mut work = vec![T::ZERO; write_workspace_len(m)];
    let (view_a, rep) = write_model(
        bytemuck::cast_slice_mut(&mut store),
        &data,
        d,
        scales,
        &lay,
        &cfg,
        &mut work,
    )
    .unwrap();
    assert_eq!(rep.image_len, len);
    assert_eq!(view_a.bytes().len(), len);
    let bytes_a = view_a.bytes();

    // The host helper writes the same bytes.
    let (img_b, rep_b) = fit_model(&data, d, scales, &lay, &cfg).unwrap();
    assert_eq!(rep_b, rep);
    assert_eq!(img_b.as_bytes(), bytes_a, "{}: fit_model bytes", case.name);

    // Another machine: the bytes arrive at an arbitrary address; copy into a fresh aligned buffer.
    let mut shifted = aligned(len + 16);
    bytemuck::cast_slice_mut::<u128, u8>(&mut shifted)[1..1 + len].copy_from_slice(bytes_a);
    let shifted_bytes = &bytemuck::cast_slice::<u128, u8>(&shifted)[1..1 + len];
    assert_eq!(err_of::<T>(shifted_bytes), Some(Error::ImageMisaligned));
    let mut fresh = aligned(len);
    bytemuck::cast_slice_mut::<u128, u8>(&mut fresh)[..len].copy_from_slice(shifted_bytes);
    let view_c = ModelView::<T>::open(&bytemuck::cast_slice::<u128, u8>(&fresh)[..len]).unwrap();
    let img_c = ModelImage::from_bytes(shifted_bytes);

    // A file in a temporary directory, through the host helpers.
    let dir = std::env::temp_dir().join(format!(
        "sbridge-model-image-{}-{}-{}",
        std::process::id(),
        case.name,
        T::NAME
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.sbm");
    img_b.write_file(&path).unwrap();
    img_b.write_file(&path).unwrap(); // replacing an existing file works too
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("model.sbm")],
        "no temp file left"
    );
    let img_d = ModelImage::read_file(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(img_d, img_b);

    let want = signature(&view_a);
    let views = [
        ("fit_model", img_b.view::<T>().unwrap()),
        ("fresh buffer", view_c),
        ("from_bytes", img_c.view::<T>().unwrap()),
        ("file", img_d.view::<T>().unwrap()),
    ];
    for (how, v) in views {
        assert_eq!(
            (v.d(), v.m(), v.n_heads(), v.has_scales()),
            (d, m, lay.n_heads(), case.scales)
        );
        assert_eq!(v.eps().to_f64(), cfg.eps.to_f64());
        assert_eq!(v.beta().map(|b| b.to_f64()), cfg.beta.map(|b| b.to_f64()));
        assert!(
            signature(&v) == want,
            "{} ({}): samples via {how} differ from the original buffer",
            case.name,
            T::NAME
        );
    }
    println!(
        "{:<26} {}: {} heads, image {len} B, {} signature bytes identical via 4 routes",
        case.name,
        T::NAME,
        lay.n_heads(),
        want.len()
    );
}

#[test]
fn round_trip_f64_bit_identical() {
    for case in cases() {
        round_trip::<f64>(&case);
    }
}

#[test]
fn round_trip_f32_bit_identical() {
    for case in cases() {
        round_trip::<f32>(&case);
    }
}

/// A single-head model's `model_step` is `sampler::step` on the bridge that `sbridge::fit` makes
/// from the same data: same Sinkhorn scaling, same bandwidth, same samples, bit for bit.
fn plain_matches_fit<T: ImageFloat>(beta: Option<f64>, scaled: bool) {
    let (m, d) = (70, 3);
    let data = sample_data::<T>(m, d, 5);
    let sc = scales_for::<T>(d);
    let scales = scaled.then_some(&sc[..]);
    let mut cfg = FitConfig::new(T::from_f64(0.15));
    if let Some(b) = beta {
        cfg = cfg.with_beta(T::from_f64(b));
    }
    let layout = OwnedLayout::single(d);
    let (img, _) = fit_model(&data, d, scales, &layout.get(), &cfg).unwrap();
    let view = img.view::<T>().unwrap();

    let mut log_v = vec![T::ZERO; m];
    let (mut chol, mut wh, mut rho) =
        (vec![T::ZERO; d * d], vec![T::ZERO; m * d], vec![T::ZERO; m]);
    let bandwidth = beta.map(|_| BandwidthStorage {
        chol: &mut chol,
        whitened: &mut wh,
        rho: &mut rho,
    });
    let mut work = vec![T::ZERO; fit_workspace_len(m, d)];
    let ds = Dataset::new(&data, d, scales).unwrap();
    let storage = FitStorage {
        log_v: &mut log_v,
        bandwidth,
    };
    let (bridge, _) = fit(ds, &cfg, storage, &mut work, None).unwrap();

    let head = view.head(0);
    assert_eq!(bits(head.bridge.log_v()), bits(bridge.log_v()), "log v");
    assert_eq!(
        bits(head.bridge.dataset().data()),
        bits(bridge.dataset().data())
    );
    if beta.is_some() {
        let (a, b) = (
            head.bridge.bandwidth().unwrap(),
            bridge.bandwidth().unwrap(),
        );
        assert_eq!(bits(a.rho()), bits(b.rho()), "rho");
        assert_eq!(bits(a.chol()), bits(b.chol()), "chol");
        assert_eq!(a.log_z().to_f64().to_bits(), b.log_z().to_f64().to_bits());
    }

    let mut wm = vec![T::ZERO; model_workspace_len(&view)];
    let mut ws = vec![T::ZERO; sampler_workspace_len(m, d)];
    for (k, kind) in [StepKind::Isotropic, StepKind::Covariance]
        .into_iter()
        .enumerate()
    {
        let (mut r1, mut r2) = (Rng::new(7, k as u64), Rng::new(7, k as u64));
        let mut x1: Vec<T> = data[..d].to_vec();
        let mut x2 = x1.clone();
        let (mut h1, mut h2) = (vec![T::ZERO; d], vec![T::ZERO; d]);
        for _ in 0..25 {
            let mk = || match kind {
                StepKind::Isotropic => Scheme::Isotropic,
                StepKind::Covariance => Scheme::Covariance,
            };
            model_step(
                &view,
                &mut mk(),
                NoiseMode::Global,
                None,
                &mut x1,
                &mut h1,
                &mut r1,
                &mut wm,
            )
            .unwrap();
            step(&bridge, &mut mk(), None, &mut x2, &mut h2, &mut r2, &mut ws).unwrap();
            assert_eq!(bits(&x1), bits(&x2), "{kind:?} state");
            assert_eq!(bits(&h1), bits(&h2), "{kind:?} half-step");
        }
        assert_eq!(r1, r2);
    }
}

#[test]
fn plain_model_step_equals_sampler_step_on_fit() {
    for (beta, scaled) in [
        (None, false),
        (None, true),
        (Some(-0.3), false),
        (Some(-0.3), true),
    ] {
        plain_matches_fit::<f64>(beta, scaled);
        plain_matches_fit::<f32>(beta, scaled);
    }
}

#[test]
fn views_are_copy_send_sync_and_shared_across_threads() {
    fn is_shareable<V: Copy + Send + Sync>() {}
    is_shareable::<ModelView<'static, f64>>();
    is_shareable::<ModelView<'static, f32>>();
    fn is_send_sync<V: Send + Sync>() {}
    is_send_sync::<ModelImage>();

    let layout = OwnedLayout::stencil(6, 1);
    let data = sample_data::<f64>(40, 6, 3);
    let (img, _) = fit_model(&data, 6, None, &layout.get(), &FitConfig::new(0.1)).unwrap();
    let view = img.view::<f64>().unwrap();
    let want = signature(&view);
    let got: Vec<Vec<u8>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2).map(|_| s.spawn(move || signature(&view))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(got.iter().all(|g| *g == want));
}

// ---------------------------------------------------------------------------------------------
// Small images for the corruption tests: M = 6, d = 2, two heads that each see both coordinates.

fn two_heads() -> OwnedLayout {
    OwnedLayout::explicit(2, &[(&[0, 1], &[0]), (&[1, 0], &[1])])
}

fn small<T: ImageFloat>(variable: bool, scaled: bool) -> ModelImage {
    let (m, d) = (6, 2);
    let data = sample_data::<T>(m, d, 1);
    let sc = scales_for::<T>(d);
    let mut cfg = FitConfig::new(T::from_f64(0.5));
    if variable {
        cfg = cfg.with_beta(T::from_f64(-0.3));
    }
    let (img, _) = fit_model(
        &data,
        d,
        scaled.then_some(&sc[..]),
        &two_heads().get(),
        &cfg,
    )
    .unwrap();
    img
}

/// The small images, built once: (name, float size, image).
fn small_images() -> &'static [(&'static str, usize, ModelImage)] {
    static IMAGES: OnceLock<Vec<(&'static str, usize, ModelImage)>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        vec![
            ("f64 fixed", 8, small::<f64>(false, false)),
            ("f32 fixed", 4, small::<f32>(false, false)),
            ("f64 variable+scales", 8, small::<f64>(true, true)),
            ("f32 variable+scales", 4, small::<f32>(true, true)),
        ]
    })
}

/// Uses an opened view the way a caller would: every head, the fit records, a few steps and a
/// closure call. Errors are fine; panics are not. State sizes are capped (a corrupted `d` of
/// billions would only make this test allocate; `d`-sized overflow is tested separately).
fn exercise<T: ImageFloat>(view: &ModelView<'_, T>) {
    for h in 0..view.n_heads() {
        let head = view.head(h);
        assert_eq!(head.bridge.m(), view.m());
        let _ = view.head_fit(h);
    }
    assert!(view.try_head(view.n_heads()).is_err());
    let _ = view.max_head_dim();
    let d = view.d();
    if d > 4096 || view.m() > 1 << 16 {
        return;
    }
    let mut work = vec![T::ZERO; closure_workspace_len(view)];
    let mut x: Vec<T> = (0..d as u32)
        .map(|c| view.sample_value(0, c).unwrap_or(T::ZERO))
        .collect();
    let mut half = vec![T::ZERO; d];
    let mut rng = Rng::new(1, 2);
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

/// Opens `bytes` as both float kinds, exercising any view that opens; never panics.
fn open_both(bytes: &[u8]) -> (Result<(), Error>, Result<(), Error>) {
    let a = ModelView::<f64>::open(bytes).map(|v| exercise(&v));
    let b = ModelView::<f32>::open(bytes).map(|v| exercise(&v));
    (a, b)
}

// ---------------------------------------------------------------------------------------------
// (b) Exhaustive single-byte corruption.

/// Which part of the image a byte belongs to, for the histogram.
fn region(b: &[u8], pos: usize) -> &'static str {
    let n = get_u32(b, 36) as usize;
    match pos {
        0..=7 => "magic",
        8..=9 => "major version",
        10..=11 => "minor version",
        12..=67 => "header fields",
        68..=119 => "header reserved",
        120..=127 => "checksum",
        p if p < ENTRY0 + n * ENTRY_LEN => "head entries",
        p if p < section(b, 0, COORDS) => "table padding",
        _ => "sections",
    }
}

/// Every byte position XOR every non-zero mask (all 255 values, which includes 0x01, 0x80 and
/// 0xFF), checksum left as is: FNV-1a detects each of these, so every one must be rejected.
#[test]
fn every_single_byte_corruption_is_rejected() {
    let mut hist: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    for (name, fs, img) in small_images() {
        let base = img.as_bytes();
        let mut buf = img.clone();
        let mut local: BTreeMap<String, usize> = BTreeMap::new();
        for pos in 0..base.len() {
            for mask in 1..=255u8 {
                buf.as_mut_bytes()[pos] ^= mask;
                let r = catch_unwind(AssertUnwindSafe(|| {
                    if *fs == 8 {
                        err_of::<f64>(buf.as_bytes())
                    } else {
                        err_of::<f32>(buf.as_bytes())
                    }
                }));
                buf.as_mut_bytes()[pos] ^= mask;
                let e = match r {
                    Ok(Some(e)) => e,
                    Ok(None) => panic!("{name}: byte {pos} ^ {mask:#04x} accepted"),
                    Err(_) => panic!("{name}: byte {pos} ^ {mask:#04x} panicked"),
                };
                *local.entry(variant(&e)).or_default() += 1;
                total += 1;
            }
        }
        assert_eq!(buf.as_bytes(), base);
        println!(
            "{name} ({} bytes, {} corruptions): {local:?}",
            base.len(),
            255 * base.len()
        );
        for (k, v) in local {
            *hist.entry(k).or_default() += v;
        }
    }
    println!("all {total} single-byte corruptions rejected: {hist:?}");
    // The checksum is what catches data corruption; the structural checks before it catch the
    // header bytes they read first.
    assert!(hist["ImageChecksum"] > total / 2);
}

/// Every byte position XOR every non-zero mask with the checksum RECOMPUTED, so the structural
/// validation alone stands between the edit and the sampler: `open` must never panic, and every
/// view it accepts must be usable (heads, steps, closure) without a panic.
#[test]
fn every_resealed_single_byte_edit_is_rejected_or_harmless() {
    let mut panics = Vec::new();
    for (name, fs, img) in small_images() {
        let base = img.as_bytes();
        let mut by_region: BTreeMap<(&str, String), usize> = BTreeMap::new();
        for pos in 0..base.len() {
            for mask in 1..=255u8 {
                let mut buf = img.clone();
                buf.as_mut_bytes()[pos] ^= mask;
                reseal(buf.as_mut_bytes());
                let r = catch_unwind(AssertUnwindSafe(|| {
                    if *fs == 8 {
                        ModelView::<f64>::open(buf.as_bytes()).map(|v| exercise(&v))
                    } else {
                        ModelView::<f32>::open(buf.as_bytes()).map(|v| exercise(&v))
                    }
                }));
                let key = match r {
                    Ok(Ok(())) => "accepted".to_string(),
                    Ok(Err(e)) => variant(&e),
                    Err(_) => {
                        panics.push(format!("{name}: byte {pos} ^ {mask:#04x}"));
                        "PANIC".to_string()
                    }
                };
                *by_region.entry((region(base, pos), key)).or_default() += 1;
            }
        }
        println!("{name}, resealed edits by region:");
        for ((reg, k), v) in &by_region {
            println!("    {reg:<16} {k:<24} {v}");
        }
        // Reserved header bytes and the checksum field itself are not read: harmless.
        assert!(by_region
            .keys()
            .filter(|(r, _)| *r == "header reserved" || *r == "checksum")
            .all(|(_, k)| k == "accepted"));
        // Edits to the magic or the major version are always rejected.
        assert!(by_region
            .keys()
            .filter(|(r, _)| *r == "magic" || *r == "major version")
            .all(|(_, k)| k != "accepted"));
    }
    assert!(panics.is_empty(), "panics: {panics:?}");
}

// ---------------------------------------------------------------------------------------------
// (c) Targeted bad input: one distinct error per kind, with the checksum recomputed so that the
// structural check is what fires.

fn img64() -> &'static ModelImage {
    &small_images()[0].2
}
fn img32() -> &'static ModelImage {
    &small_images()[1].2
}
fn img64_variable() -> &'static ModelImage {
    &small_images()[2].2
}

#[test]
fn empty_and_truncated_buffers() {
    assert_eq!(err_of::<f64>(&[]), Some(Error::ImageTruncated));
    assert_eq!(err_of::<f32>(&[]), Some(Error::ImageTruncated));
    let b = img64().as_bytes();
    assert_eq!(err_of::<f64>(&b[..0]), Some(Error::ImageTruncated));
    for cut in [1, 8, 64, 127, 128, 129, 200, b.len() - 16, b.len() - 1] {
        assert_eq!(
            err_of::<f64>(&b[..cut]),
            Some(Error::ImageTruncated),
            "cut {cut}"
        );
    }
    // Declared length beyond the buffer (a lying size that would read past the end).
    let long = edited(img64(), |b| put_u64(b, 24, b.len() as u64 + 16));
    assert_eq!(err_of::<f64>(long.as_bytes()), Some(Error::ImageTruncated));
    let huge = edited(img64(), |b| put_u64(b, 24, u64::MAX));
    assert_eq!(err_of::<f64>(huge.as_bytes()), Some(Error::ImageTruncated));
    // Bytes past the declared length are ignored.
    let mut padded = b.to_vec();
    padded.extend_from_slice(&[0xA5; 40]);
    assert!(ModelImage::from_bytes(&padded).view::<f64>().is_ok());
}

#[test]
fn wrong_magic_version_and_float_kind() {
    let bad = edited(img64(), |b| b[0] = b'X');
    assert_eq!(err_of::<f64>(bad.as_bytes()), Some(Error::ImageBadMagic));
    let bad = edited(img64(), |b| b[7] = b'!');
    assert_eq!(err_of::<f64>(bad.as_bytes()), Some(Error::ImageBadMagic));
    for major in [0u16, 2, u16::MAX] {
        let bad = edited(img64(), |b| put_u16(b, 8, major));
        assert_eq!(
            err_of::<f64>(bad.as_bytes()),
            Some(Error::ImageUnsupportedVersion),
            "major {major}"
        );
    }
    assert_eq!(
        err_of::<f32>(img64().as_bytes()),
        Some(Error::ImageWrongFloatKind)
    );
    assert_eq!(
        err_of::<f64>(img32().as_bytes()),
        Some(Error::ImageWrongFloatKind)
    );
    for fs in [0u32, 2, 16] {
        let bad = edited(img64(), |b| put_u32(b, 16, fs));
        assert_eq!(
            err_of::<f64>(bad.as_bytes()),
            Some(Error::ImageCorrupt),
            "F = {fs}"
        );
    }
}

/// Rebuilds `img` as a newer minor version whose header is `extra_h` bytes longer and whose head
/// entries are `extra_e` bytes longer (filled with `fill`), with every offset moved accordingly.
fn newer_minor(
    img: &ModelImage,
    minor: u16,
    extra_h: usize,
    extra_e: usize,
    fill: u8,
) -> ModelImage {
    let b = img.as_bytes();
    let (h, e, n) = (
        get_u32(b, 12) as usize,
        get_u32(b, 64) as usize,
        get_u32(b, 36) as usize,
    );
    let old_start = (h + n * e).div_ceil(16) * 16;
    let (nh, ne) = (h + extra_h, e + extra_e);
    let new_start = (nh + n * ne).div_ceil(16) * 16;
    let shift = new_start - old_start;
    let mut out = vec![0u8; b.len() + shift];
    out[..h].copy_from_slice(&b[..h]);
    out[h..nh].fill(fill);
    put_u16(&mut out, 10, minor);
    put_u32(&mut out, 12, nh as u32);
    put_u32(&mut out, 64, ne as u32);
    let total = out.len() as u64;
    put_u64(&mut out, 24, total);
    for k in 0..n {
        let (src, dst) = (h + k * e, nh + k * ne);
        out[dst..dst + e].copy_from_slice(&b[src..src + e]);
        out[dst + e..dst + ne].fill(fill);
        let columns_offset = (e >= ENTRY_LEN).then_some(COLUMNS);
        for s in (0..8).chain(columns_offset) {
            let at = dst + 16 + 8 * s;
            let off = get_u64(&out, at);
            if off != 0 {
                put_u64(&mut out, at, off + shift as u64);
            }
        }
    }
    out[new_start..].copy_from_slice(&b[old_start..]);
    reseal(&mut out);
    ModelImage::from_bytes(&out)
}

#[test]
fn newer_minor_version_with_longer_header_and_entries_is_accepted() {
    for (name, fs, img) in small_images() {
        // Same layout, minor version bumped.
        let bumped = edited(img, |b| put_u16(b, 10, 7));
        // Longer header and entries, zero-filled and filled with unknown non-zero fields.
        let longer = newer_minor(img, 1, 16, 16, 0);
        let unknown = newer_minor(img, 3, 32, 8, 0xA7);
        for (how, other) in [
            ("minor 7", &bumped),
            ("H+16 E+16", &longer),
            ("H+32 E+8", &unknown),
        ] {
            let same = if *fs == 8 {
                signature(&other.view::<f64>().unwrap()) == signature(&img.view::<f64>().unwrap())
            } else {
                signature(&other.view::<f32>().unwrap()) == signature(&img.view::<f32>().unwrap())
            };
            assert!(same, "{name}: {how} samples differ");
        }
    }
    // The rebuilt image is itself checked: a header length that is not a multiple of 4, or an
    // entry length that is not a multiple of 8, is rejected.
    let odd = newer_minor(img64(), 1, 2, 0, 0);
    assert_eq!(err_of::<f64>(odd.as_bytes()), Some(Error::ImageCorrupt));
    let odd = newer_minor(img64(), 1, 0, 4, 0);
    assert_eq!(err_of::<f64>(odd.as_bytes()), Some(Error::ImageCorrupt));
}

/// Rewrites a format-1.1 image as format 1.0: entries of 96 bytes, minor version 0, and every
/// head without its coordinate-major columns section (the last section of each head), the other
/// offsets moved accordingly.
fn downgrade_to_1_0(img: &ModelImage) -> ModelImage {
    let b = img.as_bytes();
    let n = get_u32(b, 36) as usize;
    assert_eq!(get_u16(b, 10), 1, "a 1.1 image");
    let new_start = (ENTRY0 + n * 96).div_ceil(16) * 16;
    let mut out = vec![0u8; new_start];
    out[..ENTRY0].copy_from_slice(&b[..ENTRY0]);
    put_u16(&mut out, 10, 0);
    put_u32(&mut out, 64, 96);
    for h in 0..n {
        let (start, cols) = (section(b, h, COORDS), section(b, h, COLUMNS));
        let delta = out.len() as i64 - start as i64;
        let dst = ENTRY0 + h * 96;
        out[dst..dst + 96].copy_from_slice(&b[entry(h)..entry(h) + 96]);
        for k in 0..8 {
            let off = get_u64(b, entry(h) + 16 + 8 * k);
            if off != 0 {
                put_u64(&mut out, dst + 16 + 8 * k, (off as i64 + delta) as u64);
            }
        }
        out.extend_from_slice(&b[start..cols]);
    }
    let total = out.len() as u64;
    put_u64(&mut out, 24, total);
    reseal(&mut out);
    ModelImage::from_bytes(&out)
}

#[test]
fn format_1_0_images_open_and_sample_the_same_bits() {
    for (name, fs, img) in small_images() {
        let old = downgrade_to_1_0(img);
        assert!(old.as_bytes().len() < img.as_bytes().len());
        // The 1.0 view reads the samples row-major, the 1.1 view column-major: same bits.
        let same = if *fs == 8 {
            let (a, b) = (old.view::<f64>().unwrap(), img.view::<f64>().unwrap());
            assert!(a.head(0).bridge.columns().is_none() && b.head(0).bridge.columns().is_some());
            assert_eq!(a.head(0).bridge.log_v_max(), b.head(0).bridge.log_v_max());
            signature(&a) == signature(&b)
        } else {
            let (a, b) = (old.view::<f32>().unwrap(), img.view::<f32>().unwrap());
            assert!(a.head(0).bridge.columns().is_none() && b.head(0).bridge.columns().is_some());
            signature(&a) == signature(&b)
        };
        assert!(same, "{name}: 1.0 and 1.1 views sample differently");
        // A 1.0 image's entries are 96 bytes: 88 is still too short.
        let short = edited(&old, |b| put_u32(b, 64, 88));
        let e = if *fs == 8 {
            err_of::<f64>(short.as_bytes())
        } else {
            err_of::<f32>(short.as_bytes())
        };
        assert_eq!(e, Some(Error::ImageCorrupt), "{name}");
    }
    // A 1.1 image that claims 96-byte entries is rejected (its fields would be cut off).
    let short = edited(img64(), |b| put_u32(b, 64, 96));
    assert_eq!(err_of::<f64>(short.as_bytes()), Some(Error::ImageCorrupt));
}

#[test]
fn columns_and_stored_maximum_must_be_exact() {
    for h in 0..2 {
        // One column value changed (and resealed): the copy no longer matches the samples.
        let at = section(img64().as_bytes(), h, COLUMNS) + 8 * 3;
        let bad = edited(img64(), |b| put_t(b, at, get_f64(b, at) + 1e-9));
        assert_eq!(err_of::<f64>(bad.as_bytes()), Some(Error::ImageCorrupt));
        // The stored max_j g_j raised, lowered or NaN: rejected.
        let at = entry(h) + LOG_V_MAX_AT;
        for v in [1e-12, -1e-12] {
            let bad = edited(img64(), |b| put_f64(b, at, get_f64(b, at) + v));
            assert_eq!(err_of::<f64>(bad.as_bytes()), Some(Error::ImageCorrupt));
        }
        let bad = edited(img64(), |b| put_f64(b, at, f64::NAN));
        assert_eq!(err_of::<f64>(bad.as_bytes()), Some(Error::ImageCorrupt));
        // The columns offset moved: not canonical.
        let at = entry(h) + 16 + 8 * COLUMNS;
        let bad = edited(img64(), |b| put_u64(b, at, get_u64(b, at) + 16));
        assert_eq!(err_of::<f64>(bad.as_bytes()), Some(Error::ImageCorrupt));
    }
    // The stored maximum is the maximum of the head's g, exactly.
    let v = img64().view::<f64>().unwrap();
    for h in 0..v.n_heads() {
        let b = v.head(h).bridge;
        let mx = b.log_v().iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(b.log_v_max(), mx);
        let (m, d) = (b.m(), b.d());
        let cols = b.columns().unwrap();
        for j in 0..m {
            for c in 0..d {
                assert_eq!(cols[c * m + j], b.dataset().sample(j)[c]);
            }
        }
    }
}

#[test]
fn lying_lengths_offsets_and_sizes_are_rejected() {
    let corrupt = |edit: &dyn Fn(&mut [u8]), what: &str| {
        let bad = edited(img64(), edit);
        let e = err_of::<f64>(bad.as_bytes());
        assert!(
            matches!(e, Some(Error::ImageCorrupt | Error::ImageTruncated)),
            "{what}: {e:?}"
        );
        e
    };
    // Total length shorter than the content, or longer with zero padding present.
    corrupt(&|b| put_u64(b, 24, b.len() as u64 - 16), "total - 16");
    corrupt(&|b| put_u64(b, 24, 127), "total 127");
    let mut padded = img64().as_bytes().to_vec();
    padded.extend_from_slice(&[0; 16]);
    let n = padded.len() as u64;
    put_u64(&mut padded, 24, n);
    reseal(&mut padded);
    assert_eq!(
        err_of::<f64>(&padded),
        Some(Error::ImageCorrupt),
        "total + 16"
    );
    // Header and entry lengths.
    corrupt(&|b| put_u32(b, 12, 124), "header length 124");
    corrupt(&|b| put_u32(b, 12, 132), "header length 132");
    corrupt(&|b| put_u32(b, 12, u32::MAX), "header length max");
    corrupt(&|b| put_u32(b, 64, 88), "entry length 88");
    corrupt(&|b| put_u32(b, 64, u32::MAX - 7), "entry length max");
    // Sizes: d = 0, heads, M.
    corrupt(&|b| put_u32(b, 32, 0), "d = 0");
    corrupt(&|b| put_u32(b, 36, 0), "0 heads");
    corrupt(&|b| put_u32(b, 36, 3), "3 heads");
    corrupt(&|b| put_u32(b, 36, u32::MAX), "u32::MAX heads");
    corrupt(&|b| put_u64(b, 40, 0), "M = 0");
    corrupt(&|b| put_u64(b, 40, 5), "M - 1");
    corrupt(&|b| put_u64(b, 40, 7), "M + 1");
    corrupt(&|b| put_u64(b, 40, u64::MAX), "M max");
    corrupt(&|b| put_u64(b, 40, 1 << 62), "M 2^62");
    // Unknown flags, or a flag without its sections.
    corrupt(&|b| put_u32(b, 20, 4), "flag bit 2");
    corrupt(&|b| put_u32(b, 20, 2), "scales flag without scales");
    // Per-head sizes.
    corrupt(&|b| put_u32(b, entry(0), 0), "d_a = 0");
    corrupt(&|b| put_u32(b, entry(0), 3), "d_a = 3");
    corrupt(&|b| put_u32(b, entry(0), 17), "d_a = 17");
    corrupt(&|b| put_u32(b, entry(0), u32::MAX), "d_a max");
    corrupt(&|b| put_u32(b, entry(1) + 4, 0), "n_t = 0");
    corrupt(&|b| put_u32(b, entry(1) + 4, 3), "n_t > d_a");
    // Offsets: shifted, swapped, zero, past the end, absurd.
    for k in [COORDS, TARGETS, DATA, LOG_V, COLUMNS] {
        for h in 0..2 {
            let at = entry(h) + 16 + 8 * k;
            corrupt(&|b| put_u64(b, at, get_u64(b, at) + 16), "offset + 16");
            corrupt(&|b| put_u64(b, at, get_u64(b, at) - 16), "offset - 16");
            corrupt(&|b| put_u64(b, at, get_u64(b, at) + 4), "offset + 4");
            corrupt(&|b| put_u64(b, at, 0), "offset 0");
            corrupt(&|b| put_u64(b, at, b.len() as u64), "offset = end");
            corrupt(&|b| put_u64(b, at, u64::MAX - 3), "offset max");
        }
    }
    corrupt(
        &|b| {
            let (x, y) = (get_u64(b, entry(0) + 32), get_u64(b, entry(0) + 40));
            put_u64(b, entry(0) + 32, y);
            put_u64(b, entry(0) + 40, x);
        },
        "data and log_v swapped",
    );
    // An absent section given an offset.
    corrupt(
        &|b| put_u64(b, entry(0) + 16 + 8 * SCALES, 512),
        "phantom scales",
    );
    // Non-zero entry padding (84..88) and log Z' on a fixed-bandwidth head.
    corrupt(&|b| b[entry(0) + 85] = 1, "entry padding");
    corrupt(
        &|b| put_f64(b, entry(0) + 8, 0.5),
        "log Z' without variable bandwidth",
    );
    // n_t = 2 on head 1 keeps every canonical offset (4 or 8 bytes pad to 16): the padding zero
    // becomes a second target, coordinate 0, which head 0 already writes.
    let bad = edited(img64(), |b| put_u32(b, entry(1) + 4, 2));
    assert_eq!(err_of::<f64>(bad.as_bytes()), Some(Error::InvalidLayout));
}

#[test]
fn misaligned_buffers_are_rejected() {
    let b = img64().as_bytes();
    for shift in [1usize, 4, 8, 15] {
        let mut store = aligned(b.len() + 16);
        let bytes = bytemuck::cast_slice_mut::<u128, u8>(&mut store);
        bytes[shift..shift + b.len()].copy_from_slice(b);
        assert_eq!(
            err_of::<f64>(&bytes[shift..shift + b.len()]),
            Some(Error::ImageMisaligned),
            "shift {shift}"
        );
        assert_eq!(
            err_of::<f32>(&bytes[shift..shift + b.len()]),
            Some(Error::ImageMisaligned)
        );
    }
}

#[test]
fn non_finite_and_out_of_range_values_are_rejected() {
    let at_logv = section(img64().as_bytes(), 1, LOG_V) + 8 * 3;
    let at_data = section(img64().as_bytes(), 0, DATA) + 8 * 5;
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let bad = edited(img64(), |b| put_t(b, at_logv, v));
        assert_eq!(
            err_of::<f64>(bad.as_bytes()),
            Some(Error::NonFiniteWeights),
            "log v {v}"
        );
        let bad = edited(img64(), |b| put_t(b, at_data, v));
        assert_eq!(
            err_of::<f64>(bad.as_bytes()),
            Some(Error::NonFiniteData),
            "data {v}"
        );
    }
    let at32 = section(img32().as_bytes(), 0, LOG_V);
    let bad = edited(img32(), |b| put_t(b, at32, f32::NAN));
    assert_eq!(err_of::<f32>(bad.as_bytes()), Some(Error::NonFiniteWeights));

    // Coordinate index ≥ d, repeated coordinate.
    let c0 = section(img64().as_bytes(), 0, COORDS);
    let bad = edited(img64(), |b| put_u32(b, c0 + 4, 2));
    assert_eq!(err_of::<f64>(bad.as_bytes()), Some(Error::InvalidIndex));
    let bad = edited(img64(), |b| put_u32(b, c0 + 4, u32::MAX));
    assert_eq!(err_of::<f64>(bad.as_bytes()), Some(Error::InvalidIndex));
    let bad = edited(img64(), |b| put_u32(b, c0 + 4, 0));
    assert_eq!(err_of::<f64>(bad.as_bytes()), Some(Error::InvalidIndex));
    // A target outside its neighbourhood (head 0 sees {0, 1} of d = 3 after widening d), and two
    // heads targeting the same coordinate.
    let bad = edited(img64(), |b| {
        put_u32(b, 32, 3);
        put_u32(b, section(b, 0, TARGETS), 2);
    });
    assert_eq!(err_of::<f64>(bad.as_bytes()), Some(Error::InvalidLayout));
    let bad = edited(img64(), |b| put_u32(b, section(b, 1, TARGETS), 0));
    assert_eq!(err_of::<f64>(bad.as_bytes()), Some(Error::InvalidLayout));
    let bad = edited(img64(), |b| put_u32(b, section(b, 1, TARGETS), 9));
    assert_eq!(err_of::<f64>(bad.as_bytes()), Some(Error::InvalidLayout));

    // ε and β in the header.
    for eps in [0.0, -0.5, f64::NAN, f64::INFINITY] {
        let bad = edited(img64(), |b| put_f64(b, 48, eps));
        assert_eq!(
            err_of::<f64>(bad.as_bytes()),
            Some(Error::InvalidEpsilon),
            "eps {eps}"
        );
    }
    let bad = edited(img64(), |b| put_f64(b, 56, -0.1));
    assert_eq!(
        err_of::<f64>(bad.as_bytes()),
        Some(Error::InvalidBeta),
        "β on fixed bandwidth"
    );
    for beta in [0.2, f64::NAN, f64::NEG_INFINITY] {
        let bad = edited(img64_variable(), |b| put_f64(b, 56, beta));
        assert_eq!(
            err_of::<f64>(bad.as_bytes()),
            Some(Error::InvalidBeta),
            "β {beta}"
        );
    }

    // Variable bandwidth: non-positive or non-finite ρ, a bad Cholesky factor, bad scales.
    let vb = img64_variable().as_bytes();
    let rho = section(vb, 1, RHO) + 8 * 2;
    for r in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let bad = edited(img64_variable(), |b| put_t(b, rho, r));
        assert_eq!(
            err_of::<f64>(bad.as_bytes()),
            Some(Error::DegenerateKde),
            "rho {r}"
        );
    }
    let chol = section(vb, 0, CHOL);
    let bad = edited(img64_variable(), |b| put_t(b, chol, -1.0f64));
    assert_eq!(
        err_of::<f64>(bad.as_bytes()),
        Some(Error::DegenerateKde),
        "L_00 < 0"
    );
    let bad = edited(img64_variable(), |b| put_t(b, chol + 8, 0.25f64));
    assert_eq!(
        err_of::<f64>(bad.as_bytes()),
        Some(Error::DegenerateKde),
        "L upper"
    );
    let bad = edited(img64_variable(), |b| put_f64(b, entry(0) + 8, f64::NAN));
    assert_eq!(
        err_of::<f64>(bad.as_bytes()),
        Some(Error::DegenerateKde),
        "log Z' NaN"
    );
    let scales = section(vb, 0, SCALES);
    for s in [0.0, -2.0, f64::NAN] {
        let bad = edited(img64_variable(), |b| put_t(b, scales + 8, s));
        assert_eq!(
            err_of::<f64>(bad.as_bytes()),
            Some(Error::InvalidScale),
            "scale {s}"
        );
    }
    let vb32 = small_images()[3].2.as_bytes();
    let rho32 = section(vb32, 0, RHO);
    let bad = edited(&small_images()[3].2, |b| put_t(b, rho32, 0.0f32));
    assert_eq!(err_of::<f32>(bad.as_bytes()), Some(Error::DegenerateKde));
}

/// The header stores `ε` and `β` as f64 for both float kinds. For an f32 image, a value that is a
/// finite positive f64 but not a finite positive f32 must be rejected like any other bad `ε`.
#[test]
fn f32_image_epsilon_must_be_representable_as_f32() {
    let mut wrong = Vec::new();
    for eps in [1e-60, 1e-46, 1e60, f64::MAX] {
        let bad = edited(img32(), |b| put_f64(b, 48, eps));
        let got = ModelView::<f32>::open(bad.as_bytes()).map(|v| v.eps());
        if let Ok(v) = bad.view::<f32>() {
            // What a caller would get from the accepted view.
            let mut x = [0.1f32, -0.2];
            let mut half = [0.0f32; 2];
            let mut work = vec![0.0f32; model_workspace_len(&v)];
            let r = model_step(
                &v,
                &mut Scheme::Isotropic,
                NoiseMode::Global,
                None,
                &mut x,
                &mut half,
                &mut Rng::new(1, 1),
                &mut work,
            );
            println!(
                "header ε = {eps:e}: view ε = {:?}, model_step -> {r:?}, x = {x:?}",
                v.eps()
            );
        }
        if got.err() != Some(Error::InvalidEpsilon) {
            wrong.push(format!("header ε = {eps:e} -> {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "f32 images accepted with: {wrong:?}");
}

#[test]
fn checksum_mismatch_is_its_own_error() {
    let mut c = img64().clone();
    let at = section(c.as_bytes(), 0, DATA);
    c.as_mut_bytes()[at] ^= 1;
    assert_eq!(err_of::<f64>(c.as_bytes()), Some(Error::ImageChecksum));
    let mut c = img64().clone();
    c.as_mut_bytes()[121] ^= 0x40;
    assert_eq!(err_of::<f64>(c.as_bytes()), Some(Error::ImageChecksum));
}

#[test]
fn each_kind_of_bad_input_has_a_distinct_error() {
    let b = img64().as_bytes();
    let mut store = aligned(b.len() + 16);
    bytemuck::cast_slice_mut::<u128, u8>(&mut store)[1..1 + b.len()].copy_from_slice(b);
    let mut flipped = img64().clone();
    flipped.as_mut_bytes()[300] ^= 0x80;
    let logv = section(b, 0, LOG_V);
    let kinds: Vec<(&str, Option<Error>)> = vec![
        ("truncated", err_of::<f64>(&b[..b.len() - 8])),
        (
            "wrong magic",
            err_of::<f64>(edited(img64(), |b| b[1] = 0).as_bytes()),
        ),
        (
            "newer version",
            err_of::<f64>(edited(img64(), |b| put_u16(b, 8, 2)).as_bytes()),
        ),
        ("wrong float kind", err_of::<f32>(b)),
        (
            "misaligned",
            err_of::<f64>(&bytemuck::cast_slice::<u128, u8>(&store)[1..1 + b.len()]),
        ),
        ("flipped byte", err_of::<f64>(flipped.as_bytes())),
        (
            "lying offset",
            err_of::<f64>(edited(img64(), |b| put_u64(b, entry(1) + 40, 16)).as_bytes()),
        ),
        (
            "NaN weight",
            err_of::<f64>(edited(img64(), |b| put_t(b, logv, f64::NAN)).as_bytes()),
        ),
    ];
    let codes: Vec<i32> = kinds.iter().map(|(_, e)| e.unwrap().code()).collect();
    for (i, (what, e)) in kinds.iter().enumerate() {
        println!("{what:<18} -> {:?} (code {})", e.unwrap(), codes[i]);
        assert!(!codes[..i].contains(&codes[i]), "{what} shares a code");
    }
}

/// `d` is a u32 in the header, so a valid image may declare a huge state (a head may see only a
/// few coordinates of it). Sizing the work space for it must not overflow.
#[test]
fn huge_declared_dimension_sizes_work_space_without_overflow() {
    for d in [u32::MAX, 3_037_000_500, 1 << 31] {
        let bad = edited(img64(), |b| put_u32(b, 32, d));
        let view = bad.view::<f64>().unwrap();
        assert_eq!(view.d(), d as usize);
        let len = catch_unwind(AssertUnwindSafe(|| model_workspace_len(&view)));
        let len = len.unwrap_or_else(|_| panic!("model_workspace_len panicked for d = {d}"));
        // A localized sweep needs at least four state-sized buffers.
        assert!(len >= 4 * d as usize, "d = {d}: work space {len}");
        let len = catch_unwind(AssertUnwindSafe(|| closure_workspace_len(&view)));
        assert!(len.is_ok(), "closure_workspace_len panicked for d = {d}");
        // A state of the wrong length is an error, not a panic or a huge allocation.
        let mut x = [0.0f64; 2];
        let mut half = [0.0f64; 2];
        let mut work = [0.0f64; 64];
        let r = model_step(
            &view,
            &mut Scheme::Isotropic,
            NoiseMode::Global,
            None,
            &mut x,
            &mut half,
            &mut Rng::new(0, 0),
            &mut work,
        );
        assert!(matches!(r, Err(Error::LengthMismatch { .. })));
    }
}

// ---------------------------------------------------------------------------------------------
// Host helpers.

#[test]
fn model_io_errors_and_alignment() {
    let dir = std::env::temp_dir().join(format!("sbridge-model-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.sbm");
    match ModelImage::read_file(&missing) {
        Err(ModelIoError::Io { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    let e = ModelImage::read_file(&missing).unwrap_err();
    assert!(e.to_string().contains("missing.sbm"), "{e}");
    assert!(std::error::Error::source(&e).is_some());
    // Writing into a directory that does not exist fails without leaving anything behind.
    let nowhere = dir.join("no-such-dir").join("m.sbm");
    assert!(matches!(
        img64().write_file(&nowhere),
        Err(ModelIoError::Io { .. })
    ));
    // Writing over a directory fails and leaves no temporary file.
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    assert!(img64().write_file(&sub).is_err());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    // A file that is not a model reads fine and is rejected when viewed.
    let junk = dir.join("junk.sbm");
    std::fs::write(&junk, b"definitely not a model image").unwrap();
    let img = ModelImage::read_file(&junk).unwrap();
    assert_eq!(img.view::<f64>().err(), Some(Error::ImageTruncated));
    let wrapped: ModelIoError = img.view::<f64>().unwrap_err().into();
    assert!(matches!(
        wrapped,
        ModelIoError::Model(Error::ImageTruncated)
    ));
    assert!(wrapped.to_string().contains("truncated"), "{wrapped}");
    std::fs::remove_dir_all(&dir).unwrap();

    // Aligned storage for every length, including after a move.
    for len in [0usize, 1, 15, 16, 17, 127, 672, 4099] {
        let img = ModelImage::with_len(len);
        let moved = [img];
        let img = &moved[0];
        assert_eq!(img.len(), len);
        assert_eq!(img.is_empty(), len == 0);
        assert_eq!(img.as_bytes().as_ptr() as usize % 16, 0);
        assert!(img.as_bytes().iter().all(|&b| b == 0));
        let copy = ModelImage::from_bytes(&vec![7u8; len]);
        assert_eq!(copy.as_bytes(), &vec![7u8; len][..]);
        assert_eq!(copy.as_bytes().as_ptr() as usize % 16, 0);
    }

    // fit_model reports argument errors and non-convergence.
    let layout = two_heads();
    let data = sample_data::<f64>(6, 2, 1);
    assert_eq!(
        fit_model(&data, 0, None, &layout.get(), &FitConfig::new(0.5)).err(),
        Some(Error::ZeroDimension)
    );
    assert_eq!(
        fit_model(&data, 2, None, &layout.get(), &FitConfig::new(-1.0)).err(),
        Some(Error::InvalidEpsilon)
    );
    let mut cfg = FitConfig::new(0.01);
    cfg.sinkhorn.max_iter = 1;
    assert!(matches!(
        fit_model(&data, 2, None, &layout.get(), &cfg).err(),
        Some(Error::NotConverged { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// (d) Random mutations and truncations never panic.

#[test]
fn random_mutations_never_panic() {
    let images = small_images();
    let mut runner = TestRunner::new(Config {
        cases: 20_000,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        0..images.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        prop::option::of(any::<prop::sample::Index>()),
        any::<bool>(),
    );
    let stats: std::cell::RefCell<BTreeMap<String, usize>> = Default::default();
    runner
        .run(&strategy, |(which, edits, cut, reseal_it)| {
            let mut bytes = images[which].2.as_bytes().to_vec();
            for (i, v) in &edits {
                let i = i.index(bytes.len());
                bytes[i] = *v;
            }
            if let Some(c) = cut {
                bytes.truncate(c.index(bytes.len() + 1));
            }
            if reseal_it {
                reseal(&mut bytes);
            }
            let img = ModelImage::from_bytes(&bytes);
            let (a, b) = open_both(img.as_bytes());
            let key = format!(
                "{} / {}",
                a.map_or_else(|e| variant(&e), |_| "ok".into()),
                b.map_or_else(|e| variant(&e), |_| "ok".into())
            );
            *stats.borrow_mut().entry(key).or_default() += 1;
            Ok(())
        })
        .unwrap();
    println!("outcomes (f64 / f32): {:#?}", stats.borrow());
}

/// Any bytes at all, aligned, of any length up to a few headers: never a panic.
#[test]
fn random_bytes_never_panic() {
    let mut runner = TestRunner::new(Config {
        cases: 10_000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..600), |bytes| {
            let mut bytes = bytes;
            if bytes.len() >= 10 {
                // Give the random bytes a fair chance to get past the first checks.
                bytes[..8].copy_from_slice(b"SBRIDGE\0");
                bytes[8..10].copy_from_slice(&1u16.to_le_bytes());
            }
            reseal(&mut bytes);
            let img = ModelImage::from_bytes(&bytes);
            let _ = open_both(img.as_bytes());
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Fuzz seeds.

/// The seed images of the `open_image` fuzz target (`fuzz/seeds/`): small valid images of both
/// float kinds, fixed and variable bandwidth, plain and localized.
fn seed_images() -> Vec<(&'static str, ModelImage)> {
    let plain = OwnedLayout::single(3);
    let ring = OwnedLayout::stencil(5, 1);
    let d3 = sample_data::<f64>(8, 3, 2);
    let d5 = sample_data::<f32>(7, 5, 4);
    vec![
        ("two_heads_f64.sbm", small::<f64>(false, false)),
        ("two_heads_f32.sbm", small::<f32>(false, false)),
        (
            "two_heads_variable_scaled_f64.sbm",
            small::<f64>(true, true),
        ),
        (
            "two_heads_variable_scaled_f32.sbm",
            small::<f32>(true, true),
        ),
        (
            "plain_d3_f64.sbm",
            fit_model(&d3, 3, None, &plain.get(), &FitConfig::new(0.3))
                .unwrap()
                .0,
        ),
        (
            "ring5_f32.sbm",
            fit_model(&d5, 5, None, &ring.get(), &FitConfig::new(0.3f32))
                .unwrap()
                .0,
        ),
    ]
}

/// Regenerates `fuzz/seeds/` (run with `--ignored` after a format change).
#[test]
#[ignore = "writes fuzz/seeds/; run by hand after a format change"]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, img) in seed_images() {
        assert!(img.len() < 4096);
        img.write_file(dir.join(name)).unwrap();
        println!("{name}: {} bytes", img.len());
    }
}

/// The committed seeds are valid images of the current format, and the `v1_0_*` seeds (written
/// by the format-1.0 writer, kept so that the fuzzer covers both minor versions) still open.
#[test]
fn committed_fuzz_seeds_open() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for (name, _) in seed_images() {
        let old = ModelImage::read_file(dir.join(format!("v1_0_{name}"))).unwrap();
        assert_eq!(
            get_u16(old.as_bytes(), 10),
            0,
            "v1_0_{name} is a minor-0 image"
        );
        let (a, b) = open_both(old.as_bytes());
        assert!(
            a.is_ok() || b.is_ok(),
            "v1_0_{name} no longer opens ({a:?} / {b:?})"
        );
        let img = ModelImage::read_file(dir.join(name)).unwrap();
        let (a, b) = open_both(img.as_bytes());
        assert!(
            a.is_ok() || b.is_ok(),
            "{name} no longer opens ({a:?} / {b:?}): regenerate with \
             `cargo test --test api -- --ignored write_fuzz_seeds`"
        );
    }
}
