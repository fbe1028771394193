import Foundation

/// The manifest's `index` block (`rvc_ios_tools/index/export.py`): a faiss IndexIVFFlat over an IndexFlatL2
/// quantizer, as RVC's `train_index` writes it.
public struct IndexConfiguration: Decodable, Equatable, Sendable {
    /// Vector width: 256 for v1 voices, 768 for v2.
    public let d: Int
    public let nlist: Int
    /// Lists scanned per query, as the file stores it (RVC: 1).
    public let nprobe: Int
    public let ntotal: Int
    public let metric: String
    /// Neighbours per query: upstream's `index.search(npy, k=8)`.
    public let k: Int
    public let faissType: String
    public let quantizer: String
    public let listSizesForm: String

    /// faiss scans at most every list.
    public var probes: Int { min(nprobe, nlist) }

    /// Neighbours per query this build searches for at most (upstream asks for 8).
    public static let maximumK = 1024

    public func validate() throws {
        func require(_ ok: Bool, _ field: String, _ value: Any, _ supported: String) throws {
            if !ok { throw IndexError.unsupportedConfiguration(field: "index.\(field)", value: "\(value)", supported: supported) }
        }
        try require(metric == "l2", "metric", metric, "l2")
        try require(faissType == "IwFl" && quantizer == "IxF2", "faiss_type / quantizer", "\(faissType) / \(quantizer)",
                    "IwFl / IxF2 (IVF<n>,Flat)")
        for (field, value) in [("d", d), ("nlist", nlist), ("nprobe", nprobe), ("ntotal", ntotal), ("k", k)] {
            try require(value >= 1, field, value, "a whole number >= 1")
        }
        // Ids are held as Int32 here; RVC's indexes hold at most 200 000 vectors (more are reduced by k-means).
        try require(ntotal < Int(Int32.max), "ntotal", ntotal, "fewer than 2^31 vectors")
        // The search keeps k results per frame; no file bounds k, so an unbounded one would size that allocation.
        try require(k <= Self.maximumK, "k", k, "a whole number from 1 to \(Self.maximumK) (RVC searches 8)")
    }
}

/// `<Name>.manifest.json` of an index export (`rvc-ios export --index`): the tensor list every manifest has
/// and the `index` block.
public struct IndexManifest: Sendable {
    public let common: VoiceManifest
    public let configuration: IndexConfiguration

    private struct KindProbe: Decodable { let kind: String }
    private struct Block: Decodable { let index: IndexConfiguration }

    public static func load(path: String) throws -> IndexManifest {
        try parse(try readFile(path), path: path)
    }

    /// `load` for bytes already read; `path` names them in errors.
    public static func parse(_ data: Data, path: String) throws -> IndexManifest {
        try VoiceManifest.parseChecked(data, path: path) { decoder in
            let kind = try decoder.decode(KindProbe.self, from: data).kind
            guard kind == "index" else { throw IndexError.manifestKind(path: path, found: kind) }
            let common = try decoder.decode(VoiceManifest.self, from: data)
            let block = try decoder.decode(Block.self, from: data)
            try block.index.validate()
            return (common, IndexManifest(common: common, configuration: block.index))
        }
    }
}
