//! The `remediation-poster` binary; everything it does is in the library.

fn main() -> std::process::ExitCode {
    runtime::main(remediation_poster::SERVICE, remediation_poster::run)
}
