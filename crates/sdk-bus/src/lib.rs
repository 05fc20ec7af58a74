#![doc = include_str!("../README.md")]
mod bus;
mod error;
mod subject;

pub use bus::{Bus, BusConfig, Message, Subscription};
pub use error::BusError;
pub use subject::{Subject, SubjectError, TenantId, Token};
