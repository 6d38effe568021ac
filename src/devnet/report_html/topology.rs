//! The topology the network actually formed, drawn from each node's answer to the `topology`
//! control request at the end of the run: nodes on a circle, a line per connection, mesh links
//! marked (thick when both ends have the other in their gossipsub mesh, thinner when one end
//! does), planned links that were not connected at the end dashed.

use std::collections::BTreeMap;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::data::RunRecord;
use super::svg::{self, PlotError};

/// Side of the square topology drawing in pixels.
const SIDE: u32 = 720;
/// Radius of a node's disc in pixels.
const NODE_RADIUS: i32 = 14;

/// How two nodes were linked at the end of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Link {
    /// Planned by the devnet, not connected at the end.
    Missing,
    /// Connected, in neither node's mesh.
    Connected,
    /// Connected, in one node's mesh.
    MeshOneWay,
    /// Connected, each in the other's mesh.
    Mesh,
}

/// Every pair of nodes with a link, keyed (lower index, higher index).
pub fn links(record: &RunRecord) -> BTreeMap<(usize, usize), Link> {
    let mut out = BTreeMap::new();
    let key = |a: usize, b: usize| (a.min(b), a.max(b));
    for (i, node) in record.nodes.iter().enumerate() {
        for &j in &node.peers {
            if i == j {
                continue;
            }
            let meshes = usize::from(node.mesh.contains(&j))
                + usize::from(record.nodes.get(j).is_some_and(|n| n.mesh.contains(&i)));
            let link = match meshes {
                0 => Link::Connected,
                1 => Link::MeshOneWay,
                _ => Link::Mesh,
            };
            let entry = out.entry(key(i, j)).or_insert(link);
            *entry = (*entry).max(link);
        }
    }
    for &(i, j) in &record.planned_edges {
        let both_known = [i, j]
            .iter()
            .all(|n| record.nodes.get(*n).is_some_and(|n| n.topology_known));
        if both_known {
            out.entry(key(i, j)).or_insert(Link::Missing);
        }
    }
    out
}

/// The topology drawing.
pub fn topology(record: &RunRecord, late: Option<usize>) -> Result<String, PlotError> {
    let n = record.nodes.len().max(1);
    let position = |i: usize| -> (f64, f64) {
        // Node 0 at the top, the others clockwise.
        let angle = std::f64::consts::FRAC_PI_2 - std::f64::consts::TAU * i as f64 / n as f64;
        (angle.cos(), angle.sin())
    };
    let links = links(record);
    svg::render("topology", (SIDE, SIDE), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Connections at the end of the run (mesh links marked)",
                svg::title(),
            )
            .margin(16)
            .build_cartesian_2d(-1.3..1.3, -1.3..1.3)?;
        let styles = [
            (
                Link::Missing,
                RGBColor(214, 39, 40).mix(0.6).stroke_width(1),
                "planned, not connected",
            ),
            (
                Link::Connected,
                RGBColor(150, 150, 150).mix(0.8).stroke_width(1),
                "connected, not in a mesh",
            ),
            (
                Link::MeshOneWay,
                RGBColor(31, 119, 180).mix(0.6).stroke_width(2),
                "in one end's mesh",
            ),
            (
                Link::Mesh,
                RGBColor(31, 119, 180).stroke_width(4),
                "in both ends' meshes",
            ),
        ];
        for (kind, style, name) in styles {
            let edges: Vec<Vec<(f64, f64)>> = links
                .iter()
                .filter(|(_, l)| **l == kind)
                .map(|((a, b), _)| vec![position(*a), position(*b)])
                .collect();
            let drawn = if kind == Link::Missing {
                chart.draw_series(
                    edges
                        .into_iter()
                        .flat_map(|e| DashedLineSeries::new(e, 6, 6, style)),
                )?
            } else {
                chart.draw_series(edges.into_iter().map(|e| PathElement::new(e, style)))?
            };
            drawn
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        for (i, node) in record.nodes.iter().enumerate() {
            let fill = match i {
                0 => RGBColor(230, 120, 20),
                _ if Some(i) == late => RGBColor(148, 103, 189),
                _ => RGBColor(44, 110, 160),
            };
            let at = position(i);
            chart.draw_series(std::iter::once(Circle::new(at, NODE_RADIUS, fill.filled())))?;
            let label = (svg::FONT, 13)
                .into_font()
                .color(&WHITE)
                .pos(Pos::new(HPos::Center, VPos::Center));
            chart.draw_series(std::iter::once(Text::new(i.to_string(), at, label)))?;
            let mut note = Vec::new();
            if i == 0 {
                note.push("sequencer".to_owned());
            }
            if Some(i) == late {
                note.push("late joiner".to_owned());
            }
            if node.outside_peers > 0 {
                note.push(format!("+{} outside peer(s)", node.outside_peers));
            }
            if !node.topology_known {
                note.push("no answer".to_owned());
            }
            if !note.is_empty() {
                let below = (at.0 * 1.16, at.1 * 1.16);
                let style = (svg::FONT, 12)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                chart.draw_series(std::iter::once(Text::new(note.join(", "), below, style)))?;
            }
        }
        chart
            .configure_series_labels()
            .label_font((svg::FONT, 13))
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devnet::report_html::data::NodeRecord;

    #[test]
    fn links_take_the_strongest_view_of_either_end() {
        let node = |peers: &[usize], mesh: &[usize]| NodeRecord {
            peers: peers.to_vec(),
            mesh: mesh.to_vec(),
            topology_known: true,
            ..NodeRecord::default()
        };
        let record = RunRecord {
            nodes: vec![
                node(&[1, 2], &[1]),
                node(&[0], &[0]),
                node(&[0], &[]),
                node(&[], &[]),
            ],
            planned_edges: vec![(0, 1), (2, 3)],
            ..RunRecord::default()
        };
        let l = links(&record);
        assert_eq!(l.get(&(0, 1)), Some(&Link::Mesh));
        assert_eq!(l.get(&(0, 2)), Some(&Link::Connected));
        assert_eq!(l.get(&(2, 3)), Some(&Link::Missing));
        assert_eq!(l.len(), 3);
    }
}
