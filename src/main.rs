//! The `pond` command line: see `pond --help` and [`pond::cli`].

fn main() -> std::process::ExitCode {
    pond::cli::main()
}
