/// Plain-text tables for people: rows of cells as left-aligned columns, and numbers with a
/// fixed number of decimals that do not depend on the locale. Every table the command line
/// prints (simulation reports, evaluations, model lists) is made here.
public enum TextTable {
    /// Rows of cells as left-aligned columns; the first row is the header.
    public static func render(_ rows: [[String]]) -> String {
        let widths = (0..<(rows.first?.count ?? 0)).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { c, cell in cell + String(repeating: " ", count: widths[c] - cell.count) }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// `v` with `digits` decimals, rounded half away from zero (deterministic, no locale).
    public static func fixed(_ v: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let n = Int64((abs(v) * scale).rounded())
        let whole = n / Int64(scale)
        let frac = String(n % Int64(scale))
        let sign = v < 0 && n != 0 ? "-" : ""
        return digits == 0 ? "\(sign)\(whole)" : "\(sign)\(whole).\(String(repeating: "0", count: digits - frac.count))\(frac)"
    }
}
