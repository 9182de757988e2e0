//! The integration tests: one binary, one module per subject. Most tests build
//! the app in this process through `support::TestApp`; those whose subject is
//! the process start the real `authmail` binary (`.process()`). `support` also
//! holds the SMTP servers, PostgreSQL clusters and nginx the tests run against.

mod support;

mod abuse;
mod attacks;
mod browser;
mod challenge;
mod challenge_ocr;
mod challenge_pages;
mod cli;
mod codes;
mod cors;
mod delivery;
mod deploy;
mod doctor;
mod durability;
mod example;
mod fencing;
mod flows;
mod hardening;
mod input;
mod jwt;
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
mod return_to;
mod sessions;
mod smtp_faults;
mod smtp_sink;
mod sqlite_faults;
mod timing;
mod unreadable;
mod webhooks;
