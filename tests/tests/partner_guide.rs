//! `docs/partner-guide.md` runs as written: every line of its `sh` blocks is parsed with the
//! `yrd` command line and run in-process against a real exchange, on both stores, in a
//! folder of its own (the guide's relative paths), with the exchange's address and the dev
//! PKI's operator admin certificate in place of `exchange.example.org` and `admin.pem`. What
//! the guide leaves to another party (another province publishing a result) the test does
//! through the API between the blocks. Its `text` block of a refusal must be what the command
//! prints. Editing a command in the guide changes what this test runs.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use clap::Parser as _;
use yrd_domain::Profile;
use yrd_e2e::fixtures::non_conforming_toy;
use yrd_e2e::{ANHUI, JIANGSU, SHANGHAI, StoreKind, TestApp};
use yrd_gateway::cli::{Cli, Command, desk};
use yrd_proto::v1 as pb;

/// A fenced block of the guide: its info string and lines.
#[derive(Debug)]
struct Block {
    info: String,
    lines: Vec<String>,
}

fn guide_blocks() -> Vec<Block> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/partner-guide.md");
    let text = std::fs::read_to_string(&path).expect("docs/partner-guide.md");
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for line in text.lines() {
        match (line.strip_prefix("```"), open.take()) {
            (Some(info), None) => {
                open = Some(Block {
                    info: info.trim().to_owned(),
                    lines: Vec::new(),
                })
            }
            (Some(_), Some(block)) => blocks.push(block),
            (None, Some(mut block)) => {
                block.lines.push(line.to_owned());
                open = Some(block);
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "an unclosed block in the guide");
    blocks
}

/// The guide's walk with its shell variables and what the test learnt on the way.
struct Walk {
    app: TestApp,
    vars: HashMap<String, String>,
    referral: Option<String>,
    printed: Vec<String>,
}

impl Walk {
    /// A guide line as `yrd` arguments: placeholders replaced, `$VAR`s expanded as the shell
    /// splits them.
    fn words(&self, line: &str) -> Vec<String> {
        let mut line = line
            .replace("exchange.example.org:50051", &self.app.addr.to_string())
            .replace("exchange.example.org", "localhost");
        if let Some(id) = &self.referral {
            line = line.replace("REFERRAL_ID", id);
        }
        let mut words = Vec::new();
        for word in shlex::split(&line).unwrap_or_else(|| panic!("not a shell line: {line}")) {
            match word.strip_prefix('$') {
                Some(var) => {
                    let value = self.vars.get(var).unwrap_or_else(|| panic!("${var} unset"));
                    words.extend(shlex::split(value).expect("a shell value"));
                }
                None => words.push(word),
            }
        }
        words
    }

    /// Runs one guide line: `VAR="…"` or `yrd …`; answers what it printed or the error as
    /// the binary prints it.
    async fn run(&mut self, line: &str) -> Result<String, String> {
        if let Some((var, value)) = line.split_once('=').filter(|(v, _)| !v.contains(' ')) {
            let value = shlex::split(value).expect("a quoted value").join(" ");
            let value = self.words(&value).join(" ");
            self.vars.insert(var.to_owned(), value);
            return Ok(String::new());
        }
        let words = self.words(line);
        assert_eq!(words[0], "yrd", "{line}");
        let command = Cli::try_parse_from(&words)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .command;
        let mut out = Vec::new();
        let outcome = match command {
            Command::Cert(c) => yrd_gateway::cert_cli::run(c, &mut out)
                .await
                .map_err(|e| format!("yrd: {e:#}")),
            Command::Results(c) => yrd_gateway::cli::results::run(c, &mut out)
                .await
                .map_err(|e| format!("yrd: {e:#}")),
            Command::Referral(c) => desk::referral::run(c, &mut out)
                .await
                .map_err(|e| format!("yrd: {e:#}")),
            Command::Application(c) => desk::application::run(c, &mut out)
                .await
                .map_err(|e| format!("yrd: {e:#}")),
            // A tail runs until stopped: here, once the backlog had time to come.
            Command::Feed(c) => {
                let stop = tokio::time::sleep(Duration::from_secs(3));
                desk::feed::run(c, &mut out, stop)
                    .await
                    .map_err(|e| format!("yrd: {e:#}"))
            }
            other => panic!("the guide runs no {other:?}"),
        };
        let printed = String::from_utf8(out).expect("UTF-8");
        self.printed.push(format!("$ {line}\n{printed}"));
        outcome.map(|()| printed)
    }

    /// Runs a line that must succeed.
    async fn ok(&mut self, line: &str) -> String {
        match self.run(line).await {
            Ok(printed) => printed,
            Err(e) => panic!("{line}\n{e}\nso far:\n{}", self.printed.join("\n")),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_partner_guide_runs_as_written_on_both_stores() {
    let blocks = guide_blocks();
    assert!(
        blocks.iter().filter(|b| b.info == "sh").count() >= 5,
        "{blocks:?}"
    );
    for kind in [StoreKind::Sqlite, StoreKind::Postgres] {
        let Some(app) = TestApp::spawn(kind).await else {
            continue;
        };
        let folder = tempfile::tempdir().expect("a folder for the guide");
        // The guide's paths are relative to where the partner runs it; this test binary
        // runs this one test only, so it may change its folder.
        std::env::set_current_dir(folder.path()).expect("cd");
        let mut walk = Walk {
            app,
            vars: HashMap::new(),
            referral: None,
            printed: Vec::new(),
        };
        for block in &blocks {
            run_block(&mut walk, block).await;
        }
        std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).expect("cd back");
    }
}

async fn run_block(walk: &mut Walk, block: &Block) {
    match block.info.as_str() {
        "sh" => {}
        info if info.starts_with("csv title=") => return write_file(block),
        "text" => return expected_refusal(walk, block).await,
        other => panic!("a block the test does not know how to check: {other:?}"),
    }
    for line in block.lines.iter().filter(|l| !l.trim().is_empty()) {
        before(walk, line).await;
        let printed = walk.ok(line).await;
        after(line, &printed);
    }
}

/// What others do before a line of the guide can run.
async fn before(walk: &mut Walk, line: &str) {
    if line.starts_with("ADMIN=") {
        // The admin side: the operator's admin certificate and the exchange CA.
        let pki = &walk.app.pki_dir;
        let admin = pki.join("agencies").join(SHANGHAI);
        std::fs::copy(admin.join("admin.pem"), "admin.pem").expect("admin.pem");
        std::fs::copy(admin.join("admin.key"), "admin.key").expect("admin.key");
        std::fs::copy(pki.join("ca.pem"), "ca.pem").expect("ca.pem");
    }
    if (line.contains("REFERRAL_ID") || line.contains("--role handling")) && walk.referral.is_none()
    {
        // Shanghai publishes a non-conforming result against a Jiangsu producer: a referral
        // to Jiangsu opens.
        let mut shanghai = walk
            .app
            .client(SHANGHAI, Profile::System)
            .await
            .spot_check();
        let published = shanghai
            .publish_result(pb::PublishResultRequest {
                request_id: "guide-shanghai-1".into(),
                result: Some(non_conforming_toy("320102", "310104", now(&walk.app))),
            })
            .await
            .expect("Shanghai publishes")
            .into_inner();
        assert_eq!(published.opened_referrals.len(), 1, "{published:?}");
        let name = &published.opened_referrals[0];
        let referral = walk
            .app
            .client(JIANGSU, Profile::System)
            .await
            .disposal()
            .get_referral(pb::GetReferralRequest { name: name.clone() })
            .await
            .expect("the referral")
            .into_inner()
            .referral
            .expect("referral");
        assert_eq!(
            referral.handling_agency,
            format!("agencies/{JIANGSU}"),
            "{referral:?}"
        );
        walk.referral = Some(name.trim_start_matches("referrals/").to_owned());
    }
    if line.contains("feed tail --json") {
        // Something new since the first tail: Anhui found the product on sale there.
        let mut anhui = walk.app.client(ANHUI, Profile::System).await.disposal();
        anhui
            .add_reaction(pb::AddReactionRequest {
                request_id: "guide-anhui-1".into(),
                name: format!(
                    "referrals/{}",
                    walk.referral.as_deref().expect("a referral")
                ),
                reaction: Some(pb::Reaction {
                    kind: pb::ReactionKind::FoundOnSaleHere as i32,
                    text: "同款产品在安徽某网店在售".into(),
                    ..Default::default()
                }),
            })
            .await
            .expect("Anhui reacts");
    }
}

/// What a line of the guide must have printed.
fn after(line: &str, printed: &str) {
    let has = |text: &str| {
        assert!(
            printed.contains(text),
            "{line} printed no {text:?}:\n{printed}"
        );
    };
    if line.starts_with("yrd cert request") {
        has("keys/320000-AMR-system.csr");
    } else if line.starts_with("yrd cert issue") {
        assert!(Path::new("keys/320000-AMR-system.pem").exists());
    } else if line.starts_with("yrd results import results.csv --dry-run") {
        has("dry run: 1 rows would be published, 0 rejected; nothing was sent");
    } else if line.starts_with("yrd results import results.csv") {
        has("published 1 results");
        has("0 rows rejected");
    } else if line.starts_with("yrd referral list --role sampling") {
        // The imported non-conforming result opened a referral to Shandong.
        has("1 referral(s)");
        has("370000");
    } else if line == "yrd referral list $CONN" {
        has("0 referral(s), 0 overdue");
    } else if line.starts_with("yrd referral list --role handling") {
        has("1 referral(s)");
        has("acknowledgement");
        has("due ");
    } else if line.starts_with("yrd referral acknowledge") {
        has("delivered (已送达)");
        has("JS-ZF-0042");
    } else if line.starts_with("yrd referral close") {
        has("closed (已办结)");
    } else if line.starts_with("yrd referral show") && printed.contains("closed") {
        for step in [
            "acknowledged",
            "handling-started",
            "measure-recorded",
            "closed",
        ] {
            has(step);
        }
        has("CST");
    } else if line.starts_with("yrd feed tail --from-start") {
        has("result-published");
        has("needs disposal here");
        has("referral-opened");
        has("CST");
    } else if line.starts_with("yrd feed tail --json") {
        let lines: Vec<_> = printed.lines().collect();
        assert_eq!(lines.len(), 1, "only what came since:\n{printed}");
        let event: serde_json::Value = serde_json::from_str(lines[0]).expect("JSON line");
        assert_eq!(event["kind"], "reaction-added", "{event}");
    }
}

/// A file the guide shows (a ```` ```csv title=NAME ```` block): written where the guide runs.
fn write_file(block: &Block) {
    let name = block.info.trim_start_matches("csv title=");
    std::fs::write(name, block.lines.join("\n") + "\n").expect("the guide's file");
}

/// A `text` block of `$ command` then the error line it prints.
async fn expected_refusal(walk: &mut Walk, block: &Block) {
    let command = block.lines[0].strip_prefix("$ ").expect("a `$ yrd …` line");
    let printed = walk
        .run(command)
        .await
        .expect_err("the guide shows a refusal");
    assert_eq!(printed, block.lines[1], "what `{command}` prints");
}

fn now(app: &TestApp) -> time::OffsetDateTime {
    app.clock.now()
}
