//! `sbridge sample`: independent chains from random training samples, optionally conditioned.

use crate::args::{self, NoiseArg, SampleArgs, SchemeArg, WriteArg};
use crate::inspect::{float_size, open, read_image};
use crate::io::{check_output_path, write_matrix, Matrix};
use crate::parallel::par_map;
use crate::{progress, CliError, CliResult};
use sbridge::model::ImageFloat;
use sbridge::{model_step, model_workspace_len, Clamp, Error, ModelView, NoiseMode, Rng, Scheme};

/// Parses `--condition 'c=v,c=v'` for a model of dimension `d`.
pub fn parse_condition(text: &str, d: usize) -> CliResult<(Vec<usize>, Vec<f64>)> {
    let (mut coords, mut values) = (Vec::new(), Vec::new());
    for item in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let Some((c, v)) = item.split_once('=') else {
            return bad_input!("--condition: '{item}' is not of the form coordinate=value");
        };
        let Ok(c) = c.trim().parse::<usize>() else {
            return bad_input!("--condition: '{}' is not a coordinate index", c.trim());
        };
        let v: f64 = match v.trim().parse() {
            Ok(v) if f64::is_finite(v) => v,
            _ => {
                return bad_input!(
                    "--condition: value '{}' of coordinate {c} is not a finite number",
                    v.trim()
                )
            }
        };
        if c >= d {
            return bad_input!(
                "--condition: coordinate {c} is out of range (the model has d = {d})"
            );
        }
        if coords.contains(&c) {
            return bad_input!("--condition: coordinate {c} is given twice");
        }
        coords.push(c);
        values.push(v);
    }
    if coords.is_empty() {
        return bad_input!("--condition: no coordinate=value pairs");
    }
    if coords.len() == d {
        return bad_input!("--condition: every coordinate is clamped, nothing is left to sample");
    }
    Ok((coords, values))
}

fn sample_with<T: ImageFloat>(view: &ModelView<'_, T>, a: &SampleArgs) -> CliResult<Matrix> {
    let d = view.d();
    let (coords, values) = match &a.condition {
        Some(text) => parse_condition(text, d)?,
        None => (Vec::new(), Vec::new()),
    };
    if a.scheme == SchemeArg::Covariance && !view.is_single_full_head() {
        return bad_input!(
            "--scheme covariance needs a single-head model; {} has {} heads",
            a.model.display(),
            view.n_heads()
        );
    }
    let values_t: Vec<T> = values.iter().map(|&v| T::from_f64(v)).collect();
    let clamp = if coords.is_empty() {
        None
    } else {
        Some(
            Clamp::new(d, &coords, &values_t)
                .map_err(|e| CliError::Input(format!("--condition: {e}")))?,
        )
    };
    let noise = match a.noise {
        NoiseArg::Global => NoiseMode::Global,
        NoiseArg::PerHead => NoiseMode::PerHead,
    };
    let (n, steps) = (a.n as usize, a.steps as usize);
    let pb = progress::bar(a.n, "sampling chains", false);
    let chain = |i: usize| -> Result<Vec<f64>, Error> {
        let mut rng = Rng::new(a.seed, i as u64);
        let j = (rng.next_u64() % view.m() as u64) as usize;
        let mut x: Vec<T> = (0..d)
            .map(|c| view.sample_value(j, c as u32).unwrap_or(T::ZERO))
            .collect();
        if let Some(c) = &clamp {
            c.apply(&mut x);
        }
        let mut half = vec![T::ZERO; d];
        let mut work = vec![T::ZERO; model_workspace_len(view)];
        let mut scheme = match a.scheme {
            SchemeArg::Isotropic => Scheme::Isotropic,
            SchemeArg::Covariance => Scheme::Covariance,
        };
        for _ in 0..steps {
            model_step(
                view,
                &mut scheme,
                noise,
                clamp.as_ref(),
                &mut x,
                &mut half,
                &mut rng,
                &mut work,
            )?;
        }
        let out = if a.write == WriteArg::Half {
            &mut half
        } else {
            &mut x
        };
        if let Some(c) = &clamp {
            c.apply(out);
        }
        pb.inc(1);
        Ok(out.iter().map(|v| v.to_f64()).collect())
    };
    let rows = par_map(n, args::threads(a.threads), chain);
    pb.finish_and_clear();
    let mut data = Vec::with_capacity(n * d);
    for (i, r) in rows.into_iter().enumerate() {
        match (r, &a.condition) {
            (Ok(row), _) => data.extend_from_slice(&row),
            (Err(e @ Error::NonFiniteState), Some(c)) => {
                return bad_input!(
                "--condition {c}: the conditioning values are too far from the training data ({e})"
            )
            }
            (Err(e), _) => return Err(CliError::Internal(format!("chain {i}: {e}"))),
        }
    }
    Ok(Matrix {
        rows: n,
        cols: d,
        data,
    })
}

/// Runs `sbridge sample`.
pub fn run(a: &SampleArgs) -> CliResult<()> {
    check_output_path(&a.out)?;
    let image = read_image(&a.model)?;
    let out = if float_size(&a.model, image.as_bytes())? == 4 {
        sample_with(&open::<f32>(&a.model, &image)?, a)?
    } else {
        sample_with(&open::<f64>(&a.model, &image)?, a)?
    };
    write_matrix(&a.out, &out)
}
