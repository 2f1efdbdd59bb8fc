//! `GET /api/v1/feed` and `olive reco train`: shoppers with different purchases get feeds ordered
//! by them, a newcomer gets what is popular, and every entry says why it is there.

use crate::helpers::*;
use crate::live::{channel_with_key, clip, have_ffmpeg, publish};
use serde_json::{json, Value};
use std::time::Duration;

async fn feed(session: &Session) -> Value {
    session.get("/api/v1/feed").send().await.unwrap().json().await.unwrap()
}

fn order(feed: &Value) -> Vec<i64> {
    feed["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect()
}

pub async fn buy(session: &Session, product: i64, key: &str) {
    let r = session
        .post("/api/v1/orders")
        .header("idempotency-key", key)
        .json(&json!({"items": [{"product_id": product, "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
}

async fn watch(session: &Session, channel: i64) {
    let body = json!({"events": [{"type": "watch", "target": {"kind": "channel", "id": channel}, "seconds": 300}]});
    assert_eq!(
        session.post("/api/v1/events").json(&body).send().await.unwrap().status(),
        reqwest::StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn feeds_follow_what_each_shopper_bought() {
    if !have_ffmpeg() {
        return;
    }
    let server = Server::start_with(Db::Sqlite, &[]).await;
    let admin = server.create_user("admin@example.com", "admin").await;
    let host = server.create_user("host@example.com", "host").await;
    let product = |name: &'static str, category: &'static str| server.product_in(&admin, name, category, 100);
    let (serum, toner) = (product("Serum", "skincare").await, product("Toner", "skincare").await);
    let (lipstick, mascara) = (product("Lipstick", "makeup").await, product("Mascara", "makeup").await);
    let (skincare, skincare_key) = channel_with_key(&host, "Skincare show").await;
    let (makeup, makeup_key) = channel_with_key(&host, "Make-up show").await;
    for (channel, lineup) in [(skincare, [serum, toner]), (makeup, [lipstick, mascara])] {
        let r = host
            .put(&format!("/api/v1/channels/{channel}/lineup"))
            .json(&json!({"product_ids": lineup}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
    }
    let clip = clip(server.data_dir.path()).await;
    let _a = publish(&clip, &format!("{}/{skincare_key}", server.rtmp));
    let _b = publish(&clip, &format!("{}/{makeup_key}", server.rtmp));
    for _ in 0..100 {
        let list = server.get_json("/api/v1/channels").await;
        if list["items"].as_array().unwrap().iter().filter(|c| c["status"] == "live").count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Before any training: both lives, each "trending now".
    let newcomer = server.signup("newcomer@example.com").await;
    let before = feed(&newcomer).await;
    assert_eq!(before["trained_at"], Value::Null);
    assert_eq!(order(&before).len(), 2, "{before}");
    assert!(before["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["reason"] == "trending now" && i["kind"] == "channel"));

    // Fans of each show watch it and buy from its line-up; skincare has more fans.
    for n in 0..5 {
        let fan = server.signup(&format!("skin{n}@example.com")).await;
        watch(&fan, skincare).await;
        buy(&fan, serum, "a").await;
        buy(&fan, toner, "b").await;
    }
    for n in 0..3 {
        let fan = server.signup(&format!("makeup{n}@example.com")).await;
        watch(&fan, makeup).await;
        buy(&fan, lipstick, "a").await;
        buy(&fan, mascara, "b").await;
    }
    let skin_buyer = server.signup("x@example.com").await;
    buy(&skin_buyer, toner, "x").await;
    let makeup_buyer = server.signup("y@example.com").await;
    buy(&makeup_buyer, mascara, "y").await;
    // Purchases are recorded just after each order answers: wait until all 18 are there.
    let db = format!("sqlite://{}?mode=ro", server.data_dir.path().join("olive.db").display());
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    for _ in 0..100 {
        let recorded: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE kind = 'purchase'").fetch_one(&pool).await.unwrap();
        if recorded >= 18 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.close().await;

    let before_training = chrono::Utc::now();
    let out = std::process::Command::new(BIN)
        .args(["reco", "train", "--data-dir"])
        .arg(server.data_dir.path())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("stored as reco/snapshot.json"), "{printed}");

    // The server loads the new snapshot within seconds (it may have trained one of its own at
    // start, before any purchase: that one does not count).
    let mut x = feed(&skin_buyer).await;
    for _ in 0..60 {
        let trained_at = x["trained_at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        if trained_at.is_some_and(|t| t >= before_training) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        x = feed(&skin_buyer).await;
    }
    assert_eq!(x["personalised"], true, "{x}");
    assert_eq!(order(&x), vec![skincare, makeup], "{x}");
    let reason = x["items"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("Toner") || reason.contains("skincare"), "{reason}");
    let y = feed(&makeup_buyer).await;
    assert_eq!(order(&y), vec![makeup, skincare], "{y}");
    let reason = y["items"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("Mascara") || reason.contains("makeup"), "{reason}");
    // More like this: what the same shoppers chose, with the reason.
    let like: Value = server.get_json(&format!("/api/v1/similar?kind=product&id={serum}")).await;
    let first = &like["items"][0];
    assert_eq!((first["kind"].as_str(), first["id"].as_i64()), (Some("product"), Some(toner)), "{like}");
    assert_eq!(first["reason"], "often chosen with Serum");
    assert_eq!(first["product"]["name"], "Toner");
    assert!(like["items"].as_array().unwrap().iter().all(|i| i["id"] != serum || i["kind"] != "product"), "not itself");
    let like: Value = server.get_json(&format!("/api/v1/similar?kind=channel&id={skincare}&limit=2")).await;
    let ids: Vec<i64> = like["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|id| [serum, toner].contains(id)), "{like}");
    let unknown: Value = server.get_json("/api/v1/similar?kind=replay&id=999999").await;
    assert_eq!(unknown["items"], json!([]));
    for query in [
        "kind=user&id=1",
        "kind=product",
        "id=1",
        "kind=product&id=x",
        "kind=product&id=1&limit=x",
        "kind=product&id=1&extra=1",
    ] {
        let r = server.client.get(server.url(&format!("/api/v1/similar?{query}"))).send().await.unwrap();
        assert_eq!(error_code(r, reqwest::StatusCode::BAD_REQUEST).await, "invalid_query", "{query}");
    }

    // A newcomer gets the more popular show, and is told so.
    let z = feed(&newcomer).await;
    assert_eq!(order(&z)[0], skincare, "{z}");
    assert!(z["items"][0]["reason"].as_str().unwrap().starts_with("popular"), "{z}");
    // A purchase counts at once, before the next training: the newcomer buys make-up.
    buy(&newcomer, lipstick, "z").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let z = feed(&newcomer).await;
    assert_eq!(order(&z)[0], makeup, "{z}");
}
