import Testing
@testable import RVCNative

@Suite struct GoldenSetTests {
    static let name = "tiny-v2-40k"

    @Test func refusesATensorWhoseBytesNoLongerMatchItsIndex() throws {
        let golden = try GoldenSet(path: Repository.goldens.appendingPathComponent(Self.name).path)
        var phone = try golden.file.tensor("phone")
        phone.data[0] += 1
        let damaged = GoldenSet(index: golden.index, file: try rewrittenWeights(golden.file, replacing: ["phone": phone]))
        #expect(rvcError { _ = try damaged.tensor("phone", layout: "BTC") }
                == .goldenTensorChecksum(path: "rewritten.safetensors", name: "phone"))
        #expect(throws: Never.self) { _ = try damaged.tensor("pitchf", layout: "BT") }  // untouched tensors still read
    }

    @Test func refusesATensorOfAnotherShapeThanItsIndex() throws {
        let golden = try GoldenSet(path: Repository.goldens.appendingPathComponent(Self.name).path)
        let transposed = try golden.file.tensor("noise.z_p").permuted([0, 2, 1])
        let damaged = GoldenSet(index: golden.index,
                                file: try rewrittenWeights(golden.file, replacing: ["noise.z_p": transposed]))
        #expect(rvcError { _ = try damaged.tensor("noise.z_p", layout: "BCT") }
                == .goldenTensorShape(name: "noise.z_p", expected: [1, 8, 50], actual: [1, 50, 8]))
    }
}
