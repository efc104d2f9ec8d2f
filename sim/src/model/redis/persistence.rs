//! What survives a Redis crash ([`Persistence`]): the setting the Redis node applies when it
//! restarts its model.

use serde::{Deserialize, Serialize};

/// What survives a Redis crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// Nothing: restart empty.
    None,
    /// The state as of the last whole-second fsync: the last second's writes are lost.
    Everysec,
    /// Everything.
    Always,
}

impl Persistence {
    /// The setting's name as written in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Persistence::None => "none",
            Persistence::Everysec => "everysec",
            Persistence::Always => "always",
        }
    }
}
