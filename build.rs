//! Links the `pond` binary as a position-dependent executable on Linux.
//!
//! A position-independent one makes the dynamic loader apply about 7 MB of
//! relocations to the 167 MB binary before `main` (reading them, and
//! writing 5 MB of vtables and function tables), on every start of every
//! command. Measured with `pond sql` on one query of the devops benchmark
//! (15 processes each, release build): 42 ms and 99 MB peak as a PIE,
//! 39 ms and 95 MB with packed relative relocations (`-z
//! pack-relative-relocs`, which needs binutils 2.38 and glibc 2.36), 35 ms
//! and 95 MB without PIE. The cost is that the binary's own code loads at a
//! fixed address (shared libraries, the stack and the heap are still
//! randomized), as Go's binaries do by default.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // glibc targets only: musl's toolchains link static-pie themselves.
    let os = std::env::var("CARGO_CFG_TARGET_OS");
    let env = std::env::var("CARGO_CFG_TARGET_ENV");
    if os.as_deref() == Ok("linux") && env.as_deref() == Ok("gnu") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
