//! The reference fixtures (`tests/fixtures/`, see its README) reproduced within the tolerances
//! that README states: Sinkhorn scaling, weights, conditional mean and covariance, variable
//! bandwidth, and the split-step samplers driven by the fixtures' own normals.

use crate::common;
use common::*;

use sbridge::{
    fit, kernel_cache_len, run_chain, sinkhorn, sinkhorn_workspace_len, BandwidthStorage, Bridge,
    Dataset, FitConfig, FitStorage, Record, ReplayNormals, Scheme, SinkhornOptions, SinkhornPath,
};

const PLAIN: [&str; 4] = [
    "arc_M200_eps0.009",
    "gauss_d5_M300_eps0.05_beta-0.2",
    "scaled_d4_M150_eps0.1",
    "tiny_eps1e-4_M100",
];

/// A fitted fixture: the arrays a [`Bridge`] borrows.
struct Fitted {
    x: Csv,
    scales: Option<Vec<f64>>,
    eps: f64,
    beta: Option<f64>,
    log_v: Vec<f64>,
    chol: Vec<f64>,
    whitened: Vec<f64>,
    rho: Vec<f64>,
    log_z: f64,
    iterations: u32,
    residual: f64,
}

fn fit_fixture(name: &str) -> Fitted {
    let p = params(name);
    let x = csv(name, "X.csv");
    let (m, d) = (x.rows, x.cols);
    let eps = param_f64(&p, "eps");
    let beta = match p["beta"].as_str() {
        "none" => None,
        b => Some(b.parse::<f64>().unwrap()),
    };
    let scales = (p["scales"] != "none").then(|| csv(name, "scales.csv").v);
    let mut f = Fitted {
        scales,
        eps,
        beta,
        log_v: vec![0.0; m],
        chol: vec![0.0; d * d],
        whitened: vec![0.0; m * d],
        rho: vec![0.0; m],
        log_z: 0.0,
        iterations: 0,
        residual: 0.0,
        x,
    };
    let data = Dataset::new(&f.x.v, d, f.scales.as_deref()).unwrap();
    let mut cfg = FitConfig::new(eps);
    cfg.beta = beta;
    cfg.sinkhorn.tol = 1e-13;
    // The reference iteration (no over-relaxation), so that iteration counts compare.
    cfg.sinkhorn.relaxation = 1.0;
    cfg.sinkhorn.anderson = 0;
    let bandwidth = beta.map(|_| BandwidthStorage {
        chol: &mut f.chol,
        whitened: &mut f.whitened,
        rho: &mut f.rho,
    });
    let mut work = vec![0.0; sbridge::fit_workspace_len(m, d)];
    let storage = FitStorage {
        log_v: &mut f.log_v,
        bandwidth,
    };
    let (_, rep) = fit(data, &cfg, storage, &mut work, None).unwrap();
    f.log_z = rep.kde.map_or(0.0, |k| k.log_z);
    f.iterations = rep.sinkhorn.iterations;
    f.residual = rep.sinkhorn.residual;
    f
}

impl Fitted {
    fn bridge(&self) -> Bridge<'_, f64> {
        let d = self.x.cols;
        let data = Dataset::new(&self.x.v, d, self.scales.as_deref()).unwrap();
        let bw = self.beta.map(|b| {
            sbridge::VariableBandwidth::new(d, b, self.log_z, &self.chol, &self.whitened, &self.rho)
                .unwrap()
        });
        Bridge::new(data, self.eps, &self.log_v, bw).unwrap()
    }
}

#[test]
fn sinkhorn_scaling_matches_reference() {
    for name in PLAIN {
        let p = params(name);
        let f = fit_fixture(name);
        let want = csv(name, "log_v.csv").v;
        let err = max_abs_err(&f.log_v, &want);
        let ref_iters: u32 = p["sinkhorn_iterations"].parse().unwrap();
        println!(
            "{name}: log_v max abs err {err:.2e}, iterations {} (reference {ref_iters}), residual {:.2e}",
            f.iterations, f.residual
        );
        assert!(err <= 1e-12, "{name}: log_v differs by {err:e}");
        assert!(f.residual <= 1e-13);
        assert!(
            f.iterations.abs_diff(ref_iters) <= 1,
            "{name}: {} iterations, reference {ref_iters}",
            f.iterations
        );
        // v itself, as stored.
        let v: Vec<f64> = f.log_v.iter().map(|g| g.exp()).collect();
        assert!(max_rel_err(&v, &csv(name, "v.csv").v) <= 1e-12);
    }
}

#[test]
fn over_relaxed_sinkhorn_reaches_the_reference_scaling_in_fewer_updates() {
    for name in PLAIN {
        let f = fit_fixture(name);
        let (m, d) = (f.x.rows, f.x.cols);
        let data = Dataset::new(&f.x.v, d, f.scales.as_deref()).unwrap();
        let rho = f.beta.map(|_| f.rho.as_slice());
        let mut work = vec![0.0; sinkhorn_workspace_len(m, d)];
        let mut g = vec![0.0; m];
        let opts: SinkhornOptions<f64> = SinkhornOptions::new(1e-13, 500);
        assert!((opts.relaxation - 4.0 / 3.0).abs() < 1e-15, "the default ω");
        let rep = sinkhorn(&data, f.eps, rho, opts, &mut g, &mut work, None).unwrap();
        let ref_iters: u32 = params(name)["sinkhorn_iterations"].parse().unwrap();
        let err = max_abs_err(&g, &csv(name, "log_v.csv").v);
        println!(
            "{name}: ω = 4/3 took {} updates (reference iteration {ref_iters}), log_v err {err:.1e}",
            rep.iterations
        );
        assert!(err <= 1e-12, "{name}: log_v err {err:.2e}");
        assert!(
            rep.iterations * 10 <= ref_iters * 8,
            "{name}: {} updates, reference {ref_iters}",
            rep.iterations
        );
    }
}

#[test]
fn sinkhorn_paths_agree_and_p_is_symmetric_stochastic() {
    for name in PLAIN {
        let f = fit_fixture(name);
        let (m, d) = (f.x.rows, f.x.cols);
        let data = Dataset::new(&f.x.v, d, f.scales.as_deref()).unwrap();
        let opts = SinkhornOptions::reference(1e-13, 500);
        let rho = f.beta.map(|_| f.rho.as_slice());
        let mut work = vec![0.0; sinkhorn_workspace_len(m, d)];
        let mut cache = vec![0.0; kernel_cache_len(m)];
        let mut g_cached = vec![0.0; m];
        let rep = sinkhorn(
            &data,
            f.eps,
            rho,
            opts,
            &mut g_cached,
            &mut work,
            Some(&mut cache),
        )
        .unwrap();
        assert_eq!(rep.path, SinkhornPath::CachedKernel);
        assert_eq!(
            rep.iterations, f.iterations,
            "{name}: paths took different iteration counts"
        );
        assert!(
            max_abs_err(&g_cached, &f.log_v) <= 1e-13,
            "{name}: paths differ"
        );
        // P_ij = v_i T_ij v_j from the cached log T: symmetric, rows sum to 1 within tol.
        let mut worst_row = 0.0f64;
        let mut worst_sym = 0.0f64;
        for i in 0..m {
            let mut s = 0.0;
            for j in 0..m {
                let pij = (g_cached[i] + cache[i * m + j] + g_cached[j]).exp();
                let pji = (g_cached[j] + cache[j * m + i] + g_cached[i]).exp();
                worst_sym = worst_sym.max((pij - pji).abs());
                s += pij;
            }
            worst_row = worst_row.max((s - 1.0).abs());
        }
        assert!(worst_row <= 1e-12, "{name}: row sums off by {worst_row:e}");
        assert!(worst_sym <= 1e-15, "{name}: asymmetry {worst_sym:e}");
    }
}

#[test]
fn weights_mean_covariance_match_reference() {
    for name in PLAIN {
        let f = fit_fixture(name);
        let b = f.bridge();
        let (m, d) = (b.m(), b.d());
        let q = csv(name, "queries.csv");
        let (lw_ref, w_ref, m_ref, c_ref) = (
            csv(name, "log_w.csv"),
            csv(name, "w.csv"),
            csv(name, "m.csv"),
            csv(name, "C.csv"),
        );
        let mut work = vec![0.0; b.workspace_len()];
        let (mut lw, mut w, mut mean, mut cov) =
            (vec![0.0; m], vec![0.0; m], vec![0.0; d], vec![0.0; d * d]);
        let (mut e_lw, mut e_w, mut e_m, mut e_c) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for n in 0..q.rows {
            let x = q.row(n);
            b.log_weights(x, &mut lw, &mut work).unwrap();
            b.weights(x, &mut w, &mut work).unwrap();
            b.mean_cov(x, &mut mean, &mut cov, &mut work).unwrap();
            assert!(lw.iter().all(|v| v.is_finite()), "{name}: log w not finite");
            assert!((w.iter().sum::<f64>() - 1.0).abs() <= 1e-14);
            e_lw = e_lw.max(max_rel_err(&lw, lw_ref.row(n)));
            e_w = e_w.max(max_abs_err(&w, w_ref.row(n)));
            e_m = e_m.max(max_abs_err(&mean, m_ref.row(n)));
            // C is divided by eps: compare relative to its scale.
            let scale = c_ref.row(n).iter().fold(1.0f64, |a, v| a.max(v.abs()));
            e_c = e_c.max(max_abs_err(&cov, c_ref.row(n)) / scale);
        }
        println!("{name}: log_w {e_lw:.1e}, w {e_w:.1e}, m {e_m:.1e}, C {e_c:.1e}");
        assert!(e_lw <= 1e-12, "{name}: log w off by {e_lw:e}");
        assert!(e_w <= 1e-12, "{name}: w off by {e_w:e}");
        assert!(e_m <= 1e-12, "{name}: m off by {e_m:e}");
        assert!(e_c <= 1e-12, "{name}: C off by {e_c:e}");
    }
}

#[test]
fn variable_bandwidth_matches_scipy_kde() {
    let name = "gauss_d5_M300_eps0.05_beta-0.2";
    let f = fit_fixture(name);
    let rho_ref = csv(name, "rho.csv").v;
    let err = max_rel_err(&f.rho, &rho_ref);
    println!("rho at samples: rel err {err:.1e}");
    assert!(err <= 1e-12);
    let b = f.bridge();
    let q = csv(name, "queries.csv");
    let rq = csv(name, "rho_queries.csv").v;
    let mut work = vec![0.0; b.workspace_len()];
    for (n, &want) in rq.iter().enumerate() {
        let r = b.rho_at(q.row(n), &mut work).unwrap();
        assert!((r - want).abs() <= 1e-12 * want, "query {n}: {r} vs {want}");
    }
}

fn run_fixture_sampler(name: &str, scheme_cov: bool) -> f64 {
    let p = params(name);
    let f = fit_fixture(name);
    let b = f.bridge();
    let d = b.d();
    let steps: usize = p["sampler_steps"].parse().unwrap();
    let chains: usize = p["sampler_chains"].parse().unwrap();
    let x0 = csv(name, "sampler_x0.csv");
    let xi = csv(name, "sampler_xi.csv");
    let want = csv(
        name,
        if scheme_cov {
            "sampler_out_cov.csv"
        } else {
            "sampler_out_const.csv"
        },
    );
    assert_eq!(xi.rows, steps * chains);
    let mut work = vec![0.0; sbridge::sampler_workspace_len(b.m(), d)];
    let mut err = 0.0f64;
    for c in 0..chains {
        let mut x = x0.row(c).to_vec();
        let mut half = vec![0.0; d];
        for n in 0..steps {
            // Row n*chains + c of sampler_xi.csv drives chain c at step n.
            let mut normals = ReplayNormals::new(xi.row(n * chains + c));
            let mut scheme = if scheme_cov {
                Scheme::Covariance
            } else {
                Scheme::Isotropic
            };
            run_chain(
                &b,
                &mut scheme,
                None,
                &mut x,
                &mut half,
                1,
                &mut normals,
                &mut work,
                Record::default(),
            )
            .unwrap();
            assert_eq!(normals.consumed(), d);
        }
        err = err.max(max_abs_err(&x, want.row(c)));
    }
    err
}

#[test]
fn isotropic_sampler_matches_reference() {
    for name in ["arc_M200_eps0.009", "gauss_d5_M300_eps0.05_beta-0.2"] {
        let err = run_fixture_sampler(name, false);
        println!("{name}: isotropic sampler max abs err {err:.1e}");
        assert!(err <= 1e-10, "{name}: {err:e}");
    }
}

#[test]
fn covariance_sampler_matches_reference() {
    for name in ["arc_M200_eps0.009", "gauss_d5_M300_eps0.05_beta-0.2"] {
        let err = run_fixture_sampler(name, true);
        println!("{name}: covariance sampler max abs err {err:.1e}");
        assert!(err <= 1e-9, "{name}: {err:e}");
    }
}

#[test]
fn fixtures_match_shared_copy() {
    // The committed copy must stay byte-identical to ../shared/fixtures when that exists (CI has it).
    let shared = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if !shared.exists() {
        println!("../shared/fixtures not present: comparing nothing");
        return;
    }
    let mut compared = 0;
    for entry in std::fs::read_dir(&shared).unwrap() {
        let dir = entry.unwrap().path();
        let local = fixture_dir(dir.file_name().unwrap().to_str().unwrap());
        let files: Vec<_> = if dir.is_dir() {
            std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect()
        } else {
            vec![dir.clone()]
        };
        for f in files {
            let rel = f.strip_prefix(&shared).unwrap();
            let mine = fixture_dir("").join(rel);
            assert_eq!(
                std::fs::read(&f).unwrap(),
                std::fs::read(&mine).unwrap_or_default(),
                "{}",
                rel.display()
            );
            compared += 1;
        }
        let _ = local;
    }
    assert!(compared > 40);
}
