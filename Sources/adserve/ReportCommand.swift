import API
import ArgumentParser
import Domain
import Events
import Foundation
import PostgresStorage
import SQLiteStorage
import Storage

/// `adserve report campaign ID` / `adserve report ad ID`: the delivery report the API gives,
/// read from a store file — a table for people, or with `--json` the API's own document.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Print a campaign's or an ad's delivery report (the same as GET /v1/reports/campaigns/{id} or /v1/reports/ads/{id}).")

    @Argument(help: "campaign or ad") var kind: String
    @Argument(help: "Its id.") var id: Int64
    @Option(help: "SQLite database file of the server.") var db = "./adserve.db"
    @Option(help: "The fleet's store instead: a postgres://user:password@host:port/database URL (as serve --store).") var store: String?
    @Flag(help: "Print the API's JSON document.") var json = false

    /// Bad input ends the command with one line and a non-zero status (no usage text).
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func run() async throws {
        guard kind == "campaign" || kind == "ad" else { throw Failure(description: "the first argument must be campaign or ad, not \"\(kind)\"") }
        guard id > 0 else { throw Failure(description: "the id must be a positive integer") }
        let store: any AdStore
        let db: String
        if let url = self.store, PostgresStore.isURL(url) {
            let postgres = try await PostgresStore.open(url: url, maximumConnections: 2)
            (store, db) = (postgres, postgres.location)
        } else {
            db = self.store ?? self.db
            // A mistyped path must not become a new, empty store.
            guard FileManager.default.fileExists(atPath: db) else { throw Failure(description: "no store at \(db) (--db names a server's SQLite file)") }
            store = try SQLiteStore(path: db)
        }
        let reports = Reports(store: store)
        if kind == "campaign" {
            guard let campaign = try await store.campaign(CampaignID(id)) else { throw Failure(description: "campaign \(id) not found in \(db)") }
            let report = try await reports.campaign(campaign.id)
            if json { return print(try ReportDocument.campaign(campaign.id, report)) }
            print("campaign \(id) \"\(campaign.name)\": \(campaign.objective.rawValue), bid \(Self.money(campaign.bidMicros)), "
                + "daily budget \(Self.money(campaign.dailyBudgetMicros)), total budget \(Self.money(campaign.totalBudgetMicros)), \(campaign.status.rawValue)")
            print(Self.table(report))
        } else {
            guard let ad = try await store.ad(AdID(id)) else { throw Failure(description: "ad \(id) not found in \(db)") }
            let report = try await reports.ad(ad.id)
            if json { return print(try ReportDocument.ad(ad.id, report)) }
            print("ad \(id) of campaign \(ad.campaignID.rawValue): \(ad.format.rawValue), \"\(ad.caption)\"")
            print(Self.table(report))
        }
    }

    static func money(_ micros: Micros) -> String { TextTable.fixed(Double(micros) / 1_000_000, 2) }

    /// One row per day and the totals; money in currency units.
    static func table(_ report: DeliveryReport) -> String {
        func row(_ label: String, _ c: DeliveryCounters) -> [String] {
            let ctr = c.impressions > 0 ? TextTable.fixed(Double(c.clicks) / Double(c.impressions) * 100, 2) + "%" : "-"
            return [label, String(c.impressions), String(c.clicks), ctr, String(c.conversions), String(c.hides), money(c.spendMicros), String(c.invalidClicks)]
        }
        var rows = [["day", "impressions", "clicks", "CTR", "conversions", "hides", "spend", "invalid clicks"]]
        rows += report.days.map { row(Timestamp.isoDate(day: $0.day), $0.counters) }
        rows.append(row("total", report.totals))
        return TextTable.render(rows)
    }
}
