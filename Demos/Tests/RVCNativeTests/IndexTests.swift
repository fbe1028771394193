import Foundation
import Testing
@testable import RVCNative

/// The committed index golden sets (`golden/<name>/`, kind "index") whose export is in swift_fixtures/.
enum IndexFixtures {
    static func goldenSets() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Repository.goldens.path)) ?? []
        return names.sorted().filter { name in
            guard let index = try? GoldenIndex.load(path: Repository.goldens.appendingPathComponent("\(name)/index.json").path)
            else { return false }
            return index.kind == "index"
                && FileManager.default.fileExists(atPath: Repository.fixtures.appendingPathComponent("\(index.modelName).manifest.json").path)
        }
    }

    static func load(_ name: String) throws -> (IVFFlatIndex, GoldenSet, Double) {
        let folder = Repository.goldens.appendingPathComponent(name).path
        let golden = try GoldenSet(path: folder)
        let index = try IVFFlatIndex.load(assetsDirectory: Repository.fixtures.path, modelName: try #require(golden.index).modelName)
        return (index, golden, try IndexGoldenExtra.load(goldenFolder: folder).indexRate)
    }

    /// An index of `vectors` (rows of `d`) in one list, with ids 0..<n in that order and centroid 0.
    static func oneList(_ vectors: [Float], d: Int, nprobe: Int = 1) throws -> IVFFlatIndex {
        let n = vectors.count / d
        var writer = SafeTensorsWriter()
        writer.add("index.centroids", Tensor(zeros: [1, d]))
        writer.add("index.vectors", Tensor(shape: [n, d], data: vectors))
        writer.add("index.ids", int32Values: (0..<Int32(n)).map { $0 }, shape: [n])
        writer.add("index.list_offsets", int32Values: [0, Int32(n)], shape: [2])
        let file = try SafeTensorsFile(bytes: writer.serialized(), path: "one-list")
        return try IVFFlatIndex(configuration: configuration(d: d, nlist: 1, nprobe: nprobe, ntotal: n), weights: file)
    }

    static func configuration(d: Int, nlist: Int, nprobe: Int, ntotal: Int) throws -> IndexConfiguration {
        let json = """
        {"d": \(d), "nlist": \(nlist), "nprobe": \(nprobe), "ntotal": \(ntotal), "metric": "l2", "k": 8,
         "faiss_type": "IwFl", "quantizer": "IxF2", "list_sizes_form": "full"}
        """
        return try VoiceManifest.decoder().decode(IndexConfiguration.self, from: Data(json.utf8))
    }
}

@Suite struct IndexGoldenParityTests {
    @Test func goldenSetsExist() {
        #expect(!IndexFixtures.goldenSets().isEmpty, "no golden/<name>/ of kind index with its export in swift_fixtures/")
    }

    /// Ids and list numbers equal the golden's exactly; every float stage reaches its minimum SNR.
    @Test(arguments: IndexFixtures.goldenSets(), [StageRunner.Mode.chained, .teacherForced])
    func everyStageMatchesTheGolden(golden name: String, mode: StageRunner.Mode) throws {
        let (index, golden, indexRate) = try IndexFixtures.load(name)
        let goldenIndex = try #require(golden.index)
        var produced: Set<String> = []
        try IndexStageRunner(index: index).run(feats: try golden.tensor("feats", layout: "BTC"), indexRate: indexRate,
                                               mode: mode, golden: golden) { tensorName, value in
            produced.insert(tensorName)
            let entry = try #require(goldenIndex.entry(tensorName))
            let stage = try #require(goldenIndex.stages.first { $0.name == entry.stage })
            switch value {
            case let .integers(shape, values):
                let (goldenShape, goldenValues) = try golden.int32Values(tensorName)
                #expect(shape == goldenShape && values == goldenValues, "\(name) \(mode.rawValue): \(tensorName) differs")
            case let .float(tensor):
                let reference = try golden.file.tensor(tensorName)
                #expect(tensor.shape == reference.shape, "\(name) \(tensorName)")
                let snr = snrDecibels(reference: reference.data, candidate: tensor.data)
                #expect(snr >= stage.minSnrDb, "\(name) \(mode.rawValue): \(tensorName) at \(snr) dB < \(stage.minSnrDb) dB")
            }
        }
        let expected = Set(goldenIndex.tensors.filter { $0.role == "intermediate" || $0.role == "output" }.map(\.name))
        #expect(produced == expected)
    }

    /// The production path (`IVFFlatIndex.blend`, no stage bookkeeping) gives the golden features too.
    @Test(arguments: IndexFixtures.goldenSets())
    func blendMatchesTheGolden(golden name: String) throws {
        let (index, golden, indexRate) = try IndexFixtures.load(name)
        let blended = try index.blend(try golden.tensor("feats", layout: "BTC"), indexRate: indexRate)
        #expect(snrDecibels(reference: try golden.file.tensor("blended").data, candidate: blended.data) >= 80)
    }
}

@Suite struct IndexSearchTests {
    /// Twelve copies of one vector tie exactly: faiss keeps the first eight scanned (a later equal distance is
    /// not strictly nearer than the heap's top) and returns them by id.
    @Test func tiesAtTheEighthPlaceKeepTheFirstScanned() throws {
        let d = 16
        let base = randomValues(d, seed: 1)
        let far = randomValues(5 * d, seed: 2).map { $0 + 5 }
        // Scan order: 2 far vectors, 12 copies, 3 far vectors; ids are positions.
        let vectors = Array(far[0..<(2 * d)]) + (0..<12).flatMap { _ in base } + Array(far[(2 * d)...])
        let index = try IndexFixtures.oneList(vectors, d: d)
        let query = base.map { $0 + 0.01 }
        let (scores, ids) = index.scan(query, frames: 1, lists: [0], probes: 1)
        #expect(ids == (2..<10).map { Int32($0) })
        #expect(Set(scores).count == 1)
    }

    /// A list shorter than k leaves (FLT_MAX, -1) entries, which weigh 0; `big_npy[-1]` reads the last row.
    @Test func missingNeighboursAreMinusOneWithWeightZero() throws {
        let d = 16
        let index = try IndexFixtures.oneList(randomValues(5 * d, seed: 3), d: d)
        let query = randomValues(d, seed: 4)
        let (scores, ids) = index.scan(query, frames: 1, lists: [0], probes: 1)
        #expect(Array(ids[5...]) == [Int32](repeating: -1, count: 3))
        #expect(Array(scores[5...]) == [Float](repeating: .greatestFiniteMagnitude, count: 3))
        let weights = Retrieval.weights(scores: scores, k: 8)
        #expect(Array(weights[5...]) == [0, 0, 0])
        #expect(abs(weights.reduce(0, +) - 1) < 1e-6)
        let retrieved = Retrieval.retrieve(index, ids: ids, weights: weights, k: 8)
        #expect(retrieved.data.allSatisfy { $0.isFinite })
    }

    @Test func theCoarseStepTakesTheNearestCentroidsLowerNumbersFirstOnTies() throws {
        let d = 16
        var writer = SafeTensorsWriter()
        // Centroids 0 and 2 are the same point: a query there ties, and list 0 wins.
        let a = randomValues(d, seed: 5), b = randomValues(d, seed: 6)
        writer.add("index.centroids", Tensor(shape: [3, d], data: a + b + a))
        writer.add("index.vectors", Tensor(shape: [3, d], data: a + b + a))
        writer.add("index.ids", int32Values: [0, 1, 2], shape: [3])
        writer.add("index.list_offsets", int32Values: [0, 1, 2, 3], shape: [4])
        let file = try SafeTensorsFile(bytes: writer.serialized(), path: "three")
        let index = try IVFFlatIndex(configuration: IndexFixtures.configuration(d: d, nlist: 3, nprobe: 2, ntotal: 3),
                                     weights: file)
        #expect(index.coarseLists(a.map { $0 + 0.001 }, frames: 1) == [0, 2])
    }

    @Test func laneSumOfSquaresIsTheSumOfSquares() {
        for count in [7, 16, 768, 770] {
            let values = randomValues(count, seed: UInt64(count))
            let exact = values.reduce(0.0) { $0 + Double($1) * Double($1) }
            #expect(abs(Double(laneSumOfSquares(values, count: count)) - exact) <= 1e-5 * exact)
        }
    }

    @Test func pairwiseSumOfEightIsNumpysTree() {
        let v: [Float] = [1e8, 1, -1e8, 1, 3, 1e-3, 7, 1e7]
        #expect(Retrieval.pairwiseSum(v[...]) == ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])))
    }

    @Test func theBlendIsTwoFloat32ProductsAndASum() {
        let retrieved = Tensor(shape: [1, 1, 3], data: [1, 2, 3])
        let feats = Tensor(shape: [1, 1, 3], data: [0.5, -1, 7])
        let blended = Retrieval.blend(retrieved: retrieved, feats: feats, indexRate: 0.75)
        #expect(blended.data == zip(retrieved.data, feats.data).map { $0 * Float(0.75) + Float(0.25) * $1 })
    }
}

@Suite struct IndexLoadingTests {
    static let model = "tiny-index"

    func weights() throws -> SafeTensorsFile {
        try SafeTensorsFile(path: Repository.fixtures.appendingPathComponent("\(Self.model).safetensors").path)
    }

    func configuration() throws -> IndexConfiguration {
        try IndexManifest.load(path: Repository.fixtures.appendingPathComponent("\(Self.model).manifest.json").path).configuration
    }

    /// A copy of the export with integer tensors replaced (`rewrittenWeights` replaces float ones).
    func rewritten(_ file: SafeTensorsFile, integers: [String: [Int32]]) throws -> SafeTensorsFile {
        var writer = SafeTensorsWriter()
        for key in file.keys {
            if let values = integers[key] {
                writer.add(key, int32Values: values, shape: try file.entry(key).shape)
            } else if [.i32, .i64].contains(try file.entry(key).dtype) {
                let (shape, values) = try file.int32Values(key)
                writer.add(key, int32Values: values, shape: shape)
            } else {
                writer.add(key, try file.tensor(key))
            }
        }
        return try SafeTensorsFile(bytes: writer.serialized(), path: "rewritten.safetensors")
    }

    func loadingError(_ weights: SafeTensorsFile) throws -> IndexError? {
        do {
            _ = try IVFFlatIndex(configuration: try configuration(), weights: weights)
            return nil
        } catch let error as IndexError {
            return error
        }
    }

    @Test func theExportLoadsAndVerifies() throws {
        let index = try IVFFlatIndex.load(assetsDirectory: Repository.fixtures.path, modelName: Self.model)
        #expect(index.configuration.d == 32 && index.configuration.nlist == 10 && index.configuration.nprobe == 1)
    }

    @Test func anRMVPEManifestIsRefusedAsNotAnIndex() {
        #expect(throws: IndexError.self) {
            _ = try IndexManifest.load(path: Repository.fixtures.appendingPathComponent("tiny-rmvpe.manifest.json").path)
        }
    }

    @Test func aRepeatedIDIsRefused() throws {
        var ids = try weights().int32Values("index.ids").values
        ids[1] = ids[0]
        let changed = try rewritten(try weights(), integers: ["index.ids": ids])
        #expect(try loadingError(changed) == .ids(reason: "id \(ids[0]) appears twice"))
    }

    @Test func anIDOutOfRangeIsRefused() throws {
        var ids = try weights().int32Values("index.ids").values
        ids[3] = 400
        let changed = try rewritten(try weights(), integers: ["index.ids": ids])
        #expect(try loadingError(changed) == .ids(reason: "id 400 is outside 0..<400"))
    }

    @Test func offsetsThatDoNotEndAtNtotalAreRefused() throws {
        var offsets = try weights().int32Values("index.list_offsets").values
        offsets[offsets.count - 1] -= 1
        let changed = try rewritten(try weights(), integers: ["index.list_offsets": offsets])
        #expect(try loadingError(changed) == .listOffsets(reason: "they must rise from 0 to ntotal (400)"))
    }

    @Test func centroidsOfAnotherShapeAreRefusedNamingTheKey() throws {
        let changed = try rewrittenWeights(try weights(), replacing: ["index.centroids": Tensor(zeros: [9, 32])])
        #expect(try loadingError(changed) == .tensorShape(key: "index.centroids", expected: [10, 32], actual: [9, 32]))
    }

    @Test func featuresOfTheWrongWidthAreRefused() throws {
        let index = try IVFFlatIndex.load(assetsDirectory: Repository.fixtures.path, modelName: Self.model)
        #expect(throws: IndexError.featureWidth(expected: 32, actual: [1, 4, 768])) {
            _ = try index.blend(Tensor(zeros: [1, 4, 768]), indexRate: 0.75)
        }
    }
}
