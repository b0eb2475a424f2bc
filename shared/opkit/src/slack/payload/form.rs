//! Named text fields, from a form body or a JSON object, taken out one by one.

use std::collections::HashMap;

use serde_json::Value;

use super::PayloadError;

/// Decoded fields whose values are taken out one by one, each read once.
pub(super) struct Form {
    fields: HashMap<String, String>,
}

impl Form {
    /// Decodes an `application/x-www-form-urlencoded` body. A field given twice is
    /// refused (a smuggling attempt), and so is a body that is not UTF-8.
    pub(super) fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        if body.is_empty() {
            return Err(PayloadError::EmptyBody);
        }
        // The form decoder would silently replace invalid UTF-8; refuse it instead.
        std::str::from_utf8(body).map_err(|_| PayloadError::NotUtf8)?;
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| PayloadError::MalformedForm {
                reason: e.to_string(),
            })?;
        let mut fields = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if fields.contains_key(&name) {
                return Err(PayloadError::DuplicateField { field: name });
            }
            fields.insert(name, value);
        }
        Ok(Self { fields })
    }

    /// The fields of a JSON object that carries what would be a form's fields (Socket
    /// Mode's `slash_commands` payload). Strings are taken as they are, booleans and
    /// numbers as their text (`true`, `42`), and `null` as absent. An array or object
    /// is an error if the field is one of `known`, and ignored otherwise (Slack adds
    /// fields over time).
    pub(super) fn from_json(payload: &Value, known: &[&'static str]) -> Result<Self, PayloadError> {
        let Value::Object(object) = payload else {
            return Err(PayloadError::InvalidField {
                field: "payload",
                reason: "expected a JSON object".into(),
            });
        };
        let mut fields = HashMap::with_capacity(object.len());
        for (name, value) in object {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Null => continue,
                Value::Array(_) | Value::Object(_) => match known.iter().find(|k| *k == name) {
                    Some(field) => {
                        return Err(PayloadError::InvalidField {
                            field,
                            reason: "expected a string".into(),
                        });
                    }
                    None => continue,
                },
            };
            fields.insert(name.clone(), text);
        }
        Ok(Self { fields })
    }

    /// How many fields are left.
    pub(super) fn len(&self) -> usize {
        self.fields.len()
    }

    /// The value of `field` without taking it out.
    pub(super) fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    /// A field that must be present; it may be empty.
    pub(super) fn required(&mut self, field: &'static str) -> Result<String, PayloadError> {
        self.fields
            .remove(field)
            .ok_or(PayloadError::MissingField { field })
    }

    /// A field that must be present and not empty.
    pub(super) fn non_empty(&mut self, field: &'static str) -> Result<String, PayloadError> {
        let value = self.required(field)?;
        if value.is_empty() {
            return Err(PayloadError::MissingField { field });
        }
        Ok(value)
    }

    /// An optional field; Slack sends some as empty strings, which mean "absent".
    pub(super) fn optional(&mut self, field: &str) -> Option<String> {
        self.fields.remove(field).filter(|v| !v.is_empty())
    }

    /// An optional `true` or `false`.
    pub(super) fn optional_bool(
        &mut self,
        field: &'static str,
    ) -> Result<Option<bool>, PayloadError> {
        match self.optional(field).as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(PayloadError::InvalidField {
                field,
                reason: format!("expected `true` or `false`, got {other:?}"),
            }),
        }
    }
}
