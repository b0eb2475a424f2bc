//! Declared commands kept in the table, for the deployed bot: `opkit commands
//! push` stores a file ([`push`]: checked first, versioned by the store's
//! optimistic version, audited), and the worker loads the version stored now at
//! its first command and asks for a newer one at most once per [`REFRESH`]
//! ([`StoredCommands`], a [`CommandSource`]) — no rebuild, no redeploy.
//!
//! The file is the state of the reserved script [`STATE_KEY`] (one item; at
//! most [`crate::store::MAX_STATE_BYTES`]). Settings come from the worker's
//! environment; each secret `NAME` from its environment too, or, when
//! `NAME_ARN` is set, from that Secrets Manager secret (read when a version is
//! loaded). A version that cannot be used there (a setting the worker lacks) is
//! logged, and the commands loaded before stay.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Declared, LoadError, Parsed, Services};
use crate::BoxFuture;
use crate::audit::{AuditRecord, Outcome};
use crate::engine::{CommandSource, CommandSpec};
use crate::ids::UserId;
use crate::secret::Secret;
use crate::store::{EncodedState, StateStore, Store, StoreError, Versioned};

/// The reserved script whose state is the stored commands file.
pub const STATE_KEY: &str = "opkit-commands";

/// How often a running bot asks whether a newer version was pushed.
pub const REFRESH: chrono::Duration = chrono::Duration::seconds(60);

/// A pushed commands file, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    /// Where it was pushed from (the file's path), for errors and the audit.
    pub origin: String,
    /// The file's text.
    pub text: String,
    /// Who pushed it.
    pub pushed_by: UserId,
    /// When.
    pub pushed_at: DateTime<Utc>,
    /// The settings the file reads, as the pusher's environment had them
    /// ([`Parsed::deployment`]); the worker's own environment fills any gap.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// For each secret the file reads, the Secrets Manager secret (ARN or name)
    /// that holds it.
    #[serde(default)]
    pub secret_ids: BTreeMap<String, String>,
}

/// Why a push stored nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The file cannot be used.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The store refused or failed (someone pushed at the same time, the file is
    /// too large, the table cannot be reached).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `text` ([`Parsed::parse`]) against the bot's own commands `built` as
/// the worker will register it ([`Parsed::check_with`]), and stores it as the
/// current version, with the settings and secret references it needs read
/// through `lookup` (the pusher's environment: [`Parsed::deployment`]); returns
/// the new version. Audited as `commands push` by `by`.
///
/// # Errors
/// [`PushError::Load`] for a file that cannot be used — one the worker would
/// refuse (a built-in's form, an alias to no command), or a setting or secret
/// reference missing from `lookup` (nothing is stored); [`PushError::Store`]
/// when the store refuses, e.g. a push at the same time.
pub async fn push(
    store: &dyn Store,
    built: &[Arc<CommandSpec>],
    origin: &str,
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
    by: &UserId,
    now: DateTime<Utc>,
) -> Result<u64, PushError> {
    let parsed = Parsed::parse(origin, text)?;
    parsed.check_with(built)?;
    let super::Deployment {
        settings,
        secret_ids,
    } = parsed.deployment(lookup)?;
    let file = StoredFile {
        origin: origin.to_string(),
        text: text.to_string(),
        pushed_by: by.clone(),
        pushed_at: now,
        settings,
        secret_ids,
    };
    let value = serde_json::to_value(&file).map_err(|e| StoreError::Backend(e.to_string()))?;
    let encoded = EncodedState::new(STATE_KEY, value)?;
    let current = store.load(STATE_KEY).await?.version;
    let version = store.save(STATE_KEY, &encoded, current).await?;
    let names = parsed.names().join(", ");
    let record = AuditRecord {
        id: Uuid::new_v4(),
        correlation_id: Uuid::new_v4(),
        at: now,
        user: by.clone(),
        channel: None,
        team: None,
        text: format!("commands push {origin}"),
        command: Some("commands push".into()),
        outcome: Outcome::System {
            action: format!("stored declared commands version {version}: {names}"),
        },
    };
    record.log();
    store.append(&record).await?;
    Ok(version)
}

/// The version stored now, if any.
///
/// # Errors
/// The store's, or [`StoreError::Corrupt`] for an item that is not a pushed file.
pub async fn current(store: &dyn StateStore) -> Result<Option<(u64, StoredFile)>, StoreError> {
    let loaded = store.load(STATE_KEY).await?;
    let Some(value) = loaded.value else {
        return Ok(None);
    };
    let file = serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
        what: STATE_KEY.into(),
        detail: e.to_string(),
    })?;
    Ok(Some((loaded.version, file)))
}

/// Where secrets come from when a stored version is loaded.
pub trait SecretSource: Send + Sync {
    /// The secret `name`, if it is set — from the secret `pushed` (an ARN or a
    /// name pushed with the file) when there is one; an error says why it cannot
    /// be read (never its value).
    fn secret<'a>(
        &'a self,
        name: &'a str,
        pushed: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Option<Secret>, String>>;
}

/// Secrets from an environment lookup: the variable `NAME`.
pub struct EnvSecrets<L>(pub L);

impl<L: Fn(&str) -> Option<String> + Send + Sync> SecretSource for EnvSecrets<L> {
    fn secret<'a>(
        &'a self,
        name: &'a str,
        pushed: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Option<Secret>, String>> {
        let found = match pushed {
            Some(id) => Err(format!(
                "secret.{name} is the Secrets Manager secret {id}, which this process cannot read"
            )),
            None => Ok((self.0)(name).map(Secret::new)),
        };
        Box::pin(std::future::ready(found))
    }
}

/// Secrets as the deployed functions hold them: the secret pushed with the
/// version when there is one (read in the region its ARN names); else `NAME`
/// from the environment, or, when `NAME_ARN` is set, that Secrets Manager
/// secret's `SecretString` (both set is refused, as for the functions' own
/// credentials).
#[cfg(feature = "secretsmanager")]
pub struct SecretsManagerSecrets<L> {
    /// The client (the worker's role needs `secretsmanager:GetSecretValue` on
    /// the secrets the commands name).
    pub client: aws_sdk_secretsmanager::Client,
    /// The environment.
    pub lookup: L,
}

#[cfg(feature = "secretsmanager")]
impl<L: Fn(&str) -> Option<String> + Send + Sync> SecretSource for SecretsManagerSecrets<L> {
    fn secret<'a>(
        &'a self,
        name: &'a str,
        pushed: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Option<Secret>, String>> {
        Box::pin(async move {
            // The secret pushed with the version is the one it uses: a value
            // this process also has is not "both set" (the pusher chose).
            if let Some(id) = pushed {
                return crate::secret::secrets_manager::secret_string(&self.client, id)
                    .await
                    .map(|v| Some(Secret::new(v)))
                    .map_err(|reason| format!("{name}_ARN ({id}) cannot be read: {reason}"));
            }
            let direct = crate::config::setting(&self.lookup, name);
            let reference = crate::config::setting(&self.lookup, &format!("{name}_ARN"));
            match (direct, reference) {
                (Some(_), Some(_)) => Err(format!(
                    "{name} and {name}_ARN are both set; set the value or the secret that \
                     holds it, not both"
                )),
                (Some(value), None) => Ok(Some(Secret::new(value))),
                (None, Some(id)) => {
                    crate::secret::secrets_manager::secret_string(&self.client, &id)
                        .await
                        .map(|v| Some(Secret::new(v)))
                        .map_err(|reason| format!("{name}_ARN ({id}) cannot be read: {reason}"))
                }
                (None, None) => Ok(None),
            }
        })
    }
}

/// A setting's value by name.
type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The stored commands as a [`CommandSource`] for
/// [`BotBuilder::commands_source`](crate::engine::BotBuilder::commands_source).
pub struct StoredCommands {
    settings: Lookup,
    secrets: Arc<dyn SecretSource>,
    services: Services,
}

impl StoredCommands {
    /// Loads with settings from `settings`, secrets from `secrets`, and actions
    /// calling through `services`.
    pub fn new(
        settings: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
        secrets: Arc<dyn SecretSource>,
        services: Services,
    ) -> Self {
        Self {
            settings: Arc::new(settings),
            secrets,
            services,
        }
    }

    /// The version stored now, bound to this process's settings and secrets.
    ///
    /// # Errors
    /// Why it cannot be used here, with its line.
    pub async fn load(&self, store: &dyn StateStore) -> Result<Option<(u64, Declared)>, String> {
        let stored = store
            .load(STATE_KEY)
            .await
            .map_err(|e| crate::telemetry::ErrorChain(&e).to_string())?;
        self.bind(stored).await
    }

    /// A stored version bound to this process's settings and secrets.
    async fn bind(
        &self,
        stored: Versioned<serde_json::Value>,
    ) -> Result<Option<(u64, Declared)>, String> {
        let version = stored.version;
        let Some(value) = stored.value else {
            return Ok(None);
        };
        let file: StoredFile = serde_json::from_value(value)
            .map_err(|e| format!("{STATE_KEY} (version {version}) is not a pushed file: {e}"))?;
        let origin = format!("{} (version {version})", file.origin);
        let parsed = Parsed::parse(&origin, &file.text).map_err(|e| e.to_string())?;
        let mut secrets = BTreeMap::new();
        for name in parsed.secrets() {
            let pushed = file.secret_ids.get(&name).map(String::as_str);
            if let Some(value) = self.secrets.secret(&name, pushed).await? {
                secrets.insert(name, value);
            }
        }
        // What was pushed with the file first; this process's environment fills gaps.
        let settings = |name: &str| {
            file.settings
                .get(name)
                .cloned()
                .or_else(|| (self.settings)(name))
        };
        let declared = parsed
            .bind(settings, |name| secrets.get(name).cloned())
            .map_err(|e| e.to_string())?;
        Ok(Some((version, declared)))
    }
}

impl CommandSource for StoredCommands {
    fn newer<'a>(
        &'a self,
        store: &'a dyn StateStore,
        known: u64,
    ) -> BoxFuture<'a, Result<Option<crate::engine::bot::Versioned>, String>> {
        Box::pin(async move {
            // One read of the item: its version says whether anything changed.
            let stored = store
                .load(STATE_KEY)
                .await
                .map_err(|e| crate::telemetry::ErrorChain(&e).to_string())?;
            if stored.version == known {
                return Ok(None);
            }
            let version = stored.version;
            match self.bind(stored).await? {
                Some((version, declared)) => {
                    let specs = declared.specs(&self.services).map_err(|e| e.to_string())?;
                    Ok(Some((version, specs)))
                }
                None => Ok(Some((version, Vec::new()))),
            }
        })
    }
}

/// The deployed source: settings from the process environment, secrets by
/// `NAME` or `NAME_ARN` (Secrets Manager), `http` actions over `http` (see
/// [`DeclaredHttp`](super::DeclaredHttp)), `lambda` actions through the SDK —
/// all with the clients of `sdk`.
#[cfg(all(feature = "secretsmanager", feature = "lambda"))]
pub fn deployed(sdk: &aws_config::SdkConfig, http: super::DeclaredHttp) -> StoredCommands {
    let env = |name: &str| std::env::var(name).ok();
    let secrets = SecretsManagerSecrets {
        client: aws_sdk_secretsmanager::Client::new(sdk),
        lookup: env,
    };
    let services = Services {
        http,
        lambda: Some(Arc::new(super::lambda::SdkLambda::new(sdk))),
    };
    StoredCommands::new(env, Arc::new(secrets), services)
}
