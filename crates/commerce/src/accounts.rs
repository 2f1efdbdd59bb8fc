//! Accounts and sessions.
//!
//! Passwords are hashed with argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane) on the
//! blocking pool, never on the async runtime. A session id is 32 random bytes handed to the client
//! once; the store keeps only its SHA-256, so a database leak yields no usable session. Login
//! answers the same `InvalidCredentials` for an unknown email and a wrong password, and spends the
//! same time on both (an unknown email is verified against a dummy hash). Login attempts are
//! throttled per client address and, for failures, per account.

use crate::{validate, CommerceError, Result};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use olive_core::ratelimit::{KeyedLimiter, Quota};
use olive_core::{Role, UserId};
use olive_store::{NewSession, NewUser, SessionHash, SessionKind, Store, User};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::days(30);

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2id parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password to a PHC string, off the async runtime.
pub async fn hash_password(password: SecretString) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CommerceError::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| CommerceError::Internal(format!("password hashing task failed: {e}")))?
}

/// Whether `password` matches the PHC string `hash`, off the async runtime.
pub async fn verify_password(hash: String, password: SecretString) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| argon2().verify_password(password.expose_secret().as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash of nothing anyone knows, verified when the email is unknown so both failures cost the same.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(&rand::random::<[u8; 32]>(), &salt)
            .expect("hashing random bytes cannot fail")
            .to_string()
    })
}

/// Trimmed, lower-cased, and shaped like an address (`local@domain.tld`, at most 254 characters).
pub fn normalise_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let bad = || CommerceError::invalid("email", "must be an email address");
    if email.is_empty() || email.chars().count() > 254 {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.len() < 3
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains('@')
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(email)
}

/// 8 to 128 characters; anything else goes (NIST SP 800-63B).
pub fn check_password(password: &SecretString) -> Result<()> {
    let n = password.expose_secret().chars().count();
    if !(8..=128).contains(&n) {
        return Err(CommerceError::invalid("password", "must be 8 to 128 characters"));
    }
    Ok(())
}

pub struct SignupInput {
    pub email: String,
    pub password: SecretString,
    pub display_name: Option<String>,
}

/// Creates an account with `role`. Public sign-up always passes `Role::Viewer`.
pub async fn signup(store: &dyn Store, input: SignupInput, role: Role, now: DateTime<Utc>) -> Result<User> {
    let email = normalise_email(&input.email)?;
    check_password(&input.password)?;
    let display_name = match input.display_name.as_deref() {
        Some(name) => validate::line("display_name", name, 1, 50)?,
        None => email.split('@').next().unwrap_or_default().chars().take(50).collect(),
    };
    let password_hash = hash_password(input.password).await?;
    let user = store.create_user(NewUser { email, display_name, password_hash, role, created_at: now }).await?;
    tracing::info!(user_id = %user.id, role = %user.role, "account created");
    Ok(user)
}

/// The account whose email and password these are, or `InvalidCredentials` — never which part was wrong.
pub async fn check_credentials(store: &dyn Store, email: &str, password: SecretString) -> Result<User> {
    let Ok(email) = normalise_email(email) else {
        verify_password(dummy_hash().to_owned(), password).await;
        return Err(CommerceError::InvalidCredentials);
    };
    match store.credentials_by_email(&email).await? {
        Some(creds) => {
            if verify_password(creds.password_hash, password).await {
                Ok(creds.user)
            } else {
                Err(CommerceError::InvalidCredentials)
            }
        }
        None => {
            verify_password(dummy_hash().to_owned(), password).await;
            Err(CommerceError::InvalidCredentials)
        }
    }
}

/// The opaque secret a client holds for a session: 32 random bytes, base64url.
pub struct SessionToken(SecretString);

impl SessionToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        SessionToken(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts only what [`generate`](Self::generate) makes, so junk never reaches the database.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = raw.len() == 43 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| SessionToken(SecretString::from(raw.to_owned())))
    }

    pub fn hash(&self) -> SessionHash {
        SessionHash(Sha256::digest(self.0.expose_secret().as_bytes()).into())
    }

    /// The secret itself, for the one place that hands it to the client.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// Starts a session for `user` and returns its token.
pub async fn start_session(
    store: &dyn Store,
    user: UserId,
    kind: SessionKind,
    now: DateTime<Utc>,
) -> Result<SessionToken> {
    let token = SessionToken::generate();
    store
        .create_session(NewSession {
            hash: token.hash(),
            user_id: user,
            kind,
            created_at: now,
            expires_at: now + SESSION_TTL,
        })
        .await?;
    Ok(token)
}

/// The user a token belongs to, if the session is live.
pub async fn session_user(store: &dyn Store, token: &SessionToken, now: DateTime<Utc>) -> Result<Option<User>> {
    Ok(store.session_user(&token.hash(), now).await?)
}

pub async fn end_session(store: &dyn Store, token: &SessionToken) -> Result<()> {
    Ok(store.delete_session(&token.hash()).await?)
}

/// Limits for [`LoginThrottle`].
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Every attempt from one address counts.
    pub per_ip: Quota,
    /// Failed attempts on one account count.
    pub per_account_failures: Quota,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_ip: Quota::new(20, std::time::Duration::from_secs(3)),
            per_account_failures: Quota::new(5, std::time::Duration::from_secs(60)),
        }
    }
}

/// Slows password guessing: per client address and per account, in memory on each node.
pub struct LoginThrottle {
    per_ip: Mutex<KeyedLimiter<IpAddr>>,
    per_account: Mutex<KeyedLimiter<String>>,
}

impl LoginThrottle {
    const MAX_KEYS: usize = 100_000;

    pub fn new(limits: LoginLimits) -> Self {
        LoginThrottle {
            per_ip: Mutex::new(KeyedLimiter::new(limits.per_ip, Self::MAX_KEYS)),
            per_account: Mutex::new(KeyedLimiter::new(limits.per_account_failures, Self::MAX_KEYS)),
        }
    }

    /// Called before checking a password: counts the attempt against the address and refuses if
    /// either the address or the account is over its limit.
    pub fn admit(&self, ip: IpAddr, email: &str, now: Instant) -> Result<()> {
        let key = email.trim().to_lowercase();
        if let Err(retry) = self.per_account.lock().expect("throttle poisoned").peek(&key, now) {
            return Err(CommerceError::RateLimited(retry.0));
        }
        self.per_ip
            .lock()
            .expect("throttle poisoned")
            .check(&ip, now)
            .map_err(|retry| CommerceError::RateLimited(retry.0))
    }

    pub fn failed(&self, email: &str, now: Instant) {
        let key = email.trim().to_lowercase();
        let _ = self.per_account.lock().expect("throttle poisoned").check(&key, now);
    }

    pub fn succeeded(&self, email: &str) {
        self.per_account.lock().expect("throttle poisoned").reset(&email.trim().to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as StdDuration;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalise_email("  Ana@Example.COM ").unwrap(), "ana@example.com");
        for bad in ["", "ana", "ana@", "@example.com", "ana@example", "a b@example.com", "a@b@c.com", "ana@.com"] {
            assert!(normalise_email(bad).is_err(), "{bad:?}");
        }
        assert!(normalise_email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn session_tokens_are_random_and_parse_strictly() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.hash(), b.hash());
        let parsed = SessionToken::parse(a.expose()).unwrap();
        assert_eq!(parsed.hash(), a.hash());
        for junk in ["", "short", &"x".repeat(44), &format!("{}'", &"x".repeat(42))] {
            assert!(SessionToken::parse(junk).is_none(), "{junk:?}");
        }
    }

    #[tokio::test]
    async fn password_hashes_verify_and_are_argon2id() {
        let hash = hash_password(SecretString::from("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password(hash.clone(), SecretString::from("correct horse")).await);
        assert!(!verify_password(hash, SecretString::from("wrong horse")).await);
        assert!(!verify_password("not a phc string".into(), SecretString::from("x")).await);
    }

    #[test]
    fn throttle_limits_failures_per_account_and_attempts_per_ip() {
        let limits = LoginLimits {
            per_ip: Quota::new(10, StdDuration::from_secs(1)),
            per_account_failures: Quota::new(3, StdDuration::from_secs(60)),
        };
        let t = LoginThrottle::new(limits);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..3 {
            t.admit(ip, "Ana@example.com", now).unwrap();
            t.failed("ana@example.com", now);
        }
        assert!(matches!(t.admit(ip, "ana@example.com", now), Err(CommerceError::RateLimited(_))));
        // Another account from the same address is still allowed, until the address runs out.
        t.admit(ip, "bo@example.com", now).unwrap();
        for _ in 0..6 {
            t.admit(ip, "bo@example.com", now).unwrap();
        }
        assert!(t.admit(ip, "cy@example.com", now).is_err());
        // A minute later the account may try again.
        let later = now + StdDuration::from_secs(61);
        t.admit("10.0.0.2".parse().unwrap(), "ana@example.com", later).unwrap();
    }
}
