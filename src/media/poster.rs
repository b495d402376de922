//! Posters: the picture that stands for a video (a frame) or a PDF (its first page),
//! rendered to PNG by a tool from Debian (ffmpeg, poppler's pdftoppm) and then made into
//! variants like any image. The tools are optional (`Previews::find` says once which
//! are missing) and never trusted:
//!
//! - run without a shell, with a cleared environment, stdin closed, in a private temp
//!   folder, in a process group of their own;
//! - bounded by `prlimit` (util-linux) before they start: address space, CPU seconds,
//!   bytes written per file (the output), no core files;
//! - killed (the whole group) and reaped past the wall-clock limit, one deadline for all
//!   the runs of one poster; `timeout` (coreutils) kills it too should the server die;
//! - ffmpeg reads the local file only (`-protocol_whitelist file,pipe`, the demuxer
//!   named: a crafted playlist fetches nothing), one thread, its frame scaled into a box
//!   of `max_side` x 2 `max_side` (display aspect kept); pdftoppm renders page 1 at most
//!   `max_side` pixels on its longer side;
//! - the output is checked: a PNG, within `max_output_bytes`.
//!
//! Any failure is no poster, never a failed item.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::model::MediaType;

/// Where the tools are and how they are bounded (`[previews]` in config).
#[derive(Debug, Clone, Default)]
pub struct Previews {
    pub ffmpeg: Option<PathBuf>,
    pub pdftoppm: Option<PathBuf>,
    /// Without it nothing runs: a tool is never started unbounded.
    pub prlimit: Option<PathBuf>,
    /// coreutils' `timeout`: the wall-clock limit outlives the server.
    pub timeout: Option<PathBuf>,
    pub limits: ToolLimits,
    /// The poster's largest width (video) or side (PDF): the largest variant's width.
    pub max_side: u32,
}

/// What one run of a tool may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolLimits {
    pub wall: Duration,
    pub cpu_secs: u64,
    /// Address space (RLIMIT_AS): ffmpeg maps about 400 MB of libraries alone.
    pub memory_bytes: u64,
    /// The largest file it may write (RLIMIT_FSIZE), the output checked against it too.
    pub max_output_bytes: u64,
}

impl Default for ToolLimits {
    fn default() -> Self {
        Self {
            wall: Duration::from_secs(20),
            cpu_secs: 20,
            memory_bytes: 1 << 30,
            max_output_bytes: 32 << 20,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PosterError {
    #[error("{tool} did not finish within {secs} s and was killed")]
    TimedOut { tool: &'static str, secs: u64 },
    #[error("{tool} failed ({status}): {stderr}")]
    Failed {
        tool: &'static str,
        status: String,
        stderr: String,
    },
    #[error("{tool} wrote no usable picture: {why}")]
    Output { tool: &'static str, why: String },
    #[error("no tool makes posters of this type here")]
    NoTool,
    #[error("running {tool} failed: {error}")]
    Io {
        tool: &'static str,
        error: std::io::Error,
    },
}

impl Previews {
    /// Finds the tools named in config (a bare name on `PATH`, an empty name: off).
    pub fn find(ffmpeg: &str, pdftoppm: &str, limits: ToolLimits, max_side: u32) -> Self {
        let find = |name: &str| {
            (!name.is_empty())
                .then(|| which::which(name).ok())
                .flatten()
        };
        Self {
            ffmpeg: find(ffmpeg),
            pdftoppm: find(pdftoppm),
            prlimit: find("prlimit"),
            timeout: find("timeout"),
            limits,
            max_side,
        }
    }

    /// Says once, at start, which previews are on and which are off (and why).
    pub fn log(&self) {
        for (what, tool, package) in [
            ("video posters", &self.ffmpeg, "ffmpeg"),
            ("PDF first pages", &self.pdftoppm, "poppler-utils"),
        ] {
            match (tool, self.prlimit.as_ref().and(self.timeout.as_ref())) {
                (Some(tool), Some(_)) => {
                    tracing::info!(tool = %tool.display(), "{what} on");
                }
                (None, _) => tracing::warn!(
                    "{what} off: the tool is not installed (Debian package {package}); those \
                     items are ready without a poster"
                ),
                (Some(_), None) => tracing::warn!(
                    "{what} off: prlimit (util-linux) or timeout (coreutils) is missing, and tools \
                     never run unbounded"
                ),
            }
        }
    }

    /// The tool that makes posters of `kind`, when it is installed (and can be bounded).
    fn tool(&self, kind: MediaType) -> Option<&Path> {
        self.prlimit.as_ref()?;
        self.timeout.as_ref()?;
        match kind {
            MediaType::Mp4 | MediaType::Webm => self.ffmpeg.as_deref(),
            MediaType::Pdf => self.pdftoppm.as_deref(),
            _ => None,
        }
    }

    /// True when items of `kind` get a poster here.
    pub fn makes(&self, kind: MediaType) -> bool {
        self.tool(kind).is_some()
    }

    /// The poster of the `kind` file at `input` as PNG bytes. Blocks for the tool's run
    /// (a processing pool thread).
    pub fn render(
        &self,
        kind: MediaType,
        input: &Path,
        duration: Option<f64>,
    ) -> Result<Vec<u8>, PosterError> {
        let tool = self.tool(kind).ok_or(PosterError::NoTool)?;
        let work = tempfile::Builder::new()
            .prefix("darkroom-poster-")
            .tempdir()
            .map_err(|error| PosterError::Io {
                tool: "poster",
                error,
            })?;
        let run = Run {
            work: work.path(),
            deadline: Instant::now() + self.limits.wall,
        };
        match kind {
            MediaType::Pdf => self.pdf_page(tool, input, &run),
            _ => self.video_frame(tool, kind, input, duration, &run),
        }
    }

    /// The frame at `poster_time`, or the one a second later when it is almost black and
    /// that one is not; the first frame when the clip is shorter than its duration says.
    fn video_frame(
        &self,
        ffmpeg: &Path,
        kind: MediaType,
        input: &Path,
        duration: Option<f64>,
        run: &Run<'_>,
    ) -> Result<Vec<u8>, PosterError> {
        let at = poster_time(duration);
        let frame = |at: f64, name: &str| self.ffmpeg_frame(ffmpeg, kind, input, at, run, name);
        let first = match frame(at, "a.png")? {
            Some(png) => png,
            None => frame(0.0, "b.png")?.ok_or(PosterError::Output {
                tool: "ffmpeg",
                why: "the video has no frame to show".into(),
            })?,
        };
        let later = at + 1.0;
        if duration.is_some_and(|d| later >= d) || !png_almost_black(&first) {
            return Ok(first);
        }
        match frame(later, "c.png")? {
            Some(next) if !png_almost_black(&next) => Ok(next),
            _ => Ok(first),
        }
    }

    /// One frame at `at` seconds, `None` when the video ends before it.
    fn ffmpeg_frame(
        &self,
        ffmpeg: &Path,
        kind: MediaType,
        input: &Path,
        at: f64,
        run: &Run<'_>,
        name: &str,
    ) -> Result<Option<Vec<u8>>, PosterError> {
        let demuxer = if kind == MediaType::Mp4 {
            "mov"
        } else {
            "matroska"
        };
        let out = run.work.join(name);
        let mut source = OsString::from("file:");
        source.push(input);
        let mut target = OsString::from("file:");
        target.push(&out);
        let args: Vec<OsString> = [
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-threads",
            "1",
            "-filter_threads",
            "1",
            "-protocol_whitelist",
            "file,pipe",
            "-ss",
            &format!("{at:.3}"),
            "-f",
            demuxer,
            "-i",
        ]
        .into_iter()
        .map(OsString::from)
        .chain([source])
        .chain(
            [
                "-map",
                "0:v:0",
                "-frames:v",
                "1",
                "-an",
                "-sn",
                "-dn",
                "-vf",
                // Square pixels first (anamorphic video), then into the box.
                &format!(
                    "scale=iw*sar:ih,setsar=1,scale='min(iw,{side})':'min(ih,{tall})':\
                     force_original_aspect_ratio=decrease",
                    side = self.max_side,
                    tall = self.max_side * 2
                ),
                "-f",
                "image2",
                "-update",
                "1",
                "-c:v",
                "png",
                "-y",
            ]
            .into_iter()
            .map(OsString::from),
        )
        .chain([target])
        .collect();
        self.run("ffmpeg", ffmpeg, &args, run)?;
        if !out.exists() {
            return Ok(None); // ffmpeg ends well with nothing when the time is past the end
        }
        self.output("ffmpeg", &out).map(Some)
    }

    /// Page 1, its longer side `max_side` pixels.
    fn pdf_page(
        &self,
        pdftoppm: &Path,
        input: &Path,
        run: &Run<'_>,
    ) -> Result<Vec<u8>, PosterError> {
        let prefix = run.work.join("page");
        let side = self.max_side.to_string();
        let args: Vec<OsString> = [
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            "-png",
            "-scale-to",
            &side,
        ]
        .into_iter()
        .map(OsString::from)
        .chain([input.as_os_str().to_owned(), prefix.into_os_string()])
        .collect();
        self.run("pdftoppm", pdftoppm, &args, run)?;
        self.output("pdftoppm", &run.work.join("page.png"))
    }

    /// Runs `program` with `args` under the limits, in `run.work`; an error unless it
    /// exits 0 before `run.deadline`.
    fn run(
        &self,
        tool: &'static str,
        program: &Path,
        args: &[OsString],
        run: &Run<'_>,
    ) -> Result<(), PosterError> {
        let work = run.work;
        let io = |error| PosterError::Io { tool, error };
        let prlimit = self
            .prlimit
            .as_deref()
            .ok_or_else(|| io(std::io::Error::other("prlimit is missing")))?;
        let l = &self.limits;
        let timeout = self
            .timeout
            .as_deref()
            .ok_or_else(|| io(std::io::Error::other("timeout is missing")))?;
        let left = run.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(PosterError::TimedOut {
                tool,
                secs: l.wall.as_secs(),
            });
        }
        let stderr_path = work.join("stderr.txt");
        let stderr = std::fs::File::create(&stderr_path).map_err(io)?;
        let mut child = Command::new(prlimit)
            .arg(format!("--as={}", l.memory_bytes))
            .arg(format!("--cpu={}", l.cpu_secs))
            .arg(format!("--fsize={}", l.max_output_bytes))
            .arg("--core=0")
            .arg("--")
            .arg(timeout)
            .arg("--signal=KILL")
            .arg(format!("{:.3}", left.as_secs_f64() + 1.0))
            .arg(program)
            .args(args)
            .current_dir(work)
            .env_clear()
            .env("HOME", work)
            .env("LANG", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(io)?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => {
                    end(&mut child);
                    return Err(io(e));
                }
            }
            if started.elapsed() >= left {
                end(&mut child);
                return Err(PosterError::TimedOut {
                    tool,
                    secs: l.wall.as_secs(),
                });
            }
            std::thread::sleep(pause.min(left.saturating_sub(started.elapsed())));
            pause = (pause * 2).min(Duration::from_millis(50));
        };
        if status.success() {
            return Ok(());
        }
        let mut tail = String::new();
        if let Ok(f) = std::fs::File::open(&stderr_path) {
            let _ = f.take(2048).read_to_string(&mut tail);
        }
        Err(PosterError::Failed {
            tool,
            status: status.to_string(),
            stderr: tail.trim().lines().next().unwrap_or("").to_owned(),
        })
    }

    /// The PNG a tool wrote at `path`, checked.
    fn output(&self, tool: &'static str, path: &Path) -> Result<Vec<u8>, PosterError> {
        let why = |why: String| PosterError::Output { tool, why };
        let len = std::fs::metadata(path)
            .map_err(|e| why(e.to_string()))?
            .len();
        if len == 0 || len > self.limits.max_output_bytes {
            return Err(why(format!("{len} bytes")));
        }
        let bytes = std::fs::read(path).map_err(|e| why(e.to_string()))?;
        if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err(why("not a PNG".into()));
        }
        Ok(bytes)
    }
}

/// Where one poster's runs happen, and when they must all have ended.
struct Run<'a> {
    work: &'a Path,
    deadline: Instant,
}

/// Kills the tool's whole process group and reaps it.
fn end(child: &mut std::process::Child) {
    let group = rustix::process::Pid::from_child(child);
    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// Where a video's poster frame is: at 1 s, or at a tenth of a clip shorter than 10 s.
pub fn poster_time(duration: Option<f64>) -> f64 {
    match duration {
        Some(d) if d.is_finite() && d > 0.0 && d < 10.0 => d / 10.0,
        _ => 1.0,
    }
}

/// A PNG whose pixels are almost all black (a fade-in, a black leader); an unreadable
/// one is not (it is judged later).
fn png_almost_black(png: &[u8]) -> bool {
    let Ok(image) = image::load_from_memory_with_format(png, image::ImageFormat::Png) else {
        return false;
    };
    almost_black(image.to_luma8().as_raw())
}

/// Luma samples of which at most 1% are brighter than 40 (of 255), averaging under 16.
pub fn almost_black(luma: &[u8]) -> bool {
    if luma.is_empty() {
        return false;
    }
    let bright = luma.iter().filter(|l| **l > 40).count();
    let sum: u64 = luma.iter().map(|l| u64::from(*l)).sum();
    bright * 100 <= luma.len() && sum < 16 * luma.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poster_frame_is_at_one_second_or_a_tenth_of_a_short_clip() {
        assert_eq!(poster_time(None), 1.0);
        assert_eq!(poster_time(Some(60.0)), 1.0);
        assert_eq!(poster_time(Some(10.0)), 1.0);
        assert!((poster_time(Some(4.0)) - 0.4).abs() < 1e-9);
        assert_eq!(poster_time(Some(f64::NAN)), 1.0);
        assert_eq!(poster_time(Some(0.0)), 1.0);
    }

    #[test]
    fn almost_black_means_dark_and_nearly_uniform() {
        assert!(almost_black(&[0; 1000]));
        assert!(almost_black(&[12; 1000]));
        let mut title = vec![0u8; 1000];
        title[..50].fill(255); // 5% white text on black: a title card, kept
        assert!(!almost_black(&title));
        let mut specks = vec![0u8; 1000];
        specks[..10].fill(255); // 1% specks: still black
        assert!(almost_black(&specks));
        assert!(!almost_black(&[30; 1000])); // a dark scene, not black
        assert!(!almost_black(&[]));
    }

    /// One poster's runs in `work`, within `previews`' wall-clock limit from now.
    fn run<'a>(work: &'a Path, previews: &Previews) -> Run<'a> {
        Run {
            work,
            deadline: Instant::now() + previews.limits.wall,
        }
    }

    /// A stand-in tool running `script`, written aside and renamed into place (a file
    /// still open for writing cannot be executed: ETXTBSY).
    fn sandbox(dir: &Path, script: &str, wall: Duration) -> (Previews, PathBuf) {
        let (aside, tool) = (dir.join("tool.tmp"), dir.join("tool.sh"));
        std::fs::write(&aside, format!("#!/bin/sh\n{script}\n")).expect("script");
        let mut perms = std::fs::metadata(&aside).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&aside, perms).expect("chmod");
        std::fs::rename(&aside, &tool).expect("rename");
        let previews = Previews {
            ffmpeg: Some(tool.clone()),
            pdftoppm: Some(tool.clone()),
            prlimit: which::which("prlimit").ok(),
            timeout: which::which("timeout").ok(),
            limits: ToolLimits {
                wall,
                ..ToolLimits::default()
            },
            max_side: 1200,
        };
        (previews, tool)
    }

    #[test]
    fn a_tool_that_hangs_is_killed_with_its_children_and_reaped() {
        let dir = tempfile::tempdir().expect("dir");
        let pids = dir.path().join("pids");
        // The shell and a child of its own: both must go.
        let script = format!("sleep 600 & echo $$ $! > {}; wait", pids.display());
        let (previews, tool) = sandbox(dir.path(), &script, Duration::from_secs(2));
        let e = previews
            .run("ffmpeg", &tool, &[], &run(dir.path(), &previews))
            .expect_err("killed");
        assert!(matches!(e, PosterError::TimedOut { .. }), "{e}");
        let listed = std::fs::read_to_string(&pids).expect("pids");
        for pid in listed.split_whitespace() {
            // Gone, not a zombie: reaped (the shell) or killed with its group (the sleep,
            // reaped by init once orphaned).
            let mut gone = false;
            for _ in 0..100 {
                let state = std::fs::read_to_string(format!("/proc/{pid}/stat"));
                if state.map_or(true, |s| s.split_whitespace().nth(2) == Some("Z")) {
                    gone = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(gone, "process {pid} still runs");
        }
    }

    #[test]
    fn a_tool_runs_without_environment_and_under_its_limits() {
        let dir = tempfile::tempdir().expect("dir");
        let out = dir.path().join("seen");
        let script = format!(
            "{{ env | sort; ulimit -v; ulimit -t; ulimit -f; ulimit -c; }} > {}",
            out.display()
        );
        let (previews, tool) = sandbox(dir.path(), &script, Duration::from_secs(10));
        previews
            .run("pdftoppm", &tool, &[], &run(dir.path(), &previews))
            .expect("run");
        let seen = std::fs::read_to_string(&out).expect("output");
        assert!(
            !seen.contains("CARGO"),
            "the environment was cleared: {seen}"
        );
        let limits: Vec<&str> = seen.lines().rev().take(4).collect();
        // ulimit -v and -f are in KiB and 512-byte blocks (dash: -f in blocks of 512).
        assert_eq!(limits[0], "0", "{seen}");
        assert_eq!(limits[2], "20", "{seen}");
        assert_eq!(limits[3], ((1u64 << 30) / 1024).to_string(), "{seen}");
        // A failing tool is an error with its stderr.
        let (failing, tool) = sandbox(
            dir.path(),
            "echo broken >&2; exit 3",
            Duration::from_secs(10),
        );
        let e = failing
            .run("ffmpeg", &tool, &[], &run(dir.path(), &previews))
            .expect_err("fails");
        assert!(e.to_string().contains("broken"), "{e}");
    }
}
