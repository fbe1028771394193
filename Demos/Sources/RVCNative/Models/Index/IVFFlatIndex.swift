import Foundation

/// An exported faiss IndexIVFFlat, searched exactly as faiss searches it (`IndexIVF::search` with an
/// IndexFlatL2 quantizer and the `IVFFlatScanner`), so a port's neighbours are faiss's on every query:
///
/// - coarse step: each query's `nprobe` nearest centroids by ‖q‖² + ‖c‖² − 2 q·c in float32 (faiss's BLAS
///   form for batches of frames), clamped at 0, ties to the lower list number;
/// - the probed lists are scanned nearest first with the direct ‖q − x‖²; a result heap of k entries starts
///   full of (FLT_MAX, -1) and a candidate replaces its largest (distance, id) entry only when strictly
///   nearer; results come out sorted by (distance, id). A list shorter than k leaves (FLT_MAX, -1) entries.
///
/// Squared norms and distances are summed as faiss's AVX-512 kernels sum them (`laneSumOfSquares`): near
/// ties between two list entries are decided by the last bit.
public struct IVFFlatIndex: Sendable {
    public let configuration: IndexConfiguration
    /// (nlist, d) row-major.
    let centroids: [Float]
    let centroidNorms: [Float]
    /// (ntotal, d): every list's vectors, list 0 first, in the file's order.
    let vectors: [Float]
    /// The faiss id of each row of `vectors`.
    let ids: [Int32]
    /// List i is rows listOffsets[i] ..< listOffsets[i + 1].
    let listOffsets: [Int]
    /// The row of `vectors` holding id i: upstream's `big_npy[i]` (faiss `reconstruct_n`).
    let rowOfID: [Int32]

    public var d: Int { configuration.d }
    public static let missingID: Int32 = -1
    public static let missingScore = Float.greatestFiniteMagnitude

    public init(configuration: IndexConfiguration, weights: SafeTensorsFile) throws {
        try configuration.validate()
        self.configuration = configuration
        let (d, nlist, ntotal) = (configuration.d, configuration.nlist, configuration.ntotal)
        func checked(_ key: String, _ shape: [Int]) throws -> SafeTensorsFile.Entry {
            let entry = try weights.entry(key)
            guard entry.shape == shape else { throw IndexError.tensorShape(key: key, expected: shape, actual: entry.shape) }
            return entry
        }
        _ = try checked("index.centroids", [nlist, d])
        _ = try checked("index.vectors", [ntotal, d])
        _ = try checked("index.ids", [ntotal])
        _ = try checked("index.list_offsets", [nlist + 1])
        centroids = try weights.tensor("index.centroids").data
        // float16 exports are widened here; the search itself is float32 either way.
        vectors = try weights.tensor("index.vectors").data
        ids = try weights.int32Values("index.ids").values
        listOffsets = try weights.int32Values("index.list_offsets").values.map(Int.init)
        guard listOffsets.first == 0, listOffsets.last == ntotal,
              zip(listOffsets, listOffsets.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw IndexError.listOffsets(reason: "they must rise from 0 to ntotal (\(ntotal))")
        }
        var rows = [Int32](repeating: -1, count: ntotal)
        for (row, id) in ids.enumerated() {
            guard id >= 0, Int(id) < ntotal else { throw IndexError.ids(reason: "id \(id) is outside 0..<\(ntotal)") }
            guard rows[Int(id)] < 0 else { throw IndexError.ids(reason: "id \(id) appears twice") }
            rows[Int(id)] = Int32(row)
        }
        rowOfID = rows
        centroidNorms = centroids.withUnsafeBufferPointer { c in
            (0..<nlist).map { laneSumOfSquares(c.baseAddress! + $0 * d, count: d) }
        }
    }

    /// Reads `<directory>/<name>.manifest.json`, checks the weights file against it (tensor list, shapes,
    /// dtypes, XXH64 checksums) and the index's own consistency (offsets, ids).
    public static func load(assetsDirectory directory: String, modelName name: String) throws -> IVFFlatIndex {
        let folder = URL(fileURLWithPath: directory)
        let manifest = try IndexManifest.load(path: folder.appendingPathComponent("\(name).manifest.json").path)
        let weights = try SafeTensorsFile(path: folder.appendingPathComponent(manifest.common.weightsFile).path)
        try manifest.common.verify(weights)
        return try IVFFlatIndex(configuration: manifest.configuration, weights: weights)
    }

    /// upstream `big_npy[id]` (id -1 reads the last row, as numpy's negative index does).
    func vector(ofID id: Int32) -> ArraySlice<Float> {
        let row = Int(id >= 0 ? rowOfID[Int(id)] : rowOfID[rowOfID.count - 1])
        return vectors[(row * d)..<((row + 1) * d)]
    }

    // --- the coarse step ---

    /// (T, probes) list numbers for the frames of `queries` (T, d), nearest first.
    public func coarseLists(_ queries: [Float], frames: Int) -> [Int32] {
        let (d, nlist, probes) = (configuration.d, configuration.nlist, configuration.probes)
        var products = [Float](repeating: 0, count: frames * nlist)
        queries.withUnsafeBufferPointer { q in
            centroids.withUnsafeBufferPointer { c in
                products.withUnsafeMutableBufferPointer { p in
                    ParallelWork.run(workers: min(ParallelWork.workerCount, max(1, frames / 64))) { worker, workers in
                        let start = frames * worker / workers, stop = frames * (worker + 1) / workers
                        BLAS.sgemm(transposeB: true, m: stop - start, n: nlist, k: d,
                                   a: q.baseAddress! + start * d, lda: d, b: c.baseAddress!, ldb: d,
                                   beta: 0, c: p.baseAddress! + start * nlist, ldc: nlist)
                    }
                }
            }
        }
        var lists = [Int32](repeating: 0, count: frames * probes)
        queries.withUnsafeBufferPointer { q in
            for frame in 0..<frames {
                let queryNorm = laneSumOfSquares(q.baseAddress! + frame * d, count: d)
                var distances = [Float](repeating: 0, count: nlist)
                for list in 0..<nlist {
                    // numpy's order in the reference: (‖q‖² + ‖c‖²) − 2 q·c.
                    distances[list] = max(0, (queryNorm + centroidNorms[list]) - 2 * products[frame * nlist + list])
                }
                if probes == 1 {
                    var best = 0
                    for list in 1..<nlist where distances[list] < distances[best] { best = list }
                    lists[frame] = Int32(best)
                } else {
                    let order = (0..<nlist).sorted { (distances[$0], $0) < (distances[$1], $1) }
                    for probe in 0..<probes { lists[frame * probes + probe] = Int32(order[probe]) }
                }
            }
        }
        return lists
    }

    // --- scanning the lists ---

    /// The k nearest (squared distance, id) of each frame among the entries of its probed lists.
    public func scan(_ queries: [Float], frames: Int, lists: [Int32], probes: Int) -> (scores: [Float], ids: [Int32]) {
        let (d, k) = (configuration.d, configuration.k)
        var scores = [Float](repeating: Self.missingScore, count: frames * k)
        var found = [Int32](repeating: Self.missingID, count: frames * k)
        queries.withUnsafeBufferPointer { q in
            vectors.withUnsafeBufferPointer { x in
                scores.withUnsafeMutableBufferPointer { scoreOut in
                    found.withUnsafeMutableBufferPointer { idOut in
                        ParallelWork.run(workers: min(ParallelWork.workerCount, max(1, frames / 16))) { worker, workers in
                            var difference = [Float](repeating: 0, count: d)
                            var heapScores = [Float](repeating: 0, count: k)
                            var heapIDs = [Int32](repeating: 0, count: k)
                            for frame in stride(from: worker, to: frames, by: workers) {
                                for slot in 0..<k { heapScores[slot] = Self.missingScore; heapIDs[slot] = Self.missingID }
                                let query = q.baseAddress! + frame * d
                                for probe in 0..<probes {
                                    let list = Int(lists[frame * probes + probe])
                                    for row in listOffsets[list]..<listOffsets[list + 1] {
                                        let entry = x.baseAddress! + row * d
                                        for i in 0..<d { difference[i] = query[i] - entry[i] }
                                        let distance = laneSumOfSquares(difference, count: d)
                                        // The heap's top is its largest (distance, id); a candidate replaces it
                                        // only when strictly nearer.
                                        var top = 0
                                        for slot in 1..<k where (heapScores[slot], heapIDs[slot]) > (heapScores[top], heapIDs[top]) {
                                            top = slot
                                        }
                                        if distance < heapScores[top] {
                                            heapScores[top] = distance
                                            heapIDs[top] = ids[row]
                                        }
                                    }
                                }
                                let order = (0..<k).sorted { (heapScores[$0], heapIDs[$0]) < (heapScores[$1], heapIDs[$1]) }
                                for (slot, source) in order.enumerated() {
                                    scoreOut[frame * k + slot] = heapScores[source]
                                    idOut[frame * k + slot] = heapIDs[source]
                                }
                            }
                        }
                    }
                }
            }
        }
        return (scores, found)
    }
}

/// Σ x² over `count` floats in the order of faiss's AVX-512 kernels (`fvec_L2sqr`, `fvec_norm_L2sqr`):
/// 16 lanes, each accumulating every 16th square by a fused multiply-add, the lanes then summed by halving
/// (8 + 8, 4 + 4, 2 + 2, 1 + 1); a remainder past the last multiple of 16 is added one by one.
func laneSumOfSquares(_ values: UnsafePointer<Float>, count: Int) -> Float {
    let lanes = 16
    let whole = count - count % lanes
    var accumulator = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0),
                       Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
    withUnsafeMutableBytes(of: &accumulator) { raw in
        let lane = raw.bindMemory(to: Float.self)
        var start = 0
        while start < whole {
            for i in 0..<lanes {
                let value = values[start + i]
                lane[i] = lane[i].addingProduct(value, value)
            }
            start += lanes
        }
        var width = lanes / 2
        while width >= 1 {
            for i in 0..<width { lane[i] = lane[i] + lane[i + width] }
            width /= 2
        }
    }
    var total = accumulator.0
    for i in whole..<count { total = total + values[i] * values[i] }
    return total
}

func laneSumOfSquares(_ values: [Float], count: Int) -> Float {
    values.withUnsafeBufferPointer { laneSumOfSquares($0.baseAddress!, count: count) }
}
