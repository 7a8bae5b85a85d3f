//! Links the release `pond` binary for a cheap start: position-dependent,
//! and with the functions a command runs laid out together.
//!
//! **No PIE (Linux, glibc).** A position-independent binary makes the
//! dynamic loader apply about 7 MB of relocations to the 167 MB binary
//! before `main` (reading them, and writing 5 MB of vtables and function
//! tables), on every start of every command. Measured with `pond sql` on
//! one query of the devops benchmark (15 processes each, release build):
//! 42 ms and 99 MB peak as a PIE, 39 ms and 95 MB with packed relative
//! relocations (`-z pack-relative-relocs`, which needs binutils 2.38 and
//! glibc 2.36), 35 ms and 95 MB without PIE. The cost is that the binary's
//! own code loads at a fixed address (shared libraries, the stack and the
//! heap are still randomized), as Go's binaries do by default.
//!
//! **Symbol order (x86-64 Linux, release).** The kernel maps a binary's code
//! in 64 KB windows around each page a process touches, so a process's
//! memory holds every window in which a function it ran lies. The 11 MB of
//! functions a `pond sql` query runs are spread over 126 MB of code, and
//! their windows made up 69 of the 87 MB that process held. The linker
//! (rust-lld, the toolchain's default here) places the functions listed in
//! `build/symbol-order.txt` first and together, in that order: the same
//! process then holds 20 MB of code and 37 MB in all, and takes a tenth
//! less time. The list is written by `build/symbol-order.sh` from a profile
//! of every command; the hashes in the names follow Cargo.lock and the
//! toolchain, and a test fails when either has changed since. A name the
//! binary lacks is skipped, so a stale list costs memory, never
//! correctness. `POND_SYMBOL_ORDER=off` leaves it out, for a linker without
//! `--symbol-ordering-file` (GNU ld, gold).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    // glibc targets only: musl's toolchains link static-pie themselves.
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-no-pie");

    let order = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("build/symbol-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=POND_SYMBOL_ORDER");
    if var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("PROFILE") == "release"
        && var("POND_SYMBOL_ORDER") != "off"
        && order.exists()
    {
        println!(
            "cargo:rustc-link-arg-bin=pond=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bin=pond=-Wl,--no-warn-symbol-ordering");
    }
}
