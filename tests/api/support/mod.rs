pub mod api;
pub mod app;
pub mod builder;
pub mod db;
pub mod nginx;
pub mod pg;
pub mod smtp;
pub mod wait;
