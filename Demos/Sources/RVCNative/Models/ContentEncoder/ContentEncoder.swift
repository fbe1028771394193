import Foundation

/// HuBERT-base / ContentVec (fairseq `HubertModel.extract_features`, = transformers' `HubertModel`), in the
/// order and with the names of `rvc_ios_tools/hubert/model.py`: raw 16 kHz audio -> conv front end (GroupNorm
/// over time on the first layer, exact GELU) -> LayerNorm -> projection -> + GELU(positional conv) ->
/// LayerNorm -> post-LN transformer layers; v1 features are final_proj(layer 9), v2 features layer 12.
///
/// Activations are channels-last (B, T, C); weights keep the exported layouts (conv `OKI`, linear `OI`).
public struct ContentEncoder: Sendable {
    public let configuration: ContentEncoderConfiguration
    let frontEnd: [StridedConv1d]
    let groupNorm: ChannelAffine
    let featureNorm: ChannelAffine
    let projection: Linear
    let positionalConv: GroupedPositionalConv
    let encoderNorm: ChannelAffine
    let layers: [EncoderLayer]
    let finalProj: Linear?

    public init(configuration: ContentEncoderConfiguration, weights file: SafeTensorsFile) throws {
        try configuration.validate()
        self.configuration = configuration
        let a = configuration.architecture
        var weights = WeightStore(file: file)
        var channels = 1
        var convolutions: [StridedConv1d] = []
        for (i, layer) in a.convLayers.enumerated() {
            convolutions.append(try StridedConv1d(loading: "feature_extractor.conv_\(i)", from: &weights, inChannels: channels,
                                                  outChannels: layer[0], kernel: layer[1], stride: layer[2]))
            channels = layer[0]
        }
        frontEnd = convolutions
        groupNorm = try ChannelAffine(loading: "feature_extractor.norm_0", from: &weights, channels: a.convLayers[0][0])
        featureNorm = try ChannelAffine(loading: "feature_projection.layer_norm", from: &weights, channels: channels)
        projection = try Linear(loading: "feature_projection.projection", from: &weights, inputFeatures: channels,
                                outputFeatures: a.hiddenSize)
        positionalConv = try GroupedPositionalConv(loading: "encoder.pos_conv", from: &weights, channels: a.hiddenSize,
                                                   kernel: a.convPos, groups: a.convPosGroups)
        encoderNorm = try ChannelAffine(loading: "encoder.layer_norm", from: &weights, channels: a.hiddenSize)
        layers = try (0..<a.numLayers).map { n in
            try EncoderLayer(loading: "encoder.layer_\(n)", from: &weights, architecture: a)
        }
        finalProj = try a.finalProjDim.map { dim in
            try Linear(loading: "final_proj", from: &weights, inputFeatures: a.hiddenSize, outputFeatures: dim)
        }
        try weights.checkAllUsed()
    }

    /// Reads `<directory>/<name>.manifest.json`, checks the weights file it names against it (tensor list,
    /// shapes, dtypes, XXH64 checksums), and builds the model.
    public static func load(assetsDirectory directory: String, modelName name: String) throws -> ContentEncoder {
        let (manifest, weights) = try loadVerifiedExport(directory: directory, name: name,
                                                         readManifest: ContentEncoderManifest.load(path:), common: \.common)
        return try ContentEncoder(configuration: manifest.configuration, weights: weights)
    }

    var epsilon: Float { Float(configuration.architecture.layerNormEps) }
    public var hasFinalProj: Bool { finalProj != nil }

    // MARK: Stages (each what the golden stage of the same name records)

    /// (B, N) audio -> (B, N, 1), refusing audio shorter than one frame's receptive field.
    public func audioFrames(_ audio: Tensor) throws -> Tensor {
        precondition(audio.rank == 2)
        guard configuration.frameCount(samples: audio.shape[1]) >= 1 else {
            throw ContentEncoderError.audioTooShort(samples: audio.shape[1], minimum: configuration.receptiveField)
        }
        return audio.reshaped([audio.shape[0], audio.shape[1], 1])
    }

    /// Front-end conv layer `i` (bias-free, unpadded), GroupNorm over time after the first, then GELU.
    public func frontEndLayer(_ i: Int, _ x: Tensor) -> Tensor {
        var y = frontEnd[i](x)
        if i == 0 { y = groupNorm.normalizingEachChannelOverTime(y, epsilon: epsilon) }
        y.applyExactGELU()
        return y
    }

    /// The top-level LayerNorm on the conv features (before the projection, hubert.py L443-451).
    public func featureNormalized(_ x: Tensor) -> Tensor { featureNorm.normalizingEachFrame(x, epsilon: epsilon) }

    public func projected(_ x: Tensor) -> Tensor { projection.parallel(x) }

    /// GELU(SamePad(pos_conv(x))): the positional branch before the residual add.
    public func positional(_ x: Tensor) -> Tensor {
        var y = positionalConv(x)
        y.applyExactGELU()
        return y
    }

    /// LN(x + positional): transformers' `hidden_states[0]`.
    public func encoderInput(projected: Tensor, positional: Tensor) -> Tensor {
        var x = projected
        x.add(positional)
        return encoderNorm.normalizingEachFrame(x, epsilon: epsilon)
    }

    /// Encoder layer `n` (0-based): its output is `hidden_states[n + 1]`.
    public func layer(_ n: Int, _ x: Tensor) -> Tensor { layers[n](x, epsilon: epsilon) }

    public func projectedFinal(_ x: Tensor) throws -> Tensor {
        guard let finalProj else { throw ContentEncoderError.noFinalProj }
        return finalProj.parallel(x)
    }

    /// RVC's content features: (B, N) audio -> (B, T, H) layer `numLayers` for v2; final_proj of layer
    /// `v1Layer` (9, RVC's) or of the last (Applio's) for v1. Layers past the one needed never run.
    public func features(audio: Tensor, v1Layer: Int? = nil) throws -> Tensor {
        let last = v1Layer ?? configuration.architecture.numLayers
        if v1Layer != nil, finalProj == nil { throw ContentEncoderError.noFinalProj }
        var x = firstTwoFrontEndLayers(try audioFrames(audio))
        for i in 2..<frontEnd.count { x = frontEndLayer(i, x) }
        let p = projected(featureNormalized(x))
        x = encoderInput(projected: p, positional: positional(p))
        for n in 0..<last { x = layer(n, x) }
        return v1Layer == nil ? x : try projectedFinal(x)
    }
}

extension ContentEncoder {
    /// Output frames of conv 1 made per tile by `firstTwoFrontEndLayers`.
    static let streamingTileFrames = 2048

    /// Conv 0 -> GroupNorm -> GELU -> conv 1 -> GELU (`frontEndLayer(1, frontEndLayer(0, x))`) without
    /// holding conv 0's output, the largest activation of the network (16 000 frames x 512 channels per second
    /// of audio: 1.9 GB at 60 s): a first pass takes the GroupNorm's per-channel sums over conv 0's frames, tile
    /// by tile; a second makes each tile of conv 1's output from the conv 0 frames it reads, computed again.
    func firstTwoFrontEndLayers(_ audio: Tensor) -> Tensor {
        guard frontEnd.count >= 2, audio.shape[0] == 1 else {
            return frontEndLayer(1, frontEndLayer(0, audio))
        }
        let (first, second) = (frontEnd[0], frontEnd[1])
        let samples = audio.shape[1]
        let frames0 = (samples - first.kernel) / first.stride + 1
        let frames1 = frames0 >= second.kernel ? (frames0 - second.kernel) / second.stride + 1 : 0
        // conv 0 frames `range` (of the unnormalised output) from the samples they read.
        func conv0(_ range: Range<Int>) -> Tensor {
            first(audio.frames((range.lowerBound * first.stride)..<((range.upperBound - 1) * first.stride + first.kernel)))
        }
        let channels = first.outChannels
        var sums = [Double](repeating: 0, count: channels)
        var squares = [Double](repeating: 0, count: channels)
        let tile0 = Self.streamingTileFrames * second.stride
        for start in stride(from: 0, to: frames0, by: tile0) {
            let y = conv0(start..<min(frames0, start + tile0))
            y.data.withUnsafeBufferPointer { values in
                for t in 0..<y.shape[1] {
                    for c in 0..<channels {
                        let v = Double(values[t * channels + c])
                        sums[c] += v
                        squares[c] += v * v
                    }
                }
            }
        }
        let (scales, shifts) = groupNorm.scalesAndShifts(sums: sums, squares: squares, frames: frames0, epsilon: epsilon)
        var output = Tensor(zeros: [1, frames1, second.outChannels])
        for start in stride(from: 0, to: frames1, by: Self.streamingTileFrames) {
            let end = min(frames1, start + Self.streamingTileFrames)
            var y = conv0((start * second.stride)..<((end - 1) * second.stride + second.kernel))
            y.data.withUnsafeMutableBufferPointer { values in
                for t in 0..<y.shape[1] {
                    for c in 0..<channels { values[t * channels + c] = values[t * channels + c] * scales[c] + shifts[c] }
                }
            }
            y.applyExactGELU()
            var z = second(y)
            z.applyExactGELU()
            output.data.withUnsafeMutableBufferPointer { target in
                z.data.withUnsafeBufferPointer { (target.baseAddress! + start * second.outChannels).update(from: $0.baseAddress!, count: $0.count) }
            }
        }
        return output
    }
}

// MARK: - Layers

/// Per-channel weight and bias of a LayerNorm or GroupNorm.
struct ChannelAffine: Sendable {
    let weight: [Float]
    let bias: [Float]

    init(loading prefix: String, from weights: inout WeightStore, channels: Int) throws {
        weight = try weights.take("\(prefix).weight", shape: [channels])
        bias = try weights.take("\(prefix).bias", shape: [channels])
    }

    /// torch LayerNorm over the last axis (biased variance, statistics in double), rows in parallel.
    func normalizingEachFrame(_ x: Tensor, epsilon: Float) -> Tensor {
        let columns = weight.count
        precondition(x.shape.last == columns)
        var output = x
        let rows = x.count / columns
        output.data.withUnsafeMutableBufferPointer { values in
            weight.withUnsafeBufferPointer { weight in
                bias.withUnsafeBufferPointer { bias in
                    let (base, w, b) = (values.baseAddress!, weight.baseAddress!, bias.baseAddress!)
                    let workers = min(ParallelWork.workerCount, max(1, x.count / ParallelWork.minimumElementsPerWorker))
                    ParallelWork.run(workers: workers) { worker, workers in
                        let size = (rows + workers - 1) / workers
                        let (start, end) = (worker * size, min(rows, (worker + 1) * size))
                        guard start < end else { return }
                        layerNormalizeRows(base + start * columns, rows: end - start, columns: columns,
                                           weight: w, bias: b, epsilon: epsilon)
                    }
                }
            }
        }
        return output
    }

    /// fairseq `Fp32GroupNorm(C, C)` on (B, T, C): each channel normalised over the whole time axis (biased
    /// variance, statistics in double), not over channels.
    func normalizingEachChannelOverTime(_ x: Tensor, epsilon: Float) -> Tensor {
        precondition(x.rank == 3 && x.shape[2] == weight.count)
        let (batches, frames, channels) = (x.shape[0], x.shape[1], x.shape[2])
        var output = x
        output.data.withUnsafeMutableBufferPointer { values in
            let base = values.baseAddress!
            for b in 0..<batches {
                let start = base + b * frames * channels
                // Channels split across workers; each accumulates its channels over every frame.
                ParallelWork.run(workers: min(ParallelWork.workerCount, max(1, channels / 64))) { worker, workers in
                    let size = (channels + workers - 1) / workers
                    let range = (worker * size)..<min(channels, (worker + 1) * size)
                    guard !range.isEmpty else { return }
                    var sums = [Double](repeating: 0, count: range.count)
                    for t in 0..<frames {
                        let row = start + t * channels + range.lowerBound
                        for c in 0..<range.count { sums[c] += Double(row[c]) }
                    }
                    let means = sums.map { $0 / Double(frames) }
                    var squares = [Double](repeating: 0, count: range.count)
                    for t in 0..<frames {
                        let row = start + t * channels + range.lowerBound
                        for c in 0..<range.count {
                            let centered = Double(row[c]) - means[c]
                            squares[c] += centered * centered
                        }
                    }
                    var scales = [Float](repeating: 0, count: range.count)
                    var shifts = [Float](repeating: 0, count: range.count)
                    for c in 0..<range.count {
                        (scales[c], shifts[c]) = affine(channel: range.lowerBound + c, mean: means[c],
                                                        variance: squares[c] / Double(frames), epsilon: epsilon)
                    }
                    for t in 0..<frames {
                        let row = start + t * channels + range.lowerBound
                        for c in 0..<range.count { row[c] = row[c] * scales[c] + shifts[c] }
                    }
                }
            }
        }
        return output
    }
}

extension ChannelAffine {
    /// (x - mean) / sqrt(variance + eps) * weight + bias as one multiply-add per value: (scale, shift).
    func affine(channel c: Int, mean: Double, variance: Double, epsilon: Float) -> (Float, Float) {
        let inverse = 1 / (variance + Double(epsilon)).squareRoot()
        return (Float(inverse) * weight[c], bias[c] - Float(mean * inverse) * weight[c])
    }

    /// Every channel's (scale, shift) from its sum and sum of squares over `frames` (in double, where the
    /// one-pass variance E[x^2] - E[x]^2 loses nothing at these magnitudes).
    func scalesAndShifts(sums: [Double], squares: [Double], frames: Int, epsilon: Float) -> ([Float], [Float]) {
        var scales = [Float](repeating: 0, count: sums.count)
        var shifts = [Float](repeating: 0, count: sums.count)
        for c in sums.indices {
            let mean = sums[c] / Double(frames)
            (scales[c], shifts[c]) = affine(channel: c, mean: mean, variance: max(0, squares[c] / Double(frames) - mean * mean),
                                            epsilon: epsilon)
        }
        return (scales, shifts)
    }
}

/// A bias-free, unpadded Conv1d with a stride (the front end), weight `OKI`: (B, T, I) -> (B, T', O),
/// T' = (T - K) / S + 1. Output frames are split into tiles, one worker each.
struct StridedConv1d: Sendable {
    let weight: [Float]
    let inChannels: Int
    let outChannels: Int
    let kernel: Int
    let stride: Int

    /// Up to this many values per window, each tile's windows are gathered into one matrix (conv 0: one
    /// channel, 10 taps) for one product; above it, one product per tap reads the input in place.
    static let gatherLimit = 64
    static let tileFrames = 256

    init(loading prefix: String, from weights: inout WeightStore, inChannels: Int, outChannels: Int, kernel: Int,
         stride: Int) throws {
        weight = try weights.take("\(prefix).weight", shape: [outChannels, kernel, inChannels])
        (self.inChannels, self.outChannels, self.kernel, self.stride) = (inChannels, outChannels, kernel, stride)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 3 && x.shape[2] == inChannels)
        let (batches, frames) = (x.shape[0], x.shape[1])
        let outFrames = frames >= kernel ? (frames - kernel) / stride + 1 : 0
        var output = Tensor(zeros: [batches, outFrames, outChannels])
        let window = kernel * inChannels
        let tiles = (outFrames + Self.tileFrames - 1) / Self.tileFrames
        x.data.withUnsafeBufferPointer { input in
            weight.withUnsafeBufferPointer { weight in
                output.data.withUnsafeMutableBufferPointer { out in
                    let (source, w, target) = (input.baseAddress!, weight.baseAddress!, out.baseAddress!)
                    ParallelWork.run(workers: min(ParallelWork.workerCount, max(1, batches * tiles))) { worker, workers in
                        var gathered = [Float](repeating: 0, count: window <= Self.gatherLimit ? Self.tileFrames * window : 0)
                        for job in Swift.stride(from: worker, to: batches * tiles, by: workers) {
                            let (b, tile) = (job / tiles, job % tiles)
                            let first = tile * Self.tileFrames
                            let rows = min(Self.tileFrames, outFrames - first)
                            let x0 = source + (b * frames + first * stride) * inChannels
                            let y0 = target + (b * outFrames + first) * outChannels
                            if window <= Self.gatherLimit {
                                // Row t of the window matrix is frames S t ..< S t + K, tap-major like the weight.
                                gathered.withUnsafeMutableBufferPointer { g in
                                    for t in 0..<rows { (g.baseAddress! + t * window).update(from: x0 + t * stride * inChannels, count: window) }
                                    BLAS.sgemm(transposeB: true, m: rows, n: outChannels, k: window, a: g.baseAddress!,
                                               lda: window, b: w, ldb: window, beta: 0, c: y0, ldc: outChannels)
                                }
                            } else {
                                for k in 0..<kernel {
                                    BLAS.sgemm(transposeB: true, m: rows, n: outChannels, k: inChannels,
                                               a: x0 + k * inChannels, lda: stride * inChannels, b: w + k * inChannels,
                                               ldb: window, beta: k == 0 ? 0 : 1, c: y0, ldc: outChannels)
                                }
                            }
                        }
                    }
                }
            }
        }
        return output
    }
}

/// `encoder.pos_conv`: Conv1d(H, H, K, padding K / 2, groups G) with its weight-norm weight folded (`OKI`,
/// (H, K, H / G)), then `SamePad`: an even K gives T + 1 frames and the last is dropped, so only frames
/// 0 ..< T are computed. Per tile of frames and group, the K taps' windows of that group's channels are
/// gathered into one (rows, K * H / G) matrix for one product: the whole (T, K * H / G) matrix never exists.
struct GroupedPositionalConv: Sendable {
    let weight: [Float]
    let bias: [Float]
    let channels: Int
    let kernel: Int
    let groups: Int
    static let tileFrames = 64

    init(loading prefix: String, from weights: inout WeightStore, channels: Int, kernel: Int, groups: Int) throws {
        weight = try weights.take("\(prefix).weight", shape: [channels, kernel, channels / groups])
        bias = try weights.take("\(prefix).bias", shape: [channels])
        (self.channels, self.kernel, self.groups) = (channels, kernel, groups)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 3 && x.shape[2] == channels)
        let (batches, frames) = (x.shape[0], x.shape[1])
        let width = channels / groups
        let window = kernel * width
        let padding = kernel / 2
        var output = Tensor(zeros: [batches, frames, channels])
        let tiles = (frames + Self.tileFrames - 1) / Self.tileFrames
        x.data.withUnsafeBufferPointer { input in
            weight.withUnsafeBufferPointer { weight in
                bias.withUnsafeBufferPointer { bias in
                    output.data.withUnsafeMutableBufferPointer { out in
                        let (source, w, target) = (input.baseAddress!, weight.baseAddress!, out.baseAddress!)
                        let jobs = batches * tiles * groups
                        ParallelWork.run(workers: min(ParallelWork.workerCount, jobs)) { worker, workers in
                            var gathered = [Float](repeating: 0, count: Self.tileFrames * window)
                            gathered.withUnsafeMutableBufferPointer { g in
                                let matrix = g.baseAddress!
                                for job in stride(from: worker, to: jobs, by: workers) {
                                    let group = job % groups
                                    let tile = (job / groups) % tiles
                                    let b = job / (groups * tiles)
                                    let first = tile * Self.tileFrames
                                    let rows = min(Self.tileFrames, frames - first)
                                    for r in 0..<rows {
                                        let line = matrix + r * window
                                        for k in 0..<kernel {
                                            let frame = first + r + k - padding  // zero outside the audio's frames
                                            let slot = line + k * width
                                            if frame < 0 || frame >= frames {
                                                slot.update(repeating: 0, count: width)
                                            } else {
                                                slot.update(from: source + (b * frames + frame) * channels + group * width,
                                                            count: width)
                                            }
                                        }
                                    }
                                    let y0 = target + (b * frames + first) * channels + group * width
                                    for r in 0..<rows { (y0 + r * channels).update(from: bias.baseAddress! + group * width, count: width) }
                                    BLAS.sgemm(transposeB: true, m: rows, n: width, k: window, a: matrix, lda: window,
                                               b: w + group * width * window, ldb: window, beta: 1, c: y0, ldc: channels)
                                }
                            }
                        }
                    }
                }
            }
        }
        return output
    }
}

/// fairseq `TransformerSentenceEncoderLayer` with `layer_norm_first=False` (post-LN):
/// x = LN(x + attention(x)); x = LN(x + fc2(GELU(fc1(x)))).
struct EncoderLayer: Sendable {
    let query, key, value, out: Linear
    let attentionNorm: ChannelAffine
    let fc1, fc2: Linear
    let finalNorm: ChannelAffine
    let heads: Int

    /// Queries per block of one head's attention scores (a block's (rows, T) scores exist at a time).
    static let queryBlock = 128

    init(loading prefix: String, from weights: inout WeightStore, architecture a: ContentEncoderConfiguration.Architecture) throws {
        let h = a.hiddenSize
        query = try Linear(loading: "\(prefix).attention.q_proj", from: &weights, inputFeatures: h, outputFeatures: h)
        key = try Linear(loading: "\(prefix).attention.k_proj", from: &weights, inputFeatures: h, outputFeatures: h)
        value = try Linear(loading: "\(prefix).attention.v_proj", from: &weights, inputFeatures: h, outputFeatures: h)
        out = try Linear(loading: "\(prefix).attention.out_proj", from: &weights, inputFeatures: h, outputFeatures: h)
        attentionNorm = try ChannelAffine(loading: "\(prefix).attention_norm", from: &weights, channels: h)
        fc1 = try Linear(loading: "\(prefix).fc1", from: &weights, inputFeatures: h, outputFeatures: a.intermediateSize)
        fc2 = try Linear(loading: "\(prefix).fc2", from: &weights, inputFeatures: a.intermediateSize, outputFeatures: h)
        finalNorm = try ChannelAffine(loading: "\(prefix).final_norm", from: &weights, channels: h)
        heads = a.numHeads
    }

    func callAsFunction(_ x: Tensor, epsilon: Float) -> Tensor {
        var h = x
        h.add(out.parallel(attention(x)))
        h = attentionNorm.normalizingEachFrame(h, epsilon: epsilon)
        var inner = fc1.parallel(h)
        inner.applyExactGELU()
        var y = h
        y.add(fc2.parallel(inner))
        return finalNorm.normalizingEachFrame(y, epsilon: epsilon)
    }

    /// fairseq `MultiheadAttention` (self-attention, no mask): q scaled by head_dim^-0.5, softmax over keys in
    /// float32; heads and blocks of queries run in parallel.
    func attention(_ x: Tensor) -> Tensor {
        let (batches, frames, hidden) = (x.shape[0], x.shape[1], x.shape[2])
        let dim = hidden / heads
        var q = query.parallel(x)
        q.scale(by: Float(1 / Double(dim).squareRoot()))
        let k = key.parallel(x)
        let v = value.parallel(x)
        var output = Tensor(zeros: [batches, frames, hidden])
        let blocks = (frames + Self.queryBlock - 1) / Self.queryBlock
        let jobs = batches * heads * blocks
        q.data.withUnsafeBufferPointer { q in
            k.data.withUnsafeBufferPointer { k in
                v.data.withUnsafeBufferPointer { v in
                    output.data.withUnsafeMutableBufferPointer { out in
                        let (qb, kb, vb, ob) = (q.baseAddress!, k.baseAddress!, v.baseAddress!, out.baseAddress!)
                        ParallelWork.run(workers: min(ParallelWork.workerCount, jobs)) { worker, workers in
                            var scores = [Float](repeating: 0, count: Self.queryBlock * frames)
                            scores.withUnsafeMutableBufferPointer { s in
                                let sb = s.baseAddress!
                                for job in stride(from: worker, to: jobs, by: workers) {
                                    let block = job % blocks
                                    let head = (job / blocks) % heads
                                    let b = job / (blocks * heads)
                                    let first = block * Self.queryBlock
                                    let rows = min(Self.queryBlock, frames - first)
                                    let offset = b * frames * hidden + head * dim
                                    BLAS.sgemm(transposeB: true, m: rows, n: frames, k: dim,
                                               a: qb + offset + first * hidden, lda: hidden, b: kb + offset, ldb: hidden,
                                               beta: 0, c: sb, ldc: frames)
                                    PolynomialActivations.softmaxRows(sb, rows: rows, columns: frames, rowStride: frames)
                                    BLAS.sgemm(m: rows, n: dim, k: frames, a: sb, lda: frames, b: vb + offset, ldb: hidden,
                                               beta: 0, c: ob + offset + first * hidden, ldc: hidden)
                                }
                            }
                        }
                    }
                }
            }
        }
        return output
    }
}

extension Linear {
    /// The product with rows split into tiles, one worker each (large matrices of frames).
    func parallel(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == inputFeatures, "Linear input \(x.shape), expected last axis \(inputFeatures)")
        let rows = x.count / inputFeatures
        var output = Tensor(zeros: Array(x.shape.dropLast()) + [outputFeatures])
        let tile = 128
        let tiles = (rows + tile - 1) / tile
        output.data.withUnsafeMutableBufferPointer { target in
            x.data.withUnsafeBufferPointer { input in
                weight.withUnsafeBufferPointer { weight in
                    bias.withUnsafeBufferPointer { bias in
                        let (y, a, w, b) = (target.baseAddress!, input.baseAddress!, weight.baseAddress!, bias.baseAddress!)
                        ParallelWork.run(workers: min(ParallelWork.workerCount, max(1, tiles))) { worker, workers in
                            for t in stride(from: worker, to: tiles, by: workers) {
                                let first = t * tile
                                let count = min(tile, rows - first)
                                for r in 0..<count { (y + (first + r) * outputFeatures).update(from: b, count: outputFeatures) }
                                BLAS.sgemm(transposeB: true, m: count, n: outputFeatures, k: inputFeatures,
                                           a: a + first * inputFeatures, lda: inputFeatures, b: w, ldb: inputFeatures,
                                           beta: 1, c: y + first * outputFeatures, ldc: outputFeatures)
                            }
                        }
                    }
                }
            }
        }
        return output
    }
}

extension Tensor {
    /// Exact GELU, x / 2 (1 + erf(x / sqrt 2)), as `nn.GELU()` in fairseq and transformers (not the tanh form),
    /// with erf to float32 accuracy (`PolynomialActivations`), in parallel over the values.
    mutating func applyExactGELU() {
        data.withUnsafeMutableBufferPointer { values in
            guard let base = values.baseAddress else { return }
            ParallelWork.forEachRange(count: values.count) { range in
                PolynomialActivations.applyGELU(base + range.lowerBound, count: range.count)
            }
        }
    }
}
