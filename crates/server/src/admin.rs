//! `olive admin …`: tasks an operator runs against the same storage as `olive serve`, safe to run
//! beside a running server.

use crate::config::{StorageArgs, StorageConfig};
use crate::engines;
use chrono::Utc;
use clap::Subcommand;
use olive_commerce::accounts::{self, SignupInput};
use olive_core::Role;
use secrecy::SecretString;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create an account.
    CreateUser {
        #[command(flatten)]
        storage: StorageArgs,
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: SecretString,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Shown to others; defaults to the part of the email before '@'.
        #[arg(long)]
        display_name: Option<String>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e: olive_core::role::UnknownRole| e.to_string())
}

pub async fn run(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateUser { storage, email, password, role, display_name } => {
            let config = StorageConfig::from_args(&storage)?;
            let engines = engines::open(&config).await?;
            let input = SignupInput { email, password, display_name };
            let user = accounts::signup(engines.store.as_ref(), input, role, Utc::now()).await?.created()?;
            println!("created user {} <{}> with role {}", user.id, user.email, user.role);
            Ok(())
        }
    }
}
