import Domain
import Foundation

/// Tensors of a `.safetensors` file (Hugging Face's format): an 8-byte little-endian header
/// length, a JSON header naming each tensor's dtype, shape and byte range, then the raw data.
/// Read whole; F32, F16 and BF16 are widened to `Float`.
struct SafeTensors {
    struct Tensor {
        var shape: [Int]
        var values: [Float]
    }

    private(set) var tensors: [String: Tensor] = [:]
    /// The header's `__metadata__` (string to string).
    private(set) var metadata: [String: String] = [:]

    init(path: String) throws(AdServeError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AdServeError(.storage, "cannot read \(path)")
        }
        let bytes = [UInt8](data)
        func fail(_ why: String) -> AdServeError { AdServeError(.storage, "\(path) is not a safetensors file: \(why)") }
        guard bytes.count >= 8 else { throw fail("shorter than its header") }
        var headerLength = 0
        for i in 0..<8 { headerLength |= Int(bytes[i]) << (8 * i) }
        guard headerLength > 0, headerLength <= bytes.count - 8 else { throw fail("header length \(headerLength)") }
        let dataStart = 8 + headerLength
        guard let header = try? JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart])) as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        metadata = header["__metadata__"] as? [String: String] ?? [:]
        for (name, entry) in header where name != "__metadata__" {
            guard let entry = entry as? [String: Any], let dtype = entry["dtype"] as? String,
                let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2,
                offsets[0] >= 0, offsets[0] <= offsets[1], dataStart + offsets[1] <= bytes.count
            else { throw fail("bad entry for \(name)") }
            let count = shape.reduce(1, *)
            let start = dataStart + offsets[0]
            let width: Int
            switch dtype {
            case "F32": width = 4
            case "F16", "BF16": width = 2
            default: continue  // not weights this code reads (e.g. I64 position ids)
            }
            guard offsets[1] - offsets[0] == count * width else { throw fail("\(name) holds \(offsets[1] - offsets[0]) bytes for \(count) values") }
            var values = [Float](repeating: 0, count: count)
            for i in 0..<count {
                let p = start + i * width
                switch dtype {
                case "F32":
                    values[i] = Float(bitPattern: UInt32(bytes[p]) | UInt32(bytes[p + 1]) << 8 | UInt32(bytes[p + 2]) << 16 | UInt32(bytes[p + 3]) << 24)
                case "BF16":
                    values[i] = Float(bitPattern: (UInt32(bytes[p]) | UInt32(bytes[p + 1]) << 8) << 16)
                default:
                    values[i] = Float(Float16(bitPattern: UInt16(bytes[p]) | UInt16(bytes[p + 1]) << 8))
                }
            }
            guard values.allSatisfy(\.isFinite) else { throw fail("\(name) holds a non-finite value") }
            tensors[name] = Tensor(shape: shape, values: values)
        }
    }

    /// The named tensor, which must have `shape`.
    func tensor(_ name: String, shape: [Int]) throws(AdServeError) -> [Float] {
        guard let tensor = tensors[name] else { throw AdServeError(.storage, "model weights lack \(name)") }
        guard tensor.shape == shape else { throw AdServeError(.storage, "model weight \(name) has shape \(tensor.shape), expected \(shape)") }
        return tensor.values
    }
}
