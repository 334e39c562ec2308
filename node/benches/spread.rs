//! How news spreads through a community of 100, 300 and 1,000 nodes: the
//! sync state machine of every node, in one process, over a simulated
//! network with latency and nodes that come and go (see `spread/sim.rs`
//! for what is modelled). Each size runs twice: with the daemon's bounded
//! connections (`network.min_peers` / `network.max_peers`) and with the
//! announce-to-all mesh (every node connected to every member it can
//! reach), counted the same way.
//!
//! ```text
//! cargo bench -p convene-node --bench spread                 # 100, 300, 1000
//! cargo bench -p convene-node --bench spread -- --nodes 300 --json
//! cargo bench -p convene-node --bench spread -- --policy bounded --min 8 --max 24
//! ```

#[path = "spread/replica.rs"]
pub mod replica;
#[path = "spread/sim.rs"]
pub mod sim;

use convene_node::net::overlay::Degree;
use sim::{Params, Policy, Report, Sim};

#[derive(Debug)]
pub struct Args {
    pub nodes: Vec<usize>,
    pub policies: Vec<&'static str>,
    pub degree: Degree,
    pub hours: f64,
    pub publish_every_s: f64,
    pub seed: u64,
    pub json: bool,
}

pub fn args_from(mut it: impl Iterator<Item = String>) -> Args {
    let mut a = Args {
        nodes: Vec::new(),
        policies: Vec::new(),
        degree: Degree::default(),
        hours: 1.0,
        publish_every_s: 10.0,
        seed: 1,
        json: false,
    };
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} takes a value"));
        match arg.as_str() {
            "--nodes" => a
                .nodes
                .push(value().parse().expect("--nodes takes a number")),
            "--policy" => a.policies.push(match value().as_str() {
                "bounded" => "bounded",
                "mesh" => "mesh",
                other => panic!("--policy is bounded or mesh, not {other}"),
            }),
            "--min" => a.degree.min = value().parse().expect("--min takes a number"),
            "--max" => a.degree.max = value().parse().expect("--max takes a number"),
            "--hours" => a.hours = value().parse().expect("--hours takes a number"),
            "--publish-every" => {
                a.publish_every_s = value().parse().expect("--publish-every takes seconds")
            }
            "--seed" => a.seed = value().parse().expect("--seed takes a number"),
            "--json" => a.json = true,
            _ => {} // cargo passes --bench
        }
    }
    if a.nodes.is_empty() {
        a.nodes = vec![100, 300, 1000];
    }
    if a.policies.is_empty() {
        a.policies = vec!["bounded", "mesh"];
    }
    a
}

pub fn params(args: &Args, nodes: usize, policy: &str) -> Params {
    let policy = match policy {
        "mesh" => Policy::Mesh,
        _ => Policy::Bounded(args.degree),
    };
    let mut p = Params::new(nodes, policy);
    p.duration_ms = (args.hours * sim::HOUR as f64) as i64;
    p.publish_every_ms = (args.publish_every_s * 1000.0) as i64;
    p.seed = args.seed;
    p
}

pub fn run(args: &Args) -> Vec<Report> {
    let mut out = Vec::new();
    for &n in &args.nodes {
        for policy in &args.policies {
            let r = Sim::new(params(args, n, policy)).run();
            if args.json {
                println!("{}", serde_json::to_string(&r).expect("serialises"));
            } else {
                print_row(&r, out.is_empty());
            }
            out.push(r);
        }
    }
    out
}

fn ms(v: i64) -> String {
    if v == i64::MAX {
        "never".into()
    } else {
        v.to_string()
    }
}

fn print_row(r: &Report, header: bool) {
    if header {
        println!(
            "{:<8} {:>5} {:>6} {:>7} {:>9} {:>9} {:>10} {:>8} {:>8} {:>11} {:>9} {:>9} {:>7} {:>7} {:>6} {:>6}",
            "policy",
            "nodes",
            "online",
            "publish",
            "msgs/n/p",
            "news/n/p",
            "bytes/n/p",
            "p50 ms",
            "p99 ms",
            "late/pairs",
            "catch p50",
            "catch p99",
            "degree",
            "max deg",
            "leaks",
            "wall s"
        );
    }
    println!(
        "{:<8} {:>5} {:>6.0} {:>7} {:>9.1} {:>9.1} {:>10.0} {:>8} {:>8} {:>11} {:>9} {:>9} {:>7.1} {:>7} {:>6} {:>6.1}",
        r.policy,
        r.nodes,
        r.online_mean,
        r.publishes,
        r.messages_per_node_per_publish,
        r.news_messages_per_node_per_publish,
        r.bytes_per_node_per_publish,
        ms(r.delay_p50_ms),
        ms(r.delay_p99_ms),
        format!("{}/{}", r.late, r.pairs),
        ms(r.catch_up_p50_ms),
        ms(r.catch_up_p99_ms),
        r.degree_mean,
        r.degree_max,
        r.leaks,
        r.wall_s
    );
}

#[allow(dead_code)] // the suite's small run uses `run` without this
fn main() {
    run(&args_from(std::env::args().skip(1)));
}
