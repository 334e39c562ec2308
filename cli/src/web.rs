//! `convene open` (sign in to the running node's web app, or sign every
//! browser out) and `convene demo` (a three-organisation community on this
//! computer).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use convene_node::Node;
use convene_node::daemon::web::{META_WEB, issue_ticket, sign_out_all};
use convene_node::daemon::{is_running, parse_web_addr};
use convene_node::demo::{Demo, Progress};

use crate::args::{DemoArgs, OpenArgs};
use crate::network::{Shutdown, runtime};

/// A one-time sign-in address for the web app of the node in `home`.
fn sign_in_url(node: &Node, base: &str) -> Result<String> {
    let ticket = issue_ticket(node)?;
    Ok(format!("{base}login?ticket={ticket}"))
}

/// Opens `url` in a browser unless told not to; says what it did.
fn show(out: &mut impl Write, url: &str, print_only: bool) -> Result<()> {
    if print_only {
        writeln!(out, "{url}")?;
        return Ok(());
    }
    match webbrowser::open(url) {
        Ok(()) => writeln!(
            out,
            "Opened the web app in your browser (the sign-in link works once, for two minutes)."
        )?,
        Err(e) => writeln!(
            out,
            "Cannot open a browser ({e}); open this address yourself within two minutes:\n{url}"
        )?,
    }
    Ok(())
}

pub fn open(out: &mut impl Write, home: &Path, a: OpenArgs) -> Result<()> {
    let node = Node::open(home)?;
    if a.sign_out_all {
        // Works whether or not the node runs: sessions live in its database.
        let n = sign_out_all(&node)?;
        let sessions = if n == 1 { "session" } else { "sessions" };
        writeln!(
            out,
            "Signed every browser out of the web app ({n} {sessions} ended, unused sign-in links voided). Run `convene open` to sign in again."
        )?;
        return Ok(());
    }
    if !is_running(home) {
        bail!(
            "the node is not running: start it with `convene node start`, then run `convene open`"
        );
    }
    let base = node.store().meta(META_WEB)?.filter(|u| !u.is_empty()).ok_or_else(|| {
        anyhow!("the running node serves no web app (it was started with --no-web or web.enabled = false)")
    })?;
    let url = sign_in_url(&node, &base)?;
    show(out, &url, a.print)
}

pub fn demo(out: &mut impl Write, a: DemoArgs) -> Result<()> {
    let web = parse_web_addr(&a.web).map_err(|e| anyhow!(e))?;
    let (dir, temporary) = match a.dir {
        Some(d) => (d, None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("convene-demo-")
                .tempdir()
                .context("cannot make a temporary folder for the demo")?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let rt = runtime()?;
    rt.block_on(async {
        writeln!(out, "Starting a demo community in {}", dir.display())?;
        out.flush()?;
        let demo = Demo::start(&dir, Some(web), Duration::from_secs(60), |p| {
            let line = match p {
                Progress::Started(name, addr) => format!("  {name}: node listening on {addr}"),
                Progress::Joined(name) => format!("  {name} joined the community"),
                Progress::Published(name, n) => format!("  {name} published {n} entries"),
                Progress::Holding(counts) => format!(
                    "  syncing: {}",
                    counts
                        .iter()
                        .map(|(name, n)| format!("{name} holds {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            // Progress is best effort; a closed stdout shows at the end.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        })
        .await;
        let demo = demo?;
        // Watched from before the addresses are printed: a signal sent on
        // seeing them stops the demo gracefully. (While the demo starts,
        // Ctrl-C still stops the process at once.)
        let shutdown = Shutdown::watch()?;
        writeln!(
            out,
            "\n{:?} is running: every node holds all {} entries.\n",
            demo.community, demo.expected
        )?;
        for (i, n) in demo.nodes.iter().enumerate() {
            let Some(web) = &n.web else { continue };
            let node = Node::open(&n.home)?;
            let url = sign_in_url(&node, &web.url())?;
            writeln!(out, "{}", n.name)?;
            writeln!(out, "  web app:  {}", web.url())?;
            if i == 0 && !a.no_open && webbrowser::open(&url).is_ok() {
                writeln!(out, "  sign in:  opened in your browser")?;
            } else {
                writeln!(out, "  sign in:  {url}")?;
            }
            writeln!(
                out,
                "            (each link works once; for a new one: convene --home {} open)",
                n.home.display()
            )?;
            writeln!(out, "  CLI:      convene --home {} list", n.home.display())?;
        }
        writeln!(out, "\nPress Ctrl-C to stop.")?;
        out.flush()?;
        shutdown.wait().await?;
        writeln!(out, "Stopping…")?;
        demo.stop().await;
        Ok::<_, anyhow::Error>(())
    })?;
    if let Some(t) = temporary {
        t.close()
            .context("cannot remove the demo's temporary folder")?;
    } else {
        writeln!(
            out,
            "The demo's nodes stay in {}",
            PathBuf::from(&dir).display()
        )?;
    }
    Ok(())
}
