//! Who may do what: API key records and their scopes.

use serde::{Deserialize, Serialize};

/// Read or write access of an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Write || needed == Scope::Read
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// A stored API key: only the SHA-256 of the secret is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub hash: [u8; 32],
    pub created_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert!(Scope::Write.allows(Scope::Read) && Scope::Write.allows(Scope::Write));
        assert!(Scope::Read.allows(Scope::Read) && !Scope::Read.allows(Scope::Write));
    }
}
