//! What only admins may read or change beyond the catalogue and roles: the accounts, the job queue
//! (the dead letters among it) and the registered webhooks. Each operation checks the actor first.

use crate::{CommerceError, Result};
use olive_core::Role;
use olive_store::{AccountStore, Job, JobStatus, JobStore, Page, User, Webhook, WebhookStore};

fn admin_only(actor: &User) -> Result<()> {
    if actor.role.at_least(Role::Admin) {
        Ok(())
    } else {
        Err(CommerceError::Forbidden)
    }
}

pub async fn users(store: &dyn AccountStore, actor: &User, page: Page) -> Result<Vec<User>> {
    admin_only(actor)?;
    Ok(store.list_users(page).await?)
}

/// Background jobs, newest first; with `status`, only those (`dead`: the dead letters).
pub async fn jobs(store: &dyn JobStore, actor: &User, status: Option<JobStatus>, page: Page) -> Result<Vec<Job>> {
    admin_only(actor)?;
    Ok(store.list_jobs(status, page).await?)
}

pub async fn webhooks(store: &dyn WebhookStore, actor: &User) -> Result<Vec<Webhook>> {
    admin_only(actor)?;
    Ok(store.list_webhooks().await?)
}

pub async fn delete_webhook(store: &dyn WebhookStore, actor: &User, id: i64) -> Result<()> {
    admin_only(actor)?;
    Ok(store.delete_webhook(id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use olive_core::UserId;

    fn user(role: Role) -> User {
        User { id: UserId(1), email: "a@example.com".into(), display_name: "a".into(), role, created_at: Utc::now() }
    }

    #[test]
    fn only_admins_pass() {
        assert!(admin_only(&user(Role::Admin)).is_ok());
        for role in [Role::Viewer, Role::Host] {
            assert!(matches!(admin_only(&user(role)), Err(CommerceError::Forbidden)), "{role:?}");
        }
    }
}
