//! NATS messaging for the agent SDK.
//!
//! Subjects are tenant-first (`sdk.<tenant>.<component>.<action>...`) and are checked
//! once, when they are built, by the [`TenantId`], [`Token`] and [`Subject`] types.
//!
//! ```
//! use sdk_bus::{Subject, TenantId};
//! let tenant = TenantId::new("acme")?;
//! let inbox = Subject::agent_inbox(&tenant, "planner")?;
//! assert_eq!(inbox.as_str(), "sdk.acme.agent.planner.inbox");
//! assert!(TenantId::new("Acme Corp").is_err());
//! # Ok::<(), sdk_bus::SubjectError>(())
//! ```

mod bus;
mod error;
mod subject;

pub use bus::{Bus, BusConfig, Message, Subscription};
pub use error::BusError;
pub use subject::{Subject, SubjectError, TenantId, Token};
