//! Webhooks: the events an organization's servers are told of, signed
//! and delivered to the endpoints it registers.
//!
//! - [`event_types`]: the names of the events and which an endpoint takes
//!   when it names none;
//! - [`events`]: the events made from the API's resources (their `data`
//!   is the resource in the API's JSON mapping);
//! - [`signature`]: endpoint secrets and the Standard Webhooks 1.0
//!   signature;
//! - [`target`]: which addresses a delivery may reach (the operator's
//!   policy, as for pulled sources) and the HTTP client that keeps to it;
//! - [`sink`]: events that report no change of the registry's, queued
//!   off the media path, and only when an endpoint takes them;
//! - [`delivery`]: the task that takes due messages from the registry's
//!   outbox ([`crate::registry::webhooks`]), posts them and records each
//!   attempt, with retries and the disabling of failing endpoints.

pub mod delivery;
pub mod event_types;
pub mod events;
pub mod signature;
pub mod sink;
pub mod target;
