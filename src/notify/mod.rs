//! Notifications: telling people where they look (a generic webhook, Microsoft Teams, Slack,
//! e-mail) what the event log says — a discrepancy raised or resolved, a source failing or
//! recovering, a push or write-back failing.
//!
//! The event log is the outbox: events are committed with the reconciliation that caused
//! them, and each `[[notify]]` channel keeps a cursor in the store that only moves once the
//! receiver accepted a delivery. So nothing is lost across a kill, and a delivery repeated
//! after one carries the same id.
//!
//! # Layout
//! - [`filter`]: which events a channel is sent.
//! - [`message`]: what a delivery says, in each receiver's shape.
//! - [`send`]: sending one delivery over HTTP or SMTP, and what the answer means.
//! - [`state`]: a channel's delivery state and the retry backoff (pure).
//! - [`deliver`]: the loop that moves the cursors.

pub mod deliver;
pub mod filter;
pub mod message;
pub mod send;
pub mod state;

pub use deliver::{
    ChannelReport, Clock, Notifier, NotifyObserver, Outcome, SystemClock, TokioClock,
    TransportFactory,
};
pub use message::{Delivery, DeliveryKind, PAYLOAD_VERSION};
pub use send::{Answer, SendError, SetupError, Transport, transport};
pub use state::ChannelState;
