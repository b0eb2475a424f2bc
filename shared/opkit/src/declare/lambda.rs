//! The `lambda` action's port: invoke a function by name or ARN with a JSON
//! payload (Lambda's `Invoke`, `RequestResponse`), and the AWS SDK's adapter
//! (feature `lambda`: only the worker and `opkit` link aws-sdk-lambda).

use crate::BoxFuture;

/// What an invocation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoked {
    /// Lambda's `StatusCode` (200 for a synchronous invocation that ran).
    pub status: u16,
    /// Lambda's `FunctionError` (`Unhandled`, or the function's own) when the
    /// function failed; its payload then holds `errorMessage`.
    pub function_error: Option<String>,
    /// The function's response (JSON).
    pub payload: Vec<u8>,
}

/// Invokes Lambda functions.
pub trait LambdaInvoker: Send + Sync {
    /// Invokes `function` (a name, or an ARN) synchronously with `payload`
    /// (JSON). An error is a one-line reason (it may be shown to the asker,
    /// after secrets are blanked out).
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<Invoked, String>>;
}

/// Lambda through the AWS SDK (its region and credentials from the
/// deployment's configuration). The caller's role needs
/// `lambda:InvokeFunction` on the functions the commands name.
#[cfg(feature = "lambda")]
#[derive(Debug, Clone)]
pub struct SdkLambda(pub aws_sdk_lambda::Client);

#[cfg(feature = "lambda")]
impl SdkLambda {
    /// A client from the process's AWS configuration.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self(aws_sdk_lambda::Client::new(sdk))
    }
}

#[cfg(feature = "lambda")]
impl LambdaInvoker for SdkLambda {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<Invoked, String>> {
        Box::pin(async move {
            let output = self
                .0
                .invoke()
                .function_name(function)
                .payload(aws_sdk_lambda::primitives::Blob::new(payload))
                .send()
                .await
                .map_err(|e| {
                    use aws_sdk_lambda::error::ProvideErrorMetadata;
                    match e.as_service_error().and_then(|s| s.code()) {
                        Some(code) => format!("Lambda refused: {code}"),
                        None => format!(
                            "Lambda could not be reached: {}",
                            aws_sdk_lambda::error::DisplayErrorContext(&e)
                        ),
                    }
                })?;
            Ok(Invoked {
                status: u16::try_from(output.status_code()).unwrap_or(500),
                function_error: output.function_error().map(str::to_string),
                payload: output
                    .payload()
                    .map(|b| b.as_ref().to_vec())
                    .unwrap_or_default(),
            })
        })
    }
}
