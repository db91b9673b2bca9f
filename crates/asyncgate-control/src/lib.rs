//! The control plane: the management REST API (one module per resource), its
//! authentication, URL import, and publishing gateway snapshots built from the store.

pub mod apis;
pub mod applications;
pub mod audit;
pub mod auth;
pub mod body;
pub mod changes;
pub mod connections;
pub mod console;
pub mod contracts;
pub mod dataplane;
pub mod deployments;
pub mod devportal;
pub mod docs;
pub mod environments;
pub mod error;
pub mod fetch;
pub mod fields;
pub mod health;
pub mod keys;
pub mod lifecycle;
pub mod metrics;
pub mod nodes;
pub mod oauth2;
pub mod openapi;
pub mod orgs;
pub mod passwords;
pub mod portal;
pub mod providers;
pub mod publisher;
pub mod sessions;
pub mod signing;
pub mod state;
pub mod upload;
pub mod users;
pub mod versions;
pub mod views;

pub use error::ApiError;
pub use publisher::Publisher;
pub use state::{AppState, ControlConfig, EnvironmentEndpoints, ImportPolicy};

use axum::routing::{get, post};
use axum::Router;

/// Path under which the management API lives.
pub const API_PREFIX: &str = "/api/v1";

/// The management API router: everything but the OpenAPI document, the health check,
/// signing in and the developer portal's read-only listing requires a token (see
/// [`auth`]).
pub fn router(state: AppState) -> Router {
    let managed = Router::new()
        .route("/apis", get(apis::list))
        .route("/apis/import", post(apis::import))
        .route(
            "/apis/{api}",
            get(apis::show).patch(apis::update).delete(apis::delete),
        )
        .route("/apis/{api}/revisions", get(apis::revisions))
        .route(
            "/apis/{api}/contract",
            get(contracts::export).put(contracts::reimport),
        )
        .route(
            "/apis/{api}/deployments",
            get(deployments::list).post(deployments::deploy),
        )
        .route(
            "/apis/{api}/deployments/{environment}",
            axum::routing::delete(deployments::undeploy),
        )
        .route("/apis/{api}/promote", post(deployments::promote))
        .route("/apis/{api}/history", get(deployments::history))
        .route("/apis/{api}/diff", get(deployments::diff))
        .route(
            "/apis/{api}/versions",
            get(versions::list).post(versions::create),
        )
        .route(
            "/apis/{api}/lifecycle",
            get(lifecycle::show).post(lifecycle::change),
        )
        .route("/apis/{api}/lifecycle/history", get(lifecycle::history))
        .route("/apis/{api}/keys", get(keys::list).post(keys::create))
        .route(
            "/apis/{api}/keys/{key}",
            axum::routing::delete(keys::revoke),
        )
        .route("/apis/{api}/test-token", post(keys::test_token))
        .route("/apis/{api}/connections", get(connections::list))
        .route(
            "/apis/{api}/connections/{id}",
            axum::routing::delete(connections::close),
        )
        .route(
            "/apis/{api}/connections/{id}/messages",
            post(connections::send),
        )
        .route("/environments", get(environments::list))
        .route("/audit", get(audit::list))
        .route("/organizations", get(orgs::list).post(orgs::create))
        .route("/projects", get(orgs::projects))
        .route(
            "/organization/settings",
            get(orgs::settings).patch(orgs::update_settings),
        )
        .route("/users", get(users::list).post(users::add))
        .route(
            "/users/{user}",
            axum::routing::patch(users::update).delete(users::remove),
        )
        .route(
            "/applications",
            get(applications::list).post(applications::create),
        )
        .route(
            "/applications/{app}",
            get(applications::show)
                .patch(applications::update)
                .delete(applications::delete),
        )
        .route(
            "/applications/{app}/secret",
            post(applications::regenerate_secret),
        )
        .route(
            "/applications/{app}/subscriptions",
            post(applications::subscribe),
        )
        .route(
            "/applications/{app}/subscriptions/{api}",
            axum::routing::delete(applications::unsubscribe),
        )
        .route("/applications/{app}/keys", post(applications::create_key))
        .route(
            "/applications/{app}/keys/{key}",
            axum::routing::delete(applications::revoke_key),
        )
        .route(
            "/applications/{app}/keys/{key}/regenerate",
            post(applications::regenerate_key),
        )
        .route(
            "/plans",
            get(applications::plans).post(applications::create_plan),
        )
        .route("/signing-keys/rotate", post(signing::rotate_now))
        .route(
            "/identity-providers",
            get(providers::list).post(providers::create),
        )
        .route(
            "/identity-providers/{provider}",
            axum::routing::delete(providers::delete),
        )
        .route("/nodes", get(nodes::list))
        .route(
            "/nodes/tokens",
            get(nodes::list_tokens).post(nodes::create_token),
        )
        .route(
            "/nodes/tokens/{token}",
            axum::routing::delete(nodes::revoke_token),
        )
        .route("/me", get(sessions::me))
        .route("/logout", post(sessions::logout))
        .route(
            "/tokens",
            get(sessions::list_tokens).post(sessions::create_token),
        )
        .route(
            "/tokens/{token}",
            axum::routing::delete(sessions::revoke_token),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    let public = Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/login", post(sessions::login))
        // Gateway nodes authenticate with their node tokens, checked by the handler.
        .route("/nodes/sync", post(nodes::sync))
        .route("/portal/apis", get(portal::list))
        .route("/portal/apis/{api}", get(portal::show))
        .route("/portal/apis/{api}/contract", get(contracts::consumer));
    // A contract travels inside a JSON string, where escaping can grow it: leave room.
    let body_limit = state.config.import.limits.max_bytes.saturating_mul(2) + (64 << 10);
    Router::new()
        .nest(API_PREFIX, managed.merge(public))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        // A contract travels in the console's forms too (an upload, then a hidden field).
        .merge(console::router(&state).layer(axum::extract::DefaultBodyLimit::max(body_limit)))
        .merge(devportal::router(&state))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(metrics::scrape))
        .route(oauth2::TOKEN_PATH, post(oauth2::token))
        .route(oauth2::JWKS_PATH, get(oauth2::jwks))
        .route("/.well-known/backend-jwks.json", get(signing::backend_jwks))
        .route(
            "/.well-known/openid-configuration",
            get(oauth2::openid_configuration),
        )
        .fallback(|| async { ApiError::not_found("no such management endpoint") })
        .with_state(state)
}
