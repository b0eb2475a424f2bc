//! placeholder

pub mod aws;
