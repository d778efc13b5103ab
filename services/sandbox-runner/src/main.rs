//! The `sandbox-runner` binary; everything it does is in the library.

fn main() -> std::process::ExitCode {
    runtime::main(sandbox_runner::SERVICE, sandbox_runner::run)
}
