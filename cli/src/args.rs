//! Command-line syntax (clap derive). Parsing only: turning these into
//! calls on `convene_node` happens in `commands`.
// The doc comments here are the commands' help text as clap prints it, so
// a syntax in brackets (`[;unit=U]`) is written for a person, not as a link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Convene: a local-first, peer-to-peer node for a learning and improvement
/// community. Publish shared learning, improvement projects and contacts,
/// and find what others in the community have learned.
#[derive(Debug, Parser)]
#[command(
    name = "convene",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The node's data directory [default: the platform's data directory]
    #[arg(long, global = true, env = "CONVENE_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// More log output on stderr (repeat for more); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per run: the size of the biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a node for your organisation: key, database and profile
    Init(InitArgs),
    /// Print this node's id (its libp2p PeerId)
    Id,
    /// Publish a learning entry, an improvement project or a contact
    #[command(subcommand)]
    Publish(PublishCommand),
    /// List entries, newest first
    List(ListArgs),
    /// Show one entry
    Show(ShowArgs),
    /// Change an entry your organisation owns
    Edit(EditArgs),
    /// Add a dated value to a project's measure
    Record(RecordArgs),
    /// Chart a project's measures: run chart, XmR or p-chart, with the Making Data Count rules and icons
    Chart(crate::chart::ChartArgs),
    /// Full-text search over titles, summaries, bodies, tags and names
    Search(SearchArgs),
    /// Entries that look like the same work as an entry, or as a draft described with flags, with why they match
    Similar(crate::similar::SimilarArgs),
    /// Who knows about a topic: organisations and people (contacts who agreed to be listed), ranked, with the evidence
    Who(crate::who::WhoArgs),
    /// What's new since a time (7d by default): learning, projects, events to come, ideas, questions on your entries; text or Markdown for a newsletter or an email
    Digest(crate::digest::DigestArgs),
    /// Withdraw an entry your organisation owns (it stays in history)
    Retract(RetractArgs),
    /// Ask a question about a learning entry, project, event or idea
    Ask(crate::convening::AskArgs),
    /// Reply to a question (or to a reply)
    Reply(crate::convening::ReplyArgs),
    /// Questions nobody has answered yet, those on your organisation's entries first
    Questions(crate::convening::QuestionsArgs),
    /// Say your organisation is going to an event (or, with --not-going, no longer)
    Attend(crate::convening::AttendArgs),
    /// Support an idea for your organisation (once per organisation; --withdraw to take it back)
    Vote(crate::convening::VoteArgs),
    /// Ideas ranked by how many organisations support them, overall or in one voting round
    Ideas(crate::convening::IdeasArgs),
    /// Voting rounds (set one with `convene publish round`)
    #[command(subcommand)]
    Round(crate::convening::RoundCommand),
    /// Attach a file (report, slides, poster) to a learning entry or project
    Attach(crate::files::AttachArgs),
    /// List an entry's files: name, size, type, hash, whether this node holds them
    Files(crate::files::FilesArgs),
    /// Write one of an entry's files, fetched from members through the running daemon if not held here (refuses to overwrite without --force)
    Get(crate::files::GetArgs),
    /// Print a vocabulary's values (slug and label)
    Vocab(VocabArgs),
    /// Run this node on the network
    #[command(subcommand)]
    Node(NodeCommand),
    /// Open the running node's web app in a browser (signs you in); --sign-out-all signs every browser out
    Open(OpenArgs),
    /// Feed links for feed readers and calendars: an Atom feed of entries or an iCalendar feed of events, each with its own revocable token
    #[command(subcommand)]
    Feed(crate::feeds::FeedCommand),
    /// Start a demo community: three organisations' nodes on this computer, syncing, with their web apps
    Demo(DemoArgs),
    /// Sync with one peer now and exit (no daemon needed)
    Sync(SyncArgs),
    /// This node: id, organisation, daemon, peers, entry counts
    Status(StatusArgs),
    /// Peers this node has met, with their last sync
    Peers(PeersArgs),
    /// What happened: rejected changes and other events, with who signed them
    Log(LogArgs),
    /// Create a community (this organisation becomes its first steward)
    #[command(subcommand)]
    Community(CommunityCommand),
    /// The community's member organisations
    #[command(subcommand)]
    Member(MemberCommand),
    /// Name or un-name stewards (who may invite, remove and change the charter)
    #[command(subcommand)]
    Steward(StewardCommand),
    /// Make an invite code for a new member organisation (stewards only)
    Invite(InviteArgs),
    /// Join a community with an invite code
    Join(JoinArgs),
    /// Write signed changes to a bundle file, to carry to a node that cannot connect
    Export(ExportArgs),
    /// Verify and apply a bundle file
    Import(ImportArgs),
    /// Publish many entries from a CSV file, or update them (a row with an id updates that entry; every row is checked before any is written; rows already here are not published again, likely duplicates are warned about; the apostrophe export-csv puts before formula-like cells is taken off)
    ImportCsv {
        /// learning, project or contact
        kind: String,
        file: PathBuf,
        /// Check the rows and report, but write nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Write the entries of one kind as CSV (to stdout, or --out); a cell starting with = + - @ tab or CR gets a leading apostrophe so a spreadsheet shows it as text
    ExportCsv {
        /// learning, project, contact or organisation
        kind: String,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write one Markdown file per entry (front matter with the metadata), e.g. for a website; HTML in entries is escaped, contacts are left out unless --contacts
    ExportMd {
        /// The folder to write into (created if needed)
        #[arg(long, value_name = "DIR", default_value = "convene-export")]
        out: PathBuf,
        /// Also write contacts whose consent covers publication on a website (consent.public), with only the channels visible to the whole community
        #[arg(long)]
        contacts: bool,
    },
    /// Write a consistent backup of this node (key and database), even while it runs
    Backup {
        /// The backup file (it holds the node's private key: keep it safe)
        file: PathBuf,
    },
    /// Restore a backup into an empty home
    Restore {
        /// The backup file
        file: PathBuf,
    },
    /// Show or change config.toml (what `node start` reads)
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check this node's home, database, key, peers, clock, disk and daemon
    Doctor(DoctorArgs),
    /// Print a shell completion script, e.g. `convene completions bash > /etc/bash_completion.d/convene`
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Write man pages: convene.1 and one per subcommand (or print convene.1 to stdout)
    Man {
        /// The folder to write the pages into (created if needed)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults included) as TOML, and the file it comes from
    Show {
        /// As one JSON object: {"path": …, "exists": …, "config": {…}}
        #[arg(long)]
        json: bool,
    },
    /// Set a key, e.g. `config set bootstrap /ip4/192.0.2.10/tcp/4040/p2p/12D3KooW…` (list keys take several values)
    Set {
        /// A dotted key: listen, bootstrap, mdns (see `config show`)
        key: String,
        /// The value; several for a list key; a TOML value such as [] or false is taken as such
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        values: Vec<String>,
    },
    /// Remove a key from config.toml, so its default applies again
    Unset {
        /// A dotted key (see `config show`)
        key: String,
    },
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// As one JSON object: {"ok": …, "checks": [{"check", "status", "message"}]}
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for each bootstrap peer's TCP connection
    #[arg(long, value_name = "SECONDS", default_value_t = 3)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The bundle file to write
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Only changes newer than a date (YYYY-MM-DD or RFC 3339) or not in an earlier bundle file
    #[arg(long, value_name = "BUNDLE_OR_DATE")]
    pub since: Option<String>,
    /// Only what this organisation may see [default: what the whole community may see]
    #[arg(long = "for", value_name = "ORG")]
    pub for_org: Option<String>,
    /// Also carry the bytes of the entries' files held here (a node without attachments cannot read such a bundle)
    #[arg(long)]
    pub with_files: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bundle file
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum CommunityCommand {
    /// Create a community with this node's organisation as steward
    Create {
        /// Its name, e.g. "North East and North Cumbria Learning and Improvement Community"
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// List the member organisations
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a member organisation (stewards only): its nodes are refused from then on
    Remove {
        /// Organisation name or id
        org: String,
    },
    /// Settle a contested invite (stewards only): admit the claim of this node; every other claim on that invite becomes void
    Confirm {
        /// The claiming node's id (or a unique start of it), as `member list` shows it
        node: String,
    },
    /// Consent to another node joining as one of your organisation's nodes (lists it in your profile); then a steward's `invite --org` code admits it
    AddNode {
        /// The new node's id (`convene id` on that node)
        node: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum StewardCommand {
    /// Make a member organisation a steward
    Add { org: String },
    /// Stop an organisation being a steward
    Remove { org: String },
}

#[derive(Debug, Args)]
pub struct InviteArgs {
    /// How long the code works: e.g. 30m, 12h, 7d
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    pub expires: String,
    /// The new member becomes a steward too
    #[arg(long)]
    pub steward: bool,
    /// For another node of this member organisation (name or id)
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
}

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The invite code a steward gave you
    pub code: String,
    /// Another member node to try (repeatable), besides those in the code
    #[arg(long, value_name = "MULTIADDR")]
    pub peer: Vec<String>,
    /// Give up after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only security events (rejected changes)
    #[arg(long)]
    pub security: bool,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Run the node in the foreground until Ctrl-C or SIGTERM, syncing with
    /// every member it reaches
    Start(StartArgs),
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Listen on this multiaddress (repeatable; replaces config.toml's `listen`)
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// Listen on nothing, as behind NAT: dial out only, and be reached
    /// through members' relays
    #[arg(long, conflicts_with = "listen")]
    pub no_listen: bool,
    /// Dial this peer at start and whenever the connection drops (repeatable; replaces config.toml's `bootstrap`)
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<String>,
    /// Do not look for nodes on the local network
    #[arg(long)]
    pub no_mdns: bool,
    /// On first use only: the organisation to create the node for [default: this machine's host name]
    #[arg(long, value_name = "NAME")]
    pub org: Option<String>,
    /// On first use only: its sector
    #[arg(long, value_name = "SECTOR", default_value = "other")]
    pub sector: String,
    /// Serve the web app on this loopback address (replaces config.toml's `web.listen`; port 0 picks one)
    #[arg(long, value_name = "ADDR:PORT", conflicts_with = "no_web")]
    pub web: Option<String>,
    /// Run without the web app
    #[arg(long)]
    pub no_web: bool,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Print the sign-in address instead of opening a browser
    #[arg(long)]
    pub print: bool,
    /// Sign every browser out of the web app (and void unused sign-in links) instead of signing in
    #[arg(long, conflicts_with = "print")]
    pub sign_out_all: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's nodes in this folder (created; must be empty) instead of a temporary one that is removed at exit
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The first web app's address; the other two use the next ports (port 0 picks free ones)
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:4041")]
    pub web: String,
    /// Do not open a browser
    #[arg(long)]
    pub no_open: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Sync once and exit (the daemon, `convene node start`, syncs continuously)
    #[arg(long, required = true)]
    pub once: bool,
    /// The peer's multiaddress, e.g. /ip4/192.0.2.10/tcp/4040/p2p/12D3KooW…
    #[arg(long, value_name = "MULTIADDR")]
    pub peer: String,
    /// Give up after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PeersArgs {
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Your organisation's name
    #[arg(long, value_name = "NAME")]
    pub org: String,
    /// Its sector: a slug or label (nhs-trust, council, vcse, icb, …; see `convene vocab sectors`)
    #[arg(long, value_name = "SECTOR")]
    pub sector: String,
    /// Where it works (e.g. Gateshead, North Cumbria)
    #[arg(long, value_name = "PLACE")]
    pub place: Option<String>,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum PublishCommand {
    /// Shared learning: a case study, lesson, what didn't work, a toolkit …
    Learning(PublishLearning),
    /// An improvement project with its measures
    Project(PublishProject),
    /// A person others may contact (needs their consent)
    Contact(PublishContact),
    /// An event: a summit, a world café, a community of practice meeting
    Event(crate::convening::PublishEvent),
    /// An idea for the community to support
    Idea(crate::convening::PublishIdea),
    /// A voting round on ideas, with opening and closing times (stewards only)
    Round(crate::convening::PublishRound),
}

/// Options every publish shares.
#[derive(Debug, Args)]
pub struct PublishCommon {
    /// Read the fields from a TOML or JSON file (same field names as `show --json`; `-` for stdin); flags add to it
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Who may see it: community, organisation, or a comma-separated list of organisation ids
    #[arg(long, value_name = "VISIBILITY")]
    pub visibility: Option<String>,
    /// Save as a draft instead of publishing
    #[arg(long)]
    pub draft: bool,
}

/// Vocabulary fields shared by learning and projects.
#[derive(Debug, Args)]
pub struct Classification {
    /// A community priority (slug or label; repeatable)
    #[arg(long = "priority", value_name = "PRIORITY")]
    pub priorities: Vec<String>,
    /// An improvement method (repeatable; see `convene vocab methods`)
    #[arg(long = "method", value_name = "METHOD")]
    pub methods: Vec<String>,
    /// A quality theme (repeatable)
    #[arg(long = "theme", value_name = "THEME")]
    pub themes: Vec<String>,
    /// An ICS goal (repeatable)
    #[arg(long = "goal", value_name = "GOAL")]
    pub goals: Vec<String>,
    /// A free tag (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Level: system, place, neighbourhood, provider or team
    #[arg(long)]
    pub level: Option<String>,
    /// The place it concerns
    #[arg(long)]
    pub place: Option<String>,
}

#[derive(Debug, Args)]
pub struct PublishLearning {
    #[arg(long)]
    pub title: Option<String>,
    /// One or two sentences
    #[arg(long)]
    pub summary: Option<String>,
    /// The full story
    #[arg(long)]
    pub body: Option<String>,
    /// Case study, lesson learned, what didn't work, resource, event write-up, testimony
    #[arg(long = "type", value_name = "TYPE")]
    pub learning_type: Option<String>,
    /// Worked, didn't work, mixed, too early
    #[arg(long)]
    pub outcome: Option<String>,
    /// Measured impact, e.g. "44 per cent reduction in call answering time"
    #[arg(long)]
    pub impact: Option<String>,
    #[arg(long)]
    pub evidence: Option<String>,
    /// Where it happened (a ward, a practice, a community centre)
    #[arg(long)]
    pub setting: Option<String>,
    /// Who it was for
    #[arg(long)]
    pub population: Option<String>,
    /// Source of the learning (repeatable; see `convene vocab sources`)
    #[arg(long = "source", value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// An author (name or contact id; repeatable)
    #[arg(long = "author", value_name = "AUTHOR")]
    pub authors: Vec<String>,
    /// Licence [default: OGL-UK-3.0]
    #[arg(long)]
    pub licence: Option<String>,
    #[command(flatten)]
    pub class: Classification,
    #[command(flatten)]
    pub common: PublishCommon,
}

#[derive(Debug, Args)]
pub struct PublishProject {
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub summary: Option<String>,
    /// The problem: why, for whom, what
    #[arg(long)]
    pub problem: Option<String>,
    /// What, how much, by when
    #[arg(long)]
    pub aim: Option<String>,
    /// Understanding the issue, designing changes, testing and implementing, embedding and spreading, closed
    #[arg(long)]
    pub stage: Option<String>,
    /// A partner organisation (repeatable)
    #[arg(long = "partner", value_name = "ORG")]
    pub partners: Vec<String>,
    /// A measure: "NAME[;type=outcome|process|balancing][;unit=U][;baseline=N][;target=N][;improvement=higher|lower|neither][;chart=run|xmr|p][;baseline_points=N][;rebase=YYYY-MM-DD:REASON]" (repeatable)
    #[arg(long = "measure", value_name = "MEASURE")]
    pub measures: Vec<String>,
    /// A data point: "MEASURE@YYYY-MM-DD=VALUE", or "=COUNT/DENOMINATOR" for a proportion (repeatable)
    #[arg(long = "data", value_name = "POINT")]
    pub data: Vec<String>,
    #[command(flatten)]
    pub class: Classification,
    #[command(flatten)]
    pub common: PublishCommon,
}

#[derive(Debug, Args)]
pub struct PublishContact {
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub pronouns: Option<String>,
    /// Role or job title
    #[arg(long)]
    pub role: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub phone: Option<String>,
    /// Organisation the person works with (repeatable)
    #[arg(long = "organisation", value_name = "ORG")]
    pub organisations: Vec<String>,
    #[arg(long)]
    pub sector: Option<String>,
    #[arg(long)]
    pub place: Option<String>,
    /// A skill they offer (repeatable; see `convene vocab skills`)
    #[arg(long = "expertise", value_name = "SKILL")]
    pub expertise: Vec<String>,
    /// Something they want to learn about (repeatable)
    #[arg(long = "interest", value_name = "TOPIC")]
    pub interests: Vec<String>,
    /// Mentoring, collaboration, peer visits, coffee (repeatable)
    #[arg(long = "open-to", value_name = "WHAT")]
    pub open_to: Vec<String>,
    /// They take part as a lived-experience partner
    #[arg(long)]
    pub lived_experience: bool,
    /// Record that the person agreed to be listed (required)
    #[arg(long)]
    pub consent: bool,
    /// Who gave consent [default: the contact's name]
    #[arg(long, value_name = "NAME", requires = "consent")]
    pub consent_by: Option<String>,
    #[command(flatten)]
    pub common: PublishCommon,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// learning, project, contact or organisation
    pub kind: Option<String>,
    /// Only entries with this tag
    #[arg(long)]
    pub tag: Option<String>,
    /// Only entries with this priority (slug or label)
    #[arg(long)]
    pub priority: Option<String>,
    /// Only entries using this method
    #[arg(long)]
    pub method: Option<String>,
    /// Only entries owned by this organisation (name or id)
    #[arg(long)]
    pub org: Option<String>,
    /// Include retracted entries
    #[arg(long)]
    pub all: bool,
    /// At most this many
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Entry id (or a unique prefix)
    pub id: String,
    /// The entry as one JSON object (vocabulary values as slugs)
    #[arg(long)]
    pub json: bool,
    /// Every change: when, which node signed it, its organisation
    #[arg(long)]
    pub history: bool,
    /// The questions asked about it, with their replies
    #[arg(long)]
    pub thread: bool,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// Entry id (or a unique prefix)
    pub id: String,
    /// Set a field: FIELD=VALUE (e.g. title=…, tags=a,b, measures[0].unit=days, visibility=organisation)
    #[arg(
        long = "set",
        value_name = "FIELD=VALUE",
        conflicts_with = "from",
        required_unless_present_any = ["from", "add_editor", "remove_editor"]
    )]
    pub set: Vec<String>,
    /// Replace the fields with a TOML or JSON file (as `show --json` prints)
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Let another organisation (name or id) edit this entry too
    #[arg(long, value_name = "ORG", conflicts_with_all = ["from", "set", "remove_editor"])]
    pub add_editor: Option<String>,
    /// Stop letting an organisation edit this entry
    #[arg(long, value_name = "ORG", conflicts_with_all = ["from", "set"])]
    pub remove_editor: Option<String>,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Project id (or a unique prefix)
    pub id: String,
    /// The measure's name
    #[arg(long)]
    pub measure: String,
    /// YYYY-MM-DD
    #[arg(long)]
    pub date: String,
    #[arg(long, allow_negative_numbers = true)]
    pub value: f64,
    #[arg(long)]
    pub note: Option<String>,
    /// For a proportion: how many there were (the value is how many of them counted)
    #[arg(long, value_name = "N")]
    pub denominator: Option<f64>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to find (all must match; end a word with * to match a prefix)
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
    /// Results per page
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Which page of results to show, from 1
    #[arg(long, value_name = "N", default_value_t = 1, conflicts_with = "offset")]
    pub page: usize,
    /// Skip this many results first (instead of --page)
    #[arg(long, value_name = "N")]
    pub offset: Option<usize>,
    /// One JSON object per line (the line "showing 1–20 of N" goes to stderr)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RetractArgs {
    /// Entry id (or a unique prefix)
    pub id: String,
    /// Erase it for good, on every node (personal data, a withdrawn story):
    /// a signed tombstone replaces it and its text is deleted from the files
    #[arg(long)]
    pub erase: bool,
    /// Why, in a few words (recorded in the log; never put the erased content here)
    #[arg(long, requires = "erase", default_value = "erased by its owner")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct VocabArgs {
    /// priorities, goals, themes, sectors, levels, stages, methods, skills, learning-types, outcomes, sources, measure-types, team-roles, pdsa-acts, open-to, channels
    pub name: String,
    #[arg(long)]
    pub json: bool,
}
