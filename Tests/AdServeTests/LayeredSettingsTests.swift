import Domain
import Foundation
import Testing

/// `serve`'s configuration in one place: a config file, ADSERVE_* variables and the command
/// line, folded into one argument list in which the command line comes last (and so wins).
@Suite struct LayeredSettingsTests {
    /// The shape ArgumentParser prints: long names push the description onto the next line.
    static let help = """
        OVERVIEW: Start the HTTP server.

        OPTIONS:
          --port <port>           Port to listen on. (default: 8080)
          --demo                  Fill an empty store with a generated world.
          --reserve-cpc-micros <reserve-cpc-micros>
                                  Reserve of traffic ads, micros per click. (default:
                                  0)
          --serve-log <serve-log> Append every impression to this log.
          -h, --help              Show help information.

        """

    static var options: [LayeredSettings.Option] { LayeredSettings.options(fromHelp: help) }

    @Test func optionsAndTheirDefaultsAreReadFromTheHelpText() {
        #expect(Self.options == [
            .init(name: "port", takesValue: true, defaultValue: "8080"),
            .init(name: "demo", takesValue: false),
            .init(name: "reserve-cpc-micros", takesValue: true, defaultValue: "0"),
            .init(name: "serve-log", takesValue: true),
        ])
    }

    @Test func theCommandLineWinsOverTheEnvironmentWhichWinsOverTheFile() throws {
        let file = Data(#"{"port": 7000, "reserve_cpc_micros": 100000, "demo": true}"#.utf8)
        let settings = try LayeredSettings(
            options: Self.options, commandLine: ["--port", "9000"], environment: ["ADSERVE_PORT": "8000", "ADSERVE_RESERVE_CPC_MICROS": "200000", "HOME": "/root"],
            prefix: "ADSERVE", configFile: file)
        // The parser keeps an option's last value: file, then environment, then command line.
        #expect(settings.arguments == ["--demo", "--port", "7000", "--reserve-cpc-micros", "100000", "--port", "8000", "--reserve-cpc-micros", "200000", "--port", "9000"])
        let effective = Dictionary(uniqueKeysWithValues: settings.settings.map { ($0.name, "\($0.value) \($0.source.rawValue)") })
        #expect(effective == [
            "port": "9000 command line", "demo": "on config file", "reserve-cpc-micros": "200000 environment", "serve-log": "- default",
        ])
        #expect(settings.unknownEnvironment.isEmpty)
    }

    @Test func flagsAreOnOrOffAndAnythingElseIsRefusedNamingWhereItCameFrom() throws {
        let off = try LayeredSettings(options: Self.options, commandLine: [], environment: ["ADSERVE_DEMO": "false"], prefix: "ADSERVE", configFile: nil)
        #expect(off.arguments.isEmpty && off.settings[1].value == "off")
        let on = try LayeredSettings(options: Self.options, commandLine: ["--demo"], environment: [:], prefix: "ADSERVE", configFile: nil)
        #expect(on.settings[1].value == "on" && on.settings[1].source == .commandLine)
        #expect(throws: AdServeError.invalid("ADSERVE_DEMO", #"is a flag: true or false, not "maybe""#)) {
            try LayeredSettings(options: Self.options, commandLine: [], environment: ["ADSERVE_DEMO": "maybe"], prefix: "ADSERVE", configFile: nil)
        }
    }

    @Test func aFileKeyThatNamesNoOptionIsRefusedAndAMistypedVariableIsReported() throws {
        #expect(throws: AdServeError.self) {
            try LayeredSettings(options: Self.options, commandLine: [], environment: [:], prefix: "ADSERVE", configFile: Data(#"{"prot": 1}"#.utf8), configName: "a.json")
        }
        do {
            _ = try LayeredSettings(options: Self.options, commandLine: [], environment: [:], prefix: "ADSERVE", configFile: Data(#"{"prot": 1}"#.utf8), configName: "a.json")
        } catch {
            #expect(error.field == "a.json: prot")
        }
        #expect(throws: AdServeError.self) {
            try LayeredSettings(options: Self.options, commandLine: [], environment: [:], prefix: "ADSERVE", configFile: Data("[1]".utf8))
        }
        let typo = try LayeredSettings(options: Self.options, commandLine: [], environment: ["ADSERVE_PROT": "1"], prefix: "ADSERVE", configFile: nil)
        #expect(typo.unknownEnvironment == ["ADSERVE_PROT"])
    }
}
