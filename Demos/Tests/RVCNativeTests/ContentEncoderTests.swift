import Foundation
import Testing
@testable import RVCNative

/// The committed content-encoder golden sets (`golden/<name>/`, kind "hubert") whose export is in swift_fixtures/.
enum ContentEncoderFixtures {
    static func goldenSets() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Repository.goldens.path)) ?? []
        return names.sorted().filter { name in
            guard let index = try? GoldenIndex.load(path: Repository.goldens.appendingPathComponent("\(name)/index.json").path)
            else { return false }
            return index.kind == "hubert"
                && FileManager.default.fileExists(atPath: Repository.fixtures.appendingPathComponent("\(index.modelName).manifest.json").path)
        }
    }

    static func load(_ name: String) throws -> (ContentEncoder, GoldenSet, Int?) {
        let folder = Repository.goldens.appendingPathComponent(name).path
        let golden = try GoldenSet(path: folder)
        let encoder = try ContentEncoder.load(assetsDirectory: Repository.fixtures.path, modelName: try #require(golden.index).modelName)
        return (encoder, golden, try ContentEncoderGoldenExtra.load(goldenFolder: folder).v1Layer)
    }
}

@Suite struct ContentEncoderGoldenTests {
    @Test func goldenSetsExist() {
        #expect(!ContentEncoderFixtures.goldenSets().isEmpty, "no golden/<name>/ of kind hubert with its model in swift_fixtures/")
    }

    @Test(arguments: ContentEncoderFixtures.goldenSets(), [StageRunner.Mode.chained, .teacherForced])
    func everyStageReachesItsMinimumSNR(golden name: String, mode: StageRunner.Mode) throws {
        let (encoder, golden, v1Layer) = try ContentEncoderFixtures.load(name)
        let index = try #require(golden.index)
        var produced: Set<String> = []
        try ContentEncoderStageRunner(encoder: encoder).run(audio: try golden.tensor("audio", layout: "BT"), v1Layer: v1Layer,
                                                            mode: mode, golden: golden) { tensorName, tensor in
            produced.insert(tensorName)
            let entry = try #require(index.entry(tensorName), "\(tensorName) is not in the golden index")
            let stage = try #require(index.stages.first { $0.name == entry.stage })
            #expect(stage.minSnrDb >= 100, "the content encoder is held to 100 dB")
            let native = try #require(ContentEncoderTensors.nativeLayout(of: tensorName))
            let candidate = try #require(tensor.converted(fromLayout: native, toLayout: entry.layout))
            let reference = try golden.file.tensor(tensorName)
            #expect(candidate.shape == reference.shape, "\(name) \(tensorName)")
            guard candidate.shape == reference.shape else { return }
            let snr = snrDecibels(reference: reference.data, candidate: candidate.data)
            #expect(snr >= stage.minSnrDb, "\(name) \(mode.rawValue): \(tensorName) at \(snr) dB < \(stage.minSnrDb) dB")
        }
        let expected = Set(index.tensors.filter { $0.role == "intermediate" || $0.role == "output" }.map(\.name))
        #expect(produced == expected, "\(name): every golden intermediate is produced")
    }

    /// The production path (`features`, no stage bookkeeping) gives the golden v1 and v2 features.
    @Test(arguments: ContentEncoderFixtures.goldenSets())
    func featuresMatchTheGolden(golden name: String) throws {
        let (encoder, golden, v1Layer) = try ContentEncoderFixtures.load(name)
        let audio = try golden.tensor("audio", layout: "BT")
        let v2 = try encoder.features(audio: audio)
        #expect(snrDecibels(reference: try golden.file.tensor("v2").data, candidate: v2.data) >= 100)
        let layer = try #require(v1Layer)
        let v1 = try encoder.features(audio: audio, v1Layer: layer)
        #expect(snrDecibels(reference: try golden.file.tensor("v1").data, candidate: v1.data) >= 100)
    }
}

@Suite struct ContentEncoderLoadingTests {
    static let model = "tiny-hubert"

    func weights() throws -> SafeTensorsFile {
        try SafeTensorsFile(path: Repository.fixtures.appendingPathComponent("\(Self.model).safetensors").path)
    }

    func configuration() throws -> ContentEncoderConfiguration {
        try ContentEncoderManifest.load(path: Repository.fixtures.appendingPathComponent("\(Self.model).manifest.json").path)
            .configuration
    }

    @Test func manifestRecordsTheArchitectureAndFrameGeometry() throws {
        let c = try configuration()
        #expect(c.architecture.convLayers.map { $0[2] } == [5, 2, 2, 2, 2, 2, 2])
        #expect(c.architecture.numHeads == 4 && c.architecture.finalProjDim == 24)
        #expect(c.receptiveField == 400 && c.hopLength == 320)
        #expect([399, 400, 719, 720, 16000].map(c.frameCount(samples:)) == [0, 1, 1, 2, 49])
    }

    @Test func missingWeightIsAnErrorNamingIt() throws {
        let file = try rewrittenWeights(try weights(), removing: ["encoder.layer_1.final_norm.bias"])
        #expect(rvcError { _ = try ContentEncoder(configuration: try configuration(), weights: file) }
                == .missingWeight(key: "encoder.layer_1.final_norm.bias"))
    }

    @Test func wrongShapeIsAnErrorNamingTheKey() throws {
        let file = try rewrittenWeights(try weights(), replacing: ["encoder.pos_conv.weight": Tensor(zeros: [48, 12, 16])])
        #expect(rvcError { _ = try ContentEncoder(configuration: try configuration(), weights: file) }
                == .weightShape(key: "encoder.pos_conv.weight", expected: [48, 16, 12], actual: [48, 12, 16]))
    }

    @Test func unusedWeightIsAnError() throws {
        let file = try rewrittenWeights(try weights(), replacing: ["mask_emb": Tensor(zeros: [48])])
        #expect(rvcError { _ = try ContentEncoder(configuration: try configuration(), weights: file) }
                == .unusedWeights(keys: ["mask_emb"]))
    }

    @Test func aVoiceManifestIsRefusedAsNotAContentEncoder() throws {
        let path = Repository.fixtures.appendingPathComponent("tiny-v2-40k.manifest.json").path
        #expect(throws: ContentEncoderError.manifestKind(path: path, found: "voice")) {
            _ = try ContentEncoderManifest.load(path: path)
        }
    }

    @Test func audioShorterThanOneFrameIsRefused() throws {
        let encoder = try ContentEncoder(configuration: try configuration(), weights: try weights())
        #expect(throws: ContentEncoderError.audioTooShort(samples: 399, minimum: 400)) {
            _ = try encoder.features(audio: Tensor(zeros: [1, 399]))
        }
        #expect(try encoder.features(audio: Tensor(shape: [1, 401], repeating: 0.01)).shape == [1, 1, 48])
    }
}

@Suite struct WAVFileTests {
    @Test func readsMono16BitPCMAsUpstreamsFloats() throws {
        let samples: [Int16] = [0, 1, -1, 32767, -32768, 12345]
        var data = Data("RIFF".utf8)
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        append(UInt32(36 + 2 * samples.count))
        data.append(contentsOf: Array("WAVEfmt ".utf8))
        append(UInt32(16)); append(UInt16(1)); append(UInt16(1)); append(UInt32(16000)); append(UInt32(32000))
        append(UInt16(2)); append(UInt16(16))
        data.append(contentsOf: Array("data".utf8))
        append(UInt32(2 * samples.count))
        for sample in samples { append(sample) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("content-encoder-test.wav").path
        try data.write(to: URL(fileURLWithPath: path))
        let (read, rate) = try WAVFile.readMono16Bit(path: path)
        #expect(rate == 16000)
        #expect(read == samples.map { Float($0) / 32768 })
    }
}

@Suite struct PolynomialActivationTests {
    @Test func geluIsTheErfGELUToFloatAccuracy() {
        var worst: Double = 0
        for i in -6000...6000 {
            let x = Float(i) / 1000
            let exact = 0.5 * Double(x) * (1 + erf(Double(x) / 2.0.squareRoot()))
            worst = max(worst, abs(Double(PolynomialActivations.scalarGELU(x)) - exact))
        }
        #expect(worst < 3e-6, "GELU off by \(worst)")
    }

    @Test func expIsExpToFloatAccuracyOverSoftmaxArguments() {
        var worst: Double = 0
        for i in 0...80000 {
            let x = -Float(i) / 1000
            let exact = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(PolynomialActivations.scalarExp(x)) - exact) / exact)
        }
        #expect(worst < 1e-6, "exp off by \(worst) relative")
    }
}
