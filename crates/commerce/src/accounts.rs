//! Accounts and sessions.
//!
//! Passwords are hashed with argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane) on the
//! blocking pool, never on the async runtime, and at most one hash per core at once
//! ([`HashingGate`]): past that a short queue, then `Busy`, so a burst of sign-ups or logins costs
//! a bounded amount of memory instead of 19 MiB per request. A session id is 32 random bytes
//! handed to the client once; the store keeps only its SHA-256, so a database leak yields no
//! usable session. Login answers the same `InvalidCredentials` for an unknown email and a wrong
//! password, and spends the same time on both (an unknown email is verified against a dummy
//! hash). Sign-up answers the same for a new and a taken email ([`SignupOutcome`]), after the
//! same work. Sign-ups are throttled per client address; login attempts per address and, for
//! failures, per account and address ([`AccountThrottle`]).

use crate::{validate, CommerceError, Result};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use olive_core::ratelimit::{KeyedLimiter, Quota};
use olive_core::{AddressKey, Role, UserId};
use olive_store::{AccountStore, NewSession, NewUser, SessionHash, SessionKind, StoreError, User};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::days(30);

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2id parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Bounds the password hashing of the whole process: `permits` hashes at once (one per core),
/// `max_queued` more waiting at most `max_wait` for a turn; anyone else is told `Busy` at once.
/// Each hash holds 19 MiB while it runs, so this bounds hashing's memory to `permits` × 19 MiB
/// whatever arrives.
pub struct HashingGate {
    permits: tokio::sync::Semaphore,
    queued: AtomicUsize,
    max_queued: usize,
    max_wait: std::time::Duration,
}

impl HashingGate {
    pub fn new(permits: usize, max_queued: usize, max_wait: std::time::Duration) -> Self {
        HashingGate {
            permits: tokio::sync::Semaphore::new(permits.max(1)),
            queued: AtomicUsize::new(0),
            max_queued,
            max_wait,
        }
    }

    /// The process's gate: one hash per core, eight waiting per core for up to 2 s.
    pub fn global() -> &'static HashingGate {
        static GATE: OnceLock<HashingGate> = OnceLock::new();
        GATE.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            HashingGate::new(cores, 8 * cores, std::time::Duration::from_secs(2))
        })
    }

    /// Runs `work` on the blocking pool once a permit is free.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                if self.queued.fetch_add(1, Ordering::AcqRel) >= self.max_queued {
                    self.queued.fetch_sub(1, Ordering::AcqRel);
                    return Err(CommerceError::Busy);
                }
                let waited = tokio::time::timeout(self.max_wait, self.permits.acquire()).await;
                self.queued.fetch_sub(1, Ordering::AcqRel);
                match waited {
                    Ok(Ok(permit)) => permit,
                    _ => {
                        return Err(CommerceError::Busy);
                    }
                }
            }
        };
        let result = tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| CommerceError::Internal(format!("password hashing task failed: {e}")));
        drop(permit);
        result
    }
}

/// Hashes a password to a PHC string, off the async runtime.
pub async fn hash_password(password: SecretString) -> Result<String> {
    HashingGate::global()
        .run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| CommerceError::Internal(format!("password hashing failed: {e}")))
        })
        .await?
}

/// Whether `password` matches the PHC string `hash`, off the async runtime. `Busy` when the
/// process is hashing all it may.
pub async fn verify_password(hash: String, password: SecretString) -> Result<bool> {
    HashingGate::global()
        .run(move || {
            PasswordHash::new(&hash)
                .map(|parsed| argon2().verify_password(password.expose_secret().as_bytes(), &parsed).is_ok())
                .unwrap_or(false)
        })
        .await
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

/// What a sign-up did. The public API answers both the same way, so sign-up cannot be used to
/// learn who has an account; operators' tools tell them apart.
#[derive(Debug)]
pub enum SignupOutcome {
    Created(User),
    /// The email already has an account, which is left as it was.
    AlreadyRegistered,
}

impl SignupOutcome {
    /// The new account, or `EmailTaken` (for operators' tools, which may say so).
    pub fn created(self) -> Result<User> {
        match self {
            SignupOutcome::Created(user) => Ok(user),
            SignupOutcome::AlreadyRegistered => Err(CommerceError::EmailTaken),
        }
    }
}

/// Creates an account with `role`. Public sign-up always passes `Role::Viewer`. The password is
/// hashed before the email is looked at, so a taken email costs the same time as a new one.
pub async fn signup(
    store: &dyn AccountStore,
    input: SignupInput,
    role: Role,
    now: DateTime<Utc>,
) -> Result<SignupOutcome> {
    let email = normalise_email(&input.email)?;
    check_password(&input.password)?;
    let display_name = match input.display_name.as_deref() {
        Some(name) => validate::line("display_name", name, 1, 50)?,
        None => email.split('@').next().unwrap_or_default().chars().take(50).collect(),
    };
    let password_hash = hash_password(input.password).await?;
    match store.create_user(NewUser { email, display_name, password_hash, role, created_at: now }).await {
        Ok(user) => {
            tracing::info!(user_id = %user.id, role = %user.role, "account created");
            Ok(SignupOutcome::Created(user))
        }
        Err(StoreError::AlreadyExists("user")) => Ok(SignupOutcome::AlreadyRegistered),
        Err(e) => Err(e.into()),
    }
}

/// The account whose email and password these are, or `InvalidCredentials` — never which part was wrong.
pub async fn check_credentials(store: &dyn AccountStore, email: &str, password: SecretString) -> Result<User> {
    let Ok(email) = normalise_email(email) else {
        verify_password(dummy_hash().to_owned(), password).await?;
        return Err(CommerceError::InvalidCredentials);
    };
    match store.credentials_by_email(&email).await? {
        Some(creds) => {
            if verify_password(creds.password_hash, password).await? {
                Ok(creds.user)
            } else {
                Err(CommerceError::InvalidCredentials)
            }
        }
        None => {
            verify_password(dummy_hash().to_owned(), password).await?;
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
    store: &dyn AccountStore,
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
pub async fn session_user(store: &dyn AccountStore, token: &SessionToken, now: DateTime<Utc>) -> Result<Option<User>> {
    Ok(store.session_user(&token.hash(), now).await?)
}

pub async fn end_session(store: &dyn AccountStore, token: &SessionToken) -> Result<()> {
    Ok(store.delete_session(&token.hash()).await?)
}

/// Gives the account `id` the role `role`, on an admin's word. An admin may not change their own
/// role: the shop is never left without the admin who acted, and nobody demotes themselves by a
/// slip.
pub async fn set_role(store: &dyn AccountStore, actor: &User, id: UserId, role: Role) -> Result<User> {
    if !actor.role.at_least(Role::Admin) {
        return Err(CommerceError::Forbidden);
    }
    if actor.id == id {
        return Err(CommerceError::invalid("role", "an admin cannot change their own role; ask another admin"));
    }
    let user = store.set_user_role(id, role).await?;
    tracing::info!(user_id = %id, %role, by = %actor.id, "role changed");
    Ok(user)
}

/// Signs `user` out everywhere: every session ends, the caller's too.
pub async fn end_all_sessions(store: &dyn AccountStore, user: &User) -> Result<u64> {
    let ended = store.delete_user_sessions(user.id, None).await?;
    tracing::info!(user_id = %user.id, sessions = ended, "signed out everywhere");
    Ok(ended)
}

/// Changes `user`'s password after checking the current one, and ends every other session (the
/// one in `keep` goes on). `InvalidCredentials` when the current password is wrong.
pub async fn change_password(
    store: &dyn AccountStore,
    user: &User,
    current: SecretString,
    new: SecretString,
    keep: &SessionToken,
) -> Result<u64> {
    check_password(&new).map_err(|_| CommerceError::invalid("new_password", "must be 8 to 128 characters"))?;
    let creds = store.credentials_by_email(&user.email).await?.ok_or(CommerceError::InvalidCredentials)?;
    if creds.user.id != user.id || !verify_password(creds.password_hash, current).await? {
        return Err(CommerceError::InvalidCredentials);
    }
    let hash = hash_password(new).await?;
    store.set_password_hash(user.id, &hash).await?;
    let ended = store.delete_user_sessions(user.id, Some(&keep.hash())).await?;
    tracing::info!(user_id = %user.id, sessions = ended, "password changed; other sessions ended");
    Ok(ended)
}

/// Limits for [`AccountThrottle`].
#[derive(Debug, Clone, Copy)]
pub struct AccountLimits {
    /// Every login attempt from one client address.
    pub logins_per_address: Quota,
    /// Failed logins on one account from one client address: what stops a guesser.
    pub failures_per_account_address: Quota,
    /// Failed logins on one account from addresses it never signed in from: what slows a guesser
    /// spread over many addresses, without locking the owner out of the addresses they use.
    pub failures_per_account: Quota,
    /// Sign-ups from one client address.
    pub signups_per_address: Quota,
}

impl AccountLimits {
    /// `n` events in `window`, at once or spread out.
    pub fn per(n: u32, window: std::time::Duration) -> Quota {
        let n = n.max(1);
        Quota::new(n, window / n)
    }

    /// `per_hour` sign-ups from one address in an hour, at once or spread out.
    pub fn signups_per_hour(per_hour: u32) -> Quota {
        Self::per(per_hour, std::time::Duration::from_secs(3600))
    }

    /// `per_minute` login attempts from one address in a minute, at once or spread out.
    pub fn logins_per_minute(per_minute: u32) -> Quota {
        Self::per(per_minute, std::time::Duration::from_secs(60))
    }
}

impl Default for AccountLimits {
    fn default() -> Self {
        AccountLimits {
            logins_per_address: Self::logins_per_minute(DEFAULT_LOGINS_PER_MINUTE),
            failures_per_account_address: Quota::new(5, std::time::Duration::from_secs(60)),
            failures_per_account: Quota::new(50, std::time::Duration::from_secs(60)),
            signups_per_address: Self::signups_per_hour(DEFAULT_SIGNUPS_PER_HOUR),
        }
    }
}

/// Sign-ups one client address may make in an hour unless configured otherwise.
pub const DEFAULT_SIGNUPS_PER_HOUR: u32 = 30;
/// Login attempts one client address may make in a minute unless configured otherwise.
pub const DEFAULT_LOGINS_PER_MINUTE: u32 = 20;

/// Slows password guessing and account spraying, in memory on each node. Addresses count as
/// [`AddressKey`]s (an IPv6 client by its /64). A failed login counts against the account from
/// that address, and against the account as a whole; the whole-account limit does not apply to
/// an address the account has signed in from, so nobody can lock an owner out by failing on
/// their account from elsewhere.
pub struct AccountThrottle {
    logins: Mutex<KeyedLimiter<AddressKey>>,
    account_address: Mutex<KeyedLimiter<(String, AddressKey)>>,
    account: Mutex<KeyedLimiter<String>>,
    signups: Mutex<KeyedLimiter<AddressKey>>,
    known: Mutex<KnownAddresses>,
}

/// The addresses each account signed in from lately: a few per account, a bounded number of
/// accounts (the oldest forgotten first).
#[derive(Default)]
struct KnownAddresses {
    by_account: HashMap<String, Vec<AddressKey>>,
    order: VecDeque<String>,
}

impl KnownAddresses {
    const PER_ACCOUNT: usize = 8;
    const ACCOUNTS: usize = 100_000;

    fn contains(&self, account: &str, address: AddressKey) -> bool {
        self.by_account.get(account).is_some_and(|a| a.contains(&address))
    }

    fn remember(&mut self, account: String, address: AddressKey) {
        if !self.by_account.contains_key(&account) {
            if self.order.len() >= Self::ACCOUNTS {
                if let Some(oldest) = self.order.pop_front() {
                    self.by_account.remove(&oldest);
                }
            }
            self.order.push_back(account.clone());
        }
        let addresses = self.by_account.entry(account).or_default();
        addresses.retain(|a| *a != address);
        addresses.push(address);
        if addresses.len() > Self::PER_ACCOUNT {
            addresses.remove(0);
        }
    }
}

fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

fn limited<K: std::hash::Hash + Eq + Clone>(
    limiter: &Mutex<KeyedLimiter<K>>,
    key: &K,
    now: Instant,
    record: bool,
) -> Result<()> {
    let mut limiter = limiter.lock().expect("throttle poisoned");
    let decided = if record { limiter.check(key, now) } else { limiter.peek(key, now) };
    decided.map_err(|retry| CommerceError::RateLimited(retry.0))
}

impl AccountThrottle {
    const MAX_KEYS: usize = 100_000;

    pub fn new(limits: AccountLimits) -> Self {
        let limiter = |quota| Mutex::new(KeyedLimiter::new(quota, Self::MAX_KEYS));
        AccountThrottle {
            logins: limiter(limits.logins_per_address),
            account_address: Mutex::new(KeyedLimiter::new(limits.failures_per_account_address, Self::MAX_KEYS)),
            account: Mutex::new(KeyedLimiter::new(limits.failures_per_account, Self::MAX_KEYS)),
            signups: limiter(limits.signups_per_address),
            known: Mutex::default(),
        }
    }

    /// Called before checking a password: refuses if this address failed too often on the
    /// account, or (from an address the account never signed in from) the account failed too
    /// often from everywhere; then counts the attempt against the address.
    pub fn admit_login(&self, ip: IpAddr, email: &str, now: Instant) -> Result<()> {
        let (account, address) = (account_key(email), AddressKey::of(ip));
        limited(&self.account_address, &(account.clone(), address), now, false)?;
        if !self.known.lock().expect("throttle poisoned").contains(&account, address) {
            limited(&self.account, &account, now, false)?;
        }
        limited(&self.logins, &address, now, true)
    }

    pub fn login_failed(&self, ip: IpAddr, email: &str, now: Instant) {
        let (account, address) = (account_key(email), AddressKey::of(ip));
        let _ = limited(&self.account_address, &(account.clone(), address), now, true);
        let _ = limited(&self.account, &account, now, true);
    }

    pub fn login_succeeded(&self, ip: IpAddr, email: &str) {
        let (account, address) = (account_key(email), AddressKey::of(ip));
        self.account_address.lock().expect("throttle poisoned").reset(&(account.clone(), address));
        self.known.lock().expect("throttle poisoned").remember(account, address);
    }

    /// Counts a sign-up against its address, or refuses it.
    pub fn admit_signup(&self, ip: IpAddr, now: Instant) -> Result<()> {
        limited(&self.signups, &AddressKey::of(ip), now, true)
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
        assert!(verify_password(hash.clone(), SecretString::from("correct horse")).await.unwrap());
        assert!(!verify_password(hash, SecretString::from("wrong horse")).await.unwrap());
        assert!(!verify_password("not a phc string".into(), SecretString::from("x")).await.unwrap());
    }

    fn limits() -> AccountLimits {
        AccountLimits {
            logins_per_address: Quota::new(10, StdDuration::from_secs(1)),
            failures_per_account_address: Quota::new(3, StdDuration::from_secs(60)),
            failures_per_account: Quota::new(6, StdDuration::from_secs(60)),
            signups_per_address: Quota::new(2, StdDuration::from_secs(60)),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failures_are_limited_per_account_and_address_and_attempts_per_address() {
        let t = AccountThrottle::new(limits());
        let now = Instant::now();
        for _ in 0..3 {
            t.admit_login(ip("10.0.0.1"), "Ana@example.com", now).unwrap();
            t.login_failed(ip("10.0.0.1"), "ana@example.com", now);
        }
        assert!(matches!(t.admit_login(ip("10.0.0.1"), "ana@example.com", now), Err(CommerceError::RateLimited(_))));
        // The owner, elsewhere, is not locked out by someone else's failures.
        t.admit_login(ip("10.0.0.9"), "ana@example.com", now).unwrap();
        // Another account from the guessing address is still allowed, until the address runs out.
        for _ in 0..7 {
            t.admit_login(ip("10.0.0.1"), "bo@example.com", now).unwrap();
        }
        assert!(t.admit_login(ip("10.0.0.1"), "cy@example.com", now).is_err());
        // A minute later the account may be tried again from there.
        let later = now + StdDuration::from_secs(61);
        t.admit_login(ip("10.0.0.1"), "ana@example.com", later).unwrap();
    }

    #[test]
    fn a_guesser_spread_over_addresses_cannot_lock_the_owner_out_of_an_address_they_use() {
        let t = AccountThrottle::new(limits());
        let now = Instant::now();
        t.admit_login(ip("192.0.2.7"), "ana@example.com", now).unwrap();
        t.login_succeeded(ip("192.0.2.7"), "ana@example.com");
        // Three addresses fail twice each: the account as a whole has failed too often.
        for n in 1..=3 {
            let from = ip(&format!("198.51.100.{n}"));
            for _ in 0..2 {
                t.admit_login(from, "ana@example.com", now).unwrap();
                t.login_failed(from, "ana@example.com", now);
            }
        }
        assert!(t.admit_login(ip("198.51.100.77"), "ana@example.com", now).is_err(), "a new address waits");
        t.admit_login(ip("192.0.2.7"), "ana@example.com", now).expect("the owner's own address passes");
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let t = AccountThrottle::new(limits());
        let now = Instant::now();
        t.admit_signup(ip("2001:db8:1:2::1"), now).unwrap();
        t.admit_signup(ip("2001:db8:1:2::2"), now).unwrap();
        assert!(t.admit_signup(ip("2001:db8:1:2:ffff::3"), now).is_err(), "a fresh address in the same /64");
        t.admit_signup(ip("2001:db8:1:3::1"), now).unwrap();
        for n in 1..=3 {
            let from = ip(&format!("2001:db8:9:9::{n}"));
            t.admit_login(from, "ana@example.com", now).unwrap();
            t.login_failed(from, "ana@example.com", now);
        }
        assert!(t.admit_login(ip("2001:db8:9:9::ffff"), "ana@example.com", now).is_err());
    }

    #[test]
    fn signups_per_hour_spread_over_the_hour() {
        let q = AccountLimits::signups_per_hour(30);
        assert_eq!((q.burst, q.period), (30, StdDuration::from_secs(120)));
        assert_eq!(AccountLimits::signups_per_hour(0).burst, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_hashing_gate_runs_a_bounded_number_and_refuses_past_its_queue() {
        let gate = std::sync::Arc::new(HashingGate::new(1, 2, StdDuration::from_secs(5)));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = std::sync::Arc::new(Mutex::new(hold));
        let running = std::sync::Arc::new(AtomicUsize::new(0));
        let peak = std::sync::Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let (gate, hold, running, peak) = (gate.clone(), hold.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                gate.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    let _ = hold.lock().unwrap().recv();
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        // One runs and two wait: the queue is full, so a fourth is refused at once.
        while gate.queued.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(gate.run(|| ()).await, Err(CommerceError::Busy)));
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 1, "never more than its permits at once");
        // A waiter that does not get a turn in time is refused too.
        let quick = HashingGate::new(1, 4, StdDuration::from_millis(50));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = async {
            quick
                .run(move || {
                    let _ = hold.recv();
                })
                .await
        };
        let late = async {
            tokio::time::sleep(StdDuration::from_millis(10)).await;
            let refused = quick.run(|| ()).await;
            release.send(()).unwrap();
            refused
        };
        let (first, second) = tokio::join!(busy, late);
        first.unwrap();
        assert!(matches!(second, Err(CommerceError::Busy)));
    }
}
