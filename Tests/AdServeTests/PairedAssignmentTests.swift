import Domain
import Foundation
@testable import Simulator
import Testing

/// The paired assignment: every person served by every arm, as twins with the same luck, and
/// the arms compared person by person.
@Suite struct PairedAssignmentTests {
    static func configuration(arms: [String]) -> Simulation.Configuration {
        var c = SimulatorTests.configuration(seed: 7, days: 2)
        c.arms = arms
        c.assignment = .paired
        return c
    }

    @Test func twinsCopyEachPersonIntoEveryArmUnderTheirOwnID() {
        let world = World(size: World.Size(users: 50, ads: 100), seed: 2, start: Simulation.start, kind: .topics)
        let twins = world.twins(people: 20, arms: 3)
        let k = world.dimensions
        #expect(twins.userIDs.count == 60 && twins.size.users == 60)
        #expect(Set(twins.userIDs).count == 60)
        #expect(twins.userIDs[0] == world.userIDs[0] && twins.userIDs[45].rawValue == "u6-3")
        for arm in 0..<3 {
            for person in 0..<20 {
                let twin = arm * 20 + person
                #expect(twins.userVisit[twin] == world.userVisit[person] && twins.userTolerance[twin] == world.userTolerance[person])
                #expect(twins.userDevice[twin] == world.userDevice[person])
                #expect(Array(twins.userLatent[(twin * k)..<(twin * k + k)]) == Array(world.userLatent[(person * k)..<(person * k + k)]))
            }
        }
        // Each twin's profile and history is the person's, under the twin's id; the rest of the
        // world's users are left out.
        #expect(twins.batch.users.count == 60)
        let profiles = Dictionary(uniqueKeysWithValues: twins.batch.users.map { ($0.id, $0) })
        for person in 0..<20 {
            let original = world.batch.users[person]
            for arm in 0..<3 {
                var twin = profiles[twins.userIDs[arm * 20 + person]]
                twin?.id = original.id
                #expect(twin == original)
            }
        }
        let originalActivities = world.batch.activities.filter { world.userIDs[0..<20].contains($0.userID) }
        #expect(twins.batch.activities.count == 3 * originalActivities.count)
        #expect(twins.batch.campaigns.map(\.id) == world.batch.campaigns.map(\.id))
    }

    /// Two arms of one deterministic policy on the same people with the same luck are the same
    /// run twice: any difference would mean the arms leak into each other.
    @Test func anAAPairOfADeterministicPolicyMatchesExactly() async throws {
        let outcome = try await Simulation(configuration: Self.configuration(arms: ["baseline", "baseline"])).run()
        let report = outcome.report
        #expect(report.assignment == "paired")
        let a = try #require(report.arms["baseline"])
        let b = try #require(report.arms["baseline-2"])
        #expect(a.users == 600 && b.users == 600)
        #expect(a.impressions > 1_000)
        #expect(a.impressions == b.impressions && a.clicks == b.clicks && a.conversions == b.conversions && a.hides == b.hides)
        #expect(a.revenueMicros == b.revenueMicros && a.sessions == b.sessions)
        let revenue = try #require(report.comparisons["baseline-2"]?.revenuePerUser)
        #expect(revenue.relative == 0 && revenue.ci95 == [0, 0])
    }

    /// Different policies on the same people: the first day's visits do not depend on the ads
    /// (satisfaction starts equal), so both arms see the same people come, as often; what the
    /// arms serve then differs, and so do clicks.
    @Test func differentPoliciesMeetTheSameVisitors() async throws {
        let outcome = try await Simulation(configuration: Self.configuration(arms: ["baseline", "random"])).run()
        let a = try #require(outcome.report.arms["baseline"]?.byDay.first)
        let b = try #require(outcome.report.arms["random"]?.byDay.first)
        #expect(a.activeUsers == b.activeUsers && a.sessions == b.sessions)
        #expect(a.activeUsers > 100)
        #expect(outcome.report.arms["baseline"]?.clicks != outcome.report.arms["random"]?.clicks)
        let lift = try #require(outcome.report.comparisons["random"]?.revenuePerUser)
        #expect(lift.ci95[0] < lift.relative && lift.relative < lift.ci95[1])
    }

    @Test func aPairedRunNeedsAPersonPerArm() async throws {
        var c = Self.configuration(arms: ["baseline", "random", "baseline"])
        c.size = World.Size(users: 2, ads: 100)
        await #expect(throws: AdServeError.self) { try await Simulation(configuration: c).run() }
    }

    /// Paired estimates: the covariance of the people's contributions narrows the interval of a
    /// difference that is the same for everyone, and a lift against itself is exactly 0.
    @Test func pairedLiftSubtractsTheCovariance() throws {
        let control = UserEstimate.mean([1, 2, 3, 4, 5])  // mean 3, variance of the mean 0.5
        let treatment = UserEstimate.mean([2, 3, 4, 5, 6])  // mean 4, the same deviations
        let independent = try #require(treatment.lift(over: control))
        let paired = try #require(treatment.lift(over: control, paired: true))
        #expect(paired.relative == independent.relative)
        // Covariance of the means: Σ eᵢfᵢ / (n (n − 1)) = 10 / 20 = 0.5.
        let relativeVariance = 0.5 / 16 + 0.5 / 9 - 2 * 0.5 / 12
        let half = 1.96 * (4.0 / 3.0) * relativeVariance.squareRoot()
        #expect(abs(paired.ci95[1] - paired.ci95[0] - 2 * half) < 1e-12)
        #expect(paired.ci95[1] - paired.ci95[0] < (independent.ci95[1] - independent.ci95[0]) / 4)
        let same = try #require(control.lift(over: control, paired: true))
        #expect(same.relative == 0 && abs(same.ci95[0]) < 1e-12 && abs(same.ci95[1]) < 1e-12)
        // Ratios pair too: the same clicks over the same impressions.
        let ctr = UserEstimate.ratio([1, 0, 2, 3], [10, 10, 20, 15])
        let ctrSame = try #require(ctr.lift(over: ctr, paired: true))
        #expect(abs(ctrSame.ci95[1] - ctrSame.ci95[0]) < 1e-12)
        #expect(try #require(ctr.lift(over: ctr)).ci95[1] > 0.1)
    }
}
