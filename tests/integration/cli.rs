//! The `pond` binary against temporary ponds: stdout, stderr and exit codes.

use std::process::{Command, Output};

fn pond(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pond"))
        .args(args)
        .env_remove("POND")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_then_init_again_fails_with_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("p");
    let at = at.to_str().unwrap();
    let out = pond(&["--pond", at, "init"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "stdout holds only results");

    let out = pond(&["--pond", at, "init"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("already exists"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn missing_pond_and_usage_errors_have_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = pond(&["--pond", dir.path().join("none").to_str().unwrap(), "ls"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not a pond"),
        "{}",
        text(&out.stderr)
    );

    let out = pond(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn demo_builds_a_pond_that_ls_and_check_read() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("demo");
    let at = at.to_str().unwrap();
    let out = pond(&["demo", at, "--hours", "12"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("/sites/site2/temperature"), "{stdout}");
    // Every series has 12 hourly versions plus one late delivery.
    assert!(stdout.contains("opened 1 of 13 versions"), "{stdout}");
    assert!(stdout.contains("opened 13 of 13 versions"), "{stdout}");

    let out = pond(&["--pond", at, "ls", "/sites/site1"]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    assert_eq!(
        listing.lines().count(),
        3,
        "header and two series: {listing}"
    );
    assert!(listing.contains("\"sites/site1\".humidity"), "{listing}");

    let out = pond(&["--pond", at, "check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("checked 78 data files"),
        "{}",
        text(&out.stdout)
    );

    // Running the demo again reuses the pond.
    let out = pond(&["demo", at, "--hours", "12"]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("using the demo pond already"));
}
