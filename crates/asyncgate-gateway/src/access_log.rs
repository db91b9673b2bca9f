//! The access log: one line per connection when it ends (a refused handshake included),
//! as JSON or as `key=value` text, written by a thread of its own so that a slow disk
//! never holds up a connection. Lines the writer cannot take (its queue is full) are
//! dropped and counted, never waited for.

use serde_json::{json, Value};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

/// Lines waiting for the writer, at most.
const QUEUE: usize = 16_384;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Json,
    Text,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "json" => Ok(Format::Json),
            "text" => Ok(Format::Text),
            other => Err(format!(
                "`{other}` is not an access-log format: json or text"
            )),
        }
    }
}

/// Where access-log lines go (`gateway.access_log` in the configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessLogConfig {
    pub format: Format,
    /// A file to append to; standard output when `None`.
    pub file: Option<PathBuf>,
    /// No access log at all.
    pub off: bool,
}

/// One connection, as its access-log line tells it.
#[derive(Debug, Clone, Default)]
pub struct Entry<'a> {
    pub request_id: &'a str,
    pub peer: Option<SocketAddr>,
    pub environment: &'a str,
    pub listener: &'a str,
    pub path: &'a str,
    pub api: Option<&'a str>,
    pub revision: Option<u32>,
    pub caller: Option<&'a str>,
    pub credential: Option<&'a str>,
    pub application: Option<&'a str>,
    /// What permessage-deflate came to (upgraded connections).
    pub compression: Option<&'a str>,
    /// 101 for a connection that was upgraded, else the status it was refused with.
    pub status: u16,
    /// The refusal's reason code.
    pub error: Option<&'a str>,
    /// When the connection was accepted (upgraded connections).
    pub started: Option<SystemTime>,
    pub duration: Duration,
    /// `[client to backend, backend to client]`: messages, then bytes.
    pub messages: [u64; 2],
    pub bytes: [u64; 2],
    pub close_code: Option<u16>,
    pub close_reason: Option<&'a str>,
    pub closed_by: Option<&'a str>,
}

impl Entry<'_> {
    fn fields(&self) -> Vec<(&'static str, Value)> {
        let rfc3339 = |t: SystemTime| {
            time::OffsetDateTime::from(t)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        let mut fields = vec![
            ("time", json!(rfc3339(SystemTime::now()))),
            ("request_id", json!(self.request_id)),
            ("peer", json!(self.peer.map(|p| p.to_string()))),
            ("environment", json!(self.environment)),
            ("listener", json!(self.listener)),
            ("path", json!(self.path)),
            ("api", json!(self.api)),
            ("revision", json!(self.revision)),
            ("caller", json!(self.caller)),
            ("credential", json!(self.credential)),
            ("application", json!(self.application)),
            ("status", json!(self.status)),
            ("duration_ms", json!(self.duration.as_millis() as u64)),
        ];
        if let Some(error) = self.error {
            fields.push(("error", json!(error)));
        }
        if self.status == 101 {
            fields.extend([
                ("started", json!(self.started.map(rfc3339))),
                ("compression", json!(self.compression)),
                ("messages_in", json!(self.messages[0])),
                ("messages_out", json!(self.messages[1])),
                ("bytes_in", json!(self.bytes[0])),
                ("bytes_out", json!(self.bytes[1])),
                ("close_code", json!(self.close_code)),
                ("close_reason", json!(self.close_reason)),
                ("closed_by", json!(self.closed_by)),
            ]);
        }
        fields
    }

    /// The line, without its newline.
    pub fn line(&self, format: Format) -> String {
        let fields = self.fields();
        match format {
            Format::Json => {
                Value::Object(fields.into_iter().map(|(k, v)| (k.into(), v)).collect()).to_string()
            }
            Format::Text => {
                let mut out = String::new();
                for (k, v) in fields {
                    let value = match v {
                        Value::Null => continue,
                        Value::String(s)
                            if !s.is_empty()
                                && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"') =>
                        {
                            s
                        }
                        // Quoted, escaped as JSON (so a reason cannot forge a field).
                        Value::String(s) => Value::String(s).to_string(),
                        other => other.to_string(),
                    };
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push('=');
                    out.push_str(&value);
                }
                out
            }
        }
    }
}

/// The access log of one gateway. Cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    format: Format,
    lines: Option<mpsc::SyncSender<String>>,
    dropped: prometheus_client::metrics::counter::Counter,
}

impl AccessLog {
    /// Start the writer thread (unless the log is off). Fails when the file cannot be
    /// opened for appending.
    pub fn start(
        config: &AccessLogConfig,
        dropped: prometheus_client::metrics::counter::Counter,
    ) -> Result<AccessLog, String> {
        if config.off {
            return Ok(AccessLog {
                format: config.format,
                lines: None,
                dropped,
            });
        }
        let mut out: Box<dyn Write + Send> = match &config.file {
            Some(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        format!(
                            "cannot open the access log {} for appending: {e}",
                            path.display()
                        )
                    })?,
            ),
            None => Box::new(std::io::stdout()),
        };
        let (tx, rx) = mpsc::sync_channel::<String>(QUEUE);
        std::thread::Builder::new()
            .name("asyncgate-access-log".into())
            .spawn(move || {
                let mut buffered = Vec::new();
                while let Ok(line) = rx.recv() {
                    buffered.clear();
                    buffered.extend_from_slice(line.as_bytes());
                    buffered.push(b'\n');
                    // Whatever else is waiting goes in the same write.
                    while let Ok(more) = rx.try_recv() {
                        buffered.extend_from_slice(more.as_bytes());
                        buffered.push(b'\n');
                    }
                    if out.write_all(&buffered).and_then(|_| out.flush()).is_err() {
                        // Nothing sensible to do but go on: the error is not a
                        // connection's.
                        continue;
                    }
                }
            })
            .map_err(|e| format!("cannot start the access-log writer: {e}"))?;
        Ok(AccessLog {
            format: config.format,
            lines: Some(tx),
            dropped,
        })
    }

    /// Write `entry`'s line, unless the writer is too far behind.
    pub fn write(&self, entry: &Entry<'_>) {
        let Some(lines) = &self.lines else {
            return;
        };
        if lines.try_send(entry.line(self.format)).is_err() {
            self.dropped.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            request_id: "r1",
            peer: Some("127.0.0.1:5000".parse().unwrap()),
            environment: "development",
            listener: "external",
            path: "/chat",
            api: Some("chat-api@1.0.0"),
            revision: Some(2),
            caller: Some("app-1"),
            credential: Some("api-key"),
            application: Some("app-1"),
            status: 101,
            duration: Duration::from_millis(1500),
            started: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
            messages: [3, 4],
            bytes: [30, 40],
            close_code: Some(1000),
            close_reason: Some("bye \"now\" x=1"),
            closed_by: Some("client"),
            ..Entry::default()
        }
    }

    #[test]
    fn a_json_line_has_every_field() {
        let v: Value = serde_json::from_str(&entry().line(Format::Json)).unwrap();
        assert_eq!(v["request_id"], "r1");
        assert_eq!(v["messages_in"], 3);
        assert_eq!(v["bytes_out"], 40);
        assert_eq!(v["close_code"], 1000);
        assert_eq!(v["closed_by"], "client");
        assert_eq!(v["duration_ms"], 1500);
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(v["started"], "2027-01-15T08:00:00Z");
    }

    #[test]
    fn a_text_line_quotes_what_could_forge_a_field() {
        let line = entry().line(Format::Text);
        assert!(line.contains(" status=101 "), "{line}");
        assert!(line.contains(r#"close_reason="bye \"now\" x=1""#), "{line}");
        let refused = Entry {
            status: 401,
            error: Some("missing_credentials"),
            ..entry()
        };
        let line = refused.line(Format::Text);
        assert!(line.contains("error=missing_credentials"), "{line}");
        assert!(!line.contains("messages_in"), "{line}");
    }
}
