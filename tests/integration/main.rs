//! Integration tests: each starts the real service on port 0 with a temporary store and speaks
//! HTTP to it as a client would (or runs the binary, for the CLI).

mod abuse;
mod backend;
mod cli;
mod clients;
mod common;
mod conformance;
mod durability;
mod ephemeral;
mod golden;
mod hostile;
mod interrupted_purge;
mod keystone;
mod mirror;
mod mirror_faults;
mod openapi;
mod ops;
mod policy;
mod postgres;
mod reads;
mod real_keystone;
mod recorded;
mod servers;
mod servers_golden;
mod testing_api;
mod ui;
mod webdriver;
mod writes;
