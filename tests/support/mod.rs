#![allow(dead_code)]
pub mod app;
pub mod nginx;
pub mod smtp;
