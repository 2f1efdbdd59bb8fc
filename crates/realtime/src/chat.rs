//! Whether a chat message is let in, and in what form.
//!
//! The text is counted in characters, not bytes (a Korean syllable is one character of the 300),
//! has control characters turned into spaces and its ends trimmed, and is otherwise kept exactly:
//! it is sent as JSON text and shown as text, never parsed as HTML, so `<script>` is harmless
//! characters. The channel's banned words are matched case-insensitively anywhere in the text.
//!
//! [`ChatGate`] holds one channel's moderation state: a per-user rate limit (a burst, then one
//! message per period), the host's slow mode (one message per user per interval), mutes with an
//! end time and bans. Hosts and admins moderate and are not slowed down. Time is an argument.

use chrono::{DateTime, Duration, Utc};
use olive_core::UserId;
use std::collections::{HashMap, HashSet};

/// The most characters a chat message may have.
pub const MAX_CHARS: usize = 300;

/// Why a message was turned away; the code is what the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("sign in to chat")]
    SignInRequired,
    #[error("the message is empty")]
    Empty,
    #[error("the message has {0} characters; at most {MAX_CHARS} are allowed")]
    TooLong(usize),
    #[error("the message contains a word this channel does not allow")]
    BannedWord,
    #[error("too many messages; wait {0} ms")]
    RateLimited(i64),
    #[error("slow mode is on; wait {0} ms")]
    SlowMode(i64),
    #[error("you are muted in this channel for {0} more seconds")]
    Muted(i64),
    #[error("you are banned from this channel's chat")]
    Banned,
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::SignInRequired => "sign_in_required",
            Rejection::Empty => "empty_message",
            Rejection::TooLong(_) => "message_too_long",
            Rejection::BannedWord => "banned_word",
            Rejection::RateLimited(_) => "rate_limited",
            Rejection::SlowMode(_) => "slow_mode",
            Rejection::Muted(_) => "muted",
            Rejection::Banned => "banned",
        }
    }
}

/// The text as it will be stored and shown: control characters become spaces, the ends are
/// trimmed, and the length is checked in characters.
pub fn clean_text(text: &str) -> Result<String, Rejection> {
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        return Err(Rejection::Empty);
    }
    let chars = cleaned.chars().count();
    if chars > MAX_CHARS {
        return Err(Rejection::TooLong(chars));
    }
    Ok(cleaned.to_owned())
}

/// A channel's banned words, matched case-insensitively as substrings.
#[derive(Debug, Clone, Default)]
pub struct BannedWords {
    words: Vec<String>,
}

impl BannedWords {
    pub fn new<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> Self {
        let words = words.into_iter().map(|w| w.as_ref().trim().to_lowercase()).filter(|w| !w.is_empty()).collect();
        BannedWords { words }
    }

    pub fn matches(&self, text: &str) -> bool {
        if self.words.is_empty() {
            return false;
        }
        let lower = text.to_lowercase();
        self.words.iter().any(|w| lower.contains(w.as_str()))
    }
}

/// The sender as the gate sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    pub user: UserId,
    /// The channel's host or an admin: exempt from rate limits and slow mode.
    pub moderator: bool,
}

/// How fast one user may chat: `burst` messages at once, then one per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatQuota {
    pub burst: u32,
    pub period: Duration,
}

impl Default for ChatQuota {
    fn default() -> Self {
        ChatQuota { burst: 3, period: Duration::seconds(1) }
    }
}

/// One channel's chat rules and the state they need.
#[derive(Debug, Default)]
pub struct ChatGate {
    quota: ChatQuota,
    banned_words: BannedWords,
    slow_mode: Option<Duration>,
    muted_until: HashMap<UserId, DateTime<Utc>>,
    banned: HashSet<UserId>,
    /// GCRA theoretical arrival time per user.
    tat: HashMap<UserId, DateTime<Utc>>,
    last_sent: HashMap<UserId, DateTime<Utc>>,
}

impl ChatGate {
    pub fn new(quota: ChatQuota, banned_words: BannedWords) -> Self {
        ChatGate { quota, banned_words, ..Default::default() }
    }

    /// Takes the channel's rules as stored: banned words, slow mode, and the mutes and bans in
    /// force (replacing those held). Rate-limit state is kept.
    pub fn configure(
        &mut self,
        banned_words: BannedWords,
        slow_mode: Option<Duration>,
        restrictions: impl IntoIterator<Item = (UserId, Option<DateTime<Utc>>)>,
    ) {
        self.banned_words = banned_words;
        self.set_slow_mode(slow_mode);
        self.muted_until.clear();
        self.banned.clear();
        for (user, until) in restrictions {
            match until {
                Some(until) => self.mute(user, until),
                None => self.ban(user),
            }
        }
    }

    pub fn set_banned_words(&mut self, words: BannedWords) {
        self.banned_words = words;
    }

    /// One message per user per `interval`; `None` turns slow mode off.
    pub fn set_slow_mode(&mut self, interval: Option<Duration>) {
        self.slow_mode = interval.filter(|i| *i > Duration::zero());
    }

    pub fn slow_mode(&self) -> Option<Duration> {
        self.slow_mode
    }

    pub fn mute(&mut self, user: UserId, until: DateTime<Utc>) {
        self.muted_until.insert(user, until);
    }

    pub fn unmute(&mut self, user: UserId) {
        self.muted_until.remove(&user);
    }

    pub fn ban(&mut self, user: UserId) {
        self.banned.insert(user);
    }

    pub fn unban(&mut self, user: UserId) {
        self.banned.remove(&user);
    }

    pub fn is_banned(&self, user: UserId) -> bool {
        self.banned.contains(&user)
    }

    /// Lets a message in (returning its cleaned text, and counting it against the sender's
    /// limits) or says why not. A refused message costs the sender nothing.
    pub fn admit(&mut self, sender: Option<Sender>, text: &str, now: DateTime<Utc>) -> Result<String, Rejection> {
        let (sender, text) = self.check(sender, text, now)?;
        self.pace(sender, now)?;
        Ok(text)
    }

    /// Everything but timing: who may speak, and what. Returns the sender and the cleaned text.
    pub fn check(
        &mut self,
        sender: Option<Sender>,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(Sender, String), Rejection> {
        let sender = sender.ok_or(Rejection::SignInRequired)?;
        if self.banned.contains(&sender.user) {
            return Err(Rejection::Banned);
        }
        if let Some(until) = self.muted_until.get(&sender.user).copied() {
            if until > now {
                return Err(Rejection::Muted((until - now).num_seconds().max(1)));
            }
            self.muted_until.remove(&sender.user);
        }
        let text = clean_text(text)?;
        if self.banned_words.matches(&text) {
            return Err(Rejection::BannedWord);
        }
        Ok((sender, text))
    }

    /// The rate limit and slow mode, kept here (one node's memory): counts the message against
    /// them or says how long to wait. Moderators are not paced. Where limits are shared between
    /// nodes the hub applies [`ChatGate::pacing`] to the shared schedule instead.
    pub fn pace(&mut self, sender: Sender, now: DateTime<Utc>) -> Result<(), Rejection> {
        if sender.moderator {
            return Ok(());
        }
        if let (Some(interval), Some(last)) = (self.slow_mode, self.last_sent.get(&sender.user)) {
            let next = *last + interval;
            if next > now {
                return Err(Rejection::SlowMode((next - now).num_milliseconds().max(1)));
            }
        }
        // GCRA: the burst is the tolerance ahead of the theoretical arrival time.
        let period = self.quota.period;
        let tolerance = period * (self.quota.burst.max(1) as i32 - 1);
        let tat = self.tat.get(&sender.user).copied().unwrap_or(now).max(now);
        if tat - now > tolerance {
            return Err(Rejection::RateLimited((tat - now - tolerance).num_milliseconds().max(1)));
        }
        self.tat.insert(sender.user, tat + period);
        self.last_sent.insert(sender.user, now);
        Ok(())
    }

    /// The rate limit and slow-mode interval that pace this room's chatters.
    pub fn pacing(&self) -> (ChatQuota, Option<Duration>) {
        (self.quota, self.slow_mode)
    }

    /// Forgets per-user timing that no longer limits anyone (call now and then).
    pub fn prune(&mut self, now: DateTime<Utc>) {
        self.tat.retain(|_, tat| *tat > now);
        let slow = self.slow_mode.unwrap_or_else(Duration::zero);
        self.last_sent.retain(|_, last| *last + slow > now);
        self.muted_until.retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    fn viewer(id: i64) -> Option<Sender> {
        Some(Sender { user: UserId(id), moderator: false })
    }

    #[test]
    fn text_is_counted_in_characters_and_kept_as_text() {
        assert_eq!(clean_text("  안녕하세요 \n").unwrap(), "안녕하세요");
        assert_eq!(clean_text(&"가".repeat(300)).unwrap().chars().count(), 300, "900 bytes, 300 characters");
        assert_eq!(clean_text(&"가".repeat(301)), Err(Rejection::TooLong(301)));
        assert_eq!(clean_text(&"a".repeat(301)), Err(Rejection::TooLong(301)));
        assert_eq!(clean_text(" \t\r\n\u{0}"), Err(Rejection::Empty));
        assert_eq!(clean_text("a\u{0}b\u{1b}[31mc").unwrap(), "a b [31mc");
        assert_eq!(clean_text("<script>alert('x')</script>").unwrap(), "<script>alert('x')</script>");
        assert_eq!(clean_text("👍🏽 좋아요").unwrap(), "👍🏽 좋아요");
    }

    #[test]
    fn banned_words_match_anywhere_whatever_the_case() {
        let words = BannedWords::new(["Spam", "사기", " "]);
        assert!(words.matches("buy SPAM now"));
        assert!(words.matches("이거 사기야"));
        assert!(!words.matches("a fine lipstick"));
        assert!(!BannedWords::default().matches("anything"));
        let mut gate = ChatGate::new(ChatQuota::default(), words);
        assert_eq!(gate.admit(viewer(1), "spammy", at(0)), Err(Rejection::BannedWord));
        assert!(gate.admit(viewer(1), "hello", at(0)).is_ok(), "a refused message cost nothing");
    }

    #[test]
    fn a_burst_then_one_per_period() {
        let mut gate = ChatGate::new(ChatQuota { burst: 3, period: Duration::seconds(1) }, BannedWords::default());
        for _ in 0..3 {
            assert!(gate.admit(viewer(1), "hi", at(0)).is_ok());
        }
        assert_eq!(gate.admit(viewer(1), "hi", at(0)), Err(Rejection::RateLimited(1000)));
        assert!(gate.admit(viewer(2), "hi", at(0)).is_ok(), "limits are per user");
        assert!(matches!(gate.admit(viewer(1), "hi", at(999)), Err(Rejection::RateLimited(1))));
        assert!(gate.admit(viewer(1), "hi", at(1000)).is_ok());
        assert!(gate.admit(viewer(1), "hi", at(1000)).is_err());
        // A thousand messages in one second from one user: three get through, plus one per second.
        let admitted = (0..1000).filter(|i| gate.admit(viewer(3), "flood", at(5000 + i)).is_ok()).count();
        assert_eq!(admitted, 3);
        let moderator = Some(Sender { user: UserId(9), moderator: true });
        assert!((0..50).all(|_| gate.admit(moderator, "hosts are not limited", at(0)).is_ok()));
    }

    #[test]
    fn slow_mode_spaces_each_users_messages() {
        let mut gate = ChatGate::default();
        gate.set_slow_mode(Some(Duration::seconds(10)));
        assert!(gate.admit(viewer(1), "one", at(0)).is_ok());
        assert_eq!(gate.admit(viewer(1), "two", at(4000)), Err(Rejection::SlowMode(6000)));
        assert!(gate.admit(viewer(2), "other user", at(4000)).is_ok());
        assert!(gate.admit(viewer(1), "two", at(10_000)).is_ok());
        let host = Some(Sender { user: UserId(9), moderator: true });
        assert!(gate.admit(host, "a", at(0)).is_ok() && gate.admit(host, "b", at(1)).is_ok());
        gate.set_slow_mode(None);
        assert!(gate.admit(viewer(1), "three", at(10_001)).is_ok());
        gate.set_slow_mode(Some(Duration::zero()));
        assert_eq!(gate.slow_mode(), None, "a zero interval is off");
    }

    #[test]
    fn mutes_end_and_bans_last() {
        let mut gate = ChatGate::default();
        assert_eq!(gate.admit(None, "anonymous", at(0)), Err(Rejection::SignInRequired));
        gate.mute(UserId(1), at(60_000));
        assert_eq!(gate.admit(viewer(1), "hi", at(30_000)), Err(Rejection::Muted(30)));
        assert!(gate.admit(viewer(1), "hi", at(60_000)).is_ok(), "the mute ended");
        gate.ban(UserId(2));
        assert!(gate.is_banned(UserId(2)));
        assert_eq!(gate.admit(viewer(2), "hi", at(0)), Err(Rejection::Banned));
        assert_eq!(gate.admit(viewer(2), "hi", at(86_400_000)), Err(Rejection::Banned));
        gate.unban(UserId(2));
        assert!(gate.admit(viewer(2), "hi", at(86_400_000)).is_ok());
        gate.mute(UserId(3), at(60_000));
        gate.unmute(UserId(3));
        assert!(gate.admit(viewer(3), "hi", at(0)).is_ok());
    }

    #[test]
    fn configuring_replaces_the_rules_and_keeps_the_rate() {
        let mut gate = ChatGate::default();
        gate.ban(UserId(5));
        for _ in 0..3 {
            assert!(gate.admit(viewer(1), "a", at(0)).is_ok());
        }
        gate.configure(
            BannedWords::new(["nope"]),
            Some(Duration::seconds(30)),
            [(UserId(2), None), (UserId(3), Some(at(9000)))],
        );
        assert!(gate.admit(viewer(5), "unbanned", at(0)).is_ok(), "the old ban was replaced");
        assert_eq!(gate.admit(viewer(2), "x", at(0)), Err(Rejection::Banned));
        assert_eq!(gate.admit(viewer(3), "x", at(0)), Err(Rejection::Muted(9)));
        assert_eq!(gate.admit(viewer(4), "nope", at(0)), Err(Rejection::BannedWord));
        assert!(matches!(gate.admit(viewer(1), "b", at(0)), Err(Rejection::SlowMode(_) | Rejection::RateLimited(_))));
        assert_eq!(gate.slow_mode(), Some(Duration::seconds(30)));
    }

    #[test]
    fn pruning_forgets_only_what_no_longer_limits() {
        let mut gate = ChatGate::default();
        gate.set_slow_mode(Some(Duration::seconds(5)));
        assert!(gate.admit(viewer(1), "a", at(0)).is_ok());
        gate.prune(at(1000));
        assert!(gate.admit(viewer(1), "b", at(1000)).is_err(), "still in slow mode after pruning");
        gate.prune(at(60_000));
        assert!(gate.tat.is_empty() && gate.last_sent.is_empty());
    }

    proptest! {
        /// Whatever the timing, a user never gets more than burst + elapsed/period messages in.
        #[test]
        fn the_rate_limit_holds_for_any_arrival_times(mut times in proptest::collection::vec(0i64..20_000, 1..300)) {
            times.sort();
            let mut gate = ChatGate::new(ChatQuota { burst: 3, period: Duration::seconds(1) }, BannedWords::default());
            let first = times[0];
            let mut admitted = 0i64;
            for t in &times {
                if gate.admit(viewer(1), "x", at(*t)).is_ok() {
                    admitted += 1;
                }
                prop_assert!(admitted <= 3 + (t - first) / 1000, "{} in by {} ms", admitted, t - first);
            }
        }
    }
}
