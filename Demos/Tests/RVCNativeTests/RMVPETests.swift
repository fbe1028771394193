import Foundation
import Testing
@testable import RVCNative

/// Committed RMVPE golden sets (`golden/<name>/`, index kind "rmvpe") whose model is in swift_fixtures/.
enum RMVPEFixtures {
    static func goldenSets() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Repository.goldens.path)) ?? []
        return names.sorted().filter { name in
            guard let index = try? GoldenIndex.load(path: Repository.goldens.appendingPathComponent("\(name)/index.json").path)
            else { return false }
            return index.kind == "rmvpe"
                && FileManager.default.fileExists(atPath: Repository.fixtures.appendingPathComponent("\(index.modelName).manifest.json").path)
        }
    }

    static func load(_ name: String) throws -> (RMVPE, GoldenSet, FramePadMode) {
        let folder = Repository.goldens.appendingPathComponent(name).path
        let golden = try GoldenSet(path: folder)
        let index = try #require(golden.index)
        let rmvpe = try RMVPE.load(assetsDirectory: Repository.fixtures.path, modelName: index.modelName)
        let padMode = try #require(FramePadMode(rawValue: try RMVPEGoldenExtra.load(goldenFolder: folder).padMode))
        return (rmvpe, golden, padMode)
    }
}

/// How a candidate f0 track compares with the golden one, as `rvc_ios_tools.rmvpe_inference.f0_agreement`
/// judges it: frames whose golden salience is within 1e-4 of the threshold (voicing) or whose two largest
/// bins are within 1e-4 (argmax) may legitimately decode differently and are excused.
struct F0Agreement {
    var voicingMismatches = 0
    var maxCentsError = 0.0
    var voicedFrames = 0
    var frames = 0

    init(reference: Tensor, candidate: Tensor, salience: Tensor, threshold: Double = 0.03, margin: Double = 1e-4) {
        let bins = salience.shape[2]
        frames = reference.count
        for frame in 0..<reference.count {
            let row = salience.data[(frame * bins)..<((frame + 1) * bins)].map(Double.init).sorted(by: >)
            let ambiguous = abs(row[0] - threshold) <= margin || row[0] - row[1] <= margin
            let (r, c) = (Double(reference.data[frame]), Double(candidate.data[frame]))
            if r > 0 { voicedFrames += 1 }
            if ambiguous { continue }
            if (r > 0) != (c > 0) { voicingMismatches += 1 }
            if r > 0 && c > 0 { maxCentsError = max(maxCentsError, abs(1200 * log2(c / r))) }
        }
    }
}

@Suite struct RMVPEGoldenParityTests {
    @Test func goldenSetsExist() {
        #expect(RMVPEFixtures.goldenSets().count >= 2, "no golden/<name>/ of kind rmvpe with its model in swift_fixtures/")
    }

    @Test(arguments: RMVPEFixtures.goldenSets(), [StageRunner.Mode.chained, .teacherForced])
    func everyStageReachesItsMinimumSNR(golden name: String, mode: StageRunner.Mode) throws {
        let (rmvpe, golden, padMode) = try RMVPEFixtures.load(name)
        let index = try #require(golden.index)
        let audio = try golden.tensor("audio", layout: "BT")
        var produced: Set<String> = []
        var f0: Tensor?
        try RMVPEStageRunner(rmvpe: rmvpe).run(audio: audio, padMode: padMode, mode: mode, golden: golden) { tensorName, tensor in
            produced.insert(tensorName)
            let entry = try #require(index.entry(tensorName), "\(tensorName) is not in the golden index")
            let stage = try #require(index.stages.first { $0.name == entry.stage })
            let native = try #require(RMVPETensors.nativeLayout(of: tensorName))
            let candidate = try #require(tensor.converted(fromLayout: native, toLayout: entry.layout))
            let reference = try golden.file.tensor(tensorName)
            #expect(candidate.shape == reference.shape, "\(name) \(tensorName)")
            guard candidate.shape == reference.shape else { return }
            if tensorName == "f0" {
                f0 = candidate
                return
            }
            let snr = snrDecibels(reference: reference.data, candidate: candidate.data)
            #expect(snr >= stage.minSnrDb, "\(name) \(mode.rawValue): \(tensorName) at \(snr) dB < \(stage.minSnrDb) dB")
        }
        let expected = Set(index.tensors.filter { $0.role == "intermediate" || $0.role == "output" }.map(\.name))
        #expect(produced == expected, "\(name): every golden intermediate is produced")

        let agreement = F0Agreement(reference: try golden.file.tensor("f0"), candidate: try #require(f0),
                                    salience: try golden.tensor("salience", layout: "BTC"))
        #expect(agreement.voicingMismatches == 0, "\(name) \(mode.rawValue): voicing differs on unambiguous frames")
        #expect(agreement.maxCentsError <= 0.01, "\(name) \(mode.rawValue): f0 off by \(agreement.maxCentsError) cents")
        // The fixture must exercise both decisions, or the voicing check proves nothing.
        #expect(0 < agreement.voicedFrames && agreement.voicedFrames < agreement.frames)
    }

    /// The production path (`RMVPE.f0`, no stage bookkeeping) gives the golden f0 too.
    @Test(arguments: RMVPEFixtures.goldenSets())
    func audioToF0MatchesTheGolden(golden name: String) throws {
        let (rmvpe, golden, padMode) = try RMVPEFixtures.load(name)
        let f0 = try rmvpe.f0(audio: try golden.tensor("audio", layout: "BT"), padMode: padMode)
        let agreement = F0Agreement(reference: try golden.file.tensor("f0"), candidate: f0,
                                    salience: try golden.tensor("salience", layout: "BTC"))
        #expect(agreement.voicingMismatches == 0 && agreement.maxCentsError <= 0.01)
    }
}

@Suite struct RMVPELoadingTests {
    static let model = "tiny-rmvpe"

    func weights() throws -> SafeTensorsFile {
        try SafeTensorsFile(path: Repository.fixtures.appendingPathComponent("\(Self.model).safetensors").path)
    }

    func configuration() throws -> RMVPEConfiguration {
        try RMVPEManifest.load(path: Repository.fixtures.appendingPathComponent("\(Self.model).manifest.json").path).configuration
    }

    @Test func manifestRecordsTheTinyArchitecture() throws {
        let a = try configuration().architecture
        let sizes: [Int] = [a.nBlocks, a.enDeLayers, a.interLayers, a.enOutChannels, a.gruHiddenSize]
        #expect(sizes == [2, 3, 1, 2, 8])
        #expect(a.bottleneckChannels == 16)
    }

    @Test func missingWeightIsAnErrorNamingIt() throws {
        let file = try rewrittenWeights(try weights(), removing: ["unet.decoder.layer_1.bn1.running_var"])
        #expect(rvcError { _ = try RMVPE(configuration: try configuration(), weights: file) }
                == .missingWeight(key: "unet.decoder.layer_1.bn1.running_var"))
    }

    @Test func wrongShapeIsAnErrorNamingTheKey() throws {
        let file = try rewrittenWeights(try weights(), replacing: ["fc.linear.weight": Tensor(zeros: [360, 8])])
        #expect(rvcError { _ = try RMVPE(configuration: try configuration(), weights: file) }
                == .weightShape(key: "fc.linear.weight", expected: [360, 16], actual: [360, 8]))
    }

    @Test func unusedWeightIsAnError() throws {
        let file = try rewrittenWeights(try weights(), replacing: ["unet.encoder.layer_0.conv_1.shortcut.bias": Tensor(zeros: [2])])
        #expect(rvcError { _ = try RMVPE(configuration: try configuration(), weights: file) }
                == .unusedWeights(keys: ["unet.encoder.layer_0.conv_1.shortcut.bias"]))
    }

    @Test func aVoiceManifestIsRefusedAsNotRMVPE() throws {
        let path = Repository.fixtures.appendingPathComponent("tiny-v2-40k.manifest.json").path
        #expect(throws: RMVPEError.manifestKind(path: path, found: "voice")) { _ = try RMVPEManifest.load(path: path) }
    }

    @Test func anUnsupportedArchitectureIsRefusedNamingTheField() throws {
        let c = try configuration()
        let a = c.architecture
        let deep = RMVPEConfiguration.Architecture(
            nBlocks: a.nBlocks, nGru: a.nGru, kernelSize: a.kernelSize, enDeLayers: 6, interLayers: a.interLayers,
            inChannels: a.inChannels, enOutChannels: a.enOutChannels, gruHiddenSize: a.gruHiddenSize, nMels: a.nMels,
            nClass: a.nClass, batchNormEps: a.batchNormEps)
        let changed = RMVPEConfiguration(architecture: deep, mel: c.mel, frameMultiple: c.frameMultiple,
                                         framePadMode: c.framePadMode, decode: c.decode)
        #expect(throws: RMVPEError.self) { try changed.validate() }
        do { try changed.validate() } catch { #expect("\(error)".contains("architecture.en_de_layers")) }
    }
}

@Suite struct RMVPEFramePaddingTests {
    func rmvpe() throws -> RMVPE {
        try RMVPE.load(assetsDirectory: Repository.fixtures.path, modelName: RMVPELoadingTests.model)
    }

    /// Frames 0 ... 29 of one bin, padded to 32.
    let mel = Tensor(shape: [1, 30, 1], data: (0..<30).map(Float.init))

    @Test func reflectMirrorsTheFramesBeforeTheLast() throws {
        let padded = try rmvpe().padFrames(mel, mode: .reflect)
        #expect(padded.shape == [1, 32, 1])
        #expect(Array(padded.data[28...]) == [28, 29, 28, 27])
    }

    @Test func constantAppendsZeros() throws {
        let padded = try rmvpe().padFrames(mel, mode: .constant)
        #expect(Array(padded.data[28...]) == [28, 29, 0, 0])
    }

    @Test func aMultipleOf32IsLeftAlone() throws {
        let whole = Tensor(shape: [1, 64, 1], data: (0..<64).map(Float.init))
        #expect(try rmvpe().padFrames(whole, mode: .reflect) == whole)
    }

    @Test func reflectRefusesTooFewFramesAsUpstreamDoes() throws {
        let short = Tensor(shape: [1, 16, 1], data: [Float](repeating: 1, count: 16))
        #expect(throws: RMVPEError.framesTooFewToReflect(frames: 16, padded: 32, minimumSamples: 2560)) {
            _ = try rmvpe().padFrames(short, mode: .reflect)
        }
        #expect(try rmvpe().padFrames(short, mode: .constant).shape == [1, 32, 1])
    }
}

/// The STFT, filterbank and log-mel against numbers from numpy and `rvc_ios_tools.mel` (MLX).
@Suite struct RMVPELogMelTests {
    static let mel = RMVPEConfiguration.Mel(
        sampleRate: 16000, nFft: 1024, winLength: 1024, hopLength: 160, window: "hann_periodic", center: true,
        centerPadMode: "reflect", spectrum: "magnitude", nMels: 128, fmin: 30, fmax: 8000, melScale: "htk",
        melNorm: "slaney", logClamp: 1e-5)

    /// numpy: `np.abs(np.fft.rfft(np.sin(0.3 n) + 0.5 np.cos(1.7 n) + 0.01 n))`, n = 0 ... 15.
    @Test func realFFTMatchesNumpy() {
        let signal: [Double] = (0..<16).map { index in
            let n = Double(index)
            return sin(0.3 * n) + 0.5 * cos(1.7 * n) + 0.01 * n
        }
        let expected: [Double] = [5.2790905168, 6.4296451953, 1.0436810546, 0.9780105794, 3.3671086247, 1.6428425024,
                        0.7108041452, 0.5137522042, 0.4679799739]
        let magnitudes = RealFFT(size: 16).magnitudes(of: signal)
        #expect(zip(magnitudes, expected).allSatisfy { abs($0 - $1) < 1e-9 })
    }

    @Test(arguments: [4, 8, 64, 1024])
    func realFFTIsTheDiscreteFourierTransform(size: Int) {
        var generator = SeededGenerator(seed: UInt64(size))
        let signal = (0..<size).map { _ in Double.random(in: -1...1, using: &generator) }
        let magnitudes = RealFFT(size: size).magnitudes(of: signal)
        for k in 0...(size / 2) {
            var (re, im) = (0.0, 0.0)
            for n in 0..<size {
                let angle = -2 * Double.pi * Double(k * n % size) / Double(size)
                re += signal[n] * cos(angle)
                im += signal[n] * sin(angle)
            }
            #expect(abs(magnitudes[k] - (re * re + im * im).squareRoot()) < 1e-9, "bin \(k) of \(size)")
        }
    }

    @Test func hannWindowIsTorchsPeriodicWindow() {
        let window = LogMelSpectrogram.periodicHannWindow(1024)
        #expect(window[0] == 0 && window[256] == 0.5 && window[512] == 1)
        #expect(abs(window[1] - 9.41235884965863e-06) < 1e-12 && window[1023] == window[1])
    }

    /// `rvc_ios_tools.mel.mel_filterbank()` (equal to librosa's): each band's first non-zero bins and its sum.
    @Test func filterbankMatchesLibrosasHTKSlaneyFilters() {
        let bank = MelFilterbank(sampleRate: 16000, fftSize: 1024, bandCount: 128, minHz: 30, maxHz: 8000)
        let expected: [(band: Int, first: Int, last: Int, weights: [Double], sum: Double)] = [
            (0, 2, 3, [0.0061756396, 0.0567850396], 0.0629606768488884),
            (1, 3, 4, [0.0129148895, 0.0503917262], 0.06330661475658417),
            (64, 115, 121, [0.0003572051, 0.0069601582, 0.0135631114, 0.0201660637], 0.0644158124923706),
            (127, 492, 512, [0.0005787238, 0.0011656312, 0.0017525387, 0.0023394462], 0.06386382132768631),
        ]
        for row in expected {
            #expect(bank.firstBin[row.band] == row.first && bank.weights[row.band].count == row.last - row.first + 1)
            for (offset, weight) in row.weights.enumerated() {
                #expect(abs(Double(bank.weight(band: row.band, bin: row.first + offset)) - weight) < 1e-9)
            }
            #expect(abs(bank.weights[row.band].reduce(0) { $0 + Double($1) } - row.sum) < 1e-7)
        }
    }

    /// `rvc_ios_tools.rmvpe_inference.log_mel` of 0.5 sin(2 pi 440 t) + 0.1 sin(2 pi 3000 t), 2048 samples.
    @Test func logMelMatchesTheReference() throws {
        let audio = (0..<2048).map { t in
            Float(0.5 * sin(2 * Double.pi * 440 * Double(t) / 16000) + 0.1 * sin(2 * Double.pi * 3000 * Double(t) / 16000))
        }
        let mel = try LogMelSpectrogram(Self.mel)(Tensor(shape: [1, 2048], data: audio))
        #expect(mel.shape == [1, 13, 128])
        let expected: [(band: Int, frame: Int, value: Float)] = [
            (0, 0, -0.9757086634635925), (23, 0, 1.4194344282150269), (22, 6, 1.9193211793899536),
            (21, 6, 0.41940605640411377), (10, 6, -7.9494099617004395), (30, 6, -7.084062576293945),
            (83, 6, -0.990068256855011), (84, 6, -1.0531615018844604), (31, 12, -2.643782377243042),
            (90, 12, -4.717836380004883), (70, 0, -5.487410545349121), (88, 6, -11.512925148010254),
        ]
        for row in expected {
            let value = mel.data[row.frame * 128 + row.band]
            #expect(abs(value - row.value) < 1e-4, "band \(row.band) frame \(row.frame): \(value) vs \(row.value)")
        }
    }

    @Test func audioTooShortForTheReflectPaddingIsRefused() {
        #expect(throws: RMVPEError.audioTooShort(samples: 512, minimum: 513)) {
            _ = try LogMelSpectrogram(Self.mel)(Tensor(zeros: [1, 512]))
        }
    }
}

@Suite struct RMVPEPitchDecoderTests {
    let decoder = PitchDecoder(RMVPEConfiguration.Decode(
        threshold: 0.03, unvoicedWhen: "max_salience <= threshold", centsPerBin: 20,
        centsOffset: 1997.3794084376191, localAverageBins: 9, f0ReferenceHz: 10))

    /// `rvc_ios_tools.rmvpe_inference.salience_to_f0` (bit-identical to upstream's `decode`) on the same rows:
    /// a peak with neighbours, a peak at bin 0 (the window runs past the start), a peak at bin 359, and a
    /// frame exactly at the threshold (unvoiced: `<=`).
    @Test func decodesAsUpstream() {
        var salience = Tensor(zeros: [1, 4, 360])
        for (frame, bin, value) in [(0, 100, 0.5), (0, 99, 0.25), (0, 101, 0.125), (1, 0, 0.9), (1, 1, 0.3), (1, 3, 0.1),
                                    (2, 359, 0.04), (2, 355, 0.02), (3, 200, 0.03)] as [(Int, Int, Float)] {
            salience.data[frame * 360 + bin] = value
        }
        let f0 = decoder.f0(salience)
        let expected = [100.4752703837, 31.8694703556, 1974.8427236206, 0]
        for (value, reference) in zip(f0.data, expected) {
            #expect(abs(Double(value) - reference) <= reference * 1e-7)
        }
        #expect(f0.data[3] == 0)
    }
}

@Suite struct RMVPEGRUTests {
    /// torch.nn.GRU(1, 1, batch_first=True, bidirectional=True) with these weights on x = [1, -1, 0.5]:
    /// forward direction then reverse per frame.
    @Test func bidirectionalGRUMatchesTorch() {
        let forward = GRU(weightIH: [1, 2, 3], weightHH: [0.5, -1, 2], biasIH: [0, 0.1, 0.2], biasHH: [0.3, 0, -0.4],
                          inputSize: 1, hiddenSize: 1, reverse: false)
        let backward = GRU(weightIH: [-1, 0.5, 1], weightHH: [1, 1, -1], biasIH: [0.2, 0, 0], biasHH: [0, -0.3, 0.1],
                           inputSize: 1, hiddenSize: 1, reverse: true)
        let output = BidirectionalGRU(forward: forward, backward: backward)(Tensor(shape: [1, 3, 1], data: [1, -1, 0.5]))
        let expected: [Float] = [0.10841912, 0.26081395, -0.8631198, -0.4194066, -0.705584, 0.25364527]
        #expect(output.shape == [1, 3, 2])
        #expect(maxAbsoluteDifference(output.data, expected) < 1e-6)
    }

    /// The first step written out: h0 = 0, so W_hh drops out but b_hn stays inside the reset gate.
    @Test func firstStepIsPyTorchsFormula() {
        let gru = GRU(weightIH: [1, 2, 3], weightHH: [0.5, -1, 2], biasIH: [0, 0.1, 0.2], biasHH: [0.3, 0, -0.4],
                      inputSize: 1, hiddenSize: 1, reverse: false)
        let s = { (x: Double) in 1 / (1 + exp(-x)) }
        let r = s(1 + 0 + 0.3), z = s(2 + 0.1 + 0)
        let n = tanh(3 + 0.2 + r * -0.4)
        let h1 = (1 - z) * n
        #expect(abs(Double(gru(Tensor(shape: [1, 1, 1], data: [1])).data[0]) - h1) < 1e-6)
    }

    @Test func reverseDirectionKeepsInputOrder() {
        let gru = GRU(weightIH: [1, 1, 1], weightHH: [0, 0, 0], biasIH: [0, 0, 0], biasHH: [0, 0, 0],
                      inputSize: 1, hiddenSize: 1, reverse: true)
        // With W_hh = 0 each output depends on its frame only... except through z * h: the last frame is first.
        let lastAlone = gru(Tensor(shape: [1, 1, 1], data: [3])).data[0]
        let output = gru(Tensor(shape: [1, 3, 1], data: [1, 2, 3]))
        #expect(output.data[2] == lastAlone)
    }
}

/// PyTorch's Conv2d / ConvTranspose2d definitions, loop by loop, on channels-last data (weights OHWI).
func naiveConv2d(_ x: [Float], height: Int, width: Int, inChannels: Int, weight: [Float], bias: [Float]?,
                 outChannels: Int, kernel: Int, padding: Int) -> [Float] {
    let (outH, outW) = (height + 2 * padding - kernel + 1, width + 2 * padding - kernel + 1)
    var out = [Float](repeating: 0, count: outH * outW * outChannels)
    for h in 0..<outH {
        for w in 0..<outW {
            for o in 0..<outChannels {
                var sum = Double(bias?[o] ?? 0)
                for i in 0..<kernel {
                    for j in 0..<kernel {
                        let (row, column) = (h + i - padding, w + j - padding)
                        guard row >= 0 && row < height && column >= 0 && column < width else { continue }
                        for c in 0..<inChannels {
                            sum += Double(weight[((o * kernel + i) * kernel + j) * inChannels + c])
                                * Double(x[(row * width + column) * inChannels + c])
                        }
                    }
                }
                out[(h * outW + w) * outChannels + o] = Float(sum)
            }
        }
    }
    return out
}

func naiveConvTranspose2d(_ x: [Float], height: Int, width: Int, inChannels: Int, weightOHWI: [Float], outChannels: Int,
                          kernel: Int, stride: Int, padding: Int, outputPadding: Int) -> [Float] {
    let (outH, outW) = ((height - 1) * stride - 2 * padding + kernel + outputPadding,
                        (width - 1) * stride - 2 * padding + kernel + outputPadding)
    var out = [Double](repeating: 0, count: outH * outW * outChannels)
    for h in 0..<height {
        for w in 0..<width {
            for i in 0..<kernel {
                for j in 0..<kernel {
                    let (row, column) = (h * stride - padding + i, w * stride - padding + j)
                    guard row >= 0 && row < outH && column >= 0 && column < outW else { continue }
                    for o in 0..<outChannels {
                        for c in 0..<inChannels {
                            out[(row * outW + column) * outChannels + o] += Double(x[(h * width + w) * inChannels + c])
                                * Double(weightOHWI[((o * kernel + i) * kernel + j) * inChannels + c])
                        }
                    }
                }
            }
        }
    }
    return out.map(Float.init)
}

@Suite struct RMVPEConv2dTests {
    /// im2col (Winograd off). The last two split the output channels among the workers (few pixels, many
    /// channels).
    @Test(arguments: [(1, 3, 3, 1), (4, 5, 3, 1), (3, 2, 1, 0), (8, 131, 3, 1), (8, 130, 1, 0)])
    func conv2dIsPyTorchsDefinition(inChannels: Int, outChannels: Int, kernel: Int, padding: Int) {
        let (height, width) = (7, 5)
        let x = randomValues(2 * height * width * inChannels, seed: 1)
        let weight = randomValues(outChannels * kernel * kernel * inChannels, seed: 2)
        let bias = randomValues(outChannels, seed: 3)
        let layer = Conv2d(weight: weight, bias: bias, inputChannels: inChannels, outputChannels: outChannels,
                           kernelSize: (kernel, kernel), padding: (padding, padding), winogradMinimumChannels: .max)
        #expect(!layer.usesWinograd)
        let output = layer(Tensor(shape: [2, height, width, inChannels], data: x))
        let item = height * width * inChannels
        for b in 0..<2 {
            let expected = naiveConv2d(Array(x[(b * item)..<((b + 1) * item)]), height: height, width: width,
                                       inChannels: inChannels, weight: weight, bias: bias, outChannels: outChannels,
                                       kernel: kernel, padding: padding)
            let size = expected.count
            #expect(maxAbsoluteDifference(Array(output.data[(b * size)..<((b + 1) * size)]), expected) < 1e-5)
        }
    }

    /// F(2x2, 3x3) Winograd (forced on at any channel count): odd and even image sizes (partial 2x2 blocks at
    /// the edges), one-pixel images, channel counts that are and are not multiples of the SIMD width.
    @Test(arguments: [(1, 3, 7, 5), (9, 5, 6, 6), (16, 17, 5, 4), (64, 8, 3, 3), (8, 131, 7, 5), (3, 2, 1, 1), (12, 4, 1, 6)])
    func winogradConv2dIsPyTorchsDefinition(inChannels: Int, outChannels: Int, height: Int, width: Int) {
        let x = randomValues(2 * height * width * inChannels, seed: 11)
        let weight = randomValues(outChannels * 9 * inChannels, seed: 12)
        let bias = randomValues(outChannels, seed: 13)
        let layer = Conv2d(weight: weight, bias: bias, inputChannels: inChannels, outputChannels: outChannels,
                           kernelSize: (3, 3), padding: (1, 1), winogradMinimumChannels: 1)
        #expect(layer.usesWinograd)
        let output = layer(Tensor(shape: [2, height, width, inChannels], data: x))
        #expect(output.shape == [2, height, width, outChannels])
        let item = height * width * inChannels
        for b in 0..<2 {
            let expected = naiveConv2d(Array(x[(b * item)..<((b + 1) * item)]), height: height, width: width,
                                       inChannels: inChannels, weight: weight, bias: bias, outChannels: outChannels,
                                       kernel: 3, padding: 1)
            let size = expected.count
            #expect(maxAbsoluteDifference(Array(output.data[(b * size)..<((b + 1) * size)]), expected) < 1e-4)
        }
    }

    /// The residual add of a ConvBlockRes shortcut, tile by tile, is `y.add(conv(x))` bit for bit: on an image
    /// of many tiles, on one that splits the output channels among the workers, and with a 3x3 kernel.
    @Test(arguments: [(3, 16, 1, 64, 96), (8, 130, 1, 7, 5), (4, 6, 3, 9, 11)])
    func addingTheConvolutionIsAddingItsImage(inChannels: Int, outChannels: Int, kernel: Int, height: Int, width: Int) {
        let x = Tensor(shape: [2, height, width, inChannels], data: randomValues(2 * height * width * inChannels, seed: 21))
        let layer = Conv2d(weight: randomValues(outChannels * kernel * kernel * inChannels, seed: 22),
                           bias: randomValues(outChannels, seed: 23), inputChannels: inChannels,
                           outputChannels: outChannels, kernelSize: (kernel, kernel),
                           padding: (kernel / 2, kernel / 2))
        var whole = Tensor(shape: [2, height, width, outChannels], data: randomValues(2 * height * width * outChannels, seed: 24))
        var tiled = whole
        whole.add(layer(x))
        layer.add(x, to: &tiled)
        #expect(tiled.data.map(\.bitPattern) == whole.data.map(\.bitPattern))
    }

    /// Upstream's decoder upsampling: kernel 3, stride 2, padding 1, output_padding 1 doubles both axes.
    @Test(arguments: [(3, 2), (1, 1), (4, 5)])
    func convTransposed2dIsPyTorchsDefinition(inChannels: Int, outChannels: Int) {
        let (height, width) = (6, 3)
        let x = randomValues(height * width * inChannels, seed: 4)
        let weight = randomValues(outChannels * 9 * inChannels, seed: 5)
        let layer = ConvTransposed2d(weightOHWI: weight, inputChannels: inChannels, outputChannels: outChannels,
                                     kernelSize: 3, stride: 2, padding: 1, outputPadding: 1)
        let output = layer(Tensor(shape: [1, height, width, inChannels], data: x))
        #expect(output.shape == [1, 12, 6, outChannels])
        let expected = naiveConvTranspose2d(x, height: height, width: width, inChannels: inChannels, weightOHWI: weight,
                                            outChannels: outChannels, kernel: 3, stride: 2, padding: 1, outputPadding: 1)
        #expect(maxAbsoluteDifference(output.data, expected) < 1e-5)
    }

    @Test func averagePoolingMeansEachWindowAndDropsTheRemainder() {
        let x = Tensor(shape: [1, 3, 4, 1], data: (0..<12).map(Float.init))
        #expect(x.averagePooled(kernelHeight: 2, kernelWidth: 2) == Tensor(shape: [1, 1, 2, 1], data: [2.5, 4.5]))
    }

    @Test func batchNormUsesRunningStatisticsThenReLU() {
        let norm = BatchNorm(weight: [2, 1], bias: [0.5, -1], runningMean: [1, 0], runningVariance: [4, 1], epsilon: 0)
        var x = Tensor(shape: [1, 1, 2, 2], data: [3, 0.5, -1, 2])
        norm.apply(to: &x, relu: true)
        #expect(x.data == [2.5, 0, 0, 1])
    }

    @Test func channelConcatenationPutsTheFirstPartFirst() {
        let a = Tensor(shape: [1, 2, 1], data: [1, 2])
        let b = Tensor(shape: [1, 2, 2], data: [3, 4, 5, 6])
        #expect(Tensor.concatenatingChannels([a, b]) == Tensor(shape: [1, 2, 3], data: [1, 3, 4, 2, 5, 6]))
    }

    @Test func flattenIsChannelMajorAsUpstream() {
        // (B, T, F, C) = (1, 1, 2, 3): feature = c * F + f.
        let x = Tensor(shape: [1, 1, 2, 3], data: [10, 20, 30, 11, 21, 31])
        #expect(E2E.flattenCNN(x).data == [10, 11, 20, 21, 30, 31])
    }
}
