//! Channels: a host's stage, with a secret stream key for the broadcaster's encoder.
//!
//! A stream key is 24 random bytes (192 bits) shown to its host once, at creation or rotation; the
//! store keeps only its SHA-256. Ingest finds a channel by that digest through a unique index: what
//! an attacker could learn from the timing of that comparison is a digest prefix, which does not
//! help to find a key. Only the channel's host and admins may change a channel.

use crate::{validate, CommerceError, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use olive_core::{ChannelId, ProductId, Role};
use olive_store::{
    Channel, ChannelPatch, ChannelSales, ChannelStore, ChannelType, NewChannel, Store, StoreError, StreamKeyHash, User,
};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Most products in one show's line-up.
pub const MAX_LINEUP: usize = 100;

/// A channel's publishing secret, as given to its host.
pub struct StreamKey(SecretString);

impl StreamKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        StreamKey(SecretString::from(format!("live_{}", URL_SAFE_NO_PAD.encode(bytes))))
    }

    pub fn from_secret(raw: &str) -> Self {
        StreamKey(SecretString::from(raw.to_owned()))
    }

    pub fn hash(&self) -> StreamKeyHash {
        StreamKeyHash(Sha256::digest(self.0.expose_secret().as_bytes()).into())
    }

    /// The key itself, for the response that hands it to the host.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// Whether `actor` may change `channel`: its own host, or an admin.
pub fn can_manage(actor: &User, channel: &Channel) -> bool {
    actor.role.at_least(Role::Admin) || (actor.role.at_least(Role::Host) && channel.host_id == actor.id)
}

pub struct ChannelInput {
    pub title: String,
    pub description: String,
    pub scheduled_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct ChannelChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub scheduled_at: Option<Option<DateTime<Utc>>>,
    /// `basic` (the source only) or `standard` (the source and its ladder); takes effect at the
    /// next live.
    pub kind: Option<ChannelType>,
    /// Seconds between live thumbnails, 1 to 300.
    pub thumbnail_interval_s: Option<i64>,
    /// Chat slow mode, seconds between one user's messages: 0 (off) to 300.
    pub chat_slow_mode_s: Option<i64>,
    /// Words the chat refuses: at most 200, each 1 to 50 characters.
    pub chat_banned_words: Option<Vec<String>>,
}

/// Creates a channel owned by `actor` (a host or admin) and returns it with its first stream key.
pub async fn create_channel(
    store: &dyn ChannelStore,
    actor: &User,
    input: ChannelInput,
    now: DateTime<Utc>,
) -> Result<(Channel, StreamKey)> {
    if !actor.role.at_least(Role::Host) {
        return Err(CommerceError::Forbidden);
    }
    let key = StreamKey::generate();
    let channel = store
        .create_channel(NewChannel {
            host_id: actor.id,
            title: validate::line("title", &input.title, 1, 120)?,
            description: validate::text("description", &input.description, 2000)?,
            scheduled_at: input.scheduled_at,
            stream_key_hash: key.hash(),
            created_at: now,
        })
        .await?;
    tracing::info!(channel_id = %channel.id, host_id = %actor.id, "channel created");
    Ok((channel, key))
}

/// The channel, if `actor` may manage it (its host or an admin).
pub(crate) async fn managed(store: &dyn ChannelStore, actor: &User, id: ChannelId) -> Result<Channel> {
    let channel = store.channel(id).await?;
    if !can_manage(actor, &channel) {
        return Err(CommerceError::Forbidden);
    }
    Ok(channel)
}

pub async fn update_channel(
    store: &dyn Store,
    actor: &User,
    id: ChannelId,
    changes: ChannelChanges,
    now: DateTime<Utc>,
) -> Result<Channel> {
    managed(store, actor, id).await?;
    let patch = ChannelPatch {
        title: changes.title.map(|t| validate::line("title", &t, 1, 120)).transpose()?,
        description: changes.description.map(|d| validate::text("description", &d, 2000)).transpose()?,
        scheduled_at: changes.scheduled_at,
        status: None,
        kind: changes.kind,
        thumbnail_interval_s: changes
            .thumbnail_interval_s
            .map(|s| validate::range("thumbnail_interval_s", s, 1, 300).map(|s| s as i32))
            .transpose()?,
        chat_slow_mode_s: changes
            .chat_slow_mode_s
            .map(|s| validate::range("chat_slow_mode_s", s, 0, 300).map(|s| s as i32))
            .transpose()?,
        chat_banned_words: changes.chat_banned_words.map(banned_words).transpose()?,
        updated_at: Some(now),
    };
    Ok(store.update_channel(id, patch).await?)
}

fn banned_words(words: Vec<String>) -> Result<Vec<String>> {
    if words.len() > 200 {
        return Err(CommerceError::invalid("chat_banned_words", "at most 200 words"));
    }
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for word in words {
        let word = validate::line("chat_banned_words", &word, 1, 50)?;
        if !out.contains(&word) {
            out.push(word);
        }
    }
    Ok(out)
}

/// Replaces the channel's stream key; the old one stops working at once.
pub async fn rotate_stream_key(store: &dyn Store, actor: &User, id: ChannelId) -> Result<StreamKey> {
    managed(store, actor, id).await?;
    let key = StreamKey::generate();
    store.set_stream_key_hash(id, key.hash()).await?;
    tracing::info!(channel_id = %id, "stream key rotated");
    Ok(key)
}

/// What the channel has sold since `since` (its host's live stats).
pub async fn sales(store: &dyn Store, actor: &User, id: ChannelId, since: DateTime<Utc>) -> Result<ChannelSales> {
    managed(store, actor, id).await?;
    Ok(store.channel_sales(id, since).await?)
}

/// A channel, for anyone.
pub async fn channel(store: &dyn ChannelStore, id: ChannelId) -> Result<Channel> {
    Ok(store.channel(id).await?)
}

/// Every channel, for anyone.
pub async fn list(store: &dyn ChannelStore) -> Result<Vec<Channel>> {
    Ok(store.list_channels().await?)
}

/// A channel's line-up, for anyone; `NotFound` for a channel that does not exist.
pub async fn lineup(store: &dyn ChannelStore, id: ChannelId) -> Result<Vec<ProductId>> {
    store.channel(id).await?;
    Ok(store.lineup(id).await?)
}

/// The channel a presented stream key publishes to, if any.
pub async fn channel_for_stream_key(store: &dyn ChannelStore, presented: &str) -> Result<Option<Channel>> {
    if presented.is_empty() || presented.len() > 256 {
        return Ok(None);
    }
    Ok(store.channel_by_stream_key_hash(&StreamKey::from_secret(presented).hash()).await?)
}

/// Sets the show's line-up: products in the order given, each once, all of them on sale (a draft
/// or archived product cannot be shown, pinned or sold).
pub async fn set_lineup(
    store: &dyn Store,
    actor: &User,
    id: ChannelId,
    products: Vec<ProductId>,
) -> Result<Vec<ProductId>> {
    managed(store, actor, id).await?;
    let mut unique = Vec::with_capacity(products.len());
    for p in products {
        if !unique.contains(&p) {
            unique.push(p);
        }
    }
    if unique.len() > MAX_LINEUP {
        return Err(CommerceError::invalid("product_ids", format!("a line-up holds at most {MAX_LINEUP} products")));
    }
    for product in &unique {
        let on_sale = match store.product(*product).await {
            Ok(p) => p.status == olive_store::ProductStatus::Active,
            Err(StoreError::NotFound(_)) => false,
            Err(e) => return Err(e.into()),
        };
        if !on_sale {
            return Err(CommerceError::invalid("product_ids", format!("product {product} is not on sale")));
        }
    }
    store.set_lineup(id, &unique).await?;
    Ok(unique)
}

/// Pins a product at `pts` on the channel's media timeline. The product must be on sale.
pub async fn pin(
    store: &dyn Store,
    actor: &User,
    id: ChannelId,
    product: ProductId,
    pts: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(olive_store::Pin, olive_store::Product)> {
    managed(store, actor, id).await?;
    let product = match store.product(product).await {
        Ok(p) => p,
        Err(StoreError::NotFound(_)) => return Err(CommerceError::invalid("product_id", "no such product")),
        Err(e) => return Err(e.into()),
    };
    if product.status != olive_store::ProductStatus::Active {
        return Err(CommerceError::ProductUnavailable(product.id));
    }
    let pin = store.add_pin(id, product.id, pts, now).await?;
    tracing::info!(channel_id = %id, product_id = %product.id, %pts, "product pinned");
    Ok((pin, product))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_keys_are_long_random_and_hash_stably() {
        let a = StreamKey::generate();
        let b = StreamKey::generate();
        assert!(a.expose().starts_with("live_"));
        assert!(a.expose().len() >= 5 + 32, "at least 192 bits of base64");
        assert_ne!(a.expose(), b.expose());
        assert_eq!(StreamKey::from_secret(a.expose()).hash(), a.hash());
        assert_ne!(a.hash(), b.hash());
    }
}
