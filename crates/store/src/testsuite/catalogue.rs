//! The catalogue.

use super::*;

pub async fn products_are_created_filtered_and_paged(store: Arc<dyn Store>) {
    for i in 0..5 {
        store.create_product(new_product(&format!("Sun {i}"), "sunscreen", 10)).await.unwrap();
    }
    let lip = store.create_product(new_product("Red", "lipstick", 3)).await.unwrap();
    assert_eq!(store.product(lip.id).await.unwrap(), lip);
    assert_eq!(lip.currency, Currency::Krw);

    let all = store.list_products(&ProductQuery::default()).await.unwrap();
    assert_eq!(all.len(), 6);
    let sun =
        store.list_products(&ProductQuery { category: Some("sunscreen".into()), ..Default::default() }).await.unwrap();
    assert_eq!(sun.len(), 5);
    assert!(sun.iter().all(|p| p.category == "sunscreen"));
    let page = store.list_products(&ProductQuery { page: Page::new(2, 4), ..Default::default() }).await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[1].id, lip.id, "listing is ordered by id");
    let none =
        store.list_products(&ProductQuery { status: Some(ProductStatus::Draft), ..Default::default() }).await.unwrap();
    assert!(none.is_empty());
    assert!(matches!(store.product(ProductId(424_242)).await, Err(StoreError::NotFound(_))));
}

pub async fn product_patch_changes_only_given_fields(store: Arc<dyn Store>) {
    let p = store.create_product(new_product("Toner", "skincare", 7)).await.unwrap();
    let later = p.created_at + Duration::seconds(5);
    let patched = store
        .update_product(
            p.id,
            ProductPatch {
                price_minor: Some(9_900),
                stock: Some(0),
                status: Some(ProductStatus::Archived),
                updated_at: Some(later),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.name, "Toner");
    assert_eq!(patched.price_minor, 9_900);
    assert_eq!(patched.stock, 0);
    assert_eq!(patched.status, ProductStatus::Archived);
    assert_eq!(patched.updated_at, later);
    assert_eq!(store.product(p.id).await.unwrap(), patched);
    let missing = store.update_product(ProductId(777_777), ProductPatch::default()).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
}

pub async fn product_images_are_listed_in_order(store: Arc<dyn Store>) {
    let p = store.create_product(new_product("Mask", "skincare", 1)).await.unwrap();
    for n in 0..3 {
        store
            .add_product_image(
                p.id,
                NewProductImage { object_key: format!("products/{}/{n}.png", p.id), content_type: "image/png".into() },
            )
            .await
            .unwrap();
    }
    let got = store.product(p.id).await.unwrap();
    let keys: Vec<_> = got.images.iter().map(|i| i.object_key.as_str()).collect();
    assert_eq!(
        keys,
        [format!("products/{}/0.png", p.id), format!("products/{}/1.png", p.id), format!("products/{}/2.png", p.id)]
    );
    let listed = store.list_products(&ProductQuery::default()).await.unwrap();
    assert_eq!(listed[0].images, got.images);
    let orphan = store
        .add_product_image(
            ProductId(9_999_999),
            NewProductImage { object_key: "x".into(), content_type: "image/png".into() },
        )
        .await;
    assert!(matches!(orphan, Err(StoreError::NotFound(_))), "{orphan:?}");
}

pub async fn hostile_strings_are_stored_verbatim(store: Arc<dyn Store>) {
    let hostile = [
        "'; DROP TABLE products; --",
        "Robert'); DROP TABLE users;--",
        "\" OR 1=1 --",
        "<script>alert(1)</script>",
        "한국어 선크림 🌞 \\ % _",
    ];
    for name in hostile {
        let p = store.create_product(new_product(name, name, 1)).await.unwrap();
        assert_eq!(store.product(p.id).await.unwrap().name, name);
        let by_category =
            store.list_products(&ProductQuery { category: Some(name.into()), ..Default::default() }).await.unwrap();
        assert_eq!(by_category.len(), 1, "category filter on {name:?}");
    }
    let u = store.create_user(new_user("x'or'1'='1@example.com", Role::Viewer)).await.unwrap();
    assert_eq!(store.credentials_by_email(&u.email).await.unwrap().unwrap().user.id, u.id);
    assert_eq!(store.list_products(&ProductQuery::default()).await.unwrap().len(), hostile.len());
}
