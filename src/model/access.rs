//! Who may do what: API key records and their scopes.

use serde::{Deserialize, Serialize};

/// What an API key may do: `read` the library, also `write` it, or also manage API
/// keys (`admin`). Each scope allows everything the ones before it do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Read, Self::Write, Self::Admin]
            .into_iter()
            .find(|s| s.name() == name)
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
        assert!(!Scope::Write.allows(Scope::Admin) && !Scope::Read.allows(Scope::Admin));
        assert!(
            [Scope::Read, Scope::Write, Scope::Admin]
                .iter()
                .all(|s| Scope::Admin.allows(*s))
        );
        for s in [Scope::Read, Scope::Write, Scope::Admin] {
            assert_eq!(Scope::parse(s.name()), Some(s));
        }
        assert_eq!(Scope::parse("Admin"), None);
    }
}
