//! The drawing surface of the HTML report's plots: plotters' SVG backend writing into a string,
//! and the styles every plot shares. The plots ([`super::plots`], [`super::topology`]) draw on
//! it; the page ([`super::page`]) inlines the strings.
//!
//! Text: plotters is built without its `ttf`/`ab_glyph` features, so no font is loaded at build
//! or run time: text sizes are estimated (its `naive` font) and each label is an SVG `<text>`
//! with the generic family `sans-serif`, which the browser maps to a local font.

use plotters::coord::Shift;
use plotters::prelude::*;

/// Width of a chart in pixels: wide enough for a few hundred blocks on the x axis and fits a
/// laptop screen beside nothing else.
pub const WIDTH: u32 = 960;
/// Height of a chart in pixels.
pub const HEIGHT: u32 = 420;
/// The generic font family of every label (no font file is ever fetched).
pub const FONT: &str = "sans-serif";
/// At most this many series get a legend entry; beyond it the legend would hide the plot.
pub const LEGEND_MAX: usize = 12;

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("plot {plot}: {reason}")]
pub struct PlotError {
    /// Which plot.
    pub plot: &'static str,
    /// plotters' error.
    pub reason: String,
}

/// What a drawing closure returns.
pub type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws on a white `size` canvas and returns the SVG document.
pub fn render(
    plot: &'static str,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult,
) -> Result<String, PlotError> {
    let err = |reason: String| PlotError { plot, reason };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        draw(&root).map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(out)
}

/// The colour of series `i` (a 99-colour palette made to tell neighbours apart).
pub fn color(i: usize) -> RGBAColor {
    Palette99::pick(i).to_rgba()
}

/// A chart title's font.
pub fn title() -> TextStyle<'static> {
    (FONT, 20).into_font().into()
}

/// Adds a legend entry drawn as a short line of `style`, for the first [`LEGEND_MAX`] series.
pub fn legend_line(i: usize, name: String) -> Option<(String, ShapeStyle)> {
    (i < LEGEND_MAX).then(|| (name, color(i).stroke_width(2)))
}

/// The upper end of an axis holding values up to `max`: 5% headroom, never an empty range.
pub fn upper(max: f64) -> f64 {
    if max > 0.0 { max * 1.05 } else { 1.0 }
}
