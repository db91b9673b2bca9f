//! What every page of the console and the developer portal shares: the security headers,
//! the session and CSRF cookies (each site's own), who is signed in, forms checked for
//! their CSRF token, and rendering a page or an error.

use crate::auth::{constant_time_eq, principal_of, Authenticated, Caller, ClientIp, Principal};
use crate::error::ApiError;
use crate::sessions::Session;
use crate::state::AppState;
use askama::Template;
use asyncgate_core::credential::generate_secret;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::net::IpAddr;

/// The cookie holding a signed-in publisher's session token.
pub const SESSION_COOKIE: &str = "asyncgate_session";
/// The cookie holding the visitor's CSRF token, which every form repeats.
pub const CSRF_COOKIE: &str = "asyncgate_csrf";

/// Scripts and styles only from the site itself (no inline script), WebSocket
/// connections for the test console, nothing framed, forms posted only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The visitor's CSRF token, put in the request by [`secured`].
#[derive(Debug, Clone)]
struct CsrfToken(String);

/// The middleware of every console and portal response: a CSRF token for a visitor
/// without one, and the security headers; cookies are `Secure` when the management
/// listener is reached over HTTPS (TLS, or a public `https://` URL).
pub async fn secured(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let site = site_of(req.uri().path());
    let existing = cookie(req.headers(), CSRF_COOKIE).filter(|v| v.len() >= 32);
    let fresh = existing.is_none().then(|| generate_secret(""));
    let token = existing.or_else(|| fresh.clone()).unwrap_or_default();
    req.extensions_mut().insert(CsrfToken(token));
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if let Some(token) = fresh {
        h.append(
            header::SET_COOKIE,
            set_cookie(site, CSRF_COOKIE, &token, None),
        );
    }
    if state.config.secure_cookies {
        let cookies: Vec<HeaderValue> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|c| HeaderValue::from_str(&format!("{}; Secure", c.to_str().ok()?)).ok())
            .collect();
        h.remove(header::SET_COOKIE);
        for c in cookies {
            h.append(header::SET_COOKIE, c);
        }
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// The value of a request cookie.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// The site a path belongs to, whose paths its cookies are for: the developer portal
/// (`/portal`) or the console (`/console`).
fn site_of(path: &str) -> &'static str {
    if path.starts_with(crate::devportal::PREFIX) {
        crate::devportal::PREFIX
    } else {
        super::PREFIX
    }
}

/// A cookie of one site: HttpOnly, SameSite=Strict, for that site's paths only;
/// `max_age` `None` lasts the browser session.
fn set_cookie(
    site: &str,
    name: &str,
    value: &str,
    max_age: Option<cookie::time::Duration>,
) -> HeaderValue {
    let mut c = Cookie::build((name, value))
        .path(site)
        .http_only(true)
        .same_site(SameSite::Strict);
    if let Some(age) = max_age {
        c = c.max_age(age);
    }
    HeaderValue::from_str(&c.build().to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// Who is visiting: their CSRF token, session token (if any) and address.
pub struct Visitor {
    pub csrf: String,
    session: Option<String>,
    pub origin: Option<IpAddr>,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ClientIp(origin) = ClientIp::from_request_parts(parts, state).await?;
        Ok(Visitor {
            csrf: parts
                .extensions
                .get::<CsrfToken>()
                .map(|t| t.0.clone())
                .unwrap_or_default(),
            session: cookie(&parts.headers, SESSION_COOKIE),
            origin,
        })
    }
}

impl Visitor {
    /// The session token the visitor's cookie holds.
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The signed-in publisher acting in their organization (the first of several), or
    /// `None` without a live session.
    pub async fn signed_in(&self, state: &AppState) -> Option<Result<Caller, ApiError>> {
        let token = self.session.as_deref()?;
        let user = match principal_of(state, token).await {
            Ok(Some(Principal::User(user))) => user,
            Ok(_) => return None,
            Err(e) => return Some(Err(e)),
        };
        let first = match state.store.memberships(&user.id).await {
            Ok(m) => m.into_iter().next().map(|(org, _)| org.id),
            Err(e) => return Some(Err(e.into())),
        };
        let auth = Authenticated {
            principal: Principal::User(user),
            origin: self.origin.map(|ip| ip.to_string()).unwrap_or_default(),
        };
        Some(Caller::of(state, auth, first.as_deref()).await)
    }
}

/// A signed-in publisher, with what every page of theirs shows; others are sent to
/// **Sign in**.
pub struct SignedIn {
    pub caller: Caller,
    pub chrome: Chrome,
}

/// What the layout shows of the signed-in publisher.
pub struct Chrome {
    pub org: String,
    pub email: String,
    pub csrf: String,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(visitor) = Visitor::from_request_parts(parts, state).await;
        match visitor.signed_in(state).await {
            Some(Ok(caller)) => Ok(SignedIn {
                chrome: Chrome {
                    org: caller.org.name.clone(),
                    email: caller.who().to_string(),
                    csrf: visitor.csrf,
                },
                caller,
            }),
            Some(Err(e)) => Err(failure(e)),
            None => Err(Redirect::to("/console/sign-in").into_response()),
        }
    }
}

/// A form with nothing to say but its CSRF token (sign out).
#[derive(Deserialize)]
pub struct NoFields {}

/// A posted form whose CSRF token (field `csrf`) is the visitor's; any other is refused
/// before the form is read.
pub struct Posted<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        #[derive(Deserialize)]
        struct Token {
            #[serde(default)]
            csrf: String,
        }
        let expected = req.extensions().get::<CsrfToken>().cloned();
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let sent = serde_urlencoded::from_bytes::<Token>(&bytes)
            .map(|t| t.csrf)
            .unwrap_or_default();
        match expected {
            Some(CsrfToken(t)) if same_token(&t, &sent) => {}
            _ => {
                return Err(failure(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "this form has expired or came from another site: go back, reload the page and send it again",
                )))
            }
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(Posted)
            .map_err(|e| {
                failure(ApiError::bad_request(format!(
                    "the form could not be read: {e}"
                )))
            })
    }
}

/// Whether a CSRF token sent with a request is the visitor's.
pub fn same_token(visitor: &str, sent: &str) -> bool {
    !visitor.is_empty() && constant_time_eq(visitor.as_bytes(), sent.as_bytes())
}

/// A page, rendered.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a console page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    chrome: Option<Chrome>,
    title: String,
    detail: String,
}

/// A page, or the error page of what went wrong: `?` takes any management error.
pub type PageResult = Result<Response, Failure>;

/// What went wrong, answered with the error page.
pub struct Failure(ApiError);

impl<E: Into<ApiError>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        failure(self.0)
    }
}

/// An error page: what went wrong, in the management API's words.
pub fn failure(e: impl Into<ApiError>) -> Response {
    let e: ApiError = e.into();
    let title = e
        .status
        .canonical_reason()
        .unwrap_or("Something went wrong")
        .to_string();
    render(
        e.status,
        &ErrorPage {
            chrome: None,
            title,
            detail: e.detail,
        },
    )
}

/// After signing in: the session cookie (for the site of `to`), and on to `to`.
pub fn signed_in(state: &AppState, session: &Session, to: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    let ttl = cookie::time::Duration::seconds(state.config.session_ttl.as_secs() as i64);
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(site_of(to), SESSION_COOKIE, &session.token, Some(ttl)),
    );
    res
}

/// After signing out: the session cookie (of the site of `to`) removed, and on to `to`.
pub fn signed_out(to: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            site_of(to),
            SESSION_COOKIE,
            "",
            Some(cookie::time::Duration::ZERO),
        ),
    );
    res
}
