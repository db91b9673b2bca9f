//! Contracts in several documents: `$ref`s to other files of an uploaded bundle
//! (`common/messages.yaml#/Chat`) or to http(s) URLs. `gather` loads every document the
//! root reaches (through a caller-supplied loader that applies the fetch guards), then
//! `inline` replaces each external reference with what it points at, so the rest of the
//! engine reads one document.

use crate::diagnostic::ContractError;
use crate::load::{load, Limits};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use url::Url;

/// Where a bundle's own files live: `bundle:///path/in/bundle.yaml`.
pub const BUNDLE_BASE: &str = "bundle:///";

/// Loads the text of one document by absolute location (a `bundle:` file or an http(s)
/// URL). The loader decides what may be fetched.
pub trait Loader {
    fn load(&mut self, location: &Url) -> impl Future<Output = Result<String, String>> + Send;

    /// Whether references written as absolute URLs are followed. Relative references
    /// are always followed, against the document that holds them.
    fn follows_absolute(&self) -> bool;
}

/// Every document a root reaches, keyed by absolute location (without fragment).
#[derive(Debug)]
pub struct Bundle {
    pub root: Url,
    pub documents: HashMap<String, Value>,
}

impl Bundle {
    /// Whether the root refers to no other document.
    /// The root document as written, its references in place.
    pub fn written_root(&self) -> &Value {
        &self.documents[self.root.as_str()]
    }

    pub fn is_single(&self) -> bool {
        self.documents.len() == 1
    }
}

/// Most documents one contract may span.
const MAX_DOCUMENTS: usize = 64;

/// Every `$ref` in `v`, with the JSON pointer of the object holding it.
fn refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push((at.to_string(), r.clone()));
            }
            for (k, c) in map {
                refs(c, &format!("{at}/{}", crate::refs::escape(k)), out);
            }
        }
        Value::Array(items) => {
            for (i, c) in items.iter().enumerate() {
                refs(c, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn document_of(base: &Url, reference: &str) -> Result<Option<Url>, String> {
    if reference.starts_with('#') {
        return Ok(None);
    }
    let mut target = base
        .join(reference)
        .map_err(|e| format!("`{reference}` is not a valid reference: {e}"))?;
    target.set_fragment(None);
    match target.scheme() {
        "bundle" | "http" | "https" => Ok(Some(target)),
        other => Err(format!(
            "reference `{reference}` uses `{other}:`; references may point into the uploaded bundle or to http(s) URLs only"
        )),
    }
}

/// Load the root (already parsed as `root_doc`) and every document it reaches.
pub async fn gather(
    root: Url,
    root_doc: Value,
    loader: &mut impl Loader,
    limits: &Limits,
) -> Result<Bundle, ContractError> {
    let mut documents: HashMap<String, Value> = HashMap::new();
    let mut pending: Vec<(Url, Value)> = vec![(root.clone(), root_doc)];
    let mut total_bytes = 0usize;
    while let Some((location, doc)) = pending.pop() {
        let mut found = Vec::new();
        refs(&doc, "", &mut found);
        documents.insert(location.to_string(), doc);
        // Pointers are into the root; for other documents the message names the document.
        let at = |pointer: &str| {
            if location == root {
                format!("{pointer}/$ref")
            } else {
                String::new()
            }
        };
        for (pointer, reference) in found {
            let target = document_of(&location, &reference)
                .map_err(|m| ContractError::single(&at(&pointer), m))?;
            let Some(target) = target else { continue };
            if !loader.follows_absolute() && Url::parse(&reference).is_ok() {
                return Err(ContractError::single(
                    &at(&pointer),
                    format!("reference `{reference}` is an absolute URL, and absolute references are not followed (the operator may allow them: import.allow_absolute_references); relative references are"),
                ));
            }
            if documents.contains_key(target.as_str()) || pending.iter().any(|(u, _)| u == &target)
            {
                continue;
            }
            if documents.len() + pending.len() >= MAX_DOCUMENTS {
                return Err(ContractError::single(
                    "",
                    format!("the contract spans more than {MAX_DOCUMENTS} documents"),
                ));
            }
            let text = loader.load(&target).await.map_err(|m| {
                ContractError::single(
                    &at(&pointer),
                    format!("cannot load `{reference}` (from {location}): {m}"),
                )
            })?;
            total_bytes += text.len();
            if total_bytes > limits.max_bytes {
                return Err(ContractError::TooLarge {
                    bytes: total_bytes,
                    limit: limits.max_bytes,
                });
            }
            let value = load(&text, limits).map_err(|e| {
                ContractError::single("", format!("`{target}` is not a valid document: {e}"))
            })?;
            pending.push((target, value));
        }
    }
    Ok(Bundle { root, documents })
}

/// The root document with every reference to another document replaced by its target
/// (references inside the root stay as they are).
pub fn inline(bundle: &Bundle, limits: &Limits) -> Result<Value, ContractError> {
    let root = &bundle.documents[bundle.root.as_str()];
    let mut stack = Vec::new();
    let mut out = root.clone();
    walk(&mut out, &bundle.root, bundle, limits, &mut stack)?;
    Ok(out)
}

fn walk(
    v: &mut Value,
    base: &Url,
    bundle: &Bundle,
    limits: &Limits,
    stack: &mut Vec<String>,
) -> Result<(), ContractError> {
    if let Some(Value::String(reference)) = v.get("$ref") {
        let reference = reference.clone();
        let in_root = base == &bundle.root;
        if !(reference.starts_with('#') && in_root) {
            let mut target = base.join(&reference).map_err(|e| {
                ContractError::single("", format!("bad reference `{reference}`: {e}"))
            })?;
            let pointer = target.fragment().map(|f| f.to_string()).unwrap_or_default();
            target.set_fragment(None);
            let key = format!("{target}#{pointer}");
            if stack.contains(&key) {
                stack.push(key);
                return Err(ContractError::single(
                    "",
                    format!("reference cycle across documents: {}", stack.join(" -> ")),
                ));
            }
            if stack.len() >= limits.max_ref_hops {
                return Err(ContractError::single(
                    "",
                    format!("more than {} chained references", limits.max_ref_hops),
                ));
            }
            let doc = bundle
                .documents
                .get(target.as_str())
                .ok_or_else(|| ContractError::single("", format!("`{target}` was not loaded")))?;
            let pointer = percent_decode(&pointer);
            let mut replacement = doc.pointer(&pointer).cloned().ok_or_else(|| {
                ContractError::single(
                    "",
                    format!(
                        "unresolved reference `{reference}`: nothing at `{pointer}` in {target}"
                    ),
                )
            })?;
            stack.push(key);
            walk(&mut replacement, &target, bundle, limits, stack)?;
            stack.pop();
            *v = replacement;
            return Ok(());
        }
    }
    match v {
        Value::Object(map) => {
            for child in map.values_mut() {
                walk(child, base, bundle, limits, stack)?;
            }
        }
        Value::Array(items) => {
            for child in items {
                walk(child, base, bundle, limits, stack)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files(HashMap<String, String>);

    impl Loader for Files {
        async fn load(&mut self, location: &Url) -> Result<String, String> {
            self.0
                .get(location.as_str())
                .cloned()
                .ok_or_else(|| "no such file in the bundle".into())
        }

        fn follows_absolute(&self) -> bool {
            true
        }
    }

    fn files(entries: &[(&str, &str)]) -> Files {
        Files(
            entries
                .iter()
                .map(|(k, v)| (format!("{BUNDLE_BASE}{k}"), v.to_string()))
                .collect(),
        )
    }

    async fn bundled(root: &str, others: &[(&str, &str)]) -> Result<Value, ContractError> {
        let limits = Limits::default();
        let base = Url::parse(BUNDLE_BASE)
            .unwrap()
            .join("asyncapi.yaml")
            .unwrap();
        let doc = load(root, &limits)?;
        let b = gather(base, doc, &mut files(others), &limits).await?;
        inline(&b, &limits)
    }

    #[tokio::test]
    async fn refs_between_bundle_files_are_inlined() {
        let root = "asyncapi: 2.6.0\ninfo: {title: t, version: '1'}\nchannels:\n  /chat:\n    subscribe:\n      message: {$ref: 'common/messages.yaml#/Chat'}\n";
        let messages = "Chat:\n  name: Chat\n  payload: {$ref: '../schemas.yaml#/text'}\nOther: {$ref: '#/Chat'}\n";
        let schemas = "text: {type: string, maxLength: 10}\n";
        let doc = bundled(
            root,
            &[
                ("common/messages.yaml", messages),
                ("schemas.yaml", schemas),
            ],
        )
        .await
        .unwrap();
        let msg = &doc["channels"]["/chat"]["subscribe"]["message"];
        assert_eq!(msg["name"], "Chat");
        assert_eq!(msg["payload"]["maxLength"], 10);
        let contract = crate::parse_document(&doc, &doc, &Limits::default()).unwrap();
        assert_eq!(contract.channels[0].client_receives(), ["Chat"]);
    }

    #[tokio::test]
    async fn missing_files_cycles_and_file_urls_are_reported() {
        let root = "asyncapi: 2.6.0\ninfo: {title: t, version: '1'}\nchannels:\n  /a: {$ref: 'a.yaml#/A'}\n";
        let err = bundled(root, &[]).await.unwrap_err().to_string();
        assert!(err.contains("no such file in the bundle"), "{err}");
        let err = bundled(
            root,
            &[
                ("a.yaml", "A: {$ref: 'b.yaml#/B'}\n"),
                ("b.yaml", "B: {$ref: 'a.yaml#/A'}\n"),
            ],
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("cycle"), "{err}");
        let local = "asyncapi: 2.6.0\ninfo: {title: t, version: '1'}\nchannels:\n  /a: {$ref: 'file:///etc/passwd'}\n";
        let err = bundled(local, &[]).await.unwrap_err().to_string();
        assert!(err.contains("http(s) URLs only"), "{err}");
    }
}
