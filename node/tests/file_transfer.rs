//! Attachment content between nodes over `/convene/files/1`: verified
//! ranges and resumable downloads at the library level, then three
//! organisations' daemons on loopback (automatic fetch, fetch on demand),
//! a hostile member that serves a tampered chunk, members and strangers
//! asking for files they may not see, and a download resumed after its
//! source dropped the connection and the daemon restarted.

mod bare;
mod sim;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bare::loopback;
use convene_model::{Body, DocumentId, EntryInput, Learning, Visibility};
use convene_node::blobs::BlobStore;
use convene_node::blobs::transfer::{FileRequest, FileResponse, MAX_RANGE, PROTOCOL};
use convene_node::blobs::verified::Refused;
use convene_node::daemon::files::META_WANTED;
use convene_node::daemon::{self, Client, Config};
use convene_node::net::FilesCodec;
use convene_node::{FileLimits, Node};
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, StreamProtocol, Swarm, noise, request_response, tcp, yamux};
use sim::Net;
use tokio::sync::Notify;

/// Bytes that do not repeat (so a range in the wrong place never verifies).
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            blake3::hash(&[seed.to_le_bytes(), i.to_le_bytes()].concat()).as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

fn put(store: &BlobStore, bytes: &[u8]) -> String {
    store.put(&mut &bytes[..], u64::MAX, None).unwrap().hash
}

#[test]
fn ranges_verify_against_the_entry_hash_and_a_download_resumes_from_its_record() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let (a, b) = (BlobStore::new(a_dir.path()), BlobStore::new(b_dir.path()));
    let bytes = content(3 * 1024 * 1024 + 5000, 1);
    let hash = put(&a, &bytes);
    // The tree's root is the plain BLAKE3 hash an entry records.
    assert_eq!(hash, blake3::hash(&bytes).to_hex().to_string());
    let size = bytes.len() as u64;

    let mut partial = b.partial(&hash, size).unwrap();
    let first = 0..MAX_RANGE;
    let (_, encoded) = a.encode_range(&hash, first.clone()).unwrap().unwrap();
    assert_eq!(partial.apply(&first, &encoded).unwrap(), MAX_RANGE);
    drop(partial);

    // Reopened (a restart): the verified prefix is kept, only the rest is
    // missing.
    let mut partial = b.partial(&hash, size).unwrap();
    assert_eq!(partial.verified_bytes(), MAX_RANGE);
    assert_eq!(partial.missing(MAX_RANGE)[0].start, MAX_RANGE);
    assert!(!b.has(&hash), "a partial download is not held");

    // A tampered byte in the middle of the next range: the groups before it
    // are kept, the rest of the answer is dropped, the sender is to blame.
    let second = MAX_RANGE..2 * MAX_RANGE;
    let (_, mut encoded) = a.encode_range(&hash, second.clone()).unwrap().unwrap();
    let mid = encoded.len() / 2;
    encoded[mid] ^= 1;
    let (kept, why) = partial.apply(&second, &encoded).unwrap_err();
    assert!(matches!(why, Refused::Violation(_)), "{why}");
    assert!(kept > 0 && kept < MAX_RANGE, "kept {kept}");
    assert_eq!(partial.verified_bytes(), MAX_RANGE + kept);
    // A range from another part of the file does not pass for this one.
    let (_, elsewhere) = a
        .encode_range(&hash, 2 * MAX_RANGE..3 * MAX_RANGE)
        .unwrap()
        .unwrap();
    assert!(partial.apply(&second, &elsewhere).is_err());

    for range in partial.missing(MAX_RANGE) {
        let (_, encoded) = a.encode_range(&hash, range.clone()).unwrap().unwrap();
        partial.apply(&range, &encoded).unwrap();
    }
    assert!(partial.is_complete());
    partial.finish().unwrap();
    assert!(b.has(&hash));
    assert_eq!(std::fs::read(b.path(&hash).unwrap()).unwrap(), bytes);
    // Its outboard is kept beside it; erasure removes both.
    assert!(b.outboard_path(&hash).unwrap().is_file());
    assert!(b.remove(&hash).unwrap());
    assert!(!b.outboard_path(&hash).unwrap().exists());
}

#[test]
fn a_wrong_declared_size_never_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::new(dir.path());
    let bytes = content(100_000, 2);
    let hash = put(&store, &bytes);
    let other = tempfile::tempdir().unwrap();
    let mut partial = BlobStore::new(other.path()).partial(&hash, 99_000).unwrap();
    let (_, encoded) = store.encode_range(&hash, 0..100_000).unwrap().unwrap();
    assert!(partial.apply(&(0..99_000), &encoded).is_err());
}

// ---------------------------------------------------------------------
// Daemons on loopback.

async fn eventually(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn config(auto_fetch: u64) -> Config {
    Config {
        files: FileLimits {
            auto_fetch,
            ..FileLimits::default()
        },
        ..loopback()
    }
}

async fn start(home: &Path, config: Config) -> (Client, Multiaddr, tokio::task::JoinHandle<()>) {
    let (client, handle) = daemon::spawn(Node::open(home).unwrap(), config).unwrap();
    let addr = client.listen_addrs().await.unwrap()[0].clone();
    (client, addr, handle)
}

fn learning(title: &str, visibility: Option<Visibility>) -> EntryInput {
    EntryInput {
        body: Body::Learning(Learning {
            title: title.into(),
            summary: "With its report.".into(),
            ..Learning::default()
        }),
        visibility,
        status: None,
    }
}

/// Attaches `bytes` as `name` to a new entry on node `i`.
fn attach(
    net: &mut Net,
    i: usize,
    name: &str,
    bytes: &[u8],
    vis: Option<Visibility>,
) -> (DocumentId, String) {
    let id = net.node_mut(i).publish(learning(name, vis)).unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let a = net
        .node_mut(i)
        .attach(id, file.path(), Some(name), &FileLimits::default())
        .unwrap();
    (id, a.hash)
}

/// Steward A, and members B and C (three organisations), in sync.
fn community(extra: usize) -> Net {
    let mut net = Net::new();
    let a = net.add("Steward Trust");
    net.node_mut(a).create_community("Boost").unwrap();
    for (i, org) in ["Member Council", "Care Group", "Hostile Org", "Fourth Org"]
        .iter()
        .take(2 + extra)
        .enumerate()
    {
        let n = net.add(org);
        assert_eq!(n, i + 1);
        net.invite_and_admit(n, a);
    }
    net
}

fn sync_all(net: &mut Net) {
    let n = net.nodes.len();
    for _ in 0..2 {
        for i in 1..n {
            net.sync(i, 0);
        }
    }
}

fn home(net: &Net, i: usize) -> std::path::PathBuf {
    net.node(i).home().to_path_buf()
}

fn files_peer(
    keypair: libp2p::identity::Keypair,
) -> Swarm<request_response::Behaviour<FilesCodec>> {
    libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                FilesCodec::default(),
                [(
                    StreamProtocol::new(PROTOCOL),
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

fn text(client: &Client) -> String {
    client.metrics().render()
}

fn metric(client: &Client, name: &str) -> u64 {
    let text = text(client);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_reach_the_other_organisations_by_themselves_and_larger_ones_on_demand() {
    let mut net = community(0);
    let small = content(3_000_000, 3);
    let large = content(4_000_000, 4);
    let (_, small_hash) = attach(&mut net, 0, "report.pdf", &small, None);
    let (_, large_hash) = attach(&mut net, 0, "slides.pptx", &large, None);
    sync_all(&mut net);
    let (a, b, c) = (home(&net, 0), home(&net, 1), home(&net, 2));
    // Automatic fetches up to 3.5 MB: the report, not the slides.
    let (_ac, a_addr, _) = start(&a, config(3_500_000)).await;
    let (bc, b_addr, _) = start(&b, config(3_500_000)).await;
    let (cc, _, _) = start(&c, config(3_500_000)).await;
    bc.dial(a_addr.clone()).await.unwrap();
    cc.dial(a_addr).await.unwrap();
    cc.dial(b_addr).await.unwrap();
    let (bb, cb) = (BlobStore::new(&b), BlobStore::new(&c));
    eventually("the report on B and C", 20, || {
        bb.has(&small_hash) && cb.has(&small_hash)
    })
    .await;
    assert_eq!(std::fs::read(bb.path(&small_hash).unwrap()).unwrap(), small);
    assert!(
        !bb.has(&large_hash) && !cb.has(&large_hash),
        "over the automatic limit"
    );

    // Asked for (as `convene get` does, through the store): fetched.
    Node::open(&c)
        .unwrap()
        .store()
        .set_meta(META_WANTED, &serde_json::json!([large_hash]).to_string())
        .unwrap();
    eventually("the slides on C", 20, || cb.has(&large_hash)).await;
    assert_eq!(std::fs::read(cb.path(&large_hash).unwrap()).unwrap(), large);
    assert!(metric(&cc, "convene_files_received_bytes_total") >= 7_000_000);
    assert!(text(&cc).contains("convene_files_held_bytes"));
}

/// A member's node that answers every file request from real content with
/// one byte flipped, for `tamper` answers (then honestly); or, with
/// `answer_only`, honestly for that many requests, holding the rest open,
/// and hangs up when `hang_up` is notified.
async fn serve_from(
    mut swarm: Swarm<request_response::Behaviour<FilesCodec>>,
    store: BlobStore,
    tamper: usize,
    answer_only: Option<usize>,
    hang_up: Arc<Notify>,
) {
    let mut answered = 0;
    let mut held = Vec::new();
    loop {
        let event = tokio::select! {
            e = swarm.next() => match e { Some(e) => e, None => return },
            () = hang_up.notified() => {
                held.clear();
                let peers: Vec<_> = swarm.connected_peers().copied().collect();
                for p in peers {
                    let _ = swarm.disconnect_peer_id(p);
                }
                continue;
            }
        };
        if let SwarmEvent::Behaviour(request_response::Event::Message {
            message:
                request_response::Message::Request {
                    request, channel, ..
                },
            ..
        }) = event
        {
            if answer_only.is_some_and(|n| answered >= n) {
                held.push(channel);
                continue;
            }
            let response = match store
                .encode_range(&request.hash_hex(), request.start..request.end)
                .unwrap()
            {
                Some((size, mut encoded)) => {
                    if answered < tamper {
                        let at = encoded.len() - 100;
                        encoded[at] ^= 0x40;
                    }
                    FileResponse::Range {
                        size,
                        encoded: encoded.into(),
                    }
                }
                None => FileResponse::NotHeld,
            };
            answered += 1;
            let _ = swarm.behaviour_mut().send_response(channel, response);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_serving_a_tampered_chunk_is_refused_banned_and_the_file_comes_from_another() {
    let mut net = community(1);
    let bytes = content(2_500_000, 5);
    let (_, hash) = attach(&mut net, 0, "poster.pdf", &bytes, None);
    sync_all(&mut net);
    let (a, victim, hostile) = (home(&net, 0), home(&net, 1), home(&net, 3));
    // The hostile member holds the real bytes (it could pass any honest
    // check) but flips one in every answer.
    let hostile_store = BlobStore::new(&hostile);
    put(&hostile_store, &bytes);
    let mut swarm = files_peer(net.node(3).identity().libp2p_keypair());
    let (vc, v_addr, _) = start(&victim, config(20_000_000)).await;
    swarm.dial(v_addr).unwrap();
    tokio::spawn(serve_from(
        swarm,
        hostile_store,
        usize::MAX,
        None,
        Arc::new(Notify::new()),
    ));
    eventually("the tampered answer refused", 15, || {
        metric(&vc, "convene_files_violations_total") >= 1
    })
    .await;
    let vb = BlobStore::new(&victim);
    assert!(!vb.has(&hash), "nothing that failed verification is held");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !vc.peers().await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the hostile peer is still connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // An honest member: the file arrives, whole and right.
    let (_ac, a_addr, _) = start(&a, config(20_000_000)).await;
    vc.dial(a_addr).await.unwrap();
    eventually("the poster from the honest member", 15, || vb.has(&hash)).await;
    assert_eq!(std::fs::read(vb.path(&hash).unwrap()).unwrap(), bytes);
}

/// Asks `addr` for the first range of `hash` as the node with `keypair`.
async fn ask(keypair: libp2p::identity::Keypair, addr: Multiaddr, hash: &str) -> FileResponse {
    let mut swarm = files_peer(keypair);
    swarm.dial(addr).unwrap();
    let hash = *blake3::Hash::from_hex(hash).unwrap().as_bytes();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let event = tokio::time::timeout_at(deadline.into(), swarm.select_next_some())
            .await
            .expect("an answer in time");
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                swarm.behaviour_mut().send_request(
                    &peer_id,
                    FileRequest {
                        hash,
                        start: 0,
                        end: MAX_RANGE,
                    },
                );
            }
            SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Response { response, .. },
                ..
            }) => return response,
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure { error, .. }) => {
                panic!("request failed: {error}")
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_goes_only_to_members_that_may_see_an_entry_using_it() {
    let mut net = community(0);
    let c_org = net.node(2).org();
    let open = content(50_000, 6);
    let restricted = content(60_000, 7);
    let (_, open_hash) = attach(&mut net, 0, "open.pdf", &open, None);
    let (_, restricted_hash) = attach(
        &mut net,
        0,
        "restricted.pdf",
        &restricted,
        Some(Visibility::Orgs(vec![c_org])),
    );
    sync_all(&mut net);
    let (_ac, a_addr, _) = start(&home(&net, 0), config(0)).await;
    let b_key = net.node(1).identity().libp2p_keypair();
    let c_key = net.node(2).identity().libp2p_keypair();

    // C may see the restricted entry; B may not, and is told what it would
    // be told for a file that does not exist.
    assert!(matches!(
        ask(c_key, a_addr.clone(), &restricted_hash).await,
        FileResponse::Range { .. }
    ));
    assert_eq!(
        ask(b_key.clone(), a_addr.clone(), &restricted_hash).await,
        FileResponse::NotHeld
    );
    let nothing = blake3::hash(b"no such file").to_hex().to_string();
    assert_eq!(
        ask(b_key.clone(), a_addr.clone(), &nothing).await,
        FileResponse::NotHeld
    );
    assert!(matches!(
        ask(b_key, a_addr.clone(), &open_hash).await,
        FileResponse::Range { .. }
    ));
    // A stranger learns nothing, even of a community-wide file.
    let stranger = libp2p::identity::Keypair::generate_ed25519();
    assert_eq!(
        ask(stranger, a_addr, &open_hash).await,
        FileResponse::NotHeld
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_off_resumes_after_a_restart_from_what_verified() {
    let mut net = community(1);
    let bytes = content(6 * 1024 * 1024, 8);
    let (_, hash) = attach(&mut net, 0, "evaluation.pdf", &bytes, None);
    sync_all(&mut net);
    let (a, victim, flaky) = (home(&net, 0), home(&net, 1), home(&net, 3));
    let flaky_store = BlobStore::new(&flaky);
    put(&flaky_store, &bytes);
    // A member that serves two ranges, then hangs up with the others open.
    let mut swarm = files_peer(net.node(3).identity().libp2p_keypair());
    let (vc, v_addr, handle) = start(&victim, config(20_000_000)).await;
    swarm.dial(v_addr).unwrap();
    let hang_up = Arc::new(Notify::new());
    tokio::spawn(serve_from(swarm, flaky_store, 0, Some(2), hang_up.clone()));
    eventually("two ranges verified", 15, || {
        metric(&vc, "convene_files_received_bytes_total") >= 2 * MAX_RANGE
    })
    .await;
    hang_up.notify_one();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !vc.peers().await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the flaky peer is still connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let verified = metric(&vc, "convene_files_received_bytes_total");
    // The daemon stops (its last client goes) and starts again.
    drop(vc);
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .unwrap()
        .unwrap();
    let vb = BlobStore::new(&victim);
    assert!(!vb.has(&hash));
    let (vc, _, _) = start(&victim, config(20_000_000)).await;
    let (ac, a_addr, _) = start(&a, config(20_000_000)).await;
    vc.dial(a_addr).await.unwrap();
    eventually("the rest from the honest member", 20, || vb.has(&hash)).await;
    assert_eq!(std::fs::read(vb.path(&hash).unwrap()).unwrap(), bytes);
    // What verified before the cut was not fetched again: the honest
    // member sent the rest (with its proofs), less than the whole file.
    let from_a = metric(&ac, "convene_files_sent_bytes_total");
    let total = bytes.len() as u64;
    assert!(
        from_a < total && from_a < total - verified + 64 * 1024,
        "{from_a} bytes sent of {total}, {verified} verified before the cut"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_two_members_hold_is_fetched_from_both_at_once() {
    let mut net = community(0);
    let bytes = content(12 * 1024 * 1024, 9);
    let (_, hash) = attach(&mut net, 0, "summit.mp4", &bytes, None);
    sync_all(&mut net);
    let (a, b, c) = (home(&net, 0), home(&net, 1), home(&net, 2));
    put(&BlobStore::new(&b), &bytes);
    let (ac, a_addr, _) = start(&a, config(0)).await;
    let (bc, b_addr, _) = start(&b, config(0)).await;
    let (cc, _, _) = start(&c, config(0)).await;
    cc.dial(a_addr).await.unwrap();
    cc.dial(b_addr).await.unwrap();
    // Asked for once both are connected.
    Node::open(&c)
        .unwrap()
        .store()
        .set_meta(META_WANTED, &serde_json::json!([hash]).to_string())
        .unwrap();
    let cb = BlobStore::new(&c);
    eventually("the video on C", 20, || cb.has(&hash)).await;
    assert_eq!(std::fs::read(cb.path(&hash).unwrap()).unwrap(), bytes);
    let (from_a, from_b) = (
        metric(&ac, "convene_files_sent_bytes_total"),
        metric(&bc, "convene_files_sent_bytes_total"),
    );
    assert!(from_a > 0 && from_b > 0, "from A {from_a}, from B {from_b}");
    assert!(
        from_a + from_b < bytes.len() as u64 + 256 * 1024,
        "no range twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_file_limit_and_an_organisations_quota_hold_on_receive() {
    let mut net = community(0);
    let (_, big) = attach(&mut net, 0, "big.pdf", &content(2_000_000, 10), None);
    sync_all(&mut net);
    let (a, b, c) = (home(&net, 0), home(&net, 1), home(&net, 2));
    let (_ac, a_addr, _) = start(&a, config(20_000_000)).await;
    // B takes no file over 1 MB; C no more than 1 MB for A's organisation.
    let mut one_mb = config(20_000_000);
    one_mb.files.max_file = 1_000_000;
    let mut quota = config(20_000_000);
    quota.files.quota_per_org = Some(1_000_000);
    let (bc, _, _) = start(&b, one_mb).await;
    let (cc, _, _) = start(&c, quota).await;
    bc.dial(a_addr.clone()).await.unwrap();
    cc.dial(a_addr).await.unwrap();
    let state = |home: &Path| {
        Node::open(home)
            .unwrap()
            .store()
            .meta("files.fetching")
            .unwrap()
            .unwrap_or_default()
    };
    eventually("B refusing the file over its limit", 15, || {
        state(&b).contains("max_file_mb")
    })
    .await;
    eventually("C refusing the file over the quota", 15, || {
        state(&c).contains("quota_mb_per_org")
    })
    .await;
    assert!(!BlobStore::new(&b).has(&big) && !BlobStore::new(&c).has(&big));
    assert_eq!(metric(&bc, "convene_files_received_bytes_total"), 0);
    assert_eq!(metric(&cc, "convene_files_received_bytes_total"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_on_an_older_version_without_the_files_protocol_is_no_source_and_no_offender() {
    let mut net = community(1);
    let (_, hash) = attach(&mut net, 0, "notes.pdf", &content(100_000, 11), None);
    sync_all(&mut net);
    let victim = home(&net, 1);
    // The older member speaks ping and nothing of files.
    let mut old =
        libp2p::SwarmBuilder::with_existing_identity(net.node(3).identity().libp2p_keypair())
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| libp2p::ping::Behaviour::default())
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
    let (vc, v_addr, _) = start(&victim, config(20_000_000)).await;
    old.dial(v_addr).unwrap();
    tokio::spawn(async move { while old.next().await.is_some() {} });
    let report = || {
        Node::open(&victim)
            .unwrap()
            .store()
            .meta("files.fetching")
            .unwrap()
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while vc.peers().await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the older member did not connect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Asked (a request a tick after it connected, refused by libp2p as a
    // protocol it does not speak), then left alone: for the next second it
    // stays connected, unpunished, and the file is reported with no source.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert_eq!(vc.peers().await.unwrap().len(), 1, "still connected");
        assert_eq!(metric(&vc, "convene_files_violations_total"), 0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = report();
    assert!(
        report.contains(&hash) && report.contains("no source"),
        "{report}"
    );
}
