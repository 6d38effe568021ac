//! A line chart with labelled series on two `f64` axes, the shape most of the report's plots
//! share ([`super::plots`]): caption, axis descriptions, one coloured line (optionally with
//! markers) per series, a legend, and a hook for extra marks (ban moments, reference lines).

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::svg::{self, DrawResult, PlotError};

/// The chart type the hooks draw on.
pub type Chart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One line.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend entry (only the first [`svg::LEGEND_MAX`] series get one).
    pub name: String,
    /// Colour index into [`svg::color`].
    pub color: usize,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Draw a dot on every point too.
    pub markers: bool,
}

/// A chart's frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Which plot (for errors).
    pub plot: &'static str,
    /// Title above the chart.
    pub caption: String,
    /// X axis description.
    pub x_desc: &'static str,
    /// Y axis description.
    pub y_desc: &'static str,
    /// X range.
    pub x: std::ops::Range<f64>,
    /// Y range.
    pub y: std::ops::Range<f64>,
    /// Logarithmic y axis (values below 1 drawn at 1): for values spanning orders of magnitude.
    pub log_y: bool,
    /// Where the legend goes (the corner the data leaves free).
    pub legend: SeriesLabelPosition,
}

/// Where `y` is drawn: itself, or its decimal logarithm on a logarithmic axis.
fn y_of(frame: &Frame, y: f64) -> f64 {
    if frame.log_y { y.max(1.0).log10() } else { y }
}

/// Most points drawn per series (and per mark kind and node in scatter plots): a chart is 960
/// pixels wide, so more only grows the file (a 200-node run of thousands of blocks would
/// otherwise write millions of SVG elements). Bounds a page at a few MB.
pub const MAX_POINTS_PER_SERIES: usize = 2000;

/// At most [`MAX_POINTS_PER_SERIES`] of `points`: every k-th, and always the last.
pub fn thin<T: Copy>(points: &[T]) -> Vec<T> {
    if points.len() <= MAX_POINTS_PER_SERIES {
        return points.to_vec();
    }
    let stride = points.len().div_ceil(MAX_POINTS_PER_SERIES - 1);
    let mut out: Vec<T> = points.iter().step_by(stride).copied().collect();
    if !(points.len() - 1).is_multiple_of(stride)
        && let Some(last) = points.last()
    {
        out.push(*last);
    }
    out
}

/// An axis label: at most three significant decimals, no trailing zeros (plotters' ticks are
/// sums of floats, `0.30000000000000004` unless rounded).
pub fn tick(value: f64) -> String {
    let digits = match value.abs() {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        v if v >= 1.0 => 2,
        _ => 3,
    };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// A step line through `(x, y)` samples: holds each value until the next sample.
pub fn steps(samples: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(samples.len() * 2);
    for (k, &(x, y)) in samples.iter().enumerate() {
        if k > 0 {
            out.push((x, samples[k - 1].1));
        }
        out.push((x, y));
    }
    out
}

/// Draws `series` in `frame`, then `extra` on top.
pub fn lines(
    frame: &Frame,
    series: &[Series],
    extra: impl FnOnce(&mut Chart<'_, '_>) -> DrawResult,
) -> Result<String, PlotError> {
    svg::render(frame.plot, (svg::WIDTH, svg::HEIGHT), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&frame.caption, svg::title())
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(
                frame.x.clone(),
                y_of(frame, frame.y.start)..y_of(frame, frame.y.end),
            )?;
        let log_label = |v: &f64| tick(10f64.powf(*v));
        let plain_label = |v: &f64| tick(*v);
        chart
            .configure_mesh()
            .x_desc(frame.x_desc)
            .y_desc(frame.y_desc)
            .x_label_formatter(&plain_label)
            .y_label_formatter(if frame.log_y {
                &log_label
            } else {
                &plain_label
            })
            .label_style((svg::FONT, 13))
            .axis_desc_style((svg::FONT, 15))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        let mut labelled = false;
        for (k, s) in series.iter().enumerate() {
            let color = svg::color(s.color);
            let points: Vec<(f64, f64)> = thin(&s.points)
                .into_iter()
                .map(|(x, y)| (x, y_of(frame, y)))
                .collect();
            let drawn = chart.draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?;
            if k < svg::LEGEND_MAX {
                labelled = true;
                drawn.label(s.name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            }
            if s.markers {
                chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
            }
        }
        extra(&mut chart)?;
        if labelled {
            chart
                .configure_series_labels()
                .label_font((svg::FONT, 13))
                .position(frame.legend.clone())
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .draw()?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.30000000000000004), "0.3");
        assert_eq!(tick(0.9999999999999), "1");
        assert_eq!(tick(3162.2776), "3162");
        assert_eq!(tick(31.62), "31.6");
        assert_eq!(tick(2.0), "2");
        assert_eq!(tick(-0.0001), "0");
    }

    #[test]
    fn thinning_keeps_the_bound_and_the_ends() {
        let points: Vec<usize> = (0..10_000).collect();
        let thinned = thin(&points);
        assert!(thinned.len() <= MAX_POINTS_PER_SERIES, "{}", thinned.len());
        assert_eq!(thinned.first(), Some(&0));
        assert_eq!(thinned.last(), Some(&9_999));
        assert_eq!(thin(&points[..10]), points[..10].to_vec());
    }

    #[test]
    fn steps_hold_each_value_until_the_next_sample() {
        assert_eq!(
            steps(&[(0.0, 1.0), (2.0, 3.0), (5.0, 4.0)]),
            vec![(0.0, 1.0), (2.0, 1.0), (2.0, 3.0), (5.0, 3.0), (5.0, 4.0)]
        );
        assert!(steps(&[]).is_empty());
    }

    #[test]
    fn a_chart_is_svg_with_generic_font_text() {
        let frame = Frame {
            plot: "test",
            caption: "A <title> & more".into(),
            x_desc: "x",
            y_desc: "y",
            x: 0.0..10.0,
            y: 0.0..1.0,
            log_y: false,
            legend: SeriesLabelPosition::LowerRight,
        };
        let svg = lines(
            &frame,
            &[Series {
                name: "one".into(),
                color: 0,
                points: vec![(0.0, 0.0), (10.0, 1.0)],
                markers: true,
            }],
            |_| Ok(()),
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("<text") && svg.contains("font-family=\"sans-serif\""));
        assert!(svg.contains("<polyline") || svg.contains("<path"));
        assert!(svg.contains("&lt;title&gt; &amp; more"), "text is escaped");
    }
}
