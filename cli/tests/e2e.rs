//! End to end: the real `hearth` binary against a real daemon in a temporary data
//! directory. Each test gets its own directory (and so its own socket and daemon), and
//! stops that daemon when it ends, even on failure.
//!
//! The daemon is started the way a person would start it: by autostart on the first
//! command, or by `hearth daemon start`. Checks that bad input "changes nothing" compare
//! a full export taken before and after.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

const HEARTH: &str = env!("CARGO_BIN_EXE_hearth");

/// `hearth` starts the `hearthd` beside it. Cargo builds it with the workspace
/// (`cargo test --workspace`); a test of this package alone needs it built first.
fn require_hearthd() {
    static CHECKED: std::sync::Once = std::sync::Once::new();
    CHECKED.call_once(|| {
        let hearthd = Path::new(HEARTH).with_file_name("hearthd");
        assert!(
            hearthd.is_file(),
            "{} is not built; run `cargo build -p hearthd` first (cargo test --workspace builds it)",
            hearthd.display()
        );
    });
}

/// One data directory and the daemon that serves it.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        require_hearthd();
        Env {
            dir: tempfile::Builder::new()
                .prefix("hearth-e2e-")
                .tempdir()
                .unwrap(),
        }
    }

    /// A fresh directory with an identity for `Robin`.
    fn init() -> Env {
        let env = Env::new();
        env.ok(&["init", "--name", "Robin", "--device-name", "laptop"]);
        env
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(HEARTH);
        cmd.arg("--data-dir")
            .arg(self.path())
            .args(args)
            .stdin(Stdio::null())
            .env_remove("HEARTH_DATA_DIR")
            .env_remove("HEARTH_PASSPHRASE_FILE")
            .env_remove("HEARTH_LOG")
            .env_remove("RUST_LOG")
            // Keep any network side of the daemon on loopback and quiet.
            .env("HEARTH_LISTEN", "127.0.0.1:0")
            .env("HEARTH_DISCOVERY", "off")
            // No desktop notifications from tests, unless a test asks for them.
            .env("HEARTH_NOTIFIER", "off");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "hearth {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(!stdout.contains('\x1b'), "color on a pipe: {stdout:?}");
        stdout
    }

    /// Runs with `--json` and parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let stdout = self.ok(&all);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("hearth {args:?} printed no JSON ({e}): {stdout}"))
    }

    /// Runs, expects exit `code`, and returns stderr, which must say what and what next.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "hearth {args:?}: expected exit {code}\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.contains("error"),
            "no error line for {args:?}: {stderr}"
        );
        stderr
    }

    /// Everything the device holds, to check that a failed command changed nothing.
    fn snapshot(&self) -> Value {
        self.json(&["export"])["records"].clone()
    }

    /// Asserts that each command fails with its code and leaves the data as it was.
    fn refuses_without_change(&self, cases: &[(&[&str], i32)]) {
        let before = self.snapshot();
        for (args, code) in cases {
            self.fails(args, *code);
        }
        assert_eq!(
            self.snapshot(),
            before,
            "a refused command changed the data"
        );
    }

    fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self
            .cmd(&["daemon", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn autostart_then_init_then_status() {
    let env = Env::new();
    // The first command starts the daemon; before init it says how to begin.
    let status = env.json(&["status"]);
    assert_eq!(status["state"], "uninitialized");
    assert_eq!(status["protocol"], 1);
    assert!(status["pid"].as_u64().unwrap() > 0);
    assert_eq!(status["data_dir"], s(env.path()));
    let human = env.ok(&["status"]);
    assert!(human.contains("hearth init --name NAME"), "{human}");

    env.fails(&["moment", "laugh"], 3);

    let init = env.json(&["init", "--name", "Robin"]);
    assert!(init["device_id"].is_string());
    assert!(init["person_id"].is_string());
    assert_eq!(init["protected"], false);

    let status = env.json(&["status"]);
    assert_eq!(status["state"], "ready");
    assert_eq!(status["person"]["name"], "Robin");
    assert_eq!(status["people"].as_array().unwrap().len(), 1);
    assert!(status["documents"].as_array().unwrap().len() >= 2);
    assert_eq!(status["peers"], json!([]));
    let human = env.ok(&["status"]);
    assert!(human.contains("Robin"), "{human}");
    assert!(human.contains("no partner yet"), "{human}");

    // A second init changes nothing and says so.
    let before = env.snapshot();
    let err = env.fails(&["init", "--name", "Someone"], 3);
    assert!(err.contains("already"), "{err}");
    assert_eq!(env.snapshot(), before);
    env.fails(&["init", "--name", "   "], 3);
}

#[test]
fn autostart_off_names_the_command_to_start() {
    let env = Env::new();
    env.write_file("config.toml", "autostart = false\n");
    let err = env.fails(&["status"], 4);
    assert!(
        err.contains(&format!("hearth daemon start --data-dir {}", s(env.path()))),
        "{err}"
    );
    assert!(!env.path().join("hearthd.sock").exists());

    let started = env.json(&["daemon", "start"]);
    assert_eq!(started["started"], true);
    assert_eq!(env.json(&["status"])["state"], "uninitialized");
}

#[test]
fn a_bad_config_is_a_clear_error() {
    let env = Env::new();
    env.write_file("config.toml", "autostrat = false\n");
    let err = env.fails(&["status"], 3);
    assert!(err.contains("autostrat"), "{err}");
}

#[test]
fn daemon_start_status_stop() {
    let env = Env::new();
    let err = env.fails(&["daemon", "status"], 4);
    assert!(err.contains("hearth daemon start"), "{err}");
    let not_running: Value =
        serde_json::from_slice(&env.run(&["--json", "daemon", "status"]).stdout).unwrap();
    assert_eq!(not_running["running"], false);

    let started = env.json(&["daemon", "start"]);
    assert_eq!(started["running"], true);
    assert_eq!(started["started"], true);
    assert_eq!(started["log"], s(&env.path().join("hearthd.log")));
    let pid = started["pid"].as_u64().unwrap();

    let again = env.json(&["daemon", "start"]);
    assert_eq!(again["started"], false);
    assert_eq!(again["pid"].as_u64(), Some(pid));

    let status = env.json(&["daemon", "status"]);
    assert_eq!(status["running"], true);
    assert_eq!(status["state"], "uninitialized");
    assert!(env
        .ok(&["daemon", "status"])
        .contains(&format!("pid {pid}")));

    assert_eq!(env.json(&["daemon", "stop"])["stopped"], true);
    assert!(!env.path().join("hearthd.sock").exists());
    env.fails(&["daemon", "status"], 4);
    assert_eq!(env.json(&["daemon", "stop"])["stopped"], false);
    assert!(env.ok(&["daemon", "stop"]).contains("not running"));
}

#[test]
fn a_second_daemon_on_the_same_data_dir_is_refused() {
    let env = Env::init();
    let err = env.fails(&["daemon", "run"], 6);
    assert!(err.contains("already using"), "{err}");
    // The first one still answers.
    assert_eq!(env.json(&["status"])["state"], "ready");
}

#[test]
fn restart_keeps_every_record() {
    let env = Env::init();
    env.ok(&["checkin", "--battery", "55", "--sign", "numb=2"]);
    env.ok(&["checkin", "--battery", "20", "--visibility", "private"]);
    env.ok(&[
        "reflect",
        "--energy",
        "yes",
        "--safe",
        "unsure",
        "--aligned",
        "no",
    ]);
    env.ok(&["ledger", "add", "Groceries", "--domain", "household"]);
    env.ok(&["moment", "talk"]);
    env.ok(&["ledger", "done", "--label", "booked the dentist"]);
    let before = env.snapshot();
    env.ok(&["daemon", "stop"]);
    env.ok(&["daemon", "start"]);
    assert_eq!(env.snapshot(), before);
    // And by autostart, too.
    env.ok(&["daemon", "stop"]);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn checkin_from_flags() {
    let env = Env::init();
    let c = env.json(&[
        "checkin",
        "--battery",
        "35",
        "--sign",
        "dread=3",
        "--sign",
        "warmth=1",
        "--body",
        "fatigue,hair-loss",
        "--basics",
        "sleep=partly,food=met",
        "--note",
        "long week",
        "--ask",
        "a quiet evening",
        "--visibility",
        "private",
        "--at",
        "2026-01-05T21:30",
    ]);
    assert_eq!(c["battery"], 35);
    assert_eq!(c["signs"], json!({"dread": 3, "warmth": 1}));
    assert_eq!(c["body"], json!(["fatigue", "hair-loss"]));
    assert_eq!(c["basics"], json!({"sleep": "partly", "food": "met"}));
    assert_eq!(c["note"], "long week");
    assert_eq!(c["ask"], "a quiet evening");
    assert_eq!(c["visibility"], "private");
    assert_eq!(c["date"], "2026-01-05");
    assert!(c["id"].is_string() && c["author"].is_string());
    assert!(c["at"].is_i64() && c["utc_offset_min"].is_i64());

    let human = env.ok(&["checkin", "--battery", "10", "--basics", "rest=no"]);
    assert!(human.contains("battery 10"), "{human}");
    assert!(human.contains("Basics first"), "{human}");
    // Shared is the default.
    assert_eq!(
        env.json(&["checkin", "--battery", "70"])["visibility"],
        "shared"
    );
}

#[test]
fn checkin_bad_input_changes_nothing() {
    let env = Env::init();
    env.ok(&["checkin", "--battery", "50"]);
    env.refuses_without_change(&[
        (&["checkin"], 2),
        (&["checkin", "--battery", "101"], 2),
        (&["checkin", "--battery", "-1"], 2),
        (&["checkin", "--battery", "40", "--sign", "dread=5"], 2),
        (&["checkin", "--battery", "40", "--sign", "grumpy=1"], 2),
        (&["checkin", "--battery", "40", "--sign", "dread"], 2),
        (&["checkin", "--battery", "40", "--body", "elbows"], 2),
        (&["checkin", "--battery", "40", "--basics", "sleep=lots"], 2),
        (
            &["checkin", "--battery", "40", "--visibility", "everyone"],
            2,
        ),
        (&["checkin", "--battery", "40", "--at", "last tuesday"], 2),
        (&["checkin", "--battery", "40", "--at", "2999-01-01"], 2),
    ]);
    let long = "x".repeat(4001);
    env.refuses_without_change(&[(&["checkin", "--battery", "40", "--note", &long], 3)]);
    let err = env.fails(&["checkin", "--battery", "40", "--sign", "grumpy=1"], 2);
    assert!(
        err.contains("dread, numb, irritation, warmth, relief"),
        "{err}"
    );
    let err = env.fails(&["checkin"], 2);
    assert!(err.contains("--battery"), "{err}");
}

#[test]
fn reflect_from_flags_and_bad_input() {
    let env = Env::init();
    let r = env.json(&[
        "reflect",
        "--energy",
        "yes",
        "--safe",
        "yes",
        "--aligned",
        "unsure",
        "--note",
        "hm",
    ]);
    assert_eq!(r["energy"], "yes");
    assert_eq!(r["safe"], "yes");
    assert_eq!(r["aligned"], "unsure");
    assert_eq!(r["visibility"], "private");
    assert_eq!(r["note"], "hm");
    let human = env.ok(&[
        "reflect",
        "--energy",
        "yes",
        "--safe",
        "yes",
        "--aligned",
        "yes",
        "--visibility",
        "shared",
    ]);
    assert!(human.contains("depletion"), "{human}");
    env.refuses_without_change(&[
        (&["reflect", "--energy", "yes"], 2),
        (
            &[
                "reflect",
                "--energy",
                "maybe",
                "--safe",
                "yes",
                "--aligned",
                "yes",
            ],
            2,
        ),
        (
            &[
                "reflect",
                "--energy",
                "yes",
                "--safe",
                "yes",
                "--aligned",
                "yes",
                "--at",
                "soon",
            ],
            2,
        ),
    ]);
}

#[test]
fn moment_and_bad_input() {
    let env = Env::init();
    let m = env.json(&["moment", "laugh", "--note", "the cat", "--at", "2026-01-02"]);
    assert_eq!(m["kind"], "laugh");
    assert_eq!(m["note"], "the cat");
    assert_eq!(m["date"], "2026-01-02");
    assert!(m["started_by"].is_string());
    let human = env.ok(&["moment", "quiet", "--by", "me"]);
    assert!(human.contains("quiet time together"), "{human}");
    env.refuses_without_change(&[
        (&["moment"], 2),
        (&["moment", "hug"], 2),
        (&["moment", "laugh", "--by", "nobody-here"], 3),
        (&["moment", "laugh", "--by", "partner"], 3),
    ]);
}

fn ids_of(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn ledger_add_list_show_done_ack_retire() {
    let env = Env::init();
    let item = env.json(&[
        "ledger",
        "add",
        "School forms",
        "--domain",
        "parenting",
        "--labour",
        "cognitive",
        "--invisible",
        "--cadence",
        "weekly",
        "--minutes",
        "30",
        "--weight",
        "3",
        "--good-enough",
        "signed by Friday",
        "--stage",
        "do=me",
    ]);
    assert_eq!(item["title"], "School forms");
    assert_eq!(item["domain"], "parenting");
    assert_eq!(item["labour"], "cognitive");
    assert_eq!(item["invisible"], true);
    assert_eq!(item["cadence"], "weekly");
    assert_eq!(item["minutes_per_week"], 30);
    assert_eq!(item["weight"], 3);
    assert_eq!(item["good_enough"], "signed by Friday");
    assert_eq!(item["status"], "active");
    for stage in ["notice", "plan", "do", "follow-up"] {
        assert!(item["owners"][stage].is_string(), "{stage}");
    }
    let id = item["id"].as_str().unwrap().to_string();
    let prefix = &id[..6];

    let list = env.json(&["ledger", "list"]);
    assert_eq!(ids_of(&list), vec![id.clone()]);
    let human = env.ok(&["ledger", "list"]);
    assert!(human.contains("School forms (invisible)"), "{human}");
    assert!(human.contains(&id[..8]), "{human}");

    let done = env.json(&[
        "ledger",
        "done",
        prefix,
        "--minutes",
        "20",
        "--note",
        "all signed",
    ]);
    assert_eq!(done["item"], id.as_str());
    assert_eq!(done["minutes"], 20);
    let unlisted = env.json(&["ledger", "done", "--label", "remembered the birthday"]);
    assert_eq!(unlisted["label"], "remembered the birthday");
    assert!(unlisted.get("item").is_none());

    let ack = env.json(&[
        "ledger", "ack", prefix, "--kind", "thanks", "--to", "me", "--note", "ty",
    ]);
    assert_eq!(ack["kind"], "thanks");
    assert_eq!(ack["target"]["kind"], "item");
    assert_eq!(ack["target"]["id"], id.as_str());
    let done_id = done["id"].as_str().unwrap();
    let ack2 = env.json(&["ledger", "ack", &done_id[..8], "--on", "done", "--to", "me"]);
    assert_eq!(ack2["kind"], "seen");
    assert_eq!(ack2["target"]["kind"], "done");

    let shown = env.json(&["ledger", "show", prefix]);
    assert_eq!(shown["item"]["id"], id.as_str());
    assert_eq!(ids_of(&shown["done"]), vec![done_id.to_string()]);
    assert_eq!(shown["acks"].as_array().unwrap().len(), 1);
    assert_eq!(shown["handoffs"], json!([]));
    let human = env.ok(&["ledger", "show", prefix]);
    assert!(human.contains("signed by Friday"), "{human}");
    assert!(human.contains("all signed"), "{human}");

    let retired = env.json(&["ledger", "retire", prefix]);
    assert_eq!(retired["status"], "retired");
    assert_eq!(env.json(&["ledger", "list"]), json!([]));
    assert_eq!(
        ids_of(&env.json(&["ledger", "list", "--all"])),
        vec![id.clone()]
    );
    assert!(env.ok(&["ledger", "list"]).contains("ledger is empty"));
}

#[test]
fn ledger_bad_input_changes_nothing() {
    let env = Env::init();
    let item = env.json(&["ledger", "add", "Bins", "--domain", "household"]);
    let id = item["id"].as_str().unwrap().to_string();
    env.refuses_without_change(&[
        (&["ledger", "add", "Bins"], 2),
        (&["ledger", "add", "Bins", "--domain", "garden"], 2),
        (
            &[
                "ledger",
                "add",
                "Bins",
                "--domain",
                "household",
                "--weight",
                "4",
            ],
            2,
        ),
        (
            &[
                "ledger",
                "add",
                "Bins",
                "--domain",
                "household",
                "--stage",
                "sleep=me",
            ],
            2,
        ),
        (
            &[
                "ledger",
                "add",
                "Bins",
                "--domain",
                "household",
                "--owner",
                "ghost",
            ],
            3,
        ),
        (&["ledger", "add", "  ", "--domain", "household"], 3),
        (&["ledger", "show", "zzzz"], 3),
        (&["ledger", "done"], 2),
        (&["ledger", "done", "zzzz"], 3),
        (&["ledger", "ack", "zzzz", "--to", "me"], 3),
        (&["ledger", "ack", &id, "--on", "everything"], 2),
        (&["ledger", "handoff", &id], 2),
        (&["ledger", "handoff", &id, "--stage", "do"], 3),
        (
            &["ledger", "handoff", &id, "--stage", "do", "--to", "me"],
            3,
        ),
        (&["ledger", "accept", "zzzz"], 3),
        (&["ledger", "decline", "zzzz"], 3),
        (&["ledger", "retire", "zzzz"], 3),
    ]);
}

#[test]
fn an_ambiguous_prefix_is_refused() {
    let env = Env::init();
    // Seventeen ids cannot all start with different hex digits.
    let mut firsts = std::collections::HashMap::new();
    let mut shared = None;
    for i in 0..17 {
        let item = env.json(&["ledger", "add", &format!("Chore {i}"), "--domain", "other"]);
        let first = item["id"].as_str().unwrap()[..1].to_string();
        if firsts.insert(first.clone(), i).is_some() {
            shared = Some(first);
            break;
        }
    }
    let shared = shared.unwrap();
    let before = env.snapshot();
    let err = env.fails(&["ledger", "retire", &shared], 3);
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(env.snapshot(), before);
}

/// Pairs a real partner, Sam, into `env`'s household with `hearth pair join`: only a
/// paired partner counts as one (a person record alone is not trusted).
fn pair_partner(env: &Env) -> (Env, String) {
    use hearth_api::client::Client;
    use hearth_api::NetCall;
    let sam = Env::new();
    sam.ok(&["init", "--name", "Sam", "--device-name", "phone"]);
    let socket = hearth_api::paths::Paths::in_dir(env.path()).socket;
    let invite = Client::connect(&socket)
        .unwrap()
        .call(NetCall::PairInvite {
            timeout_secs: Some(60),
            own_device: false,
        })
        .unwrap();
    let code = invite["code"].as_str().unwrap().to_string();
    let addr = invite["addresses"][0].as_str().unwrap().to_string();
    let waiter =
        std::thread::spawn(move || Client::connect(&socket).unwrap().call(NetCall::PairWait));
    sam.ok(&["pair", "join", &code, "--addr", &addr]);
    waiter.join().unwrap().unwrap();
    let id = sam.json(&["status"])["person"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    (sam, id)
}

/// Runs `check` until it holds, for at most 30 seconds.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A paired partner, Sam, and handoffs from Sam to Robin, brought in by an import on
/// Sam's own device (an import takes only its person's own records) and synced to Robin.
fn with_partner(env: &Env) -> (String, String, Env) {
    let status = env.json(&["status"]);
    let me = status["person"]["id"].as_str().unwrap().to_string();
    let item = env.json(&["ledger", "add", "Laundry", "--domain", "household"]);
    let item_id = item["id"].as_str().unwrap().to_string();
    let (sam, partner) = pair_partner(env);
    eventually("the item reaches Sam", || {
        sam.json(&["ledger", "list"]).to_string().contains(&item_id)
    });
    let handoff = |n: u32, stage: &str| {
        json!({
            "id": format!("{n:08x}-1111-4000-8000-000000000000"),
            "item": item_id, "stage": stage, "from": partner, "to": me,
            "at": 1_767_225_600_000_i64 + i64::from(n), "date": "2026-01-01", "utc_offset_min": 0,
            "state": "open"
        })
    };
    let export = json!({
        "format": "hearth-export", "version": 1,
        "records": {
            "handoffs": [handoff(0xa1, "do"), handoff(0xb2, "plan"), handoff(0xc3, "notice")]
        }
    });
    let file = sam.write_file("partner.json", &export.to_string());
    // Robin cannot import offers written as Sam; Sam can.
    let refused = env.fails(&["import", s(&file)], 3);
    assert!(refused.contains("written by someone else"), "{refused}");
    assert_eq!(sam.json(&["import", s(&file)])["imported"], 3);
    eventually("Sam's offers reach Robin", || {
        env.snapshot()["handoffs"]
            .as_array()
            .is_some_and(|h| h.len() == 3)
    });
    (item_id, partner, sam)
}

#[test]
fn handoffs_accept_decline_counter_withdraw() {
    let env = Env::init();
    let (item_id, partner, _sam) = with_partner(&env);

    let accepted = env.json(&["ledger", "accept", "000000a1"]);
    assert_eq!(accepted["state"], "accepted");
    let me = env.json(&["status"])["person"]["id"].clone();
    assert_eq!(
        env.json(&["ledger", "show", &item_id])["item"]["owners"]["do"],
        me
    );

    assert_eq!(
        env.json(&["ledger", "decline", "000000b2"])["state"],
        "declined"
    );
    let countered = env.json(&["ledger", "counter", "000000c3", "I notice, you plan"]);
    assert_eq!(countered["state"], "countered");
    assert_eq!(countered["counter"], "I notice, you plan");

    // Robin offers a stage to Sam, then thinks better of it.
    let offered = env.json(&[
        "ledger",
        "handoff",
        &item_id,
        "--stage",
        "follow-up",
        "--note",
        "could you?",
    ]);
    assert_eq!(offered["state"], "open");
    assert_eq!(offered["to"], partner.as_str());
    let offered_id = offered["id"].as_str().unwrap().to_string();
    let human = env.ok(&["ledger", "show", &item_id[..8]]);
    assert!(human.contains("follow-up from you to Sam: open"), "{human}");
    env.refuses_without_change(&[
        // Only Sam may accept, and an answered handoff stays answered.
        (&["ledger", "accept", &offered_id], 3),
        (&["ledger", "accept", "000000a1"], 3),
        (&["ledger", "withdraw", "000000b2"], 3),
    ]);
    assert_eq!(
        env.json(&["ledger", "withdraw", &offered_id])["state"],
        "withdrawn"
    );
    // Acknowledging goes to the partner by default now that there is one.
    let ack = env.json(&["ledger", "ack", &item_id]);
    assert_eq!(ack["to"], partner.as_str());
}

#[test]
fn log_shows_times_and_filters() {
    let env = Env::init();
    env.ok(&["checkin", "--battery", "30", "--at", "2026-01-03T08:15"]);
    env.ok(&["moment", "laugh", "--at", "2026-01-04T19:05"]);
    env.ok(&["moment", "touch", "--at", "2026-01-06T07:00"]);
    env.ok(&[
        "reflect",
        "--energy",
        "yes",
        "--safe",
        "yes",
        "--aligned",
        "yes",
        "--at",
        "2026-01-05",
    ]);

    let all = env.json(&["log"]);
    let kinds: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["checkins", "moments", "reflections", "moments"]);
    for e in all.as_array().unwrap() {
        for key in [
            "kind",
            "id",
            "at",
            "date",
            "utc_offset_min",
            "person",
            "summary",
            "record",
        ] {
            assert!(e.get(key).is_some(), "log entry without {key}: {e}");
        }
    }
    let human = env.ok(&["log"]);
    assert!(human.contains("2026-01-03 08:15"), "{human}");
    assert!(human.contains("2026-01-04 19:05"), "{human}");
    assert!(human.contains("you"), "{human}");

    let moments = env.json(&["log", "--kind", "moment"]);
    assert_eq!(moments.as_array().unwrap().len(), 2);
    let range = env.json(&["log", "--from", "2026-01-04", "--to", "2026-01-05"]);
    assert_eq!(range.as_array().unwrap().len(), 2);
    let last = env.json(&["log", "--limit", "1"]);
    assert_eq!(last[0]["record"]["kind"], "touch");
    assert_eq!(
        env.json(&["log", "--person", "me"])
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert!(env.ok(&["log", "--from", "2030-01-01"]).contains("Nothing"));

    env.fails(&["log", "--kind", "diary"], 2);
    env.fails(&["log", "--from", "2026-13-01"], 2);
    env.fails(&["log", "--from", "2026-01-05", "--to", "2026-01-01"], 3);
    env.fails(&["log", "--person", "ghost"], 3);
}

#[test]
fn a_restart_over_unmerged_chunks_logs_no_error() {
    let env = Env::init();
    for _ in 0..3 {
        env.ok(&["moment", "laugh"]);
    }
    // Each write left a chunk; the next start parses every one of them on its own.
    env.ok(&["daemon", "stop"]);
    // `log` waits until the documents have loaded (`status` alone may be answered from
    // the read cache before).
    assert!(env.ok(&["log"]).contains("laugh"));
    env.ok(&["daemon", "stop"]);
    let log = std::fs::read_to_string(env.path().join("hearthd.log")).unwrap();
    assert!(log.matches("state=\"ready\"").count() >= 1, "{log}");
    assert!(!log.contains(" ERROR "), "{log}");
}

#[test]
fn a_ledger_item_is_logged_at_the_adders_local_time() {
    let env = Env::init();
    // 01:30 at +05:00 is the evening before in UTC: the log keeps the adder's day.
    env.ok(&[
        "ledger",
        "add",
        "Bins",
        "--domain",
        "household",
        "--at",
        "2026-01-02T01:30+05:00",
    ]);
    let logged = env.json(&["log", "--kind", "ledger"]);
    assert_eq!(logged[0]["date"], "2026-01-02", "{logged}");
    assert_eq!(logged[0]["utc_offset_min"], 300, "{logged}");
    let human = env.ok(&["log", "--kind", "ledger"]);
    assert!(human.contains("2026-01-02 01:30"), "{human}");
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let env = Env::init();
    for i in 0..5 {
        env.ok(&["moment", "glance", "--note", &format!("n{i}")]);
    }
    for args in [&["log"][..], &["--json", "log"][..], &["man"][..]] {
        let mut child = env
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before hearth writes: every write now fails with EPIPE.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn export_json_round_trips_and_csv_has_one_file_per_kind() {
    let env = Env::init();
    env.ok(&[
        "checkin",
        "--battery",
        "40",
        "--sign",
        "relief=2",
        "--note",
        "tired, \"very\"",
    ]);
    env.ok(&["ledger", "add", "Bins", "--domain", "household"]);
    env.ok(&["moment", "talk"]);

    let export = env.json(&["export"]);
    assert_eq!(export["format"], "hearth-export");
    assert_eq!(export["version"], 1);
    for kind in [
        "people",
        "devices",
        "checkins",
        "reflections",
        "ledger",
        "done",
        "acks",
        "handoffs",
        "moments",
    ] {
        assert!(export["records"][kind].is_array(), "{kind}");
    }
    let file = env.path().join("out.json");
    let wrote = env.json(&["export", "--out", s(&file)]);
    assert_eq!(wrote["files"], json!([s(&file)]));
    let from_file: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(from_file, export);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Importing into the same device adds nothing.
    assert_eq!(env.json(&["import", s(&file)])["imported"], 0);
    assert!(env.ok(&["import", s(&file)]).contains("Nothing new"));

    // Into another person's device, nothing of Robin's comes in: an import takes only
    // the importing person's own records, so the file is refused whole, naming a record
    // by kind and id and never by its contents.
    let other = Env::init();
    let before = other.snapshot();
    let refused = other.fails(&["import", s(&file)], 3);
    let first_checkin = export["records"]["checkins"][0]["id"].as_str().unwrap();
    assert!(
        refused.contains(&format!("checkins {first_checkin}")),
        "{refused}"
    );
    assert!(refused.contains("nothing was imported"), "{refused}");
    assert!(!refused.contains("tired"), "{refused}");
    assert_eq!(other.snapshot(), before);

    let dir = env.path().join("csv");
    let wrote = env.json(&["export", "--format", "csv", "--out", s(&dir)]);
    assert_eq!(wrote["format"], "csv");
    let checkins = std::fs::read_to_string(dir.join("checkins.csv")).unwrap();
    let header = checkins.lines().next().unwrap();
    assert!(header.starts_with("id,"), "{header}");
    assert!(header.contains("signs.relief"), "{header}");
    assert!(checkins.contains("\"tired, \"\"very\"\"\""), "{checkins}");
    assert!(dir.join("moments.csv").exists() && dir.join("ledger.csv").exists());
    env.fails(&["export", "--format", "csv"], 2);
    env.fails(&["export", "--format", "xml"], 2);
}

#[test]
fn a_malformed_import_changes_nothing() {
    let env = Env::init();
    env.ok(&["moment", "laugh"]);
    let me = env.json(&["status"])["person"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let not_json = env.write_file("a.json", "{ nope");
    let not_export = env.write_file("b.json", "{\"hello\": 1}");
    let future = env.write_file(
        "c.json",
        "{\"format\":\"hearth-export\",\"version\":99,\"records\":{}}",
    );
    // A valid first record and a broken second one: all or nothing.
    let half = env.write_file(
        "d.json",
        &json!({"format": "hearth-export", "version": 1, "records": {"moments": [
            {"id": "11111111-1111-4111-8111-111111111111", "kind": "laugh", "started_by": me,
             "at": 0, "date": "1970-01-01", "utc_offset_min": 0},
            {"id": "22222222-2222-4222-8222-222222222222", "kind": "hug", "started_by": me,
             "at": 0, "date": "1970-01-01", "utc_offset_min": 0}
        ]}})
        .to_string(),
    );
    let missing = env.path().join("missing.json");
    env.refuses_without_change(&[
        (&["import", s(&not_json)], 3),
        (&["import", s(&not_export)], 3),
        (&["import", s(&future)], 3),
        (&["import", s(&half)], 3),
        (&["import", s(&missing)], 3),
        (&["import"], 2),
    ]);
    let err = env.fails(&["import", s(&not_json)], 3);
    assert!(
        err.contains("not valid JSON") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn a_passphrase_locks_the_identity_until_given() {
    let env = Env::new();
    let pass = env.write_file("pass", "correct horse battery\n");
    let wrong = env.write_file("wrong", "incorrect\n");
    let init = env.json(&[
        "--passphrase-file",
        s(&pass),
        "init",
        "--name",
        "Robin",
        "--passphrase",
    ]);
    assert_eq!(init["protected"], true);
    env.ok(&["moment", "laugh"]);
    env.ok(&["daemon", "stop"]);

    // Restarted without the passphrase, the daemon waits locked.
    let started = env.json(&["daemon", "start"]);
    assert_eq!(started["state"], "locked");
    let err = env.fails(&["moment", "talk"], 5);
    assert!(err.contains("--passphrase-file"), "{err}");
    env.fails(&["--passphrase-file", s(&wrong), "moment", "talk"], 5);
    env.fails(
        &[
            "--passphrase-file",
            s(&env.path().join("none")),
            "moment",
            "talk",
        ],
        5,
    );
    assert_eq!(env.json(&["status"])["state"], "locked");

    // The right passphrase unlocks it and the command carries on.
    let m = env.json(&["--passphrase-file", s(&pass), "moment", "talk"]);
    assert_eq!(m["kind"], "talk");
    assert_eq!(env.json(&["status"])["state"], "ready");
    assert_eq!(env.snapshot()["moments"].as_array().unwrap().len(), 2);

    // Started with the passphrase file, it comes up ready.
    env.ok(&["daemon", "stop"]);
    let started = env.json(&["--passphrase-file", s(&pass), "daemon", "start"]);
    assert_eq!(started["state"], "ready");
    env.fails(&["init", "--name", "Robin", "--passphrase"], 2);
}

#[test]
fn completions_man_and_demo() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish"] {
        let text = env.ok(&["completions", shell]);
        assert!(text.contains("hearth"), "{shell}");
        assert!(text.contains("checkin"), "{shell}");
    }
    env.fails(&["completions", "tcsh"], 2);
    let man = env.ok(&["man"]);
    assert!(man.contains(".TH hearth"), "{}", &man[..200.min(man.len())]);
    let dir = env.path().join("man");
    env.ok(&["man", "--out", s(&dir)]);
    assert!(dir.join("hearth.1").exists());
    assert!(std::fs::read_dir(&dir).unwrap().count() > 5);
    let demo = env.ok(&["demo"]);
    assert!(demo.contains("demo: converged"), "{demo}");
    // None of these needed a daemon.
    assert!(!env.path().join("hearthd.sock").exists());
}

#[test]
fn insights_and_report_render_the_daemons_report() {
    let env = Env::init();
    env.ok(&["checkin", "--battery", "30", "--sign", "dread=2"]);
    env.ok(&["moment", "laugh"]);
    env.fails(&["insights", "--weeks", "0"], 2);
    env.fails(&["report"], 2);
    env.fails(&["report", "--markdown", "--html", "x.html"], 2);
    let out = env.run(&["--json", "insights", "--weeks", "4"]);
    if !out.status.success() {
        // A daemon without the insights call answers with a clear error, and the CLI
        // passes it on.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("error:") && stderr.contains("hint:"),
            "{stderr}"
        );
        return;
    }
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "schema",
        "today",
        "people",
        "trends",
        "signals",
        "suggestions",
    ] {
        assert!(report.get(key).is_some(), "insights without {key}");
    }
    let human = env.ok(&["insights"]);
    assert!(human.contains("Robin"), "{human}");
    let md = env.ok(&["report", "--markdown"]);
    assert!(md.starts_with('#'), "{md}");
    let html = env.path().join("report.html");
    let wrote = env.json(&["report", "--html", s(&html)]);
    assert_eq!(wrote["files"], json!([s(&html)]));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<html"), "{}", &page[..200.min(page.len())]);
    assert!(
        !page.contains("<script"),
        "the report must be self-contained and inert"
    );
}

#[test]
fn commands_that_autostart_at_once_share_one_daemon() {
    let env = Env::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            env.cmd(&["--json", "status"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let pids: std::collections::HashSet<u64> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let status: Value = serde_json::from_slice(&out.stdout).unwrap();
            status["pid"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(pids.len(), 1, "more than one daemon answered: {pids:?}");
}

#[test]
fn concurrent_writers_survive_sigkill_after_the_last_ack() {
    const EACH: usize = 500;
    let env = Env::init();
    let pid = env.json(&["status"])["pid"].as_u64().unwrap();
    std::thread::scope(|scope| {
        for writer in ["a", "b"] {
            let env = &env;
            scope.spawn(move || {
                for i in 0..EACH {
                    let note = format!("{writer}{i}");
                    let out = env.run(&["moment", "glance", "--note", &note]);
                    assert!(
                        out.status.success(),
                        "write {note} failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            });
        }
    });
    // Every write above was acknowledged; none may be lost to a crash now.
    let pid_raw = i32::try_from(pid).unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid_raw).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    // The kill is asynchronous; the socket stops answering once the process is gone.
    let socket = env.path().join("hearthd.sock");
    while std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let started = env.json(&["daemon", "start"]);
    assert_ne!(started["pid"].as_u64(), Some(pid));
    let moments = env.snapshot()["moments"].as_array().unwrap().clone();
    assert_eq!(moments.len(), 2 * EACH);
    let notes: std::collections::HashSet<&str> = moments
        .iter()
        .map(|m| m["note"].as_str().unwrap())
        .collect();
    assert_eq!(notes.len(), 2 * EACH);
}

/// The small things: help that says which way a rating runs, every visibility named,
/// reflection questions in Hearth's words, a done entry named by its title, and a
/// device name that reads right on the partner's screen.
#[test]
fn small_things_read_right() {
    let env = Env::init();
    let help = env.ok(&["checkin", "--help"]);
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "warmth (warmth or curiosity is hard to reach: 4 means very hard)",
        "reveal-together",
        "--share-safety",
    ] {
        assert!(flat.contains(needle), "{needle}: {help}");
    }
    let help = env.ok(&["reflect", "--help"]);
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("If you had more energy, would you want to work on this together?"),
        "{help}"
    );
    assert!(!flat.contains("Would I want"), "{help}");

    let item = env.json(&["ledger", "add", "Bins", "--domain", "household"]);
    let done = env.ok(&["ledger", "done", item["id"].as_str().unwrap()]);
    assert!(done.contains("did “Bins”"), "{done}");

    let fresh = Env::new();
    fresh.ok(&["init", "--name", "Robin"]);
    let devices = fresh.json(&["devices", "list"]);
    assert_eq!(devices[0]["name"], "Robin's device", "{devices}");
}

/// The starter list adds only what was chosen, as invisible work.
#[test]
fn ledger_starter_adds_only_what_was_chosen() {
    let env = Env::init();
    let list = env.json(&["ledger", "starter"]);
    assert_eq!(list.as_array().unwrap().len(), 5);
    assert!(env.json(&["ledger", "list"]).as_array().unwrap().is_empty());
    let added = env.json(&["ledger", "starter", "--add", "peace,dates"]);
    assert_eq!(added.as_array().unwrap().len(), 2);
    assert_eq!(added[0]["title"], "Keeping the peace at home");
    assert_eq!(added[0]["invisible"], true);
    assert_eq!(env.json(&["ledger", "list"]).as_array().unwrap().len(), 2);
    env.refuses_without_change(&[(&["ledger", "starter", "--add", "everything"], 2)]);
}

/// Renegotiation completes: edit an item (its agreement starts again), pause it for a
/// while (no load), and bring it back.
#[test]
fn ledger_edit_pause_and_resume() {
    let env = Env::init();
    let item = env.json(&["ledger", "add", "Bins", "--domain", "household"]);
    let id = item["id"].as_str().unwrap().to_string();
    let edited = env.json(&[
        "ledger",
        "edit",
        &id[..8],
        "--title",
        "Bins and recycling",
        "--good-enough",
        "out by 8, rinsing optional",
        "--weight",
        "1",
        "--cadence",
        "weekly",
    ]);
    assert_eq!(edited["title"], "Bins and recycling");
    assert_eq!(edited["good_enough"], "out by 8, rinsing optional");
    assert_eq!(edited["weight"], 1);
    assert_eq!(edited["cadence"], "weekly");
    let paused = env.json(&["ledger", "pause", &id[..8], "--until", "2026-12-31"]);
    assert_eq!(paused["status"], "paused");
    assert_eq!(paused["paused_until"], "2026-12-31");
    // Once its day has come, "for you" brings it up again.
    env.json(&["ledger", "pause", &id[..8], "--until", "2020-01-01"]);
    let view = env.json(&["today"]);
    assert_eq!(
        view["paused_due"][0]["title"], "Bins and recycling",
        "{view}"
    );
    assert!(env.ok(&["today"]).contains("was paused until 2020-01-01"));
    let human = env.ok(&["ledger", "resume", &id[..8]]);
    assert!(human.contains("is active again"), "{human}");
    assert_eq!(
        env.json(&["ledger", "show", &id])["item"]["status"],
        "active"
    );
    env.refuses_without_change(&[
        (&["ledger", "edit", &id, "--weight", "5"], 2),
        (&["ledger", "pause", "zzzz"], 3),
    ]);
}

/// The weekly walk, driven by a script through `--json`, and in full without a terminal.
#[test]
fn together_walks_the_order_of_recovery() {
    let env = Env::init();
    env.ok(&[
        "checkin",
        "--battery",
        "30",
        "--basics",
        "sleep=partly,safety=no",
    ]);
    env.ok(&["ledger", "add", "School forms", "--domain", "parenting"]);
    let walk = env.json(&["together"]);
    let keys: Vec<&str> = walk["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["basics", "moment", "ledger", "good-enough", "support"]
    );
    assert_eq!(walk["minutes"], 15);
    assert!(walk["steps"][0]["text"]
        .as_str()
        .unwrap()
        .contains("sleep fell short"));
    assert!(walk["steps"][1]["prompt"].is_string());
    assert!(walk["steps"][2]["text"]
        .as_str()
        .unwrap()
        .contains("School forms"));
    assert!(walk["closing"]
        .as_str()
        .unwrap()
        .contains("reveal-together"));
    let human = env.ok(&["together"]);
    let lower = human.to_lowercase();
    for word in ["streak", "%", "safe"] {
        assert!(!lower.contains(word), "{word}: {human}");
    }
    assert!(human.contains("5. Support from outside"), "{human}");
}

/// `together_day` in config.toml: `status` mentions the walk on that day only.
#[test]
fn status_mentions_the_together_day_on_that_day() {
    use chrono::Datelike;
    let env = Env::init();
    let today = chrono::Local::now().weekday();
    env.write_file("config.toml", &format!("together_day = \"{today}\"\n"));
    let shown = env.ok(&["status"]);
    assert!(shown.contains("hearth together"), "{shown}");
    env.write_file(
        "config.toml",
        &format!("together_day = \"{}\"\n", today.succ()),
    );
    assert!(!env.ok(&["status"]).contains("hearth together"));
    env.write_file("config.toml", "together_day = \"someday\"\n");
    let err = env.fails(&["status"], 3);
    assert!(err.contains("weekday"), "{err}");
}

/// `together_day`: on that day the daemon shows one desktop notification, through the
/// notifier the machine has (here a script standing in for `notify-send`).
#[test]
fn the_together_day_shows_a_desktop_notification() {
    use chrono::{Datelike, Timelike};
    let env = Env::init();
    // A time zone in which it is mid-afternoon now, so the reminder is due whatever
    // the hour the test runs at (it is never shown in the night).
    let utc = chrono::Utc::now();
    let mut offset = 15 - utc.hour() as i64;
    if offset > 14 {
        offset -= 24;
    }
    if offset < -12 {
        offset += 24;
    }
    let local = utc + chrono::Duration::hours(offset);
    // POSIX TZ counts west of Greenwich as positive.
    let tz = format!("HRT{:+}", -offset);
    env.write_file(
        "config.toml",
        &format!("together_day = \"{}\"\n", local.weekday()),
    );
    let shown = env.path().join("shown.txt");
    let notifier = env.write_file(
        "notifier.sh",
        &format!(
            "#!/bin/sh\nprintf '%s|%s\\n' \"$1\" \"$2\" >> '{}'\n",
            s(&shown)
        ),
    );
    std::fs::set_permissions(
        &notifier,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // A daemon started with the notifier and the time zone.
    env.ok(&["daemon", "stop"]);
    let out = env
        .cmd(&["status"])
        .env("TZ", &tz)
        .env("HEARTH_NOTIFIER", &notifier)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&shown).unwrap_or_default();
        // The daemon notes the day once the notifier has returned.
        if text.lines().count() >= 1 && env.path().join("reminded").exists() {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no notification was shown"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(text.starts_with("Hearth|"), "{text}");
    assert!(text.contains("hearth together"), "{text}");
    let lower = text.to_lowercase();
    for word in ["streak", "%", "robin", "missed"] {
        assert!(!lower.contains(word), "{word}: {text}");
    }
    // Remembered for the day, so a restart does not show it again.
    assert_eq!(
        std::fs::read_to_string(env.path().join("reminded"))
            .unwrap()
            .trim(),
        local.date_naive().to_string()
    );
}

/// Runs `hearth` on a pseudo-terminal (through util-linux `script`), typing `keys`;
/// returns everything the terminal showed. `None` when `script` is not installed.
fn on_terminal(env: &Env, args: &[&str], keys: &str) -> Option<String> {
    use std::io::Write;
    let which = Command::new("script").arg("--version").output().ok()?;
    if !which.status.success() {
        return None;
    }
    let mut line = format!("{HEARTH} --data-dir '{}'", s(env.path()));
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("HEARTH_LISTEN", "127.0.0.1:0")
        .env("HEARTH_DISCOVERY", "off")
        .env_remove("HEARTH_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Give the prompts a moment to appear, then type, one key at a time.
    for key in keys.chars() {
        std::thread::sleep(std::time::Duration::from_millis(150));
        let mut buf = [0u8; 4];
        // A closed pipe means the command has ended; what it showed tells why.
        if stdin
            .write_all(key.encode_utf8(&mut buf).as_bytes())
            .and_then(|()| stdin.flush())
            .is_err()
        {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// On a terminal, a shared note is shown before it is saved, with the reminder that the
/// partner will read it, and the author can keep the whole check-in private instead.
#[test]
fn a_shared_note_is_shown_before_it_is_saved_on_a_terminal() {
    let env = Env::init();
    let Some(screen) = on_terminal(
        &env,
        &[
            "checkin",
            "--battery",
            "15",
            "--note",
            "scared after the argument",
        ],
        "3\r",
    ) else {
        eprintln!("skipped: util-linux script is not installed");
        return;
    };
    assert!(screen.contains("Your partner will read this"), "{screen}");
    assert!(screen.contains("scared after the argument"), "{screen}");
    let log = env.json(&["log", "--kind", "checkin"]);
    assert_eq!(log[0]["record"]["visibility"], "private", "{screen}");
}

/// On a terminal, the check-in asks once whether to share the answers on feeling safe
/// and on wishing for relief; keeping them is the default.
#[test]
fn the_terminal_asks_once_whether_to_share_safety_answers() {
    let env = Env::init();
    // battery; four signs; body; sleep, food, rest; note; ask; visibility; then the
    // question about safety: the default, keep them.
    let keys = "15\r\r\r\r\r\r\r\r\r\r\r\r\r";
    let Some(screen) = on_terminal(
        &env,
        &["checkin", "--basics", "safety=no", "--sign", "relief=3"],
        keys,
    ) else {
        eprintln!("skipped: util-linux script is not installed");
        return;
    };
    // Asked once: the question, then the line that folds it away with the answer.
    assert_eq!(
        screen.matches("Share them this time?").count(),
        2,
        "{screen}"
    );
    assert!(
        screen.contains("Feeling safe comes before anything else"),
        "{screen}"
    );
    let log = env.json(&["log", "--kind", "checkin"]);
    let record = &log[0]["record"];
    assert_eq!(record["visibility"], "shared", "{screen}");
    assert_eq!(
        record["kept_to_self"],
        json!(["safety", "relief"]),
        "{screen}"
    );
}

/// The weekly walk on a terminal: one step at a time, Enter to move on, nothing saved.
#[test]
fn together_on_a_terminal_goes_one_step_at_a_time() {
    let env = Env::init();
    let before = env.snapshot();
    let Some(screen) = on_terminal(&env, &["together"], "\r\r\r\r") else {
        eprintln!("skipped: util-linux script is not installed");
        return;
    };
    assert_eq!(
        screen.matches("Enter when you are ready").count(),
        4,
        "{screen}"
    );
    for title in [
        "1. The basics",
        "2. One small moment",
        "5. Support from outside",
    ] {
        assert!(screen.contains(title), "{title}: {screen}");
    }
    assert!(screen.contains("reveal-together"), "{screen}");
    assert_eq!(env.snapshot(), before, "the walk records nothing");
}

/// On a terminal, `status` starts with what waits for you; through a pipe it does not.
#[test]
fn status_on_a_terminal_starts_with_for_you() {
    let env = Env::init();
    let Some(screen) = on_terminal(&env, &["status"], "") else {
        eprintln!("skipped: util-linux script is not installed");
        return;
    };
    assert!(screen.trim_start().contains("For you"), "{screen}");
    assert!(
        screen.contains("No check-in from you today yet"),
        "{screen}"
    );
    assert!(!env.ok(&["status"]).contains("For you"));
}
