//! Resolving credential settings from AWS Secrets Manager, once, at cold start.
//!
//! Each function's environment names its secrets (`SLACK_BOT_TOKEN_ARN`, see
//! [`super::references`]); [`resolve`] reads them all with `GetSecretValue`,
//! concurrently, before the configuration is parsed, and the values live in the
//! process from then on (cached for the life of the execution environment: a
//! rotated secret reaches a function when its environments are replaced, see
//! infra/DEPLOY.md). The function's role needs `secretsmanager:GetSecretValue` on
//! exactly those secrets, and nothing in its configuration is a credential.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use super::references::{SecretReference, Settings};
use crate::config::ConfigError;

/// `lookup` (the environment) with every reference among `settings` resolved
/// from Secrets Manager through `client`. With no reference set, no call is made.
///
/// # Errors
/// [`ConfigError::Secret`] naming the `…_ARN` variable when a secret cannot be
/// read (missing, access denied, no `SecretString`, empty), and
/// [`ConfigError::Invalid`] when a setting is given both directly and as a
/// reference.
pub async fn resolve<L: Fn(&str) -> Option<String>>(
    client: &Client,
    lookup: L,
    settings: &[&'static str],
) -> Result<Settings<L>, ConfigError> {
    let mut resolved = Settings::new(lookup);
    let wanted = resolved.references(settings)?;
    // All at once: a cold start waits for the slowest read, not for their sum.
    let reads: Vec<_> = wanted
        .into_iter()
        .map(|reference| {
            let client = client.clone();
            let id = reference.clone();
            (
                id,
                tokio::spawn(async move { read(&client, &reference).await }),
            )
        })
        .collect();
    for (reference, read) in reads {
        let value = read.await.map_err(|e| ConfigError::Secret {
            name: reference.setting,
            secret_id: reference.secret_id.clone(),
            reason: e.to_string(),
        })??;
        resolved.insert(reference.setting, value);
    }
    Ok(resolved)
}

/// [`resolve`] against the process environment, with a client built from `sdk`.
pub async fn resolve_env(
    sdk: &aws_config::SdkConfig,
    settings: &[&'static str],
) -> Result<Settings<fn(&str) -> Option<String>>, ConfigError> {
    let env: fn(&str) -> Option<String> = |name| std::env::var(name).ok();
    resolve(&Client::new(sdk), env, settings).await
}

async fn read(client: &Client, reference: &SecretReference) -> Result<String, ConfigError> {
    secret_string(client, &reference.secret_id)
        .await
        .map_err(|reason| ConfigError::Secret {
            name: reference.setting,
            secret_id: reference.secret_id.clone(),
            reason,
        })
}

/// The `SecretString` of the secret `secret_id` (an ARN or a name), trimmed;
/// an error says why it cannot be used (never the value). An ARN is read in
/// the region it names ([`arn_region`]), whatever `client`'s region; a name, in
/// `client`'s.
pub async fn secret_string(client: &Client, secret_id: &str) -> Result<String, String> {
    let mut request = client.get_secret_value().secret_id(secret_id).customize();
    if let Some(region) = arn_region(secret_id)
        && client.config().region().map(|r| r.as_ref()) != Some(region)
    {
        request =
            request.config_override(aws_sdk_secretsmanager::config::Builder::default().region(
                aws_sdk_secretsmanager::config::Region::new(region.to_string()),
            ));
    }
    let output = request
        .send()
        .await
        .map_err(|e| DisplayErrorContext(&e).to_string())?;
    match output.secret_string() {
        Some(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
        Some(_) => Err("its SecretString is empty".into()),
        None => Err("it has no SecretString (a binary secret cannot hold a setting)".into()),
    }
}

/// The region a Secrets Manager ARN names
/// (`arn:aws:secretsmanager:us-east-1:123456789012:secret:name-AbCdEf`), if
/// `secret_id` is one.
pub fn arn_region(secret_id: &str) -> Option<&str> {
    let mut parts = secret_id.splitn(6, ':');
    let (arn, _partition, service, region) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (arn == "arn" && service == "secretsmanager" && !region.is_empty()).then_some(region)
}

#[cfg(test)]
mod tests {
    use super::arn_region;

    #[test]
    fn an_arn_names_its_region_and_a_name_none() {
        assert_eq!(
            arn_region("arn:aws:secretsmanager:us-east-1:123456789012:secret:deploys-XdnmhP"),
            Some("us-east-1")
        );
        assert_eq!(
            arn_region("arn:aws-us-gov:secretsmanager:us-gov-west-1:1:secret:x"),
            Some("us-gov-west-1")
        );
        assert_eq!(arn_region("deploys-token"), None);
        assert_eq!(arn_region("arn:aws:ssm:us-east-1:1:parameter/x"), None);
        assert_eq!(arn_region("arn:aws:secretsmanager::1:secret:x"), None);
    }
}
