//! The `alert-watcher` binary; everything it does is in the library.

fn main() -> std::process::ExitCode {
    runtime::main(alert_watcher::SERVICE, alert_watcher::run)
}
