/// SVG line charts of a report's daily metrics, one line per arm.
public enum Charts {
    public struct Metric: Sendable {
        public var file: String
        public var title: String
        public var value: @Sendable (SimulationReport.Totals) -> Double
    }

    public static let metrics: [Metric] = [
        Metric(file: "ctr.svg", title: "CTR") { $0.ctr },
        Metric(file: "revenue.svg", title: "Revenue per day (currency units)") { Double($0.revenueMicros) / 1_000_000 },
        Metric(file: "rpm.svg", title: "RPM (micros per 1000 posts + ads)") { $0.rpmMicros },
        Metric(file: "hide_rate.svg", title: "Hide rate") { $0.hideRate },
        Metric(file: "session_length.svg", title: "Mean session length (s)") { $0.sessionLengthS },
    ]

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

    /// One chart: days on x, the metric on y, a polyline and a legend entry per arm.
    public static func svg(_ metric: Metric, report: SimulationReport) -> String {
        let width = 640.0, height = 360.0, left = 70.0, right = 150.0, top = 40.0, bottom = 40.0
        let names = report.arms.keys.sorted()
        let series = names.map { name in report.arms[name].map { $0.byDay.map(metric.value) } ?? [] }
        let values = series.flatMap { $0 }
        let high = max(values.max() ?? 1, 1e-12) * 1.1
        let low = min(values.min() ?? 0, 0)
        let days = max(report.days, 2)
        func x(_ day: Int) -> Double { left + Double(day) / Double(days - 1) * (width - left - right) }
        func y(_ v: Double) -> Double { top + (1 - (v - low) / (high - low)) * (height - top - bottom) }
        func format(_ v: Double) -> String {
            abs(v) >= 100 ? String(Int(v.rounded())) : String(format3(v))
        }
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="22" font-size="15">\(metric.title)</text>
            <line x1="\(left)" y1="\(y(low))" x2="\(width - right)" y2="\(y(low))" stroke="#333"/>
            <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(height - bottom)" stroke="#333"/>

            """
        for tick in 0...4 {
            let v = low + (high - low) * Double(tick) / 4
            out += "<text x=\"\(left - 6)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(format(v))</text>\n"
            out += "<line x1=\"\(left)\" y1=\"\(y(v))\" x2=\"\(width - right)\" y2=\"\(y(v))\" stroke=\"#eee\"/>\n"
        }
        for day in 0..<report.days {
            out += "<text x=\"\(x(day))\" y=\"\(height - bottom + 16)\" text-anchor=\"middle\">day \(day + 1)</text>\n"
        }
        for (i, points) in series.enumerated() {
            let color = colors[i % colors.count]
            let path = points.enumerated().map { "\(x($0.offset)),\(y($0.element))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            for (day, v) in points.enumerated() { out += "<circle cx=\"\(x(day))\" cy=\"\(y(v))\" r=\"3\" fill=\"\(color)\"/>\n" }
            out += "<text x=\"\(width - right + 12)\" y=\"\(top + 18 * Double(i) + 10)\" fill=\"\(color)\">\(names[i])</text>\n"
        }
        return out + "</svg>\n"
    }

    /// Three significant decimals without Foundation formatting.
    static func format3(_ v: Double) -> String {
        let scaled = (v * 1000).rounded() / 1000
        return String(scaled)
    }
}
