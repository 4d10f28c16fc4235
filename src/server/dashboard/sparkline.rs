//! A row's vendor quantity over time as a small inline SVG: the sum of the count histories of
//! the (customer, product) pairs that make up the row, drawn as steps (a count holds until
//! the run that saw it change), up to the time of the reconciliation.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::html::Html;
use crate::store::HistoryPoint;

/// One point of a summed series: from `at` on, the row's vendor quantity was `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// When the value started to hold.
    pub at: DateTime<Utc>,
    /// The summed count.
    pub value: u64,
}

/// Sums step histories: at every time any of them changes, the total of each one's latest
/// value (0 before its first point). Points at equal times (one vendor run) merge into one.
pub fn sum_histories(histories: &[Vec<HistoryPoint>]) -> Vec<Step> {
    let mut events: Vec<(DateTime<Utc>, usize, u64)> = histories
        .iter()
        .enumerate()
        .flat_map(|(i, h)| h.iter().map(move |p| (p.observed_at, i, p.count)))
        .collect();
    events.sort_by_key(|(at, i, _)| (*at, *i));
    let mut current = vec![0u64; histories.len()];
    let mut total: u64 = 0;
    let mut out: Vec<Step> = Vec::new();
    for (at, i, count) in events {
        total = total - current[i] + count;
        current[i] = count;
        match out.last_mut() {
            Some(last) if last.at == at => last.value = total,
            _ => out.push(Step { at, value: total }),
        }
    }
    // Drop steps that did not change the total (another pair changed in the same direction
    // as one that went away): they would draw nothing.
    out.dedup_by(|b, a| a.value == b.value);
    out
}

const WIDTH: f64 = 120.0;
const HEIGHT: f64 = 28.0;
const PAD: f64 = 3.0;

/// The SVG for `steps` drawn up to `end` (the reconciliation's time). Empty history draws a
/// dash and says so in its title.
pub fn svg(steps: &[Step], end: DateTime<Utc>) -> Html {
    let mut h = Html::new();
    h.raw("<svg class=\"spark\" viewBox=\"0 0 120 28\" width=\"120\" height=\"28\" role=\"img\"");
    let Some(first) = steps.first() else {
        h.attr("aria-label", "no count history");
        h.raw("><title>no count history</title>");
        h.raw("<line x1=\"3\" y1=\"14\" x2=\"117\" y2=\"14\" class=\"none\"/></svg>");
        return h;
    };
    let last = steps[steps.len() - 1];
    let label = title(steps, last);
    h.attr("aria-label", &label).raw("><title>").text(&label).raw("</title>");

    let t0 = first.at;
    let t1 = end.max(last.at);
    let span = (t1 - t0).num_milliseconds().max(1) as f64;
    let min = steps.iter().map(|s| s.value).min().unwrap_or(0);
    let max = steps.iter().map(|s| s.value).max().unwrap_or(0);
    let x =
        |at: DateTime<Utc>| PAD + (at - t0).num_milliseconds() as f64 / span * (WIDTH - 2.0 * PAD);
    let y = |v: u64| {
        if max == min {
            HEIGHT / 2.0
        } else {
            HEIGHT - PAD - (v - min) as f64 / (max - min) as f64 * (HEIGHT - 2.0 * PAD)
        }
    };
    // Only numbers are formatted into the path, so it is built as a plain string.
    let mut d = format!("M{:.1} {:.1}", x(first.at), y(first.value));
    for s in &steps[1..] {
        let _ = write!(d, "H{:.1}V{:.1}", x(s.at), y(s.value));
    }
    let _ = write!(d, "H{:.1}", WIDTH - PAD);
    h.raw("<path").attr("d", d).raw("/>");
    h.raw("<circle r=\"2\"")
        .attr("cx", format!("{:.1}", WIDTH - PAD))
        .attr("cy", format!("{:.1}", y(last.value)))
        .raw("/></svg>");
    h
}

fn title(steps: &[Step], last: Step) -> String {
    let since = steps[0].at.format("%Y-%m-%d %H:%M UTC");
    match steps.len() {
        1 => format!("{} users, unchanged since {since}", last.value),
        n => {
            let min = steps.iter().map(|s| s.value).min().unwrap_or(0);
            let max = steps.iter().map(|s| s.value).max().unwrap_or(0);
            format!(
                "{} users now; {} changes since {since} (min {min}, max {max})",
                last.value,
                n - 1
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + min * 60, 0).unwrap()
    }

    fn p(run: u64, min: i64, count: u64) -> HistoryPoint {
        HistoryPoint { run_id: run, observed_at: t(min), count }
    }

    #[test]
    fn histories_sum_as_steps_and_merge_equal_times() {
        let a = vec![p(1, 0, 10), p(3, 20, 12)];
        let b = vec![p(2, 10, 5), p(3, 20, 0)];
        let steps = sum_histories(&[a, b]);
        let values: Vec<(DateTime<Utc>, u64)> = steps.iter().map(|s| (s.at, s.value)).collect();
        assert_eq!(values, vec![(t(0), 10), (t(10), 15), (t(20), 12)]);
        // A change that cancels out in the sum draws no step.
        let c = vec![p(1, 0, 3), p(2, 10, 4)];
        let d = vec![p(1, 0, 3), p(2, 10, 2)];
        assert_eq!(sum_histories(&[c, d]).len(), 1);
        assert!(sum_histories(&[]).is_empty());
    }

    #[test]
    fn the_svg_says_the_current_value_and_stays_in_its_box() {
        let steps = sum_histories(&[vec![p(1, 0, 10), p(2, 30, 14)]]);
        let s = svg(&steps, t(60)).finish();
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"), "{s}");
        assert!(s.contains("14 users now; 1 changes"), "{s}");
        // Starts low-left, steps up half-way, ends at the right edge.
        assert!(s.contains("d=\"M3.0 25.0H60.0V3.0H117.0\""), "{s}");
        let flat = svg(&sum_histories(&[vec![p(1, 0, 7)]]), t(5)).finish();
        assert!(flat.contains("7 users, unchanged since"), "{flat}");
        assert!(svg(&[], t(5)).finish().contains("no count history"));
    }
}
