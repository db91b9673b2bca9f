//! What the management API asks of the data plane: its live connections (listed, closed,
//! sent a message) and its metrics. The process that runs both planes implements it over
//! its gateway; the management API never reaches into the gateway otherwise.

use crate::connections::ConnectionView;

/// Why a command did not reach a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandRefused {
    /// No live connection to the API with that id.
    NotFound,
    /// The connection has too many commands waiting.
    Busy,
    /// The connection is closing.
    Closing,
}

/// What one message sent to a client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub text: bool,
    pub payload: Vec<u8>,
}

pub trait DataPlane: Send + Sync + 'static {
    /// Live connections to the API `api_id`, in `environment` or all, oldest first.
    fn connections(&self, api_id: &str, environment: Option<&str>) -> Vec<ConnectionView>;
    /// Close one with `code` and `reason` (the backend is told 1001).
    fn close(&self, api_id: &str, id: &str, code: u16, reason: &str) -> Result<(), CommandRefused>;
    /// Send its client one message.
    fn send(&self, api_id: &str, id: &str, message: Outbound) -> Result<(), CommandRefused>;
    /// Every metric, in the Prometheus text format.
    fn metrics(&self) -> String;
}
