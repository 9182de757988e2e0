#![allow(dead_code)]
pub mod app;
pub mod nginx;
pub mod pg;
pub mod smtp;
