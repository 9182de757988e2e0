#![allow(dead_code)]
pub mod app;
pub mod fastdb;
pub mod nginx;
pub mod pg;
pub mod smtp;
