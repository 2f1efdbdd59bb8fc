//! The catalogue: public reads (detail from the in-memory cache), admin edits and image uploads,
//! and the image bytes themselves.

use crate::dto::{image_url, ImageView, List, ProductCreate, ProductListQuery, ProductUpdate, ProductView};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath, SignedIn, Upload, Viewer};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use olive_commerce::catalogue::{self, ProductChanges, ProductInput};
use olive_core::{ProductId, Role};
use olive_store::{Page, ProductQuery, ProductStatus};

#[utoipa::path(get, operation_id = "products_list", path = "/api/v1/products", tag = "catalogue", params(ProductListQuery),
    responses((status = 200, body = List<ProductView>)))]
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<ProductListQuery>,
) -> ApiResult<ApiJson<List<ProductView>>> {
    let page = Page::new(q.limit.unwrap_or(50), q.offset.unwrap_or(0));
    let query = ProductQuery { category: q.category, status: q.status, page };
    let products = catalogue::list_products(state.store.as_ref(), viewer.user(), query).await?;
    Ok(ApiJson(List::page(products.iter().map(ProductView::from).collect(), page)))
}

#[utoipa::path(get, operation_id = "products_detail", path = "/api/v1/products/{id}", params(("id" = i64, Path, description = "the product's id")), tag = "catalogue",
    responses((status = 200, body = ProductView), (status = 404, body = ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    IdPath(id): IdPath<ProductId>,
) -> ApiResult<Response> {
    let cached = state.cache.product(id).await?;
    if cached.status != ProductStatus::Active && !viewer.user().is_some_and(|u| u.role.at_least(Role::Admin)) {
        return Err(ApiError::not_found("product"));
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], cached.body).into_response())
}

#[utoipa::path(post, operation_id = "products_create", path = "/api/v1/products", tag = "catalogue", request_body = ProductCreate,
    responses((status = 201, body = ProductView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(req): ApiJson<ProductCreate>,
) -> ApiResult<(StatusCode, ApiJson<ProductView>)> {
    let input = ProductInput {
        name: req.name,
        brand: req.brand,
        category: req.category,
        description: req.description,
        price_minor: req.price_minor,
        currency: req.currency,
        stock: req.stock,
        status: req.status,
    };
    let product = catalogue::create_product(state.store.as_ref(), signed_in.user(), input, Utc::now()).await?;
    Ok((StatusCode::CREATED, ApiJson(ProductView::from(&product))))
}

#[utoipa::path(patch, operation_id = "products_update", path = "/api/v1/products/{id}", params(("id" = i64, Path, description = "the product's id")), tag = "catalogue", request_body = ProductUpdate,
    responses((status = 200, body = ProductView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<ProductId>,
    ApiJson(req): ApiJson<ProductUpdate>,
) -> ApiResult<ApiJson<ProductView>> {
    let changes = ProductChanges {
        name: req.name,
        brand: req.brand,
        category: req.category,
        description: req.description,
        price_minor: req.price_minor,
        currency: req.currency,
        stock: req.stock,
        status: req.status,
    };
    let product = catalogue::update_product(state.store.as_ref(), signed_in.user(), id, changes, Utc::now()).await?;
    state.cache.invalidate_product(id).await;
    Ok(ApiJson(ProductView::from(&product)))
}

/// Adds an image: the body is the PNG or JPEG file itself.
#[utoipa::path(post, operation_id = "products_upload_image", path = "/api/v1/products/{id}/images", params(("id" = i64, Path, description = "the product's id")), tag = "catalogue",
    request_body(content = Vec<u8>, content_type = "image/png"),
    responses((status = 201, body = ImageView), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload_image(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<ProductId>,
    upload: Upload,
) -> ApiResult<(StatusCode, ApiJson<ImageView>)> {
    let declared = upload.content_type.as_deref().unwrap_or_default();
    if !matches!(declared, "image/png" | "image/jpeg") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "upload the image itself with Content-Type image/png or image/jpeg",
        ));
    }
    let image = catalogue::add_image(state.store.as_ref(), &state.objects, signed_in.user(), id, upload.bytes).await?;
    state.cache.invalidate_product(id).await;
    let view = ImageView { id: image.id, url: image_url(id, &image.object_key), content_type: image.content_type };
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// The bytes of a product image. Names are random and never reused, so they cache forever.
pub async fn image(State(state): State<AppState>, Path((id, file)): Path<(String, String)>) -> ApiResult<Response> {
    let id: ProductId = id.parse().map_err(|_| ApiError::not_found("image"))?;
    let (stem, ext) = file.rsplit_once('.').ok_or_else(|| ApiError::not_found("image"))?;
    let content_type = match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => return Err(ApiError::not_found("image")),
    };
    if stem.is_empty() || stem.len() > 64 || !stem.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::not_found("image"));
    }
    let object =
        state.objects.get(&format!("products/{id}/{file}")).await.map_err(olive_commerce::CommerceError::from)?;
    Ok((
        [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")],
        object.bytes,
    )
        .into_response())
}
