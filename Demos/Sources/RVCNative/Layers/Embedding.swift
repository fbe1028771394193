/// `torch.nn.Embedding`, table `ND`.
public struct Embedding: Sendable {
    public let count: Int
    public let dimensions: Int
    let table: [Float]

    init(loading prefix: String, from weights: inout WeightStore, count: Int, dimensions: Int) throws {
        table = try weights.take("\(prefix).weight", shape: [count, dimensions])
        self.count = count
        self.dimensions = dimensions
    }

    /// The rows for `indices`, shaped `shape + [D]`; an index outside the table is an input error naming `inputName`.
    public func callAsFunction(_ indices: [Int32], shape: [Int], inputName: String) throws -> Tensor {
        precondition(shape.reduce(1, *) == indices.count)
        var values = [Float](repeating: 0, count: indices.count * dimensions)
        for (position, index) in indices.enumerated() {
            guard index >= 0, Int(index) < count else {
                throw RVCError.inputInvalid(name: inputName, reason: "index \(index) is outside 0..<\(count)")
            }
            let row = Int(index) * dimensions
            for d in 0..<dimensions { values[position * dimensions + d] = table[row + d] }
        }
        return Tensor(shape: shape + [dimensions], data: values)
    }
}
