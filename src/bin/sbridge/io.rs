//! Matrices in and out: CSV (no header, comma-separated, one sample per row) and NumPy `.npy`
//! (format 1.0–3.0, 2-D, little-endian `<f8`/`<f4`, C order), plus atomic file writes.
//!
//! Every reading error names the file and, where there is one, the line and column (CSV) or the
//! row and column (`.npy`). Every write goes to a temporary file in the destination's directory
//! and is renamed into place only when complete, so no partial output is ever left behind.

use crate::{CliError, CliResult};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A dense `rows × cols` matrix, row-major (one sample per row).
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Number of rows (samples).
    pub rows: usize,
    /// Number of columns (dimensions).
    pub cols: usize,
    /// `rows · cols` values, row-major.
    pub data: Vec<f64>,
}

/// `true` when `path` names a NumPy file (extension `.npy`, any case).
pub fn is_npy(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Reads a matrix from `path`: NumPy when the extension is `.npy` or the file starts with the
/// NumPy magic, CSV otherwise. Every value must be finite.
pub fn read_matrix(path: &Path) -> CliResult<Matrix> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) => return bad_input!("{}: cannot read: {}", path.display(), io_reason(&e)),
    };
    if is_npy(path) || bytes.starts_with(NPY_MAGIC) {
        parse_npy(path, &bytes)
    } else {
        parse_csv(path, &bytes)
    }
}

/// The OS error text without the "(os error N)" suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Parses CSV text: no header, comma-separated, one sample per row. Blank lines and lines whose
/// first non-blank character is `#` are skipped. Errors name `file:line:column`.
pub fn parse_csv(path: &Path, bytes: &[u8]) -> CliResult<Matrix> {
    let name = path.display();
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            return bad_input!("{name}:{line}: not UTF-8 text (is this a CSV file?)");
        }
    };
    let mut data = Vec::new();
    let mut cols = 0usize;
    let mut first_line = 0usize;
    let mut rows = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut n = 0usize;
        for (j, field) in line.split(',').enumerate() {
            let col = j + 1;
            let f = field.trim();
            if f.is_empty() {
                return bad_input!("{name}:{line_no}:{col}: empty value");
            }
            let v: f64 = match f.parse() {
                Ok(v) => v,
                Err(_) => {
                    let hint = if rows == 0 {
                        " (CSV files must have no header line)"
                    } else {
                        ""
                    };
                    return bad_input!(
                        "{name}:{line_no}:{col}: '{}' is not a number{hint}",
                        clip(f)
                    );
                }
            };
            if !v.is_finite() {
                return bad_input!(
                    "{name}:{line_no}:{col}: value '{f}' is not finite (NaN or infinity)"
                );
            }
            data.push(v);
            n += 1;
        }
        if rows == 0 {
            cols = n;
            first_line = line_no;
        } else if n != cols {
            return bad_input!(
                "{name}:{line_no}: {n} values, but line {first_line} has {cols} (ragged rows)"
            );
        }
        rows += 1;
    }
    if rows == 0 {
        return bad_input!("{name}: no data rows");
    }
    Ok(Matrix { rows, cols, data })
}

/// At most 24 characters of `s`, for messages.
fn clip(s: &str) -> String {
    if s.chars().count() > 24 {
        let head: String = s.chars().take(24).collect();
        format!("{head}…")
    } else {
        s.to_string()
    }
}

/// A value of the `.npy` header dictionary.
#[derive(Debug, PartialEq)]
enum PyValue {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

/// A tiny parser for the header dictionary `{'descr': '<f8', 'fortran_order': False, 'shape':
/// (3, 4), }`: string keys; string, boolean and integer-tuple values.
struct PyParser<'a> {
    s: &'a [u8],
    at: usize,
}

impl PyParser<'_> {
    fn ws(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn string(&mut self) -> Option<String> {
        self.ws();
        let q = *self.s.get(self.at)?;
        if q != b'\'' && q != b'"' {
            return None;
        }
        let start = self.at + 1;
        let len = self.s[start..].iter().position(|&c| c == q)?;
        self.at = start + len + 1;
        String::from_utf8(self.s[start..start + len].to_vec()).ok()
    }
    fn value(&mut self) -> Option<PyValue> {
        self.ws();
        let rest = &self.s[self.at..];
        if rest.starts_with(b"True") {
            self.at += 4;
            return Some(PyValue::Bool(true));
        }
        if rest.starts_with(b"False") {
            self.at += 5;
            return Some(PyValue::Bool(false));
        }
        if self.eat(b'(') {
            let mut dims = Vec::new();
            loop {
                if self.eat(b')') {
                    return Some(PyValue::Tuple(dims));
                }
                self.ws();
                let start = self.at;
                while self.at < self.s.len() && self.s[self.at].is_ascii_digit() {
                    self.at += 1;
                }
                // Python 2 numpy wrote longs as `3L`.
                let digits = std::str::from_utf8(&self.s[start..self.at]).ok()?;
                dims.push(digits.parse().ok()?);
                self.eat(b'L');
                if !self.eat(b',') {
                    return self.eat(b')').then_some(PyValue::Tuple(dims));
                }
            }
        }
        self.string().map(PyValue::Str)
    }
    fn dict(&mut self) -> Option<Vec<(String, PyValue)>> {
        if !self.eat(b'{') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            if self.eat(b'}') {
                return Some(out);
            }
            let k = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            let v = self.value()?;
            out.push((k, v));
            if !self.eat(b',') {
                return self.eat(b'}').then_some(out);
            }
        }
    }
}

/// Parses a `.npy` file: 2-D, `<f8` or `<f4`, C order, every value finite.
pub fn parse_npy(path: &Path, bytes: &[u8]) -> CliResult<Matrix> {
    let name = path.display();
    if bytes.len() < 10 || &bytes[..6] != NPY_MAGIC {
        return bad_input!("{name}: not a NumPy .npy file (bad magic bytes)");
    }
    let major = bytes[6];
    let (hlen, hstart) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return bad_input!("{name}: truncated .npy header");
            }
            let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (n as usize, 12)
        }
        v => return bad_input!("{name}: unsupported .npy format version {v}.{}", bytes[7]),
    };
    let Some(header) = bytes.get(hstart..hstart + hlen) else {
        return bad_input!("{name}: truncated .npy header");
    };
    let dict = PyParser { s: header, at: 0 }.dict();
    let Some(dict) = dict else {
        return bad_input!("{name}: malformed .npy header");
    };
    let get = |k: &str| dict.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    let descr = match get("descr") {
        Some(PyValue::Str(s)) => s.as_str(),
        _ => return bad_input!("{name}: .npy header has no dtype ('descr')"),
    };
    let size = match descr {
        "<f8" => 8,
        "<f4" => 4,
        other => {
            return bad_input!(
                "{name}: dtype '{other}' is not supported: need little-endian float64 ('<f8') or float32 ('<f4')"
            )
        }
    };
    match get("fortran_order") {
        Some(PyValue::Bool(false)) => {}
        Some(PyValue::Bool(true)) => {
            return bad_input!(
                "{name}: Fortran-ordered array: save it in C order (numpy.ascontiguousarray)"
            )
        }
        _ => return bad_input!("{name}: .npy header has no 'fortran_order'"),
    }
    let shape = match get("shape") {
        Some(PyValue::Tuple(t)) => t.clone(),
        _ => return bad_input!("{name}: .npy header has no 'shape'"),
    };
    let [rows, cols] = shape[..] else {
        let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
        return bad_input!(
            "{name}: shape ({}) is not 2-D: need (samples, dimensions)",
            dims.join(", ")
        );
    };
    if rows == 0 || cols == 0 {
        return bad_input!("{name}: empty array of shape ({rows}, {cols})");
    }
    let body = &bytes[hstart + hlen..];
    let n = (rows as u128) * (cols as u128);
    if n * size as u128 != body.len() as u128 {
        return bad_input!(
            "{name}: shape ({rows}, {cols}) of '{descr}' needs {} data bytes, the file has {}",
            n * size as u128,
            body.len()
        );
    }
    let (rows, cols) = (rows as usize, cols as usize);
    let data: Vec<f64> = if size == 8 {
        body.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect()
    } else {
        body.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as f64)
            .collect()
    };
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return bad_input!(
            "{name}: value at row {}, column {} (0-based) is not finite: {}",
            i / cols,
            i % cols,
            data[i]
        );
    }
    Ok(Matrix { rows, cols, data })
}

/// `.npy` bytes (format 1.0, `<f8`, C order) of `m`.
pub fn npy_bytes(m: &Matrix) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {}), }}",
        m.rows, m.cols
    );
    // Pad with spaces so that magic + version + length + header is a multiple of 64, ending '\n'.
    let unpadded = 10 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let header = format!("{dict}{}\n", " ".repeat(pad));
    let mut out = Vec::with_capacity(10 + header.len() + 8 * m.data.len());
    out.extend_from_slice(NPY_MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in &m.data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// CSV text of `m`: one row per line, values in Rust's shortest round-trip form.
pub fn csv_text(m: &Matrix) -> String {
    let mut s = String::with_capacity(m.data.len() * 20);
    for row in m.data.chunks_exact(m.cols.max(1)) {
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                s.push(',');
            }
            s.push_str(&v.to_string());
        }
        s.push('\n');
    }
    s
}

/// Writes `m` to `path` (`.npy` float64 or CSV by extension), atomically.
pub fn write_matrix(path: &Path, m: &Matrix) -> CliResult<()> {
    if is_npy(path) {
        write_atomic(path, &npy_bytes(m))
    } else {
        write_atomic(path, csv_text(m).as_bytes())
    }
}

/// Checks that the directory an output file goes to exists, before any long computation.
pub fn check_output_path(path: &Path) -> CliResult<()> {
    let Some(file) = path.file_name() else {
        return bad_input!("{}: output path has no file name", path.display());
    };
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return bad_input!(
            "{}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        return bad_input!("{}: is a directory", file.to_string_lossy());
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `bytes` to `path` atomically: a new temporary file next to it, flushed, then renamed.
/// On any failure the temporary file is removed and `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> CliResult<()> {
    write_all_atomic(&[(path, bytes)])
}

/// Writes several files all or nothing: every temporary file is written and flushed first, and
/// only when all succeeded are they renamed into place. On a failure before the renames, every
/// temporary file is removed and no destination is touched.
pub fn write_all_atomic(files: &[(&Path, &[u8])]) -> CliResult<()> {
    let mut staged: Vec<(PathBuf, &Path)> = Vec::with_capacity(files.len());
    let cleanup = |staged: &[(PathBuf, &Path)]| {
        for (tmp, _) in staged {
            let _ = fs::remove_file(tmp);
        }
    };
    for &(path, bytes) in files {
        match stage(path, bytes) {
            Ok(tmp) => staged.push((tmp, path)),
            Err(e) => {
                cleanup(&staged);
                return Err(e);
            }
        }
    }
    for (i, (tmp, path)) in staged.iter().enumerate() {
        if let Err(e) = fs::rename(tmp, path) {
            cleanup(&staged[i..]);
            return Err(CliError::Internal(format!(
                "{}: cannot write: {}",
                path.display(),
                io_reason(&e)
            )));
        }
    }
    Ok(())
}

/// Writes `bytes` to a new temporary file next to `path`, flushed to disk; returns its path.
fn stage(path: &Path, bytes: &[u8]) -> CliResult<PathBuf> {
    let Some(file) = path.file_name() else {
        return bad_input!("{}: output path has no file name", path.display());
    };
    let dir = parent_dir(path);
    let pid = std::process::id();
    let mut n = 0u32;
    let (tmp, mut f) = loop {
        let tmp = dir.join(format!(".{}.{pid}.{n}.tmp", file.to_string_lossy()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) => {
                return bad_input!("{}: cannot create: {}", path.display(), io_reason(&e));
            }
        }
    };
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    drop(f);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(CliError::Internal(format!(
            "{}: cannot write: {}",
            path.display(),
            io_reason(&e)
        )));
    }
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_and_alignment() {
        let m = Matrix {
            rows: 3,
            cols: 2,
            data: vec![1.0, -2.5, 3.0, 4.0, 5.0e-300, 6.0],
        };
        let b = npy_bytes(&m);
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(parse_npy(Path::new("x.npy"), &b).unwrap(), m);
    }

    #[test]
    fn npy_header_variants() {
        let mut p = PyParser {
            s: b"{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 4L), }",
            at: 0,
        };
        let d = p.dict().unwrap();
        assert_eq!(d[2].1, PyValue::Tuple(vec![3, 4]));
        let mut p = PyParser {
            s: b"{'shape': (5,), 'descr': \"<f8\", 'fortran_order': True}",
            at: 0,
        };
        let d = p.dict().unwrap();
        assert_eq!(d[0].1, PyValue::Tuple(vec![5]));
        assert_eq!(d[2].1, PyValue::Bool(true));
    }

    #[test]
    fn csv_errors_name_line_and_column() {
        let p = Path::new("d.csv");
        let e = parse_csv(p, b"1,2\n3,x\n").unwrap_err().to_string();
        assert!(e.starts_with("d.csv:2:2:"), "{e}");
        let e = parse_csv(p, b"1,2\n\n3\n").unwrap_err().to_string();
        assert!(e.starts_with("d.csv:3:"), "{e}");
        let e = parse_csv(p, b"1,nan\n").unwrap_err().to_string();
        assert!(e.contains("not finite"), "{e}");
        let m = parse_csv(p, b"# c\n1, 2\r\n3,4\n\n").unwrap();
        assert_eq!((m.rows, m.cols, m.data), (2, 2, vec![1.0, 2.0, 3.0, 4.0]));
    }
}
