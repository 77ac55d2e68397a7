//! Tests of the `sbridge` command-line tool (feature `cli`): the fit → inspect → sample round
//! trip, every bad-input case (one-line error naming the file/line/parameter, exit code 2, no
//! output file left behind), thread-count independence, and the Lorenz-96 demo at `--quick`
//! settings.
#![cfg(feature = "cli")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sbridge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sbridge"))
        .args(args)
        .output()
        .expect("the sbridge binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
fn ok(args: &[&str]) -> String {
    let o = sbridge(args);
    assert!(
        o.status.success(),
        "sbridge {args:?} failed ({:?}): {}",
        o.status.code(),
        stderr(&o)
    );
    stdout(&o)
}

/// Asserts a bad-input failure: exit code 2 and exactly one stderr line `error: ...` that
/// contains every string of `mentions`. Returns the line.
fn bad(args: &[&str], mentions: &[&str]) -> String {
    let o = sbridge(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "sbridge {args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "sbridge {args:?}: not one line: {err}");
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    for m in mentions {
        assert!(
            lines[0].contains(m),
            "{:?} does not mention {m:?}",
            lines[0]
        );
    }
    lines[0].to_string()
}

/// The names of the files in `dir`, sorted (to check that nothing partial was left behind).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `M × 3` samples near a helix, deterministic.
fn helix(m: usize) -> Vec<[f64; 3]> {
    (0..m)
        .map(|j| {
            let t = j as f64 * 0.05;
            let wob = ((j * 7919) % 101) as f64 / 101.0 - 0.5;
            [t.cos() + 0.1 * wob, t.sin() - 0.05 * wob, 0.2 * t]
        })
        .collect()
}

fn write_csv(path: &Path, rows: &[Vec<f64>]) {
    let text: String = rows
        .iter()
        .map(|r| {
            let f: Vec<String> = r.iter().map(|v| v.to_string()).collect();
            f.join(",") + "\n"
        })
        .collect();
    fs::write(path, text).unwrap();
}

fn read_csv(path: &Path) -> Vec<Vec<f64>> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(|t| t.parse().unwrap()).collect())
        .collect()
}

/// A `.npy` file with the given header fields and raw little-endian body.
fn write_npy(path: &Path, descr: &str, fortran: bool, shape: &str, body: &[u8]) {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    let pad = (64 - (10 + dict.len() + 1) % 64) % 64;
    let header = format!("{dict}{}\n", " ".repeat(pad));
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(body);
    fs::write(path, b).unwrap();
}

fn f8(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f4(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect()
}

/// Reads a 2-D `<f8` `.npy` written by `sbridge sample`: `(rows, cols, values)`.
fn read_npy_f8(path: &Path) -> (usize, usize, Vec<f64>) {
    let b = fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "header is 64-byte aligned");
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert!(header.contains("'descr': '<f8'") && header.contains("'fortran_order': False"));
    let shape = &header[header.find("'shape': (").unwrap() + 10..];
    let shape = &shape[..shape.find(')').unwrap()];
    let dims: Vec<usize> = shape
        .split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().parse().unwrap())
        .collect();
    let vals: Vec<f64> = b[10 + hlen..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(vals.len(), dims[0] * dims[1]);
    (dims[0], dims[1], vals)
}

struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    csv: PathBuf,
    model: PathBuf,
}

/// A helix data set and its single-head model.
fn fitted_helix() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    let csv = p.join("helix.csv");
    let rows: Vec<Vec<f64>> = helix(150).iter().map(|r| r.to_vec()).collect();
    write_csv(&csv, &rows);
    let model = p.join("helix.sbm");
    ok(&[
        "fit",
        "--data",
        s(&csv),
        "--eps",
        "0.05",
        "--scales",
        "std",
        "--out",
        s(&model),
        "-q",
    ]);
    Fixture {
        _dir: dir,
        dir: p,
        csv,
        model,
    }
}

#[test]
fn fit_inspect_sample_round_trip() {
    let fx = fitted_helix();
    let out = ok(&["inspect", s(&fx.model)]);
    for want in [
        "float kind        f64",
        "d                 3",
        "heads             1",
        "M (samples)       150",
        "epsilon           0.05",
        "bandwidth         fixed",
        "scales            per coordinate",
        " OK",
        "valid model: 1 head(s)",
    ] {
        assert!(out.contains(want), "inspect output lacks {want:?}:\n{out}");
    }

    // Unconditional samples, projected state: inside the data's bounding box (convex hull).
    let data = helix(150);
    let out_csv = fx.dir.join("samples.csv");
    ok(&[
        "sample",
        "--model",
        s(&fx.model),
        "--n",
        "40",
        "--steps",
        "20",
        "--seed",
        "3",
        "--out",
        s(&out_csv),
    ]);
    let rows = read_csv(&out_csv);
    assert_eq!(rows.len(), 40);
    for r in &rows {
        assert_eq!(r.len(), 3);
        for c in 0..3 {
            let (lo, hi) = data
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x[c]), b.max(x[c])));
            assert!(
                r[c] >= lo - 1e-9 && r[c] <= hi + 1e-9,
                "{r:?} outside the hull"
            );
        }
    }

    // The same chains written as .npy (half-steps), and conditioned on coordinate 2.
    let out_npy = fx.dir.join("half.npy");
    ok(&[
        "sample",
        "--model",
        s(&fx.model),
        "--n",
        "40",
        "--steps",
        "20",
        "--seed",
        "3",
        "--write",
        "half",
        "--out",
        s(&out_npy),
    ]);
    let (n, d, vals) = read_npy_f8(&out_npy);
    assert_eq!((n, d), (40, 3));
    assert!(vals.iter().all(|v| v.is_finite()));
    let cond = fx.dir.join("cond.csv");
    ok(&[
        "sample",
        "--model",
        s(&fx.model),
        "--n",
        "30",
        "--steps",
        "15",
        "--scheme",
        "covariance",
        "--condition",
        "2=0.6",
        "--out",
        s(&cond),
    ]);
    let rows = read_csv(&cond);
    assert_eq!(rows.len(), 30);
    assert!(rows.iter().all(|r| r[2] == 0.6));
    // At z = 0.6 the helix has t = 3, i.e. (cos 3, sin 3) ≈ (−0.99, 0.14).
    let mx = rows.iter().map(|r| r[0]).sum::<f64>() / 30.0;
    assert!(mx < -0.7, "conditional mean of x0 = {mx}");
}

#[test]
fn fit_npy_f32_localized_and_heads_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    // A ring of d = 5 coordinates, M = 120, as float32 .npy.
    let (m, d) = (120, 5);
    let vals: Vec<f64> = (0..m * d)
        .map(|i| (((i * 2654435761usize) % 1000) as f64 / 500.0 - 1.0) + (i % d) as f64 * 0.1)
        .collect();
    let npy = p.join("ring.npy");
    write_npy(&npy, "<f4", false, &format!("({m}, {d})"), &f4(&vals));
    let model = p.join("ring.sbm");
    ok(&[
        "fit",
        "--data",
        s(&npy),
        "--eps",
        "0.2",
        "--beta",
        "-0.2",
        "--layout",
        "stencil:1",
        "--f32",
        "--out",
        s(&model),
        "-q",
    ]);
    let out = ok(&["inspect", s(&model)]);
    assert!(out.contains("float kind        f32"), "{out}");
    assert!(out.contains("heads             5"), "{out}");
    assert!(out.contains("variable, beta = -0.2"), "{out}");
    assert!(out.contains("valid model: 5 head(s), max d_a = 3"), "{out}");
    let samples = p.join("s.npy");
    ok(&[
        "sample",
        "--model",
        s(&model),
        "--n",
        "10",
        "--steps",
        "5",
        "--noise",
        "per-head",
        "--out",
        s(&samples),
    ]);
    let (n, dd, v) = read_npy_f8(&samples);
    assert_eq!((n, dd), (10, 5));
    assert!(v.iter().all(|x| x.is_finite()));

    // Explicit heads: coordinates 0 and 1 written by one head seeing 0,1,2; coordinate 4 by one
    // seeing 3,4. Coordinates 2 and 3 are never written.
    let heads = p.join("heads.txt");
    fs::write(
        &heads,
        "# targets : neighbourhood\n0, 1 : 0 1 2\n\n4 : 3,4  # last\n",
    )
    .unwrap();
    let model2 = p.join("heads.sbm");
    ok(&[
        "fit",
        "--data",
        s(&npy),
        "--eps",
        "0.2",
        "--layout",
        &format!("heads:{}", s(&heads)),
        "--out",
        s(&model2),
        "-q",
    ]);
    let out = ok(&["inspect", s(&model2)]);
    assert!(out.contains("heads             2"), "{out}");
    assert!(out.contains("0,1            0,1,2"), "{out}");
}

#[test]
fn sample_results_do_not_depend_on_threads() {
    let fx = fitted_helix();
    let a = fx.dir.join("a.csv");
    let b = fx.dir.join("b.csv");
    let common = ["--n", "25", "--steps", "10", "--seed", "11"];
    let mut args_a = vec![
        "sample",
        "--model",
        s(&fx.model),
        "--threads",
        "1",
        "--out",
        s(&a),
    ];
    args_a.extend_from_slice(&common);
    let mut args_b = vec![
        "sample",
        "--model",
        s(&fx.model),
        "--threads",
        "2",
        "--out",
        s(&b),
    ];
    args_b.extend_from_slice(&common);
    ok(&args_a);
    ok(&args_b);
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
}

#[test]
fn bad_data_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let out = p.join("m.sbm");
    let fit = |data: &Path, mentions: &[&str]| {
        bad(
            &["fit", "--data", s(data), "--eps", "0.1", "--out", s(&out)],
            mentions,
        )
    };

    fit(&p.join("missing.csv"), &["missing.csv", "cannot read"]);

    let ragged = p.join("ragged.csv");
    fs::write(&ragged, "1,2,3\n4,5,6\n7,8\n").unwrap();
    fit(&ragged, &["ragged.csv:3:", "line 1 has 3"]);

    let text = p.join("text.csv");
    fs::write(&text, "1,2\n3,abc\n").unwrap();
    fit(&text, &["text.csv:2:2:", "'abc' is not a number"]);

    let header = p.join("header.csv");
    fs::write(&header, "x,y\n1,2\n").unwrap();
    fit(&header, &["header.csv:1:1:", "no header"]);

    let nan = p.join("nan.csv");
    fs::write(&nan, "1,2\n3,NaN\n5,6\n").unwrap();
    fit(&nan, &["nan.csv:2:2:", "not finite"]);

    let empty = p.join("empty.csv");
    fs::write(&empty, "\n# nothing\n").unwrap();
    fit(&empty, &["empty.csv", "no data rows"]);

    let blank = p.join("blank.csv");
    fs::write(&blank, "1,,3\n").unwrap();
    fit(&blank, &["blank.csv:1:2:", "empty value"]);

    let vals = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let nan_npy = p.join("nan.npy");
    write_npy(
        &nan_npy,
        "<f8",
        false,
        "(3, 2)",
        &f8(&[1.0, 2.0, 3.0, f64::NAN, 5.0, 6.0]),
    );
    fit(&nan_npy, &["nan.npy", "row 1, column 1", "not finite"]);

    let int = p.join("int.npy");
    write_npy(&int, "<i8", false, "(3, 2)", &f8(&vals));
    fit(&int, &["int.npy", "dtype '<i8'", "'<f8'"]);

    let big = p.join("big.npy");
    write_npy(&big, ">f8", false, "(3, 2)", &f8(&vals));
    fit(&big, &["big.npy", "dtype '>f8'"]);

    let one_d = p.join("oned.npy");
    write_npy(&one_d, "<f8", false, "(6,)", &f8(&vals));
    fit(&one_d, &["oned.npy", "shape (6) is not 2-D"]);

    let three_d = p.join("threed.npy");
    write_npy(&three_d, "<f8", false, "(1, 3, 2)", &f8(&vals));
    fit(&three_d, &["threed.npy", "shape (1, 3, 2) is not 2-D"]);

    let fortran = p.join("fortran.npy");
    write_npy(&fortran, "<f8", true, "(3, 2)", &f8(&vals));
    fit(&fortran, &["fortran.npy", "Fortran"]);

    let short = p.join("short.npy");
    write_npy(&short, "<f8", false, "(4, 2)", &f8(&vals));
    fit(
        &short,
        &["short.npy", "needs 64 data bytes, the file has 48"],
    );

    let junk = p.join("junk.npy");
    fs::write(&junk, b"not numpy at all").unwrap();
    fit(&junk, &["junk.npy", "not a NumPy"]);

    // Nothing but the inputs is left in the directory: no model, no temporary file.
    assert!(!out.exists());
    assert!(
        listing(p).iter().all(|f| !f.contains("m.sbm")),
        "{:?}",
        listing(p)
    );
}

/// `--spatial-order --truncation τ`: the summary states the neglected mass, within `τ`, and the
/// image holds the same samples (as a set) as the data, in tile order.
#[test]
fn fit_truncated_in_tile_order() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bimodal.csv");
    let rows: Vec<Vec<f64>> = (0..3000)
        .map(|j| {
            let t = j as f64 * 0.618_034;
            let (u, v) = ((t * 7.3).sin(), (t * 3.1).cos());
            vec![if j % 2 == 0 { -1.0 } else { 1.0 } + 0.3 * u, 0.3 * v]
        })
        .collect();
    write_csv(&csv, &rows);
    let out = dir.path().join("t.sbm");
    let fit = |extra: &[&str]| {
        let mut a = vec!["fit", "--data", s(&csv), "--out", s(&out), "--eps", "0.002"];
        a.extend_from_slice(extra);
        ok(&a)
    };
    let summary = fit(&["--truncation", "1e-8", "--spatial-order"]);
    let line = summary
        .lines()
        .find(|l| l.starts_with("truncated Sinkhorn"))
        .unwrap_or_else(|| panic!("no truncation line in {summary}"));
    let neglected: f64 = line
        .split("at most ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no bound in {line:?}"));
    assert!((0.0..=1e-8).contains(&neglected), "{line}");
    assert!(line.contains("tile order"), "{line}");
    let exact = fit(&[]);
    assert!(!exact.contains("truncated"), "{exact}");
}

#[test]
fn bad_fit_parameters() {
    let fx = fitted_helix();
    let out = fx.dir.join("new.sbm");
    let before = listing(&fx.dir);
    let fit = |extra: &[&str], mentions: &[&str]| {
        let mut a = vec!["fit", "--data", s(&fx.csv), "--out", s(&out)];
        a.extend_from_slice(extra);
        bad(&a, mentions)
    };
    fit(&["--eps", "0"], &["--eps", "must be finite and > 0"]);
    fit(&["--eps", "-1"], &["--eps"]);
    fit(&["--eps", "abc"], &["--eps", "'abc' is not a number"]);
    fit(&["--eps", "inf"], &["--eps"]);
    fit(&[], &["--eps"]);
    fit(&["--eps", "0.1", "--beta", "0.5"], &["--beta", "<= 0"]);
    fit(
        &["--eps", "0.1", "--truncation", "1"],
        &["--truncation", ">= 0 and < 1"],
    );
    fit(
        &["--eps", "0.1", "--truncation", "-0.001"],
        &["--truncation"],
    );
    fit(
        &["--eps", "0.1", "--layout", "ring"],
        &["--layout", "unknown layout 'ring'"],
    );
    fit(
        &["--eps", "0.1", "--layout", "closure:2,2,0"],
        &["--layout closure:2,2,0", "d = 3"],
    );
    fit(
        &["--eps", "0.1", "--layout", "stencil:2"],
        &["--layout stencil:2", "2R+1 <= d"],
    );
    fit(
        &["--eps", "0.1", "--layout", "temporal:2"],
        &["--layout temporal:2", "multiple of S"],
    );
    fit(&["--eps", "0.1", "--max-iter", "0"], &["--max-iter"]);

    let heads = fx.dir.join("h.txt");
    fs::write(&heads, "0 : 0 1\n1 : 1 2 7\n").unwrap();
    let spec = format!("heads:{}", s(&heads));
    fit(
        &["--eps", "0.1", "--layout", &spec],
        &["h.txt:2:", "coordinate 7 is out of range"],
    );
    fs::write(&heads, "0 : 0 1\n0 : 0 2\n").unwrap();
    fit(
        &["--eps", "0.1", "--layout", &spec],
        &["h.txt:2:", "already targeted on line 1"],
    );
    fs::write(&heads, "2 : 0 1\n").unwrap();
    fit(
        &["--eps", "0.1", "--layout", &spec],
        &["h.txt:1:", "not in the neighbourhood"],
    );

    let sc = fx.dir.join("scales.csv");
    fs::write(&sc, "1,2\n").unwrap();
    fit(
        &["--eps", "0.1", "--scales", s(&sc)],
        &["scales.csv", "2 scales", "d = 3"],
    );
    fs::write(&sc, "1,0,2\n").unwrap();
    fit(
        &["--eps", "0.1", "--scales", s(&sc)],
        &["scales.csv", "scale 1", "> 0"],
    );
    fit(
        &["--eps", "0.1", "--scales", "nope.csv"],
        &["nope.csv", "cannot read"],
    );

    let missing_dir = fx.dir.join("no/such/dir/m.sbm");
    bad(
        &[
            "fit",
            "--data",
            s(&fx.csv),
            "--eps",
            "0.1",
            "--out",
            s(&missing_dir),
        ],
        &["does not exist"],
    );
    // Every failure left the directory as it was (the files of the heads/scales cases aside).
    let after: Vec<String> = listing(&fx.dir)
        .into_iter()
        .filter(|f| f != "h.txt" && f != "scales.csv")
        .collect();
    assert_eq!(after, before);
}

#[test]
fn bad_sample_and_inspect_input() {
    let fx = fitted_helix();
    let out = fx.dir.join("out.csv");
    let before = listing(&fx.dir);
    let sample = |extra: &[&str], mentions: &[&str]| {
        let mut a = vec!["sample", "--model", s(&fx.model), "--out", s(&out)];
        a.extend_from_slice(extra);
        bad(&a, mentions)
    };
    sample(&["--n", "0"], &["--n"]);
    sample(&["--n", "-4"], &["--n"]);
    sample(&["--n", "5", "--steps", "0"], &["--steps"]);
    sample(
        &["--n", "5", "--condition", "7=1"],
        &["--condition", "coordinate 7", "d = 3"],
    );
    sample(&["--n", "5", "--condition", "0=x"], &["--condition", "'x'"]);
    sample(
        &["--n", "5", "--condition", "0:1"],
        &["--condition", "coordinate=value"],
    );
    sample(
        &["--n", "5", "--condition", "0=1,0=2"],
        &["--condition", "twice"],
    );
    sample(
        &["--n", "5", "--condition", "0=nan"],
        &["--condition", "not a finite number"],
    );
    sample(&["--n", "5", "--scheme", "fancy"], &["--scheme"]);
    sample(
        &["--n", "5", "--condition", "0=1e200"],
        &["--condition", "exceeds the admissible magnitude"],
    );
    bad(
        &[
            "sample",
            "--model",
            "nope.sbm",
            "--n",
            "3",
            "--out",
            s(&out),
        ],
        &["nope.sbm", "cannot read"],
    );
    bad(&["inspect", "nope.sbm"], &["nope.sbm", "cannot read"]);

    // A corrupted image (one byte of the data flipped) fails its checksum.
    let mut bytes = fs::read(&fx.model).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x40;
    let corrupt = fx.dir.join("corrupt.sbm");
    fs::write(&corrupt, &bytes).unwrap();
    bad(&["inspect", s(&corrupt)], &["corrupt.sbm", "checksum"]);
    bad(
        &[
            "sample",
            "--model",
            s(&corrupt),
            "--n",
            "3",
            "--out",
            s(&out),
        ],
        &["corrupt.sbm", "checksum"],
    );
    let not_model = fx.dir.join("helix.csv");
    bad(
        &["inspect", s(&not_model)],
        &["helix.csv", "not a model image"],
    );
    fs::write(fx.dir.join("tiny.sbm"), b"SBRIDGE\0").unwrap();
    bad(
        &["inspect", s(&fx.dir.join("tiny.sbm"))],
        &["tiny.sbm", "128-byte header"],
    );

    // Covariance noise needs a single-head model.
    let local = fx.dir.join("local.sbm");
    ok(&[
        "fit",
        "--data",
        s(&fx.csv),
        "--eps",
        "0.1",
        "--layout",
        "stencil:1",
        "--out",
        s(&local),
        "-q",
    ]);
    bad(
        &[
            "sample",
            "--model",
            s(&local),
            "--n",
            "3",
            "--scheme",
            "covariance",
            "--out",
            s(&out),
        ],
        &["--scheme covariance", "3 heads"],
    );
    let after: Vec<String> = listing(&fx.dir)
        .into_iter()
        .filter(|f| !["corrupt.sbm", "tiny.sbm", "local.sbm"].contains(&f.as_str()))
        .collect();
    assert_eq!(after, before, "a failing command left a file behind");
}

#[test]
fn bad_demo_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let demo = |extra: &[&str], mentions: &[&str]| {
        let mut a = vec!["demo", "lorenz96", "--out", s(&out)];
        a.extend_from_slice(extra);
        bad(&a, mentions)
    };
    demo(&["--m", "1001"], &["--m 1001", "--train-trajectories"]);
    demo(&["--eps", "0"], &["--eps"]);
    demo(&["--nc", "0"], &["--nc"]);
    demo(&["--radius", "6"], &["--radius 6"]);
    demo(&["--steps", "100"], &["--steps 100"]);
    demo(&["--quick", "--paper"], &["--paper"]);
    demo(&["--psi-step", "euler"], &["--psi-step"]);
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    bad(
        &["demo", "lorenz96", "--quick", "--out", s(&file)],
        &["not a directory"],
    );
    assert!(!out.exists());
}

/// Numbers of the metric rows of table.txt (between the column header and the blank line).
fn table_rows(table: &str) -> Vec<(String, Vec<f64>)> {
    let lines: Vec<&str> = table.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains("(reference)"))
        .expect("column header")
        + 1;
    lines[start..]
        .iter()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let (label, nums) = l.split_at(34);
            let v = nums
                .split_whitespace()
                .map(|t| t.parse::<f64>().unwrap_or(f64::NAN))
                .collect();
            (label.trim().to_string(), v)
        })
        .collect()
}

#[test]
fn demo_lorenz96_quick() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let t0 = std::time::Instant::now();
    let printed = ok(&["demo", "lorenz96", "--quick", "--quiet", "--out", s(&out)]);
    let secs = t0.elapsed().as_secs_f64();
    println!("{printed}\ndemo lorenz96 --quick: {secs:.1} s");
    let table = fs::read_to_string(out.join("table.txt")).unwrap();
    assert!(printed.contains(&table));
    let rows = table_rows(&table);
    assert_eq!(rows.len(), 18, "{table}");
    for (label, v) in &rows {
        assert_eq!(v.len(), 5, "row {label:?} has {} values", v.len());
        assert!(v.iter().all(|x| x.is_finite()), "row {label:?}: {v:?}");
    }
    let row = |name: &str| &rows.iter().find(|(l, _)| l.starts_with(name)).unwrap().1;
    // Stated bound: at --quick settings (M = 1000, n_c = 5, 8 × 600 steps) the bridge closure's
    // climate pdf of z is within Hellinger 0.1 and W1 0.5 of the reference (the independent
    // full-model run, i.e. sampling noise alone, gives about 0.045 and 0.15).
    let (h, w1) = (row("pdf of z: Hellinger")[2], row("pdf of z: W1")[2]);
    assert!(h < 0.1, "sbridge Hellinger {h}");
    assert!(w1 < 0.5, "sbridge W1 {w1}");
    assert_eq!(row("trajectories blown up")[2], 0.0);
    // std of z within 10 % of the full model's for every closure.
    let sd = row("std of z");
    for c in 1..5 {
        assert!((sd[c] / sd[0] - 1.0).abs() < 0.1, "std of z {sd:?}");
    }

    let svg = fs::read_to_string(out.join("figure.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<clipPath").count(), 3, "three panels");
    for label in ["sbridge closure", "cubic + AR(1)", "full model (reference)"] {
        assert!(svg.contains(label), "legend lacks {label}");
    }
    assert!(svg.matches("<polyline").count() >= 15);
    let json = fs::read_to_string(out.join("metrics.json")).unwrap();
    for key in [
        "\"sbridge\"",
        "\"cubic_ar1\"",
        "\"hellinger\"",
        "\"timings_s\"",
    ] {
        assert!(json.contains(key), "metrics.json lacks {key}");
    }
    assert!(!json.contains("NaN") && !json.contains("inf"));
    let files = listing(&out);
    assert_eq!(files, ["figure.svg", "metrics.json", "table.txt"]);
}

#[test]
fn demo_results_do_not_depend_on_threads() {
    let dir = tempfile::tempdir().unwrap();
    let small = [
        "--quick",
        "--quiet",
        "--m",
        "400",
        "--train-trajectories",
        "4",
        "--trajectories",
        "4",
        "--steps",
        "1800",
        "--memory",
    ];
    let mut tables = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("t{threads}"));
        let mut a = vec!["demo", "lorenz96", "--threads", threads, "--out", s(&out)];
        a.extend_from_slice(&small);
        ok(&a);
        let t = fs::read_to_string(out.join("table.txt")).unwrap();
        // Everything but the timings line must agree to the last digit.
        let body: String = t
            .lines()
            .filter(|l| !l.starts_with("timings"))
            .collect::<Vec<_>>()
            .join("\n");
        tables.push(body);
    }
    assert_eq!(tables[0], tables[1]);
    assert!(tables[0].contains("(z, psi_prev, psi)") || tables[0].contains("psi_prev"));
}
