import Foundation

#if _endian(big)
#error("safetensors data is little-endian; this reader copies it as the host's native layout")
#endif

/// A safetensors file: an 8-byte little-endian header length, a JSON header, then the tensor bytes.
///
/// Nothing in the header is trusted: the length must fit the file, every entry's dtype, shape and offsets
/// must describe exactly the bytes it claims, inside the data section and not shared with another entry.
/// A damaged file throws an `RVCError` naming the problem; it never traps or reads out of bounds.
///
/// Opened from a path, only the header is read up front; each tensor's bytes are read from the file when it is
/// asked for (`ReadOnlyFile`), straight into the array that keeps them. A file that shrinks after it was
/// opened gives `RVCError.fileUnreadable` at the first tensor it no longer holds.
public struct SafeTensorsFile {
    public enum DType: String, Sendable {
        case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
        case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8", bool = "BOOL"

        var byteWidth: Int {
            switch self {
            case .f64, .i64, .u64: return 8
            case .f32, .i32, .u32: return 4
            case .f16, .bf16, .i16, .u16: return 2
            case .i8, .u8, .bool: return 1
            }
        }

        /// The name the manifest and golden index use for this dtype.
        public var manifestName: String {
            switch self {
            case .f64: return "float64"
            case .f32: return "float32"
            case .f16: return "float16"
            case .bf16: return "bfloat16"
            case .i64: return "int64"
            case .i32: return "int32"
            case .i16: return "int16"
            case .i8: return "int8"
            case .u64: return "uint64"
            case .u32: return "uint32"
            case .u16: return "uint16"
            case .u8: return "uint8"
            case .bool: return "bool"
            }
        }
    }

    public struct Entry: Sendable {
        public let key: String
        public let dtype: DType
        public let shape: [Int]
        /// Byte range within the data section.
        public let byteRange: Range<Int>
    }

    /// Where the bytes are: in memory (tests, fuzzing, bytes already read), or in a file read as tensors are
    /// asked for.
    private enum Storage {
        case memory(Data)
        case file(ReadOnlyFile)

        var byteCount: Int {
            switch self {
            case let .memory(bytes): return bytes.count
            case let .file(file): return file.byteCount
            }
        }

        func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
            switch self {
            case let .memory(bytes):
                bytes.withUnsafeBytes { raw in
                    buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + buffer.count)]))
                }
            case let .file(file):
                try file.read(into: buffer, at: offset)
            }
        }

        func bytes(at offset: Int, count: Int) throws -> Data {
            switch self {
            case let .memory(bytes):
                return bytes.withUnsafeBytes { Data(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)])) }
            case let .file(file): return try file.bytes(at: offset, count: count)
            }
        }
    }

    /// Headers larger than this are refused before parsing (the reference implementation's limit).
    static let maximumHeaderBytes = 100_000_000
    /// Tensors that are converted (F16, I32, I64 to Float) or hashed are read in pieces of this size: 4 MB, a
    /// multiple of XXH64's 32-byte stripe and of every dtype's width, so a piece never splits a value.
    static let chunkBytes = 4 << 20

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let storage: Storage
    private let dataStart: Int

    public var keys: [String] { entries.keys.sorted() }

    /// Opens `path` and reads and checks its header; tensors are read when asked for.
    public init(path: String) throws {
        try self.init(storage: .file(try ReadOnlyFile(path: path)), path: path)
    }

    public init(bytes: Data, path: String) throws {
        try self.init(storage: .memory(bytes), path: path)
    }

    private init(storage: Storage, path: String) throws {
        self.path = path
        self.storage = storage
        let byteCount = storage.byteCount
        guard byteCount >= 8 else { throw RVCError.safetensorsTooShort(path: path, byteCount: byteCount) }
        let declared: UInt64 = try storage.bytes(at: 0, count: 8).withUnsafeBytes { raw in
            var value: UInt64 = 0
            for position in 0..<8 { value |= UInt64(raw[position]) << UInt64(8 * position) }
            return value
        }
        let available = byteCount - 8
        guard declared >= 2, declared <= UInt64(available), declared <= UInt64(Self.maximumHeaderBytes) else {
            throw RVCError.safetensorsHeaderLength(path: path, declared: declared, available: available)
        }
        let headerLength = Int(declared)
        let headerBytes = try storage.bytes(at: 8, count: headerLength)
        let header: SafeTensorsHeader
        do {
            header = try JSONDecoder().decode(SafeTensorsHeader.self, from: headerBytes)
        } catch let error as DecodingError {
            throw RVCError.safetensorsHeaderInvalid(path: path, reason: describeDecodingError(error, snakeCaseKeys: false))
        } catch {
            throw RVCError.safetensorsHeaderInvalid(path: path, reason: "\(error)")
        }
        dataStart = 8 + headerLength
        metadata = header.metadata
        entries = try Self.validate(header.tensors, dataByteCount: byteCount - dataStart, path: path)
    }

    private static func validate(_ raw: [String: SafeTensorsHeader.TensorEntry], dataByteCount: Int,
                                 path: String) throws -> [String: Entry] {
        var entries: [String: Entry] = [:]
        for (key, value) in raw {
            guard let dtype = DType(rawValue: value.dtype) else {
                throw RVCError.safetensorsEntryInvalid(path: path, key: key, reason: "unknown dtype `\(value.dtype)`")
            }
            guard value.shape.allSatisfy({ $0 >= 0 }) else {
                throw RVCError.safetensorsEntryInvalid(path: path, key: key, reason: "negative dimension in \(value.shape)")
            }
            guard value.dataOffsets.count == 2 else {
                throw RVCError.safetensorsEntryInvalid(path: path, key: key, reason: "data_offsets must hold two numbers")
            }
            let (begin, end) = (value.dataOffsets[0], value.dataOffsets[1])
            guard begin >= 0, begin <= end, end <= dataByteCount else {
                throw RVCError.safetensorsOffsetsOutOfRange(
                    path: path, key: key, begin: begin, end: end, dataByteCount: dataByteCount)
            }
            var expected = dtype.byteWidth
            for dimension in value.shape {
                let (product, overflow) = expected.multipliedReportingOverflow(by: dimension)
                guard !overflow else {
                    throw RVCError.safetensorsEntryInvalid(path: path, key: key, reason: "shape \(value.shape) is too large")
                }
                expected = product
            }
            guard expected == end - begin else {
                throw RVCError.safetensorsSizeMismatch(path: path, key: key, expectedBytes: expected, storedBytes: end - begin)
            }
            entries[key] = Entry(key: key, dtype: dtype, shape: value.shape, byteRange: begin..<end)
        }
        let ordered = entries.values.filter { !$0.byteRange.isEmpty }
            .sorted { ($0.byteRange.lowerBound, $0.key) < ($1.byteRange.lowerBound, $1.key) }
        for (previous, next) in zip(ordered, ordered.dropFirst()) where next.byteRange.lowerBound < previous.byteRange.upperBound {
            throw RVCError.safetensorsOverlap(path: path, key: next.key, otherKey: previous.key)
        }
        return entries
    }

    public func entry(_ key: String) throws -> Entry {
        guard let entry = entries[key] else { throw RVCError.tensorNotInFile(path: path, key: key) }
        return entry
    }

    /// The tensor's bytes exactly as stored, copied into `buffer` (which must hold exactly that many bytes).
    func readStoredBytes(of entry: Entry, into buffer: UnsafeMutableRawBufferPointer) throws {
        precondition(buffer.count == entry.byteRange.count)
        try storage.read(into: buffer, at: dataStart + entry.byteRange.lowerBound)
    }

    /// The tensor's stored bytes in order, in pieces of at most `chunkBytes` (a whole number of values each),
    /// so a large tensor is hashed or converted without a second copy of it in memory.
    func forEachChunk(of entry: Entry, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let total = entry.byteRange.count
        if case let .memory(bytes) = storage {
            try bytes.withUnsafeBytes { raw in
                var offset = 0
                repeat {
                    let start = dataStart + entry.byteRange.lowerBound + offset
                    let count = min(Self.chunkBytes, total - offset)
                    try body(UnsafeRawBufferPointer(rebasing: raw[start..<(start + count)]))
                    offset += count
                } while offset < total
            }
            return
        }
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, min(Self.chunkBytes, total)), alignment: 16)
        defer { chunk.deallocate() }
        var offset = 0
        repeat {
            let count = min(Self.chunkBytes, total - offset)
            let piece = UnsafeMutableRawBufferPointer(rebasing: chunk[0..<count])
            try storage.read(into: piece, at: dataStart + entry.byteRange.lowerBound + offset)
            try body(UnsafeRawBufferPointer(piece))
            offset += count
        } while offset < total
    }

    /// The tensor's bytes exactly as stored. From a file they are read into a temporary copy: for small
    /// tensors (a golden set's, a fuzz case's); weights are read with `tensor` or `forEachChunk`.
    public func withRawBytes<Result>(_ key: String, _ body: (UnsafeRawBufferPointer) throws -> Result) throws -> Result {
        let entry = try entry(key)
        if case let .memory(bytes) = storage {
            return try bytes.withUnsafeBytes { raw in
                try body(UnsafeRawBufferPointer(rebasing: raw[(dataStart + entry.byteRange.lowerBound)..<(dataStart + entry.byteRange.upperBound)]))
            }
        }
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: entry.byteRange.count, alignment: 16)
        defer { copy.deallocate() }
        try readStoredBytes(of: entry, into: copy)
        return try body(UnsafeRawBufferPointer(copy))
    }

    /// The XXH64 digest of the tensor's stored bytes (what the manifest's `xxh64` records), hashed a chunk at
    /// a time.
    public func xxh64(_ key: String) throws -> UInt64 {
        var hasher = XXH64.Hasher()
        try forEachChunk(of: try entry(key)) { hasher.absorb($0) }
        return hasher.digest()
    }

    /// A tensor stored as `Value` (its dtype's width), its bytes read straight into the array.
    func storedValues<Value>(_ entry: Entry, as _: Value.Type) throws -> [Value] {
        precondition(MemoryLayout<Value>.stride == entry.dtype.byteWidth)
        let count = entry.shape.reduce(1, *)
        return try [Value](unsafeUninitializedCapacity: count) { buffer, initialized in
            try readStoredBytes(of: entry, into: UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }

    /// Each stored value of a tensor of `Stored` values (its dtype's width) converted into `target`, a chunk
    /// at a time.
    private func convertedValues<Stored, Value>(
        _ entry: Entry, from _: Stored.Type, into target: UnsafeMutableBufferPointer<Value>,
        _ convert: (Stored) throws -> Value
    ) throws {
        precondition(MemoryLayout<Stored>.size == entry.dtype.byteWidth)
        var index = 0
        try forEachChunk(of: entry) { raw in
            for position in 0..<(raw.count / MemoryLayout<Stored>.size) {
                target[index] = try convert(raw.loadUnaligned(fromByteOffset: position * MemoryLayout<Stored>.size, as: Stored.self))
                index += 1
            }
        }
    }

    /// A floating-point or integer tensor as Float32 values.
    public func tensor(_ key: String) throws -> Tensor {
        let entry = try entry(key)
        let readable: [DType] = [.f32, .f16, .i32, .i64]
        guard readable.contains(entry.dtype) else {
            throw RVCError.unsupportedDType(key: key, dtype: entry.dtype.rawValue, readable: readable.map(\.rawValue))
        }
        if entry.dtype == .f32 { return Tensor(shape: entry.shape, data: try storedValues(entry, as: Float.self)) }
        var values = [Float](repeating: 0, count: entry.shape.reduce(1, *))
        try values.withUnsafeMutableBufferPointer { target in
            switch entry.dtype {
            case .f16: try convertedValues(entry, from: UInt16.self, into: target) { floatFromHalf($0) }
            case .i32: try convertedValues(entry, from: Int32.self, into: target) { Float($0) }
            default: try convertedValues(entry, from: Int64.self, into: target) { Float($0) }
            }
        }
        return Tensor(shape: entry.shape, data: values)
    }

    /// An integer tensor as Int32 values (indices, lengths); I64 values must fit 32 bits.
    public func int32Values(_ key: String) throws -> (shape: [Int], values: [Int32]) {
        let entry = try entry(key)
        switch entry.dtype {
        case .i32:
            return (entry.shape, try storedValues(entry, as: Int32.self))
        case .i64:
            var values = [Int32](repeating: 0, count: entry.shape.reduce(1, *))
            try values.withUnsafeMutableBufferPointer { target in
                try convertedValues(entry, from: Int64.self, into: target) { wide in
                    guard let narrow = Int32(exactly: wide) else { throw RVCError.integerOutOfRange(key: key, value: wide) }
                    return narrow
                }
            }
            return (entry.shape, values)
        default:
            throw RVCError.unsupportedDType(key: key, dtype: entry.dtype.rawValue, readable: ["I32", "I64"])
        }
    }
}

/// The JSON header: tensor entries plus the optional string-to-string `__metadata__`.
private struct SafeTensorsHeader: Decodable {
    struct TensorEntry: Decodable {
        let dtype: String
        let shape: [Int]
        let dataOffsets: [Int]

        enum CodingKeys: String, CodingKey {
            case dtype, shape
            case dataOffsets = "data_offsets"
        }
    }

    struct AnyKey: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    let tensors: [String: TensorEntry]
    let metadata: [String: String]

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        var tensors: [String: TensorEntry] = [:]
        var metadata: [String: String] = [:]
        for key in container.allKeys {
            if key.stringValue == "__metadata__" {
                metadata = try container.decode([String: String].self, forKey: key)
            } else {
                tensors[key.stringValue] = try container.decode(TensorEntry.self, forKey: key)
            }
        }
        self.tensors = tensors
        self.metadata = metadata
    }
}

/// IEEE 754 binary16 to binary32, written out because `Float16` is missing on macOS x86_64.
func floatFromHalf(_ bits: UInt16) -> Float {
    let sign = UInt32(bits & 0x8000) << 16
    let exponent = UInt32(bits >> 10) & 0x1f
    var mantissa = UInt32(bits & 0x3ff)
    let result: UInt32
    switch exponent {
    case 0:
        if mantissa == 0 {
            result = sign
        } else {
            // Subnormal half: normalise into a float exponent.
            var shifted = Int32(-1)
            repeat {
                mantissa <<= 1
                shifted += 1
            } while mantissa & 0x400 == 0
            result = sign | UInt32(Int32(127 - 15) - shifted) << 23 | (mantissa & 0x3ff) << 13
        }
    case 0x1f:
        result = sign | 0x7f80_0000 | mantissa << 13
    default:
        result = sign | (exponent + 112) << 23 | mantissa << 13
    }
    return Float(bitPattern: result)
}

/// Writes tensors to a safetensors file with string `__metadata__` (the candidate files `golden diff` reads).
public struct SafeTensorsWriter {
    private struct Pending {
        let name: String
        let dtype: SafeTensorsFile.DType
        let shape: [Int]
        let bytes: Data
    }

    public var metadata: [String: String] = [:]
    private var pending: [Pending] = []

    public init() {}

    public var names: [String] { pending.map(\.name) }

    public mutating func add(_ name: String, _ tensor: Tensor) {
        precondition(!names.contains(name), "tensor `\(name)` added twice")
        let bytes = tensor.data.withUnsafeBytes { Data($0) }
        pending.append(Pending(name: name, dtype: .f32, shape: tensor.shape, bytes: bytes))
    }

    public mutating func add(_ name: String, int32Values values: [Int32], shape: [Int]) {
        precondition(!names.contains(name), "tensor `\(name)` added twice")
        precondition(shape.reduce(1, *) == values.count)
        let bytes = values.withUnsafeBytes { Data($0) }
        pending.append(Pending(name: name, dtype: .i32, shape: shape, bytes: bytes))
    }

    public func serialized() -> Data {
        var fields: [String] = []
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0] ?? ""))" }
            fields.append("\"__metadata__\":{\(items.joined(separator: ","))}")
        }
        var offset = 0
        for tensor in pending {
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(tensor.name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],"
                + "\"data_offsets\":[\(offset),\(offset + tensor.bytes.count)]}")
            offset += tensor.bytes.count
        }
        var header = Array("{\(fields.joined(separator: ","))}".utf8)
        // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
        while header.count % 8 != 0 { header.append(0x20) }
        var output = Data(capacity: 8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { output.append(contentsOf: $0) }
        output.append(contentsOf: header)
        for tensor in pending { output.append(tensor.bytes) }
        return output
    }

    public func write(to path: String) throws {
        do {
            try serialized().write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw RVCError.fileUnwritable(path: path, reason: error.localizedDescription)
        }
    }
}

/// A JSON string literal with the escapes RFC 8259 requires.
func jsonString(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
    }
    return result + "\""
}
