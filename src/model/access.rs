//! Who may do what: API key records and their scopes.

use serde::{Deserialize, Serialize};

use super::folder::FolderPath;

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

    /// Whether a key of this scope may be limited to a folder: an admin key manages
    /// every key (it could make itself an unlimited one), so it never is.
    pub fn may_be_limited(self) -> bool {
        self != Self::Admin
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Read, Self::Write, Self::Admin]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// A stored API key: only the SHA-256 of the secret is kept. A field this build does not
/// know (a limit a newer one added) makes the record unreadable, never a wider key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub hash: [u8; 32],
    pub created_us: u64,
    /// A key limited to this folder's subtree: it sees, changes and makes nothing outside
    /// it (to it, the rest of the library does not exist). `None`: the whole library.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<FolderPath>,
}

impl ApiKeyRecord {
    /// The subtree this key is limited to, if any (`/` is the whole library).
    pub fn within(&self) -> Option<&FolderPath> {
        self.folder.as_ref().filter(|f| !f.is_root())
    }

    /// Whether this key reaches the folder `folder` (and the items in it).
    pub fn reaches(&self, folder: &str) -> bool {
        self.within().is_none_or(|root| root.holds(folder))
    }
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
