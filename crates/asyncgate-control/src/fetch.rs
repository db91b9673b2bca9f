//! Fetching a contract from a URL without becoming a way into the platform's network:
//! http(s) only, every resolved address checked (again after each redirect, at most 3),
//! the connection pinned to the checked address, time and size bounded.

use crate::error::ApiError;
use crate::state::ImportPolicy;
use axum::http::StatusCode;
use std::net::{IpAddr, SocketAddr};

const MAX_REDIRECTS: usize = 3;

/// Loads the documents a contract refers to: files of the uploaded bundle, or http(s)
/// URLs through `fetch_document` and its guards.
pub struct GuardedLoader<'a> {
    policy: &'a ImportPolicy,
    files: std::collections::HashMap<String, String>,
    /// Every fetch of one import ends by then (the policy's timeout from the start).
    deadline: tokio::time::Instant,
}

impl<'a> GuardedLoader<'a> {
    pub fn new(
        policy: &'a ImportPolicy,
        files: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Self {
        let files = files
            .into_iter()
            .flatten()
            .filter_map(|(name, text)| {
                let location = url::Url::parse(asyncgate_contract::bundle::BUNDLE_BASE)
                    .ok()?
                    .join(name.trim_start_matches('/'))
                    .ok()?;
                Some((location.to_string(), text.clone()))
            })
            .collect();
        GuardedLoader {
            policy,
            files,
            deadline: tokio::time::Instant::now() + policy.timeout,
        }
    }

    /// The location of a bundle file.
    pub fn location(&self, name: &str) -> Result<url::Url, ApiError> {
        url::Url::parse(asyncgate_contract::bundle::BUNDLE_BASE)
            .and_then(|b| b.join(name.trim_start_matches('/')))
            .map_err(|e| ApiError::bad_request(format!("`{name}` is not a valid file name: {e}")))
    }
}

impl asyncgate_contract::bundle::Loader for GuardedLoader<'_> {
    async fn load(&mut self, location: &url::Url) -> Result<String, String> {
        match location.scheme() {
            "bundle" => self.files.get(location.as_str()).cloned().ok_or_else(|| {
                format!(
                    "{} is not in the uploaded bundle",
                    location.path().trim_start_matches('/')
                )
            }),
            _ => tokio::time::timeout_at(
                self.deadline,
                fetch_document(location.as_str(), self.policy),
            )
            .await
            .map_err(|_| {
                format!(
                    "the contract's references took longer than {:?} to fetch",
                    self.policy.timeout
                )
            })?
            .map_err(|e| e.detail),
        }
    }

    fn follows_absolute(&self) -> bool {
        self.policy.allow_absolute_references
    }
}

/// The root document of a bundle: `root`, or `asyncapi.yaml` / `.yml` / `.json`, or the
/// only file.
pub fn root_of(
    files: &std::collections::BTreeMap<String, String>,
    root: Option<&str>,
) -> Result<String, ApiError> {
    if let Some(root) = root {
        return files
            .contains_key(root)
            .then(|| root.to_string())
            .ok_or_else(|| ApiError::bad_request(format!("the bundle has no file `{root}`")));
    }
    for name in ["asyncapi.yaml", "asyncapi.yml", "asyncapi.json"] {
        if files.contains_key(name) {
            return Ok(name.to_string());
        }
    }
    match files.keys().collect::<Vec<_>>().as_slice() {
        [only] => Ok((*only).clone()),
        _ => Err(ApiError::bad_request(
            "the bundle has several files and no asyncapi.yaml: name the root with `root`",
        )),
    }
}

/// Fetch a text document (a contract, a JWKS) through the guards: http(s) only, every
/// address the host resolves to checked, redirects followed and checked, size and time
/// bounded by `policy`.
pub async fn fetch_document(url: &str, policy: &ImportPolicy) -> Result<String, ApiError> {
    let mut current = parse(url)?;
    for _ in 0..=MAX_REDIRECTS {
        let host = current
            .host_str()
            .ok_or_else(|| ApiError::bad_request(format!("{current} has no host")))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = current.port_or_known_default().unwrap_or(80);
        let addr = resolve_allowed(&host, port, policy).await?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .resolve(&host, addr)
            .build()
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("HTTP client: {e}"),
                )
            })?;
        let mut resp = client
            .get(current.clone())
            .header(
                "accept",
                "application/yaml, application/json, text/yaml, text/plain, */*",
            )
            .send()
            .await
            .map_err(|e| unreachable(&current, e))?;
        if resp.status().is_redirection() {
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    ApiError::unprocessable(format!("{current} redirected without a Location"))
                })?;
            current = parse(
                current
                    .join(location)
                    .map_err(|e| {
                        ApiError::unprocessable(format!("bad redirect from {current}: {e}"))
                    })?
                    .as_str(),
            )?;
            continue;
        }
        if !resp.status().is_success() {
            return Err(ApiError::unprocessable(format!(
                "fetching {current} answered HTTP {}",
                resp.status()
            )));
        }
        let limit = policy.limits.max_bytes;
        if resp.content_length().is_some_and(|n| n as usize > limit) {
            return Err(too_large(limit));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| unreachable(&current, e))? {
            if body.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        return String::from_utf8(body).map_err(|_| {
            ApiError::unprocessable(format!("the document at {current} is not UTF-8 text"))
        });
    }
    Err(ApiError::unprocessable(format!(
        "{url} redirected more than {MAX_REDIRECTS} times"
    )))
}

fn parse(url: &str) -> Result<url::Url, ApiError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| ApiError::bad_request(format!("`{url}` is not a URL: {e}")))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(ApiError::bad_request(format!(
            "documents are fetched from http(s) URLs only, not {other}:"
        ))),
    }
}

fn unreachable(url: &url::Url, e: reqwest::Error) -> ApiError {
    let what = if e.is_timeout() {
        "timed out"
    } else {
        "failed"
    };
    ApiError::unprocessable(format!("fetching {url} {what}: {e}"))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the document is larger than the limit of {limit} bytes"),
    )
}

/// Resolve `host` and refuse it unless every address it resolves to is allowed.
async fn resolve_allowed(
    host: &str,
    port: u16,
    policy: &ImportPolicy,
) -> Result<SocketAddr, ApiError> {
    let addrs: Vec<SocketAddr> =
        tokio::time::timeout(policy.timeout, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| ApiError::unprocessable(format!("resolving {host} timed out")))?
            .map_err(|e| ApiError::unprocessable(format!("cannot resolve {host}: {e}")))?
            .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| ApiError::unprocessable(format!("{host} resolves to no address")))?;
    if let Some(bad) = addrs.iter().find(|a| never_allowed(a.ip())) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{host} resolves to {}, a link-local or unspecified address (cloud metadata services live there); imports from it are never allowed",
                bad.ip()
            ),
        ));
    }
    if !policy.allow_private_addresses {
        if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{host} resolves to {}, a loopback, private or link-local address; imports from such addresses are off (an operator can allow them with `import.allow_private_addresses`)",
                    bad.ip()
                ),
            ));
        }
    }
    Ok(first)
}

/// Link-local and unspecified addresses (where cloud metadata services answer) are refused
/// even when the operator allows private addresses.
pub fn never_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => never_allowed(IpAddr::V4(v4)),
            None => {
                v6.is_unspecified()
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
                    || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
            }
        },
    }
}

/// Whether an address is on the public internet (not loopback, private, link-local,
/// unique-local, shared, documentation, multicast or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // shared address space
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local, includes fd00:ec2::254
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x2001 && s[1] == 0xdb8)) // documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_metadata_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "140.82.112.3", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "169.254.169.254",
            "fd00:ec2::254",
            "fe80::1",
            "0.0.0.0",
            "::ffff:169.254.169.254",
        ] {
            assert!(never_allowed(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.1", "10.0.0.1", "::1"] {
            assert!(!never_allowed(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn loopback_import_refused_by_default() {
        let err = fetch_document("http://127.0.0.1:1/x.yaml", &ImportPolicy::default())
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert!(
            err.detail.contains("allow_private_addresses"),
            "{}",
            err.detail
        );
        let err = fetch_document("file:///etc/passwd", &ImportPolicy::default())
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }
}
