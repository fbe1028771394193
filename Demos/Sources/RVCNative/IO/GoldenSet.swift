import Foundation

/// `golden/<Name>/index.json` (`schemas/golden.schema.json`): what `golden.safetensors` beside it holds.
public struct GoldenIndex: Decodable, Sendable {
    public static let supportedFormatVersion = 1

    public struct Stage: Decodable, Equatable, Sendable {
        public let name: String
        public let inputs: [String]
        public let outputs: [String]
        public let minSnrDb: Double
    }

    public struct TensorEntry: Decodable, Equatable, Sendable {
        public let name: String
        public let stage: String?
        public let role: String
        public let shape: [Int]
        public let dtype: String
        public let layout: String
        public let sha256: String
    }

    public let format: String
    public let formatVersion: Int
    public let kind: String
    public let modelName: String
    public let manifestSha256: String
    public let seed: Int
    public let toolVersion: String
    public let stages: [Stage]
    public let tensors: [TensorEntry]

    public static func load(path: String) throws -> GoldenIndex {
        try parse(try readFile(path), path: path)
    }

    /// `load` for bytes already read; `path` names them in errors.
    public static func parse(_ data: Data, path: String) throws -> GoldenIndex {
        let index: GoldenIndex
        do {
            index = try VoiceManifest.decoder().decode(GoldenIndex.self, from: data)
        } catch let error as DecodingError {
            throw RVCError.goldenIndexUnreadable(path: path, reason: describeDecodingError(error))
        } catch {
            throw RVCError.goldenIndexUnreadable(path: path, reason: "\(error)")
        }
        guard index.format == "rvc-ios-golden", index.formatVersion == supportedFormatVersion else {
            throw RVCError.goldenIndexUnreadable(
                path: path, reason: "format `\(index.format)` version \(index.formatVersion), this build reads "
                    + "`rvc-ios-golden` version \(supportedFormatVersion)")
        }
        return index
    }

    public func entry(_ name: String) -> TensorEntry? {
        tensors.first { $0.name == name }
    }
}

/// A golden set (folder with `golden.safetensors` + `index.json`) or a bare safetensors file of inputs.
///
/// Tensors are stored in upstream's layouts; `tensor(_:layout:)` returns them in the layout asked for.
/// A tensor's stored layout comes from the index, else from the file's `layout.<name>` metadata, else from
/// the voice naming table in docs/formats.md.
public struct GoldenSet {
    public let index: GoldenIndex?
    public let file: SafeTensorsFile

    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw RVCError.fileUnreadable(path: path, reason: "no such file or folder")
        }
        if isDirectory.boolValue {
            let folder = URL(fileURLWithPath: path)
            index = try GoldenIndex.load(path: folder.appendingPathComponent("index.json").path)
            file = try SafeTensorsFile(path: folder.appendingPathComponent("golden.safetensors").path)
        } else {
            index = nil
            file = try SafeTensorsFile(path: path)
        }
    }

    public init(index: GoldenIndex?, file: SafeTensorsFile) {
        self.index = index
        self.file = file
    }

    public func contains(_ name: String) -> Bool { file.entries[name] != nil }

    public func storedLayout(of name: String) -> String? {
        index?.entry(name)?.layout ?? file.metadata["layout.\(name)"] ?? VoiceTensors.goldenLayout(of: name)
    }

    /// Checks a golden set's tensor against its `index.json` entry before it is used: the stored shape, and the
    /// sha256 of its bytes, so a golden file damaged or changed after it was written is refused rather than run
    /// on. Each tensor is hashed when it is read, so a run pays only for the tensors it reads. A bare inputs
    /// file has no index and nothing to check against.
    private func checkAgainstIndex(_ name: String) throws {
        guard let entry = index?.entry(name) else { return }
        let stored = try file.entry(name)
        guard stored.shape == entry.shape else {
            throw RVCError.goldenTensorShape(name: name, expected: entry.shape, actual: stored.shape)
        }
        let digest = try file.withRawBytes(name) { SHA256.hexDigest($0) }
        guard digest == entry.sha256 else { throw RVCError.goldenTensorChecksum(path: file.path, name: name) }
    }

    /// Tensor `name` as Float32, in the layout it is stored in, checked against the index.
    public func storedTensor(_ name: String) throws -> Tensor {
        guard contains(name) else { throw RVCError.tensorNotInFile(path: file.path, key: name) }
        try checkAgainstIndex(name)
        return try file.tensor(name)
    }

    /// Tensor `name` as Float32 in `layout` (e.g. `BTC`), transposed from how it is stored.
    public func tensor(_ name: String, layout: String) throws -> Tensor {
        let stored = try storedTensor(name)
        guard let storedLayout = storedLayout(of: name), storedLayout.count == stored.rank else {
            throw RVCError.layoutUnsupported(name: name, layout: storedLayout(of: name) ?? "unknown", wanted: layout)
        }
        guard let converted = stored.converted(fromLayout: storedLayout, toLayout: layout) else {
            throw RVCError.layoutUnsupported(name: name, layout: storedLayout, wanted: layout)
        }
        return converted
    }

    /// Integer tensor `name` (lengths, indices), flattened.
    public func int32Values(_ name: String) throws -> (shape: [Int], values: [Int32]) {
        guard contains(name) else { throw RVCError.tensorNotInFile(path: file.path, key: name) }
        try checkAgainstIndex(name)
        return try file.int32Values(name)
    }
}

extension Tensor {
    /// The tensor with its axes reordered from one layout string to another (`BCT` -> `BTC`), or nil when
    /// the two do not name the same axes.
    public func converted(fromLayout source: String, toLayout target: String) -> Tensor? {
        let sourceAxes = Array(source)
        let targetAxes = Array(target)
        guard sourceAxes.count == rank, Set(sourceAxes).count == rank,
              sourceAxes.sorted() == targetAxes.sorted() else { return nil }
        let permutation = targetAxes.compactMap { sourceAxes.firstIndex(of: $0) }
        return permuted(permutation)
    }
}
