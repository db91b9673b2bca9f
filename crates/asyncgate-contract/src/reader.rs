//! What reading any AsyncAPI version needs: following `$ref`s, typed field access that
//! records a diagnostic (with its JSON pointer) instead of failing, and the parts that
//! are the same in 2.x and 3.x (info, messages).

use crate::diagnostic::ContractError;
use crate::diagnostic::Diagnostic;
use crate::load::Limits;
use crate::model::{Channel, Contract, Message, SecurityScheme, Server, WsBinding};
use crate::refs::resolve;
use serde_json::{Map, Value};

pub(crate) struct Reader<'a> {
    pub doc: &'a Value,
    limits: &'a Limits,
    pub problems: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// `info.title`, `info.version` and `info.description`.
pub(crate) struct Info {
    pub title: String,
    pub version: String,
    pub description: Option<String>,
}

impl<'a> Reader<'a> {
    pub fn new(doc: &'a Value, limits: &'a Limits) -> Self {
        Reader {
            doc,
            limits,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn problem(&mut self, pointer: &str, message: impl Into<String>) {
        self.problems.push(Diagnostic::at(pointer, message));
    }

    pub fn warning(&mut self, pointer: &str, message: impl Into<String>) {
        self.warnings.push(Diagnostic::at(pointer, message));
    }

    fn missing(&mut self, at: &str) {
        let field = at.rsplit('/').next().unwrap_or(at);
        self.problem(at, format!("required field `{field}` is missing"));
    }

    /// Follow `value` through `$ref`s; returns the value and the pointer it is at.
    pub fn deref(&mut self, value: &'a Value, at: &str) -> Option<(&'a Value, String)> {
        match resolve(self.doc, value, at, self.limits.max_ref_hops) {
            Ok(found) => Some(found),
            Err(e) => {
                self.problems.extend(e.diagnostics());
                None
            }
        }
    }

    /// A schema with the local references inside it replaced (cycles stay references), so
    /// that it stands on its own; as written when that would exceed the budget.
    fn whole(&self, schema: &Value) -> Value {
        crate::refs::expanded(self.doc, schema, self.limits.max_resolved_values)
            .unwrap_or_else(|| schema.clone())
    }

    pub fn object(
        &mut self,
        value: Option<&'a Value>,
        at: &str,
        required: bool,
    ) -> Option<&'a Map<String, Value>> {
        let Some(v) = value else {
            if required {
                self.missing(at);
            }
            return None;
        };
        let (v, at) = self.deref(v, at)?;
        match v.as_object() {
            Some(m) => Some(m),
            None => {
                self.problem(&at, format!("must be a mapping, found {}", kind(v)));
                None
            }
        }
    }

    pub fn string(&mut self, value: Option<&'a Value>, at: &str, required: bool) -> Option<String> {
        match value {
            None => {
                if required {
                    self.missing(at);
                }
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            // YAML turns `version: 1.0` into a number; keep what the author meant.
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                self.problem(at, format!("must be a string, found {}", kind(other)));
                None
            }
        }
    }

    pub fn info(&mut self) -> Info {
        let info = self.object(self.doc.get("info"), "/info", true);
        let title = info.and_then(|i| self.string(i.get("title"), "/info/title", true));
        let version = info.and_then(|i| self.string(i.get("version"), "/info/version", true));
        Info {
            title: title.unwrap_or_default(),
            version: version.unwrap_or_default(),
            description: info.and_then(|i| text(i, "description")),
        }
    }

    /// A message object. 3.x payloads may be a multi-format schema
    /// (`{schemaFormat, schema}`); the schema is kept either way.
    pub fn message(&mut self, value: &'a Value, at: &str) -> Option<Message> {
        let map = self.object(Some(value), at, true)?;
        let mut schema_format = text(map, "schemaFormat");
        let payload = match map.get("payload") {
            Some(p) => {
                let (p, p_at) = self.deref(p, &format!("{at}/payload"))?;
                match (
                    p.get("schemaFormat").and_then(Value::as_str),
                    p.get("schema"),
                ) {
                    (Some(format), Some(schema)) => {
                        schema_format = Some(format.to_string());
                        let schema = self.deref(schema, &format!("{p_at}/schema"))?.0;
                        Some(self.whole(schema))
                    }
                    _ => Some(self.whole(p)),
                }
            }
            None => None,
        };
        let headers = match map.get("headers") {
            Some(h) => Some(self.deref(h, &format!("{at}/headers"))?.0.clone()),
            None => None,
        };
        let examples = map
            .get("examples")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let correlation_pointer = match map.get("correlationId") {
            Some(c) => self
                .deref(c, &format!("{at}/correlationId"))
                .and_then(|(c, _)| c.get("location")?.as_str())
                .and_then(|l| l.strip_prefix("$message.payload#"))
                .map(str::to_string),
            None => None,
        };
        Some(Message {
            headers,
            examples,
            correlation_pointer,
            name: text(map, "name"),
            title: text(map, "title"),
            summary: text(map, "summary"),
            content_type: text(map, "contentType"),
            schema_format,
            payload,
        })
    }

    /// Every entry of the `servers` mapping, read by the version's `server_of`.
    pub fn servers(
        &mut self,
        server_of: fn(&mut Reader<'a>, &str, &'a Value) -> Option<Server>,
    ) -> Vec<Server> {
        let mut out = Vec::new();
        if let Some(map) = self.object(self.doc.get("servers"), "/servers", false) {
            for (name, server) in map {
                if let Some(s) = server_of(self, name, server) {
                    out.push(s);
                }
            }
        }
        out
    }

    /// The model, or every problem found while reading.
    pub fn finish(
        mut self,
        version: &str,
        info: Info,
        servers: Vec<Server>,
        channels: Vec<Channel>,
    ) -> Result<Contract, ContractError> {
        let security_schemes = self.security_schemes();
        if !self.problems.is_empty() {
            return Err(ContractError::Invalid(self.problems));
        }
        Ok(Contract {
            asyncapi_version: version.to_string(),
            title: info.title,
            version: info.version,
            description: info.description,
            security_schemes,
            servers,
            channels,
            warnings: self.warnings,
        })
    }

    /// `components.securitySchemes` (the same place in 2.x and 3.x).
    pub fn security_schemes(&mut self) -> Vec<SecurityScheme> {
        let mut out = Vec::new();
        let schemes = self
            .doc
            .get("components")
            .and_then(|c| c.get("securitySchemes"));
        if let Some(map) = self.object(schemes, "/components/securitySchemes", false) {
            for (name, scheme) in map {
                let at = format!("/components/securitySchemes/{}", crate::refs::escape(name));
                let Some(scheme) = self.object(Some(scheme), &at, true) else {
                    continue;
                };
                out.push(SecurityScheme {
                    name: name.clone(),
                    kind: text(scheme, "type").unwrap_or_default(),
                    description: text(scheme, "description"),
                });
            }
        }
        out
    }

    /// A channel's `bindings.ws`, with `$ref`s followed.
    pub fn ws_binding(&mut self, channel: &'a Map<String, Value>, at: &str) -> Option<WsBinding> {
        let bindings = self.object(channel.get("bindings"), &format!("{at}/bindings"), false)?;
        let ws = self.object(bindings.get("ws"), &format!("{at}/bindings/ws"), false)?;
        let mut schema = |key: &str| match ws.get(key) {
            Some(v) => self
                .deref(v, &format!("{at}/bindings/ws/{key}"))
                .map(|(v, _)| v.clone()),
            None => None,
        };
        let (query, headers) = (schema("query"), schema("headers"));
        Some(WsBinding {
            method: text(ws, "method"),
            query,
            headers,
        })
    }

    /// Replace `{variable}`s in `text` with the defaults of `variables`.
    pub fn substitute(text: &str, variables: Option<&Value>) -> String {
        let mut out = text.to_string();
        if let Some(vars) = variables.and_then(Value::as_object) {
            for (var, def) in vars {
                if let Some(default) = def.get("default").and_then(Value::as_str) {
                    out = out.replace(&format!("{{{var}}}"), default);
                }
            }
        }
        out
    }
}

pub(crate) fn text(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_string)
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}
