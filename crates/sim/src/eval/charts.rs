//! The report's charts, drawn with plotters: horizontal bars, stacked by series, one row per
//! tactic, habit or rule. Each chart is drawn twice from the same code: as SVG for the page and
//! as PNG beside it. Laying out text needs a font file: the system's DejaVu or Liberation Sans.

use super::Summary;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// A chart's data.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// File stem of the PNG, and the SVG's id.
    pub name: &'static str,
    pub title: String,
    /// Series names, with their colours, in stacking order.
    pub series: Vec<(&'static str, RGBColor)>,
    /// One row per category: its label and one value per series.
    pub rows: Vec<(String, Vec<f64>)>,
}

/// Drawing failed.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing {0}: {1}")]
    Draw(&'static str, String),
    #[error("no font for PNG charts (looked for {0}); the SVG charts in report.html are complete")]
    NoFont(String),
}

const STOPPED: RGBColor = RGBColor(46, 125, 50);
const PASSED: RGBColor = RGBColor(198, 40, 40);
const HELD: RGBColor = RGBColor(239, 108, 0);
const FREE: RGBColor = RGBColor(176, 190, 197);

/// The charts of a summary: scam USD per tactic (stopped or not), legitimate withdrawals per
/// habit (held or not), and the scam USD each rule adds.
pub fn charts(summary: &Summary) -> Vec<Chart> {
    let scam = summary.tactics.iter().filter(|t| t.label == "scam");
    let legit = summary.tactics.iter().filter(|t| t.label == "legit");
    vec![
        Chart {
            name: "scam_usd_by_tactic",
            title: "Scam USD by tactic".into(),
            series: vec![("stopped", STOPPED), ("not stopped", PASSED)],
            rows: scam
                .map(|t| (plain(&t.tactic), vec![t.usd_stopped, t.usd - t.usd_stopped]))
                .collect(),
        },
        Chart {
            name: "legit_withdrawals_by_habit",
            title: "Legitimate withdrawals by habit".into(),
            series: vec![("held or blocked", HELD), ("let through", FREE)],
            rows: legit
                .map(|t| {
                    (
                        plain(&t.tactic),
                        vec![
                            t.withdrawals_stopped as f64,
                            (t.withdrawals - t.withdrawals_stopped) as f64,
                        ],
                    )
                })
                .collect(),
        },
        Chart {
            name: "scam_usd_added_by_rule",
            title: "Scam USD stopped only because of each rule".into(),
            series: vec![("USD", STOPPED)],
            rows: summary
                .rules
                .iter()
                .map(|r| (plain(&r.rule), vec![r.adds_scam_usd_stopped.max(0.0)]))
                .collect(),
        },
    ]
}

/// A label as it may appear inside the SVG, which the page includes as markup: tactic and rule
/// names come from files anyone may write, so only plain characters pass.
fn plain(text: &str) -> String {
    text.chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-. :".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let rows = chart.rows.len().max(1);
    let max = chart
        .rows
        .iter()
        .map(|(_, values)| values.iter().sum::<f64>())
        .fold(0.0, f64::max)
        .max(1.0);
    let labels: Vec<String> = chart.rows.iter().map(|(label, _)| label.clone()).collect();
    let mut plot = ChartBuilder::on(root)
        .caption(&chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(190)
        .build_cartesian_2d(0.0..max * 1.05, -0.5..(rows as f64 - 0.5))
        .map_err(|e| e.to_string())?;
    plot.configure_mesh()
        .disable_y_mesh()
        .y_labels(rows)
        .y_label_formatter(&|y| {
            // Rows sit at whole numbers; other ticks get no label.
            let index = y.round();
            let row = labels.iter().zip(0..).find(|(_, n)| f64::from(*n) == index);
            match row {
                Some((label, _)) if (y - index).abs() < 0.01 => label.clone(),
                _ => String::new(),
            }
        })
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| e.to_string())?;
    for (series, (name, colour)) in chart.series.iter().enumerate() {
        let bars = chart.rows.iter().enumerate().map(|(row, (_, values))| {
            let start: f64 = values[..series].iter().sum();
            let y = row as f64;
            Rectangle::new(
                [(start, y - 0.35), (start + values[series], y + 0.35)],
                colour.filled(),
            )
        });
        plot.draw_series(bars)
            .map_err(|e| e.to_string())?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    plot.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

fn size(chart: &Chart) -> (u32, u32) {
    let rows = u32::try_from(chart.rows.len())
        .unwrap_or(u32::MAX)
        .clamp(1, 200);
    (900, 90 + 34 * rows)
}

/// The chart as an SVG document.
pub fn svg(chart: &Chart) -> Result<String, ChartError> {
    // Even SVG output measures its labels with the font.
    register_font()?;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size(chart)).into_drawing_area();
        draw(&root, chart).map_err(|e| ChartError::Draw(chart.name, e))?;
    }
    Ok(text)
}

const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers a system font for PNG text, once per process.
fn register_font() -> Result<(), ChartError> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        FONTS
            .iter()
            .find_map(|path| std::fs::read(path).ok())
            .is_some_and(|bytes| {
                // plotters keeps fonts for the life of the process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            })
    });
    if ok {
        Ok(())
    } else {
        Err(ChartError::NoFont(FONTS.join(", ")))
    }
}

/// Writes the chart as `dir/<name>.png`.
pub fn png(chart: &Chart, dir: &Path) -> Result<(), ChartError> {
    register_font()?;
    let path = dir.join(format!("{}.png", chart.name));
    let root = BitMapBackend::new(&path, size(chart)).into_drawing_area();
    draw(&root, chart).map_err(|e| ChartError::Draw(chart.name, e))
}
