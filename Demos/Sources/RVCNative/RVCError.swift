/// Every way a user's files or arguments can be wrong, each with a sentence that says what to do.
///
/// Bugs in this package are not errors of this type: they are preconditions.
public enum RVCError: Error, Equatable, CustomStringConvertible {
    // Reading files
    case fileUnreadable(path: String, reason: String)
    case fileUnwritable(path: String, reason: String)
    /// A file that is not a WAV this reads (damaged, truncated, or another encoding); `reason` ends with the fix.
    case wavUnsupported(path: String, reason: String)

    // safetensors containers
    case safetensorsTooShort(path: String, byteCount: Int)
    case safetensorsHeaderLength(path: String, declared: UInt64, available: Int)
    case safetensorsHeaderInvalid(path: String, reason: String)
    case safetensorsEntryInvalid(path: String, key: String, reason: String)
    case safetensorsOffsetsOutOfRange(path: String, key: String, begin: Int, end: Int, dataByteCount: Int)
    case safetensorsSizeMismatch(path: String, key: String, expectedBytes: Int, storedBytes: Int)
    case safetensorsOverlap(path: String, key: String, otherKey: String)
    case tensorNotInFile(path: String, key: String)
    case unsupportedDType(key: String, dtype: String, readable: [String])
    case integerOutOfRange(key: String, value: Int64)

    // Manifests (voices and RMVPE alike, unless the case says otherwise)
    case manifestUnreadable(path: String, reason: String)
    case manifestFormatVersion(path: String, found: Int, supported: Int)
    /// A voice was expected (RMVPE has `RMVPEError.manifestKind`).
    case manifestKind(path: String, found: String)
    case manifestWeightsFile(path: String, weightsFile: String)
    /// `path` is the weights file in each of these four.
    case manifestTensorNotInWeights(path: String, key: String)
    case weightsTensorNotInManifest(path: String, key: String)
    case manifestEntryMismatch(path: String, key: String, field: String, manifest: String, weights: String)
    case checksumMismatch(path: String, key: String, expected: String, actual: String)
    /// A voice's `config` (RMVPE has `RMVPEError.unsupportedConfiguration`).
    case invalidConfiguration(reason: String)

    // Strict weight loading
    case missingWeight(key: String)
    case weightShape(key: String, expected: [Int], actual: [Int])
    case unusedWeights(keys: [String])

    // Golden sets and model inputs
    case goldenIndexUnreadable(path: String, reason: String)
    case goldenTensorMissing(name: String)
    case goldenTensorShape(name: String, expected: [Int], actual: [Int])
    case goldenTensorChecksum(path: String, name: String)
    case layoutUnsupported(name: String, layout: String, wanted: String)
    case inputInvalid(name: String, reason: String)

    // Command line
    case usage(String)

    public var description: String {
        switch self {
        case let .fileUnreadable(path, reason):
            return "Cannot read \(path) (\(reason)). Check the path and that the file is readable."
        case let .fileUnwritable(path, reason):
            return "Cannot write \(path) (\(reason)). Check that its folder exists and is writable."
        case let .wavUnsupported(path, reason):
            return "\(path) \(reason)."
        case let .safetensorsTooShort(path, byteCount):
            return "\(path) has \(byteCount) bytes, too few for a safetensors file (8-byte length and a header). "
                + "The file is truncated; export it again."
        case let .safetensorsHeaderLength(path, declared, available):
            return "\(path) declares a \(declared)-byte header but only \(available) bytes follow the length "
                + "field. The file is truncated or not safetensors; export it again."
        case let .safetensorsHeaderInvalid(path, reason):
            return "\(path) has an unreadable safetensors header (\(reason)). The file is damaged; export it again."
        case let .safetensorsEntryInvalid(path, key, reason):
            return "\(path): tensor `\(key)` has an invalid header entry (\(reason)). Export the file again."
        case let .safetensorsOffsetsOutOfRange(path, key, begin, end, dataByteCount):
            return "\(path): tensor `\(key)` claims bytes \(begin)..<\(end) but the data section has "
                + "\(dataByteCount) bytes. The file is truncated or damaged; export it again."
        case let .safetensorsSizeMismatch(path, key, expectedBytes, storedBytes):
            return "\(path): tensor `\(key)` needs \(expectedBytes) bytes for its shape and dtype but stores "
                + "\(storedBytes). The file is damaged; export it again."
        case let .safetensorsOverlap(path, key, otherKey):
            return "\(path): tensors `\(key)` and `\(otherKey)` share bytes. The file is damaged; export it again."
        case let .tensorNotInFile(path, key):
            return "\(path) has no tensor `\(key)`. Use a file written for this model."
        case let .unsupportedDType(key, dtype, readable):
            return "Tensor `\(key)` is stored as \(dtype), but is read as one of \(readable.joined(separator: ", ")). "
                + "Write it with one of those dtypes."
        case let .integerOutOfRange(key, value):
            return "Tensor `\(key)` holds \(value), which does not fit a 32-bit index. Check the input file."
        case let .manifestUnreadable(path, reason):
            return "\(path) is not a readable manifest (\(reason)). Export the model again."
        case let .manifestFormatVersion(path, found, supported):
            return "\(path) is manifest format \(found); this build reads format \(supported). "
                + "Export the model again with the matching rvc-ios version."
        case let .manifestKind(path, found):
            return "\(path) describes a `\(found)` model, not a voice. Pass a voice exported by `rvc-ios export`."
        case let .manifestWeightsFile(path, weightsFile):
            return "\(path) names weights file `\(weightsFile)`, which is not a plain file name beside it. "
                + "Export the model again."
        case let .manifestTensorNotInWeights(path, key):
            return "The manifest lists tensor `\(key)` but \(path) lacks it. Export the model again."
        case let .weightsTensorNotInManifest(path, key):
            return "\(path) holds tensor `\(key)` that its manifest does not list. "
                + "The two files are from different exports; export the model again."
        case let .manifestEntryMismatch(path, key, field, manifest, weights):
            return "Tensor `\(key)`: the manifest says \(field) \(manifest) but \(path) has \(weights). "
                + "The two files are from different exports; export the model again."
        case let .checksumMismatch(path, key, expected, actual):
            return "Tensor `\(key)` in \(path) has XXH64 checksum \(actual), but the manifest expects \(expected). "
                + "The weights file was changed or damaged; export the model again."
        case let .invalidConfiguration(reason):
            return "The voice configuration is not usable: \(reason). Export the voice again or report the model."
        case let .missingWeight(key):
            return "The weights file has no weight `\(key)`, which this model needs. Export the model again with rvc-ios."
        case let .weightShape(key, expected, actual):
            return "Weight `\(key)` has shape \(actual) but the configuration needs \(expected). "
                + "The manifest's configuration does not match its weights; export the model again."
        case let .unusedWeights(keys):
            let shown = keys.prefix(5).map { "`\($0)`" }.joined(separator: ", ")
            let more = keys.count > 5 ? " and \(keys.count - 5) more" : ""
            return "The weights file has weights this model never reads: \(shown)\(more). "
                + "It is not the architecture its manifest describes; report the model."
        case let .goldenIndexUnreadable(path, reason):
            return "\(path) is not a readable golden index (\(reason)). Record the golden set again."
        case let .goldenTensorMissing(name):
            return "The inputs have no tensor `\(name)`, which this model needs. Record the golden set again."
        case let .goldenTensorShape(name, expected, actual):
            return "Tensor `\(name)` has shape \(actual) but \(expected) was expected. "
                + "The inputs were recorded for another model; record them again for this one."
        case let .goldenTensorChecksum(path, name):
            return "\(path): the bytes of `\(name)` do not match the sha256 in index.json beside it; the file was "
                + "changed or damaged after it was written. Record the golden set again."
        case let .layoutUnsupported(name, layout, wanted):
            return "Tensor `\(name)` has layout \(layout), which cannot be turned into \(wanted). "
                + "Record the golden set again."
        case let .inputInvalid(name, reason):
            return "Input `\(name)` is not usable: \(reason). Check the inputs file."
        case let .usage(message):
            return message
        }
    }
}
