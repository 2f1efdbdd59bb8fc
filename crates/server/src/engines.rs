//! Opens the engines a configuration names: the database (SQLite or PostgreSQL) and the object
//! store. The one place that turns URLs into trait objects.

use crate::config::{DatabaseEngine, StorageConfig};
use anyhow::Context;
use olive_objects::Objects;
use olive_store::Store;

use std::sync::Arc;

pub struct Engines {
    pub store: Arc<dyn Store>,
    pub objects: Objects,
}

pub async fn open(storage: &StorageConfig) -> anyhow::Result<Engines> {
    std::fs::create_dir_all(&storage.data_dir)
        .with_context(|| format!("cannot create data dir {}", storage.data_dir.display()))?;
    let store: Arc<dyn Store> = match storage.database_engine {
        DatabaseEngine::Sqlite => {
            Arc::new(olive_store_sqlite::open(storage.database_url()).await.context("opening SQLite")?)
        }
        DatabaseEngine::Postgres => {
            Arc::new(olive_store_postgres::open(storage.database_url()).await.context("opening PostgreSQL")?)
        }
    };
    let objects = Objects::from_url(storage.object_store_url(), &storage.s3).context("opening object storage")?;
    Ok(Engines { store, objects })
}
