//! The integration tests: one binary, one module per subject. Most tests start
//! the real `authmail` binary through `support::TestApp`; `support` also holds
//! the SMTP servers, PostgreSQL clusters and nginx the tests run against.

mod support;

mod attacks;
mod browser;
mod cli;
mod codes;
mod delivery;
mod deploy;
mod doctor;
mod durability;
mod fencing;
mod flows;
mod hardening;
mod input;
mod leaks;
mod limits;
mod multi;
mod openapi;
mod operate;
mod oracle;
mod pages;
mod passwords;
mod pg_faults;
mod properties;
mod retention;
mod smtp_faults;
mod smtp_sink;
mod sqlite_faults;
mod timing;
mod webhooks;
