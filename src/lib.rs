//! authmail: email verification codes and the account flows built on them,
//! with a durable SMTP outbox. The HTTP interface is described in docs/api.md.

pub mod accounts;
pub mod api;
pub mod app;
pub mod challenge;
pub mod cli;
pub mod client_ip;
pub mod clock;
pub mod codes;
pub mod config;
pub mod doctor;
pub mod domain;
pub mod error;
pub mod http_server;
pub mod jwt;
pub mod keys;
pub mod limits;
pub mod mail;
pub mod messages;
pub mod metrics;
pub mod ops;
pub mod pages;
pub mod routes;
pub mod state;
pub mod storage;
pub mod webhooks;
