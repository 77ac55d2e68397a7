//! The sampler on a Cortex-M4F, checked against the host bit for bit: builds the firmware in
//! `firmware/` (thumbv7em-none-eabihf), runs it under QEMU's `mps2-an386`, and compares every
//! result it prints — closure calls on the model image it embeds, the weights of a fit on the
//! device, chains from that fit — with the same code (`firmware/src/demo.rs`, compiled into this
//! test) run on the host's build of the library. The first line holds the image's checksum, so
//! the two sides ran the same image (`firmware/src/training.rs` writes it on both).
//!
//! It also checks, on the firmware's ELF, that the fused passes (the per-kernel-evaluation code)
//! call no double-precision soft-float routine (`__aeabi_d*`, `__aeabi_f2d`), and that the
//! flash and RAM figures the firmware prints agree with `llvm-size`.
//!
//! Tools: `qemu-system-arm` (`apt-get install qemu-system-arm`), the `thumbv7em-none-eabihf`
//! target and the `llvm-tools` component (`rustup target add`, `rustup component add`);
//! `.ci/test-all` installs them. A missing one fails the test.
#![cfg(feature = "std")]

#[path = "../firmware/src/demo.rs"]
mod demo;
#[path = "../firmware/src/training.rs"]
mod training;

#[path = "common/tools.rs"]
mod tools;
use tools::*;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

/// What the host prints for the demo (the lines the firmware must reproduce).
fn host_printout() -> String {
    let image = Aligned::new(&training::closure_image());
    let mut closure = Box::new(demo::DeviceClosure::new());
    let mut bridge = Box::new(demo::DeviceBridge::new());
    let mut out = String::new();
    demo::run(image.bytes(), &mut closure, &mut bridge, &mut out)
        .unwrap_or_else(|e| panic!("the demo failed on the host: {e}"));
    out
}

/// Builds the firmware (its own workspace and target directory) and returns the ELF's path.
fn build_firmware() -> PathBuf {
    let dir = root().join("firmware");
    let mut cmd = Command::new(cargo_cmd());
    cmd.current_dir(&dir)
        .args(["build", "--release", "--locked"]);
    // The outer `cargo test` exports its own settings; the firmware's come from its own
    // .cargo/config.toml.
    for var in ["RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR"] {
        cmd.env_remove(var);
    }
    run_ok(&mut cmd);
    dir.join("target/thumbv7em-none-eabihf/release/sbridge-firmware")
}

/// A tool of the `llvm-tools` component (in the toolchain's sysroot).
fn llvm_tool(name: &str) -> PathBuf {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let text =
        |args: &[&str]| String::from_utf8(run_ok(Command::new(&rustc).args(args)).stdout).unwrap();
    let sysroot = text(&["--print", "sysroot"]).trim().to_string();
    let host = text(&["-vV"])
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV prints the host");
    let path = PathBuf::from(sysroot).join(format!("lib/rustlib/{host}/bin/{name}"));
    assert!(
        path.exists(),
        "{} is missing: run `rustup component add llvm-tools` (.ci/test-all does)",
        path.display()
    );
    path
}

/// Runs the ELF under QEMU (`-icount shift=0`, as the firmware's cargo runner) and returns what
/// it printed; the run must exit with status 0.
fn run_on_qemu(elf: &PathBuf) -> String {
    require("qemu-system-arm");
    let out = run_ok(
        Command::new("timeout")
            .arg("600")
            .arg("qemu-system-arm")
            .args(["-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .args(["-icount", "shift=0", "-kernel"])
            .arg(elf),
    );
    String::from_utf8(out.stdout).expect("the firmware prints UTF-8")
}

#[test]
fn firmware_on_a_cortex_m4f_prints_the_hosts_bits_and_its_hot_path_has_no_f64() {
    let elf = build_firmware();
    let device = run_on_qemu(&elf);
    let host = host_printout();
    let results: String = device
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let measured: Vec<&str> = device.lines().filter(|l| l.starts_with('#')).collect();
    eprintln!("{}", measured.join("\n"));
    assert!(
        host.lines().count() > 40 && host.contains("log_v[248..]"),
        "the host printout is incomplete:\n{host}"
    );
    if results != host {
        let first = results
            .lines()
            .zip(host.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(results.lines().count().min(host.lines().count()));
        panic!(
            "the Cortex-M4F and the host differ from line {}:\n--- device\n{results}\n--- host\n{host}",
            first + 1
        );
    }

    // The fused passes call no double-precision routine, directly or through what they call
    // (panic paths, which never run on valid input, aside).
    let dis = run_ok(
        Command::new(llvm_tool("llvm-objdump"))
            .args(["-d", "--no-show-raw-insn", "-C"])
            .arg(&elf),
    );
    let dis = String::from_utf8_lossy(&dis.stdout);
    let calls = call_graph(&dis);
    let is_hot = |f: &str| f.contains("sbridge::fused::") || f.contains("sbridge..fused..");
    let roots: Vec<&String> = calls.keys().filter(|f| is_hot(f)).collect();
    assert!(
        roots.len() >= 4,
        "expected the fused passes in the ELF, found {roots:?}"
    );
    let cold = |f: &str| {
        f.contains("panicking") || f.contains("rust_begin_unwind") || f.contains("index_fail")
    };
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = roots.iter().map(|s| s.to_string()).collect();
    while let Some(f) = stack.pop() {
        if cold(&f) || !seen.insert(f.clone()) {
            continue;
        }
        stack.extend(calls.get(&f).into_iter().flatten().cloned());
    }
    assert!(
        seen.iter()
            .any(|f| f.contains("memclr") || f.contains("memcpy")),
        "the call graph found no call out of the fused passes (they clear and copy buffers): \
         the disassembly was not parsed"
    );
    let f64_routines: Vec<&String> = seen
        .iter()
        .filter(|f| f.starts_with("__aeabi_d") || f.contains("__aeabi_f2d") || f.contains("df3"))
        .collect();
    assert!(
        f64_routines.is_empty(),
        "the f32 fused passes reach double-precision routines: {f64_routines:?}"
    );
    assert!(
        !dis.contains("<f64 as sbridge::fused::FusedPass>")
            && !dis.contains("$LT$f64$u20$as$u20$sbridge..fused..FusedPass"),
        "the f32 firmware carries f64 fused passes"
    );
    eprintln!(
        "fused passes and what they call: {}",
        seen.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Flash and RAM as `llvm-size` (Berkeley format) counts them, against the firmware's own.
    let size = run_ok(Command::new(llvm_tool("llvm-size")).arg(&elf));
    let size = String::from_utf8_lossy(&size.stdout).to_string();
    eprintln!("llvm-size:\n{size}");
    let fields: Vec<usize> = size
        .lines()
        .nth(1)
        .expect("llvm-size prints a row")
        .split_whitespace()
        .take(3)
        .map(|v| v.parse().expect("a size"))
        .collect();
    let (text, data, bss) = (fields[0], fields[1], fields[2]);
    let printed = measured
        .iter()
        .find(|l| l.starts_with("# flash"))
        .expect("the firmware prints its sizes");
    let number_after = |key: &str| -> usize {
        let rest = &printed[printed.find(key).expect(key) + key.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    assert_eq!(number_after("# flash "), text + data, "{printed}");
    assert_eq!(number_after("RAM "), data + bss, "{printed}");
}

/// Function → the functions it branches to (`bl`, `blx`, and `b` to another symbol), from
/// `llvm-objdump -d` output. Mapping symbols (`$t`, `$d`) are not functions.
fn call_graph(dis: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut calls: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in dis.lines() {
        let t = line.trim();
        if let Some(name) = t
            .strip_suffix(">:")
            .and_then(|h| h.split_once(" <").map(|x| x.1))
        {
            if !name.starts_with('$') {
                current = Some(name.to_string());
                calls.entry(name.to_string()).or_default();
            }
            continue;
        }
        let Some(cur) = &current else { continue };
        let mut words = t.split('\t').skip(1);
        let (Some(op), Some(arg)) = (words.next(), words.next()) else {
            continue;
        };
        if !matches!(op.trim(), "bl" | "blx" | "b" | "b.w") {
            continue;
        }
        // `bl 0x9023e <name>  @ imm = #...`: the name between the angle brackets.
        if let Some(target) = arg
            .split_once('<')
            .and_then(|(_, r)| r.split_once('>'))
            .map(|(name, _)| name)
            .filter(|t| !t.contains('+') && !t.starts_with('$') && t != cur)
        {
            calls.get_mut(cur).unwrap().insert(target.to_string());
        }
    }
    calls
}
