//! The comparison's report pieces that do not measure: the machine's description, XML escaping and
//! the SVG plot (ns/op vs threads, one panel per group), also rebuilt from a committed CSV
//! (`cargo bench --bench compare -- --replot DIR`). `tests/percpu.rs` parses the SVG it writes and
//! the committed one with an XML parser.

use std::fmt::Write as _;

/// One line of a panel.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// An rseq variant (drawn bold and solid).
    pub rseq: bool,
    /// ns/op per thread count.
    pub cells: Vec<f64>,
}

/// One plot: a group of variants.
#[derive(Debug, Clone)]
pub struct Panel {
    pub group: String,
    pub series: Vec<Series>,
}

/// Text for XML character data and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// "<processor model>, N CPUs, Linux <release>": results move a lot between machine classes, so
/// every report names the machine.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Processor"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown processor".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string());
    format!("{model}, {cpus} CPUs, Linux {kernel}")
}

/// The panels of a `compare.csv` (`group,variant,rseq,threads,ns_per_op`, in the order written).
pub fn panels_from_csv(csv: &str, threads: &[usize]) -> Result<Vec<Panel>, String> {
    let mut panels: Vec<Panel> = Vec::new();
    for (n, line) in csv.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let [group, name, rseq, t, v] = f[..] else {
            return Err(format!("line {}: expected 5 fields: {line}", n + 1));
        };
        let t: usize = t
            .parse()
            .map_err(|_| format!("line {}: threads `{t}`", n + 1))?;
        let v: f64 = v
            .parse()
            .map_err(|_| format!("line {}: ns/op `{v}`", n + 1))?;
        let k = threads
            .iter()
            .position(|&x| x == t)
            .ok_or_else(|| format!("line {}: {t} threads is not a measured count", n + 1))?;
        if panels.last().is_none_or(|p| p.group != group) {
            panels.push(Panel {
                group: group.into(),
                series: Vec::new(),
            });
        }
        let panel = panels.last_mut().expect("pushed above");
        if panel.series.last().is_none_or(|s| s.name != name) {
            panel.series.push(Series {
                name: name.into(),
                rseq: rseq == "true",
                cells: vec![f64::NAN; threads.len()],
            });
        }
        panel.series.last_mut().expect("pushed above").cells[k] = v;
    }
    Ok(panels)
}

/// ns/op vs threads, one panel per group, log-scale y; `title` (the machine and the run) on top.
pub fn svg(panels: &[Panel], threads: &[usize], title: &str) -> String {
    const COLORS: [&str; 8] = [
        "#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    ];
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Room below each plot for the x axis and one legend line per variant.
    let most = panels.iter().map(|p| p.series.len()).max().unwrap_or(0) as f64;
    let (pw, ph, cols, top) = (560.0, 300.0 + 14.0 * most, 2usize, 24.0);
    let rows = panels.len().div_ceil(cols);
    let (w, h) = (pw * cols as f64, top + ph * rows as f64);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"16\" font-size=\"12\">{}</text>\n",
        escape(title)
    );
    for (gi, p) in panels.iter().enumerate() {
        let (ox, oy) = ((gi % cols) as f64 * pw, top + (gi / cols) as f64 * ph);
        let (l, t, pr, pb) = (ox + 60.0, oy + 30.0, ox + pw - 20.0, oy + 250.0);
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for v in p.series.iter().flat_map(|x| x.cells.iter().copied()) {
            if v.is_finite() && v > 0.0 {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if lo > hi {
            (lo, hi) = (1.0, 10.0);
        }
        let (llo, lhi) = (
            lo.log10().floor(),
            hi.log10().ceil().max(lo.log10().floor() + 1.0),
        );
        let y = |v: f64| pb - (v.log10() - llo) / (lhi - llo) * (pb - t);
        let x = |k: usize| l + k as f64 / (threads.len().max(2) - 1) as f64 * (pr - l);
        writeln!(
            s,
            "<text x=\"{l}\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">{}</text>",
            oy + 18.0,
            escape(&p.group)
        )
        .unwrap();
        writeln!(
            s,
            "<rect x=\"{l}\" y=\"{t}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>",
            pr - l,
            pb - t
        )
        .unwrap();
        let mut d = llo;
        while d <= lhi {
            for m in [1.0, 2.0, 5.0] {
                let v = 10f64.powf(d) * m;
                if v.log10() > lhi + 1e-9 {
                    continue;
                }
                let yy = y(v);
                writeln!(s, "<line x1=\"{l}\" y1=\"{yy:.1}\" x2=\"{pr}\" y2=\"{yy:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>", l - 4.0, yy + 4.0, v).unwrap();
            }
            d += 1.0;
        }
        for (k, th) in threads.iter().enumerate() {
            writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{th}</text>",
                x(k),
                pb + 14.0
            )
            .unwrap();
        }
        writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">threads ({cpus} CPUs)</text>",
            (l + pr) / 2.0,
            pb + 28.0
        )
        .unwrap();
        writeln!(s, "<text transform=\"translate({},{:.1}) rotate(-90)\" text-anchor=\"middle\">ns/op (log)</text>", ox + 14.0, (t + pb) / 2.0).unwrap();
        for (vi, se) in p.series.iter().enumerate() {
            let c = COLORS[vi % COLORS.len()];
            let width = if se.rseq { 2.5 } else { 1.2 };
            let dash = if se.rseq {
                ""
            } else {
                " stroke-dasharray=\"4 3\""
            };
            let pts: Vec<String> = se
                .cells
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite() && **v > 0.0)
                .map(|(k, v)| format!("{:.1},{:.1}", x(k), y(*v)))
                .collect();
            writeln!(s, "<polyline points=\"{}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"{width}\"{dash}/>", pts.join(" ")).unwrap();
            let ly = pb + 44.0 + vi as f64 * 14.0;
            writeln!(s, "<line x1=\"{l}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"{c}\" stroke-width=\"{width}\"{dash}/><text x=\"{}\" y=\"{:.1}\">{}</text>", ly - 4.0, l + 24.0, ly - 4.0, l + 30.0, ly, escape(&se.name)).unwrap();
        }
    }
    s.push_str("</svg>\n");
    s
}
