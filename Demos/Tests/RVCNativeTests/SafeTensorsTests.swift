import Foundation
import Testing
@testable import RVCNative

/// A safetensors byte string from a header text and a data section, with the length field given or computed.
func safetensorsBytes(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> Data {
    let headerBytes = Array(header.utf8)
    var bytes = Data()
    withUnsafeBytes(of: (declaredLength ?? UInt64(headerBytes.count)).littleEndian) { bytes.append(contentsOf: $0) }
    bytes.append(contentsOf: headerBytes)
    bytes.append(contentsOf: data)
    return bytes
}

@Suite struct SafeTensorsReaderTests {
    let twoFloats: [UInt8] = [0, 0, 128, 63, 0, 0, 0, 64]  // 1.0, 2.0

    @Test func readsWhatTheWriterWrote() throws {
        var writer = SafeTensorsWriter()
        writer.metadata = ["producer": "test", "layout.a": "BTC"]
        writer.add("a", Tensor(shape: [1, 2, 3], data: [1, 2, 3, 4, 5, 6]))
        writer.add("n", int32Values: [7, -8], shape: [2])
        let file = try SafeTensorsFile(bytes: writer.serialized(), path: "mem")
        #expect(try file.tensor("a") == Tensor(shape: [1, 2, 3], data: [1, 2, 3, 4, 5, 6]))
        #expect(try file.int32Values("n").values == [7, -8])
        #expect(file.metadata == ["producer": "test", "layout.a": "BTC"])
    }

    @Test func convertsHalfAndInt64ToFloat() throws {
        let header = #"{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"l":{"dtype":"I64","shape":[1],"data_offsets":[6,14]}}"#
        // 1.0, -2.0, 2^-24 (smallest subnormal) in binary16; then 5 as int64.
        let data: [UInt8] = [0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 5, 0, 0, 0, 0, 0, 0, 0]
        let file = try SafeTensorsFile(bytes: safetensorsBytes(header: header, data: data), path: "mem")
        #expect(try file.tensor("h").data == [1, -2, Float(1) / Float(1 << 24)])
        #expect(try file.tensor("l").data == [5])
        #expect(try file.int32Values("l").values == [5])
    }

    @Test func refusesAFileShorterThanTheLengthField() {
        let error = rvcError { _ = try SafeTensorsFile(bytes: Data([1, 2, 3]), path: "short") }
        #expect(error == .safetensorsTooShort(path: "short", byteCount: 3))
    }

    @Test func refusesAHeaderLengthBeyondTheFile() {
        let bytes = safetensorsBytes(header: "{}", data: [], declaredLength: 1 << 40)
        guard case .safetensorsHeaderLength(_, let declared, let available)? = rvcError({
            _ = try SafeTensorsFile(bytes: bytes, path: "mem")
        }) else {
            Issue.record("expected safetensorsHeaderLength")
            return
        }
        #expect(declared == 1 << 40 && available == 2)
    }

    @Test func refusesAHeaderThatIsNotJSON() {
        let bytes = safetensorsBytes(header: "{not json", data: [])
        guard case .safetensorsHeaderInvalid? = rvcError({ _ = try SafeTensorsFile(bytes: bytes, path: "mem") }) else {
            Issue.record("expected safetensorsHeaderInvalid")
            return
        }
    }

    @Test func refusesOffsetsPastTheDataSection() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        let error = rvcError { _ = try SafeTensorsFile(bytes: safetensorsBytes(header: header, data: twoFloats), path: "mem") }
        #expect(error == .safetensorsOffsetsOutOfRange(path: "mem", key: "a", begin: 4, end: 12, dataByteCount: 8))
    }

    @Test func refusesNegativeOrReversedOffsets() {
        for offsets in ["[-4,4]", "[8,0]"] {
            let header = #"{"a":{"dtype":"F32","shape":[0],"data_offsets":"# + offsets + "}}"
            guard case .safetensorsOffsetsOutOfRange? = rvcError({
                _ = try SafeTensorsFile(bytes: safetensorsBytes(header: header, data: twoFloats), path: "mem")
            }) else {
                Issue.record("expected safetensorsOffsetsOutOfRange for \(offsets)")
                continue
            }
        }
    }

    @Test func refusesATruncatedFile() {
        var writer = SafeTensorsWriter()
        writer.add("a", Tensor(shape: [4], data: [1, 2, 3, 4]))
        let whole = writer.serialized()
        let truncated = whole.prefix(whole.count - 3)
        guard case .safetensorsOffsetsOutOfRange(_, "a", _, 16, 13)? = rvcError({
            _ = try SafeTensorsFile(bytes: Data(truncated), path: "mem")
        }) else {
            Issue.record("expected safetensorsOffsetsOutOfRange for the truncated tensor")
            return
        }
    }

    @Test func refusesAShapeThatDisagreesWithTheByteCount() {
        let header = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        let error = rvcError { _ = try SafeTensorsFile(bytes: safetensorsBytes(header: header, data: twoFloats), path: "mem") }
        #expect(error == .safetensorsSizeMismatch(path: "mem", key: "a", expectedBytes: 12, storedBytes: 8))
    }

    @Test func refusesAShapeWhoseSizeOverflows() {
        let header = #"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#
        guard case .safetensorsEntryInvalid(_, "a", _)? = rvcError({
            _ = try SafeTensorsFile(bytes: safetensorsBytes(header: header, data: twoFloats), path: "mem")
        }) else {
            Issue.record("expected safetensorsEntryInvalid")
            return
        }
    }

    @Test func refusesTensorsSharingBytes() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        let error = rvcError { _ = try SafeTensorsFile(bytes: safetensorsBytes(header: header, data: twoFloats), path: "mem") }
        #expect(error == .safetensorsOverlap(path: "mem", key: "b", otherKey: "a"))
    }

    @Test func refusesAnUnknownDType() {
        let header = #"{"a":{"dtype":"F8","shape":[8],"data_offsets":[0,8]}}"#
        guard case .safetensorsEntryInvalid(_, "a", _)? = rvcError({
            _ = try SafeTensorsFile(bytes: safetensorsBytes(header: header, data: twoFloats), path: "mem")
        }) else {
            Issue.record("expected safetensorsEntryInvalid")
            return
        }
    }

    @Test func refusesReadingAKnownButUnsupportedDTypeAsFloat() throws {
        let header = #"{"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}}"#
        let file = try SafeTensorsFile(bytes: safetensorsBytes(header: header, data: twoFloats), path: "mem")
        #expect(rvcError { _ = try file.tensor("a") } == .unsupportedDType(key: "a", dtype: "BF16", readable: ["F32", "F16", "I32", "I64"]))
    }

    @Test func refusesInt64IndicesThatDoNotFit32Bits() throws {
        let header = #"{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#
        let data: [UInt8] = [0, 0, 0, 0, 1, 0, 0, 0]  // 2^32
        let file = try SafeTensorsFile(bytes: safetensorsBytes(header: header, data: data), path: "mem")
        #expect(rvcError { _ = try file.int32Values("a") } == .integerOutOfRange(key: "a", value: 1 << 32))
    }

    @Test func refusesReadingFloatsAsIndices() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let file = try SafeTensorsFile(bytes: safetensorsBytes(header: header, data: twoFloats), path: "mem")
        #expect(rvcError { _ = try file.int32Values("a") } == .unsupportedDType(key: "a", dtype: "F32", readable: ["I32", "I64"]))
    }

    @Test func namesAMissingTensor() throws {
        let file = try SafeTensorsFile(bytes: safetensorsBytes(header: "{}", data: []), path: "mem")
        #expect(rvcError { _ = try file.tensor("x") } == .tensorNotInFile(path: "mem", key: "x"))
    }
}

/// `SafeTensorsFile(path:)` reads the header when opened and each tensor from the file when asked for.
@Suite struct SafeTensorsFileReadingTests {
    /// A file of float and int tensors, one larger than a read chunk (4 MB), one empty; "small" comes first.
    func writtenFile(_ name: String) throws -> (path: String, bytes: Data) {
        var writer = SafeTensorsWriter()
        writer.add("small", Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]))
        writer.add("large", Tensor(shape: [3, 400_000], data: randomValues(1_200_000, seed: 7)))
        writer.add("ints", int32Values: [7, -8, 9], shape: [3])
        writer.add("empty", Tensor(shape: [0, 4], data: []))
        let bytes = writer.serialized()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-tests-\(name).safetensors").path
        try bytes.write(to: URL(fileURLWithPath: path))
        return (path, bytes)
    }

    @Test func aFileReadsTheTensorsItsBytesHold() throws {
        let (path, bytes) = try writtenFile("same")
        let file = try SafeTensorsFile(path: path)
        let memory = try SafeTensorsFile(bytes: bytes, path: path)
        #expect(file.keys == memory.keys)
        for key in ["large", "small", "empty"] { #expect(try file.tensor(key) == memory.tensor(key)) }
        #expect(try file.int32Values("ints").values == memory.int32Values("ints").values)
        #expect(try file.tensor("ints") == memory.tensor("ints"))
        for key in file.keys {
            #expect(try file.xxh64(key) == memory.withRawBytes(key) { XXH64.digest($0) })
            #expect(try file.withRawBytes(key) { Array($0) } == memory.withRawBytes(key) { Array($0) })
        }
    }

    @Test func aFileThatShrinksAfterOpeningIsAnErrorNamingIt() throws {
        let (path, bytes) = try writtenFile("shrinks")
        let file = try SafeTensorsFile(path: path)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(bytes.count - 1_000_000))
        try handle.close()
        #expect(try file.tensor("small") == Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]))  // still in the file
        guard case let .fileUnreadable(named, reason)? = rvcError({ _ = try file.tensor("large") }) else {
            Issue.record("expected fileUnreadable")
            return
        }
        #expect(named == path)
        #expect(reason.contains("changed while it was read"))
        #expect(rvcError { _ = try file.xxh64("large") } != nil)
    }

    @Test func aFolderOrAMissingFileIsUnreadable() {
        let folder = FileManager.default.temporaryDirectory.path
        guard case .fileUnreadable? = rvcError({ _ = try SafeTensorsFile(path: folder) }) else {
            Issue.record("a folder opened as a file")
            return
        }
        guard case .fileUnreadable? = rvcError({ _ = try SafeTensorsFile(path: folder + "/no-such.safetensors") }) else {
            Issue.record("a missing file opened")
            return
        }
    }
}

@Suite struct SafeTensorsWriterTests {
    @Test func alignsTheDataSectionToEightBytes() {
        var writer = SafeTensorsWriter()
        writer.add("odd name", Tensor(shape: [1], data: [3]))
        let bytes = writer.serialized()
        let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0)
        #expect(bytes.count == 8 + headerLength + 4)
    }

    @Test func escapesNamesAndMetadataAsJSON() throws {
        var writer = SafeTensorsWriter()
        writer.metadata["note"] = "a \"quoted\"\nline"
        writer.add("we\\ird", Tensor(shape: [1], data: [1]))
        let file = try SafeTensorsFile(bytes: writer.serialized(), path: "mem")
        #expect(file.metadata["note"] == "a \"quoted\"\nline")
        #expect(file.keys == ["we\\ird"])
    }
}
