//! Turning the command line into a scenario: bodies built once, ids and folders fetched
//! from the server, mix weights parsed.

use clap::ValueEnum;

use crate::client::Client;
use crate::scenario::{self, Multipart, Op, Scenario, Target};
use crate::{Args, Kind, kind_name};

/// Builds the operations of a scenario; `mixed` builds each weighted part.
pub async fn prepare(
    args: &Args,
    target: &Target,
    client: &mut Client,
) -> Result<Scenario, String> {
    let name = kind_name(args.scenario);
    let parts = if args.scenario == Kind::Mixed {
        let mut parts = Vec::new();
        for (kind, weight) in parse_mix(&args.mix)? {
            parts.push((weight, op(kind, args, target, client).await?));
        }
        parts
    } else {
        vec![(1, op(args.scenario, args, target, client).await?)]
    };
    Ok(Scenario::new(&name, parts))
}

async fn op(kind: Kind, args: &Args, target: &Target, client: &mut Client) -> Result<Op, String> {
    Ok(match kind {
        Kind::UploadDocs => {
            // 64 bodies with distinct filenames, so index keys spread as real names do.
            let doc = scenario::pdf(args.doc_bytes);
            let bodies = (0..64)
                .map(|i| {
                    Multipart::upload(
                        &format!("report-{i:02}.pdf"),
                        "application/pdf",
                        &doc,
                        "/loadtest/docs",
                    )
                })
                .collect();
            Op::Upload {
                bodies,
                wait: args.wait,
            }
        }
        Kind::UploadImages => Op::Upload {
            bodies: image_bodies(args)?,
            wait: args.wait,
        },
        Kind::UploadLarge => Op::UploadLarge {
            bytes: args.large_bytes,
        },
        Kind::GetPublic => Op::GetPublic {
            ids: ids(args, target, client).await?,
        },
        Kind::List => Op::List {
            paths: list_paths(args, target, client).await?,
        },
        Kind::Presign => Op::Presign {
            file: scenario::pdf(args.doc_bytes).into(),
            filename: "doc.pdf".into(),
            mime: "application/pdf".into(),
        },
        Kind::Mixed => return Err("a mix cannot contain `mixed`".into()),
    })
}

fn parse_mix(mix: &str) -> Result<Vec<(Kind, u32)>, String> {
    mix.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|part| {
            let (name, weight) = part
                .split_once('=')
                .ok_or(format!("--mix part {part}: name=weight"))?;
            let kind = Kind::from_str(name.trim(), true)
                .map_err(|_| format!("--mix: unknown scenario {name}"))?;
            let weight = weight
                .trim()
                .parse()
                .map_err(|_| format!("--mix {name}: weight must be a whole number"))?;
            Ok((kind, weight))
        })
        .collect::<Result<Vec<_>, String>>()
        .and_then(|parts| {
            if parts.iter().map(|(_, w)| w).sum::<u32>() == 0 {
                Err("--mix needs a weight above 0".into())
            } else {
                Ok(parts)
            }
        })
}

fn image_bodies(args: &Args) -> Result<Vec<Multipart>, String> {
    if !args.image.is_empty() {
        return args
            .image
            .iter()
            .map(|path| {
                let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let mime = image_mime(&bytes)
                    .ok_or(format!("{}: not a JPEG, PNG, GIF or WebP", path.display()))?;
                let name = path
                    .file_name()
                    .map_or("image".into(), |n| n.to_string_lossy().into_owned());
                Ok(Multipart::upload(&name, mime, &bytes, "/loadtest/images"))
            })
            .collect();
    }
    let (w, h) = args
        .generate
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u16>().ok()?, h.parse::<u16>().ok()?)))
        .ok_or(format!("--generate {}: WIDTHxHEIGHT", args.generate))?;
    (0..args.images.max(1))
        .map(|seed| {
            let jpg = scenario::jpeg(w, h, seed)?;
            Ok(Multipart::upload(
                &format!("gen-{seed}.jpg"),
                "image/jpeg",
                &jpg,
                "/loadtest/images",
            ))
        })
        .collect()
}

fn image_mime(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        _ => None,
    }
}

/// Ids from --ids-file, else from the server's public listing (pages of 100).
async fn ids(args: &Args, target: &Target, client: &mut Client) -> Result<Vec<String>, String> {
    let ids: Vec<String> = if let Some(path) = &args.ids_file {
        std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        let mut ids = Vec::new();
        while ids.len() < args.ids {
            let page = target
                .get_json(
                    client,
                    &format!("/api/v1/public/media?limit=100&offset={}", ids.len()),
                )
                .await?;
            let items = page["data"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                break;
            }
            ids.extend(
                items
                    .iter()
                    .filter_map(|i| i["id"].as_str().map(str::to_owned)),
            );
        }
        ids
    };
    if ids.is_empty() {
        return Err(
            "get-public needs existing items: upload some first (e.g. loadtest upload-docs)".into(),
        );
    }
    Ok(ids)
}

/// The paths of --paths-file, else 256 listing paths drawn from --list-mix over the
/// server's folders.
async fn list_paths(
    args: &Args,
    target: &Target,
    client: &mut Client,
) -> Result<Vec<String>, String> {
    if let Some(path) = &args.paths_file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let paths: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with('/'))
            .map(str::to_owned)
            .collect();
        return match paths.is_empty() {
            true => Err(format!(
                "{}: no paths (lines starting with /)",
                path.display()
            )),
            false => Ok(paths),
        };
    }
    let listed = target.get_json(client, "/api/v1/media/folders").await?;
    let mut folders: Vec<String> = listed["folders"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if folders.is_empty() {
        folders.push("/".into());
    }
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(11);
    (0..256)
        .map(|i| {
            let kind = &args.list_mix[i % args.list_mix.len().max(1)];
            list_path(kind, &folders, &args.search_terms, &mut rng)
        })
        .collect()
}

fn list_path(
    kind: &str,
    folders: &[String],
    terms: &[String],
    rng: &mut rand::rngs::SmallRng,
) -> Result<String, String> {
    use rand::Rng;
    let folder = &folders[rng.random_range(0..folders.len())];
    let folder: String = form_encode(folder);
    let q = match kind {
        "folder-sort" => format!("folder={folder}&sort=filename&order=asc&limit=24"),
        "folder-size" => format!(
            "folder={folder}&sort=size&order=desc&limit=24&offset={}",
            rng.random_range(0..20) * 24
        ),
        "type" => format!(
            "type={}&limit=24",
            ["image", "document", "video"][rng.random_range(0..3)]
        ),
        "sort-size" => "sort=size&order=asc&limit=24".to_owned(),
        "default" => "limit=24".to_owned(),
        "search" => format!(
            "search={}&limit=24",
            form_encode(
                terms
                    .get(rng.random_range(0..terms.len().max(1)))
                    .map_or("a", String::as_str)
            )
        ),
        other => return Err(format!("--list-mix: unknown kind {other}")),
    };
    Ok(format!("/api/v1/media?{q}"))
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_weights_parse_and_reject_nonsense() {
        let parts = parse_mix("get-public=90, list=8,upload-docs=2").expect("valid");
        assert_eq!(
            parts,
            vec![
                (Kind::GetPublic, 90),
                (Kind::List, 8),
                (Kind::UploadDocs, 2)
            ]
        );
        assert!(parse_mix("get-public").is_err());
        assert!(parse_mix("nope=1").is_err());
        assert!(parse_mix("list=0").is_err());
    }

    #[test]
    fn listing_paths_encode_folders_and_reject_unknown_kinds() {
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(1);
        let folders = vec!["/a b".to_owned()];
        let path = list_path("folder-sort", &folders, &[], &mut rng).expect("kind");
        assert_eq!(
            path,
            "/api/v1/media?folder=/a%20b&sort=filename&order=asc&limit=24"
        );
        assert!(list_path("bogus", &folders, &[], &mut rng).is_err());
    }
}
