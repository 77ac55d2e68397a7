//! Shared helpers of the integration tests: reading the reference fixtures.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

/// The committed copy of the reference fixtures (`tests/fixtures/`, identical to
/// `../shared/fixtures/`; `fixtures_match_shared_copy` checks that when the shared copy exists).
pub fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A CSV matrix: rows, columns, values row-major.
pub struct Csv {
    pub rows: usize,
    pub cols: usize,
    pub v: Vec<f64>,
}

impl Csv {
    pub fn row(&self, i: usize) -> &[f64] {
        &self.v[i * self.cols..(i + 1) * self.cols]
    }
}

pub fn csv(fixture: &str, file: &str) -> Csv {
    let path = fixture_dir(fixture).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v = Vec::new();
    let mut rows = 0;
    let mut cols = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let vals: Vec<f64> = line
            .split(',')
            .map(|t| t.trim().parse::<f64>().unwrap())
            .collect();
        if rows == 0 {
            cols = vals.len();
        }
        assert_eq!(vals.len(), cols, "ragged {}", path.display());
        v.extend(vals);
        rows += 1;
    }
    Csv { rows, cols, v }
}

pub fn params(fixture: &str) -> HashMap<String, String> {
    let path = fixture_dir(fixture).join("params.txt");
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

pub fn param_f64(p: &HashMap<String, String>, key: &str) -> f64 {
    p[key].parse().unwrap()
}

/// Largest |a − b| / max(1, |b|).
pub fn max_rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f64::max)
}

/// Largest |a − b|.
pub fn max_abs_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
