import Foundation
import Testing
@testable import RVCNative

/// Upstream `attentions.MultiHeadAttention.attention` written out literally, pads, flattens and reshapes
/// included, on one batch item in (T, C) layout after the q/k/v projections.
struct LiteralRelativeAttention {
    let heads: Int
    let k: Int
    let window: Int
    let relativeKeys: [Float]  // (2w+1, k)
    let relativeValues: [Float]

    /// `_get_relative_embeddings`: pad, then slice 2T-1 rows.
    func usedEmbeddings(_ table: [Float], length: Int) -> [[Float]] {
        let padLength = max(length - (window + 1), 0)
        let sliceStart = max((window + 1) - length, 0)
        var padded: [[Float]] = Array(repeating: Array(repeating: 0, count: k), count: padLength)
        for row in 0..<(2 * window + 1) { padded.append(Array(table[(row * k)..<((row + 1) * k)])) }
        padded += Array(repeating: Array(repeating: 0, count: k), count: padLength)
        return Array(padded[sliceStart..<(sliceStart + 2 * length - 1)])
    }

    /// `_relative_position_to_absolute_position`: [l, 2l-1] -> [l, l].
    func relativeToAbsolute(_ x: [[Float]]) -> [[Float]] {
        let l = x.count
        var flat: [Float] = []
        for row in x { flat += row + [0] }  // pad one column
        flat += [Float](repeating: 0, count: l - 1)
        let width = 2 * l - 1
        var result: [[Float]] = []
        for row in 0..<l { result.append(Array(flat[(row * width + l - 1)..<(row * width + width)])) }
        return result
    }

    /// `_absolute_position_to_relative_position`: [l, l] -> [l, 2l-1].
    func absoluteToRelative(_ x: [[Float]]) -> [[Float]] {
        let l = x.count
        var flat = [Float](repeating: 0, count: l)  // l zeros in front skew the rows
        for row in x { flat += row + [Float](repeating: 0, count: l - 1) }
        var result: [[Float]] = []
        for row in 0..<l { result.append(Array(flat[(row * 2 * l + 1)..<((row + 1) * 2 * l)])) }
        return result
    }

    func attend(q: [Float], key: [Float], value: [Float], mask: [Float]) -> [Float] {
        let t = mask.count
        let channels = heads * k
        var output = [Float](repeating: 0, count: t * channels)
        let scale = Float(k).squareRoot()
        let keysUsed = usedEmbeddings(relativeKeys, length: t)
        let valuesUsed = usedEmbeddings(relativeValues, length: t)
        for h in 0..<heads {
            func row(_ m: [Float], _ i: Int) -> [Float] { (0..<k).map { m[i * channels + h * k + $0] } }
            func dot(_ a: [Float], _ b: [Float]) -> Float {
                var sum: Float = 0
                for (x, y) in zip(a, b) { sum += x * y }
                return sum
            }
            let queries: [[Float]] = (0..<t).map { i in row(q, i).map { $0 / scale } }
            var scores: [[Float]] = (0..<t).map { i in (0..<t).map { j in dot(queries[i], row(key, j)) } }
            let relativeLogits: [[Float]] = (0..<t).map { i in keysUsed.map { dot(queries[i], $0) } }
            let local = relativeToAbsolute(relativeLogits)
            for i in 0..<t {
                for j in 0..<t {
                    scores[i][j] += local[i][j]
                    if mask[i] * mask[j] == 0 { scores[i][j] = -1e4 }
                }
                let maximum = scores[i].max() ?? 0
                let exps = scores[i].map { Foundation.exp($0 - maximum) }
                let total = exps.reduce(0, +)
                scores[i] = exps.map { $0 / total }
            }
            let weights = absoluteToRelative(scores)
            for i in 0..<t {
                for c in 0..<k {
                    var sum: Float = 0
                    for j in 0..<t { sum += scores[i][j] * value[j * channels + h * k + c] }
                    for m in 0..<(2 * t - 1) { sum += weights[i][m] * valuesUsed[m][c] }
                    output[i * channels + h * k + c] = sum
                }
            }
        }
        return output
    }
}

@Suite struct MultiHeadAttentionTests {
    func identityConv(_ channels: Int) -> Conv1d {
        var weight = [Float](repeating: 0, count: channels * channels)
        for c in 0..<channels { weight[c * channels + c] = 1 }
        return Conv1d(weight: weight, bias: [Float](repeating: 0, count: channels), inputChannels: channels,
                      outputChannels: channels, geometry: ConvolutionGeometry(kernelSize: 1))
    }

    func randomConv(_ channels: Int, seed: UInt64) -> Conv1d {
        Conv1d(weight: randomValues(channels * channels, seed: seed), bias: randomValues(channels, seed: seed + 1),
               inputChannels: channels, outputChannels: channels, geometry: ConvolutionGeometry(kernelSize: 1))
    }

    /// Shorter and longer than the window + 1 (the two branches of upstream's padding), with masked frames.
    @Test(arguments: [(5, 5), (5, 3), (11, 11), (23, 23), (23, 17)])
    func matchesUpstreamIndexShuffles(frames: Int, length: Int) {
        let (heads, k, window) = (2, 3, 10)
        let channels = heads * k
        let relativeKeys = randomValues((2 * window + 1) * k, seed: 40)
        let relativeValues = randomValues((2 * window + 1) * k, seed: 41)
        let attention = MultiHeadAttention(
            convQ: randomConv(channels, seed: 50), convK: randomConv(channels, seed: 52), convV: randomConv(channels, seed: 54),
            convO: identityConv(channels), relativeKeys: relativeKeys, relativeValues: relativeValues, heads: heads, window: window)
        let x = Tensor(shape: [1, frames, channels], data: randomValues(frames * channels, seed: 60))
        let mask = (0..<frames).map { Float($0 < length ? 1 : 0) }
        let output = attention(x, mask: Tensor(shape: [1, frames, 1], data: mask))

        let literal = LiteralRelativeAttention(heads: heads, k: k, window: window, relativeKeys: relativeKeys,
                                               relativeValues: relativeValues)
        let expected = literal.attend(q: attention.convQ(x).data, key: attention.convK(x).data,
                                      value: attention.convV(x).data, mask: mask)
        #expect(maxAbsoluteDifference(output.data, expected) < 1e-5)
    }
}
