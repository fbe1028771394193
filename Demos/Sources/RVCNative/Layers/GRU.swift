import Foundation

/// One direction of one layer of `torch.nn.GRU` (batch first), PyTorch's formula and gate order (r, z, n):
///
///     r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
///     z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
///     n = tanh(W_in x + b_in + r * (W_hn h + b_hn))     <- b_hn is inside the reset gate
///     h = (1 - z) * n + z * h
///
/// starting from h = 0. Weights keep PyTorch's layout (`OI`, rows in blocks r, z, n; the manifest's
/// `gru_gate_order: "rzn"`). The input projections of every frame are one sgemm; only the recurrent
/// product runs frame by frame. `reverse` runs the sequence back to front (PyTorch's `_reverse` weights);
/// outputs keep the input's frame order.
public struct GRU: Sendable {
    public let inputSize: Int
    public let hiddenSize: Int
    public let reverse: Bool
    let weightIH: [Float]  // (3H, I)
    let weightHH: [Float]  // (3H, H)
    let biasIH: [Float]  // (3H)
    let biasHH: [Float]  // (3H)

    init(weightIH: [Float], weightHH: [Float], biasIH: [Float], biasHH: [Float],
         inputSize: Int, hiddenSize: Int, reverse: Bool) {
        precondition(weightIH.count == 3 * hiddenSize * inputSize && weightHH.count == 3 * hiddenSize * hiddenSize)
        precondition(biasIH.count == 3 * hiddenSize && biasHH.count == 3 * hiddenSize)
        self.weightIH = weightIH
        self.weightHH = weightHH
        self.biasIH = biasIH
        self.biasHH = biasHH
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.reverse = reverse
    }

    /// Reads `<prefix>.{weight_ih,weight_hh,bias_ih,bias_hh}`.
    init(loading prefix: String, from weights: inout WeightStore, inputSize: Int, hiddenSize: Int, reverse: Bool) throws {
        let gates = 3 * hiddenSize
        self.init(weightIH: try weights.take("\(prefix).weight_ih", shape: [gates, inputSize]),
                  weightHH: try weights.take("\(prefix).weight_hh", shape: [gates, hiddenSize]),
                  biasIH: try weights.take("\(prefix).bias_ih", shape: [gates]),
                  biasHH: try weights.take("\(prefix).bias_hh", shape: [gates]),
                  inputSize: inputSize, hiddenSize: hiddenSize, reverse: reverse)
    }

    /// (B, T, I) -> (B, T, H).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 3 && x.channelCount == inputSize, "GRU input \(x.shape), expected I = \(inputSize)")
        var output = Tensor(zeros: [x.batchCount, x.frameCount, hiddenSize])
        output.data.withUnsafeMutableBufferPointer { target in
            run(x, into: MutableMatrixView(base: target.baseAddress!, rows: x.batchCount * x.frameCount,
                                           columns: hiddenSize))
        }
        return output
    }

    /// Writes the hidden states into `output` ((B * T) rows of H columns, any row stride), so the two
    /// directions of a bidirectional layer can fill their halves of one tensor.
    func run(_ x: Tensor, into output: MutableMatrixView) {
        let (batches, frames, hidden) = (x.batchCount, x.frameCount, hiddenSize)
        let gates = 3 * hidden
        precondition(output.rows == batches * frames && output.columns == hidden)
        // W_i x + b_i for every frame at once: (B * T) x 3H.
        var inputGates = [Float](repeating: 0, count: batches * frames * gates)
        inputGates.withUnsafeMutableBufferPointer { inputGates in
            for row in 0..<(batches * frames) {
                (inputGates.baseAddress! + row * gates).update(from: biasIH, count: gates)
            }
            x.data.withUnsafeBufferPointer { input in
                weightIH.withUnsafeBufferPointer { weight in
                    BLAS.sgemm(transposeB: true, m: batches * frames, n: gates, k: inputSize,
                               a: input.baseAddress!, lda: inputSize, b: weight.baseAddress!, ldb: inputSize,
                               beta: 1, c: inputGates.baseAddress!, ldc: gates)
                }
            }
            var h = [Float](repeating: 0, count: hidden)
            var hiddenGates = [Float](repeating: 0, count: gates)
            weightHH.withUnsafeBufferPointer { weightHH in
                for b in 0..<batches {
                    h.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
                    for step in 0..<frames {
                        let t = reverse ? frames - 1 - step : step
                        let xGates = inputGates.baseAddress! + (b * frames + t) * gates
                        // W_h h + b_h: one row times the (3H x H) matrix.
                        hiddenGates.withUnsafeMutableBufferPointer { hiddenGates in
                            hiddenGates.baseAddress!.update(from: biasHH, count: gates)
                            h.withUnsafeBufferPointer { h in
                                BLAS.sgemm(transposeB: true, m: 1, n: gates, k: hidden,
                                           a: h.baseAddress!, lda: hidden, b: weightHH.baseAddress!, ldb: hidden,
                                           beta: 1, c: hiddenGates.baseAddress!, ldc: gates)
                            }
                        }
                        let line = output.base + (b * frames + t) * output.rowStride
                        for j in 0..<hidden {
                            let r = sigmoid(xGates[j] + hiddenGates[j])
                            let z = sigmoid(xGates[hidden + j] + hiddenGates[hidden + j])
                            let n = tanhf(xGates[2 * hidden + j] + r * hiddenGates[2 * hidden + j])
                            h[j] = (1 - z) * n + z * h[j]
                            line[j] = h[j]
                        }
                    }
                }
            }
        }
    }
}

/// Upstream's `BiGRU`: one bidirectional batch-first GRU layer, the forward direction's hidden states then
/// the reverse direction's on each frame (PyTorch's output layout). The two directions run concurrently.
public struct BidirectionalGRU: Sendable {
    public let forward: GRU
    public let backward: GRU

    init(forward: GRU, backward: GRU) {
        precondition(forward.inputSize == backward.inputSize && forward.hiddenSize == backward.hiddenSize)
        precondition(!forward.reverse && backward.reverse)
        self.forward = forward
        self.backward = backward
    }

    /// Reads `<prefix>.forward.*` and `<prefix>.reverse.*` (the exported names of PyTorch's `*_l0` and
    /// `*_l0_reverse` tensors).
    init(loading prefix: String, from weights: inout WeightStore, inputSize: Int, hiddenSize: Int) throws {
        self.init(forward: try GRU(loading: "\(prefix).forward", from: &weights, inputSize: inputSize,
                                   hiddenSize: hiddenSize, reverse: false),
                  backward: try GRU(loading: "\(prefix).reverse", from: &weights, inputSize: inputSize,
                                    hiddenSize: hiddenSize, reverse: true))
    }

    public var hiddenSize: Int { forward.hiddenSize }

    /// (B, T, I) -> (B, T, 2H).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let hidden = hiddenSize
        var output = Tensor(zeros: [x.batchCount, x.frameCount, 2 * hidden])
        let rows = x.batchCount * x.frameCount
        output.data.withUnsafeMutableBufferPointer { target in
            let base = target.baseAddress!
            // The directions write disjoint column halves of the same rows.
            ParallelWork.run(workers: min(2, ParallelWork.workerCount)) { worker, workers in
                for (index, direction) in [forward, backward].enumerated() where index % workers == worker {
                    direction.run(x, into: MutableMatrixView(base: base + index * hidden, rows: rows, columns: hidden,
                                                             rowStride: 2 * hidden))
                }
            }
        }
        return output
    }
}

@inline(__always)
func sigmoid(_ x: Float) -> Float {
    1 / (1 + expf(-x))
}
