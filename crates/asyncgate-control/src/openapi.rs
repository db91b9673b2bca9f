//! The OpenAPI document of the management API, served at `/api/v1/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "asyncgate management API", description = "Import AsyncAPI contracts, deploy WebSocket API proxies, promote, publish and manage credentials."),
    paths(
        crate::apis::import, crate::apis::list, crate::apis::show, crate::apis::update, crate::apis::delete, crate::apis::revisions,
        crate::connections::list, crate::connections::close, crate::connections::send,
        crate::deployments::deploy, crate::deployments::list, crate::deployments::promote, crate::deployments::undeploy,
        crate::deployments::history, crate::deployments::diff, crate::versions::create, crate::versions::list,
        crate::lifecycle::show, crate::lifecycle::change, crate::lifecycle::history,
        crate::keys::create, crate::keys::list, crate::keys::revoke, crate::keys::test_token,
        crate::contracts::export, crate::contracts::reimport, crate::contracts::consumer,
        crate::portal::list, crate::portal::show,
        crate::environments::list, crate::audit::list,
        crate::orgs::create, crate::orgs::list, crate::orgs::projects,
        crate::orgs::settings, crate::orgs::update_settings,
        crate::users::add, crate::users::list, crate::users::update, crate::users::remove,
        crate::sessions::login, crate::sessions::logout, crate::sessions::me,
        crate::sessions::create_token, crate::sessions::list_tokens, crate::sessions::revoke_token,
        crate::applications::create, crate::applications::list, crate::applications::show, crate::applications::update,
        crate::applications::delete, crate::applications::regenerate_secret, crate::applications::subscribe,
        crate::applications::unsubscribe, crate::applications::create_key, crate::applications::revoke_key,
        crate::applications::regenerate_key, crate::applications::plans, crate::applications::create_plan,
        crate::signing::rotate_now, crate::signing::backend_jwks, crate::providers::create, crate::providers::list, crate::providers::delete,
        crate::oauth2::token, crate::oauth2::jwks, crate::oauth2::openid_configuration,
        crate::nodes::create_token, crate::nodes::list_tokens, crate::nodes::revoke_token,
        crate::nodes::list, crate::nodes::sync,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&AdminAuth),
)]
pub struct ApiDoc;

struct AdminAuth;

impl Modify for AdminAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The admin token (<data-dir>/admin-token), a session token from /api/v1/login, or a personal access token"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "node",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A gateway node's token (asyncgate node token create)"))
                    .build(),
            ),
        );
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
