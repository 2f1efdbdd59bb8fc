//! Sign-up, login, logout and "who am I".

use crate::dto::{LoginRequest, PasswordChange, SessionView, SignupAccepted, SignupRequest, UserView};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{check_login_origin, session_cookie, ApiJson, ClientIp, SignedIn, Via};
use crate::state::{ApiSettings, AppState};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use cookie::{Cookie, SameSite};
use olive_commerce::accounts::{self, SessionToken, SignupInput};
use olive_commerce::CommerceError;
use olive_core::Role;
use olive_store::{SessionKind, User};
use std::time::Instant;

/// `Set-Cookie` for a session token, or one that clears the cookie.
fn set_cookie(settings: &ApiSettings, token: Option<&SessionToken>) -> HeaderValue {
    let mut cookie = Cookie::build((settings.cookie_name(), token.map(|t| t.expose().to_owned()).unwrap_or_default()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(settings.behind_tls())
        .build();
    let max_age = if token.is_some() { accounts::SESSION_TTL.num_seconds() } else { 0 };
    cookie.set_max_age(cookie::time::Duration::seconds(max_age));
    HeaderValue::from_str(&cookie.to_string()).expect("a cookie of base64url characters is a valid header")
}

/// Starts a cookie session and a bearer session for `user` and answers with both.
async fn signed_in(state: &AppState, user: &User, status: StatusCode) -> ApiResult<Response> {
    let now = Utc::now();
    let cookie = accounts::start_session(state.store.as_ref(), user.id, SessionKind::Cookie, now).await?;
    let bearer = accounts::start_session(state.store.as_ref(), user.id, SessionKind::Bearer, now).await?;
    // The next requests of a user who just signed in need not ask the database who they are.
    state.cache.remember_session(&cookie, user);
    state.cache.remember_session(&bearer, user);
    let body = SessionView { token: bearer.expose().to_owned(), user: user.into() };
    Ok((status, [(header::SET_COOKIE, set_cookie(&state.settings, Some(&cookie)))], ApiJson(body)).into_response())
}

/// Sign-up answers `202` the same way for a new address and a taken one (the taken account is
/// left alone), after the same work, so it cannot be used to find out who has an account; the
/// client signs in next. Throttled per client address; password hashing is bounded per process
/// (`503 busy` past that).
#[utoipa::path(post, operation_id = "auth_signup", path = "/api/v1/auth/signup", tag = "accounts", request_body = SignupRequest,
    responses((status = 202, body = SignupAccepted), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SignupRequest>,
) -> ApiResult<Response> {
    check_login_origin(&headers, &state.settings)?;
    state.throttle.admit_signup(ip, Instant::now())?;
    let email = accounts::normalise_email(&req.email)?;
    let input = SignupInput { email: email.clone(), password: req.password, display_name: req.display_name };
    accounts::signup(state.store.as_ref(), input, Role::Viewer, Utc::now()).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(SignupAccepted { email, next: "log_in" })).into_response())
}

#[utoipa::path(post, operation_id = "auth_login", path = "/api/v1/auth/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    check_login_origin(&headers, &state.settings)?;
    state.throttle.admit_login(ip, &req.email, Instant::now())?;
    let user = match accounts::check_credentials(state.store.as_ref(), &req.email, req.password).await {
        Ok(user) => user,
        Err(e @ CommerceError::InvalidCredentials) => {
            state.throttle.login_failed(ip, &req.email, Instant::now());
            tracing::info!(%ip, "login failed");
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    state.throttle.login_succeeded(ip, &req.email);
    // Rotate: whatever session this browser held before logging in ends here.
    if let Some(old) = session_cookie(&headers, &state.settings).and_then(|raw| SessionToken::parse(&raw)) {
        accounts::end_session(state.store.as_ref(), &old).await?;
        state.cache.invalidate_session(&old).await;
    }
    tracing::info!(user_id = %user.id, "logged in");
    signed_in(&state, &user, StatusCode::OK).await
}

#[utoipa::path(post, operation_id = "auth_logout", path = "/api/v1/auth/logout", tag = "accounts",
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, SignedIn(auth): SignedIn) -> ApiResult<Response> {
    accounts::end_session(state.store.as_ref(), &auth.token).await?;
    state.cache.invalidate_session(&auth.token).await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if auth.via == Via::Cookie {
        response.headers_mut().insert(header::SET_COOKIE, set_cookie(&state.settings, None));
    }
    Ok(response)
}

/// Signs the caller out everywhere: every session of the account ends, this one too, and their
/// room sockets close on every node.
#[utoipa::path(post, operation_id = "auth_logout_all", path = "/api/v1/auth/logout-all", tag = "accounts",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn logout_all(State(state): State<AppState>, SignedIn(auth): SignedIn) -> ApiResult<Response> {
    accounts::end_all_sessions(state.store.as_ref(), &auth.user).await?;
    state.cache.invalidate_user(auth.user.id).await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if auth.via == Via::Cookie {
        response.headers_mut().insert(header::SET_COOKIE, set_cookie(&state.settings, None));
    }
    Ok(response)
}

/// Changes the caller's password (the current one is asked again) and ends every other session;
/// this one goes on. Counted against login attempts, like any password check.
#[utoipa::path(post, operation_id = "auth_change_password", path = "/api/v1/me/password", tag = "accounts", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    SignedIn(auth): SignedIn,
    ApiJson(req): ApiJson<PasswordChange>,
) -> ApiResult<Response> {
    state.throttle.admit_login(ip, &auth.user.email, Instant::now())?;
    let changed = accounts::change_password(
        state.store.as_ref(),
        &auth.user,
        req.current_password,
        req.new_password,
        &auth.token,
    )
    .await;
    match changed {
        Ok(_) => state.throttle.login_succeeded(ip, &auth.user.email),
        Err(CommerceError::InvalidCredentials) => {
            state.throttle.login_failed(ip, &auth.user.email, Instant::now());
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the current password is wrong",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    // Every node forgets the account's sessions and closes its sockets; this session is read again.
    state.cache.invalidate_user(auth.user.id).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, operation_id = "auth_me", path = "/api/v1/me", tag = "accounts",
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
pub async fn me(signed_in: SignedIn) -> ApiJson<UserView> {
    ApiJson(signed_in.user().into())
}

/// Kept for handlers that need "signed in with at least this role".
pub fn require_role(user: &User, role: Role) -> Result<(), ApiError> {
    if user.role.at_least(role) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}
