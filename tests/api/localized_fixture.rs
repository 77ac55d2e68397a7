//! The localized fixture (`tests/fixtures/localized_gauss_d7_M200_eps0.05`): per-head Sinkhorn
//! scalings, the localized mean, and the localized sampler (global noise, plain and conditional)
//! driven by the fixture's normals, through the model image.

use crate::common;
use common::*;

use sbridge::{
    model_step, model_workspace_len, write_model, write_workspace_len, Clamp, FitConfig,
    HeadLayout, ModelView, NoiseMode, ReplayNormals, Scheme,
};

const NAME: &str = "localized_gauss_d7_M200_eps0.05";

/// 16-byte aligned byte buffer.
fn aligned(len: usize) -> Vec<u128> {
    vec![0u128; len.div_ceil(16)]
}

/// The fixture's samples, its explicit layout as CSR arrays (`lambdas.csv` row a = Λ(a), head a
/// targets a) and its fit settings.
struct Setup {
    x: Csv,
    csr: [Vec<u32>; 4],
    cfg: FitConfig<f64>,
}

impl Setup {
    fn load() -> Self {
        let x = csv(NAME, "X.csv");
        let lam = csv(NAME, "lambdas.csv");
        let d = x.cols;
        let csr = [
            (0..=d).map(|a| (a * lam.cols) as u32).collect(),
            lam.v.iter().map(|&c| c as u32).collect(),
            (0..=d as u32).collect(),
            (0..d as u32).collect(),
        ];
        let mut cfg = FitConfig::new(param_f64(&params(NAME), "eps"));
        cfg.sinkhorn.tol = 1e-13;
        // The reference iteration (no over-relaxation), so that iteration counts compare.
        cfg.sinkhorn.relaxation = 1.0;
        cfg.sinkhorn.anderson = 0;
        Setup { x, csr, cfg }
    }
    fn layout(&self) -> HeadLayout<'_> {
        let [a, b, c, d] = &self.csr;
        HeadLayout::new(self.x.cols, a, b, c, d).unwrap()
    }
}

fn build(buf: &mut [u8]) -> ModelView<'_, f64> {
    let st = Setup::load();
    let (x, d, layout, cfg) = (&st.x, st.x.cols, st.layout(), st.cfg);
    let mut work = vec![0.0; write_workspace_len(x.rows)];
    let (view, rep) = write_model(buf, &x.v, d, None, &layout, &cfg, &mut work).unwrap();
    assert_eq!(rep.heads, d);
    view
}

fn image() -> Vec<u128> {
    let x = csv(NAME, "X.csv");
    let lam = csv(NAME, "lambdas.csv");
    // An upper bound of the image size, independent of the crate's own `image_len`: header,
    // table and per-head sections (samples twice, sample- and coordinate-major) with padding.
    let per_head = 4 * 16 + 8 * x.rows * (2 * lam.cols + 1) + 80;
    aligned(256 + x.cols * (112 + per_head))
}

#[test]
fn per_head_scalings_and_localized_mean_match_reference() {
    let mut store = image();
    let view = build(bytemuck::cast_slice_mut(&mut store));
    let p = params(NAME);
    let iters: Vec<u32> = p["sinkhorn_iterations"]
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let lv = csv(NAME, "log_v.csv");
    let d = view.d();
    assert_eq!(iters.len(), d);
    for (a, &ref_iters) in iters.iter().enumerate() {
        let head = view.head(a);
        let want: Vec<f64> = (0..lv.rows).map(|j| lv.v[j * d + a]).collect();
        let err = max_abs_err(head.bridge.log_v(), &want);
        let (it, res) = view.head_fit(a).unwrap();
        println!(
            "head {a}: log_v err {err:.1e}, {it} iterations (reference {ref_iters}), residual {res:.1e}"
        );
        assert!(err <= 1e-12);
        assert!(it.abs_diff(ref_iters) <= 1);
    }
    let q = csv(NAME, "queries.csv");
    let want = csv(NAME, "m_loc.csv");
    let mut work = vec![0.0; sbridge::bridge_workspace_len(view.m(), 16)];
    let mut err = 0.0f64;
    for n in 0..q.rows {
        for a in 0..d {
            let head = view.head(a);
            let y: Vec<f64> = head.coords.iter().map(|&c| q.row(n)[c as usize]).collect();
            let mut m = vec![0.0; y.len()];
            head.bridge.mean(&y, &mut m, &mut work).unwrap();
            let l = head.local_index(a as u32).unwrap();
            err = err.max((m[l] - want.row(n)[a]).abs());
        }
    }
    println!("localized mean max abs err {err:.1e}");
    assert!(err <= 1e-12);
}

fn run_sampler(conditional: bool) -> f64 {
    let mut store = image();
    let view = build(bytemuck::cast_slice_mut(&mut store));
    let p = params(NAME);
    let d = view.d();
    let steps: usize = p["sampler_steps"].parse().unwrap();
    let chains: usize = p["sampler_chains"].parse().unwrap();
    let x0 = csv(NAME, "sampler_x0.csv");
    let xi = csv(NAME, "sampler_xi.csv");
    let want = csv(
        NAME,
        if conditional {
            "sampler_out_cond.csv"
        } else {
            "sampler_out_global.csv"
        },
    );
    let coords: Vec<usize> = p["cond_idx"]
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let vals: Vec<f64> = p["z_star"]
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let clamp = Clamp::new(d, &coords, &vals).unwrap();
    let mut work = vec![0.0; model_workspace_len(&view)];
    let mut err = 0.0f64;
    for c in 0..chains {
        let mut x = x0.row(c).to_vec();
        if conditional {
            clamp.apply(&mut x);
        }
        let mut half = vec![0.0; d];
        for n in 0..steps {
            let mut normals = ReplayNormals::new(xi.row(n * chains + c));
            let cl = conditional.then_some(&clamp);
            model_step(
                &view,
                &mut Scheme::Isotropic,
                NoiseMode::Global,
                cl,
                &mut x,
                &mut half,
                &mut normals,
                &mut work,
            )
            .unwrap();
            assert_eq!(normals.consumed(), d);
        }
        err = err.max(max_abs_err(&x, want.row(c)));
    }
    err
}

#[test]
fn localized_sampler_matches_reference() {
    let err = run_sampler(false);
    println!("localized sampler (global noise) max abs err {err:.1e}");
    assert!(err <= 1e-10);
}

#[test]
fn conditional_localized_sampler_matches_reference() {
    let err = run_sampler(true);
    println!("conditional localized sampler max abs err {err:.1e}");
    assert!(err <= 1e-10);
}

#[test]
fn threaded_fit_writes_the_same_bytes() {
    let mut seq = image();
    let view = build(bytemuck::cast_slice_mut(&mut seq));
    let len = view.bytes().len();
    let st = Setup::load();
    let (x, d, layout, cfg) = (&st.x, st.x.cols, st.layout(), st.cfg);
    let want: Vec<u8> = bytemuck::cast_slice::<u128, u8>(&seq)[..len].to_vec();
    for threads in [1, 2, 3, 8] {
        let mut par = image();
        let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut par);
        let (v, rep) =
            sbridge::model::write_model_threaded(buf, &x.v, d, None, &layout, &cfg, threads)
                .unwrap();
        assert_eq!(rep.heads, d);
        assert_eq!(v.bytes(), &want[..], "{threads} threads");
    }
}
