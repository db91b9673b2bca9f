//! Passwords: argon2id hashes (PHC strings), made and checked off the async threads, and
//! the rules a new password must meet.

use crate::error::{ApiError, ApiResult};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::http::StatusCode;

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 10;
/// Longest password accepted (hashing is work; an unbounded input is a lever).
pub const MAX_LENGTH: usize = 1024;

/// Check a new password against the rules; the message says which one failed.
pub fn check_new(password: &str) -> ApiResult<()> {
    let n = password.chars().count();
    if n < MIN_LENGTH {
        return Err(ApiError::unprocessable(format!(
            "the password is too short: at least {MIN_LENGTH} characters"
        )));
    }
    if password.len() > MAX_LENGTH {
        return Err(ApiError::unprocessable(format!(
            "the password is too long: at most {MAX_LENGTH} bytes"
        )));
    }
    if password.trim() != password {
        return Err(ApiError::unprocessable(
            "the password starts or ends with white space (a copy-and-paste slip?)",
        ));
    }
    Ok(())
}

/// An argon2id hash of `password` (the crate's defaults: 19 MiB, 2 passes).
pub async fn hash(password: &str) -> ApiResult<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("hashing failed: {e}"),
        )
    })?
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("hashing failed: {e}"),
        )
    })
}

/// A well-formed argon2id hash no password is known to match, checked in place of a
/// missing user's.
const DECOY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0vXgHQmdmL8K9b5H0WPKeqRh6c2N1xDyBm2XkoBxCnE";

/// Whether `password` matches `phc`. With `None` (no such user) the same work is done
/// against a fixed hash, so that the answer takes as long for unknown users.
pub async fn verify(password: &str, phc: Option<&str>) -> bool {
    let known = phc.is_some();
    let phc = phc.unwrap_or(DECOY).to_string();
    let password = password.to_string();
    let matched = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    known && matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_only() {
        let h = hash("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&h)).await);
        assert!(!verify("correct horse battery!", Some(&h)).await);
        assert!(!verify("anything", None).await);
        assert!(
            PasswordHash::new(DECOY).is_ok(),
            "the decoy must cost a real check"
        );
        assert!(check_new("short").is_err());
        assert!(check_new(" padded password ").is_err());
        assert!(check_new(&"x".repeat(MAX_LENGTH + 1)).is_err());
        assert!(check_new("long enough password").is_ok());
    }
}
