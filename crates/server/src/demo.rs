//! Demo content for `olive serve --demo` on an empty database: an admin, a host and a shopper
//! (random passwords, printed once and kept in `<data-dir>/demo-accounts.txt`), three channels and
//! fourteen products with images drawn here — nothing is downloaded. Everything goes through the
//! same domain functions as real use, so the demo is also a smoke test of them.

use anyhow::Context;
use bytes::Bytes;
use chrono::{Duration, Utc};
use image::{ImageFormat, Rgb, RgbImage};
use olive_commerce::accounts::{self, SignupInput};
use olive_commerce::catalogue::{self, ProductInput};
use olive_commerce::channels::{self, ChannelInput};
use olive_core::{Currency, ProductId, Role};
use olive_objects::Objects;
use olive_store::{ProductStatus, Store, User};
use rand::distributions::{Alphanumeric, DistString};
use secrecy::SecretString;
use std::io::Cursor;
use std::path::Path;

#[derive(Clone, Copy)]
enum Shape {
    Bottle,
    Tube,
    Lipstick,
    Jar,
    Compact,
}

struct DemoProduct {
    name: &'static str,
    brand: &'static str,
    category: &'static str,
    description: &'static str,
    price: i64,
    stock: i64,
    shape: Shape,
    color: [u8; 3],
}

const PRODUCTS: &[DemoProduct] = &[
    DemoProduct {
        name: "Green Tea Hydrating Toner",
        brand: "Olive Lab",
        category: "skincare",
        description: "녹차 수분 토너 — a watery toner for every morning.",
        price: 18_000,
        stock: 120,
        shape: Shape::Bottle,
        color: [96, 160, 90],
    },
    DemoProduct {
        name: "Vitamin C Brightening Serum",
        brand: "Dew & Co",
        category: "skincare",
        description: "비타민 C 세럼 — brightening serum with 15% vitamin C.",
        price: 32_000,
        stock: 80,
        shape: Shape::Bottle,
        color: [240, 160, 40],
    },
    DemoProduct {
        name: "Ceramide Barrier Cream",
        brand: "Olive Lab",
        category: "skincare",
        description: "세라마이드 장벽 크림 — a rich cream for dry skin.",
        price: 28_000,
        stock: 60,
        shape: Shape::Jar,
        color: [200, 200, 220],
    },
    DemoProduct {
        name: "Daily Mild Sunscreen SPF50+",
        brand: "Sunny Day",
        category: "sunscreen",
        description: "데일리 선크림 — light, no white cast.",
        price: 21_000,
        stock: 200,
        shape: Shape::Tube,
        color: [250, 210, 60],
    },
    DemoProduct {
        name: "Tone-up Sun Cream",
        brand: "Sunny Day",
        category: "sunscreen",
        description: "톤업 선크림 — sun care with a soft tone-up.",
        price: 23_000,
        stock: 150,
        shape: Shape::Tube,
        color: [250, 180, 190],
    },
    DemoProduct {
        name: "Velvet Matte Lipstick — Rose",
        brand: "Color Pop",
        category: "lipstick",
        description: "벨벳 매트 립스틱 — rose, all-day matte.",
        price: 19_000,
        stock: 90,
        shape: Shape::Lipstick,
        color: [190, 40, 80],
    },
    DemoProduct {
        name: "Glossy Tint — Coral",
        brand: "Color Pop",
        category: "lipstick",
        description: "글로시 틴트 — coral with a glassy finish.",
        price: 14_000,
        stock: 110,
        shape: Shape::Lipstick,
        color: [250, 110, 90],
    },
    DemoProduct {
        name: "Cover Cushion Foundation 21N",
        brand: "Muse Studio",
        category: "makeup",
        description: "커버 쿠션 — medium cover, natural finish.",
        price: 35_000,
        stock: 70,
        shape: Shape::Compact,
        color: [230, 190, 160],
    },
    DemoProduct {
        name: "Long-Lash Mascara",
        brand: "Muse Studio",
        category: "makeup",
        description: "롱래쉬 마스카라 — lengthening, smudge-proof.",
        price: 16_000,
        stock: 100,
        shape: Shape::Tube,
        color: [40, 40, 50],
    },
    DemoProduct {
        name: "Argan Repair Shampoo",
        brand: "Silky",
        category: "shampoo",
        description: "아르간 리페어 샴푸 — for damaged hair.",
        price: 15_000,
        stock: 140,
        shape: Shape::Bottle,
        color: [170, 110, 60],
    },
    DemoProduct {
        name: "Scalp Care Shampoo",
        brand: "Silky",
        category: "shampoo",
        description: "두피 케어 샴푸 — mint, for oily scalps.",
        price: 17_000,
        stock: 130,
        shape: Shape::Bottle,
        color: [80, 190, 170],
    },
    DemoProduct {
        name: "Protein Hair Treatment",
        brand: "Silky",
        category: "haircare",
        description: "단백질 트리트먼트 — a weekly mask.",
        price: 19_000,
        stock: 75,
        shape: Shape::Jar,
        color: [150, 120, 200],
    },
    DemoProduct {
        name: "Camellia Hair Oil",
        brand: "Silky",
        category: "haircare",
        description: "동백 헤어 오일 — a few drops on damp ends.",
        price: 24_000,
        stock: 65,
        shape: Shape::Bottle,
        color: [220, 80, 90],
    },
    DemoProduct {
        name: "Calming Cica Mask (10 pack)",
        brand: "Dew & Co",
        category: "skincare",
        description: "시카 진정 마스크 — ten sheet masks.",
        price: 12_000,
        stock: 300,
        shape: Shape::Compact,
        color: [120, 180, 120],
    },
];

struct DemoChannel {
    title: &'static str,
    description: &'static str,
    categories: &'static [&'static str],
}

const CHANNELS: &[DemoChannel] = &[
    DemoChannel {
        title: "Glow Skincare Live",
        description: "Morning routines and sun care, live.",
        categories: &["skincare", "sunscreen"],
    },
    DemoChannel {
        title: "Color Pop Make-up Show",
        description: "Lip colours and base make-up swatched live.",
        categories: &["lipstick", "makeup"],
    },
    DemoChannel {
        title: "Silky Hair Care Hour",
        description: "Shampoos and treatments for every hair type.",
        categories: &["shampoo", "haircare"],
    },
];

/// Seeds demo content when the database has no accounts yet.
pub async fn seed_if_empty(store: &dyn Store, objects: &Objects, data_dir: &Path) -> anyhow::Result<()> {
    if store.count_users().await? > 0 {
        println!(
            "demo: the data dir already has content; demo accounts (if any) are listed in {}",
            data_dir.join("demo-accounts.txt").display()
        );
        return Ok(());
    }
    let now = Utc::now();
    let mut accounts_text = String::new();
    let mut made = Vec::new();
    for (email, role) in
        [("admin@olive.test", Role::Admin), ("host@olive.test", Role::Host), ("shopper@olive.test", Role::Viewer)]
    {
        let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 16);
        let input =
            SignupInput { email: email.into(), password: SecretString::from(password.clone()), display_name: None };
        let user = accounts::signup(store, input, role, now)
            .await
            .and_then(accounts::SignupOutcome::created)
            .with_context(|| format!("creating {email}"))?;
        accounts_text.push_str(&format!("{:<7} {email:<20} {password}\n", role.as_str()));
        made.push(user);
    }
    let [admin, host, _shopper]: [User; 3] = made.try_into().expect("three demo accounts");

    let mut by_category: Vec<(&str, ProductId)> = Vec::new();
    for (i, p) in PRODUCTS.iter().enumerate() {
        let input = ProductInput {
            name: p.name.into(),
            brand: p.brand.into(),
            category: p.category.into(),
            description: p.description.into(),
            price_minor: p.price,
            currency: Currency::Krw,
            stock: p.stock,
            status: ProductStatus::Active,
        };
        let product = catalogue::create_product(store, &admin, input, now).await?;
        catalogue::add_image(store, objects, &admin, product.id, draw(p.shape, p.color, i as u32)).await?;
        by_category.push((p.category, product.id));
    }

    for (i, c) in CHANNELS.iter().enumerate() {
        let input = ChannelInput {
            title: c.title.into(),
            description: c.description.into(),
            scheduled_at: Some(now + Duration::hours(i as i64 + 1)),
        };
        let (channel, _key) = channels::create_channel(store, &host, input, now).await?;
        let lineup = by_category.iter().filter(|(cat, _)| c.categories.contains(cat)).map(|(_, id)| *id).collect();
        channels::set_lineup(store, &host, channel.id, lineup).await?;
    }

    let file = data_dir.join("demo-accounts.txt");
    write_private(&file, &accounts_text).with_context(|| format!("writing {}", file.display()))?;
    println!(
        "demo content created: {} channels, {} products. Accounts (also in {}):",
        CHANNELS.len(),
        PRODUCTS.len(),
        file.display()
    );
    print!("{accounts_text}");
    Ok(())
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// A 480×480 PNG: a soft gradient and the silhouette of the product's packaging.
fn draw(shape: Shape, color: [u8; 3], seed: u32) -> Bytes {
    const SIZE: u32 = 480;
    let tint = |c: u8, t: f32| (c as f32 + (255.0 - c as f32) * t) as u8;
    let mut img = RgbImage::from_fn(SIZE, SIZE, |_, y| {
        let t = 0.75 + 0.2 * (y as f32 / SIZE as f32);
        Rgb([tint(color[0], t), tint(color[1], t), tint(color[2], t)])
    });
    let body = Rgb(color);
    let cap = Rgb([40 + (seed * 17 % 60) as u8, 40, 48]);
    let white = Rgb([250, 250, 250]);
    let (cx, cy) = (SIZE as i32 / 2, SIZE as i32 / 2);
    for y in 0..SIZE as i32 {
        for x in 0..SIZE as i32 {
            let (dx, dy) = (x - cx, y - cy);
            let paint = match shape {
                Shape::Bottle => {
                    if dx.abs() < 80 && (-60..170).contains(&dy) {
                        Some(if dx.abs() < 55 && (20..90).contains(&dy) { white } else { body })
                    } else if dx.abs() < 30 && (-120..-60).contains(&dy) {
                        Some(cap)
                    } else {
                        None
                    }
                }
                Shape::Tube => {
                    let half = 70 - (dy + 150) / 12;
                    if (-150..150).contains(&dy) && dx.abs() < half.max(30) {
                        Some(if dx.abs() < 35 && (-40..20).contains(&dy) { white } else { body })
                    } else if (150..200).contains(&dy) && dx.abs() < 40 {
                        Some(cap)
                    } else {
                        None
                    }
                }
                Shape::Lipstick => {
                    if (40..180).contains(&dy) && dx.abs() < 55 {
                        Some(cap)
                    } else if (-60..40).contains(&dy) && dx.abs() < 40 {
                        Some(Rgb([210, 180, 90]))
                    } else if (-170..-60).contains(&dy) && dx.abs() < 32 && dy > -170 + (dx + 32) * 2 / 3 {
                        Some(body)
                    } else {
                        None
                    }
                }
                Shape::Jar => {
                    if (-40..140).contains(&dy) && dx.abs() < 130 {
                        Some(if dx.abs() < 90 && (20..90).contains(&dy) { white } else { body })
                    } else if (-100..-40).contains(&dy) && dx.abs() < 140 {
                        Some(cap)
                    } else {
                        None
                    }
                }
                Shape::Compact => {
                    let r2 = dx * dx + dy * dy;
                    if r2 < 120 * 120 {
                        Some(if r2 < 95 * 95 { body } else { cap })
                    } else {
                        None
                    }
                }
            };
            if let Some(px) = paint {
                img.put_pixel(x as u32, y as u32, px);
            }
        }
    }
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).expect("encoding a PNG in memory cannot fail");
    Bytes::from(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_images_pass_the_upload_check() {
        for (i, p) in PRODUCTS.iter().enumerate() {
            let png = draw(p.shape, p.color, i as u32);
            let checked = catalogue::check_image(png).unwrap();
            assert_eq!(checked.content_type(), "image/png");
        }
    }

    #[test]
    fn every_channel_has_products() {
        assert!(PRODUCTS.len() >= 12);
        for c in CHANNELS {
            assert!(PRODUCTS.iter().any(|p| c.categories.contains(&p.category)), "{}", c.title);
        }
    }
}
