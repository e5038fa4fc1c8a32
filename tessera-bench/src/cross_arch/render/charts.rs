//! The PNG charts of one task: receiver accuracy, agreement with the transmitter and transfer
//! time per pair (default variant, with the predecessor's re-measured figures where it has them),
//! and the ablation (mean agreement after per variant).
//!
//! `plotters` maps the coordinates and draws the shapes into an in-memory RGB buffer; the text is
//! rasterised here with `ab_glyph` from the bundled DejaVu Sans (plotters 0.3.7's own `ab_glyph`
//! text path ignores glyph side bearings, which spaces letters unevenly: "0.800" reads "0 800");
//! `png` encodes the result. Pair labels go under their group on one line when they fit, on two
//! lines (`tx→` / `rx`) when those fit, and otherwise turned a quarter, shortened in the middle
//! with `…` if still too long.

use std::error::Error as StdError;
use std::sync::OnceLock;

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use plotters::backend::RGBPixel;
use plotters::prelude::*;

use super::{default_variant, pair_label, predecessor_of, rows_of, summarise, Chart};
use crate::cross_arch::results::TaskResults;
use crate::{Error, Result};

/// DejaVu Sans (see `assets/fonts/LICENSE`), the only font the charts use.
static DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Narrowest chart width; wider when there are many pairs.
const MIN_WIDTH: u32 = 900;
/// Widest chart width.
const MAX_WIDTH: u32 = 2400;
/// Chart height with one-line category labels.
const BASE_HEIGHT: u32 = 420;
/// Title and legend band at the top.
const HEADER: u32 = 62;
/// Space around the plot.
const MARGIN: u32 = 14;
/// Width of the y axis labels and description.
const Y_LABEL_AREA: u32 = 72;
/// Height of the x label area with one-line labels.
const ONE_LINE_AREA: u32 = 30;
/// Height of the x label area with two-line labels.
const TWO_LINE_AREA: u32 = 50;
/// Tallest x label area (turned labels).
const MAX_TURNED_AREA: u32 = 240;

/// Text sizes (ab_glyph pixel scale: ascent to descent).
const TITLE_SIZE: f32 = 20.0;
const LABEL_SIZE: f32 = 15.0;
const TICK_SIZE: f32 = 14.0;
const VALUE_SIZE: f32 = 13.0;

const GREY: RGBColor = RGBColor(158, 158, 158);
const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const DARK: RGBColor = RGBColor(40, 40, 40);
const GRID: RGBColor = RGBColor(225, 225, 225);

/// Drawing errors, turned into [`Error::Render`] with the chart's name by [`BarChart::render`].
type DrawResult<T> = std::result::Result<T, Box<dyn StdError>>;

/// Colours of successive lines of a [`line_chart`].
const PALETTE: [RGBColor; 8] = [
    BLUE,
    ORANGE,
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    DARK,
];

/// A chart of `lines` (name, one value per category; `None` leaves a gap) over `categories`,
/// on a 0–1 axis: for curves such as agreement against the privacy budget.
pub fn line_chart(
    file_name: &str,
    title: &str,
    y_desc: &str,
    categories: &[String],
    lines: Vec<(String, Vec<Option<f64>>)>,
) -> Result<Chart> {
    BarChart {
        file_name: file_name.into(),
        title: title.into(),
        y_desc: y_desc.into(),
        scale: Scale::Unit,
        value_decimals: 3,
        categories: categories.iter().map(|text| Label::single(text)).collect(),
        series: lines
            .into_iter()
            .enumerate()
            .map(|(index, (name, values))| {
                Series::line(&name, PALETTE[index % PALETTE.len()], values)
            })
            .collect(),
    }
    .render()
}

pub(super) fn task_charts(task: &TaskResults, stem: &str) -> Result<Vec<Chart>> {
    let mut charts = Vec::new();
    let name = &task.task;
    if let Some(variant) = default_variant(task) {
        let rows = rows_of(task, &variant);
        if !rows.is_empty() {
            let categories: Vec<Label> = rows
                .iter()
                .map(|row| Label::pair(&row.transmitter, &row.receiver))
                .collect();
            let predecessors: Vec<_> = rows.iter().map(|row| predecessor_of(task, row)).collect();
            let from_predecessor = |field: fn(&super::PredecessorPair) -> Option<f64>| {
                predecessors
                    .iter()
                    .map(|pair| pair.and_then(field))
                    .collect::<Vec<_>>()
            };

            let accuracy = BarChart {
                file_name: format!("{stem}-accuracy.png"),
                title: format!("{name}: receiver accuracy before and after transfer ({variant})"),
                y_desc: "validation accuracy".into(),
                scale: Scale::Unit,
                value_decimals: 3,
                categories: categories.clone(),
                series: vec![
                    Series::bars(
                        "receiver before",
                        GREY,
                        rows.iter().map(|r| Some(r.rx_accuracy_before)).collect(),
                    ),
                    Series::bars(
                        "receiver after",
                        BLUE,
                        rows.iter().map(|r| Some(r.rx_accuracy_after)).collect(),
                    ),
                    Series::marker(
                        "transmitter",
                        DARK,
                        rows.iter().map(|r| Some(r.tx_accuracy)).collect(),
                    ),
                ],
            };
            charts.push(accuracy.render()?);

            let mut series = vec![
                Series::bars(
                    "before",
                    GREY,
                    rows.iter().map(|r| Some(r.agreement_before)).collect(),
                ),
                Series::bars(
                    "after",
                    BLUE,
                    rows.iter().map(|r| Some(r.agreement_after)).collect(),
                ),
            ];
            let predecessor_agreement = from_predecessor(|pair| pair.agreement_after);
            if predecessor_agreement.iter().any(Option::is_some) {
                series.push(Series::bars(
                    "predecessor after",
                    ORANGE,
                    predecessor_agreement,
                ));
            }
            let agreement = BarChart {
                file_name: format!("{stem}-agreement.png"),
                title: format!("{name}: agreement with the transmitter ({variant})"),
                y_desc: "top-1 agreement".into(),
                scale: Scale::Unit,
                value_decimals: 3,
                categories: categories.clone(),
                series,
            };
            charts.push(agreement.render()?);

            let mut series = vec![Series::bars(
                "Tessera",
                BLUE,
                rows.iter().map(|r| Some(r.seconds)).collect(),
            )];
            let predecessor_seconds = from_predecessor(|pair| pair.seconds);
            if predecessor_seconds.iter().any(Option::is_some) {
                series.push(Series::bars("predecessor", ORANGE, predecessor_seconds));
            }
            let seconds = BarChart {
                file_name: format!("{stem}-seconds.png"),
                title: format!("{name}: transfer time per pair ({variant})"),
                y_desc: "seconds".into(),
                scale: Scale::FromZero,
                value_decimals: 1,
                categories,
                series,
            };
            charts.push(seconds.render()?);
        }
    }

    let summaries = summarise(task);
    if !summaries.is_empty() {
        let ablation = BarChart {
            file_name: format!("{stem}-ablation.png"),
            title: format!("{name}: mean agreement after transfer per objective variant"),
            y_desc: "mean top-1 agreement".into(),
            scale: Scale::Unit,
            value_decimals: 3,
            categories: summaries
                .iter()
                .map(|s| Label::single(&s.variant))
                .collect(),
            series: vec![Series::bars(
                "mean agreement after",
                BLUE,
                summaries.iter().map(|s| s.mean_agreement_after).collect(),
            )],
        };
        charts.push(ablation.render()?);
    }
    Ok(charts)
}

/// The bundled font, parsed once.
fn font() -> Result<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(DEJAVU_SANS).ok())
        .as_ref()
        .ok_or_else(|| Error::Render {
            context: "charts".into(),
            message: "the bundled DejaVu Sans does not load".into(),
        })
}

/// A category's label under the x axis.
#[derive(Debug, Clone)]
struct Label {
    /// The whole label on one line.
    one_line: String,
    /// Transmitter and receiver, for a pair's label.
    pair: Option<(String, String)>,
}

impl Label {
    fn pair(transmitter: &str, receiver: &str) -> Self {
        Self {
            one_line: pair_label(transmitter, receiver),
            pair: Some((transmitter.to_string(), receiver.to_string())),
        }
    }

    fn single(text: &str) -> Self {
        Self {
            one_line: text.to_string(),
            pair: None,
        }
    }

    /// The label on two lines (`tx→` and `rx`), where that makes sense.
    fn two_lines(&self) -> Option<(String, String)> {
        self.pair
            .as_ref()
            .map(|(transmitter, receiver)| (format!("{transmitter}→"), receiver.clone()))
    }

    /// The one-line label, at most `max` pixels wide: a pair shortens the middle of the longer
    /// of its two names first, so both keep their beginning and end.
    fn fitted(&self, typeset: &Typeset, max: f32, size: f32) -> String {
        let Some((transmitter, receiver)) = &self.pair else {
            return typeset.fit(&self.one_line, max, size);
        };
        let (tx, rx): (Vec<char>, Vec<char>) =
            (transmitter.chars().collect(), receiver.chars().collect());
        let (mut keep_tx, mut keep_rx) = (tx.len(), rx.len());
        loop {
            let candidate = pair_label(&shorten(&tx, keep_tx), &shorten(&rx, keep_rx));
            if typeset.width(&candidate, size) <= max || (keep_tx <= 1 && keep_rx <= 1) {
                return candidate;
            }
            if keep_tx >= keep_rx {
                keep_tx -= 1;
            } else {
                keep_rx -= 1;
            }
        }
    }
}

/// `chars` whole when `keep` covers them, else their first and last `keep` characters (the
/// first half rounded up) around `…`.
fn shorten(chars: &[char], keep: usize) -> String {
    if keep >= chars.len() {
        return chars.iter().collect();
    }
    let head = keep.div_ceil(2);
    let tail = keep - head;
    chars[..head]
        .iter()
        .chain(std::iter::once(&'…'))
        .chain(&chars[chars.len() - tail..])
        .collect()
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// One bar per category, side by side with the other bar series.
    Bar,
    /// A horizontal tick across the whole group.
    Marker,
    /// A line through the group centres, with a dot at each value.
    Line,
}

/// One series of values, one per category (`None`: nothing drawn there).
#[derive(Debug, Clone)]
struct Series {
    name: String,
    color: RGBColor,
    kind: Kind,
    values: Vec<Option<f64>>,
}

impl Series {
    fn bars(name: &str, color: RGBColor, values: Vec<Option<f64>>) -> Self {
        Self {
            name: name.into(),
            color,
            kind: Kind::Bar,
            values,
        }
    }

    fn marker(name: &str, color: RGBColor, values: Vec<Option<f64>>) -> Self {
        Self {
            name: name.into(),
            color,
            kind: Kind::Marker,
            values,
        }
    }

    fn line(name: &str, color: RGBColor, values: Vec<Option<f64>>) -> Self {
        Self {
            name: name.into(),
            color,
            kind: Kind::Line,
            values,
        }
    }

    /// The finite values with their category index.
    fn points(&self) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.values
            .iter()
            .enumerate()
            .filter_map(|(i, value)| value.filter(|v| v.is_finite()).map(|v| (i, v)))
    }
}

/// The y axis range.
#[derive(Debug, Clone, Copy)]
enum Scale {
    /// 0 to 1 (widened if a value falls outside).
    Unit,
    /// 0 to a little above the largest value.
    FromZero,
}

/// How category labels are laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    OneLine,
    TwoLines,
    /// Turned a quarter (reading upwards), in an x label area this tall.
    Turned(u32),
}

impl Layout {
    fn area(self) -> u32 {
        match self {
            Layout::OneLine => ONE_LINE_AREA,
            Layout::TwoLines => TWO_LINE_AREA,
            Layout::Turned(area) => area,
        }
    }
}

/// A grouped bar chart over categories.
struct BarChart {
    file_name: String,
    title: String,
    y_desc: String,
    scale: Scale,
    /// Decimals of the values printed above bars (when there is room).
    value_decimals: usize,
    categories: Vec<Label>,
    series: Vec<Series>,
}

impl BarChart {
    /// Draws the chart and encodes it as PNG.
    fn render(&self) -> Result<Chart> {
        let typeset = Typeset { font: font()? };
        let (width, height, layout) = self.size(&typeset);
        let mut rgb = vec![255u8; width as usize * height as usize * 3];
        let texts = self
            .draw_shapes(&mut rgb, width, height, layout, &typeset)
            .map_err(|e| Error::Render {
                context: format!("chart {}", self.file_name),
                message: e.to_string(),
            })?;
        let mut canvas = Canvas {
            rgb: &mut rgb,
            width,
            height,
        };
        for text in &texts {
            typeset.paint(text, &mut canvas);
        }
        let png = encode_png(&rgb, width, height).map_err(|e| Error::Render {
            context: format!("chart {} as PNG", self.file_name),
            message: e.to_string(),
        })?;
        Ok(Chart {
            file_name: self.file_name.clone(),
            title: self.title.clone(),
            png,
        })
    }

    /// The image size and label layout: wider for many groups, taller for turned labels.
    fn size(&self, typeset: &Typeset) -> (u32, u32, Layout) {
        let n = self.categories.len().max(1) as u32;
        let bars = self
            .series
            .iter()
            .filter(|s| s.kind == Kind::Bar)
            .count()
            .max(1) as u32;
        let wanted = Y_LABEL_AREA + 2 * MARGIN + n * (bars * 10 + 12);
        let width = wanted.clamp(MIN_WIDTH, MAX_WIDTH);
        let slot = ((width - Y_LABEL_AREA - 2 * MARGIN) / n) as f32;
        let fits = |text: &str| typeset.width(text, LABEL_SIZE) + 6.0 <= slot;
        let all_one = self.categories.iter().all(|label| fits(&label.one_line));
        let all_two = self.categories.iter().all(|label| match label.two_lines() {
            Some((first, second)) => fits(&first) && fits(&second),
            None => fits(&label.one_line),
        });
        let layout = if all_one {
            Layout::OneLine
        } else if all_two {
            Layout::TwoLines
        } else {
            let widest = self
                .categories
                .iter()
                .map(|label| typeset.width(&label.one_line, LABEL_SIZE))
                .fold(0.0, f32::max);
            Layout::Turned((widest.ceil() as u32 + 16).clamp(ONE_LINE_AREA, MAX_TURNED_AREA))
        };
        (width, BASE_HEIGHT + layout.area() - ONE_LINE_AREA, layout)
    }

    /// The y range (on whole ticks) and its tick step.
    fn y_axis(&self) -> (f64, f64, f64) {
        let values: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points().map(|(_, v)| v))
            .collect();
        let low = values.iter().copied().fold(0.0, f64::min);
        let high = values.iter().copied().fold(0.0, f64::max);
        let high = match self.scale {
            Scale::Unit => high.max(1.0),
            Scale::FromZero if high > 0.0 => high * 1.08,
            Scale::FromZero => 1.0,
        };
        let step = nice_step(high - low);
        let low = (low / step).floor() * step;
        let high = (high / step - 1e-9).ceil() * step;
        (low, high, step)
    }

    /// Draws everything but text with plotters; returns the text to paint over it.
    fn draw_shapes(
        &self,
        rgb: &mut [u8],
        width: u32,
        height: u32,
        layout: Layout,
        typeset: &Typeset,
    ) -> DrawResult<Vec<Text>> {
        let mut texts = Vec::new();
        let backend = BitMapBackend::<RGBPixel>::with_buffer_and_format(rgb, (width, height))?;
        let root = backend.into_drawing_area();
        root.fill(&WHITE)?;
        let (header, body) = root.split_vertically(HEADER);

        // Title, then the legend lined up with the plot.
        let title_room = width.saturating_sub(2 * MARGIN) as f32;
        texts.push(Text::new(
            typeset.fit(&self.title, title_room, TITLE_SIZE),
            (MARGIN as i32, 8),
            TITLE_SIZE,
            (Align::Start, Align::Start),
        ));
        let legend_y = 46;
        let mut x = (MARGIN + Y_LABEL_AREA) as i32;
        for series in &self.series {
            match series.kind {
                Kind::Bar => header.draw(&Rectangle::new(
                    [(x, legend_y - 6), (x + 14, legend_y + 6)],
                    series.color.filled(),
                ))?,
                Kind::Marker | Kind::Line => header.draw(&PathElement::new(
                    vec![(x, legend_y), (x + 14, legend_y)],
                    series.color.stroke_width(3),
                ))?,
            }
            texts.push(Text::new(
                series.name.clone(),
                (x + 20, legend_y),
                LABEL_SIZE,
                (Align::Start, Align::Middle),
            ));
            x += 20 + typeset.width(&series.name, LABEL_SIZE).ceil() as i32 + 24;
        }

        let n = self.categories.len().max(1);
        let (x_low, x_high) = (-0.5, n as f64 - 0.5);
        let (y_low, y_high, step) = self.y_axis();
        let chart = ChartBuilder::on(&body)
            .margin_left(MARGIN)
            .margin_right(MARGIN)
            .margin_top(4)
            .margin_bottom(4)
            .x_label_area_size(layout.area())
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(x_low..x_high, y_low..y_high)?;

        // Grid, ticks and tick labels, axes, the y description.
        let decimals = (-step.log10() - 1e-9).ceil().max(0.0) as usize;
        let ticks = ((y_high - y_low) / step).round() as i64;
        for k in 0..=ticks {
            let value = y_low + k as f64 * step;
            let (left, y) = chart.backend_coord(&(x_low, value));
            let (right, _) = chart.backend_coord(&(x_high, value));
            root.draw(&PathElement::new(vec![(left, y), (right, y)], GRID))?;
            root.draw(&PathElement::new(vec![(left - 5, y), (left, y)], DARK))?;
            texts.push(Text::new(
                format!("{value:.decimals$}"),
                (left - 8, y),
                TICK_SIZE,
                (Align::End, Align::Middle),
            ));
        }
        let (left, top) = chart.backend_coord(&(x_low, y_high));
        let (right, bottom) = chart.backend_coord(&(x_high, y_low));
        let (_, zero) = chart.backend_coord(&(x_low, 0.0));
        root.draw(&PathElement::new(vec![(left, top), (left, bottom)], DARK))?;
        root.draw(&PathElement::new(vec![(left, zero), (right, zero)], DARK))?;
        texts.push(
            Text::new(
                self.y_desc.clone(),
                (MARGIN as i32, (top + bottom) / 2),
                LABEL_SIZE,
                (Align::Middle, Align::Start),
            )
            .turned(),
        );

        // Bars, side by side within each group, with their values when there is room.
        let bars: Vec<&Series> = self.series.iter().filter(|s| s.kind == Kind::Bar).collect();
        let slot = 0.8 / bars.len().max(1) as f64;
        let bar_px = (right - left) as f64 / n as f64 * slot;
        let decimals = self.value_decimals;
        for (j, series) in bars.iter().enumerate() {
            for (i, v) in series.points() {
                let x0 = i as f64 - 0.4 + j as f64 * slot;
                root.draw(&Rectangle::new(
                    [
                        chart.backend_coord(&(x0 + 0.01, 0.0)),
                        chart.backend_coord(&(x0 + slot - 0.01, v)),
                    ],
                    series.color.filled(),
                ))?;
                let label = format!("{v:.decimals$}");
                if typeset.width(&label, VALUE_SIZE) + 4.0 <= bar_px as f32 {
                    let (x, y) = chart.backend_coord(&(x0 + slot / 2.0, v.max(0.0)));
                    texts.push(Text::new(
                        label,
                        (x, y - 2),
                        VALUE_SIZE,
                        (Align::Middle, Align::End),
                    ));
                }
            }
        }
        // Markers across each group.
        for series in self.series.iter().filter(|s| s.kind == Kind::Marker) {
            for (i, v) in series.points() {
                root.draw(&PathElement::new(
                    vec![
                        chart.backend_coord(&(i as f64 - 0.44, v)),
                        chart.backend_coord(&(i as f64 + 0.44, v)),
                    ],
                    series.color.stroke_width(3),
                ))?;
            }
        }

        // Lines through the group centres.
        for series in self.series.iter().filter(|s| s.kind == Kind::Line) {
            let points: Vec<(i32, i32)> = series
                .points()
                .map(|(i, v)| chart.backend_coord(&(i as f64, v)))
                .collect();
            root.draw(&PathElement::new(
                points.clone(),
                series.color.stroke_width(2),
            ))?;
            for point in points {
                root.draw(&Circle::new(point, 4, series.color.filled()))?;
            }
        }

        // Category labels.
        let group_px = (right - left) as f32 / n as f32;
        let room = group_px - 4.0;
        for (i, label) in self.categories.iter().enumerate() {
            let (x, _) = chart.backend_coord(&(i as f64, y_low));
            let y = bottom + 6;
            match layout {
                Layout::OneLine => texts.push(Text::new(
                    label.fitted(typeset, room, LABEL_SIZE),
                    (x, y),
                    LABEL_SIZE,
                    (Align::Middle, Align::Start),
                )),
                Layout::TwoLines => {
                    let (first, second) = label
                        .two_lines()
                        .unwrap_or_else(|| (label.one_line.clone(), String::new()));
                    let line = typeset.line_height(LABEL_SIZE).ceil() as i32;
                    for (k, text) in [first, second].iter().enumerate() {
                        texts.push(Text::new(
                            typeset.fit(text, room, LABEL_SIZE),
                            (x, y + k as i32 * line),
                            LABEL_SIZE,
                            (Align::Middle, Align::Start),
                        ));
                    }
                }
                Layout::Turned(area) => texts.push(
                    Text::new(
                        label.fitted(typeset, area as f32 - 12.0, LABEL_SIZE),
                        (x, y),
                        LABEL_SIZE,
                        (Align::End, Align::Middle),
                    )
                    .turned(),
                ),
            }
        }
        root.present()?;
        Ok(texts)
    }
}

/// A tick step of 1, 2 or 5 times a power of ten giving about five ticks over `span`.
fn nice_step(span: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let factor = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    factor * magnitude
}

/// Where a text's anchor lies along one of its axes (before turning).
#[derive(Debug, Clone, Copy)]
enum Align {
    Start,
    Middle,
    End,
}

/// One piece of text to paint.
#[derive(Debug, Clone)]
struct Text {
    text: String,
    /// The anchor, in pixels.
    at: (i32, i32),
    size: f32,
    /// Which point of the text's box (along, across the reading direction) sits on the anchor.
    align: (Align, Align),
    /// Reading upwards (turned a quarter anticlockwise) instead of left to right.
    turned: bool,
}

impl Text {
    fn new(text: String, at: (i32, i32), size: f32, align: (Align, Align)) -> Self {
        Self {
            text,
            at,
            size,
            align,
            turned: false,
        }
    }

    fn turned(self) -> Self {
        Self {
            turned: true,
            ..self
        }
    }
}

/// Lays out and rasterises text in the bundled font.
struct Typeset {
    font: &'static FontRef<'static>,
}

impl Typeset {
    /// The advance width of `text`, in pixels.
    fn width(&self, text: &str, size: f32) -> f32 {
        let font = self.font.as_scaled(PxScale::from(size));
        let mut width = 0.0;
        let mut previous = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(previous) = previous {
                width += font.kern(previous, id);
            }
            width += font.h_advance(id);
            previous = Some(id);
        }
        width
    }

    /// Ascent to descent, in pixels.
    fn line_height(&self, size: f32) -> f32 {
        let font = self.font.as_scaled(PxScale::from(size));
        font.ascent() - font.descent()
    }

    /// `text`, shortened in the middle with `…` until it is at most `max` pixels wide.
    fn fit(&self, text: &str, max: f32, size: f32) -> String {
        if self.width(text, size) <= max {
            return text.to_string();
        }
        let chars: Vec<char> = text.chars().collect();
        (1..chars.len())
            .rev()
            .map(|keep| shorten(&chars, keep))
            .find(|candidate| self.width(candidate, size) <= max)
            .unwrap_or_else(|| "…".into())
    }

    /// Paints `text` in [`DARK`], anti-aliased.
    fn paint(&self, text: &Text, canvas: &mut Canvas<'_>) {
        let scale = PxScale::from(text.size);
        let font = self.font.as_scaled(scale);
        let ascent = font.ascent();
        let offset = |align: Align, extent: f32| match align {
            Align::Start => 0.0,
            Align::Middle => extent / 2.0,
            Align::End => extent,
        };
        let dx = offset(text.align.0, self.width(&text.text, text.size));
        let dy = offset(text.align.1, ascent - font.descent());
        let (x, y) = (text.at.0 as f32, text.at.1 as f32);
        let mut pen = 0.0;
        let mut previous = None;
        for c in text.text.chars() {
            let id = font.glyph_id(c);
            if let Some(previous) = previous {
                pen += font.kern(previous, id);
            }
            let glyph = id.with_scale_and_position(scale, point(pen, ascent));
            pen += font.h_advance(id);
            previous = Some(id);
            let Some(outline) = self.font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let along = bounds.min.x + gx as f32 - dx;
                let across = bounds.min.y + gy as f32 - dy;
                let (px, py) = if text.turned {
                    (x + across, y - along)
                } else {
                    (x + along, y + across)
                };
                canvas.blend(px.round() as i64, py.round() as i64, DARK, coverage);
            });
        }
    }
}

/// The chart's RGB pixels, for painting text.
struct Canvas<'a> {
    rgb: &'a mut [u8],
    width: u32,
    height: u32,
}

impl Canvas<'_> {
    /// Mixes `color` into the pixel at (x, y) by `coverage` (0 to 1); outside pixels are skipped.
    fn blend(&mut self, x: i64, y: i64, color: RGBColor, coverage: f32) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        let alpha = coverage.clamp(0.0, 1.0);
        let at = (y as usize * self.width as usize + x as usize) * 3;
        for (k, channel) in [color.0, color.1, color.2].into_iter().enumerate() {
            let old = f32::from(self.rgb[at + k]);
            self.rgb[at + k] = (old + (f32::from(channel) - old) * alpha).round() as u8;
        }
    }
}

/// An RGB buffer as a PNG file.
fn encode_png(
    rgb: &[u8],
    width: u32,
    height: u32,
) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Balanced);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(rgb)?;
        writer.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    /// Width, height, colour type and bit depth from a PNG's header.
    fn header(png_bytes: &[u8]) -> (u32, u32, png::ColorType, png::BitDepth) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let reader = decoder.read_info().expect("PNG header");
        let info = reader.info();
        (info.width, info.height, info.color_type, info.bit_depth)
    }

    #[test]
    fn charts_of_the_sample_task() {
        let results = sample();
        let charts = task_charts(&results.tasks[0], "toy").expect("charts");
        let names: Vec<&str> = charts.iter().map(|c| c.file_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "toy-accuracy.png",
                "toy-agreement.png",
                "toy-seconds.png",
                "toy-ablation.png"
            ]
        );
        for chart in &charts {
            assert!(
                chart.png.starts_with(b"\x89PNG\r\n\x1a\n"),
                "{}",
                chart.file_name
            );
            assert_eq!(
                header(&chart.png),
                (
                    MIN_WIDTH,
                    BASE_HEIGHT,
                    png::ColorType::Rgb,
                    png::BitDepth::Eight
                ),
                "{}",
                chart.file_name
            );
            // The whole image decodes, and it holds blue bars and dark text.
            let decoder = png::Decoder::new(std::io::Cursor::new(chart.png.as_slice()));
            let mut reader = decoder.read_info().expect("PNG header");
            let mut pixels = vec![0; reader.output_buffer_size().expect("buffer size")];
            reader.next_frame(&mut pixels).expect("PNG data");
            let has = |color: RGBColor| {
                pixels
                    .chunks_exact(3)
                    .any(|p| p == [color.0, color.1, color.2])
            };
            assert!(has(BLUE) && has(DARK), "{}", chart.file_name);
        }
    }

    #[test]
    fn long_labels_turn_and_many_pairs_widen() {
        let mut results = sample();
        let task = &mut results.tasks[0];
        let template = task.rows[0].clone();
        task.rows.retain(|row| row.variant == "full");
        for k in 0..40 {
            let mut row = template.clone();
            row.transmitter = format!("transformer_{k}_with_a_rather_long_configuration_name");
            row.receiver = format!("lstm_{k}_also_long_enough_to_be_cut");
            task.rows.push(row);
        }
        let charts = task_charts(task, "wide").expect("charts");
        assert_eq!(charts.len(), 4);
        let (width, height, _, _) = header(&charts[0].png);
        assert!(width > MIN_WIDTH && width <= MAX_WIDTH, "{width}");
        assert!(
            height > BASE_HEIGHT && height <= BASE_HEIGHT + MAX_TURNED_AREA,
            "{height}"
        );
    }

    #[test]
    fn no_pairs_no_pair_charts() {
        let mut results = sample();
        results.tasks[0].rows.clear();
        let charts = task_charts(&results.tasks[0], "toy").expect("charts");
        let names: Vec<&str> = charts.iter().map(|c| c.file_name.as_str()).collect();
        assert_eq!(names, ["toy-ablation.png"]);
    }

    #[test]
    fn fitting_shortens_in_the_middle() {
        let typeset = Typeset {
            font: font().expect("font"),
        };
        let text = "transformer_64d_2L→lstm_128h_1L";
        assert_eq!(typeset.fit(text, 10_000.0, LABEL_SIZE), text);
        let short = typeset.fit(text, 80.0, LABEL_SIZE);
        assert!(
            short.contains('…') && short.starts_with('t') && short.ends_with('L'),
            "{short}"
        );
        assert!(typeset.width(&short, LABEL_SIZE) <= 80.0);
    }

    #[test]
    fn pair_labels_shorten_both_names() {
        let typeset = Typeset {
            font: font().expect("font"),
        };
        let label = Label::pair("transformer_64d_2L", "lstm_128h_1L");
        assert_eq!(label.fitted(&typeset, 10_000.0, LABEL_SIZE), label.one_line);
        let short = label.fitted(&typeset, 150.0, LABEL_SIZE);
        let (tx, rx) = short.split_once('→').expect("arrow");
        assert!(
            tx.starts_with("tr") && tx.ends_with("2L") && tx.contains('…'),
            "{short}"
        );
        assert!(rx.starts_with('l') && rx.ends_with('L'), "{short}");
        assert!(typeset.width(&short, LABEL_SIZE) <= 150.0);
        assert_eq!(shorten(&['a', 'b', 'c', 'd'], 4), "abcd");
        assert_eq!(shorten(&['a', 'b', 'c', 'd'], 3), "ab…d");
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(1.0), 0.2);
        assert_eq!(nice_step(7.0), 2.0);
        assert_eq!(nice_step(25.0), 5.0);
        assert_eq!(nice_step(30.0), 10.0);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
    }
}
