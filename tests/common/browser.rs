//! Headless Chromium for the tests that look at a page the way a person does: load it, let
//! its scripts run, then read the DOM it ended with (or a screenshot of it).
//!
//! Include it with `#[path = "common/browser.rs"] mod browser;`.
//!
//! Why `--dump-dom` with `--virtual-time-budget` and not the DevTools protocol: the budget
//! runs the page on a virtual clock that Chromium holds still while a network fetch is in
//! flight and fast-forwards while the page is idle. A page that fetches `status.json` every
//! 2 s therefore sees exactly `wait / 2 s` polls, each completed (answer parsed, DOM
//! rendered) before its clock moves on, however slow the machine or the server — checked
//! with a server that took 1.5 s per answer: all polls landed. The dump is taken when the
//! budget is spent. That makes one child process per page and no protocol code, and it is
//! deterministic where a DevTools client would poll real time for a condition.
// Each test crate uses a part of this module.
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A run that has not ended after this long is killed: a test fails, it never hangs.
pub const HARD_TIMEOUT: Duration = Duration::from_secs(60);

const MISSING: &str =
    "headless Chromium is needed for this test: apt-get install chromium (see README §Tests)";

/// Flags for every run.
const FLAGS: &[&str] = &[
    // The one headless mode of current Chromium; no display needed.
    "--headless",
    // Tests run as root in containers, where Chromium's sandbox refuses to start.
    "--no-sandbox",
    // No GPU on a CI box; software rendering is what the screenshot shows anyway.
    "--disable-gpu",
    // The closed network: without these Chromium reaches for its update, variations, sync
    // and QUIC services at start, and on a machine without internet a run can fail or stall.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The Chromium binary: `MARGINGUARD_CHROMIUM`, else `/usr/bin/chromium`. Panics with the
/// install hint when neither is there.
pub fn chromium() -> PathBuf {
    let path = match std::env::var_os("MARGINGUARD_CHROMIUM") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from("/usr/bin/chromium"),
    };
    assert!(path.is_file(), "{MISSING} (looked for {})", path.display());
    path
}

/// The DOM of `url` once the page has run for `wait` of page time (virtual: a 6 s wait
/// takes about a second when the page is idle, longer when its fetches are slow).
pub fn dump_dom(url: &str, wait: Duration) -> String {
    let run = run(&["--dump-dom", url], wait);
    assert!(
        run.stdout.contains("</html>"),
        "Chromium printed no DOM for {url}\n--- stderr ---\n{}",
        run.stderr
    );
    run.stdout
}

/// A PNG of `url` in a `size` = (width, height) window after `wait` of page time, written
/// to `path`; checks the file is a PNG of that size.
pub fn screenshot(url: &str, path: &Path, size: (u32, u32), wait: Duration) {
    let _ = fs::remove_file(path);
    let shot = format!("--screenshot={}", path.display());
    let window = format!("--window-size={},{}", size.0, size.1);
    let run = run(&[&shot, &window, "--hide-scrollbars", url], wait);
    let png = fs::read(path).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {}: {e}\n--- stderr ---\n{}",
            path.display(),
            run.stderr
        )
    });
    assert_eq!(
        png_size(&png),
        Some(size),
        "{} is not a {size:?} PNG",
        path.display()
    );
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    Some((be(16), be(20)))
}

struct Run {
    stdout: String,
    stderr: String,
}

/// One Chromium run on a fresh profile; panics if it fails or outlives `HARD_TIMEOUT`.
fn run(args: &[&str], wait: Duration) -> Run {
    let profile = Profile::new();
    // Output goes to files, not pipes: Chromium's helpers (the crash handler runs in its
    // own session) may inherit them and outlive the browser, and a pipe reader would then
    // wait for them; a file is simply read once the browser has exited.
    let (out_path, err_path) = (profile.0.join("stdout"), profile.0.join("stderr"));
    let mut command = Command::new(chromium());
    command
        .args(FLAGS)
        .arg(format!(
            "--user-data-dir={}",
            profile.0.join("data").display()
        ))
        .arg(format!("--virtual-time-budget={}", wait.as_millis()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap());
    let status = run_to_end(command);
    let read =
        |path: &Path| String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned();
    let run = Run {
        stdout: read(&out_path),
        stderr: read(&err_path),
    };
    match status {
        Some(status) if status.success() => run,
        Some(status) => panic!(
            "Chromium {args:?} failed ({status})\n--- stderr ---\n{}",
            run.stderr
        ),
        None => panic!(
            "Chromium {args:?} ran past {HARD_TIMEOUT:?}; killed\n--- stderr ---\n{}",
            run.stderr
        ),
    }
}

/// Waits for the child, killing its process group at `HARD_TIMEOUT` (`None` then). The
/// group is killed after a normal exit too, so no renderer or zygote outlives a test.
fn run_to_end(mut command: Command) -> Option<ExitStatus> {
    use std::os::unix::process::CommandExt;
    // Its own group (id = the child's pid), so one kill reaches the helpers it forks.
    let mut child = command
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{MISSING}: {e}"));
    let deadline = Instant::now() + HARD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    kill_group(child.id());
    if status.is_none() {
        let _ = child.wait();
    }
    status
}

/// SIGKILL to process group `pgid`. After the leader is reaped the id stays reserved while
/// any member lives, so this reaches only our own helpers (or nobody, harmlessly).
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// A fresh directory for one run (profile and output files), removed when dropped.
struct Profile(PathBuf);

impl Profile {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("marginguard-chromium-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Profile(dir)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        // A helper still shutting down may write one last file; try again briefly.
        for _ in 0..10 {
            if fs::remove_dir_all(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The text a person sees in a dumped DOM: no head (the title is not on the page), no
/// scripts, styles, templates or comments, tags gone, entities decoded, whitespace collapsed.
/// It does not apply CSS: a page under test keeps hidden elements empty rather than hidden.
pub fn visible_text(html: &str) -> String {
    let mut text = strip_comments(html);
    for tag in ["head", "script", "style", "noscript", "template"] {
        text = strip_elements(&text, tag);
    }
    collapse(&decode_entities(&strip_tags(&text)))
}

/// The `<title>` of a dumped DOM, entities decoded.
pub fn title(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let Some(open) = lower.find("<title>") else {
        return String::new();
    };
    let start = open + "<title>".len();
    let end = lower[start..]
        .find("</title>")
        .map_or(html.len(), |e| start + e);
    decode_entities(&html[start..end])
}

fn strip_comments(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("-->")
            .map_or("", |end| &rest[start + end + 3..]);
    }
    out.push_str(rest);
    out
}

/// Drops every `<tag …>…</tag>`. Chromium serialises tag names in lower case, and text
/// inside other elements has its `<` escaped, so a plain search finds only real elements.
fn strip_elements(html: &str, tag: &str) -> String {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = find_open(rest, &open) {
        out.push_str(&rest[..start]);
        out.push(' ');
        rest = rest[start..]
            .find(&close)
            .map_or("", |end| &rest[start + end + close.len()..]);
    }
    out.push_str(rest);
    out
}

/// The next `<tag` that is that tag and not a longer name (`<head` is not `<header`).
fn find_open(html: &str, open: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = html[from..].find(open).map(|i| from + i) {
        match html[at + open.len()..].chars().next() {
            Some('>' | ' ' | '\t' | '\n' | '/') => return Some(at),
            _ => from = at + open.len(),
        }
    }
    None
}

/// Inline elements run on in the text as on screen (`(<span>1.2 s</span>)` reads
/// "(1.2 s)"); every other tag becomes a space, so cells and blocks stay apart.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut tag: Option<String> = None;
    for c in html.chars() {
        match (&mut tag, c) {
            (None, '<') => tag = Some(String::new()),
            (Some(name), '>') => {
                if !is_inline(name) {
                    out.push(' ');
                }
                tag = None;
            }
            (Some(name), c) => name.push(c),
            (None, c) => out.push(c),
        }
    }
    out
}

const INLINE: &[&str] = &[
    "a", "abbr", "b", "code", "em", "i", "small", "span", "strong", "time",
];

/// Whether the tag (its text between `<` and `>`, e.g. `/span` or `span class="x"`) is inline.
fn is_inline(tag: &str) -> bool {
    let name = tag.trim_start_matches('/');
    let name = name
        .split(|c: char| c.is_whitespace() || c == '/')
        .next()
        .unwrap_or("");
    INLINE.contains(&name.to_ascii_lowercase().as_str())
}

/// The entities Chromium writes in text, and numeric ones; `&amp;` last so `&amp;lt;`
/// stays the four characters `&lt;`.
fn decode_entities(text: &str) -> String {
    let mut out = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ");
    while let Some((start, end, c)) = numeric_entity(&out) {
        out.replace_range(start..end, c.encode_utf8(&mut [0; 4]));
    }
    out.replace("&amp;", "&")
}

/// The first `&#NN;` or `&#xHH;` with its span and character.
fn numeric_entity(text: &str) -> Option<(usize, usize, char)> {
    let mut from = 0;
    while let Some(start) = text[from..].find("&#").map(|i| from + i) {
        let body_end = text[start..].find(';').map(|i| start + i);
        if let Some(end) = body_end.filter(|&end| end - start <= 10) {
            let body = &text[start + 2..end];
            let code = match body.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => body.parse().ok(),
            };
            if let Some(c) = code.and_then(char::from_u32) {
                return Some((start, end + 1, c));
            }
        }
        from = start + 2;
    }
    None
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_text_keeps_what_is_shown_and_decodes_it() {
        let dom = "<html><head><title>t</title><style>p{}</style></head><body>\
                   <!-- note --><header>top</header><p>a &lt;b&gt; &amp;lt; &#x41;&#66;</p>\
                   <script>var hidden = 1;</script><td>1</td><td>2</td>\
                   <p>(<span class=\"x\">1.2 s</span>)<b>!</b></p></body></html>";
        assert_eq!(visible_text(dom), "top a <b> &lt; AB 1 2 (1.2 s)!");
        assert_eq!(title(dom), "t");
    }

    #[test]
    fn png_size_reads_ihdr() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&1280u32.to_be_bytes());
        png.extend_from_slice(&900u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((1280, 900)));
        assert_eq!(png_size(b"GIF89a"), None);
    }
}
