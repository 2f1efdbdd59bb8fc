//! `olive reco eval` as a user runs it: a table for each protocol, splits exported and another
//! implementation's lists scored; malformed datasets and lists named, never a panic.

use crate::helpers::BIN;
use std::fmt::Write as _;
use std::process::Command;

/// Two tastes of 60 users each over 40 items, with timestamps.
fn dataset() -> String {
    let mut text = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    for u in 0..120 {
        let base = if u < 60 { 0 } else { 20 };
        for j in 0..12 {
            writeln!(text, "u{u}\ti{}\t5\t{}", base + (u * 7 + j * 3) % 20, 1000 + j * 10 + u).unwrap();
        }
    }
    text
}

fn eval(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).arg("reco").arg("eval").args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn eval_prints_both_protocols_and_scores_other_lists() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.inter");
    std::fs::write(&file, dataset()).unwrap();
    let export = dir.path().join("splits");
    let (ok, out) = eval(&["--dataset", file.to_str().unwrap(), "--quick", "--export", export.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("120 users, 40 items, 1440 interactions"), "{out}");
    for model in ["| popularity |", "| olive ALS (k=16) |", "| olive item-item", "| olive blend ("] {
        assert_eq!(out.matches(model).count(), 2, "{model} once per protocol: {out}");
    }
    // The blend finds each user's own taste: NDCG well above popularity's on the random split.
    let ndcg = |model: &str| -> f64 {
        let line = out.lines().find(|l| l.starts_with(model)).unwrap();
        line.split('|').nth(4).unwrap().trim().parse().unwrap()
    };
    assert!(ndcg("| olive blend") > ndcg("| popularity |") + 0.1, "{out}");

    // Lists from elsewhere: every case gets the same (poor) list; a line may be malformed.
    let cases = std::fs::read_to_string(export.join("random-split/cases.tsv")).unwrap();
    let mut lists = String::new();
    for line in cases.lines() {
        let case = line.split('\t').next().unwrap();
        writeln!(lists, "{case}\t39,38,37,999999").unwrap();
    }
    let compare = || {
        eval(&[
            "--dataset",
            file.to_str().unwrap(),
            "--quick",
            "--export",
            export.to_str().unwrap(),
            "--compare",
            "other",
        ])
    };
    std::fs::write(export.join("random-split/other.tsv"), &lists).unwrap();
    std::fs::write(export.join("held-out-users/other.tsv"), "").unwrap();
    let (ok, out) = compare();
    assert!(ok, "{out}");
    assert_eq!(out.matches("| other |").count(), 2, "{out}");

    std::fs::write(export.join("random-split/other.tsv"), "0\tnot-a-number\n").unwrap();
    let (ok, out) = compare();
    assert!(!ok && out.contains("item \"not-a-number\""), "{out}");
    std::fs::write(export.join("random-split/other.tsv"), "99999999\t1\n").unwrap();
    let (ok, out) = compare();
    assert!(!ok && out.contains("out of range"), "{out}");
}

#[test]
fn malformed_datasets_are_named_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 5] = [
        ("short.inter", b"1\t2\t3\t4\n5\t6\n", "line 2"),
        ("time.inter", b"1\t2\t3\tlater\n", "line 1"),
        ("empty.inter", b"", "no interactions"),
        ("binary.inter", &[0xff, 0xfe, 0x00, 0x01], "valid UTF-8"),
        ("nocolumns.csv", b"a,b,c\n1,2,3\n", "user_id, order_number"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let format = if name.ends_with(".csv") { "instacart" } else { "movielens" };
        let (ok, out) = eval(&["--dataset", path.to_str().unwrap(), "--format", format, "--quick"]);
        assert!(!ok, "{name}: {out}");
        assert!(out.contains(expected) && !out.contains("panicked"), "{name}: {out}");
    }
    let (ok, out) = eval(&["--dataset", "/nonexistent/file"]);
    assert!(!ok && out.contains("/nonexistent/file"), "{out}");
}
