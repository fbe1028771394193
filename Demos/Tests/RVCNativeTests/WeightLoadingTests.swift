import Foundation
import Testing
@testable import RVCNative

/// Strict loading: every parameter set, every key used, every shape right, or an error naming the key.
@Suite struct WeightLoadingTests {
    static let name = "tiny-v2-40k"

    func fixture() throws -> (Configuration, SafeTensorsFile) {
        let manifest = try VoiceManifest.load(path: Repository.fixtures.appendingPathComponent("\(Self.name).manifest.json").path)
        let weights = try SafeTensorsFile(path: Repository.fixtures.appendingPathComponent("\(Self.name).safetensors").path)
        return (try #require(manifest.configuration), weights)
    }

    @Test func loadsEveryFixtureVoice() throws {
        for name in ["tiny-v2-40k", "tiny-v1-48k-nof0", "tiny-v2-32k-applio"] {
            let path = Repository.fixtures.path
            guard FileManager.default.fileExists(atPath: "\(path)/\(name).manifest.json") else { continue }
            _ = try Synthesizer.load(assetsDirectory: path, modelName: name)
        }
    }

    @Test func namesAMissingWeight() throws {
        let (configuration, weights) = try fixture()
        let damaged = try rewrittenWeights(weights, removing: ["flow.flow_2.enc.cond_layer.bias"])
        #expect(rvcError { _ = try Synthesizer(configuration: configuration, weights: damaged) }
                == .missingWeight(key: "flow.flow_2.enc.cond_layer.bias"))
    }

    @Test func namesAWeightOfTheWrongShape() throws {
        let (configuration, weights) = try fixture()
        let damaged = try rewrittenWeights(weights, replacing: ["enc_p.proj.bias": Tensor(zeros: [15])])
        #expect(rvcError { _ = try Synthesizer(configuration: configuration, weights: damaged) }
                == .weightShape(key: "enc_p.proj.bias", expected: [16], actual: [15]))
    }

    @Test func refusesWeightsNoModuleReads() throws {
        let (configuration, weights) = try fixture()
        let damaged = try rewrittenWeights(weights, replacing: ["flow.flow_0.enc.in_layer_3.bias": Tensor(zeros: [32])])
        #expect(rvcError { _ = try Synthesizer(configuration: configuration, weights: damaged) }
                == .unusedWeights(keys: ["flow.flow_0.enc.in_layer_3.bias"]))
    }

    @Test func refusesAConfigurationUpstreamCouldNotBuild() throws {
        var (configuration, weights) = try fixture()
        configuration.nHeads = 3
        guard case .invalidConfiguration? = rvcError({ _ = try Synthesizer(configuration: configuration, weights: weights) }) else {
            Issue.record("expected invalidConfiguration")
            return
        }
    }

    @Test func refusesAPitchBinOutsideTheEmbedding() throws {
        let (configuration, weights) = try fixture()
        let voice = try Synthesizer(configuration: configuration, weights: weights)
        let phone = Tensor(zeros: [1, 2, configuration.featureDim])
        #expect(rvcError { _ = try voice.textEncoder(phone: phone, pitch: [1, 256], lengths: [2]) }
                == .inputInvalid(name: "pitch", reason: "index 256 is outside 0..<256"))
    }
}
