//! End-to-end tests: the server in-process on 127.0.0.1:0, real WebSocket and HTTP clients.
//! Every wait is for an event, bounded by a generous timeout that only guards against hangs.

mod auth;
mod bad_input;
mod cluster;
mod cluster_faults;
mod convergence;
mod crash;
mod durability;
mod editing;
mod frames;
mod history;
mod http;
mod limits;
mod liveness;
mod logs;
mod metrics;
mod reconnect;
mod support;
mod web;
