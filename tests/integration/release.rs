//! What the release binary is linked with stays in step with the build.

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

/// `build/symbol-order.txt` lays out the release `pond` binary (see
/// `build.rs`). It names functions by their mangled names, whose hashes
/// follow Cargo.lock and the compiler: a list written for another lock
/// file or toolchain matches almost nothing, and the binary's peak memory
/// triples without any error. Rerun `build/symbol-order.sh` when this fails.
#[test]
fn the_symbol_order_was_written_for_this_lock_file_and_compiler() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let order = std::fs::read_to_string(root.join("build/symbol-order.txt")).unwrap();
    let lock = std::fs::read(root.join("Cargo.lock")).unwrap();
    let rustc = Command::new("rustc").arg("-V").output().unwrap();
    assert!(rustc.status.success(), "rustc -V failed");
    let expected = [
        format!("# Cargo.lock sha256 {:x}", Sha256::digest(&lock)),
        format!("# {}", String::from_utf8(rustc.stdout).unwrap().trim()),
    ];
    for line in &expected {
        assert!(
            order.lines().any(|l| l == line),
            "build/symbol-order.txt lacks `{line}`: it was written for another \
             Cargo.lock or compiler; run `bash build/symbol-order.sh`"
        );
    }
    // A profile of pond's commands, not an empty or foreign list.
    let names: Vec<&str> = order.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(names.len() > 5_000, "{} names", names.len());
    assert!(names.iter().any(|n| n.starts_with("_ZN4pond3cli")));
}
