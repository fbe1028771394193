import Foundation
import Testing
@testable import RVCNative

/// Inputs that trapped or claimed terabytes before the readers were hardened (found reviewing the readers
/// for hostile input, confirmed by replaying them through the fuzz targets of Demos/Fuzz/): each is now an
/// error with a sentence. Every manifest here is a committed fixture's with one field changed.
@Suite struct FuzzRegressionTests {
    /// The fixture `<name>.manifest.json` with `edit` applied to its JSON object.
    func manifest(_ name: String, _ edit: (inout [String: Any]) throws -> Void) throws -> Data {
        let data = try Data(contentsOf: Repository.fixtures.appendingPathComponent("\(name).manifest.json"))
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        try edit(&object)
        return try JSONSerialization.data(withJSONObject: object)
    }

    /// `object[block][field] = value` (`block.inner` for a nested block).
    func set(_ object: inout [String: Any], _ block: String, _ field: String, _ value: Any) throws {
        let path = block.split(separator: ".").map(String.init)
        func replaced(_ dictionary: [String: Any], _ path: ArraySlice<String>) throws -> [String: Any] {
            var copy = dictionary
            guard let head = path.first else {
                copy[field] = value
                return copy
            }
            copy[head] = try replaced(try #require(dictionary[head] as? [String: Any]), path.dropFirst())
            return copy
        }
        object = try replaced(object, path[...])
    }

    // Before: `IVFFlatIndex.scan` allocated frames x k results (4 TB for k = 10^12) or trapped on the product.
    @Test(arguments: [1_000_000_000_000, 1 << 62])
    func anIndexManifestAskingForMoreNeighboursThanTheSearchKeepsIsRefused(k: Int) throws {
        let data = try manifest("tiny-index") { try set(&$0, "index", "k", k) }
        #expect(throws: IndexError.unsupportedConfiguration(field: "index.k", value: "\(k)",
                                                            supported: "a whole number from 1 to 1024 (RVC searches 8)")) {
            _ = try IndexManifest.parse(data, path: "in.manifest.json")
        }
    }

    // Before: `LogMelSpectrogram` allocated the Hann window and FFT tables of n_fft (2^40: 4 TB) when RMVPE
    // was built, before any weight was read.
    @Test func anRMVPEManifestClaimingATerabyteFFTIsRefused() throws {
        let nFft = 1 << 40
        let data = try manifest("tiny-rmvpe") {
            try set(&$0, "rmvpe.mel", "n_fft", nFft)
            try set(&$0, "rmvpe.mel", "win_length", nFft)
        }
        #expect(throws: RMVPEError.unsupportedConfiguration(field: "mel.n_fft", value: "\(nFft)",
                                                            supported: "a power of two from 4 to 8192")) {
            _ = try RMVPEManifest.parse(data, path: "in.manifest.json")
        }
    }

    // Before: the mel filterbank's band edges were sized by n_mels (2^40: 8 TB), or trapped on a negative count.
    @Test(arguments: [1 << 40, -8])
    func anRMVPEManifestWithMoreMelBandsThanFFTBinsIsRefused(nMels: Int) throws {
        let data = try manifest("tiny-rmvpe") {
            try set(&$0, "rmvpe.mel", "n_mels", nMels)
            try set(&$0, "rmvpe.architecture", "n_mels", nMels)
        }
        // Both 2^40 and -8 are multiples of the tiny U-Net's 2^3, so the mel check is the one that refuses them.
        #expect(throws: RMVPEError.unsupportedConfiguration(field: "mel.n_mels", value: "\(nMels)",
                                                            supported: "a whole number from 1 to n_fft / 2 + 1 (513)")) {
            _ = try RMVPEManifest.parse(data, path: "in.manifest.json")
        }
    }

    // Before: `upsample_initial_channel % (1 << 64)` divided by zero in `Configuration.validate`.
    @Test func aVoiceWithSixtyFourUpsamplingStagesIsRefused() throws {
        let data = try manifest("tiny-v2-40k") {
            try set(&$0, "config", "upsample_rates", Array(repeating: 1, count: 64))
            try set(&$0, "config", "upsample_kernel_sizes", Array(repeating: 1, count: 64))
        }
        let configuration = try #require(try VoiceManifest.parse(data, path: "in.manifest.json").configuration)
        #expect(throws: RVCError.invalidConfiguration(reason: "there are 64 upsampling stages; at most 16 are supported")) {
            try configuration.validate()
        }
    }

    // Before: the receptive field's sum and product of kernels and strides trapped on overflow in `validate`.
    @Test func aContentEncoderWhoseReceptiveFieldOverflowsIsRefused() throws {
        let layers = [[2, 1 << 62, 1 << 62], [2, 1 << 62, 1 << 62]]
        let data = try manifest("tiny-hubert") { try set(&$0, "hubert.architecture", "conv_layers", layers) }
        let configuration = try ContentEncoderManifest.parse(data, path: "in.manifest.json").configuration
        #expect(throws: ContentEncoderError.unsupportedConfiguration(
            field: "architecture.conv_layers", value: "\(layers)", supported: "kernels and strides whose receptive field fits 64 bits")) {
            try configuration.validate()
        }
    }
}
