//! A small SVG line-plot writer: panels side by side, each with axes, ticks, labels and lines;
//! one shared legend underneath. Enough for the demo's figure, with no dependencies.

use std::fmt::Write as _;

/// One line of a panel.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Stroke colour (CSS).
    pub color: &'static str,
    /// `stroke-dasharray`, e.g. `"6 4"`, or `None` for a solid line.
    pub dash: Option<&'static str>,
    /// Stroke width in pixels.
    pub width: f64,
    /// Draw a small circle at every point.
    pub markers: bool,
    /// The points; non-finite ones break the line.
    pub points: Vec<(f64, f64)>,
}

/// One panel (axes box).
#[derive(Clone, Debug)]
pub struct Panel {
    /// Title above the panel.
    pub title: String,
    /// x-axis label.
    pub xlabel: String,
    /// y-axis label.
    pub ylabel: String,
    /// The lines.
    pub series: Vec<Series>,
}

const PANEL_W: f64 = 400.0;
const PANEL_H: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 72.0;
const BOTTOM: f64 = 55.0;
const LEGEND_H: f64 = 50.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" tick step (1, 2 or 5 × 10^k) for about `n` intervals over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = span / n;
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    let m = if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    };
    m * p
}

/// Data range of all finite points, widened to nice tick multiples; `(lo, hi, step)`.
fn axis(values: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0, 0.2);
    }
    if hi - lo < 1e-12 * (1.0 + lo.abs()) {
        lo -= 0.5;
        hi += 0.5;
    }
    let step = nice_step(hi - lo, 5.0);
    let lo = (lo / step).floor() * step;
    let hi = (hi / step).ceil() * step;
    (lo, hi, step)
}

fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let s = format!("{v:.decimals$}");
    if s.starts_with("-0") && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_string()
    } else {
        s
    }
}

fn panel_svg(out: &mut String, p: &Panel, x0: f64, y0: f64) {
    let (w, h) = (PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM);
    let (ox, oy) = (x0 + LEFT, y0 + TOP);
    let all = || p.series.iter().flat_map(|s| s.points.iter());
    let (xlo, xhi, xstep) = axis(all().map(|q| q.0));
    let (ylo, yhi, ystep) = axis(all().map(|q| q.1));
    let sx = |x: f64| ox + (x - xlo) / (xhi - xlo) * w;
    let sy = |y: f64| oy + h - (y - ylo) / (yhi - ylo) * h;
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="15" text-anchor="middle" font-weight="bold">{}</text>"#,
        ox + w / 2.0,
        y0 + TOP - 22.0,
        esc(&p.title)
    );
    // Grid and ticks.
    let nx = ((xhi - xlo) / xstep).round() as i64;
    for i in 0..=nx {
        let v = xlo + i as f64 * xstep;
        let x = sx(v);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{oy:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#e4e4e4\"/>\n\
             <line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"black\"/>\n\
             <text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            oy + h,
            oy + h,
            oy + h + 5.0,
            oy + h + 18.0,
            tick_label(v, xstep)
        );
    }
    let ny = ((yhi - ylo) / ystep).round() as i64;
    for i in 0..=ny {
        let v = ylo + i as f64 * ystep;
        let y = sy(v);
        let _ = writeln!(
            out,
            "<line x1=\"{ox:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e4e4e4\"/>\n\
             <line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{ox:.1}\" y2=\"{y:.1}\" stroke=\"black\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            ox + w,
            ox - 5.0,
            ox - 8.0,
            y + 4.0,
            tick_label(v, ystep)
        );
    }
    let _ = writeln!(
        out,
        r#"<rect x="{ox:.1}" y="{oy:.1}" width="{w:.1}" height="{h:.1}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle">{}</text>"#,
        ox + w / 2.0,
        oy + h + 40.0,
        esc(&p.xlabel)
    );
    let (lx, ly) = (x0 + 16.0, oy + h / 2.0);
    let _ = writeln!(
        out,
        r#"<text x="{lx:.1}" y="{ly:.1}" font-size="13" text-anchor="middle" transform="rotate(-90 {lx:.1} {ly:.1})">{}</text>"#,
        esc(&p.ylabel)
    );
    // Lines, clipped to the axes box.
    let _ = writeln!(
        out,
        r#"<clipPath id="clip{x0:.0}"><rect x="{ox:.1}" y="{oy:.1}" width="{w:.1}" height="{h:.1}"/></clipPath>"#
    );
    let _ = writeln!(out, r#"<g clip-path="url(#clip{x0:.0})">"#);
    for s in &p.series {
        let dash = s
            .dash
            .map(|d| format!(r#" stroke-dasharray="{d}""#))
            .unwrap_or_default();
        let mut segment: Vec<String> = Vec::new();
        let flush = |seg: &mut Vec<String>, out: &mut String| {
            if seg.len() > 1 {
                let _ = writeln!(
                    out,
                    r#"<polyline fill="none" stroke="{}" stroke-width="{}"{dash} points="{}"/>"#,
                    s.color,
                    s.width,
                    seg.join(" ")
                );
            }
            seg.clear();
        };
        for &(x, y) in &s.points {
            if x.is_finite() && y.is_finite() {
                segment.push(format!("{:.2},{:.2}", sx(x), sy(y)));
                if s.markers {
                    let _ = writeln!(
                        out,
                        r#"<circle cx="{:.2}" cy="{:.2}" r="3" fill="{}"/>"#,
                        sx(x),
                        sy(y),
                        s.color
                    );
                }
            } else {
                flush(&mut segment, out);
            }
        }
        flush(&mut segment, out);
    }
    let _ = writeln!(out, "</g>");
}

/// The SVG document: `title` on top, `panels` side by side, the legend of the first panel's
/// series underneath, `note` (small print) at the bottom.
pub fn figure(title: &str, panels: &[Panel], note: &str) -> String {
    let width = PANEL_W * panels.len() as f64;
    let height = PANEL_H + LEGEND_H + 40.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(
        out,
        r#"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="22" font-size="17" text-anchor="middle" font-weight="bold">{}</text>"#,
        width / 2.0,
        esc(title)
    );
    for (i, p) in panels.iter().enumerate() {
        panel_svg(&mut out, p, i as f64 * PANEL_W, 0.0);
    }
    if let Some(first) = panels.first() {
        let n = first.series.len().max(1) as f64;
        let slot = (width - 40.0) / n;
        let y = PANEL_H + 20.0;
        for (i, s) in first.series.iter().enumerate() {
            let x = 20.0 + i as f64 * slot;
            let dash = s
                .dash
                .map(|d| format!(r#" stroke-dasharray="{d}""#))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="{}"{dash}/>"#,
                x + 34.0,
                s.color,
                s.width.max(2.0)
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="13">{}</text>"#,
                x + 40.0,
                y + 4.5,
                esc(&s.label)
            );
        }
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#555\" text-anchor=\"middle\">{}</text>",
        width / 2.0,
        height - 14.0,
        esc(note)
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(0.7, 5.0), 0.1);
        let (lo, hi, st) = axis([-0.13, 0.92].into_iter());
        assert!(lo <= -0.13 && hi >= 0.92 && st == 0.2, "{lo} {hi} {st}");
        assert_eq!(tick_label(-0.0, 0.2), "0.0");
    }

    #[test]
    fn figure_is_well_formed() {
        let p = Panel {
            title: "a < b".into(),
            xlabel: "x".into(),
            ylabel: "y".into(),
            series: vec![Series {
                label: "s".into(),
                color: "red",
                dash: None,
                width: 1.5,
                markers: true,
                points: vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0), (3.0, 2.0)],
            }],
        };
        let s = figure("t", &[p.clone(), p], "n");
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert!(s.contains("a &lt; b"));
        assert_eq!(s.matches("<polyline").count(), 2);
    }
}
