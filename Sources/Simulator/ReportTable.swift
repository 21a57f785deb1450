import Domain

/// The terminal rendering of a report: one row per arm, then the daily rows.
public enum ReportTable {
    public static func render(_ report: SimulationReport) -> String {
        func pct(_ v: Double) -> String { TextTable.fixed(v * 100, 2) + "%" }
        func money(_ micros: Int64) -> String { TextTable.fixed(Double(micros) / 1_000_000, 2) }
        func interval(_ i: [Double], scale: Double = 1, suffix: String = "") -> String {
            i.count == 2 ? "[\(TextTable.fixed(i[0] * scale, 2))\(suffix), \(TextTable.fixed(i[1] * scale, 2))\(suffix)]" : "-"
        }
        var rows: [[String]] = [[
            "arm", "users", "impressions", "clicks", "CTR", "CTR 95% CI", "expected CTR", "conv", "CVR", "revenue", "rev/user 95% CI", "expected revenue",
            "RPM", "eCPM", "hide rate", "sessions/user/day", "session s", "session s 95% CI", "return", "most viewed", "explored", "ads shown",
        ]]
        for name in report.arms.keys.sorted() {
            guard let a = report.arms[name] else { continue }
            rows.append([
                name, String(a.users), String(a.impressions), String(a.clicks), pct(a.ctr), interval(a.ci95.ctr, scale: 100, suffix: "%"),
                pct(a.expectedCtr), String(a.conversions), pct(a.cvr), money(a.revenueMicros),
                interval(a.ci95.revenuePerUserMicros, scale: 1e-6), TextTable.fixed(a.expectedRevenueMicros / 1e6, 2), TextTable.fixed(a.rpmMicros / 1e6, 3), TextTable.fixed(a.ecpmMicros / 1e6, 3),
                pct(a.hideRate), TextTable.fixed(a.sessionsPerUser, 3), TextTable.fixed(a.sessionLengthS, 1), interval(a.ci95.sessionLengthS), a.returnRate.map(pct) ?? "-",
                pct(a.mostViewedShare), pct(a.explorationShare), String(a.adsShown),
            ])
        }
        var out = "AdServe simulation — seed \(report.seed), \(report.days) days, \(report.users) users, \(report.ads) ads in \(report.campaigns) campaigns\n"
        out += "money in currency units (1 = 1,000,000 micros)\n\n" + TextTable.render(rows) + "\n"
        if !report.comparisons.isEmpty {
            func lift(_ l: SimulationReport.Lift?) -> String {
                guard let l else { return "-" }
                func signed(_ v: Double) -> String { (v >= 0 ? "+" : "") + TextTable.fixed(v * 100, 1) + "%" }
                return "\(signed(l.relative)) [\(signed(l.ci95[0])), \(signed(l.ci95[1]))]"
            }
            var rows: [[String]] = [["arm", "revenue/user", "expected revenue/user", "CTR", "hide rate", "session s", "return", "explored (points)"]]
            for name in report.comparisons.keys.sorted() {
                guard let c = report.comparisons[name] else { continue }
                rows.append([
                    name, lift(c.revenuePerUser), lift(c.expectedRevenuePerUser), lift(c.ctr), lift(c.hideRate), lift(c.sessionLengthS), lift(c.returnRate),
                    TextTable.fixed(c.explorationSharePoints, 2),
                ])
            }
            let control = report.comparisons.values.first?.control ?? ""
            out += "\nagainst \(control) (relative difference [95% interval], per user\(report.assignment == Simulation.Assignment.paired.rawValue ? ", users paired" : ""); budgets \(report.budgetMode)\(report.historyMode.map { ", ad history \($0)" } ?? ""))\n" + TextTable.render(rows) + "\n"
        }
        var daily: [[String]] = [["arm", "day", "impressions", "CTR", "revenue", "hide rate", "session s", "return"]]
        for name in report.arms.keys.sorted() {
            for d in report.arms[name]?.byDay ?? [] {
                daily.append([name, String(d.day ?? 0), String(d.impressions), pct(d.ctr), money(d.revenueMicros), pct(d.hideRate), TextTable.fixed(d.sessionLengthS, 1), d.returnRate.map(pct) ?? "-"])
            }
        }
        out += "\nby day\n" + TextTable.render(daily) + "\n"
        if report.newAds > 0 {
            var learning: [[String]] = [["arm", "new ads with ≥\(SimulationReport.NewAdLearning.window) impressions", "within 20%", "impressions until (median)", "(75th percentile)"]]
            for name in report.arms.keys.sorted() {
                guard let n = report.arms[name]?.newAds else { continue }
                learning.append([name, String(n.ads), String(n.reached), n.medianImpressions.map(String.init) ?? "-", n.p75Impressions.map(String.init) ?? "-"])
            }
            out += "\nnew ads (\(report.newAds), from day \(report.newAdsDay)): impressions until the arm's prediction is within 20% of the true CTR\n" + TextTable.render(learning) + "\n"
        }
        var budgets: [[String]] = [["day", "spend", "campaigns ≥90% of daily budget", "max overspend (micros)"]]
        for b in report.budgets { budgets.append([String(b.day), money(b.spendMicros), pct(b.shareSpent90pct), String(b.maxOverspendMicros)]) }
        return out + "\nbudgets\n" + TextTable.render(budgets)
    }
}
