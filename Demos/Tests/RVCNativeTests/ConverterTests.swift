import Foundation
import Testing
@testable import RVCNative

/// The public conversion (`Converter`) on the committed tiny assets and pipeline golden sets
/// (`golden/tiny-pipeline/`, and `golden/tiny-pipeline-index/` with the index `tiny-index-v1`).
struct ConverterTests {
    static let folder = Repository.goldens.appendingPathComponent("tiny-pipeline").path

    func converter(index: String? = nil) throws -> Converter {
        try Converter(assets: Repository.fixtures.path, voice: "tiny-v1-32k", hubert: "tiny-hubert-v1", rmvpe: "tiny-rmvpe",
                      index: index)
    }

    /// The golden set's draws (`segment.K.noise.*`, as stored) written as a noise file, as a user replays a run.
    func noiseFile(of golden: GoldenSet, name: String) throws -> String {
        var writer = SafeTensorsWriter()
        for key in golden.file.keys where key.contains(".noise.") { writer.add(key, try golden.file.tensor(key)) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("converter-tests-\(name).safetensors").path
        try writer.write(to: path)
        return path
    }

    /// The options the golden set was recorded with.
    func options(_ folder: String) throws -> ConversionOptions {
        let recorded = try PipelineGoldenExtra.load(goldenFolder: folder).options
        var options = ConversionOptions()
        options.pitch = recorded.pitch
        options.indexRate = recorded.indexRate
        options.protect = recorded.protect
        options.rmsMixRate = recorded.rmsMixRate
        options.sid = recorded.sid
        return options
    }

    func largestDifference(_ a: [Int16], _ b: [Int16]) -> Int {
        zip(a, b).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    @Test(arguments: [("tiny-pipeline", nil), ("tiny-pipeline-index", "tiny-index-v1")] as [(String, String?)])
    func withTheReferencesNoiseFileItGivesTheReferencesInt16WithinOneLSB(golden name: String, index: String?) throws {
        let folder = Repository.goldens.appendingPathComponent(name).path
        let golden = try GoldenSet(path: folder)
        var options = try options(folder)
        options.seed = 99  // unused: every draw is in the file
        options.noise = try RecordedDraws(path: try noiseFile(of: golden, name: name))
        let input = try golden.file.tensor("input").data
        let audio = try converter(index: index).convert(samples: input, sampleRate: 16000, options: options)
        let expected = try golden.file.int16Values("output").values
        #expect(audio.sampleRate == 32000)
        #expect(audio.samples.count == expected.count)
        let largest = largestDifference(audio.samples, expected)
        print("\(name) replayed from its noise file: int16 within \(largest) LSB of the reference's")
        #expect(largest <= 1, "\(name): int16 differs by up to \(largest) LSB")
    }

    /// Loading RMVPE alone for pitch, then the other networks, gives the all-loaded converter's audio bit for
    /// bit, and counts its loading.
    @Test(arguments: [nil, "tiny-index-v1"] as [String?])
    func convertingOnceGivesTheLoadedConvertersAudio(index: String?) throws {
        let input = try GoldenSet(path: Self.folder).file.tensor("input").data
        var options = ConversionOptions()
        options.seed = 7
        let loaded = try converter(index: index).convert(samples: input, sampleRate: 16000, options: options)
        let once = try Converter.convertOnce(assets: Repository.fixtures.path, voice: "tiny-v1-32k", hubert: "tiny-hubert-v1",
                                             rmvpe: "tiny-rmvpe", index: index, samples: input, sampleRate: 16000,
                                             options: options)
        #expect(once.samples == loaded.samples)
        #expect(once.sampleRate == loaded.sampleRate)
        #expect(once.seconds.loading > 0)
        #expect(loaded.seconds.loading == 0)
    }

    /// Every file is checked before the audio is looked at, as the loaded converter loads before converting:
    /// a missing index is reported, not the option out of range.
    @Test func convertingOnceReportsABrokenFileBeforeAnyWork() throws {
        let input = try GoldenSet(path: Self.folder).file.tensor("input").data
        var options = ConversionOptions()
        options.protect = 2
        let manifest = Repository.fixtures.appendingPathComponent("no-such-index.manifest.json").path
        let error = rvcError {
            _ = try Converter.convertOnce(assets: Repository.fixtures.path, voice: "tiny-v1-32k", hubert: "tiny-hubert-v1",
                                          rmvpe: "tiny-rmvpe", index: "no-such-index", samples: input, sampleRate: 16000,
                                          options: options)
        }
        guard case let .fileUnreadable(path, _)? = error else {
            Issue.record("expected the missing manifest, got \(String(describing: error))")
            return
        }
        #expect(path == manifest)
    }

    @Test func aDrawTheNoiseFileLacksComesFromTheSeed() throws {
        let golden = try GoldenSet(path: Self.folder)
        let input = try golden.file.tensor("input").data
        let converter = try converter()
        let zp = try golden.file.tensor("segment.0.noise.z_p")
        var options = ConversionOptions()
        options.seed = 5
        options.noise = RecordedDraws(tensors: ["segment.0.noise.z_p": zp])
        let partly = try converter.convert(samples: input, sampleRate: 16000, options: options)
        // The same run with the seed's own nsf draw written out.
        let frames = zp.shape[2], upsampling = converter.synthesizer.configuration.upsampleFactor
        let nsf = NormalDraws.draw(seed: 5, segment: 0, "noise.nsf", shape: [1, frames * upsampling, 1])
        options.noise = RecordedDraws(tensors: ["segment.0.noise.z_p": zp, "segment.0.noise.nsf": nsf])
        #expect(try converter.convert(samples: input, sampleRate: 16000, options: options).samples == partly.samples)
        options.seed = 6
        options.noise = RecordedDraws(tensors: ["segment.0.noise.z_p": zp])
        #expect(try converter.convert(samples: input, sampleRate: 16000, options: options).samples != partly.samples)
    }

    @Test func aDrawOfAnotherShapeIsRefusedNamingItAndBothShapes() throws {
        let input = try GoldenSet(path: Self.folder).file.tensor("input").data
        var options = ConversionOptions()
        options.noise = RecordedDraws(tensors: ["segment.0.noise.z_p": Tensor(zeros: [1, 8, 10])])
        #expect(throws: ConversionError.drawShape(name: "segment.0.noise.z_p", expected: [1, 8, 248], actual: [1, 8, 10])) {
            try converter().convert(samples: input, sampleRate: 16000, options: options)
        }
    }

    @Test func aDrawTheRunNeverMakesIsRefused() throws {
        let input = try GoldenSet(path: Self.folder).file.tensor("input").data
        var options = ConversionOptions()
        options.noise = RecordedDraws(tensors: ["segment.7.noise.z_p": Tensor(zeros: [1, 8, 3])])
        #expect(throws: ConversionError.drawsNeverMade(names: ["segment.7.noise.z_p"], segments: 1)) {
            try converter().convert(samples: input, sampleRate: 16000, options: options)
        }
    }

    @Test func aNoiseFileOfAnotherDTypeIsRefused() throws {
        var writer = SafeTensorsWriter()
        writer.add("segment.0.noise.z_p", int32Values: [0, 0], shape: [1, 1, 2])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("converter-tests-int.safetensors").path
        try writer.write(to: path)
        #expect(throws: RVCError.unsupportedDType(key: "segment.0.noise.z_p", dtype: "I32", readable: ["F32"])) {
            try RecordedDraws(path: path)
        }
    }

    @Test func theSameSeedGivesTheSameAudioAndAnotherSeedOther() throws {
        let input = try GoldenSet(path: Self.folder).file.tensor("input").data
        let converter = try converter()
        var options = ConversionOptions()
        options.seed = 3
        let first = try converter.convert(samples: input, sampleRate: 16000, options: options)
        let again = try converter.convert(samples: input, sampleRate: 16000, options: options)
        options.seed = 4
        let other = try converter.convert(samples: input, sampleRate: 16000, options: options)
        #expect(first.samples == again.samples)
        #expect(first.samples != other.samples)
    }

    @Test func retrievalReplacesTheFeaturesOnlyWhenTheIndexRateIsAboveZero() throws {
        let input = try GoldenSet(path: Self.folder).file.tensor("input").data
        let plain = try converter()
        let index = try IndexFixtures.oneList(randomValues(16 * 256, seed: 11), d: 256)
        let indexed = Converter(synthesizer: plain.synthesizer, contentEncoder: plain.contentEncoder, rmvpe: plain.rmvpe,
                                index: index)
        var options = ConversionOptions()
        options.indexRate = 0
        let without = try plain.convert(samples: input, sampleRate: 16000, options: options)
        #expect(try indexed.convert(samples: input, sampleRate: 16000, options: options).samples == without.samples)
        options.indexRate = 1
        #expect(try indexed.convert(samples: input, sampleRate: 16000, options: options).samples != without.samples)
    }

    @Test func otherRatesAreResampledTo16kHzFirst() throws {
        let input = try GoldenSet(path: Self.folder).file.tensor("input").data
        let at48k = Resampler(from: 16000, to: 48000).resampled(input)
        let converter = try converter()
        let direct = try converter.convert(samples: at48k, sampleRate: 48000)
        let resampled = try converter.convert(samples: Resampler(from: 48000, to: 16000).resampled(at48k), sampleRate: 16000)
        #expect(direct.samples == resampled.samples)
    }

    @Test func impossibleRatesAndBadOptionsAreRefusedWithASentence() throws {
        let converter = try converter()
        #expect(throws: ConversionError.sampleRate(500)) {
            try converter.convert(samples: [Float](repeating: 0.1, count: 1000), sampleRate: 500)
        }
        var options = ConversionOptions()
        options.protect = 0.7
        #expect(throws: ConversionError.optionOutOfRange(name: "protect", value: 0.7, range: 0...0.5)) {
            try converter.convert(samples: [Float](repeating: 0.1, count: 1000), sampleRate: 16000, options: options)
        }
    }
}
