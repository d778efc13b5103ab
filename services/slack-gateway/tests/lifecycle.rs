//! The real `slack-gateway` binary: it starts, becomes ready against a real nats-server, stops on
//! SIGTERM, refuses a bad configuration naming the key, and its example config documents the
//! defaults.

test_support::service_binary_tests!(slack_gateway, "slack-gateway");
