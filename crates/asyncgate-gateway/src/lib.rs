//! The data plane: accepts WebSocket clients on an environment's listeners, admits them
//! against the current snapshot, dials the backend and relays frames.
//!
//! `listener` accepts connections (within the bounds of `intake`), `handshake` holds every rejection before the upgrade,
//! `route` and `auth` are the checks it makes (`forwarded` the headers it sets), `upstream` dials the backend and `pump`
//! carries frames after the upgrade, reading them with `direction` (`frame` is the wire
//! format, `utf8` the text check). The gateway never reads the store: it follows a
//! stream of [`asyncgate_core::Snapshot`]s (`snapshot`).
//!
//! What operators see: `live` and `connection` (each live connection, its counts and
//! commands), `metrics` (Prometheus) and `access_log` (a line per connection).

pub mod access_log;
pub mod auth;
pub mod connection;
pub mod deflate;
pub mod direction;
pub mod error;
pub mod forwarded;
pub mod frame;
pub mod handshake;
pub mod intake;
pub mod listener;
pub mod live;
pub mod meter;
pub mod metrics;
pub mod pump;
pub mod request;
pub mod route;
pub mod shared_counters;
pub mod snapshot;
pub mod tls;
pub mod upstream;
pub mod utf8;
pub mod validate;
pub mod workers;

pub use error::{Fault, GatewayError};
pub use listener::{Gateway, GatewayConfig};
pub use snapshot::SnapshotHandle;
