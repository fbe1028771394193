import Foundation

/// `<Name>.manifest.json`, written by `rvc-ios export` beside the weights (`schemas/manifest.schema.json`).
public struct VoiceManifest: Decodable, Sendable {
    /// 2: per-tensor checksums are XXH64 (`xxh64`); format 1 carried sha256.
    public static let supportedFormatVersion = 2

    public struct TensorEntry: Decodable, Equatable, Sendable {
        public let key: String
        public let shape: [Int]
        public let dtype: String
        public let layout: String
        /// XXH64 of the tensor's stored bytes, 16 hex digits.
        public let xxh64: String
    }

    public let formatVersion: Int
    public let kind: String
    public let modelName: String
    public let weightsFile: String
    public let dtype: String
    public let tensors: [TensorEntry]
    /// Present for voices (`kind == "voice"`); decoded from `config` plus the top-level flags.
    public let configuration: Configuration?

    private enum CodingKeys: String, CodingKey {
        case formatVersion, kind, modelName, weightsFile, dtype, tensors, config
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        formatVersion = try container.decode(Int.self, forKey: .formatVersion)
        kind = try container.decode(String.self, forKey: .kind)
        modelName = try container.decode(String.self, forKey: .modelName)
        weightsFile = try container.decode(String.self, forKey: .weightsFile)
        dtype = try container.decode(String.self, forKey: .dtype)
        tensors = try container.decode([TensorEntry].self, forKey: .tensors)
        configuration = container.contains(.config) ? try Configuration(from: decoder) : nil
    }

    /// Snake-case keys are mapped to Swift names here, once, for every manifest and golden index type.
    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    /// Reads and checks a manifest: its format version first (so a newer format is reported as such, not
    /// as a missing field), then every field, then that it describes a voice with a plain weights file name.
    public static func load(path: String) throws -> VoiceManifest {
        try parse(try readFile(path), path: path)
    }

    /// `load` for bytes already read; `path` names them in errors.
    public static func parse(_ data: Data, path: String) throws -> VoiceManifest {
        try parseChecked(data, path: path) { decoder in
            let manifest = try decoder.decode(VoiceManifest.self, from: data)
            guard manifest.kind == "voice", manifest.configuration != nil else {
                throw RVCError.manifestKind(path: path, found: manifest.kind)
            }
            return (manifest, manifest)
        }
    }

    /// What every manifest gets checked for, voice or RMVPE: its format version first (so a newer format is
    /// reported as such, not as a missing field); then `decode(decoder)` reads the model's fields and
    /// checks its kind, returning the shared fields and the model's manifest; then that the weights file is a
    /// plain file name beside the manifest. A decoding error becomes `manifestUnreadable` naming the field.
    static func parseChecked<Model>(
        _ data: Data, path: String,
        decode: (JSONDecoder) throws -> (common: VoiceManifest, model: Model)
    ) throws -> Model {
        do {
            let probe = try decoder().decode(FormatProbe.self, from: data)
            guard probe.formatVersion == supportedFormatVersion else {
                throw RVCError.manifestFormatVersion(path: path, found: probe.formatVersion, supported: supportedFormatVersion)
            }
            let (common, model) = try decode(decoder())
            let name = common.weightsFile
            guard !name.isEmpty, !name.contains("/"), !name.contains("\\"), name != ".", name != ".." else {
                throw RVCError.manifestWeightsFile(path: path, weightsFile: name)
            }
            return model
        } catch let error as RVCError {
            throw error
        } catch let error as RMVPEError {
            throw error
        } catch let error as IndexError {
            throw error
        } catch let error as ContentEncoderError {
            throw error
        } catch let error as DecodingError {
            throw RVCError.manifestUnreadable(path: path, reason: describeDecodingError(error))
        } catch {
            throw RVCError.manifestUnreadable(path: path, reason: "\(error)")
        }
    }

    private struct FormatProbe: Decodable { let formatVersion: Int }

    /// Checks that the weights file holds exactly the manifest's tensors, each with the listed shape, dtype
    /// and XXH64 checksum of its stored bytes.
    public func verify(_ weights: SafeTensorsFile) throws {
        let listed = Set(tensors.map(\.key))
        if let extra = weights.keys.first(where: { !listed.contains($0) }) {
            throw RVCError.weightsTensorNotInManifest(path: weights.path, key: extra)
        }
        for expected in tensors {
            guard let stored = weights.entries[expected.key] else {
                throw RVCError.manifestTensorNotInWeights(path: weights.path, key: expected.key)
            }
            guard stored.shape == expected.shape else {
                throw RVCError.manifestEntryMismatch(
                    path: weights.path, key: expected.key, field: "shape", manifest: "\(expected.shape)", weights: "\(stored.shape)")
            }
            guard stored.dtype.manifestName == expected.dtype else {
                throw RVCError.manifestEntryMismatch(
                    path: weights.path, key: expected.key, field: "dtype", manifest: expected.dtype, weights: stored.dtype.manifestName)
            }
        }
        // Hashing every byte is the slow part of checking: tensors are hashed in parallel (each read from the
        // file a chunk at a time, so the check holds a few chunks, not the file), then checked in order.
        var digests = [Result<UInt64, Error>](repeating: .success(0), count: tensors.count)
        digests.withUnsafeMutableBufferPointer { digests in
            guard let results = digests.baseAddress else { return }
            ParallelWork.run(workers: min(ParallelWork.workerCount, tensors.count)) { worker, workers in
                for index in stride(from: worker, to: tensors.count, by: workers) {
                    results[index] = Result { try weights.xxh64(tensors[index].key) }
                }
            }
        }
        for (expected, digest) in zip(tensors, digests) {
            let actual = XXH64.hexDigest(try digest.get())
            if actual != expected.xxh64.lowercased() {
                throw RVCError.checksumMismatch(path: weights.path, key: expected.key, expected: expected.xxh64, actual: actual)
            }
        }
    }
}

/// A whole file's bytes, copied into memory (manifests, golden indexes, WAVs; weights files are read a tensor
/// at a time by `SafeTensorsFile(path:)`). Never mapped: a file truncated under a map would crash the process.
func readFile(_ path: String) throws -> Data {
    do {
        return try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        throw RVCError.fileUnreadable(path: path, reason: error.localizedDescription)
    }
}

func snakeCase(_ name: String) -> String {
    name.reduce(into: "") { result, character in
        if character.isUppercase {
            result += "_" + character.lowercased()
        } else {
            result.append(character)
        }
    }
}

/// A decoding error as a short phrase naming the field. `snakeCaseKeys`: the decoder converted the file's
/// snake_case names, so they are converted back to name fields as the file spells them.
func describeDecodingError(_ error: DecodingError, snakeCaseKeys: Bool = true) -> String {
    switch error {
    case let .dataCorrupted(context), let .keyNotFound(_, context),
         let .typeMismatch(_, context), let .valueNotFound(_, context):
        var path = context.codingPath
        if case let .keyNotFound(key, _) = error { path.append(key) }
        let place = path.map { key in
            key.intValue.map { "[\($0)]" } ?? (snakeCaseKeys ? snakeCase(key.stringValue) : key.stringValue)
        }.joined(separator: ".")
        if case .keyNotFound = error { return "missing `\(place)`" }
        return place.isEmpty ? context.debugDescription : "`\(place)`: \(context.debugDescription)"
    @unknown default:
        return "\(error)"
    }
}
