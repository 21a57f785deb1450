import Domain

/// Model kinds by name: how a stored model is made and read back.
public enum ModelKinds {
    public static let known = [FTRLProximal.kind, FactorizationMachine.kind]

    public static func make(_ kind: String, hasher: FeatureHasher, ftrl: FTRLProximal.Parameters = .init()) throws(AdServeError) -> any ClickModel {
        switch kind {
        case FTRLProximal.kind: FTRLProximal(hasher: hasher, parameters: ftrl)
        case FactorizationMachine.kind: FactorizationMachine(hasher: hasher)
        default: throw AdServeError.invalid("kind", "unknown model kind '\(kind)'; known: \(known.joined(separator: ", "))")
        }
    }

    public static func decode(_ kind: String, bytes: [UInt8]) throws(AdServeError) -> any ClickModel {
        switch kind {
        case FTRLProximal.kind: try FTRLProximal(serialized: bytes)
        case FactorizationMachine.kind: try FactorizationMachine(serialized: bytes)
        default: throw AdServeError.invalid("kind", "unknown model kind '\(kind)'")
        }
    }
}
