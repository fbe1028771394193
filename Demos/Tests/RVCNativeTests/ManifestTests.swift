import Foundation
import Testing
@testable import RVCNative

@Suite struct ManifestTests {
    static let name = "tiny-v2-40k"
    static var manifestURL: URL { Repository.fixtures.appendingPathComponent("\(name).manifest.json") }
    static var weightsURL: URL { Repository.fixtures.appendingPathComponent("\(name).safetensors") }

    /// The fixture manifest's JSON with `edit` applied to it.
    func editedManifest(_ edit: (inout [String: Any]) -> Void) throws -> Data {
        var document = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.manifestURL)) as? [String: Any] ?? [:]
        edit(&document)
        return try JSONSerialization.data(withJSONObject: document)
    }

    @Test func decodesTheConfigurationWithSnakeCaseNames() throws {
        let manifest = try VoiceManifest.load(path: Self.manifestURL.path)
        let configuration = try #require(manifest.configuration)
        #expect(manifest.formatVersion == 2 && manifest.kind == "voice")
        #expect(configuration.f0 && configuration.rvcVersion == "v2" && configuration.featureDim == 768)
        #expect(configuration.upsampleRates == [10, 10, 2, 2] && configuration.upsampleKernelSizes == [16, 16, 4, 4])
        #expect(configuration.resblockDilationSizes == [[1, 3, 5], [1, 3, 5], [1, 3, 5]])
        #expect(configuration.sampleRate == 40000 && configuration.upsampleFactor == 400)
        try configuration.validate()
    }

    @Test func verifiesTheFixtureWeights() throws {
        let manifest = try VoiceManifest.load(path: Self.manifestURL.path)
        try manifest.verify(try SafeTensorsFile(path: Self.weightsURL.path))
    }

    @Test func refusesAnotherFormatVersion() throws {
        let data = try editedManifest { $0["format_version"] = 3 }
        #expect(rvcError { _ = try VoiceManifest.parse(data, path: "m.json") }
                == .manifestFormatVersion(path: "m.json", found: 3, supported: 2))
    }

    @Test func namesAMissingField() throws {
        let data = try editedManifest { $0["tensors"] = nil }
        guard case .manifestUnreadable(_, let reason)? = rvcError({ _ = try VoiceManifest.parse(data, path: "m.json") }) else {
            Issue.record("expected manifestUnreadable")
            return
        }
        #expect(reason.contains("tensors"))
    }

    @Test func refusesAModelThatIsNotAVoice() throws {
        let data = try editedManifest { $0["kind"] = "rmvpe" }
        #expect(rvcError { _ = try VoiceManifest.parse(data, path: "m.json") } == .manifestKind(path: "m.json", found: "rmvpe"))
    }

    @Test func refusesAWeightsFileOutsideTheManifestFolder() throws {
        let data = try editedManifest { $0["weights_file"] = "../elsewhere.safetensors" }
        #expect(rvcError { _ = try VoiceManifest.parse(data, path: "m.json") }
                == .manifestWeightsFile(path: "m.json", weightsFile: "../elsewhere.safetensors"))
    }

    @Test func refusesWeightsWhoseBytesChanged() throws {
        let manifest = try VoiceManifest.load(path: Self.manifestURL.path)
        let original = try SafeTensorsFile(path: Self.weightsURL.path)
        var changed = try original.tensor("dec.conv_post.weight")
        changed.data[0] += 1e-3
        let weights = try rewrittenWeights(original, replacing: ["dec.conv_post.weight": changed])
        guard case .checksumMismatch(_, "dec.conv_post.weight", _, _)? = rvcError({ try manifest.verify(weights) }) else {
            Issue.record("expected checksumMismatch for dec.conv_post.weight")
            return
        }
    }

    @Test func refusesWeightsLackingAListedTensor() throws {
        let manifest = try VoiceManifest.load(path: Self.manifestURL.path)
        let weights = try rewrittenWeights(try SafeTensorsFile(path: Self.weightsURL.path), removing: ["emb_g.weight"])
        #expect(rvcError { try manifest.verify(weights) } == .manifestTensorNotInWeights(path: weights.path, key: "emb_g.weight"))
    }

    @Test func refusesWeightsWithAnUnlistedTensor() throws {
        let manifest = try VoiceManifest.load(path: Self.manifestURL.path)
        let weights = try rewrittenWeights(try SafeTensorsFile(path: Self.weightsURL.path),
                                           replacing: ["stray.weight": Tensor(shape: [1], data: [0])])
        #expect(rvcError { try manifest.verify(weights) } == .weightsTensorNotInManifest(path: weights.path, key: "stray.weight"))
    }

    @Test func refusesAShapeThatDisagreesWithTheManifest() throws {
        let data = try editedManifest { document in
            var tensors = document["tensors"] as? [[String: Any]] ?? []
            if let index = tensors.firstIndex(where: { $0["key"] as? String == "emb_g.weight" }) {
                tensors[index]["shape"] = [3, 9]
            }
            document["tensors"] = tensors
        }
        let manifest = try VoiceManifest.parse(data, path: "m.json")
        let weights = try SafeTensorsFile(path: Self.weightsURL.path)
        #expect(rvcError { try manifest.verify(weights) }
                == .manifestEntryMismatch(path: weights.path, key: "emb_g.weight", field: "shape", manifest: "[3, 9]",
                                          weights: "[3, 8]"))
    }
}
