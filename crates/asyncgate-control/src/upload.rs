//! The forms an import body can take: a JSON import request, the contract itself (YAML
//! or JSON) with overrides in the query, or a multipart upload.

use crate::apis::ImportRequest;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};
use std::collections::BTreeMap;

/// A body that could not be read, by the status its rejection carries (413 when it is
/// over the limit).
fn body_error(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is larger than the limit (see `import.max_bytes`)",
        )
    } else {
        ApiError::bad_request(format!("the request body could not be read: {text}"))
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    body_error(e.status(), e.body_text())
}

pub async fn import_request(
    state: &AppState,
    query: ImportRequest,
    request: Request,
) -> ApiResult<ImportRequest> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if media == "multipart/form-data" {
        let multipart = Multipart::from_request(request, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("bad multipart body: {}", e.body_text())))?;
        return from_multipart(query, multipart, state.config.import.limits.max_bytes).await;
    }
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(|e| body_error(e.status(), e.body_text()))?;
    if media == "application/zip" || media == "application/x-zip-compressed" {
        let files = unzip(&bytes, state.config.import.limits.max_bytes)?;
        return Ok(ImportRequest {
            files: Some(files),
            ..query
        });
    }
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("the body is not UTF-8 text"))?;
    match media.as_str() {
        "" | "application/json" => {
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| ApiError::bad_request(format!("the request body is not JSON: {e}")))?;
            // A JSON AsyncAPI document posted as it is.
            if value.get("asyncapi").is_some() {
                return Ok(ImportRequest {
                    contract: Some(text),
                    ..query
                });
            }
            serde_json::from_value(value).map_err(|e| {
                ApiError::bad_request(format!("the import request is not acceptable: {e}"))
            })
        }
        "application/yaml"
        | "application/x-yaml"
        | "text/yaml"
        | "text/x-yaml"
        | "text/plain"
        | "application/vnd.aai.asyncapi+yaml"
        | "application/vnd.aai.asyncapi+json"
        | "application/vnd.aai.asyncapi" => Ok(ImportRequest {
            contract: Some(text),
            ..query
        }),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("cannot import a `{other}` body: send JSON, YAML or multipart/form-data"),
        )),
    }
}

/// A multipart form: its text fields are the import request's fields (`file` is another
/// name for `contract`), a zip file field the bundle; the query's fields apply too.
async fn from_multipart(
    query: ImportRequest,
    mut multipart: Multipart,
    max_bytes: usize,
) -> ApiResult<ImportRequest> {
    let mut fields = match serde_json::to_value(&query) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let mut files = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = match field.name().unwrap_or("") {
            "file" => "contract".to_string(),
            other => other.to_string(),
        };
        let zipped = field
            .file_name()
            .is_some_and(|f| f.to_ascii_lowercase().ends_with(".zip"))
            || field.content_type().is_some_and(|t| t.contains("zip"));
        if zipped {
            let bytes = field.bytes().await.map_err(multipart_error)?;
            files = Some(unzip(&bytes, max_bytes)?);
            continue;
        }
        let value = field.text().await.map_err(multipart_error)?;
        fields.insert(name, serde_json::Value::String(value));
    }
    let mut req: ImportRequest = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| ApiError::bad_request(format!("the form is not acceptable: {e}")))?;
    if files.is_some() {
        req.files = files;
    }
    Ok(req)
}

/// Most files a zip bundle may hold.
const MAX_BUNDLE_FILES: usize = 64;

/// The YAML and JSON files of a zip bundle, by path. Refuses paths that leave the bundle,
/// more than `MAX_BUNDLE_FILES` files, and more than `max_bytes` once uncompressed
/// (counted while inflating, so a zip bomb stops at the limit).
pub fn unzip(bytes: &[u8], max_bytes: usize) -> ApiResult<BTreeMap<String, String>> {
    use std::io::Read;
    let bad = |m: String| ApiError::unprocessable(format!("the zip bundle is not acceptable: {m}"));
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    let mut files = BTreeMap::new();
    let mut total = 0usize;
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        let path = entry
            .enclosed_name()
            .ok_or_else(|| bad(format!("`{}` points outside the bundle", entry.name())))?;
        let name = path.to_string_lossy().replace('\\', "/");
        if !(name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json")) {
            continue;
        }
        if files.len() == MAX_BUNDLE_FILES {
            return Err(bad(format!("more than {MAX_BUNDLE_FILES} contract files")));
        }
        let mut text = String::new();
        let room = max_bytes.saturating_sub(total) as u64 + 1;
        entry
            .take(room)
            .read_to_string(&mut text)
            .map_err(|e| bad(format!("`{name}`: {e}")))?;
        total += text.len();
        if total > max_bytes {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the bundle is larger than {max_bytes} bytes uncompressed"),
            ));
        }
        files.insert(name, text);
    }
    if files.is_empty() {
        return Err(bad("no .yaml, .yml or .json file in it".into()));
    }
    Ok(files)
}
