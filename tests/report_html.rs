//! `op-gossip devnet --report-html`: a small devnet with a late joiner and lost gossip writes one
//! HTML file that parses, holds the plots as inline SVG (text in a generic font family), shows
//! the run's figures, and refers to nothing outside itself.

mod common;

use common::devnet::run_devnet;
use scraper::{Html, Selector};

fn select<'a>(html: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    html.select(&Selector::parse(css).unwrap()).collect()
}

#[test]
fn the_html_report_is_self_contained_and_holds_the_plots() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    let path_arg = path.to_str().unwrap();
    let report = run_devnet(&[
        "--nodes",
        "4",
        "--blocks",
        "20",
        "--block-time",
        "50ms",
        "--block-size",
        "1KiB",
        "--late-joiner",
        "10",
        "--drop",
        "0.1",
        "--report-html",
        path_arg,
    ]);
    assert_eq!(report["all_stored"], true);
    let text = std::fs::read_to_string(&path).unwrap();
    let html = Html::parse_document(&text);
    assert!(
        html.errors.is_empty(),
        "HTML parse errors: {:?}",
        html.errors
    );
    assert_eq!(
        select(&html, "title")[0].text().collect::<String>(),
        "op-gossip devnet report"
    );

    // The plots: inline SVG, drawn (lines, marks and labels), text in a generic family.
    for id in [
        "latency", "reach", "topology", "heads", "arrivals", "counts", "memory",
    ] {
        let heading = select(&html, &format!("h2#{id}"));
        assert_eq!(heading.len(), 1, "section {id}");
        let figure = heading[0]
            .next_siblings()
            .find_map(scraper::ElementRef::wrap)
            .unwrap();
        assert_eq!(figure.value().name(), "figure", "section {id} has a plot");
        let svg = figure.select(&Selector::parse("svg").unwrap()).next();
        let svg = svg.unwrap_or_else(|| panic!("section {id}: no svg"));
        let marks = svg
            .select(&Selector::parse("polyline, path, circle, rect, line").unwrap())
            .count();
        assert!(marks > 10, "section {id}: {marks} marks");
        let labels: Vec<_> = svg.select(&Selector::parse("text").unwrap()).collect();
        assert!(!labels.is_empty(), "section {id}: no labels");
        for label in labels {
            assert_eq!(label.value().attr("font-family"), Some("sans-serif"));
        }
    }
    // No adversary and no engine in this run: said in words, not drawn.
    for id in ["adversary", "engine"] {
        let heading = select(&html, &format!("h2#{id}"))[0];
        let next = heading
            .next_siblings()
            .find_map(scraper::ElementRef::wrap)
            .unwrap();
        assert_eq!(next.value().attr("class"), Some("none"), "section {id}");
    }

    // The figures: the summary names the scenario, the per-node table has every node.
    let summary: String = select(&html, "#summary-table")[0].text().collect();
    assert!(
        summary.contains("4 (1 sequencer, 3 followers)"),
        "{summary}"
    );
    assert!(
        summary.contains("node 3 started after block 10"),
        "{summary}"
    );
    assert!(summary.contains("dropped 10% of gossip"), "{summary}");
    let rows = select(&html, "#per-node tr");
    assert_eq!(rows.len(), 1 + 4, "header and one row per node");
    let late_row: Vec<String> = rows[4]
        .select(&Selector::parse("td").unwrap())
        .map(|td| td.text().collect())
        .collect();
    assert_eq!(
        late_row[5], "20",
        "the late joiner stored every block: {late_row:?}"
    );
    assert!(
        late_row[6].parse::<u64>().unwrap() >= 10,
        "and fetched what it missed"
    );

    // Nothing outside the file: no script, stylesheet, image, frame or font is referenced.
    for tag in [
        "script", "link", "img", "iframe", "object", "embed", "image", "use",
    ] {
        assert!(select(&html, tag).is_empty(), "a <{tag}> element");
    }
    for element in html
        .root_element()
        .descendants()
        .filter_map(scraper::ElementRef::wrap)
    {
        for (name, value) in element.value().attrs() {
            if ["src", "href", "xlink:href", "srcset", "data", "action"].contains(&name) {
                assert!(
                    value.starts_with('#'),
                    "<{}> {name}={value}",
                    element.value().name()
                );
            }
        }
    }
    for style in select(&html, "style") {
        let css: String = style.text().collect();
        assert!(!css.contains("@import") && !css.contains("url(") && !css.contains("@font-face"));
    }
    // The only URL is the SVG namespace name, which is never fetched.
    let without_namespace = text.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!without_namespace.contains("http:") && !without_namespace.contains("https:"));
    assert!(
        !without_namespace.contains("//"),
        "no protocol-relative URL either"
    );
}
