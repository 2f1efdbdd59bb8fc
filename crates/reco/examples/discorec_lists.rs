//! The `discorec` crate's implicit ALS on a split `olive reco eval --export DIR` wrote: trains on
//! DIR/<protocol>/train.tsv and writes its top-k lists to DIR/<protocol>/discorec.tsv for olive to
//! score. discorec cannot fold in a user it was not trained on, so held-out users' input events are
//! added to its training set (which gives it a little more than the protocol allows).
//!
//! `cargo run --release -p olive-reco --example discorec_lists -- DIR/<protocol> [factors] [iterations] [regularization] [alpha]`

use std::collections::HashSet;
use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Field `n` of a tab-separated line, parsed, or an error naming the file, line and field.
fn field<T: FromStr>(fields: &[&str], n: usize, file: &str, line: usize) -> Result<T> {
    let text = fields.get(n).ok_or_else(|| format!("{file} line {line}: no field {n}"))?;
    text.parse().map_err(|_| format!("{file} line {line}: field {n} {text:?} is not a number").into())
}

/// Optional command-line argument `n`, parsed.
fn arg<T: FromStr>(args: &[String], n: usize, what: &str) -> Result<Option<T>> {
    args.get(n).map(|a| a.parse().map_err(|_| format!("{what} {a:?} is not a number").into())).transpose()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(
        args.get(1).ok_or("usage: discorec_lists DIR/<protocol> [factors] [iterations] [regularization] [alpha]")?,
    );
    let factors: u32 = arg(&args, 2, "factors")?.unwrap_or(64);
    let iterations: u32 = arg(&args, 3, "iterations")?.unwrap_or(15);
    let regularization: Option<f32> = arg(&args, 4, "regularization")?;
    let alpha: Option<f32> = arg(&args, 5, "alpha")?;
    let read =
        |name: &str| std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()));

    let mut data: Vec<(i64, u32, f32)> = Vec::new();
    for (n, line) in read("train.tsv")?.lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        data.push((
            field(&f, 0, "train.tsv", n + 1)?,
            field(&f, 1, "train.tsv", n + 1)?,
            field(&f, 2, "train.tsv", n + 1)?,
        ));
    }
    let mut cases: Vec<(usize, i64, Vec<u32>)> = Vec::new();
    for (n, line) in read("cases.tsv")?.lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        let history: Vec<&str> = f.get(2).map_or(Vec::new(), |h| h.split(',').filter(|s| !s.is_empty()).collect());
        let history = (0..history.len()).map(|k| field(&history, k, "cases.tsv", n + 1)).collect::<Result<_>>()?;
        cases.push((field(&f, 0, "cases.tsv", n + 1)?, field(&f, 1, "cases.tsv", n + 1)?, history));
    }
    // Held-out users join training as new users (ids below zero).
    for (case, user, history) in &cases {
        if *user < 0 {
            data.extend(history.iter().map(|&i| (-(*case as i64) - 1, i, 1.0)));
        }
    }
    let started = Instant::now();
    let mut builder = discorec::RecommenderBuilder::new();
    builder.factors(factors).iterations(iterations).seed(42);
    if let Some(r) = regularization {
        builder.regularization(r);
    }
    if let Some(a) = alpha {
        builder.alpha(a);
    }
    let model = builder.fit_implicit(&data);
    eprintln!("discorec ALS: trained in {:.2} s", started.elapsed().as_secs_f64());

    let mut out = String::new();
    for (case, user, history) in &cases {
        let id = if *user < 0 { -(*case as i64) - 1 } else { *user };
        let seen: HashSet<u32> = history.iter().copied().collect();
        let list: Vec<String> = model
            .user_recs(&id, 10 + seen.len())
            .into_iter()
            .filter(|(i, _)| !seen.contains(i))
            .take(10)
            .map(|(i, _)| i.to_string())
            .collect();
        writeln!(out, "{case}\t{}", list.join(","))?;
    }
    std::fs::write(dir.join("discorec.tsv"), out)?;
    Ok(())
}
