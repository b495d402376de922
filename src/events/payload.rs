//! The body of a delivery: `{type, timestamp, data}`. A media event's `data` is the item
//! as an authenticated GET shows it (its URLs signed afresh for each attempt when it is
//! private, so a retried event carries links that still work); `media.updated` adds
//! `changed`, the fields the change set.

use serde::Serialize;

use crate::delivery::Links;
use crate::http::handlers::views::{self, FullItem};
use crate::model::{Event, Subject};
use crate::storage::StorageError;

#[derive(Serialize)]
struct Body<D> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: D,
}

#[derive(Serialize)]
struct Media<'a> {
    #[serde(flatten)]
    item: FullItem<'a>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    changed: &'a [String],
}

#[derive(Serialize)]
struct Folder<'a> {
    path: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Ping<'a> {
    webhook_id: &'a str,
}

/// The JSON body of `event`'s delivery.
pub async fn payload(event: &Event, links: &Links) -> Result<Vec<u8>, StorageError> {
    // To the microsecond: when the change committed (delivery lag is measured from it).
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_micros(event.at_us);
    let (kind, timestamp) = (
        event.kind.name(),
        humantime::format_rfc3339_micros(at).to_string(),
    );
    let json = match &event.subject {
        Subject::Media { record, changed } => {
            let urls = links.name([record.as_ref()], None).await?;
            let data = Media {
                item: views::full(&urls, record),
                changed,
            };
            serde_json::to_vec(&Body {
                kind,
                timestamp,
                data,
            })
        }
        Subject::Folder { path } => serde_json::to_vec(&Body {
            kind,
            timestamp,
            data: Folder { path },
        }),
        Subject::Ping { webhook } => serde_json::to_vec(&Body {
            kind,
            timestamp,
            data: Ping {
                webhook_id: webhook,
            },
        }),
    };
    Ok(json.unwrap_or_default())
}
