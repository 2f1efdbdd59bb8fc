//! Accounts and sessions.

use super::*;

#[async_trait]
impl<E> AccountStore for SqlStore<E>
where
    E: Engine,
    for<'c> &'c mut Conn<E>: Executor<'c, Database = E::Db>,
    for<'q> Args<'q, E>: IntoArguments<'q, E::Db>,
    usize: ColumnIndex<DbRow<E>>,
    for<'a> &'a str: ColumnIndex<DbRow<E>> + Encode<'a, E::Db> + Type<E::Db>,
    for<'a> &'a [u8]: Encode<'a, E::Db> + Type<E::Db>,
    for<'a> Option<&'a str>: Encode<'a, E::Db>,
    i32: Column<E::Db>,
    i64: Column<E::Db>,
    f64: Column<E::Db>,
    bool: Column<E::Db>,
    String: Column<E::Db>,
    Vec<u8>: Column<E::Db>,
    DateTime<Utc>: Column<E::Db>,
    NaiveDate: Column<E::Db>,
    Option<i32>: Column<E::Db>,
    Option<i64>: Column<E::Db>,
    Option<String>: Column<E::Db>,
    Option<Vec<u8>>: Column<E::Db>,
    Option<DateTime<Utc>>: Column<E::Db>,
{
    async fn create_user(&self, new: NewUser) -> Result<User> {
        let row: UserRow = sqlx::query_as(
            "INSERT INTO users (email, display_name, password_hash, role, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id, email, display_name, role, created_at",
        )
        .bind(&new.email)
        .bind(&new.display_name)
        .bind(&new.password_hash)
        .bind(new.role.as_str())
        .bind(new.created_at)
        .fetch_one(self.engine.writer())
        .await
        .map_err(|e| unique_as(e, "user"))?;
        row.try_into()
    }

    async fn user(&self, id: UserId) -> Result<User> {
        let row: Option<UserRow> =
            sqlx::query_as("SELECT id, email, display_name, role, created_at FROM users WHERE id = $1")
                .bind(id.0)
                .fetch_optional(self.engine.reader())
                .await
                .map_err(backend)?;
        row.ok_or(StoreError::NotFound("user"))?.try_into()
    }

    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>> {
        let row: Option<CredentialsRow> = sqlx::query_as(
            "SELECT id, email, display_name, role, created_at, password_hash FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(self.engine.reader())
        .await
        .map_err(backend)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn count_users(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(self.engine.reader()).await.map_err(backend)
    }

    async fn list_users(&self, page: Page) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT id, email, display_name, role, created_at FROM users ORDER BY id LIMIT $1 OFFSET $2",
        )
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.engine.reader())
        .await
        .map_err(backend)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn set_user_role(&self, id: UserId, role: Role) -> Result<User> {
        let row: Option<UserRow> = sqlx::query_as(
            "UPDATE users SET role = $1 WHERE id = $2 RETURNING id, email, display_name, role, created_at",
        )
        .bind(role.as_str())
        .bind(id.0)
        .fetch_optional(self.engine.writer())
        .await
        .map_err(backend)?;
        row.ok_or(StoreError::NotFound("user"))?.try_into()
    }

    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<()> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id.0)
            .execute(self.engine.writer())
            .await
            .map_err(backend)?;
        if E::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound("user"));
        }
        Ok(())
    }

    async fn create_session(&self, new: NewSession) -> Result<()> {
        sqlx::query("INSERT INTO sessions (hash, user_id, kind, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&new.hash.0[..])
            .bind(new.user_id.0)
            .bind(new.kind.as_str())
            .bind(new.created_at)
            .bind(new.expires_at)
            .execute(self.engine.writer())
            .await
            .map_err(|e| unique_as(e, "session"))?;
        Ok(())
    }

    async fn session_user(&self, hash: &SessionHash, now: DateTime<Utc>) -> Result<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT u.id, u.email, u.display_name, u.role, u.created_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.hash = $1 AND s.expires_at > $2",
        )
        .bind(&hash.0[..])
        .bind(now)
        .fetch_optional(self.engine.reader())
        .await
        .map_err(backend)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn delete_session(&self, hash: &SessionHash) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE hash = $1")
            .bind(&hash.0[..])
            .execute(self.engine.writer())
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user: UserId, keep: Option<&SessionHash>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR hash <> $2)")
            .bind(user.0)
            .bind(keep.map(|h| h.0.to_vec()))
            .execute(self.engine.writer())
            .await
            .map_err(backend)?;
        Ok(E::rows_affected(&done))
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(self.engine.writer())
            .await
            .map_err(backend)?;
        Ok(E::rows_affected(&done))
    }
}
