//! The sampler on a Cortex-M4F (QEMU's `mps2-an386`): runs [`demo::run`] — f32 closure calls on a
//! model image embedded in flash, a fit on the device and chains from it — and prints its results
//! through semihosting, then what it measured (lines starting with `#`): the memory the program
//! occupies, the stack's high-water mark, and instruction counts per kernel evaluation. Exits
//! through semihosting with status 0 on success, 1 on any error.
//!
//! Run it with `cargo run --release` in this folder (the runner in `.cargo/config.toml` starts
//! `qemu-system-arm`).

#![no_std]
#![no_main]

mod demo;

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hio};
use demo::{DeviceBridge, DeviceClosure, CLOSURE_K, SEED};
use sbridge::{ClosureConfig, ModelView, Rng};

/// Semihosting standard output as a `fmt::Write`.
struct Out(hio::HostStream);

impl Write for Out {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_all(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// Exits QEMU with a failure status.
fn fail() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::nop();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if let Ok(stream) = hio::hstderr() {
        let _ = writeln!(Out(stream), "panic: {info}");
    }
    fail()
}

#[entry]
fn main() -> ! {
    // cortex-m-rt turns these into `&'static mut` (they live in .bss, not on the stack).
    static mut CLOSURE: DeviceClosure = DeviceClosure::new();
    static mut BRIDGE: DeviceBridge = DeviceBridge::new();

    let Ok(stream) = hio::hstdout() else { fail() };
    let mut out = Out(stream);
    let image = sbridge::include_model!(concat!(env!("OUT_DIR"), "/closure-model.sbm"));

    stack::paint();
    let result = demo::run(image, CLOSURE, BRIDGE, &mut out);
    let high_water = stack::high_water();
    if let Err(e) = result {
        let _ = writeln!(out, "error: {e}");
        fail();
    }
    if report(&mut out, image, CLOSURE, high_water).is_err() {
        fail();
    }
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::nop();
    }
}

/// The `#` lines: sizes, stack, instruction counts.
fn report(
    out: &mut Out,
    image: &[u8],
    closure: &mut DeviceClosure,
    stack_bytes: usize,
) -> Result<(), demo::DemoError> {
    let sizes = memory::sizes();
    writeln!(
        out,
        "# flash {} bytes (code {}, read-only data {} with the {}-byte model image, data {}); \
         RAM {} bytes of statics (data {}, bss {}); stack high-water {} bytes",
        sizes.flash,
        sizes.text,
        sizes.rodata,
        image.len(),
        sizes.data,
        sizes.data + sizes.bss,
        sizes.data,
        sizes.bss,
        stack_bytes
    )?;

    let mut clock = Clock::start();
    let (per_tick, loop_ticks) = clock.instructions_per_tick();
    writeln!(
        out,
        "# SysTick: {per_tick:.3} instructions per tick (a loop of 2 000 000 instructions took \
         {loop_ticks} ticks)"
    )?;

    // Instructions per kernel evaluation of a closure sweep: the difference between calls of
    // 40 and 10 sweeps over one column, divided by the 30 sweeps' K heads x M samples.
    let model = ModelView::<f32>::open(image)?;
    let z_coords: [usize; CLOSURE_K] = core::array::from_fn(|c| c);
    let mut z = [0.0f32; CLOSURE_K];
    demo::sample_z(&model, 0, &mut z);
    let mut ticks = [0u64; 2];
    for (t, sweeps) in ticks.iter_mut().zip([10usize, 40]) {
        let cfg = ClosureConfig {
            sweeps,
            ..ClosureConfig::default()
        };
        let mut psi = [0.0f32; CLOSURE_K];
        let mut rng = Rng::new(SEED, 1000);
        let t0 = clock.now();
        closure.closure(&model, &cfg, &z_coords, &z, &mut psi, &mut rng)?;
        *t = clock.now() - t0;
    }
    let evals = (30 * model.n_heads() * model.m()) as f64;
    let per_eval = (ticks[1] - ticks[0]) as f64 * per_tick / evals;
    let call = ticks[0] as f64 * per_tick / 10.0;
    writeln!(
        out,
        "# closure sweep (f32, d_alpha = 6, M = {}, {} heads): {per_eval:.1} instructions per \
         kernel evaluation; {call:.0} instructions per sweep",
        model.m(),
        model.n_heads()
    )?;
    Ok(())
}

/// SysTick wraps counted by its exception handler (the counter has 24 bits).
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// A tick counter on SysTick at the processor clock. Under QEMU's `-icount shift=0` virtual
/// time advances one nanosecond per instruction, so ticks measure instructions executed.
struct Clock {
    /// Owned so that nothing else reconfigures the timer.
    _syst: SYST,
}

const RELOAD: u32 = 0x00FF_FFFF;

impl Clock {
    fn start() -> Self {
        let Some(p) = cortex_m::Peripherals::take() else {
            fail()
        };
        let mut syst = p.SYST;
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        // The cleared counter reads 0 until its first tick loads RELOAD: wait for it, so that
        // `now` never counts that load as a wrap.
        while SYST::get_current() == 0 {}
        Clock { _syst: syst }
    }

    /// Ticks since the start.
    fn now(&mut self) -> u64 {
        loop {
            let w = WRAPS.load(Ordering::Relaxed);
            let current = SYST::get_current();
            if WRAPS.load(Ordering::Relaxed) == w {
                return (w as u64) * (RELOAD as u64 + 1) + (RELOAD - current) as u64;
            }
        }
    }

    /// Instructions per tick, from a loop of a known instruction count, and the ticks it took.
    fn instructions_per_tick(&mut self) -> (f64, u64) {
        const ITERATIONS: u32 = 1_000_000;
        let t0 = self.now();
        counted_loop(ITERATIONS);
        let ticks = self.now() - t0;
        // Two instructions per iteration (subs, bne); the calls around it are noise.
        (2.0 * ITERATIONS as f64 / ticks as f64, ticks)
    }
}

/// `2 n` instructions: `subs` and `bne`, `n` times.
#[inline(never)]
fn counted_loop(n: u32) {
    // SAFETY: the block only decrements its own input register until zero; it touches no
    // memory and no other register than the one named (and the flags, which it declares
    // clobbered by default).
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, #1",
            "bne 2b",
            n = inout(reg) n => _,
            options(nomem, nostack),
        );
    }
}

/// Sizes from cortex-m-rt's linker symbols (what `size` would report for the ELF's sections).
mod memory {
    extern "C" {
        static __stext: u8;
        static __etext: u8;
        static __srodata: u8;
        static __erodata: u8;
        static __sdata: u8;
        static __edata: u8;
        static __sbss: u8;
        static __ebss: u8;
    }

    /// Bytes of each part.
    pub struct Sizes {
        pub flash: usize,
        pub text: usize,
        pub rodata: usize,
        pub data: usize,
        pub bss: usize,
    }

    /// The address of a linker symbol.
    macro_rules! at {
        ($s:ident) => {
            core::ptr::addr_of!($s) as usize
        };
    }

    pub fn sizes() -> Sizes {
        // Only the symbols' addresses are taken (safe for extern statics); nothing is read.
        let (text, rodata, data, bss) = (
            at!(__etext) - at!(__stext),
            at!(__erodata) - at!(__srodata),
            at!(__edata) - at!(__sdata),
            at!(__ebss) - at!(__sbss),
        );
        // The vector table (before .text) and .data's initial values are in flash too.
        let vectors = at!(__stext);
        Sizes {
            flash: vectors + text + rodata + data,
            text,
            rodata,
            data,
            bss,
        }
    }
}

/// Stack high-water mark: the free stack is painted with a pattern before the work and scanned
/// for the deepest overwritten word after it.
mod stack {
    const PATTERN: u32 = 0x5B5B_5B5B;

    extern "C" {
        /// End of the statics (cortex-m-rt): the stack may grow down to here.
        static __sheap: u32;
        /// Top of the stack (cortex-m-rt: end of RAM).
        static _stack_start: u32;
    }

    /// The address of a linker symbol (nothing is read).
    fn bottom() -> usize {
        core::ptr::addr_of!(__sheap) as usize
    }

    fn top() -> usize {
        core::ptr::addr_of!(_stack_start) as usize
    }

    /// Fills the free stack below this function's frame (minus a margin) with the pattern.
    #[inline(never)]
    pub fn paint() {
        let sp = cortex_m::register::msp::read() as usize;
        let end = sp - 256;
        let mut p = (bottom() + 3) & !3;
        while p < end {
            // SAFETY: `p` is word-aligned and lies between the end of the statics and 256 bytes
            // below the current stack pointer: memory no Rust object occupies now.
            unsafe { core::ptr::write_volatile(p as *mut u32, PATTERN) };
            p += 4;
        }
    }

    /// Bytes between the top of the stack and the deepest word that is no longer the pattern.
    #[inline(never)]
    pub fn high_water() -> usize {
        let mut p = (bottom() + 3) & !3;
        // SAFETY: reads words of the region `paint` wrote, below the live stack; a word the
        // stack overwrote meanwhile is read as a plain value.
        while p < top() && unsafe { core::ptr::read_volatile(p as *const u32) } == PATTERN {
            p += 4;
        }
        top() - p
    }
}
