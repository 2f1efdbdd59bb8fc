//! Chat moderation by a channel's host or an admin: deleting a message, muting a user for a while,
//! banning one, lifting either. Slow mode and banned words are channel settings
//! (`channels::update_channel`). The live rooms learn of every change through the caller, which
//! announces it; this module only checks who may and records it.

use crate::channels::managed;
use crate::{CommerceError, Result};
use chrono::{DateTime, Duration, Utc};
use olive_core::{ChannelId, Role, UserId};
use olive_store::{Store, User};

/// The longest mute: a week. Longer is a ban.
pub const MAX_MUTE_MINUTES: i64 = 7 * 24 * 60;

/// What a moderator does to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    Mute { minutes: i64 },
    Ban,
}

/// Removes a message from the chat (kept, marked deleted). `false` if it was already.
pub async fn delete_message(
    store: &dyn Store,
    actor: &User,
    channel: ChannelId,
    message: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    managed(store, actor, channel).await?;
    let deleted = store.delete_chat_message(channel, message, now).await?;
    tracing::info!(channel_id = %channel, message, actor = %actor.id, "chat message deleted");
    Ok(deleted)
}

pub async fn restrict(
    store: &dyn Store,
    actor: &User,
    channel: ChannelId,
    user: UserId,
    restriction: Restriction,
    now: DateTime<Utc>,
) -> Result<()> {
    managed(store, actor, channel).await?;
    let target = store.user(user).await?;
    if target.role.at_least(Role::Admin) || target.id == actor.id {
        return Err(CommerceError::invalid("user_id", "admins and yourself cannot be muted or banned"));
    }
    let until = match restriction {
        Restriction::Ban => None,
        Restriction::Mute { minutes } => {
            let minutes = crate::validate::range("minutes", minutes, 1, MAX_MUTE_MINUTES)?;
            Some(now + Duration::minutes(minutes))
        }
    };
    store.restrict_chat(channel, user, until, now).await?;
    tracing::info!(channel_id = %channel, user_id = %user, ?restriction, actor = %actor.id, "chat restricted");
    Ok(())
}

/// Lifts a mute or ban; `false` if there was none.
pub async fn lift(store: &dyn Store, actor: &User, channel: ChannelId, user: UserId) -> Result<bool> {
    managed(store, actor, channel).await?;
    Ok(store.lift_chat_restriction(channel, user).await?)
}
