//! `sbridge fit`: samples → model image file.

use crate::args::FitArgs;
use crate::io::{check_output_path, read_matrix, Matrix};
use crate::layout_spec::{self, OwnedLayout};
use crate::{progress, CliError, CliResult};
use sbridge::model::{image_len, write_model_threaded, ImageFloat};
use sbridge::model_io::ModelImage;
use sbridge::{Error, FitConfig, ModelFitReport, SinkhornOptions};
use std::path::Path;
use std::time::Instant;

/// Per-coordinate standard deviations of the columns of `m` (unbiased); errors name the column
/// with zero variance.
pub fn column_std(m: &Matrix, what: &str) -> CliResult<Vec<f64>> {
    if m.rows < 2 {
        return bad_input!("{what}: need at least 2 samples to compute standard deviations");
    }
    let mut out = Vec::with_capacity(m.cols);
    for c in 0..m.cols {
        let col = || m.data.iter().skip(c).step_by(m.cols);
        let mean = col().sum::<f64>() / m.rows as f64;
        let var = col().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (m.rows - 1) as f64;
        let s = var.sqrt();
        if !(s.is_finite() && s > 0.0) {
            return bad_input!("{what}: column {c} (0-based) is constant, its scale would be zero");
        }
        out.push(s);
    }
    Ok(out)
}

fn read_scales(spec: &str, data: &Matrix, data_path: &Path) -> CliResult<Option<Vec<f64>>> {
    match spec {
        "none" => Ok(None),
        "std" => column_std(data, &format!("--scales std on {}", data_path.display())).map(Some),
        file => {
            let path = Path::new(file);
            let m = read_matrix(path)?;
            if m.data.len() != data.cols {
                return bad_input!(
                    "{}: {} scales, but the data have d = {} columns",
                    path.display(),
                    m.data.len(),
                    data.cols
                );
            }
            if let Some(i) = m.data.iter().position(|&v| v <= 0.0) {
                return bad_input!(
                    "{}: scale {i} (0-based) is {}, scales must be > 0",
                    path.display(),
                    m.data[i]
                );
            }
            Ok(Some(m.data))
        }
    }
}

/// The outcome of writing a model.
pub struct Fitted {
    /// The image (complete even when a head did not converge).
    pub image: ModelImage,
    /// What the fit did.
    pub report: ModelFitReport,
    /// `Some` when a head's Sinkhorn run missed the tolerance.
    pub unconverged: Option<(u32, f64)>,
}

/// Fit parameters.
#[derive(Clone, Copy, Debug)]
pub struct FitParams {
    /// `ε`.
    pub eps: f64,
    /// `β` for a variable bandwidth.
    pub beta: Option<f64>,
    /// Sinkhorn tolerance (`None`: the float kind's default).
    pub tol: Option<f64>,
    /// Sinkhorn iteration cap.
    pub max_iter: u32,
    /// [`SinkhornOptions::truncation`] (`0`: exact).
    pub truncation: f64,
    /// Host threads fitting heads in parallel (the bytes written do not depend on it).
    pub threads: usize,
}

/// Fits `layout` on `data` (`M × d`, f64) into a model image of float kind `T`.
pub fn fit_image<T: ImageFloat>(
    data: &[f64],
    d: usize,
    scales: Option<&[f64]>,
    layout: &OwnedLayout,
    p: &FitParams,
) -> Result<Fitted, Error> {
    let FitParams {
        eps,
        beta,
        tol,
        max_iter,
        truncation,
        threads,
    } = *p;
    let data_t: Vec<T> = data.iter().map(|&v| T::from_f64(v)).collect();
    let scales_t: Option<Vec<T>> = scales.map(|s| s.iter().map(|&v| T::from_f64(v)).collect());
    let cfg = FitConfig {
        eps: T::from_f64(eps),
        beta: beta.map(T::from_f64),
        sinkhorn: SinkhornOptions {
            truncation: T::from_f64(truncation),
            ..SinkhornOptions::new(tol.map_or(T::DEFAULT_SINKHORN_TOL, T::from_f64), max_iter)
        },
    };
    let view = layout.view();
    let m = data.len() / d;
    let len = image_len::<T>(&view, m, beta.is_some(), scales.is_some());
    if len == usize::MAX {
        return Err(Error::Capacity {
            limit: usize::MAX - 1,
            requested: len,
        });
    }
    let mut image = ModelImage::with_len(len);
    let res = write_model_threaded(
        image.as_mut_bytes(),
        &data_t,
        d,
        scales_t.as_deref(),
        &view,
        &cfg,
        threads,
    );
    match res {
        Ok((_, report)) => Ok(Fitted {
            image,
            report,
            unconverged: None,
        }),
        Err(Error::NotConverged {
            iterations,
            residual,
        }) => {
            let v = image.view::<T>()?;
            let report = ModelFitReport {
                heads: v.n_heads(),
                max_iterations: iterations,
                max_residual: residual,
                image_len: v.bytes().len(),
                max_neglected: truncation,
            };
            Ok(Fitted {
                image,
                report,
                unconverged: Some((iterations, residual)),
            })
        }
        Err(e) => Err(e),
    }
}

/// Runs `sbridge fit`.
pub fn run(a: &FitArgs) -> CliResult<()> {
    check_output_path(&a.out)?;
    let mut data = read_matrix(&a.data)?;
    if a.spatial_order {
        let mut order = vec![0u32; data.rows];
        sbridge::spatial::tile_order(&data.data, data.cols, &mut order)
            .and_then(|()| sbridge::spatial::permute_rows(&mut data.data, data.cols, &mut order))
            .map_err(|e| CliError::Input(format!("{}: --spatial-order: {e}", a.data.display())))?;
    }
    let scales = read_scales(&a.scales, &data, &a.data)?;
    let layout = layout_spec::build(&a.layout, data.cols)?;
    if a.beta.is_some() && data.rows <= layout.view().max_head_dim() {
        return bad_input!(
            "{}: --beta needs more samples ({}) than a head's dimension ({}) for its density estimate",
            a.data.display(),
            data.rows,
            layout.view().max_head_dim()
        );
    }
    let pb = progress::spinner(
        &format!(
            "fitting {} head(s) on M = {} samples",
            layout.view().n_heads(),
            data.rows
        ),
        a.quiet,
    );
    let t0 = Instant::now();
    let params = FitParams {
        eps: a.eps,
        beta: a.beta,
        tol: a.tol,
        max_iter: a.max_iter,
        truncation: a.truncation,
        threads: crate::args::threads(a.threads),
    };
    let (x, d, sc) = (&data.data, data.cols, scales.as_deref());
    let fitted = if a.f32 {
        fit_image::<f32>(x, d, sc, &layout, &params)
    } else {
        fit_image::<f64>(x, d, sc, &layout, &params)
    };
    pb.finish_and_clear();
    let fitted = fitted.map_err(|e| match e {
        Error::DegenerateKde => CliError::Input(format!(
            "{}: {e} (a head's samples lie on a hyperplane; drop --beta or change the layout)",
            a.data.display()
        )),
        Error::NonFiniteData | Error::InvalidScale => CliError::Input(format!(
            "{}: {e}{}",
            a.data.display(),
            if a.f32 {
                " (a value overflows f32?)"
            } else {
                ""
            }
        )),
        Error::InvalidEpsilon | Error::InvalidBeta | Error::InvalidTolerance => {
            CliError::Input(format!("fit parameters: {e}"))
        }
        other => CliError::Internal(format!("fit failed: {other}")),
    })?;
    if let Some((it, res)) = fitted.unconverged {
        if !a.allow_unconverged {
            return Err(CliError::Internal(format!(
                "Sinkhorn did not reach the tolerance ({it} iterations, residual {res:e}); \
                 raise --max-iter or --tol, or pass --allow-unconverged; nothing written"
            )));
        }
    }
    fitted
        .image
        .write_file(&a.out)
        .map_err(|e| CliError::Internal(e.to_string()))?;
    if !a.quiet {
        let r = &fitted.report;
        println!(
            "wrote {}: d = {}, {} head(s), M = {}, {} bytes ({}); Sinkhorn: at most {} iterations, \
             residual <= {:.1e}; {:.2} s",
            a.out.display(),
            data.cols,
            r.heads,
            data.rows,
            r.image_len,
            if a.f32 { "f32" } else { "f64" },
            r.max_iterations,
            r.max_residual,
            t0.elapsed().as_secs_f64()
        );
        if a.truncation > 0.0 {
            println!(
                "truncated Sinkhorn: each row left out at most {:.1e} of its kernel mass \
                 (bound {:.1e}{})",
                r.max_neglected,
                a.truncation,
                if a.spatial_order {
                    ", samples in tile order"
                } else {
                    "; without --spatial-order little can be skipped"
                }
            );
        }
        if fitted.unconverged.is_some() {
            println!(
                "warning: some heads did not reach the Sinkhorn tolerance (see `sbridge inspect`)"
            );
        }
    }
    Ok(())
}
