//! Integration tests: one binary, one module per flow. Every test starts its own real
//! `nats-server` (JetStream, free port, own store) through `test-support`.

#![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]

mod alert_path;
mod alert_watcher;
mod asks;
mod bus_connect;
mod bus_contract;
mod bus_faults;
mod bus_permissions;
mod changes;
mod compose;
mod diagnosis;
mod escaping;
mod home;
mod profile_command;
mod profile_fetcher;
mod remediation_poster;
mod sandbox;
mod server_auth;
mod services;
mod slack_edge;
mod slack_gateway;
mod support;
mod tidy;
mod traces_commands;
