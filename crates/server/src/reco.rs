//! `olive reco …`: the recommender's offline evaluation on a public dataset. Both protocols, every
//! model side by side, training times, and (with `--export`) the splits written out so that other
//! implementations (`bench/reco-eval.sh` runs the Python `implicit` library and the `discorec`
//! crate) are trained on the same data and their top-10 lists scored here by the same metrics.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use olive_reco::dataset::{self, Dataset};
use olive_reco::eval::{evaluate, evaluate_lists, Metrics, Protocol, Recommender, Split};
use olive_reco::models::{Als, Blend, BlendWeights, Neighbours, Popularity};
use olive_reco::{AlsParams, ItemItemParams};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum RecoCommand {
    /// Offline evaluation on a dataset: precision, recall, NDCG and MAP at 10, and coverage.
    Eval(EvalArgs),
    /// Train the recommender now from the shoppers' events and store the snapshot; running nodes
    /// load it within seconds.
    Train {
        #[command(flatten)]
        storage: crate::config::StorageArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// MovieLens ratings: RecBole's `.inter` file or `u.data`.
    Movielens,
    /// Instacart order lines (`df_sample.csv`).
    Instacart,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum Which {
    /// Microsoft Recommenders': each user's interactions split 75/25 at random.
    RandomSplit,
    /// The personalisation service's: 10 % of users held out, their newest 10 % scored.
    HeldOutUsers,
    Both,
}

#[derive(Args)]
pub struct EvalArgs {
    /// The dataset file.
    #[arg(long)]
    dataset: PathBuf,
    #[arg(long, value_enum, default_value = "movielens")]
    format: Format,
    #[arg(long, value_enum, default_value = "both")]
    protocol: Which,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// List length scored.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Matrix factorisation: factors, regularisation, confidence per unit of weight, iterations.
    #[arg(long, default_value_t = 64)]
    factors: usize,
    #[arg(long, default_value_t = 50.0)]
    als_regularization: f32,
    #[arg(long, default_value_t = 10.0)]
    alpha: f32,
    #[arg(long, default_value_t = 15)]
    iterations: usize,
    /// Item-item model regularisation (larger for sparser data).
    #[arg(long, default_value_t = 300.0)]
    lambda: f64,
    /// A small, fast configuration (for CI): 16 factors, 5 iterations.
    #[arg(long)]
    quick: bool,
    /// Write each protocol's split to DIR/<protocol>/ (train.tsv, cases.tsv).
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    /// Also score the top-k lists another implementation wrote to DIR/<protocol>/NAME.tsv.
    #[arg(long, value_name = "NAME", requires = "export")]
    compare: Vec<String>,
}

/// Largest dataset file read.
const MAX_DATASET_BYTES: u64 = 1 << 30;

pub async fn run(command: RecoCommand) -> Result<()> {
    match command {
        RecoCommand::Eval(args) => tokio::task::spawn_blocking(move || eval(args)).await?,
        RecoCommand::Train { storage } => {
            let config = crate::config::StorageConfig::from_args(&storage)?;
            let engines = crate::engines::open(&config).await?;
            let started = Instant::now();
            let snapshot =
                olive_commerce::recommendations::jobs::train_and_store(engines.store.as_ref(), &engines.objects)
                    .await?;
            let w = snapshot.model.weights();
            println!(
                "trained on {} events, {} items in {:.2} s (blend: {} item-item, {} ALS, {} popularity); stored as {}",
                snapshot.events,
                snapshot.keys.len(),
                started.elapsed().as_secs_f64(),
                w.item_item,
                w.als,
                w.popularity,
                olive_commerce::recommendations::SNAPSHOT_KEY
            );
            Ok(())
        }
    }
}

fn eval(args: EvalArgs) -> Result<()> {
    let size = std::fs::metadata(&args.dataset).with_context(|| format!("reading {}", args.dataset.display()))?.len();
    if size > MAX_DATASET_BYTES {
        bail!("{} is {size} bytes; at most {MAX_DATASET_BYTES} are read", args.dataset.display());
    }
    let text = std::fs::read_to_string(&args.dataset).with_context(|| format!("reading {}", args.dataset.display()))?;
    let data = match args.format {
        Format::Movielens => dataset::movielens(&text),
        Format::Instacart => dataset::instacart(&text),
    }
    .with_context(|| format!("parsing {}", args.dataset.display()))?;
    println!(
        "{}: {} users, {} items, {} interactions",
        args.dataset.display(),
        data.n_users,
        data.n_items,
        data.events.len()
    );
    let protocols = match args.protocol {
        Which::RandomSplit => vec![Protocol::RandomSplit],
        Which::HeldOutUsers => vec![Protocol::HeldOutUsers],
        Which::Both => vec![Protocol::RandomSplit, Protocol::HeldOutUsers],
    };
    for protocol in protocols {
        let split = protocol.split(&data, args.seed);
        println!("\n{} ({} users scored, k = {})", describe(protocol), split.cases.len(), args.k);
        println!("| model | precision@{k} | recall@{k} | NDCG@{k} | MAP@{k} | coverage | training |", k = args.k);
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for mut model in models(&args) {
            let started = Instant::now();
            model.fit(&split.train);
            let trained = started.elapsed();
            let m = evaluate(model.as_ref(), &split, data.n_items, args.k);
            println!("{}", row(&model.name(), &m, Some(trained)));
        }
        if let Some(dir) = &args.export {
            let dir = dir.join(slug(protocol));
            export(&dir, &split, &data).with_context(|| format!("writing {}", dir.display()))?;
            for name in &args.compare {
                let path = dir.join(format!("{name}.tsv"));
                let lists =
                    read_lists(&path, split.cases.len()).with_context(|| format!("reading {}", path.display()))?;
                println!("{}", row(name, &evaluate_lists(&split, &lists, data.n_items, args.k), None));
            }
        }
        if protocol == Protocol::RandomSplit {
            serving_time(&args, &data, &split);
        }
    }
    Ok(())
}

fn als_params(args: &EvalArgs) -> AlsParams {
    AlsParams {
        factors: if args.quick { 16 } else { args.factors },
        regularization: args.als_regularization,
        alpha: args.alpha,
        iterations: if args.quick { 5 } else { args.iterations },
        ..AlsParams::default()
    }
}

fn models(args: &EvalArgs) -> Vec<Box<dyn Recommender>> {
    let als = als_params(args);
    let item_item = ItemItemParams { lambda: args.lambda, ..ItemItemParams::default() };
    vec![
        Box::new(Popularity::default()),
        Box::new(Als::new(als)),
        Box::new(Neighbours::new(item_item)),
        Box::new(Blend::new(item_item, als, BlendWeights::default())),
    ]
}

/// How long the served model takes to rank 1,000 candidates for each scored user (their history
/// folded in per request, as in serving).
fn serving_time(args: &EvalArgs, data: &Dataset, split: &Split) {
    use olive_reco::serve::{CatalogueItem, Model, TrainParams, TrainingEvent};
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let items = (0..data.n_items).map(|i| CatalogueItem { title: format!("item {i}"), features: Vec::new() }).collect();
    let mut events = Vec::with_capacity(split.train.nnz());
    for u in 0..split.train.n_users() {
        let (its, ws) = split.train.user(u);
        events.extend(its.iter().zip(ws).map(|(&item, &weight)| TrainingEvent {
            user: u as u32,
            item,
            weight,
            at: 0.0,
        }));
    }
    let params = TrainParams {
        als: als_params(args),
        item_item: ItemItemParams { lambda: args.lambda, ..ItemItemParams::default() },
        ..TrainParams::default()
    };
    let started = Instant::now();
    let model = Model::train(data.n_users, items, &events, 0.0, &params);
    let trained = started.elapsed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let all: Vec<u32> = (0..data.n_items as u32).collect();
    let mut times: Vec<Duration> = split
        .cases
        .iter()
        .map(|case| {
            let candidates: Vec<u32> = all.choose_multiple(&mut rng, 1000).copied().collect();
            let started = Instant::now();
            let ranked = model.rank(&case.history, &candidates, 20);
            let took = started.elapsed();
            std::hint::black_box(ranked);
            took
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    if times.is_empty() {
        return;
    }
    println!(
        "serving: model trained in {:.2} s; ranking {} candidates for one shopper: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} shoppers)",
        trained.as_secs_f64(),
        all.len().min(1000),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
}

fn describe(p: Protocol) -> &'static str {
    match p {
        Protocol::RandomSplit => "Random 75/25 split per user (Microsoft Recommenders)",
        Protocol::HeldOutUsers => "10 % of users held out; oldest 90 % of their events in, newest 10 % scored",
    }
}

fn slug(p: Protocol) -> &'static str {
    match p {
        Protocol::RandomSplit => "random-split",
        Protocol::HeldOutUsers => "held-out-users",
    }
}

fn row(name: &str, m: &Metrics, trained: Option<Duration>) -> String {
    let time = trained.map_or("(external)".to_owned(), |t| format!("{:.2} s", t.as_secs_f64()));
    format!(
        "| {name} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} | {time} |",
        m.precision, m.recall, m.ndcg, m.map, m.coverage
    )
}

/// `train.tsv`: `user<TAB>item<TAB>weight`, dense indices; `cases.tsv`: `case<TAB>user or -1<TAB>
/// history items<TAB>relevant items` (comma-separated); `meta.tsv`: the matrix's shape.
fn export(dir: &Path, split: &Split, data: &Dataset) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut train = String::new();
    for u in 0..split.train.n_users() {
        let (items, weights) = split.train.user(u);
        for (i, w) in items.iter().zip(weights) {
            writeln!(train, "{u}\t{i}\t{w}")?;
        }
    }
    std::fs::write(dir.join("train.tsv"), train)?;
    let mut cases = String::new();
    let join = |items: &mut dyn Iterator<Item = u32>| items.map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    for (n, case) in split.cases.iter().enumerate() {
        let user = case.user.map_or(-1, |u| u as i64);
        let history = join(&mut case.history.iter().map(|&(i, _)| i));
        let relevant = join(&mut case.relevant.iter().copied());
        writeln!(cases, "{n}\t{user}\t{history}\t{relevant}")?;
    }
    std::fs::write(dir.join("cases.tsv"), cases)?;
    std::fs::write(dir.join("meta.tsv"), format!("users\t{}\nitems\t{}\n", data.n_users, data.n_items))?;
    Ok(())
}

/// `case<TAB>item,item,…` per line, best first.
fn read_lists(path: &Path, cases: usize) -> Result<Vec<Vec<u32>>> {
    let text = std::fs::read_to_string(path)?;
    let mut lists = vec![Vec::new(); cases];
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let (case, items) = line.split_once('\t').with_context(|| format!("line {}: no tab", n + 1))?;
        let case: usize = case.trim().parse().with_context(|| format!("line {}: case {case:?}", n + 1))?;
        let list = lists.get_mut(case).with_context(|| format!("line {}: case {case} out of range", n + 1))?;
        for item in items.split(',').filter(|i| !i.trim().is_empty()) {
            list.push(item.trim().parse().with_context(|| format!("line {}: item {item:?}", n + 1))?);
        }
    }
    Ok(lists)
}
