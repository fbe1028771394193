/// Hands out a voice's weights by key, strictly: each key must exist with the shape the model expects,
/// and `checkAllUsed()` refuses a file with weights the model never read.
public struct WeightStore {
    public let file: SafeTensorsFile
    public private(set) var usedKeys: Set<String> = []

    public init(file: SafeTensorsFile) {
        self.file = file
    }

    public func contains(_ key: String) -> Bool {
        file.entries[key] != nil
    }

    /// The weight `key` as Float32, which must have exactly `shape`.
    public mutating func take(_ key: String, shape: [Int]) throws -> [Float] {
        guard let entry = file.entries[key] else { throw RVCError.missingWeight(key: key) }
        guard entry.shape == shape else { throw RVCError.weightShape(key: key, expected: shape, actual: entry.shape) }
        usedKeys.insert(key)
        return try file.tensor(key).data
    }

    public func checkAllUsed() throws {
        let unused = file.keys.filter { !usedKeys.contains($0) }
        if !unused.isEmpty { throw RVCError.unusedWeights(keys: unused) }
    }
}
