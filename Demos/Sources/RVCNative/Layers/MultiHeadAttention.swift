import Foundation

/// VITS/RVC self-attention with relative positions (`attentions.MultiHeadAttention`, window 10,
/// `heads_share=True`: one relative-key and one relative-value table for all heads).
///
/// Upstream adds the relative terms with pad/reshape index shuffles over (T, 2T-1) matrices; they amount to
/// `scores[i][j] += q_i . emb_rel_k[j - i + window]` and `out_i += sum_j p[i][j] * emb_rel_v[j - i + window]`
/// for `|j - i| <= window`, which is what this computes, on a band of 2 * window + 1 diagonals.
public struct MultiHeadAttention: Sendable {
    public let channels: Int
    public let heads: Int
    public let window: Int
    let convQ: Conv1d
    let convK: Conv1d
    let convV: Conv1d
    let convO: Conv1d
    /// (2 * window + 1, headChannels): the exported (1, 2w+1, k) tables without their head axis.
    let relativeKeys: [Float]
    let relativeValues: [Float]

    var headChannels: Int { channels / heads }

    /// Rows of queries scored at once, so the (rows x T) score block stays bounded for long inputs.
    static let scoreBudget = 1 << 20

    init(convQ: Conv1d, convK: Conv1d, convV: Conv1d, convO: Conv1d, relativeKeys: [Float], relativeValues: [Float],
         heads: Int, window: Int) {
        let channels = convQ.inputChannels
        precondition(channels % heads == 0)
        precondition(relativeKeys.count == (2 * window + 1) * channels / heads && relativeValues.count == relativeKeys.count)
        self.convQ = convQ
        self.convK = convK
        self.convV = convV
        self.convO = convO
        self.relativeKeys = relativeKeys
        self.relativeValues = relativeValues
        self.channels = channels
        self.heads = heads
        self.window = window
    }

    init(loading prefix: String, from weights: inout WeightStore, channels: Int, heads: Int, window: Int) throws {
        func projection(_ name: String) throws -> Conv1d {
            try Conv1d(loading: "\(prefix).\(name)", from: &weights, inputChannels: channels, outputChannels: channels)
        }
        let tableShape = [1, 2 * window + 1, channels / heads]
        self.init(convQ: try projection("conv_q"), convK: try projection("conv_k"), convV: try projection("conv_v"),
                  convO: try projection("conv_o"),
                  relativeKeys: try weights.take("\(prefix).emb_rel_k", shape: tableShape),
                  relativeValues: try weights.take("\(prefix).emb_rel_v", shape: tableShape),
                  heads: heads, window: window)
    }

    /// Self-attention of x (B, T, C) under `mask` (B, T, 1): position pairs with a masked end score -1e4.
    public func callAsFunction(_ x: Tensor, mask: Tensor) -> Tensor {
        let (batches, frames) = (x.batchCount, x.frameCount)
        let query = convQ(x)
        let key = convK(x)
        let value = convV(x)
        var attended = Tensor(zeros: [batches, frames, channels])
        query.data.withUnsafeBufferPointer { query in
        key.data.withUnsafeBufferPointer { key in
        value.data.withUnsafeBufferPointer { value in
        mask.data.withUnsafeBufferPointer { mask in
        attended.data.withUnsafeMutableBufferPointer { attended in
            // Each (batch item, head) writes its own columns of `attended`, so they run in parallel.
            let pairs = batches * heads
            ParallelWork.run(workers: min(ParallelWork.workerCount, pairs)) { worker, workers in
                for pair in stride(from: worker, to: pairs, by: workers) {
                    let (b, h) = (pair / heads, pair % heads)
                    let offset = b * frames * channels + h * headChannels
                    attendHead(query: query.baseAddress! + offset, key: key.baseAddress! + offset,
                               value: value.baseAddress! + offset, mask: mask.baseAddress! + b * frames,
                               frames: frames, output: attended.baseAddress! + offset)
                }
            }
        }}}}}
        return convO(attended)
    }

    /// One head of one batch item; q, k, v and output are (T, headChannels) column slices, rows `channels`
    /// apart. Queries are scored a block of rows at a time.
    private func attendHead(query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
                            mask: UnsafePointer<Float>, frames: Int, output: UnsafeMutablePointer<Float>) {
        let k = headChannels
        let bandWidth = 2 * window + 1
        let blockRows = max(1, min(frames, Self.scoreBudget / max(frames, 1)))
        let scale = 1 / Float(k).squareRoot()
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * frames)
        defer { scores.deallocate() }
        let band = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * bandWidth)
        defer { band.deallocate() }
        relativeKeys.withUnsafeBufferPointer { relativeKeys in
        relativeValues.withUnsafeBufferPointer { relativeValues in
            var first = 0
            while first < frames {
                let rows = min(blockRows, frames - first)
                let queries = query + first * channels
                let out = output + first * channels
                // scores = (q / sqrt(k)) K^T; band = (q / sqrt(k)) E_k^T, one column per relative position.
                BLAS.sgemm(transposeB: true, m: rows, n: frames, k: k, alpha: scale,
                           a: queries, lda: channels, b: key, ldb: channels, beta: 0, c: scores, ldc: frames)
                BLAS.sgemm(transposeB: true, m: rows, n: bandWidth, k: k, alpha: scale,
                           a: queries, lda: channels, b: relativeKeys.baseAddress!, ldb: k,
                           beta: 0, c: band, ldc: bandWidth)
                for r in 0..<rows {
                    let i = first + r
                    let line = scores + r * frames
                    for offset in -window...window where i + offset >= 0 && i + offset < frames {
                        line[i + offset] += band[r * bandWidth + offset + window]
                    }
                    // masked_fill(mask == 0, -1e4) with mask = x_mask[i] * x_mask[j]
                    if mask[i] == 0 {
                        for j in 0..<frames { line[j] = -1e4 }
                    } else {
                        for j in 0..<frames where mask[j] == 0 { line[j] = -1e4 }
                    }
                }
                softmaxRows(scores, rows: rows, columns: frames, rowStride: frames)
                // out = p V + band(p) E_v
                BLAS.sgemm(m: rows, n: k, k: frames, a: scores, lda: frames, b: value, ldb: channels,
                           beta: 0, c: out, ldc: channels)
                for r in 0..<rows {
                    let i = first + r
                    for offset in -window...window {
                        let j = i + offset
                        band[r * bandWidth + offset + window] = (j >= 0 && j < frames) ? scores[r * frames + j] : 0
                    }
                }
                BLAS.sgemm(m: rows, n: k, k: bandWidth, a: band, lda: bandWidth,
                           b: relativeValues.baseAddress!, ldb: k, beta: 1, c: out, ldc: channels)
                first += rows
            }
        }}
    }
}
