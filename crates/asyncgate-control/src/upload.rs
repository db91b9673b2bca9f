//! The forms an import body can take: a JSON import request, the contract itself (YAML
//! or JSON) with overrides in the query, or a multipart upload.

use crate::apis::{ImportQuery, ImportRequest};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};

fn limit_error(e: impl std::fmt::Display) -> ApiError {
    let text = e.to_string();
    if text.contains("length limit") {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is larger than the limit (see `import.max_bytes`)",
        )
    } else {
        ApiError::bad_request(format!("the request body could not be read: {text}"))
    }
}

pub async fn import_request(
    state: &AppState,
    query: ImportQuery,
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
        return from_multipart(query, multipart).await;
    }
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(limit_error)?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("the body is not UTF-8 text"))?;
    match media.as_str() {
        "" | "application/json" => {
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| ApiError::bad_request(format!("the request body is not JSON: {e}")))?;
            // A JSON AsyncAPI document posted as it is.
            if value.get("asyncapi").is_some() {
                return Ok(query.with_contract(Some(text)));
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
        | "application/vnd.aai.asyncapi" => Ok(query.with_contract(Some(text))),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("cannot import a `{other}` body: send JSON, YAML or multipart/form-data"),
        )),
    }
}

async fn from_multipart(
    mut query: ImportQuery,
    mut multipart: Multipart,
) -> ApiResult<ImportRequest> {
    let mut contract = None;
    while let Some(field) = multipart.next_field().await.map_err(limit_error)? {
        let name = field.name().unwrap_or("").to_string();
        let value = field.text().await.map_err(limit_error)?;
        let slot = match name.as_str() {
            "contract" | "file" => {
                contract = Some(value);
                continue;
            }
            "url" => &mut query.url,
            "project" => &mut query.project,
            "name" => &mut query.name,
            "identifier" => &mut query.identifier,
            "version" => &mut query.version,
            "basePath" => &mut query.base_path,
            "target" => &mut query.target,
            "description" => &mut query.description,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown form field `{other}`"
                )))
            }
        };
        *slot = Some(value);
    }
    Ok(query.with_contract(contract))
}
