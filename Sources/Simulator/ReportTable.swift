/// The terminal rendering of a report: one row per arm, then the daily rows.
public enum ReportTable {
    public static func render(_ report: SimulationReport) -> String {
        func pct(_ v: Double) -> String { fixed(v * 100, 2) + "%" }
        func money(_ micros: Int64) -> String { fixed(Double(micros) / 1_000_000, 2) }
        func interval(_ i: [Double], scale: Double = 1, suffix: String = "") -> String {
            i.count == 2 ? "[\(fixed(i[0] * scale, 2))\(suffix), \(fixed(i[1] * scale, 2))\(suffix)]" : "-"
        }
        var rows: [[String]] = [[
            "arm", "users", "impressions", "clicks", "CTR", "CTR 95% CI", "expected CTR", "conv", "CVR", "revenue", "rev/user 95% CI",
            "RPM", "eCPM", "hide rate", "sessions/user/day", "session s", "session s 95% CI", "return",
        ]]
        for name in report.arms.keys.sorted() {
            guard let a = report.arms[name] else { continue }
            rows.append([
                name, String(a.users), String(a.impressions), String(a.clicks), pct(a.ctr), interval(a.ci95.ctr, scale: 100, suffix: "%"),
                pct(a.expectedCtr), String(a.conversions), pct(a.cvr), money(a.revenueMicros),
                interval(a.ci95.revenuePerUserMicros, scale: 1e-6), fixed(a.rpmMicros / 1e6, 3), fixed(a.ecpmMicros / 1e6, 3),
                pct(a.hideRate), fixed(a.sessionsPerUser, 3), fixed(a.sessionLengthS, 1), interval(a.ci95.sessionLengthS), a.returnRate.map(pct) ?? "-",
            ])
        }
        var out = "AdServe simulation — seed \(report.seed), \(report.days) days, \(report.users) users, \(report.ads) ads in \(report.campaigns) campaigns\n"
        out += "money in currency units (1 = 1,000,000 micros)\n\n" + table(rows) + "\n"
        var daily: [[String]] = [["arm", "day", "impressions", "CTR", "revenue", "hide rate", "session s", "return"]]
        for name in report.arms.keys.sorted() {
            for d in report.arms[name]?.byDay ?? [] {
                daily.append([name, String(d.day ?? 0), String(d.impressions), pct(d.ctr), money(d.revenueMicros), pct(d.hideRate), fixed(d.sessionLengthS, 1), d.returnRate.map(pct) ?? "-"])
            }
        }
        out += "\nby day\n" + table(daily) + "\n"
        var budgets: [[String]] = [["day", "spend", "campaigns ≥90% of daily budget", "max overspend (micros)"]]
        for b in report.budgets { budgets.append([String(b.day), money(b.spendMicros), pct(b.shareSpent90pct), String(b.maxOverspendMicros)]) }
        return out + "\nbudgets\n" + table(budgets)
    }

    /// Rows of cells as left-aligned columns; the first row is the header.
    public static func table(_ rows: [[String]]) -> String {
        let widths = (0..<(rows.first?.count ?? 0)).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { c, cell in cell + String(repeating: " ", count: widths[c] - cell.count) }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// `v` with `digits` decimals, rounded half away from zero (deterministic, no locale).
    static func fixed(_ v: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let n = Int64((abs(v) * scale).rounded())
        let whole = n / Int64(scale)
        let frac = String(n % Int64(scale))
        let sign = v < 0 && n != 0 ? "-" : ""
        return digits == 0 ? "\(sign)\(whole)" : "\(sign)\(whole).\(String(repeating: "0", count: digits - frac.count))\(frac)"
    }
}
