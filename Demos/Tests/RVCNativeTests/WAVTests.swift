import Foundation
import Testing
@testable import RVCNative

/// `WAVFile.read` as `rvc_ios_tools.core.wav.read_wav` reads WAV files, and `mixedToMono` as `mix_to_mono`.
struct WAVTests {
    /// A RIFF/WAVE file: a `fmt ` chunk of `format`, `channels`, `rate`, `bits` (plus `fmtExtra`), then `data`
    /// with `dataSize` as its declared size (default: its length).
    func wav(format: UInt16 = 1, channels: UInt16 = 1, rate: UInt32 = 16000, bits: UInt16 = 16, data: [UInt8],
             fmtExtra: [UInt8] = [], dataSize: UInt32? = nil) -> Data {
        var bytes = Data("RIFF".utf8)
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        append(UInt32(4 + 8 + 16 + fmtExtra.count + 8 + data.count))
        bytes.append(contentsOf: Array("WAVEfmt ".utf8))
        append(UInt32(16 + fmtExtra.count)); append(format); append(channels); append(rate)
        append(rate * UInt32(channels) * UInt32(bits / 8)); append(channels * bits / 8); append(bits)
        bytes.append(contentsOf: fmtExtra)
        bytes.append(contentsOf: Array("data".utf8))
        append(dataSize ?? UInt32(data.count))
        bytes.append(contentsOf: data)
        return bytes
    }

    func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    }

    func read(_ data: Data) throws -> WAVAudio { try WAVFile.read(bytes: data, path: "in.wav") }

    /// The reason of the `wavUnsupported` error reading `data` throws.
    func refusal(_ data: Data) -> String? {
        guard case let .wavUnsupported(_, reason)? = rvcError({ _ = try read(data) }) else { return nil }
        return reason
    }

    @Test func pcmOfEachWidthIsScaledAsFFmpegScalesIt() throws {
        let pcm16 = try read(wav(data: littleEndian([Int16(0), 1, -1, 32767, -32768])))
        #expect(pcm16.samples == [0, 1, -1, 32767, -32768].map { Float($0) / 32768 })
        #expect(pcm16.encoding == "16-bit PCM")
        let pcm8 = try read(wav(bits: 8, data: [0, 128, 255]))
        #expect(pcm8.samples == [-1, 0, Float(127) / 128])
        // 24-bit little-endian: 0x7FFFFF, -1, -0x800000.
        let pcm24 = try read(wav(bits: 24, data: [0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x80]))
        #expect(pcm24.samples == [Float(8_388_607) / 8_388_608, Float(-1) / 8_388_608, -1])
        // 32-bit values are rounded to float32 from their float64 quotient, as numpy's astype rounds.
        let pcm32 = try read(wav(bits: 32, data: littleEndian([Int32.max, Int32.min, 123_456_789])))
        #expect(pcm32.samples == [Float(Double(Int32.max) / 2_147_483_648), -1, Float(123_456_789.0 / 2_147_483_648)])
    }

    @Test func floatSamplesAreTakenAsStored() throws {
        let values: [Float] = [0.5, -1.25, 1e-8]
        let float32 = try read(wav(format: 3, bits: 32, data: littleEndian(values.map(\.bitPattern))))
        #expect(float32.samples == values)
        #expect(float32.encoding == "32-bit float")
        let doubles: [Double] = [0.1, -0.7, 2.5]
        let float64 = try read(wav(format: 3, bits: 64, data: littleEndian(doubles.map(\.bitPattern))))
        #expect(float64.samples == doubles.map { Float($0) })
    }

    @Test func stereoIsMixedAsLeftPlusRightOverRootTwoInFloat64() throws {
        let audio = try read(wav(channels: 2, data: littleEndian([Int16(16384), 8192, -32768, -32768, 3, 5])))
        #expect(audio.channels == 2 && audio.frames == 3)
        let half = (0.5 as Double).squareRoot()
        let pairs: [(Float, Float)] = [(16384, 8192), (-32768, -32768), (3, 5)]
        let expected: [Float] = pairs.map { l, r in
            let sum = Double(l / 32768) + Double(r / 32768)
            return Float(sum * half)
        }
        #expect(audio.mixedToMono() == expected)
        #expect(audio.mixedToMono()[1] < -1, "(L+R)/sqrt(2), not the mean: full-scale stereo exceeds 1")
    }

    @Test func extensibleFilesAreReadByTheirSubFormat() throws {
        // cbSize 22, valid bits, channel mask, then the sub-format GUID whose first two bytes are the format.
        let floatGUID: [UInt8] = [0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]
        let extra = littleEndian([UInt16(22), 32]) + littleEndian([UInt32(4)]) + floatGUID
        let audio = try read(wav(format: 0xFFFE, bits: 32, data: littleEndian([Float(0.25).bitPattern]), fmtExtra: extra))
        #expect(audio.samples == [0.25])
        // Without the sub-format (a fmt chunk shorter than 26 bytes) the format stays 0xfffe, refused by name.
        #expect(refusal(wav(format: 0xFFFE, data: littleEndian([Int16(1)])))?.contains("WAV format 0xfffe") == true)
    }

    @Test func otherEncodingsAndMoreThanTwoChannelsAreRefusedWithASentence() {
        let adpcm = refusal(wav(format: 2, bits: 4, data: [0, 0]))
        #expect(adpcm?.contains("4-bit samples of WAV format 0x0002") == true)
        #expect(adpcm?.contains("sox") == true)
        #expect(refusal(wav(bits: 12, data: [0, 0])) != nil)
        #expect(refusal(wav(channels: 3, data: littleEndian([Int16(1), 2, 3])))?.contains("has 3 channels") == true)
        #expect(refusal(wav(rate: 100, data: littleEndian([Int16(1)])))?.contains("sample rate of 100 Hz") == true)
        #expect(refusal(Data("RIFF....AVI LIST".utf8))?.contains("not a WAV file") == true)
    }

    @Test func aDataChunkClaimingMoreThanTheFileIsReadToItsEnd() throws {
        // What a streamed WAV leaves (0 or 0xFFFFFFFF) or a damaged header claims: the samples the file holds,
        // never an allocation of the claimed size.
        for claimed in [UInt32(0), 0xFFFF_FFFF, 0x7FFF_0000] {
            let audio = try read(wav(data: littleEndian([Int16(100), -100, 7]) + [0x01], dataSize: claimed))
            #expect(audio.samples == [100, -100, 7].map { Float($0) / 32768 }, "claimed \(claimed)")
        }
    }

    @Test func damagedOrTruncatedStructureIsRefused() {
        var fmtPastTheEnd = wav(data: [])
        fmtPastTheEnd.replaceSubrange(16..<20, with: littleEndian([UInt32(1000)]))
        #expect(refusal(fmtPastTheEnd)?.contains("damaged `fmt ` chunk") == true)
        let noData = wav(data: []).prefix(36)
        #expect(refusal(Data(noData))?.contains("no sample data chunk") == true)
        #expect(refusal(wav(data: []))?.contains("holds no samples") == true)
        var dataFirst = Data("RIFF".utf8) + littleEndian([UInt32(16)]) + Data("WAVE".utf8)
        dataFirst += Data("data".utf8) + littleEndian([UInt32(2), 0])
        #expect(refusal(dataFirst)?.contains("before the format chunk") == true)
    }

    @Test func nonFiniteFloatSamplesAreRefused() {
        #expect(refusal(wav(format: 3, bits: 32, data: littleEndian([Float.nan.bitPattern])))?.contains("NaN") == true)
        // A float64 beyond float32's range becomes infinite on reading: refused the same way.
        #expect(refusal(wav(format: 3, bits: 64, data: littleEndian([(1e300 as Double).bitPattern]))) != nil)
    }

    @Test func theMono16BitReaderRefusesOtherLayouts() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wav-tests-stereo.wav").path
        try wav(channels: 2, data: littleEndian([Int16(1), 2])).write(to: URL(fileURLWithPath: path))
        #expect(throws: RVCError.self) { try WAVFile.readMono16Bit(path: path) }
    }
}
