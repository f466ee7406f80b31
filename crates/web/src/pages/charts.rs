//! Charts for the reports page: bars drawn as SVG on the server by plotters' SVG backend.
//! The bars carry no text (plotters' text needs font files, which a server may lack); the
//! labels and values are written by the template beside each chart, in the reader's
//! language, so the chart is readable without fonts and by screen readers.

use plotters::prelude::*;

/// One bar: its label (shown by the template) and value.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: i64,
    /// The value as shown (`12`, `¥3.00`, `2 h`).
    pub shown: String,
}

/// A chart: a title, its bars, and the SVG.
#[derive(Debug, Clone)]
pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub bars: Vec<Bar>,
    pub svg: String,
}

const WIDTH: u32 = 480;
const HEIGHT: u32 = 180;
const COLOURS: [RGBColor; 5] = [
    RGBColor(11, 92, 173),
    RGBColor(33, 150, 83),
    RGBColor(226, 149, 20),
    RGBColor(164, 38, 44),
    RGBColor(110, 84, 170),
];

/// Vertical bars scaled to the largest value; an empty or all-zero chart is a baseline.
pub fn bar_svg(values: &[i64]) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let max = values.iter().copied().max().unwrap_or(0).max(1);
        let n = values.len().max(1) as i64;
        let slot = i64::from(WIDTH) / n;
        let usable = i64::from(HEIGHT) - 12;
        for (i, value) in values.iter().enumerate() {
            let i = i as i64;
            let height = (value.max(&0) * usable) / max;
            let x0 = (i * slot + slot / 6) as i32;
            let x1 = ((i + 1) * slot - slot / 6) as i32;
            let y0 = (i64::from(HEIGHT) - 2 - height) as i32;
            let colour = COLOURS[(i as usize) % COLOURS.len()];
            let _ = root.draw(&Rectangle::new(
                [(x0, y0), (x1, HEIGHT as i32 - 2)],
                colour.filled(),
            ));
        }
        let _ = root.draw(&PathElement::new(
            vec![(0, HEIGHT as i32 - 2), (WIDTH as i32, HEIGHT as i32 - 2)],
            BLACK.stroke_width(1),
        ));
        let _ = root.present();
    }
    svg
}

impl Chart {
    pub fn new(id: &'static str, title: String, bars: Vec<Bar>) -> Chart {
        let values: Vec<i64> = bars.iter().map(|b| b.value).collect();
        let svg = bar_svg(&values);
        Chart {
            id,
            title,
            bars,
            svg,
        }
    }

    /// The SVG with the chart's title for screen readers.
    pub fn svg_markup(&self) -> String {
        self.svg.replacen(
            "<svg ",
            &format!(
                "<svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" preserveAspectRatio=\"none\" ",
                html_escape(&self.title)
            ),
            1,
        )
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_drawn_as_svg_rectangles() {
        let svg = bar_svg(&[3, 0, 7]);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.matches("<rect").count() >= 3, "{svg}");
        let chart = Chart::new("c", "a <b>".into(), vec![]);
        assert!(chart.svg_markup().contains("aria-label=\"a &lt;b&gt;\""));
    }
}
