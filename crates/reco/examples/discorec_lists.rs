//! The `discorec` crate's implicit ALS on a split `olive reco eval --export DIR` wrote: trains on
//! DIR/<protocol>/train.tsv and writes its top-k lists to DIR/<protocol>/discorec.tsv for olive to
//! score. discorec cannot fold in a user it was not trained on, so held-out users' input events are
//! added to its training set (which gives it a little more than the protocol allows).
//!
//! `cargo run --release -p olive-reco --example discorec_lists -- DIR/<protocol> [factors] [iterations] [regularization] [alpha]`

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::Path::new(args.get(1).expect("the split directory"));
    let factors: u32 = args.get(2).map_or(64, |f| f.parse().expect("factors"));
    let iterations: u32 = args.get(3).map_or(15, |f| f.parse().expect("iterations"));
    let regularization: Option<f32> = args.get(4).map(|f| f.parse().expect("regularization"));
    let alpha: Option<f32> = args.get(5).map(|f| f.parse().expect("alpha"));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));

    let mut data: Vec<(i64, u32, f32)> = read("train.tsv")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    let cases: Vec<(usize, i64, Vec<u32>)> = read("cases.tsv")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let history = f[2].split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap(), history)
        })
        .collect();
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
        writeln!(out, "{case}\t{}", list.join(",")).unwrap();
    }
    std::fs::write(dir.join("discorec.tsv"), out).unwrap();
}
