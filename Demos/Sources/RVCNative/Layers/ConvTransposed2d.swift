/// `torch.nn.ConvTranspose2d` (square kernel, no bias needed by RMVPE) on channels-last images.
///
/// The exported weight is `OHWI` (from PyTorch's `IOHW`); it is regrouped once at load into tap-major
/// `(KH, KW, O, I)`, so one sgemm gives every tap of a tile of input pixels side by side. Tap `(kh, kw)` of
/// input pixel `(h, w)` lands on output pixel `(h * s - p + kh, w * s - p + kw)`, as PyTorch defines it;
/// `outputPadding` only adds rows and columns at the far edge (upstream's `output_padding=(1, 1)`), which
/// the taps reach or, past their reach, leave at zero.
public struct ConvTransposed2d: Sendable {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let outputPadding: Int
    /// (KH, KW, O, I) row-major.
    let weightTapMajor: [Float]

    init(weightOHWI: [Float], inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int, padding: Int,
         outputPadding: Int) {
        precondition(weightOHWI.count == outputChannels * kernelSize * kernelSize * inputChannels)
        // PyTorch requires output_padding < stride (or dilation); beyond it the extra rows would be undefined.
        precondition(stride >= 1 && padding >= 0 && outputPadding >= 0 && outputPadding < stride)
        self.weightTapMajor = Convolution.tapMajor(weightOHWI, outputChannels: outputChannels,
                                                   taps: kernelSize * kernelSize, inputChannels: inputChannels)
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
    }

    /// Reads `<prefix>.weight` (O, K, K, I); no bias (upstream's `bias=False`).
    init(loading prefix: String, from weights: inout WeightStore, inputChannels: Int, outputChannels: Int,
         kernelSize: Int, stride: Int, padding: Int, outputPadding: Int) throws {
        let weight = try weights.take("\(prefix).weight", shape: [outputChannels, kernelSize, kernelSize, inputChannels])
        self.init(weightOHWI: weight, inputChannels: inputChannels, outputChannels: outputChannels,
                  kernelSize: kernelSize, stride: stride, padding: padding, outputPadding: outputPadding)
    }

    public func outputLength(_ inputLength: Int) -> Int {
        Convolution.outputFrames(inputFrames: inputLength, kernelSize: kernelSize, stride: stride, padding: padding,
                                 outputPadding: outputPadding)
    }

    /// (B, H, W, I) -> (B, H', W', O).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[3] == inputChannels,
                     "ConvTransposed2d input \(x.shape), expected I = \(inputChannels)")
        let (batches, height, width) = (x.shape[0], x.shape[1], x.shape[2])
        let (outHeight, outWidth) = (outputLength(height), outputLength(width))
        var output = Tensor(zeros: [batches, outHeight, outWidth, outputChannels])
        let (inputItem, outputItem) = (height * width * inputChannels, outHeight * outWidth * outputChannels)
        x.data.withUnsafeBufferPointer { input in
            output.data.withUnsafeMutableBufferPointer { target in
                weightTapMajor.withUnsafeBufferPointer { weight in
                    for b in 0..<batches {
                        scatter(input: input.baseAddress! + b * inputItem, height: height, width: width,
                                weight: weight.baseAddress!, output: target.baseAddress! + b * outputItem,
                                outHeight: outHeight, outWidth: outWidth)
                    }
                }
            }
        }
        return output
    }

    /// Tiles of output rows run in parallel, each owning its rows: it multiplies the input rows reaching them
    /// (a row or two more than half the tile, recomputed by the neighbouring tile) and adds their taps.
    private func scatter(input: UnsafePointer<Float>, height: Int, width: Int, weight: UnsafePointer<Float>,
                         output: UnsafeMutablePointer<Float>, outHeight: Int, outWidth: Int) {
        let (inChannels, outChannels, k, s, p) = (inputChannels, outputChannels, kernelSize, stride, padding)
        let tapsWidth = k * k * outChannels
        let workers = ParallelWork.workerCount
        // Each tile's taps stay within Convolution.tileFloatLimit floats.
        let tapsPerOutputRow = max(1, width * tapsWidth / s)
        let tileRows = max(1, min((outHeight + workers - 1) / workers, Convolution.tileFloatLimit / tapsPerOutputRow))
        let tileCount = (outHeight + tileRows - 1) / tileRows
        ParallelWork.run(workers: min(workers, tileCount)) { worker, workerCount in
            var tile = worker
            while tile < tileCount {
                let rows = (tile * tileRows)..<min(outHeight, (tile + 1) * tileRows)
                tile += workerCount
                let sources = Convolution.transposedInputs(reaching: rows, inputCount: height, kernelSize: k,
                                                           stride: s, padding: p)
                guard !sources.isEmpty else { continue }
                let pixels = sources.count * width
                let taps = UnsafeMutablePointer<Float>.allocate(capacity: pixels * tapsWidth)
                defer { taps.deallocate() }
                BLAS.sgemm(
                    transposeB: true, m: pixels, n: tapsWidth, k: inChannels,
                    a: input + sources.lowerBound * width * inChannels, lda: inChannels, b: weight, ldb: inChannels,
                    beta: 0, c: taps, ldc: tapsWidth)
                for h in sources {
                    for kh in 0..<k {
                        let row = h * s - p + kh
                        guard rows.contains(row) else { continue }
                        for w in 0..<width {
                            let pixelTaps = taps + ((h - sources.lowerBound) * width + w) * tapsWidth
                            for kw in 0..<k {
                                let column = w * s - p + kw
                                guard column >= 0 && column < outWidth else { continue }
                                let line = output + (row * outWidth + column) * outChannels
                                let contribution = pixelTaps + (kh * k + kw) * outChannels
                                for o in 0..<outChannels { line[o] += contribution[o] }
                            }
                        }
                    }
                }
            }
        }
    }
}
