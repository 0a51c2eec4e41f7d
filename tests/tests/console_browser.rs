//! `yrd console` in a real browser: Debian's headless Chromium, driven through chromedriver
//! (W3C WebDriver), against an exchange on a manual clock and two consoles — the operator's
//! (auditor and admin pages) and Shandong's (officer pages). The auditor opens an entry and
//! sees it verified, exports the log with the button, and sees a tampered export fail; the
//! officer sees an overdue referral highlighted, and the case (串案) three agencies' results of
//! one product formed, with its results, referrals and timeline; the admin sees a certificate
//! due for rotation. Screenshots of the main pages are saved to target/console-screenshots/, or with
//! `YRD_CONSOLE_SCREENSHOTS=docs` to docs/console/ (the ones the README shows).
//!
//! Without /usr/bin/chromium and /usr/bin/chromedriver (or `YRD_CHROMIUM`, `YRD_CHROMEDRIVER`)
//! the test prints why and passes, unless `CI=true`, where it fails (`.ci/run` installs both).

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::Duration;

use clap::Parser as _;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use yrd_domain::Profile;
use yrd_e2e::fixtures::non_conforming_toy;
use yrd_e2e::{JIANGSU, SHANDONG, SHANGHAI, StoreKind, TestApp, ZHEJIANG, spawn_for_deadlines};
use yrd_gateway::cli::command::{Cli, Command};
use yrd_gateway::cli::console::BoundConsole;
use yrd_proto::v1 as pb;

/// Chromium and chromedriver, when installed.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let path = |var: &str, default: &str| {
        PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.to_owned()))
    };
    let chromium = path("YRD_CHROMIUM", "/usr/bin/chromium");
    let driver = path("YRD_CHROMEDRIVER", "/usr/bin/chromedriver");
    (chromium.is_file() && driver.is_file()).then_some((chromium, driver))
}

/// chromedriver, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver on a free port and a Chromium session with the flags of a clean,
/// quiet, sandbox-free headless run and a fresh profile.
async fn open_browser(
    chromium: &Path,
    driver: &Path,
    profile: &Path,
    downloads: &Path,
) -> (Driver, Client) {
    let port = StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Process::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    // Wait until chromedriver accepts connections (readiness, not a timing assertion).
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
                "--window-size=1200,800", "--hide-scrollbars",
            ],
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
            },
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    (driver, client)
}

/// Starts `yrd console` as `agency` against `app`, exactly as typed; answers its first URL.
async fn console(app: &TestApp, agency: &str) -> String {
    let data_dir = app.pki_dir.parent().expect("pki in the data folder");
    let words = [
        "yrd",
        "console",
        "--listen",
        "127.0.0.1:0",
        "--server",
        &app.addr.to_string(),
        "--data-dir",
        data_dir.to_str().expect("UTF-8"),
        "--agency-cert",
        agency,
    ];
    let Command::Console(args) = Cli::try_parse_from(words).expect("parses").command else {
        panic!("not the console command");
    };
    let bound = BoundConsole::bind(args).await.expect("binds");
    let url = bound.url.clone();
    tokio::spawn(bound.serve(std::future::pending()));
    url
}

/// Where the screenshots go: `target/console-screenshots/` of the workspace, so that a run
/// leaves the checkout clean; with `YRD_CONSOLE_SCREENSHOTS=docs` the run refreshes the
/// committed ones in docs/console/ (linked from the README).
fn screenshots() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = if std::env::var("YRD_CONSOLE_SCREENSHOTS").as_deref() == Ok("docs") {
        root.join("docs/console")
    } else {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"))
            .join("console-screenshots")
    };
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    dir
}

async fn shoot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("a screenshot");
    std::fs::write(screenshots().join(name), png).expect("saved");
}

/// Clicks the element with `id` on the page.
async fn click(browser: &Client, id: &str) {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("#{id} not clicked: {e}"));
}

/// Waits until an element matching `css` is on the page.
async fn wait_for(browser: &Client, css: &str) {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
}

async fn page_text(browser: &Client) -> String {
    browser
        .find(Locator::Css("body"))
        .await
        .expect("a body")
        .text()
        .await
        .expect("text")
}

/// The text of every row with `class` on the page.
async fn rows(browser: &Client, class: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for row in browser
        .find_all(Locator::Css(&format!("tr.{class}")))
        .await
        .expect("rows")
    {
        texts.push(row.text().await.expect("text"));
    }
    texts
}

/// Publishes a non-conforming toy as Shanghai against a Shandong producer: the referral's id.
async fn overdue_referral(app: &TestApp, clock: &yrd_domain::clock::ManualClock) -> String {
    let published = app
        .client(SHANGHAI, Profile::System)
        .await
        .spot_check()
        .publish_result(pb::PublishResultRequest {
            request_id: "console-1".into(),
            result: Some(non_conforming_toy("370102", "310104", app.clock.now())),
        })
        .await
        .expect("publish")
        .into_inner();
    let id = published.opened_referrals[0]
        .trim_start_matches("referrals/")
        .to_owned();
    clock.advance(time::Duration::weeks(3));
    app.tick_schedulers();
    let mut disposal = app.client(SHANDONG, Profile::System).await.disposal();
    for _ in 0..100 {
        let listed = disposal
            .list_referrals(pb::ListReferralsRequest {
                overdue: Some(true),
                page_size: 10,
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        if listed.referrals.iter().any(|r| r.id == id) {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("referral {id} was never flagged overdue");
}

/// Jiangsu and Zhejiang publish the toy of Shanghai's referral, found on sale in their own
/// provinces: the three results of one product form one case (串案, docs/cases.md), handled by
/// Shandong, the producer's province. Answers the case id, as the referral names it.
async fn case_of_three(app: &TestApp, referral: &str) -> String {
    for (agency, seller_region) in [(JIANGSU, "320106"), (ZHEJIANG, "330106")] {
        app.client(agency, Profile::System)
            .await
            .spot_check()
            .publish_result(pb::PublishResultRequest {
                request_id: format!("console-case-{agency}"),
                result: Some(non_conforming_toy("370102", seller_region, app.clock.now())),
            })
            .await
            .expect("publish");
    }
    let named = app
        .client(SHANDONG, Profile::System)
        .await
        .disposal()
        .get_referral(pb::GetReferralRequest {
            name: format!("referrals/{referral}"),
        })
        .await
        .expect("the referral")
        .into_inner()
        .referral
        .expect("a referral")
        .r#case;
    named
        .strip_prefix("cases/")
        .unwrap_or_else(|| panic!("referral {referral} names no case: {named:?}"))
        .to_owned()
}

/// Issues Jiangsu a system certificate valid for one day on the exchange's clock (through
/// `yrd cert request` and `yrd cert issue`): its serial. The exchange's clock stands some four
/// weeks ahead of this machine's by then, so the certificate is active there and ends within
/// the console's 30-day rotation horizon here.
async fn short_certificate(app: &TestApp, dir: &Path) -> String {
    let data_dir = app.pki_dir.parent().expect("pki in the data folder");
    let run = |line: String| async move {
        let words =
            std::iter::once("yrd".to_owned()).chain(line.split_whitespace().map(str::to_owned));
        let Command::Cert(c) = Cli::try_parse_from(words).expect("parses").command else {
            panic!("not a cert command");
        };
        let mut out = Vec::new();
        yrd_gateway::cli::cert::run(c, &mut out)
            .await
            .expect("cert");
        String::from_utf8(out).expect("UTF-8")
    };
    let dir_s = dir.to_str().expect("UTF-8");
    run(format!(
        "cert request --agency {JIANGSU} --profile system --out {dir_s}"
    ))
    .await;
    let printed = run(format!(
        "cert issue --csr {dir_s}/{JIANGSU}-system.csr --agency {JIANGSU} --profile system \
         --days 1 --server {} --data-dir {}",
        app.addr,
        data_dir.to_str().expect("UTF-8")
    ))
    .await;
    printed
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("serial"))
        .unwrap_or_else(|| panic!("no serial in:\n{printed}"))
        .trim()
        .to_owned()
}

/// Waits for a finished download in `dir` (Chromium writes `.crdownload` until done).
async fn downloaded(dir: &Path) -> PathBuf {
    for _ in 0..600 {
        let done = std::fs::read_dir(dir)
            .expect("downloads")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "jsonl"));
        if let Some(path) = done {
            return path;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the export was never downloaded to {}", dir.display());
}

/// The export with one entry's canonical text altered (its duration), as a forger would.
fn tamper(export: &Path, into: &Path) {
    let text = std::fs::read_to_string(export).expect("the export");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert!(lines.len() >= 3, "a short export:\n{text}");
    let mut entry: Value = serde_json::from_str(&lines[1]).expect("an entry");
    let input = entry["leaf_input"].as_str().expect("leaf_input").to_owned();
    let altered = input.replacen("\"duration_us\":", "\"duration_us\":1", 1);
    assert_ne!(altered, input, "no duration in {input}");
    entry["leaf_input"] = Value::String(altered);
    lines[1] = entry.to_string();
    std::fs::write(into, lines.join("\n") + "\n").expect("written");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_a_real_browser() {
    let Some((chromium, driver)) = browser_binaries() else {
        let reason = "the console's browser test needs /usr/bin/chromium and /usr/bin/chromedriver \
                      (apt-get install -y chromium chromium-driver)";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: {reason}"
        );
        eprintln!("skipped: {reason}");
        return;
    };
    let Some((app, clock)) = spawn_for_deadlines(StoreKind::Sqlite).await else {
        return;
    };
    let scratch = tempfile::tempdir().expect("scratch");
    let (profile, downloads, certs) = (
        scratch.path().join("profile"),
        scratch.path().join("downloads"),
        scratch.path().join("certs"),
    );
    for dir in [&profile, &downloads, &certs] {
        std::fs::create_dir_all(dir).expect("scratch dir");
    }
    let referral = overdue_referral(&app, &clock).await;
    let case = case_of_three(&app, &referral).await;
    let serial = short_certificate(&app, &certs).await;
    let operator = console(&app, SHANGHAI).await;
    let shandong = console(&app, SHANDONG).await;
    let (_driver, browser) = open_browser(&chromium, &driver, &profile, &downloads).await;

    // The first URL trades its token for the cookie; the console speaks Chinese by default.
    browser.goto(&operator).await.expect("the first URL");
    let url = browser.current_url().await.expect("url");
    assert_eq!(
        url.query(),
        None,
        "the token is dropped from the address: {url}"
    );
    assert!(page_text(&browser).await.contains("数据交换控制台"));
    shoot(&browser, "home.png").await;

    // Auditor: the log, then an entry verified here (signature, inclusion, consistency).
    let base = operator.split("/?").next().expect("base").to_owned();
    browser.goto(&format!("{base}/audit")).await.expect("log");
    wait_for(&browser, "#table tbody tr").await;
    shoot(&browser, "log.png").await;
    click(&browser, "switch-language").await;
    wait_for(&browser, "html[lang=en]").await;
    browser
        .goto(&format!("{base}/audit/entries/1"))
        .await
        .expect("entry");
    let text = page_text(&browser).await;
    assert!(text.contains("Inclusion proof: ✔ verified"), "{text}");
    assert!(text.contains("Signed tree head: ✔ verified"), "{text}");
    // A second look, after the log grew: consistent with the head verified before.
    browser
        .goto(&format!("{base}/audit/entries/2"))
        .await
        .expect("entry");
    let text = page_text(&browser).await;
    assert!(text.contains("Consistency: ✔ verified"), "{text}");
    assert!(
        browser
            .find_all(Locator::Css("li.bad"))
            .await
            .expect("checks")
            .is_empty(),
        "{text}"
    );
    shoot(&browser, "entry.png").await;
    browser
        .find(Locator::Css("dd a[href^='/audit/traces/']"))
        .await
        .expect("trace link")
        .click()
        .await
        .expect("click");
    wait_for(&browser, "#table tbody tr").await;
    shoot(&browser, "trace.png").await;

    // The export button downloads the log; the honest file passes, a tampered one fails.
    browser.goto(&format!("{base}/audit")).await.expect("log");
    click(&browser, "export").await;
    let export = downloaded(&downloads).await;
    let tampered = scratch.path().join("tampered.jsonl");
    tamper(&export, &tampered);
    for (file, honest) in [(&export, true), (&tampered, false)] {
        browser
            .goto(&format!("{base}/audit/verify"))
            .await
            .expect("form");
        browser
            .find(Locator::Id("export-file"))
            .await
            .expect("file input")
            .send_keys(file.to_str().expect("UTF-8"))
            .await
            .expect("chosen");
        click(&browser, "upload").await;
        wait_for(&browser, "#table").await;
        let failing = rows(&browser, "failing").await;
        let passing = rows(&browser, "passing").await;
        if honest {
            assert!(failing.is_empty(), "{failing:?}");
            assert!(!passing.is_empty());
        } else {
            let index = |row: &String| row.split_whitespace().next().map(str::to_owned);
            assert_eq!(
                failing.first().and_then(index).as_deref(),
                Some("1"),
                "{failing:?}"
            );
            assert_eq!(
                passing.first().and_then(index).as_deref(),
                Some("0"),
                "{passing:?}"
            );
            let text = page_text(&browser).await;
            assert!(text.contains("File: ✘ FAILED"), "{text}");
            shoot(&browser, "verify-export.png").await;
        }
    }

    // Admin: the short certificate is due for rotation.
    browser
        .goto(&format!("{base}/admin/certificates"))
        .await
        .expect("certificates");
    let due = rows(&browser, "soon").await;
    assert!(
        due.iter()
            .any(|r| r.contains(&serial) && r.contains("due for rotation")),
        "{serial} not highlighted in {due:?}"
    );
    shoot(&browser, "certificates.png").await;
    browser
        .goto(&format!("{base}/admin/agencies"))
        .await
        .expect("agencies");
    shoot(&browser, "agencies.png").await;
    browser
        .goto(&format!("{base}/admin/crl"))
        .await
        .expect("crl");
    assert!(page_text(&browser).await.contains("CRL number"));
    shoot(&browser, "crl.png").await;

    // Officer (Shandong's console, its own session): the overdue referral is highlighted.
    browser
        .goto(&shandong)
        .await
        .expect("the officer's first URL");
    let officer = shandong.split("/?").next().expect("base").to_owned();
    browser
        .goto(&format!("{officer}/officer/referrals"))
        .await
        .expect("referrals");
    let overdue = rows(&browser, "overdue").await;
    assert!(
        overdue
            .iter()
            .any(|r| r.contains(&referral) && r.contains("overdue")),
        "{referral} not highlighted in {overdue:?}"
    );
    shoot(&browser, "referrals.png").await;
    browser
        .find(Locator::LinkText(&referral))
        .await
        .expect("link")
        .click()
        .await
        .expect("click");
    wait_for(&browser, "ol.timeline li").await;
    shoot(&browser, "referral.png").await;
    browser
        .find(Locator::LinkText(&case))
        .await
        .expect("the referral links to its case");
    browser
        .goto(&format!("{officer}/officer/results?product=玩具"))
        .await
        .expect("results");
    wait_for(&browser, "#table").await;
    shoot(&browser, "results.png").await;

    // The case, from the home page: in the list, then on its page with its three results, the
    // overdue referral highlighted and the calls that formed it in the log.
    browser.goto(&format!("{officer}/")).await.expect("home");
    click(&browser, "home-cases").await;
    wait_for(&browser, "#table tbody tr").await;
    let listed = page_text(&browser).await;
    assert!(listed.contains(&case), "case {case} not in:\n{listed}");
    shoot(&browser, "cases.png").await;
    let page = format!("{officer}/officer/cases/{case}");
    browser
        .find(Locator::LinkText(&case))
        .await
        .expect("the case's link")
        .click()
        .await
        .expect("click");
    // The log sequences its entries a moment after the calls (reload until they are in).
    let mut text = String::new();
    for _ in 0..100 {
        text = page_text(&browser).await;
        if text.matches("PublishResult").count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        browser.goto(&page).await.expect("the case");
    }
    assert!(
        text.matches("PublishResult").count() >= 2,
        "the publications that formed the case are not in its timeline:\n{text}"
    );
    for agency in [SHANGHAI, JIANGSU, ZHEJIANG, SHANDONG] {
        assert!(text.contains(agency), "{agency} not in:\n{text}");
    }
    let results = browser
        .find_all(Locator::Css("a[href^='/officer/results?producer=']"))
        .await
        .expect("result links");
    assert_eq!(results.len(), 3, "three results in:\n{text}");
    let overdue = rows(&browser, "overdue").await;
    assert!(
        overdue.iter().any(|r| r.contains(&referral)),
        "{referral} not highlighted in {overdue:?}"
    );
    assert!(
        browser
            .find_all(Locator::Css("a[href^='/audit/entries/']"))
            .await
            .expect("links")
            .len()
            >= 2,
        "timeline entries link to their pages"
    );
    // The whole page, down to its timeline.
    browser
        .set_window_size(1200, 1600)
        .await
        .expect("a taller window");
    shoot(&browser, "case.png").await;
    browser
        .set_window_size(1200, 800)
        .await
        .expect("the window again");

    browser.close().await.expect("closed");
}
