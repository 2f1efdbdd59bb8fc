//! The room sockets that are signed in, by user and session, so a socket does not outlive the
//! identity it was opened with: when a session ends (logout, "sign out everywhere", a password
//! change) or its user changes (a new role), the sockets opened with it are told to close, on
//! every node, since [`crate::cache::ReadCache`] hears of those changes from the bus. The browser
//! reconnects at once and is then whoever its cookie now says: anonymous, or the new role.

use olive_core::UserId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Default)]
pub struct SessionSockets {
    by_user: Mutex<HashMap<UserId, Vec<Entry>>>,
    next: std::sync::atomic::AtomicU64,
}

struct Entry {
    id: u64,
    session: [u8; 32],
    close: Arc<Notify>,
}

/// A socket's registration: `closed()` resolves when its identity changed; dropping it forgets
/// the socket.
pub struct Registration {
    sockets: Arc<SessionSockets>,
    user: UserId,
    id: u64,
    close: Arc<Notify>,
}

impl Registration {
    pub async fn closed(&self) {
        self.close.notified().await;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut by_user = self.sockets.by_user.lock().expect("session sockets poisoned");
        if let Some(entries) = by_user.get_mut(&self.user) {
            entries.retain(|e| e.id != self.id);
            if entries.is_empty() {
                by_user.remove(&self.user);
            }
        }
    }
}

impl SessionSockets {
    /// Registers a socket opened by `user` with the session whose hash is `session`.
    pub fn register(self: &Arc<Self>, user: UserId, session: [u8; 32]) -> Registration {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        let entry = Entry { id, session, close: close.clone() };
        self.by_user.lock().expect("session sockets poisoned").entry(user).or_default().push(entry);
        Registration { sockets: self.clone(), user, id, close }
    }

    /// The session ended: its sockets close.
    pub fn session_ended(&self, session: &[u8; 32]) {
        let by_user = self.by_user.lock().expect("session sockets poisoned");
        for entry in by_user.values().flatten().filter(|e| &e.session == session) {
            entry.close.notify_one();
        }
    }

    /// The user changed (role, password, every session ended): all their sockets close.
    pub fn user_changed(&self, user: UserId) {
        let by_user = self.by_user.lock().expect("session sockets poisoned");
        for entry in by_user.get(&user).into_iter().flatten() {
            entry.close.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.by_user.lock().expect("session sockets poisoned").values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn closes(r: &Registration) -> bool {
        tokio::time::timeout(Duration::from_millis(50), r.closed()).await.is_ok()
    }

    #[tokio::test]
    async fn a_socket_closes_with_its_session_or_its_user_and_is_forgotten_when_dropped() {
        let sockets = Arc::new(SessionSockets::default());
        let a1 = sockets.register(UserId(1), [1; 32]);
        let a2 = sockets.register(UserId(1), [2; 32]);
        let b = sockets.register(UserId(2), [3; 32]);
        sockets.session_ended(&[1; 32]);
        assert!(closes(&a1).await);
        assert!(!closes(&a2).await, "another session of the same user stays");
        assert!(!closes(&b).await);
        sockets.user_changed(UserId(1));
        assert!(closes(&a2).await);
        assert!(!closes(&b).await);
        assert_eq!(sockets.len(), 3);
        drop((a1, a2, b));
        assert!(sockets.is_empty());
    }
}
