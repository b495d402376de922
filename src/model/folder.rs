//! Folder paths: the only shape a folder may have, checked once at the edge.

/// A folder path: `/` or `/seg(/seg)*`, segments `[A-Za-z0-9._-]{1,64}` but not `.`/`..`,
/// at most 16 levels and 512 bytes.
/// Stored (an API key's folder) as its text, checked again when read back.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct FolderPath(String);

impl TryFrom<String> for FolderPath {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("{s:?} is not a folder path"))
    }
}

impl From<FolderPath> for String {
    fn from(f: FolderPath) -> Self {
        f.0
    }
}

impl FolderPath {
    pub fn root() -> Self {
        Self("/".to_owned())
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s == "/" {
            return Some(Self::root());
        }
        if s.len() > 512 || !s.starts_with('/') {
            return None;
        }
        let segments: Vec<&str> = s[1..].split('/').collect();
        let valid = segments.len() <= 16
            && segments.iter().all(|seg| {
                (1..=64).contains(&seg.len())
                    && *seg != "."
                    && *seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        valid.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// Whether `path` is this folder or lies below it (every folder is below `/`).
    pub fn holds(&self, path: &str) -> bool {
        self.is_root()
            || path == self.0
            || path
                .strip_prefix(self.0.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// `/a/b/c` → `["/a", "/a/b"]` (every proper ancestor but `/`).
    pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
        path.match_indices('/')
            .skip(1)
            .map(move |(i, _)| &path[..i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_holds_itself_and_what_lies_below_it() {
        let acme = FolderPath::parse("/clients/acme").expect("path");
        for inside in ["/clients/acme", "/clients/acme/2026", "/clients/acme/a/b"] {
            assert!(acme.holds(inside), "{inside}");
        }
        for outside in [
            "/",
            "/clients",
            "/clients/acme2",
            "/clients/acme-old",
            "/other",
        ] {
            assert!(!acme.holds(outside), "{outside}");
        }
        assert!(FolderPath::root().holds("/anything"));
    }

    #[test]
    fn folder_grammar() {
        for ok in ["/", "/images", "/images/products", "/a.b/c_d/e-f", "/A1"] {
            assert!(FolderPath::parse(ok).is_some(), "{ok}");
        }
        let deep = "/a".repeat(17);
        let long_seg = format!("/{}", "x".repeat(65));
        for bad in [
            "", "images", "/images/", "//", "/a//b", "/.", "/..", "/a/../b", "/a b", "/é", "/a\\b",
            &deep, &long_seg,
        ] {
            assert!(FolderPath::parse(bad).is_none(), "{bad:?}");
        }
        assert!(FolderPath::parse(&"/a".repeat(16)).is_some());
    }

    #[test]
    fn ancestors_exclude_root_and_self() {
        let a: Vec<&str> = FolderPath::ancestors("/a/b/c").collect();
        assert_eq!(a, ["/a", "/a/b"]);
        assert_eq!(FolderPath::ancestors("/a").count(), 0);
    }
}
