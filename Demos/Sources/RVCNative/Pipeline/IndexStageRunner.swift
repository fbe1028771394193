import Foundation

/// The index tensor names of `rvc_ios_tools/index/stages.py` and their layouts (the same here as in golden
/// sets: B batch, T frames, C channels, P probed lists, K neighbours).
public enum IndexTensors {
    static let layouts: [String: String] = [
        "feats": "BTC", "coarse.lists": "BTP", "search.ids": "BTK", "search.scores": "BTK", "weights": "BTK",
        "retrieved": "BTC", "blended": "BTC",
    ]

    public static func layout(of name: String) -> String? { layouts[name] }
}

/// A stage's output: float features and scores, or integer list numbers and ids (held to equality by the diff).
public enum IndexStageValue {
    case float(Tensor)
    case integers(shape: [Int], values: [Int32])
}

/// What an index golden set records beyond `GoldenIndex`: its `extra` object (`generate_index_golden`).
public struct IndexGoldenExtra: Decodable, Sendable {
    public let indexRate: Double

    /// `extra` of `<folder>/index.json`.
    public static func load(goldenFolder folder: String) throws -> IndexGoldenExtra {
        try goldenExtra(IndexGoldenExtra.self, goldenFolder: folder)
    }
}

/// Runs the retrieval stage by stage, with the names of `index_stage_table`:
/// feats -> coarse (probed lists) -> search (ids, scores) -> weights -> retrieved -> blend.
///
/// Chained, each stage reads what the earlier ones computed here; teacher-forced, the golden set's tensors
/// of its inputs (the search scans the golden lists, the weights come from the golden scores, ...).
public struct IndexStageRunner {
    public let index: IVFFlatIndex

    public init(index: IVFFlatIndex) {
        self.index = index
    }

    /// Seconds each stage took, by stage name (for `RVCNativeMac run`'s summary and the benchmark).
    public typealias Timings = [(stage: String, seconds: Double)]

    @discardableResult
    public func run(feats: Tensor, indexRate: Double, mode: StageRunner.Mode, golden: GoldenSet? = nil,
                    record: (String, IndexStageValue) throws -> Void) throws -> Timings {
        let (d, k, probes) = (index.d, index.configuration.k, index.configuration.probes)
        guard feats.rank == 3, feats.shape[0] == 1, feats.shape[2] == d else {
            throw IndexError.featureWidth(expected: d, actual: feats.shape)
        }
        let frames = feats.shape[1]
        let forced = mode == .teacherForced
        if forced && golden == nil { throw RVCError.usage("Teacher-forced runs need a golden set with intermediates.") }
        func goldenIntegers(_ name: String, _ shape: [Int]) throws -> [Int32] {
            let (stored, values) = try golden!.int32Values(name)
            guard stored == shape else { throw RVCError.goldenTensorShape(name: name, expected: shape, actual: stored) }
            return values
        }
        func goldenFloats(_ name: String, _ shape: [Int]) throws -> [Float] {
            let tensor = try golden!.tensor(name, layout: IndexTensors.layouts[name]!)
            guard tensor.shape == shape else { throw RVCError.goldenTensorShape(name: name, expected: shape, actual: tensor.shape) }
            return tensor.data
        }
        var timings: Timings = []
        var clock = Date()
        func lap(_ stage: String) {
            let now = Date()
            timings.append((stage, now.timeIntervalSince(clock)))
            clock = now
        }

        var lists = index.coarseLists(feats.data, frames: frames)
        lap("coarse")
        try record("coarse.lists", .integers(shape: [1, frames, probes], values: lists))
        if forced { lists = try goldenIntegers("coarse.lists", [1, frames, probes]) }

        clock = Date()
        var (scores, ids) = index.scan(feats.data, frames: frames, lists: lists, probes: probes)
        lap("search")
        try record("search.ids", .integers(shape: [1, frames, k], values: ids))
        try record("search.scores", .float(Tensor(shape: [1, frames, k], data: scores)))
        if forced {
            ids = try goldenIntegers("search.ids", [1, frames, k])
            scores = try goldenFloats("search.scores", [1, frames, k])
        }

        clock = Date()
        var weights = Retrieval.weights(scores: scores, k: k)
        lap("weights")
        try record("weights", .float(Tensor(shape: [1, frames, k], data: weights)))
        if forced { weights = try goldenFloats("weights", [1, frames, k]) }

        clock = Date()
        var retrieved = Retrieval.retrieve(index, ids: ids, weights: weights, k: k)
        lap("retrieved")
        try record("retrieved", .float(retrieved))
        if forced { retrieved = Tensor(shape: [1, frames, d], data: try goldenFloats("retrieved", [1, frames, d])) }

        clock = Date()
        let blended = Retrieval.blend(retrieved: retrieved, feats: feats, indexRate: indexRate)
        lap("blend")
        try record("blended", .float(blended))
        return timings
    }
}
