import Foundation
import Testing
@testable import RVCNative

/// The public conversion (`Converter`) on the committed tiny assets and `golden/tiny-pipeline/`.
struct ConverterTests {
    static let folder = Repository.goldens.appendingPathComponent("tiny-pipeline").path

    func converter() throws -> Converter {
        try Converter(assets: Repository.fixtures.path, voice: "tiny-v1-32k", hubert: "tiny-hubert-v1", rmvpe: "tiny-rmvpe")
    }

    @Test func withTheGoldenDrawsItGivesTheReferencesInt16WithinOneLSB() throws {
        let golden = try GoldenSet(path: Self.folder)
        let input = try golden.file.tensor("input").data
        let audio = try converter().convert(samples: input, options: ConversionOptions()) { segment, name, _ in
            try golden.tensor("segment.\(segment).\(name)", layout: "BTC")
        }
        let expected = try golden.file.int16Values("output").values
        #expect(audio.sampleRate == 32000)
        #expect(audio.samples.count == expected.count)
        let largest = zip(audio.samples, expected).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(largest <= 1, "int16 differs by up to \(largest) LSB")
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

    @Test func otherRatesAndBadOptionsAreRefusedWithASentence() throws {
        let converter = try converter()
        #expect(throws: ConversionError.sampleRate(44100)) {
            try converter.convert(samples: [Float](repeating: 0.1, count: 1000), sampleRate: 44100)
        }
        var options = ConversionOptions()
        options.protect = 0.7
        #expect(throws: ConversionError.optionOutOfRange(name: "protect", value: 0.7, range: 0...0.5)) {
            try converter.convert(samples: [Float](repeating: 0.1, count: 1000), sampleRate: 16000, options: options)
        }
    }
}
