//! Small serde helpers shared by the type modules.

use serde::{Deserialize, Deserializer};

/// Deserializes a present field (even `null`) as `Some(value)`; use with `#[serde(default)]`
/// so that an absent field is `None`.
pub(crate) fn some_value<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// `skip_serializing_if` helper for `bool` fields omitted when false.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}
