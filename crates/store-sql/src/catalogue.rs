//! Products, their stock and images.

use super::*;

#[async_trait]
impl<E> CatalogueStore for SqlStore<E>
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
    async fn create_product(&self, new: NewProduct) -> Result<Product> {
        let row: ProductRow = sqlx::query_as(
            "INSERT INTO products
               (name, brand, category, description, price_minor, currency, stock, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *",
        )
        .bind(&new.name)
        .bind(&new.brand)
        .bind(&new.category)
        .bind(&new.description)
        .bind(new.price_minor)
        .bind(new.currency.code())
        .bind(new.stock)
        .bind(new.status.as_str())
        .bind(new.created_at)
        .bind(new.created_at)
        .fetch_one(self.engine.writer())
        .await
        .map_err(backend)?;
        row.into_product(Vec::new())
    }

    async fn update_product(&self, id: ProductId, patch: ProductPatch) -> Result<Product> {
        let row: Option<ProductRow> = sqlx::query_as(
            "UPDATE products SET
                name = COALESCE($1, name), brand = COALESCE($2, brand),
                category = COALESCE($3, category), description = COALESCE($4, description),
                price_minor = COALESCE($5, price_minor), currency = COALESCE($6, currency),
                stock = COALESCE($7, stock), status = COALESCE($8, status),
                updated_at = COALESCE($9, updated_at)
             WHERE id = $10 RETURNING *",
        )
        .bind(patch.name)
        .bind(patch.brand)
        .bind(patch.category)
        .bind(patch.description)
        .bind(patch.price_minor)
        .bind(patch.currency.map(|c| c.code()))
        .bind(patch.stock)
        .bind(patch.status.map(|s| s.as_str()))
        .bind(patch.updated_at)
        .bind(id.0)
        .fetch_optional(self.engine.writer())
        .await
        .map_err(backend)?;
        let row = row.ok_or(StoreError::NotFound("product"))?;
        Ok(self.with_images(vec![row]).await?.remove(0))
    }

    async fn product(&self, id: ProductId) -> Result<Product> {
        let row: Option<ProductRow> = sqlx::query_as("SELECT * FROM products WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.engine.reader())
            .await
            .map_err(backend)?;
        let row = row.ok_or(StoreError::NotFound("product"))?;
        Ok(self.with_images(vec![row]).await?.remove(0))
    }

    async fn list_products(&self, query: &ProductQuery) -> Result<Vec<Product>> {
        let rows: Vec<ProductRow> = sqlx::query_as(
            "SELECT * FROM products
             WHERE ($1 IS NULL OR category = $2) AND ($3 IS NULL OR status = $4)
             ORDER BY id LIMIT $5 OFFSET $6",
        )
        .bind(&query.category)
        .bind(&query.category)
        .bind(query.status.map(|s| s.as_str()))
        .bind(query.status.map(|s| s.as_str()))
        .bind(query.page.limit)
        .bind(query.page.offset)
        .fetch_all(self.engine.reader())
        .await
        .map_err(backend)?;
        self.with_images(rows).await
    }

    async fn add_product_image(&self, id: ProductId, image: NewProductImage) -> Result<ProductImage> {
        let row: ImageRow = sqlx::query_as(
            "INSERT INTO product_images (product_id, object_key, content_type) VALUES ($1, $2, $3)
             RETURNING id, product_id, object_key, content_type",
        )
        .bind(id.0)
        .bind(&image.object_key)
        .bind(&image.content_type)
        .fetch_one(self.engine.writer())
        .await
        .map_err(|e| foreign_key_as(e, "product"))?;
        Ok(row.into())
    }
}
