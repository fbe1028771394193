/// Upstream's retrieval after the search (pipeline.py L236-245), in numpy's float32 order:
///
///     weight = np.square(1 / score)
///     weight /= weight.sum(axis=1, keepdims=True)                       # numpy's pairwise sum over k
///     npy = np.sum(big_npy[ix] * np.expand_dims(weight, axis=2), axis=1)  # products, then a sequential sum
///     feats = npy * index_rate + (1 - index_rate) * feats               # two products and a sum
public enum Retrieval {
    /// (T, k) weights from (T, k) squared distances: (1/score)² normalised per frame. A missing neighbour
    /// (FLT_MAX) weighs 0 (1/FLT_MAX squared underflows); a zero distance gives NaN, as upstream.
    public static func weights(scores: [Float], k: Int) -> [Float] {
        var weights = scores.map { score -> Float in
            let inverse = 1 / score
            return inverse * inverse
        }
        for frame in 0..<(scores.count / k) {
            let row = frame * k
            let sum = pairwiseSum(weights[row..<(row + k)])
            for slot in row..<(row + k) { weights[slot] = weights[slot] / sum }
        }
        return weights
    }

    /// numpy's `pairwise_sum` for the short rows here (n <= 128): eight running sums combined as
    /// ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), the rest added in turn; below 8 values, in turn.
    static func pairwiseSum(_ values: ArraySlice<Float>) -> Float {
        let v = Array(values)
        if v.count < 8 { return v.reduce(Float(0), +) }
        var r = Array(v[0..<8])
        var i = 8
        while i + 8 <= v.count {
            for j in 0..<8 { r[j] = r[j] + v[i + j] }
            i += 8
        }
        var sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < v.count { sum = sum + v[i]; i += 1 }
        return sum
    }

    /// (1, T, d): Σ_j big_npy[ids[t, j]] · weights[t, j], summed over j in order.
    public static func retrieve(_ index: IVFFlatIndex, ids: [Int32], weights: [Float], k: Int) -> Tensor {
        let (d, frames) = (index.d, ids.count / k)
        var out = [Float](repeating: 0, count: frames * d)
        out.withUnsafeMutableBufferPointer { target in
            ParallelWork.run(workers: min(ParallelWork.workerCount, max(1, frames / 64))) { worker, workers in
                for frame in stride(from: worker, to: frames, by: workers) {
                    let row = target.baseAddress! + frame * d
                    for j in 0..<k {
                        let weight = weights[frame * k + j]
                        let vector = index.vector(ofID: ids[frame * k + j])
                        var c = 0
                        for value in vector {
                            let product = value * weight
                            row[c] = j == 0 ? product : row[c] + product
                            c += 1
                        }
                    }
                }
            }
        }
        return Tensor(shape: [1, frames, d], data: out)
    }

    /// upstream `npy * index_rate + (1 - index_rate) * feats`, both factors float32 (torch's arithmetic).
    public static func blend(retrieved: Tensor, feats: Tensor, indexRate: Double) -> Tensor {
        precondition(retrieved.shape == feats.shape)
        let rate = Float(indexRate)
        let keep = Float(1 - indexRate)
        return Tensor(shape: feats.shape, data: zip(retrieved.data, feats.data).map { $0 * rate + keep * $1 })
    }
}

extension IVFFlatIndex {
    /// Upstream's whole retrieval for (1, T, d) content features (50 fps, before the x2 upsampling): search,
    /// weights, retrieved features, blend. What an app calls; `IndexStageRunner` runs the same steps one by one.
    public func blend(_ feats: Tensor, indexRate: Double) throws -> Tensor {
        guard feats.rank == 3, feats.shape[0] == 1, feats.shape[2] == d else {
            throw IndexError.featureWidth(expected: d, actual: feats.shape)
        }
        let frames = feats.shape[1]
        let lists = coarseLists(feats.data, frames: frames)
        let (scores, ids) = scan(feats.data, frames: frames, lists: lists, probes: configuration.probes)
        let k = configuration.k
        let retrieved = Retrieval.retrieve(self, ids: ids, weights: Retrieval.weights(scores: scores, k: k), k: k)
        return Retrieval.blend(retrieved: retrieved, feats: feats, indexRate: indexRate)
    }
}
