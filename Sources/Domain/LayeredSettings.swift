import Foundation

/// A command's settings from three places, folded into one argument list for its parser: a
/// config file (a JSON object keyed by option name), then environment variables (`PREFIX_` and
/// the option's name in upper snake case, e.g. `ADSERVE_RESERVE_CPC_MICROS`), then the command
/// line — later ones win, as the parser keeps an option's last value. Also the effective value
/// of every option and where it came from, for the server to print at start.
public struct LayeredSettings: Sendable {
    public struct Option: Sendable, Equatable {
        /// The long name without dashes (`reserve-cpc-micros`).
        public var name: String
        /// An option takes a value; a flag does not (it is on or off).
        public var takesValue: Bool
        public var defaultValue: String?

        public init(name: String, takesValue: Bool, defaultValue: String? = nil) {
            self.name = name
            self.takesValue = takesValue
            self.defaultValue = defaultValue
        }
    }

    public enum Source: String, Sendable {
        case defaultValue = "default"
        case file = "config file"
        case environment
        case commandLine = "command line"
    }

    public struct Setting: Sendable, Equatable {
        public var name: String
        public var value: String
        public var source: Source
    }

    /// The arguments to parse: the file's, then the environment's, then the command line's.
    public var arguments: [String]
    /// Every option, in the order given, with its effective value (flags: "on"/"off"; an option
    /// with no default and no value: "-").
    public var settings: [Setting]
    /// Environment variables with the prefix that name no option (a typo is not silently ignored).
    public var unknownEnvironment: [String]

    /// The options of a command from its help text: each starts a line with `--name <value>`
    /// (an option) or `--name` (a flag), and its description, on the same line or wrapped onto
    /// the next ones, may end with `(default: x)`.
    public static func options(fromHelp help: String) -> [Option] {
        var entries: [(name: String, takesValue: Bool, text: String)] = []
        for line in help.split(separator: "\n", omittingEmptySubsequences: false) {
            let text = line.drop { $0 == " " }
            if line.hasPrefix("  "), text.hasPrefix("--") {
                let name = String(text.dropFirst(2).prefix { $0.isLetter || $0.isNumber || $0 == "-" })
                entries.append((name, text.dropFirst(2 + name.count).hasPrefix(" <"), String(text)))
            } else if line.hasPrefix("   "), !text.isEmpty, !entries.isEmpty {
                entries[entries.count - 1].text += " " + text
            } else if !line.hasPrefix(" ") {
                // A section heading or a blank line ends the last option's description.
                if !entries.isEmpty { entries.append(("", false, "")) }
            }
        }
        return entries.compactMap { entry in
            guard !entry.name.isEmpty, entry.name != "help", entry.name != "version" else { return nil }
            var defaultValue: String?
            if let range = entry.text.range(of: "(default: ", options: .backwards), let end = entry.text[range.upperBound...].lastIndex(of: ")") {
                defaultValue = String(entry.text[range.upperBound..<end])
            }
            return Option(name: entry.name, takesValue: entry.takesValue, defaultValue: defaultValue)
        }
    }

    /// - Parameters:
    ///   - configFile: the file's contents (a JSON object), if one was named.
    ///   - configName: how to name the file in errors.
    public init(options: [Option], commandLine: [String], environment: [String: String], prefix: String, configFile: Data?, configName: String = "config file")
        throws(AdServeError)
    {
        let byName = Dictionary(options.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var effective: [String: (value: String, source: Source)] = [:]
        var arguments: [String] = []

        func add(_ option: Option, _ value: String, _ source: Source, field: String) throws(AdServeError) {
            if option.takesValue {
                arguments += ["--\(option.name)", value]
                effective[option.name] = (value, source)
            } else {
                switch value.lowercased() {
                case "true", "1", "yes", "on":
                    arguments.append("--\(option.name)")
                    effective[option.name] = ("on", source)
                case "false", "0", "no", "off": break
                default: throw AdServeError.invalid(field, "is a flag: true or false, not \"\(value)\"")
                }
            }
        }

        if let configFile {
            guard let object = (try? JSONSerialization.jsonObject(with: configFile)) as? [String: Any] else {
                throw AdServeError.invalid(configName, "must be a JSON object of option names and values")
            }
            for key in object.keys.sorted() {
                let name = key.replacingOccurrences(of: "_", with: "-")
                guard let option = byName[name] else { throw AdServeError.invalid("\(configName): \(key)", "names no option of this command") }
                let value: String
                let raw: Any = object[key] ?? NSNull()
                switch raw {
                case let flag as Bool where JSONFormat.isBoolean(raw): value = flag ? "true" : "false"
                case let number as NSNumber: value = number.stringValue
                case let text as String: value = text
                default: throw AdServeError.invalid("\(configName): \(key)", "must be a string, a number or true/false")
                }
                try add(option, value, .file, field: "\(configName): \(key)")
            }
        }

        var unknown: [String] = []
        for variable in environment.keys.sorted() where variable.hasPrefix(prefix + "_") {
            let name = variable.dropFirst(prefix.count + 1).lowercased().replacingOccurrences(of: "_", with: "-")
            guard let option = byName[name] else {
                unknown.append(variable)
                continue
            }
            try add(option, environment[variable] ?? "", .environment, field: variable)
        }

        var i = 0
        while i < commandLine.count {
            let argument = commandLine[i]
            i += 1
            guard argument.hasPrefix("--") else { continue }
            let body = argument.dropFirst(2)
            let name = String(body.prefix { $0 != "=" })
            guard let option = byName[name] else { continue }
            if !option.takesValue {
                effective[name] = ("on", .commandLine)
            } else if let equals = body.firstIndex(of: "=") {
                effective[name] = (String(body[body.index(after: equals)...]), .commandLine)
            } else if i < commandLine.count {
                effective[name] = (commandLine[i], .commandLine)
                i += 1
            }
        }
        self.arguments = arguments + commandLine
        self.unknownEnvironment = unknown
        self.settings = options.map { option in
            if let set = effective[option.name] { return Setting(name: option.name, value: set.value, source: set.source) }
            return Setting(name: option.name, value: option.takesValue ? option.defaultValue ?? "-" : "off", source: .defaultValue)
        }
    }
}
