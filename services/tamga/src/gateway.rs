//! `tamga serve` (the broker gateway and the workers in one process),
//! `tamga gateway token create|revoke` and `tamga gateway callback set|clear`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use tamga_pipeline::site::init_logging;
use tamga_pipeline::{Config, Stage};

use crate::Outcome;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Site configuration (TOML): [gateway] listen, and [amqp]/[database] — without them,
    /// the embedded default ([embedded] sqlite, in-process bus).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

#[derive(Debug, Args)]
pub struct GatewayArgs {
    #[command(subcommand)]
    command: GatewayCommand,
}

#[derive(Debug, Subcommand)]
enum GatewayCommand {
    /// API tokens of brokers.
    Token(TokenArgs),
    /// Push notifications: a broker's callback URL.
    Callback(CallbackArgs),
}

#[derive(Debug, Args)]
struct CallbackArgs {
    #[command(subcommand)]
    command: CallbackCommand,
}

#[derive(Debug, Subcommand)]
enum CallbackCommand {
    /// Set a broker's callback URL and print its new HMAC secret (alone, once).
    Set {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The broker's name.
        #[arg(long, value_name = "NAME")]
        broker: String,
        /// Where its notifications are POSTed (https://…; http:// for local receivers).
        #[arg(long, value_name = "URL")]
        url: String,
    },
    /// Stop pushing a broker's notifications (pulling them goes on).
    Clear {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, value_name = "NAME")]
        broker: String,
    },
}

#[derive(Debug, Args)]
struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token for a broker and print it (alone, once: only its hash is stored).
    Create {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The broker's name.
        #[arg(long, value_name = "NAME")]
        broker: String,
        /// Restrict the token to submitting from this origin (ISO 3166 alpha-2).
        #[arg(long, value_name = "CC")]
        country: Option<String>,
        /// `broker` (the API; the default), or a page role: `officer` (/check), `auditor`
        /// (every page), `analyst` (/dashboard); a page token is named by --broker NAME.
        #[arg(long, value_name = "ROLE", default_value = "broker")]
        role: String,
    },
    /// Revoke every token of a broker (or, with --role, of a page user).
    Revoke {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, value_name = "NAME")]
        broker: String,
        /// `broker` (the default) or a page role: revokes that holder's page tokens.
        #[arg(long, value_name = "ROLE", default_value = "broker")]
        role: String,
    },
}

/// `--role`: `None` for a broker (API) token, else the page role.
fn page_role(role: &str) -> anyhow::Result<Option<tamga_store::PageRole>> {
    match role {
        "broker" => Ok(None),
        other => tamga_store::PageRole::parse(other)
            .map(Some)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--role must be broker, officer, auditor or analyst (not {other:?})"
                )
            }),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn serve(a: &ServeArgs) -> anyhow::Result<Outcome> {
    let cfg = Config::load(&a.config)?;
    init_logging(&cfg.log.format, &cfg.log.level);
    runtime()?.block_on(tamga_gateway::serve(
        &cfg,
        tamga_gateway::Mode::WithWorkers(vec![Stage::Fused]),
        &tamga_pipeline::open_key,
    ))?;
    Ok(Outcome::Passed)
}

async fn open_store(cfg: &Config) -> anyhow::Result<std::sync::Arc<dyn tamga_store::GatewayStore>> {
    let store = tamga_gateway::connect_store(cfg, cfg.database.is_none())
        .await
        .context("opening the store")?;
    Ok(store)
}

fn callback(c: &CallbackArgs) -> anyhow::Result<Outcome> {
    match &c.command {
        CallbackCommand::Set {
            config,
            broker,
            url,
        } => {
            let cfg = Config::load(config)?;
            let secret = runtime()?.block_on(async {
                let store = open_store(&cfg).await?;
                tamga_gateway::callback::set_callback(store.as_ref(), broker, url)
                    .await
                    .context("setting the callback")
            })?;
            println!("{secret}");
        }
        CallbackCommand::Clear { config, broker } => {
            let cfg = Config::load(config)?;
            runtime()?.block_on(async {
                let store = open_store(&cfg).await?;
                tamga_gateway::callback::clear_callback(store.as_ref(), broker)
                    .await
                    .context("clearing the callback")
            })?;
            eprintln!("cleared the callback of {broker}");
        }
    }
    Ok(Outcome::Passed)
}

pub fn gateway(a: &GatewayArgs) -> anyhow::Result<Outcome> {
    let t = match &a.command {
        GatewayCommand::Token(t) => t,
        GatewayCommand::Callback(c) => return callback(c),
    };
    match &t.command {
        TokenCommand::Create {
            config,
            broker,
            country,
            role,
        } => {
            let page_role = page_role(role)?;
            if page_role.is_some() && country.is_some() {
                anyhow::bail!("--country applies to broker tokens only");
            }
            let cfg = Config::load(config)?;
            let token = runtime()?.block_on(async {
                let store = tamga_gateway::connect_store(&cfg, cfg.database.is_none())
                    .await
                    .context("opening the store")?;
                match page_role {
                    Some(r) => tamga_gateway::pages::create_page_token(store.as_ref(), broker, r)
                        .await
                        .context("creating the token"),
                    None => tamga_gateway::create_token(store.as_ref(), broker, country.as_deref())
                        .await
                        .context("creating the token"),
                }
            })?;
            println!("{token}");
        }
        TokenCommand::Revoke {
            config,
            broker,
            role,
        } => {
            let page_role = page_role(role)?;
            let cfg = Config::load(config)?;
            let n = runtime()?.block_on(async {
                let store = tamga_gateway::connect_store(&cfg, cfg.database.is_none())
                    .await
                    .context("opening the store")?;
                match page_role {
                    Some(_) => tamga_gateway::pages::revoke_page_tokens(store.as_ref(), broker)
                        .await
                        .context("revoking"),
                    None => tamga_gateway::revoke_tokens(store.as_ref(), broker)
                        .await
                        .context("revoking"),
                }
            })?;
            eprintln!("revoked {n} token(s) of {broker}");
        }
    }
    Ok(Outcome::Passed)
}
