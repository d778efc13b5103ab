//! The `slack-gateway` binary; everything it does is in the library.

fn main() -> std::process::ExitCode {
    runtime::main(slack_gateway::SERVICE, slack_gateway::run)
}
