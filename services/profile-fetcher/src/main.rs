//! The `profile-fetcher` binary; everything it does is in the library.

fn main() -> std::process::ExitCode {
    runtime::main(profile_fetcher::SERVICE, profile_fetcher::run)
}
