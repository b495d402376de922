//! Previews: animated GIF and WebP keep moving (animated WebP variants, frames and timing
//! read back with a decoder), videos and PDFs get a poster with variants, crops and
//! placeholders, hostile ones none (and stay ready), frame bombs are refused at upload,
//! a tool that hangs is killed, and missing tools turn previews off without harm.

use std::io::Cursor;

use darkroom::config::Config;
use image::AnimationDecoder;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestServer, error_code, fixture, sample, storage_key};

on_every_backend!(videos_and_pdfs_get_a_poster_with_variants_crops_and_placeholders);
on_every_backend!(animations_get_animated_variants_with_their_frames_and_timing);
on_every_backend!(a_replace_and_a_delete_take_the_poster_and_its_variants);

/// Frames and their delays (ms) of an animated file, read back by a decoder.
fn frames_of(bytes: &[u8], webp: bool) -> Vec<u32> {
    let frames = if webp {
        image::codecs::webp::WebPDecoder::new(Cursor::new(bytes))
            .expect("webp")
            .into_frames()
    } else {
        image::codecs::gif::GifDecoder::new(Cursor::new(bytes))
            .expect("gif")
            .into_frames()
    };
    frames
        .map(|f| {
            let (n, d) = f.expect("frame").delay().numer_denom_ms();
            n / d
        })
        .collect()
}

async fn fetched(s: &TestServer, url: &str) -> Vec<u8> {
    let resp = s.get(url, None).await;
    assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
    resp.bytes().await.expect("bytes").to_vec()
}

/// Decodes the WebP at `url` and checks its size is the listed one.
async fn picture(s: &TestServer, v: &Value) -> image::DynamicImage {
    let bytes = fetched(s, v["url"].as_str().expect("url")).await;
    assert_eq!(bytes.len() as u64, v["size"].as_u64().expect("size"));
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP).expect("WebP");
    assert_eq!(
        (u64::from(img.width()), u64::from(img.height())),
        (
            v["width"].as_u64().expect("w"),
            v["height"].as_u64().expect("h")
        ),
        "{v}"
    );
    img
}

fn mean_luma(img: &image::DynamicImage) -> f64 {
    let luma = img.to_luma8();
    luma.as_raw().iter().map(|l| f64::from(*l)).sum::<f64>() / luma.as_raw().len() as f64
}

const PRESETS: &str = r#"card = "300x200""#;

fn with_card(c: &mut Config) {
    #[derive(serde::Deserialize)]
    struct Delivery {
        presets: darkroom::model::Presets,
    }
    let text = format!("presets = {{ {PRESETS} }}");
    c.delivery.presets = toml::from_str::<Delivery>(&text).expect("presets").presets;
}

async fn videos_and_pdfs_get_a_poster_with_variants_crops_and_placeholders(s: TestServer) {
    let s = TestServer::spawn_in(s.stop().await, with_card).await;
    let items = s
        .upload_waiting(&[
            "video/bigbuckbunny_1280x720_faststart.mp4",
            "video/bigbuckbunny_640x360_vp9_opus.webm",
            "video/bigbuckbunny_1280x720_moov_at_end.mp4",
            "pdf/ltnews18_1page.pdf",
            "video/black_then_bars_320x240.mp4",
        ])
        .await;
    // Poster widths: the original's, at most the largest variant's (1200); a PDF page
    // at most 1200 on its longer side.
    for (item, width) in items.iter().zip([1200, 640, 1200, 0, 320]) {
        let name = item["filename"].as_str().expect("name");
        assert_eq!(item["status"], "ready", "{name}: {item}");
        let poster = &item["poster"];
        assert!(poster.is_object(), "{name} has a poster: {item}");
        let img = picture(&s, poster).await;
        if width > 0 {
            assert_eq!(img.width(), width, "{name}");
        } else {
            assert_eq!(img.width().max(img.height()), 1200, "{name}");
        }
        assert_eq!(
            item["variants"],
            json!([]),
            "{name}: variants are the poster's"
        );
        let variants = poster["variants"].as_array().expect("variants");
        let widths: Vec<u64> = variants
            .iter()
            .map(|v| v["width"].as_u64().expect("w"))
            .collect();
        let expected: Vec<u64> = [800, 400, 150]
            .into_iter()
            .chain((img.width() > 1200).then_some(1200))
            .filter(|w| *w < u64::from(img.width()))
            .collect();
        let mut sorted = widths.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(widths, sorted, "{name}: largest first");
        assert_eq!(
            sorted
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            expected.into_iter().collect(),
            "{name}"
        );
        for v in variants {
            picture(&s, v).await;
        }
        assert!(
            item["thumbhash"].as_str().is_some_and(|h| h.len() > 10),
            "{name}"
        );
        assert!(
            item["dominantColor"]
                .as_str()
                .is_some_and(|c| c.starts_with('#'))
        );
        // The preset crop is cut from the poster; an on-demand crop too.
        let card = &item["crops"][0];
        assert_eq!(
            (&card["name"], &card["width"]),
            (&json!("card"), &json!(300))
        );
        let card = fetched(&s, card["url"].as_str().expect("url")).await;
        let card =
            image::load_from_memory_with_format(&card, image::ImageFormat::WebP).expect("card");
        assert_eq!((card.width(), card.height()), (300, 200), "{name}");
        let id = item["id"].as_str().expect("id");
        let signed = s
            .send_json(
                Method::POST,
                &format!("/api/v1/media/{id}/crops"),
                json!({"width": 120, "height": 120}),
            )
            .await;
        assert_eq!(signed.status(), StatusCode::OK, "{name}");
        let url = signed.json::<Value>().await.expect("json")["url"]
            .as_str()
            .expect("url")
            .to_owned();
        let crop = fetched(&s, &url).await;
        let crop =
            image::load_from_memory_with_format(&crop, image::ImageFormat::WebP).expect("crop");
        assert_eq!((crop.width(), crop.height()), (120, 120), "{name}");
    }
    // The clip that opens black: its frame at 0.4 s is black, the one a second later not.
    let bars = picture(&s, &items[4]["poster"]).await;
    assert!(mean_luma(&bars) > 60.0, "the black frame was skipped");
    // The public view shows the poster too.
    let id = items[0]["id"].as_str().expect("id");
    let public = s.get_json(&format!("/api/v1/public/media/{id}")).await;
    assert_eq!(public["data"]["poster"], items[0]["poster"]);
    // The files are the item's: the poster's key shares the original's stem.
    let stem = storage_key(&items[0]);
    let stem = stem.rsplit_once('.').expect("ext").0;
    assert_eq!(
        storage_key(&items[0]["poster"]),
        format!("{stem}-poster.webp")
    );
}

async fn animations_get_animated_variants_with_their_frames_and_timing(s: TestServer) {
    let items = s
        .upload_waiting(&[
            "gif/iss634_245x245_animated.gif",
            "webp/iss634_245x245_animated.webp",
            "gif/toucan_200x150_static_transparent.gif",
        ])
        .await;
    for (item, path, webp) in [
        (&items[0], "gif/iss634_245x245_animated.gif", false),
        (&items[1], "webp/iss634_245x245_animated.webp", true),
    ] {
        assert_eq!(item["status"], "ready", "{path}: {item}");
        let source = frames_of(&fixture(path), webp);
        assert_eq!(item["animated"], true, "{path}");
        assert_eq!(item["frames"], json!(source.len()), "{path}");
        assert!(item["thumbhash"].is_string() && item["dominantColor"].is_string());
        let variants = item["variants"].as_array().expect("variants");
        assert_eq!(variants.len(), 1, "one variant narrower than 245: {item}");
        let bytes = fetched(&s, variants[0]["url"].as_str().expect("url")).await;
        let made = frames_of(&bytes, true);
        // Every frame, each shown as long as in the source (10 ms or less plays as 100 ms).
        let shown: Vec<u32> = source
            .iter()
            .map(|d| if *d <= 10 { 100 } else { *d })
            .collect();
        assert_eq!(
            made.iter().sum::<u32>(),
            shown.iter().sum::<u32>(),
            "{path}"
        );
        assert!(
            made.len() + 2 >= shown.len(),
            "{path}: {} of {} frames",
            made.len(),
            shown.len()
        );
        assert!(made.len() > 10, "{path}: it moves");
    }
    let still = &items[2];
    assert_eq!(still["animated"], false);
    assert!(still.get("frames").is_none(), "{still}");
}

/// A GIF of `frames` 1x1 frames on a `w` x `h` screen.
fn gif(w: u16, h: u16, frames: usize) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend(w.to_le_bytes());
    g.extend(h.to_le_bytes());
    g.extend([0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
    g.extend(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00");
    for _ in 0..frames {
        g.extend([0x21, 0xF9, 4, 0, 5, 0, 0, 0]);
        g.extend([0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4C, 0x01, 0]);
    }
    g.push(0x3B);
    g
}

#[tokio::test]
async fn frame_bombs_are_refused_at_upload_and_never_reach_the_pool() {
    let s = TestServer::spawn().await;
    // 10,000 tiny frames; 50 of 8000x8000 (3.2 GP over all frames); 50 of 3000x3000 (450
    // MP).
    for (name, bomb, code, bound) in [
        (
            "tiny.gif",
            gif(1, 1, 10_000),
            "file_too_complex",
            "1000 animation frames",
        ),
        (
            "huge.gif",
            gif(8000, 8000, 50),
            "file_too_complex",
            "pixels over all its frames",
        ),
        (
            "large.gif",
            gif(3000, 3000, 50),
            "file_too_complex",
            "pixels over all its frames",
        ),
    ] {
        let resp = s.upload_parts(vec![(name.into(), bomb)], &[]).await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
        assert!(body.to_string().contains(bound), "{name}: {body}");
    }
    // Refused in the upload's own request: no item, so no job (a job is its item's).
    let listed = s.get_json("/api/v1/media").await;
    assert_eq!(listed["total"], 0, "nothing was kept");
    assert!(s.stored_files().await.is_empty(), "no file was kept");
}

#[tokio::test]
async fn hostile_and_encrypted_files_are_ready_without_a_poster() {
    let s = TestServer::spawn().await;
    let items = s
        .upload_waiting(&[
            "pdf/encrypted_user_password.pdf",
            "hostile/pdf_truncated_lppl.pdf",
            "hostile/mp4_truncated_bbb_mdat_fixed.mp4",
            "video/all_black_2s_160x120.webm",
            "video/black_then_bars_320x240.mp4",
        ])
        .await;
    for item in &items[..3] {
        assert_eq!(item["status"], "ready", "{item}");
        assert_eq!(item["poster"], Value::Null, "{item}");
        assert_eq!(item["variants"], json!([]));
        assert!(item.get("processingError").is_none(), "{item}");
        // The file itself is served as it came.
        fetched(&s, item["url"].as_str().expect("url")).await;
    }
    // A clip black all through keeps its first pick: black, but a poster.
    let black = picture(&s, &items[3]["poster"]).await;
    assert!(mean_luma(&black) < 20.0);
    // Without crop presets too, a poster has the frame's own size (it was once decoded
    // at the scale the 150 px variant needs: 160 px).
    let bars = picture(&s, &items[4]["poster"]).await;
    assert_eq!((bars.width(), bars.height()), (320, 240));
    let metrics = s.get("/metrics", None).await.text().await.expect("metrics");
    let failed = sample(
        &metrics,
        "darkroom_posters_total{type=\"pdf\",outcome=\"failed\"}",
    );
    // (Counters are the process's: other tests of this binary may add to them.)
    assert!(failed >= Some(2.0), "{metrics}");
}

/// A stand-in tool that never ends (a shell and its child, as a stuck decoder would be),
/// writing its pids to `pids`.
fn hanging_tool(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let pids = dir.join("pids");
    let tool = dir.join("ffmpeg");
    let script = format!(
        "#!/bin/sh\nsleep 600 &\necho $$ $! >> {}\nwait\n",
        pids.display()
    );
    // Written aside and renamed: a file still open for writing cannot be run (ETXTBSY).
    let aside = dir.join("ffmpeg.tmp");
    std::fs::write(&aside, script).expect("tool");
    let mut perms = std::fs::metadata(&aside).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&aside, perms).expect("chmod");
    std::fs::rename(&aside, &tool).expect("rename");
    (tool, pids)
}

#[tokio::test]
async fn a_tool_that_hangs_is_killed_and_the_item_is_ready_without_a_poster() {
    let dir = tempfile::tempdir().expect("dir");
    let (tool, pids) = hanging_tool(dir.path());
    let s = TestServer::spawn_with(|c| {
        c.previews.ffmpeg = tool.display().to_string();
        c.previews.timeout_secs = 1;
    })
    .await;
    let item = s
        .upload_waiting_one("video/bigbuckbunny_640x360_vp9_opus.webm")
        .await;
    assert_eq!(item["status"], "ready", "{item}");
    assert_eq!(item["poster"], Value::Null);
    let listed = std::fs::read_to_string(&pids).expect("the tool ran");
    for pid in listed.split_whitespace() {
        let mut gone = false;
        for _ in 0..100 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
            if stat.map_or(true, |s| s.split_whitespace().nth(2) == Some("Z")) {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(gone, "process {pid} of the tool still runs");
    }
    let metrics = s.get("/metrics", None).await.text().await.expect("metrics");
    let timed_out = sample(
        &metrics,
        "darkroom_posters_total{type=\"webm\",outcome=\"timed_out\"}",
    );
    assert!(timed_out >= Some(1.0), "{metrics}");
}

/// Past half the backlog limit a new video or PDF gets no poster job (it is ready without
/// one): a burst of documents, never refused, must not fill the backlog that image
/// uploads are admitted by.
#[tokio::test]
async fn past_half_the_backlog_videos_and_pdfs_are_ready_without_a_poster_job() {
    let dir = tempfile::tempdir().expect("dir");
    let (tool, _pids) = hanging_tool(dir.path());
    let s = TestServer::spawn_with(|c| {
        c.previews.ffmpeg = tool.display().to_string();
        c.previews.timeout_secs = 30;
        c.processing.max_backlog = 2; // posters while fewer than 1 job waits
    })
    .await;
    let first = s
        .upload_one("video/bigbuckbunny_640x360_vp9_opus.webm", &[])
        .await;
    assert_eq!(
        first["status"], "processing",
        "room for its poster: {first}"
    );
    // Its tool hangs, so its job stays in the backlog; the next ones get none.
    let second = s.upload_one("video/black_then_bars_320x240.mp4", &[]).await;
    assert_eq!(second["status"], "ready", "{second}");
    assert_eq!(second["poster"], Value::Null);
    let metrics = s.get("/metrics", None).await.text().await.expect("metrics");
    let skipped = sample(
        &metrics,
        "darkroom_posters_total{type=\"mp4\",outcome=\"skipped\"}",
    );
    assert!(skipped >= Some(1.0), "{metrics}");
    // An image is still admitted (the backlog holds the one poster job, under 2).
    let image = s.upload_one("jpeg/hopper_128x128.jpg", &[]).await;
    assert_eq!(image["mimeType"], "image/jpeg");
}

#[tokio::test]
async fn without_the_tools_items_are_ready_and_the_server_is_ready() {
    let s = TestServer::spawn_with(|c| {
        c.previews.ffmpeg = String::new();
        c.previews.pdftoppm = "/nonexistent/pdftoppm".into();
    })
    .await;
    let items = s
        .upload_waiting(&[
            "video/bigbuckbunny_640x360_vp9_opus.webm",
            "pdf/ltnews18_1page.pdf",
        ])
        .await;
    for item in &items {
        assert_eq!(item["status"], "ready", "{item}");
        assert_eq!(item["poster"], Value::Null);
    }
    assert_eq!(s.get("/readyz", None).await.status(), StatusCode::OK);
    let metrics = s.get("/metrics", None).await.text().await.expect("metrics");
    let off = sample(
        &metrics,
        "darkroom_posters_total{type=\"pdf\",outcome=\"off\"}",
    );
    assert!(off >= Some(1.0), "{metrics}");
}

async fn a_replace_and_a_delete_take_the_poster_and_its_variants(s: TestServer) {
    let video = s
        .upload_waiting_one("video/bigbuckbunny_640x360_vp9_opus.webm")
        .await;
    let id = video["id"].as_str().expect("id").to_owned();
    let urls = |item: &Value| -> Vec<String> {
        let poster = &item["poster"];
        std::iter::once(poster)
            .chain(poster["variants"].as_array().into_iter().flatten())
            .map(|v| v["url"].as_str().expect("url").to_owned())
            .collect()
    };
    let old = urls(&video);
    assert_eq!(old.len(), 3, "poster, 400 and 150: {video}");
    // Replaced by another video: its own poster, the first one's files go.
    let bars = fixture("video/black_then_bars_320x240.mp4");
    let resp = crate::replace::replace(&s, &id, &[("bars.mp4", bars)]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = s.until_processed(&id).await;
    assert_eq!(page["mimeType"], "video/mp4");
    assert!(page["poster"].is_object(), "{page}");
    for url in &old {
        s.until_not_found(url).await;
    }
    let new = urls(&page);
    for url in &new {
        fetched(&s, url).await;
    }
    assert_eq!(s.delete_item(&id).await.status(), StatusCode::OK);
    for url in new
        .iter()
        .chain([&page["url"].as_str().expect("url").to_owned()])
    {
        s.until_not_found(url).await;
    }
    // The file route answers 404 at once; the delete queue removes the files soon after.
    s.until_no_files().await;
}

#[tokio::test]
async fn an_animation_past_the_configured_limits_is_refused_with_its_bound() {
    let s = TestServer::spawn_with(|c| c.limits.max_animation_frames = 20).await;
    let resp = s.upload(&["gif/iss634_245x245_animated.gif"], &[]).await;
    assert_eq!(
        error_code(resp, StatusCode::BAD_REQUEST).await,
        "file_too_complex"
    );
    let resp = s.upload(&["webp/iss634_245x245_animated.webp"], &[]).await;
    assert_eq!(
        error_code(resp, StatusCode::BAD_REQUEST).await,
        "file_too_complex"
    );
}
