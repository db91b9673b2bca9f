//! Where each part of a YAML or JSON document is: the document is read into a tree whose
//! nodes carry their line and column, then turned into a plain JSON value plus a map from
//! JSON pointer to position, so every diagnostic can name its line and column.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;
use std::collections::HashMap;
use std::fmt;

/// Line and column (both from 1) of each JSON pointer in a document.
#[derive(Debug, Default, Clone)]
pub struct Spans {
    at: HashMap<String, (usize, usize)>,
}

impl Spans {
    /// The position of `pointer`, or of its nearest ancestor that exists.
    pub fn find(&self, pointer: &str) -> Option<(usize, usize)> {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.at.get(p) {
                return Some(*pos);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }
}

enum Node {
    Null,
    Bool(bool),
    Number(Number),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(String, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML or JSON value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Number(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Number::from_f64(v).map(Node::Number).unwrap_or(Node::Null))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Node>>()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                // Keys are read as text (`y:` is a key named y, `200:` one named 200).
                while let Some((k, v)) = map.next_entry::<String, Spanned<Node>>()? {
                    entries.push((k, v));
                }
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(NodeVisitor)
    }
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn convert(node: Node, pointer: &mut String, spans: &mut Spans) -> Value {
    match node {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Number(n) => Value::Number(n),
        Node::Str(s) => Value::String(s),
        Node::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                out.push(child(item, pointer, spans));
                pointer.truncate(len);
            }
            Value::Array(out)
        }
        Node::Map(entries) => {
            let mut out = Map::new();
            for (k, v) in entries {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&escape(&k));
                let value = child(v, pointer, spans);
                pointer.truncate(len);
                out.insert(k, value);
            }
            Value::Object(out)
        }
    }
}

fn child(node: Spanned<Node>, pointer: &mut String, spans: &mut Spans) -> Value {
    let loc = node.referenced;
    spans.at.insert(
        pointer.clone(),
        (loc.line() as usize, loc.column() as usize),
    );
    convert(node.value, pointer, spans)
}

/// Parse YAML (or JSON, which is YAML) into a value and the position of every node.
pub fn parse(text: &str) -> Result<(Value, Spans), serde_saphyr::Error> {
    let root: Spanned<Node> = serde_saphyr::from_str(text)?;
    let mut spans = Spans::default();
    let mut pointer = String::new();
    let value = child(root, &mut pointer, &mut spans);
    Ok((value, spans))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_nested_nodes() {
        let text = "asyncapi: 3.0.0\ninfo:\n  title: Chat\n  tags:\n    - name: a\n      x/y: 1\ny: 2\n200: ok\n";
        let (value, spans) = parse(text).unwrap();
        assert_eq!(value["info"]["title"], "Chat");
        assert_eq!(value["y"], 2);
        assert_eq!(value["200"], "ok");
        assert_eq!(spans.find("/info/title"), Some((3, 10)));
        assert_eq!(spans.find("/info/tags/0/name").map(|p| p.0), Some(5));
        assert_eq!(spans.find("/info/tags/0/x~1y").map(|p| p.0), Some(6));
        // A missing field is placed at its nearest ancestor.
        assert_eq!(
            spans.find("/info/version").map(|p| p.0),
            spans.find("/info").map(|p| p.0)
        );
    }

    #[test]
    fn json_has_positions_too() {
        let (value, spans) = parse("{\n  \"a\": {\"b\": [1, 2.5, true, null]}\n}").unwrap();
        assert_eq!(value["a"]["b"][1], 2.5);
        assert_eq!(spans.find("/a/b/2").map(|p| p.0), Some(2));
    }
}
