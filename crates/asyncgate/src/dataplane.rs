//! The management API's view of this process's gateway: its live connections as the
//! REST API shows them, commands handed to them, and its metrics.

use asyncgate_control::connections::ConnectionView;
use asyncgate_control::dataplane::{CommandRefused, DataPlane, Outbound};
use asyncgate_gateway::connection::{Command, Connection, Refused, DOWN, UP};
use asyncgate_gateway::Gateway;
use std::sync::Arc;

pub struct GatewayPlane(pub Gateway);

fn view(environment: String, c: &Connection) -> ConnectionView {
    let counts = c.counts();
    ConnectionView {
        id: c.id_text(),
        environment,
        listener: c.listener.as_str().to_string(),
        peer: c.peer.to_string(),
        path: c.path().to_string(),
        request_id: c.request_id().to_string(),
        application: c.application().map(str::to_string),
        caller: c.caller().to_string(),
        credential: c.credential_kind.to_string(),
        revision: c.revision,
        compression: c.compression().to_string(),
        started: time::OffsetDateTime::from(c.started)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        messages_in: counts[UP].messages,
        messages_out: counts[DOWN].messages,
        bytes_in: counts[UP].bytes,
        bytes_out: counts[DOWN].bytes,
        node: None,
    }
}

impl GatewayPlane {
    fn command(&self, api_id: &str, id: &str, command: Command) -> Result<(), CommandRefused> {
        let connection: Option<Arc<Connection>> = u64::from_str_radix(id, 16)
            .ok()
            .filter(|_| id.len() == 16)
            .and_then(|id| self.0.live().connection(api_id, id));
        let connection = connection.ok_or(CommandRefused::NotFound)?;
        connection.command(command).map_err(|r| match r {
            Refused::Busy => CommandRefused::Busy,
            Refused::Closing => CommandRefused::Closing,
        })
    }
}

impl DataPlane for GatewayPlane {
    fn connections(&self, api_id: &str, environment: Option<&str>) -> Vec<ConnectionView> {
        self.0
            .live()
            .connections(environment, api_id)
            .into_iter()
            .map(|(env, c)| view(env, &c))
            .collect()
    }

    fn close(&self, api_id: &str, id: &str, code: u16, reason: &str) -> Result<(), CommandRefused> {
        self.command(
            api_id,
            id,
            Command::Close {
                code,
                reason: reason.to_string(),
            },
        )
    }

    fn send(&self, api_id: &str, id: &str, message: Outbound) -> Result<(), CommandRefused> {
        self.command(
            api_id,
            id,
            Command::Send {
                text: message.text,
                payload: message.payload,
            },
        )
    }

    fn metrics(&self) -> String {
        self.0.metrics().encode()
    }
}
