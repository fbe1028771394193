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
    /// Scratch products of the coarse step per worker: 4M floats (16 MB), 800 frames against 5128 lists.
    static let maximumCoarseBlockFloats = 1 << 22

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
        let (manifest, weights) = try loadVerifiedExport(directory: directory, name: name,
                                                         readManifest: IndexManifest.load(path:), common: \.common)
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
        // Blocks of frames, each one product with every centroid and then the nearest lists, on the workers.
        // Each product packs all the centroids again, so blocks are as large as the workers and the scratch
        // products (block x nlist floats) allow.
        let workers = min(ParallelWork.workerCount, max(1, frames / 64))
        let block = max(1, min((frames + workers - 1) / workers, Self.maximumCoarseBlockFloats / nlist))
        var lists = [Int32](repeating: 0, count: frames * probes)
        queries.withUnsafeBufferPointer { q in
            centroids.withUnsafeBufferPointer { c in
                centroidNorms.withUnsafeBufferPointer { norms in
                    lists.withUnsafeMutableBufferPointer { out in
                        ParallelWork.run(workers: workers) { worker, workers in
                            var products = [Float](repeating: 0, count: block * nlist)
                            var distances = [Float](repeating: 0, count: nlist)
                            for first in stride(from: worker * block, to: frames, by: workers * block) {
                                let rows = min(block, frames - first)
                                products.withUnsafeMutableBufferPointer { p in
                                    BLAS.sgemm(transposeB: true, m: rows, n: nlist, k: d,
                                               a: q.baseAddress! + first * d, lda: d, b: c.baseAddress!, ldb: d,
                                               beta: 0, c: p.baseAddress!, ldc: nlist)
                                }
                                for row in 0..<rows {
                                    let frame = first + row
                                    let queryNorm = laneSumOfSquares(q.baseAddress! + frame * d, count: d)
                                    for list in 0..<nlist {
                                        // The reference's order: (‖q‖² + ‖c‖²) − 2 q·c, clamped at 0.
                                        distances[list] = max(0, (queryNorm + norms[list]) - 2 * products[row * nlist + list])
                                    }
                                    if probes == 1 {
                                        var best = 0
                                        for list in 1..<nlist where distances[list] < distances[best] { best = list }
                                        out[frame] = Int32(best)
                                    } else {
                                        let order = (0..<nlist).sorted { (distances[$0], $0) < (distances[$1], $1) }
                                        for probe in 0..<probes { out[frame * probes + probe] = Int32(order[probe]) }
                                    }
                                }
                            }
                        }
                    }
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
                            var heapScores = [Float](repeating: 0, count: k)
                            var heapIDs = [Int32](repeating: 0, count: k)
                            for frame in stride(from: worker, to: frames, by: workers) {
                                for slot in 0..<k { heapScores[slot] = Self.missingScore; heapIDs[slot] = Self.missingID }
                                let query = q.baseAddress! + frame * d
                                for probe in 0..<probes {
                                    let list = Int(lists[frame * probes + probe])
                                    for row in listOffsets[list]..<listOffsets[list + 1] {
                                        let distance = laneSquaredDistance(query, x.baseAddress! + row * d, count: d)
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
    laneSquaredDistance(values, nil, count: count)
}

func laneSumOfSquares(_ values: [Float], count: Int) -> Float {
    values.withUnsafeBufferPointer { laneSumOfSquares($0.baseAddress!, count: count) }
}

/// ‖a − b‖² (or ‖a‖² when `b` is nil) in `laneSumOfSquares`' order, each difference rounded to float32 first.
///
/// Each lane step is a float32 fused multiply-add, computed as the Python reference computes it: the square
/// of a float32 is exact in double, so adding in double and rounding to float32 gives the single rounding
/// of an FMA (bar a double-rounding tie, as in the reference). On x86-64 builds for the baseline CPU,
/// `Float.addingProduct` would be a call to libm's `fmaf` per value, several times slower than this.
@inline(__always)
func laneSquaredDistance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>?, count: Int) -> Float {
    let whole = count - count % 16
    var lanes = SIMD16<Float>()
    var i = 0
    if let b {
        while i < whole {
            let v = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
                - UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
            lanes = fusedSquareAdd(lanes, v)
            i += 16
        }
    } else {
        while i < whole {
            lanes = fusedSquareAdd(lanes, UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self))
            i += 16
        }
    }
    let eight = lanes.lowHalf + lanes.highHalf
    let four = eight.lowHalf + eight.highHalf
    let two = four.lowHalf + four.highHalf
    var total = two[0] + two[1]
    while i < count {
        let v = b.map { a[i] - $0[i] } ?? a[i]
        total = total + v * v
        i += 1
    }
    return total
}

/// Lane-wise float32 `accumulator + v * v` with one rounding (see `laneSquaredDistance`).
@inline(__always)
func fusedSquareAdd(_ accumulator: SIMD16<Float>, _ v: SIMD16<Float>) -> SIMD16<Float> {
    let wide = SIMD16<Double>(v)
    return SIMD16<Float>(SIMD16<Double>(accumulator) + wide * wide)
}
