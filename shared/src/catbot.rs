//! Catbot: the ready-to-deploy bot, assembled from the built-in packs.
//!
//! Every front end (`opkit`, the worker Lambda) builds its bot here, so they all
//! answer the same commands. Teams add their own scripts to the returned builder.

use std::sync::Arc;

use crate::bot::{Bot, BotBuilder};
use crate::config::Config;
use crate::packs::{builtin, queue, schedule, weather};
use crate::slack::{ChannelPoster, SlackApi};
use crate::store::Store;

/// A builder with Catbot's packs and the configuration's admins and policy.
pub fn builder(config: &Config, store: Arc<dyn Store>) -> BotBuilder {
    Bot::builder(store)
        .name(&config.bot_name)
        .admins(config.admins.iter().cloned())
        .script(builtin::script(config.policy()))
        .script(queue::script())
        .script(schedule::script(schedule::default_managers()))
        .script(weather::script(weather::WeatherConfig::new(
            config.weather_url.clone(),
            config.weather_key.clone(),
        )))
}

/// The Web API poster for channel messages, if a bot token is configured.
pub fn channel_poster(config: &Config, http: reqwest::Client) -> Option<Arc<dyn ChannelPoster>> {
    let token = config.bot_token.clone()?;
    let api = SlackApi::new(token, http).with_base_url(&config.slack_api_url);
    Some(Arc::new(api))
}

/// The deployed bot, as the worker and expiry functions build it at cold start:
/// Catbot on the DynamoDB table `OPKIT_TABLE` (AWS settings from the
/// environment), on the system clock. Returns the store too (job claims).
#[cfg(feature = "dynamodb")]
pub async fn deployed(
    config: &Config,
) -> Result<(Bot, Arc<crate::store::dynamodb::DynamoStore>), String> {
    let clock: crate::clock::SharedClock = Arc::new(crate::clock::SystemClock);
    let table = config.require_table().map_err(|e| e.to_string())?;
    let store = Arc::new(crate::store::dynamodb::DynamoStore::from_env(table, clock.clone()).await);
    let bot = builder(config, store.clone()).clock(clock).build()?;
    Ok((bot, store))
}
