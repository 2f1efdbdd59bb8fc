//! The catalogue: products with prices in minor units, stock and images. Admins edit; everyone
//! reads active products. Uploaded images are decoded in full under size limits before they are
//! stored, so a truncated file or a decompression bomb is refused instead of served.

use crate::{validate, CommerceError, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use image::{ImageFormat, ImageReader, Limits};
use olive_core::{Currency, ProductId, Role};
use olive_objects::Objects;
use olive_store::{
    CatalogueStore, NewProduct, NewProductImage, Product, ProductImage, ProductPatch, ProductQuery, ProductStatus, User,
};
use std::io::Cursor;

/// Largest accepted upload.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;
/// Largest accepted width or height.
pub const MAX_IMAGE_SIDE: u32 = 4096;
/// Most images per product.
pub const MAX_IMAGES: usize = 10;
const MAX_PRICE_MINOR: i64 = 1_000_000_000_000;
const MAX_STOCK: i64 = 1_000_000_000;

#[derive(Debug, Clone)]
pub struct ProductInput {
    pub name: String,
    pub brand: String,
    pub category: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: Currency,
    pub stock: i64,
    pub status: ProductStatus,
}

#[derive(Debug, Clone, Default)]
pub struct ProductChanges {
    pub name: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub description: Option<String>,
    pub price_minor: Option<i64>,
    pub currency: Option<Currency>,
    pub stock: Option<i64>,
    pub status: Option<ProductStatus>,
}

fn require_admin(actor: &User) -> Result<()> {
    if actor.role.at_least(Role::Admin) {
        Ok(())
    } else {
        Err(CommerceError::Forbidden)
    }
}

pub async fn create_product(
    store: &dyn CatalogueStore,
    actor: &User,
    input: ProductInput,
    now: DateTime<Utc>,
) -> Result<Product> {
    require_admin(actor)?;
    let new = NewProduct {
        name: validate::line("name", &input.name, 1, 200)?,
        brand: validate::line("brand", &input.brand, 0, 100)?,
        category: validate::line("category", &input.category, 1, 50)?,
        description: validate::text("description", &input.description, 5000)?,
        price_minor: validate::range("price_minor", input.price_minor, 0, MAX_PRICE_MINOR)?,
        currency: input.currency,
        stock: validate::range("stock", input.stock, 0, MAX_STOCK)?,
        status: input.status,
        created_at: now,
    };
    Ok(store.create_product(new).await?)
}

pub async fn update_product(
    store: &dyn CatalogueStore,
    actor: &User,
    id: ProductId,
    changes: ProductChanges,
    now: DateTime<Utc>,
) -> Result<Product> {
    require_admin(actor)?;
    let patch = ProductPatch {
        name: changes.name.map(|v| validate::line("name", &v, 1, 200)).transpose()?,
        brand: changes.brand.map(|v| validate::line("brand", &v, 0, 100)).transpose()?,
        category: changes.category.map(|v| validate::line("category", &v, 1, 50)).transpose()?,
        description: changes.description.map(|v| validate::text("description", &v, 5000)).transpose()?,
        price_minor: changes.price_minor.map(|v| validate::range("price_minor", v, 0, MAX_PRICE_MINOR)).transpose()?,
        currency: changes.currency,
        stock: changes.stock.map(|v| validate::range("stock", v, 0, MAX_STOCK)).transpose()?,
        status: changes.status,
        updated_at: Some(now),
    };
    Ok(store.update_product(id, patch).await?)
}

/// A product as `viewer` may see it: drafts and archived products only for admins.
pub async fn product_for(store: &dyn CatalogueStore, viewer: Option<&User>, id: ProductId) -> Result<Product> {
    let product = store.product(id).await?;
    if product.status != ProductStatus::Active && !viewer.is_some_and(|u| u.role.at_least(Role::Admin)) {
        return Err(CommerceError::NotFound("product"));
    }
    Ok(product)
}

/// Lists products; only admins may list other than active ones.
pub async fn list_products(
    store: &dyn CatalogueStore,
    viewer: Option<&User>,
    mut query: ProductQuery,
) -> Result<Vec<Product>> {
    let is_admin = viewer.is_some_and(|u| u.role.at_least(Role::Admin));
    if !is_admin {
        query.status = Some(ProductStatus::Active);
    }
    if let Some(category) = &query.category {
        query.category = Some(validate::line("category", category, 1, 50)?);
    }
    Ok(store.list_products(&query).await?)
}

/// A checked image: its format and the bytes as uploaded.
#[derive(Debug)]
pub struct CheckedImage {
    pub format: ImageFormat,
    pub bytes: Bytes,
}

impl CheckedImage {
    pub fn content_type(&self) -> &'static str {
        self.format.to_mime_type()
    }

    pub fn extension(&self) -> &'static str {
        self.format.extensions_str().first().copied().unwrap_or("bin")
    }
}

/// Decodes an upload completely (PNG or JPEG, at most `MAX_IMAGE_SIDE` a side) to prove it is one.
pub fn check_image(bytes: Bytes) -> Result<CheckedImage> {
    if bytes.is_empty() || bytes.len() > MAX_IMAGE_BYTES {
        return Err(CommerceError::invalid("image", format!("must be 1 byte to {MAX_IMAGE_BYTES} bytes")));
    }
    let reader = ImageReader::new(Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| CommerceError::invalid("image", e.to_string()))?;
    let format = match reader.format() {
        Some(f @ (ImageFormat::Png | ImageFormat::Jpeg)) => f,
        _ => return Err(CommerceError::invalid("image", "must be a PNG or JPEG image")),
    };
    let mut reader = reader;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(128 * 1024 * 1024);
    reader.limits(limits);
    reader.decode().map_err(|e| CommerceError::invalid("image", format!("cannot be decoded: {e}")))?;
    Ok(CheckedImage { format, bytes })
}

/// Checks an upload, stores it in object storage and attaches it to the product.
pub async fn add_image(
    store: &dyn CatalogueStore,
    objects: &Objects,
    actor: &User,
    id: ProductId,
    upload: Bytes,
) -> Result<ProductImage> {
    require_admin(actor)?;
    let product = store.product(id).await?;
    if product.images.len() >= MAX_IMAGES {
        return Err(CommerceError::invalid("image", format!("a product has at most {MAX_IMAGES} images")));
    }
    let checked = tokio::task::spawn_blocking(move || check_image(upload))
        .await
        .map_err(|e| CommerceError::Internal(format!("image check failed: {e}")))??;
    let key = format!("products/{id}/{:016x}.{}", rand::random::<u64>(), checked.extension());
    objects.put(&key, checked.bytes.clone()).await?;
    let image = store
        .add_product_image(
            id,
            NewProductImage { object_key: key.clone(), content_type: checked.content_type().to_owned() },
        )
        .await;
    if image.is_err() {
        // Do not leave an orphan behind when the row could not be written.
        let _ = objects.delete(&key).await;
    }
    Ok(image?)
}

/// Where a product image is served: `/media/products/{id}/{file}`.
pub fn image_url(product: ProductId, object_key: &str) -> String {
    let file = object_key.rsplit('/').next().unwrap_or(object_key);
    format!("/media/products/{product}/{file}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Bytes {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 60]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        Bytes::from(out.into_inner())
    }

    #[test]
    fn accepts_real_images() {
        let checked = check_image(png(8, 8)).unwrap();
        assert_eq!(checked.content_type(), "image/png");
        assert_eq!(checked.extension(), "png");
    }

    #[test]
    fn refuses_junk_truncated_and_oversized_images() {
        assert!(check_image(Bytes::new()).is_err());
        assert!(check_image(Bytes::from_static(b"<svg onload=alert(1)>")).is_err());
        let full = png(64, 64);
        assert!(check_image(full.slice(..full.len() / 2)).is_err(), "truncated");
        assert!(check_image(png(MAX_IMAGE_SIDE + 1, 1)).is_err(), "too wide");
        assert!(check_image(Bytes::from(vec![0u8; MAX_IMAGE_BYTES + 1])).is_err());
        // A GIF header is a real image but not one we serve.
        assert!(check_image(Bytes::from_static(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")).is_err());
    }
}
