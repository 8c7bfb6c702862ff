//! `portcullis simulate` and `portcullis eval`: files in and out around the pure simulator and
//! evaluation of `portcullis-sim`.

use crate::args::{EvalArgs, SimulateArgs};
use anyhow::Context as _;
use portcullis_engine::DEFAULT_POLICY;
use portcullis_sim::eval;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

pub fn simulate(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let config = portcullis_sim::Config::new(args.accounts, args.days, args.seed);
    let sim = portcullis_sim::simulate(&config)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    write_lines(&args.out.join("events.jsonl"), &sim.rendered.events)?;
    write_lines(&args.out.join("labels.jsonl"), &sim.rendered.labels)?;
    let scam = sim
        .rendered
        .labels
        .iter()
        .filter(|l| l.contains("\"label\":\"scam\""))
        .count();
    writeln!(
        std::io::stderr(),
        "simulated {} accounts over {} days (seed {}): {} events, {} decisions to make ({} scam); {} crews, {} victims, {} hung up; wrote {}",
        args.accounts,
        args.days,
        args.seed,
        sim.rendered.events.len(),
        sim.rendered.labels.len(),
        scam,
        sim.crews,
        sim.victims,
        sim.hung_up,
        args.out.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn write_lines(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    for line in lines {
        writer.write_all(line.as_bytes())?;
        writer.write_all(b"\n")?;
    }
    writer
        .flush()
        .with_context(|| format!("writing {}", path.display()))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub fn eval(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let policy = match &args.policy {
        Some(path) => read(path)?,
        None => DEFAULT_POLICY.to_owned(),
    };
    let events = read(&args.events)?;
    let lines: Vec<&str> = events.lines().filter(|l| !l.trim().is_empty()).collect();
    let labels = eval::parse_labels(&read(&args.labels)?)
        .with_context(|| args.labels.display().to_string())?;
    let summary = eval::evaluate(&lines, &labels, &policy)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let json = serde_json::to_string_pretty(&summary)?;
    std::fs::write(args.out.join("summary.json"), json + "\n").context("writing summary.json")?;
    let charts = eval::charts(&summary);
    let title = format!(
        "{} with {}",
        file_name(&args.events),
        args.policy
            .as_deref()
            .map_or("the default policy".into(), file_name)
    );
    let page = eval::report_html(&title, &summary, &charts)?;
    std::fs::write(args.out.join("report.html"), page).context("writing report.html")?;
    let mut stderr = std::io::stderr().lock();
    for chart in &charts {
        if let Err(error) = eval::png(chart, &args.out) {
            writeln!(stderr, "portcullis: {error}")?;
            break;
        }
    }
    writeln!(
        stderr,
        "scam USD stopped {:.2}% ({:.0} of {:.0}); legitimate withdrawals held or blocked {:.2}% ({} of {}); attacks stopped {} of {}; wrote {}",
        summary.scam.stopped_share * 100.0,
        summary.scam.usd_stopped,
        summary.scam.usd,
        summary.legit.friction * 100.0,
        summary.legit.withdrawals_held + summary.legit.withdrawals_blocked,
        summary.legit.withdrawals,
        summary.scam.incidents_stopped,
        summary.scam.incidents,
        args.out.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
